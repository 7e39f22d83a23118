"""JUnit XML into counts: outcomes counted per test case, bad files named."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.junit import JUnitError, TestCounts, parse_counts, read_counts

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
