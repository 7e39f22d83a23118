"""Fault profiles (``--faults``): provoke resets, loss, a slow link or accept-queue aborts
in the lab, on demand, and always take them away again.

The origin story's resets were intermittent; these profiles make them happen when asked
(``../shared/econnreset/FINDINGS.md``, mechanisms 1b and 6). They act only inside the lab
namespaces of the hosts playing ``server`` (a real host's firewall is not ours to touch),
from the control node, with ``ip netns exec NS <argv>``: no shell, no SSH, no script.

=====================  ===================================================================
profile[=default]      what changes in the server's namespace
=====================  ===================================================================
``resets[=2]``         every Nth data segment (PSH) to the server port is answered with a
                       TCP reset by netfilter (``REJECT --reject-with tcp-reset``, INPUT)
``loss[=5]``           that percent of the server port's TCP packets is dropped, each way
                       (``-m statistic --mode random``; INPUT ``--dport``, OUTPUT ``--sport``)
``bandwidth[=1mbit]``  ``tc`` tbf as the root qdisc of the lab interface (and of ``lo``
                       when a client shares the host: its requests never leave ``lo``)
``abort-on-overflow``  ``net.ipv4.tcp_abort_on_overflow=1``: a full accept queue resets
``latency[=100]``      ``tc`` netem delay in ms (same devices as bandwidth); needs sch_netem
=====================  ===================================================================

What is ours must be found again after a crash, so: every netfilter rule carries the
comment ``readiness:<lab prefix>:<run id>``; every qdisc has the handle :data:`HANDLE`;
and before anything changes, the planned changes (with each sysctl's old value) go to a
journal, ``<root>/.state/<inventory>/faults.json``, beside the inventory's run lock.
:func:`remove` undoes the journal (and so also an :func:`apply` cut short by Ctrl-C);
:func:`sweep` undoes the journals of runs that died (SIGKILL) and any tagged leftover.
``lab.down`` needs none of this: rules, qdiscs and sysctls live in the namespace and
go with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.exceptions import ConfigError, InfrastructureError, PrivilegeError
from orchestrator.files import atomic_write
from orchestrator.lab.design import PEER_IFNAME
from orchestrator.record import FaultRecord

if TYPE_CHECKING:
    from orchestrator.context import Context
    from orchestrator.inventory import Host
    from orchestrator.lab import Lab
    from orchestrator.plan import Plan

RESETS, LOSS, BANDWIDTH, ABORT, LATENCY = (
    "resets",
    "loss",
    "bandwidth",
    "abort-on-overflow",
    "latency",
)
DEFAULTS: Mapping[str, str] = {
    RESETS: "2",
    LOSS: "5",
    BANDWIDTH: "1mbit",
    ABORT: "",
    LATENCY: "100",
}
USAGE = (
    "resets[=N] (every Nth data segment to the server port answered with a TCP reset, "
    "default 2), loss[=PERCENT] (default 5), bandwidth[=RATE] (tc rate such as 1mbit, the "
    "default), abort-on-overflow, latency[=MS] (default 100)"
)
SHAPERS = (BANDWIDTH, LATENCY)  # whole-interface qdiscs
PORTED = (RESETS, LOSS)  # netfilter rules on the server port
HANDLE = "7264"  # the major of every qdisc readiness adds ("rd"): how removal knows ours
TAG = "readiness"
SYSCTL_ABORT = "net.ipv4.tcp_abort_on_overflow"
JOURNAL = "faults.json"
JOURNAL_SCHEMA = 1
TIMEOUT = 15.0
IPTABLES = ("iptables", "-w", "5")  # -w: legacy iptables shares one lock across namespaces
TBF_LATENCY = "400ms"
MIN_RATE_BYTES, MAX_RATE_BYTES = 1_000, 1_250_000_000  # 8kbit .. 10gbit
NETNS_DIR = Path("/run/netns")
# Where the tools live even when the caller's PATH lacks the sbin folders (sudo, cron).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)")
_RATE_BYTES = {
    "bit": 1 / 8,
    "kbit": 125.0,
    "mbit": 125e3,
    "gbit": 125e6,
    "bps": 1.0,
    "kbps": 1e3,
    "mbps": 1e6,
    "gbps": 1e9,
}


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """One fault profile as asked for; ``value`` is normalized ("" when it takes none)."""

    name: str
    value: str
    given: str = field(default="", compare=False)  # as the user wrote it, for messages

    @property
    def text(self) -> str:
        return self.given or (f"{self.name}={self.value}" if self.value else self.name)

    @property
    def parameters(self) -> dict[str, str]:
        """For the run record: the value under a name that says what it means."""
        key = {
            RESETS: "every",
            LOSS: "percent",
            BANDWIDTH: "rate",
            LATENCY: "delay_ms",
        }.get(self.name)
        return {key: self.value} if key else {"tcp_abort_on_overflow": "1"}


def parse(values: Sequence[str]) -> tuple[Profile, ...]:
    """``--faults`` as given (``NAME[=VALUE]`` items, commas allowed inside) -> profiles.

    Every mistake is a ConfigError naming ``--faults`` and the item, so that exit 2 comes
    before anything is deployed.
    """
    profiles: list[Profile] = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            profile = _parse_one(item)
            if any(p.name == profile.name for p in profiles):
                raise ConfigError(
                    f"invalid --faults value {item!r}: profile '{profile.name}' is named twice"
                )
            profiles.append(profile)
    names = {p.name for p in profiles}
    if set(SHAPERS) <= names:
        raise ConfigError(
            "invalid --faults: 'bandwidth' and 'latency' cannot be combined (each is the "
            "root qdisc of the server's lab interface); ask for one per run"
        )
    return tuple(profiles)


def _parse_one(item: str) -> Profile:
    name, has_value, raw = item.partition("=")
    name, raw = name.strip().lower(), raw.strip()
    if name not in DEFAULTS:
        raise ConfigError(
            f"invalid --faults value {item!r}: unknown fault profile {name!r}; "
            f"the profiles are {USAGE}"
        )
    if not has_value:
        return Profile(name, DEFAULTS[name], item)
    checks: dict[str, Callable[[str], str | None]] = {
        RESETS: _every,
        LOSS: _percent,
        BANDWIDTH: _rate,
        ABORT: lambda v: None,
        LATENCY: _delay,
    }
    value = checks[name](raw)
    if value is None:
        raise ConfigError(f"invalid --faults value {item!r}: {_WANTS[name]}")
    return Profile(name, value, item)


_WANTS = {
    RESETS: "resets takes N, a whole number from 1 to 1000000: every Nth data segment to the "
    "server port is answered with a TCP reset (e.g. resets=2)",
    LOSS: "loss takes the percent of the server port's packets to drop, a number above 0 "
    "(at least 0.0001) and at most 100 (e.g. loss=5)",
    BANDWIDTH: "bandwidth takes a tc rate from 8kbit to 10gbit: a number and one of bit, "
    "kbit, mbit, gbit (bits per second) or bps, kbps, mbps, gbps (bytes) (e.g. bandwidth=1mbit)",
    ABORT: "abort-on-overflow takes no value (it sets net.ipv4.tcp_abort_on_overflow=1)",
    LATENCY: "latency takes a delay in milliseconds, a whole number from 1 to 60000 "
    "(e.g. latency=100)",
}


def _every(raw: str) -> str | None:
    return str(int(raw)) if raw.isdigit() and 1 <= int(raw) <= 1_000_000 else None


def _delay(raw: str) -> str | None:
    return str(int(raw)) if raw.isdigit() and 1 <= int(raw) <= 60_000 else None


def _percent(raw: str) -> str | None:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", raw):
        return None
    value = float(raw)
    if not (0.0001 <= value <= 100 and math.isfinite(value)):
        return None
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _rate(raw: str) -> str | None:
    match = _RATE.fullmatch(raw.lower())
    if match is None:
        return None
    rate = raw.lower()
    return rate if MIN_RATE_BYTES <= rate_bytes(rate) <= MAX_RATE_BYTES else None


def rate_bytes(rate: str) -> int:
    """Bytes per second of a tc rate ("1mbit" -> 125000); tc's k, m, g are 1000s."""
    match = _RATE.fullmatch(rate)
    assert match is not None, rate
    return int(float(match.group(1)) * _RATE_BYTES[match.group(2)])


