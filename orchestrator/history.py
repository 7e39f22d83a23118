"""The history of the run store, as data: what ``reports/history.html`` shows.

Two views, both rebuilt from the store on every render (nothing is kept by hand):

* every run, newest first, with its inventory, topology, commit, verdict, duration and
  test counts (from ``run.json``: cheap, no test file is read for it);
* the tests that both passed and failed across runs of one inventory at one commit of
  the application. A test that passes at one commit and fails at the next is a change,
  not a flake, so runs are only ever compared with runs of the same code; a run whose
  commit was not recorded (an older record, a source that is not a git checkout) is
  compared with nothing. A checkout with uncommitted changes is other code than its
  clean commit, so "dirty" is part of the key.

One pass over the cases (O(n)); the cases of a run are read only when another run of its
inventory ran the same code, so a store of many one-off runs reads no test file at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

from orchestrator.junit import TestCounts
from orchestrator.record import RunRecord
from orchestrator.testcases import TestCase

FAILING = frozenset({"failed", "error"})


class Stored(Protocol):
    """A run of the store (:class:`orchestrator.report.StoredRun`): its record, and its
    test cases read on demand."""

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
class FlakyTest:
    """A test that passed in some runs and failed in others of one inventory and code
    (run ids in store order, oldest first)."""

    inventory: str
    commit: str
    dirty: bool
    layer: str
    test: str
    passed_runs: list[str]
    failed_runs: list[str]
    # runs in which it passed only after the suite's retry re-ran a failed attempt
    retried_runs: list[str]


@dataclass(frozen=True)
class History:
    runs: list[RunRow]  # newest first
    flaky: list[FlakyTest]
    compared: int  # runs that had another run of the same inventory and code
    no_commit: int  # runs whose commit was not recorded: compared with nothing


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


def report_href(run_id: str) -> str:
    """The run's report, relative to ``reports/`` (the run id is a directory name)."""
    return f"runs/{quote(run_id)}/report.html"


def run_row(record: RunRecord) -> RunRow:
    project = record.project
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
        report=report_href(record.run_id),
    )


CodeKey = tuple[str, str, bool]  # inventory, commit, dirty


def code_key(record: RunRecord) -> CodeKey | None:
    """The code a run tested, per inventory; None when its commit is not known."""
    if record.project is None or not record.project.commit:
        return None
    return (record.inventory, record.project.commit, bool(record.project.dirty))


def base_layers(record: RunRecord) -> dict[str, str]:
    """Layer name -> the suite's layer: ``--repeat`` names a client layer's later passes
    ``<layer>.<pass>``, and those are the same test of the same layer."""
    names = {}
    for layer in record.layers:
        suffix = f".{layer.repeat}"
        repeated = layer.repeat > 1 and layer.name.endswith(suffix)
        names[layer.name] = layer.name[: -len(suffix)] if repeated else layer.name
    return names


TestKey = tuple[str, str]  # the suite's layer, test id


@dataclass
class Outcomes:
    """What became of each test in one run: failed if a host (or a ``--repeat`` pass)
    failed it, else passed if one passed it; skipped everywhere, neither. ``retried``:
    a failed attempt of it was re-run by the suite's retry policy."""

    failed: set[TestKey] = field(default_factory=set)
    passed: set[TestKey] = field(default_factory=set)
    retried: set[TestKey] = field(default_factory=set)


def outcomes(run: Stored) -> Outcomes:
    layers = base_layers(run.record)
    seen = Outcomes()
    for case in run.cases():
        key = (layers.get(case.layer, case.layer), case.id)
        if case.status in FAILING:
            seen.failed.add(key)
        elif case.status == "passed":
            seen.passed.add(key)
        elif case.status == "retried":
            seen.retried.add(key)
    seen.passed -= seen.failed
    return seen


def flaky_in(members: Sequence[Stored], code: CodeKey) -> list[FlakyTest]:
    """The tests that passed in some and failed in others of these runs of one code."""
    failed_in: dict[TestKey, list[str]] = {}
    passed_in: dict[TestKey, list[str]] = {}
    retried_in: dict[TestKey, list[str]] = {}
    for run in members:
        run_id, seen = run.record.run_id, outcomes(run)
        for key in seen.failed:
            failed_in.setdefault(key, []).append(run_id)
        for key in seen.passed:
            passed_in.setdefault(key, []).append(run_id)
        for key in seen.retried & seen.passed:
            retried_in.setdefault(key, []).append(run_id)
    return [
        FlakyTest(*code, *key, passed_in[key], failed_in[key], retried_in.get(key, []))
        for key in failed_in.keys() & passed_in.keys()
    ]


def flaky_tests(runs: Sequence[Stored]) -> tuple[list[FlakyTest], int]:
    """Tests that passed in one run and failed in another of the same inventory and code,
    most often failing first; and how many runs were compared at all."""
    groups: dict[CodeKey, list[Stored]] = {}
    for run in runs:
        key = code_key(run.record)
        if key is not None:
            groups.setdefault(key, []).append(run)
    found: list[FlakyTest] = []
    compared = 0
    for code, members in groups.items():
        if len(members) > 1:
            compared += len(members)
            found.extend(flaky_in(members, code))
    found.sort(key=lambda t: (t.inventory, -len(t.failed_runs), t.layer, t.test, t.commit))
    return found, compared


def history(runs: Sequence[Stored]) -> History:
    """The history page's data from the store's runs, given in any order: the table lists
    them newest first, a flaky test's runs are listed oldest first."""
    ordered = sorted(runs, key=lambda run: (run.record.started_at, run.record.run_id))
    flaky, compared = flaky_tests(ordered)
    return History(
        runs=[run_row(run.record) for run in reversed(ordered)],
        flaky=flaky,
        compared=compared,
        no_commit=sum(1 for run in runs if code_key(run.record) is None),
    )
