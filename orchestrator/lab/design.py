"""The lab's design: what a lab consists of, named and validated; pure functions, no I/O.

``lab.up`` turns this design into a running lab (:mod:`orchestrator.lab.ops`, with the
network changes worked out by :mod:`orchestrator.lab.network`); ``lab.down`` finds what
to remove by the same names and file names, so each is written down only here.

Naming (everything carries the prefix, so labs with different prefixes coexist):

=====================  ==========================  ===================================
thing                  name                        example (prefix ``rdy``)
=====================  ==========================  ===================================
host name, namespace   ``<prefix>-h<i>``           ``rdy-h1`` ... ``rdy-h4``
bridge (root ns)       ``<prefix>-br``             ``rdy-br`` holding ``10.213.71.1``
veth, root side        ``<prefix>-v<i>``           ``rdy-v1`` (enslaved to the bridge)
veth, namespace side   ``eth0``                    ``10.213.71.2`` in ``rdy-h1``
deploy root            ``<base>/<prefix>/<host>``  ``/var/tmp/readiness-lab/rdy/rdy-h1``
=====================  ==========================  ===================================

A prefix is 1 to 6 characters of ``[a-z0-9]`` starting with a letter, so the longest
interface name (``<prefix>-v<i>`` with up to :data:`MAX_HOSTS` hosts) stays well inside
Linux's 15-character limit (IFNAMSIZ - 1).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.exceptions import ConfigError

DEFAULT_PREFIX = "rdy"
DEFAULT_SUBNET = "10.213.71.0/24"
DEFAULT_HOSTS = 4
MAX_HOSTS = 64
DEFAULT_DEPLOY_BASE = Path("/var/tmp/readiness-lab")
SSH_PORT = 22
LAB_USER = "root"
PEER_IFNAME = "eth0"
STATE_FILE = "lab.json"
IFNAME_MAX = 15

_PREFIX = re.compile(r"[a-z][a-z0-9]{0,5}")
# Characters that would need escaping in sshd_config or be expanded there (%h, %u...).
_UNSAFE_PATH = re.compile(r'["\\%\n\r\t]')
# RFC 1918: the lab's addresses must never shadow a network someone else uses. Python's
# ``is_private`` is wider (0.0.0.0/8, 192.0.2.0/24, 240.0.0.0/4 ... count as "private").
PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(r) for r in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


def prefix_problem(prefix: object) -> str | None:
    """Why ``prefix`` cannot name a lab, or None.

    The problem comes as text so that each caller can place it: ``lab.up`` names the
    option, the inventory loader its file, line and field.
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        return (
            f"invalid lab prefix {prefix!r:.40}: use 1 to 6 characters of [a-z0-9] starting "
            "with a letter (e.g. 'rdy'); it is part of every interface and namespace name the "
            f"lab creates, and Linux limits interface names to {IFNAME_MAX} characters"
        )
    return None


def validate_prefix(prefix: str) -> str:
    problem = prefix_problem(prefix)
    if problem:
        raise ConfigError(problem, field="prefix")
    return prefix


def subnet_problem(subnet: str) -> str | None:
    """Why ``subnet`` cannot hold a lab, or None (see :func:`prefix_problem`)."""
    shown = f"{subnet!r:.60}"
    try:
        network = ipaddress.ip_network(subnet, strict=True)
    except (ValueError, TypeError) as err:
        return (
            f"invalid lab subnet {shown}: {str(err)[:120]} (expected an IPv4 network such as "
            f"{DEFAULT_SUBNET}, with no host bits set)"
        )
    if not isinstance(network, ipaddress.IPv4Network):
        return f"invalid lab subnet {shown}: only IPv4 is supported"
    if network.is_loopback or network.is_link_local or network.is_multicast:
        return (
            f"invalid lab subnet {shown}: loopback, link-local and multicast ranges "
            "cannot be used; pick a private range such as 10.213.71.0/24"
        )
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        return (
            f"invalid lab subnet {shown}: not a private range; the lab must not shadow "
            "public addresses (use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)"
        )
    if network.prefixlen > 30:
        return (
            f"invalid lab subnet {shown}: too small, a lab needs at least a /30 "
            "(one address for the bridge, one per host)"
        )
    return None


def parse_subnet(subnet: str) -> ipaddress.IPv4Network:
    problem = subnet_problem(subnet)
    if problem:
        raise ConfigError(problem, field="subnet")
    return ipaddress.IPv4Network(subnet)


def capacity(network: ipaddress.IPv4Network) -> int:
    """How many lab hosts fit: all usable addresses but the bridge's."""
    return network.num_addresses - 3


