"""How the control node runs scripts and moves files on a host (testinfra-style).

Three implementations of one small :class:`Transport` protocol:

* :class:`LocalTransport` runs on the control node itself (subprocess, bash);
* :class:`SSHTransport` runs over one reused Fabric connection with *strict* host key
  checking (only our own known_hosts, unknown or changed keys are refused);
* :class:`FakeTransport` records scripts and returns canned results, for unit tests.

Secrets must never show up in ``ps``: the script text and the ``env`` values are streamed
to the host on stdin (``env`` as ``export`` lines in front of the script) and written to a
private temporary file there; the command line only ever holds a fixed wrapper and a
random token. The script runs in its own session (``setsid``) so a timeout kills its whole
process group, not just the top shell. A timeout is not an exception: the :class:`Result`
says ``timed_out`` and carries exit code 124 (the convention of coreutils ``timeout``).

Output is read as it arrives. Without a ``sink`` the :class:`Result` holds all of it (the
short scripts of deploy and teardown); with one (an :class:`OutputSink`, for a layer that
may print hundreds of MiB) every chunk goes to the sink and the :class:`Result` keeps only
the last ``sink.tail_bytes`` of each stream, so the control node's memory stays flat
whatever the script prints. What goes in is streamed too: ``stdin`` may be a binary file
(the deploy's push stream, spooled to disk past a few MiB), read and sent in pieces, so a
1 GB wheelhouse never sits in memory. And what comes back may be streamed: ``get_to``
copies a remote file into a local writer a piece at a time, up to a cap (a layer's JUnit
XML); ``get`` returns a small file whole.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import secrets
import select
import selectors
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from orchestrator import scripts
from orchestrator.exceptions import HostError, InfrastructureError
from orchestrator.files import atomic_write

TIMEOUT_EXIT_CODE = 124
"""Exit code of a script that was killed because it ran out of time."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

STREAMS = ("stdout", "stderr")
"""The names an :class:`OutputSink` receives chunks under."""

_CHUNK = 65536
MIB = 1 << 20
# Input for a script: bytes, or a binary file read from where it stands to its end.
Stdin = bytes | IO[bytes]
_READ_PIECE = 1 << 20

# The only command line a script ever gets (bash -c TEXT readiness-run TOKEN), and the one
# that kills its process group on a timeout (bash -c TEXT readiness-kill TOKEN). Both run
# as command lines, so they are rendered whole, once, from orchestrator/scripts/.
_WRAPPER = scripts.render("transport_run.sh")
_KILL = scripts.render("transport_kill.sh")


@dataclass(frozen=True)
class Result:
    """What one script did on one host."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    host: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def check(self, step: str | None = None) -> Result:
        """Return self if the script succeeded, else raise a HostError carrying the output.

        ``step`` names what the script was doing ("starting the database"); the message
        adds the last lines of its stderr, which is where our scripts explain failures.
        """
        if self.ok:
            return self
        if self.timed_out:
            what = f"timed out after {self.duration_s:.1f}s"
        else:
            what = f"failed with exit code {self.exit_code}"
        if step is None:
            first = self.command.strip().splitlines()[0] if self.command.strip() else ""
            step = f"script {first!r}..."
        tail = " / ".join(line.strip() for line in self.stderr.strip().splitlines()[-3:])
        message = f"{step} {what}" + (f": {tail}" if tail else "")
        raise HostError(self.host or "?", message, stdout=self.stdout, stderr=self.stderr)


@runtime_checkable
class OutputSink(Protocol):
    """Receives a script's output as it arrives, instead of the :class:`Result` holding it.

    ``write`` gets every chunk of ``stdout`` and ``stderr`` (see :data:`STREAMS`) in the
    order the transport read them, from the thread that called ``run``; a chunk may end
    anywhere, even inside a UTF-8 character or a secret. ``tail_bytes`` is how much of
    each stream's end the :class:`Result` still keeps, for :meth:`Result.check`'s message.
    """

    tail_bytes: int

    def write(self, stream: str, data: bytes) -> None: ...


@runtime_checkable
class ByteWriter(Protocol):
    """Where :meth:`Transport.get_to` puts a file's bytes: an open binary file, or anything
    that takes bytes the same way (a writer that scrubs secrets on their way to disk)."""

    def write(self, data: bytes, /) -> object: ...


class FileTooLargeError(HostError):
    """A file to fetch is larger than the caller's cap: it was not read past the cap."""


