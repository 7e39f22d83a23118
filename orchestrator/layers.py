"""Run one layer of a suite on the hosts of its role, and keep what it produced.

The layer's command runs through the transport with the layer's timeout; on timeout the
transport kills the remote process group, so nothing of the layer survives it. Its
output goes to ``logs/<host>/<layer>.log`` and its JUnit XML to
``junit/<layer>/<host>.xml`` in the run store, both scrubbed of secrets.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.appserver import app_environment, client_environment
from orchestrator.exceptions import HostError, ReadinessError
from orchestrator.hosts import on_all
from orchestrator.junit import JUnitError, TestCounts, parse_counts
from orchestrator.layout import Layout
from orchestrator.store import RunStore
from orchestrator.suite import Layer
from orchestrator.transport import Result, Transport
from orchestrator.vault import redact

# Statuses: passed; failed (non-zero exit, failing tests, or no tests reported); timeout;
# error (could not run at all: the host was lost); blocked (a gate before it stopped).


@dataclass(frozen=True)
class HostRun:
    host: str
    exit_code: int | None
    duration_s: float
    timed_out: bool
    tests: TestCounts
    junit: str | None
    log: str | None
    problem: str | None = None

    @property
    def status(self) -> str:
        if self.exit_code is None:
            return "error"
        if self.timed_out:
            return "timeout"
        if self.exit_code != 0 or self.tests.failed or self.tests.errors:
            return "failed"
        if self.problem is not None:  # exit 0 but no JUnit, or none ran: not a pass
            return "failed"
        return "passed"


@dataclass(frozen=True)
class LayerOutcome:
    name: str
    role: str
    hosts: tuple[str, ...]
    status: str
    duration_s: float
    tests: TestCounts = field(default_factory=TestCounts)
    runs: tuple[HostRun, ...] = ()
    reason: str | None = None
    command: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def blocked(cls, layer: Layer, hosts: Sequence[str], why: str) -> LayerOutcome:
        return cls(
            layer.name, layer.role, tuple(hosts), "blocked", 0.0, reason=why, command=layer.command
        )

    def as_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "hosts": list(self.hosts),
            "status": self.status,
            "duration_s": round(self.duration_s, 3),
            "tests": self.tests.as_dict(),
            "junit": [r.junit for r in self.runs if r.junit],
            "logs": [r.log for r in self.runs if r.log],
            "reason": self.reason,
            "command": self.command,
            "per_host": {
                r.host: {
                    "status": r.status,
                    "exit_code": r.exit_code,
                    "duration_s": round(r.duration_s, 3),
                    "timed_out": r.timed_out,
                    "tests": r.tests.as_dict(),
                    "problem": r.problem,
                }
                for r in self.runs
            },
        }


def layer_script(
    layer: Layer,
    layout: Layout,
    *,
    venv: str,
    junit_path: str,
    base_url: str | None,
    env: Mapping[str, str],
) -> str:
    q = shlex.quote
    workdir = layout.app if layer.role == "server" else layout.client
    environment = (
        app_environment(layout, venv, env)
        if layer.role == "server"
        else client_environment(layout, venv, env)
    )
    lines = [
        "set -u",
        environment.rstrip("\n"),
        f"mkdir -p {q(junit_path.rsplit('/', 1)[0])}",
        f"rm -f {q(junit_path)}",
        f"export READINESS_JUNIT={q(junit_path)} READINESS_LAYER={q(layer.name)}",
    ]
    if base_url:
        lines.append(f"export READINESS_BASE_URL={q(base_url)}")
    lines += [f"cd {q(workdir)}", layer.command]
    return "\n".join(lines) + "\n"


def run_layer(
    store: RunStore,
    layer: Layer,
    transports: Mapping[str, Transport],
    layouts: Mapping[str, Layout],
    *,
    venv_digest: str,
    base_url: str | None,
    env: Mapping[str, str],
    secrets: Sequence[str],
    run_id: str | None = None,
) -> LayerOutcome:
    """Run ``layer`` on every host in parallel; never raises for a failing layer."""
    t0 = time.monotonic()
    run_id = run_id or store.run_id

    def one(host: str) -> HostRun:
        layout = layouts[host]
        junit_path = f"{layout.results(run_id)}/{layer.name}.xml"
        script = layer_script(
            layer,
            layout,
            venv=layout.venv(venv_digest),
            junit_path=junit_path,
            base_url=base_url,
            env=env,
        )
        transport = transports[host]
        try:
            result: Result = transport.run(script, timeout=layer.timeout_s)
        except ReadinessError as err:
            lost = err.detail if isinstance(err, HostError) else str(err)  # reason names the host
            return HostRun(host, None, time.monotonic() - t0, False, TestCounts(), None, None, lost)
        log_text = redact(
            f"$ {layer.command}\n# exit code {result.exit_code}"
            f"{' (timed out)' if result.timed_out else ''}, {result.duration_s:.1f}s\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}\n",
            secrets,
        )
        log = store.write_text(log_text, "logs", host, f"{layer.name}.log")
        tests, junit, problem = TestCounts(), None, None
        if layer.junit:
            try:
                data = transport.get(junit_path)
                tests = parse_counts(data, source=f"{host}:{junit_path}")
                junit = store.relative(
                    store.write_bytes(
                        redact(data.decode("utf-8", "replace"), secrets).encode(),
                        "junit",
                        layer.name,
                        f"{host}.xml",
                    )
                )
                if tests.total == 0:
                    problem = "the JUnit XML lists no test at all"
            except (ReadinessError, JUnitError, OSError) as err:
                problem = f"no JUnit XML: {err}"
        return HostRun(
            host,
            result.exit_code,
            result.duration_s,
            result.timed_out,
            tests,
            junit,
            store.relative(log),
            problem,
        )

    runs = on_all(f"layer {layer.name}", list(transports), one)
    ordered = tuple(runs[h] for h in transports)
    statuses = {r.status for r in ordered}
    status = next((s for s in ("error", "timeout", "failed") if s in statuses), "passed")
    total = TestCounts()
    for r in ordered:
        total = total + r.tests
    problems = redact("; ".join(f"{r.host}: {r.problem}" for r in ordered if r.problem), secrets)
    reason: str | None = problems or None
    if status == "timeout":
        reason = f"timed out after {layer.timeout_s}s" + (f"; {reason}" if reason else "")
    return LayerOutcome(
        name=layer.name,
        role=layer.role,
        hosts=tuple(transports),
        status=status,
        duration_s=time.monotonic() - t0,
        tests=total,
        runs=ordered,
        reason=reason,
        command=layer.command,
    )
