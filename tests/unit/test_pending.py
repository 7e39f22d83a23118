"""Background work per host: waited for by the step that needs it, failures raised once."""

from __future__ import annotations

import threading

import pytest

from orchestrator.exceptions import GroupError
from orchestrator.pending import Pending


def test_a_wait_covers_only_the_hosts_it_names() -> None:
    release = threading.Event()
    done: list[str] = []

    def work(name: str) -> None:
        if name == "client":
            assert release.wait(5)
        done.append(name)

    pending = Pending("deploy")
    pending.start(["db", "server", "client"], work)
    pending.wait(["db", "server"])  # returns while the client's work is still blocked
    assert sorted(done) == ["db", "server"]
    assert pending.hosts() == ["client"] and pending.running() == ["client"]
    release.set()
    pending.wait(["client"])
    assert sorted(done) == ["client", "db", "server"] and pending.hosts() == []


def test_every_awaited_host_ends_then_their_failures_raise_together_once() -> None:
    seen: list[GroupError] = []
    pending = Pending("deploy", on_failure=seen.append)

    def work(name: str) -> None:
        if name != "ok":
            raise RuntimeError(f"{name} broke")

    pending.start(["a", "b", "ok"], work)
    with pytest.raises(GroupError) as caught:
        pending.wait(["a", "b", "ok"])
    assert set(caught.value.failures) == {"a", "b"}
    assert "deploy failed on 2 host(s)" in str(caught.value)
    assert seen == [caught.value]
    pending.wait(["a", "b"])  # raised once: a second wait has nothing left to say


def test_the_runs_end_settles_what_nobody_waited_for_and_says_how_it_ended() -> None:
    seen: list[GroupError] = []
    pending = Pending("deploy", on_failure=seen.append)
    pending.start(["late"], lambda name: (_ for _ in ()).throw(OSError("host gone")))
    failures = pending.settle()  # never raises: the run is ending anyway
    assert list(failures) == ["late"] and isinstance(failures["late"], OSError)
    assert [list(err.failures) for err in seen] == [["late"]]
    assert pending.hosts() == []


def test_an_interrupted_wait_leaves_the_work_pending_for_the_runs_end() -> None:
    release = threading.Event()
    pending = Pending("deploy")
    pending.start(["client"], lambda name: release.wait(5))

    def interrupt() -> None:
        raise KeyboardInterrupt

    # A Ctrl-C arriving in the middle of the wait is raised from the future's result().
    future = pending._futures["client"]
    original = future.result
    future.result = lambda timeout=None: interrupt()  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        pending.wait(["client"])
    assert pending.hosts() == ["client"]
    future.result = original  # type: ignore[method-assign]
    release.set()
    assert pending.settle() == {}


def test_at_the_runs_end_work_not_yet_started_is_not_started_and_says_so() -> None:
    release = threading.Event()
    ran: list[str] = []

    def work(name: str) -> None:
        ran.append(name)
        assert release.wait(5)

    pending = Pending("deploy")
    pending.start(["busy", "queued"], work, max_workers=1)  # "queued" waits for a worker
    assert not pending.ended_within(0.05)  # "busy" goes on; "queued" is cancelled
    release.set()
    assert pending.ended_within(5)
    failures = pending.settle()
    assert ran == ["busy"]
    assert [str(err) for err in failures.values()] == ["the run ended before its deploy began"]
