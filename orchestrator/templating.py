"""The one place Jinja2 environments are made, so every template fails the same way.

Every environment is strict: a value missing from the render call raises instead of
rendering as nothing (a config file or a script with a silent hole is worse than an
error). What differs between the template families is passed in: the settings overlay
and ``my.cnf`` render plain text, the HTML report autoescapes, and the remote scripts
(:mod:`orchestrator.scripts`) quote every value for the shell through ``finalize``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from functools import cache
from typing import Any

import jinja2
import jinja2.bccache


class _SuffixLoader(jinja2.PackageLoader):
    """Finds template ``NAME`` in the file ``NAME.j2``: the scripts are named for what they
    render (``lib.sh``) and their files say they are templates, so no tool mistakes a
    template for a shell script it could run or lint as it is."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool] | None]:
        return super().get_source(environment, template + ".j2")


def environment(
    folder: str,
    *,
    autoescape: bool = False,
    finalize: Callable[[Any], Any] | None = None,
    trim_blocks: bool = False,
    j2_suffix: bool = False,
) -> jinja2.Environment:
    """A strict environment over ``orchestrator/<folder>/``, keeping trailing newlines.

    ``trim_blocks`` also strips the indentation before a block tag, so ``{% for %}``
    lines in a script leave no blank or indented lines behind. With ``j2_suffix``,
    template ``NAME`` lives in the file ``NAME.j2``.
    """
    loader_class = _SuffixLoader if j2_suffix else jinja2.PackageLoader
    return jinja2.Environment(
        loader=loader_class("orchestrator", folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=autoescape,
        finalize=finalize,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
        bytecode_cache=_compiled(
            f"{folder}|{autoescape}|{finalize and finalize.__module__}."
            f"{finalize and finalize.__qualname__}|{trim_blocks}|{j2_suffix}"
        ),
    )


class _Compiled(jinja2.FileSystemBytecodeCache):
    """Jinja's cache of compiled templates, as a cache should be: a folder that fills up or
    vanishes during a run costs a compile, never a render."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


@cache
def _compiled(options: str) -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs: compiling the report's and the scripts'
    templates anew cost about 0.8 s of every run. Jinja's own cache folder (in the
    temporary folder, one per user, refused unless it is the user's own and closed to
    others) keys a template by its name and source's checksum only, not by what the
    environment compiles into it (autoescaping, the scripts' shell quoting): so each set
    of ``options``, and each Jinja version, has its own file names. Without a usable
    folder, no cache."""
    tag = hashlib.sha256(f"{jinja2.__version__}|{options}".encode()).hexdigest()[:16]
    try:
        return _Compiled(pattern=f"__readiness_{tag}_%s.cache")
    except (OSError, RuntimeError):  # RuntimeError: Jinja found the folder unsafe
        return None


@cache
def templates(*, autoescape: bool = False) -> jinja2.Environment:
    """``orchestrator/templates/``: config files, the settings overlay, the HTML report.

    The report wants ``autoescape=True`` (inventory and host names are user input); the
    generated Python and config files must not be HTML-escaped.
    """
    env = environment("templates", autoescape=autoescape)
    # Values rendered into Python source go through repr(): no quoting mistakes possible.
    env.filters["py"] = repr
    return env


# C0 controls but tab and newline, DEL, C1 controls, the line and paragraph separators
# (YAML, JavaScript and some editors end a line at them), and the marks that reorder
# text on screen (bidi overrides and isolates), written as Python writes them (``\x1b``,
# ``\u202e``), not as their Unicode pictures (most monospace fonts have none).
_CONTROLS = [*(c for c in range(32) if c not in (9, 10)), *range(0x7F, 0xA0)]
_BIDI = [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_VISIBLE: dict[int, str] = {c: f"\\x{c:02x}" for c in _CONTROLS} | {c: f"\\u{c:04x}" for c in _BIDI}


def visible(text: str | None) -> str:
    """Text from a test or a host as it is: an ANSI escape in a test name is shown as
    ``\\x1b[31m``, not hidden, and a bidi override cannot reverse what a page says.
    The pages' one display filter (autoescaping then handles ``<`` and ``&``)."""
    if text is None:
        return ""
    if text.isprintable():  # the common case, one C call: thousands of rows stay fast
        return text
    return text.translate(_VISIBLE)
