"""One layer on its hosts: statuses from exit codes and JUnit, evidence kept, secrets scrubbed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.exceptions import HostError
from orchestrator.junit import TestCounts
from orchestrator.layers import (
    JUNIT_MAX_BYTES,
    LayerOutcome,
    LayerRun,
    layer_script,
    output_tail,
    run_layer,
)
from orchestrator.layout import Layout
from orchestrator.output import RESULT_TAIL_BYTES, LayerOutput
from orchestrator.record import RunRecord
from orchestrator.report import render_run
from orchestrator.store import RunStore
from orchestrator.suite import Layer
from orchestrator.transport import FakeTransport, Result

LAYER = Layer("unit", "server", "python -m pytest", ("database",), 60, "stop")
PASSING = b'<testsuite><testcase name="a"/><testcase name="b"/></testsuite>'
FAILING = b'<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>'


def _run(
    tmp_path: Path,
    fake: FakeTransport,
    layer: Layer = LAYER,
    secrets: tuple[str, ...] = ("sup3rs3cret",),
) -> tuple[RunStore, LayerOutcome]:
    store = RunStore.create(tmp_path / "runs", "inv")
    outcome = run_layer(
        store,
        layer,
        {fake.name: fake},
        {fake.name: Layout("/srv/r")},
        venv_digest="abc",
        base_url="http://10.0.0.3:8000",
        env={},
        secrets=list(secrets),
        run_id="run1",
    )
    return store, outcome


def test_exit_zero_and_junit_is_a_pass_with_counts(tmp_path: Path) -> None:
    fake = FakeTransport("h1")
    fake.files["/srv/r/results/run1/unit.xml"] = PASSING
    store, outcome = _run(tmp_path, fake)
    record = outcome.to_record()
    assert record.status == "passed" and record.per_host["h1"].status == "passed"
    assert record.tests == TestCounts(total=2, passed=2, failed=0, errors=0, skipped=0)
    assert (store.dir / record.junit[0]).read_bytes() == PASSING
    assert (store.dir / "logs" / "h1" / "unit.log").is_file()


def test_failing_tests_fail_the_layer(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("pytest", exit_code=1)
    fake.files["/srv/r/results/run1/unit.xml"] = FAILING
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == "failed"
    assert outcome.tests.failed == 1


def test_a_timeout_is_its_own_status_with_a_reason(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("pytest", timed_out=True)
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == "timeout"
    assert outcome.reason is not None and "timed out after 60s" in outcome.reason


def test_exit_zero_without_junit_is_a_failure_not_a_pass(tmp_path: Path) -> None:
    _, outcome = _run(tmp_path, FakeTransport("h1"))
    assert outcome.status == "failed"
    assert outcome.reason is not None and "no JUnit XML" in outcome.reason


def test_secrets_in_output_never_reach_the_log(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("pytest", stdout="password=sup3rs3cret")
    fake.files["/srv/r/results/run1/unit.xml"] = PASSING
    store, _ = _run(tmp_path, fake)
    log = (store.dir / "logs" / "h1" / "unit.log").read_text()
    assert "sup3rs3cret" not in log and "[redacted]" in log


def test_server_layers_get_settings_and_secrets_client_layers_do_not() -> None:
    layout = Layout("/srv/r")
    server = layer_script(
        LAYER, layout, venv="/srv/r/venvs/a", junit_path="/srv/r/x.xml", base_url=None, env={}
    )
    assert ". /srv/r/etc/secrets.env" in server
    assert "DJANGO_SETTINGS_MODULE=readiness_settings" in server
    assert "cd /srv/r/app" in server
    client_layer = Layer("rest", "client", "pytest it", ("server",), 60, "stop")
    client = layer_script(
        client_layer,
        layout,
        venv="/srv/r/venvs/b",
        junit_path="/srv/r/y.xml",
        base_url="http://h:1",
        env={"A": "b c"},
    )
    assert "secrets.env" not in client and "DJANGO_SETTINGS_MODULE" not in client
    assert "export READINESS_BASE_URL=http://h:1" in client
    assert "export A='b c'" in client
    assert client.rstrip().endswith("pytest it")


def test_a_junit_file_without_tests_is_not_a_pass(tmp_path: Path) -> None:
    fake = FakeTransport("h1")
    fake.files["/srv/r/results/run1/unit.xml"] = b"<testsuite/>"
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == "failed"
    assert outcome.reason is not None and "no test" in outcome.reason


def test_a_lost_host_is_an_error_not_a_failure(tmp_path: Path) -> None:
    class Lost(FakeTransport):
        def run(self, script: str, **kw: object) -> Result:
            raise HostError(self.name, "connection closed without an exit status")

    _, outcome = _run(tmp_path, Lost("h1"))
    assert outcome.status == "error"


# --------------------------------------------------------------------------- bounded output

SECRET = "sup3rs3cret"


def test_the_layer_streams_its_output_into_a_sink_and_keeps_only_a_tail(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("pytest", stdout="x" * 200_000, stderr="boom\n")
    fake.files["/srv/r/results/run1/unit.xml"] = PASSING
    _run(tmp_path, fake)
    sink = fake.calls[0].sink
    assert isinstance(sink, LayerOutput)
    assert sink.tail_bytes == RESULT_TAIL_BYTES < 200_000


def test_a_huge_output_keeps_its_head_and_tail_and_the_record_says_it_was_cut(
    tmp_path: Path,
) -> None:
    body = "".join(f"line {i:07d}\n" for i in range(300_000))  # 3.6 MB, cap 1 MiB
    stdout = f"FIRST LINE {SECRET}\n{body}LAST LINE {SECRET}\n"
    fake = FakeTransport("h1").on("pytest", stdout=stdout, stderr="the end\n", chunk_size=65_521)
    fake.files["/srv/r/results/run1/unit.xml"] = PASSING
    layer = replace(LAYER, max_output_mb=1)
    store, outcome = _run(tmp_path, fake, layer)
    host = outcome.to_record().per_host["h1"]
    log_path = store.dir / "logs" / "h1" / "unit.log"
    assert host.log == "logs/h1/unit.log" and outcome.to_record().logs == [host.log]
    log = log_path.read_text()
    scrubbed = len(stdout.replace(SECRET, "[redacted]")) + len("the end\n")
    assert host.output_truncated and host.output_bytes == scrubbed
    assert host.output_dropped_bytes == scrubbed - (1 << 20)
    assert log.startswith("$ python -m pytest\n# exit code 0, 0.0s\n# output truncated: ")
    assert f"{host.output_dropped_bytes} of {scrubbed} bytes dropped" in log
    assert "FIRST LINE [redacted]\nline 0000000\n" in log
    assert "\nLAST LINE [redacted]\n\n--- stderr ---\nthe end\n\n" in log
    assert f"[readiness: {host.output_dropped_bytes} bytes of stdout dropped here" in log
    assert "line 0150000" not in log and SECRET not in log
    assert len(log.encode()) < (1 << 20) + 1000  # the cap, plus the header and notes
    assert sorted(p.name for p in log_path.parent.iterdir()) == ["unit.log"]  # no parts left


def test_the_report_says_truncated_next_to_a_cut_log(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("pytest", stdout="y" * (1 << 20) + "z" * 100)
    fake.files["/srv/r/results/run1/unit.xml"] = PASSING
    store, outcome = _run(tmp_path, fake, replace(LAYER, max_output_mb=1))
    record = RunRecord("run1", "inv", "inv.yaml", "suite", "single", "2025-01-01T00:00:00Z")
    record.layers.append(outcome.to_record())
    store.write_record(record)
    html = render_run(store.dir).read_text()
    assert '<a href="logs/h1/unit.log">log</a> <small title="100 of 1048676 bytes' in html
    assert ">truncated</small>" in html


def test_output_under_the_cap_is_kept_whole(tmp_path: Path) -> None:
    stdout = "".join(f"{i}\n" for i in range(100_000))
    fake = FakeTransport("h1").on("pytest", stdout=stdout, stderr="err\n", chunk_size=1000)
    fake.files["/srv/r/results/run1/unit.xml"] = PASSING
    store, outcome = _run(tmp_path, fake)
    host = outcome.to_record().per_host["h1"]
    assert not host.output_truncated and host.output_dropped_bytes == 0
    log = (store.dir / "logs" / "h1" / "unit.log").read_text()
    assert log.endswith(f"--- stdout ---\n{stdout}\n--- stderr ---\nerr\n\n")


def test_a_secret_split_between_chunks_never_reaches_the_log(tmp_path: Path) -> None:
    for size in range(1, len(SECRET) + 2):
        fake = FakeTransport("h1").on(
            "pytest", stdout=f"a{SECRET}b{SECRET}{SECRET}", stderr=SECRET, chunk_size=size
        )
        store, _ = _run(tmp_path / str(size), fake)
        log = (store.dir / "logs" / "h1" / "unit.log").read_text()
        assert SECRET not in log, size
        assert "a[redacted]b[redacted][redacted]\n--- stderr ---\n[redacted]\n" in log


def test_a_host_lost_mid_layer_keeps_what_it_printed(tmp_path: Path) -> None:
    class LostMidway(FakeTransport):
        def run(self, script: str, **kw: Any) -> Result:
            kw["sink"].write("stdout", f"collected 3 items {SECRET}\n".encode())
            raise HostError(self.name, "connection closed without an exit status")

    store, outcome = _run(tmp_path, LostMidway("h1"))
    host = outcome.to_record().per_host["h1"]
    assert outcome.status == "error" and host.log == "logs/h1/unit.log"
    log = (store.dir / "logs" / "h1" / "unit.log").read_text()
    assert "# no exit code (connection closed without an exit status)" in log
    assert "collected 3 items [redacted]" in log


# --------------------------------------------------------------------------- issue 12: steps

STEP = Layer(
    "collectstatic", "server", "python manage.py collectstatic", (), 60, "stop", junit=False
)
TRACEBACK = "".join(f"traceback line {i}\n" for i in range(1, 21))


def test_a_step_that_exits_zero_passes_without_junit_and_is_setup(tmp_path: Path) -> None:
    fake = FakeTransport("h1")  # it writes no JUnit XML, and none is asked for
    _, outcome = _run(tmp_path, fake, STEP)
    record = outcome.to_record()
    assert (record.status, record.setup, record.reason, record.junit) == ("passed", True, None, [])
    assert outcome.runs[0].tail == ()


def test_a_failing_step_keeps_its_exit_code_and_output_tail_in_the_reason(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on(
        "collectstatic",
        exit_code=1,
        stdout="copying\n",
        stderr=f"{TRACEBACK}ValueError: {SECRET}\n",
    )
    _, outcome = _run(tmp_path, fake, STEP)
    record = outcome.to_record()
    assert (record.status, record.setup) == ("failed", True)
    assert record.reason == "h1: exit code 1: ValueError: [redacted]"
    (run,) = outcome.runs
    assert run.tail == (*(f"traceback line {i}" for i in range(7, 21)), "ValueError: [redacted]")


def test_a_step_that_times_out_says_the_timeout_and_keeps_its_tail(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("collectstatic", timed_out=True, stdout="still copying\n")
    _, outcome = _run(tmp_path, fake, STEP)
    assert (outcome.status, outcome.reason) == ("timeout", "timed out after 60s")
    assert outcome.runs[0].tail == ("still copying",)


def test_a_layer_without_junit_says_where_it_was_expected_and_to_make_it_a_step(
    tmp_path: Path,
) -> None:
    _, outcome = _run(tmp_path, FakeTransport("h1"))
    assert outcome.status == "failed" and not outcome.setup
    assert outcome.reason == (
        "layer unit wrote no JUnit XML at $READINESS_JUNIT (h1: cannot read "
        "/srv/r/results/run1/unit.xml: no such file); if it runs no tests, make it a step: "
        "'- step: unit'"
    )


def test_a_layer_that_crashed_before_writing_junit_says_its_exit_and_last_line_not_the_hint(
    tmp_path: Path,
) -> None:
    fake = FakeTransport("h1").on(
        "unit", exit_code=1, stdout="ImportError: No module named 'shop.settings'\n"
    )
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == "failed"
    assert outcome.reason == (
        "h1: exit code 1 and no JUnit XML: ImportError: No module named 'shop.settings'"
    )
    assert "make it a step" not in (outcome.reason or "")


def test_garbled_junit_is_no_reason_to_make_the_layer_a_step(tmp_path: Path) -> None:
    fake = FakeTransport("h1")
    fake.files["/srv/r/results/run1/unit.xml"] = b"<testsuite"
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == "failed" and outcome.reason is not None
    assert outcome.reason.startswith("h1: its JUnit XML could not be read or kept: ")
    assert "step" not in outcome.reason


def test_the_output_tail_is_what_a_terminal_would_show_of_the_logs_end(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(
        "$ cmd\n# exit code 1, 0.1s\n--- stdout ---\n"
        "10%\r50%\r100%\nwindows line\r\n\x1b[31mred\x1b[0m\n" + "w" * 400 + "\n\n"
        "--- stderr ---\nboom\n\n"
    )
    assert output_tail(log) == ("100%", "windows line", "?[31mred?[0m", "w" * 297 + "...", "boom")
    assert output_tail(log, 2) == ("w" * 297 + "...", "boom")
    assert output_tail(tmp_path / "missing.log") == ()


def test_the_output_tail_of_a_huge_log_is_its_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("$ cmd\n--- stdout ---\n" + "".join(f"line {i}\n" for i in range(1_000_000)))
    assert output_tail(log, 3) == ("line 999997", "line 999998", "line 999999")


def test_a_layer_killed_by_its_timeout_before_writing_junit_is_not_told_to_be_a_step(
    tmp_path: Path,
) -> None:
    _, outcome = _run(tmp_path, FakeTransport("h1").on("pytest", timed_out=True))
    assert (outcome.status, outcome.reason) == ("timeout", "timed out after 60s")


# --------------------------------------------------------------------------- streamed JUnit

JUNIT_AT = "/srv/r/results/run1/unit.xml"
# A secret XML escapes, in the spellings JUnit writers give it: in an attribute (&quot;),
# in text (the quote raw), and with the quote as a character reference.
XML_SECRET = 'db&pa<ss"wd'
XML_JUNIT = (
    b'<testsuite><testcase name="a"><failure message="connect as db&amp;pa&lt;ss&quot;wd">'
    b'dsn=mysql://u:db&amp;pa&lt;ss"wd@h/ again db&amp;pa&lt;ss&#34;wd</failure></testcase>'
    b'<testcase name="b"/></testsuite>'
)


def _junit_files(store: RunStore) -> list[str]:
    root = store.dir / "junit"
    return (
        sorted(p.relative_to(store.dir).as_posix() for p in root.rglob("*"))
        if root.exists()
        else []
    )


def test_a_secret_cut_by_the_fetch_anywhere_never_reaches_the_stored_junit(
    tmp_path: Path,
) -> None:
    """The JUnit XML streams from the host in pieces; every piece size, from one byte to
    past the secret's longest spelling, cuts the escaped secret somewhere. None survives,
    the counts are the file's, and only the scrubbed copy is kept (mode 0600)."""
    assert XML_JUNIT.count(b"db&amp;pa&lt;ss") == 3
    for size in range(1, 40):
        fake = FakeTransport("h1", get_chunk=size).on("pytest", exit_code=1)
        fake.files[JUNIT_AT] = XML_JUNIT
        store, outcome = _run(tmp_path / str(size), fake, secrets=(XML_SECRET,))
        stored = store.dir / "junit" / "unit" / "h1.xml"
        text = stored.read_text()
        assert "pa&lt;ss" not in text and "pa<ss" not in text, size
        assert text.count("[redacted]") == 3, size
        assert outcome.tests == TestCounts(total=2, passed=1, failed=1), size
        assert _junit_files(store) == ["junit/unit", "junit/unit/h1.xml"], size
        assert stored.stat().st_mode & 0o777 == 0o600


