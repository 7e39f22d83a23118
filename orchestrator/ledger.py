"""The transport ledger on the control node: read what the hook wrote, judge the tests.

The hook (``orchestrator/ledger_hook``, installed as ``readiness_ledger`` in every venv
readiness builds) appends JSON lines to ``READINESS_LEDGER`` in the layer's test
processes. Here those lines become :class:`~orchestrator.evidence.LedgerEvent` and
:class:`~orchestrator.evidence.TestAttempt`; a line that is not what the hook writes
(a truncated last line of a killed process, a line of another version) is counted and
skipped, never raised: the ledger is evidence, and partial evidence still counts.

A test that passed is judged against the ledger: passed only after a retry is
``passed-with-retries``; passed while the ledger saw a transport error in it is
``passed-with-transport-errors``. Neither is ever a plain pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.evidence import LedgerEvent, TestAttempt
from orchestrator.record import FlaggedTestRecord, PassRateRecord

LEDGER_SUFFIX = ".ledger.jsonl"


def ledger_path(results_dir: str, layer: str) -> str:
    """Where the hook writes a layer's lines on a host (``READINESS_LEDGER``)."""
    return f"{results_dir}/{layer}{LEDGER_SUFFIX}"


@dataclass
class HostLedger:
    """What one host's ledger file held for one layer."""

    host: str
    layer: str
    events: list[LedgerEvent] = field(default_factory=list)
    attempts: list[TestAttempt] = field(default_factory=list)
    unreadable: int = 0  # lines that were not a ledger line of a known kind


def parse(text: str, host: str, layer: str) -> HostLedger:
    """Every line of one host's ledger file for one layer."""
    out = HostLedger(host, layer)
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            kind = data.get("kind") if isinstance(data, dict) else None
            if kind == "error":
                out.events.append(_event(data, host, layer))
            elif kind == "test":
                out.attempts.append(_attempt(data, host, layer))
            elif kind is None:
                out.unreadable += 1
            # other kinds (a later hook's) are not errors: nothing to judge here
        except (ValueError, TypeError, KeyError):
            out.unreadable += 1
    return out


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return None if value is None else int(value)


def _event(data: Mapping[str, Any], host: str, layer: str) -> LedgerEvent:
    return LedgerEvent(
        host=host,
        layer=layer,
        at=float(data["at"]),
        pid=int(data.get("pid") or 0),
        test=_str(data, "test"),
        position=_int(data, "position"),
        attempt=int(data.get("attempt") or 1),
        op=str(data.get("op") or "?"),
        errno=str(data["errno"]),
        exception=str(data.get("exception") or "?"),
        message=str(data.get("message") or ""),
        local=_str(data, "local"),
        remote=_str(data, "remote"),
        reused=bool(data.get("reused", False)),
        source=str(data.get("source") or "?"),
        idle_s=None if data.get("idle_s") is None else float(data["idle_s"]),
    )


def _attempt(data: Mapping[str, Any], host: str, layer: str) -> TestAttempt:
    return TestAttempt(
        host=host,
        layer=layer,
        at=float(data["at"]),
        test=str(data["test"]),
        position=_int(data, "position"),
        attempt=int(data.get("attempt") or 1),
        outcome=str(data["outcome"]),
        retry=bool(data.get("retry", False)),
        duration_s=float(data.get("duration_s") or 0.0),
    )


def flagged_tests(ledger: HostLedger) -> list[FlaggedTestRecord]:
    """The tests of one host's layer that passed, but not cleanly, in run order."""
    last: dict[str, TestAttempt] = {}
    for attempt in ledger.attempts:
        if attempt.test not in last or attempt.attempt >= last[attempt.test].attempt:
            last[attempt.test] = attempt
    errors: dict[str, list[str]] = {}
    for event in ledger.events:
        if event.test is not None:
            errors.setdefault(event.test, []).append(event.errno)
    flagged = []
    for test, final in last.items():
        if final.outcome != "passed":
            continue
        if final.attempt > 1:
            status = "passed-with-retries"
        elif test in errors:
            status = "passed-with-transport-errors"
        else:
            continue
        flagged.append(
            FlaggedTestRecord(
                layer=ledger.layer,
                host=ledger.host,
                test=test,
                status=status,
                attempts=final.attempt,
                errors=errors.get(test, []),
            )
        )
    return flagged


def flagged_reasons(flagged: Iterable[FlaggedTestRecord]) -> list[str]:
    """One line per layer for the verdict: which tests were not plain passes."""
    by_layer: dict[str, list[FlaggedTestRecord]] = {}
    for test in flagged:
        by_layer.setdefault(test.layer, []).append(test)
    reasons = []
    for layer, tests in by_layer.items():
        retried = [t for t in tests if t.status == "passed-with-retries"]
        noisy = [t for t in tests if t.status == "passed-with-transport-errors"]
        parts = []
        if retried:
            parts.append(f"{len(retried)} test(s) passed only after retries ({_names(retried)})")
        if noisy:
            parts.append(
                f"{len(noisy)} test(s) passed while the ledger recorded transport errors "
                f"in them ({_names(noisy)})"
            )
        reasons.append(f"layer '{layer}': " + "; ".join(parts))
    return reasons


def _names(tests: list[FlaggedTestRecord], shown: int = 3) -> str:
    names = [f"{t.test} x{t.attempts}" if t.attempts > 1 else t.test for t in tests[:shown]]
    more = len(tests) - shown
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def pass_rates(
    history: Iterable[tuple[int, str, Sequence[HostLedger]]],
) -> list[PassRateRecord]:
    """Each test over the passes of ``--repeat``: in how many it ran, in how many its last
    attempt passed, and the passes where the ledger saw a transport error in it. In the
    order the tests first ran."""
    rates: dict[tuple[str, str, str], PassRateRecord] = {}
    for number, layer, books in history:
        for book in books:
            last: dict[str, TestAttempt] = {}
            for attempt in book.attempts:
                if attempt.test not in last or attempt.attempt >= last[attempt.test].attempt:
                    last[attempt.test] = attempt
            noisy = {e.test for e in book.events if e.test is not None}
            for test, final in last.items():
                rate = rates.setdefault(
                    (layer, book.host, test),
                    PassRateRecord(layer, book.host, test, final.position, 0, 0),
                )
                rate.runs += 1
                rate.passed += final.outcome == "passed"
                if test in noisy:
                    rate.error_passes.append(number)
    return list(rates.values())
