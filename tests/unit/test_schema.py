"""run.json's JSON Schema: generated from the record, committed, and strict about records."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Union

import pytest

from orchestrator.record import SCHEMA, FlowRecord, RstRecord, RunRecord
from orchestrator.schema import (
    DIALECT,
    SCHEMA_FILE,
    WRITE_COMMAND,
    dataclass_schema,
    field_comments,
    main,
    run_schema,
)
from tests.schema_check import assert_valid_record, record_errors, schema_problems

ROOT = Path(__file__).resolve().parents[2]


def populated(hint: Any) -> Any:
    """A value of ``hint`` with every optional part filled (no None, no empty container):
    the most a writer can put in a record, so every field's schema is exercised."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return populated(next(a for a in args if a is not type(None)))
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: populated(hints[f.name]) for f in dataclasses.fields(hint)})
    if origin is list:
        return [populated(args[0])]
    if origin is dict:
        return {"k": populated(args[1])}
    return {str: "x", int: 7, float: 1.5, bool: True}[hint]


def full_record() -> dict[str, Any]:
    record = populated(RunRecord)
    record.schema = SCHEMA
    return json.loads(json.dumps(record.to_json()))  # type: ignore[no-any-return]


def minimal_record() -> dict[str, Any]:
    record = RunRecord("r1", "single", "/x/single.yaml", "broker", "all-on-one", "2026-01-01")
    return json.loads(json.dumps(record.to_json()))  # type: ignore[no-any-return]


def reachable_dataclasses(cls: type[Any]) -> set[type[Any]]:
    """Every dataclass a record of ``cls`` can hold, however deeply nested."""
    found: set[type[Any]] = set()
    todo: list[Any] = list(typing.get_type_hints(cls).values())
    while todo:
        hint = todo.pop()
        todo.extend(typing.get_args(hint))
        if dataclasses.is_dataclass(hint) and isinstance(hint, type) and hint not in found:
            found.add(hint)
            todo.extend(typing.get_type_hints(hint).values())
    return found


def nulls(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}/{i}")]
    return [path] if value is None else []


def test_the_committed_schema_is_the_one_the_record_generates() -> None:
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == run_schema(), (
        f"{SCHEMA_FILE.name} is stale: orchestrator/record.py changed; run `{WRITE_COMMAND}`"
    )


def test_the_schema_is_valid_draft_2020_12_with_an_id_that_is_never_fetched() -> None:
    schema = run_schema()
    assert schema["$schema"] == DIALECT and schema_problems(schema) == []
    assert schema["$id"].startswith("https://") and ".invalid/" in schema["$id"]
    assert schema["title"] and schema["description"]


def test_a_record_with_every_optional_field_filled_is_valid() -> None:
    data = full_record()
    assert nulls(data) == []  # really every field: nothing left at None
    assert_valid_record(data)


def test_a_record_with_only_the_required_fields_is_valid() -> None:
    assert_valid_record(minimal_record())


def test_a_string_where_a_count_belongs_is_refused_at_its_path() -> None:
    data = full_record()
    data["layers"][0]["tests"]["total"] = "x"
    assert record_errors(data) == ["/layers/0/tests/total: 'x' is not of type 'integer'"]


def test_a_boolean_is_not_a_count_and_a_fraction_is_not_an_integer() -> None:
    data = full_record()
    data["repeat"] = True
    data["deploy"][0]["bytes_sent"] = 1.5
    assert record_errors(data) == [
        "/deploy/0/bytes_sent: 1.5 is not of type 'integer', 'null'",
        "/repeat: True is not of type 'integer'",
    ]


def test_an_integer_is_a_valid_float_field() -> None:
    data = full_record()
    data["layers"][0]["duration_s"] = 2
    data["ledger"]["errors"][0]["rst"]["at"] = 1700000000
    assert record_errors(data) == []


def test_a_wrong_value_inside_an_optional_record_names_the_inner_field() -> None:
    data = full_record()
    data["ledger"]["resets"][0]["rst"]["from"] = 1
    assert record_errors(data) == ["/ledger/resets/0/rst/from: 1 is not of type 'string'"]


def test_an_unknown_key_is_refused_at_the_top_and_inside() -> None:
    data = full_record()
    data["verdit"] = "ready"
    data["hosts"][0]["adress"] = "10.0.0.2"
    assert record_errors(data) == [
        "/: Additional properties are not allowed ('verdit' was unexpected)",
        "/hosts/0: Additional properties are not allowed ('adress' was unexpected)",
    ]


def test_a_record_of_another_schema_version_is_refused() -> None:
    data = minimal_record()
    data["schema"] = "readiness.run/3"
    assert record_errors(data) == [f"/schema: {SCHEMA!r} was expected"]


