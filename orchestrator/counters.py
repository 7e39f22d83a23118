"""TCP counters of a host, from ``/proc/net/netstat`` and ``/proc/net/snmp``.

Snapshots are taken on every host before and after every layer (one window per layer,
:mod:`orchestrator.forensics`). What each counter says about a reset, as measured on this
kernel (``../shared/econnreset/FINDINGS.md``): ``OutRsts`` and ``TCPAbortOn*`` grow on
the side whose stack sends the reset (``TCPAbortOnClose``: closed with unread data;
``TCPAbortOnData``: a linger-0 close, or data after close), ``EstabResets`` on both ends
of a reset connection, ``EmbryonicRsts`` on a server that answers an accept-queue
overflow with a reset (``tcp_abort_on_overflow=1``), ``ListenOverflows``/``ListenDrops``,
``TCPReqQFullDoCookies`` and ``Syncookies*`` on a server whose queue overflowed,
``TCPSynRetrans``/``TCPTimeouts`` on a client that waited for it. All-on-one, both ends
share one set: only the counters that exist on one side by nature name it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

# The counters the report shows, as "Group.Name" keys.
WATCHED = (
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPAbortOnData",
    "TcpExt.TCPAbortOnClose",
    "TcpExt.TCPAbortOnTimeout",
    "TcpExt.TCPAbortOnMemory",
    "TcpExt.TCPAbortOnLinger",
    "TcpExt.EmbryonicRsts",
    "TcpExt.SyncookiesSent",
    "TcpExt.SyncookiesRecv",
    "TcpExt.SyncookiesFailed",
    "TcpExt.TCPReqQFullDoCookies",
    "TcpExt.TCPSynRetrans",
    "TcpExt.TCPTimeouts",
    "Tcp.EstabResets",
    "Tcp.OutRsts",
    "Tcp.AttemptFails",
    "Tcp.RetransSegs",
    "Tcp.ActiveOpens",
    "Tcp.PassiveOpens",
)

Snapshot = dict[str, int]


def parse(text: str) -> Snapshot:
    """Parse the header/value line pairs of both files into ``{"Group.Name": value}``.

    Lines that do not pair up (a truncated read) are skipped rather than raised: a
    partial snapshot is still evidence.
    """
    out: Snapshot = {}
    lines = [line.split() for line in text.splitlines() if line.strip()]
    for header, values in itertools.pairwise(lines):
        if not header or not values or header[0] != values[0] or not header[0].endswith(":"):
            continue
        if any(not v.lstrip("-").isdigit() for v in values[1:]):
            continue
        group = header[0][:-1]
        for name, value in zip(header[1:], values[1:], strict=False):
            out[f"{group}.{name}"] = int(value)
    return out


def delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """``after - before`` for every counter present in both."""
    return {key: after[key] - before[key] for key in after if key in before}


def watched(snapshot: Mapping[str, int]) -> dict[str, int]:
    """Only the counters the report shows, in a stable order."""
    return {key: snapshot[key] for key in WATCHED if key in snapshot}
