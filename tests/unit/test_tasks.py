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
        # What invoke's own parser refuses is a usage error too (invoke itself exits 1,
        # which here would read as "not ready").
        (["readiness", "--inventory=single", "--bogus"], "No idea what '--bogus' is!"),
        (["readiness", "--inventory"], "--inventory needs a value."),
        (["no-such-task"], "No idea what 'no-such-task' is!"),
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


# --------------------------------------------------------------------------- issue 11


def stored_run(tmp: Path, inventory: str, topology: str, started: str) -> Path:
    """A finished run in the CLI's work folder, as readiness leaves one."""
    from orchestrator.record import RunRecord
    from orchestrator.store import RunStore

    store = RunStore.create(tmp / "reports" / "runs", inventory)
    record = RunRecord(store.run_id, inventory, f"{inventory}.yaml", "broker", topology, started)
    record.verdict, record.reasons = "ready", []
    store.write_record(record)
    return store.dir


def test_report_compares_the_two_runs_it_is_given_all_on_one_first(tmp_path: Path) -> None:
    old_single = stored_run(tmp_path, "single", "all-on-one", "2026-01-01T00:00:00Z")
    cluster = stored_run(tmp_path, "cluster", "distributed", "2026-01-01T01:00:00Z")
    stored_run(tmp_path, "single", "all-on-one", "2026-01-01T02:00:00Z")  # not the one named
    # A run id of the store, then a run directory's path: both are accepted.
    proc = run("report", f"--compare={cluster.name},{old_single}", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    index = (tmp_path / "reports" / "index.html").read_text()
    assert index.index(f"run {old_single.name}") < index.index(f"run {cluster.name}")
    summary = (tmp_path / "reports" / "summary.md").read_text()
    assert summary.startswith(
        "# readiness: single (all-on-one) ready vs cluster (distributed) ready"
    )
    assert str(tmp_path / "reports" / "summary.md") in proc.stdout


@pytest.mark.parametrize(
    "value,says",
    [
        ("{run}", "--compare takes two runs, --compare=RUN_A,RUN_B, each a run id"),
        ("{run},{run},{run}", "--compare takes two runs"),
        ("{run},", "--compare takes two runs"),
        ("{run},nope", "--compare: 'nope' is neither a run in"),
        ("{run},{broken}", "broken/run.json is not a run record this version can read"),
    ],
    ids=["one run", "three runs", "empty second", "unknown run", "unreadable record"],
)
def test_a_bad_compare_exits_2_naming_the_value(tmp_path: Path, value: str, says: str) -> None:
    good = stored_run(tmp_path, "single", "all-on-one", "2026-01-01T00:00:00Z")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"schema": "readiness.run/99"}')
    proc = run("report", f"--compare={value.format(run=good.name, broken=broken)}", tmp=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "reports" / "index.html").exists()  # nothing rendered


# --------------------------------------------------------------------------- issue 12


def test_dry_run_prints_the_hosts_an_ansible_inventory_gives(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "hosts.ini").write_text(
        "[db]\ndb1 ansible_host=192.0.2.10\n[web]\nweb1 ansible_host=192.0.2.11\n"
        "[testers]\ncl1 ansible_host=192.0.2.12 ansible_port=2222\n"
    )
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "hosts: {ansible: hosts.ini, roles: {server: web, client: testers}}\n"
        f"application:\n  source: {repo / 'sut' / 'broker'}\n  settings: broker.settings\n"
        "  requirements: requirements.txt\n  fixtures: [fixtures/known.json]\n"
        "  client: {source: integration, requirements: integration/requirements.txt}\n"
        "suite: broker\n"
    )
    proc = run("readiness", f"--inventory={inventory}", "--dry-run", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for name, address, role in [
        ("db1", "192.0.2.10", "db"),
        ("web1", "192.0.2.11", "server"),
        ("cl1", "192.0.2.12", "client"),
    ]:
        assert any(
            line.split()[:1] == [name] and address in line and f"roles: {role}" in line
            for line in lines
        ), proc.stdout
