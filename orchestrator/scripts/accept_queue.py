"""Sample the accept queue of the listeners on PORT... until stopped; write what it saw.

Usage: python - OUTPUT MAX_SECONDS PORT... Started in the background by window_open.sh
(run in isolated mode, ``-I``) for the ports the live server listens on. Every ~20 ms it
reads each LISTEN socket on those ports: its accept queue now and the backlog in force.
On SIGTERM (window_close.sh), SIGINT or SIGHUP, or after MAX_SECONDS if nobody stops it
(a run that died must not leave a sampler forever), it writes one ``PORT BACKLOG PEAK``
line per port to OUTPUT (``-`` for a value it never saw: no listener on that port) and
exits. It prints ``sampling`` once the first sample is taken, so the opener knows.

Why sock_diag (netlink, what ``ss`` uses) first: ``/proc/net/tcp`` shows a listener's
accept queue (rx_queue) but not its backlog (its tx_queue is 0 for a LISTEN socket); the
backlog in force (min(listen() argument, somaxconn)) is only in the sock_diag answer's
``wqueue``. Where netlink is refused (a locked-down container), /proc/net/tcp{,6} still
gives the queue, and the backlog stays unknown.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import time

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST_DUMP = 0x301
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
REQUEST = struct.Struct("=BBBxI")  # inet_diag_req_v2 before its 48-byte inet_diag_sockid
PERIOD_S = 0.02

# port -> (backlog, queue) of one sample; several listeners on one port (IPv4 and IPv6)
# are taken together: the larger backlog, the larger queue.
# (For the type checker only: hosts may run a python3 older than 3.10, where this
# expression fails at run time; annotations are not evaluated.)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeAlias

    Sample: TypeAlias = dict[int, tuple[int | None, int]]


def _diag_dump(sock: socket.socket, family: int, ports: set[int], out: Sample) -> None:
    """One sock_diag dump of the LISTEN TCP sockets of ``family``, into ``out``."""
    request = REQUEST.pack(family, socket.IPPROTO_TCP, 0, 1 << TCP_LISTEN) + bytes(48)
    sock.send(
        HEADER.pack(HEADER.size + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, 1, 0)
        + request
    )
    while True:
        data = sock.recv(1 << 16)
        at = 0
        while at + HEADER.size <= len(data):
            length, kind = HEADER.unpack_from(data, at)[:2]
            if kind == NLMSG_DONE or length < HEADER.size:
                return
            if kind == NLMSG_ERROR:
                raise OSError("sock_diag refused the dump")
            body = at + HEADER.size  # inet_diag_msg: family, state, timer, retrans, id, ...
            port = struct.unpack_from(">H", data, body + 4)[0]
            queue, backlog = struct.unpack_from("=II", data, body + 56)
            if port in ports:
                _merge(out, port, backlog, queue)
            at += (length + 3) & ~3


def _proc_sample(ports: set[int], out: Sample) -> None:
    """The accept queues from /proc/net/tcp{,6}, when netlink is not allowed."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as table:
                next(table, None)
                for line in table:
                    fields = line.split()
                    # Listeners come first in these tables (then SYN_RECV and the rest).
                    if len(fields) < 5 or fields[3] not in ("0A", "03"):
                        break
                    port = int(fields[1].rsplit(":", 1)[1], 16)
                    if fields[3] == "0A" and port in ports:
                        _merge(out, port, None, int(fields[4].split(":")[1], 16))
        except (OSError, ValueError, IndexError):
            continue


def _merge(out: Sample, port: int, backlog: int | None, queue: int) -> None:
    old_backlog, old_queue = out.get(port, (None, 0))
    if old_backlog is not None and (backlog is None or old_backlog > backlog):
        backlog = old_backlog
    out[port] = (backlog, max(queue, old_queue))


class Sampler:
    """The largest queue and the backlog seen per port, over the samples so far."""

    def __init__(self, ports: set[int]) -> None:
        self.ports = ports
        self.seen: Sample = {}
        self.diag: socket.socket | None = None
        try:
            self.diag = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
        except (OSError, AttributeError):
            self.diag = None

    def sample(self) -> None:
        """Take one sample, by netlink while it works, else from /proc."""
        now: Sample = {}
        if self.diag is not None:
            try:
                for family in (socket.AF_INET, socket.AF_INET6):
                    _diag_dump(self.diag, family, self.ports, now)
            except OSError:
                self.diag.close()
                self.diag = None
                now = {}
        if self.diag is None:
            _proc_sample(self.ports, now)
        for port, (backlog, queue) in now.items():
            _merge(self.seen, port, backlog, queue)

    def write(self, output: str) -> None:
        """``PORT BACKLOG PEAK`` per port, atomically (a reader never sees half a file)."""
        lines = []
        for port in sorted(self.ports):
            backlog, peak = self.seen.get(port, (None, None))
            lines.append(
                f"{port} {'-' if backlog is None else backlog} {'-' if peak is None else peak}\n"
            )
        with open(output + ".new", "w") as out:
            out.writelines(lines)
        os.replace(output + ".new", output)


def main(argv: list[str]) -> int:
    """Sample until a stop signal or the deadline, then write the result."""
    output, deadline = argv[1], time.monotonic() + float(argv[2])
    sampler = Sampler({int(port) for port in argv[3:]})
    stop: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: stop.append(number))
    sampler.sample()
    print("sampling", flush=True)
    while not stop and time.monotonic() < deadline:
        time.sleep(PERIOD_S)
        sampler.sample()
    sampler.write(output)
    print("stopped by signal" if stop else "stopped at the deadline", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
