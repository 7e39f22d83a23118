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

from orchestrator.layout import Layout
from orchestrator.shell import ALIVE

HEALTH_TIMEOUT_S = 120
DEPLOY_ROOT_VAR = "READINESS_DEPLOY_ROOT"
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
    def hostport(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.hostport}"


def app_environment(layout: Layout, venv: str, env: Mapping[str, str]) -> str:
    """Shell lines that give a command the application's settings, secrets and venv."""
    q = shlex.quote
    lines = [
        "set -a",
        f". {q(layout.secrets)}",
        "set +a",
        "export DJANGO_SETTINGS_MODULE=readiness_settings",
        f'export PYTHONPATH={q(layout.etc)}:{q(layout.app)}"${{PYTHONPATH:+:$PYTHONPATH}}"',
        *client_environment(layout, venv, env).splitlines(),
    ]
    return "\n".join(lines) + "\n"


def client_environment(layout: Layout, venv: str, env: Mapping[str, str]) -> str:
    """The venv first on PATH, the user's env, and the marker teardown finds strays by."""
    q = shlex.quote
    lines = [
        *(f"export {key}={q(value)}" for key, value in sorted(env.items())),
        # Inherited by every process a layer or server starts: teardown stops them by it.
        f"export {DEPLOY_ROOT_VAR}={q(layout.root)}",
        f"export VIRTUAL_ENV={q(venv)}",
        f'export PATH={q(venv)}/bin:"$PATH"',
        "export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
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
  # Ours if its command line runs from this deploy root (the venv, manage.py): unlike
  # the working directory, that survives the app folder being replaced by a redeploy.
  if tr '\\0' ' ' < /proc/"$pid"/cmdline 2>/dev/null | grep -qF -- {q(layout.root + "/")}; then
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
            f"setsid {python} {q(layout.app)}/manage.py testserver"
            f" {' '.join(q(f) for f in spec.fixtures)} --addrport {q(spec.hostport)} --noinput"
            f" < /dev/null >> {log} 2>&1 &"
        )
        prepare: list[str] = []
    else:
        manage = f"{python} {q(layout.app)}/manage.py"
        # Known data for every run: the persistent database is emptied before loading.
        prepare = [f"{manage} migrate --noinput", f"{manage} flush --noinput"]
        if spec.fixtures:
            prepare.append(f"{manage} loaddata {' '.join(q(f) for f in spec.fixtures)}")
        start = (
            f"setsid {q(spec.venv)}/bin/gunicorn readiness_wsgi:application"
            f" --chdir {q(layout.app)} --bind {q(spec.hostport)} --workers {spec.workers}"
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
in_use={q(f"port {spec.port} on {spec.address} is already in use (another server?)")}
{python} - {q(spec.address)} {spec.port} <<'READINESS_PORT_EOF' || fail "$in_use"
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(0)
sys.exit(1)
READINESS_PORT_EOF
{prepare_lines}
{start}
pid=$!
echo "$pid" > {q(layout.run)}/server.pid
unhealthy={q(f"the server did not become healthy at {health_url}")}
{python} - "$pid" {q(health_url)} {HEALTH_TIMEOUT_S} <<'READINESS_HEALTH_EOF' || fail "$unhealthy"
import os, sys, time, urllib.error, urllib.request
pid, url, deadline = int(sys.argv[1]), sys.argv[2], time.monotonic() + float(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))  # never via a proxy
while time.monotonic() < deadline:
    try:
        with open(f"/proc/{{pid}}/status") as status:
            if "\\nState:\\tZ" in status.read():
                raise FileNotFoundError
    except FileNotFoundError:
        sys.exit("the server process exited")
    try:
        with opener.open(url, timeout=2):
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


def stray_kill_script(layout: Layout) -> str:
    """Stop every process still carrying this deploy root's marker in its environment.

    Layers and servers export the marker, and their children inherit it, so this finds
    what an interrupted layer left behind (a pytest still running after Ctrl-C) without
    ever matching by name.
    """
    marker = shlex.quote(f"{DEPLOY_ROOT_VAR}={layout.root}")
    return (
        ALIVE
        + f"""\
strays() {{
  for p in /proc/[0-9]*; do
    pid=${{p#/proc/}}
    [ "$pid" = "$$" ] && continue
    {{ tr '\\0' '\\n' < "$p/environ"; }} 2>/dev/null | grep -qxF -- {marker} && echo "$pid"
  done
}}
pids=$(strays)
if [ -n "$pids" ]; then
  kill -TERM $pids 2>/dev/null || true
  i=0
  while [ "$i" -lt 30 ]; do
    live=""; for pid in $pids; do alive "$pid" && live="$live $pid"; done
    [ -z "$live" ] && break
    i=$((i + 1)); sleep 0.1
  done
  [ -n "$live" ] && kill -KILL $live 2>/dev/null
  echo "readiness: stopped stray processes:$pids"
fi
"""
    )
