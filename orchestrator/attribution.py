"""Who sent each reset of one layer's window, and why: a pure judgement over the evidence.

Input is one :class:`Window` (the ledger events of the test processes, every RST the
hosts' captures saw, each host's counter deltas, which addresses and listeners each host
has); output is one :class:`~orchestrator.record.AttributionRecord` per ledger event and
one per captured reset that no test process reported (urllib3 or a retry swallowed it).
No I/O here: the same window always gives the same answer, so a report can be rebuilt
and every rule is testable with the numbers measured in ``shared/econnreset/FINDINGS.md``.

The rules, in the order they apply:

1. **One segment, one reset.** The same RST seen on several hosts or interfaces (Out on
   the sender, In on the receiver; ``lo`` In and Out all-on-one) has the same source,
   destination and sequence number within :data:`SAME_SEGMENT_S`. A capture point never
   sees one segment twice, so a second sighting at the same ``host iface direction`` is
   another reset (the listener answering each retransmission).
2. **An event's reset** has the event's two ends and comes no later than
   :data:`MATCH_AFTER_S` after it nor earlier than :data:`MATCH_BEFORE_S` before it (the
   client may not read the socket at once); the nearest wins. A timeout is never
   matched: it is not a reset, and the RST that follows it is the listener's answer after
   the client gave up (FINDINGS 1a), which rule 5 attributes on its own.
3. **Side and sender.** An RST from a listening endpoint's address (or all-on-one its
   port on a loopback or own address) came from the server's socket; one to it, from the
   client's. The sender is the host owning the source address (loopback: the host whose
   capture saw it). A reset a test reported but no capture saw is presumed sent by the
   host of the event's remote end: an RST the client accepted carried that address.
4. **Injected.** A netfilter or middlebox RST carries the server's address but moves no
   counter of the sender: ``Tcp.OutRsts`` counts every RST a stack sends (aborts,
   refusals, overflows), so a sender whose ``OutRsts`` did not move sent none of them
   (side ``none``, high with a capture). More RSTs captured from a host than its
   ``OutRsts`` means some were injected, which ones unknown: all its resets are low.
   *Refined:* for a reported reset nobody captured, only the remote host's counters
   decide (the RST carried its address); the client's ``EstabResets`` raises it to medium.
5. **Mechanism from the sender's counters**, apportioned by counts (``EmbryonicRsts``
   +8 explains 8 resets). Per-connection hints come first: a refusal (ECONNREFUSED, or an
   RST with ``seq 0``: the answer to a SYN) is ``no-listener``; a stale keep-alive
   connection (below) takes ``TCPAbortOnData``, ``TCPAbortOnClose`` or plain ``OutRsts``;
   an RST after this connection timed out is the listener's late answer (overflow,
   FINDINGS 1a). Then resets the tests reported take ``EmbryonicRsts`` (a listener with
   ``tcp_abort_on_overflow=1``; never a reused connection's), ``TCPAbortOnClose`` (closed
   with unread data), ``TCPAbortOnData`` (linger-0 close) before the plain ``OutRsts``
   rest, which is ``killed-with-queued-connections`` when the server died, an overflow's
   late answers when the listener overflowed, else unknown.
   *Which is which:* when a host's resets could have taken its counters otherwise (two
   of them could swap kinds, or one could take an abort counter nobody took), the
   apportioning is a guess: every reset of that host is at most medium, and the evidence
   names the counters. A forced apportioning (the late answers can only take the plain
   ``OutRsts``, so the reported ones take ``EmbryonicRsts``) stays high.
   *Keep-alive:* ``reused`` only says the connection carried an exchange before, which is
   every request after the first on a ``requests.Session``, and the dev server never
   closes idle connections (FINDINGS 3). So a reused connection is ``stale-keep-alive``
   only when it sat idle at least :data:`STALE_IDLE_S` (``idle_s``), the reset came from
   the server's end and the server on that host did not die (a death explains it: 4a, 4b);
   the counters of FINDINGS 3 (``TCPAbortOnData`` in FIN_WAIT2, ``TCPAbortOnClose`` in
   the race, or plain ``OutRsts``) then agree with it, but it rests on timing: never high.
   Idle time unknown (an older ledger line): ``stale-keep-alive`` only when no abort
   counter names another mechanism, and then low; an abort counter's mechanism is then
   medium, as the race moves the same counters. A short idle, a dead server or a
   client-sent reset: the reset is judged like a fresh connection's.
6. **Not resets.** ETIMEDOUT with ``ListenOverflows`` on the server host is an
   accept-queue overflow with no RST (said in the evidence). REMOTE_CLOSED with no RST
   is a FIN: ``stale-keep-alive`` when rule 5 makes the connection a candidate (medium
   with a capture; low when the idle time is unknown), else ``closed-without-response``
   (a mechanism added here: FINDINGS 4a, the server closed or died after reading the
   request, is what the ledger says and is clearer than ``unknown``), also when a reused
   connection's server died.
7. **What is missing is said.** No counters, no capture on the sender, counters shared by
   both ends all-on-one: each lowers the confidence and adds an evidence line; ``unknown``
   is always low. All-on-one (pitfall 1), ``TCPAbortOnClose``, ``TCPAbortOnData`` and
   ``OutRsts`` count either end's abort, so they never name a mechanism on their own:
   the captured source port still names the side, but the mechanism is medium, unless
   the counter is one-sided by nature (``EmbryonicRsts``, ``ListenOverflows``) or the
   other end provably did not abort: the capture covered the whole window and saw no RST
   from the client's port, and the client reported ECONNRESET (an end that aborts sends
   an RST and is not reset afterwards). That is why the server killed with an unread body
   all-on-one (one RST from the server port, ``TCPAbortOnClose`` +1) stays high. Without
   a capture nothing names the side, so shared counters are low, save a server's
   ``TCPAbortOnClose`` that a reset client reported (medium).

Confidence: high = the capture and the counters agree; medium = one of them; low = what
is inferred from what is missing.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from orchestrator.evidence import LedgerEvent, Rst
from orchestrator.record import AttributionRecord, BurstRecord, CounterRecord, RstRecord

MECHANISMS = (
    "accept-queue-overflow",
    "closed-with-unread-data",
    "linger-zero-close",
    "killed-with-queued-connections",
    "stale-keep-alive",
    "no-listener",
    "injected",
    "closed-without-response",
    "unknown",
)
SIDES = ("server", "client", "none", "unknown")

# One segment seen at several capture points is timed within this (hosts share a clock).
SAME_SEGMENT_S = 1.0
# An event's reset arrives before the client raises; it may sit unread this long.
MATCH_BEFORE_S = 60.0
# ... and the event's clock and the capture's may disagree by this much.
MATCH_AFTER_S = 2.0
# A reused connection idle this long may have been closed by its server: none closes an
# idle keep-alive connection sooner (gunicorn's default is 2 s; FINDINGS 3's race: ~1 s).
STALE_IDLE_S = 0.5

# Errors an RST can cause (a reset during send can surface as EPIPE or REMOTE_CLOSED).
RESET_ERRNOS = frozenset({"ECONNRESET", "EPIPE", "ECONNABORTED", "REMOTE_CLOSED", "ECONNREFUSED"})

LOW, MEDIUM, HIGH = 0, 1, 2
LEVELS = ("low", "medium", "high")  # confidence, lowest first

OUT_RSTS = "Tcp.OutRsts"
ESTAB_RESETS = "Tcp.EstabResets"
LISTEN_OVERFLOWS = "TcpExt.ListenOverflows"
# Which counter explains a reset of each kind; "other" is the plain OutRsts rest.
_KIND_COUNTER = {
    "emb": "TcpExt.EmbryonicRsts",
    "close": "TcpExt.TCPAbortOnClose",
    "data": "TcpExt.TCPAbortOnData",
    "other": OUT_RSTS,
}
_NO_ABORT = "no TCPAbortOn*, no EmbryonicRsts"
_SURFACED = (
    "the client saw {errno}, not ECONNRESET: a FIN or a swallowed send error came before "
    "the reset (FINDINGS 2b, 3, 4b)"
)


@dataclass(frozen=True)
class Endpoint:
    """Something that listens: the app server of a host, or the database."""

    host: str  # inventory host name where it listens
    kind: str  # "server" | "database"
    address: str  # "addr:port" it listens on


@dataclass(frozen=True)
class Window:
    """Everything known about one layer's window, as :mod:`orchestrator.forensics` read it."""

    layer: str
    events: tuple[LedgerEvent, ...]
    rsts: tuple[Rst, ...]
    captured: frozenset[str]  # hosts whose capture covered the whole window
    deltas: Mapping[str, Mapping[str, int]]  # host -> counter deltas ({} if unknown)
    addresses: Mapping[str, frozenset[str]]  # host -> its addresses
    endpoints: tuple[Endpoint, ...]
    abort_on_overflow: Mapping[str, bool]  # host -> net.ipv4.tcp_abort_on_overflow
    server_died: frozenset[str] = frozenset()  # app server dead or restarted after it