def test_a_junit_xml_over_the_cap_is_refused_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """It was written, so it is no missing step: the reason says it is too large."""
    monkeypatch.setattr("orchestrator.layers.JUNIT_MAX_BYTES", len(PASSING) - 1)
    fake = FakeTransport("h1")
    fake.files[JUNIT_AT] = PASSING
    store, outcome = _run(tmp_path, fake)
    assert outcome.status == "failed" and outcome.tests == TestCounts()
    assert outcome.reason == (
        f"h1: its JUnit XML could not be read or kept: {JUNIT_AT} is larger than "
        f"{len(PASSING) - 1} bytes, the cap on fetching it"
    )
    assert _junit_files(store) == [] and outcome.to_record().junit == []


def test_the_junit_cap_is_generous_and_named() -> None:
    """256 MiB: far above a real suite's file, and what the message will say."""
    assert JUNIT_MAX_BYTES == 256 * 1024 * 1024


class BreaksMidway(FakeTransport):
    """Hands out the first half of the JUnit XML, then fails with ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__("h1")
        self.error = error

    def get_to(self, remote_path: str, out: Any, limit: int) -> int:
        out.write(PASSING[: len(PASSING) // 2])
        raise self.error


def test_a_fetch_that_breaks_midway_leaves_no_partial_file(tmp_path: Path) -> None:
    """The host went away with half the file sent: the half is not left as a .part, and
    the reason says what happened."""
    store, outcome = _run(tmp_path, BreaksMidway(HostError("h1", "connection lost")))
    assert outcome.status == "failed" and "connection lost" in (outcome.reason or "")
    assert _junit_files(store) == ["junit/unit"]  # the folder, no .part in it


def test_an_interrupted_fetch_leaves_no_partial_file(tmp_path: Path) -> None:
    """Ctrl-C while the file streams: the .part goes, the interrupt goes on."""
    store = RunStore.create(tmp_path / "runs", "inv")
    fake = BreaksMidway(KeyboardInterrupt())
    job = LayerRun(store, LAYER, {"h1": fake}, {"h1": Layout("/srv/r")}, "abc", None, {}, [], "r")
    with pytest.raises(KeyboardInterrupt):
        job.on_host("h1")
    assert _junit_files(store) == ["junit/unit"]


def test_junit_that_is_not_xml_or_is_empty_is_not_kept(tmp_path: Path) -> None:
    """As before the file streamed: a file that does not parse is not stored, and the
    parse error names the host's file, not the .part it was counted from."""
    for name, data in (("garbled", b"<testsuite><testcase"), ("empty", b"")):
        fake = FakeTransport("h1")
        fake.files[JUNIT_AT] = data
        store, outcome = _run(tmp_path / name, fake)
        assert (outcome.reason or "").startswith(
            f"h1: its JUnit XML could not be read or kept: h1:{JUNIT_AT}: not valid JUnit XML"
        ), name
        assert _junit_files(store) == ["junit/unit"], name


