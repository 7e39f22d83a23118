"""The readiness job as a sequence of small named steps (Molecule's lifecycle as data).

``connect -> build -> deploy -> layers``, then ``teardown`` always (after success,
failure, timeout or Ctrl-C), and the record is written to the run store after every
step, so whatever ran is kept even if a later step or the orchestrator itself fails.
The verdict maps to the CLI contract's exit codes: 0 ready, 1 not ready (a gate
failed), 2 configuration error, 3 infrastructure error.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from orchestrator import counters
from orchestrator.appserver import ServerSpec, stray_kill_script
from orchestrator.appserver import start_script as server_start_script
from orchestrator.appserver import stop_script as server_stop_script
from orchestrator.bundle import build_bundle
from orchestrator.database import DatabaseGrant, MariaDBInstance
from orchestrator.database import stop_script as db_stop_script
from orchestrator.deploy import (
    Artifacts,
    HostConfig,
    HostNeeds,
    Probe,
    check_wheels_fit,
    database_instance,
    probe,
    push,
    render_settings_overlay,
    render_test_runner,
    render_wsgi,
    start_database,
)
from orchestrator.exceptions import ConfigError, GroupError, InfrastructureError, ReadinessError
from orchestrator.hosts import Target, on_all, resolve_targets
from orchestrator.inventory import Inventory
from orchestrator.layers import LayerOutcome, run_layer
from orchestrator.layout import Layout
from orchestrator.plan import Options, Plan, build_plan
from orchestrator.store import SCHEMA, RunStore, utc_now
from orchestrator.transport import Transport
from orchestrator.vault import load_or_create, redact
from orchestrator.wheelhouse import build_wheelhouse

# Always installed next to the application: the MySQL driver that needs no compiler,
# and the test runner the layers use.
SERVER_EXTRAS = ("PyMySQL>=1.1,<2", "pytest>=8,<10")
CLIENT_EXTRAS = ("pytest>=8,<10",)

EXIT_READY, EXIT_NOT_READY, EXIT_CONFIG, EXIT_INFRA, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@dataclass
class Context:
    """Everything the steps share; ``record`` is what goes to run.json."""

    root: Path
    plan: Plan
    store: RunStore
    say: Callable[[str], None]
    lab: Any = None
    targets: dict[str, Target] = field(default_factory=dict)
    transports: dict[str, Transport] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    artifacts: Artifacts | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    # Secrets that are not ours but pass through us (an existing database's password).
    extra_secrets: list[str] = field(default_factory=list)
    db: tuple[str, MariaDBInstance] | None = None
    servers_up: bool = False
    started: float = field(default_factory=time.monotonic)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def inventory(self) -> Inventory:
        return self.plan.inventory

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:7.1f}s"

    def progress(self, host: str, step: str, message: str) -> None:
        self.say(f"[{self.elapsed()}] {host:<14} {step:<10} {message}")

    def save(self) -> None:
        self.store.write_record(self.record)

    def layout(self, host: str) -> Layout:
        return Layout(self.targets[host].deploy_root)

    def secret_values(self) -> list[str]:
        return [*self.secrets.values(), *self.extra_secrets]


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context], None]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    run_dir: Path
    verdict: str


# -- steps ------------------------------------------------------------------------------


def lab_step(ctx: Context) -> None:
    """Bring the local lab up (idempotent) when the inventory is a lab inventory."""
    lab_spec = ctx.inventory.lab
    if lab_spec is None:
        return
    from orchestrator.lab import lab_up

    ctx.progress("lab", "lab", "bringing the local lab up")
    ctx.lab = lab_up(prefix=lab_spec.prefix, hosts=lab_spec.hosts, subnet=lab_spec.subnet)
    ctx.record["lab"] = {"prefix": ctx.lab.prefix, "subnet": ctx.lab.subnet}


def connect_step(ctx: Context) -> None:
    """Resolve every host, connect, and read its facts (one round trip per host)."""
    ctx.targets = resolve_targets(ctx.inventory, ctx.lab)
    ctx.record["hosts"] = [
        {
            "name": t.name,
            "address": t.address,
            "roles": list(t.host.roles),
            "connection": t.host.connection,
            "facts": {},
        }
        for t in ctx.targets.values()
    ]
    ctx.transports = {name: t.connect() for name, t in ctx.targets.items()}

    def one(name: str) -> Probe:
        found = probe(ctx.transports[name], ctx.layout(name), ctx.targets[name].host.python)
        ctx.progress(name, "connect", f"python {found.facts.get('python')}")
        return found

    try:
        ctx.probes = on_all("connecting", ctx.targets, one)
    finally:
        for entry in ctx.record["hosts"]:
            found = ctx.probes.get(entry["name"])
            if found is not None:
                entry["facts"] = dict(found.facts)
    db_host = ctx.inventory.db_host
    if db_host is not None and not ctx.probes[db_host.name].facts.get("mariadbd"):
        from orchestrator.exceptions import HostError

        raise HostError(
            db_host.name,
            "has the db role but no MariaDB server (mariadbd or mysqld); install it, "
            "e.g. 'apt-get install mariadb-server'",
        )


def build_step(ctx: Context) -> None:
    """Bundle the code and build (or reuse) the wheelhouses on the control node."""
    app = ctx.inventory.application
    t0 = time.monotonic()
    cache = ctx.root / ".wheelhouse"
    server_extras = SERVER_EXTRAS + (("gunicorn>=21",) if app.server_mode == "gunicorn" else ())
    server_wheels = build_wheelhouse(
        [app.source / r for r in app.requirements], server_extras, cache
    )
    client_wheels = build_wheelhouse(
        [app.source / r for r in app.client_requirements], CLIENT_EXTRAS, cache
    )
    ctx.artifacts = Artifacts(
        app=build_bundle(app.source),
        client=build_bundle(app.source / app.client_source),
        server_wheels=server_wheels,
        client_wheels=client_wheels,
    )
    ctx.record["build"] = {
        "app_digest": ctx.artifacts.app.digest,
        "client_digest": ctx.artifacts.client.digest,
        "server_wheelhouse": server_wheels.digest,
        "client_wheelhouse": client_wheels.digest,
        "duration_s": round(time.monotonic() - t0, 3),
    }
    ctx.progress(
        "control", "build", f"bundles and wheelhouses ready in {time.monotonic() - t0:.1f}s"
    )


def _database_settings(ctx: Context, server: str) -> tuple[str, str, str, str]:
    """(host, port, user, password) with which ``server`` reaches the database."""
    database = ctx.inventory.database
    if database.mode == "existing":
        values = {}
        for key in ("host_env", "port_env", "user_env", "password_env"):
            var = getattr(database, key)
            if var is None:
                continue
            if var not in os.environ:
                raise ConfigError(
                    f"environment variable {var} is not set (named by database.{key})",
                    file=str(ctx.inventory.file),
                    field=f"database.{key}",
                )
            values[key] = os.environ[var]
        ctx.extra_secrets.append(values["password_env"])
        return (
            values["host_env"],
            values.get("port_env", "3306"),
            values.get("user_env", database.user),
            values["password_env"],
        )
    assert ctx.db is not None
    db_host, instance = ctx.db
    if ctx.plan.database_link(server) == "socket":
        return instance.socket, "", database.user, ctx.secrets["db_password"]
    return (
        ctx.targets[db_host].ip,
        str(instance.port),
        database.user,
        ctx.secrets["db_password"],
    )


def _host_config(ctx: Context, server: str) -> HostConfig:
    app = ctx.inventory.application
    host, port, user, password = _database_settings(ctx, server)
    target = ctx.targets[server]
    overlay = render_settings_overlay(
        settings=app.settings,
        db_name=ctx.inventory.database.name,
        db_host=host,
        db_port=port,
        allowed_hosts=list(dict.fromkeys([target.ip, target.address, "localhost", "127.0.0.1"])),
    )
    url_host = "localhost" if host.startswith("/") else host
    database_url = (
        f"mysql://{quote(user, safe='')}:{quote(password, safe='')}@{url_host}:{port or 3306}/"
        f"{ctx.inventory.database.name}"
    )
    ctx.extra_secrets.append(database_url)
    secret_env = {
        "READINESS_DB_USER": user,
        "READINESS_DB_PASSWORD": password,
        "READINESS_SECRET_KEY": ctx.secrets["secret_key"],
        # Settings modules that read these at import time must find them set.
        "DJANGO_SECRET_KEY": ctx.secrets["secret_key"],
        "SECRET_KEY": ctx.secrets["secret_key"],
        "DATABASE_URL": database_url,
    }
    files = {
        "readiness_settings.py": overlay,
        "readiness_wsgi.py": render_wsgi(),
        "readiness_runner.py": render_test_runner(),
    }
    return HostConfig(files=files, secrets=secret_env)


def deploy_step(ctx: Context) -> None:
    """Every host in parallel: its database (if db) and the one stream it lacks (if any).

    Each server's settings are decided here, before any work starts, so a missing
    environment variable is a configuration error naming the variable, not a host failure.
    """
    inv = ctx.inventory
    artifacts = ctx.artifacts
    assert artifacts is not None
    db_host = inv.db_host
    grant: DatabaseGrant | None = None
    if db_host is not None:
        instance = database_instance(ctx.targets[db_host.name], inv.database.port)
        ctx.db = (db_host.name, instance)
        grant = DatabaseGrant(
            name=inv.database.name,
            user=inv.database.user,
            password=ctx.secrets["db_password"],
            client_hosts=tuple(
                "localhost"
                if ctx.plan.database_link(s.name) == "socket"
                else ctx.targets[s.name].ip
                for s in inv.with_role("server")
            ),
        )
    configs = {s.name: _host_config(ctx, s.name) for s in inv.with_role("server")}

    steps: list[dict[str, Any]] = [
        {"host": host.name, "component": component, "status": "running", "duration_s": 0.0}
        for host in inv.hosts
        for component in ("db", "server", "client")
        if component in host.roles and not (component == "db" and grant is None)
    ]
    ctx.record["deploy"] = steps

    def entries(name: str) -> list[dict[str, Any]]:
        return [e for e in steps if e["host"] == name]

    def one(name: str) -> None:
        host = ctx.targets[name].host
        if grant is not None and ctx.db is not None and ctx.db[0] == name:
            t0 = time.monotonic()
            start_database(ctx.transports[name], ctx.db[1], grant)
            for entry in entries(name):
                if entry["component"] == "db":
                    entry.update(status="ok", duration_s=round(time.monotonic() - t0, 3))
            ctx.progress(
                name, "deploy", f"database up on {ctx.db[1].bind_address}:{ctx.db[1].port}"
            )
        if not {"server", "client"} & set(host.roles):
            return
        venvs = []
        if "server" in host.roles:
            venvs.append(artifacts.server_wheels)
        if "client" in host.roles:
            venvs.append(artifacts.client_wheels)
        check_wheels_fit(name, ctx.probes[name].facts, tuple(venvs))
        needs = HostNeeds(
            app="server" in host.roles,
            client="client" in host.roles,
            venvs=tuple({w.digest: w for w in venvs}.values()),
            config=configs.get(name),
        )
        report = push(
            ctx.transports[name], ctx.layout(name), host.python, needs, artifacts, ctx.probes[name]
        )
        for entry in entries(name):
            if entry["component"] != "db":
                entry.update(
                    status="ok",
                    duration_s=round(report.duration_s, 3),
                    sent=list(report.sent),
                    bytes_sent=report.bytes_sent,
                    round_trips=report.round_trips,
                )
        what = ", ".join(report.sent) or "nothing (up to date)"
        ctx.progress(
            name,
            "deploy",
            f"sent {what} ({report.bytes_sent / 1e6:.1f} MB) in {report.duration_s:.1f}s",
        )

    try:
        on_all("deploy", [h.name for h in inv.hosts], one)
    except GroupError as err:
        for name, failure in err.failures.items():
            _keep_output(ctx, name, "deploy", failure)
            for entry in entries(name):
                if entry["status"] == "running":
                    entry.update(status="failed", error=redact(str(failure), ctx.secret_values()))
        raise


def _keep_output(ctx: Context, host: str, step: str, failure: BaseException) -> None:
    """A failed step's full output goes to logs/<host>/<step>.log (the message has one line)."""
    stdout, stderr = getattr(failure, "stdout", ""), getattr(failure, "stderr", "")
    if stdout or stderr:
        ctx.store.write_text(
            redact(
                f"{failure}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n",
                ctx.secret_values(),
            ),
            "logs",
            host,
            f"{step}.log",
        )


