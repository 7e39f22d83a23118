"""``invoke readiness`` on a Django project it has never seen (tests/e2e/thirdparty).

The project is written the way many real ones are, not for readiness: a hard-coded
``ALLOWED_HOSTS``, ``SECRET_KEY`` read from ``DJANGO_SECRET_KEY`` at import time (a
KeyError without it), the database from ``DATABASE_URL`` via dj-database-url with a
SQLite default, nested requirement files and no MySQL driver of its own. Only an
inventory and a suite describe it. The lab has its own prefix and subnet and is always
removed at the end.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import Run, lab_section, lab_workdir, run_readiness

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parent / "thirdparty"
PREFIX = "tp"
SUBNET = "10.213.77.0/24"
DJANGO_TESTS = 12  # notes/tests.py
HTTP_TESTS = 8  # it/test_http.py

APPLICATION = f"""
application:
  source: {PROJECT}
  settings: mysite.settings
  requirements: requirements.txt
  fixtures: [notes/fixtures/sample.json]
  server: {{mode: testserver, port: 8000, health: /healthz}}
  client: {{source: it, requirements: it/requirements.txt}}
database: {{mode: managed, name: notes, user: notes, port: 3307}}
suite: {PROJECT / "readiness-suite.yaml"}
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


def assert_ready(run: Run) -> None:
    record, run_dir = run.record, run.run_dir
    assert run.code == 0, run.diagnostics()
    assert record["verdict"] == "ready", run.diagnostics()
    layers = {layer["name"]: layer for layer in record["layers"]}
    assert [(name, layer["status"]) for name, layer in layers.items()] == [
        ("django-tests", "passed"),
        ("http-integration", "passed"),
    ]
    for name, expected in (("django-tests", DJANGO_TESTS), ("http-integration", HTTP_TESTS)):
        tests = layers[name]["tests"]
        assert tests["total"] == tests["passed"] == expected, (name, tests)
        assert tests["failed"] == tests["errors"] == tests["skipped"] == 0, (name, tests)
    # The project's own settings default to SQLite: the live server must be on MariaDB.
    (junit,) = layers["http-integration"]["junit"]
    properties = {p.get("name"): p.get("value") for p in ET.parse(run_dir / junit).iter("property")}
    assert properties.get("server_database") == "mysql", properties


def test_all_on_one_host_deploys_the_unseen_project_and_is_ready(workdir: Path) -> None:
    run = run_readiness(workdir, "thirdparty-single", ALL_ON_ONE)
    assert_ready(run)
    record = run.record
    assert record["topology"] == "all-on-one"
    assert record["database_links"] == {"h1": "socket"}


def test_distributed_deploys_the_unseen_project_and_is_ready(workdir: Path) -> None:
    run = run_readiness(workdir, "thirdparty-distributed", DISTRIBUTED)
    assert_ready(run)
    record = run.record
    assert record["topology"] == "distributed"
    assert record["database_links"] == {"h2": "tcp"}
    assert {h["name"] for h in record["hosts"]} == {"h1", "h2"}
