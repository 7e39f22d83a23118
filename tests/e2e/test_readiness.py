"""``invoke readiness`` end to end on a real lab: OpenSSH, MariaDB, Django, no fakes.

The lab here has its own prefix, subnet and state folder, so it coexists with a user's
``rdy`` lab and with the lab tests' own; it is always removed at the end.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import (
    BROKER_APPLICATION,
    broker_inventories,
    lab_workdir,
    marked_processes,
    run_readiness,
    start_cli,
)
from tests.schema_check import assert_valid_record

pytestmark = pytest.mark.e2e

PREFIX = "re"
SUBNET = "10.213.75.0/24"
SINGLE, CLUSTER = broker_inventories(PREFIX, SUBNET)
# A quick suite for the tests about the sequence itself rather than the broker's tests.
QUICK_SUITE = """
layers:
  - name: first
    role: server
    needs: [database]
    command: {first}
    junit: false
  - name: second
    role: client
    needs: [server]
    command: >-
      python -c "import os, urllib.request as u;
      u.urlopen(os.environ['READINESS_BASE_URL'] + '/api/health')"
    junit: false
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    with lab_workdir(tmp_path_factory.mktemp("readiness"), PREFIX) as base:
        yield base


def readiness(workdir: Path, name: str, text: str, *args: str) -> tuple[int, str, dict[str, Any]]:
    run = run_readiness(workdir, name, text, *args)
    return run.code, run.diagnostics(), run.record


def quick_suite(workdir: Path, first: str) -> Path:
    path = workdir / f"quick-{abs(hash(first))}.yaml"
    path.write_text(QUICK_SUITE.format(first=json.dumps(first)))
    return path


def test_single_host_runs_all_three_layers_and_is_ready(workdir: Path) -> None:
    code, output, record = readiness(workdir, "single", SINGLE)
    assert code == 0, output[-4000:]
    assert record["verdict"] == "ready" and record["topology"] == "all-on-one"
    assert [(layer["name"], layer["status"]) for layer in record["layers"]] == [
        ("django-unit", "passed"),
        ("python-unit", "passed"),
        ("rest-integration", "passed"),
    ]
    assert all(layer["tests"]["passed"] >= 25 for layer in record["layers"])
    assert record["database_links"] == {"h1": "socket"}
    # A cold deploy: uv went to the host with the wheels and built both virtualenvs.
    code_deploys = [d for d in record["deploy"] if d["component"] != "db"]
    for deployed in code_deploys:
        assert deployed["installer"].startswith("uv 0.9."), deployed
        assert any(part.startswith("uv-0.9.") for part in deployed["sent"]), deployed
    counters = record["counters"]["rest-integration"]["h1"]["delta"]
    assert counters["Tcp.ActiveOpens"] > 0, "the integration layer opened connections"
    assert_clean_ledger(record, socket_link="socket", server_host="h1")


def test_cluster_runs_all_three_layers_and_is_ready(workdir: Path) -> None:
    code, output, record = readiness(workdir, "cluster", CLUSTER)
    assert code == 0, output[-4000:]
    assert record["verdict"] == "ready" and record["topology"] == "distributed"
    assert [layer["status"] for layer in record["layers"]] == ["passed"] * 3
    assert record["database_links"] == {"h3": "tcp"}
    hosts = {h["name"]: h for h in record["hosts"]}
    assert set(hosts) == {"h2", "h3", "h4"}
    assert len({h["address"] for h in hosts.values()}) == 3
    # Each host has its own network stack: only the client opened the integration connections.
    deltas = record["counters"]["rest-integration"]
    assert deltas["h4"]["delta"]["Tcp.ActiveOpens"] > deltas["h2"]["delta"]["Tcp.ActiveOpens"]
    assert_clean_ledger(record, socket_link="tcp", server_host="h3")
    assert_pipelined(record, client="h4")


def assert_pipelined(record: dict[str, Any], *, client: str) -> None:
    """The deploy step waited for the database and server hosts only, and the layers on
    the client host waited for its deploy, which is complete in the record."""
    ends = {d["host"]: d["start_s"] + d["duration_s"] for d in record["deploy"]}
    assert all(d["status"] == "ok" for d in record["deploy"]), record["deploy"]
    step = next(s for s in record["steps"] if s["name"] == "deploy")
    step_end = step["start_s"] + step["duration_s"]
    assert all(end <= step_end + 0.05 for host, end in ends.items() if host != client), ends
    for layer in record["layers"]:
        if client in layer["hosts"]:
            assert layer["start_s"] >= ends[client], (layer["name"], ends)


