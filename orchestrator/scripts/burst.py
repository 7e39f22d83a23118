"""The burst probe: N simultaneous GET requests to URL; one JSON summary line on stdout.

Usage: python -I - URL REQUESTS TIMEOUT_S. Sent on a here-document by burst.sh, as a
suite layer's command (so inside the layer's evidence window), and run by the venv's own
interpreter: the ledger hook installed there records every transport error of these
sockets, which is why the probe uses http.client and nothing of its own below it.

What a burst measures (FINDINGS.md, mechanisms 1a/1b): a server whose accept queue is
full drops the SYN (the client retransmits it after 1 s) or, with
``tcp_abort_on_overflow=1``, resets the connection. So N threads are released together
by a barrier, each on its own connection (``Connection: close``: one request each, no
pool to smooth the burst), and each request ends as an answer (its status and latency)
or as an error named as the ledger names it (ECONNRESET, ECONNREFUSED, ETIMEDOUT,
REMOTE_CLOSED, EPIPE...; an HTTP status outside 2xx/3xx is ``HTTP 503``).

A burst measures, it does not judge: exit 0 whenever the probe ran, whatever it saw;
non-zero (with the reason on stderr) only when it could not run at all (a bad argument,
not enough file descriptors or threads for N connections).
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import math
import socket
import sys
import threading
import time
import urllib.parse

KIND = "readiness-burst"
SLOW_S = 1.0  # the first SYN retransmission comes after 1 s: answered later is "slow"
STACK_BYTES = 512 * 1024  # 2000 threads at the default 8 MiB would reserve 16 GiB
FD_MARGIN = 64  # the interpreter's own files, the ledger file, stdio


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


def one(url: urllib.parse.SplitResult, target: str, timeout: float) -> tuple[str, float]:
    """One request on its own connection: (outcome, seconds); outcome ``HTTP nnn`` or an
    error name. The timeout bounds the whole request, not each socket call."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=timeout)
    try:
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(max(0.001, timeout - (time.monotonic() - started)))
        conn.request("GET", target, headers={"Connection": "close", "User-Agent": KIND})
        response = conn.getresponse()
        response.read()
        return f"HTTP {response.status}", time.monotonic() - started
    except Exception as exc:  # the error is the measurement
        return error_name(exc), time.monotonic() - started
    finally:
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
    """Release N threads at once, each sending one request; wait for all of them."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    results: list[tuple[str, float]] = []
    released: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n, action=lambda: released.append(time.monotonic()), timeout=60)

    def worker() -> None:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return  # another thread could not start: nothing is sent at all
        result = one(parts, target, timeout)
        with lock:
            results.append(result)

    threads = []
    try:
        for _ in range(n):
            thread = threading.Thread(target=worker, daemon=True)
            thread.start()
            threads.append(thread)
    except RuntimeError as err:  # "can't start new thread"
        barrier.abort()
        sys.exit(f"burst: could start only {len(threads)} of {n} threads: {err}")
    for thread in threads:
        thread.join()
    if len(results) != n:
        sys.exit(f"burst: only {len(results)} of {n} requests were sent (the barrier broke)")
    return summary(url, results, time.monotonic() - released[0])


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
