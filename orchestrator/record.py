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
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from orchestrator.junit import TestCounts

SCHEMA = "readiness.run/2"
READABLE_SCHEMAS = ("readiness.run/1", SCHEMA)

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


@dataclass
class CounterRecord:
    """A host's watched TCP counters before and after a layer, and what moved."""

    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    delta: dict[str, int] = field(default_factory=dict)


@dataclass
class StepRecord:
    name: str
    status: str
    duration_s: float


@dataclass
class BuildRecord:
    """What the control node built: digests tell a warm run from a cold one."""

    app_digest: str
    client_digest: str
    server_wheelhouse: str
    client_wheelhouse: str
    duration_s: float


@dataclass
class LabRecord:
    prefix: str
    subnet: str


@dataclass
class TeardownRecord:
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
class LedgerRecord:
    """The HTTP-side transport errors of the test processes (not collected yet)."""

    collected: bool = False


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
    # layer name -> host name -> counters
    counters: dict[str, dict[str, CounterRecord]] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    lab: LabRecord | None = None
    build: BuildRecord | None = None
    teardown: TeardownRecord | None = None
    interrupted: InterruptRecord | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
        data["schema"] = SCHEMA
    return _build(RunRecord, data, "run")


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            values[f.name] = _value(hints[f.name], data[f.name], f"{where}.{f.name}")
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