def test_the_server_layers_run_while_a_slow_client_host_is_still_deploying(
    workdir: Path,
) -> None:
    """The client host's interpreter takes 30 s to make a virtualenv, so its deploy
    outlasts the server's: the server layers run meanwhile, the client layer waits.
    With pip asked for: the hosts' caches hold the client venv an earlier test built,
    which a second deploy would only link, making no virtualenv at all."""
    slow = workdir / "slow-python"
    slow.write_text(
        '#!/bin/sh\ncase "$*" in *"-m venv"*) sleep 30 ;; esac\nexec /usr/bin/python3 "$@"\n'
    )
    slow.chmod(0o755)
    text = CLUSTER.replace(
        "{name: h4, roles: [client]}", f"{{name: h4, roles: [client], python: {slow}}}"
    )
    assert str(slow) in text
    run = run_readiness(workdir, "slow-client", text, env={"READINESS_INSTALLER": "pip"})
    code, output, record = run.code, run.diagnostics(), run.record
    assert code == 0, output[-4000:]
    assert_pipelined(record, client="h4")
    client = next(d for d in record["deploy"] if d["host"] == "h4")
    client_end = client["start_s"] + client["duration_s"]
    first, *_, rest = record["layers"]
    assert first["hosts"] == ["h3"] and first["start_s"] < client_end - 5, (first, client)
    assert rest["hosts"] == ["h4"] and rest["start_s"] >= client_end
    assert "h4" in output and "goes on while the layers before its own run" in output


def test_the_cluster_taken_from_an_ansible_ini_inventory_is_ready(workdir: Path) -> None:
    """Hosts and roles from an Ansible INI file (groups mapped to roles), reached as lab
    hosts: the same deployment as the cluster inventory, and ready."""
    ini = workdir / "ansible-hosts.ini"
    ini.write_text(
        "# as a team's Ansible inventory would list them\n"
        "[databases]\nh2\n\n[web]\nh3 ansible_python_interpreter=python3\n\n"
        "[testers]\nh4\n\n[all:vars]\nansible_user=root\n"
    )
    hosts = (
        f"hosts:\n  ansible: {ini}\n  connection: lab\n"
        "  roles: {db: databases, server: web, client: testers}\n"
    )
    text = CLUSTER[: CLUSTER.index("\nhosts:") + 1] + hosts + BROKER_APPLICATION
    code, output, record = readiness(workdir, "ansible-cluster", text)
    assert code == 0, output[-4000:]
    assert record["verdict"] == "ready" and record["topology"] == "distributed"
    assert {h["name"]: h["roles"] for h in record["hosts"]} == {
        "h2": ["db"],
        "h3": ["server"],
        "h4": ["client"],
    }
    assert record["database_links"] == {"h3": "tcp"}


def assert_clean_ledger(record: dict[str, Any], *, socket_link: str, server_host: str) -> None:
    """A clean broker run: the ledger collected with nothing in it, every host captured
    every layer, and the testserver's fingerprint (Django's dev server asks for 10)."""
    ledger = record["ledger"]
    assert ledger["collected"] is True
    assert ledger["errors"] == [] and ledger["resets"] == [] and ledger["flagged"] == [], ledger
    hosts = [h["name"] for h in record["hosts"]]
    for layer in ("django-unit", "python-unit", "rest-integration"):
        captures = ledger["captures"][layer]
        assert {h: c["status"] for h, c in captures.items()} == dict.fromkeys(hosts, "captured")
        for host in hosts:
            assert record["counters"][layer][host]["delta"], (layer, host)
    # The hook ran in the test processes: pytest's attempts are in the client's ledger.
    assert ledger["files"]["rest-integration"], ledger["files"]
    fingerprint = record["fingerprints"][server_host]
    assert fingerprint["kind"] == "testserver" and fingerprint["backlog"] == 10, fingerprint
    assert fingerprint["database_link"] == socket_link
    assert fingerprint["tcp_abort_on_overflow"] == 0 and fingerprint["keep_alive"] is True


