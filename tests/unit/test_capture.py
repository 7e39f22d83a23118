"""The evidence window of one layer on one host: the parsers on real tcpdump lines, and
the rendered open/close scripts run for real, as root, around a linger-0 reset.

The fixture lines were printed by tcpdump 4.99.3 (libpcap 1.10.3, kernel 6.18) with the
options the window uses (``-i any -nn -tt -l -s 96``), except ``VETH_NO_IFACE``, which
was captured with ``-i capxveth``: a capture on one interface prints no interface or
direction. What loopback shows, found with these captures: **each RST once**, as
``lo In``. The kernel hands the 'any' socket both copies ("2 packets received by filter"
per RST in tcpdump's counts), and libpcap drops the outgoing copy on loopback; so an
all-on-one host shows every RST once, with direction In, and only the source port tells
the sending side. Across a veth the sender shows ``eth0 Out`` and the receiver ``In``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import capture, counters, deploy, scripts
from orchestrator.evidence import Rst
from orchestrator.exceptions import HostError
from orchestrator.layout import Layout
from orchestrator.transport import LocalTransport

# SO_LINGER {1,0} close of an accepted connection, 127.0.0.1, all-on-one (seen once).
LO_LINGER = (
    "1795763340.786114 lo    In  IP 127.0.0.1.33023 > 127.0.0.1.42946: Flags [R.], "
    "seq 1227667647, ack 2837465552, win 64, "
    "options [nop,nop,TS val 4020528463 ecr 2955632140], length 0"
)
# The same over ::1.
LO_LINGER_V6 = (
    "1795763341.086421 lo    In  IP6 ::1.53949 > ::1.47160: Flags [R.], "
    "seq 458920355, ack 3049968648, win 64, "
    "options [nop,nop,TS val 2280240501 ecr 3706285836], length 0"
)
# The kernel's answer to an ACK segment sent to a closed port: no ACK flag, seq = its ack.
LO_BARE = (
    "1795763341.371959 lo    In  IP 127.0.0.1.9 > 127.0.0.1.5555: Flags [R], seq 424242, "
    "win 0, length 0"
)
# A refused connect (nothing listens on port 9).
LO_REFUSED = (
    "1795763341.548811 lo    In  IP 127.0.0.1.9 > 127.0.0.1.37694: Flags [R.], "
    "seq 0, ack 181806242, win 0, length 0"
)
# A linger-0 reset between two namespaces: the server's side, then the client's side.
VETH_OUT = (
    "1795763347.404383 eth0  Out IP 10.254.77.2.8000 > 10.254.77.1.33996: Flags [R.], "
    "seq 3887480288, ack 1319625630, win 64, "
    "options [nop,nop,TS val 3180294837 ecr 380128258], length 0"
)
VETH_IN = (
    "1795763353.358789 capxveth In  IP 10.254.77.2.8000 > 10.254.77.1.34006: Flags [R.], "
    "seq 26385275, ack 3563978284, win 64, "
    "options [nop,nop,TS val 2272698709 ecr 3307332267], length 0"
)
VETH_NO_IFACE = (
    "1795763347.404395 IP 10.254.77.2.8000 > 10.254.77.1.33996: Flags [R.], "
    "seq 3887480288, ack 1319625630, win 64, "
    "options [nop,nop,TS val 3180294837 ecr 380128258], length 0"
)


def test_a_linger_zero_reset_on_loopback() -> None:
    assert capture.parse_rst_line(LO_LINGER, "h1") == Rst(
        host="h1",
        at=1795763340.786114,
        src="127.0.0.1:33023",
        dst="127.0.0.1:42946",
        iface="lo",
        direction="In",
        seq=1227667647,
        ack=2837465552,
        win=64,
    )


def test_ipv6_addresses_are_bracketed() -> None:
    rst = capture.parse_rst_line(LO_LINGER_V6, "h1")
    assert rst is not None
    assert (rst.src, rst.dst, rst.iface, rst.direction) == (
        "[::1]:53949",
        "[::1]:47160",
        "lo",
        "In",
    )


def test_a_reset_without_ack_has_no_ack() -> None:
    rst = capture.parse_rst_line(LO_BARE, "h2")
    assert rst is not None
    assert (rst.src, rst.dst, rst.seq, rst.ack, rst.win) == (
        "127.0.0.1:9",
        "127.0.0.1:5555",
        424242,
        None,
        0,
    )


def test_a_refusal_and_both_directions_across_a_link() -> None:
    refused = capture.parse_rst_line(LO_REFUSED, "h1")
    out = capture.parse_rst_line(VETH_OUT, "srv")
    came_in = capture.parse_rst_line(VETH_IN, "cli")
    assert refused is not None and (refused.seq, refused.ack, refused.win) == (0, 181806242, 0)
    assert out is not None and (out.iface, out.direction, out.src) == (
        "eth0",
        "Out",
        "10.254.77.2:8000",
    )
    assert came_in is not None and (came_in.iface, came_in.direction) == ("capxveth", "In")


def test_a_line_without_interface_is_any_and_unknown_direction() -> None:
    rst = capture.parse_rst_line(VETH_NO_IFACE, "h1")
    assert rst is not None
    assert (rst.iface, rst.direction, rst.dst) == ("any", "?", "10.254.77.1:33996")


def test_the_briefs_examples_parse() -> None:
    """The shapes given in the task, without TCP options."""
    lines = {
        "1732690001.123456 eth0 Out IP 10.213.83.2.8000 > 10.213.83.3.41234: "
        "Flags [R.], seq 1, ack 2, win 0, length 0": ("10.213.83.2:8000", "Out", 1, 2),
        "1732690001.5 lo In IP 127.0.0.1.8000 > 127.0.0.1.5555: "
        "Flags [R], seq 0, win 0, length 0": ("127.0.0.1:8000", "In", 0, None),
        "1732690001.5 lo In IP6 ::1.8000 > ::1.5555: Flags [R.], seq 0, ack 1, win 0, length 0": (
            "[::1]:8000",
            "In",
            0,
            1,
        ),
    }
    for line, (src, direction, seq, ack) in lines.items():
        rst = capture.parse_rst_line(line, "h")
        assert rst is not None, line
        assert (rst.src, rst.direction, rst.seq, rst.ack) == (src, direction, seq, ack)


def test_what_is_not_an_rst_line_is_none() -> None:
    for line in (
        "",
        "tcpdump: listening on any",
        "1 packet captured",
        LO_LINGER.replace("[R.]", "[S.]"),
        LO_LINGER.replace("127.0.0.1.33023", "127.0.0.1"),
        "1795763340.786114 lo In ARP, Request who-has 10.0.0.1",
        LO_LINGER[:60],
    ):
        assert capture.parse_rst_line(line, "h1") is None, line


OPEN_OUTPUT = """\
noise before the first section
@@readiness counters
Tcp: RtoAlgorithm OutRsts EstabResets
Tcp: 1 7 3
TcpExt: TCPAbortOnData
TcpExt: 2
@@readiness sysctls
somaxconn 4096
tcp_abort_on_overflow 1
tcp_syncookies -
@@readiness capture
status captured
up_ms 35
@@readiness sampler
status unavailable python3 is not installed on this host: no accept-queue sampler
@@readiness end
"""


def test_parse_open() -> None:
    opened = capture.parse_open(OPEN_OUTPUT)
    assert opened.counters == {
        "Tcp.RtoAlgorithm": 1,
        "Tcp.OutRsts": 7,
        "Tcp.EstabResets": 3,
        "TcpExt.TCPAbortOnData": 2,
    }
    assert opened.sysctls == {"somaxconn": 4096, "tcp_abort_on_overflow": 1, "tcp_syncookies": None}
    assert (opened.capture_status, opened.capture_reason, opened.capture_up_s) == (
        "captured",
        None,
        0.035,
    )
    assert opened.sampler_status == "unavailable"
    assert opened.sampler_reason is not None and "python3" in opened.sampler_reason


def test_parse_open_keeps_what_a_cut_answer_holds() -> None:
    cut = OPEN_OUTPUT[: OPEN_OUTPUT.index("@@readiness capture")]
    opened = capture.parse_open(cut)
    assert opened.counters["Tcp.OutRsts"] == 7
    assert opened.sysctls["tcp_abort_on_overflow"] == 1
    assert opened.capture_status == "failed"
    assert opened.capture_reason == "the host's answer has no capture section"
    failed = capture.parse_open(
        "@@readiness capture\nstatus failed tcpdump: any: You don't have "
        "permission to perform this capture on that device\n"
    )
    assert failed.capture_status == "failed"
    assert failed.capture_reason is not None and failed.capture_reason.startswith("tcpdump: any:")


def test_parse_close() -> None:
    stdout = "\n".join(
        [
            "@@readiness settle",
            "settled 0",
            "waited_ms 5000",
            "lingering 2",
            "socket 0100007F:1F40 0100007F:A0B2 01",
            "@@readiness sampler",
            "status sampled",
            "8000 10 11",
            "8001 - -",
            "garbage line",
            "@@readiness capture",
            "status captured",
            "dropped 0",
            "lines 3",
            "@@readiness rst",
            LO_LINGER,
            "",
            "not a packet",
            LO_BARE,
            "@@readiness counters",
            "Tcp: OutRsts",
            "Tcp: 9",
            "@@readiness end",
            "",
        ]
    )
    closed = capture.parse_close(stdout, "h1")
    assert [rst.src for rst in closed.rsts] == ["127.0.0.1:33023", "127.0.0.1:9"]
    assert all(rst.host == "h1" for rst in closed.rsts)
    assert closed.capture_text == f"{LO_LINGER}\nnot a packet\n{LO_BARE}\n"
    assert (closed.capture_status, closed.capture_dropped, closed.capture_lines) == (
        "captured",
        0,
        3,
    )
    assert closed.accept_queue == {
        8000: capture.AcceptQueue(8000, 10, 11),
        8001: capture.AcceptQueue(8001, None, None),
    }
    assert (closed.settled, closed.settle_waited_s, closed.lingering) == (False, 5.0, 2)
    assert closed.counters == {"Tcp.OutRsts": 9}


@pytest.mark.parametrize(
    "stdout",
    ["", "\x00\xff binary", "@@readiness\n@@readiness rst\n", "@@readiness capture\nstatus"],
)
def test_parse_close_never_raises_on_odd_output(stdout: str) -> None:
    closed = capture.parse_close(stdout, "h1")
    assert closed.capture_status == "failed"
    assert (closed.rsts, closed.counters, dict(closed.accept_queue)) == ((), {}, {})
    assert closed.settled is None


def test_the_filter_takes_both_ip_versions_and_leaves_out_the_ssh_port() -> None:
    script = capture.window_open_script(
        Layout("/srv/r"), "run-1", "unit", exclude_port=2222, listen_ports=[], max_s=10
    )
    assert "and not port 2222'" in script
    assert "tcp[tcpflags] & tcp-rst != 0" in script and "ip6[53] & 4 != 0" in script
    close = capture.window_close_script(Layout("/srv/r"), "run-1", "unit", watch_ports=[8000, 3306])
    assert "ports_hex=' 0CEA 1F40 '" in close


# ---------------------------------------------------------------------------------------
# The scripts, run for real (root, tcpdump): what the lab hosts run over SSH.


@pytest.fixture
def root_and_tcpdump() -> None:
    """Fail, not skip, without them: CI runs as root and `make setup` installs tcpdump."""
    assert os.geteuid() == 0, "these tests capture packets: run them as root (as CI does)"
    assert shutil.which("tcpdump") or Path("/usr/sbin/tcpdump").exists(), (
        "tcpdump is not installed: run `make setup` (or apt-get install tcpdump)"
    )
    assert shutil.which("unshare"), "unshare (util-linux) is needed for a private network"


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[Layout]:
    """A deploy root with a space in it; whatever the test leaves, teardown's kill stops."""
    layout = Layout(str(tmp_path / "deploy root"))
    yield layout
    subprocess.run(
        ["bash", "-c", deploy.stray_kill_script(layout)], capture_output=True, timeout=60
    )


