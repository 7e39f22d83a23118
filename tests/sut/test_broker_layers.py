"""The broker application's three layers, each run the way a readiness suite runs it.

Every layer is its own pytest process in the application's folder, writing JUnit XML;
these tests check that each layer passes and is as large as its issue promised, so a
layer that silently collects nothing fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from orchestrator.junit import TestCounts, read_counts
from tests.sut.conftest import BROKER


def run_layer(args: list[str], env: dict[str, str], junit: Path) -> tuple[TestCounts, str]:
    """Run one layer with pytest in the application's folder; its counts and output."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", f"--junitxml={junit}"],
        cwd=BROKER, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"layer failed (exit {proc.returncode}):\n{output[-6000:]}"
    return read_counts(junit), output


def test_django_unit_layer_passes_against_mariadb(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    counts, _ = run_layer(
        ["trading", "supplier", "--ds=broker.settings"], broker_env, tmp_path / "django.xml"
    )
    assert counts.failed == counts.errors == 0
    assert counts.passed >= 40, counts


def test_python_unit_layer_passes_without_django(
    broker_env: dict[str, str], tmp_path: Path
) -> None:
    counts, _ = run_layer(["brokercalc/tests", "-p", "no:django"], broker_env, tmp_path / "py.xml")
    assert counts.failed == counts.errors == 0
    assert counts.passed >= 40, counts


def test_rest_integration_layer_passes_against_live_testserver(
    broker_env: dict[str, str], broker_server: str, tmp_path: Path
) -> None:
    counts, output = run_layer(
        ["integration", "-p", "no:django", f"--base-url={broker_server}"],
        broker_env,
        tmp_path / "rest.xml",
    )
    assert counts.failed == counts.errors == 0
    assert counts.passed >= 25, counts
    match = re.search(r"integration: (\d+) HTTP requests", output)
    assert match, "the integration layer must report its HTTP request count"
    assert int(match.group(1)) >= 200