@dataclass
class _Reset:
    """One RST segment, however many capture points saw it."""

    src: str
    dst: str
    at: float
    seq: int | None
    seen: list[Rst]

    def line(self) -> str:
        return f"RST {self.src} > {self.dst} seen {', '.join(_sighting(s) for s in self.seen)}"

    def record(self) -> RstRecord:
        return RstRecord(self.src, self.dst, self.at, [_sighting(s) for s in self.seen])


@dataclass(eq=False)
class _Case:
    """One reset to explain: captured (``reset``) or only reported by a test (``event``)."""

    reset: _Reset | None
    event: LedgerEvent | None  # the first event that reported it
    side: str
    sender: str | None  # host whose stack (or whose address) sent it
    peer: str | None  # host at the other end
    server: str | None
    client: str | None
    endpoint: Endpoint | None  # the listener that sent it (server side only)
    hint: str | None = None  # refused | stale | late
    late_at: float | None = None  # when this connection timed out, for hint "late"
    reuse: str | None = None  # a reused connection: stale | unsure | short | died | client
    idle_s: float | None = None  # how long the reused connection sat idle
    kind: str | None = None  # the counter that explains it (_KIND_COUNTER)
    ambiguous: str | None = None  # the evidence line when which reset is which is a guess
    surplus: int = 0  # RSTs captured from the sender beyond its OutRsts

    @property
    def at(self) -> float:
        if self.reset is not None:
            return self.reset.at
        return self.event.at if self.event is not None else 0.0


@dataclass
class _Verdict:
    side: str
    host: str | None
    mechanism: str
    level: int
    evidence: list[str] = field(default_factory=list)


def scoped(window: Window) -> tuple[Window, int]:
    """The window narrowed to the deployed stack's connections, and how many ledger
    events were left out.

    A test suite may run its own stub servers on loopback (the broker's unit tests check
    that a refused or slow upstream gives a 502 or 504): those transport errors are the
    test's subject, not the stack's trouble. An event or RST is in scope when one of its
    ends is a listener readiness deployed (the app server, the database); an event with
    no address at all (an error found only in a test's traceback) stays in scope, as
    nothing says it is not. The left-out lines stay in the ledger files.
    """

    def ours(hostport: str | None, on: str | None) -> bool:
        return hostport is not None and _endpoint(window, hostport, on) is not None

    events = tuple(
        e
        for e in window.events
        if (e.local is None and e.remote is None) or ours(e.remote, e.host) or ours(e.local, e.host)
    )
    rsts = tuple(r for r in window.rsts if ours(r.src, r.host) or ours(r.dst, r.host))
    narrowed = replace(window, events=events, rsts=rsts)
    return narrowed, len(window.events) - len(events)


def attribute(window: Window) -> tuple[list[AttributionRecord], list[AttributionRecord]]:
    """(errors, resets): one record per ledger event (same order), and one per distinct
    captured RST not matched to any event."""
    resets = _dedupe(window.rsts)
    matches = _match(window.events, resets)
    cases = _captured_cases(window, resets, matches)
    unseen: dict[int, _Case] = {
        j: _event_case(window, event)
        for j, (event, m) in enumerate(zip(window.events, matches, strict=True))
        if m is None and event.errno in RESET_ERRNOS - {"REMOTE_CLOSED"}
    }
    _assign_all(window, [*cases.values(), *unseen.values()])
    errors: list[AttributionRecord] = []
    for j, event in enumerate(window.events):
        m = matches[j]
        case = cases[m] if m is not None else unseen.get(j)
        verdict = _judge(window, case) if case is not None else _judge_unreset(window, event)
        surfaced = event.errno in ("EPIPE", "REMOTE_CLOSED")
        if case is not None and case.reset is not None and surfaced:
            verdict.evidence.append(_SURFACED.format(errno=event.errno))
        errors.append(_record(window.layer, verdict, case, event))
    swallowed = [
        _record(window.layer, _judge(window, case), case, None)
        for case in cases.values()
        if case.event is None
    ]
    return errors, swallowed