def test_repeat_runs_the_broker_client_layer_three_times_after_one_deploy(workdir: Path) -> None:
    code, output, record = readiness(workdir, "single", SINGLE, "--repeat=3")
    assert code == 0, output[-4000:]
    assert [(layer["name"], layer["status"], layer["repeat"]) for layer in record["layers"]] == [
        ("django-unit", "passed", 1),
        ("python-unit", "passed", 1),
        ("rest-integration", "passed", 1),
        ("rest-integration.2", "passed", 2),
        ("rest-integration.3", "passed", 3),
    ]
    # One deploy: each component once, nothing redeployed between passes.
    assert sorted(d["component"] for d in record["deploy"]) == ["client", "db", "server"]
    rates = record["pass_rates"]
    rest = record["layers"][2]["tests"]["total"]
    assert len(rates) == rest >= 25, (len(rates), rest)
    assert {(r["layer"], r["runs"], r["passed"]) for r in rates} == {("rest-integration", 3, 3)}
    assert [r["position"] for r in rates] == list(range(1, rest + 1))


def test_a_failing_layer_stops_the_sequence_and_is_recorded(workdir: Path) -> None:
    code, output, record = readiness(
        workdir,
        "single",
        SINGLE,
        f"--suite={quick_suite(workdir, 'echo failing on purpose; exit 7')}",
    )
    assert code == 1, output[-4000:]
    assert record["verdict"] == "not-ready"
    first, second = record["layers"]
    assert first["status"] == "failed" and first["per_host"]["h1"]["exit_code"] == 7
    assert second["status"] == "blocked"
    run_dir = Path(re.search(r"run record (\S+)/run\.json", output).group(1))  # type: ignore[union-attr]
    assert "failing on purpose" in (run_dir / "logs" / "h1" / "first.log").read_text()


def test_a_second_deploy_with_nothing_changed_transfers_nothing(workdir: Path) -> None:
    suite = f"--suite={quick_suite(workdir, 'true')}"
    code, output, _ = readiness(workdir, "single", SINGLE, suite, "--keep")
    assert code == 0, output[-4000:]
    code, output, record = readiness(workdir, "single", SINGLE, suite)
    assert code == 0, output[-4000:]
    pushed = [d for d in record["deploy"] if d["component"] != "db"]
    assert pushed and all(d["sent"] == [] and d["bytes_sent"] == 0 for d in pushed), pushed
    assert record["build"]["duration_s"] < 30  # wheelhouses came from the cache


def test_an_unreachable_host_is_exit_3_names_the_host_and_keeps_the_record(
    workdir: Path,
) -> None:
    lab_dir = workdir / "lab" / PREFIX
    # The lab is up from the earlier tests; .250 is in its subnet but nobody is there.
    text = (
        "hosts:\n"
        "  - name: ghost\n"
        "    address: 10.213.75.250\n"
        "    user: root\n"
        f"    key_file: {lab_dir / 'id_ed25519'}\n"
        f"    known_hosts: {lab_dir / 'known_hosts'}\n"
        "    roles: [db, server, client]\n" + BROKER_APPLICATION
    )
    code, output, record = readiness(workdir, "ghost", text)
    assert code == 3, output[-4000:]
    assert "ghost" in record["reasons"][0]
    assert record["verdict"] == "error"
    assert [layer["status"] for layer in record["layers"]] == ["blocked"] * 3
    assert "Traceback" not in output


SLEEPY_SUITE = """
layers:
  - {name: first, role: server, needs: [database], command: "sleep 600", junit: false}
  - {name: second, role: client, needs: [server], command: "true", junit: false}
"""


def layer_processes(inventory: str) -> list[int]:
    """Processes on the lab still marked with this inventory's deploy root."""
    return marked_processes(f"/{inventory}")


def start_until_running(workdir: Path, name: str, suite: Path) -> subprocess.Popen[str]:
    """Start the CLI and return once the first layer is running on the host."""
    cli = start_cli(workdir, name, SINGLE, f"--suite={suite}", until=r"first\s+running")
    for _ in range(100):  # the layer's own processes appear just after the line
        if layer_processes(name):
            return cli.proc
        time.sleep(0.1)
    cli.proc.kill()
    raise AssertionError("no process of the running layer found")


