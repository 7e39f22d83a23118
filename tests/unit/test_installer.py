"""The fast installer on the control node: uv's wheel for each host CPU, fetched once
and cached, and pip whenever uv cannot be had (never an error)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator import installer
from orchestrator.installer import PLATFORMS, uv_for


def uv_wheel(folder: Path, version: str, *, binary: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"uv-{version}-py3-none-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as whl:
        whl.writestr(f"uv-{version}.dist-info/METADATA", "Name: uv\n")
        if binary:
            whl.writestr(f"uv-{version}.data/scripts/uv", "#!/bin/sh\n")
    return wheel


class FakePip:
    """Stands in for `pip download`: writes the wheel it was asked for, or fails."""

    def __init__(self, version: str | None) -> None:
        self.version = version
        self.calls: list[list[str]] = []

    def __call__(self, cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(cmd)
        if self.version is None:
            return subprocess.CompletedProcess(cmd, 1, "", "no index")
        uv_wheel(Path(cmd[cmd.index("--dest") + 1]), self.version)
        return subprocess.CompletedProcess(cmd, 0, "", "")


def test_uv_is_fetched_once_per_cpu_then_taken_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(installer.ENV_CHOICE, raising=False)
    pip = FakePip("0.9.30")
    monkeypatch.setattr(subprocess, "run", pip)
    tools, missing = uv_for({"x86_64"}, tmp_path)
    assert missing is None
    tool = tools["x86_64"]
    assert (tool.version, tool.part, tool.member) == (
        "0.9.30",
        "uv-0.9.30",
        "uv-0.9.30.data/scripts/uv",
    )
    assert tool.wheel.parent == tmp_path / "uv" / "x86_64"
    (cmd,) = pip.calls
    assert cmd[cmd.index("--platform") + 1] == PLATFORMS["x86_64"]
    assert installer.UV_REQUIREMENT in cmd and "--no-deps" in cmd
    again, _ = uv_for({"x86_64"}, tmp_path)
    assert again == tools and len(pip.calls) == 1  # cached: no second download
    assert sorted(p.name for p in (tmp_path / "uv" / "x86_64").iterdir()) == [tool.wheel.name]


def test_without_uv_the_reason_is_given_and_nothing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(installer.ENV_CHOICE, raising=False)
    pip = FakePip(None)
    monkeypatch.setattr(subprocess, "run", pip)
    tools, missing = uv_for({"x86_64", "riscv64"}, tmp_path)
    assert tools == {}
    assert missing == "no uv wheel for CPU 'riscv64'; fetching uv failed (pip download exited 1)"
    # No scratch folder of the failed fetch is left in the cache, only its stamp.
    assert [p.name for p in (tmp_path / "uv" / "x86_64").iterdir()] == [".fetch-failed"]
    # The next runs do not wait for an index that did not answer, for a while.
    tools, missing = uv_for({"x86_64"}, tmp_path)
    assert tools == {} and "less than 600 s ago" in str(missing) and len(pip.calls) == 1


def test_the_newest_cached_uv_of_the_series_is_taken_by_version_not_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(installer.ENV_CHOICE, raising=False)
    folder = tmp_path / "uv" / "x86_64"
    for version in ("0.9.9", "0.9.30", "0.10.2"):
        uv_wheel(folder, version)
    pip = FakePip("0.9.31")
    monkeypatch.setattr(subprocess, "run", pip)
    tools, _ = uv_for({"x86_64"}, tmp_path)
    assert tools["x86_64"].version == "0.9.30" and pip.calls == []


def test_a_cached_wheel_without_the_binary_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(installer.ENV_CHOICE, raising=False)
    uv_wheel(tmp_path / "uv" / "x86_64", "0.9.99", binary=False)
    monkeypatch.setattr(subprocess, "run", FakePip("0.9.30"))
    tools, _ = uv_for({"x86_64"}, tmp_path)
    assert tools["x86_64"].version == "0.9.30"


def test_readiness_installer_pip_never_asks_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(installer.ENV_CHOICE, "pip")
    pip = FakePip("0.9.30")
    monkeypatch.setattr(subprocess, "run", pip)
    assert uv_for({"x86_64"}, tmp_path) == ({}, "READINESS_INSTALLER=pip")
    assert pip.calls == []
