"""Run one layer of a suite on the hosts of its role, and keep what it produced.

The layer's command runs through the transport with the layer's timeout; on timeout the
transport kills the remote process group, so nothing of the layer survives it. Its
output goes to ``logs/<host>/<layer>.log`` and its JUnit XML to
``junit/<layer>/<host>.xml`` in the run store, both scrubbed of secrets.

The output streams to disk as it arrives (:class:`LayerOutput`, the transport's sink),
never whole in memory: a layer may print hundreds of MiB. What is stored is capped by the
layer's ``max_output_mb`` (per host): the first and the last half of the cap, because the
start says what ran and the end of a failing test run is what explains it; the log and
the record say how much was dropped in between.
"""

from __future__ import annotations

import codecs
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from orchestrator.components.appserver import app_environment, client_environment
from orchestrator.exceptions import HostError, ReadinessError
from orchestrator.hosts import on_all
from orchestrator.junit import JUnitError, TestCounts, parse_counts
from orchestrator.layout import Layout
from orchestrator.record import HostLayerRecord, LayerRecord
from orchestrator.scripts import Shell, render
from orchestrator.store import RunStore
from orchestrator.suite import Layer
from orchestrator.transport import STREAMS, Result, Transport
from orchestrator.vault import redact

MIB = 1 << 20
RESULT_TAIL_BYTES = 64 * 1024
"""How much of each stream's end a layer's Result still holds in memory."""
_COPY = MIB

# Statuses: passed; failed (non-zero exit, failing tests, or no tests reported); timeout;
# error (could not run at all: the host was lost); blocked (a gate before it stopped).


@dataclass(frozen=True)
class HostRun:
    host: str
    exit_code: int | None
    duration_s: float
    timed_out: bool
    tests: TestCounts
    junit: str | None
    log: str | None
    problem: str | None = None
    output_bytes: int = 0
    dropped_bytes: int = 0

    @classmethod
    def lost(
        cls, host: str, duration_s: float, why: str, output: StoredOutput | None = None
    ) -> HostRun:
        """The host could not run the layer at all (it vanished, SSH broke); what it printed
        until then is kept all the same."""
        log = None if output is None else output.log
        total, dropped = (0, 0) if output is None else (output.total, output.dropped)
        return cls(host, None, duration_s, False, TestCounts(), None, log, why, total, dropped)

    @property
    def status(self) -> str:
        if self.exit_code is None:
            return "error"
        if self.timed_out:
            return "timeout"
        if self.exit_code != 0 or self.tests.failed or self.tests.errors:
            return "failed"
        if self.problem is not None:  # exit 0 but no JUnit, or none ran: not a pass
            return "failed"
        return "passed"

    def to_record(self) -> HostLayerRecord:
        return HostLayerRecord(
            status=self.status,
            exit_code=self.exit_code,
            duration_s=round(self.duration_s, 3),
            timed_out=self.timed_out,
            tests=self.tests,
            problem=self.problem,
            log=self.log,
            output_bytes=self.output_bytes,
            output_truncated=self.dropped_bytes > 0,
            output_dropped_bytes=self.dropped_bytes,
        )


@dataclass(frozen=True)
class LayerOutcome:
    name: str
    role: str
    hosts: tuple[str, ...]
    status: str
    duration_s: float
    tests: TestCounts = field(default_factory=TestCounts)
    runs: tuple[HostRun, ...] = ()
    reason: str | None = None
    command: str = ""

    @classmethod
    def blocked(cls, layer: Layer, hosts: Sequence[str], why: str) -> LayerOutcome:
        return cls(
            layer.name, layer.role, tuple(hosts), "blocked", 0.0, reason=why, command=layer.command
        )

    def to_record(self) -> LayerRecord:
        return LayerRecord(
            name=self.name,
            role=self.role,
            hosts=list(self.hosts),
            status=self.status,
            duration_s=round(self.duration_s, 3),
            tests=self.tests,
            junit=[r.junit for r in self.runs if r.junit],
            logs=[r.log for r in self.runs if r.log],
            reason=self.reason,
            command=self.command,
            per_host={r.host: r.to_record() for r in self.runs},
        )


