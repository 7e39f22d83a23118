"""Deploy: put the database, the server and the client on their hosts, idempotently.

Per host the deploy is three round trips at most, whatever the number of components:

1. **probe**: one script reports what the host already has (digests of the code,
   virtualenvs and settings it holds) and its facts (Python, MariaDB, TCP settings);
2. **push**: one script receives a single tar stream on stdin holding only what differs
   (application bundle, client bundle, wheelhouses, settings overlay and secrets) and
   installs it: code unpacked, virtualenvs built ``--without-pip`` from the wheels;
3. **db**: the database host starts and provisions its private instance.

A warm redeploy with nothing changed sends no bundle and builds no virtualenv: the
probe's digests match and the push is skipped. Nothing relies on hosts sharing the
control node's filesystem (lab hosts do, real ones don't): every byte goes over the
connection.
"""

from __future__ import annotations

import hashlib
import io
import platform
import shlex
import sys
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

import jinja2

from orchestrator.appserver import stop_script as server_stop_script
from orchestrator.bundle import Bundle
from orchestrator.database import DatabaseGrant, MariaDBInstance, up_script
from orchestrator.exceptions import HostError
from orchestrator.hosts import Target
from orchestrator.layout import Layout
from orchestrator.transport import Transport
from orchestrator.wheelhouse import Wheelhouse

DIGEST_FILE = ".readiness-digest"


@dataclass(frozen=True)
class Artifacts:
    """Everything built once on the control node and shipped to the hosts that need it."""

    app: Bundle
    client: Bundle
    server_wheels: Wheelhouse
    client_wheels: Wheelhouse


@dataclass(frozen=True)
class HostConfig:
    """The generated per-host files: settings overlay, WSGI module, secrets (0600)."""

    files: Mapping[str, str]
    secrets: Mapping[str, str] = field(repr=False)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name].encode() + b"\0")
        h.update(secrets_text(self.secrets).encode())
        return h.hexdigest()[:20]


@dataclass(frozen=True)
class Probe:
    """What a host already has, and its facts."""

    markers: Mapping[str, str]
    facts: Mapping[str, str]


