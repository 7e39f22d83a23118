"""Every test case of a run, one JSON line each: what the comparison and history read.

``run.json`` keeps counts per layer; the test-by-test comparison of two topologies and
the flakiness history need each case. They are parsed from the layers' stored JUnit XML
(``junit/<layer>/<host>.xml``) into ``tests.jsonl`` beside ``run.json``, and merged into
one ``junit.xml`` per run (one ``<testsuite>`` per layer and host) for CI tools. Both are
rebuilt from the stored JUnit after every layer, so an interrupted run keeps what ran.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from orchestrator.junit import (
    ATTEMPT_PROPERTY,
    OUTCOME_TAGS,
    RETRIED_PROPERTY,
    JUnitError,
    TestCounts,
    case_status,
    count_statuses,
    outcome_element,
    parse_root,
    properties,
)
from orchestrator.record import LayerRecord, RunRecord
from orchestrator.store import RunStore

TESTS_FILE = "tests.jsonl"
MERGED_JUNIT = "junit.xml"
# What one case keeps of its outcome: a message is a line, a text a traceback. Both come
# from the hosts' files; a test that prints megabytes must not grow every run's files.
MESSAGE_LIMIT = 2_000
TEXT_LIMIT = 20_000
# The property the ledger hook puts the failed attempt's short error in.
ERROR_PROPERTY = "readiness_error"


@dataclass(frozen=True)
class TestCase:
    """One ``<testcase>`` of one layer on one host.

    ``status``: passed | failed | error | skipped | retried (an earlier, failed attempt
    of a test the layer's retry policy ran again: not a test of its own). ``message``:
    the failure's (or skip's) message attribute, ``text`` its body (the traceback), both
    bounded; ``kind`` the failure's ``type`` attribute. ``position``: 1-based order of
    the case in its layer's JUnit on that host (the order the tests ran in).
    """

    __test__ = False  # not a pytest test class, despite the name

    layer: str
    host: str
    classname: str
    name: str
    status: str
    duration_s: float
    position: int
    message: str | None = None
    kind: str | None = None
    text: str | None = None
    attempt: int | None = None

    @property
    def id(self) -> str:
        """The test's identity across runs and topologies: ``classname::name``."""
        return f"{self.classname}::{self.name}" if self.classname else self.name


def to_line(case: TestCase) -> dict[str, object]:
    """The JSON object of one ``tests.jsonl`` line (``id`` included, for other tools)."""
    return {
        "id": case.id,
        "layer": case.layer,
        "host": case.host,
        "classname": case.classname,
        "name": case.name,
        "status": case.status,
        "duration_s": case.duration_s,
        "position": case.position,
        "message": case.message,
        "kind": case.kind,
        "text": case.text,
        "attempt": case.attempt,
    }


def from_line(data: object) -> TestCase | None:
    """A line read back; None for anything that is not one (a report never fails on it)."""
    if not isinstance(data, dict):
        return None
    try:
        return TestCase(
            layer=str(data["layer"]),
            host=str(data["host"]),
            classname=str(data.get("classname") or ""),
            name=str(data["name"]),
            status=str(data["status"]),
            duration_s=float(data.get("duration_s") or 0.0),
            position=int(data.get("position") or 0),
            message=_opt(data.get("message")),
            kind=_opt(data.get("kind")),
            text=_opt(data.get("text")),
            attempt=int(data["attempt"]) if data.get("attempt") is not None else None,
        )
    except (KeyError, TypeError, ValueError):
        return None


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def tests_path(run_dir: Path, tests_file: str | None) -> Path | None:
    """The run's test-case file, if the record names one that is there. The record names
    a file of its own run: never one elsewhere (a crafted run.json pointing at /etc/...
    or ../other-run), nor a FIFO or device that would hang a render."""
    if not tests_file:
        return None
    path = (run_dir / tests_file).resolve()
    return path if path.is_relative_to(run_dir.resolve()) and path.is_file() else None


def read_cases(run_dir: Path, tests_file: str | None = TESTS_FILE) -> list[TestCase]:
    """Every test case a run kept, in file order; [] when it kept none. Lines that are
    not test cases are skipped: the file is evidence, its reader must not break on it."""
    path = tests_path(run_dir, tests_file)
    if path is None:
        return []
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    cases = []
    for line in raw.split("\n"):  # not splitlines: U+2028 in a test name is no line end
        if not line.strip():
            continue
        try:
            case = from_line(json.loads(line))
        except (ValueError, RecursionError):  # not JSON, or nested beyond reading
            continue
        if case is not None:
            cases.append(case)
    return cases