class StreamRedactor:
    """Scrubs secrets (:func:`~orchestrator.vault.redact`) from a stream read in chunks.

    A chunk may end inside a secret, or inside a UTF-8 character: the end of each chunk
    that could still be the start of a secret is held back until the next chunk (or the
    final call) shows whether it is one, so a secret split across chunks is scrubbed like
    any other. What is held back stays under twice the longest secret.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = [secret for secret in secrets if secret]
        self.hold = max((len(secret) for secret in self.secrets), default=1) - 1
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""

    def feed(self, data: bytes, *, final: bool = False) -> bytes:
        """The scrubbed text that ``data`` completes (all that is left, if ``final``)."""
        text = self.pending + self.decoder.decode(data, final)
        cut = len(text) if final else self._safe_cut(text)
        self.pending = text[cut:]
        return redact(text[:cut], self.secrets).encode()

    def _safe_cut(self, text: str) -> int:
        """Where to split ``text``: no secret across it, and a secret starting after it
        may still be completed by the next chunk."""
        cut = max(0, len(text) - self.hold)
        moved = True
        while moved:
            moved = False
            for secret in self.secrets:
                at = text.find(secret, max(0, cut - len(secret) + 1), cut + len(secret) - 1)
                if 0 <= at < cut:  # this occurrence straddles the cut: keep all of it back
                    cut, moved = at, True
        return cut


class _Kept:
    """One stream's scrubbed bytes on disk as they arrive: its first ``head`` bytes in one
    file and its last ``tail`` bytes in a ring file; so at most head + tail bytes of disk
    and one chunk of memory, however much the layer prints."""

    def __init__(self, directory: Path, name: str, head: int, tail: int) -> None:
        self.name = name
        self.head_cap, self.tail_cap = head, tail
        self.head = (directory / f"{name}.head").open("w+b")
        self.ring = (directory / f"{name}.tail").open("w+b", buffering=0)
        self.total = 0

    def write(self, data: bytes) -> None:
        if self.total < self.head_cap:
            self.head.write(data[: self.head_cap - self.total])
        if self.tail_cap:
            last = data[-self.tail_cap :]
            at = (self.total + len(data) - len(last)) % self.tail_cap
            first = last[: self.tail_cap - at]
            os.pwrite(self.ring.fileno(), first, at)
            if len(last) > len(first):
                os.pwrite(self.ring.fileno(), last[len(first) :], 0)
        self.total += len(data)

    def copy(self, out: BinaryIO, budget: int) -> int:
        """Write what ``budget`` bytes keep of the stream to ``out``: all of it, or its
        head, a line saying how much was dropped, and its tail. Returns the bytes dropped."""
        head = min(self.total, self.head_cap) if budget >= self.total else budget // 2
        tail = min(budget, self.total) - head
        self.head.flush()
        _copy_range(self.head.fileno(), out, 0, head, None)
        dropped = self.total - head - tail
        if dropped:
            out.write(
                f"\n[readiness: {dropped} bytes of {self.name} dropped here; kept the first "
                f"{head} and the last {tail} (the layer's max_output_mb)]\n".encode()
            )
        _copy_range(self.ring.fileno(), out, self.total - tail, self.total, self.tail_cap)
        return dropped

    def close(self) -> None:
        self.head.close()
        self.ring.close()


def _copy_range(fd: int, out: BinaryIO, start: int, end: int, ring: int | None) -> None:
    """Copy stream offsets [start, end) from ``fd`` (a ring of ``ring`` bytes, if given)."""
    while start < end:
        at = start if ring is None else start % ring
        size = min(_COPY, end - start, _COPY if ring is None else ring - at)
        data = os.pread(fd, size, at)
        if not data:
            raise OSError(f"output file ended early at {at}")
        out.write(data)
        start += len(data)


def _shares(limit: int, totals: Sequence[int]) -> list[int]:
    """Split ``limit`` bytes between streams: a stream that needs less than an even share
    keeps all of it, and what it leaves goes to the others."""
    shares = [0] * len(totals)
    left = limit
    order = sorted(range(len(totals)), key=lambda i: totals[i])
    for done, index in enumerate(order):
        shares[index] = min(totals[index], left // (len(totals) - done))
        left -= shares[index]
    return shares


@dataclass(frozen=True)
class StoredOutput:
    """Where a layer's output was kept and how much of it the cap dropped."""

    path: Path
    log: str
    total: int
    dropped: int


