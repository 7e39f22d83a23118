"""``invoke init`` on a project fresh from ``django-admin``, then ``invoke readiness`` on
exactly the files it wrote: both ready on the lab, with no hand edit.

The project is made as a new user makes one: ``django-admin startproject mysite``,
``startapp polls`` and one test in ``polls/tests.py`` (it uses the database, so the run
proves the server host reaches MariaDB). It has no requirements file, as startproject
leaves it: init writes one beside the inventories. polls is not even in INSTALLED_APPS,
as startapp leaves it. The lab has its own prefix and subnet,
given to init, and is always removed at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import invoke
from tests.e2e.conftest import lab_unavailable
from tests.e2e.support import Run, lab_workdir, run_readiness

pytestmark = pytest.mark.e2e

PREFIX = "ri"
SUBNET = "10.213.82.0/24"
DJANGO_ADMIN = Path(sys.executable).parent / "django-admin"
POLLS_TEST = """from django.contrib.auth.models import User
from django.test import TestCase


class PollsTests(TestCase):
    def test_the_database_keeps_a_user(self):
        User.objects.create_user("ada")
        self.assertEqual(User.objects.get().username, "ada")
"""


def make_project(parent: Path) -> Path:
    project = parent / "mysite"
    project.mkdir()
    subprocess.run([str(DJANGO_ADMIN), "startproject", "mysite", str(project)], check=True)
    subprocess.run([sys.executable, "manage.py", "startapp", "polls"], cwd=project, check=True)
    (project / "polls" / "tests.py").write_text(POLLS_TEST)
    return project


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder init wrote the three files into (also the runs' work folder)."""
    reason = lab_unavailable()
    if reason:
        pytest.fail(f"end-to-end tests need a lab: {reason}")
    base = tmp_path_factory.mktemp("init")
    project = make_project(base)
    work = base / "work"
    with lab_workdir(work, PREFIX):
        proc = invoke(
            "init",
            str(project),
            f"--into={work}",
            f"--lab-prefix={PREFIX}",
            f"--lab-subnet={SUBNET}",
            env={"READINESS_WORKDIR": str(work), "READINESS_LAB_DIR": str(work / "lab")},
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # startproject writes no requirements file: init writes one beside the
        # inventories (never into the project), so nothing is edited by hand.
        assert sorted(p.name for p in work.iterdir()) == [
            "mysite-cluster.yaml",
            "mysite-requirements.txt",
            "mysite-single.yaml",
            "mysite.yaml",
        ]
        assert not (project / "requirements.txt").exists()
        yield work


def run_generated(workdir: Path, name: str) -> Run:
    """``invoke readiness`` on a generated inventory, byte for byte as init wrote it."""
    return run_readiness(workdir, name, (workdir / f"{name}.yaml").read_text())


def assert_ready(run: Run) -> None:
    assert run.code == 0, run.diagnostics()
    assert run.record["verdict"] == "ready", run.diagnostics()
    layers = {layer["name"]: layer for layer in run.record["layers"]}
    assert [(name, layer["status"]) for name, layer in layers.items()] == [
        ("django-tests", "passed"),
        ("smoke", "passed"),
    ]
    tests = layers["django-tests"]["tests"]
    assert tests["total"] == tests["passed"] == 1, tests
    assert layers["smoke"]["setup"] is True
    # The Django the hosts installed came from the file init wrote beside the inventory.
    (requirements,) = [f for f in run.record["files"] if f["field"] == "application.requirements"]
    assert (requirements["base"], requirements["value"]) == ("inventory", "mysite-requirements.txt")
    assert run.record["build"]["server_packages"]["django"].startswith("5.2.")


def test_the_generated_single_inventory_is_ready_as_written(workdir: Path) -> None:
    run = run_generated(workdir, "mysite-single")
    assert_ready(run)
    assert run.record["topology"] == "all-on-one"
    assert run.record["database_links"] == {"h1": "socket"}


def test_the_generated_cluster_inventory_is_ready_as_written(workdir: Path) -> None:
    run = run_generated(workdir, "mysite-cluster")
    assert_ready(run)
    assert run.record["topology"] == "distributed"
    assert run.record["database_links"] == {"h2": "tcp"}
    assert {h["name"]: h["roles"] for h in run.record["hosts"]} == {
        "h1": ["db"],
        "h2": ["server"],
        "h3": ["client"],
    }


def test_an_edited_file_of_the_project_is_sent_as_that_file_alone(workdir: Path) -> None:
    """After a run, one file edited: the next deploy sends the server host only that file
    (the host held the version readiness built before), and the edited test is what ran."""
    run_generated(workdir, "mysite-single")  # the host holds this version (it may already)
    tests = workdir.parent / "mysite" / "polls" / "tests.py"
    tests.write_text(POLLS_TEST.replace("keeps_a_user", "keeps_an_edited_user"))
    run = run_generated(workdir, "mysite-single")
    assert_ready(run)
    (server,) = [d for d in run.record["deploy"] if d["component"] == "server"]
    # init's client folder is the project too ("."): both parts went as that one file.
    assert server["sent"] == ["app", "client", "etc"], server
    assert server["patched"] == [
        {"part": part, "files": 1, "removed": 0, "applied": True} for part in ("app", "client")
    ], server
    assert server["bytes_sent"] < 64 * 1024, server
    names = [json.loads(line)["name"] for line in (run.run_dir / "tests.jsonl").open()]
    assert "test_the_database_keeps_an_edited_user" in names, names
