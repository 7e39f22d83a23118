"""Running ``invoke readiness`` as a user would, for the end-to-end tests and benchmarks.

Each caller has its own lab prefix, subnet and work folder (``READINESS_WORKDIR`` for run
records and secrets, ``READINESS_LAB_DIR`` for the lab state), so tests, benchmarks and
a user's own ``rdy`` lab never meet.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.lab import lab_down
from tests.cli import ROOT, invoke

__all__ = [
    "BROKER",
    "BROKER_APPLICATION",
    "ROOT",
    "Run",
    "broker_inventories",
    "lab_section",
    "lab_workdir",
    "run_readiness",
]

BROKER = ROOT / "sut" / "broker"

BROKER_APPLICATION = f"""
application:
  source: {BROKER}
  settings: broker.settings
  requirements: requirements.txt
  fixtures: [fixtures/known.json]
  server: {{mode: testserver, port: 8000, health: /api/health}}
  client: {{source: integration, requirements: integration/requirements.txt}}
database: {{mode: managed, name: broker, user: broker, port: 3307}}
suite: broker
"""


def lab_section(prefix: str, subnet: str, hosts: int) -> str:
    return f"lab: {{prefix: {prefix}, subnet: '{subnet}', hosts: {hosts}}}\n"


def broker_inventories(prefix: str, subnet: str) -> tuple[str, str]:
    """The shipped single and cluster inventories, on a lab of their own (4 hosts)."""
    lab = lab_section(prefix, subnet, 4)
    single = lab + "hosts:\n  - {name: h1, roles: [db, server, client]}\n" + BROKER_APPLICATION
    cluster = (
        lab
        + "hosts:\n  - {name: h2, roles: [db]}\n  - {name: h3, roles: [server]}\n"
        + "  - {name: h4, roles: [client]}\n"
        + BROKER_APPLICATION
    )
    return single, cluster


@dataclass(frozen=True)
class Run:
    """What one CLI run left: exit code, terminal output, the record and its folder."""

    code: int
    output: str
    record: dict[str, Any]
    run_dir: Path
    wall_s: float

    def diagnostics(self) -> str:
        """The output and the end of every log the run kept, for a failure message."""
        parts = [self.output[-4000:]]
        for log in sorted(self.run_dir.glob("logs/*/*.log")):
            parts.append(f"--- {log.relative_to(self.run_dir)} ---\n{log.read_text()[-3000:]}")
        return "\n".join(parts)


def run_readiness(workdir: Path, name: str, inventory_text: str, *args: str) -> Run:
    """Write the inventory, run the CLI in a subprocess, read the record it announced."""
    inventory = workdir / f"{name}.yaml"
    inventory.write_text(inventory_text)
    started = time.monotonic()
    proc = invoke(
        "readiness",
        f"--inventory={inventory}",
        *args,
        env={"READINESS_WORKDIR": str(workdir), "READINESS_LAB_DIR": str(workdir / "lab")},
        timeout=1500,
    )
    wall_s = time.monotonic() - started
    output = proc.stdout + proc.stderr
    match = re.search(r"run record (\S+/run\.json)", output)
    if not match:
        raise AssertionError(f"no run record announced (exit {proc.returncode}):\n{output[-4000:]}")
    record_path = Path(match.group(1))
    record = json.loads(record_path.read_text())
    return Run(proc.returncode, output, record, record_path.parent, wall_s)


@contextmanager
def lab_workdir(base: Path, prefix: str) -> Iterator[Path]:
    """A work folder whose lab (of ``prefix``) is always removed at the end."""
    try:
        yield base
    finally:
        lab_down(prefix=prefix, state_dir=base / "lab" / prefix)
