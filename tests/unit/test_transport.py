"""Result, FakeTransport, and LocalTransport for real (it is local and fast)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.exceptions import HostError
from orchestrator.transport import (
    TIMEOUT_EXIT_CODE,
    FakeTransport,
    FileTooLargeError,
    LocalTransport,
    OutputSink,
    Result,
    SSHTransport,
    Transport,
    _Capture,
    _collect,
    compose_script,
)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


# --------------------------------------------------------------------------- values


def test_result_ok_and_check() -> None:
    good = Result("true", 0, "out", "", 0.1, host="h1")
    assert good.ok and good.check() is good
    bad = Result("false\nmore", 3, "o", "first\nlast words\n", 0.2, host="h1")
    assert not bad.ok
    with pytest.raises(HostError, match=r"failed with exit code 3: first / last words") as err:
        bad.check()
    assert err.value.host == "h1" and err.value.stderr == bad.stderr
    with pytest.raises(HostError, match=r"^host 'h1': starting the database failed"):
        bad.check("starting the database")
    late = Result("sleep 9", TIMEOUT_EXIT_CODE, "", "", 1.0, timed_out=True, host="h2")
    assert not late.ok
    with pytest.raises(HostError, match="timed out"):
        late.check()
    with pytest.raises(AttributeError):
        good.exit_code = 1  # type: ignore[misc]


def test_compose_script_quotes_env_and_rejects_bad_names() -> None:
    text = compose_script("echo $A", {"A": "it's $(rm -rf /)", "B_2": ""})
    assert text == "export A='it'\"'\"'s $(rm -rf /)'\nexport B_2=''\necho $A"
    for bad in ("1A", "A-B", "A B", ""):
        with pytest.raises(ValueError, match="invalid environment variable name"):
            compose_script("true", {bad: "x"})


# --------------------------------------------------------------------------- fake


def test_fake_transport_records_and_answers_by_pattern() -> None:
    fake = FakeTransport("db1")
    fake.on(r"mysqladmin ping", stdout="mysqld is alive\n")
    fake.on(r"^cat /proc/net/netstat", stdout="TcpExt: A\nTcpExt: 1\n")
    fake.on(r"systemctl", exit_code=5, stderr="no systemd")
    assert isinstance(fake, Transport)
    assert fake.run("mysqladmin ping", env={"PW": "x"}, timeout=3).stdout == "mysqld is alive\n"
    failed = fake.run("systemctl start x")
    assert (failed.exit_code, failed.stderr, failed.ok, failed.host) == (
        5,
        "no systemd",
        False,
        "db1",
    )
    assert fake.run("unknown thing").ok
    assert fake.scripts == ["mysqladmin ping", "systemctl start x", "unknown thing"]
    assert fake.calls[0].env == {"PW": "x"} and fake.calls[0].timeout == 3


def test_fake_transport_later_rules_win_and_timeouts() -> None:
    fake = FakeTransport().on("ping", stdout="old").on("ping", stdout="new")
    assert fake.run("ping").stdout == "new"
    fake.on("slow", timed_out=True)
    slow = fake.run("slow job")
    assert slow.timed_out and slow.exit_code == TIMEOUT_EXIT_CODE and not slow.ok


def test_fake_transport_files() -> None:
    fake = FakeTransport("h")
    fake.put(b"data", "/etc/x.cnf", mode=0o600)
    assert fake.get("/etc/x.cnf") == b"data"
    assert fake.modes["/etc/x.cnf"] == 0o600
    with pytest.raises(HostError, match="host 'h': cannot read /nope"):
        fake.get("/nope")
    with pytest.raises(ValueError):
        fake.run("true", env={"bad name": "x"})
    fake.close()
    assert fake.closed


# --------------------------------------------------------------------------- local


@pytest.fixture
def local() -> LocalTransport:
    return LocalTransport("control")


def test_local_run_output_and_exit_code(local: LocalTransport) -> None:
    result = local.run("echo out; echo err >&2; exit 7")
    assert (result.exit_code, result.stdout, result.stderr) == (7, "out\n", "err\n")
    assert result.command == "echo out; echo err >&2; exit 7"
    assert result.host == "control" and result.duration_s > 0 and not result.timed_out
    assert isinstance(local, Transport)


def test_local_run_is_bash_with_env_and_stdin(local: LocalTransport) -> None:
    result = local.run(
        'set -euo pipefail\n[[ -n "$SECRET" ]]\necho "$SECRET"\n'
        'read -r line\necho "got $line"\ncat',
        env={"SECRET": "p@ss w'rd"},
        stdin=b"first\nrest of input\n",
    )
    assert result.ok, result.stderr
    assert result.stdout == "p@ss w'rd\ngot first\nrest of input\n"


def test_local_run_large_stdin_and_binary_output(local: LocalTransport) -> None:
    data = os.urandom(3 * 1024 * 1024)
    result = local.run("wc -c", stdin=data)
    assert result.stdout.strip() == str(len(data))
    assert local.run("printf '\\xff\\xfe'").stdout == "\ufffd\ufffd"


def test_local_secrets_never_on_a_command_line(local: LocalTransport) -> None:
    secret = "s3cr3t-" + os.urandom(6).hex()
    script = (
        f"# {secret} in the script text too\n"
        "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done"
    )
    result = local.run(script, env={"TOKEN": secret})
    assert result.ok
    assert "readiness-run" in result.stdout  # we did see our own wrapper
    assert secret not in result.stdout


def test_local_timeout_kills_the_whole_process_group(local: LocalTransport, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    result = local.run(
        f"sleep 60 & echo $! > {pids}\n(sleep 60; echo never) &\necho $! >> {pids}\nsleep 60",
        timeout=0.5,
    )
    elapsed = time.monotonic() - started
    assert result.timed_out and result.exit_code == TIMEOUT_EXIT_CODE and not result.ok
    assert 0.5 <= elapsed < 5
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"pid {pid} survived the timeout"
    assert "never" not in result.stdout


def test_local_timeout_also_kills_what_ignores_term(local: LocalTransport) -> None:
    result = local.run("trap '' TERM; echo started; sleep 60", timeout=0.3)
    assert result.timed_out and result.stdout == "started\n"
    assert result.duration_s < 5


def test_local_leaves_no_temporary_script_behind(
    local: LocalTransport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private TMPDIR: other runs on this machine use /tmp at the same time.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    local.run("true")
    local.run("sleep 5", timeout=0.2)
    assert list(tmp_path.glob("readiness-run.*")) == []


def test_local_put_and_get(local: LocalTransport, tmp_path: Path) -> None:
    target = tmp_path / "conf" / "my.cnf"
    target.parent.mkdir()
    local.put(b"[mysqld]\n", str(target), mode=0o600)
    assert local.get(str(target)) == b"[mysqld]\n"
    assert target.stat().st_mode & 0o777 == 0o600
    local.put(b"again", str(target))
    assert target.read_bytes() == b"again" and target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["my.cnf"]
    with pytest.raises(HostError, match="host 'control': cannot read"):
        local.get(str(tmp_path / "missing"))
    with pytest.raises(HostError, match="cannot write"):
        local.put(b"x", str(tmp_path / "no" / "dir" / "f"))


class Chunks:
    """An OutputSink that remembers every chunk, in order."""

    def __init__(self, tail_bytes: int) -> None:
        self.tail_bytes = tail_bytes
        self.chunks: list[tuple[str, bytes]] = []

    def write(self, stream: str, data: bytes) -> None:
        self.chunks.append((stream, data))

    def joined(self, stream: str) -> bytes:
        return b"".join(data for name, data in self.chunks if name == stream)


def test_local_run_streams_into_a_sink_and_keeps_only_a_tail(local: LocalTransport) -> None:
    sink = Chunks(tail_bytes=1000)
    assert isinstance(sink, OutputSink)
    result = local.run(
        "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo err1 >&2; echo last; echo err2 >&2",
        sink=sink,
    )
    assert result.ok, result.stderr
    assert sink.joined("stdout") == b"x" * 3_000_000 + b"\nlast\n"
    assert sink.joined("stderr") == b"err1\nerr2\n"
    assert len(sink.chunks) > 3  # it came as it arrived, not in one piece at the end
    assert result.stdout == ("x" * 3_000_000 + "\nlast\n")[-1000:]
    assert result.stderr == "err1\nerr2\n"


def test_local_timeout_with_a_sink_keeps_what_came_before(local: LocalTransport) -> None:
    sink = Chunks(tail_bytes=5)
    result = local.run("echo started; echo oops >&2; sleep 60", timeout=0.5, sink=sink)
    assert result.timed_out and sink.joined("stdout") == b"started\n"
    assert (result.stdout, result.stderr) == ("rted\n", "oops\n")


def test_fake_transport_hands_a_sink_its_output_in_chunks() -> None:
    fake = FakeTransport().on("job", stdout="abcdefg", stderr="xyz", chunk_size=3)
    sink = Chunks(tail_bytes=2)
    result = fake.run("job", sink=sink)
    assert sink.chunks == [
        ("stdout", b"abc"),
        ("stdout", b"def"),
        ("stdout", b"g"),
        ("stderr", b"xyz"),
    ]
    assert (result.stdout, result.stderr) == ("fg", "yz")
    assert fake.calls[0].sink is sink
    assert fake.run("job").stdout == "abcdefg"  # no sink: the whole text


def test_ssh_collect_hands_chunks_to_the_sink_and_keeps_a_tail() -> None:
    """The SSH read loop, against a channel that has everything buffered and has exited."""

    class Channel:
        eof_received, closed = True, False
        out, err = [b"one ", b"two ", b"three"], [b"warning"]

        def recv_ready(self) -> bool:
            return bool(self.out)

        def recv(self, size: int) -> bytes:
            return self.out.pop(0)

        def recv_stderr_ready(self) -> bool:
            return bool(self.err)

        def recv_stderr(self, size: int) -> bytes:
            return self.err.pop(0)

        def exit_status_ready(self) -> bool:
            return True

    sink = Chunks(tail_bytes=4)
    capture = _Capture(sink)
    assert _collect(Channel(), None, capture)
    assert sink.joined("stdout") == b"one two three" and sink.joined("stderr") == b"warning"
    assert (capture.text("stdout"), capture.text("stderr")) == ("hree", "ning")


# --------------------------------------------------------------------------- ssh (no server)


def test_ssh_unreachable_host_names_host_and_address(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    known = tmp_path / "known_hosts"
    known.write_text("")
    transport = SSHTransport(
        "db1",
        "127.0.0.1",
        port=port,
        key_file=tmp_path / "k",
        known_hosts=known,
        connect_timeout=2,
    )
    with pytest.raises(HostError, match=rf"host 'db1': cannot connect to root@127\.0\.0\.1:{port}"):
        transport.run("true")
    transport.close()


def test_ssh_missing_known_hosts_is_a_host_error(tmp_path: Path) -> None:
    transport = SSHTransport(
        "db1", "127.0.0.1", key_file=tmp_path / "k", known_hosts=tmp_path / "none"
    )
    with pytest.raises(HostError, match="cannot read known_hosts"):
        transport.connect()


# --------------------------------------------------------------------------- ssh (an impostor)


@pytest.fixture
def impostor() -> Iterator[tuple[int, str]]:
    """A throwaway SSH server (paramiko) on a loopback port: it presents its own ECDSA host
    key, as another sshd on a lab host's address would, and lets nobody in.

    Yields its port and its public key line (``TYPE BASE64``).
    """
    import paramiko

    host_key = paramiko.ECDSAKey.generate()
    with _ssh_server(host_key, paramiko.ServerInterface) as port:
        yield port, f"{host_key.get_name()} {host_key.get_base64()}"


@contextlib.contextmanager
def _ssh_server(host_key: Any, interface: Any, sftp: Any = None) -> Iterator[int]:
    """A paramiko SSH server on a loopback port (yielded), answering each connection with
    ``interface()`` (and ``sftp`` as its SFTP subsystem, if given), until the block ends."""
    import paramiko

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)  # so that the server thread sees the end of the test
    sessions: list[Any] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            session = paramiko.Transport(conn)
            session.add_server_key(host_key)
            if sftp is not None:
                session.set_subsystem_handler("sftp", paramiko.SFTPServer, sftp)
            sessions.append(session)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                session.start_server(server=interface())

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        server.join(timeout=5)
        listener.close()
        for session in sessions:
            session.close()


def _pinned(tmp_path: Path, port: int, key_line: str) -> Path:
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {key_line}\n")
    return known


def _ssh(tmp_path: Path, port: int, known: Path) -> SSHTransport:
    key = tmp_path / "id"
    key.write_text("never offered: the host key check fails first\n")
    return SSHTransport(
        "web1", "127.0.0.1", port=port, key_file=key, known_hosts=known, connect_timeout=5
    )


def test_an_impostor_sshd_is_a_host_key_error_naming_the_host(
    tmp_path: Path, impostor: tuple[int, str]
) -> None:
    """Another sshd answers on a pinned host's address with a key of the pinned type."""
    import paramiko

    port, _ = impostor
    other = paramiko.ECDSAKey.generate()
    known = _pinned(tmp_path, port, f"{other.get_name()} {other.get_base64()}")
    transport = _ssh(tmp_path, port, known)
    with pytest.raises(HostError) as err:
        transport.run("true")
    transport.close()
    message = str(err.value)
    assert err.value.host == "web1" and err.value.exit_code == 3
    assert f"host key of web1 does not match {known}; another sshd answers" in message
    assert "on that address?" in message and "MISMATCH" in message


