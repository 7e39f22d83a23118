"""Provoked faults end to end (``--faults``), on the project made to reset (tests/e2e/resets).

* The origin story's mechanism on demand: a burst of 60 against a serial gunicorn with a
  listen backlog of 10. With ``--faults=abort-on-overflow`` the overflowing connections
  are reset by the server's stack: every reset the probe saw is in the ledger, pinned on
  the server as ``accept-queue-overflow``, and the server's ``EmbryonicRsts`` counts
  exactly those resets: backlog+1 = 11, on every run, because the probe opens its
  connections before it sends their requests (scripts/burst.py). Without it (the
  negative control) the same overflow gives no reset at all, only slow answers and
  timeouts (FINDINGS 1a/1b).
* ``--faults=resets`` (a firewall answering every 2nd data segment to the server with a
  reset), all-on-one and distributed: the ledger's resets are ``injected``, sent by no
  host's TCP stack, never blamed on the server; under a retry policy every test passes,
  and each one that was reset is ``passed-with-retries``.
* Nothing of a profile is left in the lab after a run, nor after Ctrl-C mid-layer; a
  profile this kernel cannot do (latency: no sch_netem) or asked of a non-lab inventory
  is exit 2 before anything is deployed.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import invoke
from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import Run, lab_section, lab_workdir, run_readiness, start_cli

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parent / "resets"
PREFIX = "rp"
SUBNET = "10.213.80.0/24"
BACKLOG = 10
SERIAL = (
    f"{{mode: gunicorn, port: 8000, health: /health, workers: 1, threads: 1, backlog: {BACKLOG}}}"
)
# The resets of a burst of 60 with tcp_abort_on_overflow=1. The probe's lead request
# keeps the single worker busy; of the other 59 connections, opened before any of their
# requests, the listener keeps a request socket for the first backlog+1 (its SYN queue on
# this kernel) and answers the other 48 with SYN cookies. Their requests go newest first:
# the cookie ones fill the accept queue, and each of the backlog+1 comes to a full queue
# and is reset. Nothing else can be (every later arrival is a retransmitted request).
# Threads released at once gave 8 to 19 (the SYN retransmissions' batches decided).
OVERFLOW_RESETS = BACKLOG + 1
# Under injected resets a serial server would hang on a request whose data the firewall
# rejected (its socket stays established, FINDINGS 6) until gunicorn's worker timeout:
# the dev server, a thread per connection, keeps answering.
THREADED = "{mode: testserver, port: 8000, health: /health}"
ONE_HOST = "hosts:\n  - {name: h1, roles: [db, server, client]}\n"
THREE_HOSTS = (
    "hosts:\n  - {name: h1, roles: [db]}\n  - {name: h2, roles: [server]}\n"
    "  - {name: h3, roles: [client]}\n"
)


def inventory(hosts: str, suite: str, server: str = SERIAL) -> str:
    return (
        lab_section(PREFIX, SUBNET, 3)
        + hosts
        + f"""
application:
  source: {PROJECT}
  settings: resetsite.settings
  requirements: requirements.txt
  fixtures: [fixtures/empty.json]
  server: {server}
  client: {{source: client, requirements: client/requirements.txt}}
database: {{mode: managed, name: resets, user: resets, port: 3307}}
suite: {PROJECT / suite}
"""
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    with lab_workdir(tmp_path_factory.mktemp("provoke"), PREFIX) as base:
        yield base


def in_namespace(host: str, *argv: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", f"{PREFIX}-{host}", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def assert_no_fault_left(*hosts: str) -> None:
    """No netfilter rule, qdisc or sysctl change of readiness's in any lab host."""
    for host in hosts:
        assert "readiness:" not in in_namespace(host, "iptables-save"), host
        for device in ("lo", "eth0"):
            assert "7264:" not in in_namespace(host, "tc", "qdisc", "show", "dev", device), host
        assert in_namespace(host, "sysctl", "-n", "net.ipv4.tcp_abort_on_overflow").strip() == "0"


def burst_errors(run: Run) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    (burst,) = run.record["bursts"]
    errors = [e for e in run.record["ledger"]["errors"] if e["layer"] == "burst"]
    return burst, errors


