"""One layer's evidence window on one host: the scripts that open and close it, and what
their output says.

Opening (one round trip) reads the TCP counters and the sysctls of an accept-queue
overflow, and starts an RST-only ``tcpdump`` and an accept-queue sampler, both detached
and marked so that teardown stops them if readiness dies. Closing (one round trip) waits
until the layer's connections are gone (a window closed earlier leaks their late resets
into the next one: FINDINGS pitfall 6), stops both and reads the counters again.

Each layer pays these round trips on every host, so the work that has to happen next to
them rides along instead of costing round trips of its own: a server's start or stop
goes in front of the opening (:func:`window_transition_script`, the server first and to
its end, so that its traffic stays outside the window), and the close prints the
layer's ledger file (up to :data:`MAX_INLINE_LEDGER` bytes) where a fetch of its own
used to read it.

The scripts print sections that each start with a line ``@@readiness NAME``; the parsers
here take what is there and never raise: a host that lost a section (a broken pipe, a
script cut short) still yields the rest, and what is missing reads as unknown or failed.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orchestrator import counters, scripts
from orchestrator.evidence import Rst
from orchestrator.layout import MARKER_VAR, Layout

# Every section of the scripts' output starts with this, then the section's name.
SECTION = "@@readiness "
SYSCTLS = ("somaxconn", "tcp_abort_on_overflow", "tcp_syncookies")
# The capture lines one close prints at most (the rest stay in the host's file): a flood
# of resets must not make the answer of one host unbounded.
MAX_CAPTURE_LINES = 100_000
# The largest ledger file the close prints (in base64); a larger one is fetched on its own
# (SFTP), as every ledger was before. Why a cap: the close's answer is held whole in
# memory (the transport keeps a script's output when no sink takes it), as base64 (4/3
# of the file), then as text and as the file's bytes again, on every host at once; the
# round trip it saves is worth milliseconds, while 8 MiB take 0.1-0.2 s to send (56-89
# MB/s on the lab): past that, inlining saves nothing that counts and costs memory. A
# ledger holds a line (~400 bytes) per transport error or test attempt: a few KB in a
# normal run, MBs only for a retry loop spinning on a refused port.
MAX_INLINE_LEDGER = 8 << 20


@dataclass(frozen=True)
class AcceptQueue:
    """A listening port as the sampler saw it during the window."""

    port: int
    backlog: int | None  # the backlog in force (ss -ltn Send-Q); None: not seen
    peak: int | None  # the largest accept queue seen (ss Recv-Q); full is backlog + 1


@dataclass(frozen=True)
class WindowOpen:
    """What opening the window said on one host."""

    counters: counters.Snapshot
    sysctls: Mapping[str, int | None]  # SYSCTLS -> value, None where unreadable
    capture_status: str  # captured | unavailable | failed
    capture_reason: str | None
    capture_up_s: float | None  # how long tcpdump took to say it was listening
    sampler_status: str  # sampling | none | unavailable | failed
    sampler_reason: str | None


@dataclass(frozen=True)
class WindowClose:
    """What closing the window said on one host."""

    counters: counters.Snapshot
    capture_status: str  # captured | unavailable | failed
    capture_reason: str | None
    rsts: tuple[Rst, ...]
    capture_text: str  # the capture's lines as printed, to store
    capture_dropped: int | None  # packets the kernel dropped: the capture missed some
    capture_lines: int | None  # lines in the host's file (more than shown if cut)
    accept_queue: Mapping[int, AcceptQueue] = field(default_factory=dict)
    settled: bool | None = None  # the watched ports were quiet before the close
    settle_waited_s: float | None = None
    lingering: int | None = None  # sockets still open on them when it gave up
    # The layer's ledger file as the close printed it (exact bytes). None: the answer did
    # not bring it (none asked, larger than MAX_INLINE_LEDGER, unreadable, a cut answer),
    # so it is fetched on its own; ledger_absent: the host has no such file (no test
    # process wrote a line), nothing to fetch.
    ledger: bytes | None = None
    ledger_absent: bool = False


def capture_filter(exclude_port: int) -> str:
    """The RSTs of either IP version, except those of the port readiness's SSH uses.

    ``tcp[tcpflags]`` matches IPv4 only (pcap-filter: protocol indexing does not apply to
    IPv6); the second term reads the TCP flags behind a bare IPv6 header (next header 6,
    flags at 40 + 13). An IPv6 RST behind extension headers is not matched.
    """
    return (
        "((tcp[tcpflags] & tcp-rst != 0) or (ip6[6] == 6 and ip6[53] & 4 != 0))"
        f" and not port {int(exclude_port)}"
    )


def window_open_script(
    layout: Layout,
    run_id: str,
    layer: str,
    *,
    exclude_port: int,
    listen_ports: Sequence[int],
    max_s: float,
    python: str = "python3",
) -> str:
    """The script that opens ``layer``'s window on a host (counters, capture, sampler).

    ``exclude_port`` is the host's SSH port: readiness's own connection never shows up.
    ``listen_ports`` are the ports the live server listens on here (none: no sampler).
    ``max_s`` bounds the life of the capture and the sampler if no close ever comes.
    """
    return scripts.render(
        "window_open.sh",
        marker_var=MARKER_VAR,
        marker_root=layout.root,
        run=layout.run,
        results=layout.results(run_id),
        layer=layer,
        filter=capture_filter(exclude_port),
        max_s=max(1, math.ceil(max_s)),
        max_packets=MAX_CAPTURE_LINES,
        ports=[int(port) for port in listen_ports],
        python=python,
    )


def window_transition_script(layout: Layout, transition: str, window: str, *, gated: bool) -> str:
    """One script for a host whose server starts or stops before a layer: ``transition``
    (the server's start or stop script), then ``window`` (:func:`window_open_script`).

    ``gated``: the window opens only if the transition succeeded, else the script ends
    with its exit status and stderr (a start); a stop's status is not looked at, as when
    it was a script of its own. :func:`transition_done` tells from the output whether the
    transition ran to its end; :func:`parse_open` reads the window's part of it.
    """
    return scripts.render(
        "window_transition.sh",
        marker_var=MARKER_VAR,
        marker_root=layout.root,
        # Both are whole scripts rendered from their own templates, values quoted there.
        transition=scripts.Shell(transition),
        window=scripts.Shell(window),
        gated=gated,
    )


def transition_done(stdout: str) -> bool:
    """Whether the output of :func:`window_transition_script` says its server part ended
    and the window's opening began."""
    return "opening" in sections(stdout)


def window_close_script(
    layout: Layout,
    run_id: str,
    layer: str,
    *,
    watch_ports: Sequence[int],
    settle_s: float = 5.0,
    ledger: str | None = None,
) -> str:
    """The script that closes ``layer``'s window: settle on ``watch_ports``, stop, count;
    then, given the path of the layer's ``ledger`` file, print it (up to
    :data:`MAX_INLINE_LEDGER` bytes), so that no round trip of its own fetches it."""
    ports = sorted({int(port) for port in watch_ports})
    return scripts.render(
        "window_close.sh",
        marker=layout.marker,
        run=layout.run,
        results=layout.results(run_id),
        layer=layer,
        ports_hex=" " + "".join(f"{port:04X} " for port in ports),
        settle_tenths=max(0, math.ceil(settle_s * 10)),
        max_lines=MAX_CAPTURE_LINES,
        ledger=ledger or "",
        max_ledger=MAX_INLINE_LEDGER,
    )


def sections(stdout: str) -> dict[str, list[str]]:
    """The output's sections: name -> its lines (lines before the first are dropped)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        if line.startswith(SECTION):
            current = found.setdefault(line[len(SECTION) :].strip(), [])
        elif current is not None:
            current.append(line)
    return found


def _keyed(lines: Sequence[str]) -> dict[str, str]:
    """``key rest-of-line`` lines as a dict (the first of each key wins)."""
    out: dict[str, str] = {}
    for line in lines:
        key, _, rest = line.strip().partition(" ")
        if key:
            out.setdefault(key, rest.strip())
    return out


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _status(
    part: list[str] | None, known: tuple[str, ...], what: str
) -> tuple[str, str | None, dict[str, str]]:
    """A section's ``status WORD [reason]`` line, and its other keyed lines."""
    if part is None:
        return "failed", f"the host's answer has no {what} section", {}
    keyed = _keyed(part)
    word, _, reason = keyed.get("status", "").partition(" ")
    if word not in known:
        return "failed", f"the host's answer has no {what} status", keyed
    return word, reason.strip() or None, keyed


def parse_open(stdout: str) -> WindowOpen:
    """What opening the window printed on one host; never raises."""
    parts = sections(stdout)
    keyed = _keyed(parts.get("sysctls", []))
    status, reason, capture = _status(
        parts.get("capture"), ("captured", "unavailable", "failed"), "capture"
    )
    sampler, sampler_reason, _ = _status(
        parts.get("sampler"), ("sampling", "none", "unavailable", "failed"), "sampler"
    )
    up_ms = _int(capture.get("up_ms"))
    return WindowOpen(
        counters=counters.parse("\n".join(parts.get("counters", []))),
        sysctls={name: _int(keyed.get(name)) for name in SYSCTLS},
        capture_status=status,
        capture_reason=reason,
        capture_up_s=up_ms / 1000 if up_ms is not None else None,
        sampler_status=sampler,
        sampler_reason=sampler_reason,
    )


def parse_close(stdout: str, host: str) -> WindowClose:
    """What closing the window printed on ``host``; never raises."""
    parts = sections(stdout)
    status, reason, capture = _status(
        parts.get("capture"), ("captured", "unavailable", "failed"), "capture"
    )
    lines = [line for line in parts.get("rst", []) if line.strip()]
    rsts = tuple(rst for line in lines if (rst := parse_rst_line(line, host)) is not None)
    settle = _keyed(parts.get("settle", []))
    settled = settle.get("settled")
    waited_ms = _int(settle.get("waited_ms"))
    ledger, ledger_absent = _ledger(parts.get("ledger"))
    return WindowClose(
        counters=counters.parse("\n".join(parts.get("counters", []))),
        capture_status=status,
        capture_reason=reason,
        rsts=rsts,
        capture_text="".join(f"{line}\n" for line in lines),
        capture_dropped=_int(capture.get("dropped")),
        capture_lines=_int(capture.get("lines")),
        accept_queue=_accept_queue(parts.get("sampler", [])),
        settled=None if settled not in ("0", "1") else settled == "1",
        settle_waited_s=waited_ms / 1000 if waited_ms is not None else None,
        lingering=_int(settle.get("lingering")),
        ledger=ledger,
        ledger_absent=ledger_absent,
    )


def _ledger(lines: Sequence[str] | None) -> tuple[bytes | None, bool]:
    """The ledger section: ``status inline SIZE`` and the file in base64 -> its bytes;
    ``status absent`` -> (None, True); anything else, or bytes that are not SIZE long (a
    cut answer, a host without base64) -> (None, False): fetch it."""
    if not lines:
        return None, False
    status = lines[0].split()
    if status == ["status", "absent"]:
        return None, True
    if len(status) != 3 or status[:2] != ["status", "inline"] or not status[2].isdigit():
        return None, False
    try:
        data = base64.b64decode("".join(line.strip() for line in lines[1:]), validate=True)
    except (binascii.Error, ValueError):
        return None, False
    return (data, False) if len(data) == int(status[2]) else (None, False)


def _accept_queue(lines: Sequence[str]) -> dict[int, AcceptQueue]:
    """The sampler's ``PORT BACKLOG PEAK`` lines (``-``: not seen)."""
    out: dict[int, AcceptQueue] = {}
    for line in lines:
        fields = line.split()
        if len(fields) != 3 or not fields[0].isdigit():
            continue
        port = int(fields[0])
        out[port] = AcceptQueue(port, _int(fields[1]), _int(fields[2]))
    return out


# tcpdump 4.99, -i any -nn -tt -l: "TIME [IFACE DIR] IP|IP6 SRC > DST: Flags [..], ..."
_LINE = re.compile(
    r"^(?P<at>\d+\.\d+)\s+"
    r"(?:(?P<iface>\S+)\s+(?P<dir>In|Out|B|M|P)\s+)?"
    r"(?P<proto>IP6?)\s+(?P<src>\S+)\s+>\s+(?P<dst>\S+):\s+"
    r"Flags\s+\[(?P<flags>[^\]]*)\](?P<rest>.*)$"
)
_FIELDS = {name: re.compile(rf"(?:^|[\s,]){name} (\d+)") for name in ("seq", "ack", "win")}


def _endpoint(text: str, ipv6: bool) -> str | None:
    """tcpdump's ``addr.port`` as ``addr:port`` (``[addr]:port`` for IPv6); None if it
    is not an address of that version and a port (``127.0.0.1`` alone is not)."""
    address, dot, port = text.rpartition(".")
    if not dot or not port.isdigit():
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if parsed.version != (6 if ipv6 else 4):
        return None
    return f"[{address}]:{port}" if ipv6 else f"{address}:{port}"


def parse_rst_line(line: str, host: str) -> Rst | None:
    """One line of the capture as an :class:`Rst` seen on ``host``; None if it is not one.

    ``iface`` is ``any`` and ``direction`` ``?`` when the line does not say (a capture
    on one interface prints neither); a direction other than In/Out (broadcast,
    multicast, another host's packet) is ``?`` too.
    """
    found = _LINE.match(line.strip())
    if found is None or "R" not in found["flags"]:
        return None
    ipv6 = found["proto"] == "IP6"
    src, dst = _endpoint(found["src"], ipv6), _endpoint(found["dst"], ipv6)
    if src is None or dst is None:
        return None
    rest = found["rest"]
    values: dict[str, int | None] = {}
    for name, pattern in _FIELDS.items():
        value = pattern.search(rest)
        values[name] = int(value.group(1)) if value else None
    direction = found["dir"] if found["dir"] in ("In", "Out") else "?"
    return Rst(
        host=host,
        at=float(found["at"]),
        src=src,
        dst=dst,
        iface=found["iface"] or "any",
        direction=direction,
        seq=values["seq"],
        ack=values["ack"],
        win=values["win"],
    )
