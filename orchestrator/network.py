"""What listens where, and which connections must be allowed: the firewall's view of a run.

A sysadmin who takes the application over needs the ports each host listens on and the
connections between hosts (client -> server, server -> database, control node -> ssh).
All-on-one, most of these stay on one host (loopback, or the database's Unix socket);
distributed, they cross the network and a firewall must let them through. The record
keeps both, derived from the plan and the endpoints the deploy step chose: a pure
function of plain values, so it is tested without a host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator.record import FlowRecord, ListenRecord, NetworkRecord

if TYPE_CHECKING:
    from orchestrator.hosts import Target


@dataclass(frozen=True)
class Node:
    """A host as the network sees it: its name, roles, the address services bind to,
    and how the control node reaches it (``ssh_port`` None: a local connection)."""

    name: str
    roles: tuple[str, ...]
    address: str
    ssh_port: int | None


@dataclass(frozen=True)
class DatabaseLink:
    """How one server host reaches the database: a Unix socket on its own host, or TCP
    to ``host:port`` (``host`` an address; a lab host's name when it is one of ours)."""

    server: str
    host: str
    port: int | None = None
    socket: str | None = None


def nodes_of(targets: Iterable[Target]) -> list[Node]:
    """The resolved hosts as nodes: ``ssh`` and ``lab`` hosts are both reached over SSH
    (on the inventory's port); only a ``local`` one is not."""
    return [
        Node(
            t.name,
            t.host.roles,
            t.ip or t.address,
            t.host.port if t.host.connection != "local" else None,
        )
        for t in targets
    ]


def network_of(
    nodes: Sequence[Node],
    *,
    server_port: int | None,
    links: Sequence[DatabaseLink],
    database_host: str | None,
    database_port: int | None,
) -> NetworkRecord:
    """Listeners and flows. ``database_host``: the host of a database readiness deploys
    (None for an existing one, which is not ours to list as a listener)."""
    names = {n.address: n.name for n in nodes}
    listens: list[ListenRecord] = []
    flows: list[FlowRecord] = []
    for node in nodes:
        if node.ssh_port is not None:
            listens.append(ListenRecord(node.name, "ssh", node.ssh_port, node.address))
            flows.append(
                FlowRecord("control", node.name, "control -> ssh", node.ssh_port, "tcp", True)
            )
        if "server" in node.roles and server_port is not None:
            listens.append(ListenRecord(node.name, "application server", server_port, node.address))
        if node.name == database_host and database_port is not None:
            sockets = sorted({link.socket for link in links if link.socket})
            listens.append(
                ListenRecord(
                    node.name,
                    "database",
                    database_port,
                    node.address,
                    sockets[0] if sockets else None,
                )
            )
    servers = [n for n in nodes if "server" in n.roles]
    if servers and server_port is not None:
        first = servers[0]  # the layers' base URL: the client suite talks to this one
        for client in (n for n in nodes if "client" in n.roles):
            flows.append(
                FlowRecord(
                    client.name,
                    first.name,
                    "client -> server",
                    server_port,
                    "tcp",
                    client.name != first.name,
                )
            )
    for link in links:
        if link.socket:
            flows.append(
                FlowRecord(link.server, link.server, "server -> database", None, "socket", False)
            )
            continue
        to = names.get(link.host, link.host)
        flows.append(
            FlowRecord(link.server, to, "server -> database", link.port, "tcp", to != link.server)
        )
    return NetworkRecord(listens=listens, flows=flows)


def crossing(network: NetworkRecord) -> list[FlowRecord]:
    """The flows a firewall between hosts must allow (the others stay on one host)."""
    return [f for f in network.flows if f.crosses]


def by_host(network: NetworkRecord) -> Mapping[str, list[ListenRecord]]:
    """Each host's listeners, in record order."""
    found: dict[str, list[ListenRecord]] = {}
    for listen in network.listens:
        found.setdefault(listen.host, []).append(listen)
    return found