def by_mechanism(records: Iterable[AttributionRecord]) -> dict[str, int]:
    """How many records each mechanism explains, in :data:`MECHANISMS` order."""
    counts = Counter(r.mechanism for r in records)
    order = [*MECHANISMS, *sorted(set(counts) - set(MECHANISMS))]
    return {m: counts[m] for m in order if counts[m]}


def _captured_cases(
    window: Window, resets: Sequence[_Reset], matches: Sequence[int | None]
) -> dict[int, _Case]:
    """One case per captured reset, with the events that reported it and the timeouts
    that came before it on the same connection."""
    reporters: dict[int, list[LedgerEvent]] = {}
    for event, m in zip(window.events, matches, strict=True):
        if m is not None:
            reporters.setdefault(m, []).append(event)
    timeouts: dict[frozenset[str], list[float]] = {}
    for event in window.events:
        if event.errno == "ETIMEDOUT" and event.local and event.remote:
            timeouts.setdefault(_ends(event.local, event.remote), []).append(event.at)
    cases: dict[int, _Case] = {}
    connections: set[frozenset[str]] = set()
    for i, reset in enumerate(resets):
        ends = _ends(reset.src, reset.dst)
        first = ends not in connections
        connections.add(ends)
        cases[i] = _reset_case(window, reset, reporters.get(i, []), first, timeouts)
    return cases


# -- the evidence, normalised ---------------------------------------------------------


def _sighting(rst: Rst) -> str:
    return f"{rst.host} {rst.iface} {rst.direction}"


def _split(hostport: str) -> tuple[str, int | None]:
    """``addr:port`` -> (addr, port); brackets and the IPv4-mapped prefix dropped."""
    addr, _, port = hostport.rpartition(":")
    if not addr:
        addr, port = hostport, ""
    addr = addr.strip("[]")
    if addr.lower().startswith("::ffff:") and "." in addr:
        addr = addr[7:]
    return addr, int(port) if port.isdigit() else None


def _norm(hostport: str) -> str:
    addr, port = _split(hostport)
    shown = f"[{addr}]" if ":" in addr else addr
    return shown if port is None else f"{shown}:{port}"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return addr == "localhost"


def _owner(window: Window, hostport: str, on: str | None) -> str | None:
    """The host an address belongs to; a loopback address belongs to ``on``."""
    addr, _ = _split(hostport)
    if _is_loopback(addr):
        return on
    owners = [h for h, addrs in window.addresses.items() if addr in addrs]
    return owners[0] if owners else None


def _endpoint(window: Window, hostport: str, on: str | None) -> Endpoint | None:
    """The listener at this address: exact, or its port on an address of its host."""
    addr, port = _split(hostport)
    for e in window.endpoints:
        e_addr, e_port = _split(e.address)
        if port == e_port and (addr == e_addr or _owner(window, hostport, on) == e.host):
            return e
    return None


def _dedupe(rsts: Iterable[Rst]) -> list[_Reset]:
    """Rule 1: every sighting of one segment under one reset, earliest first."""
    out: list[_Reset] = []
    for rst in sorted(rsts, key=lambda r: r.at):
        src, dst = _norm(rst.src), _norm(rst.dst)
        same = None
        for reset in reversed(out):
            if rst.at - reset.at > SAME_SEGMENT_S:
                break
            if (
                (reset.src, reset.dst) == (src, dst)
                and (reset.seq is None or rst.seq is None or reset.seq == rst.seq)
                and _sighting(rst) not in {_sighting(s) for s in reset.seen}
            ):
                same = reset
                break
        if same is None:
            out.append(_Reset(src, dst, rst.at, rst.seq, [rst]))
        else:
            same.seen.append(rst)
            same.seq = same.seq if same.seq is not None else rst.seq
    return out


def _ends(a: str, b: str) -> frozenset[str]:
    return frozenset({_norm(a), _norm(b)})


def _match(events: Sequence[LedgerEvent], resets: Sequence[_Reset]) -> list[int | None]:
    """Rule 2: the index of each event's reset, or None."""
    by_ends: dict[frozenset[str], list[int]] = {}
    for i, reset in enumerate(resets):
        by_ends.setdefault(_ends(reset.src, reset.dst), []).append(i)
    out: list[int | None] = []
    for event in events:
        found: list[int] = []
        if event.errno in RESET_ERRNOS and event.remote:
            if event.local:
                found = [
                    i
                    for i in by_ends.get(_ends(event.local, event.remote), [])
                    if event.at - MATCH_BEFORE_S <= resets[i].at <= event.at + MATCH_AFTER_S
                ]
            else:  # connect failed before the socket had a name: the server end and time
                remote = _norm(event.remote)
                found = [
                    i
                    for i, r in enumerate(resets)
                    if remote in (r.src, r.dst) and abs(r.at - event.at) <= MATCH_AFTER_S
                ]
        out.append(min(found, key=lambda i: abs(resets[i].at - event.at)) if found else None)
    return out


# -- cases: who sent each reset -------------------------------------------------------


def _orient(window: Window, reset: _Reset) -> _Case:
    """Rule 3 for a captured reset: its side, its sender and the host at the other end."""
    on = reset.seen[0].host
    src_e = _endpoint(window, reset.src, on)
    if src_e is not None:
        peer = _owner(window, reset.dst, on)
        return _Case(reset, None, "server", src_e.host, peer, reset.src, reset.dst, src_e)
    sender = _owner(window, reset.src, on)
    dst_e = _endpoint(window, reset.dst, on)
    if dst_e is not None:
        return _Case(reset, None, "client", sender, dst_e.host, reset.dst, reset.src, None)
    peer = _owner(window, reset.dst, on)
    return _Case(reset, None, "unknown", sender, peer, None, None, None)


def _reset_case(
    window: Window,
    reset: _Reset,
    reporters: Sequence[LedgerEvent],
    first: bool,
    timeouts: Mapping[frozenset[str], list[float]],
) -> _Case:
    """A captured reset, oriented, with the hint its connection gives: a refusal (the
    test saw ECONNREFUSED, or the first RST of its connection has ``seq 0``, which only
    an answer to a SYN has), a stale keep-alive connection (rule 5), or a connection that
    had timed out before (``first``: no earlier reset on these two ends; a later one's
    sequence number may be printed relative to it)."""
    case = _orient(window, reset)
    case.event = reporters[0] if reporters else None
    reused = next((e for e in reporters if e.reused), None)
    _note_reuse(window, case, reused)
    if any(e.errno == "ECONNREFUSED" for e in reporters) or (reset.seq == 0 and first):
        case.hint = "refused"
    elif case.reuse == "stale":
        case.hint = "stale"
    elif not reporters:
        gave_up = [
            at
            for at in timeouts.get(_ends(reset.src, reset.dst), [])
            if at - MATCH_AFTER_S <= reset.at <= at + MATCH_BEFORE_S
        ]
        if gave_up:
            case.hint, case.late_at = "late", max(gave_up)
    return case


