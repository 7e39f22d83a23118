"""One layer's window of evidence: opened before it runs, closed after, judged at once.

Before a layer, every host reads its TCP counters and starts an RST-only capture (and,
where the live server listens, an accept-queue sampler) in one round trip; a host whose
server starts (or stops) for this layer does that first, in the same round trip
(:class:`Transition`; :func:`open_window` says in which order the hosts go). After the
layer, every host waits until the layer's connections are gone (a window closed too
early leaks a burst's late RSTs into the next one; a burst's close waits longer, see
:func:`settle_s`), stops the capture and reads its counters again, and a host that ran
the layer prints its ledger file, in one round trip. A window that could not settle
says so in its capture records and the ledger's problems, and the next window's
attributions that could be its leftovers are judged more warily (:func:`warier`). Then
the layer's ledger files (as the close printed them; one too large for that is fetched
on its own) are stored, and :mod:`orchestrator.attribution` says who sent each reset
and why. Everything lands in the record (``counters``, ``ledger``, ``fingerprints``) and
the raw evidence in the run directory (``captures/<layer>/<host>.txt``,
``ledger/<layer>/<host>.jsonl``), so a report can always be rebuilt and a human can
check the judgement.

A host that does not answer costs only its own evidence: its counters are ``{}``, its
capture is ``failed`` with the reason, and the attribution says what it lacked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from orchestrator import attribution, capture, counters, ledger
from orchestrator.context import Context
from orchestrator.evidence import LedgerEvent, Rst
from orchestrator.exceptions import ReadinessError
from orchestrator.hosts import on_all
from orchestrator.plan import LayerStep
from orchestrator.record import (
    AttributionRecord,
    CaptureRecord,
    CounterRecord,
    FingerprintRecord,
)
from orchestrator.suite import Layer
from orchestrator.vault import encoded_forms, redact

# How long closing a window waits for the layer's connections to be gone.
SETTLE_S = 5.0
# A burst's timed-out connections outlive it: a serial server drains its queue after the
# probe gave up (60 requests x 0.3 s), so its close waits the burst's timeout plus this ...
BURST_DRAIN_S = 10.0
# ... but never longer than this: a window that cannot settle says so instead.
MAX_SETTLE_S = 30.0
# Closing a window takes this long on top of its settle wait (stopping tcpdump, counters).
CLOSE_OVERHEAD_S = 55.0
# Opening a window takes at most this long (tcpdump and the sampler get 5 s each to start),
# on top of a server's start or stop that goes first in the same script.
OPEN_S = 60.0
# The sampler stops by itself this long after the layer's timeout, if nobody stops it.
SAMPLER_MARGIN_S = 600
# Events and RSTs judged per layer (the rest stay in the files).
MAX_JUDGED = 5000


@dataclass(frozen=True)
class Opened:
    """What opening the window gave on each host (None: the host did not answer)."""

    layer: str
    hosts: Mapping[str, capture.WindowOpen | None]


@dataclass(frozen=True)
class Transition:
    """A server script to run on a host just before its window opens, in the same round
    trip: a start (``gated``: the window opens only once the server is healthy; a failure
    raises as ``what`` failing, with the script's stderr) or a stop (its status is not
    looked at). ``said``: the progress line once it succeeded."""

    script: str
    timeout_s: float
    what: str  # "starting the testserver"
    gated: bool
    said: str | None = None


def open_window(
    ctx: Context,
    step: LayerStep,
    transitions: Mapping[str, Transition] | None = None,
    what: str = "opening the evidence window",
) -> Opened:
    """Counters and capture on every host, in parallel, before the layer starts; first,
    on the hosts of ``transitions``, their server's start or stop, in the same script.

    The hosts with a transition go first, all at once; the others open once every
    transition is done. A server's start talks to the database's host (the test
    database, migrations, fixtures) and its stop ends those connections: opening that
    host's window meanwhile would put them in the layer's counters and capture, and no
    host opens a window for a layer whose server did not start (as when the start was a
    step of its own). A failed start raises a GroupError named ``what``; a host that
    does not answer a transition is an error too (it was before); one that does not
    answer a plain opening only loses its evidence (None).
    """
    listen = _listen_ports(ctx, step)
    moves = dict(transitions or {})

    def script(name: str) -> str:
        return capture.window_open_script(
            ctx.layout(name),
            ctx.store.run_id,
            step.layer.name,
            exclude_port=ctx.targets[name].host.port,
            listen_ports=listen.get(name, ()),
            max_s=step.layer.timeout_s + SAMPLER_MARGIN_S,
            python=ctx.targets[name].host.python,
        )

    def plain(name: str) -> capture.WindowOpen | None:
        try:
            result = ctx.transports[name].run(script(name), timeout=OPEN_S)
        except ReadinessError:
            return None
        return capture.parse_open(result.stdout)

    def after(name: str) -> capture.WindowOpen | None:
        return _after_transition(ctx, name, moves[name], script(name))

    first = on_all(what, moves, after) if moves else {}
    rest = on_all("opening the evidence window", [n for n in ctx.targets if n not in moves], plain)
    found = {**first, **rest}
    return Opened(step.layer.name, {name: found[name] for name in ctx.targets})


def _after_transition(
    ctx: Context, name: str, move: Transition, window: str
) -> capture.WindowOpen | None:
    """Run ``move`` and then open the window on host ``name``, in one script; raise as
    the transition's own round trip did when it failed (the window is then not opened)."""
    script = capture.window_transition_script(
        ctx.layout(name), move.script, window, gated=move.gated
    )
    result = ctx.transports[name].run(script, timeout=move.timeout_s + OPEN_S)
    # A script that failed before its window part began failed in the transition (a gated
    # one ends there): raised with its message as before, what failed and its stderr. One
    # that failed later lost only its evidence, as a failed opening always did.
    if move.gated and not result.ok and not capture.transition_done(result.stdout):
        result.check(move.what)
    if move.said:
        ctx.progress(name, "server", move.said)
    return capture.parse_open(result.stdout)


