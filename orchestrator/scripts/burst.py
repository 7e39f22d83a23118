"""The burst probe: N simultaneous GET requests to URL; one JSON summary line on stdout.

Usage: python -I - URL REQUESTS TIMEOUT_S. Sent on a here-document by burst.sh, as a
suite layer's command (so inside the layer's evidence window), and run by the venv's own
interpreter: the ledger hook installed there records every transport error of these
sockets, which is why every request goes through http.client and every error the probe
reports comes from a socket call the hook wraps.

What a burst measures (FINDINGS.md, mechanisms 1a/1b): a server whose accept queue is
full drops the SYN (the client retransmits it after 1 s) or, with
``tcp_abort_on_overflow=1``, resets the connection. Each request has its own connection
(``Connection: close``: one request each, no pool to smooth the burst) and ends as an
answer (its status and latency) or as an error named as the ledger names it
(ECONNRESET, ECONNREFUSED, ETIMEDOUT, REMOTE_CLOSED, EPIPE...; an HTTP status outside
2xx/3xx is ``HTTP 503``).

How the N requests are sent, so that what the server's queues make of them does not
depend on timing. Threads released together (the first version) race each other: their
SYNs reach the listener one handshake at a time, the ones it drops come back after 1 s
in batches of the kernel's timer wheel, and which of them meet a full accept queue
depends on those batches and on the server's accept() calls: a serial gunicorn with
backlog 10 gave 8 to 19 resets per burst of 60 on the lab's 2 CPUs (FINDINGS' own
client as well). Instead:

1. **The lead**: the first request goes alone, the ordinary way (http.client in its
   thread); the others follow once it is sent and :data:`LEAD_S` has passed, so a serial
   server has taken it and is busy with it when they come.
2. **The other N-1 connections are all opened before any of their requests**, back to
   back from one thread, non-blocking, each with ``TCP_DEFER_ACCEPT`` on the client
   socket: the kernel then holds back the handshake's last ACK until the request carries
   it (at most ~200 ms, TCP_DELACK_MAX), so the server holds N-1 half-open handshakes and
   nothing of them in its accept queue. The first backlog+1 get a request socket (its SYN
   queue is full beyond that), the rest SYN cookies (``tcp_syncookies=1``): so, whatever
   the timing. This waits until every connection is open, at most :data:`OPEN_WAIT_S`.
3. **Their requests go out newest connection first**, back to back. The cookie
   connections' requests come first and fill the accept queue; the connections the
   server keeps request sockets for come last and meet a full queue: with
   ``tcp_abort_on_overflow=1`` exactly these are reset, backlog+1 of them (11 for backlog
   10 on this kernel), without it their ACKs are dropped and retried. Every later
   arrival is a retransmitted request, never a SYN, so nothing else can be reset.
4. Each request then waits for its answer in its own thread, until its timeout (counted
   from its connection's start). A connection that did not open in step 2 (refused, or
   its SYN dropped by an already full queue) is opened again the ordinary way in its
   thread, so that its error is one the ledger hook sees.

Steps 2 and 3 take a few milliseconds. Should they take longer than the deferred ACKs
wait (a host stalled for ~200 ms), the oldest handshakes complete on their own and fewer
are reset: the probe says so on stderr.

A burst measures, it does not judge: exit 0 whenever the probe ran, whatever it saw;
non-zero (with the reason on stderr) only when it could not run at all (a bad argument,
not enough file descriptors or threads for N connections).
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import http.client
import json
import math
import select
import socket
import sys
import threading
import time
import urllib.parse

KIND = "readiness-burst"
SLOW_S = 1.0  # the first SYN retransmission comes after 1 s: answered later is "slow"
STACK_BYTES = 512 * 1024  # 2000 threads at the default 8 MiB would reserve 16 GiB
FD_MARGIN = 64  # the interpreter's own files, the ledger file, stdio
# How long the connections may take to open: well under the ~200 ms for which the kernel
# holds back a deferred ACK (TCP_DELACK_MAX), so the requests still carry the last ACKs.
OPEN_WAIT_S = 0.1
DEFERRED_S = 0.15  # opening and sending took longer: say that the ACKs may have gone
LEAD_S = 0.05  # the lead request's lead over the others, once it is sent
LEAD_WAIT_S = 1.0  # at most this long for the lead to be sent (its SYN may be dropped)
HEADERS = {"Connection": "close", "User-Agent": KIND}
# Annotations only (hosts' venvs may run a Python where this fails at run time).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    Target: TypeAlias = tuple[socket.AddressFamily, Any]  # getaddrinfo's family and address


def error_name(exc: BaseException) -> str:
    """The ledger's name for a failed request (recorder.errno_name), else the type name."""
    if isinstance(exc, http.client.RemoteDisconnected):
        return "REMOTE_CLOSED"
    if isinstance(exc, OSError):
        if exc.errno is not None and exc.errno in errno.errorcode:
            return errno.errorcode[exc.errno]
        if isinstance(exc, (TimeoutError, socket.timeout)):  # a timeout has no errno
            return "ETIMEDOUT"
    return type(exc).__name__


