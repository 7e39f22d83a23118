"""``invoke readiness`` on a Django project it has never seen (tests/e2e/thirdparty).

The project is written the way many real ones are, not for readiness: a hard-coded
``ALLOWED_HOSTS``, ``SECRET_KEY`` read from ``DJANGO_SECRET_KEY`` at import time (a
KeyError without it), the database from ``DATABASE_URL`` via dj-database-url with a
SQLite default, nested requirement files and no MySQL driver of its own. Only an
inventory and a suite describe it. The lab has its own prefix and subnet and is always
removed at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.lab import lab_down
from tests.e2e.conftest import lab_unavailable

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
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
LAB = f"lab: {{prefix: {PREFIX}, subnet: '{SUBNET}', hosts: 2}}\n"
ALL_ON_ONE = LAB + "hosts:\n  - {name: h1, roles: [db, server, client]}\n" + APPLICATION
DISTRIBUTED = (
    LAB + "hosts:\n  - {name: h1, roles: [db]}\n  - {name: h2, roles: [server, client]}\n"
) + APPLICATION


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    base = tmp_path_factory.mktemp("thirdparty")
    try:
        yield base
    finally:
        lab_down(prefix=PREFIX, state_dir=base / "lab" / PREFIX)


def readiness(workdir: Path, name: str, text: str) -> tuple[int, str, dict[str, Any], Path]:
    """Run the CLI as a user would: its exit code, output, run record and run folder."""
    inventory = workdir / f"{name}.yaml"
    inventory.write_text(text)
    env = dict(os.environ, READINESS_WORKDIR=str(workdir), READINESS_LAB_DIR=str(workdir / "lab"))
    proc = subprocess.run(
        [sys.executable, "-m", "invoke", "readiness", f"--inventory={inventory}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    output = proc.stdout + proc.stderr
    match = re.search(r"run record (\S+/run\.json)", output)
    assert match, f"no run record announced (exit {proc.returncode}):\n{output[-4000:]}"
    record_path = Path(match.group(1))
    return proc.returncode, output, json.loads(record_path.read_text()), record_path.parent


def diagnostics(output: str, run_dir: Path) -> str:
    """The command's output and the end of every log the run kept, for a failure message."""
    parts = [output[-4000:]]
    for log in sorted(run_dir.glob("logs/*/*.log")):
        parts.append(f"--- {log.relative_to(run_dir)} ---\n{log.read_text()[-3000:]}")
    return "\n".join(parts)


def assert_ready(code: int, output: str, record: dict[str, Any], run_dir: Path) -> None:
    assert code == 0, diagnostics(output, run_dir)
    assert record["verdict"] == "ready", diagnostics(output, run_dir)
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
    code, output, record, run_dir = readiness(workdir, "thirdparty-single", ALL_ON_ONE)
    assert_ready(code, output, record, run_dir)
    assert record["topology"] == "all-on-one"
    assert record["database_links"] == {"h1": "socket"}


def test_distributed_deploys_the_unseen_project_and_is_ready(workdir: Path) -> None:
    code, output, record, run_dir = readiness(workdir, "thirdparty-distributed", DISTRIBUTED)
    assert_ready(code, output, record, run_dir)
    assert record["topology"] == "distributed"
    assert record["database_links"] == {"h2": "tcp"}
    assert {h["name"] for h in record["hosts"]} == {"h1", "h2"}
