"""Views that make the server reset the client's connection, each in one known way.

/health        200 {"status": "ok", "database": <vendor>} (runs SELECT 1).
/ok            GET: 200 "ok"; POST: reads the whole body, 200 "ok <length>". Never resets.
/kill          POST: never reads the body; a thread SIGKILLs the server process after
               KILL_AFTER_S while the view sleeps. The kernel then closes a socket with
               unread data: an RST (ECONNRESET at the client). For testserver: under
               gunicorn it kills one worker, which the arbiter replaces.
/noread        POST: 200 without reading the body. gunicorn closes the connection with the
               body unread (RST, which `requests` swallows); the dev server drains the
               body itself (no RST).
/slow?s=0.3    GET: sleeps s seconds (at most 5), then 200: a serial server's burst (the
               accept queue overflows behind it, FINDINGS 1a/1b).
/linger0-once  The first call per server (per testserver process, or per gunicorn
               arbiter whatever the worker) aborts the connection: SO_LINGER {1, 0} and
               close, an RST. Every later call: 200 "linger0-once: second call". Works
               under both servers. The "first call" is a file in RESETS_STATE_DIR (default:
               the temporary folder) named by the server's pid and start time, so gunicorn's
               workers share it and a restarted server resets once again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import socketserver
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse

KILL_AFTER_S = 1.0
KILL_VIEW_SLEEP_S = 5.0

log = logging.getLogger(__name__)


def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return JsonResponse({"status": "ok", "database": connection.vendor})


def slow(request: HttpRequest) -> HttpResponse:
    try:
        seconds = min(max(float(request.GET.get("s", "0.3")), 0.0), 5.0)
    except ValueError:
        seconds = 0.3
    time.sleep(seconds)
    return HttpResponse(f"slept {seconds}\n".encode())


def ok(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return HttpResponse(f"ok {len(request.body)}\n".encode())
    return HttpResponse(b"ok\n")


def kill(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    pid = os.getpid()

    def die() -> None:
        time.sleep(KILL_AFTER_S)
        log.warning("/kill: SIGKILL to pid %s, request body left unread", pid)
        logging.shutdown()
        os.kill(pid, signal.SIGKILL)

    threading.Thread(target=die, name="resets-kill", daemon=True).start()
    time.sleep(KILL_VIEW_SLEEP_S)
    return HttpResponse(b"still alive\n")  # never reached: the process is gone by now


def noread(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return HttpResponse(b"body not read\n")


def linger0_once(request: HttpRequest) -> HttpResponse:
    gunicorn = "gunicorn.socket" in request.META
    if _first_call("linger0-once", os.getppid() if gunicorn else os.getpid()):
        sock = request.META["gunicorn.socket"] if gunicorn else _dev_server_socket()
        log.warning("/linger0-once: first call, aborting the connection (SO_LINGER 0)")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Detach, then close the descriptor: the server's own file objects keep the socket
        # open otherwise (the dev server's rfile), and the kernel would not abort it. The
        # server then fails to write the response (EBADF) and logs it; the client has its RST.
        os.close(sock.detach())
    return HttpResponse(b"linger0-once: second call\n")


def _first_call(name: str, server_pid: int) -> bool:
    """True once per server: creates the marker file, atomically."""
    state = Path(os.environ.get("RESETS_STATE_DIR") or tempfile.gettempdir())
    marker = state / f"resets-{name}-{server_pid}-{_start_time(server_pid)}"
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


def _start_time(pid: int) -> str:
    """The process's start time (clock ticks since boot): pids are reused, this pair is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    return stat.rsplit(")", 1)[1].split()[19]


def _dev_server_socket() -> socket.socket:
    """The connection of the dev server's handler that runs this view (up the stack)."""
    frame = sys._getframe(1)
    while frame is not None:
        handler = frame.f_locals.get("self")
        if isinstance(handler, socketserver.StreamRequestHandler):
            sock = handler.connection
            assert isinstance(sock, socket.socket)
            return sock
        frame = frame.f_back  # type: ignore[assignment]
    raise RuntimeError("no socketserver handler up the stack: not the dev server?")