def close_window(ctx: Context, step: LayerStep) -> dict[str, capture.WindowClose | None]:
    """Wait for the layer's connections to go, stop the captures, read the counters, and
    read the ledger file of each host that ran the layer."""
    watch = sorted({port for ports in _listen_ports(ctx, step).values() for port in ports})
    if ctx.inventory.database.port:
        watch.append(ctx.inventory.database.port)

    settle = settle_s(step.layer)

    def one(name: str) -> capture.WindowClose | None:
        results = ctx.layout(name).results(ctx.store.run_id)
        script = capture.window_close_script(
            ctx.layout(name),
            ctx.store.run_id,
            step.layer.name,
            watch_ports=watch,
            settle_s=settle,
            # The layer's ledger, read in this round trip: only where the layer ran.
            ledger=ledger.ledger_path(results, step.layer.name) if name in step.hosts else None,
        )
        try:
            result = ctx.transports[name].run(script, timeout=CLOSE_OVERHEAD_S + settle)
        except ReadinessError:
            return None
        return capture.parse_close(result.stdout, name)

    return on_all("closing the evidence window", ctx.targets, one)


def settle_s(layer: Layer) -> float:
    """How long closing ``layer``'s window may wait for its connections to go.

    An ordinary layer's connections end with it: :data:`SETTLE_S`. A burst's do not: its
    timed-out clients keep retransmitting, and the listener answers them with RSTs, while
    the server drains its queue, well after the probe gave up (FINDINGS 1a, pitfall 6).
    Closed after a flat 5 s, those resets land in the next layer's window. So a burst
    waits its timeout plus :data:`BURST_DRAIN_S`, bounded by :data:`MAX_SETTLE_S`; what
    is still open then is recorded (:func:`_settle_problems`) rather than waited for.
    """
    if layer.burst is None:
        return SETTLE_S
    return min(MAX_SETTLE_S, max(SETTLE_S, layer.burst.timeout_s + BURST_DRAIN_S))


