"""Result, FakeTransport, and LocalTransport for real (it is local and fast)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from orchestrator.exceptions import HostError
from orchestrator.transport import (
    TIMEOUT_EXIT_CODE,
    FakeTransport,
    LocalTransport,
    Result,
    SSHTransport,
    Transport,
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
