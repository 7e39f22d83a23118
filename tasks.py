"""invoke entry point for readiness: thin tasks over the ``orchestrator`` package.

This is the only place that turns errors into exit codes (DESIGN.md): every task runs
inside :func:`_exits`, which prints a :class:`ReadinessError` as one paragraph and exits
with its code instead of showing a traceback for a user mistake.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from orchestrator.exceptions import ReadinessError


@contextmanager
def _exits() -> Iterator[None]:
    """Print readiness errors for the user and exit with the contract's code."""
    try:
        yield
    except ReadinessError as err:
        print(f"readiness: {err}", file=sys.stderr)
        raise Exit(code=err.exit_code) from None
    except KeyboardInterrupt:
        print("readiness: interrupted", file=sys.stderr)
        raise Exit(code=130) from None


Runner = Callable[..., None]

ns = Collection()
