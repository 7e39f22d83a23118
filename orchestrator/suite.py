"""Suites: the layers and setup steps, in order, as data (Molecule's test sequence).

Each entry of ``layers:`` is either a **test layer** (``- name: X``: it writes JUnit XML
and is judged by its tests) or a **setup step** (``- step: X``: a command that prepares,
such as ``collectstatic`` or loading data, judged by its exit code alone). A step is
first-class because a setup command forced into a layer failed for want of JUnit XML,
or, with ``junit: false``, showed in the report as "0 tests, passed". The older spelling
``- name: X`` with ``junit: false`` is still read, as a step.

Fields of both (a step names itself with ``step`` instead of ``name``):

- ``name`` / ``step``: lower-case letters, digits, ``_`` and ``-``, at most 40; unique
  among layers and steps together (it names the log and the JUnit file).
- ``role``: ``server`` (runs in the deployed application's folder, with readiness's
  settings and the application's secrets) or ``client`` (in the client folder); on
  every host of that role.
- ``command``: shell, run with bash, the role's virtualenv first on PATH.
- ``needs``: what must be up before it starts: ``database``, ``server`` (the live
  server; it runs only for the entries that need it). Default: nothing.
- ``timeout``: seconds (1 to 6 h, default 1800); then the process group is killed and
  the status is ``timeout``.
- ``gate``: ``stop`` (default: a failure blocks every later entry) or ``continue``.
- ``max_output_mb``: what the control node keeps of the output per host (default 20 MiB:
  the first and the last half of it).

Fields of a test layer only: ``junit`` (default true; false makes it a step), ``retry``
and ``burst`` (below). A step refuses all three: it never expects JUnit, it runs no test
that a retry could re-run, and a burst is a probe, not a command.

Judgement: a test layer passes when its command exits 0 and its JUnit XML lists tests,
none failing; one that wrote no JUnit XML fails, and the reason says how to make it a
step. A step passes when its command exits 0 on every host; when it fails, the reason
and the terminal show the end of its output.

Environment of the command (``orchestrator/scripts/layer.sh.j2``, ``app_env.sh.j2``,
``client_env.sh.j2``), for layers and steps alike:

- ``READINESS_JUNIT``: where to write the JUnit XML (removed before the command runs;
  a step may ignore it).
- ``READINESS_LAYER``: the entry's name (``name.N`` in pass N of ``--repeat``).
- ``READINESS_BASE_URL``: the live server's URL (``http://address:port``), set whenever
  the inventory deploys a server; it answers only for entries that need ``server``.
- ``READINESS_LEDGER``: the file the ledger hook records transport errors in (readiness's
  own; it makes the hook active in the command's Python processes).
- ``READINESS_RETRY``: the layer's ``retry`` policy as JSON, for the ledger hook; unset
  without one.
- ``READINESS_DEPLOY_ROOT``: the host's deploy root (teardown finds every process of the
  run by it).
- ``VIRTUAL_ENV`` and ``PATH`` (the role's virtualenv first), ``PYTHONUNBUFFERED=1``,
  ``PYTHONDONTWRITEBYTECODE=1``, and the inventory's ``application.env``.
- Role ``server`` only: ``DJANGO_SETTINGS_MODULE=readiness_settings`` (the overlay over
  the application's settings), ``PYTHONPATH`` (the overlay's folder, then the
  application's), and the secrets ``READINESS_DB_USER``, ``READINESS_DB_PASSWORD``,
  ``DATABASE_URL``, ``READINESS_SECRET_KEY``, ``DJANGO_SECRET_KEY``, ``SECRET_KEY`` (never
  shown: every log and record is scrubbed of their values).

``retry`` is an optional policy for tests that fail with a transport error (``count``
more attempts, for the errno names in ``errors``, ``backoff`` seconds doubled each time):
the ledger hook re-runs such a test inside the same pytest session. Every attempt stays
in the ledger and the JUnit XML, and a test that passed only after a retry is
``passed-with-retries`` in the record, never a plain pass: retries must not hide resets
again, as they did in the origin story.

A layer may be a **burst probe** instead of a command (``burst: {requests, path,
timeout}``): that many simultaneous GET requests from each host of its role to the live
server (``path`` defaults to the application's health path), each on its own connection,
to measure accept capacity and latency and show an accept-queue overflow where there is
one (orchestrator/scripts/burst.py). It runs like any layer, in the same evidence window,
so the ledger records its transport errors; it has no JUnit, no retry, and it passes
whenever the probe ran: a burst measures, it does not judge.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.document import Section, expand_user, load, shown
from orchestrator.evidence import TRANSPORT_ERRNOS
from orchestrator.exceptions import ConfigError

LAYER_ROLES = ("server", "client")
NEEDS = ("database", "server")
GATES = ("stop", "continue")
MAX_TIMEOUT_S = 6 * 3600
# What the control node keeps of a layer's output per host, in MiB (its head and tail):
# a layer that prints without end must not fill the control node's memory or disk.
DEFAULT_MAX_OUTPUT_MB = 20
MAX_OUTPUT_MB = 1024

# Used with fullmatch: '$' would also match before a trailing newline.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


MAX_RETRIES = 10
MAX_BACKOFF_S = 10.0

MAX_BURST_REQUESTS = 2000
DEFAULT_BURST_TIMEOUT_S = 10.0
MAX_BURST_TIMEOUT_S = 300.0
# A URL path (and query) as the inventory's health path may be: sent as is in the request.
_URL_PATH = re.compile(r"/[A-Za-z0-9._~/?=&%-]{0,2000}")


@dataclass(frozen=True)
class Burst:
    """A burst probe: ``requests`` simultaneous GETs of ``path`` (None: the application's
    health path, known only with the inventory), each given ``timeout_s`` in all."""

    requests: int
    path: str | None = None
    timeout_s: float = DEFAULT_BURST_TIMEOUT_S

    def describe(self) -> str:
        """What the record and the dry run show as the layer's command."""
        return f"burst probe: {self.requests} simultaneous GET {self.path or 'the health path'}"


