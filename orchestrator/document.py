"""Safe YAML documents that remember where every value came from.

Inventories and suites are user input, possibly hostile: they are read with PyYAML's
safe constructor only (``!!python/object`` and friends are refused), bounded in size
and node count (alias bombs), and every value keeps its line so that a validation error
can name the file, the line and the field. :class:`Section` is the small reader the
inventory and suite loaders use: typed getters, and an error for every unknown key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from orchestrator.exceptions import ConfigError

MAX_BYTES = 1 << 20
MAX_NODES = 20_000
MAX_DEPTH = 50

T = TypeVar("T")


@dataclass(frozen=True)
class Located:
    """A YAML value (a plain Python value, or dict/list of Located) and its 1-based line."""

    value: Any
    line: int


class _Builder:
    """Turns a composed node graph into Located values, with a node budget."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.count = 0
        self.active: set[int] = set()

    def build(self, node: yaml.Node, depth: int = 0) -> Located:
        self.count += 1
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"values are nested more than {MAX_DEPTH} levels deep",
                file=self.file,
                line=node.start_mark.line + 1,
            )
        line = node.start_mark.line + 1
        if self.count > MAX_NODES:
            raise ConfigError(f"document has more than {MAX_NODES} values", file=self.file)
        if id(node) in self.active:
            raise ConfigError("recursive YAML alias", file=self.file, line=line)
        if isinstance(node, yaml.ScalarNode):
            try:
                return Located(self.loader.construct_object(node, deep=True), line)
            except yaml.YAMLError as err:
                raise ConfigError(_yaml_problem(err), file=self.file, line=line) from None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self._check_tag(node, "tag:yaml.org,2002:seq", line)
                return Located([self.build(item, depth + 1) for item in node.value], line)
            if isinstance(node, yaml.MappingNode):
                self._check_tag(node, "tag:yaml.org,2002:map", line)
                mapping: dict[str, Located] = {}
                for key_node, value_node in node.value:
                    key = self.build(key_node, depth + 1)
                    if not isinstance(key.value, str):
                        raise ConfigError(
                            f"keys must be strings, got {key.value!r}",
                            file=self.file,
                            line=key.line,
                        )
                    if key.value in mapping:
                        raise ConfigError(
                            f"duplicate key '{key.value}'", file=self.file, line=key.line
                        )
                    mapping[key.value] = self.build(value_node, depth + 1)
                return Located(mapping, line)
        finally:
            self.active.discard(id(node))
        raise ConfigError("unsupported YAML node", file=self.file, line=line)  # pragma: no cover

    def _check_tag(self, node: yaml.Node, expected: str, line: int) -> None:
        if node.tag != expected:
            raise ConfigError(f"tag {node.tag!r} is not allowed", file=self.file, line=line)


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"invalid YAML: {problem}"


def parse(text: str, file: str) -> Located:
    """Parse one YAML document; every problem is a ConfigError naming file and line."""
    if len(text.encode()) > MAX_BYTES:
        raise ConfigError(f"file is larger than {MAX_BYTES} bytes", file=file)
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError("values are nested too deeply", file=file) from None
        if node is None:
            raise ConfigError("file is empty", file=file)
        return _Builder(loader, file).build(node)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise ConfigError(_yaml_problem(err), file=file, line=line) from None
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_problem(err), file=file) from None
    finally:
        loader.dispose()


def load(path: Path) -> Located:
    """Read and :func:`parse` a file; a missing or unreadable file is a ConfigError."""
    try:
        if not path.is_file():
            if not path.exists():
                raise FileNotFoundError
            raise ConfigError("is not a regular file", file=str(path))
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise ConfigError(f"file is larger than {MAX_BYTES} bytes", file=str(path))
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the file ({err})", file=str(path)) from None
    return parse(text, str(path))


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
        return f"{self.path}.{key}" if self.path else key

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
            raise self.error(key, f"must be {_TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}")
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
            raise self.error(key, f"must be one of {', '.join(choices)}; got {value!r}")
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
                    f"must be a string, got {element.value!r}",
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
            if isinstance(item.value, (dict, list)) or item.value is None:
                raise sub.error(name, "must be a string, number or boolean")
            out[name] = str(item.value).lower() if isinstance(item.value, bool) else str(item.value)
            sub._taken.add(name)
        return out

    def finish(self) -> None:
        """Refuse keys nobody asked for: a typo must not be silently ignored."""
        unknown = [k for k in self._items if k not in self._taken]
        if unknown:
            known = ", ".join(sorted(self._taken))
            raise self.error(unknown[0], f"unknown key (known keys here: {known})")