def hosts_problem(hosts: int, network: ipaddress.IPv4Network) -> str | None:
    """Why ``hosts`` lab hosts cannot be made on ``network``, or None."""
    if isinstance(hosts, bool) or not isinstance(hosts, int) or hosts < 1:
        return f"invalid number of lab hosts {hosts!r:.40}: need at least 1"
    room = min(capacity(network), MAX_HOSTS)
    if hosts > room:
        why = (
            f"subnet {network} has room for {capacity(network)} hosts (.1 is the bridge)"
            if capacity(network) < MAX_HOSTS
            else f"a lab has at most {MAX_HOSTS} hosts"
        )
        return f"too many lab hosts: {hosts} requested, but {why}"
    return None


def validate_hosts(hosts: int, network: ipaddress.IPv4Network) -> int:
    problem = hosts_problem(hosts, network)
    if problem:
        raise ConfigError(problem, field="hosts")
    return hosts


def parse_hosts(value: int | str | None) -> int | None:
    """The --hosts option as given on a command line (a string) or by code."""
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value, 10)
    except ValueError:
        raise ConfigError(
            f"invalid number of lab hosts {value!r}: expected a whole number", field="hosts"
        ) from None


def check_path(path: Path, what: str) -> Path:
    if _UNSAFE_PATH.search(str(path)):
        raise ConfigError(
            f"{what} {str(path)!r} contains a quote, backslash, '%' or control character, "
            "which sshd_config cannot hold; choose another folder",
            field="state_dir",
        )
    return path


@dataclass(frozen=True)
class HostFiles:
    """The files the lab keeps for one host, in that host's folder.

    Their names are written down only here: :class:`HostPlan` hands them to ``lab.up``,
    and ``lab.down`` finds them from the bare folder (the state file may be damaged or
    gone, and then there is no plan to ask).
    """

    dir: Path

    @property
    def sshd_config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def host_key_pub(self) -> Path:
        return self.dir / "ssh_host_ed25519_key.pub"

    @property
    def pid_file(self) -> Path:
        return self.dir / "sshd.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "sshd.log"

    @property
    def all(self) -> tuple[Path, ...]:
        return (self.sshd_config, self.host_key, self.host_key_pub, self.pid_file, self.log_file)


