"""Deterministic archives of a source folder, sent to a host as one stream.

The same files give the same bytes (sorted names, zeroed owners and times), so the
digest says whether a host already has this code and a warm redeploy can skip the
transfer altogether.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.exceptions import ConfigError

# Never shipped: version control, caches, local environments, editor litter.
EXCLUDED_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".venv",
        "venv",
        "node_modules",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".tox",
        ".eggs",
    }
)
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".swp")


@dataclass(frozen=True)
class Bundle:
    """A gzip'd tar of a folder, and the sha256 of its uncompressed tar."""

    data: bytes
    digest: str
    files: int


def _members(source: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS)
        base = Path(dirpath)
        out.extend(base / d for d in dirnames if (base / d).is_symlink())
        out.extend(base / f for f in sorted(filenames) if not f.endswith(EXCLUDED_SUFFIXES))
    return out


def _inside(path: Path, source: Path) -> bool:
    try:
        path.resolve().relative_to(source.resolve())
        return True
    except ValueError:
        return False


def build_bundle(source: Path) -> Bundle:
    """Archive ``source`` (its contents, not the folder itself).

    Sockets and FIFOs are skipped. A symlink that stays inside ``source`` is kept as a
    link; one that leads outside is replaced by the file it points to, because the
    target will not exist on a real host. A link outside to a folder, or a dangling link,
    is refused: silently shipping less than the project would test something else.
    """
    raw = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _members(source):
            arcname = path.relative_to(source).as_posix()
            if path.is_symlink() and not _inside(path, source):
                if not path.is_file():
                    raise ConfigError(
                        f"{path} is a symlink to {os.readlink(path)}, outside the application "
                        "folder and not a file; copy what it points to into the folder"
                    )
                info = tar.gettarinfo(str(path.resolve()), arcname=arcname)
                path = path.resolve()
            else:
                info = tar.gettarinfo(str(path), arcname=arcname)
            if info is None or not (info.isfile() or info.issym()):
                continue  # a socket or FIFO left in the folder
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
            count += 1
    tar_bytes = raw.getvalue()
    digest = hashlib.sha256(tar_bytes).hexdigest()
    return Bundle(
        data=gzip.compress(tar_bytes, compresslevel=6, mtime=0), digest=digest, files=count
    )
