"""The readiness job: its steps in order (Molecule's lifecycle as data), run and recorded.

``lab -> connect -> build -> deploy -> layers``, then ``teardown`` always (after success,
failure, timeout or Ctrl-C). The record is written to the run store after every step,
so whatever ran is kept even if a later step or the orchestrator itself fails. Each
step lives in its own module under :mod:`orchestrator.steps`; this module holds only
their order, the executor, the per-inventory lock and the verdict, which maps to the
CLI contract's exit codes: 0 ready, 1 not ready (a gate failed), 2 configuration
error, 3 infrastructure error, 128 + the signal's number when interrupted.
"""

from __future__ import annotations

import contextlib
import fcntl
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator import faults
from orchestrator.context import Context
from orchestrator.exceptions import InfrastructureError, ReadinessError
from orchestrator.interrupts import Interrupted, Trap, as_interrupted, trapped
from orchestrator.layers import LayerOutcome
from orchestrator.ledger import flagged_reasons
from orchestrator.plan import Options, Plan, build_plan
from orchestrator.provenance import record_provenance
from orchestrator.record import InterruptRecord, RunRecord, TeardownRecord
from orchestrator.steps.build import build_step
from orchestrator.steps.connect import connect_step
from orchestrator.steps.deploy import deploy_step
from orchestrator.steps.faults import faults_step
from orchestrator.steps.lab import lab_step
from orchestrator.steps.layers import layers_step
from orchestrator.steps.teardown import teardown_step
from orchestrator.store import RunStore, utc_now
from orchestrator.vault import load_or_create

# The CLI contract's exit codes (2, a configuration error, is the ConfigError's own; an
# interrupted run exits 128 + the signal: 130 SIGINT, 143 SIGTERM, 129 SIGHUP).
EXIT_READY, EXIT_NOT_READY, EXIT_INFRA = 0, 1, 3


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context], None]


STEPS: tuple[Step, ...] = (
    Step("lab", lab_step),
    Step("connect", connect_step),
    Step("build", build_step),
    Step("deploy", deploy_step),
    Step("faults", faults_step),
    Step("layers", layers_step),
)


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    run_dir: Path
    verdict: str


@dataclass(frozen=True)
class Verdict:
    verdict: str
    exit_code: int
    reasons: list[str]


def verdict_of(record: RunRecord) -> Verdict:
    """The verdict of a run whose steps all finished, from its layers."""
    broken = [layer for layer in record.layers if layer.status == "error"]
    if broken:  # could not run at all (a host lost mid-layer): infrastructure, not the app
        reasons = [f"layer '{layer.name}' could not run: {layer.reason}" for layer in broken]
        return Verdict("error", EXIT_INFRA, reasons)
    # Tests that passed only after retries, or with transport errors in them: the verdict
    # says so, whatever it is (retries hid the origin story's resets).
    flagged = flagged_reasons(record.ledger.flagged)
    failed = [layer for layer in record.layers if layer.status not in ("passed", "blocked")]
    if failed:
        return Verdict(
            "not-ready",
            EXIT_NOT_READY,
            [f"{layer.noun} '{layer.name}' {layer.status}" for layer in failed] + flagged,
        )
    return Verdict("ready", EXIT_READY, flagged)


def execute(
    plan: Plan,
    root: Path,
    say: Callable[[str], None] = print,
    *,
    steps: tuple[Step, ...] = STEPS,
) -> Outcome:
    """Run the whole job; always leaves a run directory with run.json.

    SIGINT, SIGTERM and SIGHUP all end the run the same way: the running step stops,
    teardown runs to its end (later signals are only noted), and the record is finished
    with verdict ``interrupted`` and exit code 128 + the signal's number.
    """
    with _inventory_lock(root / ".state" / plan.inventory.name), trapped(say) as trap:
        ctx = _start(plan, root, say)
        verdict = Verdict("error", EXIT_INFRA, ["the run did not finish"])
        try:
            verdict = _run_steps(ctx, steps)
        finally:  # whatever escaped, the hosts are cleaned and the record is kept
            exit_code = _finish(ctx, verdict, trap)
    say(
        f"readiness: verdict {verdict.verdict}"
        + (f" ({'; '.join(verdict.reasons)})" if verdict.reasons else "")
    )
    ledger = ctx.record.ledger
    if ledger.errors or ledger.resets:  # who reset the connections, in one sentence
        say(f"readiness: transport: {ledger.finding}")
    say(f"readiness: run record {ctx.store.dir / 'run.json'}")
    if plan.options.keep:
        _say_kept(ctx)
    return Outcome(exit_code=exit_code, run_dir=ctx.store.dir, verdict=verdict.verdict)


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


def _start(plan: Plan, root: Path, say: Callable[[str], None]) -> Context:
    """A new run directory with a record that says "did not finish" until it does."""
    try:
        store = RunStore.create(root / "reports" / "runs", plan.inventory.name)
    except OSError as err:
        raise InfrastructureError(f"cannot create a run directory under {root}: {err}") from None
    record = RunRecord(
        run_id=store.run_id,
        inventory=plan.inventory.name,
        inventory_file=str(plan.inventory.file),
        suite=plan.suite.name,
        topology=plan.topology,
        database_links=dict(plan.database_links),
        started_at=utc_now(),
        repeat=plan.options.repeat,
    )
    record_provenance(record, store, plan)
    ctx = Context(root=root, plan=plan, store=store, record=record, say=say)
    ctx.save()
    say(f"readiness: run {store.run_id} ({plan.topology}), record in {store.dir}")
    return ctx