def too_large(host: str, remote_path: str, limit: int) -> FileTooLargeError:
    cap = f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit} bytes"
    return FileTooLargeError(host, f"{remote_path} is larger than {cap}, the cap on fetching it")


@runtime_checkable
class Transport(Protocol):
    """Run bash scripts and move files on one host."""

    name: str
    # Scripts run and files moved so far: the run record counts them per step.
    round_trips: int

    def run(
        self,
        script: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Stdin | None = None,
        sink: OutputSink | None = None,
    ) -> Result: ...

    def put(self, data: bytes, remote_path: str, mode: int = 0o644) -> None: ...

    def get(self, remote_path: str) -> bytes: ...

    def get_to(self, remote_path: str, out: ByteWriter, limit: int) -> int:
        """Copy a remote file into ``out`` a piece at a time (never whole in memory) and
        return its size. A file larger than ``limit`` bytes is a
        :class:`FileTooLargeError`, raised without reading past the cap (``out`` may have
        had the part before it); one that cannot be read is a :class:`HostError`; what
        ``out.write`` raises (the local disk is full) goes through as it is."""
        ...

    def close(self) -> None: ...


def compose_script(script: str, env: Mapping[str, str] | None) -> str:
    """The text actually streamed to bash: ``export`` lines for ``env``, then the script."""
    lines = []
    for name, value in (env or {}).items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(value)}\n")
    return "".join(lines) + script


def _payload(script: str, env: Mapping[str, str] | None, stdin: Stdin | None) -> Iterator[bytes]:
    """What a host reads on stdin: the script's length, the script, then ``stdin``, as
    pieces (a file is read a MiB at a time, never whole). The script is composed now, so
    a bad ``env`` is an error of the call, not of the thread that sends it."""
    body = compose_script(script, env).encode()
    return itertools.chain([str(len(body)).encode() + b"\n" + body], _pieces(stdin))


def _pieces(stdin: Stdin | None) -> Iterator[bytes]:
    if stdin is None:
        return
    if isinstance(stdin, bytes | bytearray | memoryview):
        yield bytes(stdin)
        return
    while piece := stdin.read(_READ_PIECE):
        yield piece


class _Feeder(threading.Thread):
    """Sends a script's input from its own thread and always ends the input, so the
    script never waits for more. A failure to read the input (not the host closing
    early, which its exit status tells) is kept and raised by :meth:`finish`."""

    def __init__(
        self, send: Callable[[bytes], object], end: Callable[[], object], payload: Iterable[bytes]
    ) -> None:
        super().__init__(daemon=True)
        self.send, self.end, self.payload = send, end, payload
        self.failed: BaseException | None = None

    def run(self) -> None:
        try:
            for piece in self.payload:
                self.send(piece)
        except (OSError, EOFError) as err:
            if not _host_went_away(err):
                self.failed = err
        except Exception as err:  # reading the input failed: not the host's doing
            self.failed = err
        finally:
            with contextlib.suppress(Exception):
                self.end()

    def finish(self, host: str) -> None:
        """Wait for the sending to end (the script has ended, so it ends soon) and raise
        what reading the input failed with."""
        self.join(timeout=10.0)
        if self.failed is not None:
            raise InfrastructureError(
                f"sending the input of a script to {host} failed: "
                f"{type(self.failed).__name__}: {self.failed}"
            ) from self.failed


def _host_went_away(err: BaseException) -> bool:
    """Whether a send failed because the other end closed (the script exited without
    reading all its input), which is the script's outcome, not a failure to send."""
    return isinstance(err, BrokenPipeError | ConnectionError | EOFError | TimeoutError) or (
        isinstance(err, OSError) and err.errno in (errno.EPIPE, errno.ECONNRESET, None)
    )


def _copy_capped(
    host: str,
    remote_path: str,
    read: Callable[[int], bytes],
    out: ByteWriter,
    limit: int,
    piece: int,
) -> int:
    """Copy what ``read`` gives, ``piece`` bytes at a time, into ``out`` until it gives
    nothing; :func:`too_large` as soon as it gave more than ``limit`` bytes (one more
    byte than the cap is all that is ever read to tell). Read errors name the host."""
    total = 0
    while True:
        try:
            data = read(min(piece, limit + 1 - total))
        except (OSError, EOFError) as err:
            raise HostError(host, f"cannot read {remote_path}: {err}") from err
        if not data:
            return total
        total += len(data)
        if total > limit:
            raise too_large(host, remote_path, limit)
        out.write(data)


