"""TCP counters of a host, from ``/proc/net/netstat`` and ``/proc/net/snmp``.

Snapshots are taken on every host before and after every layer. A reset that a client
saw is attributed to the host whose counters moved: ``OutRsts`` and ``TCPAbortOn*`` grow
on the side that sends the reset, ``EstabResets`` on either side of a reset connection,
``ListenOverflows``/``ListenDrops`` on a server whose accept queue overflowed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from orchestrator.scripts import render

# The counters the report shows, as "Group.Name" keys.
WATCHED = (
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPAbortOnData",
    "TcpExt.TCPAbortOnClose",
    "TcpExt.TCPAbortOnTimeout",
    "TcpExt.TCPAbortOnMemory",
    "TcpExt.TCPAbortOnLinger",
    "Tcp.EstabResets",
    "Tcp.OutRsts",
    "Tcp.AttemptFails",
    "Tcp.RetransSegs",
    "Tcp.ActiveOpens",
    "Tcp.PassiveOpens",
)

# The script that reads both files in one round trip.
SNAPSHOT_SCRIPT = render("counters_snapshot.sh")

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
