"""Fault profiles (``--faults``): parsing, validation, the exact commands each profile
plans, apply/remove/sweep against a fake network, and for real (root) in throwaway
namespaces named ``rfu-*`` that these tests create and delete themselves."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shlex
import subprocess
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator import faults
from orchestrator.context import Context
from orchestrator.exceptions import ConfigError, InfrastructureError, PrivilegeError
from orchestrator.faults import (
    JOURNAL,
    Change,
    Facts,
    Journal,
    Profile,
    Result,
    Runner,
    ServerNs,
    parse,
    plan_changes,
    read_journal,
    write_journal,
)
from orchestrator.inventory import load_inventory
from orchestrator.lab import Lab, LabHost
from orchestrator.plan import Options, Plan, build_plan
from orchestrator.record import RunRecord
from orchestrator.store import RunStore
from orchestrator.suite import load_suite
from orchestrator.suite import resolve as resolve_suite

REPO = Path(__file__).resolve().parents[2]
TAG = "readiness:fx:RUN"


def plan_for(name: str, *values: str, dry_run: bool = False) -> Plan:
    inventory = load_inventory(REPO / "inventories" / f"{name}.yaml")
    suite = load_suite(resolve_suite(inventory.suite, root=REPO))
    return build_plan(inventory, suite, Options(faults=values, dry_run=dry_run))


def lab_of(prefix: str, namespaces: Sequence[str]) -> Lab:
    hosts = tuple(
        LabHost(f"{prefix}-h{i}", f"10.254.0.{i + 1}", ns, 22, None, f"/var/tmp/x/{prefix}-h{i}")
        for i, ns in enumerate(namespaces, 1)
    )
    state = Path("/nonexistent")
    return Lab(
        prefix, "10.254.0.0/24", f"{prefix}-br", "10.254.0.1", state, state, state, "root", hosts
    )


def context(root: Path, plan: Plan, lab: Lab | None) -> Context:
    store = RunStore.create(root / "reports" / "runs", plan.inventory.name)
    record = RunRecord(store.run_id, plan.inventory.name, "f", "broker", plan.topology, "now")
    ctx = Context(root=root, plan=plan, store=store, record=record, say=lambda _: None, lab=lab)
    ctx.state_dir.mkdir(parents=True, exist_ok=True)
    return ctx


def saved_faults(ctx: Context) -> list[dict[str, Any]]:
    """The faults as run.json holds them now (what a crash would leave)."""
    data = json.loads((ctx.store.dir / "run.json").read_text())["faults"]
    assert isinstance(data, list)
    return data


# --------------------------------------------------------------------------- parsing


def test_parse_gives_each_profile_its_default() -> None:
    got = parse(["resets", "loss", "bandwidth", "abort-on-overflow"])
    assert got == (
        Profile("resets", "2"),
        Profile("loss", "5"),
        Profile("bandwidth", "1mbit"),
        Profile("abort-on-overflow", ""),
    )
    assert parse(["latency"]) == (Profile("latency", "100"),)
    assert parse([]) == () and parse([""]) == ()


def test_parse_reads_values_commas_and_case() -> None:
    got = parse(["resets=3,loss=0.50", " Bandwidth=2MBit "])
    assert got == (Profile("resets", "3"), Profile("loss", "0.5"), Profile("bandwidth", "2mbit"))
    assert [p.parameters for p in got] == [{"every": "3"}, {"percent": "0.5"}, {"rate": "2mbit"}]
    assert parse(["latency=20"])[0].parameters == {"delay_ms": "20"}
    assert parse(["abort-on-overflow"])[0].parameters == {"tcp_abort_on_overflow": "1"}


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("reset", "unknown fault profile 'reset'; the profiles are resets[=N]"),
        ("resets=0", "resets takes N, a whole number from 1"),
        ("resets=two", "resets takes N"),
        ("resets=-2", "resets takes N"),
        ("loss=0", "loss takes the percent"),
        ("loss=101", "loss takes the percent"),
        ("loss=5%", "loss takes the percent"),
        ("loss=nan", "loss takes the percent"),
        ("bandwidth=fast", "bandwidth takes a tc rate"),
        ("bandwidth=1kbit", "from 8kbit to 10gbit"),
        ("bandwidth=11gbit", "from 8kbit to 10gbit"),
        ("bandwidth=1 mbit", "bandwidth takes a tc rate"),
        ("abort-on-overflow=1", "abort-on-overflow takes no value"),
        ("latency=0", "latency takes a delay in milliseconds"),
        ("latency=1.5", "latency takes a delay"),
    ],
)
def test_bad_values_name_the_option_and_the_value(item: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse([item])
    assert str(err.value).startswith(f"invalid --faults value {item!r}: ")
    assert says in str(err.value)
    assert err.value.exit_code == 2 and "\n" not in str(err.value)


def test_a_profile_named_twice_or_two_root_qdiscs_are_refused() -> None:
    with pytest.raises(ConfigError, match="profile 'loss' is named twice"):
        parse(["loss=1,loss=2"])
    with pytest.raises(ConfigError, match="'bandwidth' and 'latency' cannot be combined"):
        parse(["bandwidth", "latency"])


def test_rates_convert_like_tc() -> None:
    assert faults.rate_bytes("1mbit") == 125_000
    assert faults.rate_bytes("8kbit") == 1_000
    assert faults.rate_bytes("2kbps") == 2_000
    assert faults.rate_bytes("1.5gbit") == 187_500_000


# --------------------------------------------------------------------------- planned commands

SPLIT = (ServerNs("fx-h3", "fx-h3", ("eth0",)),)
ONE_BOX = (ServerNs("fx-h1", "fx-h1", ("eth0", "lo")),)
MTUS = Facts(mtus={("fx-h3", "eth0"): 1500, ("fx-h1", "eth0"): 1500, ("fx-h1", "lo"): 65536})


def commands(profile: str, servers: Sequence[ServerNs] = SPLIT, facts: Facts = MTUS) -> list[str]:
    return [
        shlex.join(c.command) for c in plan_changes(parse([profile]), servers, 8000, TAG, facts)
    ]


def test_resets_is_the_findings_rule_tagged_with_the_run() -> None:
    assert commands("resets") == [
        "iptables -w 5 -I INPUT -p tcp --dport 8000 --tcp-flags PSH PSH -m statistic --mode nth "
        "--every 2 --packet 0 -m comment --comment readiness:fx:RUN -j REJECT "
        "--reject-with tcp-reset"
    ]
    (change,) = plan_changes(parse(["resets=3"]), SPLIT, 8000, TAG, MTUS)
    assert change.kind == "iptables" and change.host == "fx-h3"
    assert change.meaning.startswith("every 3rd data segment (PSH) to TCP port 8000, from the")


def test_loss_drops_both_ways_on_the_server_port() -> None:
    assert commands("loss=2.5") == [
        "iptables -w 5 -I INPUT -p tcp --dport 8000 -m statistic --mode random --probability "
        "0.025 -m comment --comment readiness:fx:RUN -j DROP",
        "iptables -w 5 -I OUTPUT -p tcp --sport 8000 -m statistic --mode random --probability "
        "0.025 -m comment --comment readiness:fx:RUN -j DROP",
    ]
    assert "0.0001 " in commands("loss=0.01")[0]


def test_bandwidth_shapes_the_lab_interface_and_lo_when_a_client_shares_the_host() -> None:
    assert commands("bandwidth") == [
        "tc qdisc add dev eth0 root handle 7264: tbf rate 1mbit burst 1564 latency 400ms"
    ]
    assert commands("bandwidth=100mbit", ONE_BOX) == [
        "tc qdisc add dev eth0 root handle 7264: tbf rate 100mbit burst 125000 latency 400ms",
        "tc qdisc add dev lo root handle 7264: tbf rate 100mbit burst 125000 latency 400ms",
    ]
    assert commands("bandwidth", ONE_BOX)[1].endswith("tbf rate 1mbit burst 65600 latency 400ms")


def test_latency_is_netem_delay_and_abort_remembers_the_old_value() -> None:
    assert commands("latency=30") == ["tc qdisc add dev eth0 root handle 7264: netem delay 30ms"]
    facts = Facts(old={"fx-h3": "0"})
    (change,) = plan_changes(parse(["abort-on-overflow"]), SPLIT, 8000, TAG, facts)
    assert shlex.join(change.command) == "sysctl -q -w net.ipv4.tcp_abort_on_overflow=1"
    assert (change.key, change.value, change.old) == ("net.ipv4.tcp_abort_on_overflow", "1", "0")
    assert change.action.startswith("fx-h3: net.ipv4.tcp_abort_on_overflow set to 1 (was 0,")


def test_server_namespaces_are_the_lab_hosts_of_the_server_role() -> None:
    cluster = plan_for("cluster").inventory
    lab = lab_of("fx", ["fx-h1", "fx-h2", "fx-h3", "fx-h4"])
    assert faults.server_namespaces(cluster.hosts, lab) == SPLIT
    single = plan_for("single").inventory
    assert faults.server_namespaces(single.hosts, lab) == ONE_BOX
    with pytest.raises(ConfigError, match="server host 'h3' is not a host of lab 'fx'"):
        faults.server_namespaces(cluster.hosts, lab_of("fx", ["fx-h1"]))


# --------------------------------------------------------------------------- a fake network


@dataclass
class FakeNet(Runner):
    """The namespaces' netfilter rules, root qdiscs and sysctls, as the tools show them."""

    namespaces: set[str]
    rules: dict[str, list[list[str]]]
    qdiscs: dict[tuple[str, str], str]
    sysctls: dict[str, str]
    calls: list[list[str]]
    netem: bool = False
    root: bool = True
    tools: frozenset[str] = frozenset({"ip", "iptables", "tc", "sysctl"})
    fail: str = ""  # a command (joined) that fails
    on_change: Callable[[], None] | None = None  # called before each change

    @classmethod
    def of(cls, *namespaces: str) -> FakeNet:
        return cls(set(namespaces), {}, {}, {ns: "0" for ns in namespaces}, [])

    def run(self, argv: Sequence[str], timeout: float = 15.0) -> Result:
        self.calls.append(list(argv))
        if argv[:3] == ["ip", "netns", "add"]:
            self.namespaces.add(argv[3])
            self.sysctls[argv[3]] = "0"
            return Result(0)
        if argv[:3] == ["ip", "netns", "del"]:
            self.namespaces.discard(argv[3])
            return Result(0)
        assert argv[:3] == ["ip", "netns", "exec"], argv
        ns, cmd = argv[3], list(argv[4:])
        if ns not in self.namespaces:
            return Result(255, "", f'Cannot open network namespace "{ns}"')
        if shlex.join(cmd) == self.fail:
            return Result(1, "", "it failed")
        changing = (
            (cmd[0] == "iptables" and cmd[3] in ("-I", "-A"))
            or cmd[:3] == ["tc", "qdisc", "add"]
            or cmd[:3] == ["sysctl", "-q", "-w"]
        )
        if changing and self.on_change is not None:
            self.on_change()
        handler = {"iptables": self._iptables, "tc": self._tc, "sysctl": self._sysctl}
        return handler.get(cmd[0], self._ip)(ns, cmd)

    def _iptables(self, ns: str, cmd: list[str]) -> Result:
        op, rest, rules = cmd[3], cmd[4:], self.rules.setdefault(ns, [])
        if op == "-S":
            lines = ["-P INPUT ACCEPT", *("-A " + shlex.join(r) for r in rules)]
            return Result(0, "\n".join(lines) + "\n")
        if op in ("-I", "-A"):
            rules.insert(0 if op == "-I" else len(rules), rest)
            return Result(0)
        if op == "-D" and rest in rules:
            rules.remove(rest)
            return Result(0)
        return Result(1, "", "iptables: Bad rule (does a matching rule exist in that chain?).")

    def _tc(self, ns: str, cmd: list[str]) -> Result:
        dev = cmd[cmd.index("dev") + 1]
        now = self.qdiscs.get((ns, dev))
        if cmd[1:3] == ["-j", "qdisc"]:
            shown = [{"kind": "noqueue", "handle": "0:", "root": True}]
            return Result(
                0, json.dumps([{"kind": "tbf", "handle": now, "root": True}] if now else shown)
            )
        handle = cmd[cmd.index("handle") + 1] if "handle" in cmd else "8001:"
        if cmd[2] == "add":
            if "netem" in cmd and not self.netem:
                return Result(2, "", "Error: Specified qdisc kind is unknown.")
            if now is not None:
                return Result(2, "", "Error: Exclusivity flag on, cannot modify.")
            self.qdiscs[(ns, dev)] = handle
            return Result(0)
        if now != handle:
            return Result(2, "", "Error: Invalid handle.")
        del self.qdiscs[(ns, dev)]
        return Result(0)

    def _sysctl(self, ns: str, cmd: list[str]) -> Result:
        if cmd[1] == "-n":
            return Result(0, self.sysctls[ns] + "\n")
        if cmd[1:3] == ["-q", "-w"]:
            self.sysctls[ns] = cmd[3].split("=", 1)[1]
            return Result(0)
        return Result(0, f"{cmd[1]} = {self.sysctls[ns]}\n")

    def _ip(self, ns: str, cmd: list[str]) -> Result:
        dev = cmd[-1]
        return Result(0, json.dumps([{"ifname": dev, "mtu": 65536 if dev == "lo" else 1500}]))

    def has_namespace(self, namespace: str) -> bool:
        return namespace in self.namespaces

    def list_namespaces(self) -> list[str]:
        return sorted(self.namespaces)

    def alive(self, pid: int) -> bool:
        return pid == os.getpid()

    def has_tool(self, name: str) -> bool:
        return name in self.tools

    def is_root(self) -> bool:
        return self.root

    @property
    def clean(self) -> bool:
        return (
            not any(self.rules.values())
            and not self.qdiscs
            and all(v == "0" for v in self.sysctls.values())
        )


