"""What a deployed tree holds now, as one digest: how a warm redeploy notices host drift.

Sent on a here-document by probe.sh (``probe``, one Python start for every tree of the
host) and install.sh (``seal``), and run by the host's Python with ``-I`` (no PYTHON*
variable, no user site); imported on the control node by orchestrator.bundle and
orchestrator.deploy for :func:`digest`, so both sides encode a tree the same way. It
must run on any Python 3 a host may have (3.7 and later): no newer syntax or library.

Two kinds of tree, because the control node knows the content of one and not the other.

**Code trees** (the app, client and etc folders: ``LABEL TREE`` pairs) give
``marker.LABEL_tree=DIGEST``, a digest of every entry's path, type, owner-execute bit
and *content* (a link's target). The control node computes the same digest from the
very files it sent and compares. Content, not sizes and times: these trees are small
(reading them costs milliseconds), the answer is exact whatever a run did (an edit that
kept size and time, a file added or removed, a mode changed), and there is no manifest
on the host, where a run could change it too. What the control node never ships
(``DIRS`` and ``SUFFIXES``, orchestrator.bundle's exclusions: bytecode, test and tool
caches) is *removed* and left out of the digest. Running the app or its tests writes
such files as a matter of course (pytest's ``.pytest_cache`` whatever the environment
says, ``__pycache__`` from any process started without PYTHONDONTWRITEBYTECODE), so
counting them would resend unchanged code after every run; keeping them would let
state of run N reach run N+1 (``pytest --lf``, a hypothesis example database, a
``.pyc`` that imports without its source). ``SKIP`` (our digest marker) is left alone
at the top of each tree.

**Virtualenvs** (every one under ``VENVS`` that has its ``COMPLETE`` file) give
``marker.venvs=`` (those unchanged) and ``marker.venvs_changed=``; a changed one is not
trusted, so it is rebuilt. The control node does not know a venv's files (pip writes
them on the host), so ``seal VENV COMPLETE``, run by the install once pip is done,
writes into COMPLETE a digest of every entry's path, type, mode, size and modification
time (a link's target), and the probe recomputes it: stat calls only, which is what a
venv of thousands of files needs. A package pip-installed later, a file written or
removed, all change it. ``__pycache__`` folders are left out (and kept: pip compiles
them at install, uv leaves them to the first import, and bytecode there is used only for
a source of the size and time it records, so it cannot change what runs).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterable

# An entry of a tree is (its path relative to the tree, what it is), both bytes.
_CHUNK = 1 << 20


def digest(entries: Iterable[tuple[bytes, bytes]]) -> str:
    """One digest of a tree's entries, whatever order they come in (length-prefixed, so
    no path or link target can run into the next entry)."""
    h = hashlib.sha256()
    for path, what in sorted(entries):
        h.update(b"%d:%s%d:%s" % (len(path), path, len(what), what))
    return h.hexdigest()


def file_entry(content_sha256: str, executable: bool = False) -> bytes:
    """What a regular file of a code tree is: its owner-execute bit and content."""
    return b"f" + (b"x" if executable else b"-") + content_sha256.encode()


def link_entry(target: bytes) -> bytes:
    return b"l" + target


DIR_ENTRY = b"d"


def folders(paths: Iterable[bytes]) -> set[bytes]:
    """The folders holding ``paths`` (an archive lists files; unpacking makes these)."""
    out: set[bytes] = set()
    for path in paths:
        parts = path.split(b"/")
        out.update(b"/".join(parts[:i]) for i in range(1, len(parts)))
    return out


def files_digest(entries: Iterable[tuple[bytes, bytes]]) -> str:
    """:func:`digest` of the tree that unpacking these files and links makes (with the
    folders holding them): what the control node expects a host to report."""
    listed = list(entries)
    return digest(listed + [(d, DIR_ENTRY) for d in folders(p for p, _ in listed)])


def _sha256_of(path: bytes) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _remove(entry: os.DirEntry[bytes], is_dir: bool) -> bool:
    """Remove a cache entry; False if it could not be (it then counts as drift)."""
    try:
        if is_dir and not entry.is_symlink():
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    except OSError:
        return False
    return True


def _walk(
    top: bytes,
    skip: Callable[[bytes, os.DirEntry[bytes]], bool],
    describe: Callable[[os.DirEntry[bytes]], bytes],
) -> list[tuple[bytes, bytes]]:
    """Every entry below ``top`` as (path, what it is), links never followed: a link is
    its target, a folder ``DIR_ENTRY``, anything else what ``describe`` says. ``skip``
    (given the parent's relative path and the entry) leaves an entry, and all below it,
    out."""
    out: list[tuple[bytes, bytes]] = []
    pending = [b""]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(top, rel) if rel else top) as listing:
            for entry in listing:
                if skip(rel, entry):
                    continue
                path = rel + b"/" + entry.name if rel else entry.name
                if entry.is_symlink():
                    out.append((path, link_entry(os.readlink(entry.path))))
                elif entry.is_dir(follow_symlinks=False):
                    out.append((path, DIR_ENTRY))
                    pending.append(path)
                else:
                    out.append((path, describe(entry)))
    return out


def code_entries(
    top: bytes, skip: bytes, dirs: frozenset[bytes], suffixes: tuple[bytes, ...]
) -> list[tuple[bytes, bytes]]:
    """Every entry of a code tree, caches removed first.

    Caches are told apart as orchestrator.bundle leaves them out (``os.walk``): a name of
    ``dirs`` for anything that is a folder or a link to one, a suffix of ``suffixes`` for
    anything else; links are never followed.
    """

    def left_out(rel: bytes, entry: os.DirEntry[bytes]) -> bool:
        if not rel and entry.name == skip:
            return True
        is_dir = entry.is_dir()  # follows a link, as os.walk sorts names
        cache = entry.name in dirs if is_dir else entry.name.endswith(suffixes)
        return cache and _remove(entry, is_dir)

    def content(entry: os.DirEntry[bytes]) -> bytes:
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISREG(mode):
            return file_entry(_sha256_of(entry.path), bool(mode & 0o100))
        return b"?%o" % stat.S_IFMT(mode)  # a socket, FIFO or device: never sent, so drift

    return _walk(top, left_out, content)


def venv_entries(top: bytes, complete: bytes) -> list[tuple[bytes, bytes]]:
    """Every entry of a virtualenv by its metadata, ``__pycache__`` and COMPLETE aside."""

    def left_out(rel: bytes, entry: os.DirEntry[bytes]) -> bool:
        return entry.name == b"__pycache__" or (
            not rel and entry.name in (complete, complete + b".new")
        )

    def metadata(entry: os.DirEntry[bytes]) -> bytes:
        st = entry.stat(follow_symlinks=False)
        return b"%o:%d:%d" % (st.st_mode, st.st_size, st.st_mtime_ns)

    return _walk(top, left_out, metadata)


def _code_trees(skip: bytes, dirs: bytes, suffixes: bytes, pairs: list[bytes]) -> None:
    caches = frozenset(dirs.split()), tuple(suffixes.split())
    for at in range(0, len(pairs) - 1, 2):  # no zip(strict=): hosts may have Python 3.7
        label, top = pairs[at].decode(), pairs[at + 1]
        value = ""
        if os.path.isdir(top) and not os.path.islink(top):
            try:
                value = digest(code_entries(top, skip, *caches))
            except OSError as err:  # something a run made unreadable: drift, so resent
                value = "unreadable"
                print(f"tree_state: {label}: {err}", file=sys.stderr)
        print(f"marker.{label}_tree={value}")


def _venvs(folder: bytes, complete: bytes) -> None:
    same: list[str] = []
    changed: list[str] = []
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for name in names:
        top = os.path.join(folder, name)
        try:
            with open(os.path.join(top, complete), "rb") as fh:
                sealed = fh.read().strip()
        except OSError:
            continue  # not built to the end: neither trusted nor reported
        try:
            now = digest(venv_entries(top, complete)).encode()
        except OSError:
            now = b""
        (same if sealed == now else changed).append(os.fsdecode(name))
    print("marker.venvs=" + " ".join(same))
    print("marker.venvs_changed=" + " ".join(changed))


def _seal(top: bytes, complete: bytes) -> None:
    """Write COMPLETE last, atomically: a venv is trusted only once it is whole."""
    value = digest(venv_entries(top, complete))
    new = os.path.join(top, complete + b".new")
    with open(new, "w") as fh:
        fh.write(value + "\n")
    os.replace(new, os.path.join(top, complete))


def main(argv: list[bytes]) -> int:
    """``probe SKIP DIRS SUFFIXES VENVS COMPLETE [LABEL TREE]...`` or ``seal VENV COMPLETE``.

    One command for the probe, so one Python start covers every tree of the host.
    """
    if len(argv) >= 6 and argv[0] == b"probe" and len(argv) % 2 == 0:
        _venvs(argv[4], argv[5])
        _code_trees(argv[1], argv[2], argv[3], argv[6:])
    elif len(argv) == 3 and argv[0] == b"seal":
        _seal(argv[1], argv[2])
    else:
        print("usage: tree_state.py probe|seal ...", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main([os.fsencode(arg) for arg in sys.argv[1:]]))
