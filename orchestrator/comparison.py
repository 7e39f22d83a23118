"""All-on-one against distributed, test by test: the comparison as plain data.

``reports/index.html`` and ``reports/summary.md`` are two views of one :class:`Comparison`.
It is built here from records and test cases only (no file is read, no markup made), so
what the sysadmin is told (which tests differ, which layer is slower, which counters
moved) is tested without HTML, and both views always say the same thing.

The store may hold runs of thousands of tests: rows are keyed by ``(layer, test id)`` in
dicts and ordered with one sort, never by searching one run's cases for each of the
other's.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TypeVar

from orchestrator import attribution, counters
from orchestrator.record import AttributionRecord, CounterRecord, LayerRecord, RunRecord
from orchestrator.templating import visible
from orchestrator.testcases import TestCase

# Comparison order: the co-located box first, then the one that crosses the network.
TOPOLOGY_ORDER = ("all-on-one", "distributed")
FAILING = frozenset({"failed", "error"})
# A test seen on several hosts of one layer (two client hosts) shows its worst outcome.
SEVERITY = {
    "error": 0,
    "failed": 1,
    "passed-with-transport-errors": 2,
    "passed-with-retries": 3,
    "skipped": 4,
    "passed": 5,
}
NOT_CLEAN = frozenset({"passed-with-transport-errors", "passed-with-retries"})
ABSENT = "absent"  # the other run has the test, this one did not run it
# This run's layers stored JUnit XML, but none of it can be read: what its tests did is
# unknown (not "absent": they may well have run).
NOT_RECORDED = "not recorded"
# Below this, a duration is timer noise: 0.002 s against 0.006 s is no "3x slower".
MIN_RATIO_S = 0.05
# What the what-differs sentence calls slower: a ratio and a difference a human notices.
NOTABLE_RATIO = 1.25
NOTABLE_S = 1.0
MESSAGE_CHARS = 300
# Above this many rows the matrix starts folded: the page opens at once, the differing
# tests (first in the table) are one click or one filter away.
MATRIX_OPEN = 1000
OVERFLOW = "accept-queue-overflow"
# Causes of a run's resets the transport sentence names (the rest: "and N more").
TRANSPORT_CAUSES = 3
# Rows of a repeat strip on the index (each run's report has them all).
STRIP_ROWS = 100

Key = tuple[str, str]


class Stored(Protocol):
    """A run of the store (:class:`orchestrator.report.StoredRun`): its directory and
    record; its test cases are read only for the runs that are compared."""

    @property
    def dir(self) -> Path: ...

    @property
    def record(self) -> RunRecord: ...

    def cases(self) -> list[TestCase]: ...


S = TypeVar("S", bound=Stored)
K = TypeVar("K", bound=Hashable)


# --------------------------------------------------------------------------- which runs


def in_topology_order(runs: Iterable[S]) -> list[S]:
    """All-on-one first, then distributed, whatever the inventories are called; runs of
    one topology keep the order they were given in."""
    rank = {name: i for i, name in enumerate(TOPOLOGY_ORDER)}
    return sorted(runs, key=lambda run: rank.get(run.record.topology, len(rank)))


def latest_by_inventory(runs: Sequence[S]) -> list[S]:
    """The newest run of each inventory, by inventory name (``runs`` oldest first)."""
    latest: dict[str, S] = {}
    for run in runs:
        latest[run.record.inventory] = run
    return [latest[name] for name in sorted(latest)]


def pick_pair(runs: Sequence[S]) -> list[S]:
    """The runs the index compares when none are named: the newest run of the store, and
    the newest run of the other topology among the latest of each inventory, preferring
    one of the same suite (a test-by-test comparison of two suites says little). One run
    when only one topology has run, none for an empty store."""
    newest_first = sorted(
        latest_by_inventory(runs),
        key=lambda run: (run.record.started_at, run.record.run_id),
        reverse=True,
    )
    if not newest_first:
        return []
    newest = newest_first[0]
    others = [run for run in newest_first if run.record.topology != newest.record.topology]
    if not others:
        return [newest]
    match = next((run for run in others if run.record.suite == newest.record.suite), others[0])
    return in_topology_order([newest, match])


def not_compared(runs: Sequence[S], compared: Sequence[S]) -> list[S]:
    """The latest run of every other inventory: listed on the index, so a run is never
    hidden because it was not the one compared. Runs are told apart by their directory:
    a copied run keeps its record's run id."""
    shown = {run.dir for run in compared}
    return [run for run in latest_by_inventory(runs) if run.dir not in shown]


def shown(runs: Sequence[S], named: Sequence[S] | None) -> list[S]:
    """The runs to compare: the two named (``invoke report --compare``), or the pair
    :func:`pick_pair` chooses; all-on-one first either way."""
    return in_topology_order(named) if named else pick_pair(runs)


