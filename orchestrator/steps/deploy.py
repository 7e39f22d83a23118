"""Step ``deploy``: carry out the plan's deploy steps, every host in parallel.

Per host, at the same time: its database (if the plan has a ``db`` step there), and one
stream holding only what its ``server`` and ``client`` steps lack (the database starts
while the code streams and the virtualenvs build). Each server's configuration is
decided, and each host's wheels checked against its Python, before any host work
starts, so a missing environment variable is a configuration error naming the variable,
not a failure of some host.

The deploy is pipelined: the step ends once the hosts of the database and the servers
are deployed, and a client-only host's deploy goes on in the background
(:attr:`~orchestrator.plan.Plan.deployed_later`, :mod:`orchestrator.pending`) until the
first layer that runs there waits for it. Its record entry keeps its own start and
duration, so the timeline shows the overlap. What it sends is SSH traffic on a
connection already open, which the RST capture leaves out and which moves none of the
counters attribution reads (resets, overflows, aborts) on the server layers' hosts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from orchestrator.appconfig import existing_endpoint, server_config
from orchestrator.components import AppServer, Database, DatabaseGrant, Endpoint, database_engine
from orchestrator.components.appserver import DjangoServer
from orchestrator.context import Context
from orchestrator.deploy import HostConfig, HostNeeds, check_wheels_fit, push
from orchestrator.exceptions import GroupError
from orchestrator.hosts import on_all
from orchestrator.network import DatabaseLink, network_of, nodes_of
from orchestrator.pending import Pending
from orchestrator.provenance import secret_values
from orchestrator.record import DeployRecord, NetworkRecord, PatchRecord
from orchestrator.wheelhouse import Wheelhouse


def deploy_step(ctx: Context) -> None:
    """Every host in parallel: its database (if db) and the one stream it lacks (if any);
    a client-only host's goes on in the background while the first layers run."""
    # The application's own secrets (its environment's tokens) are scrubbed like ours.
    ctx.extra_secrets += secret_values(ctx.inventory)
    managed = _managed_database(ctx)
    grant = None
    if managed is not None:
        ctx.database, grant = managed
    endpoints = {name: _endpoint(ctx, name) for name in _servers(ctx)}
    configs = {name: _server_config(ctx, name, endpoints[name]) for name in _servers(ctx)}
    ctx.servers = app_servers(ctx)
    ctx.record.network = _network(ctx, endpoints)
    ctx.record.deploy = [DeployRecord(s.host, s.component) for s in ctx.plan.deploy]
    _check_fit(ctx)
    ctx.deploys = Pending("deploy", on_failure=lambda err: _failed(ctx, err))
    ctx.deploys.start(ctx.plan.hosts, lambda name: _deploy_host(ctx, name, grant, configs))
    later = ctx.plan.deployed_later
    ctx.deploys.wait(name for name in ctx.plan.hosts if name not in later)
    if running := [name for name in later if name in ctx.deploys.running()]:
        ctx.progress(", ".join(running), "deploy", "goes on while the layers before its own run")


def _check_fit(ctx: Context) -> None:
    """Wheels that cannot install on a host (another Python or CPU) are told before any
    host is touched, never after the layers that did not need that host (exit 3, the
    host's error, naming the interpreter to point it at)."""

    def fits(name: str) -> None:
        components = {s.component for s in ctx.plan.deploy if s.host == name}
        if needed := _wheelhouses(ctx, components):
            check_wheels_fit(name, ctx.probes[name].facts, needed)

    try:
        on_all("deploy", ctx.plan.hosts, fits)
    except GroupError as err:
        _failed(ctx, err)
        for entry in ctx.record.deploy:  # the others were never started: not "running"
            if entry.status == "running":
                entry.status = "skipped"
        raise


def _wheelhouses(ctx: Context, components: set[str]) -> tuple[Wheelhouse, ...]:
    """The wheelhouses a host with these components builds venvs from, each once (an
    all-on-one host's server and client may share one)."""
    artifacts = ctx.artifacts
    assert artifacts is not None
    houses = [artifacts.server_wheels] * ("server" in components) + [artifacts.client_wheels] * (
        "client" in components
    )
    return tuple({w.digest: w for w in houses}.values())