def test_an_impostor_with_another_key_type_is_a_mismatch_not_an_unknown_host(
    tmp_path: Path, impostor: tuple[int, str]
) -> None:
    """Only an ed25519 key is pinned and the impostor has none: still a mismatch, not an
    unknown host (the host is pinned)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    port, _ = impostor
    ed25519 = Ed25519PrivateKey.generate().public_key()
    line = ed25519.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    known = _pinned(tmp_path, port, line)
    with pytest.raises(HostError, match=r"of web1 does not match .*pinned key is ssh-ed25519"):
        _ssh(tmp_path, port, known).connect()


def test_a_host_missing_from_known_hosts_is_still_not_pinned(
    tmp_path: Path, impostor: tuple[int, str]
) -> None:
    port, key_line = impostor
    known = _pinned(tmp_path, port + 1 if port < 65535 else port - 1, key_line)  # another host
    with pytest.raises(HostError, match=r"host key is not pinned in") as err:
        _ssh(tmp_path, port, known).connect()
    assert "does not match" not in str(err.value)


def test_local_run_waits_for_a_script_that_closed_its_output(local: LocalTransport) -> None:
    result = local.run("echo before; exec >/dev/null 2>&1; sleep 0.5; exit 4", timeout=30)
    assert (result.exit_code, result.stdout, result.timed_out) == (4, "before\n", False)
    late = local.run("exec >/dev/null 2>&1; sleep 60", timeout=0.5)
    assert late.timed_out and late.duration_s < 5


def test_a_host_that_vanishes_is_detected_whether_the_connection_is_idle_or_busy() -> None:
    """Keepalive for an idle connection; a bound on unacknowledged data for a busy one."""
    import socket
    from types import SimpleNamespace

    from orchestrator.transport import USER_TIMEOUT_MS, _detect_dead_peers

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        _detect_dead_peers(SimpleNamespace(sock=sock))
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 10
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == USER_TIMEOUT_MS


def test_an_ssh_connection_sends_small_messages_at_once_and_ignores_a_proxy() -> None:
    """Nagle's algorithm held each script's second small message for the host's delayed
    ACK (61 ms a round trip on the lab, 18 ms without)."""
    import socket
    from types import SimpleNamespace

    from orchestrator.transport import _send_at_once

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        _send_at_once(SimpleNamespace(sock=sock))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    left, right = socket.socketpair()  # a proxy command's pipe: no TCP option to set
    with left, right:
        _send_at_once(SimpleNamespace(sock=left))
    _send_at_once(SimpleNamespace())  # a transport without a socket


class PieceChannel:
    """A channel that keeps what each sendall call was handed."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self.shut = False

    def sendall(self, data: bytes) -> None:
        self.calls.append(data)

    def shutdown_write(self) -> None:
        self.shut = True


