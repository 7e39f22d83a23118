"""Read JUnit XML into test counts, the common currency of every layer.

pytest, Django's XML runners and most other tools write JUnit XML; a layer's verdict
comes from its exit code, but its counts come from here. The files come from remote
hosts, so a file that is missing or not XML is reported as such, never raised.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
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


def parse_counts(text: bytes | str, *, source: str = "<junit>") -> TestCounts:
    """Count the ``<testcase>`` elements by outcome (more reliable than suite attributes).

    A test case with several outcome children counts once, worst first:
    error > failure > skipped > passed. A test case the ledger hook marked as an earlier,
    failed attempt of a retried test (property ``readiness_outcome``) counts as
    ``retried``: the test itself counts once, by its last attempt.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise JUnitError(f"{source}: not valid JUnit XML ({err})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"{source}: root element is <{root.tag}>, not <testsuites>/<testsuite>")
    passed = failed = errors = skipped = retried = 0
    for case in root.iter("testcase"):
        if _retried_attempt(case):
            retried += 1
            continue
        tags = {child.tag for child in case}
        if "error" in tags:
            errors += 1
        elif "failure" in tags:
            failed += 1
        elif "skipped" in tags:
            skipped += 1
        else:
            passed += 1
    return TestCounts(
        total=passed + failed + errors + skipped,
        passed=passed,
        failed=failed,
        errors=errors,
        skipped=skipped,
        retried=retried,
    )


# The property the ledger hook (readiness_ledger) puts on an attempt it re-ran.
RETRIED_PROPERTY = "readiness_outcome"


def _retried_attempt(case: ET.Element) -> bool:
    return any(
        prop.get("name") == RETRIED_PROPERTY
        for props in case.findall("properties")
        for prop in props.findall("property")
    )


def read_counts(path: Path) -> TestCounts:
    """:func:`parse_counts` of a file, naming the file in every error."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise JUnitError(f"{path}: cannot read ({err.strerror})") from None
    return parse_counts(data, source=str(path))
