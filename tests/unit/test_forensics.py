"""The evidence window's bookkeeping that needs no host: bounds on what is judged, the
sysctls it passes on, how long it waits to settle, the leftovers of an unsettled window,
and the fingerprint it keeps."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from orchestrator import capture, forensics
from orchestrator.attribution import Endpoint, Window, attribute
from orchestrator.evidence import LedgerEvent, Rst
from orchestrator.record import CaptureRecord, FingerprintRecord
from orchestrator.suite import Burst, Layer


def event(i: int) -> LedgerEvent:
    return LedgerEvent(
        "h1",
        "rest",
        float(i),
        1,
        "t.py::a",
        1,
        1,
        "connect",
        "ECONNREFUSED",
        "ConnectionRefusedError",
        "refused",
        f"10.0.0.3:{40000 + i % 20000}",
        "10.0.0.2:8000",
        False,
        "socket",
    )


def test_a_spinning_retry_loop_is_judged_only_up_to_the_bound_and_the_record_says_so() -> None:
    many = forensics.MAX_JUDGED + 7
    rsts = tuple(Rst("h1", 1.0, "10.0.0.2:8000", "10.0.0.3:1", "eth0", "Out") for _ in range(3))
    window = Window("rest", tuple(event(i) for i in range(many)), rsts, frozenset(), {}, {}, (), {})
    problems: list[str] = []
    bounded = forensics._bounded(window, problems)
    assert len(bounded.events) == forensics.MAX_JUDGED and bounded.rsts == rsts
    assert bounded.events[-1] is window.events[forensics.MAX_JUDGED - 1]
    assert problems == [
        f"layer rest: only the first {forensics.MAX_JUDGED} transport errors and RSTs were "
        "judged (7 errors and 0 RSTs more are in the ledger and capture files)"
    ]
    assert forensics._bounded(bounded, problems) == bounded and len(problems) == 1


# -- an accept-queue overflow all-on-one (FINDINGS 1b): the windows judged below ----------

T0 = 1_760_000_000.0
APP = "10.213.83.2:8000"
SINGLE_HOSTS = {"h1": frozenset({"10.213.83.2"})}


def reported(local: str, at: float, errno: str, exception: str) -> LedgerEvent:
    """What a test process on h1 saw on its connection from ``local`` to the server."""
    return replace(
        event(0),
        host="h1",
        at=at,
        op="recv",
        errno=errno,
        exception=exception,
        local=local,
        remote=APP,
    )


def overflow_with_abort() -> Window:
    """A serial server with ``tcp_abort_on_overflow=1``: one connection reset by the
    listener (reported), one that timed out and was answered late with an RST (not)."""
    reset, late = "10.213.83.2:41000", "10.213.83.2:41100"
    events = (
        reported(reset, T0 + 0.31, "ECONNRESET", "ConnectionResetError"),
        reported(late, T0 + 10.0, "ETIMEDOUT", "TimeoutError"),
    )
    rsts = (
        Rst("h1", T0 + 0.30, APP, reset, "lo", "In"),
        Rst("h1", T0 + 10.002, APP, late, "lo", "In"),
    )
    deltas = {
        "Tcp.OutRsts": 2,
        "Tcp.EstabResets": 2,
        "TcpExt.EmbryonicRsts": 1,
        "TcpExt.ListenOverflows": 40,
    }
    return Window(
        "burst-60",
        events,
        rsts,
        frozenset({"h1"}),
        {"h1": deltas},
        SINGLE_HOSTS,
        (Endpoint("h1", "server", APP),),
        {"h1": True},
    )


# -- D: a sysctl that could not be read is unknown, never 0 ----------------------------------


def opened_with(abort: int | None) -> capture.WindowOpen:
    """A host's window opening whose ``tcp_abort_on_overflow`` read gave ``abort``."""
    sysctls = {"somaxconn": 4096, "tcp_abort_on_overflow": abort, "tcp_syncookies": 1}
    return capture.WindowOpen({}, sysctls, "captured", None, None, "none", None)


def test_an_unreadable_tcp_abort_on_overflow_is_left_out_not_taken_for_zero() -> None:
    opened = forensics.Opened(
        "burst-60",
        {"h1": opened_with(None), "h2": opened_with(0), "h3": opened_with(1), "h4": None},
    )
    assert forensics.abort_on_overflow(opened) == {"h2": False, "h3": True}


def test_an_overflow_reset_with_the_setting_unread_says_unknown_instead_of_blaming_zero() -> None:
    unread = forensics.abort_on_overflow(forensics.Opened("rest", {"h1": opened_with(None)}))
    errors, _ = attribute(replace(overflow_with_abort(), abort_on_overflow=unread))
    reset = next(e for e in errors if e.errno == "ECONNRESET")
    assert (reset.mechanism, reset.confidence) == ("accept-queue-overflow", "medium")
    assert "tcp_abort_on_overflow of h1 unknown" in reset.evidence
    assert not any("tcp_abort_on_overflow=0" in line for line in reset.evidence)


# -- B: a window that closed before its connections were gone --------------------------------