def _event_case(window: Window, event: LedgerEvent) -> _Case:
    """A reset a test reported that no capture saw: presumed sent from its remote end."""
    remote = event.remote
    sender = _owner(window, remote, event.host) if remote else None
    endpoint = _endpoint(window, remote, event.host) if remote else None
    case = _Case(
        reset=None,
        event=event,
        side="server" if sender else "unknown",
        sender=sender,
        peer=event.host,
        server=remote,
        client=event.local,
        endpoint=endpoint,
    )
    _note_reuse(window, case, event if event.reused else None)
    if event.errno == "ECONNREFUSED":
        case.hint = "refused"
    elif case.reuse == "stale":
        case.hint = "stale"
    return case


def _reuse(window: Window, event: LedgerEvent, side: str, sender: str | None) -> str:
    """Rule 5's keep-alive test for a reused connection: ``stale`` (idle long enough for
    a server to close it), ``unsure`` (idle time unknown), or why it is not stale:
    ``client`` (the client's socket sent the reset), ``died`` (the server died, which
    explains the reset better), ``short`` (idle too briefly for any keep-alive timeout)."""
    if side == "client":
        return "client"
    if sender is not None and sender in window.server_died:
        return "died"
    if event.idle_s is None:
        return "unsure"
    return "stale" if event.idle_s >= STALE_IDLE_S else "short"


def _note_reuse(window: Window, case: _Case, reused: LedgerEvent | None) -> None:
    if reused is not None:
        case.reuse = _reuse(window, reused, case.side, case.sender)
        case.idle_s = reused.idle_s


def _reuse_line(reuse: str, idle_s: float | None, host: str | None) -> str:
    """Why a reused connection is, may be, or is not a stale keep-alive one."""
    idle = f"{idle_s:.2f} s" if idle_s is not None else "?"
    return {
        "stale": f"the connection was reused after {idle} idle, at least {STALE_IDLE_S} s: "
        "long enough for a server's keep-alive timeout",
        "unsure": "the connection was reused and how long it sat idle is not known "
        "(an older ledger line)",
        "short": f"the connection was reused after only {idle} idle, under {STALE_IDLE_S} s: "
        "no server closes an idle keep-alive connection that soon",
        "died": f"the connection was reused, but the app server on {host} died: its death, "
        "not a keep-alive timeout, ended it",
        "client": "the connection was reused, but the client's socket sent the reset: "
        "not a server closing it while idle",
    }[reuse]


def _known(deltas: Mapping[str, int] | None) -> bool:
    """Were this host's counters read at both ends of the window? A delta holds every
    counter of both snapshots, zeros included, so an absent key of the ``Tcp`` group
    (always in ``/proc/net/snmp``) means it did not move; no ``Tcp`` key at all means the
    read failed or was cut short."""
    return bool(deltas) and any(key.startswith("Tcp.") for key in deltas or {})


def _budget(deltas: Mapping[str, int] | None) -> dict[str, int] | None:
    """How many resets each kind of counter explains on one host (None: unknown)."""
    if deltas is None or not _known(deltas):
        return None
    emb, close, data = (max(deltas.get(_KIND_COUNTER[k], 0), 0) for k in ("emb", "close", "data"))
    out = max(deltas.get(OUT_RSTS, 0), 0)
    return {"emb": emb, "close": close, "data": data, "other": max(out - emb - close - data, 0)}


def _kinds(case: _Case) -> tuple[str, ...]:
    """The counters that may explain this reset, in the order they are tried."""
    if case.hint == "refused":
        return ("other",)  # a refusal moves OutRsts only
    if case.hint == "late":
        return ("other",) if case.endpoint else ("data", "other")
    if case.hint == "stale":
        return ("data", "close", "other")
    if case.endpoint is not None and case.reuse is None:
        return ("emb", "close", "data", "other")
    return ("close", "data", "other")  # only a listener's handshakes get EmbryonicRsts


def _assign_all(window: Window, cases: Iterable[_Case]) -> None:
    """Rule 5's apportioning, per sender host: hinted resets first, then the ones a test
    reported, then the swallowed ones; within each group, in time order."""
    by_host: dict[str, list[_Case]] = {}
    for case in cases:
        if case.sender is not None:
            by_host.setdefault(case.sender, []).append(case)
    for host, group in by_host.items():
        budget = _budget(window.deltas.get(host))
        if budget is None:
            continue
        held = dict(budget)
        ordered = sorted(group, key=lambda c: c.at)
        seen = sum(1 for c in ordered if c.reset is not None)
        surplus = max(seen - window.deltas[host].get(OUT_RSTS, 0), 0)
        passes = (
            [c for c in ordered if c.hint],
            [c for c in ordered if not c.hint and c.event is not None],
            [c for c in ordered if not c.hint and c.event is None],
        )
        for case in (c for cases_of_pass in passes for c in cases_of_pass):
            case.surplus = surplus
            kind = next((k for k in _kinds(case) if budget[k] > 0), None)
            if kind is not None:
                budget[kind] -= 1
                case.kind = kind
        line = _guessed(host, ordered, held, budget)
        for case in ordered:
            case.ambiguous = line


def _guessed(
    host: str, cases: Sequence[_Case], held: Mapping[str, int], left: Mapping[str, int]
) -> str | None:
    """Rule 5's *which is which*: the apportioning is a guess when two resets could swap
    kinds, or one could take an abort counter that is left over. (A plain ``OutRsts``
    left over is not such a choice: the counter is host-wide and also counts RSTs of
    ports nobody captured.) Returns the evidence line that says so, or None."""
    could = {id(c): {k for k in _kinds(c) if held[k] > 0} for c in cases}
    kinds: set[str] = set()
    for case in cases:
        if case.kind is None:
            continue
        for other in could[id(case)] - {case.kind}:
            spare = other != "other" and left[other] > 0
            if spare or any(d.kind == other and case.kind in could[id(d)] for d in cases):
                kinds |= {case.kind, other}
    if len(kinds) < 2:
        return None
    names = [
        f"{'plain ' if k == 'other' else ''}{_KIND_COUNTER[k].split('.')[1]} +{held[k]}"
        for k in _KIND_COUNTER
        if k in kinds
    ]
    listed = (
        f"both {names[0]} and {names[1]}"
        if len(names) == 2
        else (f"{', '.join(names[:-1])} and {names[-1]}")
    )
    return f"{host} moved {listed}: which reset is which is not known"


