"""The pytest side of the ledger: which test runs, how each attempt ended, and retries.

Loaded by the hook into pytest's plugin manager (see the package's docstring). It tells
the recorder the running test's node id and its position (1-based, in run order; a retried test
keeps its position), writes one ``kind: test`` line per attempt, and records as
``source: test`` a transport error found only in a failing test's exception chain
(httpx's ``RemoteProtocolError``, an asyncio connect error) that the socket layer did
not see.

**Retries** (``READINESS_RETRY``, the layer's policy): an attempt whose setup or call
failed *with* a transport error named in ``on`` (in the failure's exception chain:
causes, contexts, wrapped args) is run again in the same session, up to ``count`` more
times, after ``backoff_s * 2 ** (attempt - 1)`` seconds, at most 30. Errors the recorder
saw during the attempt do not count: a test that handled a reset, then failed an
assertion, failed for its own reasons and would fail again. A failure only in teardown
is not retried: the test itself passed. Every attempt is logged to pytest: the failed
setup or call report of a retried attempt gets the outcome ``rerun`` (as
pytest-rerunfailures does), which neither pytest's exit status nor its JUnit XML count
as a failure (a teardown error of that attempt stays an error), and the user properties
``readiness_attempt``, ``readiness_outcome=failed`` and ``readiness_error``; the final
attempt gets ``readiness_attempt``. JUnit XML then holds one ``<testcase>`` per attempt
(junitxml writes the testcase at the teardown report, with that report's properties, and
starts a new one for the next attempt). Its ``<testsuite tests=...>`` counts tests by
outcome, so retried attempts are not in it. So that a reader of the XML who knows
nothing of these properties sees why an attempt that looks passed was run again, its
failure's text goes into the teardown report as the section ``readiness: attempt N
failed``, and from there into that testcase's ``<system-out>``.

A fixture broader than a function belongs to no test: errors in its setup and
teardown carry ``test: null``, although pytest runs them inside a test's setup/teardown.

Between attempts the item alone is torn down (function-scoped fixtures with it), as if
the next item were a sibling; its parents stay set up unless their setup failed, and a
broader-scoped fixture that failed is forgotten so that it is set up again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from _pytest.runner import call_and_report

from . import recorder
from .recorder import state

ERROR_LIMIT = 200
BACKOFF_LIMIT_S = 30.0  # whatever the policy's backoff and count make of 2 ** attempt
NOTE = "readiness: attempt {} failed"  # the section of a retried attempt's failure
NOTE_PREFIX = NOTE.split("{", 1)[0]


@dataclass(frozen=True)
class RetryPolicy:
    """The layer's retry policy, from ``READINESS_RETRY``."""

    count: int
    on: frozenset[str]
    backoff_s: float


def backoff_s(policy: RetryPolicy, attempt: int) -> float:
    """The pause before the attempt after ``attempt``: exponential, but bounded (a count
    of 10 with 1 s would otherwise sleep for 8.5 minutes before the last attempt)."""
    exponent = min(max(attempt - 1, 0), 64)  # no float overflow, whatever the count
    return min(BACKOFF_LIMIT_S, policy.backoff_s * 2.0**exponent)


def retry_policy(text: str | None) -> RetryPolicy | None:
    """The policy ``READINESS_RETRY`` holds; None when unset, empty or malformed."""
    if not text:
        return None
    try:
        data = json.loads(text)
        names: set[str] = set()
        for name in data.get("on") or ():
            names.update(recorder.TRANSPORT_ERRNOS if name == "transport" else (str(name),))
        count = int(data.get("count") or 0)
        backoff = max(0.0, float(data.get("backoff_s") or 0.0))
    except Exception as exc:
        recorder.complain(exc)
        return None
    return RetryPolicy(count, frozenset(names), backoff) if count > 0 and names else None


@dataclass
class _Run:
    policy: RetryPolicy | None = None
    retrying: bool = False  # the retry loop runs the protocol (and writes the test lines)
    # (when, outcome as made, duration) of each report of the current attempt
    log: list[tuple[str, str, float]] = field(default_factory=list)
    # errno names in the exception chains of the current attempt's setup/call failures
    failed_with: set[str] = field(default_factory=set)
    config: pytest.Config | None = None


_run = _Run()


