"""Wheelhouses: every Python package a host needs, built once on the control node.

Hosts have no internet (lab hosts never do, real ones often don't), so virtualenvs on
hosts are installed only from a wheelhouse shipped over the connection. A wheelhouse is
cached under a digest of the requirement files, the extra packages and the Python
version, so a second deploy with the same requirements builds nothing. pip's own wheel
is included: a host's venv is created ``--without-pip`` and pip runs from its wheel, so
hosts need no ensurepip (Debian's python3 without python3-venv works).

Requirement files are the user's, and may hold what must not be shown (an index URL
with a token, a private package name): no error from here quotes them. pip's own output
does (it echoes the requirement line it failed on), so it goes to a private log file,
and the error says only pip's exit code and where that log is.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.exceptions import ConfigError, InfrastructureError

COMPLETE = ".complete"


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    digest: str

    @property
    def wheels(self) -> tuple[Path, ...]:
        return tuple(sorted(self.path.glob("*.whl")))

    @property
    def packages(self) -> dict[str, str]:
        """Name -> version of every wheel: what a venv built from this wheelhouse holds
        (names normalized as PEP 503 does, so ``Django`` is ``django``)."""
        found: dict[str, str] = {}
        for wheel in self.wheels:
            parts = wheel.name[: -len(".whl")].split("-")
            if len(parts) >= 5:  # name-version[-build]-python-abi-platform
                found[re.sub(r"[-_.]+", "-", parts[0]).lower()] = parts[1]
        return dict(sorted(found.items()))

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


_INCLUDES = ("--requirement", "--constraint")
# pip's COMMENT_RE: '#' at the start of a line or after whitespace, to the end.
_COMMENT = re.compile(r"(^|\s+)#.*")


def _include_target(tokens: list[str]) -> str | None:
    """The file a requirement line includes, in any spelling pip's option parser takes:
    ``-r f``, ``-rf``, ``--requirement f``, ``--requirement=f``, an abbreviated ``--req f``."""
    head = tokens[0]
    if head in ("-r", "-c"):
        return tokens[1] if len(tokens) > 1 else None
    if head.startswith(("-r", "-c")) and not head.startswith("--"):
        return head[2:]
    option, eq, value = head.partition("=")
    if len(option) > 2 and any(full.startswith(option) for full in _INCLUDES):
        if eq:
            return value
        return tokens[1] if len(tokens) > 1 else None
    return None


def requirement_includes(text: str) -> list[tuple[int, str]]:
    """The files a requirements text includes with -r/-c, each with its line number.

    Follows pip's reading: a trailing backslash continues the line, ``#`` starts a
    comment at the start of a line or after a space, options are split like a shell.
    """
    found: list[tuple[int, str]] = []
    logical, start = "", 0
    for number, physical in enumerate(text.splitlines(), 1):
        if not logical:
            start = number
        if physical.endswith("\\"):
            logical += physical[:-1]
            continue
        line, logical = _COMMENT.sub("", logical + physical), ""
        try:
            tokens = shlex.split(line)
        except ValueError:  # an unbalanced quote: pip would refuse the file too
            tokens = line.split()
        target = _include_target(tokens) if tokens else None
        if target:
            found.append((start, target))
    return found


def _with_includes(requirements: Sequence[Path]) -> list[Path]:
    """The files and every file they include with -r/-c, each once, in order.

    An error names the file, or the file and line that included it, and the system's
    reason; never a line of any file (an include target read from a file is content).
    """
    seen: list[Path] = []
    pending: list[tuple[Path, str | None]] = [(Path(r), None) for r in requirements]
    while pending:
        given, origin = pending.pop(0)
        try:
            path = given.resolve()
            if path in seen or not path.is_file():
                continue
            text = path.read_text(errors="replace")
        except (OSError, ValueError, RuntimeError) as err:  # RuntimeError: a symlink loop
            what = f"the file included at {origin}" if origin else f"requirement file {given}"
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "invalid path"
            raise ConfigError(f"cannot read {what} ({reason})") from None
        seen.append(path)
        pending += [(path.parent / t, f"{path}, line {n}") for n, t in requirement_includes(text)]
    return seen


def digest_of(
    requirements: Sequence[Path],
    extras: Sequence[str],
    python: str,
    local_wheels: Sequence[Path] = (),
) -> str:
    """What the wheelhouse depends on: requirement files' bytes (with the files they
    include), extras, interpreter, and the bytes of the wheels built here (the ledger
    hook: a new hook means new virtualenvs)."""
    h = hashlib.sha256()
    for wheel in local_wheels:
        h.update(wheel.name.encode() + b"\0" + wheel.read_bytes() + b"\0")
    h.update(python.encode() + b"\0")
    for req in _with_includes(requirements):
        try:
            content = req.read_bytes()
        except OSError as err:  # changed since it was listed: say so, without its content
            raise ConfigError(f"cannot read requirement file {req} ({err.strerror})") from None
        h.update(req.name.encode() + b"\0" + content + b"\0")
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
    local_wheels: Sequence[Path] = (),
    timeout_s: float = 900,
) -> Wheelhouse:
    """The cached wheelhouse for these requirements, building it if needed.

    ``local_wheels`` (built on the control node, not downloaded) are copied in as they
    are. Built into a temporary folder and renamed into place, so an interrupted build
    never leaves a half wheelhouse that a later run would trust.
    """
    digest = digest_of(requirements, extras, _python_tag(), local_wheels)
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
            log = _keep_pip_log(cache_root, digest, proc.stdout + proc.stderr)
            raise InfrastructureError(
                "building the wheelhouse on the control node failed: `pip wheel` exited "
                f"with code {proc.returncode} for {', '.join(str(r) for r in requirements)}. "
                f"Its output quotes requirement lines, so it is not shown: it is in {log}"
            )
        for wheel in local_wheels:
            shutil.copyfile(wheel, tmp / wheel.name)
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


def _keep_pip_log(cache_root: Path, digest: str, output: str) -> Path:
    """pip's output, readable by this user only: it may quote secrets from the files."""
    log = cache_root / f"pip-{digest}.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(output)
    return log
