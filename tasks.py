"""invoke entry point for readiness: thin tasks over the ``orchestrator`` package.

This is the only place that turns errors into exit codes (DESIGN.md): every task runs
inside :func:`_exits`, which prints a :class:`ReadinessError` as one paragraph and exits
with its code instead of showing a traceback for a user mistake.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from orchestrator.exceptions import ReadinessError

if TYPE_CHECKING:
    from orchestrator.report import StoredRun


@contextmanager
def _exits() -> Iterator[None]:
    """Print readiness errors for the user and exit with the contract's code."""
    try:
        yield
        sys.stdout.flush()  # a closed pipe fails here, not in the interpreter's last flush
    except BrokenPipeError:
        # Whoever read stdout has gone (`... --dry-run | head -1`): nothing to report to
        # them. Later writes go to /dev/null; the exit code is SIGPIPE's, 128 + 13, like
        # any command whose reader left, and never 0, which would claim a verdict.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Exit(code=141) from None
    except ReadinessError as err:
        print(f"readiness: {err}", file=sys.stderr)
        raise Exit(code=err.exit_code) from None
    except KeyboardInterrupt as err:
        # Outside a run (a run finishes its own record and exit code): SIGINT 130,
        # SIGTERM 143, SIGHUP 129.
        print("readiness: interrupted", file=sys.stderr)
        raise Exit(code=getattr(err, "exit_code", 130)) from None
    except Exit:
        raise
    except Exception as err:
        # A bug in readiness, not a user mistake: one paragraph, exit 3, and the traceback
        # only on request, so that a crash is never mistaken for "not ready" (exit 1).
        if os.environ.get("READINESS_DEBUG"):
            traceback.print_exc()
        print(
            f"readiness: internal error ({type(err).__name__}: {err}). This is a bug in "
            "readiness; run again with READINESS_DEBUG=1 to see the traceback.",
            file=sys.stderr,
        )
        raise Exit(code=3) from None


def _usage_errors_exit_2() -> None:
    """A command line invoke cannot parse (an unknown flag, a flag without its value, an
    unknown task) is a user mistake: exit 2 with one paragraph, as for every other one,
    not invoke's exit 1, which here means "not ready".

    invoke has no setting for that code. It imports this file after parsing its own
    flags and before parsing the tasks' flags, so wrapping ``Program.parse_tasks`` here
    covers every task's command line (and only that: errors of invoke's own flags,
    parsed before any tasks file is found, stay invoke's).
    """
    from invoke.exceptions import ParseError
    from invoke.program import Program

    parse = Program.parse_tasks
    if getattr(parse, "readiness_exit_2", False):  # imported twice (tests): wrap once
        return

    def parse_tasks(self: Program) -> None:
        try:
            parse(self)
        except ParseError as err:
            # invoke names a flag missing its value by its repr: say it as it is typed.
            said = re.sub(
                r"Flag <Argument: ([\w-]+)[^>]*> needed value and was not given one!",
                lambda m: f"--{m.group(1).replace('_', '-')} needs a value.",
                str(err),
            )
            raise Exit(
                message=f"readiness: {said} See `invoke --list` for the tasks and "
                "`invoke --help TASK` for a task's flags.",
                code=2,
            ) from None

    parse_tasks.readiness_exit_2 = True  # type: ignore[attr-defined]
    Program.parse_tasks = parse_tasks  # type: ignore[method-assign]


_usage_errors_exit_2()
ns = Collection()


# --------------------------------------------------------------------------- lab


@task(
    name="up",
    auto_shortflags=False,
    help={
        "hosts": "number of lab hosts (default: the existing lab's, else 4)",
        "prefix": "name prefix of everything the lab creates, [a-z0-9], max 6 (default rdy)",
        "subnet": "private IPv4 subnet of the lab (default: existing, else 10.213.71.0/24)",
    },
)
def lab_up_task(
    c: Context, hosts: str | None = None, prefix: str | None = None, subnet: str | None = None
) -> None:
    """Create or repair the local lab: namespaces on a bridge, one sshd each (root)."""
    with _exits():
        from orchestrator.lab import lab_up as up

        lab = up(hosts=hosts, prefix=prefix, subnet=subnet)
        print(f"lab '{lab.prefix}' is up: {len(lab.hosts)} host(s) on {lab.subnet}")
        for host in lab.hosts:
            print(f"  {host.name}  {host.address}  sshd pid {host.sshd_pid}")