def pytest_configure(config: pytest.Config) -> None:
    state.pytest_active = True
    _run.config = config
    _run.policy = retry_policy(os.environ.get("READINESS_RETRY"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    state.begin_test(item.nodeid)
    _run.log = []
    try:
        return (yield)
    finally:
        recorder.flush_held()
        state.end_test()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object],
) -> Generator[None, object, object]:
    """A fixture broader than a function belongs to no test: its setup and teardown
    record ``test: null``, though pytest runs them within the first (last) test using it."""
    if fixturedef.scope == "function":
        return (yield)
    at_teardown: list[tuple[str | None, int | None]] = []
    # Finalizers run last-in first-out: this one after the fixture's own teardown...
    fixturedef.addfinalizer(lambda: state.enter(at_teardown.pop()) if at_teardown else None)
    saved = state.leave()
    try:
        return (yield)
    finally:
        state.enter(saved)
        # ...and this one before it.
        fixturedef.addfinalizer(lambda: at_teardown.append(state.leave()))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    try:
        recorder.flush_held()  # the phase's connect failures, before its chain is read
        _run.log.append((report.when or "", report.outcome, report.duration))
        if report.failed and call.excinfo is not None:
            names = _record_chain(call.excinfo.value)
            if report.when in ("setup", "call"):
                _run.failed_with |= names
        if report.when == "teardown" and not _run.retrying:
            recorder.record_test(_outcome(_run.log), False, _duration(_run.log))
            _run.log = []
    except Exception as exc:
        recorder.complain(exc)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    if report.outcome == "rerun":  # type: ignore[comparison-overlap]
        return "rerun", "R", "RERUN"
    return None


def _record_chain(exc: BaseException) -> set[str]:
    """The transport errors in a failure's exception chain (what the test failed *with*);
    those this attempt did not record yet are recorded from the test."""
    names = set()
    for inner in recorder.exception_chain(exc):
        name = recorder.errno_name(inner)
        if name is not None:
            names.add(name)
            if name not in state.seen:
                recorder.record_error("test", inner, name, source="test")
    return names


def _outcome(log: list[tuple[str, str, float]]) -> str:
    if ("call", "failed") in ((when, outcome) for when, outcome, _ in log):
        return "failed"
    outcomes = {outcome for _, outcome, _ in log}
    return "error" if "failed" in outcomes else "skipped" if "skipped" in outcomes else "passed"


def _duration(log: list[tuple[str, str, float]]) -> float:
    return sum(duration for _, _, duration in log)


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_protocol")
def pytest_runtest_protocol_with_retries(
    item: pytest.Item, nextitem: pytest.Item | None
) -> bool | None:
    """pytest's protocol for one item, repeated while the retry policy says so."""
    policy = _run.policy
    if policy is None:
        return None  # pytest's own protocol runs
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    _run.retrying = True
    try:
        attempt = 1
        while _attempt(item, nextitem, policy, attempt):
            time.sleep(backoff_s(policy, attempt))
            attempt += 1
            state.next_attempt(attempt)
    finally:
        _run.retrying = False
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _attempt(item: pytest.Item, nextitem: pytest.Item | None, policy: RetryPolicy, n: int) -> bool:
    """Setup, call and teardown of one attempt, each logged; True if it is to be retried."""
    _run.log, _run.failed_with = [], set()
    if n > 1:
        item._report_sections = []  # the earlier attempt's captured output
    request = hasattr(item, "_request")
    if request and not item._request:  # type: ignore[attr-defined]
        item._initrequest()  # type: ignore[attr-defined]
    top = getattr(item, "_request", None)
    try:
        reports = [call_and_report(item, "setup", log=False)]
        if reports[0].passed and not item.config.getoption("setuponly", False):
            reports.append(call_and_report(item, "call", log=False))
        failed = any(report.failed for report in reports)
        retry = failed and n <= policy.count and not _run.failed_with.isdisjoint(policy.on)
        error = _short_error(reports) if retry else ""
        note = (NOTE.format(n), _failure_text(reports)) if retry else None
        _log(item, reports, n, retry, error)  # the failure becomes "rerun": read it before
        if retry:
            after = cast(pytest.Item, _Again(item))
        elif item.session.shouldfail or item.session.shouldstop:
            after = None
        else:
            after = nextitem
        teardown = call_and_report(item, "teardown", log=False, nextitem=after)
        if note is not None:
            teardown.sections.append(note)
        _log(item, [teardown], n, retry, error)
    finally:
        if request:
            item._request = False  # type: ignore[attr-defined]
            item.funcargs = None  # type: ignore[attr-defined]
    recorder.record_test(_outcome(_run.log), retry, _duration(_run.log))
    if retry:
        _forget_failed_fixtures(item, top)
    return retry


