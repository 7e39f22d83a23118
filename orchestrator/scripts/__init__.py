"""The bash scripts readiness runs on hosts, kept as files and rendered with values.

Why files: a script in a Python string cannot be read, linted or run on its own, and
quoting mistakes hide in it. Here every script is a file beside this module (template
``NAME.sh`` is the file ``NAME.sh.j2``: a template is not yet a script),
checked by ``bash -n`` and shellcheck (``python -m orchestrator.scripts``, run by
``make lint``); Python code on a host is a ``*.py`` file sent on a quoted here-document.

Jinja2 fills in values only; the logic is bash. Every ``{{ value }}`` is quoted for the
shell by construction (``finalize``): a string or number becomes one word whatever it
holds, anything else is refused; ``{{ values | words }}`` makes one word per item, for
the arguments of a command. Two ways around the quoting exist, both explicit and rare:

* :class:`Shell` marks text that is already shell (an environment fragment rendered by
  another script, a layer's command, which the suite author writes as shell);
* ``{{ text | heredoc("MARK") }}`` puts text unchanged into a quoted here-document
  (``<<'MARK'`` expands nothing), refusing text with a line that would end it early.

``{# ... #}`` comments are for maintainers and do not ship; ``#`` comments do.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jinja2

from orchestrator.templating import environment


@dataclass(frozen=True)
class Shell:
    """Text that is already shell and renders as is: the escape hatch, say why at each use."""

    text: str


def shell_word(value: object) -> str:
    """What ``{{ value }}`` renders as: one quoted word, or :class:`Shell` text as is."""
    if isinstance(value, Shell):
        return value.text
    if isinstance(value, jinja2.Undefined):
        return str(value)  # StrictUndefined raises, naming the missing value
    # bool and None would render as the words "True"/"None"; a list as its repr, or, as
    # several words, would turn `name={{ list }}` into a command: always a mistake.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"cannot render {value!r} into a script; pass a string or a number")
    return shlex.quote(str(value))


def words(values: Iterable[str | int]) -> Shell:
    """``{{ values | words }}``: one quoted word per item, for a command's arguments."""
    if isinstance(values, str):
        raise TypeError(f"words wants a list of words, not the string {values!r}")
    return Shell(" ".join(shell_word(value) for value in values))


def heredoc(text: str, marker: str) -> Shell:
    """``text`` for the body of a quoted here-document that ends at the line ``marker``.

    The template writes the marker on the line after, so one trailing newline is dropped.
    """
    body = text.removesuffix("\n")
    if marker in body.splitlines():
        raise ValueError(f"a line of the here-document text is its end marker {marker!r}")
    return Shell(body)


def source(name: str) -> str:
    """The text of a file beside the scripts (the Python helpers sent on a here-document)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def scripts() -> jinja2.Environment:
    """The one environment of the scripts: strict, quoting, blocks leave no blank lines."""
    env = environment("scripts", finalize=shell_word, trim_blocks=True, j2_suffix=True)
    env.filters["heredoc"] = heredoc
    env.filters["words"] = words
    env.globals["source"] = source
    return env


def render(name: str, /, **values: object) -> str:
    """Render the script ``name`` (a file beside this module) with shell-quoted values."""
    return scripts().get_template(name).render(**values)
