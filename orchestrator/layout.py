"""Where things live under a host's deploy root (one root per inventory and host).

Every process readiness starts on a host has this root in its command line (the
virtualenv's interpreter, the application's manage.py), which is how stop scripts
recognise their own processes even after the folders were replaced.
"""

from __future__ import annotations

from dataclasses import dataclass

# Exported to every process readiness starts on a host for a deploy root (layers, servers)
# and inherited by their children: teardown finds what is left of a run by it.
MARKER_VAR = "READINESS_DEPLOY_ROOT"


@dataclass(frozen=True)
class Layout:
    """Where things live under a host's deploy root."""

    root: str

    @property
    def app(self) -> str:
        return f"{self.root}/app"

    @property
    def client(self) -> str:
        return f"{self.root}/client"

    @property
    def etc(self) -> str:
        return f"{self.root}/etc"

    @property
    def run(self) -> str:
        return f"{self.root}/run"

    @property
    def db(self) -> str:
        return f"{self.root}/db"

    @property
    def secrets(self) -> str:
        return f"{self.etc}/secrets.env"

    def venv(self, digest: str) -> str:
        return f"{self.root}/venvs/{digest}"

    @property
    def marker(self) -> str:
        """``NAME=VALUE`` as it appears in /proc/PID/environ of this root's processes."""
        return f"{MARKER_VAR}={self.root}"

    def results(self, run_id: str) -> str:
        return f"{self.root}/results/{run_id}"