def entries(runs: Sequence[S], reports_root: Path) -> list[Entry]:
    """The compared runs with their test cases: only theirs are read, however many runs
    the store holds."""
    return [Entry(run.record, run.cases(), href(run.dir, reports_root)) for run in runs]


def href(run_dir: Path, reports_root: Path) -> str:
    """The link from ``reports/index.html`` to a run's report: relative, so the page
    works from a copy of the folder and makes no request anywhere else."""
    path = os.path.relpath(run_dir / "report.html", reports_root)
    return urllib.parse.quote(Path(path).as_posix())


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Entry:
    """One run to compare, as the caller read it."""

    record: RunRecord
    cases: Sequence[TestCase]
    href: str


@dataclass(frozen=True)
class Side:
    """One compared run. ``label`` is how sentences name it: its topology, or its
    inventory when both runs share a topology."""

    record: RunRecord
    label: str
    href: str
    cases_recorded: bool

    @property
    def older(self) -> bool:
        """A record written before schema 4 (no command, no readiness version): the only
        kind a sentence may call "an older record"."""
        return older(self.record)


@dataclass(frozen=True)
class LayerRow:
    """A layer in each run (None: that run has no such layer: it stopped before it, or
    its suite has none). ``ratio``: second run's duration over the first's."""

    name: str
    layers: tuple[LayerRecord | None, ...]
    ratio: float | None
    differs: bool


@dataclass(frozen=True)
class TestCell:
    """One test in one run, over the hosts of its layer: worst outcome, longest duration,
    and the earlier failed attempts its layer re-ran (never rows of their own)."""

    __test__ = False

    outcome: str
    duration_s: float | None = None
    retries: int = 0
    hosts: tuple[str, ...] = ()
    message: str | None = None

    @property
    def css(self) -> str:
        """The outcome as a class name (``not recorded`` has a space)."""
        return self.outcome.replace(" ", "-")

    @property
    def took(self) -> str:
        return "" if self.duration_s is None else seconds(self.duration_s)


@dataclass(frozen=True)
class TestRow:
    """One ``(layer, test id)`` across the compared runs."""

    __test__ = False

    layer: str
    test: str
    cells: tuple[TestCell, ...]
    differs: bool
    ratio: float | None

    @property
    def key(self) -> str:
        """The row's name for the filter and the browser tests: ``<layer> <test id>``."""
        return f"{self.layer} {self.test}"

    @property
    def spread(self) -> float:
        """How far apart the durations are, whichever run is slower (1.0: the same)."""
        return 1.0 if self.ratio is None else max(self.ratio, 1 / self.ratio)

    @property
    def times(self) -> str:
        return "-" if self.ratio is None else times(self.ratio)


@dataclass(frozen=True)
class CounterCell:
    """One watched counter over one layer in one run: the sum over its hosts, and each
    host's delta (all-on-one both ends of a connection share one host's counters)."""

    total: int
    hosts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class CounterRow:
    layer: str
    counter: str
    cells: tuple[CounterCell | None, ...]  # None: not recorded for that layer in that run
    alarming: bool
    moved: bool


@dataclass(frozen=True)
class StripRow:
    """One test over the passes of ``--repeat``: ``errors[n - 1]`` says whether the
    ledger saw a transport error in it in pass ``n``."""

    layer: str
    host: str
    position: int | None
    test: str
    passed: int
    runs: int
    errors: tuple[bool, ...]


@dataclass(frozen=True)
class RepeatStrip:
    """Where in the test sequence one repeated run's transport errors fell, pass by pass:
    the tests that saw one or failed in some pass, in the order they ran."""

    passes: int
    tests: int  # tests with a pass rate
    steady: int  # passed in every pass
    noisy: int  # saw a transport error in some pass
    per_pass: tuple[int, ...]  # tests with a transport error, in each pass
    rows: tuple[StripRow, ...]
    left_out: int  # rows past STRIP_ROWS (in the run's report)


@dataclass(frozen=True)
class Comparison:
    sides: tuple[Side, ...]
    layers: tuple[LayerRow, ...]
    tests: tuple[TestRow, ...]
    counters: tuple[CounterRow, ...]
    differs: str  # the what-differs sentence
    # The transport of both runs in one sentence (None: fewer than two runs, no ledger).
    transport: str | None = None
    # One per side: its repeat strip, None for a run that did not repeat.
    repeats: tuple[RepeatStrip | None, ...] = ()

    @property
    def differing_tests(self) -> int:
        return sum(1 for row in self.tests if row.differs)