def _probability(percent: str) -> str:
    return f"{float(percent) / 100:.6f}".rstrip("0").rstrip(".")


def _nth(n: str) -> str:
    if n == "1":
        return "every"
    ends = {"1": "st", "2": "nd", "3": "rd"}
    suffix = "th" if n[-2:] in ("11", "12", "13") else ends.get(n[-1], "th")
    return f"every {n}{suffix}"


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0

    @property
    def detail(self) -> str:
        """The tool's complaint on one line (messages are one paragraph), or the exit code."""
        text = " ".join((self.stderr.strip() or self.stdout.strip()).split())
        return text[:400] or f"exit code {self.code}"


class Runner:
    """Runs commands on the control node (argv lists, bounded in time); the tests' fake
    replaces it, so every command a profile makes can be checked without root."""

    def run(self, argv: Sequence[str], timeout: float = TIMEOUT) -> Result:
        path = os.environ.get("PATH", "")
        env = {**os.environ, "PATH": f"{path}:{SYSTEM_PATH}" if path else SYSTEM_PATH}
        env["LC_ALL"] = "C"
        try:
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=env,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Result(124, "", f"{shlex.join(argv)} timed out after {timeout:g}s")
        except OSError as err:
            return Result(127, "", f"cannot run {argv[0]}: {err}")
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def has_namespace(self, namespace: str) -> bool:
        return (NETNS_DIR / namespace).exists()

    def list_namespaces(self) -> list[str]:
        try:
            return sorted(os.listdir(NETNS_DIR))
        except OSError:
            return []

    def alive(self, pid: int) -> bool:
        return Path(f"/proc/{pid}").exists()

    def has_tool(self, name: str) -> bool:
        path = os.environ.get("PATH", "")
        return shutil.which(name, path=f"{path}:{SYSTEM_PATH}") is not None

    def is_root(self) -> bool:
        return os.geteuid() == 0


