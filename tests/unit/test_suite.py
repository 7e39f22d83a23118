"""Suite validation: layers in order, defaults, and refusals."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.evidence import TRANSPORT_ERRNOS
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
    assert unit.max_output_mb == 20


def test_a_layer_may_set_its_output_cap(write_yaml: Write) -> None:
    text = SUITE.replace("gate: continue", "gate: continue, max_output_mb: 200")
    assert [layer.max_output_mb for layer in load_suite(write_yaml("s.yaml", text)).layers] == [
        20,
        200,
        20,
    ]


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
        (("gate: continue", "max_output_mb: 0"), "layers[1].max_output_mb"),
        (("gate: continue", "max_output_mb: 1025"), "layers[1].max_output_mb"),
        (("gate: continue", "max_output_mb: 2.5"), "layers[1].max_output_mb"),
        (("gate: continue", "retry: {count: 0}"), "layers[1].retry.count"),
        (("gate: continue", "retry: {errors: [ECONNRESET]}"), "layers[1].retry.count"),
        (("gate: continue", "retry: {count: 1, errors: [EAGAIN]}"), "layers[1].retry.errors"),
        (("gate: continue", "retry: {count: 1, backoff: -1}"), "layers[1].retry.backoff"),
        (("gate: continue", "retry: {count: 1, tries: 2}"), "layers[1].retry.tries"),
        (("gate: continue", "retry: {count: 1, on: [ECONNRESET]}"), "layers[1].retry"),
    ],
)
def test_bad_layers_are_refused_naming_the_field(
    write_yaml: Write, change: tuple[str, str], field: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"field '{field}'")):
        load_suite(write_yaml("s.yaml", SUITE.replace(*change)))


def test_a_layer_may_retry_tests_that_fail_with_a_transport_error(write_yaml: Write) -> None:
    text = SUITE.replace(
        "gate: continue", "gate: continue, retry: {count: 2, errors: [ECONNRESET], backoff: 0.5}"
    )
    unit, pure, _ = load_suite(write_yaml("s.yaml", text)).layers
    assert unit.retry is None
    assert pure.retry is not None
    assert (pure.retry.count, pure.retry.on, pure.retry.backoff_s) == (2, ("ECONNRESET",), 0.5)
    assert json.loads(pure.retry.to_env()) == {"count": 2, "on": ["ECONNRESET"], "backoff_s": 0.5}


def test_a_retry_policy_without_errors_retries_every_transport_error(write_yaml: Write) -> None:
    text = SUITE.replace("gate: continue", "gate: continue, retry: {count: 1}")
    retry = load_suite(write_yaml("s.yaml", text)).layers[1].retry
    assert retry is not None and retry.on == TRANSPORT_ERRNOS and retry.backoff_s == 0


def test_suite_names_resolve_under_suites(tmp_path: Path) -> None:
    assert resolve("broker", root=tmp_path) == tmp_path / "suites" / "broker.yaml"
    assert resolve("my.yaml", root=tmp_path, relative_to=tmp_path / "inv") == (
        tmp_path / "inv" / "my.yaml"
    )


# --------------------------------------------------------------------------- issue 8


@pytest.mark.parametrize(
    "change,line,field",
    [
        (("name: unit,", r'name: "unit\n",'), 2, "layers[0].name"),
        (("command: python -m pytest,", r'command: "python\0 -m pytest",'), 2, "layers[0].command"),
        (("layers:", 'name: "a\\nb"\nlayers:'), 1, "name"),
    ],
    ids=["layer name ending in a newline", "NUL in a command", "suite name over two lines"],
)
def test_issue_8_suite_values_are_refused_naming_file_line_and_field(
    write_yaml: Write, change: tuple[str, str], line: int, field: str
) -> None:
    path = write_yaml("s.yaml", SUITE.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}, line {line}, field '{field}': ")


def test_a_suite_with_a_nul_byte_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(SUITE.encode() + b"  - {name: x\x00, role: server, command: x}\n")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}, line 5: contains a NUL"):
        load_suite(path)


@pytest.mark.parametrize(
    "given,says",
    [
        ("/proc/self/environ", "is not a regular file"),
        ("/tmp/" + "a" * 5000 + ".yaml", "bytes long"),
    ],
    ids=["proc environ", "5000-character path"],
)
def test_special_and_impossible_suite_files_are_config_errors(
    tmp_path: Path, given: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        load_suite(resolve(given, root=tmp_path))


def test_suite_names_are_matched_whole(tmp_path: Path) -> None:
    """A name ending in a newline is neither a name nor a path (it was a name with `$`)."""
    with pytest.raises(ConfigError, match="neither a suite name nor a path"):
        resolve("broker\n", root=tmp_path)
    with pytest.raises(ConfigError, match="user this machine does not know"):
        resolve("~nosuchuser-rdy/s.yaml", root=tmp_path)


def test_a_suite_path_with_a_line_break_is_refused_on_one_line(tmp_path: Path) -> None:
    # YAML folds a plain value over lines: "suite: ./suite.yaml\n\n  - " is "./suite.yaml\n-".
    with pytest.raises(ConfigError) as caught:
        resolve("./suite.yaml\n-", root=tmp_path, relative_to=tmp_path)
    assert "\n" not in str(caught.value) and "line break" in str(caught.value)


# --------------------------------------------------------------------------- issue 12: steps

STEP_SUITE = SUITE.replace(
    "layers:\n",
    "layers:\n"
    "  - step: collectstatic\n"
    "    role: server\n"
    "    command: python manage.py collectstatic --noinput\n"
    "    timeout: 120\n",
)


def test_a_step_entry_is_a_setup_layer_that_expects_no_junit(write_yaml: Write) -> None:
    suite = load_suite(write_yaml("s.yaml", STEP_SUITE))
    step, unit, *_ = suite.layers
    assert (step.name, step.role, step.command) == (
        "collectstatic",
        "server",
        "python manage.py collectstatic --noinput",
    )
    assert step.step and not step.junit and step.burst is None and step.retry is None
    assert (step.timeout_s, step.gate, step.needs, step.max_output_mb) == (120, "stop", (), 20)
    assert not unit.step and unit.junit


def test_a_step_takes_a_layers_fields_but_junit_retry_and_burst(write_yaml: Write) -> None:
    text = STEP_SUITE.replace(
        "    timeout: 120\n",
        "    needs: [database]\n    gate: continue\n    max_output_mb: 5\n",
    )
    step = load_suite(write_yaml("s.yaml", text)).layers[0]
    assert (step.needs, step.gate, step.max_output_mb, step.timeout_s) == (
        ("database",),
        "continue",
        5,
        1800,
    )


def test_the_old_junit_false_form_is_still_a_step(write_yaml: Write) -> None:
    text = SUITE.replace("gate: continue", "gate: continue, junit: false")
    unit, pure, _ = load_suite(write_yaml("s.yaml", text)).layers
    assert pure.step and not pure.junit and not unit.step


@pytest.mark.parametrize(
    "extra,field,says",
    [
        ("    junit: false\n", "junit", "a step never writes JUnit XML"),
        ("    junit: true\n", "junit", "a step never writes JUnit XML"),
        ("    retry: {count: 1}\n", "retry", "no test for a retry to re-run"),
        ("    burst: {requests: 5}\n", "burst", "a burst probe is a layer"),
        ("    name: collectstatic\n", "name", "a layer ('name: X') or a step ('step: X')"),
    ],
    ids=["junit false", "junit true", "retry", "burst", "name and step"],
)
def test_what_a_step_cannot_have_is_refused_naming_file_line_and_field(
    write_yaml: Write, extra: str, field: str, says: str
) -> None:
    text = STEP_SUITE.replace("    timeout: 120\n", extra)
    path = write_yaml("s.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    line = text.splitlines().index(extra.rstrip("\n")) + 1
    assert str(info.value).startswith(f"{path}, line {line}, field 'layers[0].{field}': ")
    assert says in str(info.value) and "\n" not in str(info.value)


def test_an_entry_without_name_or_step_says_both_spellings(write_yaml: Write) -> None:
    text = SUITE.replace("{name: pure, ", "{")
    with pytest.raises(ConfigError, match=r"field 'layers\[1\]\.name': is required \(or 'step'"):
        load_suite(write_yaml("s.yaml", text))


def test_steps_and_layers_share_their_names(write_yaml: Write) -> None:
    text = STEP_SUITE.replace("step: collectstatic", "step: unit")
    with pytest.raises(ConfigError, match="field 'layers': layer name 'unit' is used twice"):
        load_suite(write_yaml("s.yaml", text))


def test_a_step_name_is_checked_like_a_layer_name(write_yaml: Write) -> None:
    path = write_yaml("s.yaml", STEP_SUITE.replace("step: collectstatic", "step: Collect!"))
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert str(info.value).startswith(f"{path}, line 2, field 'layers[0].step': must be lower")
