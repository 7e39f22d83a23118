"""Check a written run record against the committed JSON Schema (issue 11).

Every test that reads a ``run.json`` passes it through :func:`assert_valid_record`, so a
writer that puts a string where a count belongs, misspells a key, or forgets to bump the
schema fails the test that made it, not a reader of the file months later. The committed
file is used (not one generated on the spot): it is what users validate against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

# jsonschema ships no type information (no py.typed); this module is its one importer.
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from orchestrator.schema import SCHEMA_FILE


@cache
def _validator() -> Any:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def record_errors(data: Mapping[str, Any]) -> list[str]:
    """Every way ``data`` breaks the schema, one ``/json/pointer: message`` line each."""
    errors: Iterable[Any] = _validator().iter_errors(data)
    return sorted(line for error in errors for line in _lines(error))


def _lines(error: Any) -> list[str]:
    """An error as ``/pointer: message`` lines. For an ``X | None`` that failed, why X did:
    ``anyOf`` alone says only "not valid under any of the given schemas", and "not of type
    'null'" is never the interesting half."""
    inner = [e for e in error.context or () if (e.validator, e.validator_value) != ("type", "null")]
    if inner:
        return [line for e in inner for line in _lines(e)]
    pointer = "/" + "/".join(str(part) for part in error.absolute_path)
    return [f"{pointer}: {error.message}"]


def assert_valid_record(data: Mapping[str, Any]) -> None:
    """Fail with every schema error of a run record listed, not just the first."""
    errors = record_errors(data)
    assert not errors, f"run record breaks {SCHEMA_FILE.name}:\n" + "\n".join(errors)


def schema_problems(schema: Mapping[str, Any]) -> list[str]:
    """How a schema breaks the draft 2020-12 metaschema (empty: it is a valid schema)."""
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    return sorted(line for error in meta.iter_errors(schema) for line in _lines(error))