def _listen_ports(ctx: Context, step: LayerStep) -> dict[str, tuple[int, ...]]:
    """The app server's port on each server host, while the layer has a live server."""
    if "server" not in step.layer.needs:
        return {}
    return {host: (server.port,) for host, server in ctx.servers.items()}


def record_window(
    ctx: Context,
    step: LayerStep,
    opened: Opened,
    closed: Mapping[str, capture.WindowClose | None],
    *,
    server_died: frozenset[str] = frozenset(),
) -> list[ledger.HostLedger]:
    """Counters, captures, ledger, attribution and fingerprints of one layer, into the
    record and the run directory; gives back each host's ledger, narrowed to the stack's
    errors (what the tests were judged by)."""
    layer = step.layer.name
    ctx.record.counters[layer] = {
        host: _counters(opened.hosts.get(host), closed.get(host)) for host in ctx.targets
    }
    before = unsettled_before(ctx.record.ledger.captures)  # read before this layer's
    led = ctx.record.ledger
    rsts = _captures(ctx, layer, opened, closed)
    led.problems += _settle_problems(layer, led.captures[layer])
    ledgers = _ledger(ctx, step, closed)
    window, other = attribution.scoped(
        _window(ctx, layer, ledgers, rsts, opened, closed, server_died)
    )
    window = _bounded(window, led.problems)
    kept = {id(e) for e in window.events}
    for book in ledgers:  # judged by the stack's errors only, like the attribution
        book.events = [e for e in book.events if id(e) in kept]
        led.flagged += ledger.flagged_tests(book)
    try:
        errors, resets = attribution.attribute(window)
    except Exception as err:  # a checker that crashes yields "unknown", never a crashed run
        why = f"the attribution failed ({type(err).__name__}: {err}); the evidence is kept"
        errors, resets = [_unjudged(e, why) for e in window.events], []
        led.problems.append(f"layer {layer}: {why}")
    if before is not None:
        errors = [warier(r, before, window.addresses, reported=True) for r in errors]
        resets = [warier(r, before, window.addresses, reported=False) for r in resets]
    led.collected = True
    led.events += len(window.events)
    led.other_events += other
    led.errors += errors
    led.resets += resets
    led.by_mechanism = attribution.by_mechanism([*led.errors, *led.resets])
    led.finding = attribution.finding(
        ctx.plan.topology,
        led.errors,
        led.resets,
        counters=ctx.record.counters,
        bursts=ctx.record.bursts,
        abort_on_overflow=window.abort_on_overflow,
        servers=frozenset(ctx.servers),
    )
    _fingerprints(ctx, step, opened, closed)
    return ledgers


def _window(
    ctx: Context,
    layer: str,
    ledgers: list[ledger.HostLedger],
    rsts: list[Rst],
    opened: Opened,
    closed: Mapping[str, capture.WindowClose | None],
    server_died: frozenset[str],
) -> attribution.Window:
    """Everything this layer's window holds, as the attribution takes it."""
    return attribution.Window(
        layer=layer,
        events=tuple(e for book in ledgers for e in book.events),
        rsts=tuple(rsts),
        captured=frozenset(
            host for host, c in ctx.record.ledger.captures[layer].items() if c.status == "captured"
        ),
        deltas={h: _full_delta(opened.hosts.get(h), closed.get(h)) for h in ctx.targets},
        addresses={name: frozenset({t.ip or t.address}) for name, t in ctx.targets.items()},
        endpoints=_endpoints(ctx),
        abort_on_overflow=abort_on_overflow(opened),
        server_died=server_died,
    )


def abort_on_overflow(opened: Opened) -> dict[str, bool]:
    """Each host's ``tcp_abort_on_overflow`` as read when the window opened. A host that
    did not answer, or whose value could not be read, is left out: the attribution then
    says "unknown" for it, never "=0" (an unread value is no evidence that a full accept
    queue drops instead of resetting)."""
    found: dict[str, bool] = {}
    for host, o in opened.hosts.items():
        value = o.sysctls.get("tcp_abort_on_overflow") if o is not None else None
        if value is not None:
            found[host] = bool(value)
    return found


