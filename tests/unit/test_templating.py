"""The pages' one display filter: what a test or a host said, shown as it is."""

from __future__ import annotations

from pathlib import Path

import jinja2

from orchestrator.templating import _Compiled, environment, visible


def test_control_characters_are_spelled_out_not_hidden() -> None:
    assert visible("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert visible("bell\x07 del\x7f c1\x9b") == "bell\\x07 del\\x7f c1\\x9b"


def test_a_bidi_override_cannot_reverse_what_the_page_says() -> None:
    assert visible("ok\u202edeliaf") == "ok\\u202edeliaf"
    assert visible("a\u2066b\u2069") == "a\\u2066b\\u2069"


def test_text_lines_and_tabs_and_any_script_stay_as_they_are() -> None:
    for text in ("line one\n\tline two", "naïve 日本語 <script>", ""):
        assert visible(text) == text
    assert visible(None) == ""


def test_line_and_paragraph_separators_cannot_end_a_line_in_yaml_or_a_comment() -> None:
    assert visible("name\u2028injected: x\u2029") == "name\\u2028injected: x\\u2029"


def test_a_cache_folder_that_fails_costs_a_compile_never_a_render(tmp_path: Path) -> None:
    (tmp_path / "gone").write_text("a file where the cache folder was")
    env = jinja2.Environment(
        loader=jinja2.DictLoader({"t": "{{ x }}!"}),
        bytecode_cache=_Compiled(directory=str(tmp_path / "gone")),
    )
    assert env.get_template("t").render(x="ok") == "ok!"


def test_environments_that_compile_differently_never_share_compiled_templates() -> None:
    """Jinja keys a compiled template by its name and source only: the report's escaping
    or the scripts' quoting must not come from another environment's compile."""
    report = environment("templates", autoescape=True).bytecode_cache
    plain = environment("templates").bytecode_cache
    assert isinstance(report, _Compiled) and isinstance(plain, _Compiled)
    assert report.pattern != plain.pattern
    assert environment("templates", autoescape=True).bytecode_cache is report