class Request:
    """One request of the burst: its connection, its state, how it ended."""

    def __init__(self) -> None:
        self.started = 0.0  # when its connection was begun: its timeout counts from here
        self.sock: socket.socket | None = None  # opened in step 2 (None: by its thread)
        self.conn: http.client.HTTPConnection | None = None  # its request sent in step 3
        self.outcome = ""  # "HTTP nnn" or an error name, once known
        self.seconds = 0.0

    def left(self, timeout: float) -> float:
        """What is left of the request's timeout (at least a millisecond)."""
        return max(0.001, timeout - (time.monotonic() - self.started))

    def end(self, outcome: str) -> None:
        self.outcome, self.seconds = outcome, time.monotonic() - self.started

    def drop(self) -> None:
        """Forget a connection step 2 could not open (its thread opens a new one)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def first_address(host: str, port: int) -> Target | None:
    """The family and address step 2 connects to: the resolver's first (None: resolving
    failed; every request then opens its connection in its thread and says why)."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, IndexError):
        return None
    return family, address


def open_all(requests: list[Request], target: Target | None) -> None:
    """Step 2: begin every connection, back to back, then wait until all are open (at
    most OPEN_WAIT_S). ``connect_ex`` of the socket type itself, not the hook's wrapper:
    an error here is never reported, the connection is opened again in its thread (the
    hook cannot see an error that ``poll`` and ``SO_ERROR`` tell)."""
    for request in requests:
        request.started = time.monotonic()
        if target is None:
            continue
        try:
            sock = request.sock = socket.socket(target[0], socket.SOCK_STREAM)
        except OSError:  # no file left (EMFILE): its thread will say so
            continue
        with contextlib.suppress(OSError, AttributeError):  # Linux only: else ACK at once
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
        sock.setblocking(False)
        if _socket.socket.connect_ex(sock, target[1]) not in (0, errno.EINPROGRESS):
            request.drop()
    poller = select.poll()
    waiting = {r.sock.fileno(): r for r in requests if r.sock is not None}
    for fd in waiting:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + OPEN_WAIT_S
    while waiting and time.monotonic() < deadline:
        for fd, _ in poller.poll(max(1, math.ceil((deadline - time.monotonic()) * 1000))):
            poller.unregister(fd)
            request = waiting.pop(fd)
            assert request.sock is not None
            try:
                if request.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise OSError
                # Sends nothing (not even the deferred ACK): the hook learns the
                # connection's addresses now, while it has them; the server may reset it
                # as soon as its request goes, and a reset socket has no peer any more.
                request.sock.send(b"")
            except OSError:
                request.drop()
    for request in waiting.values():
        request.drop()


def send_all(
    requests: list[Request], url: urllib.parse.SplitResult, target: str, timeout: float
) -> None:
    """Step 3: the request of every connection step 2 opened, newest connection first."""
    for request in reversed(requests):
        sock, request.sock = request.sock, None
        if sock is None:
            continue
        conn = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=timeout)
        conn.sock = sock
        try:
            sock.settimeout(request.left(timeout))
            conn.request("GET", target, headers=HEADERS)
        except Exception as exc:  # the error is the measurement
            request.end(error_name(exc))
            conn.close()
            continue
        request.conn = conn


