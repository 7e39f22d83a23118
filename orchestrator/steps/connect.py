"""Step ``connect``: resolve every host, connect, and read its facts (one round trip each)."""

from __future__ import annotations

from orchestrator.components import database_engine
from orchestrator.context import Context
from orchestrator.deploy import Probe, probe
from orchestrator.exceptions import GroupError, HostError
from orchestrator.hosts import on_all, resolve_targets
from orchestrator.record import HostRecord


def connect_step(ctx: Context) -> None:
    """Resolve every host, connect, and read its facts (one round trip per host)."""
    ctx.targets = resolve_targets(ctx.inventory, ctx.lab)
    ctx.record.hosts = [
        HostRecord(
            name=t.name, address=t.address, roles=list(t.host.roles), connection=t.host.connection
        )
        for t in ctx.targets.values()
    ]
    ctx.transports = {name: t.connect() for name, t in ctx.targets.items()}

    db_host = ctx.inventory.db_host
    engine = database_engine(ctx.inventory.database.engine)

    def one(name: str) -> Probe:
        extra = engine.probe_script if db_host is not None and name == db_host.name else ""
        target = ctx.targets[name]
        found = probe(
            ctx.transports[name],
            ctx.layout(name),
            target.host.python,
            extra,
            venv_cache=target.venv_cache,
        )
        ctx.progress(name, "connect", f"python {found.facts.get('python')}")
        return found

    try:
        ctx.probes = on_all("connecting", ctx.targets, one)
    except GroupError as err:  # the facts of the hosts that answered are evidence too
        _record_facts(ctx, {k: v for k, v in err.results.items() if isinstance(v, Probe)})
        raise
    _record_facts(ctx, ctx.probes)
    _check_database_host(ctx)


def _record_facts(ctx: Context, probes: dict[str, Probe]) -> None:
    for entry in ctx.record.hosts:
        if entry.name in probes:
            entry.facts = dict(probes[entry.name].facts)


def _check_database_host(ctx: Context) -> None:
    db_host = ctx.inventory.db_host
    if db_host is None:
        return
    problem = database_engine(ctx.inventory.database.engine).host_problem(
        ctx.probes[db_host.name].facts
    )
    if problem:
        raise HostError(db_host.name, problem)
