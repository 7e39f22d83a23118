"""The run record: one typed owner for what goes into ``run.json``.

Steps fill a :class:`RunRecord` as they go; the store writes it (atomically, after every
step) and the report reads it back through :func:`from_json`. Fields are dataclasses, not
free-form dicts, so a typo is a type error and a field the report expects but the run
never wrote fails loudly instead of rendering as nothing.

Schema history (``schema`` field):

* ``readiness.run/1``: the HTTP-side evidence was a placeholder called ``transport``.
* ``readiness.run/2``: that placeholder is ``ledger``; "transport" names only how the
  control node reaches a host. Records of version 1 are read with the placeholder
  dropped and ``ledger`` at its default (nothing was ever collected in it). The
  database server's version fact is ``database_server`` (it was ``mariadbd``, probed on
  every host; it is now probed by the engine on the database host only).
* ``readiness.run/3``: the ledger is collected (errors and unmatched resets with their
  attribution, captures, flagged tests, finding), ``fingerprints`` per server host,
  ``tests.retried`` per layer, and more counters watched. Version 2 records read with
  these at their defaults (``ledger.collected`` false: nothing was collected).
* ``readiness.run/4``: what a sysadmin needs to reproduce and run the application:
  ``command``, ``readiness_version``, ``project`` (source and commit), ``inputs`` (the
  inventory and suite as run, secrets scrubbed), ``network`` (listeners and the
  connections between hosts), the packages of each wheelhouse (``build``), when each
  step, deploy and layer started (``start_s``, seconds from the run's start: the
  timeline), and the per-test files ``tests_file`` (JSON lines) and ``junit_file``
  (merged JUnit XML). Version 3 records read with these at their defaults.
* ``readiness.run/5``: ``files``, every file and folder of the user's that the run used
  (requirements, fixtures, the client's folder), where it was found (inside the
  application, beside the inventory, or an absolute path) and its sha256; and
  ``deploy[].installer``, what built the host's virtualenvs (uv or pip), and
  ``steps[].round_trips``, the round trips to each host during each step. Version 4
  records read with none.
* ``readiness.run/6``: ``deploy[].patched``, the code parts sent as their difference
  from the version the host held (files sent, names removed), and what each layer's
  evidence window could not settle. Version 5 records read with none.

``orchestrator/run.schema.json`` is the JSON Schema of the current version, generated from
these classes (:mod:`orchestrator.schema`); the tests check every record they write
against it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from orchestrator.junit import TestCounts

SCHEMA = "readiness.run/6"
READABLE_SCHEMAS = (
    "readiness.run/1",
    "readiness.run/2",
    "readiness.run/3",
    "readiness.run/4",
    "readiness.run/5",
    SCHEMA,
)

T = TypeVar("T")


@dataclass
class HostRecord:
    """One host as the run found it: how it was reached and its facts."""

    name: str
    address: str
    roles: list[str]
    connection: str
    facts: dict[str, str] = field(default_factory=dict)


@dataclass
class PatchRecord:
    """A code part sent as its difference from the version a host held."""

    part: str
    # Files and links sent (new or changed), and names removed on the host.
    files: int
    removed: int
    # False: the host's folder was not the version its probe reported (changed since),
    # so the patch was refused and the part sent whole in a second round trip.
    applied: bool = True


@dataclass
class DeployRecord:
    """One component deployed onto one host (``running`` until it finishes)."""

    host: str
    component: str
    status: str = "running"
    duration_s: float = 0.0
    sent: list[str] | None = None
    bytes_sent: int | None = None
    round_trips: int | None = None
    error: str | None = None
    # Parts resent because something on the host changed them since they were sent.
    drifted: list[str] | None = None
    # Seconds from the run's start to this step's start (None: not started, or an old record).
    start_s: float | None = None
    # What built the host's virtualenvs: "uv 0.9.30" or "pip" (None: none was built).
    installer: str | None = None
    # Code parts of ``sent`` that went as their difference from the version the host held.
    patched: list[PatchRecord] | None = None
    # The virtualenvs (wheelhouse digests) linked from the host's cache of built
    # virtualenvs, where another deploy root had them built: no wheels sent, none built.
    linked: list[str] = field(default_factory=list)


@dataclass
class HostLayerRecord:
    """What one layer did on one host."""

    status: str
    exit_code: int | None
    duration_s: float
    timed_out: bool
    tests: TestCounts
    problem: str | None = None
    # The layer's output as stored (secrets scrubbed), capped by the suite's max_output_mb:
    # ``log`` is the run-relative path of the file kept, ``output_bytes`` what the layer
    # printed, ``output_dropped_bytes`` what the cap left out of the middle of it.
    log: str | None = None
    output_bytes: int = 0
    output_truncated: bool = False
    output_dropped_bytes: int = 0


@dataclass
class LayerRecord:
    """One layer of the suite, over every host of its role."""

    name: str
    role: str
    hosts: list[str]
    status: str
    duration_s: float
    tests: TestCounts = field(default_factory=TestCounts)
    junit: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    reason: str | None = None
    command: str = ""
    per_host: dict[str, HostLayerRecord] = field(default_factory=dict)
    # Which pass of --repeat ran it (1: the sequence itself; a client layer's later passes
    # are named "<layer>.<pass>").
    repeat: int = 1
    # Seconds from the run's start to the layer's start (None: it never ran, or an old record).
    start_s: float | None = None
    # A setup layer writes no JUnit XML (the suite's ``junit: false``): a step, not tests.
    setup: bool = False

    @property
    def noun(self) -> str:
        """What the terminal and the verdict call it: a setup ``step`` or a test ``layer``."""
        return "step" if self.setup else "layer"


@dataclass
class CounterRecord:
    """A host's watched TCP counters before and after a layer, and what moved."""

    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    delta: dict[str, int] = field(default_factory=dict)


