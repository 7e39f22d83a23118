"""The ledger hook, installed from its wheel into a fresh venv, against misbehaving servers.

The servers are tiny TCP servers in threads of this process on 127.0.0.1, each failing
a client in one way; the clients are short scripts and pytest sessions run by the venv's
interpreter with ``READINESS_LEDGER`` set, as a layer's test processes are.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import socket
import struct
import subprocess
import textwrap
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from orchestrator.evidence import TRANSPORT_ERRNOS
from orchestrator.ledger_hook import PTH, WHEEL_NAME, build_wheel, source_digest, wheel_bytes
from orchestrator.ledger_hook.readiness_ledger import recorder
from orchestrator.ledger_hook.readiness_ledger.plugin import RetryPolicy, backoff_s, retry_policy
from tests.hookvenv import venv_with_hook

KEEP_ALIVE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CLOSING = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
LINE_FIELDS = {"kind", "v", "at", "pid", "layer", "test", "position", "attempt"}
ERROR_FIELDS = LINE_FIELDS | {
    *("op", "errno", "exception", "message", "local", "remote", "reused", "source", "idle_s"),
}
TEST_FIELDS = LINE_FIELDS | {"outcome", "retry", "duration_s"}


# --- the servers ---------------------------------------------------------------------


def _read_head(conn: socket.socket) -> bool:
    """Read one request's head; False at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


def _reset(conn: socket.socket) -> None:
    """Read the request, then abort: SO_LINGER {1, 0} makes close() send a RST."""
    _read_head(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _silent(conn: socket.socket) -> None:
    """Read the request, close without a response (FIN): RemoteDisconnected."""
    _read_head(conn)


def _answer_unread(conn: socket.socket) -> None:
    """Answer once the body is arriving, never read it: close() with unread data is a RST
    that meets the client still sending (gunicorn's 413 path, FINDINGS 2c)."""
    _read_head(conn)
    conn.recv(1, socket.MSG_PEEK)
    conn.sendall(CLOSING)


def _answer_once(conn: socket.socket) -> None:
    """Answer one request with keep-alive, then close: the next request finds it stale."""
    _read_head(conn)
    conn.sendall(KEEP_ALIVE)


def _ok(conn: socket.socket) -> None:
    while _read_head(conn):
        conn.sendall(KEEP_ALIVE)


def _handle(conn: socket.socket, handler: Callable[[socket.socket], None]) -> None:
    with conn:
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            handler(conn)


def _accept(listener: socket.socket, handler: Callable[[socket.socket], None]) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_handle, args=(conn, handler), daemon=True).start()


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    """name -> port of each server; ``refused`` is bound but never listens."""
    sockets: list[socket.socket] = []
    found: dict[str, int] = {}
    handlers = {
        "reset": _reset,
        "silent": _silent,
        "unread": _answer_unread,
        "stale": _answer_once,
        "idle": _answer_once,
        "ok": _ok,
    }
    for name, handler in handlers.items():
        listener = socket.socket()
        if name == "unread":  # a small window, so that the body cannot all be delivered
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        threading.Thread(target=_accept, args=(listener, handler), daemon=True).start()
        sockets.append(listener)
        found[name] = listener.getsockname()[1]
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    sockets.append(refused)
    found["refused"] = refused.getsockname()[1]
    yield found
    for sock in sockets:
        with_shutdown = sock is not refused
        if with_shutdown:
            sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of its thread
        sock.close()


# --- the venv and the children ---------------------------------------------------------


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the hook's wheel installed, by pip as on a host; it sees
    this project's packages (requests, httpx, pytest) after its own."""
    return venv_with_hook(tmp_path_factory.mktemp("hook"), see_project=True)


@dataclass
class Child:
    returncode: int
    stdout: str
    stderr: str
    ledger: list[dict[str, Any]]
    workdir: Path

    @property
    def report(self) -> Any:
        """The JSON the client script printed last."""
        return json.loads(self.stdout.strip().splitlines()[-1])

    def errors(self, port: int | None = None) -> list[dict[str, Any]]:
        """The ``kind: error`` lines, those whose remote is the server on ``port``."""
        lines = [line for line in self.ledger if line["kind"] == "error"]
        if port is None:
            return lines
        return [line for line in lines if line["remote"] == f"127.0.0.1:{port}"]

    def attempts(self, test: str) -> list[tuple[int, str, bool]]:
        """(attempt, outcome, retry) of each ``kind: test`` line of a test, in order."""
        return [
            (line["attempt"], line["outcome"], line["retry"])
            for line in self.ledger
            if line["kind"] == "test" and line["test"].endswith(test)
        ]


