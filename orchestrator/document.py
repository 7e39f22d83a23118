"""Safe YAML documents that remember where every value came from.

Inventories and suites are user input, possibly hostile: they are read with PyYAML's
safe constructor only (``!!python/object`` and friends are refused), bounded in size
and node count (alias bombs), and every value keeps its line so that a validation error
can name the file, the line and the field. :class:`Section` is the small reader the
inventory and suite loaders use: typed getters, and an error for every unknown key.

Every way a hostile file can break the reader is a :class:`ConfigError` here, before any
value reaches a loader: a path too long for the kernel, a special file (a device, a FIFO,
``/proc``), bytes that are not UTF-8, a NUL or other control character, a value PyYAML
cannot build (``2001-02-30``, a 5,000-digit integer), nesting deeper than the parser's
stack. A loader that gets a document from here only has to check meanings.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from orchestrator.exceptions import ConfigError

MAX_BYTES = 1 << 20
MAX_NODES = 20_000
MAX_DEPTH = 50
# The kernel's limits (PATH_MAX counts the final NUL, NAME_MAX one component), in bytes.
MAX_PATH_BYTES = 4095
MAX_NAME_BYTES = 255
# Files the kernel makes up as they are read: never an inventory, whatever their mode says
# (devices are refused for not being regular files).
_PSEUDO_ROOTS = ("/proc", "/sys")

T = TypeVar("T")


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting a value in a message.

    Messages are one paragraph for a terminal: a 1 MiB string must not be echoed whole,
    and ``repr`` of an integer of more than 4,300 digits (YAML's ``0b111...``) raises.
    """
    try:
        text = repr(value)
    except ValueError:
        size = value.bit_length() if isinstance(value, int) else 0
        return f"<an integer of {size} bits>"
    if len(text) <= limit:
        return text
    return f"{text[: limit - 24]}...{text[-12:]} ({len(text)} characters)"


def shown_path(path: str | Path, limit: int = 160) -> str:
    """A path for a message: as it is when it is printable and of a sane length, else
    quoted (a newline in a folder name must not split the message) or cut to its ends."""
    text = str(path)
    if not text.isprintable():
        return shown(text, limit)
    if len(text) <= limit:
        return text
    return f"{text[:100]}...{text[-40:]} ({len(text)} characters)"


def expand_user(text: str) -> Path:
    """``Path(text).expanduser()``; an unknown ``~user`` is a ConfigError, not a crash."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # Python cannot find that user's home folder
        raise ConfigError(f"{shown(text)} starts with a user this machine does not know") from None


def path_problem(text: str) -> str | None:
    """Why ``text`` cannot name a file on this system, or None.

    Checked before any system call: an embedded NUL makes Python raise ValueError, an
    over-long path OSError, and undecodable characters break printing it back.
    """
    if "\0" in text:
        return "the path contains a NUL character"
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid UTF-8"
    if len(raw) > MAX_PATH_BYTES:
        return f"the path is {len(raw)} bytes long; the system allows {MAX_PATH_BYTES}"
    if any(len(part) > MAX_NAME_BYTES for part in raw.split(b"/")):
        return f"a name in the path is longer than the system's {MAX_NAME_BYTES} bytes"
    return None


@dataclass(frozen=True)
class Located:
    """A YAML value (a plain Python value, or dict/list of Located) and its 1-based line."""

    value: Any
    line: int


def _child(path: str, key: str) -> str:
    """The dotted field name of ``key`` under ``path``; a key no one would type (a newline,
    300 characters) is quoted, so that a message stays one short paragraph."""
    if not (key.isprintable() and len(key) <= 64):
        key = shown(key, 40)
    return f"{path}.{key}" if path else key


class _Builder:
    """Turns a composed node graph into Located values, with a node budget.

    Each value is built knowing its field name (``hosts[0].address``), so that a value
    refused here is reported as the loaders report theirs: file, line and field.
    """

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.count = 0
        self.active: set[int] = set()

    def error(self, message: str, line: int, field: str) -> ConfigError:
        if len(field) > 80:  # fifty levels of a[0][0]... would be the whole message
            field = f"{field[:40]}...{field[-30:]}"
        return ConfigError(message, file=self.file, line=line, field=field or None)

    def build(self, node: yaml.Node, depth: int = 0, field: str = "") -> Located:
        self.count += 1
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH:
            raise self.error(f"values are nested more than {MAX_DEPTH} levels deep", line, field)
        if self.count > MAX_NODES:
            raise self.error(f"document has more than {MAX_NODES} values", line, field)
        if id(node) in self.active:
            raise self.error("recursive YAML alias", line, field)
        if isinstance(node, yaml.ScalarNode):
            return Located(self._scalar(node, line, field), line)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self._check_tag(node, "tag:yaml.org,2002:seq", line, field)
                items = [
                    self.build(item, depth + 1, f"{field}[{index}]")
                    for index, item in enumerate(node.value)
                ]
                return Located(items, line)
            if isinstance(node, yaml.MappingNode):
                self._check_tag(node, "tag:yaml.org,2002:map", line, field)
                return Located(self._mapping(node, depth, field), line)
        finally:
            self.active.discard(id(node))
        raise self.error("unsupported YAML node", line, field)  # pragma: no cover

    def _mapping(self, node: yaml.MappingNode, depth: int, field: str) -> dict[str, Located]:
        mapping: dict[str, Located] = {}
        for key_node, value_node in node.value:
            key = self.build(key_node, depth + 1, field)
            if not isinstance(key.value, str):
                hint = ""
                if isinstance(key.value, bool):  # YAML 1.1 reads on/off/yes/no as booleans
                    hint = f" (the key {key_node.value!r} reads as a boolean: quote it)"
                raise self.error(
                    f"keys must be strings, got {shown(key.value)}{hint}", key.line, field
                )
            if key.value in mapping:
                raise self.error(f"duplicate key {shown(key.value)}", key.line, field)
            mapping[key.value] = self.build(value_node, depth + 1, _child(field, key.value))
        return mapping

    def _scalar(self, node: yaml.ScalarNode, line: int, field: str) -> Any:
        """The scalar's value; one that PyYAML cannot build, or a string no file name or
        command can hold, is a ConfigError at its line."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            raise self.error(_yaml_problem(err), line, field) from None
        except Exception as err:
            # PyYAML's scalar constructors raise whatever the conversion raises: ValueError
            # for 2001-02-30 or a 5,000-digit integer, AttributeError for `!!timestamp x`.
            kind = node.tag.rsplit(":", 1)[-1]
            raise self.error(f"invalid {kind} value ({type(err).__name__})", line, field) from None
        if isinstance(value, str):
            if "\0" in value:  # written as the escape "\0": no path or argv can hold it
                raise self.error("contains a NUL character", line, field)
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # "\ud800": a lone surrogate, not a character
                raise self.error(
                    "contains an invalid character (a lone UTF-16 surrogate)", line, field
                ) from None
        return value

    def _check_tag(self, node: yaml.Node, expected: str, line: int, field: str) -> None:
        if node.tag != expected:
            raise self.error(f"tag {shown(node.tag)} is not allowed", line, field)


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"invalid YAML: {problem}"