def test_a_large_stream_goes_to_ssh_in_small_pieces_whole_and_in_order() -> None:
    """paramiko's sendall re-slices what is left after each packet: given 40 MB at once
    it copied gigabytes and sent 3 MB/s. The stream must reach it in small pieces."""
    from orchestrator import transport

    payload = bytes(range(256)) * 4096 * 3 + b"tail"  # 3 MiB and a bit
    chan = PieceChannel()
    feeder = transport._Feeder(
        transport._sender(chan), chan.shutdown_write, transport._payload("true", None, payload)
    )
    feeder.run()
    sent = b"".join(chan.calls)
    assert sent == b"4\ntrue" + payload and chan.shut
    assert max(len(c) for c in chan.calls) <= transport._SEND_PIECE <= 256 * 1024


class CountingFile(io.BytesIO):
    """A file that remembers the largest read asked of it."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        self.largest = max(self.largest, size if size is not None and size >= 0 else 1 << 62)
        return super().read(size)


def test_a_file_as_stdin_is_read_in_pieces_and_reaches_the_script_whole(tmp_path: Path) -> None:
    """The push stream is a spooled file: it is read a piece at a time, never whole."""
    from orchestrator import transport

    data = os.urandom(3 << 20)
    stdin = CountingFile(data)
    result = LocalTransport().run("sha256sum", stdin=stdin, timeout=60)
    assert result.ok and result.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    assert stdin.largest <= transport._READ_PIECE < len(data)


class FailingFile(io.BytesIO):
    """An input file whose second read fails (a disk error under the spooled push)."""

    reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        if self.reads == 2:
            raise OSError(5, "Input/output error")
        return super().read(size)


def test_an_input_that_cannot_be_read_ends_the_script_at_once_and_says_why() -> None:
    """The script gets the end of its input (it never waits for the rest until its
    timeout), and the run raises what reading the input failed with."""
    from orchestrator.exceptions import InfrastructureError
    from orchestrator.transport import _READ_PIECE

    stdin = FailingFile(b"x" * (3 * _READ_PIECE))
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match="Input/output error"):
        LocalTransport().run("cat > /dev/null", stdin=stdin, timeout=60)
    assert time.monotonic() - started < 10


def test_a_bad_environment_name_is_an_error_of_the_call_not_a_hung_thread() -> None:
    started = time.monotonic()
    with pytest.raises(ValueError, match="invalid environment variable name"):
        LocalTransport().run("true", env={"1BAD": "x"}, timeout=60)
    assert time.monotonic() - started < 5


def test_a_script_that_leaves_its_input_unread_is_its_outcome_not_an_error() -> None:
    result = LocalTransport().run("head -c 10 > /dev/null; exit 3", stdin=os.urandom(8 << 20))
    assert result.exit_code == 3


# --------------------------------------------------------------------------- get_to


class Pieces:
    """A ByteWriter that remembers every piece it was given."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        return len(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces)