@task(name="status", help={"prefix": "prefix of the lab (default rdy)"})
def lab_status_task(c: Context, prefix: str | None = None) -> None:
    """Show every lab host and its SSH round trip; exit 3 if one is unhealthy."""
    with _exits():
        from orchestrator.exceptions import InfrastructureError
        from orchestrator.lab import lab_status as status

        report = status(prefix=prefix)
        print(report.table())
        if not report.ok:
            names = ", ".join(h.name for h in report.unhealthy)
            raise InfrastructureError(
                f"lab '{report.prefix}' is unhealthy ({names}); `invoke lab.up` repairs it"
            )


@task(name="down", help={"prefix": "prefix of the lab (default rdy)"})
def lab_down_task(c: Context, prefix: str | None = None) -> None:
    """Remove every namespace, link, process and file of the lab (root)."""
    with _exits():
        from orchestrator.lab import lab_down as down

        print(down(prefix=prefix).summary())


lab_tasks = Collection("lab", lab_up_task, lab_status_task, lab_down_task)
ns.add_collection(lab_tasks)


# --------------------------------------------------------------------------- readiness

ROOT = Path(__file__).resolve().parent
# Where run records, per-inventory secrets and the wheelhouse cache go; the tests point
# it at a temporary folder so that they never mix their runs into the user's reports.
WORK = Path(os.environ.get("READINESS_WORKDIR") or ROOT)
# More passes than this is a load test, not a readiness check.
MAX_REPEAT = 100


@task(
    help={
        "inventory": "inventory name in inventories/ (single, cluster) or a path to a YAML file",
        "suite": "suite name in suites/ or a path (default: the inventory's 'suite')",
        "dry-run": "print the plan and touch nothing",
        "keep-going": "run every layer even after a failing gate",
        "keep": "leave servers and databases running after the run",
        "repeat": "run the client layers N times without redeploying (per-test pass rates)",
        "faults": "lab only: provoke faults, NAME[=VALUE],... "
        "(resets, loss, bandwidth, abort-on-overflow, latency)",
    },
)
def readiness(
    c: Context,
    inventory: str | None = None,
    suite: str | None = None,
    dry_run: bool = False,
    keep_going: bool = False,
    keep: bool = False,
    repeat: str = "1",  # parsed here: invoke's int() cast would end in a traceback
    faults: str = "",
) -> None:
    """Deploy db, server and client, run the layers in order, record the run (exit 0 = ready)."""
    with _exits():
        from orchestrator.exceptions import ConfigError
        from orchestrator.lifecycle import execute, load_plan
        from orchestrator.plan import Options
        from orchestrator.provenance import command_line

        if not inventory:
            raise ConfigError(
                "--inventory is required: a name in inventories/ (single, cluster) or a path "
                "to an inventory file, e.g. `invoke readiness --inventory=single`"
            )

        passes = int(repeat) if repeat.strip().isdigit() else 0
        if not 1 <= passes <= MAX_REPEAT:
            raise ConfigError(f"--repeat must be a number from 1 to {MAX_REPEAT}; got {repeat!r}")
        options = Options(
            keep_going=keep_going,
            keep=keep,
            dry_run=dry_run,
            faults=tuple(f.strip() for f in faults.split(",") if f.strip()),
            repeat=passes,
        )
        options = replace(options, command=command_line(inventory, suite, options))
        plan = load_plan(ROOT, inventory, suite, options)
        if dry_run:
            print(plan.describe())
            return
        outcome = execute(plan, WORK)
        print(
            f"report: {outcome.run_dir / 'report.html'}"
            f"  (all runs: {WORK / 'reports' / 'index.html'})"
        )
        if keep:
            print(
                "--keep: servers and databases are still running; "
                "`invoke readiness` again redeploys"
            )
    if outcome.exit_code:
        raise Exit(code=outcome.exit_code)