def _line_at(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _deep_line(text: str) -> int | None:
    """The line where nesting first passes :data:`MAX_DEPTH`, found with the scanner alone.

    PyYAML's composer recurses once per level, so a document nested a few hundred levels
    deep exhausts Python's stack before the builder can count; the scanner does not
    recurse, so it can say where that happened.
    """
    opening = (
        yaml.BlockMappingStartToken,
        yaml.BlockSequenceStartToken,
        yaml.FlowMappingStartToken,
        yaml.FlowSequenceStartToken,
    )
    closing = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, opening):
                depth += 1
                if depth > MAX_DEPTH:
                    return int(token.start_mark.line) + 1
            elif isinstance(token, closing):
                depth -= 1
    except yaml.YAMLError:
        return None
    return None


def parse(text: str, file: str) -> Located:
    """Parse one YAML document; every problem is a ConfigError naming file and line."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_BYTES:
        line = raw[:MAX_BYTES].count(b"\n") + 1
        raise ConfigError(f"file is larger than {MAX_BYTES} bytes", file=file, line=line)
    nul = text.find("\0")
    if nul >= 0:  # PyYAML would say "special characters are not allowed" without a line
        raise ConfigError(
            "contains a NUL character: is this a YAML text file?",
            file=file,
            line=_line_at(text, nul),
        )
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # checks every character up front
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(
                f"values are nested more than {MAX_DEPTH} levels deep",
                file=file,
                line=_deep_line(text),
            ) from None
        if node is None:
            raise ConfigError("file is empty (no YAML document)", file=file, line=1)
        return _Builder(loader, file).build(node)
    except yaml.reader.ReaderError as err:
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise ConfigError(
            f"invalid YAML: control character #x{code:04x} is not allowed",
            file=file,
            line=_line_at(text, err.position),
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = mark.line + 1 if mark else None
        raise ConfigError(_yaml_problem(err), file=file, line=where) from None
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_problem(err), file=file) from None
    finally:
        if loader is not None:
            loader.dispose()


def load(path: Path) -> Located:
    """Read (:func:`read_text`) and :func:`parse` a file; whatever stands there instead
    of a YAML file is a ConfigError."""
    return parse(read_text(path), str(path))


def read_text(path: Path, what: str = "YAML") -> str:
    """The UTF-8 text of a user's file; whatever stands there instead is a ConfigError.

    The file is opened without blocking (a FIFO must not hang the run) and checked on
    the open descriptor, so what is read is what was checked; files of ``/proc`` and
    ``/sys`` look regular but are made up by the kernel (``/proc/self/environ`` holds
    the environment), so they are refused by where they resolve to. ``what`` the file
    should hold, for that message.
    """
    name = str(path)
    problem = path_problem(name)
    if problem:
        raise ConfigError(problem, file=shown_path(name))
    real = os.path.realpath(name)
    for root in _PSEUDO_ROOTS:
        if real == root or real.startswith(root + "/"):
            raise ConfigError(
                f"is not a regular file: {root} holds files the kernel makes up, not {what}",
                file=name,
            )
    data = _read_bytes(name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:  # say where, never which bytes: they may be secrets
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError("is not UTF-8 text", file=name, line=line) from None


def _read_bytes(name: str) -> bytes:
    """At most MAX_BYTES of a regular file, opened without blocking."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError("file not found", file=name) from None
    except OSError as err:
        raise ConfigError(f"cannot open the file ({err.strerror})", file=name) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder, a device, a FIFO
            raise ConfigError("is not a regular file", file=name)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as err:
        raise ConfigError(f"cannot read the file ({err.strerror})", file=name) from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise ConfigError(f"file is larger than {MAX_BYTES} bytes", file=name)
    return data


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}


