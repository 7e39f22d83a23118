"""A local multi-host lab: network namespaces on a bridge, one sshd each.

Users, tests and CI compare an all-on-one deployment with a distributed one on a single
Linux machine, without VMs or containers. ``invoke lab.up`` creates N lab hosts, each a
network namespace with its own address on a private bridge and its own OpenSSH server;
``invoke lab.status`` checks them; ``invoke lab.down`` removes everything the lab made.

Public API (what the inventory loader and the tests use)::

    lab = load_lab(prefix="rdy")          # -> Lab, from <state dir>/lab.json
    lab.hosts                             # tuple[LabHost, ...]
    lab.host("rdy-h1").address            # "10.213.71.2"
    lab.key_file, lab.known_hosts, lab.user
    with lab.transport("rdy-h1") as t:    # SSHTransport, strict host key checking
        t.run("ip -4 addr")

Host names are ``<prefix>-h1`` ... ``<prefix>-hN`` (also the namespace names); see
:mod:`orchestrator.lab.design` for every name the lab uses, :mod:`orchestrator.lab.network`
for how ``lab.up`` and ``lab.down`` work out their network changes, and
:mod:`orchestrator.lab.state` for where its files live.

Lab hosts share the control node's filesystem (only the network is separate). Each gets
its own deploy root (``LabHost.deploy_root``, ``/var/tmp/readiness-lab/<prefix>/<host>``),
and deploy code must never rely on that sharing: copy files over the transport, as it
must for a real host.
"""

from __future__ import annotations

from orchestrator.lab.design import (
    DEFAULT_DEPLOY_BASE,
    DEFAULT_HOSTS,
    DEFAULT_PREFIX,
    DEFAULT_SUBNET,
    MAX_HOSTS,
    HostPlan,
    LabPlan,
    plan_lab,
)
from orchestrator.lab.ops import (
    HostStatus,
    LabStatus,
    Teardown,
    lab_down,
    lab_status,
    lab_up,
    require_root,
)
from orchestrator.lab.state import Lab, LabHost, load_lab, state_dir_for

__all__ = [
    "DEFAULT_DEPLOY_BASE",
    "DEFAULT_HOSTS",
    "DEFAULT_PREFIX",
    "DEFAULT_SUBNET",
    "MAX_HOSTS",
    "HostPlan",
    "HostStatus",
    "Lab",
    "LabHost",
    "LabPlan",
    "LabStatus",
    "Teardown",
    "lab_down",
    "lab_status",
    "lab_up",
    "load_lab",
    "plan_lab",
    "require_root",
    "state_dir_for",
]