@task(
    help={
        "run": "a run directory (default: every run under reports/runs)",
        "compare": "RUN_A,RUN_B: compare these two runs in index.html and summary.md (each a "
        "run id in reports/runs or a run directory; default: the latest of each topology)",
    }
)
def report(c: Context, run: str | None = None, compare: str | None = None) -> None:
    """Rebuild the HTML reports, the all-on-one vs distributed index, history and summary."""
    with _exits():
        from orchestrator.exceptions import ConfigError
        from orchestrator.report import render_history, render_index, render_run, render_summary

        # Checked before anything is written: a typo leaves the last pages as they were.
        named = _named_runs(compare) if compare is not None else None
        runs = [Path(run)] if run else sorted((WORK / "reports" / "runs").glob("*/"))
        if run and not (Path(run) / "run.json").is_file():
            raise ConfigError(f"{run} is not a run directory (it has no run.json)")
        for run_dir in runs:
            if (run_dir / "run.json").is_file():
                try:
                    print(render_run(run_dir))
                except Exception as err:  # one unreadable record must not stop the others
                    print(f"readiness: skipped {run_dir}: {type(err).__name__}: {err}")
        print(render_index(WORK / "reports", named))
        print(render_history(WORK / "reports"))
        print(render_summary(WORK / "reports", named))


def _named_runs(value: str) -> tuple[StoredRun, StoredRun]:
    """``--compare=RUN_A,RUN_B`` (invoke options take one value, hence the comma): each
    a run id of reports/runs or the path of a run directory."""
    from orchestrator.exceptions import ConfigError
    from orchestrator.report import StoredRun
    from orchestrator.store import read_record

    names = [name.strip() for name in value.split(",")]
    if len(names) != 2 or not all(names):
        raise ConfigError(
            "--compare takes two runs, --compare=RUN_A,RUN_B, each a run id in reports/runs "
            f"or a run directory; got {value!r}"
        )
    runs_root = WORK / "reports" / "runs"
    found = []
    for name in names:
        run_dir = next(
            (d for d in (runs_root / name, Path(name)) if (d / "run.json").is_file()), None
        )
        if run_dir is None:
            raise ConfigError(
                f"--compare: {name!r} is neither a run in {runs_root} nor a run directory "
                "(a folder with a run.json)"
            )
        try:
            found.append(StoredRun(run_dir, read_record(run_dir)))
        except (OSError, ValueError) as err:
            raise ConfigError(
                f"--compare: {run_dir / 'run.json'} is not a run record this version can read "
                f"({err})"
            ) from None
    return found[0], found[1]


@task(
    name="init",
    positional=["project"],
    auto_shortflags=False,
    help={
        "project": "the Django project's folder (the one with manage.py); it is only read",
        "name": "NAME of the files (default: the project folder's name, made a valid name)",
        "force": "replace files that exist (otherwise init writes nothing if one does)",
        "into": "write DIR/NAME-single.yaml, DIR/NAME-cluster.yaml and DIR/NAME.yaml "
        "instead of inventories/ and suites/",
        "lab-prefix": "the lab the inventories use: its prefix (default: the lab's, rdy)",
        "lab-subnet": "the lab the inventories use: its subnet (default: the lab's)",
    },
)
def init_task(
    c: Context,
    project: str,
    name: str | None = None,
    force: bool = False,
    into: str | None = None,
    lab_prefix: str | None = None,
    lab_subnet: str | None = None,
) -> None:
    """Read a Django project and write its single and cluster inventories and its suite."""
    with _exits():
        from orchestrator.init import init_project, summary

        written = init_project(
            project,
            root=ROOT,
            name=name,
            force=force,
            into=into,
            lab_prefix=lab_prefix,
            lab_subnet=lab_subnet,
        )
        print(summary(written, ROOT))


ns.add_task(readiness)
ns.add_task(report)
ns.add_task(init_task)
