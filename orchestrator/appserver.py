"""The live application server on a host: Django's ``testserver`` or gunicorn.

Started detached in its own session with every stream redirected (so the SSH channel
that started it can close), recorded by pid, health-checked from the host itself
against a deadline, and stopped by process group after checking that the pid is ours
(its working directory is this deploy's application folder).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.deploy import Layout
from orchestrator.shell import ALIVE

HEALTH_TIMEOUT_S = 120
SERVER_FAILED_EXIT = 13


@dataclass(frozen=True)
class ServerSpec:
    """How to run the application server on one host."""

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

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"


def app_environment(layout: Layout, venv: str, env: Mapping[str, str]) -> str:
    """Shell lines that give a command the application's settings, secrets and venv."""
    q = shlex.quote
    lines = [
        "set -a",
        f". {q(layout.secrets)}",
        "set +a",
        "export DJANGO_SETTINGS_MODULE=readiness_settings",
        f'export PYTHONPATH={q(layout.etc)}:{q(layout.app)}"${{PYTHONPATH:+:$PYTHONPATH}}"',
        *client_environment(venv, env).splitlines(),
    ]
    return "\n".join(lines) + "\n"


def client_environment(venv: str, env: Mapping[str, str]) -> str:
    q = shlex.quote
    lines = [
        f"export VIRTUAL_ENV={q(venv)}",
        f'export PATH={q(venv)}/bin:"$PATH"',
        "export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
        *(f"export {key}={q(value)}" for key, value in sorted(env.items())),
    ]
    return "\n".join(lines) + "\n"


def _stop_lines(layout: Layout) -> str:
    q = shlex.quote
    return (
        ALIVE
        + f"""\
pidfile={q(layout.run)}/server.pid
if [ -f "$pidfile" ]; then
  pid=$(cat "$pidfile")
  if [ "$(readlink /proc/"$pid"/cwd 2>/dev/null)" = {q(layout.app)} ]; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    i=0
    while alive "$pid" && [ "$i" -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "readiness: server stopped"
  fi
  rm -f "$pidfile"
fi
"""
    )


def start_script(spec: ServerSpec) -> str:
    """Stop an earlier server of this deploy, start a fresh one, wait until it answers.

    A fresh server per run: ``testserver`` loads the known fixtures into a new test
    database at start, so every run's integration layer begins from the same data.
    """
    q = shlex.quote
    layout = spec.layout
    log = f"{q(layout.run)}/server.log"
    python = f"{q(spec.venv)}/bin/python"
    if spec.mode == "testserver":
        start = (
            f"setsid {python} manage.py testserver {' '.join(q(f) for f in spec.fixtures)}"
            f" --addrport {q(f'{spec.address}:{spec.port}')} --noinput"
            f" < /dev/null >> {log} 2>&1 &"
        )
        prepare: list[str] = []
    else:
        prepare = [f"{python} manage.py migrate --noinput"]
        if spec.fixtures:
            prepare.append(f"{python} manage.py loaddata {' '.join(q(f) for f in spec.fixtures)}")
        start = (
            f"setsid {q(spec.venv)}/bin/gunicorn readiness_wsgi:application"
            f" --bind {q(f'{spec.address}:{spec.port}')} --workers {spec.workers}"
            f" --threads {spec.threads}"
            f" --access-logfile - < /dev/null >> {log} 2>&1 &"
        )
    health_url = spec.url + spec.health_path
    prepare_lines = "".join(
        f"{cmd} >> {log} 2>&1 || fail 'preparing the database failed'\n" for cmd in prepare
    )
    return f"""\
set -u
mkdir -p {q(layout.run)}
{_stop_lines(layout)}
{app_environment(layout, spec.venv, spec.env)}
cd {q(layout.app)}
: > {log}
fail() {{
  echo "$1; last lines of the server log:" >&2
  tail -n 30 {log} >&2
  exit {SERVER_FAILED_EXIT}
}}
{prepare_lines}
{start}
pid=$!
echo "$pid" > {q(layout.run)}/server.pid
unhealthy={q(f"the server did not become healthy at {health_url}")}
{python} - "$pid" {q(health_url)} {HEALTH_TIMEOUT_S} <<'READINESS_HEALTH_EOF' || fail "$unhealthy"
import os, sys, time, urllib.error, urllib.request
pid, url, deadline = int(sys.argv[1]), sys.argv[2], time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        with open(f"/proc/{{pid}}/status") as status:
            if "\\nState:\\tZ" in status.read():
                raise FileNotFoundError
    except FileNotFoundError:
        sys.exit("the server process exited")
    try:
        with urllib.request.urlopen(url, timeout=2):
            sys.exit(0)
    except urllib.error.HTTPError as err:
        if err.code < 500:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("no answer before the deadline")
READINESS_HEALTH_EOF
echo "readiness: server healthy at {spec.url}"
"""


def stop_script(layout: Layout) -> str:
    return "set -u\n" + _stop_lines(layout)