def older(record: RunRecord) -> bool:
    """Whether the record predates schema 4 (which added the command and the version)."""
    return record.readiness_version == "" and record.command == ""


def recorded(entry: Entry) -> bool:
    """Whether what the run's tests did is known: it has a tests.jsonl, or a case could
    be read from its layers' JUnit XML, or no layer stored JUnit at all (a run stopped at
    deploy ran no test: its tests are absent, not unknown). Only a run whose layers list
    JUnit files none of which can be read is not recorded."""
    record = entry.record
    if record.tests_file is not None or entry.cases:
        return True
    return not any(layer.junit for layer in record.layers)


def compare(entries: Sequence[Entry], alarming: Collection[str]) -> Comparison:
    """The comparison of zero, one or two runs (in the order given: see
    :func:`in_topology_order`)."""
    records = [entry.record for entry in entries]
    sides = tuple(
        Side(entry.record, label, entry.href, recorded(entry))
        for entry, label in zip(entries, _labels(records), strict=True)
    )
    layers = layer_rows(records)
    tests = matrix_rows(entries)
    return Comparison(
        sides=sides,
        layers=layers,
        tests=tests,
        counters=counter_rows(records, alarming),
        differs=what_differs(sides, layers, tests),
        transport=transport_sentence(sides, name=visible),
        repeats=tuple(repeat_strip(record) for record in records),
    )


def _labels(records: Sequence[RunRecord]) -> list[str]:
    """The first of topology, inventory, run id that tells the runs apart."""
    for names in (
        [r.topology for r in records],
        [r.inventory for r in records],
        [r.run_id for r in records],
    ):
        if len(set(names)) == len(names):
            return names
    return [f"run {i}" for i, _ in enumerate(records, 1)]


def ratio(durations: Sequence[float | None]) -> float | None:
    """Second over first, when both ran long enough to be measured (see MIN_RATIO_S)."""
    if len(durations) != 2:
        return None
    first, second = durations
    if first is None or second is None or min(first, second) <= 0:
        return None
    if max(first, second) < MIN_RATIO_S:
        return None
    return second / first


def _ordered_union(names: Iterable[Iterable[K]]) -> list[K]:
    """Every name once, in the order first seen (dicts keep insertion order: O(n))."""
    seen: dict[K, None] = {}
    for group in names:
        for name in group:
            seen.setdefault(name, None)
    return list(seen)


# --------------------------------------------------------------------------- layers


def layer_rows(records: Sequence[RunRecord]) -> tuple[LayerRow, ...]:
    """Every layer of either run, in run order (the first run's, then the other's own)."""
    by_name = [{layer.name: layer for layer in r.layers} for r in records]
    rows = []
    for name in _ordered_union([layer.name for layer in r.layers] for r in records):
        cells = tuple(index.get(name) for index in by_name)
        statuses = {cell.status if cell else None for cell in cells}
        rows.append(
            LayerRow(
                name=name,
                layers=cells,
                ratio=ratio([cell.duration_s if cell else None for cell in cells]),
                differs=len(statuses) > 1,
            )
        )
    return tuple(rows)


# --------------------------------------------------------------------------- tests


def junit_id(nodeid: str) -> str:
    """The ledger names a test by its pytest node id (``tests/test_a.py::TestB::test_c``),
    JUnit by ``classname::name`` (``tests.test_a.TestB::test_c``): the second, from the
    first, so that the ledger's flags land on the matrix's rows."""
    parts = nodeid.split("::")
    if len(parts) < 2:
        return nodeid
    module = parts[0].removesuffix(".py").replace("/", ".")
    return f"{'.'.join([module, *parts[1:-1]])}::{parts[-1]}"


def _cells(record: RunRecord, cases: Iterable[TestCase]) -> dict[Key, TestCell]:
    """One run's cases as cells by ``(layer, test id)``; earlier attempts of a re-run test
    count as its retries, and a pass the ledger flagged is not a plain pass."""
    cells: dict[Key, TestCell] = {}
    retries: dict[Key, int] = {}
    for case in cases:
        key = (case.layer, case.id)
        if case.status == "retried":
            retries[key] = retries.get(key, 0) + 1
            continue
        cells[key] = _merge(cells.get(key), case)
    for key, n in retries.items():
        cell = cells.get(key)
        if cell is not None:  # no final attempt was kept: a retry is never a row of its own
            outcome = "passed-with-retries" if cell.outcome == "passed" else cell.outcome
            cells[key] = replace(cell, outcome=outcome, retries=cell.retries + n)
    for flag in record.ledger.flagged:
        key = (flag.layer, junit_id(flag.test))
        if key in cells:
            cells[key] = replace(cells[key], outcome=_worst(cells[key].outcome, flag.status))
    return cells


