"""Bring a lab up, report on it, tear it down: the part that touches the machine.

Every command is an argument list (never a shell string with user values in it); network
changes go through one `ip -batch -` for the root namespace plus one per namespace that
needs changes, keys are generated once and kept across repairs, and sshd readiness is
awaited by polling its port with a short deadline.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator.exceptions import (
    ConfigError,
    GroupError,
    HostError,
    InfrastructureError,
    PrivilegeError,
)
from orchestrator.files import atomic_write
from orchestrator.lab.design import (
    DEFAULT_DEPLOY_BASE,
    DEFAULT_HOSTS,
    DEFAULT_PREFIX,
    DEFAULT_SUBNET,
    STATE_FILE,
    HostFiles,
    HostPlan,
    LabFiles,
    LabPlan,
    known_hosts_text,
    lab_names,
    parse_hosts,
    parse_subnet,
    plan_lab,
    render_sshd_config,
    validate_prefix,
)
from orchestrator.lab.network import Link, NetState, plan_network, plan_teardown
from orchestrator.lab.state import (
    Lab,
    lab_from_plan,
    load_lab,
    read_state,
    state_dir_for,
    write_state,
)

NETNS_DIR = Path("/run/netns")
PRIVSEP_DIR = Path("/run/sshd")
# A bound, not a wait: sshd listens within milliseconds, but a CI machine under load once
# took longer than 5 s (both lab hosts reported as taken by another process).
SSHD_START_DEADLINE = 15.0
STOP_GRACE = 1.0


# --------------------------------------------------------------------------- helpers


def require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"{action} needs root: it creates network namespaces, a bridge and veth links and "
            "starts one sshd per lab host inside them, which only root may do. Run it as root "
            f"(e.g. `sudo .venv/bin/invoke {action}`) on a Linux machine with iproute2 and "
            "openssh-server installed; `invoke lab.status` works without root."
        )


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        package = {"ip": "iproute2", "sshd": "openssh-server", "ssh-keygen": "openssh-client"}
        raise InfrastructureError(
            f"the lab needs `{name}` and it is not installed "
            f"(Debian/Ubuntu package {package.get(name, name)})"
        )
    return path


@dataclass(frozen=True)
class _Tools:
    ip: str
    sshd: str
    keygen: str

    @classmethod
    def find(cls) -> _Tools:
        return cls(ip=_tool("ip"), sshd=_tool("sshd"), keygen=_tool("ssh-keygen"))


def _run(argv: Sequence[str], *, input: bytes | None = None, what: str = "") -> bytes:
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, check=False)
    except OSError as err:
        raise InfrastructureError(f"cannot run {argv[0]}: {err}") from err
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise InfrastructureError(f"{what or ' '.join(argv)} failed: {detail}")
    return proc.stdout


def _batch(ip: str, lines: Sequence[str], namespace: str | None = None) -> None:
    argv = [ip] if namespace is None else [ip, "-n", namespace]
    where = "root namespace" if namespace is None else f"namespace {namespace}"
    text = "".join(line + "\n" for line in lines)
    _run([*argv, "-batch", "-"], input=text.encode(), what=f"ip -batch in the {where} ({text!r})")


def _links(ip: str, namespace: str | None = None) -> dict[str, Link]:
    argv = (
        [ip, "-j", "-d", "addr", "show"]
        if namespace is None
        else [ip, "-n", namespace, "-j", "-d", "addr", "show"]
    )
    raw = _run(argv)
    return parse_links(raw.decode() or "[]")


def parse_links(text: str) -> dict[str, Link]:
    """Links from `ip -j -d addr show` output."""
    links: dict[str, Link] = {}
    for item in json.loads(text):
        if "ifname" not in item:
            continue
        addresses = tuple(
            f"{a['local']}/{a['prefixlen']}"
            for a in item.get("addr_info", [])
            if a.get("family") == "inet" and "local" in a
        )
        kind = (item.get("linkinfo") or {}).get("info_kind")
        links[item["ifname"]] = Link(
            name=item["ifname"],
            up="UP" in item.get("flags", []),
            kind=kind,
            master=item.get("master"),
            addresses=addresses,
            mac=item.get("address"),
        )
    return links


def _namespaces() -> frozenset[str]:
    try:
        return frozenset(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return frozenset()


def observe(ip: str, namespaces_of_interest: Iterable[str] = ()) -> NetState:
    """Read the root namespace's links, the named namespaces and the links inside ours."""
    links = _links(ip)
    namespaces = _namespaces()
    ours = [ns for ns in namespaces_of_interest if ns in namespaces]
    ns_links: dict[str, dict[str, Link]] = {}
    if ours:
        with ThreadPoolExecutor(max_workers=min(8, len(ours))) as pool:
            for ns, found in zip(ours, pool.map(lambda n: _links(ip, n), ours), strict=True):
                ns_links[ns] = found
    return NetState(links=links, namespaces=namespaces, ns_links=ns_links)