def _w(words: str) -> tuple[str, ...]:
    """A command's fixed words written as one string (never values: those stay items)."""
    return tuple(words.split())


def in_ns(namespace: str, *argv: str) -> list[str]:
    """``argv`` run inside a lab namespace, the way the lab itself enters one."""
    return ["ip", "netns", "exec", namespace, *argv]


# --------------------------------------------------------------------------- check


_TOOLS = {  # profile -> (tool, Debian package)
    RESETS: ("iptables", "iptables"),
    LOSS: ("iptables", "iptables"),
    BANDWIDTH: ("tc", "iproute2"),
    LATENCY: ("tc", "iproute2"),
    ABORT: ("sysctl", "procps"),
}
_PROBE_RULE = ("INPUT", "-p", "tcp", "--dport", "9", "-m", "comment", "--comment", TAG)
_PROBES: Mapping[str, tuple[str, str, tuple[str, ...]]] = {
    # profile -> (kernel feature, its kernel config option, probe run in a fresh namespace)
    RESETS: (
        "netfilter xt_statistic, xt_comment and REJECT",
        "CONFIG_NETFILTER_XT_MATCH_STATISTIC, CONFIG_IP_NF_TARGET_REJECT",
        (
            *IPTABLES,
            "-A",
            *_PROBE_RULE,
            *_w("-m statistic --mode nth --every 2 --packet 0"),
            *_w("-j REJECT --reject-with tcp-reset"),
        ),
    ),
    LOSS: (
        "netfilter xt_statistic and xt_comment",
        "CONFIG_NETFILTER_XT_MATCH_STATISTIC",
        (
            *IPTABLES,
            "-A",
            *_PROBE_RULE,
            *_w("-m statistic --mode random --probability 0.5"),
            "-j",
            "DROP",
        ),
    ),
    BANDWIDTH: (
        "sch_tbf",
        "CONFIG_NET_SCH_TBF",
        (*_w("tc qdisc add dev lo root tbf rate 1mbit burst 32kbit latency"), TBF_LATENCY),
    ),
    LATENCY: (
        "sch_netem",
        "CONFIG_NET_SCH_NETEM",
        _w("tc qdisc add dev lo root netem delay 1ms"),
    ),
    ABORT: ("the per-namespace sysctl " + SYSCTL_ABORT, "CONFIG_INET", ("sysctl", SYSCTL_ABORT)),
}


def check(plan: Plan, runner: Runner | None = None) -> None:
    """ConfigError (exit 2) before anything is deployed when ``--faults`` cannot be honoured:
    a bad value, an inventory that is not a lab, a tool or kernel feature the control node
    lacks (the lab's namespaces share its kernel and binaries).

    The kernel is asked, not guessed: each profile's change is tried in a throwaway
    namespace that is deleted at once. That needs root, as the lab does; a ``--dry-run``
    without root skips it.
    """
    profiles = parse(plan.options.faults)
    if not profiles:
        return
    runner = runner or Runner()
    _check_inventory(plan, profiles)
    for profile in profiles:
        tool, package = _TOOLS[profile.name]
        for needed, debian in (("ip", "iproute2"), (tool, package)):
            if not runner.has_tool(needed):
                raise ConfigError(
                    f"--faults={profile.text} needs `{needed}` on the control node (the lab's "
                    f"namespaces use its binaries) and it is not installed: install the Debian "
                    f"package {debian} (`make setup` does)"
                )
    if not runner.is_root():
        if plan.options.dry_run:
            return
        raise PrivilegeError(
            "--faults needs root: it changes netfilter rules, qdiscs and sysctls inside the "
            "lab's network namespaces (and the lab itself needs root); run as root"
        )
    _probe_kernel(profiles, runner)


