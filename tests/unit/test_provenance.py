"""The command, versions, project commit and inputs that let anyone run it again."""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
from pathlib import Path

import pytest

from orchestrator.plan import Options
from orchestrator.provenance import command_line, keep_inputs, project_of, secret_values
from orchestrator.store import RunStore
from orchestrator.wheelhouse import Wheelhouse


def test_the_command_repeats_every_option_that_changes_the_run() -> None:
    options = Options(keep_going=True, repeat=3, faults=("resets=2", "latency"))
    line = command_line("inventories/my lab.yaml", "smoke", options)
    assert shlex.split(line) == [
        "invoke",
        "readiness",
        "--inventory=inventories/my lab.yaml",
        "--suite=smoke",
        "--keep-going",
        "--repeat=3",
        "--faults=resets=2,latency",
    ]
    assert command_line("single", None, Options()) == "invoke readiness --inventory=single"


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


def test_a_git_checkout_gives_its_commit_and_whether_it_has_changes(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "manage.py").write_text("print('v1')\n")
    git(tmp_path, "add", "manage.py")
    git(tmp_path, "commit", "-qm", "one")
    clean = project_of(tmp_path)
    assert clean.commit is not None and len(clean.commit) == 40 and clean.dirty is False
    (tmp_path / "manage.py").write_text("print('v2')\n")
    assert project_of(tmp_path).dirty is True


def test_a_folder_that_is_no_checkout_has_no_commit(tmp_path: Path) -> None:
    found = project_of(tmp_path)
    assert (found.source, found.commit, found.dirty) == (str(tmp_path), None, None)


class FakeInventory:
    """Just what keep_inputs reads of an inventory."""

    def __init__(self, file: Path, env: dict[str, str]) -> None:
        self.file = file
        self.application = type("App", (), {"env": env})()


def test_copied_inputs_keep_the_files_but_not_secret_looking_values(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text("application:\n  env: {API_TOKEN: s3cr3t-t0ken, DEBUG_LEVEL: verbose2}\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text("layers: []\n# s3cr3t-t0ken\n")
    store = RunStore.create(tmp_path / "runs", "inv")
    fake = FakeInventory(inventory, {"API_TOKEN": "s3cr3t-t0ken", "DEBUG_LEVEL": "verbose2"})
    assert secret_values(fake) == ["s3cr3t-t0ken"]  # type: ignore[arg-type]
    kept = keep_inputs(store, fake, type("S", (), {"file": suite})())  # type: ignore[arg-type]
    assert kept == {"inventory": "inputs/inventory.yaml", "suite": "inputs/suite.yaml"}
    copied = (store.dir / kept["inventory"]).read_text()
    assert "s3cr3t-t0ken" not in copied and "[redacted]" in copied and "verbose2" in copied
    assert "s3cr3t-t0ken" not in (store.dir / kept["suite"]).read_text()


def test_an_input_that_cannot_be_read_is_left_out(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "runs", "inv")
    gone = FakeInventory(tmp_path / "gone.yaml", {})
    assert keep_inputs(store, gone, type("S", (), {"file": tmp_path / "x.yaml"})()) == {}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (["Django-4.2.7-py3-none-any.whl"], {"django": "4.2.7"}),
        (["mysqlclient-2.2.0-cp311-cp311-linux_x86_64.whl"], {"mysqlclient": "2.2.0"}),
        (["zope.interface-6.0-1-cp311-cp311-linux_x86_64.whl"], {"zope-interface": "6.0"}),
        (["not-a-wheel.whl"], {}),
    ],
)
def test_a_wheelhouse_lists_the_packages_a_venv_built_from_it_holds(
    tmp_path: Path, files: list[str], expected: dict[str, str]
) -> None:
    for name in files:
        (tmp_path / name).write_bytes(b"")
    assert Wheelhouse(tmp_path, "d").packages == expected


def test_a_secret_is_scrubbed_however_the_inventory_spells_it(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "application:\n"
        "  env:\n"
        '    API_TOKEN: "s3cr\\x65t-token-value"  # escaped in YAML\n'
        "    DB_PASSWORD: 'it''s-a-long-secret'\n"
        "    SENTRY_DSN: >-\n"
        "      https://abc123def@sentry.internal/4\n"
        "    LOG_LEVEL: debug-verbose\n"
        "suite: broker\n"
    )
    store = RunStore.create(tmp_path / "runs", "inv")
    env = {
        "API_TOKEN": "s3cret-token-value",
        "DB_PASSWORD": "it's-a-long-secret",
        "SENTRY_DSN": "https://abc123def@sentry.internal/4",
        "LOG_LEVEL": "debug-verbose",
    }
    suite = type("S", (), {"file": tmp_path / "none.yaml"})()
    kept = keep_inputs(store, FakeInventory(inventory, env), suite)  # type: ignore[arg-type]
    copied = (store.dir / kept["inventory"]).read_text()
    for secret in ("s3cr", "it''s", "abc123def"):
        assert secret not in copied, copied
    assert copied.count("'[redacted]'") == 3
    # The layout is kept: the next keys are still on their own lines, comments stay.
    assert "    LOG_LEVEL: debug-verbose\nsuite: broker\n" in copied
    assert "# escaped in YAML" in copied


def test_git_is_never_told_to_trust_a_checkout_another_user_owns(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root, as `make test` runs (it hands a folder to nobody)")
    repo = tmp_path / "evil"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "app.py").write_text("x = 1\n")
    (repo / ".gitattributes").write_text("* filter=x\n")
    git(repo, "add", "app.py", ".gitattributes")
    git(repo, "commit", "-qm", "one")
    pwned = tmp_path / "pwned"
    git(repo, "config", "filter.x.clean", f"sh -c 'touch {pwned}; cat'")
    (repo / "app.py").write_text("x = 2\n")  # a changed file: status would run the filter
    nobody = pwd.getpwnam("nobody")
    for path in [repo, *repo.rglob("*")]:
        os.lchown(path, nobody.pw_uid, nobody.pw_gid)
    found = project_of(repo)
    assert (found.commit, found.dirty) == (None, None)  # git refuses: not a checkout we trust
    assert not pwned.exists()
