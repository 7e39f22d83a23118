"""A code tree sent as its difference from the version a host already holds.

A one-file change of the application used to resend its whole bundle. Now the control
node keeps the manifest of every bundle it builds (each file's path, type, owner-execute
bit and content digest: the entries :mod:`orchestrator.scripts.tree_state` digests) under
its tree digest, in ``.wheelhouse/trees/``. A host's probe reports the digest of the tree
it holds *now*; when that digest names a kept manifest, the host holds exactly those
files, so the push carries only the files that differ and the names that are gone. The
install patches a copy of the folder, checks the copy's tree digest against the new
bundle's before renaming it into place, and exits ``PATCH_FAILED_EXIT`` otherwise (the
control node then sends the whole bundle). A tree the control node never built (one a
run changed on the host, or a manifest lost from the cache) is sent whole, as before.

The manifest cache is trusted only as far as it checks out: a file whose entries do not
digest to its name is ignored, and a digest from a host is used as a file name only if
it is 64 hex digits.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.bundle import Bundle
from orchestrator.files import atomic_write
from orchestrator.scripts import tree_state

# Exit code of the install script when a patched tree is not the one the bundle gives.
PATCH_FAILED_EXIT = 15
# Manifests kept (the newest by use): a few application and client versions per project.
KEEP = 64
_TREE = re.compile(r"[0-9a-f]{64}")


class Trees:
    """The manifests of the bundles this control node built, by tree digest."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._patches: dict[tuple[str, str], Delta | None] = {}

    def keep(self, bundle: Bundle) -> None:
        """Remember ``bundle``'s manifest (a cache: a disk that refuses only costs a whole
        bundle later)."""
        if not _TREE.fullmatch(bundle.tree) or not bundle.manifest:
            return
        path = self.folder / bundle.tree
        try:
            if path.exists():
                os.utime(path)
            else:
                self.folder.mkdir(parents=True, exist_ok=True)
                data = b"".join(p + b"\0" + e + b"\0" for p, e in bundle.manifest)
                atomic_write(path, data, mode=0o644)
            self._prune()
        except OSError:
            pass

    def held(self, tree: str) -> dict[bytes, bytes] | None:
        """The files of tree ``tree`` (path -> entry), or None if it is not known here."""
        if not _TREE.fullmatch(tree):
            return None
        try:
            fields = (self.folder / tree).read_bytes().split(b"\0")
        except OSError:
            return None
        if not fields or fields.pop() != b"" or len(fields) % 2:
            return None
        entries = dict(zip(fields[::2], fields[1::2], strict=True))
        return entries if tree_state.files_digest(entries.items()) == tree else None

    def patch(self, bundle: Bundle, tree: str) -> Delta | None:
        """What a host holding tree ``tree`` needs to hold ``bundle`` (None: send it
        whole). Worked out once per pair and shared: every host of a run that holds the
        same version gets the same difference, however many push at once."""
        key = (bundle.tree, tree)
        with self._lock:
            if key not in self._patches:
                held = self.held(tree)
                self._patches[key] = delta(bundle, held) if held is not None else None
            return self._patches[key]

    def _prune(self) -> None:
        kept = sorted(
            (p for p in self.folder.iterdir() if _TREE.fullmatch(p.name)),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)


@dataclass(frozen=True)
class Delta:
    """What a host holding one version of a tree needs to hold another: a gzip'd tar of
    the files and links that differ or are new, and the names that are gone (each
    followed by a NUL)."""

    data: bytes
    removed: bytes
    changed: int
    gone: int

    @property
    def size(self) -> int:
        return len(self.data) + len(self.removed)


def delta(bundle: Bundle, held: Mapping[bytes, bytes]) -> Delta | None:
    """The difference from ``held`` to ``bundle``; None when it would not be smaller than
    the bundle itself (then the bundle is sent whole). When most files differ it is not
    even built; otherwise it is compressed as it is written and given up as soon as it
    outgrows the bundle, so it never costs more memory than the bundle does."""
    wanted = dict(bundle.manifest)
    changed = {path for path, entry in wanted.items() if held.get(path) != entry}
    if 2 * len(changed) > len(wanted):
        return None
    # A name that is not a file or link of the new tree (or became a folder) goes first:
    # the folders it leaves empty are removed before the new files are unpacked.
    gone = sorted(path for path in held if path not in wanted)
    removed = b"".join(path + b"\0" for path in gone)
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as source,
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in source:
            if member.name.encode("utf-8", "surrogateescape") not in changed:
                continue
            tar.addfile(member, source.extractfile(member) if member.isfile() else None)
            if out.tell() + len(removed) >= len(bundle.data):
                return None
    result = Delta(out.getvalue(), removed, len(changed), len(gone))
    return result if result.size < len(bundle.data) else None
