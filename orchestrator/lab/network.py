"""The lab's network plan: what `ip` must change to take the machine to the lab's design.

:mod:`orchestrator.lab.design` says what a lab should be (names, addresses, files);
this module compares that with what the machine has (:class:`NetState`, read by
:func:`orchestrator.lab.ops.observe`) and answers with ``ip -batch`` lines: the repairs of
``lab.up`` (:func:`plan_network`) and the removals of ``lab.down`` (:func:`plan_teardown`).
Pure functions, no I/O, so every repair can be unit tested against a fake network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orchestrator.exceptions import ConfigError
from orchestrator.lab.design import HostPlan, LabPlan, lab_names


@dataclass(frozen=True)
class Link:
    """A network interface as `ip -j -d addr show` reports it."""

    name: str
    up: bool
    kind: str | None = None
    master: str | None = None
    addresses: tuple[str, ...] = ()
    mac: str | None = None


@dataclass(frozen=True)
class NetState:
    """The part of the machine's network the lab cares about."""

    links: Mapping[str, Link] = field(default_factory=dict)
    namespaces: frozenset[str] = frozenset()
    ns_links: Mapping[str, Mapping[str, Link]] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkSteps:
    """Commands (`ip -batch` lines) that take the network from what is to what should be."""

    root: tuple[str, ...] = ()
    inside: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fresh: frozenset[str] = frozenset()
    """Hosts whose namespace is (re)created: their sshd must be (re)started."""

    @property
    def empty(self) -> bool:
        return not self.root and not any(self.inside.values())


def plan_network(plan: LabPlan, state: NetState) -> NetworkSteps:
    """Repair or create what is missing; touch nothing that is already right.

    A host whose namespace or veth pair is gone or half-gone is rebuilt whole (the
    simplest repair that is always right); softer drift (a link down, an address
    missing, a veth off the bridge) is fixed in place.
    """
    root, macs_moved = _bridge_steps(plan, state.links.get(plan.bridge))
    inside: dict[str, tuple[str, ...]] = {}
    fresh: set[str] = set()
    for host in plan.hosts:
        veth = _own_link(state.links.get(host.veth), host.veth, "veth")
        has_ns = host.namespace in state.namespaces
        ns_links = state.ns_links.get(host.namespace, {}) if has_ns else {}
        peer = ns_links.get(host.peer)
        if veth is None or peer is None or not has_ns:
            root += _rebuild_host(plan, host, had_veth=veth is not None, had_ns=has_ns)
            inside[host.namespace] = _fresh_inside(host)
            fresh.add(host.name)
            continue
        if veth.master != plan.bridge or not veth.up:
            root.append(f"link set {host.veth} master {plan.bridge} up")
        lines, moved = _repair_inside(host, peer, ns_links.get("lo"))
        macs_moved = macs_moved or moved
        if lines:
            inside[host.namespace] = lines
    if macs_moved:
        # A lab made before MACs were fixed: forget the old ones everywhere at once
        # instead of waiting out stale ARP entries.
        root.append(f"neigh flush dev {plan.bridge}")
        for host in plan.hosts:
            if host.name not in fresh:
                inside[host.namespace] = (
                    *inside.get(host.namespace, ()),
                    f"neigh flush dev {host.peer}",
                )
    return NetworkSteps(tuple(root), inside, frozenset(fresh))


def _own_link(link: Link | None, name: str, kind: str) -> Link | None:
    """``link`` if it can be the lab's; an interface of another kind under our name is
    someone else's, and replacing it could cut a real network, so that is refused."""
    if link is not None and link.kind not in (None, kind):
        what = "the lab's bridge" if kind == "bridge" else "the lab's"
        raise ConfigError(
            f"a {link.kind} interface named {name} exists and is not {what}; "
            "remove it or choose another lab prefix",
            field="prefix",
        )
    return link


def _bridge_steps(plan: LabPlan, bridge: Link | None) -> tuple[list[str], bool]:
    """Root-namespace lines that create or repair the bridge, and whether its MAC moved."""
    bridge = _own_link(bridge, plan.bridge, "bridge")
    root: list[str] = []
    macs_moved = False
    if bridge is None:
        root.append(f"link add {plan.bridge} address {plan.bridge_mac} type bridge")
    elif bridge.mac is not None and bridge.mac != plan.bridge_mac:
        root.append(f"link set {plan.bridge} address {plan.bridge_mac}")
        macs_moved = True
    if bridge is None or plan.bridge_cidr not in bridge.addresses:
        root.append(f"addr replace {plan.bridge_cidr} dev {plan.bridge}")
    if bridge is None or not bridge.up:
        root.append(f"link set {plan.bridge} up")
    return root, macs_moved


def _rebuild_host(plan: LabPlan, host: HostPlan, *, had_veth: bool, had_ns: bool) -> list[str]:
    """Root-namespace lines that remove what is left of a host and create it anew."""
    root = []
    if had_veth:
        root.append(f"link del {host.veth}")
    if had_ns:
        root.append(f"netns del {host.namespace}")
    root.append(f"netns add {host.namespace}")
    root.append(
        f"link add {host.veth} type veth peer name {host.peer} address {host.mac} "
        f"netns {host.namespace}"
    )
    root.append(f"link set {host.veth} master {plan.bridge} up")
    return root


def _fresh_inside(host: HostPlan) -> tuple[str, ...]:
    """Lines run inside a just-created namespace: address and links up."""
    return (
        f"addr add {host.cidr} dev {host.peer}",
        f"link set {host.peer} up",
        "link set lo up",
    )


def _repair_inside(
    host: HostPlan, peer: Link, loopback: Link | None
) -> tuple[tuple[str, ...], bool]:
    """Lines fixing drift inside an existing namespace, and whether the peer's MAC moved."""
    lines = []
    moved = False
    if peer.mac is not None and peer.mac != host.mac:
        lines.append(f"link set {host.peer} address {host.mac}")
        moved = True
    if host.cidr not in peer.addresses:
        lines.append(f"addr replace {host.cidr} dev {host.peer}")
    if not peer.up:
        lines.append(f"link set {host.peer} up")
    if loopback is None or not loopback.up:
        lines.append("link set lo up")
    return tuple(lines), moved


def plan_teardown(
    prefix: str,
    state: NetState,
    *,
    namespaces: Iterable[str] = (),
    veths: Iterable[str] = (),
) -> tuple[str, ...]:
    """`ip -batch` lines removing the lab's links and namespaces, and only those.

    What is removed: the names the state file lists (``namespaces``/``veths``) plus any
    leftover that matches this prefix's naming exactly (a crash before the state file
    was complete). Veths go first and explicitly: a namespace deletion frees its end of a
    pair only asynchronously, and only if no process still holds the namespace.
    """
    ns_pattern, veth_pattern, bridge = lab_names(prefix)
    wanted_veths = set(veths) | {name for name in state.links if veth_pattern.match(name)}
    wanted_ns = set(namespaces) | {name for name in state.namespaces if ns_pattern.match(name)}
    lines = [f"link del {name}" for name in sorted(wanted_veths) if name in state.links]
    if bridge in state.links:
        lines.append(f"link del {bridge}")
    lines += [f"netns del {name}" for name in sorted(wanted_ns) if name in state.namespaces]
    return tuple(lines)