@dataclass(frozen=True)
class RetryPolicy:
    """Re-run a test whose attempt failed with one of these transport errors."""

    count: int
    on: tuple[str, ...] = TRANSPORT_ERRNOS
    backoff_s: float = 0.0

    def to_env(self) -> str:
        """The JSON the ledger hook reads from ``READINESS_RETRY``."""
        return json.dumps({"count": self.count, "on": list(self.on), "backoff_s": self.backoff_s})


@dataclass(frozen=True)
class Layer:
    """One step of the sequence."""

    name: str
    role: str
    command: str
    needs: tuple[str, ...]
    timeout_s: int
    gate: str
    junit: bool = True
    max_output_mb: int = DEFAULT_MAX_OUTPUT_MB
    retry: RetryPolicy | None = None
    # A burst layer's ``command`` only describes it (for the record and the dry run).
    burst: Burst | None = None

    @property
    def step(self) -> bool:
        """A setup step (``- step: X``, or a layer with ``junit: false``): it prepares, it
        runs no tests, so it is judged by its exit code and shown as a step, never as a
        layer of "0 tests". A burst writes no JUnit either, but it measures: not a step."""
        return not self.junit and self.burst is None


@dataclass(frozen=True)
class Suite:
    name: str
    file: Path
    layers: tuple[Layer, ...]


