"""Every test case of a run: parsed from the layers' JUnit, kept as JSON lines, merged."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.junit import JUnitError, TestCounts, parse_counts
from orchestrator.record import LayerRecord, RunRecord
from orchestrator.store import RunStore
from orchestrator.testcases import (
    MERGED_JUNIT,
    TESTS_FILE,
    TestCase,
    merged_junit,
    parse_cases,
    read_cases,
    run_cases,
    to_line,
    write_run_tests,
)
from orchestrator.vault import encoded_forms, redact

MIXED = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites>
 <testsuite name="pytest">
  <testcase classname="t.a" name="ok" time="0.25"/>
  <testcase classname="t.a" name="bad" time="1.5">
   <failure message="assert 1 == 2" type="AssertionError">Traceback: line 3</failure>
  </testcase>
  <testsuite name="nested">
   <testcase classname="t.b" name="broken" time="oops"><error message="setup" type="E"/></testcase>
   <testcase classname="t.b" name="both"><failure message="f"/><error message="e"/></testcase>
  </testsuite>
  <testcase classname="t.c" name="later" time="-3"><skipped message="no db"/></testcase>
  <testcase name="bare" time="nan"/>
 </testsuite>
</testsuites>"""


def test_each_case_gets_its_status_worst_first_its_duration_and_its_position() -> None:
    cases = parse_cases(MIXED, layer="unit", host="h1")
    assert [(c.id, c.status, c.duration_s, c.position) for c in cases] == [
        ("t.a::ok", "passed", 0.25, 1),
        ("t.a::bad", "failed", 1.5, 2),
        ("t.b::broken", "error", 0.0, 3),  # nested suites in document order
        ("t.b::both", "error", 0.0, 4),  # an error beats a failure
        ("t.c::later", "skipped", 0.0, 5),  # a negative time is no duration
        ("bare", "passed", 0.0, 6),  # nor is NaN (JSON could not hold it)
    ]
    assert {(c.layer, c.host) for c in cases} == {("unit", "h1")}


def test_a_failure_keeps_its_message_type_and_traceback() -> None:
    ok, bad, broken, both, later, _ = parse_cases(MIXED, layer="unit", host="h1")
    assert (bad.message, bad.kind, bad.text) == (
        "assert 1 == 2",
        "AssertionError",
        "Traceback: line 3",
    )
    assert (broken.message, broken.kind, broken.text) == ("setup", "E", None)
    assert both.message == "e" and later.message == "no db"
    assert (ok.message, ok.kind, ok.text) == (None, None, None)


def test_long_messages_and_texts_keep_their_start_and_say_how_much_was_cut() -> None:
    message, text = "m" * 2_500, "t" * 20_000 + "END" * 1_000
    failure = ET.Element("failure", message=message)
    failure.text = text
    suite = ET.Element("testsuite")
    ET.SubElement(suite, "testcase", name="long").append(failure)
    (case,) = parse_cases(ET.tostring(suite), layer="unit", host="h1")
    assert case.message == "m" * 2_000 + "\n[... 500 chars cut]"
    assert case.text is not None and case.text.startswith("t" * 20_000)
    assert case.text.endswith("[... 3000 chars cut]") and "END" not in case.text


RETRIED = b"""<testsuite>
<testcase classname="it" name="a"><properties>
 <property name="readiness_attempt" value="1"/>
 <property name="readiness_outcome" value="failed"/>
 <property name="readiness_error" value="ConnectionResetError: [Errno 104]"/>
</properties><system-out>readiness: attempt 1 failed</system-out></testcase>
<testcase classname="it" name="a"><properties><property name="readiness_attempt" value="2"/>
</properties></testcase>
</testsuite>"""


def test_an_earlier_attempt_of_a_retried_test_is_retried_with_its_attempt_and_error() -> None:
    first, last = parse_cases(RETRIED, layer="rest", host="h1")
    assert (first.status, first.attempt, first.message) == (
        "retried",
        1,
        "ConnectionResetError: [Errno 104]",
    )
    assert (last.status, last.attempt, last.message) == ("passed", 2, None)
    assert first.id == last.id == "it::a" and (first.position, last.position) == (1, 2)


