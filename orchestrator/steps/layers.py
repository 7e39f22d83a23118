"""Step ``layers``: run the suite's layers in order, each in a window of evidence.

Each layer runs between :func:`~orchestrator.forensics.open_window` and
:func:`~orchestrator.forensics.close_window` (TCP counters, RST capture, accept-queue
sampler on every host); its ledger, read by the close, is then attributed.

The live server runs only for the layers that need it: ``testserver`` and Django's own
tests share the test database, so they never run at the same time. It is started (or
stopped) in the script that opens the layer's window on its host, first: one round trip
per host and layer, the server healthy (or gone) before the window opens. It is started
once for all the consecutive layers that need it, anew for each ``--repeat`` pass. A
failed ``stop`` gate blocks the later layers, which are recorded as ``blocked``.

After each layer, every test case the layers stored so far is rewritten into the run's
``tests.jsonl`` and merged ``junit.xml`` (:mod:`orchestrator.testcases`), before the
record is saved: an interrupted run keeps the cases of the layers that ran.

The terminal tells a setup step from a test layer: ``step collectstatic ok (3.1s)``, or
``step collectstatic failed (exit 1)`` followed by the end of its output, where a test
layer's line gives its counts. "0 tests" would say nothing about a step, and its
output's end is usually the whole explanation (a traceback, the command's own error).
A layer that did not pass says why on its line (a missing JUnit XML with the hint to
make it a step), so the reason is not only in the record.
"""

from __future__ import annotations

import contextlib
import signal
import time
import traceback
from dataclasses import replace

from orchestrator import forensics
from orchestrator.components import AppServer
from orchestrator.context import Context
from orchestrator.exceptions import InfrastructureError, ReadinessError
from orchestrator.hosts import on_all
from orchestrator.layers import LayerOutcome, run_layer
from orchestrator.ledger import HostLedger, pass_rates
from orchestrator.plan import LayerStep
from orchestrator.testcases import write_run_tests

# (pass number, the layer's name in the suite, what its ledger held on each host)
History = list[tuple[int, str, list[HostLedger]]]


def layers_step(ctx: Context) -> None:
    """Run the layers in order; a failed gate blocks the rest (recorded as ``blocked``);
    with ``--repeat``, the client layers again."""
    ctx.record.layers = []
    ctx.record.bursts = []
    ctx.record.counters = {}
    history: History = []
    blocked_by: str | None = None
    for step in ctx.plan.layers:
        if blocked_by is not None:
            ctx.record.layers.append(
                LayerOutcome.blocked(step.layer, step.hosts, blocked_by).to_record()
            )
            _say(ctx, "-", step.layer.step, step.layer.name, f"blocked ({blocked_by})")
            _keep_tests(ctx)
            ctx.save()
            continue
        outcome = _run_and_keep(ctx, step, 1, history)
        if outcome.status != "passed" and step.gate == "stop":
            kind = "step" if step.layer.step else "layer"
            blocked_by = f"{kind} '{step.layer.name}' {outcome.status}"
    _repeat(ctx, history, blocked_by)
    # A deploy that went on in the background and failed leaves a host that is not
    # ready, even when no layer ran there (a gate stopped the sequence before it).
    ctx.deploys.wait(ctx.plan.hosts)


def _repeat(ctx: Context, history: History, blocked_by: str | None) -> None:
    """Passes 2..N of the client layers (``--repeat``), each against a fresh server (its
    fixtures loaded anew, so every pass starts from the same data), no redeploy. An
    intermittent failure shows as a pass rate below 1, and where in the sequence the
    transport errors fall, pass after pass."""
    passes = ctx.plan.options.repeat
    clients = [step for step in ctx.plan.layers if step.layer.role == "client"]
    if passes < 2 or not clients:
        return
    if blocked_by is not None:
        ctx.progress("-", "repeat", f"skipped: {blocked_by}")
        return
    repeated = {step.layer.name for step in clients}
    for number in range(2, passes + 1):
        for at, step in enumerate(clients):
            again = replace(step, layer=replace(step.layer, name=f"{step.layer.name}.{number}"))
            # The pass's first layer restarts the server (or stops it, if it needs none).
            if _run_and_keep(ctx, again, number, history, fresh=at == 0).status == "error":
                ctx.progress("-", "repeat", "stopped: the stack broke (see the layer's reason)")
                ctx.record.pass_rates = pass_rates(h for h in history if h[1] in repeated)
                return
    ctx.record.pass_rates = pass_rates(h for h in history if h[1] in repeated)


def _run_and_keep(
    ctx: Context, step: LayerStep, number: int, history: History, *, fresh: bool = False
) -> LayerOutcome:
    # A client host's deploy may still be going on (pipelined); one that failed ends the
    # run before this layer, which is then recorded as blocked by it, not interrupted.
    ctx.deploys.wait(step.hosts)
    ctx.running_layer = step.layer.name
    outcome, books = _run(ctx, step, number, fresh)
    ctx.running_layer = None
    name = step.layer.name.rsplit(".", 1)[0] if number > 1 else step.layer.name
    history.append((number, name, books))
    ctx.save()
    return outcome