def _ns_id(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def sshd_is_ours(pid: int | None, config: Path) -> bool:
    """Whether ``pid`` is a live sshd started with our config file (never kill by name)."""
    if not pid or pid <= 0:
        return False
    cmdline = _cmdline(pid)
    return b"sshd" in cmdline and str(config).encode() in cmdline


def _in_namespace(pid: int, namespace: str) -> bool:
    wanted = _ns_id(NETNS_DIR / namespace)
    return wanted is not None and _ns_id(f"/proc/{pid}/ns/net") == wanted


def processes_in_namespaces(namespaces: Iterable[str]) -> dict[int, str]:
    """Every process living in one of these named network namespaces (pid -> namespace)."""
    ids = {_ns_id(NETNS_DIR / ns): ns for ns in namespaces}
    ids.pop(None, None)
    found: dict[int, str] = {}
    if not ids:
        return found
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ns_id = _ns_id(f"/proc/{entry}/ns/net")
            if ns_id in ids:
                found[int(entry)] = ids[ns_id]
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the command name in parentheses; Z is a zombie, X dead.
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def stop_processes(pids: Iterable[int], grace: float = STOP_GRACE) -> list[int]:
    """TERM, wait up to ``grace`` seconds, then KILL. Returns the pids that were signalled."""
    signalled = []
    for pid in sorted(set(pids)):
        try:
            os.kill(pid, signal.SIGTERM)
            signalled.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    pending = list(signalled)
    while pending and time.monotonic() < deadline:
        pending = [pid for pid in pending if _alive(pid)]
        if pending:
            time.sleep(0.01)
    for pid in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return signalled


def _port_open(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_if_changed(path: Path, text: str, mode: int) -> bool:
    """Write only what differs: an unchanged sshd_config means its sshd need not restart."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    atomic_write(path, text.encode(), mode=mode)
    return True


@contextmanager
def _lab_lock(folder: Path, *, create: bool) -> Iterator[None]:
    """Serialize lab.up/lab.down on the folder holding the lab's state folder.

    Locking the parent (not a lock file) leaves nothing behind after lab.down; the price
    is that labs sharing a parent folder take turns, which costs a fraction of a second.
    """
    parent = folder.parent
    if create:
        parent.mkdir(parents=True, exist_ok=True)
    elif not parent.is_dir():
        yield  # no state folder can exist: nothing to serialize against
        return
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- up


def _resolve_up_options(
    prefix: str,
    folder: Path,
    hosts: int | None,
    subnet: str | None,
    deploy_base: Path | None,
) -> LabPlan:
    existing = read_state(folder / STATE_FILE)
    if existing is not None:
        have = len(existing.hosts)
        if subnet is not None and str(parse_subnet(subnet)) != existing.subnet:
            raise ConfigError(
                f"lab '{prefix}' already exists on {existing.subnet}; run `invoke lab.down "
                f"--prefix={prefix}` first to move it to {subnet} (or omit --subnet)",
                field="subnet",
            )
        if hosts is not None and hosts < have:
            # Growing is safe (hosts are added, the others untouched); shrinking would pull
            # hosts from under whoever uses them, so it takes an explicit lab.down.
            raise ConfigError(
                f"lab '{prefix}' already exists with {have} hosts; run `invoke lab.down "
                f"--prefix={prefix}` first to make it smaller (or omit --hosts to keep {have})",
                field="hosts",
            )
        hosts, subnet = max(hosts or 0, have), existing.subnet
        if deploy_base is None and existing.hosts:
            deploy_base = Path(existing.hosts[0].deploy_root).parent.parent
    return plan_lab(
        state_dir=folder,
        hosts=DEFAULT_HOSTS if hosts is None else hosts,
        prefix=prefix,
        subnet=DEFAULT_SUBNET if subnet is None else subnet,
        deploy_base=DEFAULT_DEPLOY_BASE if deploy_base is None else deploy_base,
    )


def _check_subnet_free(plan: LabPlan, links: Mapping[str, Link]) -> None:
    ours = ipaddress.ip_network(plan.subnet)
    for link in links.values():
        if link.name == plan.bridge:
            continue
        for cidr in link.addresses:
            other = ipaddress.ip_interface(cidr).network
            if other.overlaps(ours):
                raise ConfigError(
                    f"lab subnet {plan.subnet} overlaps address {cidr} of interface "
                    f"{link.name} on this machine (another lab, or a real network); choose "
                    "another one with --subnet, e.g. 10.213.73.0/24",
                    field="subnet",
                )


def _ensure_keys(tools: _Tools, plan: LabPlan) -> None:
    """Generate the client key and each host key once; repairs reuse them."""
    wanted: list[tuple[Path, Path, str]] = [
        (plan.key_file, plan.key_file_pub, f"readiness-lab-{plan.prefix}-client")
    ]
    wanted += [(h.host_key, h.host_key_pub, f"readiness-lab-{h.name}") for h in plan.hosts]
    procs = []
    for private, public, comment in wanted:
        if private.is_file() and public.is_file():
            continue
        private.unlink(missing_ok=True)
        public.unlink(missing_ok=True)
        argv = [tools.keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private)]
        procs.append(
            (
                argv,
                subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                ),
            )
        )
    for argv, proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise InfrastructureError(f"{' '.join(argv)} failed: {err.decode().strip()}")


def _write_files(plan: LabPlan) -> set[str]:
    """Write configs, authorized_keys and known_hosts; return hosts whose config changed."""
    changed = set()
    for host in plan.hosts:
        if _write_if_changed(host.sshd_config, render_sshd_config(plan, host), 0o600):
            changed.add(host.name)
    _write_if_changed(plan.authorized_keys, plan.key_file_pub.read_text(), 0o600)
    host_keys = {h.name: h.host_key_pub.read_text() for h in plan.hosts}
    _write_if_changed(plan.known_hosts, known_hosts_text(plan, host_keys), 0o644)
    return changed


def _sshd_argv(tools: _Tools, host: HostPlan) -> list[str]:
    """sshd in the host's namespace (it daemonizes)."""
    return [
        tools.ip,
        "netns",
        "exec",
        host.namespace,
        "sh",
        "-c",
        # `ip netns exec` mounts a fresh /sys, without the cgroup2 hierarchy: mount it
        # (in the private mount namespace only), so that layers on lab hosts can be
        # stopped by cgroup as on real hosts. Best effort: without it, teardown still
        # finds a layer's processes by their environment marker.
        'mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null; exec "$0" "$@"',
        tools.sshd,
        "-f",
        str(host.sshd_config),
        "-E",
        str(host.log_file),
    ]


def _start_sshds(tools: _Tools, hosts: Sequence[HostPlan]) -> dict[str, int]:
    """Start sshd in each host's namespace (it daemonizes); wait until each listens."""
    procs = []
    for host in hosts:
        host.pid_file.unlink(missing_ok=True)
        argv = _sshd_argv(tools, host)
        procs.append(
            (
                host,
                subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
                ),
            )
        )
    failures: dict[str, BaseException] = {}
    for host, proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            failures[host.name] = HostError(
                host.name,
                f"sshd did not start (exit {proc.returncode}): {err.decode().strip()} "
                f"(log: {host.log_file})",
            )
    pids: dict[str, int] = {}
    deadline = time.monotonic() + SSHD_START_DEADLINE
    pending = [h for h, _ in procs if h.name not in failures]
    while pending:
        still = []
        for host in pending:
            pid = _read_pid(host.pid_file)
            if pid and sshd_is_ours(pid, host.sshd_config) and _port_open(host.address, 22, 0.2):
                pids[host.name] = pid
            else:
                still.append(host)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                for host in pending:
                    failures[host.name] = HostError(host.name, _not_listening(host))
                break
            time.sleep(0.01)
    if failures:
        raise GroupError("starting the lab's sshd", failures)
    return pids


def _not_listening(host: HostPlan) -> str:
    """Why the host's sshd is not the one answering: an impostor, or nothing at all."""
    if _port_open(host.address, 22, 0.2):
        pid = _read_pid(host.pid_file)
        seen = f"its pid file names {pid}" if pid else "it wrote no pid file"
        return (
            f"another process (not this lab's sshd) already listens on {host.address}:22, so "
            f"the lab's sshd could not bind ({seen}); stop it, or choose another lab subnet "
            f"(log: {host.log_file})"
        )
    return (
        f"sshd is not accepting connections on {host.address}:22 after "
        f"{SSHD_START_DEADLINE:.0f}s (log: {host.log_file})"
    )


def _check_forwarding(plan: LabPlan, tools: _Tools) -> None:
    """Hosts must reach each other through the bridge, not just the control node."""
    if len(plan.hosts) < 2:
        return
    src, dst = plan.hosts[0], plan.hosts[-1]
    argv = [
        tools.ip,
        "netns",
        "exec",
        src.namespace,
        "bash",
        "-c",
        'exec 3<>"/dev/tcp/$1/$2"',
        "lab-probe",
        dst.address,
        str(dst.ssh_port),
    ]
    try:
        ok = subprocess.run(argv, capture_output=True, timeout=2.0, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if ok:
        return
    try:
        nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip()
    except OSError:
        nf = "absent (br_netfilter not loaded)"
    raise InfrastructureError(
        f"lab '{plan.prefix}': {src.name} cannot open a TCP connection to "
        f"{dst.name} ({dst.address}:22) across bridge {plan.bridge}, although the control "
        "node reaches both. Bridged traffic is being filtered: with br_netfilter loaded and "
        f"net.bridge.bridge-nf-call-iptables={nf}, frames crossing a bridge go through the "
        "iptables FORWARD chain, and a DROP policy there (as Docker sets it) drops them. Fix "
        f"it with `iptables -I FORWARD -i {plan.bridge} -o {plan.bridge} -j ACCEPT` (or the "
        "nftables equivalent), or `sysctl -w net.bridge.bridge-nf-call-iptables=0` (affects "
        "every bridge on the machine), then run `invoke lab.up` again."
    )


def lab_up(
    *,
    hosts: int | str | None = None,
    prefix: str | None = None,
    subnet: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    deploy_base: str | os.PathLike[str] | None = None,
) -> Lab:
    """Create the lab, or repair it: idempotent, a second call changes nothing.

    ``hosts`` and ``subnet`` default to the existing lab's, else to 4 and 10.213.71.0/24.
    Asking an existing lab for more hosts adds them (the others are left alone); fewer
    hosts or another subnet is a ConfigError (take the lab down first).
    """
    prefix = validate_prefix(DEFAULT_PREFIX if prefix is None else prefix)
    folder = state_dir_for(prefix, state_dir)
    plan = _resolve_up_options(
        prefix,
        folder,
        parse_hosts(hosts),
        subnet,
        None if deploy_base is None else Path(deploy_base),
    )
    require_root("lab.up")
    with _lab_lock(folder, create=True):
        # Again under the lock: another lab.up/down may have changed the state meanwhile.
        plan = _resolve_up_options(prefix, folder, parse_hosts(hosts), subnet, plan.deploy_base)
        return _bring_up(plan)


def _bring_up(plan: LabPlan) -> Lab:
    tools = _Tools.find()
    names = [h.namespace for h in plan.hosts]
    state = observe(tools.ip, names)
    _check_subnet_free(plan, state.links)

    for directory in [plan.state_dir, plan.state_dir / "hosts", *(h.dir for h in plan.hosts)]:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    previous = read_state(plan.state_file)
    old_pids = {h.name: h.sshd_pid for h in previous.hosts} if previous else {}
    # Record the lab before creating anything, so lab.down can always clean up after a crash.
    write_state(lab_from_plan(plan, old_pids), plan.state_file)
    _ensure_keys(tools, plan)
    changed = _write_files(plan)
    for host in plan.hosts:
        host.deploy_root.mkdir(mode=0o755, parents=True, exist_ok=True)
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)

    steps = plan_network(plan, state)
    if steps.root:
        _batch(tools.ip, steps.root)
    for namespace, lines in steps.inside.items():
        if lines:
            _batch(tools.ip, lines, namespace)

    pids: dict[str, int | None] = {}
    restart: list[HostPlan] = []
    stale: list[int] = []
    for host in plan.hosts:
        # The recorded pid, or the pid file's if an earlier lab.up failed before recording.
        candidates = {old_pids.get(host.name), _read_pid(host.pid_file)}
        ours = [p for p in candidates if p is not None and sshd_is_ours(p, host.sshd_config)]
        keep = next(
            (
                p
                for p in ours
                if host.name not in steps.fresh
                and host.name not in changed
                and _in_namespace(p, host.namespace)
                and _port_open(host.address, host.ssh_port, 0.5)
            ),
            None,
        )
        stale += [p for p in ours if p != keep]
        if keep is not None:
            pids[host.name] = keep
        else:
            restart.append(host)
    if stale:
        stop_processes(stale)
    if restart:
        pids.update(_start_sshds(tools, restart))
    write_state(lab_from_plan(plan, pids), plan.state_file)
    _check_forwarding(plan, tools)
    return load_lab(plan.prefix, plan.state_dir)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    namespace: str
    sshd_pid: int | None
    connect_ms: float | None
    rtt_ms: float | None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class LabStatus:
    prefix: str
    state_dir: Path
    hosts: tuple[HostStatus, ...]

    @property
    def ok(self) -> bool:
        return bool(self.hosts) and all(h.ok for h in self.hosts)

    @property
    def unhealthy(self) -> tuple[HostStatus, ...]:
        return tuple(h for h in self.hosts if not h.ok)

    def table(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        rows = [("host", "address", "namespace", "sshd pid", "connect ms", "rtt ms", "state")]
        for h in self.hosts:
            state = "ok" if h.ok else f"DOWN ({h.problem})"
            pid = "-" if h.sshd_pid is None else str(h.sshd_pid)
            rows.append(
                (h.name, h.address, h.namespace, pid, ms(h.connect_ms), ms(h.rtt_ms), state)
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
            for row in rows
        ]
        return f"lab '{self.prefix}' ({self.state_dir})\n" + "\n".join(lines)


def _host_status(lab: Lab, name: str, namespaces: frozenset[str], timeout: float) -> HostStatus:
    host = lab.host(name)
    problems = []
    pid = host.sshd_pid
    if host.namespace not in namespaces:
        problems.append("namespace missing")
    config = Path(host.sshd_config) if host.sshd_config else None
    if config is not None and not sshd_is_ours(pid, config):
        problems.append("sshd not running")
        pid = None
    connect_ms = rtt_ms = None
    if not problems:
        transport = lab.transport(name, connect_timeout=timeout)
        try:
            started = time.monotonic()
            transport.connect()
            connect_ms = (time.monotonic() - started) * 1000
            result = transport.run("true", timeout=timeout)
            if result.ok:
                rtt_ms = result.duration_s * 1000
            else:
                problems.append(f"ssh command failed: exit {result.exit_code}")
        except HostError as err:
            problems.append(f"ssh: {err.detail}")
        finally:
            transport.close()
    return HostStatus(
        host.name, host.address, host.namespace, pid, connect_ms, rtt_ms, "; ".join(problems)
    )


def lab_status(
    *,
    prefix: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    connect_timeout: float = 3.0,
) -> LabStatus:
    """Check every host (namespace, sshd, an SSH round trip via Fabric), in parallel.

    Raises InfrastructureError if no lab with this prefix exists.
    """
    prefix = validate_prefix(DEFAULT_PREFIX if prefix is None else prefix)
    lab = load_lab(prefix, state_dir)
    namespaces = _namespaces()
    import fabric  # noqa: F401  (import once here, not inside the first host's timing)

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(lab.hosts)))) as pool:
        results = list(
            pool.map(lambda h: _host_status(lab, h.name, namespaces, connect_timeout), lab.hosts)
        )
    return LabStatus(prefix=lab.prefix, state_dir=lab.state_dir, hosts=tuple(results))