@pytest.mark.parametrize(
    "data", [b"", b"not xml", b"<html><body/></html>", b'<testsuite name="\x1b[31m"/>']
)
def test_a_file_that_is_not_junit_is_an_error_naming_its_source(data: bytes) -> None:
    with pytest.raises(JUnitError, match=r"h1:/srv/r/results/unit\.xml"):
        parse_cases(data, layer="unit", host="h1", source="h1:/srv/r/results/unit.xml")


# Test names and messages are the hosts' data: markup, template syntax, escapes written
# out by pytest (#x1B), line and paragraph separators must stay the text they are.
HOSTILE = [
    "<script>alert(1)</script>",
    "{{7*7}}",
    "{% raw %}x",
    "#x1B[31mred#x1B[0m",
    "tab\there",
    "line\u2028sep\x85next",
    "émoji 🚀",
]


def hostile_junit() -> bytes:
    suite = ET.Element("testsuite")
    for name in HOSTILE:
        case = ET.SubElement(suite, "testcase", classname="h", name=name)
        ET.SubElement(case, "failure", message=name).text = name
    data: bytes = ET.tostring(suite, encoding="utf-8")
    return data


def new_run(tmp_path: Path, started_at: str = "2024-05-01T12:00:00Z") -> tuple[RunStore, RunRecord]:
    store = RunStore.create(tmp_path / "runs", "inv")
    record = RunRecord(store.run_id, "inv", "inv.yaml", "suite", "single", started_at)
    return store, record


def add_layer(
    store: RunStore,
    record: RunRecord,
    name: str,
    files: dict[str, bytes | None],
    start_s: float | None = 0.0,
) -> None:
    """A layer as the layers step leaves it: each host's JUnit stored (None: named in
    the record, but not on disk), its counts in the record."""
    junit, tests = [], TestCounts()
    for host, data in files.items():
        path = store.path("junit", name, f"{host}.xml")
        if data is not None:
            store.write_bytes(data, "junit", name, f"{host}.xml")
            tests = tests + parse_counts(data)
        junit.append(store.relative(path))
    record.layers.append(
        LayerRecord(name, "client", list(files), "passed", 1.0, tests, junit, start_s=start_s)
    )


def test_hostile_names_are_kept_literally_and_read_back_unchanged(tmp_path: Path) -> None:
    store, record = new_run(tmp_path)
    add_layer(store, record, "rest", {"h1": hostile_junit()})
    write_run_tests(store, record)
    raw = (store.dir / TESTS_FILE).read_text()
    assert "<script>alert(1)</script>" in raw and "{{7*7}}" in raw and "&lt;" not in raw
    assert len(raw.splitlines()) == len(HOSTILE)  # separators inside names split no line
    cases = read_cases(store.dir, record.tests_file)
    assert [c.name for c in cases] == HOSTILE
    assert [(c.message, c.text) for c in cases] == [(n, n) for n in HOSTILE]
    assert cases == parse_cases(hostile_junit(), layer="rest", host="h1")


def test_tests_jsonl_has_one_case_a_line_layers_in_order_hosts_in_order(tmp_path: Path) -> None:
    store, record = new_run(tmp_path)
    add_layer(store, record, "unit", {"h1": MIXED})
    add_layer(
        store,
        record,
        "rest",
        {"web2": RETRIED, "web1": b'<testsuite><testcase name="x"/></testsuite>'},
    )
    write_run_tests(store, record)
    assert (record.tests_file, record.junit_file) == (TESTS_FILE, MERGED_JUNIT)
    lines = [json.loads(line) for line in (store.dir / TESTS_FILE).read_text().splitlines()]
    assert [(d["layer"], d["host"], d["position"]) for d in lines] == [
        *[("unit", "h1", n) for n in range(1, 7)],
        ("rest", "web2", 1),
        ("rest", "web2", 2),
        ("rest", "web1", 1),
    ]
    assert lines[1] == to_line(parse_cases(MIXED, layer="unit", host="h1")[1])
    for name in (TESTS_FILE, MERGED_JUNIT):
        assert stat.S_IMODE((store.dir / name).stat().st_mode) == 0o600