def _run(
    ctx: Context, step: LayerStep, number: int, fresh: bool
) -> tuple[LayerOutcome, list[HostLedger]]:
    layer = step.layer
    opened = _open(ctx, step, fresh=fresh)
    hosts = ", ".join(step.hosts)
    _say(ctx, hosts, layer.step, layer.name, "running")
    start_s = round(time.monotonic() - ctx.started, 3)
    assert ctx.artifacts is not None
    wheels = ctx.artifacts.server_wheels if layer.role == "server" else ctx.artifacts.client_wheels
    outcome = run_layer(
        ctx.store,
        layer,
        {name: ctx.transports[name] for name in step.hosts},
        {name: ctx.layout(name) for name in step.hosts},
        venv_digest=wheels.digest,
        base_url=next((s.url for s in ctx.servers.values()), None),
        env=ctx.inventory.application.env,
        secrets=ctx.secret_values(),
        health_path=ctx.inventory.application.health_path,
    )
    outcome, died = _checked(ctx, step, outcome)
    closed = forensics.close_window(ctx, step)
    ctx.record.bursts += outcome.bursts  # before the window's finding, which reads them
    books = forensics.record_window(ctx, step, opened, closed, server_died=died)
    ctx.record.layers.append(replace(outcome.to_record(), repeat=number, start_s=start_s))
    _keep_tests(ctx)
    if outcome.setup:
        _say(ctx, hosts, True, layer.name, _step_summary(outcome))
        _say_tails(ctx, outcome)
    else:
        ctx.progress(hosts, layer.name, _summary(outcome))
    return outcome, books


def _checked(
    ctx: Context, step: LayerStep, outcome: LayerOutcome
) -> tuple[LayerOutcome, frozenset[str]]:
    """The layer's outcome once its stack is checked where that can change the verdict
    or the attribution, and the server hosts whose server was found dead.

    A failed or timed-out layer is checked (:func:`_blame_the_stack`). So is every burst
    layer, though a burst that ran passes whatever it measured: a burst is what kills a
    server (an overflow, a worker that dies under load), and one that died during it must
    reach the attribution (``server_died``: its resets are
    ``killed-with-queued-connections``) and the verdict (an ``error``, as for any layer
    whose server died), never a plain pass. A burst on a healthy stack stays as it was.
    """
    if outcome.status in ("failed", "timeout") or step.layer.burst is not None:
        return _blame_the_stack(ctx, step, outcome)
    return outcome, frozenset()


def _say(ctx: Context, hosts: str, step: bool, name: str, message: str) -> None:
    """A progress line about a layer (``unit passed ...``) or a step (``step migrate ok``)."""
    if step:
        ctx.progress(hosts, "step", f"{name} {message}")
    else:
        ctx.progress(hosts, name, message)


def _step_summary(outcome: LayerOutcome) -> str:
    """``ok (3.1s)``; ``failed (exit 1)``; ``timeout``/``error`` with the reason."""
    if outcome.status == "passed":
        return f"ok ({outcome.duration_s:.1f}s)"
    failed = [run for run in outcome.runs if run.status == "failed"]
    if outcome.status == "failed" and failed:
        if len(outcome.runs) == 1:
            return f"failed (exit {failed[0].exit_code})"
        return "failed (" + ", ".join(f"exit {r.exit_code} on {r.host}" for r in failed) + ")"
    return f"{outcome.status} ({outcome.reason or f'after {outcome.duration_s:.1f}s'})"


def _say_tails(ctx: Context, outcome: LayerOutcome) -> None:
    """The end of a failed step's output on each host, under its line: already scrubbed
    when stored, scrubbed again for any secret learnt since."""
    for run in outcome.runs:
        if not run.tail or run.log is None:
            continue
        log = ctx.store.dir / run.log
        ctx.say(
            f"    the last {len(run.tail)} lines of its output on {run.host} (all of it: {log}):"
        )
        for line in run.tail:
            ctx.say(ctx.redact(f"    | {line}"))


def _keep_tests(ctx: Context) -> None:
    """Rewrite the run's per-test files from the JUnit its layers stored. They are a view
    of evidence already kept, so a failure here must not fail the run (Jepsen: a checker
    that crashes yields its traceback, never a crashed run)."""
    try:
        write_run_tests(ctx.store, ctx.record)
    except Exception:
        why = ctx.redact(traceback.format_exc())
        # The disk that refused the tests may refuse their log too: the run goes on.
        with contextlib.suppress(OSError):
            ctx.store.write_text(why, "logs", "tests-error.log")
        ctx.progress("-", "tests", "the per-test files could not be written (logs/tests-error.log)")