def test_local_get_to_copies_a_file_in_pieces_and_says_its_size(
    local: LocalTransport, tmp_path: Path
) -> None:
    """Never the whole file at once: no piece is larger than a MiB."""
    source = tmp_path / "junit.xml"
    source.write_bytes(os.urandom((3 << 20) + 123))
    out, trips = Pieces(), local.round_trips
    assert local.get_to(str(source), out, limit=4 << 20) == (3 << 20) + 123
    assert out.data == source.read_bytes() and local.round_trips == trips + 1
    assert len(out.pieces) >= 4 and max(map(len, out.pieces)) <= 1 << 20
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    assert local.get_to(str(empty), Pieces(), limit=10) == 0


def test_local_get_to_refuses_a_file_over_the_cap_before_reading_it(
    local: LocalTransport, tmp_path: Path
) -> None:
    """A cap of exactly the file's size is no refusal; one byte less is, with nothing
    of the file written out, and the error says which file and how large the cap is."""
    source = tmp_path / "junit.xml"
    source.write_bytes(b"x" * 1000)
    assert local.get_to(str(source), Pieces(), limit=1000) == 1000
    out = Pieces()
    with pytest.raises(FileTooLargeError) as err:
        local.get_to(str(source), out, limit=999)
    assert out.pieces == [] and err.value.host == "control"
    assert err.value.detail == f"{source} is larger than 999 bytes, the cap on fetching it"
    big = tmp_path / "big.xml"
    with big.open("wb") as f:
        f.truncate(300 << 20)  # sparse: 300 MiB of nothing, read not at all
    with pytest.raises(FileTooLargeError, match=r"is larger than 256 MiB, the cap"):
        local.get_to(str(big), Pieces(), limit=256 << 20)


