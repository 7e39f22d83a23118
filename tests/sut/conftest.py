"""Real services for the broker application's three layers: MariaDB and a live testserver.

The database is a private MariaDB instance started by readiness's own
:mod:`orchestrator.components.mariadb` scripts through a local transport, so these tests also
prove that component against a real server. No SQLite stand-in anywhere.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.components import DatabaseGrant
from orchestrator.components.mariadb import (
    MariaDBInstance,
    provision_script,
    start_script,
    stop_script,
)
from orchestrator.transport import LocalTransport

BROKER = Path(__file__).resolve().parents[2] / "sut" / "broker"


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def broker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for the broker's processes, pointing at a fresh private MariaDB."""
    # A short root keeps the socket path under the 108-byte limit of sun_path.
    root = Path(f"/tmp/rdy-sutdb-{os.getpid()}")
    instance = MariaDBInstance(
        root=str(root), bind_address="127.0.0.1", port=free_port(), run_as_root=os.geteuid() == 0
    )
    grant = DatabaseGrant(
        name="broker",
        user="broker",
        password=secrets.token_urlsafe(18),
        client_hosts=("localhost", "127.0.0.1"),
    )
    local = LocalTransport()
    try:
        for script in (start_script(instance), provision_script(instance, grant)):
            result = local.run(script, timeout=120)
            assert result.ok, f"database setup failed:\n{result.stdout}\n{result.stderr}"
        env = dict(os.environ)
        env.update(
            BROKER_DB_NAME=grant.name,
            BROKER_DB_USER=grant.user,
            BROKER_DB_PASSWORD=grant.password,
            BROKER_DB_HOST="127.0.0.1",
            BROKER_DB_PORT=str(instance.port),
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.pop("DJANGO_SETTINGS_MODULE", None)
        yield env
    finally:
        local.run(stop_script(instance, remove=True), timeout=60)


@pytest.fixture(scope="session")
def broker_server(
    broker_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``manage.py testserver`` with the known fixtures, as in the origin story; its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("testserver") / "testserver.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "testserver", "fixtures/known.json",
             "--addrport", f"127.0.0.1:{port}", "--noinput"],
            cwd=BROKER, env=broker_env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"testserver did not become healthy:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        # The testserver forks an autoreloader-free child; kill its whole session.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