def _check_inventory(plan: Plan, profiles: Sequence[Profile]) -> None:
    inventory = plan.inventory
    asked = ",".join(p.text for p in profiles)
    if inventory.lab is None:
        raise ConfigError(
            f"--faults={asked} acts only inside the local lab's namespaces, and inventory "
            f"'{inventory.name}' ({inventory.file}) is not a lab inventory (it has no 'lab:' "
            "section); readiness does not change a real host's firewall, qdiscs or sysctls. "
            "Run without --faults, or with a lab inventory (e.g. single, cluster)"
        )
    for host in inventory.with_role("server"):
        if host.connection != "lab":
            raise ConfigError(
                f"--faults={asked} acts only inside the local lab's namespaces, and server "
                f"host '{host.name}' of inventory '{inventory.name}' ({inventory.file}) is "
                f"connection '{host.connection}', not a lab host"
            )


_PROBE_NS = re.compile(r"readiness-probe-([0-9]+)-[0-9a-f]{6}")


def _probe_kernel(profiles: Sequence[Profile], runner: Runner) -> None:
    for stale in runner.list_namespaces():  # a probe whose process was killed before it ended
        match = _PROBE_NS.fullmatch(stale)
        if match and not runner.alive(int(match.group(1))):
            runner.run(["ip", "netns", "del", stale])
    namespace = f"readiness-probe-{os.getpid()}-{secrets.token_hex(3)}"
    made = runner.run(["ip", "netns", "add", namespace])
    if not made.ok:
        raise InfrastructureError(
            f"cannot create the throwaway namespace {namespace} that tests the kernel for "
            f"--faults: {made.detail}"
        )
    try:
        for profile in profiles:
            feature, option, probe = _PROBES[profile.name]
            result = runner.run(in_ns(namespace, *probe))
            if not result.ok:
                raise ConfigError(
                    f"--faults={profile.text} needs the kernel feature {feature} ({option}), "
                    f"which this machine's kernel lacks (trying it in a throwaway namespace "
                    f"said: {result.detail}); the lab's namespaces share the control node's "
                    f"kernel. Run without '{profile.name}', or on a kernel that has {feature}"
                )
    finally:
        runner.run(["ip", "netns", "del", namespace])


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class ServerNs:
    """A lab host playing ``server``: where profiles act, and on which devices they shape."""

    host: str  # the lab host's name (rdy-h1)
    namespace: str
    devices: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """One change a profile makes in one namespace, with what undoing it needs."""

    profile: str
    host: str
    namespace: str
    kind: str  # "iptables" (found again by its comment), "qdisc" (by handle), "sysctl"
    command: tuple[str, ...]  # run inside the namespace
    meaning: str
    dev: str = ""
    key: str = ""
    value: str = ""
    old: str = ""

    @property
    def action(self) -> str:
        """For the run record: what it does, and the exact command."""
        return f"{self.host}: {self.meaning} ($ {shlex.join(self.command)})"


@dataclass(frozen=True)
class Facts:
    """What planning needs to read first: device MTUs (tbf's burst) and old sysctls."""

    mtus: Mapping[tuple[str, str], int] = field(default_factory=dict)
    old: Mapping[str, str] = field(default_factory=dict)


def tag_for(prefix: str, run_id: str) -> str:
    """The comment on every rule of one run; sweeps match ``readiness:<prefix>:``."""
    return f"{TAG}:{prefix}:{run_id}"


def server_namespaces(inventory_hosts: Sequence[Host], lab: Lab) -> tuple[ServerNs, ...]:
    """The lab hosts that play ``server`` (inventory ``h1`` is lab host ``<prefix>-h1``).

    A client on the same host reaches the server over ``lo``, so ``lo`` is shaped too.
    """
    by_name = {h.name: h for h in lab.hosts}
    found = []
    for host in inventory_hosts:
        if "server" not in host.roles:
            continue
        info = by_name.get(f"{lab.prefix}-{host.name}") or by_name.get(host.name)
        if host.connection != "lab" or info is None:
            raise ConfigError(
                f"--faults acts only in lab namespaces, and server host '{host.name}' is not "
                f"a host of lab '{lab.prefix}'"
            )
        devices = (PEER_IFNAME, "lo") if "client" in host.roles else (PEER_IFNAME,)
        found.append(ServerNs(info.name, info.namespace, devices))
    return tuple(found)


