"""``invoke readiness`` on a Django project it has never seen (tests/e2e/thirdparty).

The project is written the way many real ones are, not for readiness: a hard-coded
``ALLOWED_HOSTS``, ``SECRET_KEY`` read from ``DJANGO_SECRET_KEY`` at import time (a
KeyError without it), the database from ``DATABASE_URL`` via dj-database-url with a
SQLite default, nested requirement files, no MySQL driver of its own, and a manifest
static files storage (no page renders before ``collectstatic``).

What readiness needs of it lives outside the project, as a user keeps it beside the
inventory (tests/e2e/thirdparty-readiness): the suite, the client folder ``it/`` with its
requirements, and the fixture the live server loads. The tests copy that folder, write
the inventories into the copy and name those files relative to it; the application stays
where it is. The lab has its own prefix and subnet and is always removed at the end.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import Run, lab_section, lab_workdir, run_readiness

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "thirdparty"
BESIDE = HERE / "thirdparty-readiness"  # what the user keeps beside the inventory
PREFIX = "tp"
SUBNET = "10.213.77.0/24"
DJANGO_TESTS = 13  # notes/tests.py
HTTP_TESTS = 9  # thirdparty-readiness/it/test_http.py

# fixtures, the client folder and its requirements are not in the application: they are
# read beside the inventory. requirements.txt is the application's own.
APPLICATION = f"""
application:
  source: {PROJECT}
  settings: mysite.settings
  requirements: requirements.txt
  fixtures: [fixtures/notes.json]
  server: {{mode: testserver, port: 8000, health: /healthz}}
  client: {{source: it, requirements: it/requirements.txt}}
database: {{mode: managed, name: notes, user: notes, port: 3307}}
suite: suite.yaml
"""
LAB = lab_section(PREFIX, SUBNET, 2)
ALL_ON_ONE = LAB + "hosts:\n  - {name: h1, roles: [db, server, client]}\n" + APPLICATION
DISTRIBUTED = (
    LAB + "hosts:\n  - {name: h1, roles: [db]}\n  - {name: h2, roles: [server, client]}\n"
) + APPLICATION


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    with lab_workdir(tmp_path_factory.mktemp("thirdparty"), PREFIX) as base:
        yield base


@pytest.fixture(scope="module")
def beside(workdir: Path) -> Path:
    """A copy of thirdparty-readiness: the folder the inventories are written into."""
    folder = workdir / "thirdparty-readiness"
    shutil.copytree(BESIDE, folder, ignore=shutil.ignore_patterns("__pycache__", ".*cache"))
    return folder


def assert_ready(run: Run) -> None:
    record, run_dir = run.record, run.run_dir
    assert run.code == 0, run.diagnostics()
    assert record["verdict"] == "ready", run.diagnostics()
    layers = {layer["name"]: layer for layer in record["layers"]}
    assert [(name, layer["status"], layer["setup"]) for name, layer in layers.items()] == [
        ("collectstatic", "passed", True),
        ("django-tests", "passed", False),
        ("http-integration", "passed", False),
    ]
    # collectstatic is a step: no tests, its own log, said as a step in the terminal.
    step = layers["collectstatic"]
    assert step["tests"]["total"] == 0, step
    assert re.search(r"\bstep +collectstatic ok \(", run.output), run.output[-4000:]
    (log,) = step["logs"]
    assert "post-processed" in (run_dir / log).read_text(), (run_dir / log).read_text()
    for name, expected in (("django-tests", DJANGO_TESTS), ("http-integration", HTTP_TESTS)):
        tests = layers[name]["tests"]
        assert tests["total"] == tests["passed"] == expected, (name, tests)
        assert tests["failed"] == tests["errors"] == tests["skipped"] == 0, (name, tests)
    # The project's own settings default to SQLite: the live server must be on MariaDB.
    (junit,) = layers["http-integration"]["junit"]
    properties = {p.get("name"): p.get("value") for p in ET.parse(run_dir / junit).iter("property")}
    assert properties.get("server_database") == "mysql", properties


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_user_files(record: dict[str, Any], inventory: Path) -> None:
    """The record names every file of the user's that the run used, where it was found
    (the fixture and the client folder beside the inventory, the requirements in the
    application) and each file's sha256."""
    assert Path(record["inventory_file"]).resolve() == inventory.resolve()
    beside = inventory.parent
    expected = [
        ("application.requirements", "requirements.txt", PROJECT, "application", "file"),
        ("application.fixtures", "fixtures/notes.json", beside, "inventory", "file"),
        ("application.client.source", "it", beside, "inventory", "folder"),
        ("application.client.requirements", "it/requirements.txt", beside, "inventory", "file"),
    ]
    files = record["files"]
    assert [(f["field"], f["value"], f["base"], f["kind"]) for f in files] == [
        (field, value, base, kind) for field, value, _, base, kind in expected
    ], files
    for entry, (_, value, folder, _, kind) in zip(files, expected, strict=True):
        path = folder / value
        assert Path(entry["path"]).resolve() == path.resolve(), entry
        assert entry["sha256"] == (sha256(path) if kind == "file" else None), entry


def test_all_on_one_host_deploys_the_unseen_project_and_is_ready(
    workdir: Path, beside: Path
) -> None:
    run = run_readiness(workdir, "thirdparty-single", ALL_ON_ONE, folder=beside)
    assert_ready(run)
    record = run.record
    assert record["topology"] == "all-on-one"
    assert record["database_links"] == {"h1": "socket"}
    assert_user_files(record, beside / "thirdparty-single.yaml")


def test_distributed_deploys_the_unseen_project_and_is_ready(workdir: Path, beside: Path) -> None:
    run = run_readiness(workdir, "thirdparty-distributed", DISTRIBUTED, folder=beside)
    assert_ready(run)
    record = run.record
    assert record["topology"] == "distributed"
    assert record["database_links"] == {"h2": "tcp"}
    assert {h["name"] for h in record["hosts"]} == {"h1", "h2"}
    assert_user_files(record, beside / "thirdparty-distributed.yaml")