def _server_spec(ctx: Context, name: str) -> ServerSpec:
    app = ctx.inventory.application
    assert ctx.artifacts is not None
    layout = ctx.layout(name)
    return ServerSpec(
        layout=layout,
        venv=layout.venv(ctx.artifacts.server_wheels.digest),
        mode=app.server_mode,
        address=ctx.targets[name].ip,
        port=app.server_port,
        fixtures=app.fixtures,
        health_path=app.health_path,
        env=app.env,
    )


def start_servers(ctx: Context) -> None:
    servers = [h.name for h in ctx.inventory.with_role("server")]

    def one(name: str) -> None:
        spec = _server_spec(ctx, name)
        ctx.transports[name].run(server_start_script(spec), timeout=300).check(
            f"starting the {spec.mode}"
        )
        ctx.progress(name, "server", f"{spec.mode} healthy at {spec.url}")

    ctx.servers_up = True
    on_all("starting the server", servers, one)


def stop_servers(ctx: Context) -> None:
    servers = [h.name for h in ctx.inventory.with_role("server")]
    on_all(
        "stopping the server",
        servers,
        lambda name: ctx.transports[name].run(server_stop_script(ctx.layout(name)), timeout=60),
    )
    ctx.servers_up = False


def snapshot_counters(ctx: Context) -> dict[str, dict[str, int]]:
    """Every host's TCP counters, in parallel; a host that does not answer gets ``{}``
    and never costs the other hosts their evidence."""

    def one(name: str) -> dict[str, int]:
        try:
            result = ctx.transports[name].run(counters.SNAPSHOT_SCRIPT, timeout=30)
        except ReadinessError:
            return {}
        return counters.parse(result.stdout) if result.ok else {}

    return on_all("reading TCP counters", ctx.targets, one)


