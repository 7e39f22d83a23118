"""The deploy step's own decisions: a host's database and code go at the same time."""

from __future__ import annotations

import threading

import pytest

from orchestrator.steps.deploy import _together


def test_a_hosts_database_and_code_deploy_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=5)  # each job waits for the other to have started
    ran: list[str] = []

    def job(name: str) -> None:
        both.wait()
        ran.append(name)

    _together([lambda: job("db"), lambda: job("code")])
    assert sorted(ran) == ["code", "db"]


def test_the_first_failure_is_raised_once_every_job_has_ended() -> None:
    ended: list[str] = []

    def database() -> None:
        raise RuntimeError("database did not start")

    def code() -> None:
        threading.Event().wait(0.2)
        ended.append("code")

    with pytest.raises(RuntimeError, match="database did not start"):
        _together([database, code])
    assert ended == ["code"]  # the code's push was not abandoned halfway
