"""Step ``faults``: provoke the fault profiles asked with ``--faults`` (lab only).

After deploy, so that the deploy itself is not slowed or reset; removed first thing in
teardown (also after Ctrl-C), and by the next run's lab step if a run was killed outright.
"""

from __future__ import annotations

from orchestrator import faults
from orchestrator.context import Context


def faults_step(ctx: Context) -> None:
    """Apply each fault profile in the server hosts' lab namespaces, recorded first."""
    if not ctx.plan.options.faults:
        return
    faults.apply(ctx)  # it says what it changes, and where, as it goes
