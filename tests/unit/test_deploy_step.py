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


def test_when_database_and_code_both_fail_each_entry_keeps_its_own_error() -> None:
    from types import SimpleNamespace
    from typing import cast

    from orchestrator.context import Context
    from orchestrator.record import DeployRecord
    from orchestrator.steps.deploy import _owned

    kept: list[tuple[str, str]] = []
    deploy = [DeployRecord("h1", c) for c in ("db", "server", "client")]
    ctx = cast(
        Context,
        SimpleNamespace(
            record=SimpleNamespace(deploy=deploy),
            redact=lambda text: text,
            keep_output=lambda host, step, err: kept.append((step, str(err))),
        ),
    )

    def database() -> None:
        raise RuntimeError("mysqld did not start")

    def code() -> None:
        raise RuntimeError("wheels do not fit this host")

    with pytest.raises(RuntimeError, match="mysqld did not start"):
        _together([_owned(ctx, "h1", True, database), _owned(ctx, "h1", False, code)])
    assert [(e.component, e.status, e.error) for e in deploy] == [
        ("db", "failed", "mysqld did not start"),
        ("server", "failed", "wheels do not fit this host"),
        ("client", "failed", "wheels do not fit this host"),
    ]
    assert sorted(kept) == [
        ("deploy-code", "wheels do not fit this host"),
        ("deploy-database", "mysqld did not start"),
    ]
