"""The CLI as a user meets it: exit codes and one-paragraph errors, never a traceback."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
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


# --------------------------------------------------------------------------- issue 8


def test_closing_stdout_early_is_not_an_internal_error(tmp_path: Path) -> None:
    """`invoke readiness --dry-run | head -1`: the reader leaving is not a bug of readiness."""
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "readiness", "--dry-run", "--inventory=single"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "READINESS_WORKDIR": str(tmp_path), "HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before readiness writes a byte: its first write fails
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 141), stderr
    assert "internal error" not in stderr and "BrokenPipe" not in stderr, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr


def hostile(tmp: Path, name: str, content: bytes) -> str:
    path = tmp / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    "make,says",
    [
        (lambda tmp: "/proc/self/environ", "is not a regular file"),
        (lambda tmp: str(tmp / ("a" * 5000 + ".yaml")), "bytes long"),
        (
            lambda tmp: hostile(tmp, "nul.yaml", b"lab: true\nhosts:\x00\n"),
            "line 2: contains a NUL",
        ),
        (
            lambda tmp: hostile(tmp, "lab.yaml", b"lab: {prefix: 'rp;id'}\n"),
            "line 1, field 'lab.prefix': invalid lab prefix",
        ),
        (
            lambda tmp: hostile(tmp, "subnet.yaml", b"lab: {subnet: 8.8.8.0/24}\n"),
            "line 1, field 'lab.subnet': invalid lab subnet",
        ),
        (
            lambda tmp: hostile(
                tmp,
                "root.yaml",
                b"hosts:\n- {name: a, address: 192.0.2.1, roles: [db], deploy_root: /.}\n",
            ),
            "line 2, field 'hosts[0].deploy_root'",
        ),
    ],
    ids=[
        "proc environ",
        "5000-character path",
        "NUL",
        "lab prefix",
        "lab subnet",
        "deploy root /.",
    ],
)
def test_hostile_inventories_exit_2_on_dry_run(
    tmp_path: Path, make: Callable[[Path], str], says: str
) -> None:
    proc = run("readiness", f"--inventory={make(tmp_path)}", "--dry-run", tmp=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert len(proc.stderr) < 600
