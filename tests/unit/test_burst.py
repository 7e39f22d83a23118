"""The burst probe: suite syntax, the probe itself on loopback, its summary, its layer.

The probe runs for real against a serial server in this process (a stdlib
``socketserver.TCPServer``, no threads, ``listen(10)``, 0.3 s per request): the shape of
FINDINGS.md mechanism 1a. Without root the kernel's overflow settings stay as they are
(``tcp_abort_on_overflow=0``), so an overflow shows as slow requests and timeouts, never
as resets; the reset case is the lead's end-to-end test on the lab.
"""

from __future__ import annotations

import json
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.attribution import finding
from orchestrator.exceptions import ConfigError
from orchestrator.layers import LayerOutcome, burst_command, parse_burst, run_layer, with_burst_path
from orchestrator.layout import Layout
from orchestrator.record import (
    BurstRecord,
    CounterRecord,
    FingerprintRecord,
    HostRecord,
    RunRecord,
)
from orchestrator.report import render_index, render_run
from orchestrator.scripts import burst as probe
from orchestrator.scripts import source
from orchestrator.store import RunStore
from orchestrator.suite import Burst, Layer, load_suite
from orchestrator.transport import FakeTransport
from tests.hookvenv import venv_with_hook

Write = Callable[[str, str], Path]

SUITE = """\
layers:
  - {name: unit, role: server, command: python -m pytest, needs: [database]}
  - {name: burst-60, role: client, needs: [database, server], burst: {requests: 60}}
"""


# --------------------------------------------------------------------------- the suite


def test_a_burst_layer_defaults_to_the_health_path_and_no_junit(write_yaml: Write) -> None:
    _, layer = load_suite(write_yaml("s.yaml", SUITE)).layers
    assert layer.burst == Burst(requests=60, path=None, timeout_s=10.0)
    assert not layer.junit and layer.retry is None
    assert layer.command == "burst probe: 60 simultaneous GET the health path"
    resolved = with_burst_path(layer, "/api/health")
    assert resolved.burst == Burst(60, "/api/health", 10.0)
    assert resolved.command == "burst probe: 60 simultaneous GET /api/health"


def test_a_burst_may_name_its_path_and_timeout(write_yaml: Write) -> None:
    text = SUITE.replace("{requests: 60}", "{requests: 2000, path: '/slow?s=0.3', timeout: 2.5}")
    layer = with_burst_path(load_suite(write_yaml("s.yaml", text)).layers[1], "/api/health")
    assert layer.burst == Burst(2000, "/slow?s=0.3", 2.5)


@pytest.mark.parametrize(
    "change,field",
    [
        (("{requests: 60}", "{requests: 0}"), "layers[1].burst.requests"),
        (("{requests: 60}", "{requests: 2001}"), "layers[1].burst.requests"),
        (("{requests: 60}", "{requests: true}"), "layers[1].burst.requests"),
        (("{requests: 60}", "{path: /x}"), "layers[1].burst.requests"),
        (("{requests: 60}", "{requests: 60, path: api/health}"), "layers[1].burst.path"),
        (("{requests: 60}", "{requests: 60, path: '/a b'}"), "layers[1].burst.path"),
        (("{requests: 60}", "{requests: 60, timeout: 0}"), "layers[1].burst.timeout"),
        (("{requests: 60}", "{requests: 60, timeout: 301}"), "layers[1].burst.timeout"),
        (("{requests: 60}", "{requests: 60, url: /x}"), "layers[1].burst.url"),
        (("{requests: 60}", "60"), "layers[1].burst"),
        (("burst:", "command: pytest, burst:"), "layers[1].command"),
        (("[database, server], burst", "[database], burst"), "layers[1].needs"),
        (("burst: {", "junit: true, burst: {"), "layers[1].junit"),
        (("burst: {", "retry: {count: 1}, burst: {"), "layers[1].retry"),
        (("burst: {", "timeout: 10, burst: {"), "layers[1].timeout"),
    ],
)
def test_bad_bursts_are_refused_naming_file_line_and_field(
    write_yaml: Write, change: tuple[str, str], field: str
) -> None:
    path = write_yaml("s.yaml", SUITE.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}, line 3, field '{field}': ")


