"""The remote scripts: linted as rendered, and run for real against local processes."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import jinja2
import pytest

from orchestrator.components.appserver import (
    SERVER_FAILED_EXIT,
    DjangoServer,
    client_environment,
    stop_script,
)
from orchestrator.deploy import stray_kill_script
from orchestrator.layers import layer_script
from orchestrator.layout import MARKER_VAR, Layout
from orchestrator.scripts import Shell, heredoc, render, shell_word, words
from orchestrator.scripts.check import check
from orchestrator.suite import Layer
from orchestrator.transport import LocalTransport

# Every character the shell treats specially, for values that must arrive literally.
HOSTILE = 'it\'s a "$(id)" `id` $HOME; * \\ dir'

LIB = render("lib.sh")


def bash(script: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script, "test", *args], capture_output=True, text=True, timeout=timeout
    )


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


@pytest.fixture
def group() -> Iterator[subprocess.Popen[bytes]]:
    """A process group of three: a bash leader and two sleeping children."""
    proc = subprocess.Popen(["bash", "-c", "sleep 60 & sleep 60 & wait"], start_new_session=True)
    deadline = time.monotonic() + 5
    while len(group_members(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    yield proc
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# --------------------------------------------------------------------------- lint


def test_every_rendered_script_passes_bash_n_and_shellcheck() -> None:
    findings = check()
    assert findings == [], "\n".join(map(str, findings))


# --------------------------------------------------------------------------- lib.sh


def test_stop_processes_stops_a_whole_process_group(group: subprocess.Popen[bytes]) -> None:
    started = time.monotonic()
    done = bash(LIB + 'stop_processes 50 "-$1"', str(group.pid))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 3  # TERM was enough: no waiting for the deadline
    group.wait(timeout=5)
    assert group_members(group.pid) == []


def test_a_group_ignoring_term_is_killed_after_the_wait() -> None:
    proc = subprocess.Popen(
        ["bash", "-c", "trap '' TERM; sleep 60 & sleep 60 & wait"], start_new_session=True
    )
    try:
        time.sleep(0.2)
        started = time.monotonic()
        done = bash(LIB + 'stop_processes 5 "-$1"', str(proc.pid))
        elapsed = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        assert 0.5 <= elapsed < 3
        proc.wait(timeout=5)
        assert group_members(proc.pid) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_stop_processes_is_safe_under_set_e_with_gone_or_bogus_targets() -> None:
    done = bash("set -eu\n" + LIB + "stop_processes 1 999999999 -999999999 '' x1\necho after")
    assert (done.returncode, done.stdout) == (0, "after\n"), done.stderr


def test_a_timeout_kill_never_signals_a_process_that_leads_no_group(tmp_path: Path) -> None:
    """The wrapper's pid leads its group; if the group is gone, the pid file names at most
    a stranger that reused the number, who must be left alone."""
    from orchestrator.transport import _KILL

    stranger = subprocess.Popen(["sleep", "30"])  # in pytest's group, leads none
    try:
        run_dir = tmp_path / "readiness-run.tok1"
        run_dir.mkdir()
        (run_dir / "pid").write_text(f"{stranger.pid}\n")
        env = {**os.environ, "TMPDIR": str(tmp_path)}
        subprocess.run(["bash", "-c", _KILL, "readiness-kill", "tok1"], env=env, timeout=30)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_alive_does_not_count_a_zombie_that_kill_0_still_sees() -> None:
    # The background sleep's parent becomes `sleep 30` (exec), which never reaps it. It
    # outlives the exec by far: one that ended first would be reaped by bash itself.
    proc = subprocess.Popen(
        ["bash", "-c", "sleep 0.5 & echo $!; exec sleep 30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        deadline = time.monotonic() + 5
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.01)
        probe = LIB + 'alive "$1" && echo alive; kill -0 "$1" && echo signalable; true'
        assert bash(probe, str(child)).stdout == "signalable\n"
        assert bash(probe, str(proc.pid)).stdout == "alive\nsignalable\n"
    finally:
        proc.kill()
        proc.wait()


def test_stop_pidfile_signals_only_a_process_whose_command_line_is_ours(
    tmp_path: Path, group: subprocess.Popen[bytes]
) -> None:
    pidfile = tmp_path / "server.pid"
    pidfile.write_text(f"{group.pid}\n")
    script = LIB + 'stop_pidfile "$1" "$2" 10 && echo stopped || echo left'
    # The leader's command line is "bash -c sleep 60 & ...": not a process of this mark.
    assert bash(script, str(pidfile), "/not/ours/").stdout == "left\n"
    assert len(group_members(group.pid)) == 3
    assert bash(script, str(pidfile), "sleep 60 &").stdout == "stopped\n"
    group.wait(timeout=5)
    assert group_members(group.pid) == []


# --------------------------------------------------------------------------- values


def test_hostile_values_arrive_as_one_literal_argument_each() -> None:
    values = {"ONE": HOSTILE, "TWO": f"two\nlines {HOSTILE}", "EMPTY": ""}
    layout = Layout(f"/srv/{HOSTILE}")
    env = client_environment(layout, f"/v/{HOSTILE}", values)
    done = bash(env + 'printf "%s|" "$#" "$ONE" "$TWO" "$EMPTY" "$READINESS_DEPLOY_ROOT"')
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"0|{HOSTILE}|two\nlines {HOSTILE}||/srv/{HOSTILE}|"


def test_values_are_quoted_by_construction_and_odd_ones_refused() -> None:
    assert shell_word("a b") == "'a b'" and shell_word(3307) == "3307"
    assert shell_word(Shell("$HOME")) == "$HOME"
    for wrong in (None, True, ["a", "b"], 1.5):
        with pytest.raises(TypeError):
            shell_word(wrong)
    assert words(["a b", "c", 7]) == Shell("'a b' c 7")
    with pytest.raises(TypeError):
        words("ab")
    with pytest.raises(jinja2.UndefinedError):
        render("server_stop.sh")
    with pytest.raises(ValueError, match="end marker"):
        heredoc("SELECT 1;\nEOF\nrm -rf /\n", "EOF")
    assert heredoc("a\nb\n", "EOF") == Shell("a\nb")


# --------------------------------------------------------------------------- the server

FAKE_MANAGE = """\
import http.server, sys
args = sys.argv[1:]
host, port = args[args.index("--addrport") + 1].rsplit(":", 1)
print("fixtures:", args[1 : args.index("--addrport")], flush=True)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")


