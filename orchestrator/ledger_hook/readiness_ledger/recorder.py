"""Record every connection-level error of this process as one JSON line of the ledger.

Why at the socket layer: the errors that matter most are the ones nobody sees. urllib3
swallows a reset during ``send`` and reads the response anyway; a retry loop in the
suite hides the first failure. So the methods of :class:`socket.socket` that carry a
connection (``connect``, ``connect_ex``, ``send``, ``sendall``, ``recv``, ``recv_into``)
are wrapped at class level, and the error is written *before* anybody can swallow it.
``http.client.HTTPConnection.getresponse`` is wrapped too, for ``RemoteDisconnected``
(an EOF where a response should be: no socket error at all); urllib3's connection calls
it through ``super()``, so requests is covered. TLS: :class:`ssl.SSLSocket` overrides
``send``/``sendall``/``recv``/``recv_into``, so those are wrapped as well; its TLS-level
errors (``ssl.SSLError``) are not connection errors and are not recorded.

Why lazily: the patches are applied when ``socket``, ``ssl``, ``http.client`` or
``unittest`` is first imported (a post-import hook on ``sys.meta_path``, see the
package's ``activate``), so a process that never imports them (a helper script the tests
start) does not pay for importing them, nor for this module.

Why per-socket state this way: ``socket.socket`` has ``__slots__`` (no attributes to
hang state on) but supports weak references. State lives in a dict keyed by ``id()``,
removed by a weakref callback when the socket dies; the happy path is one dict lookup
per call. Addresses are cached once per connection so they are known after a failure.

Two things a socket call alone does not tell, and the recorder works out: whether a
refused connect was only the first address ``create_connection`` tried (it is held back
until the thread's next socket call shows it; see "failed connects held back" below),
and how long a reused keep-alive connection sat idle before the exchange that failed
(``idle_s``: a stale connection is one that waited past the server's keep-alive timeout).

Nothing here may raise into the user's code: every failure of the recorder itself is
swallowed and at most one line is written to stderr.
"""

from __future__ import annotations

import atexit
import errno
import os
import sys
import time
import weakref
from _thread import _local, get_ident
from functools import partial

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing alone costs ~15 ms of start-up in every process of a layer
    from collections.abc import Callable, Iterator
    from typing import Any

# Mirrors orchestrator/evidence.py TRANSPORT_ERRNOS (the hook cannot import the
# orchestrator on a host; a unit test keeps the two equal).
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
# Errnos that mean "the connection failed" (recorded); EAGAIN, EINPROGRESS, EINTR... of
# non-blocking sockets are how asyncio and anyio work, not failures (never recorded).
CONNECTION_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (*TRANSPORT_ERRNOS, "ENETDOWN", "EHOSTDOWN", "ENETRESET")
    if hasattr(errno, name)
)
MESSAGE_LIMIT = 500


class State:
    """What every line carries about where this process is: the layer and the test."""

    def __init__(self) -> None:
        self.path = ""
        self.layer: str | None = None
        self.test: str | None = None
        self.position: int | None = None
        self.attempt = 1
        self.started = 0  # tests begun in this process: the next position
        self.seen: set[str] = set()  # errno names recorded in the current attempt
        self.pytest_active = False  # the pytest plugin tracks tests; unittest's patch must not

    def begin_test(self, test_id: str) -> None:
        """A test starts: it gets the next position and its first attempt."""
        self.started += 1
        self.test, self.position, self.attempt = test_id, self.started, 1
        self.seen = set()

    def next_attempt(self, attempt: int) -> None:
        """The same test again, same position."""
        self.attempt = attempt
        self.seen = set()

    def leave(self) -> tuple[str | None, int | None]:
        """Not in the test for a while (a fixture shared by several tests): what to
        give back to :meth:`enter`."""
        saved = self.test, self.position
        self.test = self.position = None
        return saved

    def enter(self, saved: tuple[str | None, int | None]) -> None:
        self.test, self.position = saved

    def end_test(self) -> None:
        """Outside any test again (collection, session fixtures, between tests)."""
        self.test, self.position, self.attempt = None, None, 1
        self.seen = set()


state = State()
# Set once, when the first patch needs the recorder (see the package's activate()).
state.path = os.environ.get("READINESS_LEDGER", "")
state.layer = os.environ.get("READINESS_LAYER") or None
_complained = False