# -- verdicts -------------------------------------------------------------------------


def _delta(window: Window, host: str | None, key: str) -> int | None:
    """A counter's delta; 0 when the host's counters are known and it did not move."""
    deltas = window.deltas.get(host) if host else None
    return deltas.get(key, 0) if deltas is not None and _known(deltas) else None


def _moved(window: Window, host: str, key: str) -> str:
    return f"{host} {key} {_delta(window, host, key) or 0:+d}"


def _observed(case: _Case) -> str | None:
    """For side none: the host whose capture saw it leave (else the first that saw it)."""
    if case.reset is None:
        return case.event.host if case.event else None
    out = [s.host for s in case.reset.seen if s.direction == "Out"]
    return out[0] if out else case.reset.seen[0].host


def _judge(window: Window, case: _Case) -> _Verdict:
    """Rules 4, 5 and 7 for one case whose sender, kind and surplus are settled."""
    host = case.sender
    base = [case.reset.line()] if case.reset is not None else []
    if host is None:
        source = case.reset.src if case.reset else (case.server or "the remote end")
        return _Verdict(
            "unknown",
            None,
            "unknown",
            LOW,
            [*base, f"{source} belongs to no inventory host: no counters tell who sent it"],
        )
    deltas = window.deltas.get(host) or {}
    if not _known(deltas):
        return _without_counters(window, case, base)
    if deltas.get(OUT_RSTS, 0) <= 0:
        return _injected(window, case, base)
    if case.kind is None:
        return _unexplained(window, case, base)
    mechanism, cap, lines = _mechanism(window, case)
    verdict = _Verdict(case.side, host, mechanism, min(cap, HIGH if case.reset else MEDIUM))
    if case.reuse is not None:
        lines.append(_reuse_line(case.reuse, case.idle_s, host))
    verdict.evidence = [*base, *lines, *_peer_lines(window, case)]
    _lower(window, case, verdict)
    if mechanism == "unknown":
        verdict.level = LOW
    return verdict


def _lower(window: Window, case: _Case, verdict: _Verdict) -> None:
    """Rule 7: each piece of missing or shared evidence costs a level, and says so."""
    host = case.sender
    assert host is not None
    if case.reset is not None and host not in window.captured:
        verdict.level = max(verdict.level - 1, LOW)
        verdict.evidence.append(
            f"no capture on {host} for the whole window: that its stack sent it, "
            "not a middlebox, rests on its counters"
        )
    if case.ambiguous:
        verdict.level = min(verdict.level, MEDIUM)
        verdict.evidence.append(case.ambiguous)
    if case.reset is not None and case.peer == host:
        _shared(window, case, verdict)
    if case.reset is None:
        one_sided = case.kind == "emb" or (case.kind == "close" and case.side == "server")
        if case.peer == host and not one_sided:
            verdict.level = LOW
            verdict.evidence.append(
                f"both ends on {host} share its counters and no capture names the side"
            )
        _no_capture(window, case, verdict)
    if case.surplus:
        verdict.level = LOW
        verdict.evidence.append(_surplus_line(window, case))


def _shared(window: Window, case: _Case, verdict: _Verdict) -> None:
    """Rule 7, pitfall 1: a captured reset whose two ends share one host's counters.

    The source port names the side, but ``TCPAbortOnClose``, ``TCPAbortOnData`` and
    ``OutRsts`` count the client's aborts as well as the server's, so +1 does not say
    which end's abort it was: the mechanism is medium unless the client provably did not
    abort (an abort sends an RST from its port, and the aborting end is not reset later).
    ``EmbryonicRsts`` is a listener's by nature; a refusal is named by the segment."""
    host = case.sender
    if case.kind not in ("close", "data", "other") or case.hint == "refused":
        return
    counter = _KIND_COUNTER[case.kind].split(".")[1]
    event = case.event
    client = case.client
    if (
        case.side == "server"
        and client is not None
        and host in window.captured
        and event is not None
        and event.errno == "ECONNRESET"
        and not any(_norm(r.src) == _norm(client) for r in window.rsts)
    ):
        verdict.evidence.append(
            f"no RST from the client {client} captured and it was reset (ECONNRESET): "
            f"it did not abort, so {counter} counts the server's abort"
        )
        return
    verdict.level = min(verdict.level, MEDIUM)
    verdict.evidence.append(
        f"{counter} counts either end's abort and both ends are on {host}: it does not "
        "name the mechanism on its own"
    )


def _no_capture(window: Window, case: _Case, verdict: _Verdict) -> None:
    """A reported reset no capture saw: was anyone looking?"""
    hosts = sorted({h for h in (case.sender, case.peer) if h})
    looking = [h for h in hosts if h in window.captured]
    if looking:
        verdict.level = LOW
        verdict.evidence.append(
            f"no RST captured for this connection although {', '.join(looking)} captured "
            "the whole window"
        )
    else:
        verdict.evidence.append(f"no capture on {', '.join(hosts) or 'any host'}: no RST seen")


def _surplus_line(window: Window, case: _Case) -> str:
    host = case.sender
    out = _delta(window, host, OUT_RSTS) or 0
    return (
        f"{host}: {out + case.surplus} RSTs captured from it but Tcp.OutRsts +{out}: "
        f"{case.surplus} not sent by its TCP stack (injected), which ones is not known"
    )


def _peer_lines(window: Window, case: _Case) -> list[str]:
    """What the other end's counters say (or that it shares the sender's)."""
    peer = case.peer
    if not peer:
        return []
    if peer == case.sender:
        if case.reset is None:
            return []
        return [f"both ends on {peer} share its counters: the RST's source port names the side"]
    key = "Tcp.AttemptFails" if case.hint == "refused" else ESTAB_RESETS
    value = _delta(window, peer, key)
    if value is None:
        return [f"counters of {peer} (the other end) unknown"]
    return [_moved(window, peer, key)] if value > 0 else []


def _without_counters(window: Window, case: _Case, base: list[str]) -> _Verdict:
    """The sender's counters are unknown: only the per-connection hints can name a cause."""
    mechanism = {"refused": "no-listener", "stale": "stale-keep-alive"}.get(case.hint or "")
    lines = [*base, f"counters of {case.sender} unknown (not read before and after the window)"]
    if case.reuse is not None:
        lines.append(_reuse_line(case.reuse, case.idle_s, case.sender))
    if case.reset is None:
        hosts = sorted({h for h in (case.sender, case.peer) if h})
        lines.append(f"no RST captured for this connection ({', '.join(hosts)})")
    level = MEDIUM if mechanism and case.reset is not None else LOW
    return _Verdict(case.side, case.sender, mechanism or "unknown", level, lines)


