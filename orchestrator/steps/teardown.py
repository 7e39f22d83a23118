"""Step ``teardown``: keep the services' logs, then stop everything the run started.

Runs after every run (success, failure, timeout, Ctrl-C); with ``--keep`` it only keeps
the logs. A host that is gone is recorded as a teardown failure, and the others are
still cleaned; only an interrupt escapes it (the lifecycle records that).
"""

from __future__ import annotations

import contextlib
import time

from orchestrator import deploy, faults
from orchestrator.components import LogFile
from orchestrator.context import Context
from orchestrator.exceptions import GroupError, ReadinessError
from orchestrator.hosts import on_all
from orchestrator.record import TeardownRecord

LOG_TAIL_BYTES = 1 << 20


def teardown_step(ctx: Context) -> None:
    """Keep the services' logs, then stop servers, databases and anything a layer left
    running, and remove secrets; a failing host is recorded, not raised."""
    t0 = time.monotonic()
    keep = ctx.plan.options.keep
    # Fault profiles first, even with --keep: a reset rule left in a kept lab would
    # mislead whoever uses it next, and the teardown's own traffic must not suffer them.
    failures = {f"faults on {k}": v for k, v in faults.remove(ctx).items()}
    failures.update(_settle_deploys(ctx, keep=keep))
    try:
        on_all("teardown", list(ctx.transports), lambda name: _one(ctx, name, keep=keep))
    except GroupError as err:
        failures.update({k: ctx.redact(str(v)) for k, v in err.failures.items()})
    ctx.record.teardown = TeardownRecord(
        status="skipped (--keep)" if keep else "failed" if failures else "ok",
        failures=failures,
        duration_s=round(time.monotonic() - t0, 3),
    )
    if not keep:
        ctx.progress("all", "teardown", "failed on " + ", ".join(failures) if failures else "done")


# How often teardown stops a deploy still going on, and how long it waits each time for
# it to end: a push may be between round trips, or still building its stream, when the
# first stray kill comes.
SETTLE_TRIES, SETTLE_WAIT_S = 5, 2.0


def _settle_deploys(ctx: Context, *, keep: bool) -> dict[str, str]:
    """A deploy still going on in the background (the run ended before a layer waited
    for it) ends before teardown touches its host: else the install could put the
    secrets back after teardown removed them. Cut short (its install killed, as
    teardown's own stray kill would, again until it ends) unless ``--keep`` asked for
    the stack; either way its thread is waited for, and its record entry says how it
    ended. Returns what went wrong, for the teardown's record: never raises (the
    rest of the teardown must run)."""
    try:
        for _ in range(SETTLE_TRIES if not keep else 0):
            running = ctx.deploys.running()
            if not running:
                break
            with contextlib.suppress(GroupError):
                on_all(
                    "stopping the deploys still going on",
                    running,
                    lambda name: ctx.transports[name].run(
                        deploy.stray_kill_script(ctx.layout(name)), timeout=60
                    ),
                )
            if ctx.deploys.ended_within(SETTLE_WAIT_S):
                break
        ctx.deploys.settle()
    except Exception as err:  # e.g. the run store's disk is full: teardown goes on
        return {"deploys still going on": ctx.redact(f"{type(err).__name__}: {err}")}
    return {}


def _one(ctx: Context, name: str, *, keep: bool) -> None:
    with contextlib.suppress(ReadinessError):  # the host may be gone; still try to stop
        _collect_logs(ctx, name)
    if keep:
        return
    layout = ctx.layout(name)
    # First every process of this deploy root, wherever the run was cut: a layer, an
    # install or a database start still running, a server of an earlier killed run. Then
    # the secrets, so that nothing can write them again and a teardown cut short leaves
    # none. Then the services, each by its own pid check.
    script = deploy.stray_kill_script(layout) + deploy.forget_script(layout, ctx.store.run_id)
    script += "".join(s.stop_script() for host, s in ctx.servers.items() if host == name)
    if ctx.database is not None and ctx.database.host == name:
        script += ctx.database.stop_script()
    ctx.transports[name].run(script, timeout=120).check("teardown")


def _log_files(ctx: Context, name: str) -> list[LogFile]:
    files = [f for host, s in ctx.servers.items() if host == name for f in s.log_files()]
    if ctx.database is not None and ctx.database.host == name:
        files += ctx.database.log_files()
    return files


def _collect_logs(ctx: Context, name: str) -> None:
    """The services' own logs, for the run record (the last 1 MiB of each)."""
    for log in _log_files(ctx, name):
        result = ctx.transports[name].run(deploy.tail_script(log.path, LOG_TAIL_BYTES), timeout=60)
        if result.ok and result.stdout:
            ctx.store.write_text(ctx.redact(result.stdout), "logs", name, log.label)
