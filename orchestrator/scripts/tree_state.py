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

**The host's virtualenv cache** (``CACHE``, one folder per host and user) holds venvs
built once for every deploy root that needs the same wheelhouse on the same interpreter:
an entry is a folder ``KEY.ID``, and ``KEY`` (``DIGEST-TAG``: the wheelhouse's digest and
:func:`interpreter_tag`) a link to the entry given to deploy roots now, whose
``venvs/DIGEST`` are links to that entry. The probe trusts a root's link only when it
leads to this interpreter's entry of its digest in a cache only we can change
(:func:`cache_problem`), and reports the digests whose key leads to a sealed entry
(``marker.venvs_cached``) without walking them: a walk of a real venv costs a tenth of
a second, and the install walks the one it links anyway, under the key's lock
(``take``). An entry is never changed once sealed: one that drifted is
replaced by a new entry (the key's link swapped), so a root still linked to the old one
keeps what it had until its own redeploy. ``cache-gc`` keeps the cache bounded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator

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


def _state(top: bytes, complete: bytes) -> bool | None:
    """Whether a venv still holds what it was sealed with; None: never sealed (not built
    to the end, or a link that leads nowhere), so neither trusted nor reported."""
    try:
        with open(os.path.join(top, complete), "rb") as fh:
            sealed = fh.read().strip()
    except OSError:
        return None
    try:
        now = digest(venv_entries(top, complete)).encode()
    except OSError:
        now = b""
    return sealed == now


def _venvs(folder: bytes, complete: bytes, cache: bytes) -> None:
    if cache and cache_problem(cache):
        cache = b""  # missing (nothing cached yet) or not safe: no link into it is trusted
    tag = interpreter_tag().encode()
    same: list[str] = []
    changed: list[str] = []
    changed_entries: set[bytes] = set()
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for name in names:
        top = os.path.join(folder, name)
        entry = b""
        if os.path.islink(top):
            entry = _linked_entry(top, cache, name + b"-" + tag) if cache else b""
            if not entry:
                continue  # a link counts only when it leads to this Python's entry
            _touch(os.path.join(cache, entry))
        state = _state(top, complete)
        if state is None:
            continue
        (same if state else changed).append(os.fsdecode(name))
        if not state and entry:
            changed_entries.add(entry)
    print("marker.venvs=" + " ".join(same))
    print("marker.venvs_changed=" + " ".join(changed))
    cached = _cached(cache, complete, tag, changed_entries) if cache else []
    print("marker.venvs_cached=" + " ".join(cached))


def _seal(top: bytes, complete: bytes) -> None:
    """Write COMPLETE last, atomically: a venv is trusted only once it is whole."""
    value = digest(venv_entries(top, complete))
    new = os.path.join(top, complete + b".new")
    with open(new, "w") as fh:
        fh.write(value + "\n")
    os.replace(new, os.path.join(top, complete))


# -- the host's virtualenv cache -----------------------------------------------------

# The only names ever read from the cache folder (anything else there is left alone): a
# key link, an entry, the lock of a key, a key link being swapped in, an entry being
# removed. Hex only, so no name from the host reaches a path or a command as anything else.
_KEY = re.compile(rb"([0-9a-f]{1,64})-([0-9a-f]{12})\Z")
_ENTRY = re.compile(rb"([0-9a-f]{1,64}-[0-9a-f]{12})\.[0-9a-f]{8}\Z")
_SPARE = re.compile(rb"\.([0-9a-f]{1,64}-[0-9a-f]{12})(\.lock|\.link|\.[0-9a-f]{8}\.gone)\Z")
# What ``take`` says when the lock file was replaced while it waited (open it again).
RELOCK_EXIT = 75


def interpreter_tag() -> str:
    """The interpreter as part of a cache key: a venv is made for one Python (its path in
    pyvenv.cfg and the scripts' first line, its version in the standard library it runs
    on), so another one, or the same one upgraded, gets entries of its own."""
    real = os.path.realpath(sys.executable or "python3")
    return hashlib.sha256((real + "\0" + sys.version).encode()).hexdigest()[:12]


def _unsafe(path: bytes, st: os.stat_result) -> str:
    """Why a folder lets another user change what is below it ('' if it does not)."""
    if st.st_uid not in (os.getuid(), 0):
        return f"{os.fsdecode(path)} is owned by uid {st.st_uid}"
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        return f"{os.fsdecode(path)} can be written by others (mode {stat.S_IMODE(st.st_mode):o})"
    return ""


def cache_problem(cache: bytes) -> str:
    """Why the cache folder may not be used ('' if it may). Its venvs run as the deploys'
    user, and the default folder is in the shared /var/tmp: it must be a folder of ours
    that no one else can write (not a link someone else could point elsewhere), below
    folders no one else can change (as sshd's StrictModes, sticky ones allowed)."""
    try:
        st = os.lstat(cache)
    except OSError as err:
        return f"{os.fsdecode(cache)}: {err.strerror}"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return f"{os.fsdecode(cache)} is a symlink or not a folder"
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        return _unsafe(cache, st) or f"{os.fsdecode(cache)} is owned by uid {st.st_uid}"
    try:
        # Hardened hosts mount /var/tmp noexec: a venv there could not run its scripts
        # or load its extensions (a false "not ready"); the deploy root is the user's pick.
        if os.statvfs(cache).f_flag & os.ST_NOEXEC:
            return f"{os.fsdecode(cache)} is on a filesystem mounted noexec"
        return _above_problem(cache)
    except OSError as err:  # a folder above we cannot even look at: not ours to trust
        return f"{os.fsdecode(err.filename or cache)}: {err.strerror}"


def _above_problem(cache: bytes) -> str:
    """Why the folders above the cache let someone else swap it ('' if they do not)."""
    here = os.path.dirname(cache)
    while here not in (b"/", b""):  # a link on the way must be ours (or root's)
        if os.path.islink(here) and os.lstat(here).st_uid not in (os.getuid(), 0):
            return f"{os.fsdecode(here)} is a link owned by uid {os.lstat(here).st_uid}"
        here = os.path.dirname(here)
    here = os.path.realpath(os.path.dirname(cache))
    while True:
        problem = _unsafe(here, os.stat(here))
        if problem or here == b"/":
            return problem
        here = os.path.dirname(here)


def _cache_check(cache: bytes) -> int:
    """The install's first look: the folder made (0700) if missing, then judged. Prints
    the interpreter's tag when it may be used; why not, on stderr, when it may not."""
    try:
        os.makedirs(os.path.dirname(cache), 0o700, exist_ok=True)
        os.mkdir(cache, 0o700)
    except FileExistsError:
        pass
    except OSError as err:
        print(f"tree_state: {os.fsdecode(cache)}: {err.strerror}", file=sys.stderr)
    problem = cache_problem(cache)
    if problem:
        print(
            f"readiness: not using the virtualenv cache {os.fsdecode(cache)} ({problem}); "
            "building in the deploy root",
            file=sys.stderr,
        )
        return 1
    print(interpreter_tag())
    return 0


def _touch(path: bytes) -> None:
    """An entry in use is recent: the collector removes the least recently used."""
    with contextlib.suppress(OSError):
        os.utime(path, follow_symlinks=False)


def _linked_entry(link: bytes, cache: bytes, key: bytes) -> bytes:
    """The entry of ``key`` in ``cache`` a root's link leads to, else b''."""
    try:
        target = os.readlink(link)
    except OSError:
        return b""
    entry = os.path.basename(target)
    match = _ENTRY.match(entry)
    if os.path.dirname(target) != cache or match is None or match.group(1) != key:
        return b""
    return entry


def _current(cache: bytes, key: bytes) -> bytes:
    """The entry ``key``'s link leads to (b'' if none): a name in the cache folder."""
    try:
        entry = os.readlink(os.path.join(cache, key))
    except OSError:
        return b""
    match = _ENTRY.match(entry)
    return entry if match is not None and match.group(1) == key else b""


def _cached(cache: bytes, complete: bytes, tag: bytes, drifted: set[bytes]) -> list[str]:
    """The digests whose key (for this interpreter) leads to a sealed entry that this
    root's own links did not just find changed. Not walked (see the module docstring)."""
    out: list[str] = []
    for name in sorted(os.listdir(cache)):
        match = _KEY.match(name)
        if match is None or match.group(2) != tag:
            continue
        entry = _current(cache, name)
        top = os.path.join(cache, entry)
        whole = not os.path.islink(top) and os.path.isfile(os.path.join(top, complete))
        if entry and entry not in drifted and whole:
            out.append(match.group(1).decode())
    return out


def _lock(fd: int, path: bytes) -> bool:
    """Wait for the lock of ``path``, open on ``fd`` by the install's shell: a flock(2)
    lock belongs to the open file, so the shell holds it once this process is gone, until
    its subshell ends. False when the file was removed while we waited (the collector
    removes the lock of a key it emptied): that lock guards nothing."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        now, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _take(fd: int, lock: bytes, cache: bytes, key: bytes, complete: bytes) -> int:
    """Under the key's lock (see _lock; RELOCK_EXIT: open it again), ``have ENTRY`` when
    the key leads to an entry still as sealed, else ``new ENTRY``: a fresh name to build
    into (never the old one: a root may still run from it). The shell keeps the lock
    until it has linked or built, so the answer holds until then. One Python start for
    both: each costs a tenth of a second on a busy host."""
    if not _lock(fd, lock):
        return RELOCK_EXIT
    entry = _current(cache, key)
    if entry and _state(os.path.join(cache, entry), complete):
        print("have " + entry.decode())
        return 0
    while True:
        entry = key + b"." + os.urandom(4).hex().encode()
        if not os.path.lexists(os.path.join(cache, entry)):
            print("new " + entry.decode())
            return 0


@contextlib.contextmanager
def _try_lock(cache: bytes, key: bytes) -> Iterator[bool]:
    """The key's lock if no one holds it (an install building, checking or linking)."""
    fd = os.open(os.path.join(cache, b"." + key + b".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _drop(cache: bytes, key: bytes, entry: bytes, mtime: int) -> None:
    """Remove an entry, unless its key is locked or it was used since it was listed. It
    is renamed away first: a root linked to it finds it whole or not at all."""
    with _try_lock(cache, key) as locked:
        path = os.path.join(cache, entry)
        gone = os.path.join(cache, b"." + entry + b".gone")
        try:
            if not locked or os.lstat(path).st_mtime_ns != mtime:
                return
            os.rename(path, gone)
        except OSError:
            return
    shutil.rmtree(gone, ignore_errors=True)


def _spare(cache: bytes, name: bytes, key: bytes) -> bool:
    """Whether ``name`` (of ``key``) leads nowhere any more: a key link to a removed
    entry, the lock of a key with nothing left, a key link an install was cut short
    swapping in (an install holds the key's lock while one exists)."""
    if _KEY.match(name):
        return not os.path.exists(os.path.join(cache, name))
    if name.endswith(b".lock"):
        names = os.listdir(cache)
        return not any(n == key or n.startswith(key + b".") for n in names)
    return True


def _tidy(cache: bytes) -> None:
    """Remove what leads nowhere (see _spare), each under its key's lock and checked
    again there, and entries half removed. A lock file is removed while held, so an
    install that waited on it opens it again (see _lock); locks last, once their keys'
    links are gone."""
    for name in sorted(os.listdir(cache), key=lambda name: name.endswith(b".lock")):
        spare = _SPARE.match(name)
        if spare is not None and spare.group(2).endswith(b".gone"):
            shutil.rmtree(os.path.join(cache, name), ignore_errors=True)
            continue
        key = spare.group(1) if spare is not None else name if _KEY.match(name) else b""
        if not key or not _spare(cache, name, key):
            continue
        with _try_lock(cache, key) as locked:
            if locked and _spare(cache, name, key):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(cache, name))


def _collect(cache: bytes, complete: bytes, keep: int, protected_file: bytes, idle_s: int) -> None:
    """Keep the cache bounded: the ``keep`` most recently used whole entries (linking
    touches an entry, and so does the probe of a root linked to it), the ones this
    install linked, and any used in the last ``idle_s`` seconds stay (a server kept
    running, or another inventory's run, uses an entry without touching it); the others
    go, unless their key is locked. A root still linked to one removed finds its link
    dangling: its probe reports the venv missing."""
    try:
        with open(protected_file, "rb") as fh:
            protected = set(fh.read().split())
    except OSError:
        protected = set()
    entries: list[tuple[int, bytes, bytes]] = []
    for name in os.listdir(cache):
        match = _ENTRY.match(name)
        path = os.path.join(cache, name)
        try:  # another install's collection may be removing it right now
            if match is not None and os.path.isdir(path) and not os.path.islink(path):
                entries.append((os.lstat(path).st_mtime_ns, name, match.group(1)))
        except OSError:
            continue
    kept = 0
    recent = time.time_ns() - idle_s * 1_000_000_000
    for mtime, name, key in sorted(entries, reverse=True):
        whole = os.path.isfile(os.path.join(cache, name, complete))
        if name in protected or (whole and kept < keep) or mtime > recent:
            kept += 1
        else:
            _drop(cache, key, name, mtime)
    _tidy(cache)


def main(argv: list[bytes]) -> int:
    """``probe SKIP DIRS SUFFIXES VENVS COMPLETE CACHE [LABEL TREE]...`` (CACHE may be
    empty: none), ``seal VENV COMPLETE``, and for the install's use of the cache
    ``cache-check CACHE``, ``take FD LOCK CACHE KEY COMPLETE``,
    ``cache-gc CACHE COMPLETE KEEP PROTECTED_FILE IDLE_S``.

    One command for the probe, so one Python start covers every tree of the host.
    """
    command, args = (argv[0], argv[1:]) if argv else (b"", [])
    if command == b"probe" and len(args) >= 6 and len(args) % 2 == 0:
        _venvs(args[3], args[4], args[5])
        _code_trees(args[0], args[1], args[2], args[6:])
    elif command == b"seal" and len(args) == 2:
        _seal(args[0], args[1])
    elif command == b"cache-check" and len(args) == 1:
        return _cache_check(args[0])
    elif command == b"take" and len(args) == 5:
        return _take(int(args[0]), args[1], args[2], args[3], args[4])
    elif command == b"cache-gc" and len(args) == 5:
        _collect(args[0], args[1], int(args[2]), args[3], int(args[4]))
    else:
        print("usage: tree_state.py probe|seal|cache-check|take|cache-gc ...", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main([os.fsencode(arg) for arg in sys.argv[1:]]))