def test_a_missing_junit_leaves_no_trace_in_the_run_store(tmp_path: Path) -> None:
    """The .part file (and its folder) is created by the first byte, so a layer that
    wrote no JUnit XML leaves nothing in the run store, as before the file streamed."""
    store, outcome = _run(tmp_path, FakeTransport("h1"))
    assert outcome.reason is not None and "make it a step" in outcome.reason
    assert _junit_files(store) == []


def test_a_run_store_that_cannot_take_the_file_is_no_missing_junit(tmp_path: Path) -> None:
    """The control node's disk failing (here: a file where the folder goes) says the
    file could not be kept, never that the layer wrote none."""
    fake = FakeTransport("h1")
    fake.files[JUNIT_AT] = PASSING
    store = RunStore.create(tmp_path / "runs", "inv")
    store.path("junit").write_text("in the way")
    job = LayerRun(
        store, LAYER, {"h1": fake}, {"h1": Layout("/srv/r")}, "abc", None, {}, [], "run1"
    )
    run = job.on_host("h1")
    assert not run.no_junit and run.junit is None and run.status == "failed"
    assert (run.problem or "").startswith("its JUnit XML could not be read or kept: [Errno")


def test_a_stale_part_file_of_a_killed_run_is_replaced_not_appended_to(tmp_path: Path) -> None:
    """A .part a killed orchestrator left (another mode, longer): truncated, made 0600,
    and renamed into place; appending to it would make the file unparseable."""
    fake = FakeTransport("h1")
    fake.files[JUNIT_AT] = PASSING
    store = RunStore.create(tmp_path / "runs", "inv")
    stale = store.path("junit", "unit", "h1.xml.part")
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"<stale>" * 100)
    stale.chmod(0o644)
    job = LayerRun(
        store, LAYER, {"h1": fake}, {"h1": Layout("/srv/r")}, "abc", None, {}, [], "run1"
    )
    run = job.on_host("h1")
    assert run.tests == TestCounts(total=2, passed=2) and run.junit == "junit/unit/h1.xml"
    assert (store.dir / run.junit).read_bytes() == PASSING
    assert _junit_files(store) == ["junit/unit", "junit/unit/h1.xml"]
    assert (store.dir / run.junit).stat().st_mode & 0o777 == 0o600
