"""Read JUnit XML into test counts, the common currency of every layer.

pytest, Django's XML runners and most other tools write JUnit XML; a layer's verdict
comes from its exit code, but its counts come from here. The files come from remote
hosts, so a file that is missing or not XML is reported as such, never raised.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
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


def parse_counts(text: bytes | str, *, source: str = "<junit>") -> TestCounts:
    """Count the ``<testcase>`` elements by outcome (more reliable than suite attributes).

    A test case with several outcome children counts once, worst first:
    error > failure > skipped > passed. A test case the ledger hook marked as an earlier,
    failed attempt of a retried test (property ``readiness_outcome``) counts as
    ``retried``: the test itself counts once, by its last attempt.
    """
    root = parse_root(text, source=source)
    return count_statuses(case_status(case) for case in root.iter("testcase"))


def read_counts(path: Path) -> TestCounts:
    """:func:`parse_counts` of a file, naming the file in every error."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise JUnitError(f"{path}: cannot read ({err.strerror})") from None
    return parse_counts(data, source=str(path))
