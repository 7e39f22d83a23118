"""Safe YAML with lines: hostile documents are refused with the file and line named."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.document import MAX_NODES, Section, expand_user, load, parse
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


# --------------------------------------------------------------------------- issue 8
# What stands where a YAML file should, or a document PyYAML cannot build, is a
# ConfigError naming the file (and the line, when there is one): never "internal error".


def test_a_nul_byte_in_the_text_is_refused_at_its_line() -> None:
    with pytest.raises(ConfigError, match=r"^f\.yaml, line 3: contains a NUL character"):
        parse("a: 1\nb: 2\nc: x\x00y\n", "f.yaml")


def test_a_nul_written_as_an_escape_is_refused_at_its_field() -> None:
    with pytest.raises(ConfigError, match=r"^f\.yaml, line 2, field 'a\.b': contains a NUL"):
        parse('a:\n  b: "app\\0x"\n', "f.yaml")


def test_other_control_characters_are_refused_at_their_line() -> None:
    with pytest.raises(
        ConfigError, match=r"^f\.yaml, line 2: invalid YAML: control character #x0001"
    ):
        parse("a: 1\nb: \x01\n", "f.yaml")


@pytest.mark.parametrize(
    "text,says",
    [
        ("a: 2001-02-30\n", "invalid timestamp value"),
        ("a: !!timestamp nope\n", "invalid timestamp value"),
        ("a: !!float x\n", "invalid float value"),
        ("a: 1" + "0" * 5000 + "\n", "invalid int value"),
        ('a: "\\ud800"\n', "lone UTF-16 surrogate"),
    ],
    ids=["february 30", "timestamp tag", "float tag", "5000 digits", "lone surrogate"],
)
def test_values_pyyaml_cannot_build_are_config_errors(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=rf"^f\.yaml, line 1, field 'a': .*{says}"):
        parse(text, "f.yaml")


def test_a_huge_integer_is_quoted_short_in_a_message() -> None:
    doc = parse("port: 0x" + "f" * 3600 + "\n", "f.yaml")
    s = Section(doc, file="f.yaml")
    with pytest.raises(ConfigError, match=r"got <an integer of 14400 bits>$"):
        s.get("port", str)


def test_nesting_deeper_than_the_parser_stack_is_refused_with_a_line() -> None:
    text = "a: 1\nb: " + "[" * 2000 + "]" * 2000 + "\n"
    with pytest.raises(ConfigError, match=r"^f\.yaml, line 2: values are nested more than 50"):
        parse(text, "f.yaml")


def test_an_empty_document_names_line_1() -> None:
    with pytest.raises(ConfigError, match=r"^f\.yaml, line 1: file is empty"):
        parse("# only a comment\n", "f.yaml")


def test_proc_files_are_refused_although_they_look_regular() -> None:
    """/proc/self/environ holds the environment (secrets): never parsed, never quoted."""
    with pytest.raises(ConfigError) as info:
        load(Path("/proc/self/environ"))
    assert str(info.value) == (
        "/proc/self/environ: is not a regular file: /proc holds files the kernel makes up, not YAML"
    )


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "inv.yaml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load(tmp_path / "inv.yaml")


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a regular file"):
        load(tmp_path)


def test_a_5000_character_path_is_refused_short(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / ("a" * 5000 + ".yaml"))
    message = str(info.value)
    assert "bytes long; the system allows 4095" in message and len(message) < 300


def test_a_nul_in_a_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the path contains a NUL character"):
        load(tmp_path / "a\x00b.yaml")


def test_bytes_that_are_not_utf8_are_refused_at_their_line_never_quoted(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_bytes(b"a: 1\nb: s3cr\xe9t\n")
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "f.yaml")
    assert str(info.value) == f"{tmp_path / 'f.yaml'}, line 2: is not UTF-8 text"


def test_an_unknown_user_home_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="user this machine does not know"):
        expand_user("~nosuchuser-rdy/x.yaml")


def test_keys_no_one_would_type_are_quoted_in_the_field_name() -> None:
    s = Section(parse('name: x\n"ro\\nles": y\n', "f.yaml"), file="f.yaml", path="hosts[0]")
    s.get("name", str)
    with pytest.raises(ConfigError) as info:
        s.finish()
    assert "\n" not in str(info.value) and "field 'hosts[0].'ro\\nles''" in str(info.value)