def finish(
    request: Request,
    url: urllib.parse.SplitResult,
    target: str,
    timeout: float,
    sent: threading.Event | None = None,
) -> None:
    """Step 4, in the request's own thread: its answer, or its error. A request not sent
    yet (the lead, or one whose connection did not open in step 2) opens its connection
    here, by http.client (the hook sees its connect); ``sent`` is set once it is sent,
    or has failed."""
    conn = request.conn
    try:
        if request.outcome:  # its send failed in step 3
            return
        if conn is None:
            conn = http.client.HTTPConnection(
                url.hostname or "", url.port or 80, timeout=request.left(timeout)
            )
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(request.left(timeout))
            conn.request("GET", target, headers=HEADERS)
        if sent is not None:
            sent.set()
        response = conn.getresponse()
        response.read()
        request.end(f"HTTP {response.status}")
    except Exception as exc:  # the error is the measurement
        request.end(error_name(exc))
    finally:
        if sent is not None:
            sent.set()
        if conn is not None:
            conn.close()


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50/p90/p99/max (nearest rank) in milliseconds; empty when nothing was answered."""
    if not seconds:
        return {}
    ordered = sorted(seconds)

    def rank(p: int) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    values = {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": ordered[-1]}
    return {name: round(value * 1000, 1) for name, value in values.items()}


def summary(url: str, results: list[tuple[str, float]], duration_s: float) -> dict[str, object]:
    """The one line the control node reads back (orchestrator.layers.parse_burst)."""
    ok = 0
    errors: dict[str, int] = {}
    answered: list[float] = []
    for outcome, seconds in results:
        if outcome.startswith("HTTP "):
            answered.append(seconds)
            if outcome[5:6] in ("2", "3"):
                ok += 1
                continue
        errors[outcome] = errors.get(outcome, 0) + 1
    return {
        "kind": KIND,
        "v": 1,
        "url": url,
        "requests": len(results),
        "ok": ok,
        "errors": dict(sorted(errors.items())),
        "latency_ms": percentiles(answered),
        "slow": sum(1 for seconds in answered if seconds > SLOW_S),
        "duration_s": round(duration_s, 3),
    }


def enough_files(n: int) -> None:
    """Raise the soft limit of open files for N sockets at once, or say why it cannot be:
    EMFILE would be the probe's own failure, not the server's."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = n + FD_MARGIN
    if soft != resource.RLIM_INFINITY and soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"burst: {n} connections need {need} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def burst(url: str, n: int, timeout: float) -> dict[str, object]:
    """The lead, then N-1 connections opened at once and their requests sent newest
    first; wait for every answer (see the module's docstring). The N threads are started
    first: if they cannot all be, nothing is sent at all."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lead, *others = requests = [Request() for _ in range(n)]
    lead_go, go, lead_sent = threading.Event(), threading.Event(), threading.Event()
    abort = False

    def worker(request: Request) -> None:
        is_lead = request is lead
        (lead_go if is_lead else go).wait()
        if not abort:
            finish(request, parts, target, timeout, lead_sent if is_lead else None)

    threads = []
    try:
        for request in requests:
            thread = threading.Thread(target=worker, args=(request,), daemon=True)
            thread.start()
            threads.append(thread)
    except RuntimeError as err:  # "can't start new thread"
        abort = True
        lead_go.set()
        go.set()
        sys.exit(f"burst: could start only {len(threads)} of {n} threads: {err}")
    started = lead.started = time.monotonic()
    lead_go.set()
    if others:
        lead_sent.wait(LEAD_WAIT_S)
        time.sleep(LEAD_S)
        opening = time.monotonic()
        open_all(others, first_address(parts.hostname or "", parts.port or 80))
        send_all(others, parts, target, timeout)
        took = time.monotonic() - opening
        if took > DEFERRED_S:
            print(
                f"burst: opening the connections and sending their requests took "
                f"{took * 1000:.0f} ms: the handshakes' deferred ACKs may have gone out "
                "before the requests (the server's queues saw them in another order)",
                file=sys.stderr,
            )
    go.set()
    for thread in threads:
        thread.join()
    return summary(url, [(r.outcome, r.seconds) for r in requests], time.monotonic() - started)


def main(argv: list[str]) -> None:
    """Check the arguments, run the burst, print its summary."""
    try:
        url, n, timeout = argv[0], int(argv[1]), float(argv[2])
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or n < 1 or timeout <= 0:
            raise ValueError(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except (IndexError, ValueError) as err:
        sys.exit(f"burst: usage: python - URL REQUESTS TIMEOUT_S (http only) ({err})")
    enough_files(n)
    with contextlib.suppress(ValueError, RuntimeError):  # else this platform's default
        threading.stack_size(STACK_BYTES)
    print(json.dumps(burst(url, n, timeout), separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
