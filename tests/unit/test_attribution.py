"""Who sent each reset, and why: the mechanisms measured in shared/econnreset/FINDINGS.md.

Every window below is one experiment of the lab ``fx`` as the hosts would report it: the
counter deltas are the ones logged in ``shared/econnreset/out/*.txt`` (fx-h1 = ``h1``,
the server, 10.213.83.2; fx-h2 = ``h2``, the client, 10.213.83.3), the RSTs are what
tcpdump printed (``eth0 Out`` on the sender, ``eth0 In`` on the receiver; ``lo In``
all-on-one, where the host talks to its own address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from orchestrator.attribution import (
    MECHANISMS,
    Endpoint,
    Window,
    attribute,
    by_mechanism,
    finding,
)
from orchestrator.evidence import LedgerEvent, Rst
from orchestrator.record import AttributionRecord, BurstRecord, CounterRecord

T0 = 1_760_000_000.0
SERVER = "10.213.83.2"
CLIENT = "10.213.83.3"
APP = f"{SERVER}:8000"
SPLIT_HOSTS = {"h1": frozenset({SERVER}), "h2": frozenset({CLIENT})}
SINGLE_HOSTS = {"h1": frozenset({SERVER})}


def event(
    local: str | None,
    *,
    at: float,
    errno: str = "ECONNRESET",
    host: str = "h2",
    remote: str = APP,
    reused: bool = False,
    idle_s: float | None = None,
    exception: str = "ConnectionResetError",
) -> LedgerEvent:
    return LedgerEvent(
        host=host,
        layer="integration",
        at=at,
        pid=4242,
        test="tests_it/test_api.py::test_post",
        position=3,
        attempt=1,
        op="recv",
        errno=errno,
        exception=exception,
        message="",
        local=local,
        remote=remote,
        reused=reused,
        source="socket",
        idle_s=idle_s,
    )


def across(
    src: str, dst: str, at: float, sender: str = "h1", receiver: str = "h2", seq: int | None = None
) -> list[Rst]:
    """One RST between two hosts: Out on the sender's capture, In on the receiver's."""
    return [
        Rst(sender, at, src, dst, "eth0", "Out", seq=seq),
        Rst(receiver, at + 0.00004, src, dst, "eth0", "In", seq=seq),
    ]


def on_lo(src: str, dst: str, at: float, seq: int | None = None) -> Rst:
    return Rst("h1", at, src, dst, "lo", "In", seq=seq)


def split(
    events: Iterable[LedgerEvent] = (),
    rsts: Iterable[Rst] = (),
    deltas: Mapping[str, Mapping[str, int]] | None = None,
    *,
    captured: Iterable[str] = ("h1", "h2"),
    abort: bool = False,
    died: Iterable[str] = (),
) -> Window:
    return Window(
        layer="integration",
        events=tuple(events),
        rsts=tuple(rsts),
        captured=frozenset(captured),
        deltas=deltas or {},
        addresses=SPLIT_HOSTS,
        endpoints=(Endpoint("h1", "server", APP),),
        abort_on_overflow={"h1": abort, "h2": False},
        server_died=frozenset(died),
    )


def single(
    events: Iterable[LedgerEvent] = (),
    rsts: Iterable[Rst] = (),
    deltas: Mapping[str, int] | None = None,
    *,
    captured: bool = True,
    abort: bool = False,
    died: bool = False,
) -> Window:
    return Window(
        layer="integration",
        events=tuple(events),
        rsts=tuple(rsts),
        captured=frozenset({"h1"} if captured else ()),
        deltas={"h1": deltas or {}},
        addresses=SINGLE_HOSTS,
        endpoints=(Endpoint("h1", "server", APP),),
        abort_on_overflow={"h1": abort},
        server_died=frozenset({"h1"} if died else ()),
    )


def verdict(record: AttributionRecord) -> tuple[str, str | None, str, str]:
    return (record.side, record.host, record.mechanism, record.confidence)


# -- 1: accept-queue overflow -----------------------------------------------------------

# runserver --nothreading, single, abort_on_overflow=1, N=60 (backlog.txt, trial 3).
OVERFLOW_ABORT = {
    "Tcp.ActiveOpens": 60,
    "Tcp.EstabResets": 9,
    "Tcp.OutRsts": 9,
    "Tcp.PassiveOpens": 39,
    "TcpExt.EmbryonicRsts": 8,
    "TcpExt.ListenDrops": 304,
    "TcpExt.ListenOverflows": 304,
    "TcpExt.SyncookiesRecv": 272,
    "TcpExt.SyncookiesSent": 37,
    "TcpExt.TCPReqQFullDoCookies": 37,
    "TcpExt.TCPSynRetrans": 48,
    "TcpExt.TCPTimeouts": 209,
}


def overflow_with_abort() -> Window:
    """8 connections reset by the listener, 1 timed out and answered late by it."""
    clients = [f"{SERVER}:{41000 + i}" for i in range(8)]
    events = [event(c, at=T0 + 0.31 + i * 0.001, host="h1") for i, c in enumerate(clients)]
    rsts = [on_lo(APP, c, T0 + 0.30 + i * 0.001) for i, c in enumerate(clients)]
    late = f"{SERVER}:41100"
    events.append(event(late, at=T0 + 10.0, errno="ETIMEDOUT", host="h1", exception="TimeoutError"))
    rsts.append(on_lo(APP, late, T0 + 10.002))
    return single(events, rsts, OVERFLOW_ABORT, abort=True)


def test_overflow_with_abort_on_overflow_resets_as_many_as_embryonic_rsts() -> None:
    errors, _ = attribute(overflow_with_abort())
    reset_errors = [e for e in errors if e.errno == "ECONNRESET"]
    assert [verdict(e) for e in reset_errors] == [
        ("server", "h1", "accept-queue-overflow", "high")
    ] * 8
    assert "h1 TcpExt.EmbryonicRsts +8" in reset_errors[0].evidence
    assert "h1 tcp_abort_on_overflow=1" in reset_errors[0].evidence
    assert reset_errors[0].rst is not None and reset_errors[0].rst.seen == ["h1 lo In"]


def test_the_listener_answering_a_timed_out_client_is_the_overflow_not_a_new_cause() -> None:
    errors, resets = attribute(overflow_with_abort())
    (timeout,) = [e for e in errors if e.errno == "ETIMEDOUT"]
    assert verdict(timeout) == ("server", "h1", "accept-queue-overflow", "medium")
    assert timeout.rst is None
    (late,) = resets
    assert verdict(late) == ("server", "h1", "accept-queue-overflow", "medium")
    assert late.client == f"{SERVER}:41100"
    assert any("after this connection timed out" in line for line in late.evidence)


def test_overflow_with_the_default_abort_setting_gives_timeouts_and_no_reset() -> None:
    # threaded runserver, single, abort_on_overflow=0, N=200 (backlog.txt, trial 1)
    deltas = {
        "Tcp.ActiveOpens": 200,
        "Tcp.PassiveOpens": 69,
        "Tcp.RetransSegs": 483,
        "TcpExt.ListenDrops": 782,
        "TcpExt.ListenOverflows": 782,
        "TcpExt.SyncookiesRecv": 640,
        "TcpExt.SyncookiesSent": 168,
        "TcpExt.TCPReqQFullDoCookies": 168,
        "TcpExt.TCPSynRetrans": 179,
        "TcpExt.TCPTimeouts": 322,
    }
    timeouts = [
        event(
            f"{SERVER}:{50000 + i}",
            at=T0 + 30 + i,
            errno="ETIMEDOUT",
            host="h1",
            exception="TimeoutError",
        )
        for i in range(3)
    ]
    errors, resets = attribute(single(timeouts, (), deltas))
    assert [verdict(e) for e in errors] == [("server", "h1", "accept-queue-overflow", "medium")] * 3
    assert all(e.rst is None for e in errors) and resets == []
    evidence = errors[0].evidence
    assert evidence[0] == "a timeout, not a reset: no RST ended this connection"
    assert "h1 TcpExt.ListenOverflows +782" in evidence
    assert "h1 tcp_abort_on_overflow=0" in evidence


def test_a_timeout_without_any_overflow_is_not_blamed_on_the_queue() -> None:
    deltas = {
        "h1": {"Tcp.PassiveOpens": 5, "TcpExt.ListenOverflows": 0},
        "h2": {"Tcp.ActiveOpens": 5},
    }
    late = event(f"{CLIENT}:50000", at=T0, errno="ETIMEDOUT", exception="TimeoutError")
    (error,), _ = attribute(split([late], (), deltas))
    assert verdict(error) == ("unknown", None, "unknown", "low")
    assert "h1 TcpExt.ListenOverflows +0: its accept queue never overflowed" in error.evidence


# -- 2c: gunicorn closes with the request body unread -----------------------------------

UNREAD_SPLIT = {
    "h1": {
        "Tcp.EstabResets": 1,
        "Tcp.OutRsts": 1,
        "Tcp.PassiveOpens": 1,
        "TcpExt.TCPAbortOnClose": 1,
    },
    "h2": {"Tcp.ActiveOpens": 1, "Tcp.EstabResets": 1},
}


def test_gunicorn_closing_with_the_body_unread_is_the_servers_socket() -> None:
    client = f"{CLIENT}:41234"
    window = split([event(client, at=T0 + 0.02)], across(APP, client, T0 + 0.01), UNREAD_SPLIT)
    (error,), resets = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "high")
    assert (error.client, error.server, error.on) == (client, APP, "h2")
    assert error.evidence[:2] == [
        f"RST {APP} > {client} seen h1 eth0 Out, h2 eth0 In",
        "h1 TcpExt.TCPAbortOnClose +1",
    ]
    assert "h2 Tcp.EstabResets +1" in error.evidence
    assert resets == []


def test_a_reset_that_requests_swallowed_still_is_attributed() -> None:
    client = f"{CLIENT}:41240"
    errors, (reset,) = attribute(split((), across(APP, client, T0), UNREAD_SPLIT))
    assert errors == []
    assert verdict(reset) == ("server", "h1", "closed-with-unread-data", "high")
    assert (reset.test, reset.errno, reset.on, reset.client) == (None, None, None, client)


# -- 4b: the server killed with the request body unread ----------------------------------

KILLED_UNREAD_SINGLE = {
    "Tcp.ActiveOpens": 1,
    "Tcp.EstabResets": 2,
    "Tcp.OutRsts": 1,
    "Tcp.PassiveOpens": 1,
    "TcpExt.TCPAbortOnClose": 1,
}


def test_killed_with_the_body_unread_all_on_one_is_named_by_the_source_port() -> None:
    client = f"{SERVER}:50412"
    window = single(
        [event(client, at=T0 + 5.0, host="h1")],
        [on_lo(APP, client, T0 + 4.99)],
        KILLED_UNREAD_SINGLE,
        died=True,
    )
    (error,), resets = attribute(window)
    assert resets == []
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "high")
    assert "both ends on h1 share its counters: the RST's source port names the side" in (
        error.evidence
    )
    assert (
        f"no RST from the client {client} captured and it was reset (ECONNRESET): it did not "
        "abort, so TCPAbortOnClose counts the server's abort"
    ) in error.evidence


def test_a_swallowed_reset_all_on_one_does_not_name_its_mechanism_high() -> None:
    # No test says the client was reset: TCPAbortOnClose +1 may be the client's abort.
    client = f"{SERVER}:50414"
    _, (reset,) = attribute(single((), [on_lo(APP, client, T0)], KILLED_UNREAD_SINGLE))
    assert verdict(reset) == ("server", "h1", "closed-with-unread-data", "medium")
    assert (
        "TCPAbortOnClose counts either end's abort and both ends are on h1: it does not name "
        "the mechanism on its own"
    ) in reset.evidence


def test_all_on_one_a_client_that_reported_no_reset_proves_nothing() -> None:
    # requests: RemoteDisconnected, not ECONNRESET (4b): the client end is not proven quiet.
    client = f"{SERVER}:50416"
    closed = event(
        client, at=T0 + 5.0, host="h1", errno="REMOTE_CLOSED", exception="RemoteDisconnected"
    )
    window = single([closed], [on_lo(APP, client, T0 + 4.99)], KILLED_UNREAD_SINGLE, died=True)
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "medium")


def test_all_on_one_an_rst_from_the_client_port_leaves_the_shared_counters_open() -> None:
    # Both ends sent an RST on one connection: either may have moved TCPAbortOnClose.
    client = f"{SERVER}:50418"
    deltas = {**KILLED_UNREAD_SINGLE, "Tcp.OutRsts": 2, "TcpExt.TCPAbortOnClose": 2}
    rsts = [on_lo(client, APP, T0 + 4.9), on_lo(APP, client, T0 + 4.99)]
    window = single([event(client, at=T0 + 5.0, host="h1")], rsts, deltas)
    (error,), (reset,) = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "medium")
    assert verdict(reset) == ("client", "h1", "closed-with-unread-data", "medium")


def test_killed_with_queued_connections_all_on_one_reported_by_reset_clients_is_high() -> None:
    clients = [f"{SERVER}:{47100 + i}" for i in range(2)]
    deltas = {"Tcp.ActiveOpens": 2, "Tcp.EstabResets": 4, "Tcp.OutRsts": 2, "Tcp.PassiveOpens": 2}
    events = [event(c, at=T0 + 3.0, host="h1") for c in clients]
    rsts = [on_lo(APP, c, T0 + 2.99) for c in clients]
    errors, _ = attribute(single(events, rsts, deltas, died=True))
    assert [verdict(e) for e in errors] == [
        ("server", "h1", "killed-with-queued-connections", "high")
    ] * 2


def test_killed_with_the_body_unread_split_same_answer() -> None:
    client = f"{CLIENT}:43010"
    window = split(
        [event(client, at=T0 + 5.0)], across(APP, client, T0 + 4.99), UNREAD_SPLIT, died=["h1"]
    )
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "high")


def test_requests_seeing_remote_disconnected_after_a_swallowed_reset() -> None:
    client = f"{CLIENT}:43012"
    closed = event(client, at=T0 + 5.0, errno="REMOTE_CLOSED", exception="RemoteDisconnected")
    window = split([closed], across(APP, client, T0 + 4.99), UNREAD_SPLIT, died=["h1"])
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "high")
    assert any(line.startswith("the client saw REMOTE_CLOSED") for line in error.evidence)


def test_one_reset_reported_twice_by_requests_is_one_in_the_finding() -> None:
    # requests: the RST hit during send (swallowed, but the socket layer saw ECONNRESET),
    # then http.client read EOF (REMOTE_CLOSED): two errors, one reset.
    client = f"{CLIENT}:43012"
    sent = event(client, at=T0 + 4.995)
    closed = event(client, at=T0 + 5.0, errno="REMOTE_CLOSED", exception="RemoteDisconnected")
    window = split([sent, closed], across(APP, client, T0 + 4.99), UNREAD_SPLIT, died=["h1"])
    errors, resets = attribute(window)
    assert [verdict(e) for e in errors] == [("server", "h1", "closed-with-unread-data", "high")] * 2
    assert finding("distributed", errors, resets) == (
        "distributed: 1 reset sent by the server socket on h1 (closed with unread data)"
    )


def test_without_a_capture_a_servers_abort_on_close_still_names_the_server() -> None:
    # All-on-one counters are shared, but TCPAbortOnClose of a server is one-sided.
    window = single(
        [event(f"{SERVER}:50412", at=T0, host="h1")], (), KILLED_UNREAD_SINGLE, captured=False
    )
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "medium")
    assert error.rst is None
    assert "no capture on h1: no RST seen" in error.evidence


# -- 4c: the server killed with connections in its accept queue --------------------------

QUEUED_SPLIT = {
    "h1": {"Tcp.EstabResets": 8, "Tcp.OutRsts": 8, "Tcp.PassiveOpens": 8},
    "h2": {"Tcp.ActiveOpens": 8, "Tcp.EstabResets": 8},
}


def queued(died: Iterable[str]) -> Window:
    clients = [f"{CLIENT}:{47000 + i}" for i in range(8)]
    events = [event(c, at=T0 + 3.0) for c in clients]
    rsts = [r for c in clients for r in across(APP, c, T0 + 2.99)]
    return split(events, rsts, QUEUED_SPLIT, died=died)


def test_killed_with_queued_connections_resets_each_one_without_an_abort_counter() -> None:
    errors, resets = attribute(queued(died=["h1"]))
    assert [verdict(e) for e in errors] == [
        ("server", "h1", "killed-with-queued-connections", "high")
    ] * 8
    assert "h1 Tcp.OutRsts +8, no TCPAbortOn*, no EmbryonicRsts" in errors[0].evidence
    assert resets == []


def test_plain_out_rsts_from_a_server_that_lived_stay_unknown() -> None:
    errors, _ = attribute(queued(died=()))
    assert {verdict(e) for e in errors} == {("server", "h1", "unknown", "low")}


def test_shared_plain_counters_without_a_capture_are_low() -> None:
    deltas = {"Tcp.ActiveOpens": 8, "Tcp.EstabResets": 16, "Tcp.OutRsts": 8, "Tcp.PassiveOpens": 8}
    events = [event(f"{SERVER}:{47000 + i}", at=T0, host="h1") for i in range(8)]
    errors, _ = attribute(single(events, (), deltas, captured=False, died=True))
    assert {verdict(e) for e in errors} == {
        ("server", "h1", "killed-with-queued-connections", "low")
    }
    assert "both ends on h1 share its counters and no capture names the side" in (
        errors[0].evidence
    )


# -- 4d: linger-0 close ------------------------------------------------------------------

LINGER_SPLIT = {
    "h1": {
        "Tcp.EstabResets": 1,
        "Tcp.OutRsts": 1,
        "Tcp.PassiveOpens": 1,
        "TcpExt.TCPAbortOnData": 1,
    },
    "h2": {"Tcp.ActiveOpens": 1, "Tcp.EstabResets": 1},
}


def test_a_linger_zero_close_is_counted_as_abort_on_data() -> None:
    client = f"{CLIENT}:45500"
    window = split([event(client, at=T0 + 0.1)], across(APP, client, T0 + 0.09), LINGER_SPLIT)
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "linger-zero-close", "high")
    assert "h1 TcpExt.TCPAbortOnData +1" in error.evidence


def test_a_client_closing_with_linger_zero_is_the_client_side() -> None:
    client = f"{CLIENT}:45502"
    deltas = {
        "h1": {"Tcp.EstabResets": 1, "Tcp.PassiveOpens": 1},
        "h2": {
            "Tcp.ActiveOpens": 1,
            "Tcp.EstabResets": 1,
            "Tcp.OutRsts": 1,
            "TcpExt.TCPAbortOnData": 1,
        },
    }
    rsts = across(client, APP, T0, sender="h2", receiver="h1")
    _, (reset,) = attribute(split((), rsts, deltas))
    assert verdict(reset) == ("client", "h2", "linger-zero-close", "high")
    assert (reset.client, reset.server) == (client, APP)


def test_abort_on_data_shared_all_on_one_without_a_capture_is_low() -> None:
    deltas = {
        "Tcp.ActiveOpens": 1,
        "Tcp.EstabResets": 2,
        "Tcp.OutRsts": 1,
        "Tcp.PassiveOpens": 1,
        "TcpExt.TCPAbortOnData": 1,
    }
    window = single([event(f"{SERVER}:45500", at=T0, host="h1")], (), deltas, captured=False)
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "linger-zero-close", "low")


# -- 3: stale keep-alive -----------------------------------------------------------------


def test_the_keep_alive_race_is_stale_keep_alive_not_unread_data() -> None:
    # gthread --keep-alive 1, pause 1.0 s: the server closed with the request unread.
    client = f"{CLIENT}:46000"
    reused = event(client, at=T0 + 1.001, reused=True, idle_s=1.0)
    window = split([reused], across(APP, client, T0 + 1.0), UNREAD_SPLIT)
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "stale-keep-alive", "medium")
    assert (
        "the connection was reused after 1.00 s idle, at least 0.5 s: long enough for a "
        "server's keep-alive timeout"
    ) in error.evidence


def test_an_idle_connection_closed_by_the_server_is_stale_keep_alive() -> None:
    # gthread --keep-alive 1, pause 2 s: FIN, then the RST answers the next request.
    client = f"{CLIENT}:46002"
    deltas = {
        "h1": {"Tcp.EstabResets": 1, "Tcp.OutRsts": 1, "Tcp.PassiveOpens": 1},
        "h2": {"Tcp.ActiveOpens": 1, "Tcp.EstabResets": 1},
    }
    closed = event(
        client,
        at=T0 + 2.0,
        errno="REMOTE_CLOSED",
        reused=True,
        idle_s=2.0,
        exception="RemoteDisconnected",
    )
    (error,), _ = attribute(split([closed], across(APP, client, T0 + 2.0), deltas))
    assert verdict(error) == ("server", "h1", "stale-keep-alive", "medium")


def test_a_fin_on_a_reused_connection_without_any_reset() -> None:
    closed = event(
        f"{CLIENT}:46004",
        at=T0,
        errno="REMOTE_CLOSED",
        reused=True,
        idle_s=2.0,
        exception="RemoteDisconnected",
    )
    deltas = {"h1": {"Tcp.PassiveOpens": 1}, "h2": {"Tcp.ActiveOpens": 1}}
    (error,), _ = attribute(split([closed], (), deltas))
    assert verdict(error) == ("server", "h1", "stale-keep-alive", "medium")
    assert error.rst is None


def test_a_fin_on_a_reused_connection_of_unknown_idle_time_is_only_low() -> None:
    closed = event(
        f"{CLIENT}:46004", at=T0, errno="REMOTE_CLOSED", reused=True, exception="RemoteDisconnected"
    )
    deltas = {"h1": {"Tcp.PassiveOpens": 1}, "h2": {"Tcp.ActiveOpens": 1}}
    (error,), _ = attribute(split([closed], (), deltas))
    assert verdict(error) == ("server", "h1", "stale-keep-alive", "low")
    assert (
        "the connection was reused and how long it sat idle is not known (an older ledger line)"
    ) in error.evidence


def test_a_fin_on_a_briefly_idle_reused_connection_is_closed_without_response() -> None:
    closed = event(
        f"{CLIENT}:46008",
        at=T0,
        errno="REMOTE_CLOSED",
        reused=True,
        idle_s=0.01,
        exception="RemoteDisconnected",
    )
    deltas = {"h1": {"Tcp.PassiveOpens": 1}, "h2": {"Tcp.ActiveOpens": 1}}
    (error,), _ = attribute(split([closed], (), deltas))
    assert verdict(error) == ("server", "h1", "closed-without-response", "medium")
    assert (
        "the connection was reused after only 0.01 s idle, under 0.5 s: no server closes an "
        "idle keep-alive connection that soon"
    ) in error.evidence


def test_a_fin_on_a_long_idle_reused_connection_whose_server_died_is_not_stale() -> None:
    # 4a on the second request of a requests.Session: the death, not a timeout, closed it.
    closed = event(
        f"{CLIENT}:46010",
        at=T0,
        errno="REMOTE_CLOSED",
        reused=True,
        idle_s=3.0,
        exception="RemoteDisconnected",
    )
    deltas = {"h1": {"Tcp.PassiveOpens": 1}, "h2": {"Tcp.ActiveOpens": 1}}
    (error,), _ = attribute(split([closed], (), deltas, died=["h1"]))
    assert verdict(error) == ("server", "h1", "closed-without-response", "medium")
    assert "the app server on h1 died or restarted (FINDINGS 4a)" in error.evidence


def test_killed_with_the_body_unread_on_a_reused_connection_is_not_stale() -> None:
    # The review's case: 4b on a requests.Session's later request, the dev server (which
    # never closes idle connections) killed. Long idle or unknown, the death explains it.
    client = f"{CLIENT}:46012"
    for idle in (None, 3.0):
        reused = event(client, at=T0 + 5.0, reused=True, idle_s=idle)
        window = split([reused], across(APP, client, T0 + 4.99), UNREAD_SPLIT, died=["h1"])
        (error,), _ = attribute(window)
        assert verdict(error) == ("server", "h1", "closed-with-unread-data", "high")
        assert (
            "the connection was reused, but the app server on h1 died: its death, not a "
            "keep-alive timeout, ended it"
        ) in error.evidence


def test_an_unread_body_on_a_briefly_idle_reused_connection_is_not_stale() -> None:
    # gunicorn: a requests.Session's next POST right away, its body left unread (2c).
    client = f"{CLIENT}:46014"
    reused = event(client, at=T0 + 0.02, reused=True, idle_s=0.003)
    window = split([reused], across(APP, client, T0 + 0.01), UNREAD_SPLIT)
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "high")


def test_an_abort_counter_on_a_reused_connection_of_unknown_idle_time_is_medium() -> None:
    # The race (FINDINGS 3) moves TCPAbortOnClose too: without the idle time, not sure.
    client = f"{CLIENT}:46016"
    reused = event(client, at=T0 + 0.02, reused=True)
    window = split([reused], across(APP, client, T0 + 0.01), UNREAD_SPLIT)
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "medium")
    assert (
        "a server closing a reused connection while idle moves it too (FINDINGS 3)"
    ) in error.evidence


def test_plain_out_rsts_on_a_reused_connection_of_unknown_idle_time_is_a_low_stale() -> None:
    client = f"{CLIENT}:46018"
    deltas = {
        "h1": {"Tcp.EstabResets": 1, "Tcp.OutRsts": 1, "Tcp.PassiveOpens": 1},
        "h2": {"Tcp.ActiveOpens": 1, "Tcp.EstabResets": 1},
    }
    reused = event(client, at=T0 + 2.0, reused=True)
    (error,), _ = attribute(split([reused], across(APP, client, T0 + 2.0), deltas))
    assert verdict(error) == ("server", "h1", "stale-keep-alive", "low")
    assert (
        "no abort counter explains it: perhaps the server had closed the idle connection"
    ) in error.evidence


def test_without_counters_only_a_long_idle_names_a_stale_connection() -> None:
    client = f"{CLIENT}:46020"
    deltas = {"h1": {}, "h2": {"Tcp.EstabResets": 1}}
    verdicts = []
    for idle in (2.0, None):
        reused = event(client, at=T0 + 2.0, reused=True, idle_s=idle)
        (error,), _ = attribute(split([reused], across(APP, client, T0 + 2.0), deltas))
        verdicts.append(verdict(error))
    assert verdicts == [
        ("server", "h1", "stale-keep-alive", "medium"),
        ("server", "h1", "unknown", "low"),
    ]


def test_a_fin_on_a_fresh_connection_is_closed_without_response() -> None:
    # 4a: the view calls os._exit after reading the request.
    closed = event(f"{CLIENT}:46006", at=T0, errno="REMOTE_CLOSED", exception="RemoteDisconnected")
    deltas = {"h1": {"Tcp.PassiveOpens": 1}, "h2": {"Tcp.ActiveOpens": 1}}
    (error,), _ = attribute(split([closed], (), deltas, died=["h1"]))
    assert verdict(error) == ("server", "h1", "closed-without-response", "medium")
    assert "the app server on h1 died or restarted (FINDINGS 4a)" in error.evidence


# -- 4e: connection refused --------------------------------------------------------------

REFUSED_SPLIT = {"h1": {"Tcp.OutRsts": 1}, "h2": {"Tcp.ActiveOpens": 1, "Tcp.AttemptFails": 1}}


def test_a_refused_connection_has_no_listener() -> None:
    client = f"{CLIENT}:52000"
    refused = event(client, at=T0 + 0.001, errno="ECONNREFUSED", exception="ConnectionRefusedError")
    window = split([refused], across(APP, client, T0, seq=0), REFUSED_SPLIT)
    (error,), resets = attribute(window)
    assert verdict(error) == ("server", "h1", "no-listener", "high")
    assert "h2 Tcp.AttemptFails +1" in error.evidence
    assert resets == []


def test_a_swallowed_refusal_is_told_by_its_sequence_number_zero() -> None:
    _, (reset,) = attribute(split((), across(APP, f"{CLIENT}:52002", T0, seq=0), REFUSED_SPLIT))
    assert verdict(reset) == ("server", "h1", "no-listener", "high")


# -- 6: injected by a firewall -----------------------------------------------------------


def test_resets_no_stack_sent_are_injected_split() -> None:
    # iptables REJECT --reject-with tcp-reset on every 2nd request segment (iptables.txt).
    clients = [f"{CLIENT}:{49118 + 22 * i}" for i in range(3)]
    events = [event(c, at=T0 + i + 0.001) for i, c in enumerate(clients)]
    rsts = [r for i, c in enumerate(clients) for r in across(APP, c, T0 + i)]
    deltas = {"h1": {"Tcp.PassiveOpens": 6}, "h2": {"Tcp.ActiveOpens": 6, "Tcp.EstabResets": 3}}
    errors, resets = attribute(split(events, rsts, deltas))
    assert [verdict(e) for e in errors] == [("none", "h1", "injected", "high")] * 3
    assert "h1 Tcp.OutRsts +0, no TCPAbortOn*, no EmbryonicRsts: no TCP stack on h1 sent it" in (
        errors[0].evidence
    )
    assert "h2 Tcp.EstabResets +3" in errors[0].evidence
    assert resets == []


def test_resets_no_stack_sent_are_injected_all_on_one() -> None:
    port = f"{SERVER}:18801"
    clients = [f"{SERVER}:54318", f"{SERVER}:54330"]
    events = [event(c, at=T0 + i + 0.001, host="h1", remote=port) for i, c in enumerate(clients)]
    rsts = [on_lo(port, c, T0 + i) for i, c in enumerate(clients)]
    deltas = {"Tcp.ActiveOpens": 6, "Tcp.EstabResets": 3, "Tcp.PassiveOpens": 6}
    window = single(events, rsts, deltas)
    window = Window(**{**window.__dict__, "endpoints": (Endpoint("h1", "server", port),)})
    errors, _ = attribute(window)
    assert [verdict(e) for e in errors] == [("none", "h1", "injected", "high")] * 2


def test_an_uncaptured_reset_no_stack_counted_is_injected_with_medium_confidence() -> None:
    deltas = {"h1": {"Tcp.PassiveOpens": 6}, "h2": {"Tcp.ActiveOpens": 6, "Tcp.EstabResets": 3}}
    window = split([event(f"{CLIENT}:49118", at=T0)], (), deltas, captured=())
    (error,), _ = attribute(window)
    assert verdict(error) == ("none", "h2", "injected", "medium")


def test_more_resets_captured_than_the_stack_sent_makes_every_one_of_them_low() -> None:
    clients = [f"{CLIENT}:{49200 + i}" for i in range(3)]
    events = [event(c, at=T0 + i + 0.001) for i, c in enumerate(clients)]
    rsts = [r for i, c in enumerate(clients) for r in across(APP, c, T0 + i)]
    errors, _ = attribute(split(events, rsts, UNREAD_SPLIT))
    assert [verdict(e) for e in errors] == [
        ("server", "h1", "closed-with-unread-data", "low"),
        ("none", "h1", "injected", "low"),
        ("none", "h1", "injected", "low"),
    ]
    surplus = "h1: 3 RSTs captured from it but Tcp.OutRsts +1: 2 not sent by its TCP stack"
    assert all(any(line.startswith(surplus) for line in e.evidence) for e in errors)


# -- what is missing ---------------------------------------------------------------------


def test_no_capture_on_the_sender_lowers_the_confidence_and_says_so() -> None:
    client = f"{CLIENT}:43020"
    seen_by_client_only = [Rst("h2", T0, APP, client, "eth0", "In")]
    window = split(
        [event(client, at=T0 + 0.01)], seen_by_client_only, UNREAD_SPLIT, captured=["h2"]
    )
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "medium")
    assert (
        "no capture on h1 for the whole window: that its stack sent it, not a middlebox, "
        "rests on its counters"
    ) in error.evidence


def test_unknown_counters_leave_the_mechanism_unknown() -> None:
    client = f"{CLIENT}:43022"
    deltas = {"h1": {}, "h2": UNREAD_SPLIT["h2"]}
    (error,), _ = attribute(split([event(client, at=T0)], across(APP, client, T0), deltas))
    assert verdict(error) == ("server", "h1", "unknown", "low")
    assert "counters of h1 unknown (not read before and after the window)" in error.evidence


def test_two_counters_sharing_one_group_of_resets_lower_the_confidence() -> None:
    clients = [f"{CLIENT}:{44000 + i}" for i in range(3)]
    events = [event(c, at=T0 + i + 0.001) for i, c in enumerate(clients)]
    rsts = [r for i, c in enumerate(clients) for r in across(APP, c, T0 + i)]
    deltas = {
        "h1": {
            "Tcp.OutRsts": 3,
            "TcpExt.EmbryonicRsts": 2,
            "TcpExt.TCPAbortOnClose": 1,
            "TcpExt.ListenOverflows": 40,
        },
        "h2": {"Tcp.EstabResets": 3},
    }
    errors, _ = attribute(split(events, rsts, deltas, abort=True))
    assert [verdict(e) for e in errors] == [
        ("server", "h1", "accept-queue-overflow", "medium"),
        ("server", "h1", "accept-queue-overflow", "medium"),
        ("server", "h1", "closed-with-unread-data", "medium"),
    ]
    line = (
        "h1 moved both EmbryonicRsts +2 and TCPAbortOnClose +1: which reset is which is not known"
    )
    assert all(line in e.evidence for e in errors)


def test_two_mechanisms_on_one_sender_are_not_handed_out_at_high_confidence() -> None:
    # A test reset by a linger-0 close (4d) and a gunicorn unread-body reset that requests
    # swallowed (2c), one window: the counters cannot tell which reset is which.
    linger, unread = f"{CLIENT}:44100", f"{CLIENT}:44102"
    deltas = {
        "h1": {"Tcp.OutRsts": 2, "TcpExt.TCPAbortOnClose": 1, "TcpExt.TCPAbortOnData": 1},
        "h2": {"Tcp.EstabResets": 2},
    }
    rsts = across(APP, linger, T0) + across(APP, unread, T0 + 1)
    (error,), (reset,) = attribute(split([event(linger, at=T0 + 0.001)], rsts, deltas))
    assert verdict(error) == ("server", "h1", "closed-with-unread-data", "medium")
    assert verdict(reset) == ("server", "h1", "linger-zero-close", "medium")
    line = (
        "h1 moved both TCPAbortOnClose +1 and TCPAbortOnData +1: which reset is which is not known"
    )
    assert line in error.evidence and line in reset.evidence


def test_an_abort_counter_nobody_took_makes_the_one_that_was_taken_a_guess() -> None:
    client = f"{CLIENT}:44104"
    deltas = {
        "h1": {"Tcp.OutRsts": 2, "TcpExt.EmbryonicRsts": 1, "TcpExt.TCPAbortOnClose": 1},
        "h2": {"Tcp.EstabResets": 1},
    }
    window = split([event(client, at=T0 + 0.001)], across(APP, client, T0), deltas, abort=True)
    (error,), _ = attribute(window)
    assert verdict(error) == ("server", "h1", "accept-queue-overflow", "medium")
    assert (
        "h1 moved both EmbryonicRsts +1 and TCPAbortOnClose +1: which reset is which is not known"
    ) in error.evidence


def test_a_forced_apportioning_stays_high() -> None:
    # The late answer can only be plain OutRsts, so the reported resets are the
    # EmbryonicRsts ones: two counters, but no choice.
    errors, resets = attribute(overflow_with_abort())
    assert all(
        not any("which reset is which" in line for line in r.evidence) for r in [*errors, *resets]
    )


# -- one segment, several sightings -------------------------------------------------------


def test_one_rst_seen_on_both_hosts_is_one_reset() -> None:
    client = f"{CLIENT}:41300"
    _, resets = attribute(split((), across(APP, client, T0, seq=3115221), UNREAD_SPLIT))
    (reset,) = resets
    assert reset.rst is not None
    assert (reset.rst.from_, reset.rst.to, reset.rst.at) == (APP, client, T0)
    assert reset.rst.seen == ["h1 eth0 Out", "h2 eth0 In"]


def test_lo_in_and_out_of_one_segment_are_one_reset() -> None:
    client = f"{SERVER}:41302"
    rsts = [Rst("h1", T0, APP, client, "lo", "Out"), Rst("h1", T0, APP, client, "lo", "In")]
    _, (reset,) = attribute(single((), rsts, KILLED_UNREAD_SINGLE))
    assert reset.rst is not None and reset.rst.seen == ["h1 lo Out", "h1 lo In"]


def test_the_same_capture_point_seeing_two_rsts_means_two_resets() -> None:
    client = f"{CLIENT}:41304"
    twice = [
        Rst("h1", T0, APP, client, "eth0", "Out"),
        Rst("h1", T0 + 0.2, APP, client, "eth0", "Out"),
    ]
    deltas = {"h1": {"Tcp.OutRsts": 2, "TcpExt.ListenOverflows": 12}, "h2": {}}
    _, resets = attribute(split((), twice, deltas))
    assert len(resets) == 2


def test_an_rst_long_before_the_error_is_another_connections() -> None:
    client = f"{CLIENT}:41306"
    window = split([event(client, at=T0 + 120)], across(APP, client, T0), UNREAD_SPLIT)
    (error,), (reset,) = attribute(window)
    assert error.rst is None and reset.client == client


# -- summaries ---------------------------------------------------------------------------


def test_by_mechanism_counts_in_mechanism_order() -> None:
    errors, resets = attribute(overflow_with_abort())
    assert by_mechanism([*errors, *resets]) == {"accept-queue-overflow": 10}
    assert set(by_mechanism([*errors, *resets])) <= set(MECHANISMS)


def test_the_finding_of_an_all_on_one_overflow() -> None:
    clients = [f"{SERVER}:{41000 + i}" for i in range(8)]
    events = [event(c, at=T0 + 0.31, host="h1") for c in clients]
    rsts = [on_lo(APP, c, T0 + 0.30) for c in clients]
    deltas = {**OVERFLOW_ABORT, "Tcp.OutRsts": 8}
    errors, resets = attribute(single(events, rsts, deltas, abort=True))
    assert finding("all-on-one", errors, resets) == (
        "all-on-one: 8 resets sent by the server socket on h1 "
        "(accept-queue overflow, tcp_abort_on_overflow=1)"
    )


def test_the_finding_of_a_distributed_run_with_a_firewall_and_a_swallowed_reset() -> None:
    client = f"{CLIENT}:49118"
    deltas = {"h1": {"Tcp.PassiveOpens": 6}, "h2": {"Tcp.ActiveOpens": 6, "Tcp.EstabResets": 3}}
    rsts = across(APP, client, T0) + across(APP, f"{CLIENT}:49140", T0 + 1)
    errors, resets = attribute(split([event(client, at=T0 + 0.001)], rsts, deltas))
    assert finding("distributed", errors, resets) == (
        "distributed: 2 resets not sent by any host's TCP stack (seen on h1; a middlebox or "
        "firewall) (1 of them reported by no test)"
    )


def test_the_finding_of_a_quiet_window() -> None:
    errors, resets = attribute(split((), (), {"h1": {"Tcp.OutRsts": 0}, "h2": {}}))
    assert (errors, resets) == ([], [])
    assert finding("distributed", errors, resets) == "no transport errors and no resets"


# 1a, the negative control (tcp_abort_on_overflow=0): the queue overflows, nothing resets.
CONTROL = {"Tcp.PassiveOpens": 60, "TcpExt.ListenOverflows": 73, "TcpExt.ListenDrops": 73}


def burst(slow: int, timeouts: int = 0) -> BurstRecord:
    errors = {"ETIMEDOUT": timeouts} if timeouts else {}
    return BurstRecord("burst-60", "h1", f"http://{APP}/api/health", 60, 60 - timeouts, errors)


def control_timeouts(n: int) -> list[LedgerEvent]:
    return [
        event(
            f"{SERVER}:{50000 + i}",
            at=T0 + 10 + i,
            errno="ETIMEDOUT",
            host="h1",
            exception="TimeoutError",
        )
        for i in range(n)
    ]


def test_a_negative_control_that_only_slowed_down_says_its_queue_overflowed() -> None:
    # Fast views: every request answered, 12 after a retransmitted SYN. Nothing in the
    # ledger, but the overflow it was made to show happened (FINDINGS 1a).
    errors, resets = attribute(single((), (), CONTROL))
    assert (errors, resets) == ([], [])
    said = finding(
        "all-on-one",
        errors,
        resets,
        counters={"burst-60": {"h1": CounterRecord(delta=CONTROL)}},
        bursts=[replace(burst(0), slow=12)],
        abort_on_overflow={"h1": False},
        servers={"h1"},
    )
    assert said == (
        "all-on-one: no resets; the server's accept queue overflowed 73 times "
        "(ListenOverflows on h1) with tcp_abort_on_overflow=0: 12 slow requests, no reset"
    )


def test_a_negative_control_folds_its_timeouts_into_the_overflow() -> None:
    errors, resets = attribute(single(control_timeouts(3), (), CONTROL))
    assert [e.mechanism for e in errors] == ["accept-queue-overflow"] * 3
    layers = {
        "unit": {"h1": CounterRecord(delta={"TcpExt.ListenOverflows": 0})},
        "burst-60": {"h1": CounterRecord(delta=CONTROL)},
    }
    # The setting is read from the timeouts' evidence when the caller does not give it.
    said = finding(
        "all-on-one",
        errors,
        resets,
        counters=layers,
        bursts=[replace(burst(0, timeouts=3), slow=12)],
        servers={"h1"},
    )
    assert said == (
        "all-on-one: no resets; the server's accept queue overflowed 73 times "
        "(ListenOverflows on h1) with tcp_abort_on_overflow=0: 12 slow requests and "
        "3 timeouts, no reset"
    )


def test_an_overflow_the_resets_explain_is_not_said_twice() -> None:
    clients = [f"{SERVER}:{41000 + i}" for i in range(8)]
    events = [event(c, at=T0 + 0.31, host="h1") for c in clients]
    rsts = [on_lo(APP, c, T0 + 0.30) for c in clients]
    deltas = {**OVERFLOW_ABORT, "Tcp.OutRsts": 8}
    errors, resets = attribute(single(events, rsts, deltas, abort=True))
    said = finding(
        "all-on-one",
        errors,
        resets,
        counters={"burst-60": {"h1": CounterRecord(delta=deltas)}},
        bursts=[replace(burst(9), errors={"ECONNRESET": 8}, ok=52)],
        abort_on_overflow={"h1": True},
        servers={"h1"},
    )
    assert said == (
        "all-on-one: 8 resets sent by the server socket on h1 "
        "(accept-queue overflow, tcp_abort_on_overflow=1)"
    )


def test_an_overflow_beside_other_resets_is_said_after_them() -> None:
    client = f"{CLIENT}:49118"
    deltas = {"h1": {"Tcp.PassiveOpens": 6}, "h2": {"Tcp.ActiveOpens": 6, "Tcp.EstabResets": 1}}
    window = split([event(client, at=T0 + 0.001)], across(APP, client, T0), deltas)
    errors, resets = attribute(window)
    counters = {"rest": {"h3": CounterRecord(delta={"TcpExt.ListenOverflows": 5})}}
    said = finding("distributed", errors, resets, counters=counters, servers={"h1"})
    assert said == (
        "distributed: 1 reset not sent by any host's TCP stack (seen on h1; a middlebox or "
        "firewall); a listener's accept queue overflowed 5 times (ListenOverflows on h3): no reset"
    )


def test_a_client_resetting_after_it_timed_out_is_not_given_a_made_up_cause() -> None:
    # 1b split: the client gave up, closed, and the late response met its RST
    # (fx-h2 TCPAbortOnData +1, OutRsts +1 in backlog.txt).
    client = f"{CLIENT}:47500"
    timeout = event(client, at=T0 + 10.0, errno="ETIMEDOUT", exception="TimeoutError")
    rsts = across(client, APP, T0 + 10.5, sender="h2", receiver="h1")
    deltas = {
        "h1": {"Tcp.OutRsts": 0, "TcpExt.ListenOverflows": 309},
        "h2": {"Tcp.OutRsts": 1, "TcpExt.TCPAbortOnData": 1, "TcpExt.TCPSynRetrans": 48},
    }
    _, (reset,) = attribute(split([timeout], rsts, deltas))
    assert verdict(reset) == ("client", "h2", "unknown", "low")
    assert any("after this connection timed out" in line for line in reset.evidence)


def test_the_database_refusing_the_app_servers_connections_names_the_database_host() -> None:
    # 5 split: MariaDB down, every Django request's connect refused (mysql.txt).
    db = "10.213.83.4:3306"
    rsts = [
        r for i in range(2) for r in across(db, f"{SERVER}:{58000 + i}", T0 + i, "h3", "h1", seq=0)
    ]
    window = Window(
        layer="integration",
        events=(),
        rsts=tuple(rsts),
        captured=frozenset({"h1", "h2", "h3"}),
        deltas={"h1": {"Tcp.AttemptFails": 2}, "h2": {}, "h3": {"Tcp.OutRsts": 2}},
        addresses={**SPLIT_HOSTS, "h3": frozenset({"10.213.83.4"})},
        endpoints=(Endpoint("h1", "server", APP), Endpoint("h3", "database", db)),
        abort_on_overflow={},
    )
    _, resets = attribute(window)
    assert [verdict(r) for r in resets] == [("server", "h3", "no-listener", "high")] * 2
    assert "h1 Tcp.AttemptFails +2" in resets[0].evidence