def plan_changes(
    profiles: Sequence[Profile],
    servers: Sequence[ServerNs],
    port: int,
    tag: str,
    facts: Facts,
) -> list[Change]:
    """Every change, in order (pure: the unit tests check these commands exactly)."""
    changes: list[Change] = []
    for profile in profiles:
        for server in servers:
            changes += _PLANNERS[profile.name](profile, server, port, tag, facts)
    return changes


def _resets(p: Profile, s: ServerNs, port: int, tag: str, facts: Facts) -> list[Change]:
    command = (
        *IPTABLES,
        *_w("-I INPUT -p tcp --dport"),
        str(port),
        *_w("--tcp-flags PSH PSH -m statistic --mode nth --every"),
        p.value,
        *_w("--packet 0 -m comment --comment"),
        tag,
        *_w("-j REJECT --reject-with tcp-reset"),
    )
    meaning = (
        f"{_nth(p.value)} data segment (PSH) to TCP port {port}, from the first on, answered "
        "with a TCP reset by netfilter (INPUT), as a middlebox would"
    )
    return [Change(p.name, s.host, s.namespace, "iptables", command, meaning)]


def _loss(p: Profile, s: ServerNs, port: int, tag: str, facts: Facts) -> list[Change]:
    changes = []
    for chain, match, way in (("INPUT", "--dport", "to"), ("OUTPUT", "--sport", "from")):
        command = (
            *IPTABLES,
            *("-I", chain, "-p", "tcp", match, str(port)),
            *_w("-m statistic --mode random --probability"),
            _probability(p.value),
            *("-m", "comment", "--comment", tag, "-j", "DROP"),
        )
        meaning = f"{p.value}% of TCP packets {way} port {port} dropped ({chain})"
        changes.append(Change(p.name, s.host, s.namespace, "iptables", command, meaning))
    return changes


