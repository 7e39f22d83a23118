"""The lab state file: the one source of truth about a lab that exists.

``<state dir>/lab.json`` names every host, address, namespace, sshd pid and key path.
The inventory loader and the tests read it through :func:`load_lab`; only ``lab.up``
writes it. The state folder is ``<repo>/.lab/<prefix>/`` (git-ignored) by default; the
environment variable ``READINESS_LAB_DIR`` moves the parent folder (the state of lab
``<prefix>`` is then ``$READINESS_LAB_DIR/<prefix>/``), and every function also takes an
explicit ``state_dir``, which is the folder itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.exceptions import ConfigError, InfrastructureError
from orchestrator.files import atomic_write
from orchestrator.lab.design import DEFAULT_PREFIX, STATE_FILE, LabPlan, validate_prefix

if TYPE_CHECKING:
    from orchestrator.transport import SSHTransport

SCHEMA = 1
ENV_DIR = "READINESS_LAB_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]


def state_dir_for(
    prefix: str = DEFAULT_PREFIX, state_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The state folder of lab ``prefix`` (see the module docstring for the rules)."""
    validate_prefix(prefix)
    if state_dir is not None:
        return Path(state_dir).absolute()
    parent = os.environ.get(ENV_DIR)
    return (Path(parent) if parent else REPO_ROOT / ".lab").absolute() / prefix


@dataclass(frozen=True)
class LabHost:
    """One lab host as the rest of readiness sees it."""

    name: str
    address: str
    namespace: str
    ssh_port: int
    sshd_pid: int | None
    deploy_root: str
    """Where deploy code should put this host's files. Lab hosts share the control node's
    filesystem, so each gets its own root; deploy code must never rely on that sharing
    (always copy over the transport, never read the control node's paths)."""
    veth: str = ""
    sshd_config: str = ""


@dataclass(frozen=True)
class Lab:
    """A lab that exists, as recorded by ``lab.up``."""

    prefix: str
    subnet: str
    bridge: str
    bridge_address: str
    state_dir: Path
    key_file: Path
    known_hosts: Path
    user: str
    hosts: tuple[LabHost, ...]

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        names = ", ".join(h.name for h in self.hosts)
        raise ConfigError(f"lab '{self.prefix}' has no host {name!r} (it has: {names})")

    def transport(self, name: str, *, connect_timeout: float = 5.0) -> SSHTransport:
        """An SSH transport to one lab host, pinned to the lab's known_hosts."""
        from orchestrator.transport import SSHTransport

        host = self.host(name)
        return SSHTransport(
            host.name,
            host.address,
            key_file=self.key_file,
            known_hosts=self.known_hosts,
            user=self.user,
            port=host.ssh_port,
            connect_timeout=connect_timeout,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "prefix": self.prefix,
            "subnet": self.subnet,
            "bridge": self.bridge,
            "bridge_address": self.bridge_address,
            "state_dir": str(self.state_dir),
            "key_file": str(self.key_file),
            "known_hosts": str(self.known_hosts),
            "user": self.user,
            "hosts": [
                {
                    "name": h.name,
                    "address": h.address,
                    "namespace": h.namespace,
                    "ssh_port": h.ssh_port,
                    "sshd_pid": h.sshd_pid,
                    "deploy_root": h.deploy_root,
                    "veth": h.veth,
                    "sshd_config": h.sshd_config,
                }
                for h in self.hosts
            ],
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str = "lab state") -> Lab:
        try:
            if data["schema"] != SCHEMA:
                raise ValueError(f"schema {data['schema']!r}, expected {SCHEMA}")
            hosts = tuple(
                LabHost(
                    name=str(h["name"]),
                    address=str(h["address"]),
                    namespace=str(h["namespace"]),
                    ssh_port=int(h["ssh_port"]),
                    sshd_pid=None if h["sshd_pid"] is None else int(h["sshd_pid"]),
                    deploy_root=str(h["deploy_root"]),
                    veth=str(h.get("veth", "")),
                    sshd_config=str(h.get("sshd_config", "")),
                )
                for h in data["hosts"]
            )
            return cls(
                prefix=str(data["prefix"]),
                subnet=str(data["subnet"]),
                bridge=str(data["bridge"]),
                bridge_address=str(data["bridge_address"]),
                state_dir=Path(data["state_dir"]),
                key_file=Path(data["key_file"]),
                known_hosts=Path(data["known_hosts"]),
                user=str(data["user"]),
                hosts=hosts,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InfrastructureError(
                f"{source} is damaged ({type(err).__name__}: {err}); run `invoke lab.down` "
                "then `invoke lab.up` to recreate the lab"
            ) from None


def lab_from_plan(plan: LabPlan, pids: dict[str, int | None]) -> Lab:
    return Lab(
        prefix=plan.prefix,
        subnet=plan.subnet,
        bridge=plan.bridge,
        bridge_address=plan.bridge_address,
        state_dir=plan.state_dir,
        key_file=plan.key_file,
        known_hosts=plan.known_hosts,
        user=plan.user,
        hosts=tuple(
            LabHost(
                name=h.name,
                address=h.address,
                namespace=h.namespace,
                ssh_port=h.ssh_port,
                sshd_pid=pids.get(h.name),
                deploy_root=str(h.deploy_root),
                veth=h.veth,
                sshd_config=str(h.sshd_config),
            )
            for h in plan.hosts
        ),
    )


def write_state(lab: Lab, path: Path) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(lab.to_json(), indent=2) + "\n").encode(), mode=0o644)


def read_state(path: Path) -> Lab | None:
    """The lab recorded at ``path``, or None if there is no state file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise InfrastructureError(f"cannot read lab state {path}: {err}") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InfrastructureError(
            f"lab state {path} is not valid JSON ({err}); run `invoke lab.down` then "
            "`invoke lab.up` to recreate the lab"
        ) from None
    return Lab.from_json(data, source=f"lab state {path}")


def load_lab(prefix: str = DEFAULT_PREFIX, state_dir: str | os.PathLike[str] | None = None) -> Lab:
    """The lab with this prefix; InfrastructureError (exit 3) if none was brought up."""
    folder = state_dir_for(prefix, state_dir)
    lab = read_state(folder / STATE_FILE)
    if lab is None:
        raise InfrastructureError(
            f"no lab '{prefix}' exists (no state file {folder / STATE_FILE}); "
            f"bring it up with `invoke lab.up --prefix={prefix}`"
        )
    if lab.prefix != prefix:
        raise InfrastructureError(
            f"lab state {folder / STATE_FILE} belongs to lab '{lab.prefix}', not '{prefix}'"
        )
    return lab