# --------------------------------------------------------------------------- the probe


class _Serial(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        time.sleep(0.3)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


class _SerialServer(socketserver.TCPServer):
    request_queue_size = 10  # listen(10), as Django's dev server


@pytest.fixture
def serial_url() -> Iterator[str]:
    """A serial server (one request at a time, 0.3 s each) on loopback."""
    server = _SerialServer(("127.0.0.1", 0), _Serial)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/health"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but never listening: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _probe(
    python: str, url: str, n: int, timeout: float, env: dict[str, str] | None = None
) -> dict[str, object]:
    """burst.sh as a layer sends it: the helper on a here-document, run in isolated mode."""
    venv = Path(python).parent.parent
    base, path = re.fullmatch(r"(http://[^/]+)(/.*)", url).groups()  # type: ignore[union-attr]
    burst = Burst(n, path, timeout)
    layer = Layer("b", "client", "", ("server",), 60, "stop", junit=False, burst=burst)
    script = burst_command(layer, str(venv), base)
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    return dict(json.loads(lines[0]))


def test_a_burst_on_a_serial_server_accounts_for_every_request(serial_url: str) -> None:
    summary = _probe(sys.executable, serial_url, 60, 5.0)
    ok, errors = summary["ok"], summary["errors"]
    assert isinstance(ok, int) and isinstance(errors, dict)
    assert ok + sum(errors.values()) == 60 == summary["requests"]
    assert 0 < ok < 60  # 0.3 s each: ~16 in 5 s, the rest time out
    assert set(errors) == {"ETIMEDOUT"}
    slow = summary["slow"]
    assert isinstance(slow, int) and 0 < slow <= ok
    latency = summary["latency_ms"]
    assert isinstance(latency, dict) and list(latency) == ["p50", "p90", "p99", "max"]
    assert latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"] < 5100
    record, problem = parse_burst(
        json.dumps(summary), layer="b", host="h", url=serial_url, requests=60
    )
    assert problem is None and record is not None and record.ok == ok


def test_a_burst_against_a_closed_port_is_refused_sixty_times(closed_port: int) -> None:
    summary = _probe(sys.executable, f"http://127.0.0.1:{closed_port}/", 60, 5.0)
    assert summary["ok"] == 0 and summary["errors"] == {"ECONNREFUSED": 60}
    assert summary["latency_ms"] == {} and summary["slow"] == 0


def test_the_probe_opens_every_connection_before_any_request_and_sends_newest_first() -> None:
    """What makes a burst's resets exact (burst.py, steps 2 and 3): every handshake's
    last ACK waits for the request (TCP_DEFER_ACCEPT), so nothing reaches the accept
    queue before the requests, and they reach it newest connection first."""
    n = 20
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # room for all: no SYN cookie, no overflow
        port = listener.getsockname()[1]
        requests = [probe.Request() for _ in range(n)]
        probe.open_all(requests, probe.first_address("127.0.0.1", port))
        opened = [r.sock.getsockname()[1] for r in requests if r.sock is not None]
        assert len(opened) == n
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # all open at the client, none at the server
            listener.accept()
        probe.send_all(requests, urllib.parse.urlsplit(f"http://127.0.0.1:{port}/x"), "/x", 5.0)
        listener.settimeout(5)
        accepted = []
        for _ in range(n):
            conn, peer = listener.accept()
            assert conn.recv(100).startswith(b"GET /x HTTP/1.1\r\n")
            accepted.append(peer[1])
            conn.close()
        assert accepted == opened[::-1]
        for request in requests:
            assert request.conn is not None and not request.outcome
            request.conn.close()


