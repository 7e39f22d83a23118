"""The user's files an inventory names: where each one is, and that it stays where it should.

An application path (requirement files, fixtures, the client's folder and its
requirements) is looked for inside the application first, as it always was. When it is
not there, it is looked for beside the inventory (relative to the inventory file's
folder), or where an absolute path says. This lets a team keep its readiness files (a
fixture for the live server, a client test folder) next to its inventory instead of in
the project tree, and move the tree without rewriting ``../..`` paths.

A relative path never climbs out of the folder it is resolved against: ``..`` is refused,
and so is a symlink that leads out. What these paths name is read on the control node
and shipped to hosts, so a value must not reach the rest of the machine by accident.
Every file that is used is kept as a :class:`UserFile`, so the run record can say which
file was used and what it held (its digest).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.document import Section, path_problem, shown, shown_path
from orchestrator.exceptions import ConfigError
from orchestrator.wheelhouse import requirement_includes

# Where a value was found: inside the application, beside the inventory, or at the
# absolute path it gives.
APPLICATION, INVENTORY, ABSOLUTE = "application", "inventory", "absolute"

# A requirement file and what it includes: enough for any project, not for a loop of links.
MAX_REQUIREMENT_FILES = 100
MAX_REQUIREMENTS_BYTES = 1 << 20
# Fixtures shipped from beside the inventory travel in memory with the host's settings:
# at most this much, one or all of them.
MAX_FIXTURE_BYTES = 64 << 20

# Django tells a fixture's format (and compression) by its file name.
FIXTURE_SUFFIXES = (".json", ".yaml", ".yml", ".xml")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".lzma")
# The folders a search for a fixture label never enters, and when it gives up.
_NOT_SEARCHED = {".git", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}
_MAX_SEARCHED = 20_000
# The system's own folders (top-level names), and those whose whole tree is the
# system's. Neither a deploy root (readiness fills it and removes what it made there)
# nor a client folder (archived whole and sent to a host) may be one of them, nor a
# folder directly under /var.
SYSTEM_DIRS = frozenset(
    {
        "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32",
        "lost+found", "media", "mnt", "opt", "proc", "root", "run", "sbin", "snap",
        "srv", "sys", "tmp", "usr", "var",
    }
)  # fmt: skip
SYSTEM_TREES = frozenset(
    {"bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "sys", "usr"}
)


def is_system_folder(parts: tuple[str, ...], trees: frozenset[str] = SYSTEM_TREES) -> bool:
    """Whether the absolute path of these parts (after the root, normalised) is ``/``, a
    system folder, a folder under /var or inside one of ``trees``."""
    return (
        not parts
        or (len(parts) == 1 and parts[0] in SYSTEM_DIRS)
        or parts[0] in trees
        or (len(parts) == 2 and parts[0] == "var")
    )


# A fixture's name reaches the host's command line (quoted) and its etc folder: the
# characters of ordinary file names only. Every pattern is used with fullmatch.
_FIXTURE_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._/+-]*")


@dataclass(frozen=True)
class Places:
    """The two folders a relative value may be resolved against, both resolved."""

    application: Path
    inventory: Path


@dataclass(frozen=True)
class UserFile:
    """A file or folder of the user's that the inventory names, as found."""

    field: str  # the inventory field that names it: "application.fixtures"
    value: str  # as written in the inventory
    path: Path  # resolved on the control node
    base: str  # APPLICATION, INVENTORY or ABSOLUTE

    @property
    def shipped(self) -> bool:
        """Outside the application: readiness must send it itself (the bundle of the
        application does not hold it)."""
        return self.base != APPLICATION


@dataclass(frozen=True)
class Fixture:
    """One fixture for ``testserver``: a path or label inside the application (``label``,
    given to Django as written), or a file from outside it, which is shipped into the
    host's etc folder as ``shipped_name`` and given to Django by that path. ``file`` is
    the file found (None for a label, which Django searches for itself)."""

    label: str
    file: UserFile | None = None
    index: int = 0

    @property
    def shipped(self) -> bool:
        return self.file is not None and self.file.shipped

    @property
    def shipped_name(self) -> str:
        """Its path inside the host's etc folder: its own name (Django reads the format
        from it) in a folder of its own (two fixtures may share a name)."""
        assert self.file is not None
        return f"fixtures/{self.index}/{self.file.path.name}"