def _failed(ctx: Context, err: GroupError) -> None:
    """Each failed host's entries still running say its error, and its output is kept."""
    for name, failure in err.failures.items():
        ctx.keep_output(name, "deploy", failure)
        for entry in _entries(ctx, name):
            if entry.status == "running":
                entry.status, entry.error = "failed", ctx.redact(str(failure))


def _servers(ctx: Context) -> list[str]:
    return [h.name for h in ctx.inventory.with_role("server")]


def _entries(ctx: Context, host: str) -> list[DeployRecord]:
    """The record's entries of ``host``'s deploy steps (to mark them done or failed)."""
    return [e for e in ctx.record.deploy if e.host == host]


def _started(ctx: Context, host: str, *, db: bool) -> None:
    """When the host's database (``db``) or code push began: the run's timeline."""
    at = round(time.monotonic() - ctx.started, 3)
    for entry in _entries(ctx, host):
        if (entry.component == "db") == db:
            entry.start_s = at


def _managed_database(ctx: Context) -> tuple[Database, DatabaseGrant] | None:
    """The database instance the plan deploys, and its grant; None if the plan has no
    ``db`` step (an existing database)."""
    step = next((s for s in ctx.plan.deploy if s.component == "db"), None)
    if step is None:
        return None
    spec = ctx.inventory.database
    target = ctx.targets[step.host]
    database = database_engine(spec.engine).instance(step.host, target, spec.port)
    return database, DatabaseGrant(
        name=spec.name,
        user=spec.user,
        password=ctx.secrets["db_password"],
        client_hosts=tuple(
            "localhost" if ctx.plan.database_link(s) == "socket" else ctx.targets[s].ip
            for s in _servers(ctx)
        ),
    )


def _endpoint(ctx: Context, server: str) -> Endpoint:
    """How ``server`` reaches the database: what the database hands the application."""
    spec = ctx.inventory.database
    if ctx.database is None:
        engine = database_engine(spec.engine)
        endpoint = existing_endpoint(engine, spec, os.environ, ctx.inventory.file)
        ctx.extra_secrets.append(endpoint.password)
        return endpoint
    return ctx.database.endpoint(
        link=ctx.plan.database_link(server),
        name=spec.name,
        user=spec.user,
        password=ctx.secrets["db_password"],
    )


def _server_config(ctx: Context, server: str, endpoint: Endpoint) -> HostConfig:
    target = ctx.targets[server]
    config = server_config(
        settings=ctx.inventory.application.settings,
        endpoint=endpoint,
        secret_key=ctx.secrets["secret_key"],
        allowed_hosts=[target.ip, target.address],
        fixtures=ctx.artifacts.fixtures if ctx.artifacts is not None else None,
    )
    ctx.extra_secrets.append(endpoint.url)
    return config


def _network(ctx: Context, endpoints: Mapping[str, Endpoint]) -> NetworkRecord:
    """Listeners and the connections between hosts, as this deploy sets them up."""
    nodes = nodes_of(ctx.targets.values())
    links = [
        DatabaseLink(name, e.host, None, e.host)
        if e.via_socket
        else DatabaseLink(name, e.host, int(e.port or e.client.default_port))
        for name, e in endpoints.items()
    ]
    db_step = next((s for s in ctx.plan.deploy if s.component == "db"), None)
    return network_of(
        nodes,
        server_port=ctx.inventory.application.server_port if endpoints else None,
        links=links,
        database_host=db_step.host if db_step else None,
        database_port=ctx.inventory.database.port if db_step else None,
    )


def app_servers(ctx: Context) -> dict[str, AppServer]:
    """The application server each server host will run (started by the layers step)."""
    return {name: _app_server(ctx, name) for name in _servers(ctx)}


def _app_server(ctx: Context, name: str) -> DjangoServer:
    app = ctx.inventory.application
    assert ctx.artifacts is not None
    layout = ctx.layout(name)
    return DjangoServer(
        layout=layout,
        venv=layout.venv(ctx.artifacts.server_wheels.digest),
        mode=app.server_mode,
        address=ctx.targets[name].ip,
        port=app.server_port,
        fixtures=tuple(
            f"{layout.etc}/{f.shipped_name}" if f.shipped else f.label for f in app.fixtures
        ),
        health_path=app.health_path,
        env=app.env,
        workers=app.server_workers,
        threads=app.server_threads,
        backlog=app.server_backlog,
    )