def _run_steps(ctx: Context, steps: tuple[Step, ...]) -> Verdict:
    """Every step in order; the first that raises ends the sequence with its verdict."""
    try:
        ctx.secrets = load_or_create(ctx.state_dir / "secrets.json")
        for step in steps:
            _run_step(ctx, step)
        return verdict_of(ctx.record)
    except KeyboardInterrupt as err:
        return _interrupted(ctx, as_interrupted(err))
    except ReadinessError as err:
        return Verdict("error", err.exit_code, [ctx.redact(str(err))])
    except Exception as err:  # a bug in readiness: keep the run and say so
        ctx.store.write_text(ctx.redact(traceback.format_exc()), "logs", "orchestrator.log")
        return Verdict(
            "error", EXIT_INFRA, [f"internal error: {type(err).__name__}: {ctx.redact(str(err))}"]
        )


def _run_step(ctx: Context, step: Step) -> None:
    t0, trips = time.monotonic(), ctx.round_trips()
    status = "failed"
    ctx.running_step = step.name
    try:
        step.run(ctx)
        status = "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        ctx.step_done(step.name, status, t0, trips)
    ctx.running_step = None


def _interrupted(ctx: Context, err: Interrupted) -> Verdict:
    """What was running when the signal came is part of the record."""
    ctx.record.interrupted = InterruptRecord(err.name, ctx.running_step, ctx.running_layer)
    where = f" during step '{ctx.running_step}'" if ctx.running_step else ""
    if ctx.running_layer:
        where += f", layer '{ctx.running_layer}'"
    return Verdict("interrupted", err.exit_code, [f"interrupted by {err.name}{where}"])


def _finish(ctx: Context, verdict: Verdict, trap: Trap) -> int:
    """Teardown, then the final record and the HTML summary; returns the exit code."""
    trap.hold()  # a signal now (even a first one) must not cut the teardown in half
    try:
        if ctx.transports:
            teardown_step(ctx)
    except BaseException as err:  # teardown must never lose the record
        ctx.record.teardown = TeardownRecord(status="failed", failures={"all": repr(err)})
    for transport in ctx.transports.values():
        with contextlib.suppress(Exception):
            transport.close()
    _mark_unrun_layers(ctx, verdict.reasons)
    if ctx.record.interrupted is None and trap.noted:  # the run was done; its teardown not
        ctx.record.interrupted = InterruptRecord(trap.noted[0], "teardown")
    if ctx.record.interrupted is not None:
        ctx.record.interrupted.noted = list(trap.noted)
    ctx.record.verdict, ctx.record.reasons = verdict.verdict, verdict.reasons
    ctx.record.finished_at = utc_now()
    try:
        ctx.save()
        _render_summary(ctx)
    except OSError as err:  # disk full, folder removed: say so, never a traceback
        ctx.say(f"readiness: could not write the run record in {ctx.store.dir}: {err}")
        return EXIT_INFRA
    return verdict.exit_code


def _say_kept(ctx: Context) -> None:
    """--keep: where the stack that was left running can be reached."""
    if ctx.database is not None:
        ctx.say(
            f"kept: database on {ctx.database.host} at {ctx.database.describe()} (user "
            f"{ctx.inventory.database.user}, password in {ctx.state_dir / 'secrets.json'})"
        )
    if ctx.servers_up:
        for name, server in ctx.servers.items():
            ctx.say(f"kept: server on {name} at {server.url}")
    for name, target in ctx.targets.items():
        ctx.say(f"kept: {name} deploy root {target.deploy_root} ({target.user}@{target.address})")


def _mark_unrun_layers(ctx: Context, reasons: list[str]) -> None:
    """Layers that never ran because the run stopped early are recorded as blocked."""
    ran = {layer.name for layer in ctx.record.layers}
    why = reasons[0] if reasons else "the run stopped"
    for step in ctx.plan.layers:
        if step.layer.name not in ran:
            outcome = LayerOutcome.blocked(step.layer, step.hosts, why)
            if step.layer.name == ctx.running_layer:  # the one a signal cut short
                outcome = replace(outcome, status="interrupted")
            ctx.record.layers.append(outcome.to_record())


def _render_summary(ctx: Context) -> None:
    """Every page: one that cannot be rendered must not crash the run (Jepsen)."""
    try:
        from orchestrator.report import render_all

        render_all(ctx.root / "reports", ctx.store.dir)
    except Exception as err:
        if not (ctx.store.dir / "logs" / "report-error.log").is_file():
            ctx.store.write_text(traceback.format_exc(), "logs", "report-error.log")
        print(f"readiness: {err} (see logs/report-error.log)", file=sys.stderr)


def load_plan(root: Path, inventory_arg: str, suite_arg: str | None, options: Options) -> Plan:
    """Validate the inventory and the suite (no host is contacted) and plan the run.

    A suite the inventory chose is reported with the inventory line that chose it.
    """
    from orchestrator import inventory as inventory_mod
    from orchestrator import suite as suite_mod
    from orchestrator.exceptions import ConfigError

    inventory = inventory_mod.load_inventory(inventory_mod.resolve(inventory_arg, root=root))
    named, folder = suite_arg or inventory.suite, inventory.file.parent
    try:
        suite = suite_mod.load_suite(suite_mod.resolve(named, root=root, relative_to=folder))
    except ConfigError as err:
        if suite_arg:
            raise
        raise inventory_mod.suite_error(inventory, err) from None
    plan = build_plan(inventory, suite, options)
    faults.check(plan)  # --faults: a lab inventory, and a kernel that can do them
    return plan