http.server.HTTPServer((host, int(port)), Health).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[DjangoServer]:
    """A deploy root with a hostile name holding a fake Django (stdlib HTTP) and a venv."""
    layout = Layout(str(tmp_path / HOSTILE.replace("/", "-")))
    venv = layout.venv("v1")
    Path(layout.app).mkdir(parents=True)
    Path(layout.app, "manage.py").write_text(FAKE_MANAGE)
    Path(layout.etc).mkdir()
    Path(layout.secrets).write_text("READINESS_SECRET_KEY='s3cret'\n")
    Path(venv, "bin").mkdir(parents=True)
    Path(venv, "bin", "python").symlink_to(sys.executable)
    spec = DjangoServer(
        layout, venv, "testserver", "127.0.0.1", free_port(), ("a b.json",), "/api/health", {}
    )
    yield spec
    LocalTransport().run(stop_script(layout), timeout=30)
    LocalTransport().run(stray_kill_script(layout), timeout=30)  # and its cgroup


def test_the_server_starts_healthy_restarts_and_stops(deployed: DjangoServer) -> None:
    local = LocalTransport()
    pidfile = Path(deployed.layout.run, "server.pid")
    first = local.run(deployed.start_script(), timeout=60)
    assert first.ok, first.stderr
    assert f"server healthy at {deployed.url}" in first.stdout
    assert "fixtures: ['a b.json']" in Path(deployed.layout.run, "server.log").read_text()
    old = int(pidfile.read_text())
    again = local.run(deployed.start_script(), timeout=60)
    assert again.ok and "readiness: server stopped" in again.stdout, again.stderr
    assert not running(old)
    new = int(pidfile.read_text())
    stopped = local.run(stop_script(deployed.layout), timeout=30)
    assert stopped.ok and "readiness: server stopped" in stopped.stdout
    assert not running(new) and not pidfile.exists()
    assert local.run(stop_script(deployed.layout), timeout=30).stdout == ""  # idempotent


def test_a_testserver_without_fixtures_gets_an_empty_one(deployed: DjangoServer) -> None:
    """manage.py testserver needs a fixture; a project without any gets '[]' from us."""
    spec = replace(deployed, fixtures=())
    result = LocalTransport().run(spec.start_script(), timeout=60)
    assert result.ok, result.stderr
    empty = Path(spec.layout.run, "readiness-empty.json")
    assert empty.read_text() == "[]\n"
    assert f"fixtures: [{str(empty)!r}]" in Path(spec.layout.run, "server.log").read_text()


def test_the_users_python_variables_do_not_reach_readinesss_own_helpers(
    deployed: DjangoServer,
) -> None:
    """application.env is for the application: PYTHONINSPECT used to make the port check
    (a here-document on the venv's python) fail, so no server ever started."""
    spec = replace(deployed, env={"PYTHONINSPECT": "1", "PYTHONSTARTUP": "/nonexistent"})
    result = LocalTransport().run(spec.start_script(), timeout=60)
    assert result.ok, result.stderr
    assert f"server healthy at {spec.url}" in result.stdout
    server = int(Path(spec.layout.run, "server.pid").read_text())
    environ = Path(f"/proc/{server}/environ").read_bytes().split(b"\0")
    assert b"PYTHONINSPECT=1" in environ  # while the application still gets them


