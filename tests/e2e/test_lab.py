"""The lab for real: namespaces, a bridge, one OpenSSH server per host, Fabric over SSH.

Runs with a test prefix and subnet (see conftest.py) so a user's ``rdy`` lab is untouched.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from orchestrator.exceptions import ConfigError, HostError, InfrastructureError
from orchestrator.lab import Lab, lab_status, lab_up, load_lab
from orchestrator.transport import SSHTransport
from tests.cli import invoke
from tests.e2e.conftest import E2E_PREFIX, E2E_SUBNET

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def transports(lab: Lab) -> Iterator[dict[str, SSHTransport]]:
    opened = {h.name: lab.transport(h.name) for h in lab.hosts}
    try:
        yield opened
    finally:
        for transport in opened.values():
            transport.close()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _invoke(*args: str, lab_root: Path) -> subprocess.CompletedProcess[str]:
    return invoke(*args, env={"READINESS_LAB_DIR": str(lab_root)}, timeout=60)


def _pids_with_cmdline(text: str) -> list[int]:
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in path.read_bytes():
                found.append(int(path.parent.name))
        except OSError:
            pass  # exited meanwhile
    return found


def _links() -> list[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, check=True).stdout
    return [item["ifname"] for item in json.loads(out)]


def _ifindexes() -> dict[str, int]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, check=True).stdout
    return {item["ifname"]: item["ifindex"] for item in json.loads(out)}


def _namespaces() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def _counters(transport: SSHTransport) -> dict[str, int]:
    """Tcp (/proc/net/snmp) and TcpExt (/proc/net/netstat) counters of one host."""
    result = transport.run("cat /proc/net/snmp /proc/net/netstat").check()
    counters: dict[str, int] = {}
    lines = result.stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        kind, _, keys = names.partition(":")
        _, _, nums = values.partition(":")
        for key, num in zip(keys.split(), nums.split(), strict=True):
            counters[f"{kind}.{key}"] = int(num)
    return counters


# --------------------------------------------------------------------------- isolation


def test_every_host_answers_over_ssh_with_its_own_address(
    lab: Lab, transports: dict[str, SSHTransport]
) -> None:
    addresses = {h.address for h in lab.hosts}
    assert len(addresses) == len(lab.hosts) == 4
    for host in lab.hosts:
        result = transports[host.name].run("ip -4 -o addr show").check()
        seen = set(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", result.stdout))
        assert seen == {"127.0.0.1", host.address}, (host.name, result.stdout)
        links = transports[host.name].run("ip -o link show").check().stdout
        ifnames = set(re.findall(r"^\d+: ([^:@]+)", links, re.M))
        assert ifnames == {"lo", "eth0"}


def test_tcp_counters_are_per_host(lab: Lab, transports: dict[str, SSHTransport]) -> None:
    busy, quiet = transports[lab.hosts[0].name], transports[lab.hosts[1].name]
    before_busy, before_quiet = _counters(busy), _counters(quiet)
    assert "TcpExt.ListenOverflows" in before_busy and "Tcp.ActiveOpens" in before_busy
    traffic = r"""
python3 - <<'EOF'
import socket
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(64)
for _ in range(25):
    client = socket.create_connection(server.getsockname(), timeout=5)
    conn, _ = server.accept()
    conn.close()
    client.close()
EOF
"""
    busy.run(traffic, timeout=30).check()
    after_busy, after_quiet = _counters(busy), _counters(quiet)
    assert after_busy["Tcp.ActiveOpens"] - before_busy["Tcp.ActiveOpens"] >= 25
    assert after_busy["Tcp.PassiveOpens"] - before_busy["Tcp.PassiveOpens"] >= 25
    assert after_quiet["Tcp.ActiveOpens"] == before_quiet["Tcp.ActiveOpens"]
    assert after_quiet["Tcp.PassiveOpens"] == before_quiet["Tcp.PassiveOpens"]


LISTENER = r"""
d=$(mktemp -d)
timeout 30 python3 -u - "$ADDR" 18081 "$PEERS" > "$d/out" 2>&1 <<'EOF' &
import socket, sys
addr, port, peers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((addr, port))
server.listen(16)
server.settimeout(25)
print("listening", flush=True)
for _ in range(peers):
    conn, peer = server.accept()
    conn.sendall(f"{addr} saw {peer[0]}\n".encode())
    conn.close()
