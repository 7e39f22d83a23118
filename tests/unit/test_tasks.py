"""The CLI as a user meets it: exit codes and one-paragraph errors, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import invoke


def run(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """The CLI with its work folder and home in ``tmp``: nothing of the user's is touched."""
    return invoke(*args, env={"READINESS_WORKDIR": str(tmp), "HOME": str(tmp)})


def test_every_task_has_one_line_of_help(tmp_path: Path) -> None:
    out = run("--list", tmp=tmp_path).stdout
    for name in ("readiness", "report", "lab.up", "lab.status", "lab.down"):
        assert name in out


@pytest.mark.parametrize(
    "args,says",
    [
        (["readiness"], "--inventory is required"),
        (["readiness", "--inventory=nope"], "inventories/nope.yaml: file not found"),
        (["readiness", "--inventory=/dev/null"], "is not a regular file"),
        (["readiness", "--inventory=single", "--suite=/nonexistent.yaml"], "file not found"),
    ],
)
def test_user_mistakes_exit_2_with_one_paragraph(
    args: list[str], says: str, tmp_path: Path
) -> None:
    proc = run(*args, tmp=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_hostile_inventory_value_is_refused_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("lab: true\nhosts:\n  - {name: 'h1; rm -rf /', roles: [db, server, client]}\n")
    proc = run("readiness", f"--inventory={bad}", tmp=tmp_path)
    assert proc.returncode == 2
    assert f"{bad}, line 3, field 'hosts[0].name'" in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path: Path) -> None:
    proc = run("readiness", "--inventory=cluster", "--dry-run", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "topology: distributed" in proc.stdout
    assert "h3               reaches the database over tcp" in proc.stdout
    assert "3. rest-integration" in proc.stdout
    assert not (tmp_path / "reports").exists() and not (tmp_path / ".state").exists()
