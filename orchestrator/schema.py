"""The JSON Schema of ``run.json``, generated from the typed record (issue 11).

:mod:`orchestrator.record` owns the record. Writing its schema by hand would give it a
second owner that drifts the day someone adds a field; so this module walks the record's
dataclasses (their type hints, JSON names, defaults, docstrings and the ``#`` comments
above each field) and the schema is whatever they say. The result is committed as
``orchestrator/run.schema.json`` so that a reader of a run needs no Python to learn what a
field means, and the tests fail while the committed file and the record disagree.

``python -m orchestrator.schema`` checks the committed file (exit 1 when it is stale);
``--write`` regenerates it.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Union

# The record's own rule for a field's JSON key: one rule, so the schema cannot disagree.
from orchestrator.record import SCHEMA, RunRecord, _json_name

SCHEMA_FILE = Path(__file__).with_name("run.schema.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Not resolvable on purpose: the schema is shipped with the package, never fetched.
SCHEMA_ID = "https://readiness.invalid/run.schema.json"
WRITE_COMMAND = "python -m orchestrator.schema --write"

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
# Comments that talk to tools, not to readers of the record.
_PRAGMA = re.compile(r"^(type:|noqa\b|pragma:|fmt:)")
_NO_DEFAULT = object()


@dataclasses.dataclass
class _Defs:
    """The ``$defs`` being collected, and which class owns each name (names must not clash)."""

    schemas: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    classes: dict[str, type[Any]] = dataclasses.field(default_factory=dict)


def run_schema() -> dict[str, Any]:
    """The schema of the record :meth:`RunRecord.to_json` writes, as a JSON-ready dict."""
    root = dataclass_schema(RunRecord)
    root["properties"]["schema"] = {
        "const": SCHEMA,
        "description": "The record's schema version; a reader refuses versions it does not know.",
    }
    # from_json cannot read a record without its version, default or not.
    root["required"] = ["schema", *root["required"]]
    description = root.pop("description", "")
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": f"readiness run record (run.json, {SCHEMA})",
        "description": f"{description} Generated from orchestrator/record.py.".strip(),
        "$comment": f"Do not edit: change orchestrator/record.py and run `{WRITE_COMMAND}`.",
        **root,
    }


def dataclass_schema(cls: type[Any]) -> dict[str, Any]:
    """A dataclass as a schema object, the dataclasses it holds under ``$defs``."""
    defs = _Defs()
    root = _object_schema(cls, defs)
    if defs.schemas:
        root["$defs"] = dict(sorted(defs.schemas.items()))
    return root


def render_schema() -> str:
    """The text of the committed file: stable key order, so a change is a readable diff."""
    return json.dumps(run_schema(), indent=2, ensure_ascii=False) + "\n"


def _object_schema(cls: type[Any], defs: _Defs) -> dict[str, Any]:
    """One dataclass as a closed object: an unknown key is a writer's typo, not data."""
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        name = _json_name(f)
        prop = {"description": comments[f.name]} if f.name in comments else {}
        prop.update(_type_schema(hints[f.name], defs))
        default = _default(f)
        if default is _NO_DEFAULT:
            required.append(name)
        elif _is_plain(default):
            prop["default"] = default
        properties[name] = prop
    summary = class_summary(cls)
    schema: dict[str, Any] = {"description": summary} if summary else {}
    schema.update(type="object", properties=properties, required=required)
    schema["additionalProperties"] = False
    return schema


def _type_schema(hint: Any, defs: _Defs) -> dict[str, Any]:
    """The schema of one type hint; a hint it does not know is an error, never ``{}``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        if len(others) == 1 and len(others) < len(args):
            return _nullable(_type_schema(others[0], defs))
        return {"anyOf": [_type_schema(a, defs) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return {"$ref": f"#/$defs/{_define(hint, defs)}"}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if origin is dict and args[0] is str:
        return {"type": "object", "additionalProperties": _type_schema(args[1], defs)}
    if hint is type(None):
        return {"type": "null"}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    raise TypeError(f"no JSON Schema for the record type {hint!r}: teach orchestrator.schema")


def _define(cls: type[Any], defs: _Defs) -> str:
    """Register a dataclass once under ``$defs`` (by class name) and return that name."""
    name = cls.__name__
    if name in defs.classes:
        if defs.classes[name] is not cls:
            raise TypeError(f"two record classes are called {name}: rename one")
        return name
    defs.classes[name] = cls  # before its fields: a class may refer to itself
    defs.schemas[name] = _object_schema(cls, defs)
    return name


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None``: a type list when X is a plain type, otherwise ``anyOf`` with null."""
    if isinstance(schema.get("type"), str) and "$ref" not in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _default(f: dataclasses.Field[Any]) -> Any:
    """The value a reader fills in when the key is absent (``_NO_DEFAULT``: required)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _NO_DEFAULT


def _is_plain(value: Any) -> bool:
    """Whether a default can be shown as JSON (a nested record's default is left out)."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def class_summary(cls: type[Any]) -> str:
    """The first paragraph of a class's docstring, on one line ("" when it has none).

    A dataclass without a docstring gets its signature as ``__doc__``: that is not a
    description, so it counts as none.
    """
    doc = cls.__doc__
    if not doc or doc.startswith(f"{cls.__name__}("):
        return ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def field_comments(cls: type[Any]) -> dict[str, str]:
    """Each field's ``#`` comments: the comment lines right above it, then one at its end.

    These comments are how record.py documents its fields; reading them here makes the
    schema the record's field reference. The source is parsed (``ast`` for the fields,
    ``tokenize`` for the comments, so a ``#`` inside a string is not one). Without source
    (a frozen install) the schema just has no field descriptions.
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = _comments_by_row(source)
    (node,) = ast.parse(source).body
    assert isinstance(node, ast.ClassDef)
    found: dict[str, str] = {}
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above: list[str] = []
        row = stmt.lineno - 1
        while row in comments and comments[row][1]:
            above.insert(0, comments[row][0])
            row -= 1
        end = stmt.end_lineno or stmt.lineno
        trailing = [
            comments[r][0]
            for r in range(stmt.lineno, end + 1)
            if r in comments and not comments[r][1]
        ]
        text = " ".join(t for t in above + trailing if t)
        if text:
            found[stmt.target.id] = text
    return found


def _comments_by_row(source: str) -> dict[int, tuple[str, bool]]:
    """Row -> (comment text, whether the comment is alone on its line); pragmas are ''."""
    rows: dict[int, tuple[str, bool]] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        text = token.string.lstrip("#").strip()
        alone = token.line.lstrip().startswith("#")
        rows[token.start[0]] = ("" if _PRAGMA.match(text) else text, alone)
    return rows


def main(argv: Sequence[str] | None = None, *, schema_file: Path = SCHEMA_FILE) -> int:
    """``--check`` (the default): exit 1 when the committed schema is stale; ``--write``."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.schema",
        description="Check or regenerate orchestrator/run.schema.json from orchestrator/record.py.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if the file is stale (default)")
    mode.add_argument("--write", action="store_true", help="rewrite the file from the record")
    args = parser.parse_args(argv)
    text = render_schema()
    try:
        committed: str | None = schema_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        committed = None
    if args.write:
        if committed != text:
            schema_file.write_text(text, encoding="utf-8")
            print(f"wrote {schema_file}")
        return 0
    if committed != text:
        state = "is missing" if committed is None else "differs from orchestrator/record.py"
        print(f"{schema_file} {state}: run `{WRITE_COMMAND}`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
