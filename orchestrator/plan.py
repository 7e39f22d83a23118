"""The plan: a pure function of inventory, suite and options (``--dry-run`` prints it).

Everything after planning only executes the plan, so what a run will do can be read,
tested and printed without touching a host.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.inventory import Inventory
from orchestrator.suite import Layer, Suite

COMPONENT_ORDER = ("db", "server", "client")


@dataclass(frozen=True)
class Options:
    """What the user asked for on the command line."""

    keep_going: bool = False
    keep: bool = False
    dry_run: bool = False
    # Fault profiles to provoke in the lab (orchestrator.faults), as given: NAME[=VALUE].
    faults: tuple[str, ...] = ()
    # How many times the client layers run, without redeploying (per-test pass rates).
    repeat: int = 1
    # The command line as the user would type it again (the report's "reproduce").
    command: str = ""


@dataclass(frozen=True)
class DeployStep:
    """Deploy one component onto one host."""

    host: str
    component: str


@dataclass(frozen=True)
class LayerStep:
    """Run one layer on the hosts of its role; ``gate`` is the effective gate."""

    layer: Layer
    hosts: tuple[str, ...]
    gate: str


@dataclass(frozen=True)
class Plan:
    inventory: Inventory
    suite: Suite
    options: Options
    topology: str
    deploy: tuple[DeployStep, ...]
    layers: tuple[LayerStep, ...]
    # server host -> "socket" (co-located with the database) or "tcp"
    database_links: tuple[tuple[str, str], ...]

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.inventory.hosts)

    def database_link(self, server: str) -> str:
        return dict(self.database_links)[server]

    @property
    def deployed_later(self) -> tuple[str, ...]:
        """The hosts whose deploy goes on while the first layers run: those with only the
        client to deploy, awaited before the first layer that runs on them. The database
        and the servers are awaited before any layer: a layer may use them without saying
        so (Django's tests reach the database whatever the suite declares). ``--faults``
        waits for every host: a fault must not slow or reset a deploy."""
        if self.options.faults:
            return ()
        parts: dict[str, set[str]] = {}
        for step in self.deploy:
            parts.setdefault(step.host, set()).add(step.component)
        return tuple(host for host, components in parts.items() if components == {"client"})

    def describe(self) -> str:
        """A human-readable rendering, for ``--dry-run``."""
        inv = self.inventory
        lines = [
            f"inventory {inv.name} ({inv.file}), suite {self.suite.name} ({self.suite.file})",
            f"topology: {self.topology}",
            "hosts:",
        ]
        for host in inv.hosts:
            where = host.address or ("from the lab" if host.connection == "lab" else "local")
            lines.append(
                f"  {host.name:<16} {host.connection:<6} {where:<20} roles: {', '.join(host.roles)}"
            )
        lines.append("deploy (in parallel across hosts):")
        for deploy_step in self.deploy:
            lines.append(f"  {deploy_step.host:<16} {deploy_step.component}")
        if self.deployed_later:
            lines.append(
                f"  (the layers start once the other hosts are deployed; "
                f"{', '.join(self.deployed_later)} go(es) on in the background until a layer "
                "runs there)"
            )
        if self.database_links:
            lines.append("database link:")
            for server, link in self.database_links:
                lines.append(f"  {server:<16} reaches the database over {link}")
        lines.append("layers (in order):")
        for index, step in enumerate(self.layers, 1):
            layer = step.layer
            needs = ", ".join(layer.needs) or "nothing"
            lines.append(
                f"  {index}. {('step ' if layer.step else '') + layer.name:<20} on "
                f"{', '.join(step.hosts)} "
                f"(role {layer.role}; needs {needs}; timeout {layer.timeout_s}s; gate {step.gate})"
            )
            lines.append(f"     $ {layer.command}")
        if self.options.repeat > 1:
            lines.append(
                f"repeat: the client layers {self.options.repeat} times in all, a fresh server "
                "each pass, no redeploy"
            )
        if self.options.faults:
            lines.append(f"faults (lab, server hosts): {', '.join(self.options.faults)}")
        lines.append("teardown: " + ("skipped (--keep)" if self.options.keep else "always"))
        return "\n".join(lines)


def topology_of(inventory: Inventory) -> str:
    """'all-on-one' when a single host plays every role, else 'distributed'."""
    return "all-on-one" if len(inventory.hosts) == 1 else "distributed"


def build_plan(inventory: Inventory, suite: Suite, options: Options | None = None) -> Plan:
    """Order the deploy steps and layers; decide how each server reaches the database."""
    options = options or Options()
    deploy = tuple(
        DeployStep(host.name, component)
        for host in inventory.hosts
        for component in COMPONENT_ORDER
        if component in host.roles
        and not (component == "db" and inventory.database.mode == "existing")
    )
    layers = tuple(
        LayerStep(
            layer=layer,
            hosts=tuple(h.name for h in inventory.with_role(layer.role)),
            gate="continue" if options.keep_going else layer.gate,
        )
        for layer in suite.layers
    )
    db_host = inventory.db_host
    links = tuple(
        (h.name, "socket" if db_host is not None and h.name == db_host.name else "tcp")
        for h in inventory.with_role("server")
    )
    return Plan(
        inventory=inventory,
        suite=suite,
        options=options,
        topology=topology_of(inventory),
        deploy=deploy,
        layers=layers,
        database_links=links,
    )
