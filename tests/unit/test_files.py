"""atomic_write: the final mode from the first byte, the old file intact on failure."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.files import atomic_write


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process umask after a test that changes it."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_the_data_with_the_mode_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    atomic_write(target, b'{"a": 1}\n', mode=0o640)
    assert target.read_bytes() == b'{"a": 1}\n'
    assert _mode(target) == 0o640
    assert os.listdir(tmp_path) == ["run.json"]


def test_replaces_an_existing_file_and_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "known_hosts"
    target.write_bytes(b"old and longer than the new content\n")
    target.chmod(0o666)
    atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert _mode(target) == 0o644
    assert os.listdir(tmp_path) == ["known_hosts"]


def test_a_secret_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask: None
) -> None:
    """The temporary file is created 0600, not created wider and narrowed afterwards."""
    os.umask(0)  # nothing narrows the creation mode: it is exactly what atomic_write asks for
    seen: list[int] = []
    real_open = os.open

    def spying_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        fd = real_open(path, flags, mode, **kwargs)
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return fd

    monkeypatch.setattr(os, "open", spying_open)
    atomic_write(tmp_path / "secrets.json", b'{"db_password": "x"}', mode=0o600)
    assert seen == [0o600]
    assert _mode(tmp_path / "secrets.json") == 0o600


def test_the_mode_is_exact_whatever_the_umask(tmp_path: Path, umask: None) -> None:
    os.umask(0o077)
    atomic_write(tmp_path / "lab.json", b"{}", mode=0o644)
    assert _mode(tmp_path / "lab.json") == 0o644


def test_a_failed_write_keeps_the_old_content_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run.json"
    target.write_bytes(b"old\n")

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b"new\n")
    assert target.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["run.json"]


def test_an_interrupted_write_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between writing and renaming: no half-written file is left behind."""

    def interrupted(fd: int, mode: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fchmod", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "lab.json", b"{}")
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_is_an_error_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "absent" / "lab.json", b"{}")
    assert os.listdir(tmp_path) == []


def test_a_taken_temporary_name_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer's temporary file is neither reused nor removed."""
    names = iter(["aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr("orchestrator.files.secrets.token_hex", lambda n: next(names))
    other = tmp_path / ".lab.json.aaaaaaaa.tmp"
    other.write_bytes(b"someone else's")
    atomic_write(tmp_path / "lab.json", b"{}")
    assert other.read_bytes() == b"someone else's"
    assert sorted(os.listdir(tmp_path)) == [".lab.json.aaaaaaaa.tmp", "lab.json"]


def test_without_replace_an_existing_file_is_kept_and_nothing_is_left(tmp_path: Path) -> None:
    target = tmp_path / "inventory.yaml"
    atomic_write(target, b"new\n", replace=False)
    assert target.read_bytes() == b"new\n"
    with pytest.raises(FileExistsError):
        atomic_write(target, b"other\n", replace=False)
    assert target.read_bytes() == b"new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.yaml"]
    # Nor through a symlink left in its place: the link itself is what exists.
    link = tmp_path / "link.yaml"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        atomic_write(link, b"x\n", replace=False)
    assert not (tmp_path / "nowhere").exists()