def _summary(outcome: LayerOutcome) -> str:
    """One line for the terminal: test counts, or what a burst probe measured; and, when
    the layer did not pass, the reason (counts read from no JUnit XML would mean nothing)."""
    head = f"{outcome.status} in {outcome.duration_s:.1f}s"
    if outcome.bursts:
        parts = []
        for b in outcome.bursts:
            errors = ", ".join(f"{n} {name}" for name, n in sorted(b.errors.items()))
            p99 = b.latency_ms.get("p99")
            parts.append(
                f"burst of {b.requests} from {b.host}: {b.ok} ok"
                + (f", {errors}" if errors else "")
                + (f", {b.slow} slow" if b.slow else "")
                + (f", p99 {p99 / 1000:.2f}s" if p99 is not None else "")
            )
        return f"{head} ({'; '.join(parts)})"
    t = outcome.tests
    counts = f" ({t.passed} passed, {t.failed} failed, {t.errors} errors, {t.skipped} skipped)"
    if outcome.status == "passed" or not outcome.reason:
        return head + counts
    if not any(run.junit for run in outcome.runs):
        counts = ""
    return f"{head}{counts}: {outcome.reason}"


# Exit statuses of a layer whose process a signal from outside killed (bash: 128 + n).
KILLED_BY = {128 + signal.SIGKILL: "SIGKILL", 128 + signal.SIGTERM: "SIGTERM"}


def _blame_the_stack(
    ctx: Context, step: LayerStep, outcome: LayerOutcome
) -> tuple[LayerOutcome, frozenset[str]]:
    """A failed layer is the application's fault only if the stack it ran on was healthy.

    Asked after a failure, and after every burst (which passes whatever the server did; a
    healthy run of tests pays nothing): is every component the layer needed still running
    and answering, and did the layer end on its own? If not,
    the layer is an ``error`` naming the component, its host and its log's last lines:
    infrastructure, exit 3, never "not ready". Also gives the hosts whose server was found
    dead (the attribution's evidence for a server killed with connections queued).
    """
    problems = [
        f"the layer's process on {run.host} was killed by {KILLED_BY[run.exit_code]} from "
        "outside readiness"
        for run in outcome.runs
        if not run.timed_out and run.exit_code in KILLED_BY
    ]
    checks: dict[str, tuple[str, str]] = {}  # label -> (host, script)
    if "database" in step.layer.needs and ctx.database is not None:
        db = ctx.database
        checks[f"the database on {db.host}"] = (db.host, db.health_script())
    servers = {}
    if "server" in step.layer.needs and ctx.servers_up:
        servers = {
            f"the {s.mode} on {host}": (host, s.health_script()) for host, s in ctx.servers.items()
        }
    unhealthy = _unhealthy(ctx, {**checks, **servers})
    dead = frozenset(servers[label][0] for label in unhealthy if label in servers)
    if dead:
        ctx.servers_up = False  # a later layer that needs it starts a fresh one
    problems += unhealthy.values()
    if not problems:
        return outcome, dead
    reason = "; ".join(problems) + (f" (the layer: {outcome.reason})" if outcome.reason else "")
    return replace(outcome, status="error", reason=ctx.redact(reason)), dead


def _unhealthy(ctx: Context, checks: dict[str, tuple[str, str]]) -> dict[str, str]:
    """label -> what its failed health check says, for each component that is unwell."""

    def one(label: str) -> str | None:
        host, script = checks[label]
        try:
            result = ctx.transports[host].run(script, timeout=60)
        except ReadinessError as err:
            return f"{label} could not be checked: {err}"
        if result.ok:
            return None
        # The scripts say why on their first line, then show the component's log.
        why, *log = [line.strip() for line in result.stderr.strip().splitlines()] or ["?"]
        tail = " / ".join(log[-6:])
        return f"{label} died or stopped answering during the layer: {why} {tail}".rstrip()

    found = on_all("checking the stack", checks, one)
    return {label: message for label in checks if (message := found[label])}


# How long a server's start (stop) may take: its health wait is 120 s, a start that
# creates the test database and loads fixtures on a slow host comes close to that.
START_S = 300.0
STOP_S = 60.0


def _open(ctx: Context, step: LayerStep, *, fresh: bool) -> forensics.Opened:
    """Open the layer's window on every host, with the servers started first (in the same
    script on their hosts) for a layer that needs them, or stopped before one that does
    not. ``fresh``: a server already up is started anew (a ``--repeat`` pass)."""
    needed = "server" in step.layer.needs
    if needed and not ctx.servers:
        raise InfrastructureError(
            "a layer needs the application server, but none was deployed (the deploy step "
            "builds them)"
        )
    if needed and (fresh or not ctx.servers_up):
        ctx.servers_up = True  # teardown stops them even if a start fails half-way
        # The start script stops an earlier server of the deploy first: a fresh one.
        starts = {name: _start(server) for name, server in ctx.servers.items()}
        return forensics.open_window(ctx, step, starts, "starting the server")
    if not needed and ctx.servers_up:
        stops = {
            name: forensics.Transition(
                server.stop_script(), STOP_S, "stopping the server", gated=False
            )
            for name, server in ctx.servers.items()
        }
        opened = forensics.open_window(ctx, step, stops, "stopping the server")
        ctx.servers_up = False
        return opened
    return forensics.open_window(ctx, step)


def _start(server: AppServer) -> forensics.Transition:
    return forensics.Transition(
        server.start_script(),
        START_S,
        f"starting the {server.mode}",
        gated=True,
        said=f"{server.mode} healthy at {server.url}",
    )
