"""A run's report.html, rendered from its run directory only: the handoff to a sysadmin
(verdict, how to reproduce it, failing tests, hosts, network, files) and its transport
section. What the suite printed is data: it is shown literally, never as markup."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

from orchestrator.counters import WATCHED
from orchestrator.junit import TestCounts
from orchestrator.record import (
    AttributionRecord,
    BuildRecord,
    CaptureRecord,
    CounterRecord,
    DeployRecord,
    FingerprintRecord,
    FlaggedTestRecord,
    FlowRecord,
    HostRecord,
    InterruptRecord,
    LayerRecord,
    ListenRecord,
    NetworkRecord,
    PassRateRecord,
    PatchRecord,
    ProjectRecord,
    RstRecord,
    RunRecord,
    UserFileRecord,
)
from orchestrator.report import (
    render_history,
    render_index,
    render_run,
    render_summary,
    stored_runs,
)
from orchestrator.store import RunStore
from orchestrator.testcases import TESTS_FILE, TestCase, to_line


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


def test_the_repeat_strip_shows_a_test_name_as_it_is(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "runs", "single")
    record = RunRecord(store.run_id, "single", "single.yaml", "s", "all-on-one", "2026-01-01")
    record.repeat = 2
    record.pass_rates = [PassRateRecord("rest", "h1", "t.py::\x1b[31m<b>", 1, 2, 1, [2])]
    store.write_record(record)
    html = render_run(store.dir).read_text()
    repeats = html[html.index("Repeats:") :]
    assert "<td>t.py::\\x1b[31m&lt;b&gt;</td>" in repeats and "\x1b" not in repeats


# --------------------------------------------------------------------- the handoff page

HOSTILE = "<script>alert(1)</script>"
ANSI = "\x1b[31mred\x1b[0m"
INVALID_UTF8 = b'{"layer": "api", "host": "h3", "name": "bad\xff\xfe", "status": "failed"}\n'


def a_case(layer: str, host: str, name: str, status: str, **fields: Any) -> dict[str, object]:
    return to_line(TestCase(layer, host, "tests.test_api", name, status, 0.1, 1, **fields))


def write_cases(store: RunStore, lines: list[dict[str, object]], raw: bytes = b"") -> str:
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    store.write_bytes(body + raw, TESTS_FILE)
    return TESTS_FILE


def a_handoff(root: Path) -> tuple[RunStore, RunRecord]:
    """A distributed run as readiness 4 writes it: inputs, facts, packages, network, a
    setup step, a failing layer with hostile names, counters and logs."""
    store = RunStore.create(root / "runs", "cluster")
    r = RunRecord(
        store.run_id,
        "cluster",
        "inventories/cluster.yaml",
        "broker",
        "distributed",
        "2026-02-01T10:00:00Z",
        finished_at="2026-02-01T10:03:05Z",
    )
    r.verdict, r.reasons = "not-ready", ["layer api failed: 1 failed, 1 error"]
    r.command = "invoke readiness --inventory=cluster --suite=broker"
    r.readiness_version = "0.4.0"
    r.project = ProjectRecord("/srv/app", "0123456789abcdef0123", dirty=False)
    r.inputs = {"inventory": "inputs/inventory.yaml", "suite": "inputs/suite.yaml"}
    r.files = [
        UserFileRecord(
            "application.fixtures",
            "fixtures/known.json",
            "/srv/deploy/fixtures/known.json",
            "inventory",
            sha256="ab" * 32,
        ),
        UserFileRecord(
            "application.client.source", "it\u202e", "/srv/deploy/it", "inventory", "folder"
        ),
    ]
    store.write_text(
        "hosts:\n  h1: {address: 10.0.0.2, password: '[redacted]'}\n", "inputs", "inventory.yaml"
    )
    store.write_text("layers:\n  - name: migrate\n    junit: false\n", "inputs", "suite.yaml")
    r.hosts = [
        HostRecord(
            "h1",
            "10.0.0.2",
            ["db"],
            "ssh",
            {
                "os": "Debian GNU/Linux 12 (bookworm)",
                "kernel": "6.1.0-18-amd64",
                "cpus": "4",
                "memory_mb": "7936",
                "database_server": "11.1.2-MariaDB",
                "python": "3.11.2",
            },
        ),
        HostRecord(
            "h2",
            "10.0.0.3",
            ["server"],
            "ssh",
            {"os": "Debian GNU/Linux 12 (bookworm)", "python": "3.11.2", "python_venv": "3.11.2"},
        ),
        HostRecord("h3", "10.0.0.4", ["client"], "ssh", {}),
    ]
    r.build = BuildRecord(
        "a",
        "b",
        "wh/server",
        "wh/client",
        12.0,
        server_packages={"django": "4.2.11", "mysqlclient": "2.2.4"},
        client_packages={"pytest": "8.1.1"},
    )
    r.network = NetworkRecord(
        listens=[
            ListenRecord("h1", "database", 3306, "10.0.0.2"),
            ListenRecord("h2", "application server", 8000, "10.0.0.3"),
        ],
        flows=[
            FlowRecord("h2", "h1", "server -> database", 3306, crosses=True),
            FlowRecord("h3", "h2", "client -> server", 8000, crosses=True),
            FlowRecord("h2", "h2", "health check", 8000, crosses=False),
        ],
    )
    r.layers = [
        LayerRecord(
            "migrate",
            "server",
            ["h2"],
            "passed",
            3.0,
            logs=["logs/h2/migrate.log"],
            setup=True,
            start_s=20.0,
        ),
        LayerRecord(
            "api",
            "client",
            ["h3"],
            "failed",
            9.5,
            TestCounts(4, 2, 1, 1, 0),
            junit=["junit/api/h3.xml"],
            logs=["logs/h3/api.log"],
            start_s=24.0,
        ),
    ]
    r.tests_file = write_cases(
        store,
        [
            a_case("api", "h3", "test_ok", "passed"),
            a_case(
                "api",
                "h3",
                HOSTILE,
                "failed",
                message=f"{{{{7*7}}}} {ANSI}",
                kind="AssertionError",
                text="Traceback: line 1\n  assert 1 == 2",
            ),
            a_case("api", "h3", "test_db", "error", message="OperationalError: (2013, 'Lost')"),
            a_case("api", "h3", "test_flaky", "retried", message="first attempt"),
            a_case("api", "h3", "test_flaky", "passed"),
        ],
        raw=INVALID_UTF8 + b"not json\n",
    )
    r.junit_file = "junit.xml"
    store.write_text("<testsuites/>\n", "junit.xml")
    store.write_text("migrating\n", "logs", "h2", "migrate.log")
    store.write_text("<testsuite/>\n", "junit", "api", "h3.xml")
    r.counters = {"api": {h: CounterRecord(delta={k: 0 for k in WATCHED}) for h in ("h2", "h3")}}
    r.counters["api"]["h2"].delta["TcpExt.ListenOverflows"] = 7
    store.write_record(r)
    return store, r


def render(store: RunStore) -> str:
    return render_run(store.dir).read_text(encoding="utf-8")


def section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}">')
    return html[start : html.index("</section>", start)]


def text_of(html: str) -> str:
    """What a reader sees: tags gone, entities read, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_the_page_opens_with_the_verdict_then_how_to_reproduce(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    html = render(store)
    assert '<span class="verdict not-ready">not-ready</span>' in html
    order = [
        html.index(s)
        for s in (
            "layer api failed",
            'id="how"',
            'id="failing"',
            'id="layers"',
            'id="hosts"',
            'id="network"',
            'id="transport"',
            'id="counters"',
            'id="files"',
        )
    ]
    assert order == sorted(order)
    how = section(html, "how")
    assert '<code id="reproduce">invoke readiness --inventory=cluster --suite=broker</code>' in how
    assert "0.4.0" in how and "/srv/app" in how and "<code>0123456789abcdef0123</code>" in how
    assert "password: &#39;[redacted]&#39;" in how and "junit: false" in how
    # The user's files: which one was used, found where, holding what.
    assert "<code>fixtures/known.json</code></td><td>beside the inventory</td>" in how
    assert '<code title="' + "ab" * 32 + '">' + "ab" * 6 + "</code>" in how
    assert "\u202e" not in how  # a bidi override in a value is shown, never obeyed
    assert "4 test(s): 2 passed, 1 failed, 1 errors, 0 skipped; 1 setup step(s), 1 ok" in text_of(
        html
    )
    assert "3m 05s" in html


def test_failing_tests_show_their_messages_literally(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    failing = section(render(store), "failing")
    assert "tests.test_api::&lt;script&gt;alert(1)&lt;/script&gt;" in failing
    assert "{{7*7}} \\x1b[31mred\\x1b[0m" in failing and "49" not in failing
    assert "AssertionError" in failing and "assert 1 == 2" in failing
    assert "OperationalError: (2013, &#39;Lost&#39;)" in failing
    assert "bad\ufffd\ufffd" in failing  # invalid UTF-8 shown replaced, the rest still read
    assert "test_ok" not in failing and "first attempt" not in failing
    assert "1 failed attempt(s) that passed when re-run" in failing


def test_no_markup_or_template_from_the_suite_reaches_the_page(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    html = render(store)
    assert HOSTILE not in html and "<script" not in html and "\x1b" not in html


def test_a_setup_layer_is_a_step_not_zero_tests(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    layers = section(render(store), "layers")
    step = layers[layers.index("<td>migrate</td>") :].split("</tr>")[0]
    assert "step ok" in step and "runs no tests" in step and "<td>0</td>" not in step
    assert '<a href="logs/h2/migrate.log">log</a>' in step
    api = layers[layers.index("<td>api</td>") :].split("</tr>")[0]
    assert "<td>4</td><td>2</td><td>1</td><td>1</td><td>0</td>" in api
    assert '<a href="junit/api/h3.xml">junit</a>' in api and "+24.0s" in api


def test_hosts_show_what_a_sysadmin_needs_with_gaps_said(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    hosts = section(render(store), "hosts")
    row = {m[0]: m[1] for m in re.findall(r"<tr><th>([^<]+)</th>(.*?)</tr>", hosts)}
    assert row["OS"].count("Debian GNU/Linux 12 (bookworm)") == 2
    assert row["memory"].startswith("<td>7.8 GiB</td>")
    # Django is a fact of the server host, the database server of the db host only.
    assert row["Django"] == "<td>-</td><td>4.2.11</td><td>-</td>"
    assert row["database server"] == "<td>11.1.2-MariaDB</td><td>-</td><td>-</td>"
    assert row["kernel"].endswith('<td class="missing">not recorded</td>')
    assert "application virtualenv on h2: 2 packages, Django 4.2.11" in hosts
    assert "mysqlclient==2.2.4" in hosts and "pytest==8.1.1" in hosts


def test_the_network_says_which_connections_to_allow_between_hosts(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    network = text_of(section(render(store), "network"))
    assert "h2 (10.0.0.3) h1 (10.0.0.2) tcp/3306 server -> database" in network
    assert "h3 (10.0.0.4) h2 (10.0.0.3) tcp/8000 client -> server" in network
    assert "h1 database 10.0.0.2:3306" in network
    on_host = network[network.index("On the host") :]
    assert "health check on h2: loopback tcp/8000" in on_host


def test_counters_are_rows_what_moved_first_the_rest_folded(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    counters = section(render(store), "counters")
    table, folded = counters.split("<details>")
    assert "<th>counter</th><th>h2</th><th>h3</th>" in table
    assert '<th>TcpExt.ListenOverflows</th><td class="num moved">7</td><td class="num">0' in table
    assert table.count("<tr><th>Tcp") == 1
    assert f"{len(WATCHED) - 1} counter(s) that did not move" in folded


def test_every_file_of_the_run_is_linked_inside_it(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    files = section(render(store), "files")
    for path in (
        "tests.jsonl",
        "junit.xml",
        "run.json",
        "logs/h2/migrate.log",
        "junit/api/h3.xml",
        "inputs/suite.yaml",
    ):
        assert f'<a href="{path}">' in files
    assert 'href="report.html"' not in files


def test_no_page_makes_an_external_request(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    html = render(store) + render_history(tmp_path).read_text()
    assert "src=" not in html and "url(" not in html and "@import" not in html
    for target in re.findall(r'href="([^"]*)"', html):
        assert ":" not in target and not target.startswith("/"), target


def test_a_path_out_of_the_run_is_neither_read_nor_linked(tmp_path: Path) -> None:
    store, r = a_handoff(tmp_path)
    (tmp_path / "secret.txt").write_text("s3cret")
    r.inputs = {"inventory": "../../secret.txt", "suite": "/etc/passwd"}
    r.layers[1].logs = ["../../secret.txt", "javascript:alert(1)"]
    store.write_record(r)
    html = render(store)
    assert "s3cret" not in html and "root:" not in html
    assert 'href="../' not in html and 'href="javascript:' not in html
    assert "not inside the run directory: not shown" in section(html, "how")


def test_an_interrupted_run_shows_what_ran(tmp_path: Path) -> None:
    store, r = a_handoff(tmp_path)
    r.interrupted = InterruptRecord("SIGINT", step="layers", layer="api")
    r.finished_at, r.verdict, r.reasons = None, "error", ["interrupted by SIGINT"]
    r.layers = r.layers[:1]
    r.counters = {}
    store.write_record(r)
    html = render(store)
    assert "Stopped by SIGINT during step layers, layer api" in html
    assert "unfinished" in html and "No counters were recorded." in html
    assert "<td>api</td>" not in section(html, "layers")


def test_an_old_record_renders_with_what_it_lacks_said(tmp_path: Path) -> None:
    record = a_run(tmp_path, "single", "all-on-one")
    run_dir = tmp_path / "runs" / record.run_id
    data = json.loads((run_dir / "run.json").read_text())
    data["schema"] = "readiness.run/3"
    for key in (
        "command",
        "readiness_version",
        "project",
        "inputs",
        "network",
        "tests_file",
        "junit_file",
    ):
        data.pop(key)
    (run_dir / "run.json").write_text(json.dumps(data))
    html = render_run(run_dir).read_text()
    assert 'id="reproduce"' not in html and "command was not recorded" in html
    assert "inventory and suite as run were not recorded" in html
    assert "Test-by-test results were not recorded" in html
    assert "Ports and connections were not recorded" in html
    assert "tests.jsonl: not recorded" in html


def test_a_symlink_in_the_run_directory_is_not_listed(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    (tmp_path / "outside.log").write_text("s3cret")
    (store.dir / "logs" / "escape.log").symlink_to(tmp_path / "outside.log")
    (store.dir / "elsewhere").symlink_to(tmp_path)
    files = section(render(store), "files")
    assert "escape.log" not in files and "elsewhere" not in files
    assert '<a href="logs/h2/migrate.log">' in files


def test_thousands_of_failures_fold_and_end_in_the_files(tmp_path: Path) -> None:
    store, r = a_handoff(tmp_path)
    lines = [a_case("api", "h3", f"test_{i}", "failed", message=f"m{i}") for i in range(600)]
    r.tests_file = write_cases(store, lines)
    store.write_record(r)
    failing = section(render(store), "failing")
    shown, folded = failing.split("<details><summary>400 more failing test case(s)</summary>")
    assert shown.count('<tr class="failed">') == 100 and "test_99<" in shown
    assert folded.count('<tr class="failed">') == 400 and "test_499<" in folded
    assert "test_500<" not in failing
    assert 'And 100 more, not shown here: every case is in <a href="tests.jsonl">' in failing


def test_a_test_file_gone_missing_is_not_read_as_no_failures(tmp_path: Path) -> None:
    store, _ = a_handoff(tmp_path)
    (store.dir / TESTS_FILE).unlink()
    failing = section(render(store), "failing")
    assert "Test-by-test results were not recorded" in failing and "No test failed" not in failing


def test_a_record_nested_too_deep_is_skipped_never_breaking_the_store_pages(
    tmp_path: Path,
) -> None:
    good = a_run(tmp_path, "single", "all-on-one")
    deep = tmp_path / "runs" / "20260101T000000Z-deep"
    deep.mkdir()
    (deep / "run.json").write_text("[" * 200_000 + "]" * 200_000)  # RecursionError in json
    assert [run.record.run_id for run in stored_runs(tmp_path / "runs")] == [good.run_id]
    assert good.run_id in render_index(tmp_path).read_text()
    assert good.run_id in render_history(tmp_path).read_text()
    assert good.run_id in render_summary(tmp_path).read_text()


def test_the_deploy_table_says_what_built_each_hosts_virtualenvs(tmp_path: Path) -> None:
    store, r = a_handoff(tmp_path)
    r.deploy = [
        DeployRecord(
            "h2", "server", "ok", 3.2, ["app", "uv-0.9.30", "wheels-a"], installer="uv 0.9.30"
        ),
        DeployRecord("h3", "client", "ok", 9.1, ["wheels-b"], installer="pip"),
        DeployRecord("h1", "db", "ok", 1.3),
    ]
    store.write_record(r)
    deploy = text_of(section(render(store), "deploy"))
    assert "app, uv-0.9.30, wheels-a (virtualenvs built with uv 0.9.30)" in deploy
    assert "wheels-b (virtualenvs built with pip)" in deploy
    assert deploy.count("virtualenvs built with") == 2


def test_the_deploy_table_says_which_code_went_as_its_difference(tmp_path: Path) -> None:
    store, r = a_handoff(tmp_path)
    r.deploy = [
        DeployRecord("h2", "server", "ok", 0.3, ["app"], patched=[PatchRecord("app", 1, 0)]),
        DeployRecord("h3", "client", "ok", 0.4, ["client"]),
    ]
    store.write_record(r)
    deploy = text_of(section(render(store), "deploy"))
    assert "app (app sent as its difference: 1 file(s), 0 removed)" in deploy
    assert deploy.count("sent as its difference") == 1
