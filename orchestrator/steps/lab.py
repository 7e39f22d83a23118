"""Step ``lab``: bring the local lab up when the inventory is a lab inventory."""

from __future__ import annotations

from orchestrator import faults
from orchestrator.context import Context
from orchestrator.record import LabRecord


def lab_step(ctx: Context) -> None:
    """Bring the local lab up (idempotent) when the inventory asks for one."""
    spec = ctx.inventory.lab
    if spec is None:
        return
    from orchestrator.lab import lab_up  # the lab needs root and tools; load it only here

    ctx.progress("lab", "lab", "bringing the local lab up")
    ctx.lab = lab_up(prefix=spec.prefix, hosts=spec.hosts, subnet=spec.subnet)
    ctx.record.lab = LabRecord(prefix=ctx.lab.prefix, subnet=ctx.lab.subnet)
    # A run killed outright (SIGKILL) may have left fault profiles in the namespaces: they
    # would falsify this run, asked for or not.
    faults.sweep(ctx)