# --------------------------------------------------------------------------- check


def test_check_refuses_a_non_lab_inventory() -> None:
    with pytest.raises(ConfigError) as err:
        faults.check(plan_for("example-hosts", "resets"), FakeNet.of())
    message = str(err.value)
    assert message.startswith("--faults=resets acts only inside the local lab's namespaces")
    assert "inventory 'staging'" in message and "not a lab inventory" in message
    faults.check(plan_for("example-hosts"), FakeNet.of())  # no profile: nothing to check


def test_check_names_a_missing_tool_and_its_package() -> None:
    net = replace(FakeNet.of(), tools=frozenset({"ip", "sysctl"}))
    with pytest.raises(ConfigError, match=r"needs `tc` .* Debian package iproute2"):
        faults.check(plan_for("single", "bandwidth"), net)
    faults.check(plan_for("single", "abort-on-overflow"), net)


def test_check_needs_root_except_for_a_dry_run() -> None:
    net = replace(FakeNet.of(), root=False)
    with pytest.raises(PrivilegeError, match="--faults needs root"):
        faults.check(plan_for("single", "resets"), net)
    faults.check(plan_for("single", "resets", dry_run=True), net)
    assert net.calls == []


def test_check_tries_each_profile_in_a_throwaway_namespace() -> None:
    net = FakeNet.of("readiness-probe-999999999-abcdef", f"readiness-probe-{os.getpid()}-abcdef")
    faults.check(plan_for("cluster", "resets,loss,bandwidth,abort-on-overflow"), net)
    stale, *probes = [c[3] for c in net.calls]
    assert stale == "readiness-probe-999999999-abcdef"  # its process is gone: so is it now
    (probe,) = set(probes)
    assert probe.startswith(f"readiness-probe-{os.getpid()}-")
    assert net.namespaces == {f"readiness-probe-{os.getpid()}-abcdef"}  # alive: left alone
    net.namespaces.clear()
    with pytest.raises(ConfigError) as err:
        faults.check(plan_for("single", "latency=5"), net)
    assert str(err.value).startswith("--faults=latency=5 needs the kernel feature sch_netem ")
    assert "Specified qdisc kind is unknown" in str(err.value) and net.namespaces == set()


