"""reports/index.html and reports/summary.md: all-on-one against distributed, test by test.

Every test renders from run directories written with the run store's own writers
(``RunStore``, ``RunRecord``, ``testcases.to_line``), as a real run leaves them.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

from orchestrator import comparison, svg
from orchestrator.junit import TestCounts
from orchestrator.record import (
    AttributionRecord,
    BurstRecord,
    CounterRecord,
    DeployRecord,
    FaultRecord,
    FingerprintRecord,
    FlaggedTestRecord,
    FlowRecord,
    HostRecord,
    InterruptRecord,
    LayerRecord,
    ListenRecord,
    NetworkRecord,
    PassRateRecord,
    RstRecord,
    RunRecord,
    StepRecord,
)
from orchestrator.report import ALARMING, render_index, render_summary, stored_runs
from orchestrator.store import RunStore
from orchestrator.testcases import TESTS_FILE, TestCase, to_line

SINGLE_HOSTS = [HostRecord("h1", "10.0.0.2", ["db", "server", "client"], "lab")]
CLUSTER_HOSTS = [
    HostRecord("h2", "10.0.0.3", ["db"], "lab"),
    HostRecord("h3", "10.0.0.4", ["server"], "lab"),
    HostRecord("h4", "10.0.0.5", ["client"], "lab"),
]


def case(
    layer: str,
    name: str,
    status: str = "passed",
    seconds: float = 0.5,
    *,
    host: str = "h1",
    message: str | None = None,
) -> TestCase:
    """A test case of module ``tests.t`` (its id: ``tests.t::<name>``)."""
    return TestCase(layer, host, "tests.t", name, status, seconds, 1, message)


def layer(
    name: str,
    seconds: float,
    tests: int = 2,
    status: str = "passed",
    *,
    hosts: list[str] | None = None,
    start_s: float | None = 20.0,
    setup: bool = False,
) -> LayerRecord:
    return LayerRecord(
        name,
        "client",
        hosts or ["h1"],
        status,
        seconds,
        TestCounts(total=tests, passed=tests),
        start_s=start_s,
        setup=setup,
    )


def a_run(
    root: Path,
    inventory: str,
    topology: str,
    cases: list[TestCase] | None = None,
    *,
    started: str = "2026-01-01T00:00:00Z",
    layers: list[LayerRecord] | None = None,
    verdict: str = "ready",
    suite: str = "broker",
    extra_lines: bytes = b"",
) -> RunRecord:
    """A finished run in ``root/runs`` with its test cases in tests.jsonl."""
    store = RunStore.create(root / "runs", inventory)
    record = RunRecord(store.run_id, inventory, f"{inventory}.yaml", suite, topology, started)
    record.hosts = SINGLE_HOSTS if topology == "all-on-one" else CLUSTER_HOSTS
    record.verdict = verdict
    record.reasons = [] if verdict == "ready" else [f"layer 'rest' {verdict}"]
    record.layers = layers if layers is not None else [layer("rest", 10.0)]
    if cases is not None:
        lines = b"".join(json.dumps(to_line(c)).encode() + b"\n" for c in cases)
        store.write_bytes(lines + extra_lines, TESTS_FILE)
        record.tests_file = TESTS_FILE
    store.write_record(record)
    return record


def rows(html: str) -> list[str]:
    """The matrix's rows, by their data-test, in page order."""
    return re.findall(r'<tr data-test="([^"]*)"', html)


# --------------------------------------------------------------------------- the page


def test_all_on_one_comes_first_whatever_the_inventories_are_called(tmp_path: Path) -> None:
    a_run(tmp_path, "aaa-cluster", "distributed", [case("rest", "a")], verdict="not-ready")
    a_run(tmp_path, "zzz-box", "all-on-one", [case("rest", "a")])
    html = render_index(tmp_path).read_text()
    sides = re.findall(
        r'<section class="topology" data-topology="([^"]+)" data-inventory="([^"]+)">', html
    )
    assert sides == [("all-on-one", "zzz-box"), ("distributed", "aaa-cluster")]
    verdicts = re.findall(r'<span class="verdict ([a-z-]+)">', html)
    assert verdicts[:2] == ["ready", "not-ready"]
    assert 'id="what-differs"' in html and '<input id="test-filter" type="search"' in html


def test_the_ratio_and_what_differs_are_right_on_a_known_example(tmp_path: Path) -> None:
    a_run(
        tmp_path,
        "single",
        "all-on-one",
        [case("rest", "a", "failed"), case("rest", "b", "error"), case("rest", "c")],
        layers=[layer("rest", 10.0, 3)],
    )
    a_run(
        tmp_path,
        "cluster",
        "distributed",
        [case("rest", n, host="h4") for n in "abc"],
        layers=[layer("rest", 14.0, 3, hosts=["h4"])],
    )
    sentence = "2 tests fail only all-on-one; the rest layer is 1.4x slower distributed."
    html = render_index(tmp_path).read_text()
    assert f'<p id="what-differs" class="what-differs">{sentence}</p>' in html
    assert '<td class="ratio notable">1.4x</td>' in html
    summary = render_summary(tmp_path).read_text()
    assert summary.splitlines()[2] == sentence


