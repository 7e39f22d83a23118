"""Pending: per-host work that goes on in the background while the run moves on.

The pipelined deploy starts every host's deploy at once, waits only for the hosts the
first layer can need, and lets the rest (a client-only host) finish while the server
layers run. A later step waits for the hosts it needs with :meth:`Pending.wait`, which
behaves as :func:`~orchestrator.hosts.on_all` would have: every awaited host ends, then
their failures raise together as one :class:`~orchestrator.exceptions.GroupError`. A
failure is raised once, by the first wait that covers its host; the run's end
(:meth:`Pending.settle`) waits for whatever nobody waited for, so no thread outlives the
run and no host is left half-deployed without its record saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures

from orchestrator.exceptions import GroupError


class Pending:
    """The background work of one kind (``what``: "deploy"), by host name."""

    def __init__(self, what: str, on_failure: Callable[[GroupError], None] | None = None) -> None:
        self.what = what
        # Called with the group error before it is raised (the deploy step marks its
        # record's entries and keeps each host's output there).
        self._on_failure = on_failure
        self._futures: dict[str, Future[object]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def start(
        self, names: Iterable[str], work: Callable[[str], object], *, max_workers: int = 16
    ) -> None:
        """``work(name)`` for every name, at once; returns without waiting."""
        names = [n for n in dict.fromkeys(names) if n not in self._futures]
        if not names:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=min(max_workers, len(names)), thread_name_prefix=self.what
            )
        for name in names:
            self._futures[name] = self._pool.submit(work, name)

    def hosts(self) -> list[str]:
        """The hosts whose work nobody has waited for yet (running or ended)."""
        return list(self._futures)

    def running(self) -> list[str]:
        """The hosts whose work has not ended yet."""
        return [name for name, future in self._futures.items() if not future.done()]

    def ended_within(self, seconds: float) -> bool:
        """Whether all the work still pending ends within ``seconds`` (not raised: for
        the run's end, which stops what runs and looks again)."""
        for future in self._futures.values():
            future.cancel()  # work still queued is not started now; running work goes on
        _, running = wait_futures(list(self._futures.values()), timeout=seconds)
        return not running

    def wait(self, names: Iterable[str]) -> None:
        """Wait for the work of each of ``names`` not yet waited for; once all of it has
        ended, raise their failures together. A Ctrl-C while waiting leaves it pending
        (the run's end settles it)."""
        chosen = [name for name in dict.fromkeys(names) if name in self._futures]
        failures: dict[str, BaseException] = {}
        for name in chosen:
            try:
                self._futures[name].result()
            except Exception as err:
                failures[name] = err
        for name in chosen:
            del self._futures[name]
        if failures:
            error = GroupError(self.what, failures)
            if self._on_failure is not None:
                self._on_failure(error)
            raise error

    def settle(self) -> dict[str, BaseException]:
        """Wait for all the work still pending, and return its failures (not raised: the
        run is ending anyway, and the record already says what failed)."""
        failures: dict[str, BaseException] = {}
        for name, future in list(self._futures.items()):
            if future.cancelled():
                failures[name] = RuntimeError(f"the run ended before its {self.what} began")
                continue
            try:
                future.result()
            except Exception as err:
                failures[name] = err
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if failures and self._on_failure is not None:
            self._on_failure(GroupError(self.what, failures))
        return failures