def test_the_merged_junit_has_a_suite_per_layer_and_host_and_adds_up(tmp_path: Path) -> None:
    store, record = new_run(tmp_path, "2024-05-01T12:00:00Z")
    add_layer(store, record, "unit", {"h1": MIXED}, start_s=5.0)
    add_layer(store, record, "rest", {"c1": RETRIED, "c2": MIXED}, start_s=75.6)
    write_run_tests(store, record)
    merged = (store.dir / MERGED_JUNIT).read_bytes()
    root = ET.fromstring(merged)
    suites = [(s.get("name"), s.get("hostname"), s.get("timestamp")) for s in root]
    assert suites == [
        ("unit", "h1", "2024-05-01T12:00:05Z"),
        ("rest", "c1", "2024-05-01T12:01:15Z"),
        ("rest", "c2", "2024-05-01T12:01:15Z"),
    ]
    layers = TestCounts()
    for layer in record.layers:
        layers = layers + layer.tests
    assert parse_counts(merged) == layers and layers.retried == 1
    unit = root[0]
    assert [unit.get(k) for k in ("tests", "failures", "errors", "skipped", "time")] == [
        "6",
        "1",
        "2",
        "1",
        "1.750",
    ]
    assert root.get("tests") == str(layers.total)


def test_the_merged_junit_keeps_each_case_as_it_was_parsed(tmp_path: Path) -> None:
    store, record = new_run(tmp_path)
    add_layer(store, record, "rest", {"h1": RETRIED}, start_s=1.0)
    add_layer(store, record, "unit", {"h1": MIXED}, start_s=2.0)
    write_run_tests(store, record)
    suites = ET.fromstring((store.dir / MERGED_JUNIT).read_bytes())
    again = [
        case
        for suite in suites
        for case in parse_cases(ET.tostring(suite), layer=str(suite.get("name")), host="h1")
    ]
    assert again == read_cases(store.dir)


def hand_made(name: str, message: str) -> TestCase:
    return TestCase("unit", "h1", "c", name, "failed", 0.1, 1, message, "E", message)


def test_characters_xml_cannot_hold_are_made_visible_and_the_file_still_parses(
    tmp_path: Path,
) -> None:
    store, record = new_run(tmp_path)
    add_layer(store, record, "unit", {})
    case = hand_made("\x1b[31mred\x1b[0m\x00", "bell\x07 lone\ud800 \ufffe")
    root = ET.fromstring(merged_junit(record, [(record.layers[0], "h1", [case])]))
    (element,) = root.iter("testcase")
    failure = element.find("failure")
    assert element.get("name") == "#x1B[31mred#x1B[0m#x00"
    assert failure is not None and failure.get("message") == "bell#x07 lone#xD800 #xFFFE"
    assert failure.text == failure.get("message")


# Every character XML 1.0 can hold (utf-8 excludes the lone surrogates).
XML_CHARS = st.characters(
    codec="utf-8", min_codepoint=0x20, blacklist_characters="\ufffe\uffff"
) | st.sampled_from("\t\n\r")


@given(name=st.text(XML_CHARS), message=st.text(XML_CHARS))
def test_any_name_and_message_xml_can_hold_come_back_from_the_merged_file(
    name: str, message: str
) -> None:
    record = RunRecord("r", "inv", "inv.yaml", "suite", "single", "2024-05-01T12:00:00Z")
    layer = LayerRecord("unit", "server", ["h1"], "failed", 1.0)
    merged = merged_junit(record, [(layer, "h1", [hand_made(name, message)])])
    (case,) = parse_cases(merged, layer="unit", host="h1")
    assert (case.name, case.message) == (name, message)


def test_a_stored_junit_that_is_missing_or_garbled_is_skipped(tmp_path: Path) -> None:
    store, record = new_run(tmp_path)
    add_layer(store, record, "unit", {"h1": None})  # recorded, then lost from disk
    add_layer(store, record, "pure", {"h1": None})
    store.write_bytes(b"not xml at all", "junit", "pure", "h1.xml")
    add_layer(store, record, "rest", {"h1": RETRIED})
    write_run_tests(store, record)
    assert {c.layer for c in read_cases(store.dir, record.tests_file)} == {"rest"}
    assert [s.get("name") for s in ET.parse(store.dir / MERGED_JUNIT).getroot()] == ["rest"]


