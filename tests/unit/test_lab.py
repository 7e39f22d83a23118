"""Lab planning, reconciliation against a fake network, state file, user mistakes."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.exceptions import ConfigError, InfrastructureError, PrivilegeError
from orchestrator.lab import (
    Lab,
    lab_down,
    lab_status,
    lab_up,
    load_lab,
    plan_lab,
    state_dir_for,
)
from orchestrator.lab.design import (
    IFNAME_MAX,
    MAX_HOSTS,
    LabPlan,
    known_hosts_text,
    parse_hosts,
    render_sshd_config,
)
from orchestrator.lab.network import Link, NetState, plan_network, plan_teardown
from orchestrator.lab.ops import HostStatus, LabStatus, Teardown, parse_links
from orchestrator.lab.state import lab_from_plan, read_state, write_state
from tests.cli import invoke

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def plan_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def healthy(plan_dir: Path, hosts: int = 3) -> tuple[LabPlan, NetState]:
    """A plan and a fake network on which that lab is fully in place."""
    plan = plan_lab(state_dir=plan_dir, hosts=hosts)
    links = {
        plan.bridge: Link(plan.bridge, True, "bridge", None, (plan.bridge_cidr,), plan.bridge_mac)
    }
    ns_links: dict[str, dict[str, Link]] = {}
    for h in plan.hosts:
        links[h.veth] = Link(h.veth, True, "veth", plan.bridge)
        ns_links[h.namespace] = {
            "lo": Link("lo", True, None, None, ("127.0.0.1/8",)),
            "eth0": Link("eth0", True, "veth", None, (h.cidr,), h.mac),
        }
    links["eth0"] = Link("eth0", True, None, None, ("192.168.1.10/24",))
    state = NetState(links, frozenset(h.namespace for h in plan.hosts), ns_links)
    return plan, state


# --------------------------------------------------------------------------- planning


def test_default_plan_names_and_addresses(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir)
    assert [h.name for h in plan.hosts] == ["rdy-h1", "rdy-h2", "rdy-h3", "rdy-h4"]
    assert [h.namespace for h in plan.hosts] == [h.name for h in plan.hosts]
    assert [h.veth for h in plan.hosts] == ["rdy-v1", "rdy-v2", "rdy-v3", "rdy-v4"]
    assert plan.bridge == "rdy-br"
    assert plan.bridge_cidr == "10.213.71.1/24"
    assert [h.address for h in plan.hosts] == [f"10.213.71.{i}" for i in range(2, 6)]
    assert {h.ssh_port for h in plan.hosts} == {22}
    assert plan.user == "root"
    assert plan.key_file == plan_dir.absolute() / "id_ed25519"
    assert plan.hosts[0].deploy_root == Path("/var/tmp/readiness-lab/rdy/rdy-h1")
    assert len({h.deploy_root for h in plan.hosts}) == 4


def test_custom_prefix_and_subnet(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir, hosts=2, prefix="rt", subnet="192.168.77.0/28")
    assert [(h.name, h.address) for h in plan.hosts] == [
        ("rt-h1", "192.168.77.2"),
        ("rt-h2", "192.168.77.3"),
    ]
    assert plan.bridge_cidr == "192.168.77.1/28"
    assert plan.hosts[1].cidr == "192.168.77.3/28"


def test_macs_are_fixed_unique_and_locally_administered(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir, hosts=MAX_HOSTS, subnet="10.9.0.0/16")
    macs = [plan.bridge_mac, *(h.mac for h in plan.hosts)]
    assert len(set(macs)) == len(macs)
    assert all(re.fullmatch(r"02(:[0-9a-f]{2}){5}", mac) for mac in macs)
    assert plan.hosts[0].mac == "02:00:0a:09:00:02"


def test_interface_names_fit_linux_limit_at_the_extremes(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir, hosts=MAX_HOSTS, prefix="abcdef", subnet="10.9.0.0/16")
    names = [plan.bridge, *(h.veth for h in plan.hosts), *(h.peer for h in plan.hosts)]
    assert max(len(n) for n in names) <= IFNAME_MAX
    assert len({h.address for h in plan.hosts}) == MAX_HOSTS


@pytest.mark.parametrize("prefix", ["", "RDY", "rdy-x", "1rdy", "abcdefg", "rd_y", "rdé", "a b"])
def test_bad_prefix_is_a_config_error(plan_dir: Path, prefix: str) -> None:
    with pytest.raises(ConfigError, match="invalid lab prefix") as err:
        plan_lab(state_dir=plan_dir, prefix=prefix)
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("subnet", "why"),
    [
        ("banana", "invalid lab subnet"),
        ("10.213.71.5/24", "host bits"),
        ("fd00::/64", "only IPv4"),
        ("8.8.8.0/24", "not a private range"),
        ("127.0.0.0/24", "loopback"),
        ("169.254.1.0/24", "link-local"),
        ("10.1.1.0/31", "too small"),
    ],
)
def test_bad_subnet_is_a_config_error(plan_dir: Path, subnet: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as err:
        plan_lab(state_dir=plan_dir, subnet=subnet)
    assert err.value.exit_code == 2
    assert err.value.field == "subnet"


def test_too_many_hosts_for_the_subnet(plan_dir: Path) -> None:
    # /29: 8 addresses - network - broadcast - bridge = 5 hosts.
    assert len(plan_lab(state_dir=plan_dir, hosts=5, subnet="10.0.0.0/29").hosts) == 5
    with pytest.raises(ConfigError, match="room for 5 hosts"):
        plan_lab(state_dir=plan_dir, hosts=6, subnet="10.0.0.0/29")


@pytest.mark.parametrize("hosts", [0, -1, MAX_HOSTS + 1])
def test_host_count_limits(plan_dir: Path, hosts: int) -> None:
    with pytest.raises(ConfigError, match="lab hosts"):
        plan_lab(state_dir=plan_dir, hosts=hosts, subnet="10.9.0.0/16")


def test_hosts_option_parsing() -> None:
    assert parse_hosts("3") == 3
    assert parse_hosts(None) is None
    with pytest.raises(ConfigError, match="whole number"):
        parse_hosts("three")


def test_state_dir_that_sshd_config_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sshd_config cannot hold"):
        plan_lab(state_dir=tmp_path / 'we"ird')
    with pytest.raises(ConfigError):
        plan_lab(state_dir=tmp_path / "100%")


def test_sshd_config_is_strict_and_local_to_the_state_dir(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir, hosts=2)
    text = render_sshd_config(plan, plan.hosts[1])
    lines = text.splitlines()
    assert "ListenAddress 10.213.71.3:22" in lines
    assert sum(line.startswith("ListenAddress") for line in lines) == 1
    assert "PermitRootLogin prohibit-password" in lines
    assert "PasswordAuthentication no" in lines
    assert "KbdInteractiveAuthentication no" in lines
    assert "UsePAM no" in lines
    state = str(plan.state_dir)
    assert f'AuthorizedKeysFile "{state}/authorized_keys"' in lines
    assert f'PidFile "{state}/hosts/rdy-h2/sshd.pid"' in lines
    assert f'HostKey "{state}/hosts/rdy-h2/ssh_host_ed25519_key"' in lines


def test_known_hosts_pins_each_address(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir, hosts=2)
    keys = {"rdy-h1": "ssh-ed25519 AAAA1 comment one\n", "rdy-h2": "ssh-ed25519 AAAA2 c2"}
    assert known_hosts_text(plan, keys) == (
        "10.213.71.2 ssh-ed25519 AAAA1\n10.213.71.3 ssh-ed25519 AAAA2\n"
    )


# --------------------------------------------------------------------------- reconcile


def test_empty_machine_gets_everything(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir, hosts=2)
    steps = plan_network(plan, NetState())
    assert steps.root == (
        "link add rdy-br address 02:00:0a:d5:47:01 type bridge",
        "addr replace 10.213.71.1/24 dev rdy-br",
        "link set rdy-br up",
        "netns add rdy-h1",
        "link add rdy-v1 type veth peer name eth0 address 02:00:0a:d5:47:02 netns rdy-h1",
        "link set rdy-v1 master rdy-br up",
        "netns add rdy-h2",
        "link add rdy-v2 type veth peer name eth0 address 02:00:0a:d5:47:03 netns rdy-h2",
        "link set rdy-v2 master rdy-br up",
    )
    assert steps.inside["rdy-h2"] == (
        "addr add 10.213.71.3/24 dev eth0",
        "link set eth0 up",
        "link set lo up",
    )
    assert steps.fresh == {"rdy-h1", "rdy-h2"}


def test_healthy_lab_needs_nothing(plan_dir: Path) -> None:
    plan, state = healthy(plan_dir)
    steps = plan_network(plan, state)
    assert steps.empty
    assert not steps.fresh


def test_namespace_deleted_by_hand_is_rebuilt(plan_dir: Path) -> None:
    plan, state = healthy(plan_dir)
    ns = set(state.namespaces) - {"rdy-h2"}
    steps = plan_network(plan, replace(state, namespaces=frozenset(ns)))
    assert steps.fresh == {"rdy-h2"}
    # The orphaned veth (its peer lives on in the anonymous namespace) goes first.
    assert steps.root == (
        "link del rdy-v2",
        "netns add rdy-h2",
        # Same MAC as before: the neighbours' ARP caches stay valid.
        "link add rdy-v2 type veth peer name eth0 address 02:00:0a:d5:47:03 netns rdy-h2",
        "link set rdy-v2 master rdy-br up",
    )


def test_missing_veth_rebuilds_its_namespace(plan_dir: Path) -> None:
    plan, state = healthy(plan_dir)
    links = {k: v for k, v in state.links.items() if k != "rdy-v1"}
    ns_links = dict(state.ns_links)
    ns_links["rdy-h1"] = {"lo": ns_links["rdy-h1"]["lo"]}
    steps = plan_network(plan, replace(state, links=links, ns_links=ns_links))
    assert steps.root[:2] == ("netns del rdy-h1", "netns add rdy-h1")
    assert steps.fresh == {"rdy-h1"}


def test_soft_drift_is_fixed_in_place(plan_dir: Path) -> None:
    plan, state = healthy(plan_dir)
    links = dict(state.links)
    links["rdy-br"] = Link("rdy-br", False, "bridge", mac="aa:bb:cc:dd:ee:ff")
    links["rdy-v3"] = Link("rdy-v3", True, "veth", None)
    ns_links = {k: dict(v) for k, v in state.ns_links.items()}
    ns_links["rdy-h1"]["eth0"] = Link("eth0", False, "veth", None, ("10.213.71.2/24",), "x")
    ns_links["rdy-h2"]["eth0"] = Link("eth0", True, "veth")
    ns_links["rdy-h2"]["lo"] = Link("lo", False)
    steps = plan_network(plan, replace(state, links=links, ns_links=ns_links))
    assert steps.root == (
        "link set rdy-br address 02:00:0a:d5:47:01",
        "addr replace 10.213.71.1/24 dev rdy-br",
        "link set rdy-br up",
        "link set rdy-v3 master rdy-br up",
        "neigh flush dev rdy-br",
    )
    assert steps.inside == {
        "rdy-h1": (
            "link set eth0 address 02:00:0a:d5:47:02",
            "link set eth0 up",
            "neigh flush dev eth0",
        ),
        "rdy-h2": (
            "addr replace 10.213.71.3/24 dev eth0",
            "link set lo up",
            "neigh flush dev eth0",
        ),
        "rdy-h3": ("neigh flush dev eth0",),
    }
    assert not steps.fresh


def test_foreign_interface_with_our_name_is_refused(plan_dir: Path) -> None:
    plan, state = healthy(plan_dir)
    links = dict(state.links)
    links["rdy-br"] = Link("rdy-br", True, "dummy")
    with pytest.raises(ConfigError, match="not the lab's bridge"):
        plan_network(plan, replace(state, links=links))


def test_teardown_removes_only_this_prefix() -> None:
    state = NetState(
        links={
            name: Link(name, True)
            for name in ["eth0", "rdy-br", "rdy-v1", "rdy-v2", "rdy2-v1", "rdy2-br", "rd-v1"]
        },
        namespaces=frozenset({"rdy-h1", "rdy-h2", "rdy2-h1", "rd-h1", "other", "rdy-hx"}),
    )
    lines = plan_teardown("rdy", state, namespaces=["rdy-h1", "rdy-h9"], veths=["rdy-v1"])
    assert lines == (
        "link del rdy-v1",
        "link del rdy-v2",
        "link del rdy-br",
        "netns del rdy-h1",
        "netns del rdy-h2",
    )
    assert plan_teardown("zz", state) == ()


def test_parse_links_reads_ip_json() -> None:
    text = json.dumps(
        [
            {
                "ifname": "rdy-br",
                "address": "02:aa",
                "flags": ["BROADCAST", "UP"],
                "linkinfo": {"info_kind": "bridge"},
                "addr_info": [
                    {"family": "inet", "local": "10.213.71.1", "prefixlen": 24},
                    {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
                ],
            },
            {"ifname": "rdy-v1", "flags": ["BROADCAST"], "master": "rdy-br", "addr_info": []},
        ]
    )
    links = parse_links(text)
    assert links["rdy-br"] == Link("rdy-br", True, "bridge", None, ("10.213.71.1/24",), "02:aa")
    assert links["rdy-v1"] == Link("rdy-v1", False, None, "rdy-br", ())


# --------------------------------------------------------------------------- state


def test_state_round_trip(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir, hosts=3, prefix="rt", subnet="10.213.72.0/24")
    lab = lab_from_plan(plan, {"rt-h1": 101, "rt-h2": None, "rt-h3": 303})
    write_state(lab, plan.state_file)
    again = load_lab("rt", plan_dir)
    assert again == lab
    assert again.host("rt-h2").address == "10.213.72.3"
    assert again.host("rt-h3").sshd_pid == 303
    assert again.user == "root"
    assert again.known_hosts == plan.known_hosts
    assert json.loads(plan.state_file.read_text())["schema"] == 1
    with pytest.raises(ConfigError, match="no host 'rt-h9'"):
        again.host("rt-h9")


def test_no_lab_is_an_infrastructure_error(tmp_path: Path) -> None:
    with pytest.raises(InfrastructureError, match="no lab 'rt' exists") as err:
        load_lab("rt", tmp_path)
    assert err.value.exit_code == 3


def test_damaged_state_is_reported_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "lab.json").write_text("{not json")
    with pytest.raises(InfrastructureError, match="not valid JSON"):
        load_lab("rt", tmp_path)
    (tmp_path / "lab.json").write_text('{"schema": 1}')
    with pytest.raises(InfrastructureError, match="damaged"):
        read_state(tmp_path / "lab.json")


def test_state_dir_default_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("READINESS_LAB_DIR", raising=False)
    assert state_dir_for("rdy") == REPO / ".lab" / "rdy"
    monkeypatch.setenv("READINESS_LAB_DIR", str(tmp_path))
    assert state_dir_for("rt") == tmp_path / "rt"
    assert state_dir_for("rt", tmp_path / "x") == tmp_path / "x"


def test_lab_transport_is_pinned(plan_dir: Path) -> None:
    plan = plan_lab(state_dir=plan_dir, hosts=1)
    lab: Lab = lab_from_plan(plan, {})
    transport = lab.transport("rdy-h1", connect_timeout=1.5)
    assert (transport.name, transport.address, transport.port) == ("rdy-h1", "10.213.71.2", 22)
    assert transport.known_hosts == str(plan.known_hosts)
    assert transport.key_file == str(plan.key_file)


# --------------------------------------------------------------------------- privileges


@pytest.fixture
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)


@pytest.mark.usefixtures("not_root")
def test_up_and_down_need_root(tmp_path: Path) -> None:
    with pytest.raises(PrivilegeError, match="needs root") as err:
        lab_up(prefix="rt", state_dir=tmp_path)
    assert err.value.exit_code == 2
    with pytest.raises(PrivilegeError, match=r"lab\.down needs root"):
        lab_down(prefix="rt", state_dir=tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.mark.usefixtures("not_root")
def test_user_mistakes_come_before_the_privilege_check(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        lab_up(prefix="BAD", state_dir=tmp_path)
    with pytest.raises(ConfigError):
        lab_up(prefix="rt", subnet="10.0.0.0/30", hosts=2, state_dir=tmp_path)


@pytest.mark.usefixtures("not_root")
def test_changing_an_existing_lab_asks_for_down_first(tmp_path: Path) -> None:
    plan = plan_lab(state_dir=tmp_path, hosts=2, prefix="rt")
    write_state(lab_from_plan(plan, {}), plan.state_file)
    with pytest.raises(ConfigError, match="already exists with 2 hosts"):
        lab_up(prefix="rt", hosts=1, state_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"already exists on 10\.213\.71\.0/24"):
        lab_up(prefix="rt", subnet="10.213.99.0/24", state_dir=tmp_path)
    # Same options, or growing: only the missing root stops it.
    for hosts in (None, 2, 3):
        with pytest.raises(PrivilegeError):
            lab_up(prefix="rt", hosts=hosts, state_dir=tmp_path)


def test_status_without_a_lab(tmp_path: Path) -> None:
    with pytest.raises(InfrastructureError, match="no lab"):
        lab_status(prefix="rt", state_dir=tmp_path)


# --------------------------------------------------------------------------- reports


def test_status_table_and_health() -> None:
    good = HostStatus("rt-h1", "10.0.0.2", "rt-h1", 42, 12.34, 3.21)
    bad = HostStatus("rt-h2", "10.0.0.3", "rt-h2", None, None, None, "sshd not running")
    status = LabStatus("rt", Path("/x"), (good, bad))
    assert not status.ok
    assert status.unhealthy == (bad,)
    table = status.table().splitlines()
    assert table[1].split() == [
        "host",
        "address",
        "namespace",
        "sshd",
        "pid",
        "connect",
        "ms",
        "rtt",
        "ms",
        "state",
    ]
    assert table[2].split() == ["rt-h1", "10.0.0.2", "rt-h1", "42", "12.3", "3.2", "ok"]
    assert table[3].endswith("DOWN (sshd not running)")
    assert LabStatus("rt", Path("/x"), (good,)).ok
    assert not LabStatus("rt", Path("/x"), ()).ok


def test_teardown_summary() -> None:
    assert Teardown("rt", (), (), (), ()).summary() == "lab 'rt': nothing to remove"
    done = Teardown(
        "rt", (1, 2), ("link del rt-v1", "link del rt-br", "netns del rt-h1"), ("f",), ()
    )
    assert done.summary() == (
        "lab 'rt' removed: 2 process(es), 1 namespace(s), 2 link(s), 1 file(s), 0 deploy root(s)"
    )


# --------------------------------------------------------------------------- cli


def _invoke(*args: str, env_dir: Path) -> subprocess.CompletedProcess[str]:
    return invoke(*args, env={"READINESS_LAB_DIR": str(env_dir)}, timeout=60)


def test_cli_user_mistakes_exit_2_without_traceback(tmp_path: Path) -> None:
    for args in (
        ["lab.up", "--prefix=Bad!"],
        ["lab.up", "--prefix=rt", "--subnet=nope"],
        ["lab.up", "--prefix=rt", "--hosts=many"],
        ["lab.down", "--prefix=-x"],
    ):
        proc = _invoke(*args, env_dir=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("readiness: "), proc.stderr
        assert "Traceback" not in proc.stderr


def test_cli_status_without_lab_exits_3(tmp_path: Path) -> None:
    proc = _invoke("lab.status", "--prefix=rt", env_dir=tmp_path)
    assert proc.returncode == 3
    assert "no lab 'rt' exists" in proc.stderr
