"""readiness_ledger: the transport ledger of a readiness layer's test processes.

Installed by readiness into every virtualenv it builds. ``readiness_ledger.pth`` calls
:func:`activate` at interpreter start-up only when ``READINESS_LEDGER`` is set (the layer
script sets it; servers and pip never have it), so any other interpreter pays one
environment lookup and does not even import this package.

Once active, every connection-level error of the process is appended to the file
``READINESS_LEDGER`` names (see :mod:`.recorder`), pytest loads :mod:`.plugin`, and a
unittest run (Django's ``manage.py test``) tells the recorder which test is running by
way of ``unittest.TestResult``.

How pytest loads the plugin: right after pytest reads ``PYTEST_PLUGINS``
(``PytestPluginManager.consider_env``), this process's plugin manager imports
:mod:`.plugin` too, the way ``-p`` would. Not through the ``PYTEST_PLUGINS`` variable:
it is inherited, and a pytest that the suite starts with another interpreter (tox, nox,
a second venv) lacks this package and would fail to start. Not through a ``pytest11``
entry point either: it works with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``, and an interpreter
without ``READINESS_LEDGER`` never loads it. ``-p no:readiness_ledger.plugin`` still
blocks it.

A failure here never reaches the user's code: it is swallowed and reported at most once
on stderr.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: typing alone costs ~15 ms of start-up
    from collections.abc import Callable
    from typing import Any

PLUGIN = "readiness_ledger.plugin"
_active = False


def activate() -> None:
    """Start recording in this process (idempotent; never raises).

    The recorder itself is imported only with the first module it patches: a process
    that never imports ``socket`` pays for this package's ``__init__`` alone.
    """
    global _active
    if _active:
        return
    _active = True
    try:
        _after_import(
            {
                "socket": _recorder_patch("patch_socket"),
                "ssl": _recorder_patch("patch_ssl"),
                "http.client": _recorder_patch("patch_http_client"),
                "unittest": patch_unittest,
                "_pytest.config": patch_pytest,
            }
        )
    except Exception as exc:
        _complain(exc)


def _recorder_patch(name: str) -> Callable[[Any], None]:
    def patch(module: Any) -> None:
        from . import recorder

        getattr(recorder, name)(module)

    return patch


def _complain(exc: BaseException) -> None:
    try:
        from .recorder import complain

        complain(exc)
    except Exception:
        pass


def patch_pytest(module: Any) -> None:
    """Make this process's pytest load the plugin, after the user's ``PYTEST_PLUGINS``."""
    manager = module.PytestPluginManager
    consider_env = manager.consider_env
    if getattr(consider_env, "_readiness_ledger", False):
        return

    def with_the_ledger(self: Any) -> None:
        consider_env(self)
        try:
            self.import_plugin(PLUGIN)
        except Exception as exc:
            _complain(exc)

    with_the_ledger._readiness_ledger = True  # type: ignore[attr-defined]
    manager.consider_env = with_the_ledger


class _AfterImport:
    """A ``sys.meta_path`` finder that runs a patch right after a module is executed.

    It finds nothing itself: it asks the finders after it, then wraps the found
    loader's ``exec_module``. Why not import the modules now: ``http.client``,
    ``unittest`` and ``ssl`` cost 20-45 ms each at start-up, paid by every Python
    subprocess of a test even when it never opens a connection.
    """

    def __init__(self, patches: dict[str, Callable[[Any], None]]) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        patch = self.patches.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # a class-level loader (builtin, frozen): never patch a class
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            _safely(patch, module)

        loader.exec_module = exec_module
        return spec


def _safely(patch: Callable[[Any], None], module: Any) -> None:
    try:
        patch(module)
    except Exception as exc:
        _complain(exc)


def _after_import(patches: dict[str, Callable[[Any], None]]) -> None:
    """Patch what is already imported now, the rest when it is imported."""
    for name, patch in patches.items():
        if name in sys.modules:
            _safely(patch, sys.modules[name])
    sys.meta_path.insert(0, _AfterImport(patches))


def patch_unittest(module: Any) -> None:
    """Tell the recorder the unittest test that runs, and write its ``kind: test`` line.

    Wraps ``unittest.TestResult.startTest``/``stopTest``, which every result class calls
    through ``super()`` (Django's runner and its parallel workers' ``RemoteTestResult``
    too). Inert under pytest, whose plugin tracks tests itself. The outcome is read from
    how the result's lists grew during the test; an exception chain is not looked into
    (that is the pytest plugin's ``source: test``).
    """
    from . import recorder

    cls = module.TestResult
    start, stop = cls.startTest, cls.stopTest
    if getattr(start, "_readiness_ledger", False):
        return
    counted = ("failures", "errors", "unexpectedSuccesses", "skipped")

    def startTest(self: Any, test: Any) -> None:
        try:
            if not recorder.state.pytest_active:
                recorder.state.begin_test(test.id())
                counts = [len(getattr(self, n, ())) for n in counted]
                self._readiness_ledger = (time.monotonic(), counts)
        except Exception as exc:
            _complain(exc)
        start(self, test)

    def stopTest(self: Any, test: Any) -> None:
        stop(self, test)
        try:
            started = getattr(self, "_readiness_ledger", None)
            if not recorder.state.pytest_active and started is not None:
                began, before = started
                grew = [len(getattr(self, n, ())) > b for n, b in zip(counted, before, strict=True)]
                outcome = "failed" if any(grew[:3]) else "skipped" if grew[3] else "passed"
                recorder.flush_held()  # the test's held-back connect failures, first
                recorder.record_test(outcome, False, time.monotonic() - began)
                recorder.state.end_test()
        except Exception as exc:
            _complain(exc)

    startTest._readiness_ledger = True  # type: ignore[attr-defined]
    cls.startTest, cls.stopTest = startTest, stopTest