def digest(path: Path) -> str | None:
    """sha256 of a file, for the record; None for a folder or a file that went away."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def locate(s: Section, key: str, value: str, places: Places, kind: str) -> UserFile:
    """Where ``value`` (a ``kind``: "file" or "folder") is: inside the application if it
    is there, else beside the inventory; an absolute path is taken as written."""
    problem = path_problem(value)
    if problem:
        raise s.error(key, problem)
    if value.startswith(("/", "~")):
        try:
            path = Path(value).expanduser()
        except RuntimeError:  # "~nobody/x": Python cannot find that user's home
            raise s.error(
                key, f"{shown(value)} starts with a user this machine does not know"
            ) from None
        found = _found(path, kind)
        if found is None:
            raise s.error(key, _absent(path, kind))
        _check_folder(s, key, found, kind)
        return UserFile(s.field(key), value, found, ABSOLUTE)
    if ".." in Path(value).parts or value.startswith("-"):
        raise s.error(
            key,
            f"{shown(value)} must be a path inside the application or beside the inventory "
            "(no '..', not starting with '-'), or an absolute path",
        )
    for base, folder in ((APPLICATION, places.application), (INVENTORY, places.inventory)):
        target = folder / value
        found = _found(target, kind)
        if found is None:
            continue
        if not found.is_relative_to(folder):
            where = "the application" if base == APPLICATION else "the inventory's folder"
            raise s.error(
                key,
                f"{shown(value)} leads outside {where} ({shown_path(folder)}) through a "
                "symlink; it must stay inside it",
            )
        if base == INVENTORY:
            _check_trusted(s, key, folder)
        _check_folder(s, key, found, kind)
        return UserFile(s.field(key), value, found, base)
    raise s.error(
        key,
        f"{kind} {shown(value)} is neither in the application ({shown_path(places.application)}) "
        f"nor beside the inventory ({shown_path(places.inventory)})",
    )


def _absent(path: Path, kind: str) -> str:
    """Why ``path`` is not a usable ``kind``: missing, or something else."""
    try:
        exists = path.exists()
    except (OSError, ValueError):
        exists = False
    if not exists:
        return f"{kind} {shown_path(path)} does not exist"
    return f"{shown_path(path)} is not a {'folder' if kind == 'folder' else 'regular file'}"


def _check_folder(s: Section, key: str, found: Path, kind: str) -> None:
    """A folder value is archived whole and sent to a host: never the system, a home,
    or a folder holding readiness itself (its state holds the lab's keys and secrets)."""
    if kind != "folder":
        return
    home = Path.home()
    readiness = Path(__file__).resolve().parent.parent
    if (
        # /run too: a client folder there is the system's runtime state, not tests
        is_system_folder(found.parts[1:], SYSTEM_TREES | {"run"})
        or found == home
        or found.parent == Path("/home")
        or readiness.is_relative_to(found)
    ):
        raise s.error(
            key,
            f"{shown_path(found)} is a system folder, a home folder or a folder around "
            "readiness itself; it would be sent whole to the hosts. Name the folder of "
            "the client's tests",
        )


def _check_trusted(s: Section, key: str, folder: Path) -> None:
    """Files beside the inventory run on hosts (client tests) or are handed to pip: the
    inventory's folder must be one only its owner can change, as sshd's StrictModes asks
    of ~/.ssh. Otherwise anyone could plant the file a value falls back to."""
    try:
        info = folder.stat()
    except OSError:
        return  # the file was just found there; a folder that went away fails later
    if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022:
        raise s.error(
            key,
            f"is looked for beside the inventory, but its folder {shown_path(folder)} can be "
            "changed by other users (it is writable by group or others, or owned by "
            "another user): keep the inventory and its files in a folder of your own",
        )


def _found(path: Path, kind: str) -> Path | None:
    """``path`` resolved, when it is a ``kind``; None when it is not (or cannot be)."""
    try:
        real = path.resolve()
        ok = real.is_dir() if kind == "folder" else real.is_file()
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop
        return None
    return real if ok else None


def requirement_files(
    s: Section, key: str, names: tuple[str, ...], places: Places
) -> tuple[UserFile, ...]:
    """Requirement files are read on the control node and handed to pip: each, and every
    file it includes, must stay inside the folder it was found in. A missing one is an
    error now, not a failed wheelhouse build later."""
    files = tuple(locate(s, key, name, places, "file") for name in names)
    for found in files:
        if found.base == APPLICATION:
            folder, name = places.application, "the application"
        elif found.base == INVENTORY:
            folder, name = places.inventory, "the inventory's folder"
        else:
            folder, name = found.path.parent, "the requirement file's folder"
        _check_includes(s, key, (folder, name), found.path)
    return files


def _check_includes(s: Section, key: str, within: tuple[Path, str], first: Path) -> None:
    """What a requirement file includes (-r, -c) pip reads too: only files inside the
    folder it was found in. Errors name the including file and line, never a line's
    content."""
    folder, name = within
    seen: set[Path] = set()
    pending = [first]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        if len(seen) > MAX_REQUIREMENT_FILES:
            raise s.error(key, f"includes more than {MAX_REQUIREMENT_FILES} requirement files")
        for line, target in requirement_includes(_read_requirements(s, key, path)):
            where = f"{shown_path(path)}, line {line},"
            if "://" in target or target.startswith("file:") or "${" in target:
                raise s.error(
                    key,
                    f"{where} includes a URL or an environment variable: "
                    f"only files inside {name} may be included",
                )
            problem = path_problem(target)
            if problem:
                raise s.error(key, f"{where} includes an impossible path ({problem})")
            included = path.parent / target
            try:
                real = included.resolve()
                ok = real.is_file()
            except (OSError, RuntimeError):
                real, ok = included, False
            if not real.is_relative_to(folder):
                raise s.error(
                    key,
                    f"{where} includes a file outside {name} "
                    f"({shown_path(folder)}); only files inside it may be included",
                )
            if not ok:
                raise s.error(key, f"{where} includes a file that does not exist")
            pending.append(real)


def _read_requirements(s: Section, key: str, path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_REQUIREMENTS_BYTES + 1)
    except OSError as err:
        raise s.error(key, f"cannot read {shown_path(path)} ({err.strerror})") from None
    if len(data) > MAX_REQUIREMENTS_BYTES:
        raise s.error(key, f"{shown_path(path)} is larger than {MAX_REQUIREMENTS_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def fixtures(s: Section, places: Places) -> tuple[Fixture, ...]:
    """The fixtures testserver loads, in order: each a file or label in the application
    (given to Django as written), else a file beside the inventory or at an absolute
    path (shipped). A label Django could not find is an error now, not a server that
    fails to start on the host."""
    out: list[Fixture] = []
    shipped = 0
    for index, value in enumerate(s.string_list("fixtures", ())):
        fixture = _fixture(s, value, places, index)
        if fixture.shipped and fixture.file is not None:
            shipped += _size(fixture.file.path)
            if shipped > MAX_FIXTURE_BYTES:
                raise s.error(
                    "fixtures",
                    f"the fixtures from outside the application add up to more than "
                    f"{MAX_FIXTURE_BYTES} bytes, what readiness ships with the settings; "
                    "put the larger ones inside the application",
                )
        out.append(fixture)
    return tuple(out)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # gone since it was found: reading it says so, naming the field


def _fixture(s: Section, value: str, places: Places, index: int) -> Fixture:
    problem = path_problem(value)
    if problem:
        raise s.error("fixtures", problem)
    outside = value.startswith(("/", "~")) or ".." in Path(value).parts
    in_app = not outside and _found(places.application / value, "file") is not None
    # A bare label ("initial_data", or "initial_data.json" with no such file at the
    # application's top) is Django's to find in the apps' fixtures folders.
    beside = not outside and not in_app and _found(places.inventory / value, "file") is not None
    if not outside and not in_app and "/" not in value:
        label = _label_found(places.application, value)
        # Not known (an application too large to search): a file beside the inventory
        # named so is what the user meant; without one, Django will look.
        if label or (label is None and not beside):
            return Fixture(label=_fixture_name(s, value, value), index=index)
    if not outside and not in_app and not beside:
        raise s.error(
            "fixtures",
            f"no fixture {shown(value)}: it is not a file in the application "
            f"({shown_path(places.application)}) or beside the inventory "
            f"({shown_path(places.inventory)})"
            + (
                f", and Django would not find it as a label ({_label_hint(value)} in an "
                "app's fixtures/ folder)"
                if "/" not in value
                else ""
            )
            + ". Name an existing file by its path (e.g. app/fixtures/x.json), or leave "
            "fixtures out (testserver then starts with an empty one)",
        )
    found = locate(s, "fixtures", value, places, "file")
    if not found.shipped:
        return Fixture(label=_fixture_name(s, value, value), file=found, index=index)
    _fixture_name(s, value, found.path.name)
    if not found.path.name.endswith(
        tuple(f + c for f in FIXTURE_SUFFIXES for c in ("", *COMPRESSION_SUFFIXES))
    ):
        raise s.error(
            "fixtures",
            f"{shown(value)}: Django tells a fixture's format by its name; it must end in "
            ".json, .yaml, .yml or .xml (optionally compressed: .gz, .bz2, .xz, .zip, .lzma)",
        )
    try:
        size = found.path.stat().st_size
    except OSError as err:
        raise s.error(
            "fixtures", f"cannot read {shown_path(found.path)} ({err.strerror})"
        ) from None
    if size > MAX_FIXTURE_BYTES:
        raise s.error(
            "fixtures",
            f"{shown_path(found.path)} is {size} bytes, more than the {MAX_FIXTURE_BYTES} "
            "readiness ships from outside the application; put it inside the application",
        )
    return Fixture(label=value, file=found, index=index)


def _fixture_name(s: Section, value: str, name: str) -> str:
    """``name`` (what Django gets on the server host), when its characters are those of
    ordinary file names."""
    if not _FIXTURE_NAME.fullmatch(name):
        raise s.error(
            "fixtures",
            f"{shown(value)}: a fixture's name may hold letters, digits and ._+-/ only "
            "(it is given to Django on the server host)",
        )
    return name


def _label_hint(label: str) -> str:
    if label.endswith(FIXTURE_SUFFIXES):
        return f"Django looks for {shown(label)}"
    return f"Django looks for {shown(label + '.json')} (or .yaml, .xml)"


def read_fixture(fixture: Fixture) -> bytes:
    """The bytes of a shipped fixture; a file that went away since the inventory was read
    is the user's to fix, so a ConfigError naming it and the field."""
    assert fixture.file is not None
    try:
        with fixture.file.path.open("rb") as handle:
            data = handle.read(MAX_FIXTURE_BYTES + 1)
    except OSError as err:
        raise ConfigError(
            f"cannot read {shown_path(fixture.file.path)} ({err.strerror})",
            field=fixture.file.field,
        ) from None
    if len(data) > MAX_FIXTURE_BYTES:
        raise ConfigError(
            f"{shown_path(fixture.file.path)} grew past {MAX_FIXTURE_BYTES} bytes",
            field=fixture.file.field,
        )
    return data


def is_file(path: Path) -> bool:
    """``Path.is_file`` that says no for a name the system cannot even look up (too
    long), instead of raising: a user's value is judged, never a traceback."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _label_found(source: Path, label: str) -> bool | None:
    """Whether a file Django could load for ``label`` exists in the application (any
    app's fixtures/ or a FIXTURE_DIRS folder inside it): ``label.json``, ``.json.gz``...
    Without this, a missing label fails only when the server starts on the host. None
    when the application is too large to search to the end."""
    seen = 0
    for _folder, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if d not in _NOT_SEARCHED and not d.endswith(".egg-info")]
        for name in files:
            base = name.rsplit(".", 1)[0] if name.endswith(COMPRESSION_SUFFIXES) else name
            if base == label and label.endswith(FIXTURE_SUFFIXES):
                return True
            if base.startswith(label + ".") and base[len(label) :] in FIXTURE_SUFFIXES:
                return True
        seen += len(files)
        if seen > _MAX_SEARCHED:
            return None  # too big to search: Django will say it at start, as before
    return False