def _deploy_host(
    ctx: Context, name: str, grant: DatabaseGrant | None, configs: Mapping[str, HostConfig]
) -> None:
    components = {s.component for s in ctx.plan.deploy if s.host == name}
    jobs: list[Callable[[], None]] = []
    if "db" in components and grant is not None:
        jobs.append(_owned(ctx, name, True, lambda: _deploy_database(ctx, name, grant)))
    if components & {"server", "client"}:
        code = configs.get(name)
        jobs.append(_owned(ctx, name, False, lambda: _deploy_code(ctx, name, components, code)))
    _together(jobs)


def _owned(ctx: Context, name: str, db: bool, work: Callable[[], None]) -> Callable[[], None]:
    """``work``, which on failure marks its own entries failed with its own error and
    keeps its own output: when the database and the code both fail, neither hides the
    other (only the first is raised)."""

    def run() -> None:
        try:
            work()
        except Exception as err:
            for entry in _entries(ctx, name):
                if (entry.component == "db") == db and entry.status == "running":
                    entry.status, entry.error = "failed", ctx.redact(str(err))
            ctx.keep_output(name, "deploy-database" if db else "deploy-code", err)
            raise

    return run


def _together(jobs: list[Callable[[], None]]) -> None:
    """Run a host's jobs at once; once all have ended, raise the first one's failure
    (the database's before the code's). Neither needs the other: the settings already
    hold the database's address and account, which the database is given as it starts."""
    if len(jobs) < 2:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="deploy") as pool:
        futures = [pool.submit(job) for job in jobs]
    for future in futures:
        future.result()


def _deploy_database(ctx: Context, name: str, grant: DatabaseGrant) -> None:
    """Start (if needed) and provision, in one round trip."""
    assert ctx.database is not None
    t0 = time.monotonic()
    _started(ctx, name, db=True)
    ctx.transports[name].run(ctx.database.up_script(grant), timeout=300).check(
        "starting the database"
    )
    for entry in _entries(ctx, name):
        if entry.component == "db":
            entry.status, entry.duration_s = "ok", round(time.monotonic() - t0, 3)
    ctx.progress(name, "deploy", f"database up on {ctx.database.describe()}")


def _deploy_code(ctx: Context, name: str, components: set[str], config: HostConfig | None) -> None:
    """The one stream of code, wheels and settings the host lacks, installed."""
    artifacts = ctx.artifacts
    assert artifacts is not None
    _started(ctx, name, db=False)  # the wheels were checked to fit first (_check_fit)
    needs = HostNeeds(
        app="server" in components,
        client="client" in components,
        venvs=_wheelhouses(ctx, components),
        config=config,
        tool=artifacts.tools.get(ctx.probes[name].facts.get("machine", "")),
    )
    target = ctx.targets[name]
    report = push(
        ctx.transports[name],
        ctx.layout(name),
        target.host.python,
        needs,
        artifacts,
        ctx.probes[name],
        venv_cache=target.venv_cache,
    )
    for entry in _entries(ctx, name):
        if entry.component != "db":
            entry.status, entry.duration_s = "ok", round(report.duration_s, 3)
            entry.sent, entry.bytes_sent = list(report.sent), report.bytes_sent
            entry.drifted = list(report.drifted)
            entry.round_trips = report.round_trips
            entry.installer = report.installer
            entry.patched = [PatchRecord(*patch) for patch in report.patched]
            entry.linked = list(report.linked)
    patched = {
        p: f"{p} ({files} changed, {gone} removed)" if ok else f"{p} (whole: the patch was refused)"
        for p, files, gone, ok in report.patched
    }
    what = ", ".join(patched.get(part, part) for part in report.sent) or (
        "nothing" if report.linked else "nothing (up to date)"
    )
    if report.linked:  # built before for another deploy root of this host
        what += "; venvs linked from the host's cache"
    if report.installer:
        what += f"; venvs built with {report.installer}"
        if report.installer == "pip" and artifacts.tools_missing:
            what += f" ({artifacts.tools_missing})"
    if report.drifted:  # the host held these in the right version, but a run changed them
        what += f"; {', '.join(report.drifted)} changed on the host since it was sent"
    ctx.progress(
        name,
        "deploy",
        f"sent {what} ({report.bytes_sent / 1e6:.1f} MB) in {report.duration_s:.1f}s",
    )