class LayerOutput:
    """The sink a layer's output streams into (:class:`~orchestrator.transport.OutputSink`):
    scrubbed of secrets as it arrives, capped at ``limit`` bytes (both streams together),
    and written as one log by :meth:`finish`."""

    tail_bytes = RESULT_TAIL_BYTES

    def __init__(self, store: RunStore, limit: int, secrets: Sequence[str], *parts: str) -> None:
        self.store, self.limit, self.secrets = store, limit, secrets
        self.path = store.path(*parts)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._parts = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        half = limit // 2
        self._streams = {name: _Kept(self._parts, name, half, limit - half) for name in STREAMS}
        self._redactors = {name: StreamRedactor(secrets) for name in STREAMS}

    def write(self, stream: str, data: bytes) -> None:
        self._streams[stream].write(self._redactors[stream].feed(data))

    def finish(self, header: str) -> StoredOutput:
        """Write the log (``header``, then what the cap keeps of each stream), atomically
        and 0600 like every run file, and remove the parts."""
        try:
            for name in STREAMS:
                self._streams[name].write(self._redactors[name].feed(b"", final=True))
            totals = [self._streams[name].total for name in STREAMS]
            total, dropped = sum(totals), 0
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(redact(header, self.secrets).encode())
                    shares = _shares(self.limit, totals)
                    if sum(shares) < total:
                        out.write(
                            f"# output truncated: {total - sum(shares)} of {total} bytes "
                            f"dropped (max_output_mb: {self.limit / MIB:g})\n".encode()
                        )
                    for name, share in zip(STREAMS, shares, strict=True):
                        out.write(f"--- {name} ---\n".encode())
                        dropped += self._streams[name].copy(out, share)
                        out.write(b"\n")
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        finally:
            self.close()
        return StoredOutput(self.path, self.store.relative(self.path), total, dropped)

    def close(self) -> None:
        """Remove the parts (also when the layer's run failed before :meth:`finish`)."""
        for kept in self._streams.values():
            kept.close()
        shutil.rmtree(self._parts, ignore_errors=True)


def layer_script(
    layer: Layer,
    layout: Layout,
    *,
    venv: str,
    junit_path: str,
    base_url: str | None,
    env: Mapping[str, str],
) -> str:
    workdir = layout.app if layer.role == "server" else layout.client
    environment = (
        app_environment(layout, venv, env)
        if layer.role == "server"
        else client_environment(layout, venv, env)
    )
    return render(
        "layer.sh",
        root=layout.root,
        # Both are shell already: a rendered script, and the suite author's command.
        environment=Shell(environment.rstrip("\n")),
        command=Shell(layer.command),
        junit_dir=junit_path.rsplit("/", 1)[0],
        junit_path=junit_path,
        layer=layer,
        base_url=base_url,
        workdir=workdir,
    )