# Runs inside a fresh network namespace (unshare --net: only lo, nothing else on it, so
# the capture and the counters hold this test's packets only): a listener with backlog
# 10, the open script, 3 connections left in the accept queue for 0.3 s, one of them
# closed with SO_LINGER {1,0} (one RST), a refused connect to the excluded port (an RST
# the capture must leave out), the others closed cleanly, the close script.
DRIVER = r"""
import json, socket, struct, subprocess, sys, time
open_path, close_path, excluded = sys.argv[1], sys.argv[2], int(sys.argv[3])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
server = socket.socket()
server.bind(("127.0.0.1", 8000))
server.listen(10)
run = lambda path: subprocess.run(["bash", path], capture_output=True, text=True, timeout=60)
opened = run(open_path)
clients = [socket.create_connection(("127.0.0.1", 8000)) for _ in range(3)]
time.sleep(0.3)
accepted = [server.accept()[0] for _ in clients]
accepted[0].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
accepted[0].close()
try:
    clients[0].recv(1)
    error = None
except OSError as err:
    error = type(err).__name__
try:
    socket.create_connection(("127.0.0.1", excluded), timeout=2)
except OSError:
    pass
for sock in clients[1:] + accepted[1:]:
    sock.close()
closed = run(close_path)
json.dump({"open": opened.stdout, "open_err": opened.stderr, "close": closed.stdout,
           "close_err": closed.stderr, "error": error,
           "client": clients[0].getsockname()[1]}, sys.stdout)
"""


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


