"""The job's sequence with fake hosts: gates, blocked layers, exit codes, the record kept."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from orchestrator.bundle import Bundle
from orchestrator.components import database_engine
from orchestrator.context import Context
from orchestrator.deploy import Artifacts
from orchestrator.exceptions import ConfigError, HostError
from orchestrator.hosts import Target
from orchestrator.inventory import load_inventory
from orchestrator.junit import TestCounts, parse_counts
from orchestrator.lifecycle import Step, execute
from orchestrator.plan import Options, Plan, build_plan
from orchestrator.steps.deploy import app_servers
from orchestrator.steps.layers import layers_step
from orchestrator.suite import load_suite
from orchestrator.testcases import read_cases
from orchestrator.transport import FakeTransport, Result
from orchestrator.wheelhouse import Wheelhouse
from tests.schema_check import assert_valid_record
from tests.unit.conftest import SINGLE, SUITE

Write = Callable[[str, str], Path]
JUNIT_OK = b'<testsuite><testcase name="a"/></testsuite>'


@pytest.fixture
def plan_for(app_dir: Path, write_yaml: Write) -> Callable[[Options], Plan]:
    inventory = load_inventory(write_yaml("single.yaml", SINGLE))
    suite = load_suite(write_yaml("suite.yaml", SUITE))
    return lambda options: build_plan(inventory, suite, options)


def fake_connect(fake: FakeTransport) -> Step:
    """Stands in for lab/connect/build/deploy: one fake host holding every role."""

    def run(ctx: Context) -> None:
        host = ctx.inventory.hosts[0]
        ctx.targets = {host.name: Target(host, "10.0.0.2", "root", "/srv/r")}
        ctx.transports = {host.name: fake}
        wheels = Wheelhouse(Path("/nowhere"), "w1")
        bundle = Bundle(b"", "d1", 0)
        ctx.artifacts = Artifacts(bundle, bundle, wheels, wheels)
        ctx.servers = app_servers(ctx)
        ctx.database = database_engine("mariadb").instance(host.name, ctx.targets[host.name], 3307)

    return Step("connect", run)


class JunitEverywhere(FakeTransport):
    """Every layer's JUnit file exists and passes, whatever the run id."""

    def get(self, remote_path: str) -> bytes:
        if remote_path.endswith(".xml"):
            return self.files.get(remote_path, JUNIT_OK)
        return super().get(remote_path)


def run(
    tmp_path: Path, plan: Plan, fake: FakeTransport, *extra: Step
) -> tuple[int, dict[str, Any], list[str]]:
    lines: list[str] = []
    outcome = execute(
        plan,
        tmp_path,
        lines.append,
        steps=(fake_connect(fake), *extra, Step("layers", layers_step)),
    )
    record = json.loads((outcome.run_dir / "run.json").read_text())
    assert_valid_record(record)
    assert (outcome.run_dir / "report.html").is_file()
    return outcome.exit_code, record, lines