def _shape(p: Profile, s: ServerNs, port: int, tag: str, facts: Facts) -> list[Change]:
    changes = []
    for dev in s.devices:
        root = ("tc", "qdisc", "add", "dev", dev, "root", "handle", f"{HANDLE}:")
        command: tuple[str, ...]
        if p.name == LATENCY:
            command = (*root, "netem", "delay", f"{p.value}ms")
            meaning = f"{p.value} ms added to every packet leaving {dev} (netem)"
        else:
            # tbf drops any packet bigger than its bucket: at least one frame of the device
            # (lo's are 64 KiB), and 10 ms of the rate so fast rates stay smooth.
            mtu = facts.mtus.get((s.namespace, dev), 1500)
            burst = max(mtu + 64, rate_bytes(p.value) // 100)
            tbf = ("tbf", "rate", p.value, "burst", str(burst), "latency", TBF_LATENCY)
            command = (*root, *tbf)
            meaning = f"traffic leaving {dev} limited to {p.value} (tbf, burst {burst} bytes)"
        changes.append(Change(p.name, s.host, s.namespace, "qdisc", command, meaning, dev=dev))
    return changes


def _abort(p: Profile, s: ServerNs, port: int, tag: str, facts: Facts) -> list[Change]:
    old = facts.old.get(s.namespace, "0")
    command = ("sysctl", "-q", "-w", f"{SYSCTL_ABORT}=1")
    meaning = (
        f"{SYSCTL_ABORT} set to 1 (was {old}, restored at the end): a full accept queue "
        "answers a connection's first data with a reset instead of dropping it"
    )
    change = Change(p.name, s.host, s.namespace, "sysctl", command, meaning)
    return [replace(change, key=SYSCTL_ABORT, value="1", old=old)]


_PLANNERS: Mapping[str, Callable[[Profile, ServerNs, int, str, Facts], list[Change]]] = {
    RESETS: _resets,
    LOSS: _loss,
    BANDWIDTH: _shape,
    LATENCY: _shape,
    ABORT: _abort,
}


def _read_facts(profiles: Sequence[Profile], servers: Sequence[ServerNs], runner: Runner) -> Facts:
    names = {p.name for p in profiles}
    mtus: dict[tuple[str, str], int] = {}
    old: dict[str, str] = {}
    for server in servers:
        for dev in server.devices if names & set(SHAPERS) else ():
            result = runner.run(in_ns(server.namespace, "ip", "-j", "link", "show", "dev", dev))
            try:
                mtus[(server.namespace, dev)] = int(json.loads(result.stdout)[0]["mtu"])
            except (ValueError, LookupError, TypeError):
                raise InfrastructureError(
                    f"lab host {server.host}: cannot read the MTU of {dev}: {result.detail}"
                ) from None
        if ABORT in names:
            result = runner.run(in_ns(server.namespace, "sysctl", "-n", SYSCTL_ABORT))
            if not result.ok or not result.stdout.strip().isdigit():
                raise InfrastructureError(
                    f"lab host {server.host}: cannot read {SYSCTL_ABORT}: {result.detail}"
                )
            old[server.namespace] = result.stdout.strip()
    return Facts(mtus, old)


# --------------------------------------------------------------------------- journal


@dataclass(frozen=True)
class Journal:
    """What one run planned to change, written before it changes anything."""

    run_id: str
    lab: str
    tag: str
    changes: tuple[Change, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": JOURNAL_SCHEMA,
            "run_id": self.run_id,
            "lab": self.lab,
            "tag": self.tag,
            "changes": [{**asdict(c), "command": list(c.command)} for c in self.changes],
        }


def write_journal(path: Path, journal: Journal) -> None:
    atomic_write(path, (json.dumps(journal.to_json(), indent=1) + "\n").encode(), mode=0o600)


def read_journal(path: Path) -> Journal | None:
    """The journal at ``path``, None if there is none; ValueError if it is damaged."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read {path}: {err}") from None
    try:
        if data["schema"] != JOURNAL_SCHEMA:
            raise ValueError(f"schema {data['schema']!r}")
        changes = tuple(
            Change(**{**c, "command": tuple(str(a) for a in c["command"])}) for c in data["changes"]
        )
        return Journal(str(data["run_id"]), str(data["lab"]), str(data["tag"]), changes)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} is damaged ({type(err).__name__}: {err})") from None


# --------------------------------------------------------------------------- apply


def apply(ctx: Context, runner: Runner | None = None) -> None:
    """Apply every profile of ``--faults`` in the server's lab namespaces (a lifecycle step
    after deploy). The record and the journal are saved before anything changes, so that
    a crash leaves word of what may be left; a profile that fails is InfrastructureError
    (exit 3) after recording, and teardown's :func:`remove` takes back what was done."""
    profiles = parse(ctx.plan.options.faults)
    if not profiles:
        return
    runner = runner or Runner()
    if ctx.lab is None:
        raise ConfigError("--faults acts only in the local lab's namespaces; this run has none")
    servers = server_namespaces(ctx.inventory.hosts, ctx.lab)
    port = ctx.inventory.application.server_port
    hosts = [s.host for s in servers]
    records = [
        FaultRecord(
            p.name, {**p.parameters, **({"port": str(port)} if p.name in PORTED else {})}, hosts
        )
        for p in profiles
    ]
    ctx.record.faults.extend(records)
    ctx.save()
    try:
        facts = _read_facts(profiles, servers, runner)
    except InfrastructureError as err:
        for record in records:
            record.error, record.removed = str(err), True  # nothing was changed
        ctx.save()
        raise
    tag = tag_for(ctx.lab.prefix, ctx.record.run_id)
    changes = plan_changes(profiles, servers, port, tag, facts)
    for record in records:
        record.actions = [c.action for c in changes if c.profile == record.name]
    _undo_earlier(ctx.state_dir / JOURNAL, ctx.record.run_id, runner)
    write_journal(
        ctx.state_dir / JOURNAL, Journal(ctx.record.run_id, ctx.lab.prefix, tag, tuple(changes))
    )
    ctx.save()
    _apply_changes(ctx, changes, records, runner)


def _undo_earlier(path: Path, run_id: str, runner: Runner) -> None:
    """An earlier run's journal is never overwritten (it may be all that says what that
    run left): undo it first. :func:`sweep` normally has, at the start of the run."""
    try:
        earlier = read_journal(path)
    except ValueError as err:
        raise InfrastructureError(f"{err}; remove it once the lab is clean") from None
    if earlier is None or earlier.run_id == run_id:
        return
    failures = undo(earlier, runner)
    if failures:
        raise InfrastructureError(
            f"the faults of an earlier run ({earlier.run_id}) could not be removed: "
            + "; ".join(failures.values())
        )
    path.unlink(missing_ok=True)


def _apply_changes(
    ctx: Context, changes: Sequence[Change], records: Sequence[FaultRecord], runner: Runner
) -> None:
    for record in records:
        for change in (c for c in changes if c.profile == record.name):
            result = runner.run(in_ns(change.namespace, *change.command))
            if not result.ok:
                record.error = f"{change.host}: {shlex.join(change.command)}: {result.detail}"
                ctx.save()
                raise InfrastructureError(
                    f"fault profile '{record.name}' could not be applied on lab host "
                    f"{change.host}: {shlex.join(change.command)} failed: {result.detail}"
                )
            ctx.progress(change.host, "faults", change.meaning)
        record.applied = True
        ctx.save()


# --------------------------------------------------------------------------- remove