def test_tests_that_differ_come_first_then_the_largest_duration_ratios(tmp_path: Path) -> None:
    a_run(
        tmp_path,
        "single",
        "all-on-one",
        [
            case("rest", "same"),
            case("rest", "slower", seconds=1.0),
            case("rest", "breaks"),
            case("rest", "much-slower", seconds=1.0),
        ],
    )
    a_run(
        tmp_path,
        "cluster",
        "distributed",
        [
            case("rest", "same"),
            case("rest", "slower", seconds=2.0),
            case("rest", "breaks", "failed", message="AssertionError: 500"),
            case("rest", "much-slower", seconds=5.0),
        ],
    )
    html = render_index(tmp_path).read_text()
    assert rows(html) == [
        "rest tests.t::breaks",
        "rest tests.t::much-slower",
        "rest tests.t::slower",
        "rest tests.t::same",
    ]
    assert '<tr data-test="rest tests.t::breaks" class="differs">' in html
    assert "AssertionError: 500" in html
    assert "1 test fails only distributed" in html


def test_every_test_of_either_run_is_one_row_and_missing_ones_are_absent(tmp_path: Path) -> None:
    a_run(tmp_path, "single", "all-on-one", [case("rest", "both"), case("rest", "only-here")])
    a_run(tmp_path, "cluster", "distributed", [case("rest", "both"), case("api", "only-there")])
    html = render_index(tmp_path).read_text()
    assert sorted(rows(html)) == [
        "api tests.t::only-there",
        "rest tests.t::both",
        "rest tests.t::only-here",
    ]
    row = html[html.index('data-test="api tests.t::only-there"') :].split("</tr>")[0]
    assert '<span class="outcome absent">absent</span>' in row
    assert "1 test ran only all-on-one; 1 test ran only distributed" in html


def test_an_earlier_attempt_is_a_retry_of_its_test_never_a_row(tmp_path: Path) -> None:
    a_run(
        tmp_path,
        "single",
        "all-on-one",
        [case("rest", "flaky", "retried"), case("rest", "flaky"), case("rest", "steady")],
    )
    a_run(tmp_path, "cluster", "distributed", [case("rest", "flaky"), case("rest", "steady")])
    html = render_index(tmp_path).read_text()
    assert rows(html) == ["rest tests.t::flaky", "rest tests.t::steady"]
    assert (
        'passed-with-retries</span> <span class="took">500 ms</span> <small>1 retry</small>' in html
    )
    assert "1 test needed retries or saw transport errors only all-on-one" in html


def test_a_pass_the_ledger_flagged_is_not_a_plain_pass() -> None:
    record = RunRecord("r1", "single", "s.yaml", "broker", "all-on-one", "2026")
    record.ledger.flagged = [
        FlaggedTestRecord("rest", "h1", "tests/t.py::test_x", "passed-with-transport-errors", 1)
    ]
    record.tests_file = TESTS_FILE
    (row,) = comparison.matrix_rows(
        [
            comparison.Entry(
                record, [TestCase("rest", "h1", "tests.t", "test_x", "passed", 1.0, 1)], ""
            )
        ]
    )
    assert row.cells[0].outcome == "passed-with-transport-errors"


