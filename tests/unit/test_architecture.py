"""The shape the code keeps so that the next feature has a home (issue 7's limits).

These fail when a change grows a hub again: a lifecycle that does the steps' work, a
function nobody can read in one screen, or steps that reach into each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import orchestrator

PACKAGE = Path(orchestrator.__file__).parent
MAX_FUNCTION_LINES = 60
MAX_LIFECYCLE_LINES = 300


def test_no_function_in_the_orchestrator_is_longer_than_a_screen() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError:  # scripts sent to hosts as text may be other Python versions'
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines})")
    assert long == []


def test_the_lifecycle_holds_only_the_sequence() -> None:
    assert len((PACKAGE / "lifecycle.py").read_text().splitlines()) < MAX_LIFECYCLE_LINES


def test_steps_do_not_import_each_other_nor_the_lifecycle() -> None:
    offenders = []
    for path in sorted((PACKAGE / "steps").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (
                    node.module.startswith("orchestrator.steps")
                    or node.module == "orchestrator.lifecycle"
                )
            ):
                offenders.append(f"{path.name}: {node.module}")
    assert offenders == []
