"""Faults on a real lab: signals, dead components, an interrupted cold deploy.

Each test names the fault it injects and checks what readiness promises afterwards: the
exit code, a finished record that says what happened, and nothing of the run left on
the host (no process of its deploy root, no secret, no database server).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.lab import load_lab
from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import (
    BROKER_APPLICATION,
    lab_section,
    lab_workdir,
    marked_processes,
    run_readiness,
    start_cli,
)

pytestmark = pytest.mark.e2e

PREFIX = "rf"
SUBNET = "10.213.78.0/24"
SINGLE = (
    lab_section(PREFIX, SUBNET, 1)
    + "hosts:\n  - {name: h1, roles: [db, server, client]}\n"
    + BROKER_APPLICATION
)
SLEEPY = """
layers:
  - {name: first, role: server, needs: [database], command: "sleep 600", junit: false}
  - {name: second, role: client, needs: [server], command: "true", junit: false}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    with lab_workdir(tmp_path_factory.mktemp("faults"), PREFIX) as base:
        yield base


def suite(workdir: Path, name: str, text: str) -> str:
    path = workdir / f"{name}.suite.yaml"
    path.write_text(text)
    return f"--suite={path}"


def deploy_root(workdir: Path, inventory: str) -> Path:
    lab = load_lab(PREFIX, workdir / "lab" / PREFIX)
    return Path(lab.hosts[0].deploy_root) / inventory


def assert_nothing_left(workdir: Path, inventory: str) -> None:
    """No process of the deploy root, no secret, no database server of it on the host."""
    root = deploy_root(workdir, inventory)
    assert marked_processes(str(root)) == [], "a process of the run survived"
    assert not (root / "etc" / "secrets.env").exists(), "the secrets stayed on the host"
    assert not (root / "etc" / ".readiness-digest").exists()
    servers = subprocess.run(
        ["pgrep", "-f", f"{root}/db/my.cnf"], capture_output=True, text=True, check=False
    )
    assert servers.stdout == "", "the database server survived"


def test_sigterm_mid_layer_is_exit_143_with_a_finished_record_and_nothing_left(
    workdir: Path,
) -> None:
    cli = start_cli(
        workdir, "term", SINGLE, suite(workdir, "sleepy", SLEEPY), until=r"first\s+running"
    )
    time.sleep(1)
    cli.proc.send_signal(signal.SIGTERM)
    run = cli.wait()
    assert run.code == 143, run.diagnostics()
    record = run.record
    assert record["verdict"] == "interrupted" and record["finished_at"]
    assert record["interrupted"]["signal"] == "SIGTERM"
    assert record["interrupted"]["layer"] == "first"
    assert [layer["status"] for layer in record["layers"]] == ["interrupted", "blocked"]
    assert record["teardown"]["status"] == "ok"
    assert (run.run_dir / "report.html").is_file()
    assert_nothing_left(workdir, "term")


def test_two_sigints_a_quarter_second_apart_still_finish_the_teardown(workdir: Path) -> None:
    cli = start_cli(
        workdir, "twice", SINGLE, suite(workdir, "sleepy", SLEEPY), until=r"first\s+running"
    )
    time.sleep(1)
    cli.proc.send_signal(signal.SIGINT)
    time.sleep(0.25)
    cli.proc.send_signal(signal.SIGINT)
    run = cli.wait()
    assert run.code == 130, run.diagnostics()
    assert run.record["interrupted"]["noted"] == ["SIGINT"]
    assert run.record["teardown"]["status"] == "ok"
    assert_nothing_left(workdir, "twice")


def test_ctrl_c_during_a_cold_deploy_leaves_no_secret_and_no_install_behind(
    workdir: Path,
) -> None:
    quick = suite(workdir, "quick", SLEEPY.replace("sleep 600", "true"))
    # pip, not uv: its install takes seconds after the database is up (they deploy at
    # once), so the interrupt surely lands while the virtualenvs are being built.
    cli = start_cli(
        workdir, "cold", SINGLE, quick, until="database up", env={"READINESS_INSTALLER": "pip"}
    )
    cli.proc.send_signal(signal.SIGINT)  # the code and virtualenvs are still installing
    run = cli.wait()
    assert run.code == 130 and run.record["interrupted"]["step"] == "deploy", run.diagnostics()
    time.sleep(8)  # an install that survived would now write the secrets and its markers
    assert_nothing_left(workdir, "cold")
    again = run_readiness(workdir, "cold", SINGLE, quick)  # not trusted as up to date
    assert again.code == 0, again.diagnostics()
    assert any(d.get("sent") for d in again.record["deploy"]), "nothing was resent"


def test_a_database_killed_mid_layer_is_exit_3_naming_it(workdir: Path) -> None:
    text = """
layers:
  - name: db-dies
    role: server
    needs: [database]
    command: 'kill -9 "$(cat ../db/mysqld.pid)"; sleep 1; exit 1'
    junit: false
"""
    run = run_readiness(workdir, "dbdies", SINGLE, suite(workdir, "dbdies", text))
    assert run.code == 3, run.diagnostics()
    layer = run.record["layers"][0]
    assert run.record["verdict"] == "error" and layer["status"] == "error"
    assert "the database on h1 died or stopped answering" in layer["reason"]
    assert_no_secret_stored(workdir, "dbdies", run.run_dir)


def assert_no_secret_stored(workdir: Path, inventory: str, run_dir: Path) -> None:
    """No secret of the inventory in any file of the run, failure logs included."""
    secrets = json.loads((workdir / ".state" / inventory / "secrets.json").read_text())
    assert secrets and all(len(v) >= 16 for v in secrets.values())
    for path in run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaked = [key for key, value in secrets.items() if value.encode() in data]
            assert leaked == [], f"{path} holds {leaked}"


def test_a_server_killed_mid_layer_is_exit_3_naming_it(workdir: Path) -> None:
    text = """
layers:
  - name: server-dies
    role: client
    needs: [database, server]
    command: 'kill -9 "$(cat ../run/server.pid)"; sleep 1; exit 1'
    junit: false
"""
    run = run_readiness(workdir, "srvdies", SINGLE, suite(workdir, "srvdies", text))
    assert run.code == 3, run.diagnostics()
    layer = run.record["layers"][0]
    assert layer["status"] == "error" and "the testserver on h1" in layer["reason"]
    assert "is gone" in layer["reason"]


def test_a_layer_process_that_drops_its_marker_and_session_is_still_stopped(
    workdir: Path,
) -> None:
    """`setsid env -i` leaves the layer's session and environment; the cgroup keeps it."""
    text = """
layers:
  - name: escapes
    role: server
    needs: [database]
    command: 'setsid env -i sleep 4242 < /dev/null > /dev/null 2>&1 & sleep 1'
    junit: false
"""
    run = run_readiness(workdir, "escapes", SINGLE, suite(workdir, "escapes", text))
    assert run.record["teardown"]["status"] == "ok", run.diagnostics()
    left = subprocess.run(["pgrep", "-f", "sleep 4242"], capture_output=True, text=True)
    assert left.stdout == "", "the escaped process survived the teardown"