class Section:
    """A mapping being validated: take each known key once, then :meth:`finish`.

    ``path`` is the dotted field name used in messages (``hosts[1].roles``).
    """

    def __init__(self, located: Located, *, file: str, path: str = "") -> None:
        if not isinstance(located.value, dict):
            raise ConfigError(
                "must be a mapping of keys to values",
                file=file,
                line=located.line,
                field=path or None,
            )
        self._items: dict[str, Located] = located.value
        self.file = file
        self.path = path
        self.line = located.line
        self._taken: set[str] = set()

    def field(self, key: str) -> str:
        return _child(self.path, key)

    def error(self, key: str, message: str) -> ConfigError:
        """An error about ``key`` at its line (or the section's, when the key is absent)."""
        item = self._items.get(key)
        return ConfigError(
            message, file=self.file, line=item.line if item else self.line, field=self.field(key)
        )

    def has(self, key: str) -> bool:
        return key in self._items

    def raw(self, key: str) -> Located | None:
        self._taken.add(key)
        return self._items.get(key)

    def get(
        self, key: str, kind: type[T], default: T | None = None, *, required: bool = False
    ) -> T:
        """The value of ``key`` checked to be of ``kind``; bool is never taken for int."""
        item = self.raw(key)
        if item is None or item.value is None:
            if required or default is None:
                raise self.error(key, "is required")
            return default
        value = item.value
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error(
                key, f"must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {shown(value)}"
            )
        return value  # type: ignore[no-any-return]

    def optional(self, key: str, kind: type[T]) -> T | None:
        item = self._items.get(key)
        if item is None or item.value is None:
            self._taken.add(key)
            return None
        return self.get(key, kind)

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}; got {shown(value)}")
        return value

    def string_list(self, key: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """A list of strings; a single string is accepted as a list of one."""
        item = self.raw(key)
        if item is None or item.value is None:
            if default is None:
                raise self.error(key, "is required")
            return default
        if isinstance(item.value, str):
            return (item.value,)
        if not isinstance(item.value, list):
            raise self.error(key, "must be a list of strings")
        out = []
        for index, element in enumerate(item.value):
            if not isinstance(element.value, str):
                raise ConfigError(
                    f"must be a string, got {shown(element.value)}",
                    file=self.file,
                    line=element.line,
                    field=f"{self.field(key)}[{index}]",
                )
            out.append(element.value)
        return tuple(out)

    def section(self, key: str, *, required: bool = False) -> Section | None:
        item = self.raw(key)
        if item is None or item.value is None:
            if required:
                raise self.error(key, "is required")
            return None
        return Section(item, file=self.file, path=self.field(key))

    def sections(self, key: str) -> Iterator[Section]:
        """Each mapping of a required, non-empty list."""
        item = self.raw(key)
        if item is None or not isinstance(item.value, list) or not item.value:
            raise self.error(key, "must be a non-empty list")
        for index, element in enumerate(item.value):
            yield Section(element, file=self.file, path=f"{self.field(key)}[{index}]")

    def string_map(self, key: str) -> dict[str, str]:
        """A mapping of string keys to scalar values, all turned into strings."""
        sub = self.section(key)
        if sub is None:
            return {}
        out: dict[str, str] = {}
        for name, item in sub._items.items():
            value = item.value
            if not isinstance(value, str | int | float):  # bool is an int
                raise sub.error(name, "must be a string, number or boolean")
            try:
                out[name] = str(value).lower() if isinstance(value, bool) else str(value)
            except ValueError:  # an integer of more than 4,300 digits
                raise sub.error(name, "is a number too large to write out") from None
            sub._taken.add(name)
        return out

    def finish(self) -> None:
        """Refuse keys nobody asked for: a typo must not be silently ignored."""
        unknown = [k for k in self._items if k not in self._taken]
        if unknown:
            known = ", ".join(sorted(self._taken))
            raise self.error(unknown[0], f"unknown key (known keys here: {known})")
