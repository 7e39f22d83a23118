"""What listens where and which connections cross the network, per topology."""

from __future__ import annotations

from orchestrator.hosts import Target
from orchestrator.inventory import Host
from orchestrator.network import DatabaseLink, Node, by_host, crossing, network_of, nodes_of
from orchestrator.record import NetworkRecord


def flows(record: NetworkRecord) -> list[tuple[str, str, str, int | None, str, bool]]:
    return [(f.from_, f.to, f.what, f.port, f.via, f.crosses) for f in record.flows]


def test_all_on_one_nothing_but_ssh_crosses_the_network() -> None:
    nodes = [Node("h1", ("db", "server", "client"), "10.0.0.2", 22)]
    net = network_of(
        nodes,
        server_port=8000,
        links=[DatabaseLink("h1", "/srv/db/mysqld.sock", socket="/srv/db/mysqld.sock")],
        database_host="h1",
        database_port=3307,
    )
    assert flows(net) == [
        ("control", "h1", "control -> ssh", 22, "tcp", True),
        ("h1", "h1", "client -> server", 8000, "tcp", False),
        ("h1", "h1", "server -> database", None, "socket", False),
    ]
    assert [(f.from_, f.to) for f in crossing(net)] == [("control", "h1")]
    (ssh, server, db) = by_host(net)["h1"]
    assert (ssh.what, server.what, server.port) == ("ssh", "application server", 8000)
    assert (db.what, db.port, db.socket) == ("database", 3307, "/srv/db/mysqld.sock")


def test_distributed_the_client_and_database_connections_cross_between_hosts() -> None:
    nodes = [
        Node("db1", ("db",), "10.0.0.2", 22),
        Node("app1", ("server",), "10.0.0.3", 22),
        Node("cli1", ("client",), "10.0.0.4", 2222),
    ]
    net = network_of(
        nodes,
        server_port=8000,
        links=[DatabaseLink("app1", "10.0.0.2", 3307)],
        database_host="db1",
        database_port=3307,
    )
    assert [(f.from_, f.to, f.port) for f in crossing(net) if f.what != "control -> ssh"] == [
        ("cli1", "app1", 8000),
        ("app1", "db1", 3307),
    ]
    assert [(x.host, x.what, x.port) for x in net.listens if x.what != "ssh"] == [
        ("db1", "database", 3307),
        ("app1", "application server", 8000),
    ]
    assert ("control", "cli1", "control -> ssh", 2222, "tcp", True) in flows(net)


def test_an_existing_database_is_a_flow_out_but_not_a_listener_of_ours() -> None:
    nodes = [Node("h1", ("server", "client"), "127.0.0.1", None)]
    net = network_of(
        nodes,
        server_port=8000,
        links=[DatabaseLink("h1", "db.example.internal", 3306)],
        database_host=None,
        database_port=None,
    )
    assert [x.what for x in net.listens] == ["application server"]  # local: no ssh
    assert ("h1", "db.example.internal", "server -> database", 3306, "tcp", True) in flows(net)


def test_lab_and_ssh_hosts_are_reached_over_ssh_and_a_local_one_is_not() -> None:
    targets = [
        Target(Host("lab1", ("server",), "lab", port=22), "10.213.71.2", "root", "/srv"),
        Target(Host("far", ("client",), "ssh", port=2222), "10.0.0.9", "deploy", "/srv"),
        Target(Host("me", ("db",), "local"), "127.0.0.1", "root", "/srv"),
    ]
    assert [(n.name, n.address, n.ssh_port) for n in nodes_of(targets)] == [
        ("lab1", "10.213.71.2", 22),
        ("far", "10.0.0.9", 2222),
        ("me", "127.0.0.1", None),
    ]