# --------------------------------------------------------------------------- apply, remove


def test_apply_records_and_journals_before_changing_anything(tmp_path: Path) -> None:
    net = FakeNet.of("fx-h1", "fx-h2", "fx-h3", "fx-h4")
    lab = lab_of("fx", sorted(net.namespaces))
    ctx = context(tmp_path, plan_for("cluster", "resets,abort-on-overflow,bandwidth"), lab)
    seen: list[tuple[list[dict[str, Any]], Journal | None]] = []
    net.on_change = lambda: seen.append((saved_faults(ctx), read_journal(ctx.state_dir / JOURNAL)))
    faults.apply(ctx, net)
    net.on_change = None
    first_record, first_journal = seen[0]
    assert [f["name"] for f in first_record] == ["resets", "abort-on-overflow", "bandwidth"]
    assert first_journal is not None and len(first_journal.changes) == 3
    tag = faults.tag_for("fx", ctx.record.run_id)
    assert first_journal.tag == tag and tag in net.rules["fx-h3"][0]
    assert net.sysctls["fx-h3"] == "1" and net.qdiscs == {("fx-h3", "eth0"): "7264:"}
    records = ctx.record.faults
    assert [(r.applied, r.removed, r.hosts) for r in records] == [(True, False, ["fx-h3"])] * 3
    assert records[0].parameters == {"every": "2", "port": "8000"}
    assert records[1].actions[0].startswith("fx-h3: net.ipv4.tcp_abort_on_overflow set to 1 (was 0")

    assert faults.remove(ctx, net) == {}
    assert net.clean and not (ctx.state_dir / JOURNAL).exists()
    assert all(r.removed for r in ctx.record.faults)
    assert all(f["removed"] for f in saved_faults(ctx))
    calls = len(net.calls)
    assert faults.remove(ctx, net) == {} and len(net.calls) == calls  # idempotent


