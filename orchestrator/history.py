"""The history of the run store, as data: what ``reports/history.html`` shows.

Two views, both rebuilt from the store on every render (nothing is kept by hand):

* every run, newest first, with its inventory, topology, commit, verdict, duration and
  test counts (from ``run.json``: cheap, no test file is read for it);
* the flaky tests: those that both passed and failed under the same conditions, counted
  case by case (each host, each ``--repeat`` pass), so a test that fails on one host and
  passes on another within one run is flaky too; and those that passed only after the
  suite's retry re-ran a failed attempt (intermittent by definition).

  Runs are only ever compared with runs of the same inventory, suite and ``--faults``
  (a failure the faults provoked on purpose is no flake) at the same commit of the
  application: a test that passes at one commit and fails at the next is a change, not
  a flake. A checkout with uncommitted changes is other code than its clean commit, so
  "dirty" is part of the key. A run whose commit was not recorded (an older record, a
  source that is not a git checkout) is compared with no other run, only within itself.

One pass over the cases (O(n)); the cases of a run are read only when another run of the
same key ran, or when the run alone could show a flake (several hosts or passes of a
layer, or retried attempts), so a store of many one-off runs reads few test files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from orchestrator.junit import TestCounts
from orchestrator.record import RunRecord
from orchestrator.testcases import TestCase

FAILING = frozenset({"failed", "error"})


class Stored(Protocol):
    """A run of the store (:class:`orchestrator.report.StoredRun`): its directory, its
    record, and its test cases read on demand."""

    @property
    def dir(self) -> Path: ...

    @property
    def record(self) -> RunRecord: ...

    def cases(self) -> list[TestCase]: ...


@dataclass(frozen=True)
class RunRow:
    """One run of the history table."""

    run_id: str
    inventory: str
    topology: str
    started_at: str
    verdict: str
    commit: str | None
    dirty: bool | None
    duration_s: float | None  # None: it never finished (or its times are unreadable)
    tests: TestCounts
    steps: int  # setup layers: steps, not tests
    interrupted: bool
    report: str  # href of its report, relative to reports/


@dataclass(frozen=True)
class RunRef:
    """A run a flaky test is listed with: its id, and the href of its report."""

    run_id: str
    report: str


@dataclass(frozen=True)
class Code:
    """What a run tested, and under what: runs are compared only when all of it is the
    same. ``faults``: the fault profiles it provoked, sorted; ``commit`` is "" when not
    recorded (such a run is compared with no other run, only within itself)."""

    inventory: str
    suite: str
    faults: tuple[str, ...]
    commit: str
    dirty: bool


@dataclass(frozen=True)
class FlakyTest:
    """A test that both passed and failed under one :class:`Code`, or that passed only
    after a retry. Counts are of cases (a host, a ``--repeat`` pass: each is one); runs
    are listed in store order, oldest first, and a run can be in several lists."""

    code: Code
    layer: str
    test: str
    passed: int  # cases that passed at their first attempt
    passed_after_retry: int  # cases that passed only after the retry re-ran a failed one
    failed: int
    passed_runs: list[RunRef]  # runs in which a case of it passed (either way)
    failed_runs: list[RunRef]
    retried_runs: list[RunRef]  # runs in which a case of it passed only after a retry


@dataclass(frozen=True)
class History:
    runs: list[RunRow]  # newest first
    flaky: list[FlakyTest]
    compared: int  # runs that had another run of the same code
    no_commit: int  # runs whose commit was not recorded: compared with no other run


def duration_s(record: RunRecord) -> float | None:
    """Seconds from start to finish; None while unfinished or when a time is unreadable."""
    if not record.finished_at:
        return None
    try:
        start = datetime.fromisoformat(record.started_at)
        end = datetime.fromisoformat(record.finished_at)
        return max(0.0, (end - start).total_seconds())
    except (TypeError, ValueError):
        return None


def totals(record: RunRecord) -> TestCounts:
    """The test counts of every layer that tests (setup layers are steps: no tests)."""
    total = TestCounts()
    for layer in record.layers:
        if not layer.setup:
            total = total + layer.tests
    return total


def report_href(directory: str) -> str:
    """A run's report, relative to ``reports/``, by the name of its directory (never its
    record's run id: a copied or renamed run directory keeps its run.json)."""
    return f"runs/{quote(directory)}/report.html"


def run_row(run: Stored) -> RunRow:
    record, project = run.record, run.record.project
    return RunRow(
        run_id=record.run_id,
        inventory=record.inventory,
        topology=record.topology,
        started_at=record.started_at,
        verdict=record.verdict,
        commit=project.commit if project else None,
        dirty=project.dirty if project else None,
        duration_s=duration_s(record),
        tests=totals(record),
        steps=sum(1 for layer in record.layers if layer.setup),
        interrupted=record.interrupted is not None,
        report=report_href(run.dir.name),
    )