def _injected(window: Window, case: _Case, base: list[str]) -> _Verdict:
    """Rule 4: an RST from a host whose stack sent none (OutRsts did not move)."""
    host = case.sender
    lines = [
        *base,
        f"{host} Tcp.OutRsts +0, {_NO_ABORT}: no TCP stack on {host} sent it",
        f"it carries {host}'s address: a firewall or middlebox sent it "
        "(e.g. iptables REJECT --reject-with tcp-reset)",
    ]
    verdict = _Verdict("none", _observed(case), "injected", HIGH, lines)
    if case.reset is not None:
        if case.peer != host:
            verdict.evidence += _peer_lines(window, case)
        return verdict
    client = case.peer
    resets = _delta(window, client, ESTAB_RESETS)
    if resets:
        verdict.level = MEDIUM
        lines.append(_moved(window, client or "?", ESTAB_RESETS))
    else:
        verdict.level = LOW
        lines.append(f"{client} Tcp.EstabResets did not move or is unknown: no reset confirmed")
    _no_capture(window, case, verdict)
    return verdict


def _unexplained(window: Window, case: _Case, base: list[str]) -> _Verdict:
    """More resets than the sender's counters explain: injected ones, or a window leak."""
    if case.surplus and case.reset is not None:
        return _Verdict(
            "none", _observed(case), "injected", LOW, [*base, _surplus_line(window, case)]
        )
    host = case.sender or "?"
    counters = [
        _moved(window, host, k)
        for k in _KIND_COUNTER.values()
        if k == OUT_RSTS or (_delta(window, host, k) or 0) > 0
    ]
    return _Verdict(
        case.side,
        case.sender,
        "unknown",
        LOW,
        [*base, f"{', '.join(counters)} account for fewer resets than were seen or reported"],
    )


def _mechanism(window: Window, case: _Case) -> tuple[str, int, list[str]]:
    """Rule 5: the mechanism the consumed counter (and the hint) names, its best
    confidence, and the lines that say why."""
    host = case.sender or "?"
    kind = case.kind or "other"
    line = _moved(window, host, _KIND_COUNTER[kind])
    if case.hint == "refused":
        return (
            "no-listener",
            HIGH,
            [
                _moved(window, host, OUT_RSTS),
                f"an RST answering a SYN: nothing listened on {case.server or 'that port'}",
            ],
        )
    if case.hint == "stale":
        why = {
            "data": "data arrived after the server closed the idle connection (FIN_WAIT2)",
            "close": "the server closed the idle connection with the request unread (the race)",
            "other": "the server had closed the idle connection and its socket was gone",
        }[kind]
        return "stale-keep-alive", MEDIUM, [line, f"{why}: inferred from the idle time"]
    if kind == "emb":
        return _overflow(window, host)
    if kind == "other":
        return _plain(window, case)
    if kind == "data" and case.hint == "late":
        return "unknown", LOW, [line, _late_line(case)]
    if kind == "close":
        mechanism, why = "closed-with-unread-data", "closed with received data unread"
    else:
        mechanism = "linger-zero-close"
        why = "TCPAbortOnData counts a linger-0 close and data arriving after close alike"
        why += "" if case.reuse else "; the connection was not reused"
    if case.reuse == "unsure":
        return (
            mechanism,
            MEDIUM,
            [
                line,
                why,
                "a server closing a reused connection while idle moves it too (FINDINGS 3)",
            ],
        )
    return mechanism, HIGH, [line, why]


def _plain(window: Window, case: _Case) -> tuple[str, int, list[str]]:
    """The plain ``OutRsts`` rest; on a reused connection of unknown idle time that nothing
    else explains, a server that closed it while idle is the likeliest guess (low)."""
    mechanism, level, lines = _other(window, case)
    if mechanism == "unknown" and case.reuse == "unsure":
        lines.append(
            "no abort counter explains it: perhaps the server had closed the idle connection"
        )
        return "stale-keep-alive", LOW, lines
    return mechanism, level, lines


def _late_line(case: _Case) -> str:
    return (
        f"after this connection timed out at {case.late_at:.3f}: the client had given up and "
        "closed, and what came later was answered with a reset (FINDINGS 1a)"
    )


def _overflow(window: Window, host: str) -> tuple[str, int, list[str]]:
    """EmbryonicRsts: the listener reset handshakes its full accept queue could not take."""
    lines = [_moved(window, host, _KIND_COUNTER["emb"])]
    if (_delta(window, host, LISTEN_OVERFLOWS) or 0) > 0:
        lines.append(_moved(window, host, LISTEN_OVERFLOWS))
    abort = window.abort_on_overflow.get(host)
    if abort is None:
        return "accept-queue-overflow", MEDIUM, [*lines, f"tcp_abort_on_overflow of {host} unknown"]
    if not abort:
        return (
            "unknown",
            LOW,
            [
                *lines,
                f"{host} tcp_abort_on_overflow=0: EmbryonicRsts moved for another reason "
                "than an overflow",
            ],
        )
    return "accept-queue-overflow", HIGH, [*lines, f"{host} tcp_abort_on_overflow=1"]


def _other(window: Window, case: _Case) -> tuple[str, int, list[str]]:
    """A stack RST with no TCPAbortOn* and no EmbryonicRsts behind it."""
    host = case.sender or "?"
    explained = [
        _moved(window, host, _KIND_COUNTER[k])
        for k in ("emb", "close", "data")
        if (_delta(window, host, _KIND_COUNTER[k]) or 0) > 0
    ]
    lines = [
        f"{_moved(window, host, OUT_RSTS)}, more than {' and '.join(explained)} explain"
        if explained
        else f"{_moved(window, host, OUT_RSTS)}, {_NO_ABORT}"
    ]
    overflowed = (_delta(window, host, LISTEN_OVERFLOWS) or 0) > 0
    if overflowed:
        lines.append(_moved(window, host, LISTEN_OVERFLOWS))
    if case.hint == "late":
        if overflowed and case.endpoint is not None:
            return "accept-queue-overflow", MEDIUM, [*lines, _late_line(case)]
        return "unknown", LOW, [*lines, _late_line(case)]
    endpoint = case.endpoint
    if endpoint is not None and endpoint.kind == "server" and host in window.server_died:
        return (
            "killed-with-queued-connections",
            HIGH,
            [
                *lines,
                f"the app server on {host} died or restarted: the kernel reset the connections "
                "still waiting in its accept queue",
            ],
        )
    if endpoint is not None and overflowed:
        return (
            "accept-queue-overflow",
            MEDIUM,
            [*lines, "the listener's answer to a late segment after its accept queue overflowed"],
        )
    return "unknown", LOW, lines