def _worst(outcome: str, other: str | None) -> str:
    """The outcome that says more is wrong (an unknown one is kept as it is)."""
    if other is None or outcome not in SEVERITY or other not in SEVERITY:
        return outcome
    return min(outcome, other, key=SEVERITY.__getitem__)


def _merge(cell: TestCell | None, case: TestCase) -> TestCell:
    """A case added to what other hosts of its layer said about the same test."""
    message = None
    if case.status != "passed" and (case.message or case.kind):
        first = (case.message or case.kind or "").strip().splitlines()
        message = visible(first[0][:MESSAGE_CHARS]) if first else None
    if cell is None:
        return TestCell(case.status, case.duration_s, 0, (case.host,), message)
    outcome = _worst(cell.outcome, case.status)
    return TestCell(
        outcome,
        max(cell.duration_s or 0.0, case.duration_s),
        cell.retries,
        (*cell.hosts, case.host),
        message if outcome != cell.outcome else cell.message or message,
    )


def matrix_rows(entries: Sequence[Entry]) -> tuple[TestRow, ...]:
    """One row per ``(layer, test id)`` of any compared run: those whose outcome differs
    first, then the largest duration ratios, then run order."""
    indexes = [_cells(e.record, e.cases) if recorded(e) else None for e in entries]
    keys = _ordered_union(index for index in indexes if index is not None)
    rows = []
    for key in keys:
        cells = tuple(
            TestCell(NOT_RECORDED) if index is None else index.get(key, TestCell(ABSENT))
            for index in indexes
        )
        outcomes = {cell.outcome for cell in cells if cell.outcome != NOT_RECORDED}
        rows.append(
            TestRow(
                layer=visible(key[0]),
                test=visible(key[1]),
                cells=cells,
                differs=len(outcomes) > 1,
                ratio=ratio([cell.duration_s for cell in cells]),
            )
        )
    rows.sort(key=lambda row: (not row.differs, -row.spread))  # stable: run order within
    return tuple(rows)


# --------------------------------------------------------------------------- counters


def counter_rows(records: Sequence[RunRecord], alarming: Collection[str]) -> tuple[CounterRow, ...]:
    """Each watched counter of each layer, side by side: those that moved and alarm first,
    then those that moved, then the still ones (the page folds those away)."""
    rank = {key: i for i, key in enumerate(counters.WATCHED)}
    rows = []
    for layer in _ordered_union(r.counters for r in records):
        per_run = [r.counters.get(layer) for r in records]
        keys = {key for hosts in per_run for c in (hosts or {}).values() for key in c.delta}
        for key in sorted(keys, key=lambda k: (rank.get(k, len(rank)), k)):
            cells = tuple(_counter_cell(hosts, key) for hosts in per_run)
            moved = any(cell is not None and any(v for _, v in cell.hosts) for cell in cells)
            rows.append(CounterRow(layer, key, cells, key in alarming, moved))
    rows.sort(key=lambda row: (not (row.moved and row.alarming), not row.moved))
    return tuple(rows)


def _counter_cell(hosts: dict[str, CounterRecord] | None, key: str) -> CounterCell | None:
    if hosts is None:
        return None
    values = tuple((host, c.delta[key]) for host, c in hosts.items() if key in c.delta)
    return CounterCell(sum(v for _, v in values), values)


# --------------------------------------------------------------------------- repeats


def repeat_strip(record: RunRecord) -> RepeatStrip | None:
    """Where a repeated run's transport errors fell, pass by pass (None: it ran once).

    Only the tests that saw one or failed in some pass are rows, in the order they ran,
    at most :data:`STRIP_ROWS`: the index puts both runs' strips side by side, so a
    thousand steady tests would only push the pattern out of sight (each run's report
    lists them all). Test names are made visible, as in the matrix."""
    if record.repeat < 2:
        return None
    passes = range(1, record.repeat + 1)
    rates = record.pass_rates
    marked = [t for t in rates if t.error_passes or t.passed < t.runs]
    rows = tuple(
        StripRow(
            layer=visible(t.layer),
            host=visible(t.host),
            position=t.position,
            test=visible(t.test),
            passed=t.passed,
            runs=t.runs,
            errors=tuple(n in t.error_passes for n in passes),
        )
        for t in marked[:STRIP_ROWS]
    )
    return RepeatStrip(
        passes=record.repeat,
        tests=len(rates),
        steady=sum(1 for t in rates if t.passed == record.repeat),
        noisy=sum(1 for t in rates if t.error_passes),
        per_pass=tuple(sum(1 for t in rates if n in t.error_passes) for n in passes),
        rows=rows,
        left_out=len(marked) - len(rows),
    )


# --------------------------------------------------------------------------- in words