def test_hostile_names_and_messages_are_shown_literally(tmp_path: Path) -> None:
    hostile = TestCase(
        "rest",
        "h1",
        "<script>alert(1)</script>",
        "{{7*7}}\x1b[31m",
        "failed",
        0.2,
        1,
        message='\x1b[31mboom</td>"><img src=x onerror=alert(2)>',
    )
    broken = b'{"layer": "rest", "host": "h1", "name": "bad-\xff\xfe", "status": "passed"}\n'
    a_run(tmp_path, "single", "all-on-one", [hostile], extra_lines=broken)
    a_run(tmp_path, "cluster", "distributed", [case("rest", "x")])
    html = render_index(tmp_path).read_text()
    assert "<script>alert" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;::{{7*7}}\\x1b[31m" in html
    assert "\x1b" not in html and ">49<" not in html
    assert "bad-\ufffd\ufffd" in html  # invalid UTF-8: replaced, the row still shown
    summary = render_summary(tmp_path).read_text()
    assert "`rest <script>alert(1)</script>::{{7*7}}\\x1b[31m`" in summary
    assert "\x1b" not in summary


def test_an_interrupted_run_with_missing_layers_renders(tmp_path: Path) -> None:
    a_run(
        tmp_path,
        "single",
        "all-on-one",
        [case("unit", "u"), case("rest", "r")],
        layers=[layer("unit", 3.0), layer("rest", 10.0)],
    )
    cut = a_run(
        tmp_path,
        "cluster",
        "distributed",
        [case("unit", "u", host="h3")],
        layers=[layer("unit", 3.0, status="interrupted", hosts=["h3"])],
        verdict="interrupted",
    )
    cut.interrupted = InterruptRecord("SIGINT", "layers", "unit")
    RunStore(tmp_path / "runs" / cut.run_id).write_record(cut)
    html = render_index(tmp_path).read_text()
    assert '<span class="verdict interrupted">interrupted</span>' in html
    assert "Stopped by SIGINT during step layers, layer unit." in html
    rest = html[html.index('<td class="name">rest</td>') :].split("</tr>")[0]
    assert '<td colspan="4" class="meta">not run</td>' in rest
    assert "1 test ran only all-on-one" in html


def test_a_run_stopped_before_it_reached_a_host_renders(tmp_path: Path) -> None:
    early = a_run(tmp_path, "cluster", "distributed", [], layers=[], verdict="interrupted")
    early.hosts = []
    RunStore(tmp_path / "runs" / early.run_id).write_record(early)
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    html = render_index(tmp_path).read_text()
    distributed = html[html.index('data-topology="distributed"') :]
    assert "hosts not recorded in this run" in distributed.split("</section>")[0]
    assert "1 test ran only all-on-one" in html


def test_a_run_that_stopped_before_any_layer_ran_no_test_it_recorded_them(
    tmp_path: Path,
) -> None:
    stopped = a_run(tmp_path, "cluster", "distributed", layers=[], verdict="error")
    stopped.command, stopped.readiness_version = "invoke readiness --inventory=cluster", "4.0"
    RunStore(tmp_path / "runs" / stopped.run_id).write_record(stopped)
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    html = render_index(tmp_path).read_text()
    (row,) = re.findall(r'<tr data-test="rest tests.t::a"[^>]*>.*?</tr>', html, re.S)
    assert '<span class="outcome absent">absent</span>' in row and "not-recorded" not in row
    assert "1 test ran only all-on-one" in html
    assert "not recorded" not in html.split('id="tests"')[1].split("</section>")[0]
    assert "older record" not in html and "older record" not in render_summary(tmp_path).read_text()


def test_a_run_whose_junit_cannot_be_read_is_not_recorded_and_not_called_older(
    tmp_path: Path,
) -> None:
    lost = [LayerRecord("rest", "client", ["h4"], "failed", 1.0, junit=["junit/rest/h4.xml"])]
    unreadable = a_run(tmp_path, "cluster", "distributed", layers=lost, verdict="not-ready")
    unreadable.command = "invoke readiness --inventory=cluster"
    RunStore(tmp_path / "runs" / unreadable.run_id).write_record(unreadable)
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    html = render_index(tmp_path).read_text()
    (row,) = re.findall(r'<tr data-test="rest tests.t::a"[^>]*>.*?</tr>', html, re.S)
    assert '<span class="outcome not-recorded">not recorded</span>' in row
    assert "; not compared test by test: the JUnit files of distributed could not be read" in html
    assert "older record" not in html and "predates per-test files" not in html


def test_a_setup_layer_is_shown_as_a_step_not_as_zero_tests(tmp_path: Path) -> None:
    steps = [layer("migrate", 4.0, 0, setup=True), layer("rest", 10.0, 1)]
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")], layers=steps)
    a_run(tmp_path, "cluster", "distributed", [case("rest", "a")], layers=steps)
    html = render_index(tmp_path).read_text()
    migrate = html[html.index('<td class="name">migrate</td>') :].split("</tr>")[0]
    assert migrate.count("setup step, no tests") == 2 and "0/0" not in migrate
    assert '<g class="bar setup passed">' in html  # and a step of its own in the timeline


def test_a_record_of_an_older_schema_renders_with_what_it_has(tmp_path: Path) -> None:
    old = a_run(tmp_path, "single", "all-on-one")  # no tests file, as schema 3 wrote
    data = json.loads((tmp_path / "runs" / old.run_id / "run.json").read_text())
    data["schema"] = "readiness.run/3"
    for key in ("network", "tests_file", "junit_file", "command", "project", "inputs"):
        data.pop(key)
    for entry in data["layers"]:
        entry.pop("start_s"), entry.pop("setup")
        entry["junit"] = ["junit/rest/h1.xml"]  # stored then, unreadable now
    data["database_links"] = {"h1": "socket"}
    (tmp_path / "runs" / old.run_id / "run.json").write_text(json.dumps(data))
    a_run(tmp_path, "cluster", "distributed", [case("rest", "a")])
    html = render_index(tmp_path).read_text()
    assert 'data-topology="all-on-one"' in html
    assert "all-on-one: test cases not recorded" in html
    assert "all-on-one: timeline not recorded" in html
    assert "network not recorded in this run: connections derived from the roles" in html
    assert "server \u2192 database: Unix socket" in html  # inside h1's box: it never crosses
    assert (
        "all-on-one: test cases not recorded: the JUnit files of its layers could not be read"
        in html
    )
    assert (
        "Not compared test by test: the JUnit files of all-on-one could not be read "
        "(an older record)"
    ) in html


def test_the_page_asks_for_nothing_over_the_network(tmp_path: Path) -> None:
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a", "failed")], verdict="not-ready")
    a_run(tmp_path, "cluster", "distributed", [case("rest", "a")])
    html = render_index(tmp_path).read_text()
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?//|url\(\s*["']?//""", html)
    assert "<link" not in html and "@import" not in html and "<script src" not in html
    assert "@media print" in html  # and it prints without the filter box


def test_the_transport_of_both_topologies_is_side_by_side(tmp_path: Path) -> None:
    """(Was test_report's index test: all-on-one now comes first, whatever the names.)"""
    for inventory, topology in (("single", "all-on-one"), ("cluster", "distributed")):
        record = a_run(tmp_path, inventory, topology, [case("rest", "a")])
        led = record.ledger
        led.collected = True
        led.resets = [
            AttributionRecord(
                "rest", None, None, None, "10.0.0.5:41002", "10.0.0.4:8000", None,
                "none", "h1", "injected", "high", ["no sender counter moved"],
            )
        ]  # fmt: skip
        led.errors = [
            AttributionRecord(
                "rest", "t.py::a", 1, "ECONNRESET", "10.0.0.5:41000", "10.0.0.4:8000", None,
                "server", "h1", "closed-with-unread-data", "high", ["h1 TcpExt.TCPAbortOnClose +1"],
            )
        ]  # fmt: skip
        led.by_mechanism = {"closed-with-unread-data": 1, "injected": 1}
        led.flagged = [FlaggedTestRecord("rest", "h1", "t.py::a", "passed-with-retries", 2)]
        led.finding = f"{topology}: 1 reset sent by no host's stack"
        RunStore(tmp_path / "runs" / record.run_id).write_record(record)
    html = render_index(tmp_path).read_text()
    transport = html[html.index('<section id="transport">') :]
    assert transport.index("all-on-one: 1 reset") < transport.index("distributed: 1 reset")
    assert transport.count("<th>injected</th><td>1</td>") == 2
    assert transport.count("<th>tests passed with retries</th><td>1</td>") == 2
    assert transport.count("<th>sent by the server&#39;s socket on h1</th><td>1</td>") == 2
    assert transport.count("<th>sent by no host&#39;s TCP stack (firewall or middlebox)</th>") == 2


def overflow_reset(i: int, server: str, abort: int = 1) -> AttributionRecord:
    """A connection the full accept queue of ``server`` reset (FINDINGS 1b)."""
    client, app = f"10.0.0.5:{41000 + i}", "10.0.0.4:8000"
    return AttributionRecord(
        "burst-60", None, None, "ECONNRESET", client, app, RstRecord(app, client, 1.0 + i),
        "server", server, "accept-queue-overflow", "high",
        [f"{server} TcpExt.EmbryonicRsts +8", f"{server} tcp_abort_on_overflow={abort}"],
    )  # fmt: skip


def overflow_timeout(i: int, server: str) -> AttributionRecord:
    return AttributionRecord(
        "burst-60", None, None, "ETIMEDOUT", f"10.0.0.5:{42000 + i}", "10.0.0.4:8000", None,
        "server", server, "accept-queue-overflow", "medium",
        ["a timeout, not a reset", f"{server} tcp_abort_on_overflow=0"],
    )  # fmt: skip


def a_burst_run(
    root: Path,
    topology: str,
    *,
    abort: int,
    resets: int = 0,
    timeouts: int = 0,
    slow: int = 0,
    overflows: int = 0,
) -> RunRecord:
    """A run of one burst of 60 against a serial server: with ``abort`` the lab set
    tcp_abort_on_overflow=1 (``--faults=abort-on-overflow``)."""
    inventory = "single" if topology == "all-on-one" else "cluster"
    record = a_run(root, inventory, topology, [case("rest", "a")])
    server = "h1" if topology == "all-on-one" else "h3"
    led = record.ledger
    led.collected = True
    led.errors = [overflow_reset(i, server) for i in range(resets)]
    led.errors += [overflow_timeout(i, server) for i in range(timeouts)]
    led.finding = f"{topology}: its own finding"
    record.counters = {
        "burst-60": {server: CounterRecord(delta={"TcpExt.ListenOverflows": overflows})}
    }
    errors = {"ECONNRESET": resets, "ETIMEDOUT": timeouts}
    record.bursts = [
        BurstRecord(
            "burst-60", "h1" if topology == "all-on-one" else "h4", "http://10.0.0.4:8000/", 60,
            60 - resets - timeouts, {k: n for k, n in errors.items() if n}, slow=slow,
        )
    ]  # fmt: skip
    record.fingerprints = {
        server: FingerprintRecord(
            "gunicorn", "10.0.0.4:8000", "1 worker", False, "socket", tcp_abort_on_overflow=abort
        )
    }
    if abort:
        record.faults = [FaultRecord("abort-on-overflow", {}, [server], applied=True)]
    RunStore(root / "runs" / record.run_id).write_record(record)
    return record


def transport_of(root: Path) -> str:
    html = render_index(root).read_text()
    return html[html.index('<section id="transport">') :].split("</section>")[0]


def test_one_sentence_tops_the_transport_with_each_runs_finding_below(tmp_path: Path) -> None:
    a_burst_run(tmp_path, "all-on-one", abort=1, resets=8, slow=9, overflows=304)
    a_burst_run(tmp_path, "distributed", abort=1)
    transport = transport_of(tmp_path)
    sentence = (
        "all-on-one with --faults=abort-on-overflow: 8 resets in a burst of 60, sent by the "
        "server socket on h1, accept-queue overflow with tcp_abort_on_overflow=1; "
        "distributed with --faults=abort-on-overflow: no resets in a burst of 60, "
        "no accept-queue overflow"
    )
    top = f'<p id="transport-across" class="finding">{sentence}</p>'
    assert top in transport
    assert transport.index(top) < transport.index('<div class="transport-side">')
    assert transport.index("all-on-one: its own finding") < transport.index(
        "distributed: its own finding"
    )
    assert f"## Transport across the topologies\n\n{sentence}" in (
        render_summary(tmp_path).read_text().replace("\\", "")
    )


def test_the_negative_control_pair_says_the_queue_overflowed_without_a_reset(
    tmp_path: Path,
) -> None:
    a_burst_run(tmp_path, "all-on-one", abort=0, timeouts=3, slow=12, overflows=73)
    a_burst_run(tmp_path, "distributed", abort=0, slow=2, overflows=9)
    runs = comparison.shown(stored_runs(tmp_path / "runs"), None)
    view = comparison.compare(comparison.entries(runs, tmp_path), ALARMING)
    assert view.transport == (
        "all-on-one: no resets in a burst of 60, although the server's accept queue "
        "overflowed 73 times (ListenOverflows on h1) with tcp_abort_on_overflow=0: "
        "12 slow requests and 3 timeouts; distributed: no resets in a burst of 60, although "
        "the server's accept queue overflowed 9 times (ListenOverflows on h3) with "
        "tcp_abort_on_overflow=0: 2 slow requests"
    )


def test_several_causes_are_counted_and_other_layers_kept_apart(tmp_path: Path) -> None:
    single = a_burst_run(tmp_path, "all-on-one", abort=1, resets=6, overflows=40)
    single.ledger.resets = [
        AttributionRecord(
            layer, None, None, None, f"10.0.0.5:{43000 + i}", "10.0.0.4:8000", None,
            "none", "h1", "injected", "high", [],
        )
        for i, layer in enumerate(["burst-60", "burst-60", "rest"])
    ]  # fmt: skip
    single.ledger.errors.append(
        replace(overflow_timeout(0, "h1"), errno="REMOTE_CLOSED", mechanism="unknown")
    )
    RunStore(tmp_path / "runs" / single.run_id).write_record(single)
    a_burst_run(tmp_path, "distributed", abort=0)
    runs = comparison.in_topology_order(stored_runs(tmp_path / "runs"))
    sides = [comparison.Side(run.record, run.record.topology, "", True) for run in runs]
    assert comparison.transport_sentence(sides) == (
        "all-on-one with --faults=abort-on-overflow: 8 resets in a burst of 60 and 1 in the "
        "other layers: 6 sent by the server socket on h1 (accept-queue overflow with "
        "tcp_abort_on_overflow=1), 3 not sent by any host's TCP stack (a middlebox or "
        "firewall), 1 other transport error; distributed: no resets in a burst of 60, "
        "no accept-queue overflow"
    )


def test_no_transport_sentence_without_two_runs_or_a_ledger(tmp_path: Path) -> None:
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    assert 'id="transport-across"' not in transport_of(tmp_path)
    a_run(tmp_path, "cluster", "distributed", [case("rest", "a")])
    assert 'id="transport-across"' not in transport_of(tmp_path)  # neither collected one
    view = comparison.compare(
        comparison.entries(stored_runs(tmp_path / "runs"), tmp_path), ALARMING
    )
    assert view.transport is None


def a_repeated_run(root: Path, topology: str, rates: list[PassRateRecord]) -> RunRecord:
    inventory = "single" if topology == "all-on-one" else "cluster"
    record = a_run(root, inventory, topology, [case("rest", "a")])
    record.repeat = 3
    record.pass_rates = rates
    RunStore(root / "runs" / record.run_id).write_record(record)
    return record


def test_each_repeated_run_has_its_strip_side_by_side(tmp_path: Path) -> None:
    a_repeated_run(
        tmp_path,
        "all-on-one",
        [
            PassRateRecord("rest", "h1", "t.py::steady", 1, 3, 3, []),
            PassRateRecord("rest", "h1", "t.py::noisy", 2, 3, 2, [2, 3]),
            PassRateRecord("rest", "h1", "t.py::flaky", 3, 3, 2, []),
        ],
    )
    a_repeated_run(
        tmp_path, "distributed", [PassRateRecord("rest", "h4", "t.py::noisy", 2, 3, 3, [])]
    )
    transport = transport_of(tmp_path)
    repeats = transport[transport.index('<h3 id="repeats">') :]
    strips = re.findall(r'<div class="repeat-strip" data-topology="([^"]+)">', repeats)
    assert strips == ["all-on-one", "distributed"]
    single, cluster = repeats.split('<div class="repeat-strip"')[1:]
    assert "3 passes of 3 test(s): 1 passed in every pass; 1 saw transport errors" in single
    assert "t.py::steady" not in single  # only where something happened
    noisy = single[single.index("t.py::noisy") :].split("</tr>")[0]
    assert noisy.count('class="moved"') == 2
    assert '<td></td><td class="moved" title="transport error in pass 2">error</td>' in noisy
    assert '<tr class="failed"><td>3</td>' in single  # flaky: failed a pass, no transport error
    assert re.sub(r"\s+", "", single).count('<trclass="per-pass"><thcolspan="3">') == 1
    assert '<td>0</td><td class="moved">1</td><td class="moved">1</td>' in single
    assert "No test saw a transport error or failed in any pass." in cluster


def test_a_run_that_did_not_repeat_says_so_beside_the_one_that_did(tmp_path: Path) -> None:
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    a_repeated_run(
        tmp_path, "distributed", [PassRateRecord("rest", "h4", "t\x1b[31m<b>", 2, 3, 2, [1])]
    )
    repeats = transport_of(tmp_path)
    assert "ran its client layers once (no <code>--repeat</code>)" in repeats
    assert "t\\x1b[31m&lt;b&gt;" in repeats and "<b>" not in repeats


def test_no_strip_when_no_run_repeated(tmp_path: Path) -> None:
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    a_run(tmp_path, "cluster", "distributed", [case("rest", "a")])
    assert 'id="repeats"' not in transport_of(tmp_path)


def test_a_long_strip_is_cut_and_points_at_the_runs_report(tmp_path: Path) -> None:
    rates = [
        PassRateRecord("rest", "h1", f"t.py::t{i}", i, 3, 3, [1])
        for i in range(comparison.STRIP_ROWS + 5)
    ]
    record = a_repeated_run(tmp_path, "all-on-one", rates)
    strip = comparison.repeat_strip(record)
    assert strip is not None and len(strip.rows) == comparison.STRIP_ROWS
    assert strip.left_out == 5 and strip.per_pass == (comparison.STRIP_ROWS + 5, 0, 0)
    assert "and 5 more in <a href=" in transport_of(tmp_path)


def test_counters_that_moved_and_alarm_come_first_the_still_ones_fold(tmp_path: Path) -> None:
    single = a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    single.counters = {
        "rest": {
            "h1": CounterRecord(
                delta={"Tcp.ActiveOpens": 40, "TcpExt.ListenOverflows": 3, "Tcp.RetransSegs": 0}
            )
        }
    }
    RunStore(tmp_path / "runs" / single.run_id).write_record(single)
    cluster = a_run(tmp_path, "cluster", "distributed", [case("rest", "a")])
    cluster.counters = {
        "rest": {
            "h3": CounterRecord(delta={"TcpExt.ListenOverflows": 0, "Tcp.ActiveOpens": 2}),
            "h4": CounterRecord(delta={"TcpExt.ListenOverflows": 0, "Tcp.ActiveOpens": 38}),
        }
    }
    RunStore(tmp_path / "runs" / cluster.run_id).write_record(cluster)
    view = comparison.compare(
        comparison.entries(stored_runs(tmp_path / "runs"), tmp_path), ALARMING
    )
    order = [(row.counter, row.moved) for row in view.counters]
    assert order == [
        ("TcpExt.ListenOverflows", True),
        ("Tcp.ActiveOpens", True),
        ("Tcp.RetransSegs", False),
    ]
    html = render_index(tmp_path).read_text()
    assert '<td class="moved">+3</td><td>0</td>' in html
    assert "+40</td><td>+40 <small>(h3 +2, h4 +38)</small></td>" in html
    still = html[html.index('<details class="still">') :]
    assert "1 counter(s) that did not move" in still and "Tcp.RetransSegs" in still
    assert "rest TcpExt.ListenOverflows: all-on-one h1 +3; distributed none" in (
        render_summary(tmp_path).read_text()
    )


# --------------------------------------------------------------------------- pictures


def test_the_diagram_draws_only_the_connections_that_cross_the_network() -> None:
    record = RunRecord("r", "cluster", "c.yaml", "broker", "distributed", "2026")
    record.hosts = [*CLUSTER_HOSTS, HostRecord("h5", "10.0.0.6", ["server", "db"], "lab")]
    record.network = NetworkRecord(
        listens=[ListenRecord("h3", "application server", 8000, "10.0.0.4")],
        flows=[
            FlowRecord("h4", "h3", "client -> server", 8000, "tcp", True),
            FlowRecord("h3", "h2", "server -> database", 3306, "tcp", True),
            FlowRecord("h5", "h5", "server -> database", None, "socket", False),
            FlowRecord("control", "h3", "control -> ssh", 22, "tcp", True),
        ],
    )
    drawing = svg.topology(record)
    assert [box.name for box in drawing.boxes] == ["h4", "h3", "h5", "h2"]  # as requests go
    assert [edge.label for edge in drawing.edges] == [
        "client \u2192 server :8000",
        "server \u2192 database :3306",
    ]
    h3 = drawing.boxes[1]
    assert "listens :8000 (application server)" in h3.lines
    assert "server \u2192 database: Unix socket" in drawing.boxes[2].lines
    assert drawing.notes == ("control \u2192 ssh :22 (control \u2192 h3)",)
    assert all(box.x + box.w <= drawing.width for box in drawing.boxes)


def test_the_timeline_puts_both_runs_on_one_time_scale() -> None:
    fast = RunRecord("a", "single", "s.yaml", "broker", "all-on-one", "2026")
    fast.hosts = SINGLE_HOSTS
    fast.steps = [StepRecord("layers", "ok", 10.0, start_s=5.0)]
    fast.layers = [layer("rest", 10.0, start_s=5.0)]
    fast.deploy = [
        DeployRecord("h1", "db", "ok", 2.0, start_s=1.0),
        DeployRecord("h1", "server", "ok", 2.0, start_s=1.5),  # at once: a row of its own
    ]
    slow = RunRecord("b", "cluster", "c.yaml", "broker", "distributed", "2026")
    slow.hosts = CLUSTER_HOSTS
    slow.layers = [layer("rest", 20.0, start_s=5.0, hosts=["h4"])]
    chart = svg.timeline([fast, slow], ["all-on-one", "distributed"])
    assert [lane.label for lane in chart.lanes] == [
        "all-on-one", "h1", "", "distributed", "h2", "h3", "h4",
    ]  # fmt: skip
    bars = {(bar.kind, round(bar.y)): bar for bar in chart.bars}
    rest_fast = next(b for b in chart.bars if b.kind == "layer" and b.y == chart.lanes[1].y)
    rest_slow = next(b for b in chart.bars if b.kind == "layer" and b.y == chart.lanes[6].y)
    assert rest_slow.w == 2 * rest_fast.w and rest_slow.x == rest_fast.x
    assert rest_slow.x + rest_slow.w == svg.LABEL_W + svg.CHART_W  # the longest ends the scale
    deploys = sorted(bar.y for bar in chart.bars if bar.kind == "deploy")
    assert deploys == [chart.lanes[1].y, chart.lanes[2].y]
    assert len(bars) == 5 and chart.missing == ()


def a_timed_run(*spans: tuple[float, float]) -> RunRecord:
    """An all-on-one run whose steps start and last as given (start_s, duration_s)."""
    record = RunRecord("a", "single", "s.yaml", "broker", "all-on-one", "2026")
    record.hosts = SINGLE_HOSTS
    record.steps = [StepRecord(f"step{i}", "ok", d, start_s=s) for i, (s, d) in enumerate(spans)]
    return record


def test_a_bar_whose_time_is_not_a_time_is_left_out_with_a_note() -> None:
    nan, inf = float("nan"), float("inf")
    broken = [(nan, 1.0), (1.0, inf), (inf, 1.0), (-5.0, 1.0), (1.0, -1.0), (3.6e8, 1.0)]
    chart = svg.timeline([a_timed_run((5.0, 10.0), *broken, (1e13, 1.0))], ["all-on-one"])
    (bar,) = chart.bars
    assert bar.x + bar.w == svg.LABEL_W + svg.CHART_W  # the one real bar sets the scale
    assert chart.notes == (
        "all-on-one: 7 bars not drawn: a start or duration that is not a time within 7 days "
        "of the run's start",
    )
    assert [tick.label for tick in chart.ticks] == [f"{t} s" for t in range(0, 15, 2)]


def test_a_run_whose_every_bar_is_broken_is_said_so_not_called_old() -> None:
    chart = svg.timeline([a_timed_run((float("nan"), 1.0))], ["all-on-one"])
    assert chart.bars == () and chart.missing == () and len(chart.notes) == 1


def test_the_time_axis_has_at_most_twelve_round_ticks_whatever_the_span() -> None:
    for span in (0.4, 7.0, 11.0, 59.0, 3600.0, 86_400.0, 6.9 * 86_400):
        ticks = svg.timeline([a_timed_run((0.0, span))], ["all-on-one"]).ticks
        assert 1 <= len(ticks) <= 12, (span, len(ticks))
        assert ticks[-1].x <= svg.LABEL_W + svg.CHART_W + 1e-6
    days = svg.timeline([a_timed_run((0.0, 6.9 * 86_400))], ["all-on-one"]).ticks
    assert [tick.label for tick in days[:3]] == ["0 h", "24 h", "48 h"]


def test_an_absurd_time_in_a_stored_record_keeps_the_index_small(tmp_path: Path) -> None:
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")], layers=[layer("rest", 10.0)])
    far = a_run(tmp_path, "cluster", "distributed", [case("rest", "a", host="h4")])
    far.steps = [StepRecord("layers", "ok", 10.0, start_s=3.6e8)]
    far.deploy = [DeployRecord("h4", "client", "ok", float("inf"), start_s=float("nan"))]
    RunStore(tmp_path / "runs" / far.run_id).write_record(far)  # json writes NaN, Infinity
    html = render_index(tmp_path).read_text()
    assert len(html) < 200_000 and html.count('<line class="tick"') <= 12
    assert "distributed: 2 bars not drawn" in html


# --------------------------------------------------------------------------- which runs


def test_the_index_compares_the_newest_run_with_the_other_topology_of_its_suite(
    tmp_path: Path,
) -> None:
    a_run(tmp_path, "single", "all-on-one", started="2026-01-01T01:00:00Z")
    a_run(tmp_path, "provoke", "all-on-one", started="2026-01-01T02:00:00Z", suite="provoke")
    other = a_run(tmp_path, "cluster", "distributed", started="2026-01-01T03:00:00Z")
    runs = stored_runs(tmp_path / "runs")
    picked = comparison.pick_pair(runs)
    assert [run.record.inventory for run in picked] == ["single", "cluster"]
    assert [r.record.inventory for r in comparison.not_compared(runs, picked)] == ["provoke"]
    assert picked[1].record.run_id == other.run_id


def test_named_runs_are_compared_all_on_one_first(tmp_path: Path) -> None:
    a_run(tmp_path, "cluster", "distributed", [case("rest", "a", "failed")], verdict="not-ready")
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")], started="2026-02-01T00:00:00Z")
    old_single, cluster = (
        next(r for r in stored_runs(tmp_path / "runs") if r.record.topology == t)
        for t in ("all-on-one", "distributed")
    )
    html = render_index(tmp_path, (cluster, old_single)).read_text()
    assert f'<a href="runs/{old_single.dir.name}/report.html">' in html
    assert "The two runs named with <code>invoke report --compare</code>" in html
    summary = render_summary(tmp_path, (cluster, old_single)).read_text()
    assert summary.startswith(
        "# readiness: single (all-on-one) ready vs cluster (distributed) not-ready\n"
    )
    assert "- `rest tests.t::a`: all-on-one passed (500 ms), distributed failed (500 ms)" in summary


def test_other_inventories_are_linked_by_their_directory(tmp_path: Path) -> None:
    a_run(tmp_path, "single", "all-on-one")
    a_run(tmp_path, "cluster", "distributed", started="2026-01-02T00:00:00Z")
    other = a_run(tmp_path, "provoke", "all-on-one", suite="provoke")
    runs = tmp_path / "runs"
    shutil.move(runs / other.run_id, runs / "provoke copy")  # its run.json keeps its run id
    html = render_index(tmp_path).read_text()
    others = html[html.index('<section id="others">') :].split("</section>")[0]
    assert '<a href="runs/provoke%20copy/report.html">provoke</a>' in others
    assert f"runs/{other.run_id}/" not in html


# --------------------------------------------------------------------------- summary.md


def test_the_summary_says_what_differs_for_a_ticket(tmp_path: Path) -> None:
    a_run(
        tmp_path,
        "single",
        "all-on-one",
        [case("rest", "a", "failed", message="ConnectionResetError: [Errno 104]\nmore")],
        verdict="not-ready",
    )
    a_run(tmp_path, "cluster", "distributed", [case("rest", "a", host="h4")])
    text = render_summary(tmp_path).read_text()
    assert text.splitlines()[:3] == [
        "# readiness: single (all-on-one) not-ready vs cluster (distributed) ready",
        "",
        "All-on-one is not-ready, distributed ready; 1 test fails only all-on-one.",
    ]
    assert "## all-on-one: single is not-ready" in text and "- layer 'rest' not-ready" in text
    assert "| rest | passed, 2/2 passed, 10.0 s | passed, 2/2 passed, 10.0 s | 1.0x |" in text
    assert (
        "- `rest tests.t::a`: all-on-one failed (500 ms), distributed passed (500 ms): "
        "`ConnectionResetError: [Errno 104]`"
    ) in text


def test_the_summary_of_one_run_and_of_none(tmp_path: Path) -> None:
    assert render_summary(tmp_path).read_text().startswith("# readiness: no runs yet\n\nNo run yet")
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a")])
    lines = render_summary(tmp_path).read_text().splitlines()
    assert lines[0] == "# readiness: single (all-on-one) ready"
    assert (
        lines[2] == "Only single (all-on-one) has run: no distributed run to compare it with yet."
    )
    html = render_index(tmp_path).read_text()
    assert html.count('class="topology"') == 1 and rows(html) == ["rest tests.t::a"]


HOSTILE = "<img src=x onerror=alert(1)>"
LINK = "[a](javascript:alert(1))"


def test_no_record_data_becomes_markup_in_the_summary(tmp_path: Path) -> None:
    steps = [layer("*x*_y_", 3.0), layer("rest", 10.0)]
    bad = a_run(tmp_path, HOSTILE, "all-on-one", [case("rest", "a")], suite=LINK, layers=steps)
    bad.reasons = [LINK, "# heading", "1. a list", "- a bullet", "![i](x) ~~s~~ `c` | d \\"]
    RunStore(tmp_path / "runs" / bad.run_id).write_record(bad)
    a_run(tmp_path, "single", "all-on-one", [case("rest", "a", "failed")], verdict="not-ready")
    pair = stored_runs(tmp_path / "runs")
    text = render_summary(tmp_path, (pair[0], pair[1])).read_text()
    first = "# readiness: &lt;img src=x onerror=alert\\(1\\)&gt; (all-on-one) ready"
    assert text.startswith(first + " vs single (all-on-one) not-ready\n")
    assert "<" not in text and "](" not in text and "*x*" not in text and "_y_" not in text
    assert "- \\[a\\]\\(javascript:alert\\(1\\)\\)" in text  # a reason, shown literally
    assert "suite \\[a\\]\\(javascript:alert\\(1\\)\\)" in text
    assert "- \\# heading" in text and "- 1\\. a list" in text and "- \\- a bullet" in text
    assert "- \\!\\[i\\]\\(x\\) \\~\\~s\\~\\~ \\`c\\` \\| d \\\\" in text
    differs = text.splitlines()[2]  # the inventories tell the runs apart: they are escaped
    assert differs == (
        "&lt;img src=x onerror=alert\\(1\\)&gt; is ready, single not-ready; "
        "1 test fails only in single."
    )
    assert "| \\*x\\*\\_y\\_ |" in text  # a layer name in the table
