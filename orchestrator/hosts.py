"""Targets: inventory hosts resolved to a concrete address, login and deploy root.

Each target also names its host's cache of built virtualenvs (``venv_cache``), shared by
every deploy root of that host and user, never by two hosts: a lab host's is in its own
folder (lab hosts stand for separate machines, whatever filesystem they share), an ssh or
local host's in ``/var/tmp/readiness-<user>/.venvs`` wherever the inventory puts the
deploy root.

Lab hosts are resolved through the lab's plan (one source of truth for names and
addresses); ssh hosts carry their own address; ``local`` is this machine. Work over many
hosts goes through :func:`on_all`, which runs every host to the end and then raises one
:class:`~orchestrator.exceptions.GroupError` holding every failure (fabric's GroupResult).
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from orchestrator.exceptions import ConfigError, GroupError, HostError
from orchestrator.inventory import Host, Inventory, address_problem
from orchestrator.lab import Lab
from orchestrator.transport import LocalTransport, SSHTransport, Transport

T = TypeVar("T")
# The virtualenv cache's folder name, beside the default deploy roots (an inventory's
# name never starts with a dot, so no root can be it).
VENV_CACHE = ".venvs"


@dataclass(frozen=True)
class Target:
    """A host ready to be connected to."""

    host: Host
    address: str
    user: str
    deploy_root: str
    key_file: Path | None = None
    known_hosts: Path | None = None
    # The IP address services bind to and grants name; ``address`` may be a DNS name,
    # which SSH keeps using so that known_hosts entries by name still match.
    ip: str = ""
    # The host's cache of built virtualenvs, for every deploy root of this host and user
    # (orchestrator.deploy); empty: none, each root builds its own.
    venv_cache: str = ""

    def __post_init__(self) -> None:
        if not self.ip:  # an address that is already an IP needs no resolving
            with contextlib.suppress(ValueError):
                object.__setattr__(self, "ip", str(ipaddress.ip_address(self.address)))

    @property
    def name(self) -> str:
        return self.host.name

    def connect(self) -> Transport:
        if self.host.connection == "local":
            return LocalTransport(self.name)
        assert self.key_file is not None and self.known_hosts is not None
        return SSHTransport(
            self.name,
            self.address,
            key_file=self.key_file,
            known_hosts=self.known_hosts,
            user=self.user,
            port=self.host.port,
        )


def _default_key() -> Path:
    for name in ("id_ed25519", "id_ecdsa", "id_rsa"):
        candidate = Path.home() / ".ssh" / name
        if candidate.is_file():
            return candidate
    return Path.home() / ".ssh" / "id_ed25519"


def resolve_targets(inventory: Inventory, lab: Lab | None) -> dict[str, Target]:
    """Every inventory host as a :class:`Target`; a lab host the lab lacks is a ConfigError."""
    targets: dict[str, Target] = {}
    for host in inventory.hosts:
        if host.connection == "lab":
            if lab is None:
                raise ConfigError(f"host '{host.name}' is a lab host but no lab is known")
            by_name = {h.name: h for h in lab.hosts}
            info = by_name.get(f"{lab.prefix}-{host.name}") or by_name.get(host.name)
            if info is None:
                known = ", ".join(sorted(h.removeprefix(f"{lab.prefix}-") for h in by_name))
                raise ConfigError(
                    f"host '{host.name}' is not a host of lab '{lab.prefix}' (it has: {known})",
                    file=str(inventory.file),
                    field="hosts",
                )
            targets[host.name] = Target(
                host=host,
                address=info.address,
                user=lab.user,
                deploy_root=host.deploy_root or f"{info.deploy_root}/{inventory.name}",
                key_file=lab.key_file,
                known_hosts=lab.known_hosts,
                venv_cache=f"{info.deploy_root}/{VENV_CACHE}",
            )
        elif host.connection == "local":
            user = getpass.getuser()
            targets[host.name] = Target(
                host=host,
                address=host.address or "127.0.0.1",
                user=user,
                deploy_root=host.deploy_root or f"/var/tmp/readiness-{user}/{inventory.name}",
                venv_cache=f"/var/tmp/readiness-{user}/{VENV_CACHE}",
            )
        else:
            user = host.user or getpass.getuser()
            assert host.address is not None  # validated by the inventory
            targets[host.name] = Target(
                host=host,
                address=host.address,
                user=user,
                deploy_root=host.deploy_root or f"/var/tmp/readiness-{user}/{inventory.name}",
                key_file=host.key_file or _default_key(),
                known_hosts=host.known_hosts or Path.home() / ".ssh" / "known_hosts",
                venv_cache=f"/var/tmp/readiness-{user}/{VENV_CACHE}",
            )
    return {name: replace(t, ip=_ip_of(t)) for name, t in targets.items()}


def _ip_of(target: Target) -> str:
    try:
        return str(ipaddress.ip_address(target.address))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(target.address, None, type=socket.SOCK_STREAM)
    except OSError as err:
        raise HostError(target.name, f"cannot resolve {target.address}: {err}") from None
    ip = str(infos[0][4][0])
    # Services bind to it and grants name it: a name that resolves to a wildcard (or
    # any other non-host address) must not get that far.
    problem = address_problem(ip)
    if problem:
        raise HostError(target.name, f"{target.address} resolves to {ip}: {problem}")
    return ip


def on_all(
    what: str,
    items: Iterable[str],
    work: Callable[[str], T],
    *,
    max_workers: int = 16,
) -> dict[str, T]:
    """``work(name)`` for every name in parallel; all finish, then failures raise together."""
    names = list(dict.fromkeys(items))
    if not names:
        return {}
    results: dict[str, T] = {}
    failures: dict[str, BaseException] = {}
    pool = ThreadPoolExecutor(max_workers=min(max_workers, len(names)))
    try:
        futures = {name: pool.submit(work, name) for name in names}
        for name, future in futures.items():
            try:
                results[name] = future.result()
            except Exception as err:
                failures[name] = err
    except BaseException:
        # Ctrl-C: do not wait for remote work that may run for hours; teardown stops it.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if failures:
        raise GroupError(what, failures, results)
    return results
