"""Signals as one path: SIGINT, SIGTERM and SIGHUP all stop a run the same way.

A cancelled CI job sends SIGTERM (then, often, a second signal); a closed terminal sends
SIGHUP; a user presses Ctrl-C, maybe twice. Each must end in the same teardown and a
finished record, so :func:`trapped` turns the first of them into :class:`Interrupted` (a
``KeyboardInterrupt``, so code that already stops on Ctrl-C stops on them too) and
notes every later one without acting on it: nothing can cut the teardown the first
started in half. Teardown's own remote scripts have timeouts, so it ends in bounded
time.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A signal asked the run to stop; ``exit_code`` is the shell's 128 + signal."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def as_interrupted(err: KeyboardInterrupt) -> Interrupted:
    """A plain KeyboardInterrupt (Python's own SIGINT) is an interrupt by SIGINT."""
    return err if isinstance(err, Interrupted) else Interrupted(signal.SIGINT)


def _install(handler: Callable[[int, FrameType | None], Any]) -> dict[int, Any]:
    """Set ``handler`` for every signal; the previous handlers, to restore. Signals can
    only be handled in the main thread: elsewhere (a test runner's worker) nothing is
    changed."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum in SIGNALS}


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


class Trap:
    """The signals that reached a run: the first interrupts it, later ones are noted."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.first: Interrupted | None = None
        self.noted: list[str] = []
        self.holding = False

    def hold(self) -> None:
        """From now on (the teardown), even a first signal is only noted."""
        self.holding = True

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.first is None and not self.holding:
            self.first = Interrupted(signum)
            raise self.first
        # A second Ctrl-C, or the SIGTERM a CI runner sends after SIGINT: the teardown the
        # first one started must finish (its remote scripts have timeouts), so only say so.
        name = signal.Signals(signum).name
        self.noted.append(name)
        self.say(f"readiness: {name} noted; finishing the teardown first (it is bounded in time)")


@contextlib.contextmanager
def trapped(say: Callable[[str], None]) -> Iterator[Trap]:
    """Inside, the first of the signals raises :class:`Interrupted` in the main thread and
    every later one is noted and ignored."""
    trap = Trap(say)
    previous = _install(trap.handle)
    try:
        yield trap
    finally:
        _restore(previous)