def run(
    python: Path,
    workdir: Path,
    args: list[str],
    env: dict[str, str] | None = None,
    ledger: bool = True,
) -> Child:
    """Run the venv's interpreter as a layer's test process (``ledger``) or as anything
    else on the host (no ``READINESS_*`` at all)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "ledger.jsonl"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("READINESS_", "PYTEST_"))}
    # Only this plugin (loaded by the hook) and pytest's own: fast, and no entry point.
    clean["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if ledger:
        clean.update(READINESS_LEDGER=str(path), READINESS_LAYER="rest")
    clean.update(env or {})
    done = subprocess.run(
        [str(python), *args], cwd=workdir, env=clean, capture_output=True, text=True, timeout=60
    )
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return Child(done.returncode, done.stdout, done.stderr, lines, workdir)


def script(python: Path, workdir: Path, source: str, ports: dict[str, int], **kw: Any) -> Child:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "client.py").write_text(source)
    return run(python, workdir, ["client.py", json.dumps(ports)], **kw)


def pytest_session(
    python: Path, workdir: Path, tests: str, ports: dict[str, int], retry: str | None = None
) -> Child:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "conftest.py").write_text(CONFTEST)
    (workdir / "test_suite.py").write_text(textwrap.dedent(tests))
    env = {"TEST_PORTS": json.dumps(ports), "TEST_WORK": str(workdir)}
    if retry is not None:
        env["READINESS_RETRY"] = retry
    args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=native", "--junitxml=junit.xml"]
    args.append("test_suite.py")
    return run(python, workdir, args, env=env)


def junit_testcases(child: Child, name: str) -> list[ElementTree.Element]:
    root = ElementTree.parse(child.workdir / "junit.xml").getroot()
    return [case for case in root.iter("testcase") if case.get("name") == name]


def junit_cases(child: Child, name: str) -> list[tuple[dict[str, str], list[str]]]:
    """(properties, child tags other than properties) of each <testcase> called ``name``."""
    found = []
    for case in junit_testcases(child, name):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        found.append((props, [c.tag for c in case if c.tag != "properties"]))
    return found


def junit_output(child: Child, name: str) -> list[str]:
    """The ``<system-out>`` text of each <testcase> called ``name`` ("" without one)."""
    return [case.findtext("system-out") or "" for case in junit_testcases(child, name)]


# --- what the children run -------------------------------------------------------------

HTTP_CLIENT = """\
import http.client, json, os, select, socket, sys, time

PORTS = json.loads(sys.argv[1])


def get(conn):
    conn.request("GET", "/")
    return conn.getresponse().read()


def connection(name):
    return http.client.HTTPConnection("127.0.0.1", PORTS[name], timeout=10)


def reset():
    get(connection("reset"))


def silent():
    get(connection("silent"))


def refused():
    get(connection("refused"))


def unread():
    conn = connection("unread")
    conn.connect()
    # Loopback's autotuned send buffer (~4 MB) takes 2 MB in one copy; a real network's
    # would not: a small one makes the reset meet the send, every time.
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    conn.request("POST", "/", body=b"x" * (2 << 20))
    conn.getresponse().read()


def stale():
    conn = connection("stale")
    get(conn)
    select.select([conn.sock], [], [], 10)  # the server's FIN is in: the connection is stale
    get(conn)


def idle():
    conn = connection("idle")
    get(conn)
    time.sleep(0.3)  # the keep-alive connection waits, then is used again (closed by then)
    get(conn)


seen = {}
for scenario in (reset, silent, refused, unread, stale, idle):
    try:
        scenario()
        seen[scenario.__name__] = "ok"
    except Exception as exc:
        seen[scenario.__name__] = type(exc).__name__
imported = "readiness_ledger" in sys.modules
print(json.dumps({"seen": seen, "imported": imported, "plugins": os.environ.get("PYTEST_PLUGINS")}))
"""

REQUESTS = """\
import json, socket, sys
import requests, urllib3

PORTS = json.loads(sys.argv[1])


class SmallSendBuffer(requests.adapters.HTTPAdapter):
    # As in the http.client script: the send buffer a real network would have.
    def init_poolmanager(self, *args, **kwargs):
        options = urllib3.connection.HTTPConnection.default_socket_options
        kwargs["socket_options"] = [*options, (socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)]
        super().init_poolmanager(*args, **kwargs)


session = requests.Session()
session.mount("http://", SmallSendBuffer())
url = "http://127.0.0.1:{}/".format
body = b"x" * (2 << 20)
seen = {"unread": session.post(url(PORTS["unread"]), data=body, timeout=10).status_code}
try:
    session.get(url(PORTS["reset"]), timeout=10)
except requests.ConnectionError as exc:
    seen["reset"] = type(exc).__name__
print(json.dumps(seen))
"""

# A resolver that gives two addresses, the first refusing (nothing listens on
# 127.0.0.2: a stand-in for ::1 with a server on 127.0.0.1 only): every client's
# create_connection tries it, then connects to the second.
FALLBACK = """\
import http.client, json, socket, sys
import httpx, requests

PORTS = json.loads(sys.argv[1])
real = socket.getaddrinfo


def dual_stack(host, port, *args, **kwargs):
    if host != "dual.test":
        return real(host, port, *args, **kwargs)
    stream = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
    return [(*stream, ("127.0.0.2", int(port))), (*stream, ("127.0.0.1", int(port)))]


socket.getaddrinfo = dual_stack


def get(port, host="dual.test"):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/")
    return conn.getresponse().read().decode()


