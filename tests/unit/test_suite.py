"""Suite validation: layers in order, defaults, and refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.exceptions import ConfigError
from orchestrator.suite import load_suite, resolve
from tests.unit.conftest import SUITE

Write = Callable[[str, str], Path]


def test_layers_keep_their_order_and_defaults(write_yaml: Write) -> None:
    suite = load_suite(write_yaml("s.yaml", SUITE))
    assert [layer.name for layer in suite.layers] == ["unit", "pure", "rest"]
    unit, pure, rest = suite.layers
    assert unit.gate == "stop" and pure.gate == "continue"
    assert rest.needs == ("database", "server")
    assert unit.timeout_s == 1800 and unit.junit


@pytest.mark.parametrize(
    "change,field",
    [
        (("role: server, command: python -m pytest,", "role: db, command: x,"), "layers[0].role"),
        (("gate: continue", "gate: maybe"), "layers[1].gate"),
        (("needs: [database]", "needs: [network]"), "layers[0].needs"),
        (("name: pure", "name: unit"), "layers"),
        (("name: pure", "name: 'Pure Layer!'"), "layers[1].name"),
        (("gate: continue", "timeout: 0"), "layers[1].timeout"),
        (("command: python -m pytest pure", "command: ''"), "layers[1].command"),
    ],
)
def test_bad_layers_are_refused_naming_the_field(
    write_yaml: Write, change: tuple[str, str], field: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"field '{field}'")):
        load_suite(write_yaml("s.yaml", SUITE.replace(*change)))


def test_suite_names_resolve_under_suites(tmp_path: Path) -> None:
    assert resolve("broker", root=tmp_path) == tmp_path / "suites" / "broker.yaml"
    assert resolve("my.yaml", root=tmp_path, relative_to=tmp_path / "inv") == (
        tmp_path / "inv" / "my.yaml"
    )