def burst(timeout_s: float) -> Layer:
    return Layer(
        "burst", "client", "", ("server",), 60, "stop", junit=False, burst=Burst(60, "/", timeout_s)
    )


def test_an_ordinary_layer_waits_the_default_for_its_connections_to_go() -> None:
    assert forensics.settle_s(Layer("rest", "client", "pytest", ("server",), 60, "stop")) == 5.0


def test_a_burst_waits_its_timeout_and_a_drain_allowance_within_a_bound() -> None:
    assert forensics.settle_s(burst(10.0)) == 10.0 + forensics.BURST_DRAIN_S
    assert forensics.settle_s(burst(0.5)) == 0.5 + forensics.BURST_DRAIN_S
    assert forensics.settle_s(burst(120.0)) == forensics.MAX_SETTLE_S == 30.0


def unsettled_burst() -> dict[str, dict[str, CaptureRecord]]:
    """The captures so far: a REST layer that settled, then a burst that did not on h1."""
    return {
        "rest": {"h1": CaptureRecord("captured", settled=True, lingering=0, settle_waited_s=0.2)},
        "burst-60": {
            "h1": CaptureRecord("captured", settled=False, lingering=12, settle_waited_s=20.0),
            "h2": CaptureRecord("captured", settled=True, lingering=0, settle_waited_s=0.0),
        },
    }


def test_only_the_last_window_counts_and_only_if_it_closed_unsettled() -> None:
    before = forensics.unsettled_before(unsettled_burst())
    assert before is not None and before.layer == "burst-60" and set(before.hosts) == {"h1"}
    settled_last = {**unsettled_burst(), "after": {"h1": CaptureRecord("captured", settled=True)}}
    assert forensics.unsettled_before(settled_last) is None
    unknown = {"after": {"h1": CaptureRecord("unavailable")}}  # an older record, a fake host
    assert forensics.unsettled_before(unknown) is None
    assert forensics.unsettled_before({}) is None


def test_a_reset_nobody_reported_after_an_unsettled_window_is_low_and_says_why() -> None:
    before = forensics.unsettled_before(unsettled_burst())
    assert before is not None
    _, (late,) = attribute(overflow_with_abort())
    assert late.confidence == "medium"
    judged = forensics.warier(late, before, SINGLE_HOSTS, reported=False)
    assert (judged.side, judged.host, judged.mechanism) == (late.side, late.host, late.mechanism)
    assert judged.confidence == "low"
    assert judged.evidence[:-1] == late.evidence
    assert judged.evidence[-1] == (
        "the previous window (burst-60) closed unsettled on h1 (12 socket(s) still open after "
        "20.0 s): this RST may be one of that layer's late resets, not this layer's"
    )


def test_an_error_a_test_reported_after_an_unsettled_window_is_at_most_medium() -> None:
    before = forensics.unsettled_before(unsettled_burst())
    assert before is not None
    errors, _ = attribute(overflow_with_abort())
    reset = next(e for e in errors if e.errno == "ECONNRESET")
    assert reset.confidence == "high"
    judged = forensics.warier(reset, before, SINGLE_HOSTS, reported=True)
    assert judged.confidence == "medium"
    assert "the counters it was judged by may hold that layer's late resets" in judged.evidence[-1]


def test_attributions_on_hosts_that_settled_are_left_as_they_are() -> None:
    before = forensics.Unsettled("burst-60", {"h9": CaptureRecord("captured", settled=False)})
    errors, resets = attribute(overflow_with_abort())
    for record in (*errors, *resets):
        assert forensics.warier(record, before, SINGLE_HOSTS, reported=False) is record


# -- C: the accept-queue peak of every layer, not only the first's ---------------------------


def fingerprint(layer: str, peak: int | None, **more: Any) -> FingerprintRecord:
    return FingerprintRecord(
        "gunicorn",
        "10.0.0.2:8000",
        "1 worker",
        False,
        "socket",
        accept_queue_peak=peak,
        layer=layer,
        **more,
    )


def test_a_later_layers_larger_accept_queue_peak_is_kept_with_its_layer() -> None:
    first = fingerprint("rest", 2, backlog=10, tcp_abort_on_overflow=1)
    kept = forensics.kept_fingerprint(first, fingerprint("burst-60", 11, backlog=None))
    assert (kept.accept_queue_peak, kept.layer) == (11, "burst-60")
    assert (kept.backlog, kept.tcp_abort_on_overflow) == (10, 1)  # filled in from the first


def test_a_smaller_or_unseen_peak_leaves_the_fingerprint_as_it_was() -> None:
    first = fingerprint("burst-60", 11, backlog=10)
    assert forensics.kept_fingerprint(first, fingerprint("rest.2", 3)) == first
    assert forensics.kept_fingerprint(first, fingerprint("rest.3", None)) == first
    assert forensics.kept_fingerprint(first, fingerprint("rest.4", 11)) == first  # a tie
    unseen = fingerprint("rest", None)
    assert forensics.kept_fingerprint(unseen, fingerprint("rest.2", 0)).layer == "rest.2"
    assert forensics.kept_fingerprint(None, unseen) is unseen