def test_a_probe_that_cannot_run_says_why_and_exits_non_zero() -> None:
    helper = source("burst.py")
    for args in (["ftp://h/x", "1", "1"], ["http://h/x", "0", "1"], ["http://h:99999/", "1", "1"]):
        done = subprocess.run(
            [sys.executable, "-I", "-", *args], input=helper, capture_output=True, text=True
        )
        assert done.returncode != 0 and done.stdout == ""
        assert "burst: usage" in done.stderr


@pytest.fixture(scope="module")
def hooked_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh venv with only the ledger hook installed, by pip as on a host."""
    return str(venv_with_hook(tmp_path_factory.mktemp("burst-hook")))


def test_the_ledger_hook_records_the_probes_errors_in_isolated_mode(
    hooked_python: str, closed_port: int, tmp_path: Path
) -> None:
    ledger = tmp_path / "burst.ledger.jsonl"
    env = {"READINESS_LEDGER": str(ledger), "READINESS_LAYER": "burst-60", "PATH": "/usr/bin:/bin"}
    summary = _probe(hooked_python, f"http://127.0.0.1:{closed_port}/", 60, 5.0, env)
    assert summary["errors"] == {"ECONNREFUSED": 60}
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert len(lines) == 60
    assert {(x["kind"], x["errno"], x["layer"], x["op"]) for x in lines} == {
        ("error", "ECONNREFUSED", "burst-60", "connect")
    }
    assert {x["remote"] for x in lines} == {f"127.0.0.1:{closed_port}"}


# --------------------------------------------------------------------------- the summary

GOOD = {
    "kind": "readiness-burst",
    "v": 1,
    "url": "http://s/x",
    "requests": 60,
    "ok": 52,
    "errors": {"ECONNRESET": 8},
    "latency_ms": {"p50": 310.0, "p90": 1100.5, "p99": 1203.0, "max": 1250},
    "slow": 9,
    "duration_s": 1.3,
}


def _line(**changes: object) -> str:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def test_a_summary_becomes_a_burst_record() -> None:
    stdout = f"noise\n{_line(ok=0, errors={'ETIMEDOUT': 60})}\n{_line()}\n"  # the last counts
    record, problem = parse_burst(stdout, layer="b", host="h2", url="http://s:1/x", requests=60)
    assert problem is None
    assert record == BurstRecord(
        "b",
        "h2",
        "http://s:1/x",
        60,
        52,
        {"ECONNRESET": 8},
        {"p50": 310.0, "p90": 1100.5, "p99": 1203.0, "max": 1250.0},
        9,
        1.3,
    )


@pytest.mark.parametrize(
    "stdout,says",
    [
        ("", "printed no summary"),
        ("Traceback (most recent call last):\n  ...\n", "printed no summary"),
        ('{"kind": "readiness-burst", "ok": ', "garbled"),
        (_line(kind="other") + " readiness-burst", "garbled"),
        ('["readiness-burst"]', "printed no summary"),
        (_line(ok=-1, errors={"ECONNRESET": 61}), "garbled"),
        (_line(ok=True), "garbled"),
        (_line(ok="52"), "garbled"),
        (_line(ok=...), "garbled"),
        (_line(errors=[8]), "garbled"),
        (_line(errors={"": 8}), "garbled"),
        (_line(errors={"ECONNRESET": 8.5}), "garbled"),
        (_line(latency_ms={"p42": 1}), "garbled"),
        (_line(latency_ms={"p50": "fast"}), "garbled"),
        (_line(duration_s=float("nan")), "garbled"),
        (_line(duration_s=-1), "garbled"),
        (_line(ok=50), "does not add up"),
        (_line(requests=59, ok=51), "does not add up"),
        ('{"kind":"readiness-burst","errors":' + "[" * 100_000 + "]" * 100_000 + "}", "garbled"),
    ],
)
def test_a_missing_or_garbled_summary_is_a_reason_never_a_crash(stdout: str, says: str) -> None:
    record, problem = parse_burst(stdout, layer="b", host="h", url="http://s/x", requests=60)
    assert record is None and problem is not None and says in problem


# --------------------------------------------------------------------------- the layer

URL = "http://10.0.0.3:8000"
BURST = Layer(
    "burst-60",
    "client",
    Burst(60).describe(),
    ("database", "server"),
    60,
    "stop",
    junit=False,
    burst=Burst(60),
)


def _run(
    tmp_path: Path, fake: FakeTransport, layer: Layer = BURST, base_url: str | None = URL
) -> tuple[RunStore, LayerOutcome]:
    store = RunStore.create(tmp_path / "runs", "inv")
    outcome = run_layer(
        store,
        layer,
        {fake.name: fake},
        {fake.name: Layout("/srv/r")},
        venv_digest="abc",
        base_url=base_url,
        env={},
        secrets=["sup3rs3cret"],
        run_id="run1",
        health_path="/api/health",
    )
    return store, outcome


def test_a_burst_layer_runs_the_probe_and_keeps_its_measurement(tmp_path: Path) -> None:
    fake = FakeTransport("h2").on("READINESS_BURST_EOF", stdout=_line() + "\n")
    store, outcome = _run(tmp_path, fake)
    assert outcome.status == "passed" and outcome.reason is None
    assert outcome.command == "burst probe: 60 simultaneous GET /api/health"
    assert outcome.bursts == [
        BurstRecord(
            "burst-60",
            "h2",
            "http://10.0.0.3:8000/api/health",
            60,
            52,
            {"ECONNRESET": 8},
            {"p50": 310.0, "p90": 1100.5, "p99": 1203.0, "max": 1250.0},
            9,
            1.3,
        )
    ]
    (script,) = fake.scripts
    # Through layer.sh (environment, ledger, marker), the probe in place of a command.
    assert "export READINESS_LEDGER=/srv/r/results/run1/burst-60.ledger.jsonl" in script
    assert "/srv/r/venvs/abc/bin/python -I - http://10.0.0.3:8000/api/health 60 10.0" in script
    assert not fake.files  # no JUnit asked for
    record = outcome.to_record()
    assert record.per_host["h2"].status == "passed" and record.tests.total == 0
    log = (store.dir / "logs" / "h2" / "burst-60.log").read_text()
    assert log.startswith("$ burst probe: 60 simultaneous GET /api/health\n")


def test_a_burst_layer_may_probe_its_own_path(tmp_path: Path) -> None:
    layer = replace(BURST, burst=Burst(60, "/slow?s=0.3", 2.0))
    fake = FakeTransport("h2").on("READINESS_BURST_EOF", stdout=_line())
    _, outcome = _run(tmp_path, fake, layer)
    assert [b.url for b in outcome.bursts] == ["http://10.0.0.3:8000/slow?s=0.3"]
    assert "'http://10.0.0.3:8000/slow?s=0.3' 60 2.0 <<" in fake.scripts[0]


@pytest.mark.parametrize(
    "answer,status,says",
    [
        ({"stdout": "nothing useful"}, "error", "h2: the burst probe printed no summary"),
        ({"stdout": _line(ok=1)}, "error", "h2: the burst probe's summary does not add up"),
        (
            {"exit_code": 1, "stderr": "Traceback\nburst: could start only 9 of 60 threads\n"},
            "error",
            "h2: the burst probe could not run (exit 1): burst: could start only 9 of 60",
        ),
        ({"timed_out": True, "stdout": _line()}, "timeout", "timed out after 60s"),
    ],
)
def test_a_probe_without_a_measurement_is_not_a_pass(
    tmp_path: Path, answer: dict[str, Any], status: str, says: str
) -> None:
    fake = FakeTransport("h2").on("READINESS_BURST_EOF", **answer)
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == status and outcome.bursts == []
    assert outcome.reason is not None and says in outcome.reason


def test_a_burst_without_a_live_server_is_an_error_and_runs_nothing(tmp_path: Path) -> None:
    fake = FakeTransport("h2")
    _, outcome = _run(tmp_path, fake, base_url=None)
    assert outcome.status == "error" and fake.calls == []
    assert outcome.reason is not None and "needs the live server" in outcome.reason


# --------------------------------------------------------------------------- the report


def test_the_reports_show_each_burst(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "runs", "single")
    record = RunRecord(store.run_id, "single", "single.yaml", "s", "all-on-one", "2026-01-01")
    _, outcome = _run(tmp_path, FakeTransport("h2").on("READINESS_BURST_EOF", stdout=_line()))
    record.bursts = outcome.bursts
    store.write_record(record)
    html = render_run(store.dir).read_text()
    row = html[html.index("<h2>Bursts</h2>") :].split("</tr>")[1]
    assert re.sub(r"\s+", " ", row).strip() == (
        '<tr class="failed"><td>burst-60</td><td>h2</td><td>http://10.0.0.3:8000/api/health</td>'
        "<td>60</td><td>52</td> <td>8 ECONNRESET</td><td>9</td> <td>310 ms</td><td>1.1 s</td>"
        "<td>1.2 s</td><td>1.2 s</td><td>1.3s</td>"
    )
    index = render_index(tmp_path).read_text()
    assert "burst of 60 from h2: 52 ok, 8 ECONNRESET, 9 slow, p99 1.2 s</p>" in index


def _control_run(tmp_path: Path, topology: str, host: str, overflows: int, slow: int) -> None:
    """A burst of 60 with tcp_abort_on_overflow=0 (FINDINGS 1a): every request answered,
    some only after a retransmitted SYN; the ledger holds nothing, the counters the overflow."""
    inventory = "single" if topology == "all-on-one" else "cluster"
    store = RunStore.create(tmp_path / "runs", inventory)
    record = RunRecord(store.run_id, inventory, f"{inventory}.yaml", "s", topology, "2026-01-01")
    record.hosts = [HostRecord(host, "10.0.0.3", ["server"], "lab")]
    stdout = _line(ok=60, errors={}, slow=slow)
    burst, _ = parse_burst(stdout, layer="burst-60", host=host, url=URL, requests=60)
    assert burst is not None
    record.bursts = [burst]
    record.counters = {
        "burst-60": {host: CounterRecord(delta={"TcpExt.ListenOverflows": overflows})}
    }
    record.fingerprints = {
        host: FingerprintRecord(
            "gunicorn", f"{host}:8000", "1", False, "tcp", tcp_abort_on_overflow=0
        )
    }
    record.ledger.collected = True
    record.ledger.finding = finding(
        topology,
        [],
        [],
        counters=record.counters,
        bursts=record.bursts,
        abort_on_overflow={host: False},
        servers={host},
    )
    store.write_record(record)


def test_a_negative_control_burst_is_an_overflow_in_both_reports(tmp_path: Path) -> None:
    _control_run(tmp_path, "all-on-one", "h1", overflows=73, slow=12)
    _control_run(tmp_path, "distributed", "h3", overflows=0, slow=0)
    single = next((tmp_path / "runs").glob("*single*"))
    page = render_run(single).read_text()
    assert (
        "all-on-one: no resets; the server&#39;s accept queue overflowed 73 times "
        "(ListenOverflows on h1) with tcp_abort_on_overflow=0: 12 slow requests, no reset"
    ) in page
    index = render_index(tmp_path).read_text()
    assert (
        '<p id="transport-across" class="finding">all-on-one: no resets in a burst of 60, '
        "although the server&#39;s accept queue overflowed 73 times (ListenOverflows on h1) "
        "with tcp_abort_on_overflow=0: 12 slow requests; distributed: no resets in a burst "
        "of 60, no accept-queue overflow</p>"
    ) in index
