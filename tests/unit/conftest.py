"""Builders for inventories and suites on disk, shared by the unit tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.record import RunRecord
from orchestrator.store import RunStore
from tests.schema_check import assert_valid_record

AppFactory = Callable[[], Path]


@pytest.fixture(autouse=True)
def every_record_written_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each record any unit test writes through the store is checked against the
    committed JSON Schema first (DESIGN.md: the tests check every written record)."""
    original = RunStore.write_record

    def checked(self: RunStore, record: RunRecord) -> Path:
        assert_valid_record(record.to_json())
        return original(self, record)

    monkeypatch.setattr(RunStore, "write_record", checked)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A minimal Django-looking project: enough for inventory validation."""
    app = tmp_path / "app"
    (app / "tests_it").mkdir(parents=True)
    (app / "manage.py").write_text("# manage\n")
    (app / "requirements.txt").write_text("Django\n")
    (app / "tests_it" / "requirements.txt").write_text("pytest\n")
    (app / "fixtures.json").write_text("[]\n")
    return app


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


APPLICATION = """\
application:
  source: app
  settings: mysite.settings
  requirements: requirements.txt
  fixtures: [fixtures.json]
  client: {source: tests_it, requirements: tests_it/requirements.txt}
"""

SINGLE = (
    """\
lab: true
hosts:
  - name: h1
    roles: [db, server, client]
"""
    + APPLICATION
)

CLUSTER = (
    """\
hosts:
  - {name: db1, address: 192.0.2.10, user: deploy, roles: [db]}
  - {name: web1, address: 192.0.2.11, user: deploy, roles: [server]}
  - {name: cl1, address: cl1.example.org, user: deploy, roles: [client]}
"""
    + APPLICATION
)

SUITE = """\
layers:
  - {name: unit, role: server, command: python -m pytest, needs: [database]}
  - {name: pure, role: server, command: python -m pytest pure, gate: continue}
  - {name: rest, role: client, command: python -m pytest it, needs: [database, server]}
"""