def test_a_burst_overflows_a_serial_server_and_aborts_are_resets_pinned_on_it(
    workdir: Path,
) -> None:
    run = run_readiness(
        workdir, "overflow", inventory(ONE_HOST, "suite-provoke.yaml"), "--faults=abort-on-overflow"
    )
    assert run.code == 0, run.diagnostics()
    (fault,) = run.record["faults"]
    assert (fault["name"], fault["applied"], fault["removed"]) == ("abort-on-overflow", True, True)
    burst, errors = burst_errors(run)
    resets = [e for e in errors if e["errno"] == "ECONNRESET"]
    assert burst["requests"] == 60, burst
    assert len(resets) == burst["errors"].get("ECONNRESET") == OVERFLOW_RESETS, burst
    for reset in resets:
        assert (reset["side"], reset["host"], reset["mechanism"]) == (
            "server",
            "h1",
            "accept-queue-overflow",
        ), reset
        assert any("EmbryonicRsts" in line for line in reset["evidence"]), reset
    # The server's stack counts each reset it answered an overflow with.
    delta = run.record["counters"]["burst"]["h1"]["delta"]
    assert delta["TcpExt.EmbryonicRsts"] == len(resets), (delta, burst)
    fingerprint = run.record["fingerprints"]["h1"]
    assert (fingerprint["backlog"], fingerprint["tcp_abort_on_overflow"]) == (BACKLOG, 1)
    assert "accept-queue overflow, tcp_abort_on_overflow=1" in run.record["ledger"]["finding"]
    assert_no_fault_left("h1")


def test_without_the_profile_the_same_overflow_resets_nothing(workdir: Path) -> None:
    run = run_readiness(workdir, "overflow-control", inventory(ONE_HOST, "suite-provoke.yaml"))
    assert run.code == 0, run.diagnostics()
    assert run.record["faults"] == []
    burst, errors = burst_errors(run)
    assert "ECONNRESET" not in burst["errors"], burst
    assert burst["slow"] + burst["errors"].get("ETIMEDOUT", 0) > 0, burst
    assert [e for e in errors if e["errno"] == "ECONNRESET"] == []
    assert run.record["counters"]["burst"]["h1"]["delta"]["TcpExt.ListenOverflows"] > 0
    assert {e["mechanism"] for e in errors if e["errno"] == "ETIMEDOUT"} <= {
        "accept-queue-overflow"
    }


@pytest.mark.parametrize(("hosts", "server_host"), [(ONE_HOST, "h1"), (THREE_HOSTS, "h2")])
def test_injected_resets_are_blamed_on_no_host_and_retries_are_made_visible(
    workdir: Path, hosts: str, server_host: str
) -> None:
    run = run_readiness(
        workdir,
        f"injected-{server_host}",
        inventory(hosts, "suite-resets.yaml", THREADED),
        "--faults=resets",
    )
    assert run.code == 0, run.diagnostics()
    assert run.record["layers"][0]["status"] == "passed"
    ledger = run.record["ledger"]
    errors = [e for e in ledger["errors"] if e["layer"] == "one-request"]
    flagged = [f for f in ledger["flagged"] if f["layer"] == "one-request"]
    # The firewall rejects data segments 1, 3, 5... to the server port: the health check
    # took an even one, so each of the 4 tests' first request is reset and its retry,
    # the next segment, passes.
    assert len(errors) == len(flagged) == 4, (errors, flagged)
    assert sorted(f["test"].rpartition("::")[2] for f in flagged) == [
        f"test_one_get[{n}]" for n in range(4)
    ], flagged
    assert {(f["status"], f["attempts"]) for f in flagged} == {("passed-with-retries", 2)}
    for error in errors:
        assert (error["errno"], error["side"], error["mechanism"]) == (
            "ECONNRESET",
            "none",
            "injected",
        ), error
    assert "not sent by any host's TCP stack" in ledger["finding"]
    assert any("passed only after retries" in reason for reason in run.record["reasons"])
    assert_no_fault_left("h1", "h2", "h3")


def test_ctrl_c_mid_layer_removes_the_profiles(workdir: Path) -> None:
    cli = start_cli(
        workdir,
        "interrupted",
        inventory(ONE_HOST, "suite-provoke.yaml", THREADED),
        "--faults=resets,abort-on-overflow",
        until=r"burst\s+running",
    )
    time.sleep(1)
    cli.proc.send_signal(signal.SIGINT)
    run = cli.wait()
    assert run.code == 130, run.diagnostics()
    assert [(f["name"], f["removed"]) for f in run.record["faults"]] == [
        ("resets", True),
        ("abort-on-overflow", True),
    ]
    assert_no_fault_left("h1")


@pytest.mark.parametrize(
    ("text", "fault", "message"),
    [
        (None, "latency", "sch_netem"),
        ("local", "resets", "lab"),
    ],
)
def test_a_profile_that_cannot_be_honoured_is_exit_2_before_anything_runs(
    workdir: Path, text: str | None, fault: str, message: str
) -> None:
    if text is None:
        body = inventory(ONE_HOST, "suite-resets.yaml")
    else:  # not a lab inventory: one local host
        body = (
            inventory(ONE_HOST, "suite-resets.yaml")
            .replace(lab_section(PREFIX, SUBNET, 3), "")
            .replace("{name: h1, roles:", "{name: h1, connection: local, roles:")
        )
    path = workdir / f"refused-{fault}.yaml"
    path.write_text(body)
    proc = invoke("readiness", f"--inventory={path}", f"--faults={fault}", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