# -- a window that closed before its layer's connections were gone ----------------------


@dataclass(frozen=True)
class Unsettled:
    """The previous window, closed while some hosts still had the layer's connections:
    its layer, and each such host's capture record (how many lingered, how long it waited)."""

    layer: str
    hosts: Mapping[str, CaptureRecord]


# How confident an attribution in the window after an unsettled one can be, and why: a
# reset no test reported may be the previous layer's leftover (so only low); an error a
# test of this layer reported is its own, but the counters that explain it may hold
# leftovers (medium).
LEFTOVER_RESET = ("low", "this RST may be one of that layer's late resets, not this layer's")
LEFTOVER_ERROR = (
    "medium",
    "a test of this layer reported it, but the counters it was judged by may hold that "
    "layer's late resets",
)


def unsettled_before(captures: Mapping[str, Mapping[str, CaptureRecord]]) -> Unsettled | None:
    """The last window recorded so far, if it closed unsettled on any host (None if it
    settled, or its settling is not known)."""
    if not captures:
        return None
    layer = list(captures)[-1]  # windows are recorded in the order they closed
    hosts = {h: c for h, c in captures[layer].items() if c.settled is False}
    return Unsettled(layer, hosts) if hosts else None


def _settle_problems(layer: str, captures: Mapping[str, CaptureRecord]) -> list[str]:
    """One line per host where the window closed with the layer's connections still there."""
    return [
        f"layer {layer}: the window closed on {host} with {c.lingering or '?'} socket(s) of "
        f"the layer still open after {c.settle_waited_s or 0:.1f} s; their late resets may "
        "land in the next layer's window (judged there as possible leftovers)"
        for host, c in captures.items()
        if c.settled is False
    ]


def _involved(record: AttributionRecord, owners: Mapping[str, frozenset[str]]) -> set[str]:
    """The hosts an attribution touches: the sender, the test's host, where its RST was
    seen, and the owners of its two addresses."""
    hosts = {h for h in (record.host, record.on) if h is not None}
    if record.rst is not None:
        hosts |= {seen.split()[0] for seen in record.rst.seen if seen.strip()}
    for hostport in (record.client, record.server):
        addr = (hostport or "").rpartition(":")[0].strip("[]")
        hosts |= {host for host, addrs in owners.items() if addr in addrs}
    return hosts


def warier(
    record: AttributionRecord,
    before: Unsettled,
    owners: Mapping[str, frozenset[str]],
    *,
    reported: bool,
) -> AttributionRecord:
    """An attribution judged with the previous window's leftovers in mind: when it
    touches a host where that window closed unsettled, its confidence is lowered
    (:data:`LEFTOVER_RESET`, or :data:`LEFTOVER_ERROR` for an error a test ``reported``)
    and its evidence says why. Other attributions are returned as they are."""
    hosts = sorted(_involved(record, owners) & set(before.hosts))
    if not hosts:
        return record
    at_most, why = LEFTOVER_ERROR if reported else LEFTOVER_RESET
    said = ", ".join(
        f"{h} ({before.hosts[h].lingering or '?'} socket(s) still open after "
        f"{before.hosts[h].settle_waited_s or 0:.1f} s)"
        for h in hosts
    )
    line = f"the previous window ({before.layer}) closed unsettled on {said}: {why}"
    levels = attribution.LEVELS
    level = min(levels.index(record.confidence), levels.index(at_most))
    return replace(record, confidence=levels[level], evidence=[*record.evidence, line])