def test_remove_after_apply_was_interrupted_half_way(tmp_path: Path) -> None:
    net = FakeNet.of("fx-h1")
    ctx = context(tmp_path, plan_for("single", "loss,resets,bandwidth"), lab_of("fx", ["fx-h1"]))
    changes = 0

    def interrupt() -> None:
        nonlocal changes
        changes += 1
        if changes == 3:  # both loss rules are in, resets is about to be
            raise KeyboardInterrupt

    net.on_change = interrupt
    with pytest.raises(KeyboardInterrupt):
        faults.apply(ctx, net)
    net.on_change = None
    assert len(net.rules["fx-h1"]) == 2
    assert [r.applied for r in ctx.record.faults] == [True, False, False]
    assert faults.remove(ctx, net) == {}
    assert net.clean and all(r.removed for r in ctx.record.faults)


def test_a_failing_change_is_recorded_then_raised(tmp_path: Path) -> None:
    net = FakeNet.of("fx-h1")
    net.fail = "tc qdisc add dev lo root handle 7264: tbf rate 1mbit burst 65600 latency 400ms"
    ctx = context(tmp_path, plan_for("single", "bandwidth"), lab_of("fx", ["fx-h1"]))
    with pytest.raises(
        InfrastructureError, match="'bandwidth' could not be applied on lab host fx-h1"
    ):
        faults.apply(ctx, net)
    (record,) = ctx.record.faults
    assert not record.applied and record.error and "it failed" in record.error
    assert faults.remove(ctx, net) == {} and net.clean and record.removed