@dataclass
class StepRecord:
    """One step of the lifecycle (lab, connect, build, deploy, faults, layers): how it
    ended, how long it took, and when it started (the timeline)."""

    name: str
    status: str
    duration_s: float
    start_s: float | None = None  # seconds from the run's start
    # host -> round trips to it during the step (scripts run, files moved)
    round_trips: dict[str, int] = field(default_factory=dict)


@dataclass
class BuildRecord:
    """What the control node built: digests tell a warm run from a cold one."""

    app_digest: str
    client_digest: str
    server_wheelhouse: str
    client_wheelhouse: str
    duration_s: float
    # What each virtualenv holds (name -> version): the wheelhouse is all it is built from.
    server_packages: dict[str, str] = field(default_factory=dict)
    client_packages: dict[str, str] = field(default_factory=dict)


@dataclass
class LabRecord:
    """The local lab the run used: its name prefix and private subnet."""

    prefix: str
    subnet: str


@dataclass
class TeardownRecord:
    """How the teardown went: ``ok`` or ``failed``, with what failed on which host."""

    status: str
    failures: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass
class InterruptRecord:
    """A signal stopped the run: which, where it was, and any that came after it."""

    signal: str
    step: str | None = None
    layer: str | None = None
    noted: list[str] = field(default_factory=list)


@dataclass
class RstRecord:
    """One RST segment as captured: its source and destination ``addr:port``, when
    (epoch seconds), and where it was seen (``host iface direction``, e.g. ``h1 eth0 Out``)."""

    from_: str = field(metadata={"json": "from"})
    to: str
    at: float
    seen: list[str] = field(default_factory=list)


@dataclass
class AttributionRecord:
    """One transport error a test process saw (or one RST no test process reported), and
    who sent it and why, with the evidence.

    ``side``: ``server`` (the server's socket), ``client`` (the client's socket), ``none``
    (no host's TCP stack sent it: a firewall or middlebox), or ``unknown``.
    ``mechanism``: one of :data:`orchestrator.attribution.MECHANISMS`.
    ``confidence``: ``high`` (capture and counters agree), ``medium`` (one of them),
    ``low`` (inferred from what is missing).
    """

    layer: str
    test: str | None
    attempt: int | None
    errno: str | None
    client: str | None
    server: str | None
    rst: RstRecord | None
    side: str
    host: str | None
    mechanism: str
    confidence: str
    evidence: list[str] = field(default_factory=list)
    # Where the test process ran and what it raised (None for an RST nobody reported).
    on: str | None = None
    exception: str | None = None
    at: float | None = None


@dataclass
class CaptureRecord:
    """The RST capture of one host for one layer's window."""

    status: str  # captured | partial | unavailable | failed
    reason: str | None = None
    rsts: int = 0
    file: str | None = None  # run-relative path of the raw capture lines
    # partial: the kernel dropped packets, or there were more RSTs than a capture keeps
    dropped: int = 0
    # Whether the layer's connections were gone when the window closed (None: not known);
    # false: their late resets may land in the next layer's window, judged more warily.
    settled: bool | None = None
    # The TCP sockets on the watched ports still open when the window closed anyway.
    lingering: int | None = None
    # How long the close waited for the layer's connections to go, in seconds.
    settle_waited_s: float | None = None