def resolve(name_or_path: str, *, root: Path, relative_to: Path | None = None) -> Path:
    """A suite given as a name in ``root/suites`` or as a path (relative to the inventory)."""
    if not name_or_path.isprintable():  # a YAML value folded over lines, a stray control
        raise ConfigError(
            f"{shown(name_or_path)} is neither a suite name nor a path to a file: it holds a "
            "line break or another control character"
        )
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = expand_user(name_or_path)
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        return path
    if not _NAME.fullmatch(name_or_path):
        raise ConfigError(f"{shown(name_or_path)} is neither a suite name nor a path to a file")
    return root / "suites" / f"{name_or_path}.yaml"


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file."""
    top = Section(load(path), file=str(path))
    name = top.get("name", str, path.stem)
    if not (name.isprintable() and 1 <= len(name) <= 100):
        # It is shown in the terminal, the run record and the report, on one line.
        raise top.error("name", "must be 1 to 100 printable characters")
    top.get("schema", int, 1)
    layers = tuple(_layer(s) for s in top.sections("layers"))
    seen: set[str] = set()
    for layer in layers:
        if layer.name in seen:
            # Layers and steps share names: each names its log and its JUnit file.
            kind = "step" if layer.step else "layer"
            raise top.error("layers", f"{kind} name '{layer.name}' is used twice")
        seen.add(layer.name)
    top.finish()
    return Suite(name=name, file=path, layers=layers)


def _layer(s: Section) -> Layer:
    name, step = _name(s)
    role = s.choice("role", LAYER_ROLES)
    burst = _burst(s)
    command = burst.describe() if burst else _command(s)
    needs = s.string_list("needs", ())
    for need in needs:
        if need not in NEEDS:
            raise s.error("needs", f"unknown need {shown(need)}; needs are {', '.join(NEEDS)}")
    if burst and "server" not in needs:
        raise s.error("needs", "a burst probes the live server: add 'server' to needs")
    timeout = s.get("timeout", int, 1800)
    if not 1 <= timeout <= MAX_TIMEOUT_S:
        raise s.error("timeout", f"must be between 1 and {MAX_TIMEOUT_S} seconds")
    gate = s.choice("gate", GATES, "stop")
    junit = False if step else s.get("junit", bool, burst is None)
    if burst and junit:
        raise s.error("junit", "a burst writes no JUnit XML: leave junit out")
    max_output_mb = s.get("max_output_mb", int, DEFAULT_MAX_OUTPUT_MB)
    if not 1 <= max_output_mb <= MAX_OUTPUT_MB:
        raise s.error("max_output_mb", f"must be between 1 and {MAX_OUTPUT_MB} (MiB)")
    retry = _retry(s)
    if burst and retry:
        raise s.error("retry", "a burst sends each request once: a retry policy has no meaning")
    if burst and timeout <= burst.timeout_s:
        raise s.error("timeout", f"must be longer than the burst's timeout ({burst.timeout_s}s)")
    s.finish()
    return Layer(
        name=name,
        role=role,
        command=command,
        needs=tuple(dict.fromkeys(needs)),
        timeout_s=timeout,
        gate=gate,
        junit=junit,
        max_output_mb=max_output_mb,
        retry=retry,
        burst=burst,
    )


def _name(s: Section) -> tuple[str, bool]:
    """(the entry's name, whether it is a step): ``name: X`` is a layer, ``step: X`` a step.

    What a step cannot have is refused here, naming the field, before anything else is
    read: a step is judged by its exit code, so a field that only makes sense for tests
    would be silently ignored otherwise.
    """
    if s.has("step") and s.has("name"):
        raise s.error("name", "an entry is a layer ('name: X') or a step ('step: X'), not both")
    if not s.has("step") and not s.has("name"):
        raise s.error("name", "is required (or 'step' for a setup step, which runs no tests)")
    step = s.has("step")
    key = "step" if step else "name"
    name = s.get(key, str, required=True)
    if not _NAME.fullmatch(name):
        raise s.error(key, "must be lower-case letters, digits, '_' or '-' (at most 40)")
    if not step:
        return name, False
    refused = {
        "junit": "a step never writes JUnit XML: it is judged by its exit code; leave junit "
        f"out, or make it a test layer ('- name: {name}')",
        "retry": "a step runs no tests, so there is no test for a retry to re-run",
        "burst": f"a step runs a command; a burst probe is a layer ('- name: {name}')",
    }
    for field, why in refused.items():
        if s.has(field):
            raise s.error(field, why)
    return name, True


def _command(s: Section) -> str:
    command = s.get("command", str, required=True).strip()
    if not command or "\0" in command or len(command) > 8192:
        raise s.error("command", "must be a non-empty shell command of at most 8192 characters")
    return command


def _burst(layer: Section) -> Burst | None:
    """The layer's burst probe, if it has one (then it has no command)."""
    s = layer.section("burst")
    if s is None:
        return None
    if layer.has("command"):
        raise layer.error("command", "a layer has either a command or a burst, not both")
    requests = s.get("requests", int, required=True)
    if not 1 <= requests <= MAX_BURST_REQUESTS:
        raise s.error("requests", f"must be between 1 and {MAX_BURST_REQUESTS}")
    path = s.optional("path", str)
    if path is not None and not _URL_PATH.fullmatch(path):
        raise s.error("path", f"must be a URL path starting with '/': {shown(path)}")
    timeout = s.get("timeout", float, DEFAULT_BURST_TIMEOUT_S)
    if not 0 < timeout <= MAX_BURST_TIMEOUT_S:
        raise s.error("timeout", f"must be more than 0 and at most {MAX_BURST_TIMEOUT_S:.0f} s")
    s.finish()
    return Burst(requests=requests, path=path, timeout_s=timeout)


def _retry(layer: Section) -> RetryPolicy | None:
    s = layer.section("retry")
    if s is None:
        return None
    count = s.get("count", int, required=True)
    if not 1 <= count <= MAX_RETRIES:
        raise s.error("count", f"must be between 1 and {MAX_RETRIES} (more attempts per test)")
    names = s.string_list("errors", ("transport",))
    for name in names:
        if name != "transport" and name not in TRANSPORT_ERRNOS:
            raise s.error(
                "errors",
                f"unknown transport error {shown(name)}; use 'transport' (all of them) or "
                f"some of {', '.join(TRANSPORT_ERRNOS)}",
            )
    errnos = TRANSPORT_ERRNOS if "transport" in names else tuple(dict.fromkeys(names))
    backoff = s.get("backoff", float, 0.0)
    if not 0 <= backoff <= MAX_BACKOFF_S:
        raise s.error("backoff", f"must be between 0 and {MAX_BACKOFF_S:.0f} seconds")
    s.finish()
    return RetryPolicy(count=count, on=errnos, backoff_s=backoff)