seen = {
    "http.client": get(PORTS["ok"]),
    "requests": requests.get(f"http://dual.test:{PORTS['ok']}/", timeout=10).text,
    "httpx": httpx.get(f"http://dual.test:{PORTS['ok']}/", timeout=10).text,
}
for name, host in (("both refuse", "dual.test"), ("last", "127.0.0.1")):
    try:
        get(PORTS["refused"], host)  # "last": the process's last socket call, then exit
    except ConnectionRefusedError as exc:
        seen[name] = type(exc).__name__
print(json.dumps(seen))
"""

# A retry loop of the suite's own: refused twice by a server not yet listening, then
# connected to the same address. Both refusals were swallowed; both must be in the ledger.
RETRY = """\
import json, socket, sys

server = socket.socket()
server.bind(("127.0.0.1", 0))  # bound, not listening yet: a connect is refused
port = server.getsockname()[1]
seen = []
for attempt in range(3):
    if attempt == 2:
        server.listen(1)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
        seen.append("connected")
    except ConnectionRefusedError:
        seen.append("refused")
print(json.dumps({"port": port, "seen": seen}))
"""

# Bookkeeping that cannot work (a bare _socket.socket has no weak reference) after
# calls that succeeded.
RAW_SOCKET = """\
import _socket, json, socket, sys

PORTS = json.loads(sys.argv[1])
raw = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)
raw.settimeout(10)
connected = socket.socket.connect(raw, ("127.0.0.1", PORTS["ok"]))
sent = socket.socket.send(raw, b"GET / HTTP/1.1\\r\\n\\r\\n")
got = b""
while not got.endswith(b"ok"):
    got += socket.socket.recv(raw, 100)
code = socket.socket.connect_ex(_socket.socket(), ("127.0.0.1", PORTS["ok"]))
print(json.dumps({"connect": connected, "sent": sent, "got": got.decode(), "connect_ex": code}))
"""

HTTPX = """\
import json, sys
import httpx

PORTS = json.loads(sys.argv[1])
seen = {}
for name in ("reset", "refused", "silent"):
    try:
        httpx.get(f"http://127.0.0.1:{PORTS[name]}/", timeout=10)
    except httpx.TransportError as exc:
        seen[name] = type(exc).__name__
print(json.dumps(seen))
"""


CONFTEST = """\
import http.client, json, os
from pathlib import Path

import pytest

PORTS = json.loads(os.environ["TEST_PORTS"])
WORK = Path(os.environ["TEST_WORK"])


def get(name):
    conn = http.client.HTTPConnection("127.0.0.1", PORTS[name], timeout=10)
    conn.request("GET", "/")
    return conn.getresponse().read()


def log(event):
    with open(WORK / "fixtures.log", "a") as out:
        out.write(event + "\\n")


def fails_first(name, times, server="reset"):
    counter = WORK / f"{name}.count"
    calls = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(calls + 1))
    if calls < times:
        get(server)


@pytest.fixture(scope="session", autouse=True)
def probed_once():
    try:
        get("refused")
    except ConnectionRefusedError:
        pass


@pytest.fixture
def per_test():
    log("function-setup")
    yield
    log("function-teardown")


@pytest.fixture(scope="module")
def shared_service():
    log("module-setup")
    fails_first("service", 1, server="refused")
    yield
    log("module-teardown")
"""


NO_RETRY = """\
import httpx, pytest
from conftest import PORTS, get


def test_passes():
    assert get("ok") == b"ok"


def test_reset():
    get("reset")


def test_httpx_disconnect():
    httpx.get(f"http://127.0.0.1:{PORTS['silent']}/", timeout=10)


@pytest.fixture
def broken():
    raise RuntimeError("not a transport error")


def test_setup_fails(broken):
    pass


@pytest.mark.skip
def test_skipped():
    pass
"""


FLAKY = """\
from conftest import fails_first


def test_resets_once(per_test):
    fails_first("once", 1)


def test_resets_twice(per_test):
    fails_first("twice", 2)


def test_service_refused_at_first(shared_service):
    pass
"""


EXHAUSTED = """\
import pytest
from conftest import WORK, fails_first, get


def test_always_resets():
    get("reset")


def test_wrong_answer():
    assert get("ok") == b"something else"


def test_handles_a_reset_then_gets_a_wrong_answer():
    try:
        get("reset")
    except ConnectionResetError:
        pass  # the test's own business: it did not fail with it
    assert get("ok") == b"something else"


def test_handles_a_refusal():
    try:
        get("refused")  # its last socket call: the plugin writes it when the test ends
    except ConnectionRefusedError:
        pass


@pytest.fixture
def teardown_breaks_once():
    yield
    counter = WORK / "teardown.count"
    if not counter.exists():
        counter.write_text("1")
        raise RuntimeError("the teardown broke")


def test_resets_once_and_its_teardown_breaks(teardown_breaks_once):
    fails_first("resets-before-teardown", 1)
"""


UNITTESTS = """\
import http.client, json, os, unittest

PORTS = json.loads(os.environ["TEST_PORTS"])


class Client(unittest.TestCase):
    def test_first(self):
        pass

    def test_swallows_a_reset(self):
        conn = http.client.HTTPConnection("127.0.0.1", PORTS["reset"], timeout=10)
        with self.assertRaises(ConnectionResetError):
            conn.request("GET", "/")
            conn.getresponse()

    def test_swallows_a_refusal(self):
        conn = http.client.HTTPConnection("127.0.0.1", PORTS["refused"], timeout=10)
        with self.assertRaises(ConnectionRefusedError):
            conn.request("GET", "/")