def plain(text: str) -> str:
    """A name as it is: the index's sentences are autoescaped by its template."""
    return text


def where(side: Side, name: Callable[[str], str] = plain) -> str:
    """How a sentence places something in one run: "only all-on-one", "only in single-b"
    (``name`` escapes the label for the Markdown of summary.md)."""
    return name(side.label) if side.label == side.record.topology else f"in {name(side.label)}"


def seconds(value: float | None) -> str:
    """A duration a human reads at a glance: ms below a second, one decimal above."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s"


def times(value: float) -> str:
    """A ratio as a human reads it: 1.4x, 12x, 0.43x (two significant digits below 1)."""
    if value >= 10:
        return f"{value:.0f}x"
    if value >= 1:
        return f"{value:.1f}x"
    text = f"{value:.2g}"
    return ("1.0" if text == "1" else text) + "x"  # 0.998 is "1.0x", like 1.02


def _tests(n: int) -> str:
    return f"{n} test{'' if n == 1 else 's'}"


def what_differs(
    sides: Sequence[Side],
    layers: Sequence[LayerRow],
    tests: Sequence[TestRow],
    name: Callable[[str], str] = plain,
) -> str:
    """One sentence of what differs between the two runs, most telling first: verdicts,
    tests that fail or are retried on one side only, the slowest layer, the ledger.
    ``name`` is applied to every piece of record data in it (summary.md escapes them)."""
    if not sides:
        return (
            "No run yet: `invoke readiness --inventory=single` and "
            "`invoke readiness --inventory=cluster` make one of each topology."
        )
    if len(sides) == 1:
        r = sides[0].record
        other = "distributed" if r.topology == "all-on-one" else "all-on-one"
        return (
            f"Only {name(r.inventory)} ({name(r.topology)}) has run: "
            f"no {other} run to compare it with yet."
        )
    parts = [
        *_verdict_part(sides, name),
        *_test_parts(sides, tests, name),
        *_layer_part(sides, layers, name),
        *_ledger_part(sides, name),
    ]
    if not parts:
        parts = [
            "every test has the same outcome and no layer is more than "
            f"{NOTABLE_RATIO}x slower in either"
        ]
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _verdict_part(sides: Sequence[Side], name: Callable[[str], str]) -> list[str]:
    a, b = sides
    if a.record.verdict == b.record.verdict:
        return []
    return [
        f"{name(a.label)} is {name(a.record.verdict)}, {name(b.label)} {name(b.record.verdict)}"
    ]


def _test_parts(
    sides: Sequence[Side], tests: Sequence[TestRow], name: Callable[[str], str]
) -> list[str]:
    missing = [side for side in sides if not side.cases_recorded]
    if missing:
        return [
            f"not compared test by test: the JUnit files of {name(side.label)} could not be read"
            + (" (an older record)" if side.older else "")
            for side in missing
        ]
    fails_only, unclean_only, only_in, other = [0, 0], [0, 0], [0, 0], 0
    for row in tests:
        if not row.differs:
            continue
        outcomes = [cell.outcome for cell in row.cells]
        for i, (mine, theirs) in enumerate((outcomes, outcomes[::-1])):
            if theirs == ABSENT:
                only_in[i] += 1
            elif mine in FAILING and theirs not in FAILING | {ABSENT}:
                fails_only[i] += 1
            elif mine in NOT_CLEAN and theirs == "passed":
                unclean_only[i] += 1
            else:
                continue
            break
        else:
            other += 1
    parts = []
    for i, side in enumerate(sides):
        if fails_only[i]:
            verb = "fails" if fails_only[i] == 1 else "fail"
            parts.append(f"{_tests(fails_only[i])} {verb} only {where(side, name)}")
    for i, side in enumerate(sides):
        if unclean_only[i]:
            parts.append(
                f"{_tests(unclean_only[i])} needed retries or saw transport errors "
                f"only {where(side, name)}"
            )
    parts += [
        f"{_tests(n)} ran only {where(side, name)}"
        for n, side in zip(only_in, sides, strict=True)
        if n
    ]
    if other:
        parts.append(f"{_tests(other)} more differ in outcome")
    return parts


def _layer_part(
    sides: Sequence[Side], layers: Sequence[LayerRow], name: Callable[[str], str]
) -> list[str]:
    """The layer whose duration differs most, if a human would notice the difference."""
    notable = []
    for row in layers:
        if row.ratio is None or None in row.layers:
            continue
        a, b = (layer.duration_s for layer in row.layers if layer is not None)
        spread = max(row.ratio, 1 / row.ratio)
        if spread >= NOTABLE_RATIO and abs(a - b) >= NOTABLE_S:
            notable.append((spread, row))
    if not notable:
        return []
    spread, row = max(notable, key=lambda item: item[0])
    slower = sides[1] if row.ratio is not None and row.ratio >= 1 else sides[0]
    return [f"the {name(row.name)} layer is {times(spread)} slower {where(slower, name)}"]


def _ledger_part(sides: Sequence[Side], name: Callable[[str], str]) -> list[str]:
    """Transport errors and swallowed resets, when the ledger saw more on one side."""
    if not all(side.record.ledger.collected for side in sides):
        return []
    seen = [len(s.record.ledger.errors) + len(s.record.ledger.resets) for s in sides]
    if seen[0] == seen[1]:
        return []
    a, b = (str(n) if n else "none" for n in seen)
    return [
        f"the ledger saw {a} transport errors or resets {where(sides[0], name)}, "
        f"{b} {where(sides[1], name)}"
    ]


# --------------------------------------------------------------------------- transport


@dataclass(frozen=True)
class _Transport:
    """What one run's ledger, counters and bursts say, counted for the sentence."""

    resets: list[AttributionRecord]  # one per reset (a reset reported twice is one)
    others: int  # transport errors that are no reset, nor an overflow's timeout
    quiet: list[attribution.Overflow]  # overflows that reset nothing
    overflowed: bool | None  # did any accept queue overflow (None: no counters)


