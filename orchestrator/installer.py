"""The fast installer: uv, shipped to the hosts that build virtualenvs, pip otherwise.

A cold deploy was dominated by ``pip install`` of the server's virtualenv on the host
(about 11 s for the broker; uv installs the same wheels in about 1 s). Hosts never
download anything, so uv travels like the wheels: its wheel for the host's CPU is
fetched once on the control node (from the package index, as the wheelhouse's packages
are) into ``.wheelhouse/uv/<machine>/``, sent to a host only when the host builds a
virtualenv and lacks that uv, and unpacked under the deploy root (``tools/``).

pip stays the fallback at every step: no uv for the host's CPU, no index reachable from
the control node, ``READINESS_INSTALLER=pip``, or a uv that does not run on the host (an
older C library): the install script tries ``uv --version`` first and builds with pip
when that fails. The record says which installer built each host's virtualenvs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

# The uv release series readiness was tested with; any version of it behaves the same
# for `uv pip install --offline --no-deps` of local wheels.
UV_SERIES = (0, 9)
UV_REQUIREMENT = "uv>=0.9,<0.10"
# After a failed fetch (no index from here), runs within this time use pip without
# asking again: each try costs up to FETCH_TIMEOUT_S.
RETRY_AFTER_S = 600
# Host CPU (uname -m) -> the wheel's platform tag (glibc 2.17 or newer; a host with an
# older or another C library falls back to pip when uv does not run there).
PLATFORMS = {"x86_64": "manylinux_2_17_x86_64", "aarch64": "manylinux_2_17_aarch64"}
# Set to "pip" to never use uv (an index that is not to be asked, a policy).
ENV_CHOICE = "READINESS_INSTALLER"
FETCH_TIMEOUT_S = 60


@dataclass(frozen=True)
class Tool:
    """uv's wheel for one CPU, as cached on the control node."""

    wheel: Path
    version: str
    machine: str

    @property
    def part(self) -> str:
        """Its name in the push stream and under the host's ``tools/`` folder."""
        return f"uv-{self.version}"

    @property
    def member(self) -> str:
        """Where the binary is inside the wheel."""
        return f"uv-{self.version}.data/scripts/uv"


def uv_for(machines: set[str], cache: Path) -> tuple[dict[str, Tool], str | None]:
    """uv for each CPU of ``machines`` that has one: (machine -> tool, why none when
    some machine gets none). Never raises: pip is always there to fall back on."""
    if os.environ.get(ENV_CHOICE, "").strip().lower() == "pip":
        return {}, f"{ENV_CHOICE}=pip"
    tools: dict[str, Tool] = {}
    reasons: list[str] = []
    for machine in sorted(machines):
        if machine not in PLATFORMS:
            reasons.append(f"no uv wheel for CPU {machine!r}")
            continue
        try:
            tool, reason = _cached_or_fetched(machine, cache / "uv" / machine)
        except OSError as err:  # the cache folder cannot be written: pip will do
            tool, reason = None, f"the uv cache cannot be used ({err.strerror or err})"
        if tool is not None:
            tools[machine] = tool
        else:
            reasons.append(reason)
    return tools, "; ".join(reasons) or None


def _cached_or_fetched(machine: str, folder: Path) -> tuple[Tool | None, str]:
    tool = _cached(machine, folder)
    if tool is not None:
        return tool, ""
    failed = folder / ".fetch-failed"
    try:
        if time.time() - failed.stat().st_mtime < RETRY_AFTER_S:
            return None, f"fetching uv failed less than {RETRY_AFTER_S} s ago"
    except OSError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    tool, reason = _fetch(machine, folder)
    if tool is None:
        failed.write_text(reason + "\n")
    else:
        failed.unlink(missing_ok=True)
    return tool, reason


def _fetch(machine: str, folder: Path) -> tuple[Tool | None, str]:
    scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=folder))
    try:
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--platform", PLATFORMS[machine],
            "--retries", "1", "--timeout", "15", "--disable-pip-version-check",
            "--dest", str(scratch), UV_REQUIREMENT,
        ]  # fmt: skip
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=FETCH_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            return None, f"fetching uv failed ({type(err).__name__})"
        wheels = sorted(scratch.glob("uv-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            return None, f"fetching uv failed (pip download exited {proc.returncode})"
        if _version(wheels[0]) is None:
            return None, f"the uv wheel {wheels[0].name} holds no uv binary"
        os.replace(wheels[0], folder / wheels[0].name)
        return _cached(machine, folder), ""
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _cached(machine: str, folder: Path) -> Tool | None:
    """The newest cached wheel of the series that holds the binary (by version, not by
    name: 0.9.30 is newer than 0.9.9)."""
    found = [(w, v) for w in folder.glob("uv-*.whl") if (v := _version(w)) is not None]
    found = [(w, v) for w, v in found if _numbers(v)[:2] == UV_SERIES]
    if not found:
        return None
    wheel, version = max(found, key=lambda item: _numbers(item[1]))
    return Tool(wheel, version, machine)


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _version(wheel: Path) -> str | None:
    """The wheel's version when it holds ``uv-VERSION.data/scripts/uv``, else None."""
    parts = wheel.name.split("-")
    if len(parts) < 5 or not re.fullmatch(r"[0-9]+(\.[0-9]+){1,3}", parts[1]):
        return None
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return None
    return parts[1] if f"uv-{parts[1]}.data/scripts/uv" in names else None