EOF
pid=$!
for _ in $(seq 250); do grep -q listening "$d/out" && break; sleep 0.02; done
grep -q listening "$d/out" || { cat "$d/out" >&2; exit 1; }
rm -rf "$d"
echo "$pid"
"""

CONNECTOR = r"""
python3 - <<'EOF'
import os, socket
for target in os.environ["TARGETS"].split():
    with socket.create_connection((target, 18081), timeout=5) as sock:
        print(target, sock.makefile().readline().strip())
EOF
"""


def test_every_host_reaches_every_other_over_tcp(
    lab: Lab, transports: dict[str, SSHTransport]
) -> None:
    peers = str(len(lab.hosts) - 1)
    listeners = {}
    try:
        for host in lab.hosts:
            started = transports[host.name].run(
                LISTENER, env={"ADDR": host.address, "PEERS": peers}, timeout=15
            )
            listeners[host.name] = int(started.check().stdout.split()[-1])
        for source in lab.hosts:
            targets = [h.address for h in lab.hosts if h is not source]
            result = (
                transports[source.name]
                .run(CONNECTOR, env={"TARGETS": " ".join(targets)}, timeout=20)
                .check()
            )
            replies = dict(line.split(" ", 1) for line in result.stdout.splitlines())
            # Each target saw the source's own address: a plain bridge, no NAT between hosts.
            assert replies == {t: f"{t} saw {source.address}" for t in targets}
    finally:
        for name, pid in listeners.items():
            transports[name].run(f"kill {pid} 2>/dev/null || true", timeout=10)


# --------------------------------------------------------------------------- transport


def test_ssh_transport_run_put_get_env_stdin(lab: Lab, transports: dict[str, SSHTransport]) -> None:
    host = lab.hosts[2]
    transport = transports[host.name]
    path = f"{host.deploy_root}/secret.cnf"
    transport.put(b"[client]\npassword=x\n", path, mode=0o600)
    assert transport.get(path) == b"[client]\npassword=x\n"
    assert transport.run(f"stat -c %a {path}").check().stdout.strip() == "600"
    result = transport.run('echo "$A"; cat; exit 4', env={"A": "it's here"}, stdin=b"piped\n")
    assert (result.exit_code, result.stdout, result.host) == (4, "it's here\npiped\n", host.name)
    with pytest.raises(HostError, match=rf"host '{host.name}': cannot read /nonexistent"):
        transport.get("/nonexistent/file")


def test_ssh_secrets_never_on_a_command_line(transports: dict[str, SSHTransport]) -> None:
    transport = next(iter(transports.values()))
    secret = "s3cr3t-" + os.urandom(6).hex()
    scan = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < \"$f\" 2>/dev/null; echo; done"
    result = transport.run(f"# {secret}\n{scan}", env={"DB_PASSWORD": secret}).check()
    assert "readiness-run" in result.stdout
    assert secret not in result.stdout


def test_ssh_timeout_kills_the_remote_process_tree(transports: dict[str, SSHTransport]) -> None:
    transport = next(iter(transports.values()))
    started = time.monotonic()
    result = transport.run("sleep 60 & echo $!; (sleep 61; true) & echo $!; sleep 62", timeout=1)
    assert result.timed_out and not result.ok and result.exit_code == 124
    assert time.monotonic() - started < 6
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2
    check = transport.run(
        "for p in " + " ".join(map(str, pids)) + '; do ps -o stat= -p "$p" | grep -v Z; done; true'
    ).check()
    assert check.stdout.strip() == ""
    # The connection is still usable after a timeout.
    assert transport.run("echo fine").stdout == "fine\n"


def test_host_key_mismatch_is_refused(lab: Lab, tmp_path: Path) -> None:
    first, second = lab.hosts[0], lab.hosts[1]
    pinned = lab.known_hosts.read_text().splitlines()
    keys = {line.split()[0]: " ".join(line.split()[1:]) for line in pinned}
    forged = [
        f"{first.address} {keys[second.address]}" if line.startswith(first.address + " ") else line
        for line in pinned
    ]
    bad_known = tmp_path / "known_hosts"
    bad_known.write_text("\n".join(forged) + "\n")
    transport = SSHTransport(
        first.name, first.address, key_file=lab.key_file, known_hosts=bad_known
    )
    with pytest.raises(HostError, match="MISMATCH") as err:
        transport.run("true")
    assert err.value.host == first.name
    assert first.name in str(err.value) and first.address in str(err.value)

    unknown = tmp_path / "unknown_hosts"
    unknown.write_text(
        "".join(f"{line}\n" for line in pinned if not line.startswith(first.address + " "))
    )
    transport = SSHTransport(first.name, first.address, key_file=lab.key_file, known_hosts=unknown)
    with pytest.raises(HostError, match="not pinned") as err:
        transport.run("true")
    assert err.value.host == first.name
    # Nothing was learnt on the way: strict checking never writes known_hosts.
    assert unknown.read_text().count("\n") == len(pinned) - 1
    home_known = Path.home() / ".ssh" / "known_hosts"
    assert not home_known.exists() or first.address not in home_known.read_text()


# --------------------------------------------------------------------------- lifecycle


def test_second_up_is_a_no_op(lab: Lab) -> None:
    before_pids = {h.name: h.sshd_pid for h in lab.hosts}
    before_links = _ifindexes()
    before_known = lab.known_hosts.read_text()
    started = time.monotonic()
    again = lab_up(prefix=E2E_PREFIX, state_dir=lab.state_dir)
    elapsed = time.monotonic() - started
    assert {h.name: h.sshd_pid for h in again.hosts} == before_pids
    assert again.subnet == E2E_SUBNET and len(again.hosts) == len(lab.hosts)
    ours = {k: v for k, v in _ifindexes().items() if k.startswith(f"{E2E_PREFIX}-")}
    assert ours == {k: v for k, v in before_links.items() if k.startswith(f"{E2E_PREFIX}-")}
    assert lab.known_hosts.read_text() == before_known
    assert elapsed < 2.0, f"a no-op lab.up took {elapsed:.2f}s"


def test_concurrent_ups_are_serialized(lab: Lab) -> None:
    before = {h.name: h.sshd_pid for h in lab.hosts}
    with ThreadPoolExecutor(max_workers=3) as pool:
        labs = list(
            pool.map(lambda _: lab_up(prefix=E2E_PREFIX, state_dir=lab.state_dir), range(3))
        )
    assert all({h.name: h.sshd_pid for h in again.hosts} == before for again in labs)


def test_repair_after_sshd_killed_and_namespace_deleted(lab: Lab, lab_root: Path) -> None:
    victim, gone = lab.hosts[1], lab.hosts[2]
    known = lab.known_hosts.read_text()
    assert victim.sshd_pid and gone.sshd_pid
    assert victim.sshd_config.encode() in Path(f"/proc/{victim.sshd_pid}/cmdline").read_bytes()
    os.kill(victim.sshd_pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", gone.namespace], check=True)

    status = lab_status(prefix=E2E_PREFIX, state_dir=lab.state_dir, connect_timeout=2)
    assert {h.name for h in status.unhealthy} == {victim.name, gone.name}
    cli = _invoke("lab.status", f"--prefix={E2E_PREFIX}", lab_root=lab_root)
    assert cli.returncode == 3, cli.stdout + cli.stderr
    assert "DOWN" in cli.stdout

    repaired = lab_up(prefix=E2E_PREFIX, state_dir=lab.state_dir)
    new_pids = {h.name: h.sshd_pid for h in repaired.hosts}
    assert new_pids[victim.name] != victim.sshd_pid
    assert new_pids[gone.name] != gone.sshd_pid
    assert not _alive(gone.sshd_pid)  # the old sshd of the orphaned namespace was stopped
    for host in (lab.hosts[0], lab.hosts[3]):
        assert new_pids[host.name] == host.sshd_pid  # healthy hosts were left alone
    assert lab.known_hosts.read_text() == known  # host keys are reused on repair
    assert lab_status(prefix=E2E_PREFIX, state_dir=lab.state_dir).ok
    cli = _invoke("lab.status", f"--prefix={E2E_PREFIX}", lab_root=lab_root)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.count(" ok") == len(lab.hosts)


def test_filtered_bridge_is_diagnosed(lab: Lab) -> None:
    # Isolated bridge ports still reach the bridge (the control node) but not each other:
    # the same symptom as a FORWARD DROP policy with br_netfilter, without touching iptables.
    ends = [lab.hosts[0].veth, lab.hosts[-1].veth]
    before = load_lab(E2E_PREFIX, lab.state_dir)
    try:
        for veth in ends:
            subprocess.run(["bridge", "link", "set", "dev", veth, "isolated", "on"], check=True)
        with pytest.raises(InfrastructureError, match="cannot open a TCP connection") as err:
            lab_up(prefix=E2E_PREFIX, state_dir=lab.state_dir)
        assert "FORWARD" in str(err.value) and lab.bridge in str(err.value)
        assert err.value.exit_code == 3
    finally:
        for veth in ends:
            subprocess.run(["bridge", "link", "set", "dev", veth, "isolated", "off"], check=True)
    assert lab_up(prefix=E2E_PREFIX, state_dir=lab.state_dir) == before


def test_overlapping_subnet_is_refused(lab: Lab, lab_root: Path) -> None:
    state_dir = lab_root / "rv"
    with pytest.raises(ConfigError, match=f"overlaps address .* of interface {lab.bridge}"):
        lab_up(prefix="rv", subnet=E2E_SUBNET, hosts=1, state_dir=state_dir)
    assert not state_dir.exists()
    assert not [n for n in _namespaces() if n.startswith("rv-")]


def test_down_removes_everything_of_its_prefix_only(lab: Lab, lab_root: Path) -> None:
    rt_before = load_lab(E2E_PREFIX, lab.state_dir)
    up = _invoke("lab.up", "--prefix=ru", "--hosts=2", "--subnet=10.213.73.0/24", lab_root=lab_root)
    assert up.returncode == 0, up.stdout + up.stderr
    ru = load_lab("ru", lab_root / "ru")
    assert [h.address for h in ru.hosts] == ["10.213.73.2", "10.213.73.3"]
    assert lab_status(prefix="ru", state_dir=ru.state_dir).ok
    with ru.transport("ru-h1") as transport:  # the two labs are separate networks
        assert transport.run("ip -4 -o addr show dev eth0").check().stdout.count("10.213.73.2")
    # Asking for more hosts grows the lab in place.
    grown = lab_up(prefix="ru", hosts=3, state_dir=ru.state_dir)
    assert [h.name for h in grown.hosts] == ["ru-h1", "ru-h2", "ru-h3"]
    assert grown.hosts[:2] == ru.hosts
    assert lab_status(prefix="ru", state_dir=ru.state_dir).ok
    ru_pids = [h.sshd_pid for h in grown.hosts if h.sshd_pid]
    deploy_roots = [Path(h.deploy_root) for h in grown.hosts]
    assert all(root.is_dir() for root in deploy_roots)

    down = _invoke("lab.down", "--prefix=ru", lab_root=lab_root)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "3 namespace(s)" in down.stdout

    assert not [n for n in _namespaces() if n.startswith("ru-")]
    assert not [name for name in _links() if name.startswith("ru-")]
    assert not [pid for pid in ru_pids if _alive(pid)]
    assert not [pid for pid in _pids_with_cmdline(str(ru.state_dir)) if _alive(pid)]
    assert not ru.state_dir.exists()
    assert not any(root.exists() for root in deploy_roots)
    again = _invoke("lab.down", "--prefix=ru", lab_root=lab_root)
    assert again.returncode == 0 and "nothing to remove" in again.stdout

    # The other lab did not notice.
    rt_after = load_lab(E2E_PREFIX, lab.state_dir)
    assert rt_after == rt_before
    assert lab_status(prefix=E2E_PREFIX, state_dir=lab.state_dir).ok
    assert {f"{E2E_PREFIX}-h{i}" for i in range(1, 5)} <= set(_namespaces())