@dataclass
class FlaggedTestRecord:
    """A test that passed but not cleanly: only after retries, or while the ledger saw
    transport errors in it. Never counted as a plain pass."""

    layer: str
    host: str
    test: str
    status: str  # passed-with-retries | passed-with-transport-errors
    attempts: int
    errors: list[str] = field(default_factory=list)  # errno names, in order


@dataclass
class FingerprintRecord:
    """How one application server took connections during a layer."""

    kind: str  # testserver | gunicorn
    address: str  # addr:port it listened on
    threading: str  # e.g. "threaded", "2 workers x 4 threads"
    keep_alive: bool
    database_link: str | None  # socket | tcp | None (no database)
    backlog: int | None = None  # Send-Q of the listener in ss -ltn: the backlog in force
    accept_queue_peak: int | None = None  # largest Recv-Q seen in any layer that used it
    somaxconn: int | None = None
    tcp_abort_on_overflow: int | None = None
    tcp_syncookies: int | None = None
    layer: str | None = None  # the layer in which that largest Recv-Q was seen


@dataclass
class LedgerRecord:
    """The HTTP-side evidence: transport errors in the test processes, RSTs captured on
    the hosts, and who sent each reset and why (:mod:`orchestrator.attribution`)."""

    collected: bool = False
    # Transport errors on the deployed stack's connections (judged below) ...
    events: int = 0
    # ... and on anything else: a test's own stub server (kept in the files, not judged).
    other_events: int = 0
    errors: list[AttributionRecord] = field(default_factory=list)
    # RSTs no test process reported (swallowed by a retry or by the HTTP library).
    resets: list[AttributionRecord] = field(default_factory=list)
    by_mechanism: dict[str, int] = field(default_factory=dict)
    flagged: list[FlaggedTestRecord] = field(default_factory=list)
    # layer -> host -> capture
    captures: dict[str, dict[str, CaptureRecord]] = field(default_factory=dict)
    # layer -> host -> run-relative path of the raw ledger lines
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    finding: str | None = None
    # What went wrong collecting or judging the evidence (the run goes on regardless).
    problems: list[str] = field(default_factory=list)


@dataclass
class FaultRecord:
    """One fault profile the run provoked (``--faults``): what, how, where, and whether
    it was removed again. Profiles act only inside lab namespaces."""

    name: str
    parameters: dict[str, str] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)  # lab hosts it acted in
    actions: list[str] = field(default_factory=list)  # what was changed, for a human
    applied: bool = False
    removed: bool = False
    error: str | None = None


@dataclass
class BurstRecord:
    """A burst probe: N simultaneous requests from one client host to the live server."""

    layer: str
    host: str  # the client host that sent it
    url: str
    requests: int
    ok: int = 0  # answered with a 2xx/3xx
    # errno name (ECONNRESET, ETIMEDOUT, ...) or "HTTP 503" -> how many
    errors: dict[str, int] = field(default_factory=dict)
    # p50, p90, p99, max of the requests that got an answer, in milliseconds
    latency_ms: dict[str, float] = field(default_factory=dict)
    # answered, but only after a SYN retransmission (> 1 s): an overflow without a reset
    slow: int = 0
    duration_s: float = 0.0


@dataclass
class PassRateRecord:
    """One test over the client passes of ``--repeat``: how often it passed, and in which
    passes the ledger saw transport errors in it."""

    layer: str
    host: str
    test: str
    position: int | None
    runs: int
    passed: int
    error_passes: list[int] = field(default_factory=list)  # 1-based pass numbers


@dataclass
class ProjectRecord:
    """The application as deployed: where its source was and which commit it was at."""

    source: str  # the folder, as resolved on the control node
    commit: str | None = None  # git HEAD of that folder; None when it is not a git checkout
    dirty: bool | None = None  # uncommitted changes in the checkout (None: not known)


@dataclass
class UserFileRecord:
    """A file or folder of the user's that the run used, and where it was found."""

    field: str  # the inventory field that names it: "application.fixtures"
    value: str  # as written in the inventory
    path: str  # as resolved on the control node
    base: str  # application | inventory | absolute: what a relative value was resolved against
    kind: str = "file"  # file | folder
    sha256: str | None = None  # of the file's content when the run started (None: a folder)


@dataclass
class ListenRecord:
    """A port (or Unix socket) a host listens on for the application to work."""

    host: str
    what: str  # "ssh", "application server", "database"
    port: int | None = None
    address: str | None = None  # the address it is bound to
    socket: str | None = None  # a Unix socket's path (reached on the same host only)


