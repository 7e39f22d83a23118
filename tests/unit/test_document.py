"""Safe YAML with lines: hostile documents are refused with the file and line named."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.document import MAX_NODES, Section, load, parse
from orchestrator.exceptions import ConfigError


def test_values_keep_their_lines() -> None:
    doc = parse("a: 1\nb:\n  - x\n  - y\n", "f.yaml")
    assert doc.value["a"].line == 1
    assert [item.line for item in doc.value["b"].value] == [3, 4]


def test_python_object_tags_are_refused_not_constructed() -> None:
    with pytest.raises(ConfigError, match=r"f\.yaml, line 1"):
        parse("a: !!python/object/apply:os.system ['true']\n", "f.yaml")


def test_custom_tags_on_collections_are_refused() -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        parse("a: !!python/tuple [1, 2]\n", "f.yaml")


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ConfigError, match=r"bad\.yaml, line 3: invalid YAML"):
        parse("a: 1\nb: [1, 2\nc: 3\n", "bad.yaml")


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"line 2.*duplicate key 'a'"):
        parse("a: 1\na: 2\n", "f.yaml")


def test_alias_bombs_hit_the_node_budget() -> None:
    bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\n"
    prev = "a"
    for level in "bcdefgh":
        bomb += f"{level}: &{level} [" + ",".join([f"*{prev}"] * 10) + "]\n"
        prev = level
    with pytest.raises(ConfigError, match=str(MAX_NODES)):
        parse(bomb, "bomb.yaml")


def test_empty_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load(tmp_path / "empty.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.yaml")


def test_section_reports_unknown_keys_with_field_and_line() -> None:
    s = Section(parse("name: x\nnmae: y\n", "f.yaml"), file="f.yaml", path="hosts[0]")
    s.get("name", str)
    with pytest.raises(ConfigError, match=r"line 2, field 'hosts\[0\]\.nmae': unknown key"):
        s.finish()


def test_section_types_are_strict_and_bool_is_not_an_int() -> None:
    s = Section(parse("port: true\nname: 5\n", "f.yaml"), file="f.yaml")
    with pytest.raises(ConfigError, match="'port': must be an integer"):
        s.get("port", int, 22)
    with pytest.raises(ConfigError, match="'name': must be a string"):
        s.get("name", str, required=True)