def code_of(record: RunRecord) -> Code:
    """What a run tested, and under what (see :class:`Code`)."""
    project = record.project
    return Code(
        inventory=record.inventory,
        suite=record.suite,
        faults=tuple(sorted(fault.name for fault in record.faults)),
        commit=(project.commit or "") if project else "",
        dirty=bool(project.dirty) if project else False,
    )


def base_layers(record: RunRecord) -> dict[str, str]:
    """Layer name -> the suite's layer: ``--repeat`` names a client layer's later passes
    ``<layer>.<pass>``, and those are the same test of the same layer."""
    names = {}
    for layer in record.layers:
        suffix = f".{layer.repeat}"
        repeated = layer.repeat > 1 and layer.name.endswith(suffix)
        names[layer.name] = layer.name[: -len(suffix)] if repeated else layer.name
    return names


def may_flake_alone(record: RunRecord) -> bool:
    """Whether one run can show a flake by itself: a layer ran on several hosts or in
    several passes, or the retry re-ran an attempt (else its cases need not be read)."""
    return record.repeat > 1 or any(
        len(layer.hosts) > 1 or layer.repeat > 1 or layer.tests.retried > 0
        for layer in record.layers
        if not layer.setup
    )


TestKey = tuple[str, str]  # the suite's layer, test id


@dataclass
class Tally:
    """How the cases of each test went, by the suite's layer and test id: each host and
    ``--repeat`` pass is a case; a skipped case counts as nothing, and an earlier failed
    attempt is not a case (it makes its final pass one "after a retry")."""

    passed: dict[TestKey, int] = field(default_factory=dict)
    after_retry: dict[TestKey, int] = field(default_factory=dict)
    failed: dict[TestKey, int] = field(default_factory=dict)

    def add(self, other: Tally) -> None:
        for mine, theirs in (
            (self.passed, other.passed),
            (self.after_retry, other.after_retry),
            (self.failed, other.failed),
        ):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n

    def flaky(self) -> set[TestKey]:
        """Passed and failed, or passed only after a retry (intermittent by definition)."""
        return (self.failed.keys() & self.passed.keys()) | self.after_retry.keys()


def tally(run: Stored) -> Tally:
    """One run's cases, counted (one pass over them: thousands per run)."""
    layers = base_layers(run.record)
    cases = run.cases()
    retried = {(case.layer, case.host, case.id) for case in cases if case.status == "retried"}
    found = Tally()
    for case in cases:
        if case.status == "passed":
            test = case.id
            again = bool(retried) and (case.layer, case.host, test) in retried
            into = found.after_retry if again else found.passed
        elif case.status in FAILING:
            test, into = case.id, found.failed
        else:
            continue
        key = (layers.get(case.layer, case.layer), test)
        into[key] = into.get(key, 0) + 1
    return found


def flaky_in(members: Sequence[Stored], code: Code) -> list[FlakyTest]:
    """The flaky tests of these runs of one code, their cases counted together; the runs
    are listed only for the (few) flaky tests."""
    per_run = [(run, tally(run)) for run in members]
    total = Tally()
    for _, counted in per_run:
        total.add(counted)
    refs = [(RunRef(run.record.run_id, report_href(run.dir.name)), t) for run, t in per_run]
    found = []
    for key in total.flaky():
        found.append(
            FlakyTest(
                code,
                *key,
                passed=total.passed.get(key, 0),
                passed_after_retry=total.after_retry.get(key, 0),
                failed=total.failed.get(key, 0),
                passed_runs=[r for r, t in refs if key in t.passed or key in t.after_retry],
                failed_runs=[r for r, t in refs if key in t.failed],
                retried_runs=[r for r, t in refs if key in t.after_retry],
            )
        )
    return found


def flaky_tests(runs: Sequence[Stored]) -> tuple[list[FlakyTest], int]:
    """The flaky tests of the store, most often failing first; and how many runs had
    another run of the same code to compare with. A run without a recorded commit is a
    group of its own; a lone run's cases are read only if it may flake by itself."""
    groups: dict[tuple[Code, Path | None], list[Stored]] = {}
    for run in runs:
        code = code_of(run.record)
        groups.setdefault((code, None if code.commit else run.dir), []).append(run)
    found: list[FlakyTest] = []
    compared = 0
    for (code, _), members in groups.items():
        if len(members) > 1:
            compared += len(members)
        elif not may_flake_alone(members[0].record):
            continue
        found.extend(flaky_in(members, code))
    found.sort(
        key=lambda t: (
            t.code.inventory,
            -t.failed,
            -t.passed_after_retry,
            t.layer,
            t.test,
            t.code.suite,
            t.code.faults,
            t.code.commit,
        )
    )
    return found, compared


def history(runs: Sequence[Stored]) -> History:
    """The history page's data from the store's runs, given in any order: the table lists
    them newest first, a flaky test's runs are listed oldest first."""
    ordered = sorted(runs, key=lambda run: (run.record.started_at, run.record.run_id))
    flaky, compared = flaky_tests(ordered)
    return History(
        runs=[run_row(run) for run in reversed(ordered)],
        flaky=flaky,
        compared=compared,
        no_commit=sum(1 for run in runs if not code_of(run.record).commit),
    )