def _token() -> str:
    return secrets.token_hex(12)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class _Capture:
    """What one run read: every chunk handed to the sink, and what the Result keeps.

    Without a sink everything is kept (as the short scripts of deploy and teardown need);
    with one, only the last ``sink.tail_bytes`` of each stream, trimmed as it grows so
    that memory stays flat.
    """

    def __init__(self, sink: OutputSink | None) -> None:
        self.sink = sink
        self.limit = None if sink is None else max(0, sink.tail_bytes)
        self.kept = {name: bytearray() for name in STREAMS}

    def add(self, stream: str, data: bytes) -> None:
        if not data:
            return
        if self.sink is not None:
            self.sink.write(stream, data)
        kept = self.kept[stream]
        kept += data
        if self.limit is not None and len(kept) > 2 * self.limit + _CHUNK:
            del kept[: len(kept) - self.limit]  # amortised: trimmed once per ~limit bytes

    def text(self, stream: str) -> str:
        kept = self.kept[stream]
        if self.limit is not None and len(kept) > self.limit:
            return _decode(bytes(kept[len(kept) - self.limit :]))
        return _decode(bytes(kept))

    def result(self, script: str, code: int, duration: float, timed_out: bool, host: str) -> Result:
        """The :class:`Result` of the run, with what was kept of its output."""
        return Result(
            script, code, self.text("stdout"), self.text("stderr"), duration, timed_out, host
        )


# --------------------------------------------------------------------------- local