@dataclass
class FlowRecord:
    """A connection the application makes: from a host to another host's (or its own) port.
    ``crosses`` is true when it goes over the network between two hosts (a firewall must
    allow it), false when both ends are on one host (loopback or a Unix socket)."""

    from_: str = field(metadata={"json": "from"})
    to: str
    what: str  # "client -> server", "server -> database", "control -> ssh"
    port: int | None = None
    via: str = "tcp"  # tcp | socket
    crosses: bool = False


@dataclass
class NetworkRecord:
    """The firewall's view of the run: what listens where and which connections the
    application makes (:mod:`orchestrator.network`)."""

    listens: list[ListenRecord] = field(default_factory=list)
    flows: list[FlowRecord] = field(default_factory=list)


@dataclass
class RunRecord:
    """Everything ``run.json`` holds about one run."""

    run_id: str
    inventory: str
    inventory_file: str
    suite: str
    topology: str
    started_at: str
    schema: str = SCHEMA
    database_links: dict[str, str] = field(default_factory=dict)
    finished_at: str | None = None
    verdict: str = "error"
    reasons: list[str] = field(default_factory=lambda: ["the run did not finish"])
    hosts: list[HostRecord] = field(default_factory=list)
    deploy: list[DeployRecord] = field(default_factory=list)
    layers: list[LayerRecord] = field(default_factory=list)
    ledger: LedgerRecord = field(default_factory=LedgerRecord)
    # server host -> how it took connections (taken during the layers that needed it)
    fingerprints: dict[str, FingerprintRecord] = field(default_factory=dict)
    # --faults, --repeat and burst probes (what the run provoked, and how often)
    faults: list[FaultRecord] = field(default_factory=list)
    repeat: int = 1
    pass_rates: list[PassRateRecord] = field(default_factory=list)
    bursts: list[BurstRecord] = field(default_factory=list)
    # layer name -> host name -> counters
    counters: dict[str, dict[str, CounterRecord]] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    lab: LabRecord | None = None
    build: BuildRecord | None = None
    teardown: TeardownRecord | None = None
    interrupted: InterruptRecord | None = None
    # The command that runs this again, quoted for a POSIX shell.
    command: str = ""
    # readiness's version, and its git commit when it ran from a checkout.
    readiness_version: str = ""
    # The application deployed: its source folder and git commit.
    project: ProjectRecord | None = None
    # "inventory" / "suite" -> run-relative path of the file as run (secrets scrubbed)
    inputs: dict[str, str] = field(default_factory=dict)
    # The user's files and folders the run used (requirements, fixtures, client folder).
    files: list[UserFileRecord] = field(default_factory=list)
    network: NetworkRecord = field(default_factory=NetworkRecord)
    # Run-relative path of every test case, one JSON line each (orchestrator.testcases);
    # None until a layer wrote JUnit XML.
    tests_file: str | None = None
    # Run-relative path of the merged JUnit XML (one testsuite per layer and host).
    junit_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _plain(self)  # type: ignore[no-any-return]


class RecordError(ValueError):
    """A run.json that is not a run record this version can read."""


def from_json(data: Any) -> RunRecord:
    """Read a record written by this or an earlier schema version."""
    if not isinstance(data, dict):
        raise RecordError("a run record must be a JSON object")
    schema = data.get("schema")
    if schema not in READABLE_SCHEMAS:
        raise RecordError(f"unknown run record schema {schema!r}")
    if schema == "readiness.run/1":
        data = {k: v for k, v in data.items() if k != "transport"}
    data = {**data, "schema": SCHEMA}
    return _build(RunRecord, data, "run")


def _json_name(f: dataclasses.Field[Any]) -> str:
    """A field's key in JSON: its name, unless it had to differ (``from`` is a keyword)."""
    return str(f.metadata.get("json", f.name))


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` that writes each field under its JSON name."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_json_name(f): _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = _json_name(f)
        if key in data:
            values[f.name] = _value(hints[f.name], data[key], f"{where}.{key}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise RecordError(f"{where}: missing field '{f.name}'")
    return cls(**values)


def _value(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            raise RecordError(f"{where}: expected a list")
        return [_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise RecordError(f"{where}: expected an object")
        return {str(k): _value(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool, float) and type(value) is not hint:
        raise RecordError(f"{where}: expected {hint.__name__}, got {type(value).__name__}")
    return value
