"""Deterministic archives of a source folder, sent to a host as one stream.

The same files give the same bytes (sorted names, zeroed owners and times), so the
digest says whether a host already has this code and a warm redeploy can skip the
transfer altogether. A bundle also carries the digest of its files as a host's probe
computes it from the unpacked folder (:mod:`orchestrator.scripts.tree_state`), so a
folder that a run changed on the host is told apart from the one that was sent.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.exceptions import ConfigError
from orchestrator.scripts import tree_state

# Never shipped: version control, caches, local environments, editor litter. On a host
# the probe removes them from the deployed folders and leaves them out of the comparison
# (see orchestrator.scripts.tree_state): what was never sent cannot be drift to resend,
# and must not carry a cache of one run into the next.
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
# A bundle is built in memory and sent whole: a folder far past any project's size (a
# home folder, a data dump) is a configuration mistake to name, not a run to attempt.
MAX_BUNDLE_FILES = 200_000
MAX_BUNDLE_BYTES = 1 << 30


@dataclass(frozen=True)
class Bundle:
    """A gzip'd tar of a folder, and the sha256 of its uncompressed tar.

    ``tree`` is :func:`orchestrator.scripts.tree_state.digest` of the folder as it is once
    unpacked on a host: what the probe reports for an unchanged copy.
    """

    data: bytes
    digest: str
    files: int
    tree: str = ""
    # Each file and link as the tree digest encodes it (path, entry), in archive order:
    # what orchestrator.delta compares a host's version with.
    manifest: tuple[tuple[bytes, bytes], ...] = field(default=(), repr=False)


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
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
        raise ConfigError(
            f"{path} is a symlink that leads nowhere (a loop of links, or a path the "
            "system cannot follow); remove it or point it at a file in the folder"
        ) from None


def build_bundle(source: Path) -> Bundle:
    """Archive ``source`` (its contents, not the folder itself).

    Sockets and FIFOs are skipped. A symlink that stays inside ``source`` is kept as a
    link; one that leads outside is replaced by the file it points to, because the
    target will not exist on a real host. A link outside to a folder, or a dangling link,
    is refused: silently shipping less than the project would test something else.
    """
    raw = io.BytesIO()
    count = size = 0
    entries: list[tuple[bytes, bytes]] = []
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
            if info is not None and info.islnk():
                # A second name of a file already archived: tarfile would make it a hard
                # link, which the check below used to drop. Ship it as the file it is.
                info.type, info.linkname = tarfile.REGTYPE, ""
            if info is None or not (info.isfile() or info.issym()):
                continue  # a socket or FIFO left in the folder
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            name = arcname.encode("utf-8", "surrogateescape")
            size += info.size if info.isfile() else 0
            if count >= MAX_BUNDLE_FILES or size > MAX_BUNDLE_BYTES:
                raise ConfigError(
                    f"{source} holds more than {MAX_BUNDLE_FILES} files or "
                    f"{MAX_BUNDLE_BYTES >> 20} MiB: it is sent whole to the hosts, so it must "
                    "be the project (or its client tests), not a folder around it"
                )
            if info.isfile():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                data = path.read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                sha = hashlib.sha256(data).hexdigest()
                entries.append((name, tree_state.file_entry(sha, bool(info.mode & 0o100))))
            else:
                tar.addfile(info)
                entries.append((name, tree_state.link_entry(os.fsencode(info.linkname))))
            count += 1
    tar_bytes = raw.getvalue()
    return Bundle(
        data=gzip.compress(tar_bytes, compresslevel=6, mtime=0),
        digest=hashlib.sha256(tar_bytes).hexdigest(),
        files=count,
        tree=tree_state.files_digest(entries),
        manifest=tuple(entries),
    )
