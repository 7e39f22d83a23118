"""The transport ledger end to end, on a project made to reset connections (tests/e2e/resets).

Each reset here is made on purpose and in a known way (see resets/resetsite/views.py), so
the ledger's judgement can be checked exactly:

* testserver, all-on-one and distributed: a test POSTs 2 MB to a view that SIGKILLs the
  server with the body unread, once with http.client and once with requests. The kernel
  resets the connection: exactly one ECONNRESET per layer, pinned on the server's host as
  ``closed-with-unread-data``, and the run is an infrastructure error (the server died),
  not a failing application.
* gunicorn, all-on-one: a view answers without reading the body (the reset that follows
  is swallowed by requests: the test passes, only the capture and the counters see it),
  and a view aborts its first connection with SO_LINGER 0, under a retry policy: the test
  passes on its second attempt and must be reported as ``passed-with-retries``.

The lab has its own prefix and subnet and is always removed at the end.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import Run, lab_section, lab_workdir, run_readiness

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parent / "resets"
PREFIX = "rl"
SUBNET = "10.213.79.0/24"
PORT = 8000
KILL_TESTS = {
    "kill-httpclient": "test_kill_httpclient.py::test_post_to_a_server_that_dies_with_http_client",
    "kill-requests": "test_kill_requests.py::test_post_to_a_server_that_dies_with_requests",
}
LINGER_TEST = "test_linger_once.py::test_linger_zero_close_once"


def application(mode: str, suite: str) -> str:
    return f"""
application:
  source: {PROJECT}
  settings: resetsite.settings
  requirements: requirements.txt
  fixtures: [fixtures/empty.json]
  server: {{mode: {mode}, port: {PORT}, health: /health}}
  client: {{source: client, requirements: client/requirements.txt}}
database: {{mode: managed, name: resets, user: resets, port: 3307}}
suite: {PROJECT / suite}
"""


LAB = lab_section(PREFIX, SUBNET, 3)
ONE_HOST = "hosts:\n  - {name: h1, roles: [db, server, client]}\n"
THREE_HOSTS = (
    "hosts:\n  - {name: h1, roles: [db]}\n  - {name: h2, roles: [server]}\n"
    "  - {name: h3, roles: [client]}\n"
)
TESTSERVER_ALL_ON_ONE = LAB + ONE_HOST + application("testserver", "suite-testserver.yaml")
TESTSERVER_DISTRIBUTED = LAB + THREE_HOSTS + application("testserver", "suite-testserver.yaml")
GUNICORN_ALL_ON_ONE = LAB + ONE_HOST + application("gunicorn", "suite-gunicorn.yaml")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    with lab_workdir(tmp_path_factory.mktemp("ledger"), PREFIX) as base:
        yield base


def explain(run: Run, *what: object) -> str:
    """What was asserted about, the run's ledger and fingerprints, then its output and logs."""
    record = run.record
    facts = {"ledger": record.get("ledger"), "fingerprints": record.get("fingerprints")}
    parts = [repr(item) for item in what]
    parts.append(f"exit {run.code}, verdict {record.get('verdict')}: {record.get('reasons')}")
    parts.append(json.dumps(facts, indent=1, default=str)[-12000:])
    parts.append(run.diagnostics())
    return "\n".join(parts)


def layer_statuses(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(layer["name"], layer["status"]) for layer in record["layers"]]


def errors_of(ledger: dict[str, Any], layer: str) -> list[dict[str, Any]]:
    return [e for e in ledger["errors"] if e["layer"] == layer]


def assert_every_host_captured(run: Run, layers: tuple[str, ...]) -> None:
    captures = run.record["ledger"]["captures"]
    for layer in layers:
        for host in (h["name"] for h in run.record["hosts"]):
            capture = captures.get(layer, {}).get(host)
            assert capture is not None and capture["status"] == "captured", explain(
                run, layer, host, capture
            )