"""


def unittest_run(python: Path, workdir: Path, ports: dict[str, int]) -> Child:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "test_units.py").write_text(UNITTESTS)
    env = {"TEST_PORTS": json.dumps(ports)}
    return run(python, workdir, ["-m", "unittest", "test_units"], env=env)


def retry(count: int, *on: str, backoff_s: float = 0.0) -> str:
    """A layer's READINESS_RETRY."""
    return json.dumps({"count": count, "on": list(on), "backoff_s": backoff_s})


def jobs(python: Path, ports: dict[str, int]) -> dict[str, Callable[[Path], Child]]:
    """Every child process these tests read, by name; each runs in a directory of its own."""
    return {
        "http.client": lambda d: script(python, d, HTTP_CLIENT, ports),
        "not a layer": lambda d: script(python, d, HTTP_CLIENT, ports, ledger=False),
        "unwritable": lambda d: script(
            python, d, HTTP_CLIENT, ports, env={"READINESS_LEDGER": str(d / "no" / "l.jsonl")}
        ),
        "requests": lambda d: script(python, d, REQUESTS, ports),
        "httpx": lambda d: script(python, d, HTTPX, ports),
        "fallback": lambda d: script(python, d, FALLBACK, ports),
        "retry loop": lambda d: script(python, d, RETRY, ports),
        "raw socket": lambda d: script(python, d, RAW_SOCKET, ports),
        "no retry": lambda d: pytest_session(python, d, NO_RETRY, ports),
        "flaky": lambda d: pytest_session(
            python, d, FLAKY, ports, retry(2, "ECONNRESET", "ECONNREFUSED", backoff_s=0.01)
        ),
        "exhausted": lambda d: pytest_session(python, d, EXHAUSTED, ports, retry(1, "transport")),
        "unittest": lambda d: unittest_run(python, d, ports),
    }


