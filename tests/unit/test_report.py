"""The HTML report's transport section, rendered from a run directory only."""

from __future__ import annotations

from pathlib import Path

from orchestrator.record import (
    AttributionRecord,
    CaptureRecord,
    FingerprintRecord,
    FlaggedTestRecord,
    HostRecord,
    PassRateRecord,
    RstRecord,
    RunRecord,
)
from orchestrator.report import render_index, render_run
from orchestrator.store import RunStore


def a_run(root: Path, inventory: str, topology: str) -> RunRecord:
    store = RunStore.create(root / "runs", inventory)
    record = RunRecord(
        store.run_id, inventory, f"{inventory}.yaml", "s", topology, "2026-01-01T00:00:00Z"
    )
    record.hosts = [HostRecord("h1", "10.0.0.2", ["server"], "lab")]
    led = record.ledger
    led.collected = True
    led.events = 1
    led.errors = [
        AttributionRecord(
            "rest",
            "t.py::<script>",
            1,
            "ECONNRESET",
            "10.0.0.3:41000",
            "10.0.0.2:8000",
            RstRecord("10.0.0.2:8000", "10.0.0.3:41000", 1.0, ["h1 eth0 Out"]),
            "server",
            "h1",
            "closed-with-unread-data",
            "high",
            ["h1 TcpExt.TCPAbortOnClose +1"],
        )
    ]
    led.resets = [
        AttributionRecord(
            "rest",
            None,
            None,
            None,
            "10.0.0.3:41002",
            "10.0.0.2:8000",
            None,
            "none",
            "h1",
            "injected",
            "high",
            ["no sender counter moved"],
        )
    ]
    led.by_mechanism = {"closed-with-unread-data": 1, "injected": 1}
    led.flagged = [FlaggedTestRecord("rest", "h1", "t.py::a", "passed-with-retries", 2)]
    led.captures = {"rest": {"h1": CaptureRecord("captured", None, 2, "captures/rest/h1.txt")}}
    led.finding = f"{topology}: 1 reset sent by the server socket on h1"
    record.fingerprints = {
        "h1": FingerprintRecord(
            "testserver", "10.0.0.2:8000", "threaded", True, "socket", backlog=10, somaxconn=4096
        )
    }
    store.write_record(record)
    return record


def test_a_run_report_says_who_reset_each_connection(tmp_path: Path) -> None:
    record = a_run(tmp_path, "single", "all-on-one")
    html = render_run(tmp_path / "runs" / record.run_id).read_text()
    assert "all-on-one: 1 reset sent by the server socket on h1" in html
    assert "the server's socket on h1</td><td>closed-with-unread-data</td><td>high" in html
    assert "10.0.0.2:8000 &rarr; 10.0.0.3:41000" in html
    assert "no host's TCP stack (firewall or middlebox), seen on h1</td><td>injected" in html
    assert "passed-with-retries" in html
    assert '<a href="captures/rest/h1.txt">2 RST</a>' in html
    assert "<td>10</td>" in html  # the backlog in force
    # Test ids come from the user's suite: escaped, never markup.
    assert "t.py::&lt;script&gt;" in html and "<script>" not in html


def test_the_index_puts_the_topologies_transport_side_by_side(tmp_path: Path) -> None:
    a_run(tmp_path, "single", "all-on-one")
    a_run(tmp_path, "cluster", "distributed")
    html = render_index(tmp_path).read_text()
    assert html.index("distributed: 1 reset") < html.index("all-on-one: 1 reset")
    assert html.count("<th>injected</th><td>1</td>") == 2
    assert html.count("<th>tests passed with retries</th><td>1</td>") == 2
    assert html.count("<th>sent by the server&#39;s socket on h1</th><td>1</td>") == 2
    assert html.count("<th>sent by no host&#39;s TCP stack (firewall or middlebox)</th>") == 2


def test_a_repeated_run_shows_each_tests_pass_rate_and_where_errors_fell(tmp_path: Path) -> None:
    record = a_run(tmp_path, "single", "all-on-one")
    record.repeat = 3
    record.pass_rates = [
        PassRateRecord("rest", "h1", "t.py::a", 4, 3, 2, [2]),
        PassRateRecord("rest", "h1", "t.py::b", 5, 3, 3, []),
    ]
    RunStore(tmp_path / "runs" / record.run_id).write_record(record)
    html = render_run(tmp_path / "runs" / record.run_id).read_text()
    assert "Repeats: the client layers 3 times" in html
    assert "2 test(s); 1 passed in every pass; 1 saw transport errors" in html
    repeats = html[html.index("Repeats:") :]
    row = repeats[repeats.index("<td>t.py::a</td>") :].split("</tr>")[0]
    assert '<td class="status">2/3</td><td class=""></td><td class="moved">' in row