def remove(ctx: Context, runner: Runner | None = None) -> dict[str, str]:
    """Take back everything :func:`apply` may have done (teardown's first act, also after
    Ctrl-C and with ``--keep``): idempotent, tolerant of what is already gone, never
    raises. Returns lab host -> what could not be removed."""
    runner = runner or Runner()
    path = ctx.state_dir / JOURNAL
    try:
        journal = read_journal(path)
    except ValueError as err:
        return {"faults": str(err)}
    failures: dict[tuple[str, str], str] = {}
    if journal is not None:
        try:
            failures = undo(journal, runner)
            if not failures:
                path.unlink(missing_ok=True)
        except Exception as err:  # a bug or a full disk must not cut the teardown short
            failures = {(c.host, c.kind): repr(err) for c in journal.changes}
    ours = journal if journal is not None and journal.run_id == ctx.record.run_id else None
    for record in ctx.record.faults:
        kinds = {c.kind for c in ours.changes if c.profile == record.name} if ours else set()
        left = [m for (host, kind), m in failures.items() if kind in kinds and host in record.hosts]
        record.removed = not left
        if left:
            record.error = "; ".join([*filter(None, [record.error]), *left])
    with contextlib.suppress(Exception):
        ctx.save()
    merged: dict[str, str] = {}
    for (host, _kind), message in sorted(failures.items()):
        merged[host] = f"{merged[host]}; {message}" if host in merged else message
    return merged


def undo(journal: Journal, runner: Runner) -> dict[tuple[str, str], str]:
    """Undo a journal's changes; (lab host, kind) -> why something could not be undone.

    A namespace that is gone took its changes with it; rules go by the run's tag, qdiscs
    by :data:`HANDLE`, a sysctl back to its old value only if it still holds ours.
    """
    failures: dict[tuple[str, str], str] = {}
    seen: set[tuple[str, str, str]] = set()
    for change in journal.changes:
        key = (change.namespace, change.kind, change.dev or change.key)
        if key in seen or not runner.has_namespace(change.namespace):
            continue
        seen.add(key)
        try:
            if change.kind == "iptables":
                drop_rules(change.namespace, lambda tag: tag == journal.tag, runner)
            elif change.kind == "qdisc":
                drop_qdisc(change.namespace, change.dev, runner)
            else:
                _restore_sysctl(change, runner)
        except _Undo as err:
            failures[(change.host, change.kind)] = str(err)
    return failures


class _Undo(Exception):
    """Something of ours could not be removed (the message says what and why)."""


def _comment(tokens: Sequence[str]) -> str | None:
    for i, token in enumerate(tokens[:-1]):
        if token == "--comment":
            return tokens[i + 1]
    return None


def drop_rules(namespace: str, wanted: Callable[[str], bool], runner: Runner) -> list[str]:
    """Delete the filter table's rules whose comment ``wanted`` accepts; their comments."""
    listed = runner.run(in_ns(namespace, *IPTABLES, "-S"))
    if not listed.ok:
        raise _Undo(f"cannot list netfilter rules in {namespace}: {listed.detail}")
    removed = []
    for line in listed.stdout.splitlines():
        if not line.startswith("-A "):
            continue
        tokens = shlex.split(line)
        tag = _comment(tokens)
        if tag is None or not wanted(tag):
            continue
        result = runner.run(in_ns(namespace, *IPTABLES, "-D", *tokens[1:]))
        if not result.ok:
            raise _Undo(f"cannot delete rule `{line}` in {namespace}: {result.detail}")
        removed.append(tag)
    return removed


def drop_qdisc(namespace: str, dev: str, runner: Runner) -> bool:
    """Delete ``dev``'s root qdisc if it is ours (its handle); whether one was deleted."""
    shown = runner.run(in_ns(namespace, "tc", "-j", "qdisc", "show", "dev", dev))
    if not shown.ok:
        if "Cannot find device" in shown.stderr:
            return False  # the device went, and its qdisc with it
        raise _Undo(f"cannot list the qdiscs of {dev} in {namespace}: {shown.detail}")
    try:
        qdiscs = json.loads(shown.stdout or "[]")
    except json.JSONDecodeError:
        raise _Undo(f"unreadable `tc -j qdisc show dev {dev}` in {namespace}") from None
    if not any(q.get("root") and q.get("handle") == f"{HANDLE}:" for q in qdiscs):
        return False
    result = runner.run(
        in_ns(namespace, "tc", "qdisc", "del", "dev", dev, "root", "handle", f"{HANDLE}:")
    )
    if not result.ok:
        raise _Undo(f"cannot delete the qdisc {HANDLE}: of {dev} in {namespace}: {result.detail}")
    return True