def complain(exc: BaseException) -> None:
    """The recorder failed: say so once on stderr, never raise."""
    global _complained
    if _complained:
        return
    _complained = True
    try:
        sys.stderr.write(
            f"readiness_ledger: the transport ledger failed ({type(exc).__name__}: {exc}); "
            "the tests are not affected, later failures are not shown\n"
        )
    except Exception:
        return


def write(line: dict[str, Any]) -> None:
    """Append one line: O_APPEND and a single write, so concurrent processes interleave
    whole lines (xdist workers, subprocesses of the tests)."""
    if not state.path:  # the plugin loaded where READINESS_LEDGER is not set: inert
        return
    try:
        import json

        data = (json.dumps(line, separators=(",", ":"), default=str) + "\n").encode()
        fd = os.open(state.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except Exception as exc:
        complain(exc)


def _common(kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "v": 1,
        "at": time.time(),
        "pid": os.getpid(),
        "layer": state.layer,
        "test": state.test,
        "position": state.position,
        "attempt": state.attempt,
    }


def error_line(
    op: str,
    exc: BaseException,
    name: str,
    where: tuple[str | None, str | None] = (None, None),
    reused: bool = False,
    source: str = "socket",
    idle_s: float | None = None,
) -> dict[str, Any]:
    """One ``kind: error`` line, made when the error happens (its time, its test) but
    written by :func:`emit`: a failed connect is held back until it is known not to be
    a fallback (see :func:`_hold`). ``where``: the client's and the server's addresses."""
    line = _common("error")
    line.update(
        op=op,
        errno=name,
        exception=type(exc).__name__,
        message=str(exc).replace("\n", " ")[:MESSAGE_LIMIT],
        local=where[0],
        remote=where[1],
        reused=reused,
        source=source,
        idle_s=None if idle_s is None else round(idle_s, 6),
    )
    return line


def emit(line: dict[str, Any]) -> None:
    """Write an error line; its errno counts as seen in the current attempt (the plugin
    then does not record the same error again from the failure's exception chain)."""
    state.seen.add(line["errno"])
    write(line)


def record_error(
    op: str,
    exc: BaseException,
    name: str,
    where: tuple[str | None, str | None] = (None, None),
    reused: bool = False,
    source: str = "socket",
    idle_s: float | None = None,
) -> None:
    """One ``kind: error`` line, written now."""
    emit(error_line(op, exc, name, where, reused, source, idle_s))


def record_test(outcome: str, retry: bool, duration_s: float) -> None:
    """One ``kind: test`` line for the current attempt of the current test."""
    line = _common("test")
    line.update(outcome=outcome, retry=retry, duration_s=round(duration_s, 6))
    write(line)


def errno_name(exc: BaseException) -> str | None:
    """The ledger's name for a connection-level error; None for anything else."""
    client = sys.modules.get("http.client")
    if client is not None and isinstance(exc, client.RemoteDisconnected):
        return "REMOTE_CLOSED"
    if isinstance(exc, OSError):
        ssl = sys.modules.get("ssl")
        if isinstance(exc, (BlockingIOError, InterruptedError)) or (
            ssl is not None and isinstance(exc, ssl.SSLError)
        ):
            return None
        code = exc.errno
        if code is not None and code in CONNECTION_ERRNOS:
            return errno.errorcode[code]
        if exc.errno is None and isinstance(exc, TimeoutError):
            return "ETIMEDOUT"
        return None
    if type(exc).__name__ == "RemoteProtocolError" and "disconnected" in str(exc).lower():
        return "REMOTE_CLOSED"  # httpx / httpcore: "Server disconnected without ..."
    return None


def exception_chain(exc: BaseException, limit: int = 32) -> Iterator[BaseException]:
    """The exception and what it wraps: causes, contexts, exceptions in its args
    (urllib3's ProtocolError, requests' ConnectionError) and a ``reason`` (MaxRetryError)."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()  # an annotation, not ``set[int]()``: hosts run Python 3.7+
    while todo and len(seen) < limit:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        todo.extend(e for e in nested if isinstance(e, BaseException))


def address(value: object) -> str | None:
    """``addr:port`` (IPv6 in brackets); a Unix socket's path as is; None if unknown."""
    if isinstance(value, tuple) and len(value) >= 2:
        host, port = value[0], value[1]
        if not port or host in ("0.0.0.0", "::"):  # not bound to a connection (yet)
            return None
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value or None if isinstance(value, str) else None


class Conn:
    """What the recorder keeps per socket: its addresses and how far its exchanges got.

    ``phase``: 0 nothing yet, 1 sent, 2 sent then received data (one exchange), 3 sent
    again after that: the connection is being reused (the stale keep-alive signature),
    4 received data on the reused connection (the next send starts another exchange).
    ``last_data``: when (monotonic) a recv last returned data, the end of an exchange as
    far as a socket can tell. ``idle``: on a reused connection, the seconds from the end
    of the previous exchange to the first send of the current one. A server closes an
    idle keep-alive connection only after its keep-alive timeout: a reset after a real
    wait is a stale connection, one after none is something else.
    """

    __slots__ = ("idle", "last_data", "local", "phase", "ref", "remote")

    def __init__(self, ref: weakref.ref[Any], local: str | None, remote: str | None) -> None:
        self.ref, self.local, self.remote, self.phase = ref, local, remote, 0
        self.last_data: float | None = None
        self.idle: float | None = None


_conns: dict[int, Conn] = {}
_SEND_PHASE = (1, 1, 3, 3, 3)
_RECV_PHASE = (0, 2, 2, 4, 4)  # data before any send (a server's greeting) changes nothing
_NEW_EXCHANGE = (2, 4)  # a send in these phases is the first of a new exchange
_MARK = "_readiness_ledger_recorded"


def _track(sock: Any, target: object = None) -> Conn:
    """The socket's state, made on first sight with its addresses (one syscall each).

    ``target``: the address a connect was just made to. A reset can arrive between the
    connect and this call (a server answering an accept-queue overflow resets right
    after the handshake): the socket is closed by then and ``getpeername`` fails, but
    the connection's remote end is still the one it was made to."""
    key = id(sock)
    conn = _conns.get(key)
    if conn is None:
        ref = weakref.ref(sock, partial(_forget, key))
        remote = _ask(sock.getpeername) or address(target)
        conn = Conn(ref, _ask(sock.getsockname), remote)
        _conns[key] = conn
    return conn


def _forget(key: int, _ref: object) -> None:
    _conns.pop(key, None)


def _ask(getter: Callable[[], object]) -> str | None:
    try:
        return address(getter())
    except Exception:
        return None


def _since(when: float | None) -> float | None:
    return None if when is None else time.monotonic() - when


def _reuse(conn: Conn | None, op: str) -> tuple[bool, float | None]:
    """Whether a failed call belongs to a reused connection's exchange, and how long the
    connection sat idle before that exchange (None: not reused, or not known)."""
    if conn is None or op == "connect":
        return False, None
    if op == "send" and conn.phase in _NEW_EXCHANGE:  # it was to start the new exchange
        return True, _since(conn.last_data)
    if conn.phase >= 3:
        return True, conn.idle
    return False, None


# --- failed connects held back ----------------------------------------------------------
#
# socket.create_connection (urllib3's and httpcore's too) tries every address the
# resolver gives: with ``localhost`` and a server on 127.0.0.1 only, each connection is
# refused on ::1 first, then made on 127.0.0.1. That refusal is no failure of the test.
# So a failed connect is held back, per thread, and dropped only if the thread's next
# socket call is a successful connect that looks like the resolver's next address: the
# same port, another address, started within FALLBACK_S of the failure. A connect to the
# same address again is a retry (the suite's own loop, or urllib3's): the refusal it
# swallowed is what the ledger exists for, so it is written. A held line is written at
# the thread's next other socket call, when the test ends (the plugin: at the end of
# each of its phases; unittest: when it stops) or at exit, whichever comes first. The
# price: another thread caught between its two connects just then has its fallback
# written (microseconds).

# create_connection connects the next address in the same loop, microseconds after the
# refusal; a connect to another address later than this is another attempt (a retry
# loop's backoff), not a fallback. Far above the loop's own time, so that a GIL shared
# with a burst's many threads cannot make a fallback look like a retry.
FALLBACK_S = 0.5

# Whose held line it is: thread ids are reused once a thread ends, so an id alone could
# let a new thread's connect drop the line of an ended one. A per-thread token cannot.
_thread_token = _local()


def _token() -> object:
    """This thread's token, made on first use (an ended thread's token dies with it)."""
    token = getattr(_thread_token, "token", None)
    if token is None:
        token = _thread_token.token = object()
    return token


class Held:
    """A failed connect held back: its line, the thread that holds it, and what tells a
    fallback from a retry (the address and port it tried, when it failed)."""

    __slots__ = ("host", "line", "owner", "port", "since", "taken")

    def __init__(self, line: dict[str, Any], target: object) -> None:
        self.line = line
        self.owner = _token()
        self.host, self.port = _host_port(target)
        self.since = time.monotonic()
        self.taken = self.since  # when the thread's next socket call took it


_held: dict[int, Held] = {}  # thread id -> its held-back failure


def _host_port(target: object) -> tuple[object, object]:
    """The address and port a connect tried (None, None: a Unix socket's path)."""
    if isinstance(target, tuple) and len(target) >= 2:
        return target[0], target[1]
    return None, None


def _is_fallback(held: Held, target: object) -> bool:
    """Was the held failure only the first address of the connect now made to
    ``target``? Same port, another address, at once. Anything else (the same address
    again, another port, a pause) is a real failure the caller went on from."""
    host, port = _host_port(target)
    return (
        held.port is not None
        and held.port == port
        and held.host != host
        and held.taken - held.since <= FALLBACK_S
    )


def _hold(line: dict[str, Any], target: object) -> None:
    """Keep a failed connect's line until this thread's next socket call tells whether
    it was a fallback (see above)."""
    release(_held.pop(get_ident(), None))
    _held[get_ident()] = Held(line, target)


def _take_held() -> Held | None:
    """This thread's held-back connect failure, taken out (the caller decides). One
    left by an ended thread whose id this thread reuses is not this thread's to judge:
    it is written."""
    held = _held.pop(get_ident(), None)
    if held is None:
        return None
    if held.owner is not _token():
        release(held)
        return None
    held.taken = time.monotonic()
    return held


def release(held: Held | None) -> None:
    """Write a held-back line (never raises). One held before a fork, by the parent, is
    the parent's to write: the child drops it."""
    if held is None:
        return
    try:
        if held.line["pid"] == os.getpid():
            emit(held.line)
    except Exception as exc:
        complain(exc)


def flush_held() -> None:
    """Write what every thread holds back: a test ends (its lines go before its ``kind:
    test`` line and before the plugin reads its failure), or the interpreter exits."""
    for key in list(_held):
        release(_held.pop(key, None))


atexit.register(flush_held)


def _failed(sock: Any, op: str, exc: BaseException, remote: object = None) -> None:
    """A socket call raised: record it if it is a connection error not yet recorded (a
    failed connect is held back)."""
    try:
        name = errno_name(exc)
        if name is None or getattr(exc, _MARK, False):
            return
        setattr(exc, _MARK, True)  # an outer wrapper (SSLSocket.sendall) skips it
        conn = _conns.get(id(sock))
        local = (conn.local if conn else None) or _ask(sock.getsockname)
        peer = address(remote) or (conn.remote if conn else None) or _ask(sock.getpeername)
        reused, idle = _reuse(conn, op)
        line = error_line(op, exc, name, (local, peer), reused, "socket", idle)
        if op == "connect":
            _hold(line, remote)
        else:
            emit(line)
    except Exception as error:
        complain(error)


# The bookkeeping after a successful call: each catches everything, so that the call
# returns exactly what the unwrapped method returned (a bare ``_socket.socket`` passed
# to ``socket.socket.send`` cannot even be weakly referenced).


def _sent(sock: Any) -> None:
    try:
        conn = _conns.get(id(sock)) or _track(sock)
        if conn.phase in _NEW_EXCHANGE:
            conn.idle = _since(conn.last_data)
        conn.phase = _SEND_PHASE[conn.phase]
    except Exception as exc:
        complain(exc)


def _received(sock: Any) -> None:
    try:
        conn = _conns.get(id(sock))
        if conn is not None:
            conn.last_data = time.monotonic()
            conn.phase = _RECV_PHASE[conn.phase]
    except Exception as exc:
        complain(exc)


def _connected(sock: Any, target: object, held: Held | None) -> None:
    """A connect succeeded: a new connection. A failure this thread held back is dropped
    only if it was the resolver's other address for this one (:func:`_is_fallback`)."""
    try:
        if held is not None and not _is_fallback(held, target):
            release(held)
        _conns.pop(id(sock), None)  # a reconnect starts a new connection
        _track(sock, target)
    except Exception as exc:
        complain(exc)


def _connect_ex_done(sock: Any, target: object, code: object, held: Held | None) -> None:
    """``connect_ex`` returns its error: a code of a connection error is a failed connect
    (held back like one); 0 a connection; anything else (EINPROGRESS) neither."""
    try:
        if code == 0:
            _connected(sock, target, held)
            return
        release(held)
        if isinstance(code, int) and code in CONNECTION_ERRNOS:
            _failed(sock, "connect", OSError(code, os.strerror(code)), target)
    except Exception as exc:
        complain(exc)


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # pytest shows the user's frames, not the recorder's
        if _held:
            release(_take_held())
        try:
            result = original(self, *args, **kwargs)
        except OSError as exc:
            _failed(self, "send", exc)
            raise
        _sent(self)
        return result

    return send


def _wrap_recv(original: Callable[..., Any]) -> Callable[..., Any]:
    def recv(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if _held:
            release(_take_held())
        try:
            result = original(self, *args, **kwargs)
        except OSError as exc:
            _failed(self, "recv", exc)
            raise
        if result:
            _received(self)
        return result

    return recv


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: Any, address: Any, *args: Any) -> Any:
        __tracebackhide__ = True
        held = _take_held() if _held else None
        try:
            result = original(self, address, *args)
        except BaseException as exc:
            release(held)
            if isinstance(exc, OSError):
                _failed(self, "connect", exc, address)
            raise
        _connected(self, address, held)
        return result

    return connect


def _wrap_connect_ex(original: Callable[..., Any]) -> Callable[..., Any]:
    def connect_ex(self: Any, address: Any, *args: Any) -> Any:
        __tracebackhide__ = True
        held = _take_held() if _held else None
        try:
            code = original(self, address, *args)
        except BaseException:
            release(held)
            raise
        _connect_ex_done(self, address, code, held)
        return code

    return connect_ex


_WRAPPERS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "connect": _wrap_connect,
    "connect_ex": _wrap_connect_ex,
    "send": _wrap_send,
    "sendall": _wrap_send,
    "recv": _wrap_recv,
    "recv_into": _wrap_recv,
}


