"""Read JUnit XML into test counts, the common currency of every layer.

pytest, Django's XML runners and most other tools write JUnit XML; a layer's verdict
comes from its exit code, but its counts come from here. The files come from remote
hosts, so a file that is missing or not XML is reported as such, never raised.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestCounts:
    """How many tests a layer ran, by outcome."""

    __test__ = False  # not a pytest test class, despite the name

    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    # Earlier attempts of tests the layer's retry policy re-ran: not tests of their own,
    # but never forgotten (each is a <testcase> in the JUnit XML).
    retried: int = 0

    def __add__(self, other: TestCounts) -> TestCounts:
        return TestCounts(
            total=self.total + other.total,
            passed=self.passed + other.passed,
            failed=self.failed + other.failed,
            errors=self.errors + other.errors,
            skipped=self.skipped + other.skipped,
            retried=self.retried + other.retried,
        )


class JUnitError(ValueError):
    """The file is not JUnit XML we can read; the message names the file."""


def parse_root(text: bytes | str, *, source: str = "<junit>") -> ET.Element:
    """The root of a JUnit XML document, checked to be one; the one parse that both the
    counts and the test cases (:mod:`orchestrator.testcases`) read from."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise JUnitError(f"{source}: not valid JUnit XML ({err})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"{source}: root element is <{root.tag}>, not <testsuites>/<testsuite>")
    return root


# The property the ledger hook (readiness_ledger) puts on an attempt it re-ran, and the
# one with each attempt's number (on every attempt of a test under a retry policy).
RETRIED_PROPERTY = "readiness_outcome"
ATTEMPT_PROPERTY = "readiness_attempt"
# A test case's outcome element, worst first, and the status each gives the case.
OUTCOME_TAGS = {"error": "error", "failure": "failed", "skipped": "skipped"}


def properties(case: ET.Element) -> dict[str, str]:
    """A test case's ``<properties>`` as a mapping (the first value of a repeated name)."""
    found: dict[str, str] = {}
    for props in case.findall("properties"):
        for prop in props.findall("property"):
            found.setdefault(prop.get("name", ""), prop.get("value", ""))
    return found


def outcome_element(case: ET.Element) -> ET.Element | None:
    """The child that decides a test case's outcome, worst first (error > failure >
    skipped): a case with several counts once, by the worst."""
    for tag in OUTCOME_TAGS:
        found = case.find(tag)
        if found is not None:
            return found
    return None


def case_status(case: ET.Element) -> str:
    """passed | failed | error | skipped, or ``retried`` for an earlier, failed attempt of
    a test the ledger hook re-ran (the test itself counts once, by its last attempt)."""
    if RETRIED_PROPERTY in properties(case):
        return "retried"
    element = outcome_element(case)
    return "passed" if element is None else OUTCOME_TAGS[element.tag]


def count_statuses(statuses: Iterable[str]) -> TestCounts:
    """The counts of test cases given by their :func:`case_status`."""
    seen = Counter(statuses)
    total = seen["passed"] + seen["failed"] + seen["error"] + seen["skipped"]
    return TestCounts(
        total=total,
        passed=seen["passed"],
        failed=seen["failed"],
        errors=seen["error"],
        skipped=seen["skipped"],
        retried=seen["retried"],
    )


# What a file's counts are read in: the parser sees it a piece at a time.
_READ_PIECE = 1 << 20
_ROOTS = ("testsuites", "testsuite")


class _CaseCounter:
    """A parser target (:class:`xml.etree.ElementTree.XMLParser`) that counts the test
    cases as the document streams past, holding only the open test case.

    Nothing outside a ``<testcase>`` is kept, and no text at all (the target has no
    ``data``): a test case is built as elements with their attributes, judged by
    :func:`case_status` when it ends, and dropped. So memory follows the largest test
    case's markup, not the file, nor the output a test printed into ``<system-out>``.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.rooted = False
        self.open: list[ET.Element] = []  # the elements of the open test case, outermost first
        self.statuses: Counter[str] = Counter()

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if not self.rooted:
            self.rooted = True
            if tag not in _ROOTS:
                raise JUnitError(
                    f"{self.source}: root element is <{tag}>, not <testsuites>/<testsuite>"
                )
        if self.open or tag == "testcase":
            element = ET.Element(tag, attrib)
            if self.open:
                self.open[-1].append(element)
            self.open.append(element)

    def end(self, tag: str) -> None:
        if self.open:  # inside a test case every element is open in it
            element = self.open.pop()
            if element.tag == "testcase":
                self.statuses[case_status(element)] += 1

    def counts(self) -> TestCounts:
        return count_statuses(self.statuses.elements())


def _count_pieces(pieces: Iterable[bytes | str], source: str) -> TestCounts:
    """The counts of a document given in pieces (:class:`_CaseCounter`)."""
    counter = _CaseCounter(source)
    parser = ET.XMLParser(target=counter)
    try:
        for piece in pieces:
            parser.feed(piece)
        parser.close()
    except ET.ParseError as err:
        raise JUnitError(f"{source}: not valid JUnit XML ({err})") from None
    return counter.counts()


def parse_counts(text: bytes | str, *, source: str = "<junit>") -> TestCounts:
    """Count the ``<testcase>`` elements by outcome (more reliable than suite attributes).

    A test case with several outcome children counts once, worst first:
    error > failure > skipped > passed. A test case the ledger hook marked as an earlier,
    failed attempt of a retried test (property ``readiness_outcome``) counts as
    ``retried``: the test itself counts once, by its last attempt.
    """
    return _count_pieces([text], source)


def read_counts(path: Path, *, source: str | None = None) -> TestCounts:
    """:func:`parse_counts` of a file, read and parsed a piece at a time: memory does not
    grow with the file (a layer's may be hundreds of MiB). Every error names ``source``
    (the file, unless told where it came from)."""
    name = str(path) if source is None else source

    def pieces() -> Iterator[bytes]:
        try:
            with path.open("rb") as handle:
                while piece := handle.read(_READ_PIECE):
                    yield piece
        except OSError as err:
            raise JUnitError(f"{name}: cannot read ({err.strerror})") from None

    return _count_pieces(pieces(), name)
