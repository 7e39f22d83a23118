"""The ledger on the control node: the hook's lines read back, tests judged by them."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

from orchestrator.ledger import flagged_reasons, flagged_tests, ledger_path, parse
from orchestrator.vault import encoded_forms, redact


def line(**fields: Any) -> str:
    base: dict[str, Any] = {"v": 1, "at": 1700000000.5, "pid": 7, "layer": "rest"}
    return json.dumps({**base, **fields})


def error(test: str | None, attempt: int = 1, errno: str = "ECONNRESET") -> str:
    return line(
        kind="error",
        test=test,
        position=1,
        attempt=attempt,
        op="recv",
        errno=errno,
        exception="ConnectionResetError",
        message="[Errno 104] Connection reset by peer",
        local="10.0.0.3:41000",
        remote="10.0.0.2:8000",
        reused=False,
        source="socket",
    )


def attempt_line(name: str, attempt: int, outcome: str, retry: bool = False) -> str:
    return line(
        kind="test",
        test=name,
        position=1,
        attempt=attempt,
        outcome=outcome,
        retry=retry,
        duration_s=0.1,
    )


def test_the_ledger_sits_beside_the_junit_xml() -> None:
    assert ledger_path("/srv/r/results/run-1", "rest") == "/srv/r/results/run-1/rest.ledger.jsonl"


def test_lines_become_events_and_attempts_with_their_host_and_layer() -> None:
    parsed = parse(
        "\n".join([error("t.py::a"), attempt_line("t.py::a", 1, "failed")]), "h2", "rest"
    )
    (event,) = parsed.events
    assert (event.host, event.layer, event.errno, event.remote) == (
        "h2",
        "rest",
        "ECONNRESET",
        "10.0.0.2:8000",
    )
    (attempt,) = parsed.attempts
    assert (attempt.test, attempt.outcome, attempt.attempt) == ("t.py::a", "failed", 1)
    assert parsed.unreadable == 0


def test_a_truncated_or_foreign_line_is_counted_not_raised() -> None:
    text = "\n".join([error(None), '{"kind": "error", "at": 1', "not json", "[1, 2]", ""])
    parsed = parse(text, "h1", "rest")
    assert len(parsed.events) == 1 and parsed.unreadable == 3


def test_a_line_of_a_kind_this_version_does_not_know_is_ignored() -> None:
    assert parse(line(kind="start"), "h1", "rest").unreadable == 0


def test_a_test_that_passed_on_its_second_attempt_is_passed_with_retries() -> None:
    text = "\n".join(
        [
            error("t.py::a"),
            attempt_line("t.py::a", 1, "failed", retry=True),
            attempt_line("t.py::a", 2, "passed"),
            attempt_line("t.py::b", 1, "passed"),
        ]
    )
    (flagged,) = flagged_tests(parse(text, "h2", "rest"))
    assert (flagged.test, flagged.status, flagged.attempts, flagged.errors) == (
        "t.py::a",
        "passed-with-retries",
        2,
        ["ECONNRESET"],
    )


def test_a_test_that_passed_while_the_ledger_saw_an_error_in_it_is_flagged() -> None:
    text = "\n".join([error("t.py::a", errno="EPIPE"), attempt_line("t.py::a", 1, "passed")])
    (flagged,) = flagged_tests(parse(text, "h2", "rest"))
    assert flagged.status == "passed-with-transport-errors" and flagged.errors == ["EPIPE"]


def test_failed_tests_and_clean_passes_are_not_flagged() -> None:
    text = "\n".join(
        [
            error("t.py::a"),
            attempt_line("t.py::a", 1, "failed", retry=True),
            attempt_line("t.py::a", 2, "failed"),
            attempt_line("t.py::b", 1, "passed"),
            error(None),  # outside any test: not a test's error
        ]
    )
    assert flagged_tests(parse(text, "h2", "rest")) == []


def test_the_verdict_names_the_flagged_tests_per_layer() -> None:
    text = "\n".join(
        [attempt_line("t.py::a", 1, "failed", retry=True), attempt_line("t.py::a", 2, "passed")]
        + [error(f"t.py::n{i}") for i in range(5)]
        + [attempt_line(f"t.py::n{i}", 1, "passed") for i in range(5)]
    )
    (reason,) = flagged_reasons(flagged_tests(parse(text, "h2", "rest")))
    assert reason == (
        "layer 'rest': 1 test(s) passed only after retries (t.py::a x2); 5 test(s) passed "
        "while the ledger recorded transport errors in them (t.py::n0, t.py::n1, t.py::n2 "
        "and 2 more)"
    )


def test_a_secret_is_scrubbed_from_ledger_lines_in_every_encoding_it_may_take() -> None:
    secret = 'pä"ss w0rd/é'
    message = f"GET /x?token={quote_plus(secret)} failed for {secret}; {quote(secret, safe='')}"
    text = (
        line(kind="error", message=message) + "\n" + json.dumps({"m": secret}, ensure_ascii=False)
    )
    scrubbed = redact(text, encoded_forms([secret]))
    assert "w0rd" not in scrubbed and scrubbed.count("[redacted]") == 4, scrubbed
    # Still JSON, one line each: the ledger reads it back.
    assert [json.loads(x)["kind"] if "kind" in x else "m" for x in scrubbed.splitlines()] == [
        "error",
        "m",
    ]