def test_local_get_to_stops_at_the_cap_of_a_file_still_being_written(
    local: LocalTransport, tmp_path: Path
) -> None:
    """Its size when opened says nothing (a FIFO: 0): the cap is counted as it is read,
    and not one byte past it is written out."""
    fifo = tmp_path / "growing.xml"
    os.mkfifo(fifo)

    def writer() -> None:
        with contextlib.suppress(BrokenPipeError), fifo.open("wb") as f:
            for _ in range(64):
                f.write(b"y" * 4096)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    out = Pieces()
    with pytest.raises(FileTooLargeError, match="larger than 10000 bytes"):
        local.get_to(str(fifo), out, limit=10_000)
    thread.join(timeout=10)
    assert len(out.data) <= 10_000


def test_get_to_tells_a_missing_file_from_a_full_local_disk(
    local: LocalTransport, tmp_path: Path
) -> None:
    """A file that cannot be read is the host's (HostError); what writing it out raises
    is the control node's and goes through as it is, not as a missing file."""
    with pytest.raises(HostError, match=r"host 'control': cannot read .*missing") as err:
        local.get_to(str(tmp_path / "missing"), Pieces(), limit=100)
    assert not isinstance(err.value, FileTooLargeError)

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    source = tmp_path / "junit.xml"
    source.write_bytes(b"<testsuite/>")
    with pytest.raises(OSError, match="No space left") as full:
        local.get_to(str(source), Full(), limit=100)
    assert not isinstance(full.value, HostError)