def test_all_layers_pass_in_order_and_the_run_is_ready(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    code, record, lines = run(tmp_path, plan_for(Options()), JunitEverywhere("h1"))
    assert code == 0 and record["verdict"] == "ready"
    assert [(layer["name"], layer["status"]) for layer in record["layers"]] == [
        ("unit", "passed"),
        ("pure", "passed"),
        ("rest", "passed"),
    ]
    assert record["finished_at"] and record["schema"]
    assert any("rest" in line and "passed" in line for line in lines)


TEST = "it/t.py::a"


def ledger_line(kind: str, position: int, at: float, attempt: int = 1, **fields: object) -> str:
    """One line as the ledger hook writes it; an error line is a reset of the server's."""
    if kind == "error":
        fields = {
            "op": "recv",
            "errno": "ECONNRESET",
            "exception": "ConnectionResetError",
            "message": "x",
            "local": "10.0.0.2:41000",
            "remote": "10.0.0.2:8000",
            "reused": False,
            "source": "socket",
            **fields,
        }
    base = {"v": 1, "pid": 9, "test": TEST, "position": position, "attempt": attempt}
    return json.dumps({**base, "kind": kind, "at": at, **fields}) + "\n"


def attempt_line(position: int, at: float, attempt: int, outcome: str, retry: bool) -> str:
    return ledger_line("test", position, at, attempt, outcome=outcome, retry=retry, duration_s=0.1)


class RetriedOnce(JunitEverywhere):
    """The rest layer's ledger: one test reset by the server, passed on its retry."""

    def get(self, remote_path: str) -> bytes:
        if remote_path.endswith("/rest.ledger.jsonl"):
            return (
                ledger_line("error", 1, 1.0)
                + attempt_line(1, 1.1, 1, "failed", retry=True)
                + attempt_line(1, 1.3, 2, "passed", retry=False)
            ).encode()
        return super().get(remote_path)


def test_a_test_passed_only_after_a_retry_is_named_in_the_verdict_and_judged(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    code, record, lines = run(tmp_path, plan_for(Options()), RetriedOnce("h1"))
    assert code == 0 and record["verdict"] == "ready"
    assert record["reasons"] == [
        "layer 'rest': 1 test(s) passed only after retries (it/t.py::a x2)"
    ]
    ledger = record["ledger"]
    assert ledger["collected"] and ledger["events"] == 1
    assert [(f["test"], f["status"], f["attempts"]) for f in ledger["flagged"]] == [
        ("it/t.py::a", "passed-with-retries", 2)
    ]
    (error,) = ledger["errors"]
    # The fake host has no capture and no counters: the judgement says what it lacked.
    assert (error["errno"], error["server"], error["on"]) == ("ECONNRESET", "10.0.0.2:8000", "h1")
    assert error["rst"] is None and error["confidence"] == "low"
    assert ledger["captures"]["rest"]["h1"]["status"] == "failed"
    assert any(line.startswith("readiness: transport: all-on-one: 1 reset") for line in lines)


class FlakyRest(JunitEverywhere):
    """The rest layer's one test: passes, then in pass 2 fails with a reset, then passes."""

    def get(self, remote_path: str) -> bytes:
        name = remote_path.rsplit("/", 1)[-1]
        if name.startswith("rest") and name.endswith(".ledger.jsonl"):
            flaky = name == "rest.2.ledger.jsonl"
            text = attempt_line(4, 1.0, 1, "failed" if flaky else "passed", retry=False)
            if flaky:
                text += ledger_line("error", 4, 0.9)
            return text.encode()
        return super().get(remote_path)


def test_repeat_runs_the_client_layers_again_on_a_fresh_server_and_rates_each_test(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = FlakyRest("h1")
    code, record, _ = run(tmp_path, plan_for(Options(repeat=3)), fake)
    assert [(layer["name"], layer["repeat"]) for layer in record["layers"]] == [
        ("unit", 1),
        ("pure", 1),
        ("rest", 1),
        ("rest.2", 2),
        ("rest.3", 2 + 1),
    ]
    assert record["repeat"] == 3
    (rate,) = record["pass_rates"]
    assert (rate["layer"], rate["test"], rate["runs"], rate["passed"]) == (
        "rest",
        "it/t.py::a",
        3,
        2,
    )
    assert rate["error_passes"] == [2] and rate["position"] == 4
    # Each pass has a server of its own: started three times (a start stops the server
    # of the pass before first).
    starts = [s for s in fake.scripts if "manage.py testserver" in s or "gunicorn" in s]
    assert len([s for s in starts if "setsid" in s]) == 3
    # The fake's JUnit passes and its layers exit 0: the layer's status comes from those,
    # the pass rate from the ledger, which says the test failed in pass 2.
    assert code == 0 and record["layers"][3]["status"] == "passed"


def test_a_failed_gate_blocks_the_later_layers_and_the_run_is_not_ready(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = JunitEverywhere("h1").on(r"python -m pytest\n", exit_code=1)
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 1 and record["verdict"] == "not-ready"
    statuses = [layer["status"] for layer in record["layers"]]
    assert statuses == ["failed", "blocked", "blocked"]
    assert "layer 'unit' failed" in record["layers"][1]["reason"]
    assert not any("pytest it" in script for script in fake.scripts)


def test_a_continue_gate_goes_on(tmp_path: Path, plan_for: Callable[[Options], Plan]) -> None:
    fake = JunitEverywhere("h1").on(r"pytest pure\n", exit_code=1)
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 1
    assert [layer["status"] for layer in record["layers"]] == ["passed", "failed", "passed"]


def test_keep_going_runs_every_layer(tmp_path: Path, plan_for: Callable[[Options], Plan]) -> None:
    fake = JunitEverywhere("h1").on(r"python -m pytest\n", exit_code=1)
    code, record, _ = run(tmp_path, plan_for(Options(keep_going=True)), fake)
    assert code == 1
    assert [layer["status"] for layer in record["layers"]] == ["failed", "passed", "passed"]


def test_the_server_runs_only_for_layers_that_need_it(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = JunitEverywhere("h1")
    run(tmp_path, plan_for(Options()), fake)
    starts = [i for i, s in enumerate(fake.scripts) if "manage.py testserver" in s]
    rest = next(i for i, s in enumerate(fake.scripts) if "pytest it" in s)
    unit = next(i for i, s in enumerate(fake.scripts) if "python -m pytest\n" in s)
    assert len(starts) == 1 and unit < starts[0] < rest


def test_an_unreachable_host_is_exit_3_and_the_record_names_it(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    def unreachable(ctx: Context) -> None:
        raise HostError("h1", "cannot connect to root@10.0.0.2:22")

    code, record, _ = run(
        tmp_path, plan_for(Options()), JunitEverywhere("h1"), Step("deploy", unreachable)
    )
    assert code == 3 and record["verdict"] == "error"
    assert "h1" in record["reasons"][0]
    assert [layer["status"] for layer in record["layers"]] == ["blocked"] * 3
    assert [s["name"] for s in record["steps"]] == ["connect", "deploy"]


def test_teardown_runs_even_after_ctrl_c(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    def interrupted(ctx: Context) -> None:
        raise KeyboardInterrupt

    fake = JunitEverywhere("h1")
    code, record, _ = run(tmp_path, plan_for(Options()), fake, Step("deploy", interrupted))
    assert code == 130 and record["verdict"] == "interrupted"
    assert record["interrupted"] == {
        "signal": "SIGINT",
        "step": "deploy",
        "layer": None,
        "noted": [],
    }
    assert record["teardown"]["status"] == "ok"
    assert any("secrets.env" in s and "rm -f" in s for s in fake.scripts)
    assert [s["status"] for s in record["steps"]] == ["ok", "interrupted"]


class SignalledDuring(JunitEverywhere):
    """Sends this process real signals: the first while ``pattern`` runs, another one
    while teardown runs (as a CI runner does after its first SIGTERM)."""

    def __init__(self, name: str, pattern: str, first: int, second: int | None) -> None:
        super().__init__(name)
        self.pattern, self.first, self.second = pattern, first, second

    def run(self, script: str, **kw: Any) -> Result:
        if self.pattern in script and self.first:
            signum, self.first = self.first, 0
            os.kill(os.getpid(), signum)  # the handler raises here, in the main thread
        if "strays" in script and self.second:  # the teardown script
            signum, self.second = self.second, None
            os.kill(os.getpid(), signum)  # must be noted, not cut the teardown short
        return super().run(script, **kw)


def test_sigterm_mid_layer_tears_down_and_records_the_layer_as_interrupted(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = SignalledDuring("h1", "pytest pure", signal.SIGTERM, signal.SIGINT)
    code, record, lines = run(tmp_path, plan_for(Options()), fake)
    assert code == 143 and record["verdict"] == "interrupted"
    assert record["reasons"] == ["interrupted by SIGTERM during step 'layers', layer 'pure'"]
    assert [layer["status"] for layer in record["layers"]] == ["passed", "interrupted", "blocked"]
    assert record["interrupted"] == {
        "signal": "SIGTERM",
        "step": "layers",
        "layer": "pure",
        "noted": ["SIGINT"],
    }
    assert record["teardown"]["status"] == "ok" and record["finished_at"]
    assert any("SIGINT noted" in line for line in lines)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back


def test_sighup_is_one_more_way_to_the_same_teardown(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = SignalledDuring("h1", "python -m pytest\n", signal.SIGHUP, None)
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 129 and record["interrupted"]["signal"] == "SIGHUP"
    assert record["teardown"]["status"] == "ok"


def test_keep_skips_teardown(tmp_path: Path, plan_for: Callable[[Options], Plan]) -> None:
    fake = JunitEverywhere("h1")
    run(tmp_path, plan_for(Options(keep=True)), fake)
    assert not any("rm -f /srv/r/etc/secrets.env" in s for s in fake.scripts)


def test_a_config_error_mid_run_is_exit_2(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    def bad(ctx: Context) -> None:
        raise ConfigError("environment variable DBH is not set", field="database.host_env")

    code, record, _ = run(tmp_path, plan_for(Options()), JunitEverywhere("h1"), Step("deploy", bad))
    assert code == 2 and "DBH" in record["reasons"][0]


def test_a_bug_in_readiness_keeps_the_record_and_the_traceback(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    def buggy(ctx: Context) -> None:
        raise ZeroDivisionError("oops")

    code, record, _ = run(
        tmp_path, plan_for(Options()), JunitEverywhere("h1"), Step("deploy", buggy)
    )
    assert code == 3
    assert record["reasons"][0].startswith("internal error: ZeroDivisionError")
    run_dir = tmp_path / "reports" / "runs" / record["run_id"]
    assert "ZeroDivisionError" in (run_dir / "logs" / "orchestrator.log").read_text()


def test_a_host_lost_during_a_layer_is_exit_3_not_not_ready(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    class Vanishing(JunitEverywhere):
        def run(self, script: str, **kw: Any) -> Result:
            if "pytest pure" in script:
                raise HostError(self.name, "connection closed without an exit status")
            return super().run(script, **kw)

    code, record, _ = run(tmp_path, plan_for(Options()), Vanishing("h1"))
    assert code == 3 and record["verdict"] == "error"
    assert "could not run" in record["reasons"][0]
    # "pure" has gate continue, so the sequence goes on; the verdict is still an error.
    assert [layer["status"] for layer in record["layers"]] == ["passed", "error", "passed"]


def test_a_layer_failing_because_the_database_died_is_an_infrastructure_error(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = (
        JunitEverywhere("h1")
        .on(r"python -m pytest\n", exit_code=1)
        .on("does not answer a ping|ping >/dev/null", exit_code=1, stderr="Got signal 9\n")
    )
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 3 and record["verdict"] == "error"
    unit = record["layers"][0]
    assert unit["status"] == "error"
    assert "the database on h1 died or stopped answering" in unit["reason"]
    assert "Got signal 9" in unit["reason"]  # its log's last lines name the cause
    assert "could not run" in record["reasons"][0] and "database on h1" in record["reasons"][0]


def test_a_failing_layer_on_a_healthy_stack_stays_the_applications_failure(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = JunitEverywhere("h1").on(r"python -m pytest\n", exit_code=1)
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 1 and record["layers"][0]["status"] == "failed"
    assert any("ping" in script for script in fake.scripts)  # the stack was asked


def test_a_server_that_died_mid_layer_is_an_error_and_the_next_layer_gets_a_fresh_one(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = (
        JunitEverywhere("h1")
        .on(r"pytest it\n", exit_code=1)
        .on("does not answer", exit_code=1, stderr="its process (4242) is gone\n")
    )
    code, record, _ = run(tmp_path, plan_for(Options(keep_going=True)), fake)
    assert code == 3
    rest = record["layers"][2]
    assert rest["status"] == "error" and "the testserver on h1" in rest["reason"]
    assert "(4242) is gone" in rest["reason"]


def test_a_layer_killed_from_outside_is_an_infrastructure_error(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = JunitEverywhere("h1").on(r"pytest pure\n", exit_code=137)
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 3
    assert "killed by SIGKILL from outside readiness" in record["layers"][1]["reason"]


def test_a_first_signal_during_teardown_is_noted_and_the_teardown_finishes(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = SignalledDuring("h1", "no layer has this text", 0, signal.SIGTERM)
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 0 and record["verdict"] == "ready"  # every layer ran before it came
    assert record["teardown"]["status"] == "ok"
    assert record["interrupted"] == {
        "signal": "SIGTERM",
        "step": "teardown",
        "layer": None,
        "noted": ["SIGTERM"],
    }


# A setup layer first (no JUnit: a step, not "0 tests"), then the usual three.
SETUP_SUITE = SUITE.replace(
    "layers:\n", "layers:\n  - {name: migrate, role: server, command: ./migrate, junit: false}\n"
)
UNIT_JUNIT = (
    b'<testsuite><testcase classname="u" name="one" time="0.5"/>'
    b'<testcase classname="u" name="two"><skipped message="later"/></testcase></testsuite>'
)
REST_JUNIT = (
    b'<testsuite><testcase classname="it" name="&lt;script&gt;{{7*7}}">'
    b'<failure message="boom">trace</failure></testcase></testsuite>'
)


class JunitPerLayer(JunitEverywhere):
    """unit and rest each hand out JUnit of their own; pure the one passing case."""

    def get(self, remote_path: str) -> bytes:
        name = remote_path.rsplit("/", 1)[-1]
        return {"unit.xml": UNIT_JUNIT, "rest.xml": REST_JUNIT}.get(name) or super().get(
            remote_path
        )


@pytest.fixture
def setup_plan(app_dir: Path, write_yaml: Write) -> Callable[[Options], Plan]:
    inventory = load_inventory(write_yaml("single.yaml", SINGLE))
    suite = load_suite(write_yaml("setup-suite.yaml", SETUP_SUITE))
    return lambda options: build_plan(inventory, suite, options)


def run_dir(tmp_path: Path, record: dict[str, Any]) -> Path:
    return tmp_path / "reports" / "runs" / str(record["run_id"])


def test_every_test_case_of_the_run_is_kept_in_tests_jsonl_and_the_merged_junit(
    tmp_path: Path, setup_plan: Callable[[Options], Plan]
) -> None:
    code, record, _ = run(tmp_path, setup_plan(Options(keep_going=True)), JunitPerLayer("h1"))
    assert code == 1  # rest's one case failed
    assert (record["tests_file"], record["junit_file"]) == ("tests.jsonl", "junit.xml")
    cases = read_cases(run_dir(tmp_path, record), record["tests_file"])
    assert [(c.layer, c.host, c.id, c.status, c.position) for c in cases] == [
        ("unit", "h1", "u::one", "passed", 1),
        ("unit", "h1", "u::two", "skipped", 2),
        ("pure", "h1", "a", "passed", 1),
        ("rest", "h1", "it::<script>{{7*7}}", "failed", 1),
    ]
    merged = (run_dir(tmp_path, record) / "junit.xml").read_bytes()
    assert parse_counts(merged) == TestCounts(total=4, passed=2, failed=1, skipped=1)


def test_layers_say_when_they_started_and_whether_they_are_setup(
    tmp_path: Path, setup_plan: Callable[[Options], Plan]
) -> None:
    _, record, _ = run(tmp_path, setup_plan(Options(keep_going=True)), JunitPerLayer("h1"))
    layers = record["layers"]
    assert [(layer["name"], layer["setup"]) for layer in layers] == [
        ("migrate", True),
        ("unit", False),
        ("pure", False),
        ("rest", False),
    ]
    starts = [layer["start_s"] for layer in layers]
    assert all(isinstance(s, float) and s >= 0 for s in starts)
    assert starts == sorted(starts)  # the timeline's order is the run's


def test_blocked_layers_never_started_and_keep_no_test_cases(
    tmp_path: Path, setup_plan: Callable[[Options], Plan]
) -> None:
    plan = setup_plan(Options())  # unit's stop gate stops the sequence
    fake = JunitPerLayer("h1").on(r"python -m pytest\n", exit_code=1)
    code, record, _ = run(tmp_path, plan, fake)
    assert code == 1
    assert [(la["name"], la["status"], la["start_s"] is None) for la in record["layers"]] == [
        ("migrate", "passed", False),
        ("unit", "failed", False),
        ("pure", "blocked", True),
        ("rest", "blocked", True),
    ]
    cases = read_cases(run_dir(tmp_path, record), record["tests_file"])
    assert {c.layer for c in cases} == {"unit"}


def test_a_run_whose_layers_wrote_no_junit_has_no_test_files(
    tmp_path: Path, setup_plan: Callable[[Options], Plan]
) -> None:
    plan = setup_plan(Options())
    fake = JunitPerLayer("h1").on(r"\./migrate\n", exit_code=1)  # the setup's gate stops it
    _, record, _ = run(tmp_path, plan, fake)
    assert [(la["status"], la["setup"]) for la in record["layers"]] == [
        ("failed", True),
        *[("blocked", False)] * 3,
    ]
    assert (record["tests_file"], record["junit_file"]) == (None, None)
    assert not (run_dir(tmp_path, record) / "tests.jsonl").exists()


def test_test_files_that_cannot_be_written_never_fail_the_run(
    tmp_path: Path, plan_for: Callable[[Options], Plan], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("the disk is full of tests")

    monkeypatch.setattr("orchestrator.steps.layers.write_run_tests", broken)
    code, record, lines = run(tmp_path, plan_for(Options()), JunitEverywhere("h1"))
    assert code == 0 and record["verdict"] == "ready"
    log = (run_dir(tmp_path, record) / "logs" / "tests-error.log").read_text()
    assert "RuntimeError: the disk is full of tests" in log
    assert record["tests_file"] is None
    assert any("logs/tests-error.log" in line for line in lines)


# --------------------------------------------------------------------------- issue 12: steps

# A setup step first, written as a step: judged by its exit code, no JUnit expected.
STEP_SUITE = SUITE.replace(
    "layers:\n", "layers:\n  - {step: collectstatic, role: server, command: ./collectstatic}\n"
)
COLLECTSTATIC_ERROR = "".join(f"  File app.py, line {i}\n" for i in range(1, 20)) + (
    "ValueError: Missing staticfiles manifest entry for 'app.css'\n"
)


@pytest.fixture
def step_plan(app_dir: Path, write_yaml: Write) -> Callable[[Options], Plan]:
    inventory = load_inventory(write_yaml("single.yaml", SINGLE))
    suite = load_suite(write_yaml("step-suite.yaml", STEP_SUITE))
    return lambda options: build_plan(inventory, suite, options)


def test_a_step_that_succeeds_is_a_step_ok_line_not_zero_tests(
    tmp_path: Path, step_plan: Callable[[Options], Plan]
) -> None:
    code, record, lines = run(tmp_path, step_plan(Options()), JunitEverywhere("h1"))
    assert code == 0 and record["verdict"] == "ready"
    step = record["layers"][0]
    assert (step["name"], step["status"], step["setup"], step["junit"]) == (
        "collectstatic",
        "passed",
        True,
        [],
    )
    said = [line for line in lines if "collectstatic" in line]
    assert len(said) == 2
    assert re.search(r" h1 +step +collectstatic running$", said[0])
    assert re.search(r" h1 +step +collectstatic ok \(\d+\.\ds\)$", said[1])
    assert re.search(r" h1 +unit +passed in \d+\.\ds \(1 passed, 0 failed", "\n".join(lines))


def test_a_failing_step_shows_its_exit_its_output_tail_and_blocks_by_its_gate(
    tmp_path: Path, step_plan: Callable[[Options], Plan]
) -> None:
    fake = JunitEverywhere("h1").on(r"\./collectstatic\n", exit_code=1, stderr=COLLECTSTATIC_ERROR)
    code, record, lines = run(tmp_path, step_plan(Options()), fake)
    assert code == 1 and record["verdict"] == "not-ready"
    step, *rest = record["layers"]
    assert (step["status"], step["setup"]) == ("failed", True)
    assert step["reason"] == (
        "h1: exit code 1: ValueError: Missing staticfiles manifest entry for 'app.css'"
    )
    assert [(la["status"], la["reason"]) for la in rest] == [
        ("blocked", "step 'collectstatic' failed")
    ] * 3
    at = next(i for i, line in enumerate(lines) if "collectstatic failed" in line)
    assert re.search(r" h1 +step +collectstatic failed \(exit 1\)$", lines[at])
    log = run_dir(tmp_path, record) / "logs" / "h1" / "collectstatic.log"
    assert lines[at + 1] == f"    the last 15 lines of its output on h1 (all of it: {log}):"
    assert lines[at + 2 : at + 17] == [
        *(f"    |   File app.py, line {i}" for i in range(6, 20)),
        "    | ValueError: Missing staticfiles manifest entry for 'app.css'",
    ]
    assert "0 passed" not in "\n".join(lines[at : at + 17])
    assert re.search(r" - +unit +blocked \(step 'collectstatic' failed\)$", lines[at + 17])


def test_a_failing_step_with_a_continue_gate_lets_the_layers_run(
    tmp_path: Path, app_dir: Path, write_yaml: Write
) -> None:
    text = STEP_SUITE.replace(
        "command: ./collectstatic}", "command: ./collectstatic, gate: continue}"
    )
    plan = build_plan(
        load_inventory(write_yaml("single.yaml", SINGLE)),
        load_suite(write_yaml("step-suite.yaml", text)),
        Options(),
    )
    fake = JunitEverywhere("h1").on(r"\./collectstatic\n", exit_code=2)
    code, record, lines = run(tmp_path, plan, fake)
    assert code == 1 and record["verdict"] == "not-ready"
    assert [la["status"] for la in record["layers"]] == ["failed", "passed", "passed", "passed"]
    assert record["layers"][0]["reason"] == "h1: exit code 2: it printed nothing"
    assert any(re.search(r"step +collectstatic failed \(exit 2\)$", line) for line in lines)
    assert not any(line.startswith("    | ") for line in lines)  # no output, no tail


class NoJunitFor(JunitEverywhere):
    """Every layer's JUnit is there but ``missing``'s: a setup command written as a layer."""

    def __init__(self, name: str, missing: str) -> None:
        super().__init__(name)
        self.missing = missing

    def get(self, remote_path: str) -> bytes:
        if remote_path.endswith(f"/{self.missing}.xml"):
            return FakeTransport.get(self, remote_path)
        return super().get(remote_path)


def test_a_layer_that_wrote_no_junit_says_so_with_the_hint_to_make_it_a_step(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    code, record, lines = run(tmp_path, plan_for(Options()), NoJunitFor("h1", "pure"))
    assert code == 1
    pure = record["layers"][1]
    assert (pure["status"], pure["setup"]) == ("failed", False)
    hint = (
        "layer pure wrote no JUnit XML at $READINESS_JUNIT (h1: cannot read "
        f"/srv/r/results/{record['run_id']}/pure.xml: no such file); if it runs no tests, "
        "make it a step: '- step: pure'"
    )
    assert pure["reason"] == hint
    (line,) = [line for line in lines if " pure " in line and "failed" in line]
    assert re.search(r" h1 +pure +failed in \d+\.\ds: " + re.escape(hint) + "$", line)


def test_the_old_junit_false_form_is_still_a_step_in_the_terminal(
    tmp_path: Path, setup_plan: Callable[[Options], Plan]
) -> None:
    _, record, lines = run(tmp_path, setup_plan(Options()), JunitPerLayer("h1"))
    assert (record["layers"][0]["name"], record["layers"][0]["setup"]) == ("migrate", True)
    assert any(re.search(r" h1 +step +migrate ok \(\d+\.\ds\)$", line) for line in lines)


def test_each_step_records_its_round_trips_to_each_host(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = JunitEverywhere("h1")
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 0
    steps = {s["name"]: s["round_trips"] for s in record["steps"]}
    assert steps["connect"] == {}  # the stand-in connect talks to no host
    # Three layers: each at least runs its command and fetches its JUnit.
    assert steps["layers"]["h1"] >= 6
    assert steps["layers"]["h1"] <= fake.round_trips  # teardown's come after the steps


# -- bursts: the stack checked after them, their window given time to settle ---------------

BURST_SUITE = """\
layers:
  - {name: rest, role: client, command: python -m pytest it, needs: [database, server]}
  - {name: burst-60, role: client, needs: [database, server], burst: {requests: 60}}
  - {name: after, role: client, command: python -m pytest after, needs: [database, server]}
"""
BURST_SUMMARY = json.dumps(
    {
        "kind": "readiness-burst",
        "v": 1,
        "url": "http://10.0.0.2:8000/",
        "requests": 60,
        "ok": 52,
        "errors": {"ETIMEDOUT": 8},
        "latency_ms": {"p50": 310.0, "p90": 1100.5, "p99": 1203.0, "max": 1250.0},
        "slow": 9,
        "duration_s": 10.2,
    }
)
SERVER_CHECK = re.escape("it does not answer $url")  # only the server's health check says it


@pytest.fixture
def burst_plan(app_dir: Path, write_yaml: Write) -> Callable[[Options], Plan]:
    inventory = load_inventory(write_yaml("single.yaml", SINGLE))
    suite = load_suite(write_yaml("burst-suite.yaml", BURST_SUITE))
    return lambda options: build_plan(inventory, suite, options)


def window_close(settled: bool, waited_ms: int, lingering: int, peak: int) -> str:
    """What closing a window prints on a host with no tcpdump, whose sampler saw ``peak``
    connections waiting in the server's accept queue (port 8000, backlog 10)."""
    return (
        f"@@readiness settle\nsettled {int(settled)}\nwaited_ms {waited_ms}\n"
        f"lingering {lingering}\n"
        f"@@readiness sampler\nstatus sampled\n8000 10 {peak}\n"
        "@@readiness capture\nstatus unavailable no capture ran in this window\n"
    )


class Bursting(JunitEverywhere):
    """A host that runs the burst probe and closes each layer's window as ``closes`` says
    (layer -> output); the rest as JunitEverywhere."""

    closes: dict[str, str]

    def run(self, script: str, **kw: Any) -> Result:
        layer = re.search(r"^layer=(\S+)$", script, re.MULTILINE)
        if "@@readiness settle" in script and layer and layer[1] in self.closes:
            super().run(script, **kw)  # recorded like any other
            return Result(script, 0, self.closes[layer[1]], "", 0.0, False, self.name)
        return super().run(script, **kw)


def bursting(closes: dict[str, str] | None = None, cls: type[Bursting] = Bursting) -> Bursting:
    fake = cls("h1")
    fake.on("READINESS_BURST_EOF", stdout=BURST_SUMMARY + "\n")
    fake.closes = closes or {}
    return fake


def test_a_burst_on_a_healthy_stack_passes_and_its_server_was_checked(
    tmp_path: Path, burst_plan: Callable[[Options], Plan]
) -> None:
    fake = bursting()
    code, record, _ = run(tmp_path, burst_plan(Options()), fake)
    assert code == 0 and [layer["status"] for layer in record["layers"]] == ["passed"] * 3
    probe = next(i for i, s in enumerate(fake.scripts) if "READINESS_BURST_EOF" in s)
    assert any(re.search(SERVER_CHECK, s) for s in fake.scripts[probe:])  # though it passed


def test_a_server_that_died_during_a_burst_makes_the_burst_an_infrastructure_error(
    tmp_path: Path, burst_plan: Callable[[Options], Plan]
) -> None:
    fake = bursting()
    fake.on(SERVER_CHECK, exit_code=1, stderr="its process (4242) is gone\n")
    code, record, _ = run(tmp_path, burst_plan(Options(keep_going=True)), fake)
    assert code == 3 and record["verdict"] == "error"
    burst = record["layers"][1]
    assert burst["status"] == "error" and "the testserver on h1 died" in burst["reason"]
    assert "(4242) is gone" in burst["reason"]
    # Measured all the same, and the next layer that needs the server gets a fresh one.
    assert [b["ok"] for b in record["bursts"]] == [52]
    starts = [s for s in fake.scripts if "manage.py testserver" in s and "setsid" in s]
    assert len(starts) == 2


def test_a_burst_window_waits_for_its_timed_out_connections_and_says_when_it_could_not(
    tmp_path: Path, burst_plan: Callable[[Options], Plan]
) -> None:
    fake = bursting({"burst-60": window_close(False, 20000, 12, 11)})
    code, record, _ = run(tmp_path, burst_plan(Options()), fake)
    assert code == 0
    closes = {
        call.script.split("\nlayer=")[1].split("\n")[0]: call
        for call in fake.calls
        if "@@readiness settle" in call.script
    }
    # 10 s of burst timeout and a drain allowance, in tenths; an ordinary layer waits 5 s.
    assert "-lt 200 ]" in closes["burst-60"].script and "-lt 50 ]" in closes["rest"].script
    assert closes["burst-60"].timeout is not None and closes["burst-60"].timeout >= 20
    ledger = record["ledger"]
    burst = ledger["captures"]["burst-60"]["h1"]
    assert (burst["settled"], burst["lingering"], burst["settle_waited_s"]) == (False, 12, 20.0)
    assert ledger["problems"] == [
        "layer burst-60: the window closed on h1 with 12 socket(s) of the layer still open "
        "after 20.0 s; their late resets may land in the next layer's window (judged there "
        "as possible leftovers)"
    ]


class ResetAfterTheBurst(Bursting):
    """The layer after an unsettled burst: one of its tests reset by the server."""

    def get(self, remote_path: str) -> bytes:
        if remote_path.endswith("/after.ledger.jsonl"):
            return (
                ledger_line("error", 1, 1.0) + attempt_line(1, 1.1, 1, "passed", False)
            ).encode()
        return super().get(remote_path)


def test_a_reset_in_the_window_after_an_unsettled_burst_says_it_may_be_a_leftover(
    tmp_path: Path, burst_plan: Callable[[Options], Plan]
) -> None:
    fake = bursting({"burst-60": window_close(False, 20000, 12, 11)}, ResetAfterTheBurst)
    _, record, _ = run(tmp_path, burst_plan(Options()), fake)
    (error,) = record["ledger"]["errors"]
    assert error["layer"] == "after"
    assert any(
        line.startswith("the previous window (burst-60) closed unsettled on h1 (12 socket(s)")
        for line in error["evidence"]
    )


def test_the_fingerprint_keeps_the_largest_accept_queue_peak_of_any_layer(
    tmp_path: Path, burst_plan: Callable[[Options], Plan]
) -> None:
    fake = bursting(
        {
            "rest": window_close(True, 100, 0, 2),
            "burst-60": window_close(True, 9000, 0, 11),
            "after": window_close(True, 100, 0, 1),
        }
    )
    _, record, _ = run(tmp_path, burst_plan(Options()), fake)
    fingerprint = record["fingerprints"]["h1"]
    assert (fingerprint["accept_queue_peak"], fingerprint["layer"]) == (11, "burst-60")
    assert fingerprint["backlog"] == 10


# -- issue 13: less between layers ---------------------------------------------------------
# A server's start rides in the script that opens the window on its host, the ledger in
# the script that closes it.


def close_answer(ledger: str) -> str:
    """What closing a window prints on a host with no tcpdump, then the ledger section."""
    return window_close(True, 0, 0, 0) + f"@@readiness ledger\n{ledger}@@readiness end\n"


def inline(data: bytes) -> str:
    """The ledger section of a file the close printed (base64, 76 characters a line)."""
    text = base64.encodebytes(data).decode()
    return f"status inline {len(data)}\n{text}"


class LedgerInClose(JunitEverywhere):
    """Each window's close prints the layer's ledger as ``ledgers`` says (layer -> the
    section's lines; none: no file), and every ``get`` is noted."""

    def __init__(self, name: str, ledgers: dict[str, str] | None = None) -> None:
        super().__init__(name)
        self.ledgers = ledgers or {}
        self.fetched: list[str] = []

    def run(self, script: str, **kw: Any) -> Result:
        layer = re.search(r"^layer=(\S+)$", script, re.MULTILINE)
        if "@@readiness settle" in script and layer:
            asked = re.search(r"^ledger=(\S*)$", script, re.MULTILINE)
            assert asked and asked[1].endswith(f"/{layer[1]}.ledger.jsonl"), script
            super().run(script, **kw)  # recorded like any other
            section = self.ledgers.get(layer[1], "status absent\n")
            return Result(script, 0, close_answer(section), "", 0.0, False, self.name)
        return super().run(script, **kw)

    def get(self, remote_path: str) -> bytes:
        self.fetched.append(remote_path)
        return super().get(remote_path)


def test_the_server_starts_in_the_script_that_opens_its_window_one_round_trip_a_layer(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = LedgerInClose("h1")
    code, record, lines = run(tmp_path, plan_for(Options()), fake)
    assert code == 0
    rest = next(i for i, s in enumerate(fake.scripts) if "pytest it\n" in s)
    # Right before the rest layer: one script, the testserver started (healthy) first,
    # then rest's window opened; before it, pure's window closed. Nothing in between.
    opened = fake.scripts[rest - 1]
    start = opened.index("manage.py testserver")
    assert start < opened.index('echo "@@readiness opening"') < opened.index("@@readiness counters")
    assert re.search(r"^layer=rest$", opened, re.MULTILINE)
    assert re.search(r"^layer=pure$", fake.scripts[rest - 2], re.MULTILINE)
    assert "@@readiness settle" in fake.scripts[rest - 2]
    assert len([s for s in fake.scripts if "manage.py testserver" in s]) == 1
    assert any(re.search(r" h1 +server +testserver healthy at http://", line) for line in lines)
    # Per layer and host: open, run, close (the fake hands out JUnit without counting a
    # round trip); none of its own for the server's start nor for a ledger (was 13: the
    # start, and a fetch per ledger).
    steps = {s["name"]: s["round_trips"] for s in record["steps"]}
    assert steps["layers"] == {"h1": 3 * 3}
    assert not [path for path in fake.fetched if path.endswith(".ledger.jsonl")]


def test_a_server_that_fails_to_start_opens_no_window_and_fails_as_before(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    said = "port 8000 on 10.0.0.2 is already in use (another server?); last lines of the log:\n"
    fake = LedgerInClose("h1").on("manage.py testserver", exit_code=13, stderr=said + "boom\n")
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 3 and record["verdict"] == "error"
    assert record["reasons"][0] == (
        "starting the server failed on 1 host(s): h1: starting the testserver failed with "
        "exit code 13: port 8000 on 10.0.0.2 is already in use (another server?); last lines "
        "of the log: / boom"
    )
    assert [layer["name"] for layer in record["layers"]][:2] == ["unit", "pure"]
    assert "rest" not in record["counters"] and "rest" not in record["ledger"]["captures"]
    assert not any("pytest it" in s for s in fake.scripts)  # the layer never ran
    started = next(i for i, s in enumerate(fake.scripts) if "manage.py testserver" in s)
    # Its window's close never ran, and teardown still stopped the half-started server.
    assert not any(re.search(r"^layer=rest$", s, re.MULTILINE) for s in fake.scripts[started + 1 :])
    assert any("server.pid" in s for s in fake.scripts[started + 1 :])


SECRET = "s3cret pass/wörd"


def keep_a_secret(ctx: Context) -> None:
    ctx.secrets["db_password"] = SECRET


def test_the_ledger_comes_with_the_close_scrubbed_of_secrets_and_is_not_fetched(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    url = f"http://u:{quote(SECRET, safe='')}@10.0.0.2:8000/"
    lines = (
        ledger_line("error", 1, 1.0, message=f"reset by {url}")
        + ledger_line("error", 2, 2.0, message=f"the password {SECRET} leaked")
        + attempt_line(1, 1.1, 1, "passed", retry=False)
    )
    fake = LedgerInClose("h1", {"rest": inline(lines.encode())})
    code, record, _ = run(tmp_path, plan_for(Options()), fake, Step("deploy", keep_a_secret))
    assert code == 0
    ledger = record["ledger"]
    assert ledger["files"]["rest"] == {"h1": "ledger/rest/h1.jsonl"}
    assert ledger["files"]["unit"] == {} and ledger["files"]["pure"] == {}  # no file: none
    assert ledger["events"] == 2 and {e["layer"] for e in ledger["errors"]} == {"rest"}
    stored = (run_dir(tmp_path, record) / "ledger" / "rest" / "h1.jsonl").read_text()
    assert stored.count("[redacted]") == 2
    assert json.dumps(SECRET)[1:-1] not in stored and quote(SECRET, safe="") not in stored
    assert SECRET not in stored
    assert not [path for path in fake.fetched if path.endswith(".ledger.jsonl")]


def test_a_ledger_too_large_for_the_close_is_fetched_on_its_own(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    class Large(LedgerInClose):
        def get(self, remote_path: str) -> bytes:
            if remote_path.endswith("/rest.ledger.jsonl"):
                self.fetched.append(remote_path)
                return (  # one test reset by the server, passed on its retry
                    ledger_line("error", 1, 1.0)
                    + attempt_line(1, 1.1, 1, "failed", retry=True)
                    + attempt_line(1, 1.3, 2, "passed", retry=False)
                ).encode()
            return super().get(remote_path)

    fake = Large("h1", {"rest": "status fetch 99999999 bytes\n"})
    code, record, _ = run(tmp_path, plan_for(Options()), fake)
    assert code == 0
    assert [p for p in fake.fetched if p.endswith(".ledger.jsonl")] == [
        f"/srv/r/results/{record['run_id']}/rest.ledger.jsonl"
    ]
    assert record["reasons"] == [
        "layer 'rest': 1 test(s) passed only after retries (it/t.py::a x2)"
    ]
    assert record["ledger"]["files"]["rest"] == {"h1": "ledger/rest/h1.jsonl"}


def test_each_repeat_pass_restarts_the_server_in_its_first_layers_window_script(
    tmp_path: Path, plan_for: Callable[[Options], Plan]
) -> None:
    fake = LedgerInClose("h1")
    code, record, _ = run(tmp_path, plan_for(Options(repeat=3)), fake)
    assert code == 0
    starts = [s for s in fake.scripts if "manage.py testserver" in s]
    # One per pass, each one the opening of that pass's rest window (the start script
    # stops the server of the pass before: no round trip of its own for that).
    assert [re.findall(r"^layer=(\S+)$", s, re.MULTILINE) for s in starts] == [
        ["rest"],
        ["rest.2"],
        ["rest.3"],
    ]
    steps = {s["name"]: s["round_trips"] for s in record["steps"]}
    assert steps["layers"] == {"h1": 5 * 3}  # open, run, close (JUnit: not counted here)