def _patch(cls: type, names: tuple[str, ...]) -> None:
    for name in names:
        original = cls.__dict__.get(name) or getattr(cls, name)
        if getattr(original, _MARK, False):
            continue
        wrapper = _WRAPPERS[name](original)
        setattr(wrapper, _MARK, True)
        wrapper.__name__ = wrapper.__qualname__ = name
        wrapper.__doc__ = getattr(original, "__doc__", None)
        setattr(cls, name, wrapper)


def patch_socket(module: Any) -> None:
    """Wrap the connection methods of ``socket.socket``."""
    _patch(module.socket, tuple(_WRAPPERS))


def patch_ssl(module: Any) -> None:
    """Wrap what ``ssl.SSLSocket`` overrides (its connect goes through socket.socket's)."""
    _patch(module.SSLSocket, ("send", "sendall", "recv", "recv_into"))


def patch_http_client(module: Any) -> None:
    """Record ``RemoteDisconnected`` from ``HTTPConnection.getresponse``."""
    cls = module.HTTPConnection
    original = cls.getresponse
    if getattr(original, _MARK, False):
        return

    def getresponse(self: Any, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        sock = self.sock  # getresponse closes it before raising: keep it for its state
        try:
            return original(self, *args, **kwargs)
        except module.RemoteDisconnected as exc:
            _remote_closed(sock, exc)
            raise

    setattr(getresponse, _MARK, True)
    getresponse.__doc__ = original.__doc__
    cls.getresponse = getresponse


def _remote_closed(sock: Any, exc: BaseException) -> None:
    try:
        if getattr(exc, _MARK, False):
            return
        setattr(exc, _MARK, True)
        conn = _conns.get(id(sock)) if sock is not None else None
        where = (conn.local, conn.remote) if conn else (None, None)
        reused, idle = _reuse(conn, "response")
        record_error("response", exc, "REMOTE_CLOSED", where, reused, "http.client", idle)
    except Exception as error:
        complain(error)
