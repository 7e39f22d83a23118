"""invoke entry point for readiness: thin tasks over the ``orchestrator`` package.

This is the only place that turns errors into exit codes (DESIGN.md): every task runs
inside :func:`_exits`, which prints a :class:`ReadinessError` as one paragraph and exits
with its code instead of showing a traceback for a user mistake.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from orchestrator.exceptions import ReadinessError


@contextmanager
def _exits() -> Iterator[None]:
    """Print readiness errors for the user and exit with the contract's code."""
    try:
        yield
    except ReadinessError as err:
        print(f"readiness: {err}", file=sys.stderr)
        raise Exit(code=err.exit_code) from None
    except KeyboardInterrupt:
        print("readiness: interrupted", file=sys.stderr)
        raise Exit(code=130) from None


Runner = Callable[..., None]

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
