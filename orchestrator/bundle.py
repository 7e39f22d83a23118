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


def build_bundle(source: Path) -> Bundle:
    """Archive ``source`` (its contents, not the folder itself)."""
    raw = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _members(source):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(source).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            elif info.issym():
                tar.addfile(info)
            else:
                continue
            count += 1
    tar_bytes = raw.getvalue()
    digest = hashlib.sha256(tar_bytes).hexdigest()
    return Bundle(
        data=gzip.compress(tar_bytes, compresslevel=6, mtime=0), digest=digest, files=count
    )