def layers_step(ctx: Context) -> None:
    """Run the layers in order; a failed gate blocks the rest (recorded as ``blocked``)."""
    outcomes: list[dict[str, Any]] = []
    ctx.record["layers"] = outcomes
    ctx.record["counters"] = {}
    blocked_by: str | None = None
    base_url = None
    servers = ctx.inventory.with_role("server")
    if servers:
        base_url = _server_spec(ctx, servers[0].name).url
    for step in ctx.plan.layers:
        layer = step.layer
        if blocked_by is not None:
            outcomes.append(LayerOutcome.blocked(layer, step.hosts, blocked_by).as_record())
            ctx.progress("-", layer.name, f"blocked ({blocked_by})")
            ctx.save()
            continue
        if "server" in layer.needs and not ctx.servers_up:
            start_servers(ctx)
        elif "server" not in layer.needs and ctx.servers_up:
            # testserver and Django's own tests share the test database: never both at once.
            stop_servers(ctx)
        before = snapshot_counters(ctx)
        ctx.progress(", ".join(step.hosts), layer.name, "running")
        assert ctx.artifacts is not None
        outcome = run_layer(
            ctx.store,
            layer,
            {name: ctx.transports[name] for name in step.hosts},
            {name: ctx.layout(name) for name in step.hosts},
            venv_digest=(
                ctx.artifacts.server_wheels.digest
                if layer.role == "server"
                else ctx.artifacts.client_wheels.digest
            ),
            base_url=base_url,
            env=ctx.inventory.application.env,
            secrets=ctx.secret_values(),
        )
        after = snapshot_counters(ctx)
        ctx.record["counters"][layer.name] = {
            host: {
                "before": counters.watched(before.get(host, {})),
                "after": counters.watched(after.get(host, {})),
                "delta": counters.watched(
                    counters.delta(before.get(host, {}), after.get(host, {}))
                ),
            }
            for host in ctx.targets
        }
        outcomes.append(outcome.as_record())
        t = outcome.tests
        ctx.progress(
            ", ".join(step.hosts),
            layer.name,
            f"{outcome.status} in {outcome.duration_s:.1f}s "
            f"({t.passed} passed, {t.failed} failed, {t.errors} errors, {t.skipped} skipped)",
        )
        ctx.save()
        if outcome.status != "passed" and step.gate == "stop":
            blocked_by = f"layer '{layer.name}' {outcome.status}"