def _transport(record: RunRecord) -> _Transport:
    """One run's resets, other errors and quiet overflows, judged by the rules the run's
    own finding uses (:func:`orchestrator.attribution.overflows`), so the sentence across
    the runs never contradicts either run's finding."""
    led = record.ledger
    records = attribution.distinct([*led.errors, *led.resets])
    servers = {h.name for h in record.hosts if "server" in h.roles} | set(record.fingerprints)
    quiet = attribution.overflows(
        records, record.counters, record.bursts, _abort_settings(record), servers
    )
    folded = {o.host for o in quiet}
    resets = [r for r in records if attribution.noun(r) == "reset"]
    others = [
        r
        for r in records
        if attribution.noun(r) != "reset"
        and not (r.errno == "ETIMEDOUT" and r.host in folded and r.mechanism == OVERFLOW)
    ]
    moved = [
        c.delta.get("TcpExt.ListenOverflows", 0) > 0
        for hosts in record.counters.values()
        for c in hosts.values()
    ]
    return _Transport(resets, len(others), quiet, any(moved) if moved else None)


def _abort_settings(record: RunRecord) -> dict[str, bool | None]:
    """Each server host's ``tcp_abort_on_overflow``: as its fingerprint measured it, else
    set by ``--faults=abort-on-overflow``."""
    found: dict[str, bool | None] = {}
    for fault in record.faults:
        if fault.name == "abort-on-overflow" and fault.applied:
            found.update(dict.fromkeys(fault.hosts, True))
    for host, fp in record.fingerprints.items():
        if fp.tcp_abort_on_overflow is not None:
            found[host] = bool(fp.tcp_abort_on_overflow)
    return found


def transport_sentence(sides: Sequence[Side], name: Callable[[str], str] = plain) -> str | None:
    """The transport of both runs in one sentence, e.g. "all-on-one with
    --faults=abort-on-overflow: 8 resets in a burst of 60, sent by the server socket on
    h1, accept-queue overflow with tcp_abort_on_overflow=1; distributed with
    --faults=abort-on-overflow: no resets in a burst of 60". Each run's finding speaks of
    its own run; this says, in one place, what differs across the topologies, an overflow
    that reset nothing included (FINDINGS 1a). None with fewer than two runs or no ledger.
    ``name`` is applied to the whole sentence (all of it is made of record data)."""
    if len(sides) != 2 or not any(side.record.ledger.collected for side in sides):
        return None
    facts = [_transport(side.record) for side in sides]
    parts = [
        _transport_part(side, mine, other.overflowed is True)
        for side, mine, other in zip(sides, facts, facts[::-1], strict=True)
    ]
    return name("; ".join(parts))


def _transport_part(side: Side, facts: _Transport, other_overflowed: bool) -> str:
    """One run's half: "all-on-one: 8 resets in a burst of 60, sent by ..."."""
    record = side.record
    who = side.label + _faults(record)
    if not record.ledger.collected:
        return f"{who}: ledger not collected"
    text = f"{who}: {_reset_count(record, facts.resets)}{_causes(record, facts.resets)}"
    if facts.quiet:
        joiner = ", although " if not facts.resets else ", and "
        text += joiner + " and ".join(o.words(no_reset=False) for o in facts.quiet)
    elif facts.overflowed is False and other_overflowed:
        text += ", no accept-queue overflow"
    if facts.others:
        text += f", {facts.others} other transport error{'' if facts.others == 1 else 's'}"
    return text