def assert_killed_server_is_blamed(
    run: Run, *, server_host: str, client_host: str, database_link: str
) -> None:
    """Each kill layer: one ECONNRESET, sent by the server's host, which closed a socket
    with the request body unread; the run an infrastructure error, not a failing app."""
    record = run.record
    assert run.code == 3, explain(run)
    assert record["verdict"] == "error", explain(run)
    assert layer_statuses(record) == [
        ("clean", "passed"),
        ("kill-httpclient", "error"),
        ("kill-requests", "error"),
    ], explain(run, layer_statuses(record))
    ledger = record["ledger"]
    assert ledger["collected"] is True, explain(run)
    assert errors_of(ledger, "clean") == [], explain(run, "clean")
    for layer, test in KILL_TESTS.items():
        resets = [e for e in errors_of(ledger, layer) if e["errno"] == "ECONNRESET"]
        assert len(resets) == 1, explain(run, layer, resets)
        (error,) = resets
        assert str(error["test"]).endswith(test), explain(run, layer, error)
        assert error["on"] == client_host, explain(run, layer, error)
        assert error["side"] == "server", explain(run, layer, error)
        assert error["host"] == server_host, explain(run, layer, error)
        assert error["mechanism"] == "closed-with-unread-data", explain(run, layer, error)
        rst = error["rst"]
        assert rst is not None and rst["from"].endswith(f":{PORT}"), explain(run, layer, error)
    assert_every_host_captured(run, ("clean", *KILL_TESTS))
    fingerprint = record["fingerprints"][server_host]
    assert fingerprint["kind"] == "testserver", explain(run, fingerprint)
    assert fingerprint["backlog"] == 10, explain(run, fingerprint)  # Django's dev server
    assert fingerprint["database_link"] == database_link, explain(run, fingerprint)


def test_all_on_one_host_blames_the_killed_testserver(workdir: Path) -> None:
    run = run_readiness(workdir, "ledger-testserver-single", TESTSERVER_ALL_ON_ONE)
    assert run.record["topology"] == "all-on-one", explain(run)
    assert_killed_server_is_blamed(run, server_host="h1", client_host="h1", database_link="socket")


def test_distributed_blames_the_killed_testserver(workdir: Path) -> None:
    run = run_readiness(workdir, "ledger-testserver-distributed", TESTSERVER_DISTRIBUTED)
    assert run.record["topology"] == "distributed", explain(run)
    assert_killed_server_is_blamed(run, server_host="h2", client_host="h3", database_link="tcp")


def test_gunicorn_swallowed_reset_and_retried_test_are_reported(workdir: Path) -> None:
    run = run_readiness(workdir, "ledger-gunicorn-single", GUNICORN_ALL_ON_ONE)
    record, run_dir = run.record, run.run_dir
    assert run.code == 0, explain(run)
    assert record["verdict"] == "ready", explain(run)
    assert layer_statuses(record) == [
        ("clean", "passed"),
        ("noread", "passed"),
        ("retry", "passed"),
    ], explain(run, layer_statuses(record))
    ledger = record["ledger"]
    assert ledger["collected"] is True, explain(run)
    assert errors_of(ledger, "clean") == [], explain(run, "clean")

    # noread: requests swallowed the reset (the test passed), the capture did not.
    assert errors_of(ledger, "noread") == [], explain(run, "noread")
    unread = [
        r
        for r in ledger["resets"]
        if r["layer"] == "noread"
        and r["side"] == "server"
        and r["mechanism"] == "closed-with-unread-data"
    ]
    # Exactly one: gunicorn closes with the body unread while requests waits on the full
    # receive window it left (nothing in flight), so the close's RST is the only one.
    assert len(unread) == 1, explain(run, "noread resets")

    # retry: reset once by a linger-0 close, passed on the second attempt, never a plain pass.
    flagged = [f for f in ledger["flagged"] if f["layer"] == "retry"]
    assert len(flagged) == 1, explain(run, flagged)
    (retried,) = flagged
    assert retried["test"].endswith(LINGER_TEST), explain(run, retried)
    assert retried["status"] == "passed-with-retries", explain(run, retried)
    assert retried["attempts"] == 2, explain(run, retried)
    errors = errors_of(ledger, "retry")
    assert len(errors) == 1, explain(run, errors)
    (error,) = errors
    assert (error["errno"], error["attempt"]) == ("ECONNRESET", 1), explain(run, error)
    assert error["side"] == "server", explain(run, error)
    assert error["host"] == "h1", explain(run, error)
    assert error["mechanism"] == "linger-zero-close", explain(run, error)
    mentioned = [r for r in record["reasons"] if "test_linger_zero_close_once" in r]
    assert mentioned, explain(run, record["reasons"])
    # One <testcase> per attempt in the stored JUnit XML, the first marked as failed.
    (layer,) = [layer for layer in record["layers"] if layer["name"] == "retry"]
    cases = [
        case
        for case in ET.parse(run_dir / layer["junit"][0]).iter("testcase")
        if case.get("name") == "test_linger_zero_close_once"
    ]
    assert len(cases) == 2, explain(run, [ET.tostring(case) for case in cases])
    first = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert first.get("readiness_outcome") == "failed", explain(run, first)

    assert_every_host_captured(run, ("clean", "noread", "retry"))
    fingerprint = record["fingerprints"]["h1"]
    assert fingerprint["kind"] == "gunicorn", explain(run, fingerprint)
    assert fingerprint["database_link"] == "socket", explain(run, fingerprint)