# --------------------------------------------------------------------------- down


@dataclass(frozen=True)
class Teardown:
    """What lab.down removed."""

    prefix: str
    processes: tuple[int, ...]
    commands: tuple[str, ...]
    files: tuple[str, ...]
    deploy_roots: tuple[str, ...]

    @property
    def nothing(self) -> bool:
        return not (self.processes or self.commands or self.files or self.deploy_roots)

    def summary(self) -> str:
        if self.nothing:
            return f"lab '{self.prefix}': nothing to remove"
        links = sum(1 for c in self.commands if c.startswith("link del"))
        namespaces = sum(1 for c in self.commands if c.startswith("netns del"))
        return (
            f"lab '{self.prefix}' removed: {len(self.processes)} process(es), "
            f"{namespaces} namespace(s), {links} link(s), {len(self.files)} file(s), "
            f"{len(self.deploy_roots)} deploy root(s)"
        )


def _remove_files(folder: Path) -> list[str]:
    removed = []
    host_dirs = sorted(p for p in (folder / "hosts").glob("*") if p.is_dir())
    candidates = list(LabFiles(folder).all)
    candidates += [path for d in host_dirs for path in HostFiles(d).all]
    # Leftovers of interrupted writes: atomic_write's ".<name>.<random>.tmp", and the
    # ".lab.*.json" temporaries of older versions.
    candidates += list(folder.glob(".lab.*.json")) + list(folder.glob(".*.tmp"))
    candidates += [p for d in host_dirs for p in d.glob(".*.tmp")]
    for path in candidates:
        try:
            path.unlink()
            removed.append(str(path))
        except FileNotFoundError:
            pass
    for directory in [*host_dirs, folder / "hosts", folder]:
        # rmdir only removes empty folders: never what the lab did not make.
        with contextlib.suppress(OSError):
            directory.rmdir()
    return removed