def _faults(record: RunRecord) -> str:
    """What the run provoked (" with --faults=abort-on-overflow,resets=2"), said next to
    its name: a provoked difference is no topology's."""
    names = []
    for fault in record.faults:
        if not fault.applied:
            continue
        values = [
            v for k, v in fault.parameters.items() if k not in ("port", "tcp_abort_on_overflow")
        ]
        names.append(f"{fault.name}={values[0]}" if values else fault.name)
    return f" with --faults={','.join(names)}" if names else ""


def _reset_count(record: RunRecord, resets: Sequence[AttributionRecord]) -> str:
    """How many resets, and in what: "8 resets in a burst of 60 and 1 in the other
    layers", "no resets"."""
    if not record.bursts:
        return _count(len(resets), "reset")
    probes = {b.layer for b in record.bursts}
    sizes = sorted({b.requests for b in record.bursts})
    size = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]} to {sizes[-1]}"
    n = len(record.bursts)
    where = f"in a burst of {size}" if n == 1 else f"in {n} bursts of {size}"
    inside = sum(1 for r in resets if r.layer in probes)
    text = f"{_count(inside, 'reset')} {where}"
    if len(resets) > inside:
        text += f" and {len(resets) - inside} in the other layers"
    return text


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}" if n else f"no {word}s"


def _causes(record: RunRecord, resets: Sequence[AttributionRecord]) -> str:
    """Who sent the resets and why: ", sent by the server socket on h1, accept-queue
    overflow ..." for one cause; ": 6 sent by ... (...), 2 ..." for several."""
    groups: dict[tuple[str, str | None, str], int] = {}
    for r in resets:
        key = (r.side, r.host, r.mechanism)
        groups[key] = groups.get(key, 0) + 1
    ranked = sorted(groups.items(), key=lambda item: -item[1])
    settings = _abort_settings(record)
    said = [_cause(*key, settings, resets) for key, _ in ranked]
    if len(said) == 1:
        who, why = said[0]
        return f", {who}" + (f", {why}" if why else "")
    shown = [
        f"{n} {who}" + (f" ({why})" if why else "")
        for (who, why), (_, n) in zip(said, ranked, strict=True)
    ][:TRANSPORT_CAUSES]
    rest = sum(n for _, n in ranked[TRANSPORT_CAUSES:])
    return (": " + ", ".join(shown) + (f" and {rest} more" if rest else "")) if shown else ""


def _cause(
    side: str,
    host: str | None,
    mechanism: str,
    settings: dict[str, bool | None],
    resets: Sequence[AttributionRecord],
) -> tuple[str, str | None]:
    """(who sent it, why) in the findings' words."""
    if side == "none":
        return "not sent by any host's TCP stack (a middlebox or firewall)", None
    if side == "unknown" or not host:
        return "of unknown origin", attribution.label(mechanism)
    why = attribution.label(mechanism)
    if mechanism == OVERFLOW:
        abort = attribution.abort_setting(host, resets, settings)
        if abort is not None:
            why += f" with tcp_abort_on_overflow={int(abort)}"
    return f"sent by the {side} socket on {host}", why


# --------------------------------------------------------------------------- summary.md

# What summary.md lists at most (the index has them all): a ticket stays readable.
SUMMARY_TESTS = 20
SUMMARY_COUNTERS = 12


# Markdown that renders literally in any flavour: ASCII punctuation that can open markup
# anywhere in a line is backslash-escaped, and ``<``, ``>``, ``&`` are written as entities
# (the original Markdown.pl passes a backslashed ``<`` through and would open an HTML tag).
_MD_ESCAPES = str.maketrans(
    {c: "\\" + c for c in "\\`*_{}[]()#+!|~"} | {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
)
# What opens a block only at the start of a list item or a line: a bullet, "1." (the
# others, # + > and so on, are escaped wherever they are). A dash inside a name stays.
_MD_BLOCK_START = re.compile(r"^(-|\d+\.)")


def _md(text: str) -> str:
    """Record data (an inventory, a reason, a layer or host name, a run id) as one line of
    Markdown that shows it literally: no line break, no control character, no column
    break, and no link, image, HTML tag or emphasis it could smuggle into a ticket."""
    flat = " ".join(visible(text).split()).translate(_MD_ESCAPES)
    return _MD_BLOCK_START.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], flat)


def _code(text: str) -> str:
    """A test id or message as a code span: shown literally by whatever renders it."""
    return "`" + " ".join(visible(text).split()).replace("`", "'") + "`"


