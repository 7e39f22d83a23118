"""JUnit XML into counts: outcomes counted per test case, bad files named."""

from __future__ import annotations

import tracemalloc
import xml.etree.ElementTree as ET
from pathlib import Path
from unittest.mock import patch

import pytest

from orchestrator.junit import (
    JUnitError,
    TestCounts,
    case_status,
    count_statuses,
    parse_counts,
    read_counts,
)

PYTEST_XML = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5">
<testcase classname="a" name="ok1"/>
<testcase classname="a" name="ok2"><system-out>x</system-out></testcase>
<testcase classname="a" name="bad"><failure message="boom"/></testcase>
<testcase classname="a" name="broken"><error message="setup"/></testcase>
<testcase classname="a" name="later"><skipped message="no"/></testcase>
</testsuite></testsuites>"""


def test_counts_each_outcome_once() -> None:
    assert parse_counts(PYTEST_XML) == TestCounts(total=5, passed=2, failed=1, errors=1, skipped=1)


def test_a_bare_testsuite_root_is_accepted() -> None:
    xml = '<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>'
    assert parse_counts(xml) == TestCounts(total=2, passed=1, failed=1)


def test_a_case_with_failure_and_error_counts_as_error() -> None:
    xml = '<testsuite><testcase name="a"><failure/><error/></testcase></testsuite>'
    assert parse_counts(xml) == TestCounts(total=1, errors=1)


def test_counts_add_up() -> None:
    total = TestCounts(2, 1, 1, 0, 0) + TestCounts(3, 3, 0, 0, 0)
    assert total == TestCounts(total=5, passed=4, failed=1, errors=0, skipped=0)


@pytest.mark.parametrize("text", ["", "not xml", "<html><body/></html>"])
def test_garbage_is_an_error_naming_the_source(text: str) -> None:
    with pytest.raises(JUnitError, match=r"host1/junit\.xml"):
        parse_counts(text, source="host1/junit.xml")


def test_missing_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(JUnitError, match=r"missing\.xml"):
        read_counts(tmp_path / "missing.xml")


def test_an_earlier_attempt_of_a_retried_test_counts_as_retried_not_as_a_test() -> None:
    text = (
        "<testsuite>"
        '<testcase name="a"><properties><property name="readiness_attempt" value="1"/>'
        '<property name="readiness_outcome" value="failed"/></properties></testcase>'
        '<testcase name="a"><properties><property name="readiness_attempt" value="2"/>'
        "</properties></testcase>"
        '<testcase name="b"><failure message="x"/></testcase>'
        "</testsuite>"
    )
    assert parse_counts(text) == TestCounts(total=2, passed=1, failed=1, retried=1)


# --------------------------------------------------------------------------- streamed


def _tree_counts(text: bytes) -> TestCounts:
    """What the counts were before they streamed: the whole tree, every ``<testcase>``."""
    root = ET.fromstring(text)
    return count_statuses(case_status(case) for case in root.iter("testcase"))


MIXED = (
    b'<?xml version="1.0" encoding="utf-8"?><testsuites>'
    b'<testsuite name="s"><properties><property name="readiness_outcome" value="x"/>'
    b"</properties><system-out>suite output, no test case</system-out>"
    b'<testcase name="a"><properties><property name="readiness_outcome" value="failed"/>'
    b"</properties><failure/></testcase>"
    b'<testcase name="a"><system-out>caf\xc3\xa9 &amp; more</system-out></testcase>'
    b'<testcase name="b"><skipped/><failure message="m"/></testcase>'
    b'<testcase name="c"><error/><testcase name="inner"><failure/></testcase></testcase>'
    b"</testsuite><testsuite><testcase/></testsuite></testsuites>"
)


def test_streamed_counts_match_the_whole_tree_whatever_the_pieces(tmp_path: Path) -> None:
    """A retried attempt, a suite-level property that is no test's, an outcome hidden
    behind a worse one, a nested case: counted as the whole tree counts them, however
    the file is cut (one byte at a time cuts inside the 2-byte é, too)."""
    expected = _tree_counts(MIXED)
    # b: skipped and failed counts as failed; the nested case's failure counts too.
    assert expected == TestCounts(total=5, passed=2, failed=2, errors=1, skipped=0, retried=1)
    assert parse_counts(MIXED) == expected
    path = tmp_path / "mixed.xml"
    path.write_bytes(MIXED)
    for piece in (1, 2, 7, 64):
        with patch("orchestrator.junit._READ_PIECE", piece):
            assert read_counts(path) == expected, piece


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (b"", "not valid JUnit XML (no element found"),
        (b"<testsuite><testcase>", "not valid JUnit XML (no element found"),
        (b"<html><body/></html>", "root element is <html>, not <testsuites>/<testsuite>"),
        (b"<testsuite/><x/>", "not valid JUnit XML (junk after document element"),
    ],
)
def test_a_streamed_file_that_is_not_junit_is_named_by_its_source(
    tmp_path: Path, text: bytes, said: str
) -> None:
    """The stored copy is read, but the message names where the file came from."""
    path = tmp_path / "h1.xml.part"
    path.write_bytes(text)
    with pytest.raises(JUnitError) as err:
        read_counts(path, source="h1:/srv/r/results/run1/unit.xml")
    assert str(err.value).startswith(f"h1:/srv/r/results/run1/unit.xml: {said}")
    with pytest.raises(JUnitError, match=r"^h1:x: root element|^h1:x: not valid"):
        parse_counts(text, source="h1:x")


def test_counting_a_large_file_holds_neither_the_file_nor_its_text(tmp_path: Path) -> None:
    """22 MiB of JUnit XML (a test's captured output in each case, as pytest writes it)
    is counted with a few MiB of memory: a piece of the file and the open test case. Read
    whole and parsed into a tree, as before, it needed several times the file."""
    path = tmp_path / "big.xml"
    output = "x" * 4000
    case = f'<testcase name="t"><system-out>{output}</system-out></testcase>'
    failing = f'<testcase name="f"><failure message="m">{output}</failure></testcase>'
    with path.open("w") as f:
        f.write("<testsuites><testsuite>")
        for _ in range(300):
            f.write(case * 9 + failing)
        for _ in range(2700):
            f.write(case)
        f.write("</testsuite></testsuites>")
    size = path.stat().st_size
    assert size > 20 << 20  # 22 MiB
    tracemalloc.start()
    try:
        counts = read_counts(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert counts == TestCounts(total=5700, passed=5400, failed=300)
    assert peak < 8 << 20, f"peak {peak / (1 << 20):.1f} MiB for a {size >> 20} MiB file"