@dataclass(frozen=True)
class PushReport:
    """What one host received (for the run record and the warm-redeploy benchmark)."""

    host: str
    sent: tuple[str, ...]
    bytes_sent: int
    round_trips: int
    duration_s: float


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("orchestrator", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    # Values rendered into Python source go through repr(): no quoting mistakes possible.
    env.filters["py"] = repr
    return env


def render_settings_overlay(
    *, settings: str, db_name: str, db_host: str, db_port: str, allowed_hosts: list[str]
) -> str:
    return (
        _templates()
        .get_template("settings_overlay.py.j2")
        .render(
            settings=settings,
            db_name=db_name,
            db_host=db_host,
            db_port=db_port,
            allowed_hosts=allowed_hosts,
        )
    )


def render_wsgi() -> str:
    return _templates().get_template("readiness_wsgi.py.j2").render()


def render_test_runner() -> str:
    """A Django test runner writing JUnit XML, for ``manage.py test`` layers."""
    return _templates().get_template("readiness_runner.py.j2").render()


def secrets_text(values: Mapping[str, str]) -> str:
    """A file for ``set -a; . file``: every value single-quoted for the shell."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(values.items()))


# -- probe ------------------------------------------------------------------------------


def probe_script(layout: Layout, python: str) -> str:
    q = shlex.quote
    root = q(layout.root)
    return f"""\
set -u
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
mkdir -p {root} 2>/dev/null
echo "marker.app=$(cat {q(layout.app)}/{DIGEST_FILE} 2>/dev/null)"
echo "marker.client=$(cat {q(layout.client)}/{DIGEST_FILE} 2>/dev/null)"
echo "marker.etc=$(cat {q(layout.etc)}/{DIGEST_FILE} 2>/dev/null)"
venvs=""
for v in {root}/venvs/*/; do [ -f "$v.complete" ] && venvs="$venvs $(basename "$v")"; done
echo "marker.venvs=$venvs"
echo "fact.hostname=$(hostname 2>/dev/null)"
echo "fact.kernel=$(uname -sr)"
echo "fact.cpus=$(nproc 2>/dev/null)"
echo "fact.python=$({q(python)} -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)"
echo "fact.machine=$(uname -m)"
echo "fact.python_venv=$({q(python)} -c 'import venv; print(1)' 2>/dev/null)"
server=$(command -v mariadbd || command -v mysqld || true)
echo "fact.mariadbd=$([ -n "$server" ] && "$server" --version 2>/dev/null | head -n 1)"
echo "fact.somaxconn=$(cat /proc/sys/net/core/somaxconn 2>/dev/null)"
echo "fact.tcp_abort_on_overflow=$(cat /proc/sys/net/ipv4/tcp_abort_on_overflow 2>/dev/null)"
echo "fact.tcp_max_syn_backlog=$(cat /proc/sys/net/ipv4/tcp_max_syn_backlog 2>/dev/null)"
echo "fact.deploy_root_writable=$([ -w {root} ] && echo yes || echo no)"
# Like sshd's StrictModes: the root and every folder above it must be ours or root's and
# not writable by others (unless sticky, as /tmp), else another user could swap our code.
unsafe=""
d={root}
while :; do
  set -- $(stat -c '%u %a' "$d" 2>/dev/null) || break
  owner=$1; mode=$2
  if [ "$owner" != "$(id -u)" ] && [ "$owner" != 0 ]; then
    unsafe="$d (owned by uid $owner)"; break
  fi
  sticky=$(( (0$mode & 01000) != 0 )); others=$(( (0$mode & 022) != 0 ))
  if [ "$others" = 1 ] && [ "$sticky" = 0 ]; then unsafe="$d (mode $mode)"; break; fi
  [ "$d" = / ] && break
  d=$(dirname "$d")
done
echo "fact.deploy_root_unsafe=$unsafe"
"""


def parse_probe(text: str) -> Probe:
    markers: dict[str, str] = {}
    facts: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key.startswith("marker."):
            markers[key[7:]] = value.strip()
        elif key.startswith("fact."):
            facts[key[5:]] = value.strip()
    return Probe(markers, facts)


def probe(transport: Transport, layout: Layout, python: str) -> Probe:
    result = transport.run(probe_script(layout, python), timeout=60).check("probing the host")
    found = parse_probe(result.stdout)
    if found.facts.get("deploy_root_writable") != "yes":
        raise HostError(transport.name, f"cannot create or write the deploy root {layout.root}")
    if found.facts.get("deploy_root_unsafe"):
        raise HostError(
            transport.name,
            f"the deploy root {layout.root} is not safe: {found.facts['deploy_root_unsafe']} "
            "can be changed by another user; choose a deploy_root in a folder only you (or "
            "root) can write",
        )
    if not found.facts.get("python"):
        raise HostError(
            transport.name,
            f"no Python interpreter '{python}' on the host; install python3 (Debian: "
            "apt-get install python3) or set the host's 'python' in the inventory",
        )
    if found.facts.get("python_venv") != "1":
        raise HostError(transport.name, f"'{python}' lacks the venv module; install python3-venv")
    return found


# -- push -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostNeeds:
    """What a host must hold for its components."""

    app: bool
    client: bool
    venvs: tuple[Wheelhouse, ...]
    config: HostConfig | None


def missing(needs: HostNeeds, found: Probe, artifacts: Artifacts) -> list[str]:
    """The parts the host lacks or holds in another version."""
    parts: list[str] = []
    if needs.app and found.markers.get("app") != artifacts.app.digest:
        parts.append("app")
    if needs.client and found.markers.get("client") != artifacts.client.digest:
        parts.append("client")
    have = set(found.markers.get("venvs", "").split())
    parts += [f"wheels-{w.digest}" for w in needs.venvs if w.digest not in have]
    if needs.config is not None and found.markers.get("etc") != needs.config.digest:
        parts.append("etc")
    return list(dict.fromkeys(parts))


def check_wheels_fit(host: str, facts: Mapping[str, str], houses: tuple[Wheelhouse, ...]) -> None:
    """Binary wheels built on the control node install only on the same Python and CPU."""
    control_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    host_python = ".".join(facts.get("python", "").split(".")[:2])
    for house in houses:
        tags = house.binary_tags
        if tags is None:
            continue
        if host_python != control_python or facts.get("machine") != platform.machine():
            raise HostError(
                host,
                f"has Python {host_python or '?'} on {facts.get('machine') or '?'}, but the "
                f"wheelhouse holds binary wheels for Python {control_python} on "
                f"{platform.machine()} ({tags[0]}, {tags[1]}); run readiness with that Python "
                "version, or point the host's 'python' at a matching interpreter",
            )


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def push_stream(parts: list[str], needs: HostNeeds, artifacts: Artifacts) -> bytes:
    """One uncompressed tar holding the parts (bundles inside are already gzip'd)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for part in parts:
            if part == "app":
                _add(tar, "app.tgz", artifacts.app.data)
            elif part == "client":
                _add(tar, "client.tgz", artifacts.client.data)
            elif part.startswith("wheels-"):
                digest = part.removeprefix("wheels-")
                house = next(w for w in needs.venvs if w.digest == digest)
                for wheel in house.wheels:
                    _add(tar, f"{part}/{wheel.name}", wheel.read_bytes())
            elif part == "etc":
                assert needs.config is not None
                for name, text in sorted(needs.config.files.items()):
                    _add(tar, f"etc/{name}", text.encode())
                _add(tar, "etc/secrets.env", secrets_text(needs.config.secrets).encode(), 0o600)
    return out.getvalue()


def install_script(
    layout: Layout, python: str, parts: list[str], artifacts: Artifacts, needs: HostNeeds
) -> str:
    """Unpack the stream on stdin and install each part; replaces are atomic renames."""
    q = shlex.quote
    root = q(layout.root)
    keep = " ".join(q(w.digest) for w in needs.venvs)
    lines = [
        "set -eu",
        f"root={root}",
        'inc="$root/.incoming"',
        'rm -rf "$inc"; mkdir -p -m 700 "$inc"',
        'tar -x -C "$inc"',
    ]
    if "app" in parts:
        # A server kept running (--keep, or a killed orchestrator) must not outlive the
        # code it serves: a later health check could otherwise reach the old one.
        lines.append(server_stop_script(layout))
    for part, target, digest in (
        ("app", layout.app, artifacts.app.digest),
        ("client", layout.client, artifacts.client.digest),
    ):
        if part in parts:
            lines += [
                f"rm -rf {q(target)}.new; mkdir -p {q(target)}.new",
                f'tar -xzf "$inc/{part}.tgz" -C {q(target)}.new --no-same-owner',
                f"echo {q(digest)} > {q(target)}.new/{DIGEST_FILE}",
                f"rm -rf {q(target)}; mv {q(target)}.new {q(target)}",
            ]
    # Virtualenvs build in parallel (a host with both roles needs two): pip is mostly
    # single-threaded, and the cold deploy of an all-on-one host is dominated by it.
    venv_parts = [part for part in parts if part.startswith("wheels-")]
    if venv_parts:
        lines += [f"mkdir -p {root}/venvs", "pids=''"]
    for part in venv_parts:
        venv = q(layout.venv(part.removeprefix("wheels-")))
        lines += [
            "(",
            f"  rm -rf {venv}",
            f"  {q(python)} -m venv --without-pip {venv}",
            f'  pipwhl=$(ls "$inc/{part}"/pip-*.whl | head -n 1)',
            f'  {venv}/bin/python "$pipwhl/pip" install --quiet --no-index --no-deps'
            f' --disable-pip-version-check "$inc/{part}"/*.whl',
            f"  touch {venv}/.complete",
            ") &",
            'pids="$pids $!"',
        ]
    if venv_parts:
        lines += [
            "for pid in $pids; do",
            '  wait "$pid" || { echo "building a virtualenv failed" >&2; exit 14; }',
            "done",
        ]
    if "etc" in parts:
        assert needs.config is not None
        etc = q(layout.etc)
        lines += [
            f"mkdir -p -m 700 {etc}",
            f'cp "$inc"/etc/* {etc}/',
            f"chmod 600 {q(layout.secrets)}",
            f"echo {q(needs.config.digest)} > {etc}/{DIGEST_FILE}",
        ]
    # Old virtualenvs of earlier requirements: remove, so deploy roots do not grow forever.
    lines += [
        f"for v in {root}/venvs/*/; do",
        '  [ -d "$v" ] || continue',
        '  case " ' + keep + ' " in *" $(basename "$v") "*) ;; *) rm -rf "$v" ;; esac',
        "done",
        'rm -rf "$inc"',
        'echo "readiness: installed"',
    ]
    return "\n".join(lines) + "\n"


def push(
    transport: Transport,
    layout: Layout,
    python: str,
    needs: HostNeeds,
    artifacts: Artifacts,
    found: Probe,
) -> PushReport:
    start = time.monotonic()
    parts = missing(needs, found, artifacts)
    if not parts:
        return PushReport(transport.name, (), 0, 0, time.monotonic() - start)
    stream = push_stream(parts, needs, artifacts)
    transport.run(
        install_script(layout, python, parts, artifacts, needs), timeout=900, stdin=stream
    ).check("installing the application and its virtualenvs")
    return PushReport(transport.name, tuple(parts), len(stream), 1, time.monotonic() - start)


# -- database ---------------------------------------------------------------------------


def database_instance(target: Target, port: int) -> MariaDBInstance:
    return MariaDBInstance(
        root=Layout(target.deploy_root).db,
        bind_address=target.ip,
        port=port,
        run_as_root=target.user == "root",
    )


def start_database(transport: Transport, instance: MariaDBInstance, grant: DatabaseGrant) -> None:
    """Start (if needed) and provision, in one round trip."""
    transport.run(up_script(instance, grant), timeout=300).check("starting the database")
