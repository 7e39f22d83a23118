"""What the lifecycle's steps share: the plan, the hosts, the built artifacts, the record.

Each step (``orchestrator/steps/``) reads what earlier steps left here and adds its own
part; nothing is passed between steps as an untyped dict. The record is the typed
:class:`~orchestrator.record.RunRecord` that the store writes after every step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.inventory import Inventory
from orchestrator.layout import Layout
from orchestrator.pending import Pending
from orchestrator.plan import Plan
from orchestrator.record import RunRecord, StepRecord
from orchestrator.store import RunStore
from orchestrator.transport import Transport
from orchestrator.vault import redact

if TYPE_CHECKING:
    from orchestrator.components import AppServer, Database
    from orchestrator.deploy import Artifacts, Probe
    from orchestrator.hosts import Target
    from orchestrator.lab import Lab


@dataclass
class Context:
    """Everything the steps share for one run."""

    root: Path
    plan: Plan
    store: RunStore
    record: RunRecord
    say: Callable[[str], None]
    lab: Lab | None = None
    targets: dict[str, Target] = field(default_factory=dict)
    transports: dict[str, Transport] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    artifacts: Artifacts | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    # Secrets that are not ours but pass through us (an existing database's password).
    extra_secrets: list[str] = field(default_factory=list)
    database: Database | None = None
    servers: dict[str, AppServer] = field(default_factory=dict)
    servers_up: bool = False
    # Deploys that go on while the first layers run (a client-only host's): a layer waits
    # for its hosts', the run's end for the rest (orchestrator.pending).
    deploys: Pending = field(default_factory=lambda: Pending("deploy"))
    # What runs now, for the record of an interrupted run.
    running_step: str | None = None
    running_layer: str | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def inventory(self) -> Inventory:
        return self.plan.inventory

    @property
    def state_dir(self) -> Path:
        """The inventory's private state on the control node (lock, secrets)."""
        return self.root / ".state" / self.inventory.name

    def progress(self, host: str, step: str, message: str) -> None:
        elapsed = f"{time.monotonic() - self.started:7.1f}s"
        self.say(f"[{elapsed}] {host:<14} {step:<10} {message}")

    def save(self) -> None:
        self.store.write_record(self.record)

    def round_trips(self) -> dict[str, int]:
        """Scripts run and files moved on each host so far."""
        return {name: t.round_trips for name, t in self.transports.items()}

    def step_done(self, name: str, status: str, t0: float, trips: dict[str, int]) -> None:
        """Record a lifecycle step that began at ``t0`` (``time.monotonic``), with the
        round trips it made to each host since ``trips``, and save the record."""
        now = self.round_trips()
        self.record.steps.append(
            StepRecord(
                name,
                status,
                round(time.monotonic() - t0, 3),
                round(t0 - self.started, 3),
                {host: n - trips.get(host, 0) for host, n in now.items() if n > trips.get(host, 0)},
            )
        )
        self.save()

    def layout(self, host: str) -> Layout:
        return Layout(self.targets[host].deploy_root)

    def secret_values(self) -> list[str]:
        return [*self.secrets.values(), *self.extra_secrets]

    def redact(self, text: str) -> str:
        return redact(text, self.secret_values())

    def keep_output(self, host: str, step: str, failure: BaseException) -> None:
        """A failed step's full output goes to logs/<host>/<step>.log (its message has one
        line, the output may explain it)."""
        stdout, stderr = getattr(failure, "stdout", ""), getattr(failure, "stderr", "")
        if stdout or stderr:
            self.store.write_text(
                self.redact(f"{failure}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n"),
                "logs",
                host,
                f"{step}.log",
            )