def _bounded(window: attribution.Window, problems: list[str]) -> attribution.Window:
    """At most :data:`MAX_JUDGED` events and RSTs of a layer are judged and recorded: a
    retry loop that spins on a refused port must not make the record (and the report)
    grow without end. The rest stay in the ledger and capture files, and the record says
    how many were left out."""
    events, rsts = window.events[:MAX_JUDGED], window.rsts[:MAX_JUDGED]
    left = len(window.events) - len(events), len(window.rsts) - len(rsts)
    if any(left):
        problems.append(
            f"layer {window.layer}: only the first {MAX_JUDGED} transport errors and RSTs "
            f"were judged ({left[0]} errors and {left[1]} RSTs more are in the ledger and "
            "capture files)"
        )
    return replace(window, events=events, rsts=rsts)


def _unjudged(event: LedgerEvent, why: str) -> AttributionRecord:
    return AttributionRecord(
        layer=event.layer,
        test=event.test,
        attempt=event.attempt,
        errno=event.errno,
        client=event.local,
        server=event.remote,
        rst=None,
        side="unknown",
        host=None,
        mechanism="unknown",
        confidence="low",
        evidence=[why],
        on=event.host,
        exception=event.exception,
        at=event.at,
    )


def _counters(
    opened: capture.WindowOpen | None, closed: capture.WindowClose | None
) -> CounterRecord:
    before = opened.counters if opened else {}
    after = closed.counters if closed else {}
    return CounterRecord(
        before=counters.watched(before),
        after=counters.watched(after),
        delta=counters.watched(counters.delta(before, after)),
    )


def _full_delta(
    opened: capture.WindowOpen | None, closed: capture.WindowClose | None
) -> dict[str, int]:
    if opened is None or closed is None:
        return {}
    return counters.delta(opened.counters, closed.counters)


def _captures(
    ctx: Context,
    layer: str,
    opened: Opened,
    closed: Mapping[str, capture.WindowClose | None],
) -> list[Rst]:
    """Each host's capture into the record and the run directory; every RST seen."""
    records: dict[str, CaptureRecord] = {}
    rsts: list[Rst] = []
    for host in ctx.targets:
        o, c = opened.hosts.get(host), closed.get(host)
        if o is None or c is None:
            what = "opening" if o is None else "closing"
            failed = CaptureRecord("failed", f"the host did not answer {what} the window")
            records[host] = _settled(failed, c)
            continue
        if o.capture_status != "captured":
            records[host] = _settled(CaptureRecord(o.capture_status, o.capture_reason), c)
            continue
        path = ctx.store.write_text(c.capture_text, "captures", layer, f"{host}.txt")
        status, reason, dropped = c.capture_status, c.capture_reason, c.capture_dropped or 0
        if status == "captured" and (
            dropped or (c.capture_lines or 0) >= capture.MAX_CAPTURE_LINES
        ):
            # Not the whole window: "no RST captured" must not be read as "none was sent".
            status = "partial"
            reason = (
                f"the kernel dropped {dropped} packet(s)"
                if dropped
                else f"more than {capture.MAX_CAPTURE_LINES} RSTs: the capture stopped there"
            )
        records[host] = _settled(
            CaptureRecord(status, reason, len(c.rsts), ctx.store.relative(path), dropped=dropped),
            c,
        )
        rsts += c.rsts
    ctx.record.ledger.captures[layer] = records
    return rsts


def _settled(record: CaptureRecord, closed: capture.WindowClose | None) -> CaptureRecord:
    """The capture record with how the window's close settled (whatever the capture did:
    the wait for the layer's connections does not need tcpdump)."""
    if closed is None:
        return record
    return replace(
        record,
        settled=closed.settled,
        lingering=closed.lingering,
        settle_waited_s=closed.settle_waited_s,
    )