def _restore_sysctl(change: Change, runner: Runner) -> None:
    now = runner.run(in_ns(change.namespace, "sysctl", "-n", change.key))
    if not now.ok:
        raise _Undo(f"cannot read {change.key} in {change.namespace}: {now.detail}")
    if now.stdout.strip() != change.value or change.value == change.old:
        return  # already back, or changed by someone else since: not ours to touch
    result = runner.run(in_ns(change.namespace, "sysctl", "-q", "-w", f"{change.key}={change.old}"))
    if not result.ok:
        where = f"{change.key}={change.old} in {change.namespace}"
        raise _Undo(f"cannot restore {where}: {result.detail}")


# --------------------------------------------------------------------------- sweep


@dataclass
class _Live:
    """What runs still alive own: their rules' tags and their qdiscs' (namespace, dev)."""

    tags: set[str] = field(default_factory=set)
    qdiscs: set[tuple[str, str]] = field(default_factory=set)

    def add(self, journal: Journal) -> None:
        self.tags.add(journal.tag)
        self.qdiscs |= {(c.namespace, c.dev) for c in journal.changes if c.kind == "qdisc"}


def sweep(ctx: Context, runner: Runner | None = None) -> list[str]:
    """Remove what runs killed outright (SIGKILL, power cut) left in this lab: call it when
    a run starts on a lab, after the lab step, whether or not it asks for ``--faults``.

    Journals of this checkout's inventories are undone when their run is dead (its
    inventory's lock is free, or the inventory is ours: we hold its lock); then any rule
    tagged ``readiness:<prefix>:`` or qdisc with :data:`HANDLE` in the lab's namespaces
    that no live run owns goes too. Returns what it removed; InfrastructureError (exit 3)
    if something stays, since a leftover reset rule would falsify the run.
    """
    if ctx.lab is None:
        return []
    runner = runner or Runner()
    live, notes, failures = _Live(), list[str](), list[str]()
    for path in sorted((ctx.root / ".state").glob(f"*/{JOURNAL}")):
        removed, failed = _sweep_journal(ctx, path, live, runner)
        notes += removed
        failures += failed
    try:
        notes += _sweep_leftovers(ctx.lab, live, runner)
    except _Undo as err:
        failures.append(str(err))
    for note in notes:
        ctx.progress("lab", "faults", note)
    if failures:
        raise InfrastructureError(
            f"lab '{ctx.lab.prefix}' still holds faults of an earlier run that could not be "
            f"removed: {'; '.join(failures)}"
        )
    return notes


def _sweep_journal(
    ctx: Context, path: Path, live: _Live, runner: Runner
) -> tuple[list[str], list[str]]:
    assert ctx.lab is not None
    try:
        journal = read_journal(path)
    except ValueError as err:
        return [], [str(err)]
    if journal is None or journal.lab != ctx.lab.prefix:
        return [], []
    own = path.parent.resolve() == ctx.state_dir.resolve()
    if journal.run_id == ctx.record.run_id:
        live.add(journal)
        return [], []
    with _lock_if_free(path.parent / "lock", held_by_us=own) as free:
        if not free:  # that inventory's run is alive: its faults are its own business
            live.add(journal)
            return [], []
        failures = undo(journal, runner)
        if failures:
            return [], [f"run {journal.run_id}: {msg}" for msg in failures.values()]
        path.unlink(missing_ok=True)
    return [f"removed the faults left by run {journal.run_id} ({path})"], []


@contextlib.contextmanager
def _lock_if_free(lock: Path, *, held_by_us: bool) -> Iterator[bool]:
    """Hold an inventory's run lock if no run holds it (so none starts meanwhile)."""
    if held_by_us:
        yield True
        return
    try:
        handle = lock.open("a")
    except OSError:
        yield False  # cannot tell: assume alive, leave its faults
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def _sweep_leftovers(lab: Lab, live: _Live, runner: Runner) -> list[str]:
    mine = f"{TAG}:{lab.prefix}:"
    notes = []
    for host in lab.hosts:
        ns = host.namespace
        if not runner.has_namespace(ns):
            continue
        if runner.has_tool("iptables"):
            tags = drop_rules(ns, lambda t: t.startswith(mine) and t not in live.tags, runner)
            notes += [f"{host.name}: removed a leftover netfilter rule ({t})" for t in tags]
        if runner.has_tool("tc"):
            for dev in (PEER_IFNAME, "lo"):
                if (ns, dev) not in live.qdiscs and drop_qdisc(ns, dev, runner):
                    notes.append(f"{host.name}: removed a leftover qdisc {HANDLE}: on {dev}")
    return notes