@dataclass(frozen=True)
class LayerRun:
    """One layer about to run: where, with what, and what to keep secret."""

    store: RunStore
    layer: Layer
    transports: Mapping[str, Transport]
    layouts: Mapping[str, Layout]
    venv_digest: str
    base_url: str | None
    env: Mapping[str, str]
    secrets: Sequence[str]
    run_id: str

    def on_host(self, host: str) -> HostRun:
        """Run the layer's script on one host, keep its log and JUnit; never raises for a
        failing layer, and a lost host is a :class:`HostRun` with status ``error``."""
        t0 = time.monotonic()
        layout = self.layouts[host]
        junit_path = f"{layout.results(self.run_id)}/{self.layer.name}.xml"
        script = layer_script(
            self.layer,
            layout,
            venv=layout.venv(self.venv_digest),
            junit_path=junit_path,
            base_url=self.base_url,
            env=self.env,
        )
        output = LayerOutput(
            self.store,
            self.layer.max_output_mb * MIB,
            self.secrets,
            "logs",
            host,
            f"{self.layer.name}.log",
        )
        try:
            result = self.transports[host].run(script, timeout=self.layer.timeout_s, sink=output)
        except ReadinessError as err:
            lost = err.detail if isinstance(err, HostError) else str(err)  # reason names the host
            duration = time.monotonic() - t0
            header = f"$ {self.layer.command}\n# no exit code ({lost}), {duration:.1f}s\n"
            return HostRun.lost(host, duration, lost, output.finish(header))
        except BaseException:
            output.close()
            raise
        stored = output.finish(self._header(result))
        tests, junit, problem = TestCounts(), None, None
        if self.layer.junit:
            tests, junit, problem = self._junit(host, junit_path)
        return HostRun(
            host,
            result.exit_code,
            result.duration_s,
            result.timed_out,
            tests,
            junit,
            stored.log,
            problem,
            stored.total,
            stored.dropped,
        )

    def _header(self, result: Result) -> str:
        return (
            f"$ {self.layer.command}\n# exit code {result.exit_code}"
            f"{' (timed out)' if result.timed_out else ''}, {result.duration_s:.1f}s\n"
        )

    def _junit(self, host: str, path: str) -> tuple[TestCounts, str | None, str | None]:
        """(counts, the stored copy's path, a problem) for the JUnit XML the layer wrote."""
        try:
            data = self.transports[host].get(path)
            tests = parse_counts(data, source=f"{host}:{path}")
            stored = self.store.write_bytes(
                redact(data.decode("utf-8", "replace"), self.secrets).encode(),
                "junit",
                self.layer.name,
                f"{host}.xml",
            )
        except (ReadinessError, JUnitError, OSError) as err:
            return TestCounts(), None, f"no JUnit XML: {err}"
        problem = "the JUnit XML lists no test at all" if tests.total == 0 else None
        return tests, self.store.relative(stored), problem


def run_layer(
    store: RunStore,
    layer: Layer,
    transports: Mapping[str, Transport],
    layouts: Mapping[str, Layout],
    *,
    venv_digest: str,
    base_url: str | None,
    env: Mapping[str, str],
    secrets: Sequence[str],
    run_id: str | None = None,
) -> LayerOutcome:
    """Run ``layer`` on every host in parallel; never raises for a failing layer."""
    t0 = time.monotonic()
    job = LayerRun(
        store,
        layer,
        transports,
        layouts,
        venv_digest,
        base_url,
        env,
        secrets,
        run_id or store.run_id,
    )
    runs = on_all(f"layer {layer.name}", list(transports), job.on_host)
    ordered = tuple(runs[h] for h in transports)
    statuses = {r.status for r in ordered}
    status = next((s for s in ("error", "timeout", "failed") if s in statuses), "passed")
    total = TestCounts()
    for r in ordered:
        total = total + r.tests
    problems = redact("; ".join(f"{r.host}: {r.problem}" for r in ordered if r.problem), secrets)
    reason: str | None = problems or None
    if status == "timeout":
        reason = f"timed out after {layer.timeout_s}s" + (f"; {reason}" if reason else "")
    return LayerOutcome(
        name=layer.name,
        role=layer.role,
        hosts=tuple(transports),
        status=status,
        duration_s=time.monotonic() - t0,
        tests=total,
        runs=ordered,
        reason=reason,
        command=layer.command,
    )