def test_remove_reports_what_stays_without_raising(tmp_path: Path) -> None:
    net = FakeNet.of("fx-h1")
    ctx = context(tmp_path, plan_for("single", "abort-on-overflow"), lab_of("fx", ["fx-h1"]))
    faults.apply(ctx, net)
    net.fail = "sysctl -q -w net.ipv4.tcp_abort_on_overflow=0"
    failures = faults.remove(ctx, net)
    assert list(failures) == ["fx-h1"] and "cannot restore" in failures["fx-h1"]
    (record,) = ctx.record.faults
    assert not record.removed and (ctx.state_dir / JOURNAL).exists()
    net.fail = ""
    assert faults.remove(ctx, net) == {} and record.removed and net.clean


def test_remove_tolerates_a_lab_that_is_gone_and_a_sysctl_changed_since(tmp_path: Path) -> None:
    net = FakeNet.of("fx-h1", "fx-h3")
    lab = lab_of("fx", ["fx-h1", "fx-h2", "fx-h3"])
    ctx = context(tmp_path, plan_for("cluster", "resets,abort-on-overflow"), lab)
    faults.apply(ctx, net)
    net.namespaces.discard("fx-h3")  # lab.down: the namespace took its rules with it
    assert faults.remove(ctx, net) == {}
    net2 = FakeNet.of("fx-h1")
    ctx2 = context(tmp_path / "b", plan_for("single", "abort-on-overflow"), lab_of("fx", ["fx-h1"]))
    faults.apply(ctx2, net2)
    net2.sysctls["fx-h1"] = "2"  # someone else's value now: not ours to reset
    assert faults.remove(ctx2, net2) == {} and net2.sysctls["fx-h1"] == "2"


def test_no_profile_changes_nothing(tmp_path: Path) -> None:
    net = FakeNet.of("fx-h1")
    ctx = context(tmp_path, plan_for("single"), lab_of("fx", ["fx-h1"]))
    faults.apply(ctx, net)
    assert faults.remove(ctx, net) == {} and net.calls == [] and ctx.record.faults == []


# --------------------------------------------------------------------------- sweep