LOG_TAIL_BYTES = 1 << 20


def _collect_service_logs(ctx: Context, name: str) -> None:
    """The server's and the database's own logs, for the run record (last 1 MiB each)."""
    layout = ctx.layout(name)
    files = [("server.log", f"{layout.run}/server.log")]
    if ctx.db is not None and ctx.db[0] == name:
        files.append(("mysqld.err", ctx.db[1].error_log))
    for label, path in files:
        result = ctx.transports[name].run(
            f"[ -f {shlex.quote(path)} ] && tail -c {LOG_TAIL_BYTES} {shlex.quote(path)}",
            timeout=60,
        )
        if result.ok and result.stdout:
            ctx.store.write_text(redact(result.stdout, ctx.secret_values()), "logs", name, label)


def teardown_step(ctx: Context) -> None:
    """Keep the services' logs, then stop servers, databases and anything a layer left
    running, and remove secrets; never raises."""
    t0 = time.monotonic()
    failures: dict[str, str] = {}

    def one(name: str) -> None:
        layout = ctx.layout(name)
        with contextlib.suppress(ReadinessError):  # the host may be gone; still try to stop
            _collect_service_logs(ctx, name)
        if ctx.plan.options.keep:
            return
        script = server_stop_script(layout) + stray_kill_script(layout)
        if ctx.db is not None and ctx.db[0] == name:
            script += db_stop_script(ctx.db[1])
        script += (
            f"rm -f {shlex.quote(layout.secrets)} {shlex.quote(layout.etc)}/.readiness-digest\n"
            f"rm -rf {shlex.quote(layout.results(ctx.store.run_id))}\n"
        )
        ctx.transports[name].run(script, timeout=120).check("teardown")

    try:
        on_all("teardown", list(ctx.transports), one)
    except GroupError as err:
        failures = {k: redact(str(v), ctx.secret_values()) for k, v in err.failures.items()}
    ctx.record["teardown"] = {
        "status": "skipped (--keep)" if ctx.plan.options.keep else "failed" if failures else "ok",
        "failures": failures,
        "duration_s": round(time.monotonic() - t0, 3),
    }
    if not ctx.plan.options.keep:
        ctx.progress("all", "teardown", "failed on " + ", ".join(failures) if failures else "done")