def _judge_unreset(window: Window, event: LedgerEvent) -> _Verdict:
    """Rule 6: an error with no reset behind it (a timeout, a FIN, an unreachable net)."""
    host = _owner(window, event.remote, event.host) if event.remote else None
    if event.errno == "ETIMEDOUT":
        return _timeout(window, event, host)
    if event.errno == "REMOTE_CLOSED" and host is not None:
        return _closed(window, event, host)
    return _Verdict(
        "unknown",
        None,
        "unknown",
        LOW,
        [f"{event.errno} ({event.exception}): not a reset, and nothing names a sender"],
    )


def _timeout(window: Window, event: LedgerEvent, host: str | None) -> _Verdict:
    """A timeout is not a reset; an overflowing accept queue on the server explains it."""
    lines = ["a timeout, not a reset: no RST ended this connection"]
    if host is None or not _known(window.deltas.get(host)):
        lines.append(f"counters of {host or event.remote} unknown")
        return _Verdict("unknown", None, "unknown", LOW, lines)
    if (_delta(window, host, LISTEN_OVERFLOWS) or 0) <= 0:
        lines.append(f"{_moved(window, host, LISTEN_OVERFLOWS)}: its accept queue never overflowed")
        return _Verdict("unknown", None, "unknown", LOW, lines)
    lines.append(_moved(window, host, LISTEN_OVERFLOWS))
    lines += [
        _moved(window, host, key)
        for key in ("TcpExt.TCPReqQFullDoCookies", "TcpExt.SyncookiesSent")
        if (_delta(window, host, key) or 0) > 0
    ]
    abort = window.abort_on_overflow.get(host)
    if abort is not None:
        lines.append(f"{host} tcp_abort_on_overflow={int(abort)}")
    if (_delta(window, event.host, "TcpExt.TCPSynRetrans") or 0) > 0:
        lines.append(_moved(window, event.host, "TcpExt.TCPSynRetrans"))
    return _Verdict("server", host, "accept-queue-overflow", MEDIUM, lines)


def _closed(window: Window, event: LedgerEvent, host: str) -> _Verdict:
    """REMOTE_CLOSED and no RST: the server sent a FIN instead of a response; on a
    reused connection that may be a keep-alive timeout (rule 5's candidates only)."""
    lines = ["a FIN, not a reset: the server closed the connection without a response"]
    reuse = _reuse(window, event, "server", host) if event.reused else None
    if reuse is not None:
        lines.append(_reuse_line(reuse, event.idle_s, host))
    if reuse in ("stale", "unsure"):
        mechanism = "stale-keep-alive"
    else:
        mechanism = "closed-without-response"
        if host in window.server_died:
            lines.append(f"the app server on {host} died or restarted (FINDINGS 4a)")
    level = LOW if reuse == "unsure" else MEDIUM
    looking = sorted({h for h in (host, event.host) if h in window.captured})
    if looking:
        lines.append(f"no RST captured for this connection on {', '.join(looking)}")
    else:
        level = LOW
        lines.append(f"no capture on {host}: a reset swallowed before the FIN would be unseen")
    return _Verdict("server", host, mechanism, level, lines)


def _record(
    layer: str, verdict: _Verdict, case: _Case | None, event: LedgerEvent | None
) -> AttributionRecord:
    reset = case.reset if case is not None else None
    return AttributionRecord(
        layer=layer,
        test=event.test if event else None,
        attempt=event.attempt if event else None,
        errno=event.errno if event else None,
        client=(event.local if event else None) or (case.client if case else None),
        server=(event.remote if event else None) or (case.server if case else None),
        rst=reset.record() if reset else None,
        side=verdict.side,
        host=verdict.host,
        mechanism=verdict.mechanism,
        confidence=LEVELS[verdict.level],
        evidence=verdict.evidence,
        on=event.host if event else None,
        exception=event.exception if event else None,
        at=event.at if event else (reset.at if reset else None),
    )


# -- the finding ----------------------------------------------------------------------

_LABELS = {
    "accept-queue-overflow": "accept-queue overflow",
    "closed-with-unread-data": "closed with unread data",
    "linger-zero-close": "linger-0 close",
    "killed-with-queued-connections": "killed with queued connections",
    "stale-keep-alive": "stale keep-alive",
    "no-listener": "no listener",
    "injected": "injected",
    "closed-without-response": "closed without a response",
    "unknown": "mechanism unknown",
}
# Groups beyond these many are summed up as "and N more".
_SHOWN = 4


def finding(
    topology: str,
    errors: Sequence[AttributionRecord],
    resets: Sequence[AttributionRecord],
    *,
    counters: Mapping[str, Mapping[str, CounterRecord]] | None = None,
    bursts: Sequence[BurstRecord] = (),
    abort_on_overflow: Mapping[str, bool | None] | None = None,
    servers: Collection[str] = (),
) -> str:
    """One plain sentence: what reset the connections, biggest cause first.

    ``counters`` (layer -> host -> counters), ``bursts``, ``abort_on_overflow`` (host ->
    the sysctl) and ``servers`` (the app server hosts) let it say what the records alone
    cannot: an accept queue that overflowed without a single reset (FINDINGS 1a, the
    negative control of ``tcp_abort_on_overflow=1``). Without them that run's sentence
    would read "no transport errors", and the overflow it was made to show would be lost.
    """
    records = distinct([*errors, *resets])
    quiet = overflows(records, counters or {}, bursts, abort_on_overflow or {}, servers)
    folded = {o.host for o in quiet}
    shown = [r for r in records if not (_overflow_timeout(r) and r.host in folded)]
    if not shown and not quiet:
        return "no transport errors and no resets"
    parts = _grouped(shown)
    if quiet and not any(noun(r) == "reset" for r in shown):
        parts.insert(0, "no resets")
    text = f"{topology}: " + "; ".join(parts)
    if resets:
        text += f" ({len(resets)} of them reported by no test)"
    return "; ".join([text, *(o.words() for o in quiet)])


def distinct(records: Iterable[AttributionRecord]) -> list[AttributionRecord]:
    """The records with one reset counted once: a client that saw one RST twice (requests
    swallowed it at send, then read EOF) reports two errors of one connection."""
    seen: set[tuple[str, str, float]] = set()
    kept = []
    for r in records:
        if r.rst is not None:
            key = (r.rst.from_, r.rst.to, r.rst.at)
            if key in seen:
                continue
            seen.add(key)
        kept.append(r)
    return kept


