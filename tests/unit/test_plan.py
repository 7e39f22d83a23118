"""Planning is pure: deploy steps, layer order, gates and the database link per topology."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.inventory import load_inventory
from orchestrator.plan import DeployStep, Options, build_plan
from orchestrator.suite import load_suite
from tests.unit.conftest import CLUSTER, SINGLE, SUITE

Write = Callable[[str, str], Path]


def test_single_host_plan_is_all_on_one_and_uses_the_socket(
    app_dir: Path, write_yaml: Write
) -> None:
    plan = build_plan(
        load_inventory(write_yaml("i.yaml", SINGLE)), load_suite(write_yaml("s.yaml", SUITE))
    )
    assert plan.topology == "all-on-one"
    assert plan.deploy == (
        DeployStep("h1", "db"),
        DeployStep("h1", "server"),
        DeployStep("h1", "client"),
    )
    assert plan.database_link("h1") == "socket"
    assert [(s.layer.name, s.hosts, s.gate) for s in plan.layers] == [
        ("unit", ("h1",), "stop"),
        ("pure", ("h1",), "continue"),
        ("rest", ("h1",), "stop"),
    ]


def test_cluster_plan_is_distributed_and_uses_tcp(app_dir: Path, write_yaml: Write) -> None:
    plan = build_plan(
        load_inventory(write_yaml("c.yaml", CLUSTER)), load_suite(write_yaml("s.yaml", SUITE))
    )
    assert plan.topology == "distributed"
    assert [(d.host, d.component) for d in plan.deploy] == [
        ("db1", "db"),
        ("web1", "server"),
        ("cl1", "client"),
    ]
    assert plan.database_link("web1") == "tcp"
    assert plan.layers[2].hosts == ("cl1",)


def test_only_a_client_only_hosts_deploy_goes_on_while_the_first_layers_run(
    app_dir: Path, write_yaml: Write
) -> None:
    suite = load_suite(write_yaml("s.yaml", SUITE))
    cluster = build_plan(load_inventory(write_yaml("c.yaml", CLUSTER)), suite)
    assert cluster.deployed_later == ("cl1",)
    assert "cl1 go(es) on in the background until a layer runs there" in cluster.describe()
    # All-on-one: the host has the database and the server, which any layer may use.
    single = build_plan(load_inventory(write_yaml("i.yaml", SINGLE)), suite)
    assert single.deployed_later == () and "background" not in single.describe()
    # A fault must not slow or reset a deploy: every host is deployed before it.
    faulted = build_plan(
        load_inventory(write_yaml("c.yaml", CLUSTER)), suite, Options(faults=("rst",))
    )
    assert faulted.deployed_later == ()


def test_keep_going_opens_every_gate_and_describe_says_so(app_dir: Path, write_yaml: Write) -> None:
    plan = build_plan(
        load_inventory(write_yaml("c.yaml", CLUSTER)),
        load_suite(write_yaml("s.yaml", SUITE)),
        Options(keep_going=True, keep=True),
    )
    assert {s.gate for s in plan.layers} == {"continue"}
    text = plan.describe()
    assert "1. unit" in text and "3. rest" in text
    assert "web1             reaches the database over tcp" in text
    assert "teardown: skipped (--keep)" in text


def test_existing_database_deploys_no_db_component(app_dir: Path, write_yaml: Write) -> None:
    text = CLUSTER.replace("  - {name: db1, address: 192.0.2.10, user: deploy, roles: [db]}\n", "")
    text += "database: {mode: existing, host_env: DBH, password_env: DBP}\n"
    plan = build_plan(
        load_inventory(write_yaml("c.yaml", text)), load_suite(write_yaml("s.yaml", SUITE))
    )
    assert all(step.component != "db" for step in plan.deploy)
    assert plan.database_link("web1") == "tcp"