def test_a_record_without_its_version_or_a_required_field_is_refused() -> None:
    data = minimal_record()
    del data["schema"], data["run_id"]
    assert record_errors(data) == [
        "/: 'run_id' is a required property",
        "/: 'schema' is a required property",
    ]


def test_the_helper_lists_every_error_in_its_message() -> None:
    data = full_record()
    data["repeat"] = "twice"
    data["lab"]["subnet"] = 24
    with pytest.raises(AssertionError) as failure:
        assert_valid_record(data)
    assert "/lab/subnet: 24 is not of type 'string'" in str(failure.value)
    assert "/repeat: 'twice' is not of type 'integer'" in str(failure.value)


def test_every_record_class_is_one_definition_with_a_description() -> None:
    defs = run_schema()["$defs"]
    classes = reachable_dataclasses(RunRecord)
    assert sorted(defs) == sorted(cls.__name__ for cls in classes)
    undocumented = sorted(name for name, schema in defs.items() if not schema.get("description"))
    assert undocumented == [], f"give {undocumented} a docstring in orchestrator/record.py"


def test_a_field_named_from_is_written_and_required_as_from() -> None:
    defs = run_schema()["$defs"]
    for cls in (RstRecord, FlowRecord):
        schema = defs[cls.__name__]
        assert "from" in schema["properties"] and "from_" not in schema["properties"]
        assert "from" in schema["required"]


def test_optional_fields_accept_null_and_defaults_are_documented() -> None:
    layer = run_schema()["$defs"]["LayerRecord"]["properties"]
    assert layer["start_s"]["type"] == ["number", "null"]
    assert layer["repeat"] == {
        "description": layer["repeat"]["description"],
        "type": "integer",
        "default": 1,
    }
    attribution = run_schema()["$defs"]["AttributionRecord"]["properties"]
    assert attribution["rst"]["anyOf"] == [{"$ref": "#/$defs/RstRecord"}, {"type": "null"}]


def test_the_comments_above_a_field_in_record_py_become_its_description() -> None:
    defs = run_schema()["$defs"]
    assert defs["LedgerRecord"]["properties"]["captures"]["description"] == (
        "layer -> host -> capture"
    )
    assert defs["CaptureRecord"]["properties"]["status"]["description"] == (
        "captured | partial | unavailable | failed"
    )
    log = defs["HostLayerRecord"]["properties"]["log"]["description"]
    assert log.startswith("The layer's output as stored") and "``log`` is" in log


@dataclasses.dataclass
class Commented:
    """A class whose comments show what counts as a field's."""

    # Two lines above
    # make one description.
    a: str = "# not a comment"  # and one at its end
    b: int = 0  # pragma: no cover

    # After a blank line, but directly above c.
    c: int = 0
    # Ends a paragraph, so it is not d's.

    d: int = 0


def test_comment_lines_join_strings_are_not_comments_and_pragmas_are_dropped() -> None:
    assert field_comments(Commented) == {
        "a": "Two lines above make one description. and one at its end",
        "c": "After a blank line, but directly above c.",
    }


@dataclasses.dataclass
class Node:
    """A record holding records of its own kind."""

    children: list[Node] = dataclasses.field(default_factory=list)
    weights: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Unsupported:
    """A field type JSON has no schema for here."""

    when: set[str]


def test_a_class_that_holds_itself_is_one_definition_referring_to_itself() -> None:
    schema = dataclass_schema(Node)
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert schema["properties"]["weights"]["additionalProperties"] == {"type": "number"}


def test_a_field_type_without_a_schema_is_an_error_not_an_open_door() -> None:
    with pytest.raises(TypeError, match="set"):
        dataclass_schema(Unsupported)


def test_check_fails_in_one_line_that_says_to_write_and_write_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "run.schema.json"
    stale.write_text('{"title": "old"}\n')
    assert main([], schema_file=stale) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert WRITE_COMMAND in line and str(stale) in line
    assert main(["--write"], schema_file=stale) == 0
    assert main(["--check"], schema_file=stale) == 0
    assert json.loads(stale.read_text()) == run_schema()


def test_check_fails_when_the_file_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check"], schema_file=tmp_path / "run.schema.json") == 1
    assert "is missing" in capsys.readouterr().err


def test_the_schema_file_is_shipped_with_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert SCHEMA_FILE.name in config["tool"]["setuptools"]["package-data"]["orchestrator"]
    assert SCHEMA_FILE.parent == ROOT / "orchestrator"


def test_the_field_comment_reader_needs_no_source_to_work_without_it() -> None:
    namespace: dict[str, Any] = {}
    exec(  # a class with no source file behind it, as in a frozen install
        textwrap.dedent(
            """
            import dataclasses
            @dataclasses.dataclass
            class NoSource:
                x: int = 0
            """
        ),
        namespace,
    )
    assert field_comments(namespace["NoSource"]) == {}