STEPS: tuple[Step, ...] = (
    Step("lab", lab_step),
    Step("connect", connect_step),
    Step("build", build_step),
    Step("deploy", deploy_step),
    Step("layers", layers_step),
)


# -- the job ----------------------------------------------------------------------------


def _verdict(ctx: Context) -> tuple[str, int, list[str]]:
    layers = ctx.record.get("layers", [])
    broken = [layer for layer in layers if layer["status"] == "error"]
    if broken:  # could not run at all (a host lost mid-layer): infrastructure, not the app
        reasons = [f"layer '{layer['name']}' could not run: {layer['reason']}" for layer in broken]
        return "error", EXIT_INFRA, reasons
    failed = [layer for layer in layers if layer["status"] not in ("passed", "blocked")]
    if failed:
        reasons = [f"layer '{layer['name']}' {layer['status']}" for layer in failed]
        return "not-ready", EXIT_NOT_READY, reasons
    return "ready", EXIT_READY, []


def execute(
    plan: Plan,
    root: Path,
    say: Callable[[str], None] = print,
    *,
    steps: tuple[Step, ...] = STEPS,
) -> Outcome:
    """Run the whole job; always leaves a run directory with run.json."""
    with _inventory_lock(root / ".state" / plan.inventory.name):
        return _execute(plan, root, say, steps)


@contextlib.contextmanager
def _inventory_lock(state: Path) -> Iterator[None]:
    """One run per inventory at a time: two would share deploy roots, ports and databases."""
    try:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = (state / "lock").open("w")
    except OSError as err:
        raise InfrastructureError(f"cannot create the state folder {state}: {err}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InfrastructureError(
                f"another readiness run of this inventory is in progress (it holds "
                f"{state / 'lock'}); wait for it to finish"
            ) from None
        yield