def _ledger(
    ctx: Context, step: LayerStep, closed: Mapping[str, capture.WindowClose | None]
) -> list[ledger.HostLedger]:
    """The ledger lines of each host that ran the layer, as the window's close printed
    them (fetched on their own where it did not: too large, a host that did not answer
    the close), stored and parsed."""
    layer = step.layer.name
    books: list[ledger.HostLedger] = []
    files: dict[str, str] = {}
    for host in step.hosts:
        close = closed.get(host)
        if close is not None and close.ledger_absent:
            continue  # no line written (no test process ran)
        path = ledger.ledger_path(ctx.layout(host).results(ctx.store.run_id), layer)
        try:
            data = close.ledger if close is not None else None
            if data is None:
                data = ctx.transports[host].get(path)
            raw = data.decode("utf-8", "replace")
            # JSON lines: a secret may be there escaped, or percent-encoded in a URL.
            text = redact(raw, encoded_forms(ctx.secret_values()))
        except (ReadinessError, OSError):
            continue  # no line written (no test process ran), or the host is gone
        stored = ctx.store.write_text(text, "ledger", layer, f"{host}.jsonl")
        files[host] = ctx.store.relative(stored)
        books.append(ledger.parse(text, host, layer))
    ctx.record.ledger.files[layer] = files
    return books


def _endpoints(ctx: Context) -> tuple[attribution.Endpoint, ...]:
    found = [
        attribution.Endpoint(host, "server", server.hostport)
        for host, server in ctx.servers.items()
    ]
    db = ctx.database
    if db is not None and ctx.inventory.database.port:
        target = ctx.targets.get(db.host)
        if target is not None:
            address = target.ip or target.address
            shown = f"[{address}]" if ":" in address else address
            found.append(
                attribution.Endpoint(db.host, "database", f"{shown}:{ctx.inventory.database.port}")
            )
    return tuple(found)


def _fingerprints(
    ctx: Context,
    step: LayerStep,
    opened: Opened,
    closed: Mapping[str, capture.WindowClose | None],
) -> None:
    """How each app server took connections, taken during every layer that used it: the
    accept-queue peak is the layer's own, and the layer that fills the queue (a burst
    after the REST tests, a ``--repeat`` pass) is rarely the first. The record keeps the
    largest peak and, as ``layer``, the layer it was seen in (:func:`kept_fingerprint`)."""
    if "server" not in step.layer.needs:
        return
    links = dict(ctx.plan.database_links)
    for host, server in ctx.servers.items():
        o, c = opened.hosts.get(host), closed.get(host)
        threading, keep_alive = server.connection_model()
        queue = c.accept_queue.get(server.port) if c else None
        sysctls = o.sysctls if o else {}
        taken = FingerprintRecord(
            kind=server.mode,
            address=server.hostport,
            threading=threading,
            keep_alive=keep_alive,
            database_link=links.get(host),
            backlog=queue.backlog if queue else None,
            accept_queue_peak=queue.peak if queue else None,
            somaxconn=sysctls.get("somaxconn"),
            tcp_abort_on_overflow=sysctls.get("tcp_abort_on_overflow"),
            tcp_syncookies=sysctls.get("tcp_syncookies"),
            layer=step.layer.name,
        )
        ctx.record.fingerprints[host] = kept_fingerprint(ctx.record.fingerprints.get(host), taken)


def kept_fingerprint(
    before: FingerprintRecord | None, taken: FingerprintRecord
) -> FingerprintRecord:
    """The fingerprint to keep once ``taken`` (this layer's) is known: the one with the
    larger accept-queue peak (the earlier one on a tie, or when this layer's peak was not
    seen), with what it could not read (a backlog, a sysctl) filled in from the other."""
    if before is None:
        return taken
    higher = taken.accept_queue_peak is not None and (
        before.accept_queue_peak is None or taken.accept_queue_peak > before.accept_queue_peak
    )
    kept, other = (taken, before) if higher else (before, taken)
    return replace(
        kept,
        backlog=kept.backlog if kept.backlog is not None else other.backlog,
        somaxconn=kept.somaxconn if kept.somaxconn is not None else other.somaxconn,
        tcp_abort_on_overflow=(
            kept.tcp_abort_on_overflow
            if kept.tcp_abort_on_overflow is not None
            else other.tcp_abort_on_overflow
        ),
        tcp_syncookies=(
            kept.tcp_syncookies if kept.tcp_syncookies is not None else other.tcp_syncookies
        ),
    )
