"""Running ``invoke readiness`` as a user would, for the end-to-end tests and benchmarks.

Each caller has its own lab prefix, subnet and work folder (``READINESS_WORKDIR`` for run
records and secrets, ``READINESS_LAB_DIR`` for the lab state), so tests, benchmarks and
a user's own ``rdy`` lab never meet.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.lab import lab_down
from tests.cli import ROOT, invoke
from tests.schema_check import assert_valid_record

__all__ = [
    "BROKER",
    "BROKER_APPLICATION",
    "ROOT",
    "Cli",
    "Run",
    "broker_application",
    "broker_inventories",
    "lab_section",
    "lab_workdir",
    "marked_processes",
    "run_readiness",
    "start_cli",
]

BROKER = ROOT / "sut" / "broker"


def broker_application(source: Path = BROKER) -> str:
    """The inventory's application and database for the broker (or a copy of it)."""
    return f"""
application:
  source: {source}
  settings: broker.settings
  requirements: requirements.txt
  fixtures: [fixtures/known.json]
  server: {{mode: testserver, port: 8000, health: /api/health}}
  client: {{source: integration, requirements: integration/requirements.txt}}
database: {{mode: managed, name: broker, user: broker, port: 3307}}
suite: broker
"""


BROKER_APPLICATION = broker_application()


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


def run_readiness(
    workdir: Path,
    name: str,
    inventory_text: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    folder: Path | None = None,
) -> Run:
    """Write the inventory, run the CLI in a subprocess, read the record it announced.

    ``env`` is added to the CLI's environment only (e.g. the variables an existing
    database's inventory names), never to this process's. ``folder`` is where the
    inventory is written (default ``workdir``): its relative paths are read from there.
    """
    inventory = (folder or workdir) / f"{name}.yaml"
    inventory.write_text(inventory_text)
    started = time.monotonic()
    proc = invoke(
        "readiness",
        f"--inventory={inventory}",
        *args,
        env={
            **(env or {}),
            "READINESS_WORKDIR": str(workdir),
            "READINESS_LAB_DIR": str(workdir / "lab"),
        },
        timeout=1500,
    )
    wall_s = time.monotonic() - started
    output = proc.stdout + proc.stderr
    match = re.search(r"run record (\S+/run\.json)", output)
    if not match:
        raise AssertionError(f"no run record announced (exit {proc.returncode}):\n{output[-4000:]}")
    record_path = Path(match.group(1))
    record = json.loads(record_path.read_text())
    assert_valid_record(record)  # every e2e run's record, against the committed schema
    return Run(proc.returncode, output, record, record_path.parent, wall_s)


@contextmanager
def lab_workdir(base: Path, prefix: str) -> Iterator[Path]:
    """A work folder whose lab (of ``prefix``) is always removed at the end."""
    try:
        yield base
    finally:
        lab_down(prefix=prefix, state_dir=base / "lab" / prefix)


@dataclass
class Cli:
    """A CLI run in the background, for tests that signal or kill it mid-way."""

    proc: subprocess.Popen[str]
    seen: list[str]

    def wait(self, timeout: float = 300) -> Run:
        """Wait for the exit; the record it announced (AssertionError if none)."""
        started = time.monotonic()
        rest, _ = self.proc.communicate(timeout=timeout)
        output = "".join(self.seen) + rest
        match = re.search(r"run record (\S+/run\.json)", output)
        if not match:
            raise AssertionError(f"no run record (exit {self.proc.returncode}):\n{output[-4000:]}")
        path = Path(match.group(1))
        record = json.loads(path.read_text())
        assert_valid_record(record)
        wall = time.monotonic() - started
        return Run(self.proc.returncode, output, record, path.parent, wall)


def start_cli(
    workdir: Path,
    name: str,
    inventory_text: str,
    *args: str,
    until: str,
    timeout: float = 600,
    env: Mapping[str, str] | None = None,
) -> Cli:
    """Start ``invoke readiness`` and return once a line of its output matches ``until``
    (a regular expression). ``env`` is added to the CLI's environment only."""
    inventory = workdir / f"{name}.yaml"
    inventory.write_text(inventory_text)
    environment = dict(
        os.environ,
        **(env or {}),
        READINESS_WORKDIR=str(workdir),
        READINESS_LAB_DIR=str(workdir / "lab"),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "readiness", f"--inventory={inventory}", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if re.search(until, line):
            return Cli(proc, seen)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"never saw {until!r}:\n{''.join(seen)[-4000:]}")


def marked_processes(root_suffix: str) -> list[int]:
    """Processes (the lab shares our /proc) marked with a deploy root that ends with
    ``root_suffix`` (a whole root, or ``/<inventory>``)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            items = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(
            item.startswith(b"READINESS_DEPLOY_ROOT=") and item.endswith(root_suffix.encode())
            for item in items
        ):
            found.append(int(environ.parent.name))
    return found