@pytest.fixture(scope="module")
def children(
    python: Path, ports: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Child]:
    """Every child, run once and all at once: they are independent, and each costs an
    interpreter start-up (pytest's, requests' or httpx' imports)."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        started = {
            name: pool.submit(job, tmp_path_factory.mktemp(name.replace(" ", "_")))
            for name, job in jobs(python, ports).items()
        }
        return {name: future.result() for name, future in started.items()}


# --- the wheel ---------------------------------------------------------------------------


def test_the_same_sources_build_a_byte_identical_wheel(tmp_path: Path) -> None:
    first = build_wheel(tmp_path / "a")
    second = build_wheel(tmp_path / "b")
    assert first.name == WHEEL_NAME == "readiness_ledger-1.0-py3-none-any.whl"
    assert first.read_bytes() == second.read_bytes()
    assert source_digest() == source_digest() == hashlib.sha256(first.read_bytes()).hexdigest()


def test_the_wheel_holds_sorted_entries_with_fixed_times_and_permissions() -> None:
    with zipfile.ZipFile(io.BytesIO(wheel_bytes())) as wheel:
        infos = wheel.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 for info in infos} == {0o100644}
        assert {
            "readiness_ledger/__init__.py",
            "readiness_ledger/plugin.py",
            "readiness_ledger/recorder.py",
            "readiness_ledger.pth",
        } <= set(names)
        assert wheel.read("readiness_ledger.pth").decode() == PTH
        assert (
            "Root-Is-Purelib: true" in wheel.read("readiness_ledger-1.0.dist-info/WHEEL").decode()
        )


def test_the_record_hashes_every_file_as_the_wheel_spec_says() -> None:
    with zipfile.ZipFile(io.BytesIO(wheel_bytes())) as wheel:
        record = wheel.read("readiness_ledger-1.0.dist-info/RECORD").decode()
        rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(record))}
        assert set(rows) == set(wheel.namelist())
        assert rows.pop("readiness_ledger-1.0.dist-info/RECORD") == ["", ""]
        for name, (digest, size) in rows.items():
            data = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert (digest, int(size)) == (f"sha256={expected.decode()}", len(data))


def test_a_wheel_already_there_is_left_as_it_is(tmp_path: Path) -> None:
    path = build_wheel(tmp_path)
    os.utime(path, (1, 1))
    assert build_wheel(tmp_path) == path
    assert path.stat().st_mtime == 1


def test_the_hook_names_the_transport_errnos_the_orchestrator_reads() -> None:
    assert recorder.TRANSPORT_ERRNOS == TRANSPORT_ERRNOS


# --- what it records ----------------------------------------------------------------------


def test_a_reset_on_receive_is_recorded_with_both_addresses(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["http.client"]
    assert child.report["seen"]["reset"] == "ConnectionResetError"
    (line,) = child.errors(ports["reset"])
    assert set(line) == ERROR_FIELDS
    assert (line["op"], line["errno"], line["exception"], line["source"]) == (
        "recv",
        "ECONNRESET",
        "ConnectionResetError",
        "socket",
    )
    assert line["message"] == "[Errno 104] Connection reset by peer"
    assert line["local"].startswith("127.0.0.1:")
    assert (line["kind"], line["v"], line["layer"], line["reused"]) == ("error", 1, "rest", False)
    assert line["idle_s"] is None  # not reused: no idle time to speak of
    assert (line["test"], line["position"], line["attempt"]) == (None, None, 1)


def test_a_close_without_response_is_remote_closed_from_http_client(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["http.client"]
    assert child.report["seen"]["silent"] == "RemoteDisconnected"
    (line,) = child.errors(ports["silent"])
    assert (line["op"], line["errno"], line["source"]) == (
        "response",
        "REMOTE_CLOSED",
        "http.client",
    )
    assert line["exception"] == "RemoteDisconnected"
    assert line["local"].startswith("127.0.0.1:")


def test_a_refused_connect_names_the_address_it_tried(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["http.client"]
    assert child.report["seen"]["refused"] == "ConnectionRefusedError"
    (line,) = child.errors(ports["refused"])
    assert (line["op"], line["errno"]) == ("connect", "ECONNREFUSED")
    # The port the kernel chose for the attempt (the RST went to it), or unknown.
    assert line["local"] is None or line["local"].startswith("127.0.0.1:")


def test_a_reset_while_sending_a_body_the_server_never_reads(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["http.client"]
    assert child.report["seen"]["unread"] in {"ConnectionResetError", "BrokenPipeError"}
    (line,) = child.errors(ports["unread"])
    assert (line["op"], line["source"]) == ("send", "socket")
    assert line["errno"] in {"ECONNRESET", "EPIPE"}


def test_an_error_on_a_connection_that_carried_an_exchange_is_marked_reused(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    (line,) = children["http.client"].errors(ports["stale"])
    assert line["reused"] is True
    assert line["errno"] in {"REMOTE_CLOSED", "ECONNRESET", "EPIPE"}
    assert line["idle_s"] is not None and line["idle_s"] >= 0


def test_a_reused_connection_says_how_long_it_sat_idle(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    (line,) = children["http.client"].errors(ports["idle"])
    assert line["reused"] is True
    # From the end of the first response to the first send of the second request.
    assert 0.3 <= line["idle_s"] < 1.3


def test_a_refused_first_address_of_a_fallback_is_not_recorded(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["fallback"]
    assert child.returncode == 0, child.stderr
    assert child.report == {
        "http.client": "ok",
        "requests": "ok",
        "httpx": "ok",
        "both refuse": "ConnectionRefusedError",
        "last": "ConnectionRefusedError",
    }
    # 127.0.0.2 refused every client first: no line, since 127.0.0.1 took the connection.
    assert [e for e in child.errors() if not e["remote"].endswith(f":{ports['refused']}")] == []
    # Real refusals are recorded: both addresses of the dual-stack name, then the last
    # socket call of the process (held back, written at exit).
    refused = [(e["op"], e["errno"], e["remote"]) for e in child.errors()]
    assert refused == [
        ("connect", "ECONNREFUSED", f"127.0.0.2:{ports['refused']}"),
        ("connect", "ECONNREFUSED", f"127.0.0.1:{ports['refused']}"),
        ("connect", "ECONNREFUSED", f"127.0.0.1:{ports['refused']}"),
    ]


def test_refusals_a_retry_loop_swallowed_before_it_connected_are_all_recorded(
    children: dict[str, Child],
) -> None:
    child = children["retry loop"]
    assert child.returncode == 0, child.stderr
    assert child.report["seen"] == ["refused", "refused", "connected"]
    port = child.report["port"]
    assert [(e["op"], e["errno"], e["remote"]) for e in child.errors()] == [
        ("connect", "ECONNREFUSED", f"127.0.0.1:{port}"),
        ("connect", "ECONNREFUSED", f"127.0.0.1:{port}"),
    ]


# The addresses where nothing listens (yet): the kernel refuses a connect to them.
REFUSING: set[tuple[Any, ...]] = set()


class Dialled:
    """A socket as the recorder sees it around a connect."""

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 40000)

    def getpeername(self) -> tuple[str, int]:
        raise OSError(107, "Transport endpoint is not connected")


def _kernel_connect(sock: Dialled, address: tuple[Any, ...]) -> None:
    if address in REFUSING:
        raise ConnectionRefusedError(111, "Connection refused")


CONNECT = recorder._wrap_connect(_kernel_connect)
LOOPBACK_V6, LOOPBACK_V4 = ("::1", 8000, 0, 0), ("127.0.0.1", 8000)


def dial(address: tuple[Any, ...]) -> str:
    """One connect through the recorder's wrapper: ``refused`` or ``connected``."""
    try:
        CONNECT(Dialled(), address)
    except ConnectionRefusedError:
        return "refused"
    return "connected"


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The lines the recorder writes in this process, from a clean slate of held lines."""
    lines: list[dict[str, Any]] = []
    monkeypatch.setattr(recorder, "write", lines.append)
    monkeypatch.setattr(recorder, "_held", {})
    REFUSING.clear()
    return lines


def refusals(written: list[dict[str, Any]]) -> list[str]:
    recorder.flush_held()  # what a test's end writes
    return [line["remote"] for line in written if line["errno"] == "ECONNREFUSED"]


def test_a_refusal_then_a_reconnect_to_the_same_address_keeps_the_refusal(
    written: list[dict[str, Any]],
) -> None:
    REFUSING.add(LOOPBACK_V4)
    assert dial(LOOPBACK_V4) == "refused"
    REFUSING.clear()  # the server is back: the suite's retry connects
    assert dial(LOOPBACK_V4) == "connected"
    assert refusals(written) == ["127.0.0.1:8000"]


def test_two_refusals_then_a_reconnect_keep_both_refusals(written: list[dict[str, Any]]) -> None:
    REFUSING.add(LOOPBACK_V4)
    assert [dial(LOOPBACK_V4), dial(LOOPBACK_V4)] == ["refused", "refused"]
    REFUSING.clear()
    assert dial(LOOPBACK_V4) == "connected"
    assert refusals(written) == ["127.0.0.1:8000", "127.0.0.1:8000"]


def test_the_resolvers_other_address_tried_at_once_is_still_a_fallback(
    written: list[dict[str, Any]],
) -> None:
    REFUSING.add(LOOPBACK_V6)  # localhost: ::1 refused, 127.0.0.1 takes it
    assert [dial(LOOPBACK_V6), dial(LOOPBACK_V4)] == ["refused", "connected"]
    assert refusals(written) == []


def test_another_address_tried_only_after_a_pause_is_a_retry_not_a_fallback(
    written: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "FALLBACK_S", 0.01)
    REFUSING.add(LOOPBACK_V6)
    assert dial(LOOPBACK_V6) == "refused"
    time.sleep(0.05)  # a retry loop's backoff, not create_connection's next address
    assert dial(LOOPBACK_V4) == "connected"
    assert refusals(written) == ["[::1]:8000"]


def test_a_refusal_held_by_an_ended_thread_is_not_dropped_by_a_thread_reusing_its_id(
    written: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder, "get_ident", lambda: 7)  # the kernel reuses the id
    REFUSING.add(LOOPBACK_V6)
    seen: list[str] = []
    for address in (LOOPBACK_V6, LOOPBACK_V4):  # one thread each, one after the other
        thread = threading.Thread(target=lambda a=address: seen.append(dial(a)))
        thread.start()
        thread.join()
    assert seen == ["refused", "connected"]
    assert refusals(written) == ["[::1]:8000"]


def test_bookkeeping_that_fails_after_a_successful_call_changes_nothing_for_the_caller(
    children: dict[str, Child],
) -> None:
    child = children["raw socket"]
    assert child.returncode == 0, child.stderr
    assert child.report == {
        "connect": None,
        "sent": len(b"GET / HTTP/1.1\r\n\r\n"),
        "got": KEEP_ALIVE.decode(),
        "connect_ex": 0,
    }


def test_requests_swallows_the_reset_but_the_ledger_keeps_it(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["requests"]
    assert child.report == {"unread": 200, "reset": "ConnectionError"}
    (swallowed,) = child.errors(ports["unread"])
    assert (swallowed["op"], swallowed["source"]) == ("send", "socket")
    assert swallowed["errno"] in {"ECONNRESET", "EPIPE"}
    (reset,) = child.errors(ports["reset"])
    assert (reset["op"], reset["errno"]) == ("recv", "ECONNRESET")


def test_httpx_errors_are_seen_at_the_socket(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["httpx"]
    assert child.report == {
        "reset": "ReadError",
        "refused": "ConnectError",
        "silent": "RemoteProtocolError",
    }
    assert [(e["op"], e["errno"]) for e in child.errors(ports["reset"])] == [("recv", "ECONNRESET")]
    assert [(e["op"], e["errno"]) for e in child.errors(ports["refused"])] == [
        ("connect", "ECONNREFUSED")
    ]
    # The server's EOF is no socket error: only a failing test's chain shows it (below).
    assert child.errors(ports["silent"]) == []


def test_without_the_variable_nothing_is_written_nor_even_imported(
    children: dict[str, Child],
) -> None:
    child = children["not a layer"]
    assert child.report["imported"] is False
    assert child.report["seen"] == children["http.client"].report["seen"]
    assert not (child.workdir / "ledger.jsonl").exists()
    assert children["http.client"].report["imported"] is True


def test_a_ledger_that_cannot_be_written_changes_nothing_for_the_client(
    children: dict[str, Child],
) -> None:
    child = children["unwritable"]
    assert child.returncode == 0
    assert child.report["seen"] == children["http.client"].report["seen"]
    (complaint,) = child.stderr.strip().splitlines()  # once, however many errors
    assert complaint.startswith("readiness_ledger: the transport ledger failed")


def test_the_plugin_loads_without_any_variable_a_child_interpreter_would_inherit(
    python: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_x.py").write_text(
        "import os\n"
        "def test_x(pytestconfig):\n"
        "    assert pytestconfig.pluginmanager.has_plugin('readiness_ledger.plugin')\n"
        "    assert 'readiness_ledger' not in os.environ.get('PYTEST_PLUGINS', '')\n"
    )
    users = run(python, tmp_path, ["-m", "pytest", "-q", "test_x.py"])
    assert users.returncode == 0, users.stdout + users.stderr
    blocked = run(python, tmp_path, ["-m", "pytest", "-q", "-p", "no:readiness_ledger.plugin"])
    assert blocked.returncode == 1, blocked.stdout  # the user can still turn it off


def test_addresses_are_addr_port_with_ipv6_in_brackets() -> None:
    assert recorder.address(("10.0.0.1", 8000)) == "10.0.0.1:8000"
    assert recorder.address(("::1", 8000, 0, 0)) == "[::1]:8000"
    assert recorder.address(("0.0.0.0", 0)) is None


class ResetBeforeAsked:
    """A socket whose connect succeeded and whose reset came in before the recorder
    looked: the kernel no longer gives its peer (ENOTCONN), only its own address."""

    def getsockname(self) -> tuple[str, int]:
        return ("10.0.0.2", 40000)

    def getpeername(self) -> tuple[str, int]:
        raise OSError(107, "Transport endpoint is not connected")


def test_a_reset_right_after_the_handshake_still_names_the_server_it_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[dict[str, Any]] = []
    monkeypatch.setattr(recorder, "write", written.append)
    sock = ResetBeforeAsked()
    recorder._connected(sock, ("10.0.0.1", 8000), None)
    recorder._failed(sock, "recv", ConnectionResetError(104, "Connection reset by peer"))
    (line,) = written
    assert (line["errno"], line["local"], line["remote"]) == (
        "ECONNRESET",
        "10.0.0.2:40000",
        "10.0.0.1:8000",
    )


def test_only_connection_level_errors_have_a_name() -> None:
    assert recorder.errno_name(ConnectionResetError(104, "reset")) == "ECONNRESET"
    assert recorder.errno_name(TimeoutError("timed out")) == "ETIMEDOUT"
    assert recorder.errno_name(BlockingIOError(11, "again")) is None
    assert recorder.errno_name(FileNotFoundError(2, "no")) is None
    assert recorder.errno_name(ValueError("no")) is None


# --- pytest: tests, positions, retries --------------------------------------------------------


def test_each_test_gets_its_id_position_and_one_line_per_attempt(
    children: dict[str, Child],
) -> None:
    child = children["no retry"]
    assert child.returncode == 1, child.stdout
    tests = [line for line in child.ledger if line["kind"] == "test"]
    assert {frozenset(line) for line in tests} == {frozenset(TEST_FIELDS)}
    assert [(line["test"], line["position"], line["outcome"]) for line in tests] == [
        ("test_suite.py::test_passes", 1, "passed"),
        ("test_suite.py::test_reset", 2, "failed"),
        ("test_suite.py::test_httpx_disconnect", 3, "failed"),
        ("test_suite.py::test_setup_fails", 4, "error"),
        ("test_suite.py::test_skipped", 5, "skipped"),
    ]
    # Without READINESS_RETRY nothing is retried.
    assert {(line["attempt"], line["retry"]) for line in tests} == {(1, False)}


def test_errors_carry_their_test_and_a_session_fixtures_carry_none(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["no retry"]
    (probe,) = child.errors(ports["refused"])
    assert (probe["test"], probe["position"], probe["errno"]) == (None, None, "ECONNREFUSED")
    (reset,) = child.errors(ports["reset"])
    assert (reset["test"], reset["position"], reset["source"]) == (
        "test_suite.py::test_reset",
        2,
        "socket",
    )


def test_a_transport_error_only_in_the_failures_chain_is_recorded_from_the_test(
    children: dict[str, Child],
) -> None:
    found = [line for line in children["no retry"].errors() if line["source"] == "test"]
    assert [(e["test"], e["op"], e["errno"], e["exception"]) for e in found] == [
        ("test_suite.py::test_httpx_disconnect", "test", "REMOTE_CLOSED", "RemoteProtocolError")
    ]
    assert (found[0]["local"], found[0]["remote"]) == (None, None)


def test_a_test_that_passes_after_a_reset_is_retried_and_pytest_passes(
    children: dict[str, Child],
) -> None:
    child = children["flaky"]
    assert child.returncode == 0, child.stdout
    assert child.attempts("test_resets_once") == [(1, "failed", True), (2, "passed", False)]
    assert child.attempts("test_resets_twice") == [
        (1, "failed", True),
        (2, "failed", True),
        (3, "passed", False),
    ]
    errors = [(e["test"], e["attempt"], e["errno"]) for e in child.errors() if e["test"]]
    assert ("test_suite.py::test_resets_once", 1, "ECONNRESET") in errors
    assert ("test_suite.py::test_resets_once", 2, "ECONNRESET") not in errors
    assert "3 passed, 4 rerun" in child.stdout


def test_every_attempt_is_a_testcase_and_only_the_last_one_counts(
    children: dict[str, Child],
) -> None:
    child = children["flaky"]
    first, second = junit_cases(child, "test_resets_once")
    assert first[0]["readiness_attempt"] == "1"
    assert first[0]["readiness_outcome"] == "failed"
    assert first[0]["readiness_error"].startswith("ConnectionResetError: [Errno 104]")
    assert first[1] == ["system-out"]  # no <failure>: pytest did not count it
    assert second == ({"readiness_attempt": "2"}, [])
    # Why it ran again, for a reader who knows nothing of the properties.
    output, none = junit_output(child, "test_resets_once")
    assert output.startswith("readiness: attempt 1 failed:\n")
    assert "Traceback" in output
    assert "ConnectionResetError: [Errno 104] Connection reset by peer" in output
    assert none == ""
    twice = junit_cases(child, "test_resets_twice")
    assert [props["readiness_attempt"] for props, _ in twice] == ["1", "2", "3"]


def test_fixtures_are_set_up_again_for_each_attempt(children: dict[str, Child]) -> None:
    child = children["flaky"]
    events = (child.workdir / "fixtures.log").read_text().split()
    # once: 2 attempts, twice: 3 attempts, each with its own function-scoped fixture.
    assert events[:10] == ["function-setup", "function-teardown"] * 5
    # The module fixture failed (refused) at the first attempt: set up again, then kept.
    assert events[10:] == ["module-setup", "module-setup", "module-teardown"]
    assert child.attempts("test_service_refused_at_first") == [
        (1, "error", True),
        (2, "passed", False),
    ]


def test_when_the_retries_run_out_the_last_failure_stands(children: dict[str, Child]) -> None:
    child = children["exhausted"]
    assert child.returncode == 1
    assert child.attempts("test_always_resets") == [(1, "failed", True), (2, "failed", False)]
    cases = junit_cases(child, "test_always_resets")
    assert [(props["readiness_attempt"], tags) for props, tags in cases] == [
        ("1", ["system-out"]),
        ("2", ["failure"]),
    ]


def test_a_failure_that_is_not_a_transport_error_is_not_retried(
    children: dict[str, Child],
) -> None:
    child = children["exhausted"]
    assert child.attempts("test_wrong_answer") == [(1, "failed", False)]
    assert [tags for _, tags in junit_cases(child, "test_wrong_answer")] == [["failure"]]


def test_a_transport_error_the_test_handled_does_not_make_its_failure_retried(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["exhausted"]
    test = "test_handles_a_reset_then_gets_a_wrong_answer"
    assert child.attempts(test) == [(1, "failed", False)]
    # The reset is in the ledger all the same.
    (reset,) = [e for e in child.errors(ports["reset"]) if e["test"].endswith(test)]
    assert reset["errno"] == "ECONNRESET"


def test_a_teardown_error_of_a_retried_attempt_stays_an_error(children: dict[str, Child]) -> None:
    child = children["exhausted"]
    test = "test_resets_once_and_its_teardown_breaks"
    assert child.attempts(test) == [(1, "failed", True), (2, "passed", False)]
    cases = junit_cases(child, test)
    assert [tags for _, tags in cases] == [["error", "system-out"], []]
    assert "1 error" in child.stdout.splitlines()[-1]
    assert "ConnectionResetError" in junit_output(child, test)[0]


def test_a_connect_failure_a_test_ends_with_is_written_before_its_test_line(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["exhausted"]
    test = "test_suite.py::test_handles_a_refusal"
    kinds = [(line["kind"], line.get("remote")) for line in child.ledger if line["test"] == test]
    assert kinds == [("error", f"127.0.0.1:{ports['refused']}"), ("test", None)]


def test_the_backoff_doubles_up_to_a_bound() -> None:
    policy = RetryPolicy(50, frozenset({"ECONNRESET"}), 5.0)
    assert [backoff_s(policy, n) for n in (1, 2, 3, 4, 5)] == [5.0, 10.0, 20.0, 30.0, 30.0]
    assert backoff_s(policy, 50) == 30.0
    assert backoff_s(RetryPolicy(1, frozenset({"EPIPE"}), 0.01), 1) == 0.01


def test_the_retry_policy_reads_the_layers_json() -> None:
    policy = retry_policy('{"count": 2, "on": ["transport", "EFOO"], "backoff_s": 0.2}')
    assert policy == RetryPolicy(2, frozenset({*TRANSPORT_ERRNOS, "EFOO"}), 0.2)
    assert retry_policy(None) is None
    assert retry_policy('{"count": 0, "on": ["ECONNRESET"]}') is None


# --- unittest (Django's runner) -----------------------------------------------------------------


def test_a_unittest_run_names_the_test_in_its_lines(
    children: dict[str, Child], ports: dict[str, int]
) -> None:
    child = children["unittest"]
    assert child.returncode == 0, child.stderr
    (reset,) = child.errors(ports["reset"])
    assert (reset["test"], reset["position"]) == ("test_units.Client.test_swallows_a_reset", 3)
    # A refused connect, the test's last socket call: written when the test stops.
    refusal = [
        (line["kind"], line.get("errno"))
        for line in child.ledger
        if line["test"] == "test_units.Client.test_swallows_a_refusal"
    ]
    assert refusal == [("error", "ECONNREFUSED"), ("test", None)]
    tests = [(t["test"], t["position"], t["outcome"]) for t in child.ledger if t["kind"] == "test"]
    assert tests == [
        ("test_units.Client.test_first", 1, "passed"),
        ("test_units.Client.test_swallows_a_refusal", 2, "passed"),
        ("test_units.Client.test_swallows_a_reset", 3, "passed"),
    ]
