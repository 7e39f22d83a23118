"""Wheelhouses: every Python package a host needs, built once on the control node.

Hosts have no internet (lab hosts never do, real ones often don't), so virtualenvs on
hosts are installed only from a wheelhouse shipped over the connection. A wheelhouse is
cached under a digest of the requirement files, the extra packages and the Python
version, so a second deploy with the same requirements builds nothing. pip's own wheel
is included: a host's venv is created ``--without-pip`` and pip runs from its wheel, so
hosts need no ensurepip (Debian's python3 without python3-venv works).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.exceptions import InfrastructureError

COMPLETE = ".complete"


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    digest: str

    @property
    def wheels(self) -> tuple[Path, ...]:
        return tuple(sorted(self.path.glob("*.whl")))

    @property
    def binary_tags(self) -> tuple[str, str] | None:
        """(python tag, platform tag) of the first wheel that is not pure Python, if any.

        Such a wheel installs only on a host with the control node's Python version and
        machine architecture; pure wheels (``none-any``) install anywhere.
        """
        for wheel in self.wheels:
            parts = wheel.stem.split("-")
            if len(parts) >= 5 and parts[-1] != "any":
                return parts[-3], parts[-1]
        return None

    @property
    def pip_wheel(self) -> Path:
        for wheel in self.wheels:
            if wheel.name.startswith("pip-"):
                return wheel
        raise InfrastructureError(f"wheelhouse {self.path} has no pip wheel")


def _with_includes(requirements: Sequence[Path]) -> list[Path]:
    """The files and every file they include with -r/-c, each once, in order."""
    seen: list[Path] = []
    pending = [Path(r) for r in requirements]
    while pending:
        path = pending.pop(0).resolve()
        if path in seen or not path.is_file():
            continue
        seen.append(path)
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2 and parts[0] in ("-r", "--requirement", "-c", "--constraint"):
                pending.append(path.parent / parts[1])
            elif parts and parts[0].startswith(("--requirement=", "--constraint=")):
                pending.append(path.parent / parts[0].split("=", 1)[1])
    return seen


def digest_of(requirements: Sequence[Path], extras: Sequence[str], python: str) -> str:
    """What the wheelhouse depends on: requirement files' bytes (with the files they
    include), extras, interpreter."""
    h = hashlib.sha256()
    h.update(python.encode() + b"\0")
    for req in _with_includes(requirements):
        h.update(req.name.encode() + b"\0" + req.read_bytes() + b"\0")
    for extra in sorted(extras):
        h.update(extra.encode() + b"\0")
    return h.hexdigest()[:20]


def _python_tag() -> str:
    return f"cp{sys.version_info.major}{sys.version_info.minor}-{sys.platform}"


def build_wheelhouse(
    requirements: Sequence[Path],
    extras: Sequence[str],
    cache_root: Path,
    *,
    timeout_s: float = 900,
) -> Wheelhouse:
    """The cached wheelhouse for these requirements, building it if needed.

    Built into a temporary folder and renamed into place, so an interrupted build never
    leaves a half wheelhouse that a later run would trust.
    """
    digest = digest_of(requirements, extras, _python_tag())
    final = cache_root / digest
    if (final / COMPLETE).is_file():
        return Wheelhouse(final, digest)
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=cache_root))
    cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(tmp), "pip"]
    for req in requirements:
        cmd += ["-r", str(req.resolve())]
    cmd += list(extras)
    try:
        # From the requirement file's folder: '-e .' and './libs/x' lines are relative
        # to it, as they are when a developer runs pip there.
        cwd = requirements[0].parent if requirements else None
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise InfrastructureError(
                "building the wheelhouse on the control node failed "
                f"(pip wheel for {', '.join(str(r) for r in requirements)}):\n{tail}"
            )
        (tmp / COMPLETE).write_text(digest + "\n")
        if final.exists():  # another run won the race, or a stale incomplete folder
            shutil.rmtree(final)
        os.rename(tmp, final)
    except subprocess.TimeoutExpired:
        raise InfrastructureError(
            f"building the wheelhouse took longer than {timeout_s:.0f}s"
        ) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return Wheelhouse(final, digest)