def test_fake_get_to_serves_what_get_serves_in_pieces_with_the_cap() -> None:
    """Through ``get``, so a test's transport that overrides ``get`` serves both."""

    class Served(FakeTransport):
        def get(self, remote_path: str) -> bytes:
            return b"served:" + remote_path.encode()

    fake = Served("h", get_chunk=3)
    out = Pieces()
    assert fake.get_to("/r/a.xml", out, limit=100) == 15
    assert out.pieces == [b"ser", b"ved", b":/r", b"/a.", b"xml"]
    with pytest.raises(FileTooLargeError, match=r"/r/a\.xml is larger than 14 bytes"):
        fake.get_to("/r/a.xml", Pieces(), limit=14)
    plain = FakeTransport("h")
    with pytest.raises(HostError, match="cannot read /nope: no such file"):
        plain.get_to("/nope", Pieces(), limit=100)
    assert plain.round_trips == 1


# --------------------------------------------------------------------------- get_to over SFTP


@pytest.fixture
def sftp_host(tmp_path: Path) -> Iterator[SSHTransport]:
    """A real SSH server (paramiko) on a loopback port that serves this machine's files
    over SFTP to one pinned key, and an SSHTransport that trusts only its host key."""
    import paramiko

    host_key = paramiko.ECDSAKey.generate()
    client_key = paramiko.ECDSAKey.generate()
    key_file = tmp_path / "id_ecdsa"
    client_key.write_private_key_file(str(key_file))

    class Handle(paramiko.SFTPHandle):  # type: ignore[misc]
        def stat(self) -> Any:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))

    class Files(paramiko.SFTPServerInterface):  # type: ignore[misc]
        def open(self, path: str, flags: int, attr: Any) -> Any:
            try:
                handle = Handle(flags)
                handle.readfile = open(path, "rb")  # noqa: SIM115 (paramiko closes it)
            except OSError as err:
                return paramiko.SFTPServer.convert_errno(err.errno)
            handle.filename = path
            return handle

    class Server(paramiko.ServerInterface):  # type: ignore[misc]
        def get_allowed_auths(self, username: str) -> str:
            return "publickey"

        def check_auth_publickey(self, username: str, key: Any) -> int:
            ok = key.asbytes() == client_key.asbytes()
            return int(paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED)

        def check_channel_request(self, kind: str, chanid: int) -> int:
            return int(paramiko.OPEN_SUCCEEDED)

    with _ssh_server(host_key, Server, Files) as port:
        known = _pinned(tmp_path, port, f"{host_key.get_name()} {host_key.get_base64()}")
        transport = SSHTransport(
            "web1", "127.0.0.1", port=port, key_file=key_file, known_hosts=known, connect_timeout=5
        )
        try:
            yield transport
        finally:
            transport.close()