def killed_run(root: Path, inventory: str, net: FakeNet, lab: Lab, *profiles: str) -> Context:
    """A run that applied its faults and was then SIGKILLed (no remove)."""
    ctx = context(root, plan_for(inventory, *profiles), lab)
    faults.apply(ctx, net)
    return ctx


def test_sweep_removes_what_a_killed_run_left_and_spares_a_live_one(tmp_path: Path) -> None:
    net = FakeNet.of("fx-h1", "fx-h2", "fx-h3", "fx-h4")
    lab = lab_of("fx", sorted(net.namespaces))
    killed_run(tmp_path, "cluster", net, lab, "resets,bandwidth,abort-on-overflow")
    alive = killed_run(tmp_path, "single", net, lab, "loss,bandwidth")
    foreign = ["INPUT", "-p", "tcp", "-m", "comment", "--comment", "readiness:zz:x", "-j", "DROP"]
    net.rules["fx-h2"] = [foreign, ["INPUT", "-j", "ACCEPT"]]
    stray = ["INPUT", "-m", "comment", "--comment", "readiness:fx:20200101T000000Z-x", "-j", "DROP"]
    net.rules["fx-h4"] = [stray]
    with (alive.state_dir / "lock").open("w") as held:  # the single run is still going
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        ctx = context(tmp_path, plan_for("cluster"), lab)
        notes = faults.sweep(ctx, net)
    assert net.qdiscs == {("fx-h1", "eth0"): "7264:", ("fx-h1", "lo"): "7264:"}
    assert len(net.rules["fx-h1"]) == 2 and net.sysctls["fx-h3"] == "0"
    assert net.rules["fx-h2"] == [foreign, ["INPUT", "-j", "ACCEPT"]] and net.rules["fx-h4"] == []
    assert not (ctx.state_dir / JOURNAL).exists() and (alive.state_dir / JOURNAL).exists()
    assert any("removed the faults left by run" in n for n in notes)
    assert any("fx-h4: removed a leftover netfilter rule" in n for n in notes)
    # The single run is dead now: the next sweep takes its faults too.
    faults.sweep(context(tmp_path, plan_for("cluster"), lab), net)
    assert net.rules["fx-h2"] == [foreign, ["INPUT", "-j", "ACCEPT"]]
    net.rules["fx-h2"] = []
    assert net.clean


def test_apply_never_overwrites_an_earlier_runs_journal(tmp_path: Path) -> None:
    net = FakeNet.of("fx-h1")
    lab = lab_of("fx", ["fx-h1"])
    killed_run(tmp_path, "single", net, lab, "abort-on-overflow")
    ctx = context(tmp_path, plan_for("single", "resets"), lab)
    faults.apply(ctx, net)  # no sweep in between: apply undoes the earlier journal first
    assert net.sysctls["fx-h1"] == "0"
    journal = read_journal(ctx.state_dir / JOURNAL)
    assert journal is not None and journal.run_id == ctx.record.run_id


def test_a_damaged_journal_is_reported_not_raised_by_remove(tmp_path: Path) -> None:
    ctx = context(tmp_path, plan_for("single", "resets"), lab_of("fx", ["fx-h1"]))
    (ctx.state_dir / JOURNAL).write_text("{")
    assert "cannot read" in faults.remove(ctx, FakeNet.of("fx-h1"))["faults"]


def test_the_journal_round_trips(tmp_path: Path) -> None:
    change = Change("resets", "fx-h1", "fx-h1", "iptables", ("iptables", "-S"), "m")
    journal = Journal("run", "fx", TAG, (change, replace(change, kind="sysctl", old="0")))
    write_journal(tmp_path / JOURNAL, journal)
    assert read_journal(tmp_path / JOURNAL) == journal
    assert (tmp_path / JOURNAL).stat().st_mode & 0o777 == 0o600


# --------------------------------------------------------------------------- for real (root)


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


@pytest.fixture
def netns() -> Iterator[str]:
    """A throwaway namespace with lo and a veth pair (eth0 <-> peer0) inside it only."""
    assert os.geteuid() == 0, "these tests change namespaces: run them as root (as CI does)"
    for tool in ("ip", "iptables", "tc", "sysctl"):
        assert sh("which", tool).returncode == 0, f"{tool} is missing: run `make setup`"
    name = f"rfu-{secrets.token_hex(4)}"
    assert sh("ip", "netns", "add", name).returncode == 0
    try:
        for line in ("link set lo up", "link add eth0 type veth peer name peer0",
                     "link set eth0 up", "link set peer0 up"):  # fmt: skip
            assert sh("ip", "-n", name, *line.split()).returncode == 0, line
        yield name
    finally:
        sh("ip", "netns", "del", name)


