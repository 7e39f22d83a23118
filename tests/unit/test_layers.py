"""One layer on its hosts: statuses from exit codes and JUnit, evidence kept, secrets scrubbed."""

from __future__ import annotations

from pathlib import Path

from orchestrator.exceptions import HostError
from orchestrator.junit import TestCounts
from orchestrator.layers import LayerOutcome, layer_script, run_layer
from orchestrator.layout import Layout
from orchestrator.store import RunStore
from orchestrator.suite import Layer
from orchestrator.transport import FakeTransport, Result

LAYER = Layer("unit", "server", "python -m pytest", ("database",), 60, "stop")
PASSING = b'<testsuite><testcase name="a"/><testcase name="b"/></testsuite>'
FAILING = b'<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>'


def _run(
    tmp_path: Path, fake: FakeTransport, layer: Layer = LAYER
) -> tuple[RunStore, LayerOutcome]:
    store = RunStore.create(tmp_path / "runs", "inv")
    outcome = run_layer(
        store,
        layer,
        {fake.name: fake},
        {fake.name: Layout("/srv/r")},
        venv_digest="abc",
        base_url="http://10.0.0.3:8000",
        env={},
        secrets=["sup3rs3cret"],
        run_id="run1",
    )
    return store, outcome


def test_exit_zero_and_junit_is_a_pass_with_counts(tmp_path: Path) -> None:
    fake = FakeTransport("h1")
    fake.files["/srv/r/results/run1/unit.xml"] = PASSING
    store, outcome = _run(tmp_path, fake)
    record = outcome.to_record()
    assert record.status == "passed" and record.per_host["h1"].status == "passed"
    assert record.tests == TestCounts(total=2, passed=2, failed=0, errors=0, skipped=0)
    assert (store.dir / record.junit[0]).read_bytes() == PASSING
    assert (store.dir / "logs" / "h1" / "unit.log").is_file()


def test_failing_tests_fail_the_layer(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("pytest", exit_code=1)
    fake.files["/srv/r/results/run1/unit.xml"] = FAILING
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == "failed"
    assert outcome.tests.failed == 1


def test_a_timeout_is_its_own_status_with_a_reason(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("pytest", timed_out=True)
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == "timeout"
    assert outcome.reason is not None and "timed out after 60s" in outcome.reason


def test_exit_zero_without_junit_is_a_failure_not_a_pass(tmp_path: Path) -> None:
    _, outcome = _run(tmp_path, FakeTransport("h1"))
    assert outcome.status == "failed"
    assert outcome.reason is not None and "no JUnit XML" in outcome.reason


def test_secrets_in_output_never_reach_the_log(tmp_path: Path) -> None:
    fake = FakeTransport("h1").on("pytest", stdout="password=sup3rs3cret")
    fake.files["/srv/r/results/run1/unit.xml"] = PASSING
    store, _ = _run(tmp_path, fake)
    log = (store.dir / "logs" / "h1" / "unit.log").read_text()
    assert "sup3rs3cret" not in log and "[redacted]" in log


def test_server_layers_get_settings_and_secrets_client_layers_do_not() -> None:
    layout = Layout("/srv/r")
    server = layer_script(
        LAYER, layout, venv="/srv/r/venvs/a", junit_path="/srv/r/x.xml", base_url=None, env={}
    )
    assert ". /srv/r/etc/secrets.env" in server
    assert "DJANGO_SETTINGS_MODULE=readiness_settings" in server
    assert "cd /srv/r/app" in server
    client_layer = Layer("rest", "client", "pytest it", ("server",), 60, "stop")
    client = layer_script(
        client_layer,
        layout,
        venv="/srv/r/venvs/b",
        junit_path="/srv/r/y.xml",
        base_url="http://h:1",
        env={"A": "b c"},
    )
    assert "secrets.env" not in client and "DJANGO_SETTINGS_MODULE" not in client
    assert "export READINESS_BASE_URL=http://h:1" in client
    assert "export A='b c'" in client
    assert client.rstrip().endswith("pytest it")


def test_a_junit_file_without_tests_is_not_a_pass(tmp_path: Path) -> None:
    fake = FakeTransport("h1")
    fake.files["/srv/r/results/run1/unit.xml"] = b"<testsuite/>"
    _, outcome = _run(tmp_path, fake)
    assert outcome.status == "failed"
    assert outcome.reason is not None and "no test" in outcome.reason


def test_a_lost_host_is_an_error_not_a_failure(tmp_path: Path) -> None:
    class Lost(FakeTransport):
        def run(self, script: str, **kw: object) -> Result:
            raise HostError(self.name, "connection closed without an exit status")

    _, outcome = _run(tmp_path, Lost("h1"))
    assert outcome.status == "error"