def _remove_deploy_roots(lab: Lab) -> list[str]:
    removed = []
    parents = set()
    for host in lab.hosts:
        root = Path(host.deploy_root)
        # Sanity: the lab only ever made <base>/<prefix>/<host>.
        if root.name != host.name or root.parent.name != lab.prefix or not root.is_absolute():
            continue
        parents.add(root.parent)
        if root.exists():
            shutil.rmtree(root, ignore_errors=True)
            removed.append(str(root))
    for parent in parents:
        for directory in (parent, parent.parent):
            with contextlib.suppress(OSError):
                directory.rmdir()
    return removed


def lab_down(
    *,
    prefix: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
) -> Teardown:
    """Remove every process, namespace, link and file of this lab, and only those."""
    prefix = validate_prefix(DEFAULT_PREFIX if prefix is None else prefix)
    folder = state_dir_for(prefix, state_dir)
    require_root("lab.down")
    with _lab_lock(folder, create=False):
        return _tear_down(prefix, folder)


def _tear_down(prefix: str, folder: Path) -> Teardown:
    ip = _tool("ip")
    try:
        lab = read_state(folder / STATE_FILE)
    except InfrastructureError:
        lab = None  # damaged state: fall back to the pid files and the naming convention
    if lab is not None and lab.prefix != prefix:
        raise ConfigError(f"{folder / STATE_FILE} belongs to lab '{lab.prefix}', not '{prefix}'")

    # sshd processes: the pids we recorded, verified against our config path.
    pids: set[int] = set()
    host_dirs = [p for p in (folder / "hosts").glob("*") if p.is_dir()]
    for directory in host_dirs:
        host_files = HostFiles(directory)
        config = host_files.sshd_config
        recorded = [_read_pid(host_files.pid_file)]
        if lab is not None:
            recorded += [h.sshd_pid for h in lab.hosts if h.name == directory.name]
        pids.update(p for p in recorded if p is not None and sshd_is_ours(p, config))

    state = observe(ip)
    ns_pattern, _, _ = lab_names(prefix)
    namespaces = {h.namespace for h in lab.hosts} if lab else set()
    namespaces |= {ns for ns in state.namespaces if ns_pattern.match(ns)}
    # Anything still running inside a lab namespace was started on a lab host (a deployed
    # database, a test server): it goes with the host.
    pids.update(processes_in_namespaces(namespaces & state.namespaces))
    stopped = stop_processes(pids)

    commands = plan_teardown(
        prefix,
        state,
        namespaces=namespaces,
        veths=[h.veth for h in lab.hosts if h.veth] if lab else (),
    )
    if commands:
        _batch(ip, commands)
    roots = _remove_deploy_roots(lab) if lab is not None else []
    files = _remove_files(folder)
    return Teardown(prefix, tuple(stopped), commands, tuple(files), tuple(roots))