def parse_cases(
    data: bytes | str, *, layer: str, host: str, source: str = "<junit>"
) -> list[TestCase]:
    """Every ``<testcase>`` of one layer's JUnit XML on one host, in document order
    (nested suites included), numbered 1..n: the order the tests ran in.

    The status is :func:`orchestrator.junit.case_status`'s, so the cases always add up to
    the layer's counts. Names, messages and texts are the host's data, kept as text and
    never interpreted; only their length is bounded. :class:`~orchestrator.junit.JUnitError`
    (naming ``source``) for a file that is not JUnit XML.
    """
    root = parse_root(data, source=source)
    return [
        _case(element, layer=layer, host=host, position=number)
        for number, element in enumerate(root.iter("testcase"), start=1)
    ]


def _case(element: ET.Element, *, layer: str, host: str, position: int) -> TestCase:
    props = properties(element)
    outcome = outcome_element(element)
    message = kind = text = None
    if outcome is not None:
        message, kind = outcome.get("message"), outcome.get("type")
        text = "".join(outcome.itertext()) or None
    status = case_status(element)
    if status == "retried" and message is None:
        # A retried attempt's failure is a "rerun" in pytest: no outcome element, only
        # the hook's short error.
        message = props.get(ERROR_PROPERTY) or None
    return TestCase(
        layer=layer,
        host=host,
        classname=element.get("classname", ""),
        name=element.get("name", ""),
        status=status,
        duration_s=_seconds(element.get("time")),
        position=position,
        message=_bounded(message, MESSAGE_LIMIT),
        kind=kind,
        text=_bounded(text, TEXT_LIMIT),
        attempt=_attempt(props.get(ATTEMPT_PROPERTY)),
    )


def _seconds(value: str | None) -> float:
    """A ``time`` attribute as seconds; 0.0 when missing or not a duration (a host's file
    says what it says, and JSON has no NaN)."""
    try:
        seconds = float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0


def _attempt(value: str | None) -> int | None:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number > 0 else None


def _bounded(value: str | None, limit: int) -> str | None:
    """The start of a long text (where the failure is named), saying how much was cut."""
    if value is None or len(value) <= limit:
        return value
    return f"{value[:limit]}\n[... {len(value) - limit} chars cut]"


def write_run_tests(store: RunStore, record: RunRecord) -> None:
    """Rebuild ``tests.jsonl`` and the merged ``junit.xml`` from the JUnit XML the
    record's layers stored, and point the record at them.

    Rebuilt whole, from the stored files, after every layer: the files always agree with
    the record, and an interrupted run keeps every case that ran. A stored file that is
    missing or unreadable is skipped (the layer's own record already says so); a run
    whose layers stored none leaves the record's ``tests_file`` and ``junit_file`` unset.
    """
    suites = list(_stored_suites(store, record))
    if not suites:
        return
    # ASCII-only JSON: a name holding U+2028 or U+0085 stays on its line for any reader
    # that splits lines the way str.splitlines does.
    lines = [json.dumps(to_line(case)) for _, _, cases in suites for case in cases]
    store.write_text("".join(f"{line}\n" for line in lines), TESTS_FILE)
    store.write_bytes(merged_junit(record, suites), MERGED_JUNIT)
    record.tests_file, record.junit_file = TESTS_FILE, MERGED_JUNIT


def run_cases(run_dir: Path, record: RunRecord) -> list[TestCase]:
    """A run's test cases: its ``tests.jsonl``, or, for a run recorded before there was
    one (schema 3 and older), parsed from the JUnit XML its layers stored."""
    if record.tests_file:
        return read_cases(run_dir, record.tests_file)
    return [case for _, _, cases in _stored_suites(RunStore(run_dir), record) for case in cases]


# (the layer, its host, the host's cases), one per JUnit file the layers stored
HostSuite = tuple[LayerRecord, str, list[TestCase]]


def _stored_suites(store: RunStore, record: RunRecord) -> Iterator[HostSuite]:
    """Each stored JUnit file that can be read, as cases: layers in record order, hosts
    in each layer's order (the order ``LayerRecord.junit`` lists them in)."""
    root = store.dir.resolve()
    for layer in record.layers:
        for relative in layer.junit:
            path = (store.dir / relative).resolve()
            if not path.is_relative_to(root):
                continue  # the record names its own files; anything else is not read
            host = _host_of(store, layer, relative)
            try:
                cases = _parsed(path, layer.name, host, relative)
            except (OSError, JUnitError):
                continue
            yield layer, host, cases