def _log(
    item: pytest.Item, reports: list[pytest.TestReport], n: int, retry: bool, error: str
) -> None:
    """Hand the reports to pytest, a retried attempt's failures as ``rerun``."""
    props: list[tuple[str, object]] = [("readiness_attempt", str(n))]
    if retry:
        props += [("readiness_outcome", "failed"), ("readiness_error", error)]
    for report in reports:
        if retry and report.failed and report.when != "teardown":
            report.outcome = "rerun"  # type: ignore[assignment]
        report.user_properties = [*report.user_properties, *props]
        item.ihook.pytest_runtest_logreport(report=report)


def _short_error(reports: list[pytest.TestReport]) -> str:
    """The first line of the failure's message: what a reader of the JUnit file needs."""
    for report in reports:
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            text = str(crash.message if crash is not None else report.longrepr)
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            return (lines[0] if lines else "")[:ERROR_LIMIT]
    return ""


def _failure_text(reports: list[pytest.TestReport]) -> str:
    """The whole failure of a retried attempt (its traceback), for the JUnit XML."""
    return next((report.longreprtext for report in reports if report.failed), "")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> Generator[None, object, object]:
    """Put a retried attempt's failure (its teardown report's ``readiness:`` section) into
    that attempt's ``<testcase>`` as ``<system-out>``.

    junitxml writes only ``Captured stdout`` sections there, and only when
    ``junit_logging`` asks; so the element is added to the testcase once junitxml has
    finished it (at the teardown report), last, whatever the settings. Here rather than
    where the retry happens: with xdist, the controller writes the XML.
    """
    notes = [s for s in report.sections if s[0].startswith(NOTE_PREFIX)]
    reporter = _junit_reporter(report) if notes and report.when == "teardown" else None
    result = yield
    if reporter is not None:
        try:
            _append_output(reporter, notes)
        except Exception as exc:
            recorder.complain(exc)
    return result


def _junit_reporter(report: pytest.TestReport) -> Any:
    """junitxml's reporter of the report's testcase, or None without ``--junitxml``.
    Taken before the report is logged: junitxml forgets it when it finishes the testcase."""
    try:
        from _pytest.junitxml import xml_key

        xml = _run.config.stash.get(xml_key, None) if _run.config is not None else None
        return None if xml is None else xml.node_reporter(report)
    except Exception as exc:
        recorder.complain(exc)
        return None


def _append_output(reporter: Any, notes: list[tuple[str, str]]) -> None:
    """Add the notes to the finished ``<testcase>`` (its reporter's ``finalize`` left
    only a ``to_xml`` giving the element); an unfinished one is left alone."""
    from xml.etree import ElementTree

    from _pytest.junitxml import bin_xml_escape

    testcase = vars(reporter).get("to_xml", lambda: None)()
    if getattr(testcase, "tag", None) != "testcase":
        return
    output = ElementTree.SubElement(testcase, "system-out")
    output.text = bin_xml_escape("\n".join(f"{title}:\n{text}" for title, text in notes))


class _Again:
    """The item as its own next item, for pytest's teardown: like a sibling of the item,
    so the item (and its function-scoped fixtures) is torn down and its parents are
    kept, except a parent whose setup failed (pytest would re-raise that failure)."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item
        chain = item.listchain()[:-1]
        stack = getattr(getattr(item.session, "_setupstate", None), "stack", {})
        for index, node in enumerate(chain):
            entry = stack.get(node)
            if entry is not None and entry[1] is not None:
                chain = chain[:index]
                break
        self._parents = chain

    def listchain(self) -> list[Any]:
        return list(self._parents)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._item, name)


def _forget_failed_fixtures(item: pytest.Item, request: Any) -> None:
    """A broader-scoped fixture that failed caches its error: finish it (its finalizers
    run, its cache is cleared), so the next attempt sets it up again instead of
    re-raising the cached error."""
    info = getattr(item, "_fixtureinfo", None)
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        for definition in definitions:
            cached = getattr(definition, "cached_result", None)
            if cached is not None and cached[2] is not None:
                try:
                    definition.finish(request)
                except Exception as exc:
                    recorder.complain(exc)
                definition.cached_result = None
