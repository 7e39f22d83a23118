"""The history of the store: every run newest first, and the tests that flip between
cases of the same code and conditions (never between commits, inventories, suites or
fault profiles), or that pass only after a retry."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.history import FlakyTest, history
from orchestrator.junit import TestCounts
from orchestrator.record import (
    FaultRecord,
    InterruptRecord,
    LayerRecord,
    ProjectRecord,
    RunRecord,
)
from orchestrator.report import render_history
from orchestrator.store import RunStore
from orchestrator.testcases import TESTS_FILE, TestCase, to_line

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40


@dataclass
class Run:
    """A stored run as the history reads it, counting how often its cases were read."""

    record: RunRecord
    tests: list[TestCase] = field(default_factory=list)
    reads: int = 0
    directory: str = ""  # its directory's name, when not its run id (a copied run)

    @property
    def dir(self) -> Path:
        return Path("reports/runs") / (self.directory or self.record.run_id)

    def cases(self) -> list[TestCase]:
        self.reads += 1
        return self.tests


def a_record(
    run_id: str, started: str, inventory: str = "single", commit: str | None = COMMIT_A
) -> RunRecord:
    record = RunRecord(run_id, inventory, f"{inventory}.yaml", "s", "all-on-one", started)
    record.project = ProjectRecord("/srv/app", commit, dirty=False) if commit else None
    record.verdict, record.reasons = "ready", []
    return record


def case(status: str, name: str = "test_a", layer: str = "api", host: str = "h1") -> TestCase:
    return TestCase(layer, host, "t.Api", name, status, 0.1, 1)


def a_run(run_id: str, started: str, *tests: TestCase, **where: str | None) -> Run:
    return Run(a_record(run_id, started, **where), list(tests))  # type: ignore[arg-type]


def flaky_ids(runs: list[Run]) -> list[tuple[str, str, list[str], list[str]]]:
    """Each flaky test: its layer, id, and the runs it passed and failed in."""
    found: list[FlakyTest] = history(runs).flaky
    return [
        (t.layer, t.test, [r.run_id for r in t.passed_runs], [r.run_id for r in t.failed_runs])
        for t in found
    ]


def repeated(run: Run, hosts: list[str] | None = None) -> Run:
    """The run as ``--repeat=2`` records it: layer ``api``, then its second pass ``api.2``."""
    run.record.repeat = 2
    run.record.layers = [
        LayerRecord("api", "client", hosts or ["h1"], "passed", 1.0),
        LayerRecord("api.2", "client", hosts or ["h1"], "passed", 1.0, repeat=2),
    ]
    return run


def test_runs_come_newest_first_whatever_order_they_are_given_in() -> None:
    runs = [
        a_run("r2", "2026-01-02T00:00:00Z"),
        a_run("r3", "2026-01-03T00:00:00Z"),
        a_run("r1", "2026-01-01T00:00:00Z"),
    ]
    assert [row.run_id for row in history(runs).runs] == ["r3", "r2", "r1"]


def test_a_row_has_its_commit_duration_and_the_counts_of_its_testing_layers() -> None:
    record = a_record("r1", "2026-01-01T10:00:00Z")
    record.finished_at = "2026-01-01T10:02:30Z"
    record.layers = [
        LayerRecord("migrate", "server", ["h1"], "passed", 1.0, setup=True),
        LayerRecord("api", "client", ["h1"], "failed", 5.0, TestCounts(10, 7, 2, 1, 0)),
        LayerRecord("ui", "client", ["h1"], "passed", 5.0, TestCounts(3, 2, 0, 0, 1)),
    ]
    record.interrupted = InterruptRecord("SIGTERM")
    (row,) = history([Run(record)]).runs
    assert (row.commit, row.duration_s, row.steps, row.interrupted) == (COMMIT_A, 150.0, 1, True)
    assert row.tests == TestCounts(13, 9, 2, 1, 1)
    assert row.report == "runs/r1/report.html"


def test_an_unfinished_run_has_no_duration() -> None:
    (row,) = history([a_run("r1", "2026-01-01T00:00:00Z")]).runs
    assert row.duration_s is None


def test_a_test_that_passed_and_failed_at_one_commit_is_flaky() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("passed"), case("passed", "test_b")),
        a_run("r2", "2026-01-02", case("failed"), case("passed", "test_b")),
        a_run("r3", "2026-01-03", case("passed"), case("passed", "test_b")),
    ]
    assert flaky_ids(runs) == [("api", "t.Api::test_a", ["r1", "r3"], ["r2"])]
    assert history(runs).compared == 3


def test_passing_at_one_commit_and_failing_at_another_is_a_change_not_a_flake() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("passed"), commit=COMMIT_A),
        a_run("r2", "2026-01-02", case("failed"), commit=COMMIT_B),
    ]
    assert flaky_ids(runs) == []


def test_runs_of_two_inventories_are_never_compared() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("passed"), inventory="single"),
        a_run("r2", "2026-01-02", case("error"), inventory="cluster"),
    ]
    assert flaky_ids(runs) == [] and history(runs).compared == 0


def test_uncommitted_changes_are_other_code_than_their_commit() -> None:
    clean, dirty = (
        a_run("r1", "2026-01-01", case("passed")),
        a_run("r2", "2026-01-02", case("failed")),
    )
    assert dirty.record.project is not None
    dirty.record.project.dirty = True
    assert flaky_ids([clean, dirty]) == []


def test_runs_without_a_commit_are_compared_with_none_and_their_tests_not_read() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("passed"), commit=None),
        a_run("r2", "2026-01-02", case("failed"), commit=None),
        a_run("r3", "2026-01-03", case("failed"), commit=COMMIT_B),
    ]
    page = history(runs)
    assert page.flaky == [] and page.no_commit == 2 and page.compared == 0
    assert [run.reads for run in runs] == [0, 0, 0]


def test_a_repeated_layers_passes_are_the_same_layer() -> None:
    first = repeated(a_run("r1", "2026-01-01", case("passed"), case("passed", layer="api.2")))
    second = repeated(a_run("r2", "2026-01-02", case("passed"), case("failed", layer="api.2")))
    assert flaky_ids([first, second]) == [("api", "t.Api::test_a", ["r1", "r2"], ["r2"])]
    (flaky,) = history([first, second]).flaky
    assert (flaky.passed, flaky.failed) == (3, 1)


def test_a_pass_after_a_retry_is_a_pass_that_is_remembered() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("retried"), case("passed")),
        a_run("r2", "2026-01-02", case("failed")),
        a_run("r3", "2026-01-03", case("retried"), case("passed", name="test_b")),
    ]
    (flaky,) = history(runs).flaky
    lists = (flaky.passed_runs, flaky.failed_runs, flaky.retried_runs)
    assert [[r.run_id for r in runs] for runs in lists] == [["r1"], ["r2"], ["r1"]]
    assert (flaky.passed, flaky.passed_after_retry, flaky.failed) == (0, 1, 1)


def test_outcomes_are_counted_per_host_and_skips_count_as_neither() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("passed", host="h1"), case("failed", host="h2")),
        a_run("r2", "2026-01-02", case("passed", host="h1"), case("passed", host="h2")),
        a_run("r3", "2026-01-03", case("skipped", "test_b")),
        a_run("r4", "2026-01-04", case("passed", "test_b")),
    ]
    assert flaky_ids(runs) == [("api", "t.Api::test_a", ["r1", "r2"], ["r1"])]
    (flaky,) = history(runs).flaky
    assert (flaky.passed, flaky.failed) == (3, 1)


def test_failing_on_one_host_and_passing_on_another_in_one_run_is_flaky() -> None:
    alone = a_run("r1", "2026-01-01", case("passed", host="h1"), case("failed", host="h2"))
    alone.record.layers = [LayerRecord("api", "client", ["h1", "h2"], "failed", 1.0)]
    assert flaky_ids([alone]) == [("api", "t.Api::test_a", ["r1"], ["r1"])]


def test_failing_in_one_repeat_pass_and_passing_in_another_of_one_run_is_flaky() -> None:
    alone = repeated(a_run("r1", "2026-01-01", case("failed"), case("passed", layer="api.2")))
    assert flaky_ids([alone]) == [("api", "t.Api::test_a", ["r1"], ["r1"])]
    assert history([alone]).compared == 0  # no other run: compared within itself only


def test_a_run_without_a_commit_is_still_flaky_within_itself() -> None:
    alone = repeated(
        a_run("r1", "2026-01-01", case("passed"), case("failed", layer="api.2"), commit=None)
    )
    (flaky,) = history([alone]).flaky
    assert (flaky.code.commit, flaky.passed, flaky.failed) == ("", 1, 1)


def test_passing_only_after_a_retry_in_every_run_is_flaky() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("retried"), case("passed"), case("passed", "test_b")),
        a_run("r2", "2026-01-02", case("retried"), case("passed"), case("passed", "test_b")),
    ]
    (flaky,) = history(runs).flaky
    assert (flaky.test, flaky.passed, flaky.passed_after_retry, flaky.failed) == (
        "t.Api::test_a", 0, 2, 0,
    )  # fmt: skip
    assert [r.run_id for r in flaky.retried_runs] == ["r1", "r2"]


def test_a_lone_run_that_retried_an_attempt_is_read_and_one_that_cannot_flake_is_not() -> None:
    retrying = a_run("r1", "2026-01-01", case("retried"), case("passed"))
    retrying.record.layers = [
        LayerRecord("api", "client", ["h1"], "passed", 1.0, TestCounts(1, 1, retried=1))
    ]
    plain = a_run("r2", "2026-01-02", case("failed"), inventory="cluster")
    plain.record.layers = [LayerRecord("api", "client", ["h1"], "failed", 1.0)]
    assert [t.code.inventory for t in history([retrying, plain]).flaky] == ["single"]
    assert (retrying.reads, plain.reads) == (1, 0)


def test_a_failure_provoked_by_faults_is_no_flake() -> None:
    calm = a_run("r1", "2026-01-01", case("passed"))
    provoked = a_run("r2", "2026-01-02", case("failed"))
    provoked.record.faults = [FaultRecord("reset"), FaultRecord("latency")]
    assert flaky_ids([calm, provoked]) == []
    again = a_run("r3", "2026-01-03", case("passed"))
    again.record.faults = [FaultRecord("latency"), FaultRecord("reset")]  # any order
    (flaky,) = history([calm, provoked, again]).flaky
    assert flaky.code.faults == ("latency", "reset")
    assert [r.run_id for r in flaky.failed_runs] == ["r2"]


def test_runs_of_two_suites_are_never_compared() -> None:
    broker = a_run("r1", "2026-01-01", case("passed"))
    provoke = a_run("r2", "2026-01-02", case("failed"))
    provoke.record.suite = "provoke"
    assert flaky_ids([broker, provoke]) == []


def test_the_most_often_failing_test_comes_first() -> None:
    runs = [
        a_run(f"r{i}", f"2026-01-0{i}", case(a, "test_a"), case(b, "test_b"))
        for i, (a, b) in enumerate(
            [("passed", "failed"), ("failed", "failed"), ("passed", "passed")], start=1
        )
    ]
    assert [t for _, t, _, _ in flaky_ids(runs)] == ["t.Api::test_b", "t.Api::test_a"]


def test_a_run_is_linked_by_its_directory_not_its_record_run_id() -> None:
    run = a_run("r1", "2026-01-01", case("passed"))
    copied = Run(a_record("r1", "2026-01-02"), [case("failed")], directory="r1 copy#2")
    page = history([run, copied])
    assert [row.report for row in page.runs] == [
        "runs/r1%20copy%232/report.html",
        "runs/r1/report.html",
    ]
    (flaky,) = page.flaky
    assert [r.report for r in flaky.failed_runs] == ["runs/r1%20copy%232/report.html"]


# ------------------------------------------------------------------------------- the page


def stored(
    root: Path,
    started: str,
    statuses: dict[str, str],
    commit: str = COMMIT_A,
    faults: tuple[str, ...] = (),
) -> str:
    store = RunStore.create(root / "runs", "single")
    record = a_record(store.run_id, started, commit=commit)
    record.faults = [FaultRecord(name) for name in faults]
    lines = [to_line(case(status, name)) for name, status in statuses.items()]
    store.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in lines), TESTS_FILE)
    record.tests_file = TESTS_FILE
    store.write_record(record)
    return store.run_id


def test_the_page_lists_every_run_newest_first_and_the_flaky_tests(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>{{7*7}}\x1b[0m"
    old = stored(tmp_path, "2026-01-01T00:00:00Z", {hostile: "passed", "test_b": "passed"})
    new = stored(tmp_path, "2026-01-02T00:00:00Z", {hostile: "failed", "test_b": "passed"})
    other = stored(tmp_path, "2026-01-03T00:00:00Z", {"test_b": "failed"}, commit=COMMIT_B)
    html = render_history(tmp_path).read_text()
    table = html[html.index('<table id="history">') : html.index("</table>")]
    assert re.findall(r'<tr data-run="([^"]+)">', table) == [other, new, old]
    assert f'<a href="runs/{new}/report.html">{new}</a>' in table
    assert '<span class="verdict ready">ready</span>' in table and "aaaaaaaaaaaa" in table
    flaky = html[html.index('<table id="flaky">') :].split("</table>")[0]
    assert flaky.count("<tr>") == 2  # the header and the one flaky test
    assert "t.Api::&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}\\x1b[0m" in flaky
    assert "test_b" not in flaky and "<script" not in html and "\x1b" not in html
    assert "2 run(s) had another run of the same conditions" in html


def test_an_empty_store_has_a_history_too(tmp_path: Path) -> None:
    html = render_history(tmp_path).read_text()
    assert "No runs yet." in html and "No flaky test." in html
    assert (tmp_path / "history.html").is_file()


def test_the_page_links_runs_by_directory_and_names_suite_and_faults(tmp_path: Path) -> None:
    stored(tmp_path, "2026-01-01T00:00:00Z", {"test_a": "passed"}, faults=("reset",))
    copied = stored(tmp_path, "2026-01-02T00:00:00Z", {"test_a": "failed"}, faults=("reset",))
    shutil.move(tmp_path / "runs" / copied, tmp_path / "runs" / "copied run")
    html = render_history(tmp_path).read_text()
    flaky = html[html.index('<table id="flaky">') :].split("</table>")[0]
    link = f'<a href="runs/copied%20run/report.html">{copied}</a>'
    assert link in flaky and link in html[: html.index('<table id="flaky">')]
    assert f"runs/{copied}/" not in html
    assert "<td>single</td><td>s</td><td>reset</td>" in flaky
