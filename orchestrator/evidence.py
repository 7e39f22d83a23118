"""The raw evidence of one layer's window, as the control node collects it from the hosts.

Three sources, each parsed into the frozen types below and handed to
:mod:`orchestrator.attribution`, which decides who sent each reset and why:

* the **ledger** lines the hook (``readiness_ledger``, deployed into every test venv)
  appended in the test processes: :class:`LedgerEvent` (a connection-level error) and
  :class:`TestAttempt` (how one attempt of one test ended);
* the **RST capture** of each host: :class:`Rst`, one per RST segment seen;
* the **TCP counters** of each host before and after the window (``orchestrator.counters``).

Addresses are ``addr:port`` strings, an IPv6 address in brackets (``[::1]:8000``).
"""

from __future__ import annotations

from dataclasses import dataclass

# Errno names the ledger records. REMOTE_CLOSED: the server closed the connection
# without sending a response (http.client's RemoteDisconnected, httpx's "Server
# disconnected"): no errno, but the same family of failure.
TRANSPORT_ERRNOS = (
    "ECONNRESET",
    "EPIPE",
    "ECONNREFUSED",
    "ECONNABORTED",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "REMOTE_CLOSED",
)


@dataclass(frozen=True)
class LedgerEvent:
    """One connection-level error in a test process (``kind: error`` line of the ledger)."""

    host: str  # where the test process ran
    layer: str
    at: float  # epoch seconds
    pid: int
    test: str | None  # pytest node id or unittest id; None outside a test
    position: int | None  # 1-based position of the test in the sequence
    attempt: int  # 1-based
    op: str  # connect | send | recv | response | test
    errno: str  # one of TRANSPORT_ERRNOS, or another errno name
    exception: str  # the exception's type name
    message: str
    local: str | None  # the client's addr:port
    remote: str | None  # the server's addr:port
    reused: bool  # the connection had carried a full exchange before (keep-alive)
    source: str  # socket | http.client | test
    # On a reused connection: seconds it sat idle between the end of the last exchange
    # and the start of this one (a server closes idle keep-alive connections only after
    # its keep-alive timeout: a stale connection is one that waited). None: not known.
    idle_s: float | None = None


@dataclass(frozen=True)
class TestAttempt:
    """How one attempt of one test ended (``kind: test`` line of the ledger)."""

    __test__ = False  # not a pytest test class, despite the name

    host: str
    layer: str
    at: float
    test: str
    position: int | None
    attempt: int
    outcome: str  # passed | failed | skipped | error
    retry: bool  # another attempt follows (the retry policy matched)
    duration_s: float


@dataclass(frozen=True)
class Rst:
    """One RST segment as the capture on ``host`` saw it."""

    host: str
    at: float  # epoch seconds
    src: str
    dst: str
    iface: str  # eth0, lo, any...
    direction: str  # In | Out | ? (the capture could not tell)
    seq: int | None = None
    ack: int | None = None
    win: int | None = None