OLD_TCPDUMP = """#!/bin/sh
# tcpdump before 4.7: no --immediate-mode (its getopt stops at the first '-')
for a in "$@"; do
  case $a in --immediate-mode) echo "tcpdump: invalid option -- '-'" >&2; exit 1 ;; esac
done
if [ "$1" = --help ]; then echo "Usage: tcpdump [-aAbdDefhHIJKlLnNOpqStuUvxX#]" >&2; exit 0; fi
exec {real} "$@"
"""


@pytest.mark.usefixtures("root_and_tcpdump")
@pytest.mark.parametrize("old_tcpdump", [False, True], ids=["tcpdump", "tcpdump-before-4.7"])
def test_the_window_catches_exactly_one_linger_zero_reset(
    layout: Layout, tmp_path: Path, old_tcpdump: bool
) -> None:
    """Also with a tcpdump that cannot hand packets over at once: the close then waits
    out the kernel's block, or the reset, a moment before it, would be lost."""
    env = dict(os.environ)
    if old_tcpdump:
        wrapper = tmp_path / "bin" / "tcpdump"
        wrapper.parent.mkdir()
        wrapper.write_text(OLD_TCPDUMP.format(real=shutil.which("tcpdump")))
        wrapper.chmod(0o755)
        env["PATH"] = f"{wrapper.parent}:{env['PATH']}"
    open_script = capture.window_open_script(
        layout, "run-1", "rest", exclude_port=2222, listen_ports=[8000], max_s=120
    )
    close_script = capture.window_close_script(
        layout, "run-1", "rest", watch_ports=[8000], settle_s=5
    )
    done = subprocess.run(
        [
            "unshare",
            "--net",
            "--",
            sys.executable,
            "-c",
            DRIVER,
            _write(tmp_path / "open.sh", open_script),
            _write(tmp_path / "close.sh", close_script),
            "2222",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["error"] == "ConnectionResetError"
    assert Path(layout.run, "capture-rest.buffered").exists() is old_tcpdump
    opened = capture.parse_open(out["open"])
    closed = capture.parse_close(out["close"], "h1")
    assert (opened.capture_status, opened.sampler_status) == ("captured", "sampling"), out
    assert opened.capture_up_s is not None and opened.capture_up_s < 5
    assert closed.capture_status == "captured", out
    # Exactly the one reset, seen once on lo as In; the excluded port's refusal is not there.
    assert closed.rsts == (
        Rst(
            "h1",
            closed.rsts[0].at,
            "127.0.0.1:8000",
            f"127.0.0.1:{out['client']}",
            "lo",
            "In",
            closed.rsts[0].seq,
            closed.rsts[0].ack,
            closed.rsts[0].win,
        ),
    ), closed.capture_text
    assert closed.capture_lines == 1 and closed.capture_dropped == 0
    assert closed.accept_queue == {8000: capture.AcceptQueue(8000, 10, 3)}
    assert closed.settled is True
    delta = counters.delta(opened.counters, closed.counters)
    assert opened.counters and closed.counters
    # One netns holds both ends: the linger-0 close counts TCPAbortOnData; the refused
    # connect to the excluded port adds an OutRsts and an AttemptFails.
    assert (delta["TcpExt.TCPAbortOnData"], delta["Tcp.OutRsts"], delta["Tcp.AttemptFails"]) == (
        1,
        2,
        1,
    )
    assert opened.sysctls["somaxconn"] is not None
    assert not list(Path(layout.run).glob("*.pid"))


def _bash(script: str, tmp_path: Path, name: str) -> str:
    done = subprocess.run(
        ["bash", _write(tmp_path / name, script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_closing_a_window_that_never_opened_stops_nothing(layout: Layout, tmp_path: Path) -> None:
    stdout = _bash(
        capture.window_close_script(layout, "run-1", "unit", watch_ports=[]), tmp_path, "close.sh"
    )
    closed = capture.parse_close(stdout, "h1")
    assert (closed.capture_status, closed.capture_reason) == (
        "unavailable",
        "no capture ran in this window",
    )
    assert closed.rsts == () and closed.accept_queue == {} and closed.settled is True
    assert closed.counters["Tcp.OutRsts"] >= 0


def _processes_of(layout: Layout) -> list[int]:
    """Running processes that carry the deploy root's marker (what teardown looks for)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if layout.marker.encode() in environ.read_bytes().split(b"\0"):
                stat = (environ.parent / "stat").read_text()
                if stat.rsplit(") ", 1)[1][0] not in "ZXx":
                    found.append(int(environ.parent.name))
        except (OSError, IndexError):
            continue
    return found


@pytest.mark.usefixtures("root_and_tcpdump")
def test_both_end_by_themselves_and_close_says_the_capture_ended(
    layout: Layout, tmp_path: Path
) -> None:
    open_script = capture.window_open_script(
        layout, "run-1", "unit", exclude_port=22, listen_ports=[1], max_s=1
    )
    opened = capture.parse_open(_bash(open_script, tmp_path, "open.sh"))
    assert (opened.capture_status, opened.sampler_status) == ("captured", "sampling")
    deadline = time.monotonic() + 10
    while _processes_of(layout) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_of(layout) == []
    stdout = _bash(
        capture.window_close_script(layout, "run-1", "unit", watch_ports=[1]), tmp_path, "close.sh"
    )
    closed = capture.parse_close(stdout, "h1")
    assert closed.capture_status == "failed"
    assert closed.capture_reason is not None and "ended before the window closed" in (
        closed.capture_reason
    )
    assert closed.accept_queue == {1: capture.AcceptQueue(1, None, None)}


@pytest.mark.usefixtures("root_and_tcpdump")
def test_teardowns_stray_kill_stops_an_open_window(layout: Layout, tmp_path: Path) -> None:
    open_script = capture.window_open_script(
        layout, "run-1", "unit", exclude_port=22, listen_ports=[1], max_s=300
    )
    opened = capture.parse_open(_bash(open_script, tmp_path, "open.sh"))
    assert (opened.capture_status, opened.sampler_status) == ("captured", "sampling")
    assert len(_processes_of(layout)) >= 2  # timeout, tcpdump, the sampler (and cat)
    _bash(deploy.stray_kill_script(layout), tmp_path, "kill.sh")
    assert _processes_of(layout) == []


def test_close_waits_for_open_connections_then_gives_up(layout: Layout, tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                started = time.monotonic()
                stdout = _bash(
                    capture.window_close_script(
                        layout, "run-1", "unit", watch_ports=[port], settle_s=0.3
                    ),
                    tmp_path,
                    "close.sh",
                )
                took = time.monotonic() - started
                assert client.fileno() >= 0
    closed = capture.parse_close(stdout, "h1")
    # Both ends of the one connection are on this host: two ESTABLISHED sockets.
    assert (closed.settled, closed.settle_waited_s, closed.lingering) == (False, 0.3, 2)
    assert 0.3 <= took < 5


def test_the_sampler_writes_its_result_on_sigterm(tmp_path: Path) -> None:
    output = tmp_path / "queue.txt"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(7)
        port = server.getsockname()[1]
        sampler = subprocess.Popen(
            [sys.executable, "-I", "-", str(output), "60", str(port), "1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert sampler.stdin is not None and sampler.stdout is not None
        sampler.stdin.write(scripts.source("accept_queue.py"))
        sampler.stdin.close()
        assert sampler.stdout.readline() == "sampling\n"
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        time.sleep(0.2)
        sampler.send_signal(signal.SIGTERM)
        assert sampler.wait(timeout=10) == 0
        for client in clients:
            client.close()
    assert output.read_text() == f"1 - -\n{port} 7 2\n"


# ---------------------------------------------------------------------------------------
# Issue 13: a server's start in the script that opens the window, the ledger in the one
# that closes it (run for real, as the hosts run them).

LIB = scripts.render("lib.sh")


def _started_server(pidfile: Path, exit_code: int = 0) -> str:
    """A stand-in for the server's start script: a detached process of its own session,
    its pid kept, the line the real one prints; or a failure as the real one reports it."""
    if exit_code:
        return (
            'echo "port 8000 on 10.0.0.2 is already in use (another server?); last lines" >&2\n'
            f"exit {exit_code}\n"
        )
    return (
        f"setsid sleep 120 < /dev/null > /dev/null 2>&1 &\necho $! > {shlex.quote(str(pidfile))}\n"
        'echo "readiness: server healthy at http://10.0.0.2:8000"\n'
    )


@pytest.mark.usefixtures("root_and_tcpdump")
def test_a_server_started_with_the_windows_opening_is_up_first_and_in_the_deploy_cgroup(
    layout: Layout, tmp_path: Path
) -> None:
    pidfile = tmp_path / "server.pid"
    window = capture.window_open_script(
        layout, "run-1", "rest", exclude_port=22, listen_ports=[], max_s=60
    )
    script = capture.window_transition_script(layout, _started_server(pidfile), window, gated=True)
    result = LocalTransport().run(script, timeout=60)
    assert result.ok, result.stderr
    assert capture.transition_done(result.stdout)
    parts = capture.sections(result.stdout)
    assert list(parts)[:3] == ["server", "opening", "counters"]  # the server first
    assert parts["server"] == ["readiness: server healthy at http://10.0.0.2:8000"]
    opened = capture.parse_open(result.stdout)
    assert opened.capture_status == "captured" and opened.counters
    # The server, started from a subshell, is in the deploy root's cgroup all the same
    # (teardown finds it there) and carries the marker.
    server = int(pidfile.read_text())
    found = subprocess.run(
        ["bash", "-c", LIB + 'deploy_cgroup "$1"', "t", layout.root], capture_output=True, text=True
    )
    assert found.returncode == 0, "no cgroup v2 mounted here: this test needs one"
    cgroup = found.stdout.strip()
    assert str(server) in Path(cgroup, "cgroup.procs").read_text().split()
    assert layout.marker.encode() in Path(f"/proc/{server}/environ").read_bytes().split(b"\0")


def test_a_failed_start_ends_the_script_before_the_window_opens(
    layout: Layout, tmp_path: Path
) -> None:
    window = capture.window_open_script(
        layout, "run-1", "rest", exclude_port=22, listen_ports=[], max_s=60
    )
    script = capture.window_transition_script(
        layout, _started_server(tmp_path / "pid", exit_code=13), window, gated=True
    )
    result = LocalTransport("h1").run(script, timeout=60)
    assert result.exit_code == 13 and not capture.transition_done(result.stdout)
    assert list(capture.sections(result.stdout)) == ["server"]
    assert not Path(layout.results("run-1")).exists()  # the opening never ran
    with pytest.raises(HostError) as raised:
        result.check("starting the testserver")
    assert str(raised.value) == (
        "host 'h1': starting the testserver failed with exit code 13: port 8000 on 10.0.0.2 "
        "is already in use (another server?); last lines"
    )


def test_a_failed_stop_still_opens_the_window_as_it_did_after_a_stop_of_its_own(
    layout: Layout, tmp_path: Path
) -> None:
    window = capture.window_open_script(
        layout, "run-1", "pure", exclude_port=22, listen_ports=[], max_s=5
    )
    script = capture.window_transition_script(layout, "exit 3\n", window, gated=False)
    result = LocalTransport().run(script, timeout=60)
    assert capture.transition_done(result.stdout)
    assert capture.parse_open(result.stdout).counters


def _close_with_ledger(layout: Layout, tmp_path: Path, ledger: str) -> capture.WindowClose:
    script = capture.window_close_script(layout, "run-1", "rest", watch_ports=[], ledger=ledger)
    return capture.parse_close(_bash(script, tmp_path, "close.sh"), "h1")


def test_the_close_prints_the_ledger_file_byte_for_byte(layout: Layout, tmp_path: Path) -> None:
    path = Path(layout.results("run-1"), "rest.ledger.jsonl")
    path.parent.mkdir(parents=True)
    # What must come back exactly: a line that looks like a section, a line separator
    # splitlines() would split at, bytes that are not UTF-8, and no newline at the end.
    data = b'{"kind":"error"}\n@@readiness end\n{"m":"a\xe2\x80\xa8b"}\n\xff\xfe{"cut'
    path.write_bytes(data)
    closed = _close_with_ledger(layout, tmp_path, str(path))
    assert (closed.ledger, closed.ledger_absent) == (data, False)
    assert closed.settled is True and closed.counters  # the rest of the close as before
    missing = _close_with_ledger(layout, tmp_path, str(path.with_name("none.ledger.jsonl")))
    assert (missing.ledger, missing.ledger_absent) == (None, True)


def test_a_ledger_over_the_cap_is_left_to_a_fetch(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "MAX_INLINE_LEDGER", 16)
    path = Path(layout.results("run-1"), "rest.ledger.jsonl")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 16)
    assert _close_with_ledger(layout, tmp_path, str(path)).ledger == b"x" * 16
    path.write_bytes(b"x" * 17)
    closed = _close_with_ledger(layout, tmp_path, str(path))
    assert (closed.ledger, closed.ledger_absent) == (None, False)
    script = capture.window_close_script(layout, "run-1", "r", watch_ports=[], ledger=str(path))
    assert "status fetch 17 bytes" in _bash(script, tmp_path, "close.sh")


@pytest.mark.parametrize(
    "section",
    [
        "status inline 12\nYWJj\n",  # cut: 3 bytes of 12
        "status inline 3\nYW*j\n",  # not base64
        "status inline\nYWJj\n",
        "status fetch 99 bytes\n",
        "status fetch unreadable\n",
        "",
    ],
)
def test_a_ledger_section_that_is_not_whole_is_left_to_a_fetch(section: str) -> None:
    closed = capture.parse_close(f"@@readiness ledger\n{section}@@readiness end\n", "h1")
    assert (closed.ledger, closed.ledger_absent) == (None, False)
    assert capture.parse_close("@@readiness settle\nsettled 1\n", "h1").ledger is None
