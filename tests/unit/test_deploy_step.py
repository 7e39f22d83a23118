"""The deploy step's own decisions: a host's database and code go at the same time, and a
client-only host's deploy goes on while the server layers run (pipelined)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.bundle import Bundle
from orchestrator.context import Context
from orchestrator.deploy import Artifacts, Probe
from orchestrator.exceptions import HostError
from orchestrator.hosts import Target
from orchestrator.inventory import load_inventory
from orchestrator.lifecycle import Step, execute
from orchestrator.plan import Options, Plan, build_plan
from orchestrator.steps import deploy as deploy_mod
from orchestrator.steps.deploy import _together, deploy_step
from orchestrator.steps.layers import layers_step
from orchestrator.suite import load_suite
from orchestrator.transport import FakeTransport, Result
from orchestrator.wheelhouse import Wheelhouse
from tests.schema_check import assert_valid_record
from tests.unit.conftest import CLUSTER, SUITE


def test_a_hosts_database_and_code_deploy_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=5)  # each job waits for the other to have started
    ran: list[str] = []

    def job(name: str) -> None:
        both.wait()
        ran.append(name)

    _together([lambda: job("db"), lambda: job("code")])
    assert sorted(ran) == ["code", "db"]


def test_the_first_failure_is_raised_once_every_job_has_ended() -> None:
    ended: list[str] = []

    def database() -> None:
        raise RuntimeError("database did not start")

    def code() -> None:
        threading.Event().wait(0.2)
        ended.append("code")

    with pytest.raises(RuntimeError, match="database did not start"):
        _together([database, code])
    assert ended == ["code"]  # the code's push was not abandoned halfway


def test_when_database_and_code_both_fail_each_entry_keeps_its_own_error() -> None:
    from types import SimpleNamespace
    from typing import cast

    from orchestrator.record import DeployRecord
    from orchestrator.steps.deploy import _owned

    kept: list[tuple[str, str]] = []
    deploy = [DeployRecord("h1", c) for c in ("db", "server", "client")]
    ctx = cast(
        Context,
        SimpleNamespace(
            record=SimpleNamespace(deploy=deploy),
            redact=lambda text: text,
            keep_output=lambda host, step, err: kept.append((step, str(err))),
        ),
    )

    def database() -> None:
        raise RuntimeError("mysqld did not start")

    def code() -> None:
        raise RuntimeError("wheels do not fit this host")

    with pytest.raises(RuntimeError, match="mysqld did not start"):
        _together([_owned(ctx, "h1", True, database), _owned(ctx, "h1", False, code)])
    assert [(e.component, e.status, e.error) for e in deploy] == [
        ("db", "failed", "mysqld did not start"),
        ("server", "failed", "wheels do not fit this host"),
        ("client", "failed", "wheels do not fit this host"),
    ]
    assert sorted(kept) == [
        ("deploy-code", "wheels do not fit this host"),
        ("deploy-database", "mysqld did not start"),
    ]


# -- the pipelined deploy, over fake hosts ------------------------------------------------

JUNIT_OK = b'<testsuite><testcase name="a"/></testsuite>'


class Host(FakeTransport):
    """A fake host whose layers all pass (every JUnit file exists)."""

    def get(self, remote_path: str) -> bytes:
        if remote_path.endswith(".xml"):
            return self.files.get(remote_path, JUNIT_OK)
        return super().get(remote_path)


def cluster(fakes: dict[str, Host], wheels: Wheelhouse | None = None) -> Step:
    """Stands in for lab/connect/build: three fake hosts, one role each (conftest's CLUSTER),
    with Python 3.9 on aarch64 (what ``wheels`` must fit, if it holds a binary wheel)."""

    def run(ctx: Context) -> None:
        for i, host in enumerate(ctx.inventory.hosts):
            ip = f"192.0.2.{10 + i}"
            ctx.targets[host.name] = Target(host, ip, "deploy", f"/srv/{host.name}", ip=ip)
            ctx.transports[host.name] = fakes[host.name]
            ctx.probes[host.name] = Probe({}, {"python": "3.9.2", "machine": "aarch64"})
        house = wheels or Wheelhouse(Path("/nowhere"), "w1")
        bundle = Bundle(b"", "d1", 0)
        ctx.artifacts = Artifacts(bundle, bundle, house, house)

    return Step("connect", run)


@pytest.fixture
def cluster_plan(app_dir: Path, write_yaml: Callable[[str, str], Path]) -> Plan:
    inventory = load_inventory(write_yaml("cluster.yaml", CLUSTER))
    return build_plan(inventory, load_suite(write_yaml("suite.yaml", SUITE)), Options())


def execute_with(
    tmp_path: Path,
    plan: Plan,
    deploy_host: Callable[[str], None],
    fakes: dict[str, Host],
    wheels: Wheelhouse | None = None,
) -> tuple[int, dict[str, Any]]:
    """A run of the cluster on ``fakes`` whose hosts' deploys are ``deploy_host(name)``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deploy_mod, "_deploy_host", lambda ctx, name, *_: deploy_host(name))
        outcome = execute(
            plan,
            tmp_path,
            lambda line: None,
            steps=(
                cluster(fakes, wheels),
                Step("deploy", deploy_step),
                Step("layers", layers_step),
            ),
        )
    record = json.loads((outcome.run_dir / "run.json").read_text())
    assert_valid_record(record)
    return outcome.exit_code, record


def layer_ran(fake: Host, name: str) -> bool:
    return any(f"/{name}.xml" in script for script in fake.scripts)


def test_the_server_layers_run_while_the_client_hosts_deploy_goes_on(
    tmp_path: Path, cluster_plan: Plan
) -> None:
    assert cluster_plan.deployed_later == ("cl1",)
    fakes = {name: Host(name) for name in cluster_plan.hosts}
    seen_by_client: list[bool] = []

    def deploy_host(name: str) -> None:
        if name == "cl1":  # ends only once both server layers have run on web1
            deadline = time.monotonic() + 10
            while not (layer_ran(fakes["web1"], "unit") and layer_ran(fakes["web1"], "pure")):
                assert time.monotonic() < deadline, "the server layers waited for the client"
                time.sleep(0.01)
            seen_by_client.append(layer_ran(fakes["cl1"], "rest"))

    code, record = execute_with(tmp_path, cluster_plan, deploy_host, fakes)
    assert code == 0, record["reasons"]
    assert seen_by_client == [False]  # the client layer waited for the client's deploy
    assert layer_ran(fakes["cl1"], "rest")


def test_a_background_deploy_that_fails_blocks_the_layers_on_its_host_and_keeps_the_rest(
    tmp_path: Path, cluster_plan: Plan
) -> None:
    def deploy_host(name: str) -> None:
        if name == "cl1":
            raise HostError("cl1", "connection lost while sending the client")

    fakes = {name: Host(name) for name in cluster_plan.hosts}
    code, record = execute_with(tmp_path, cluster_plan, deploy_host, fakes)
    assert code == 3 and record["verdict"] == "error"
    assert any("cl1" in r and "connection lost" in r for r in record["reasons"])
    assert [(layer["name"], layer["status"]) for layer in record["layers"]] == [
        ("unit", "passed"),
        ("pure", "passed"),
        ("rest", "blocked"),  # not "interrupted": no layer was running when it failed
    ]
    client = next(d for d in record["deploy"] if d["host"] == "cl1")
    assert client["status"] == "failed" and "connection lost" in client["error"]
    assert not layer_ran(fakes["cl1"], "rest")


def test_a_run_that_ends_early_stops_the_deploy_still_going_on_before_teardown(
    tmp_path: Path, cluster_plan: Plan
) -> None:
    stop = threading.Event()
    order: list[str] = []

    def deploy_host(name: str) -> None:
        if name == "web1":
            raise HostError("web1", "the server's virtualenv did not build")
        if name == "cl1":  # an install still running, until teardown's stray kill
            assert stop.wait(10)
            order.append("client deploy ended")

    class Killer(Host):
        def run(self, script: str, **kw: Any) -> Result:
            if "READINESS_DEPLOY_ROOT" in script and self.name == "cl1" and not stop.is_set():
                order.append("stray kill on cl1")
                stop.set()
            if "secrets.env" in script and self.name == "cl1":
                order.append("secrets forgotten on cl1")
            return super().run(script, **kw)

    fakes: dict[str, Host] = {name: Killer(name) for name in cluster_plan.hosts}
    code, record = execute_with(tmp_path, cluster_plan, deploy_host, fakes)
    assert code == 3 and record["layers"][0]["status"] == "blocked"
    assert order[:3] == ["stray kill on cl1", "client deploy ended", "secrets forgotten on cl1"]


def test_wheels_that_cannot_install_on_a_host_fail_the_deploy_before_any_host_is_touched(
    tmp_path: Path, cluster_plan: Plan
) -> None:
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / "fast-1.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
    started: list[str] = []
    fakes = {name: Host(name) for name in cluster_plan.hosts}
    code, record = execute_with(
        tmp_path, cluster_plan, started.append, fakes, Wheelhouse(folder, "w2")
    )
    assert code == 3 and started == []  # not even the database host's deploy began
    assert any("has Python 3.9 on aarch64" in reason for reason in record["reasons"])
    assert {(d["host"], d["status"]) for d in record["deploy"]} == {
        ("db1", "skipped"),  # the database fits anywhere, but was not started
        ("web1", "failed"),
        ("cl1", "failed"),
    }


def test_the_other_hosts_open_a_window_only_once_the_server_is_up_on_its_own(
    tmp_path: Path, cluster_plan: Plan
) -> None:
    """The testserver creates its test database over TCP as it starts: the database
    host's window must not be open yet, or that traffic would count as the layer's."""
    events: list[str] = []
    lock = threading.Lock()

    class Ordered(Host):
        def run(self, script: str, **kw: Any) -> Result:
            kind = "start" if "@@readiness opening" in script else "open"
            opening = "layer=rest\n" in script and "@@readiness settle" not in script
            if not opening:  # not the opening of the rest layer's window (nor a start)
                return super().run(script, **kw)
            with lock:
                events.append(f"{self.name} {kind} begins")
            time.sleep(0.2)  # long enough for any open running alongside to begin
            result = super().run(script, **kw)
            with lock:
                events.append(f"{self.name} {kind} ends")
            return result

    fakes: dict[str, Host] = {name: Ordered(name) for name in cluster_plan.hosts}
    code, record = execute_with(tmp_path, cluster_plan, lambda name: None, fakes)
    assert code == 0, record["reasons"]
    starts = [e for e in events if e.startswith("web1 start")]
    assert starts == ["web1 start begins", "web1 start ends"], events
    ended = events.index("web1 start ends")
    others = [i for i, e in enumerate(events) if e.split()[0] in ("db1", "cl1") and "begins" in e]
    assert others and all(i > ended for i in others), events
