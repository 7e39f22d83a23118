"""The application server component (:class:`~orchestrator.components.AppServer`): Django's
``testserver`` or gunicorn, live on a host.

Started detached in its own session with every stream redirected (so the SSH channel
that started it can close), recorded by pid, health-checked from the host itself
against a deadline, and stopped by process group after checking that the pid is ours
(its command line runs from this deploy's root). The scripts are
``orchestrator/scripts/server_*.sh``; this module only gathers their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.components.base import LogFile
from orchestrator.layout import MARKER_VAR, Layout
from orchestrator.scripts import render

HEALTH_TIMEOUT_S = 120  # for a server to come up
HEALTH_CHECK_S = 5  # for a running one to answer, after a failed layer
SERVER_FAILED_EXIT = 13


@dataclass(frozen=True)
class DjangoServer:
    """The application server of one host: how to run it, start it, stop it."""

    layout: Layout
    venv: str
    mode: str  # testserver | gunicorn
    address: str
    port: int
    fixtures: tuple[str, ...]
    health_path: str
    env: Mapping[str, str]
    # Threads too: an application that calls itself over HTTP (the broker's pricing
    # calls its own supplier) would deadlock a single synchronous worker.
    workers: int = 2
    threads: int = 4
    backlog: int | None = None  # gunicorn's listen backlog (None: its default, 2048)

    @property
    def hostport(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.hostport}"

    def start_script(self) -> str:
        """Stop an earlier server of this deploy, start a fresh one, wait until it answers.

        A fresh server per run: ``testserver`` loads the known fixtures into a new test
        database at start, so every run's integration layer begins from the same data.
        """
        return render(
            "server_start.sh",
            spec=self,
            **_environment_values(self.layout, self.venv, self.env),
            health_url=self.url + self.health_path,
            health_timeout=HEALTH_TIMEOUT_S,
            failed_exit=SERVER_FAILED_EXIT,
        )

    def stop_script(self) -> str:
        return stop_script(self.layout)

    def connection_model(self) -> tuple[str, bool]:
        """What the origin story turned on: Django's dev server takes each connection in a
        thread, with a listen backlog of 10, and keeps idle connections open for good;
        gunicorn with threads runs gthread workers (keep-alive 2 s), without them sync
        workers that close after every response."""
        if self.mode == "testserver":
            return "threaded: a thread per connection", True
        if self.threads > 1:
            return f"gthread: {self.workers} workers x {self.threads} threads", True
        return f"sync: {self.workers} workers, one request at a time each", False

    def health_script(self) -> str:
        """One short health check (no waiting for a start): still running and answering."""
        return render(
            "server_health.sh",
            layout=self.layout,
            venv=self.venv,
            health_url=self.url + self.health_path,
            seconds=HEALTH_CHECK_S,
        )

    def log_files(self) -> tuple[LogFile, ...]:
        return (server_log(self.layout),)


def server_log(layout: Layout) -> LogFile:
    """Where a deploy root's server writes (kept even when no server was started this run:
    one left by a killed earlier run explains what it did)."""
    return LogFile("server.log", f"{layout.run}/server.log")


def app_environment(layout: Layout, venv: str, env: Mapping[str, str]) -> str:
    """Shell lines that give a command the application's settings, secrets and venv."""
    return render("app_env.sh", **_environment_values(layout, venv, env))


def client_environment(layout: Layout, venv: str, env: Mapping[str, str]) -> str:
    """The venv first on PATH, the user's env, and the marker teardown finds strays by."""
    return render("client_env.sh", **_environment_values(layout, venv, env))


def _environment_values(layout: Layout, venv: str, env: Mapping[str, str]) -> dict[str, object]:
    return {
        "layout": layout,
        "venv": venv,
        "env": sorted(env.items()),
        "marker_var": MARKER_VAR,
    }


def stop_script(layout: Layout) -> str:
    """Stop this deploy's server, after checking that the recorded pid is ours."""
    return render("server_stop.sh", layout=layout)