def _grouped(records: Sequence[AttributionRecord]) -> list[str]:
    """One phrase per (kind, side, host, mechanism), the biggest group first."""
    groups: dict[tuple[str, str, str | None, str], list[AttributionRecord]] = {}
    for r in records:
        groups.setdefault((noun(r), r.side, r.host, r.mechanism), []).append(r)
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    parts = [_phrase(*key, rows) for key, rows in ranked[:_SHOWN]]
    if len(ranked) > _SHOWN:
        parts.append(f"and {sum(len(rows) for _, rows in ranked[_SHOWN:])} more")
    return parts


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _overflow_timeout(r: AttributionRecord) -> bool:
    return noun(r) == "timeout" and r.mechanism == "accept-queue-overflow"


@dataclass(frozen=True)
class Overflow:
    """A host whose accept queue overflowed with no reset of the overflow to show for it
    (FINDINGS 1a: the SYN is dropped, the client retries after 1 s or gives up). Said in
    words because the ledger holds only errors: slow answers are no error at all."""

    host: str
    times: int  # TcpExt.ListenOverflows, summed over the layers
    server: bool  # the host runs the app server (else: some listener of it)
    abort: bool | None  # its tcp_abort_on_overflow (None: not known)
    slow: int = 0  # answered only after a SYN retransmission (the bursts)
    timeouts: int = 0
    sent_resets: bool = False  # its stack sent resets for other reasons

    def words(self, *, no_reset: bool = True) -> str:
        """The overflow in words: "the server's accept queue overflowed 73 times
        (ListenOverflows on h1) with tcp_abort_on_overflow=0: 12 slow requests and 3
        timeouts, no reset" (``no_reset``: end with "no reset" if its stack sent none)."""
        whose = "the server's" if self.server else "a listener's"
        text = f"{whose} accept queue overflowed {_plural(self.times, 'time')} "
        text += f"(ListenOverflows on {self.host})"
        if self.abort is not None:
            text += f" with tcp_abort_on_overflow={int(self.abort)}"
        figures = [
            _plural(n, word)
            for n, word in ((self.slow, "slow request"), (self.timeouts, "timeout"))
            if n
        ]
        said = [" and ".join(figures)] if figures else []
        if no_reset and not self.sent_resets:
            said.append("no reset")
        return text + (": " + ", ".join(said) if said else "")


def overflows(
    records: Sequence[AttributionRecord],
    counters: Mapping[str, Mapping[str, CounterRecord]],
    bursts: Sequence[BurstRecord] = (),
    abort_on_overflow: Mapping[str, bool | None] | None = None,
    servers: Collection[str] = (),
) -> list[Overflow]:
    """Each host whose ``ListenOverflows`` moved and to which no reset was attributed as
    ``accept-queue-overflow``, app servers first. The bursts' slow answers and timeouts
    go to the first (a burst asks the live server); its timeouts are the ledger's overflow
    timeouts on that host, or the bursts' own count if the ledger saw fewer (no hook)."""
    times: Counter[str] = Counter()
    for hosts in counters.values():
        for host, c in hosts.items():
            times[host] += max(c.delta.get(LISTEN_OVERFLOWS, 0), 0)
    sent = {r.host for r in records if noun(r) == "reset" and r.side in ("server", "client")}
    explained = {
        r.host for r in records if noun(r) == "reset" and r.mechanism == "accept-queue-overflow"
    }
    serving = {*servers, *(r.host for r in records if r.side == "server")}
    waited = Counter(r.host for r in records if _overflow_timeout(r))
    found: list[Overflow] = []
    for host in sorted(times, key=lambda h: (h not in serving, h)):
        if times[host] <= 0 or host in explained:
            continue
        first = not found
        timed_out = sum(b.errors.get("ETIMEDOUT", 0) for b in bursts) if first else 0
        found.append(
            Overflow(
                host=host,
                times=times[host],
                server=host in serving,
                abort=abort_setting(host, records, abort_on_overflow or {}),
                slow=sum(b.slow for b in bursts) if first else 0,
                timeouts=max(waited[host], timed_out),
                sent_resets=host in sent,
            )
        )
    return found


def abort_setting(
    host: str, records: Sequence[AttributionRecord], given: Mapping[str, bool | None]
) -> bool | None:
    """The host's ``tcp_abort_on_overflow``: as given, else as an evidence line says it."""
    if given.get(host) is not None:
        return given[host]
    prefix = f"{host} tcp_abort_on_overflow="
    for r in records:
        for line in r.evidence:
            if line.startswith(prefix) and line[len(prefix) :][:1] in ("0", "1"):
                return line[len(prefix)] == "1"
    return None


def label(mechanism: str) -> str:
    """A mechanism as the sentences say it ("accept-queue overflow")."""
    return _LABELS.get(mechanism, mechanism)


def noun(r: AttributionRecord) -> str:
    """What the record is, in the finding's words: a reset, a timeout, a refused or a
    closed connection (only the first is a reset; the others are said as what they are)."""
    if r.errno == "ETIMEDOUT":
        return "timeout"
    if r.mechanism == "no-listener":
        return "refused connection"
    if r.rst is None and r.errno == "REMOTE_CLOSED":
        return "connection closed"
    return "reset"


def _phrase(
    noun: str, side: str, host: str | None, mechanism: str, rows: list[AttributionRecord]
) -> str:
    count = f"{len(rows)} {noun}{'' if len(rows) == 1 else 's'}"
    label = _LABELS.get(mechanism, mechanism)
    if mechanism == "accept-queue-overflow" and host:
        settings = {
            line
            for r in rows
            for line in r.evidence
            if line.startswith(f"{host} tcp_abort_on_overflow=")
        }
        label += "".join(f", {s.split(' ', 1)[1]}" for s in sorted(settings))
    if all(r.confidence == "low" for r in rows):
        label += ", low confidence"
    if side == "none":
        where = f"seen on {host}; " if host else ""
        return f"{count} not sent by any host's TCP stack ({where}a middlebox or firewall)"
    if not host or side == "unknown":
        return f"{count} of unknown origin ({label})"
    if noun == "timeout":
        return f"{count} waiting on the server on {host} ({label}, no reset)"
    if noun == "refused connection":
        return f"{count} answered by the stack of {host} ({label})"
    if noun == "connection closed":
        return f"{count} without a response by the server on {host} ({label})"
    return f"{count} sent by the {side} socket on {host} ({label})"