def leftovers(ns: str) -> list[str]:
    """Everything of readiness's in a namespace: rules, qdiscs, the sysctl if not 0."""
    saved_rules = sh("ip", "netns", "exec", ns, "iptables-save").stdout
    found = [line for line in saved_rules.splitlines() if line.startswith("-A")]
    for dev in ("eth0", "lo"):
        shown = sh("ip", "netns", "exec", ns, "tc", "qdisc", "show", "dev", dev).stdout
        found += [line for line in shown.splitlines() if "7264:" in line]
    value = sh("ip", "netns", "exec", ns, "sysctl", "-n", faults.SYSCTL_ABORT).stdout.strip()
    return found + ([f"{faults.SYSCTL_ABORT}={value}"] if value != "0" else [])


@pytest.mark.parametrize(
    "asked",
    [
        "resets",
        "loss=50",
        "bandwidth=2mbit",
        "abort-on-overflow",
        "resets=3,loss,bandwidth,abort-on-overflow",
    ],
)
def test_each_profile_for_real_leaves_nothing(tmp_path: Path, netns: str, asked: str) -> None:
    assert leftovers(netns) == []
    ctx = context(tmp_path, plan_for("single", asked), lab_of("rfu", [netns]))
    faults.check(ctx.plan)
    faults.apply(ctx)
    present = leftovers(netns)
    for record in ctx.record.faults:
        assert record.applied and record.hosts == ["rfu-h1"] and record.error is None
    expected = {"resets": 1, "loss": 2, "bandwidth": 2, "abort-on-overflow": 1}
    assert len(present) == sum(expected[r.name] for r in ctx.record.faults), present
    assert all(ctx.record.run_id in line for line in present if line.startswith("-A"))
    assert faults.remove(ctx) == {}
    assert leftovers(netns) == [] and all(r.removed for r in ctx.record.faults)
    assert faults.remove(ctx) == {}


RESET_PROBE = textwrap.dedent(
    """
    import http.client, http.server, threading
    handler = http.server.BaseHTTPRequestHandler  # answers GET with 501: enough to count
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 8000), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen = []
    for _ in range(6):
        conn = http.client.HTTPConnection("127.0.0.1", 8000, timeout=5)
        try:
            conn.request("GET", "/")
            seen.append(str(conn.getresponse().status))
        except OSError as err:
            seen.append(type(err).__name__)
        conn.close()
    print(" ".join(seen))
    """
)


def test_resets_reset_every_second_request_for_real(tmp_path: Path, netns: str) -> None:
    ctx = context(tmp_path, plan_for("single", "resets"), lab_of("rfu", [netns]))
    faults.apply(ctx)
    try:
        out = sh("ip", "netns", "exec", netns, "python3", "-c", RESET_PROBE).stdout.split()
    finally:
        faults.remove(ctx)
    assert out == ["ConnectionResetError", "501"] * 3


def test_sweep_for_real_after_a_killed_run(tmp_path: Path, netns: str) -> None:
    lab = lab_of("rfu", [netns])
    killed = context(tmp_path, plan_for("single", "resets,bandwidth,abort-on-overflow"), lab)
    faults.apply(killed)
    assert len(leftovers(netns)) == 4
    notes = faults.sweep(context(tmp_path, plan_for("single"), lab))
    assert leftovers(netns) == [] and notes


def test_latency_is_refused_exactly_when_the_kernel_lacks_netem(netns: str) -> None:
    netem = sh(
        "ip",
        "netns",
        "exec",
        netns,
        "tc",
        "qdisc",
        "add",
        "dev",
        "lo",
        "root",
        "netem",
        "delay",
        "1ms",
    )
    if netem.returncode == 0:  # a kernel with sch_netem: the profile is allowed
        faults.check(plan_for("single", "latency"))
        return
    with pytest.raises(ConfigError) as err:  # this machine's kernel (6.18, no sch_netem)
        faults.check(plan_for("single", "latency"))
    assert "needs the kernel feature sch_netem (CONFIG_NET_SCH_NETEM)" in str(err.value)
    assert err.value.exit_code == 2
    assert not [
        n for n in os.listdir("/run/netns") if n.startswith(f"readiness-probe-{os.getpid()}-")
    ]