def test_ctrl_c_mid_layer_tears_down_and_keeps_the_record(workdir: Path) -> None:
    suite = workdir / "sleepy.yaml"
    suite.write_text(SLEEPY_SUITE)
    proc = start_until_running(workdir, "interrupted", suite)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, rest
    match = re.search(r"run record (\S+/run\.json)", rest)
    assert match, rest
    record = json.loads(Path(match.group(1)).read_text())
    assert record["verdict"] == "interrupted" and "interrupted" in record["reasons"][0]
    assert [layer["status"] for layer in record["layers"]] == ["interrupted", "blocked"]
    assert record["teardown"]["status"] == "ok"
    assert layer_processes("interrupted") == [], "the interrupted layer's processes survived"


def test_a_killed_orchestrator_leaves_a_record_and_the_next_run_recovers(workdir: Path) -> None:
    suite = workdir / "sleepy.yaml"
    suite.write_text(SLEEPY_SUITE)
    proc = start_until_running(workdir, "killed", suite)
    proc.kill()  # SIGKILL: no teardown at all
    proc.wait(timeout=30)
    runs = sorted((workdir / "reports" / "runs").glob("*-killed-*"))
    assert runs, "the killed run left no run directory"
    unfinished = json.loads((runs[-1] / "run.json").read_text())
    assert_valid_record(unfinished)  # a killed run's record is a record all the same
    assert unfinished["verdict"] == "error" and unfinished["finished_at"] is None
    assert layer_processes("killed"), "SIGKILL should have left the layer running"
    code, output, record = readiness(
        workdir, "killed", SINGLE, f"--suite={quick_suite(workdir, 'true')}"
    )
    assert code == 0 and record["verdict"] == "ready", output
    assert layer_processes("killed") == [], "the next run's teardown must stop the leftovers"


def test_a_host_that_vanishes_mid_layer_is_exit_3_and_the_record_is_kept(workdir: Path) -> None:
    """The host's link goes down while a layer runs: no reset, no FIN, just silence."""
    suite = workdir / "sleepy.yaml"
    suite.write_text(SLEEPY_SUITE)
    proc = start_until_running(workdir, "vanished", suite)
    link = f"{PREFIX}-v1"  # the root-namespace end of h1's cable
    subprocess.run(["ip", "link", "set", link, "down"], check=True)
    try:
        rest, _ = proc.communicate(timeout=300)
    finally:
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
    assert proc.returncode == 3, rest
    match = re.search(r"run record (\S+/run\.json)", rest)
    assert match, rest
    record = json.loads(Path(match.group(1)).read_text())
    assert record["verdict"] == "error"
    assert record["layers"][0]["status"] == "error" and "h1" in record["reasons"][0]
    assert record["finished_at"] is not None
    # Back on the network, the host's leftovers are stopped by the next run of the inventory.
    code, output, _ = readiness(
        workdir, "vanished", SINGLE, f"--suite={quick_suite(workdir, 'true')}"
    )
    assert code == 0, output
    assert layer_processes("vanished") == []


# Fails if an earlier run's file is still in the client folder, then leaves one there.
LEFTOVER_SUITE = """
layers:
  - name: leaves-a-file
    role: client
    command: test ! -e left_by_an_earlier_run.py && echo 'X = 1' > left_by_an_earlier_run.py
    junit: false
"""


def test_a_file_a_layer_left_in_the_client_folder_is_gone_in_the_next_run(
    workdir: Path,
) -> None:
    """Host drift: run N adds a file to the deployed client folder; run N+1's probe finds
    the folder changed, the deploy resends the client (only it), and the file is gone."""
    suite = workdir / "leftover.yaml"
    suite.write_text(LEFTOVER_SUITE)
    code, output, record = readiness(workdir, "drift", SINGLE, f"--suite={suite}")
    assert code == 0 and record["verdict"] == "ready", output[-4000:]
    code, output, record = readiness(workdir, "drift", SINGLE, f"--suite={suite}")
    assert code == 0 and record["verdict"] == "ready", output[-4000:]  # no leftover found
    sent = {part for d in record["deploy"] if d["component"] == "client" for part in d["sent"]}
    # etc too: the first run's teardown removed the secrets from the host.
    assert sent == {"client", "etc"}, record["deploy"]
    drifted = [d["drifted"] for d in record["deploy"] if d["component"] == "client"]
    assert drifted == [["client"]], record["deploy"]  # and the record says why