def title(sides: Sequence[Side]) -> str:
    """The first line of summary.md (a ticket's title, an e-mail's subject):
    ``# readiness: <inventory> (<topology>) <verdict> vs ...``, each piece escaped."""
    if not sides:
        return "# readiness: no runs yet"
    named = [
        f"{_md(s.record.inventory)} ({_md(s.record.topology)}) {_md(s.record.verdict)}"
        for s in sides
    ]
    return "# readiness: " + " vs ".join(named)


def summary(view: Comparison, others: Sequence[RunRecord] = (), index: str = "") -> str:
    """``reports/summary.md``: the comparison in plain text, for a ticket or an e-mail.
    Markdown that reads as plain text: short lines, tables of a few columns, test ids and
    messages in code spans, every other piece of record data escaped (never markup)."""
    differs = what_differs(view.sides, view.layers, view.tests, name=_md)
    lines = [title(view.sides), "", differs, ""]
    for side in view.sides:
        lines += _side_lines(side)
    transport = transport_sentence(view.sides, name=_md)
    if transport:
        lines += ["## Transport across the topologies", "", transport, ""]
    if view.sides:
        lines += _layer_lines(view)
    if len(view.sides) == 2:
        lines += _test_lines(view)
    lines += _counter_lines(view)
    if others:
        lines += ["## Other inventories (latest run, not compared)", ""]
        lines += [
            f"- {_md(r.inventory)} ({_md(r.topology)}): {_md(r.verdict)}, run {_md(r.run_id)}"
            for r in others
        ]
        lines.append("")
    if index:
        lines.append(f"Everything, test by test: {_code(index)}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _side_lines(side: Side) -> list[str]:
    r = side.record
    facts = [f"run {_md(r.run_id)}", f"started {_md(r.started_at)}", f"suite {_md(r.suite)}"]
    if r.project and r.project.commit:
        dirty = " (dirty)" if r.project.dirty else ""
        facts.append(f"commit {_md(r.project.commit[:12])}{dirty}")
    lines = [f"## {_md(side.label)}: {_md(r.inventory)} is {_md(r.verdict)}", "", ", ".join(facts)]
    lines += [f"- {_md(reason)}" for reason in r.reasons]
    if r.ledger.collected:
        lines.append(f"- transport: {_md(r.ledger.finding or 'no finding')}")
    return [*lines, ""]


def _layer_cell(layer: LayerRecord | None) -> str:
    if layer is None:
        return "not run"
    if layer.setup:
        return f"{_md(layer.status)}, step, {seconds(layer.duration_s)}"
    t = layer.tests
    return f"{_md(layer.status)}, {t.passed}/{t.total} passed, {seconds(layer.duration_s)}"


def _layer_lines(view: Comparison) -> list[str]:
    two = len(view.sides) == 2
    head = (
        "| layer | "
        + " | ".join(_md(s.label) for s in view.sides)
        + (" | ratio |" if two else " |")
    )
    lines = ["## Layers", "", head, "|---" * (1 + len(view.sides) + two) + "|"]
    for row in view.layers:
        cells = [_md(row.name), *(_layer_cell(layer) for layer in row.layers)]
        if two:
            cells.append(times(row.ratio) if row.ratio is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _test_lines(view: Comparison) -> list[str]:
    differing = [row for row in view.tests if row.differs]
    if not differing:
        return []
    lines = [f"## Tests that differ ({len(differing)} of {len(view.tests)})", ""]
    for row in differing[:SUMMARY_TESTS]:
        outcomes = ", ".join(
            f"{_md(side.label)} {cell.outcome}"
            + (f" ({seconds(cell.duration_s)})" if cell.duration_s is not None else "")
            for side, cell in zip(view.sides, row.cells, strict=True)
        )
        message = next((c.message for c in row.cells if c.message), None)
        lines.append(f"- {_code(row.key)}: {outcomes}" + (f": {_code(message)}" if message else ""))
    if len(differing) > SUMMARY_TESTS:
        lines.append(f"- and {len(differing) - SUMMARY_TESTS} more")
    return [*lines, ""]


def _counter_lines(view: Comparison) -> list[str]:
    alarming = [row for row in view.counters if row.moved and row.alarming]
    if not alarming:
        return []
    lines = ["## Alarming TCP counters that moved", ""]
    for row in alarming[:SUMMARY_COUNTERS]:
        cells = []
        for side, cell in zip(view.sides, row.cells, strict=True):
            moved = "not recorded"
            if cell is not None:
                moved = ", ".join(f"{_md(h)} {v:+d}" for h, v in cell.hosts if v)
            cells.append(f"{_md(side.label)} {moved or 'none'}")
        lines.append(f"- {_md(row.layer)} {_md(row.counter)}: " + "; ".join(cells))
    if len(alarming) > SUMMARY_COUNTERS:
        lines.append(f"- and {len(alarming) - SUMMARY_COUNTERS} more")
    return [*lines, ""]