def test_a_path_outside_the_run_is_never_read(tmp_path: Path) -> None:
    store, record = new_run(tmp_path)
    (tmp_path / "runs" / "elsewhere.xml").write_bytes(MIXED)
    record.layers.append(
        LayerRecord("unit", "server", ["h1"], "passed", 1.0, junit=["../elsewhere.xml"])
    )
    write_run_tests(store, record)
    assert record.tests_file is None and not (store.dir / TESTS_FILE).exists()


def test_a_run_without_any_junit_leaves_the_record_without_test_files(tmp_path: Path) -> None:
    store, record = new_run(tmp_path)
    record.layers.append(LayerRecord("migrate", "server", ["h1"], "passed", 1.0, setup=True))
    record.layers.append(LayerRecord("rest", "client", ["h1"], "blocked", 0.0))
    write_run_tests(store, record)
    assert (record.tests_file, record.junit_file) == (None, None)
    assert not (store.dir / TESTS_FILE).exists() and not (store.dir / MERGED_JUNIT).exists()
    assert read_cases(store.dir, record.tests_file) == []


def test_a_run_recorded_before_tests_jsonl_existed_gets_its_cases_from_its_junit(
    tmp_path: Path,
) -> None:
    store, record = new_run(tmp_path)
    add_layer(store, record, "unit", {"h1": MIXED})
    assert record.tests_file is None  # as a schema-3 record: no tests.jsonl was written
    assert run_cases(store.dir, record) == parse_cases(MIXED, layer="unit", host="h1")
    write_run_tests(store, record)
    (store.dir / "junit" / "unit" / "h1.xml").unlink()  # from now on the file is the source
    assert run_cases(store.dir, record) == parse_cases(MIXED, layer="unit", host="h1")


@pytest.mark.parametrize("named", ["{outside}", "../../outside.jsonl", "a/../../../outside.jsonl"])
def test_a_tests_file_the_record_names_outside_its_run_is_never_read(
    tmp_path: Path, named: str
) -> None:
    store, _ = new_run(tmp_path)  # the run is tmp_path/runs/<id>
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(to_line(hand_made("SECRET_FROM_OUTSIDE", "x"))) + "\n")
    target = named.format(outside=outside)
    assert (store.dir / target).resolve() == outside.resolve()  # it does lead there
    assert read_cases(store.dir, target) == []


def test_a_tests_file_that_is_a_fifo_is_not_read(tmp_path: Path) -> None:
    store, _ = new_run(tmp_path)
    os.mkfifo(store.dir / "tests.jsonl")
    assert read_cases(store.dir, "tests.jsonl") == []  # returns at once, never blocks


@pytest.mark.parametrize("secret", ["Tr0ub&dor<3", 'it\'s"quoted">', "plain-secret-1"])
def test_a_secret_xml_escaped_in_a_junit_file_is_scrubbed_before_it_is_parsed(
    secret: str,
) -> None:
    case = ET.Element("testcase", name="t")
    ET.SubElement(case, "failure", message=f"password={secret}").text = f"login {secret} failed"
    suite = ET.Element("testsuite")
    suite.append(case)
    stored = redact(ET.tostring(suite, encoding="unicode"), encoded_forms([secret]))
    (parsed,) = parse_cases(stored, layer="rest", host="h1")
    assert secret not in f"{parsed.message} {parsed.text}"
    assert (parsed.message, parsed.text) == ("password=[redacted]", "login [redacted] failed")


def test_a_line_nested_too_deep_to_read_is_skipped_and_the_others_kept(tmp_path: Path) -> None:
    store, _ = new_run(tmp_path)
    good = json.dumps(to_line(hand_made("kept", "x")))
    (store.dir / TESTS_FILE).write_text(f"{'[' * 200_000}\n{good}\n")
    assert [c.name for c in read_cases(store.dir, TESTS_FILE)] == ["kept"]