def _execute(
    plan: Plan, root: Path, say: Callable[[str], None], steps: tuple[Step, ...]
) -> Outcome:
    try:
        store = RunStore.create(root / "reports" / "runs", plan.inventory.name)
    except OSError as err:
        raise InfrastructureError(f"cannot create a run directory under {root}: {err}") from None
    ctx = Context(root=root, plan=plan, store=store, say=say)
    ctx.record.update(
        schema=SCHEMA,
        run_id=store.run_id,
        inventory=plan.inventory.name,
        inventory_file=str(plan.inventory.file),
        suite=plan.suite.name,
        topology=plan.topology,
        database_links=dict(plan.database_links),
        started_at=utc_now(),
        finished_at=None,
        verdict="error",
        reasons=["the run did not finish"],
        hosts=[],
        deploy=[],
        layers=[],
        transport={"collected": False},
        counters={},
        steps=[],
    )
    ctx.save()
    say(f"readiness: run {store.run_id} ({plan.topology}), record in {store.dir}")
    exit_code, verdict, reasons = EXIT_INFRA, "error", ["the run did not finish"]
    try:
        ctx.secrets = load_or_create(root / ".state" / plan.inventory.name / "secrets.json")
        for step in steps:
            t0 = time.monotonic()
            status = "failed"
            try:
                step.run(ctx)
                status = "ok"
            finally:
                ctx.record["steps"].append(
                    {
                        "name": step.name,
                        "status": status,
                        "duration_s": round(time.monotonic() - t0, 3),
                    }
                )
                ctx.save()
        verdict, exit_code, reasons = _verdict(ctx)
    except KeyboardInterrupt:
        verdict, exit_code, reasons = "error", EXIT_INTERRUPTED, ["interrupted (Ctrl-C)"]
    except ReadinessError as err:
        verdict, exit_code = "error", err.exit_code
        reasons = [redact(str(err), ctx.secret_values())]
    except Exception as err:  # a bug in readiness: keep the run and say so
        verdict, exit_code = "error", EXIT_INFRA
        reasons = [f"internal error: {type(err).__name__}: {redact(str(err), ctx.secret_values())}"]
        store.write_text(
            redact(traceback.format_exc(), ctx.secret_values()), "logs", "orchestrator.log"
        )
    finally:
        try:
            if ctx.transports:
                teardown_step(ctx)
        except BaseException as err:  # teardown must never lose the record
            ctx.record["teardown"] = {"status": "failed", "failures": {"all": repr(err)}}
        for transport in ctx.transports.values():
            with contextlib.suppress(Exception):
                transport.close()
        _mark_unrun_layers(ctx, reasons)
        ctx.record.update(verdict=verdict, reasons=reasons, finished_at=utc_now())
        try:
            ctx.save()
            _render_summary(ctx)
        except OSError as err:  # disk full, folder removed: say so, never a traceback
            say(f"readiness: could not write the run record in {store.dir}: {err}")
            exit_code = EXIT_INFRA
    say(f"readiness: verdict {verdict}" + (f" ({'; '.join(reasons)})" if reasons else ""))
    say(f"readiness: run record {store.dir / 'run.json'}")
    if plan.options.keep:
        _say_kept(ctx)
    return Outcome(exit_code=exit_code, run_dir=store.dir, verdict=verdict)


def _say_kept(ctx: Context) -> None:
    """--keep: where the stack that was left running can be reached."""
    if ctx.db is not None:
        host, instance = ctx.db
        ctx.say(
            f"kept: database on {host} at {instance.bind_address}:{instance.port} "
            f"(socket {instance.socket}; user {ctx.inventory.database.user}, password in "
            f"{ctx.root / '.state' / ctx.inventory.name / 'secrets.json'})"
        )
    if ctx.servers_up and ctx.artifacts is not None:
        for server in ctx.inventory.with_role("server"):
            ctx.say(f"kept: server on {server.name} at {_server_spec(ctx, server.name).url}")
    for name, target in ctx.targets.items():
        ctx.say(f"kept: {name} deploy root {target.deploy_root} ({target.user}@{target.address})")


def _mark_unrun_layers(ctx: Context, reasons: list[str]) -> None:
    """Layers that never ran because the run stopped early are recorded as blocked."""
    ran = {layer["name"] for layer in ctx.record.get("layers", [])}
    why = reasons[0] if reasons else "the run stopped"
    for step in ctx.plan.layers:
        if step.layer.name not in ran:
            ctx.record.setdefault("layers", []).append(
                LayerOutcome.blocked(step.layer, step.hosts, why).as_record()
            )


def _render_summary(ctx: Context) -> None:
    try:
        from orchestrator.report import render_index, render_run

        render_run(ctx.store.dir)
        render_index(ctx.root / "reports")
    except Exception:  # a report that crashes must not crash the run (Jepsen)
        ctx.store.write_text(traceback.format_exc(), "logs", "report-error.log")
        print("readiness: the HTML summary could not be rendered (see logs)", file=sys.stderr)


def load_plan(root: Path, inventory_arg: str, suite_arg: str | None, options: Options) -> Plan:
    """Validate the inventory and the suite (no host is contacted) and plan the run."""
    from orchestrator import inventory as inventory_mod
    from orchestrator import suite as suite_mod

    inventory = inventory_mod.load_inventory(inventory_mod.resolve(inventory_arg, root=root))
    suite_path = suite_mod.resolve(
        suite_arg or inventory.suite, root=root, relative_to=inventory.file.parent
    )
    suite = suite_mod.load_suite(suite_path)
    return build_plan(inventory, suite, options)