# Parsed stored files, by path and (size, mtime): tests.jsonl is rebuilt after every
# layer, and with --repeat=100 re-parsing every earlier layer's file would be quadratic.
_PARSED: dict[tuple[Path, str, str], tuple[tuple[int, int], list[TestCase]]] = {}
_PARSED_MAX = 4096


def _parsed(path: Path, layer: str, host: str, relative: str) -> list[TestCase]:
    info = path.stat()
    stamp = (info.st_size, info.st_mtime_ns)
    key = (path, layer, host)
    hit = _PARSED.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    cases = parse_cases(path.read_bytes(), layer=layer, host=host, source=relative)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[key] = (stamp, cases)
    return cases


def _host_of(store: RunStore, layer: LayerRecord, relative: str) -> str:
    """The host a stored ``junit/<layer>/<host>.xml`` belongs to. The store makes each
    name a safe file name, so the host is found by the path it would have been given."""
    for host in [*layer.hosts, *layer.per_host]:
        if store.relative(store.path("junit", layer.name, f"{host}.xml")) == relative:
            return host
    return PurePosixPath(relative).stem


def merged_junit(record: RunRecord, suites: list[HostSuite]) -> bytes:
    """One JUnit XML document for the whole run: a ``<testsuite>`` per layer and host
    (``hostname`` and ``timestamp`` say where and when), so a CI tool shows every case.

    Retried attempts stay test cases with the hook's properties, so counting the merged
    file (:func:`orchestrator.junit.parse_counts`) gives the layers' totals. Written with
    ElementTree, which escapes; characters XML 1.0 cannot hold at all (an ANSI colour's
    ESC) are made visible first, so the file always parses.
    """
    total = TestCounts()
    root = ET.Element("testsuites", name=_xml_text(f"readiness {record.run_id}"))
    for layer, host, cases in suites:
        counts = count_statuses(case.status for case in cases)
        total = total + counts
        suite = ET.SubElement(root, "testsuite", _suite_attributes(record, layer, host, counts))
        suite.set("time", _time(sum(case.duration_s for case in cases)))
        for case in cases:
            _testcase(suite, case)
    root.attrib.update(_count_attributes(total))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _suite_attributes(
    record: RunRecord, layer: LayerRecord, host: str, counts: TestCounts
) -> dict[str, str]:
    attributes = {"name": _xml_text(layer.name), "hostname": _xml_text(host)}
    stamp = _timestamp(record.started_at, layer.start_s)
    if stamp is not None:
        attributes["timestamp"] = stamp
    return {**attributes, **_count_attributes(counts)}


def _count_attributes(counts: TestCounts) -> dict[str, str]:
    return {
        "tests": str(counts.total),
        "failures": str(counts.failed),
        "errors": str(counts.errors),
        "skipped": str(counts.skipped),
    }


def _timestamp(started_at: str, start_s: float | None) -> str | None:
    """When the layer started, in UTC to the second; None when the record's start is not
    a time (an old or hand-made record: better no timestamp than a wrong one)."""
    try:
        started = datetime.fromisoformat(started_at)
    except ValueError:
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    moment = started.astimezone(UTC) + timedelta(seconds=start_s or 0.0)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _testcase(suite: ET.Element, case: TestCase) -> None:
    element = ET.SubElement(
        suite,
        "testcase",
        classname=_xml_text(case.classname),
        name=_xml_text(case.name),
        time=_time(case.duration_s),
    )
    props: dict[str, str] = {}
    if case.attempt is not None:
        props[ATTEMPT_PROPERTY] = str(case.attempt)
    if case.status == "retried":
        props[RETRIED_PROPERTY] = "failed"
        if case.message:
            props[ERROR_PROPERTY] = case.message
    if props:
        holder = ET.SubElement(element, "properties")
        for name, value in props.items():
            ET.SubElement(holder, "property", name=name, value=_xml_text(value))
    tag = next((tag for tag, status in OUTCOME_TAGS.items() if status == case.status), None)
    if tag is not None:
        outcome = ET.SubElement(element, tag)
        if case.message is not None:
            outcome.set("message", _xml_text(case.message))
        if case.kind is not None:
            outcome.set("type", _xml_text(case.kind))
        outcome.text = _xml_text(case.text) if case.text else None
    elif case.status == "retried" and case.text:
        ET.SubElement(element, "system-out").text = _xml_text(case.text)


def _time(seconds: float) -> str:
    return f"{seconds:.3f}"


# What XML 1.0 cannot hold, not even as a character reference: C0 controls but tab, LF
# and CR; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: str) -> str:
    """``value`` with each character XML cannot hold written as ``#xNN`` (pytest's way):
    visible, and the file still parses."""
    return _NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", value)