class LocalTransport:
    """Runs scripts on the control node, through the same wrapper as over SSH."""

    def __init__(self, name: str = "local") -> None:
        self.name = name
        self.round_trips = 0

    def run(
        self,
        script: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Stdin | None = None,
        sink: OutputSink | None = None,
    ) -> Result:
        self.round_trips += 1
        token = _token()
        payload = _payload(script, env, stdin)
        capture = _Capture(sink)
        started = time.monotonic()
        proc = subprocess.Popen(
            ["bash", "-c", _WRAPPER, "readiness-run", token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        pipe = proc.stdin
        assert pipe is not None
        writer = _Feeder(pipe.write, pipe.close, payload)
        try:
            writer.start()
            deadline = None if timeout is None else started + timeout
            # The output may end before the script does (it closed or redirected its
            # streams): the script still has until the deadline.
            timed_out = not (_drain(proc, capture, deadline) and _exited(proc, deadline))
            if timed_out:
                subprocess.run(["bash", "-c", _KILL, "readiness-kill", token], check=False)
                _drain(proc, capture, time.monotonic() + 2.0)
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            if proc.poll() is None:  # an exception on the way (Ctrl-C, a failing sink)
                proc.kill()
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        writer.finish(self.name)
        duration = time.monotonic() - started
        code = TIMEOUT_EXIT_CODE if timed_out else proc.returncode
        return capture.result(script, code, duration, timed_out, self.name)

    def put(self, data: bytes, remote_path: str, mode: int = 0o644) -> None:
        self.round_trips += 1
        try:
            atomic_write(Path(remote_path), data, mode=mode)
        except OSError as err:
            raise HostError(self.name, f"cannot write {remote_path}: {err}") from err

    def get(self, remote_path: str) -> bytes:
        self.round_trips += 1
        try:
            return Path(remote_path).read_bytes()
        except OSError as err:
            raise HostError(self.name, f"cannot read {remote_path}: {err}") from err

    def get_to(self, remote_path: str, out: ByteWriter, limit: int) -> int:
        self.round_trips += 1
        try:
            handle = open(remote_path, "rb", buffering=0)  # noqa: SIM115 (closed below)
            size = os.fstat(handle.fileno()).st_size
        except OSError as err:
            raise HostError(self.name, f"cannot read {remote_path}: {err}") from err
        with handle:
            if size > limit:  # say so at once, without reading it
                raise too_large(self.name, remote_path, limit)
            return _copy_capped(self.name, remote_path, handle.read, out, limit, _GET_PIECE)

    def close(self) -> None:
        return None

    def __enter__(self) -> LocalTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _exited(proc: subprocess.Popen[bytes], deadline: float | None) -> bool:
    """Wait for the process to exit, until the deadline (-> False)."""
    try:
        proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


def _drain(proc: subprocess.Popen[bytes], capture: _Capture, deadline: float | None) -> bool:
    """Read stdout/stderr as it comes until both end, or until the deadline (-> False).

    As over SSH: once the script has exited, a process it left running that still holds
    its output open gets one second, not the rest of the timeout.
    """
    streams = {proc.stdout: "stdout", proc.stderr: "stderr"}
    with selectors.DefaultSelector() as selector:
        for pipe, name in streams.items():
            if pipe is not None:
                selector.register(pipe, selectors.EVENT_READ, name)
        exited_at: float | None = None
        while selector.get_map():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            if proc.poll() is not None:
                exited_at = exited_at or now
                if now - exited_at > 1.0:
                    return True
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
            for key, _ in selector.select(wait):
                data = os.read(key.fd, _CHUNK)
                if data:
                    capture.add(key.data, data)
                else:
                    selector.unregister(key.fileobj)
    return True


# --------------------------------------------------------------------------- ssh


def _reject_policy() -> Any:
    import paramiko

    class _RejectUnknown(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
        """Refuse hosts whose key is not pinned (Fabric's default would add them)."""

        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            raise _UnknownHostKey(hostname, key.get_name())

    return _RejectUnknown()


class _UnknownHostKey(Exception):
    def __init__(self, hostname: str, key_type: str) -> None:
        super().__init__(hostname, key_type)
        self.hostname = hostname
        self.key_type = key_type


class SSHTransport:
    """Runs scripts over one Fabric connection with strict host key checking.

    Only ``known_hosts`` is trusted (never ``~/.ssh/known_hosts``), only ``key_file`` is
    offered (no agent, no ``~/.ssh`` keys, no ssh_config files). The connection opens
    lazily on first use and is reused by every later call. Two threads may run scripts
    at once (a host's database starting while its code streams): each run is a channel
    of its own, and opening the connection is serialised.
    """

    def __init__(
        self,
        name: str,
        address: str,
        *,
        key_file: str | os.PathLike[str],
        known_hosts: str | os.PathLike[str],
        user: str = "root",
        port: int = 22,
        connect_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.address = address
        self.user = user
        self.port = port
        self.key_file = str(key_file)
        self.known_hosts = str(known_hosts)
        self.connect_timeout = connect_timeout
        self._conn: Any = None
        self._opening = threading.Lock()
        self.round_trips = 0

    # -- connection

    def _where(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"

    def connect(self) -> None:
        """Open the connection now (it otherwise opens on first use)."""
        with self._opening:
            self._connect()

    def _connect(self) -> None:
        if self._conn is not None and self._conn.is_connected:
            return
        import paramiko
        from fabric import Config, Connection

        config = Config(ssh_config=paramiko.SSHConfig(), overrides={"load_ssh_configs": False})
        conn = Connection(
            self.address,
            user=self.user,
            port=self.port,
            config=config,
            connect_timeout=max(1, round(self.connect_timeout)),
            connect_kwargs={
                "key_filename": [self.key_file],
                "look_for_keys": False,
                "allow_agent": False,
                "banner_timeout": self.connect_timeout,
                "auth_timeout": self.connect_timeout,
            },
        )
        conn.client.set_missing_host_key_policy(_reject_policy())
        host_keys = conn.client.get_host_keys()
        try:
            host_keys.load(self.known_hosts)
        except OSError as err:
            raise HostError(
                self.name, f"cannot read known_hosts {self.known_hosts}: {err}"
            ) from err
        try:
            conn.open()
        except _UnknownHostKey as err:
            conn.close()
            raise HostError(
                self.name,
                f"refusing to connect to {self._where()}: its {err.key_type} host key is not "
                f"pinned in {self.known_hosts} (strict host key checking)",
            ) from None
        except paramiko.BadHostKeyException as err:
            # Also raised when the host is pinned with keys of other types only.
            conn.close()
            raise self._mismatch(err.key, err.expected_key) from None
        except paramiko.AuthenticationException as err:
            conn.close()
            raise HostError(
                self.name, f"authentication as {self.user} with {self.key_file} failed: {err}"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as err:
            conn.close()
            reason = str(err) or type(err).__name__
            raise HostError(self.name, f"cannot connect to {self._where()}: {reason}") from None
        _detect_dead_peers(conn.client.get_transport())
        _send_at_once(conn.client.get_transport())
        self._conn = conn

    def _mismatch(self, key: Any, pinned: Any) -> HostError:
        """The host is pinned, and what answers presents another key: most often another
        sshd on that address (a leftover lab, an impostor), so the message says that first
        and not just "cannot connect"."""
        return HostError(
            self.name,
            f"refusing to connect to {self._where()}: host key of {self.name} does not match "
            f"{self.known_hosts}; another sshd answers on that address? (host key MISMATCH: "
            f"it presented {key.get_name()} SHA256:{_fingerprint(key)}, the pinned key is "
            f"{pinned.get_name()} SHA256:{_fingerprint(pinned)}; if the host was recreated, "
            "refresh known_hosts, e.g. with `invoke lab.up`)",
        )

    def close(self) -> None:
        with self._opening:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SSHTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self, command: str) -> Any:
        self.connect()
        conn = self._conn
        try:
            chan = conn.transport.open_session(timeout=self.connect_timeout)
            chan.exec_command(command)
        except Exception as err:
            # The connection is shared (a host's database and code deploy at once): it is
            # closed only when it is gone, not when one channel was refused.
            if conn is None or conn.transport is None or not conn.transport.is_active():
                self.close()
                raise HostError(
                    self.name, f"lost the connection to {self._where()}: {err}"
                ) from err
            raise HostError(self.name, f"the host refused a session: {err}") from err
        return chan

    # -- run

    def run(
        self,
        script: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Stdin | None = None,
        sink: OutputSink | None = None,
    ) -> Result:
        self.round_trips += 1
        token = _token()
        payload = _payload(script, env, stdin)
        capture = _Capture(sink)
        started = time.monotonic()
        chan = self._session(f"bash -c {shlex.quote(_WRAPPER)} readiness-run {token}")
        writer = _Feeder(_sender(chan), chan.shutdown_write, payload)
        writer.start()
        deadline = None if timeout is None else started + timeout
        timed_out = not _collect(chan, deadline, capture)
        if timed_out:
            self._kill(token)
            _collect(chan, time.monotonic() + 2.0, capture)
            code = TIMEOUT_EXIT_CODE
        else:
            code = chan.recv_exit_status() if chan.exit_status_ready() else -1
            if code == -1:
                # The session ended without an exit status: sshd or the link went away.
                chan.close()
                self.close()
                raise HostError(
                    self.name,
                    f"connection to {self._where()} closed without an exit status",
                    stdout=capture.text("stdout"),
                    stderr=capture.text("stderr"),
                )
        chan.close()
        writer.finish(self.name)
        duration = time.monotonic() - started
        return capture.result(script, code, duration, timed_out, self.name)

    def _kill(self, token: str) -> None:
        try:
            chan = self._session(f"bash -c {shlex.quote(_KILL)} readiness-kill {token}")
            chan.shutdown_write()
            chan.status_event.wait(5.0)
            chan.close()
        except HostError:
            pass  # the host is gone; the caller sees timed_out either way

    # -- files

    def _sftp(self) -> Any:
        self.connect()
        try:
            return self._conn.sftp()
        except Exception as err:
            raise HostError(self.name, f"cannot open SFTP on {self._where()}: {err}") from err

    def put(self, data: bytes, remote_path: str, mode: int = 0o644) -> None:
        self.round_trips += 1
        sftp = self._sftp()
        tmp = f"{remote_path}.readiness-{_token()}"
        try:
            with sftp.open(tmp, "wb") as handle:
                handle.write(data)
            sftp.chmod(tmp, mode)
            sftp.posix_rename(tmp, remote_path)
        except OSError as err:
            with contextlib.suppress(OSError):
                sftp.remove(tmp)
            raise HostError(self.name, f"cannot write {remote_path}: {err}") from err

    def get(self, remote_path: str) -> bytes:
        self.round_trips += 1
        sftp = self._sftp()
        try:
            with sftp.open(remote_path, "rb") as handle:
                handle.prefetch()
                data: bytes = handle.read()
        except OSError as err:
            raise HostError(self.name, f"cannot read {remote_path}: {err}") from err
        return data

    def get_to(self, remote_path: str, out: ByteWriter, limit: int) -> int:
        self.round_trips += 1
        sftp = self._sftp()
        try:
            handle = sftp.open(remote_path, "rb")
        except (OSError, EOFError) as err:
            raise HostError(self.name, f"cannot read {remote_path}: {err}") from err
        with handle:
            try:
                size = handle.stat().st_size
            except (OSError, EOFError) as err:
                raise HostError(self.name, f"cannot read {remote_path}: {err}") from err
            if size > limit:  # say so at once, without fetching it
                raise too_large(self.name, remote_path, limit)
            reader = _SFTPReader(handle, size)
            return _copy_capped(self.name, remote_path, reader.read, out, limit, _SFTP_BATCH)


# What the local transport reads of a file at a time.
_GET_PIECE = MIB
# What one batch of SFTP reads asks for: its 32 KiB requests go out at once (one round
# trip per batch, not per 32 KiB), and a batch is all of the file ever in memory.
_SFTP_BATCH = 4 * MIB


class _SFTPReader:
    """An SFTP file read in order, a batch of pipelined requests (``readv``) at a time.

    Not paramiko's ``prefetch()`` of the whole file, as :meth:`SSHTransport.get` does:
    it asks for every block at once and holds each until it is read, so a file coming in
    faster than it is written out (scrubbed, to disk) would sit in memory whole. Reads
    end at the size the file had when it was opened; past it (a file still growing)
    plain reads go on until the end of the file, or the caller's cap.
    """

    def __init__(self, handle: Any, size: int) -> None:
        self.handle, self.size, self.offset = handle, size, 0

    def read(self, size: int) -> bytes:
        if self.offset < self.size:
            wanted = min(size, self.size - self.offset)
            data = b"".join(self.handle.readv([(self.offset, wanted)]))
        else:
            self.handle.seek(self.offset)
            data = self.handle.read(size)
        self.offset += len(data)
        return bytes(data)


def _fingerprint(key: Any) -> str:
    """A key's SHA256 fingerprint as OpenSSH prints it (what ``ssh-keygen -lf`` shows)."""
    import base64
    import hashlib

    digest = hashlib.sha256(key.asbytes()).digest()
    return base64.b64encode(digest).decode().rstrip("=")


# How long data sent to a host may stay unacknowledged before the connection is dead.
USER_TIMEOUT_MS = 30_000


def _detect_dead_peers(transport: Any) -> None:
    """A host that vanishes without a reset must not hang a layer until its timeout.

    TCP keepalive probes after 10 s of silence, every 5 s, 3 times: a dead peer closes
    the connection within ~25 s, the channel sees it, and the call fails with a
    HostError instead of waiting for a timeout that may be hours away. Keepalive covers
    an idle connection only: when the host vanishes with data of ours in flight (SSH's
    window adjustments while a layer prints), TCP retransmits for ~15 minutes
    (tcp_retries2) unless ``TCP_USER_TIMEOUT`` bounds how long sent data may stay
    unacknowledged: 30 s, the same order as the keepalive's.
    """
    import socket

    sock = getattr(transport, "sock", None)
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
    except (OSError, AttributeError):
        pass  # not a TCP socket (a proxy command): keep the default behaviour


def _send_at_once(transport: Any) -> None:
    """Every script is a few small SSH messages each way (open a channel, exec, the
    script, EOF), and with Nagle's algorithm the second small write waits for the ACK of
    the first, which the host delays by up to 40 ms: measured on the lab, a round trip
    took 61 ms with it and 18 ms without (a warm single run makes about 20). OpenSSH sets
    ``TCP_NODELAY`` for the same reason; bulk pushes fill whole segments either way."""
    import socket

    sock = getattr(transport, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket: a proxy command
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# What one call of paramiko's sendall is given. Its loop re-slices what is left after
# every 32 KiB packet (`s = s[sent:]`), which copies the rest each time: one call with a
# 40 MB stream copied gigabytes and ran at 3 MB/s. Small pieces keep that copying small.
_SEND_PIECE = 128 * 1024


def _sender(chan: Any) -> Callable[[bytes], None]:
    """Send a piece on a channel, as paramiko's sendall can take it cheaply."""

    def send(piece: bytes) -> None:
        view = memoryview(piece)
        for start in range(0, len(view), _SEND_PIECE):
            chan.sendall(bytes(view[start : start + _SEND_PIECE]))

    return send


def _collect(chan: Any, deadline: float | None, capture: _Capture) -> bool:
    """Read stdout/stderr until EOF and exit status, or until the deadline (-> False)."""

    def read() -> None:
        while chan.recv_ready():
            capture.add("stdout", chan.recv(_CHUNK))
        while chan.recv_stderr_ready():
            capture.add("stderr", chan.recv_stderr(_CHUNK))

    exited_at: float | None = None
    while True:
        read()
        now = time.monotonic()
        if chan.exit_status_ready():
            if chan.eof_received or chan.closed:
                read()  # what arrived with the EOF, after the reads above
                return True
            # Exited, but something the script left running still holds its output open.
            exited_at = exited_at or now
            if now - exited_at > 1.0:
                read()
                return True
        elif chan.closed:
            read()
            return True
        if deadline is not None and now >= deadline:
            return False
        wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - now))
        if chan.eof_received:
            chan.status_event.wait(wait)
        else:
            select.select([chan], [], [], wait)


# --------------------------------------------------------------------------- fake


@dataclass(frozen=True)
class FakeCall:
    """One script a FakeTransport was asked to run."""

    script: str
    env: Mapping[str, str]
    stdin: bytes | None  # a file given as stdin is kept as the bytes it held
    timeout: float | None
    sink: OutputSink | None = None


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    chunk_size: int


@dataclass
class FakeTransport:
    """A transport for unit tests: records scripts, answers by regex, keeps files in memory.

    Rules added later win over earlier ones, so a test can override a default. A script no
    rule matches succeeds with empty output. Given a sink, the fake hands it the output in
    chunks of the rule's ``chunk_size`` bytes (stdout, then stderr) and keeps only the
    tail, as the real transports do.
    """

    name: str = "fake"
    files: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    calls: list[FakeCall] = field(default_factory=list)
    closed: bool = False
    round_trips: int = 0
    # The pieces :meth:`get_to` writes a file in (a test may cut a secret in two).
    get_chunk: int = _CHUNK
    _rules: list[_Rule] = field(default_factory=list)

    def on(
        self,
        pattern: str,
        *,
        exit_code: int = 0,
        stdout: str = "",
        stderr: str = "",
        timed_out: bool = False,
        chunk_size: int = _CHUNK,
    ) -> FakeTransport:
        """Answer scripts matching ``pattern`` (re.search) with this result."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        rule = _Rule(re.compile(pattern), exit_code, stdout, stderr, timed_out, chunk_size)
        self._rules.insert(0, rule)
        return self

    @property
    def scripts(self) -> list[str]:
        return [call.script for call in self.calls]

    def run(
        self,
        script: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: Stdin | None = None,
        sink: OutputSink | None = None,
    ) -> Result:
        self.round_trips += 1
        compose_script("", env)  # same validation of env names as the real transports
        data = stdin if stdin is None or isinstance(stdin, bytes) else bytes(stdin.read())
        self.calls.append(FakeCall(script, dict(env or {}), data, timeout, sink))
        rule = next((r for r in self._rules if r.pattern.search(script)), None)
        if rule is None:
            rule = _Rule(re.compile(""), 0, "", "", False, _CHUNK)
        capture = _Capture(sink)
        for stream, text in zip(STREAMS, (rule.stdout, rule.stderr), strict=True):
            data = text.encode()
            for at in range(0, len(data), rule.chunk_size):
                capture.add(stream, data[at : at + rule.chunk_size])
        code = TIMEOUT_EXIT_CODE if rule.timed_out else rule.exit_code
        if sink is None:  # exactly the rule's text, as tests wrote it
            return Result(script, code, rule.stdout, rule.stderr, 0.0, rule.timed_out, self.name)
        return Result(
            script,
            code,
            capture.text("stdout"),
            capture.text("stderr"),
            0.0,
            rule.timed_out,
            self.name,
        )

    def put(self, data: bytes, remote_path: str, mode: int = 0o644) -> None:
        self.round_trips += 1
        self.files[remote_path] = bytes(data)
        self.modes[remote_path] = mode

    def get(self, remote_path: str) -> bytes:
        self.round_trips += 1
        try:
            return self.files[remote_path]
        except KeyError:
            raise HostError(self.name, f"cannot read {remote_path}: no such file") from None

    def get_to(self, remote_path: str, out: ByteWriter, limit: int) -> int:
        """What :meth:`get` gives (so a test's ``get`` serves both), written to ``out`` in
        pieces of ``get_chunk`` bytes, or :func:`too_large` before any of it."""
        data = self.get(remote_path)
        if len(data) > limit:
            raise too_large(self.name, remote_path, limit)
        for at in range(0, len(data), self.get_chunk):
            out.write(data[at : at + self.get_chunk])
        return len(data)

    def close(self) -> None:
        self.closed = True