@dataclass(frozen=True)
class LabFiles:
    """The lab-wide files in a lab's state folder (see :class:`HostFiles` for why)."""

    dir: Path

    @property
    def state_file(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def key_file(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def key_file_pub(self) -> Path:
        return self.dir / "id_ed25519.pub"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def authorized_keys(self) -> Path:
        return self.dir / "authorized_keys"

    @property
    def all(self) -> tuple[Path, ...]:
        return (
            self.state_file,
            self.key_file,
            self.key_file_pub,
            self.known_hosts,
            self.authorized_keys,
        )


@dataclass(frozen=True)
class HostPlan:
    """One lab host: its names, address and the files of its sshd."""

    index: int
    name: str
    namespace: str
    veth: str
    address: str
    prefixlen: int
    dir: Path
    deploy_root: Path
    ssh_port: int = SSH_PORT
    peer: str = PEER_IFNAME

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefixlen}"

    @property
    def mac(self) -> str:
        return mac_for(self.address)

    @property
    def sshd_config(self) -> Path:
        return HostFiles(self.dir).sshd_config

    @property
    def host_key(self) -> Path:
        return HostFiles(self.dir).host_key

    @property
    def host_key_pub(self) -> Path:
        return HostFiles(self.dir).host_key_pub

    @property
    def pid_file(self) -> Path:
        return HostFiles(self.dir).pid_file

    @property
    def log_file(self) -> Path:
        return HostFiles(self.dir).log_file

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file the lab writes for this host (what lab.down removes)."""
        return HostFiles(self.dir).all


@dataclass(frozen=True)
class LabPlan:
    """The whole lab as it should be."""

    prefix: str
    subnet: str
    bridge: str
    bridge_address: str
    prefixlen: int
    state_dir: Path
    deploy_base: Path
    hosts: tuple[HostPlan, ...]
    user: str = LAB_USER

    @property
    def bridge_cidr(self) -> str:
        return f"{self.bridge_address}/{self.prefixlen}"

    @property
    def bridge_mac(self) -> str:
        return mac_for(self.bridge_address)

    @property
    def state_file(self) -> Path:
        return LabFiles(self.state_dir).state_file

    @property
    def key_file(self) -> Path:
        return LabFiles(self.state_dir).key_file

    @property
    def key_file_pub(self) -> Path:
        return LabFiles(self.state_dir).key_file_pub

    @property
    def known_hosts(self) -> Path:
        return LabFiles(self.state_dir).known_hosts

    @property
    def authorized_keys(self) -> Path:
        return LabFiles(self.state_dir).authorized_keys

    @property
    def files(self) -> tuple[Path, ...]:
        """Every lab-wide file the lab writes (what lab.down removes)."""
        return LabFiles(self.state_dir).all


def mac_for(address: str) -> str:
    """A fixed, locally administered MAC derived from an IPv4 address.

    A host rebuilt after a crash keeps its MAC, so neighbours' ARP caches stay right (a
    fresh random MAC left them sending to the old one for seconds). The bridge gets one
    too: a Linux bridge otherwise takes the lowest port MAC, which changes as ports come
    and go. Addresses are unique on the machine (overlapping subnets are refused), so are
    these MACs.
    """
    return "02:00:" + ":".join(f"{octet:02x}" for octet in ipaddress.IPv4Address(address).packed)


def host_name(prefix: str, index: int) -> str:
    return f"{prefix}-h{index}"


def veth_name(prefix: str, index: int) -> str:
    return f"{prefix}-v{index}"


def bridge_name(prefix: str) -> str:
    return f"{prefix}-br"


def lab_names(prefix: str) -> tuple[re.Pattern[str], re.Pattern[str], str]:
    """Patterns of the namespaces and veths a lab of this prefix may have made, and its bridge."""
    p = re.escape(validate_prefix(prefix))
    return re.compile(rf"^{p}-h[0-9]+\Z"), re.compile(rf"^{p}-v[0-9]+\Z"), bridge_name(prefix)


def plan_lab(
    *,
    state_dir: Path,
    hosts: int = DEFAULT_HOSTS,
    prefix: str = DEFAULT_PREFIX,
    subnet: str = DEFAULT_SUBNET,
    deploy_base: Path = DEFAULT_DEPLOY_BASE,
) -> LabPlan:
    """Validate the options and name everything; raises ConfigError on a user mistake."""
    validate_prefix(prefix)
    network = parse_subnet(subnet)
    validate_hosts(hosts, network)
    state_dir = check_path(Path(state_dir).absolute(), "lab state folder")
    deploy_base = Path(deploy_base).absolute()
    addresses = list(network.hosts())
    bridge = bridge_name(prefix)
    host_plans = tuple(
        HostPlan(
            index=i,
            name=host_name(prefix, i),
            namespace=host_name(prefix, i),
            veth=veth_name(prefix, i),
            address=str(addresses[i]),
            prefixlen=network.prefixlen,
            dir=state_dir / "hosts" / host_name(prefix, i),
            deploy_root=deploy_base / prefix / host_name(prefix, i),
        )
        for i in range(1, hosts + 1)
    )
    for name in [bridge, *(h.veth for h in host_plans)]:
        assert len(name) <= IFNAME_MAX, name  # guaranteed by the prefix and host limits
    return LabPlan(
        prefix=prefix,
        subnet=str(network),
        bridge=bridge,
        bridge_address=str(addresses[0]),
        prefixlen=network.prefixlen,
        state_dir=state_dir,
        deploy_base=deploy_base,
        hosts=host_plans,
    )


def render_sshd_config(plan: LabPlan, host: HostPlan) -> str:
    """sshd_config of one lab host: its own address only, keys only, files in the state dir."""
    return "\n".join(
        [
            f"# readiness lab {plan.prefix}, host {host.name}: generated, do not edit",
            f"ListenAddress {host.address}:{host.ssh_port}",
            "AddressFamily inet",
            f'HostKey "{host.host_key}"',
            f'PidFile "{host.pid_file}"',
            f'AuthorizedKeysFile "{plan.authorized_keys}"',
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "HostbasedAuthentication no",
            "UsePAM no",
            # The state folder may live under /tmp (tests), whose mode StrictModes rejects;
            # the lab creates its folders 0700 itself.
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "X11Forwarding no",
            "AllowAgentForwarding no",
            "PermitUserEnvironment no",
            "LogLevel INFO",
            # Deploys open many sessions in parallel; the default 10 throttles them.
            "MaxStartups 64:30:128",
            "MaxSessions 64",
            "Subsystem sftp internal-sftp",
            # bash sources ~/.bashrc when sshd starts it, even non-interactively, unless
            # SHLVL says it is nested. Lab hosts share the control node's /root, and its
            # .bashrc (pyenv, PATH tweaks) would slow every command and leak the control
            # node's environment into the "remote" host.
            "SetEnv SHLVL=1",
            "",
        ]
    )


def known_hosts_text(plan: LabPlan, host_keys: Mapping[str, str]) -> str:
    """known_hosts pinning each host's key to its address (port 22: no [addr]:port form).

    ``host_keys`` maps host name to the ``<type> <base64>`` part of its public key.
    """
    lines = []
    for host in plan.hosts:
        key = " ".join(host_keys[host.name].split()[:2])
        where = host.address if host.ssh_port == 22 else f"[{host.address}]:{host.ssh_port}"
        lines.append(f"{where} {key}\n")
    return "".join(lines)
