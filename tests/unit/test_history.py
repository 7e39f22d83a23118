"""The history of the store: every run newest first, and the tests that flip between
runs of the same code (never between commits, never between inventories)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.history import FlakyTest, history
from orchestrator.junit import TestCounts
from orchestrator.record import InterruptRecord, LayerRecord, ProjectRecord, RunRecord
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
    found: list[FlakyTest] = history(runs).flaky
    return [(t.layer, t.test, t.passed_runs, t.failed_runs) for t in found]


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
    first = a_run("r1", "2026-01-01", case("passed"), case("passed", layer="api.2"))
    second = a_run("r2", "2026-01-02", case("passed"), case("failed", layer="api.2"))
    for run in (first, second):
        run.record.layers = [
            LayerRecord("api", "client", ["h1"], "passed", 1.0),
            LayerRecord("api.2", "client", ["h1"], "passed", 1.0, repeat=2),
        ]
    assert flaky_ids([first, second]) == [("api", "t.Api::test_a", ["r1"], ["r2"])]


def test_a_pass_after_a_retry_is_a_pass_that_is_remembered() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("retried"), case("passed")),
        a_run("r2", "2026-01-02", case("failed")),
        a_run("r3", "2026-01-03", case("retried"), case("passed", name="test_b")),
    ]
    (flaky,) = history(runs).flaky
    assert (flaky.passed_runs, flaky.failed_runs, flaky.retried_runs) == (["r1"], ["r2"], ["r1"])


def test_a_test_failing_on_one_host_fails_the_run_and_skips_count_as_neither() -> None:
    runs = [
        a_run("r1", "2026-01-01", case("passed", host="h1"), case("failed", host="h2")),
        a_run("r2", "2026-01-02", case("passed", host="h1"), case("passed", host="h2")),
        a_run("r3", "2026-01-03", case("skipped", "test_b")),
        a_run("r4", "2026-01-04", case("passed", "test_b")),
    ]
    assert flaky_ids(runs) == [("api", "t.Api::test_a", ["r2"], ["r1"])]


def test_the_most_often_failing_test_comes_first() -> None:
    runs = [
        a_run(f"r{i}", f"2026-01-0{i}", case(a, "test_a"), case(b, "test_b"))
        for i, (a, b) in enumerate(
            [("passed", "failed"), ("failed", "failed"), ("passed", "passed")], start=1
        )
    ]
    assert [t for _, t, _, _ in flaky_ids(runs)] == ["t.Api::test_b", "t.Api::test_a"]


# ------------------------------------------------------------------------------- the page


def stored(root: Path, started: str, statuses: dict[str, str], commit: str = COMMIT_A) -> str:
    store = RunStore.create(root / "runs", "single")
    record = a_record(store.run_id, started, commit=commit)
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
    assert "2 run(s) had another run of the same code" in html


def test_an_empty_store_has_a_history_too(tmp_path: Path) -> None:
    html = render_history(tmp_path).read_text()
    assert "No runs yet." in html and "No flaky test." in html
    assert (tmp_path / "history.html").is_file()