def test_ssh_get_to_fetches_a_file_in_batches_whole_and_in_order(
    sftp_host: SSHTransport, tmp_path: Path
) -> None:
    """Over a real SFTP session: more than two batches of pipelined reads, each written
    out as it came, the whole file and nothing else; an empty file is one too."""
    from orchestrator.transport import _SFTP_BATCH

    source = tmp_path / "junit.xml"
    source.write_bytes(os.urandom(2 * _SFTP_BATCH + 77_777))
    out = Pieces()
    assert sftp_host.get_to(str(source), out, limit=64 << 20) == source.stat().st_size
    assert hashlib.sha256(out.data).digest() == hashlib.sha256(source.read_bytes()).digest()
    assert len(out.pieces) >= 3 and max(map(len, out.pieces)) <= _SFTP_BATCH
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    assert sftp_host.get_to(str(empty), Pieces(), limit=10) == 0
    assert sftp_host.round_trips == 2


def test_ssh_get_to_refuses_over_the_cap_and_names_a_missing_file(
    sftp_host: SSHTransport, tmp_path: Path
) -> None:
    """Over SFTP as locally: the size the host reports refuses the file before any of it
    is fetched; a missing file is the host's error, not a refusal; the session is fine."""
    source = tmp_path / "junit.xml"
    source.write_bytes(b"z" * 5000)
    out = Pieces()
    with pytest.raises(FileTooLargeError, match=r"junit\.xml is larger than 4999 bytes") as err:
        sftp_host.get_to(str(source), out, limit=4999)
    assert err.value.host == "web1" and out.pieces == []
    with pytest.raises(HostError, match=r"host 'web1': cannot read .*missing\.xml") as missing:
        sftp_host.get_to(str(tmp_path / "missing.xml"), Pieces(), limit=100)
    assert not isinstance(missing.value, FileTooLargeError)
    assert sftp_host.get_to(str(source), Pieces(), limit=5000) == 5000  # the session lives on


class GrowingHandle:
    """An SFTP file as _SFTPReader sees it, which grew after it was opened at ``size``."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at, self.readv_calls = data, 0, 0

    def readv(self, chunks: list[tuple[int, int]]) -> Iterator[bytes]:
        self.readv_calls += 1
        for offset, length in chunks:
            yield self.data[offset : offset + length]

    def seek(self, offset: int) -> None:
        self.at = offset

    def read(self, size: int) -> bytes:
        data = self.data[self.at : self.at + size]
        self.at += len(data)
        return data


def test_the_sftp_reader_batches_up_to_the_opened_size_then_reads_on_to_the_end() -> None:
    """A file that grew after it was opened: batches (readv) up to the size it had, then
    plain reads until the end, so the caller's cap still sees every byte."""
    from orchestrator.transport import _SFTPReader

    handle = GrowingHandle(b"0123456789abcdef")
    reader = _SFTPReader(handle, size=10)
    assert [reader.read(4), reader.read(4), reader.read(4)] == [b"0123", b"4567", b"89"]
    assert handle.readv_calls == 3
    assert [reader.read(4), reader.read(4), reader.read(4)] == [b"abcd", b"ef", b""]
    assert handle.readv_calls == 3