def test_a_busy_port_fails_the_start_with_its_exit_code(deployed: DjangoServer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", deployed.port))
        busy.listen()
        result = LocalTransport().run(deployed.start_script(), timeout=60)
    assert result.exit_code == SERVER_FAILED_EXIT
    assert f"port {deployed.port} on 127.0.0.1 is already in use" in result.stderr


def test_stray_kill_stops_only_processes_carrying_this_roots_marker(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "root"))
    ours = subprocess.Popen(
        ["sleep", "60"], env={**os.environ, MARKER_VAR: layout.root}, start_new_session=True
    )
    other = subprocess.Popen(["sleep", "60"], env={**os.environ, MARKER_VAR: layout.root + "2"})
    try:
        result = LocalTransport().run(stray_kill_script(layout), timeout=30)
        assert result.ok, result.stderr
        assert f"stopped stray processes: {ours.pid}" in result.stdout
        assert ours.wait(timeout=5) == -signal.SIGTERM
        assert other.poll() is None
    finally:
        for proc in (ours, other):
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- cgroups


def cgroup_of(layout: Layout) -> Path:
    """The deploy root's cgroup as lib.sh names it; fails (not skips) without cgroup v2."""
    found = bash(LIB + 'deploy_cgroup "$1"', layout.root)
    assert found.returncode == 0, "no cgroup v2 mounted here: the cgroup tests need one"
    return Path(found.stdout.strip())


def test_a_layer_process_that_escapes_session_and_marker_is_stopped(tmp_path: Path) -> None:
    """`setsid env -i sleep 60 &` in a layer: no marker, its own session; its cgroup
    still holds it, and the stray kill stops it and removes the cgroup."""
    layout = Layout(str(tmp_path / HOSTILE.replace("/", "-")))
    Path(layout.client).mkdir(parents=True)
    pidfile = tmp_path / "escaped.pid"
    layer = Layer(
        "escape", "client", f"setsid env -i sleep 60 & echo $! > {pidfile}", (), 60, "stop"
    )
    script = layer_script(
        layer, layout, venv=layout.venv("v1"), junit_path=f"{tmp_path}/j.xml", base_url=None, env={}
    )
    cgroup = cgroup_of(layout)
    escaped = 0
    try:
        ran = LocalTransport().run(script, timeout=30)
        assert ran.ok, ran.stderr
        escaped = int(pidfile.read_text())
        assert running(escaped)
        assert Path(f"/proc/{escaped}/environ").read_bytes() == b""  # no marker to find
        assert os.getsid(escaped) == escaped  # nor a process group of ours
        assert str(escaped) in (cgroup / "cgroup.procs").read_text().split()
        result = LocalTransport().run(stray_kill_script(layout), timeout=30)
        assert result.ok, result.stderr
        assert f"looking for strays by marker and in cgroup {cgroup}" in result.stdout
        assert f"stopped stray processes: {escaped}" in result.stdout
        assert not running(escaped)
        assert not cgroup.exists()
    finally:
        if escaped and running(escaped):
            os.kill(escaped, signal.SIGKILL)
        if cgroup.exists():
            LocalTransport().run(LIB + f"clear_cgroup {shlex.quote(str(cgroup))}", timeout=30)


# Runs "$1" in a mount namespace of its own where no cgroup v2 is mounted any more.
WITHOUT_CGROUP2 = """
awk '$0 ~ / - cgroup2 / {print $5}' /proc/self/mountinfo | while read -r m; do umount -l "$m"; done
exec bash -c "$1"
"""


def test_without_cgroup_v2_the_stray_kill_says_it_used_the_marker_only(tmp_path: Path) -> None:
    """A host without cgroup v2: the layer runs all the same, teardown uses the marker."""
    layout = Layout(str(tmp_path / "root"))
    Path(layout.client).mkdir(parents=True)
    layer = Layer("plain", "client", "echo layer ran", (), 60, "stop")
    script = layer_script(
        layer, layout, venv=layout.venv("v1"), junit_path=f"{tmp_path}/j.xml", base_url=None, env={}
    )
    ours = subprocess.Popen(
        ["sleep", "60"], env={**os.environ, MARKER_VAR: layout.root}, start_new_session=True
    )
    try:
        teardown = f"{script}\n{stray_kill_script(layout)}"
        isolated = ["unshare", "--mount", "--propagation", "private", "bash", "-c"]
        done = subprocess.run(
            [*isolated, WITHOUT_CGROUP2, "-", teardown],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(
            "layer ran\nreadiness: looking for strays by marker only (no cgroup v2 on this host)\n"
        )
        assert f"stopped stray processes: {ours.pid}" in done.stdout
        assert ours.wait(timeout=5) == -signal.SIGTERM
    finally:
        ours.kill()
        ours.wait()
