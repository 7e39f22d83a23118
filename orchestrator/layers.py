"""Run one layer of a suite on the hosts of its role, and keep what it produced.

The layer's command runs through the transport with the layer's timeout; on timeout the
transport kills the remote process group, so nothing of the layer survives it. Its
output goes to ``logs/<host>/<layer>.log`` and its JUnit XML to
``junit/<layer>/<host>.xml`` in the run store, both scrubbed of secrets.

The output streams to disk as it arrives (:class:`~orchestrator.output.LayerOutput`),
never whole in memory: a layer may print hundreds of MiB. What is stored is capped by the
layer's ``max_output_mb`` (per host): the first and the last half of the cap, because the
start says what ran and the end of a failing test run is what explains it; the log and
the record say how much was dropped in between. The JUnit XML streams too, scrubbed on
its way into the run store and counted a piece at a time (``LayerRun._junit``); a file
over :data:`JUNIT_MAX_BYTES` is refused, and the layer's reason says so.

A burst layer (``Layer.burst``) runs the burst probe (``scripts/burst.py``) through the
same layer script instead of a command; its one JSON summary line on stdout becomes a
:class:`~orchestrator.record.BurstRecord` (:func:`parse_burst`). It passes whenever the
probe ran on the host, whatever it measured; a probe that could not run, or a summary
that is missing or garbled, is an ``error`` with the reason, never a crash.

A setup step (``Layer.step``) is judged by its exit code alone; when it fails, the end of
its stored (scrubbed) log is kept with the run (``HostRun.tail``) for the terminal, and
its last line goes into the reason. A test layer that wrote no JUnit XML fails with a
reason that says where it was expected and how to make the layer a step, because a setup
command written as a layer is the usual cause.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from orchestrator.components.appserver import app_environment, client_environment
from orchestrator.exceptions import HostError, ReadinessError
from orchestrator.hosts import on_all
from orchestrator.junit import JUnitError, TestCounts, read_counts
from orchestrator.layout import Layout
from orchestrator.ledger import ledger_path
from orchestrator.output import MIB, LayerOutput, RedactingWriter, StoredOutput
from orchestrator.record import BurstRecord, HostLayerRecord, LayerRecord
from orchestrator.scripts import Shell, render
from orchestrator.store import RunStore
from orchestrator.suite import Layer
from orchestrator.transport import FileTooLargeError, Result, Transport
from orchestrator.vault import encoded_forms, redact

# Statuses: passed; failed (non-zero exit, failing tests, or no tests reported); timeout;
# error (could not run at all: the host was lost; a burst probe that could not run or
# gave no summary); blocked (a gate before it stopped). A burst layer that ran on every
# host is passed, whatever it measured.

BURST_KIND = "readiness-burst"  # the summary line's "kind" (scripts/burst.py)
BURST_PERCENTILES = ("p50", "p90", "p99", "max")

# How much of a failed step's output the terminal shows: its last lines explain it (a
# traceback, the command's own error), the log in the run store has the rest.
TAIL_LINES = 15
TAIL_READ_BYTES = 64 * 1024  # of the log's end: what 15 long lines need, never the whole log
TAIL_LINE_CHARS = 300
REASON_LINE_CHARS = 200
# The largest JUnit XML a layer's host may hand back: far above any real suite's (pytest's
# is ~1 KiB per test, more with captured output: tens of thousands of tests stay under
# 100 MiB), so reaching it means a runaway writer, whose file would fill the run store;
# it is refused, and said so, instead. Fetching, scrubbing and counting stream; the
# per-test view built after each layer (orchestrator.testcases) still parses it whole.
JUNIT_MAX_BYTES = 256 * MIB
_NOT_KEPT = "its JUnit XML could not be read or kept"
_LOG_MARKERS = ("--- stdout ---", "--- stderr ---")


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
    # A burst layer's run: ``probe`` set, ``burst`` its measurement (None: none came back).
    probe: bool = False
    burst: BurstRecord | None = None
    # A test layer whose JUnit XML was not there (``problem`` says why it could not be read).
    no_junit: bool = False
    # A failed step's last lines of output, scrubbed (:func:`output_tail`).
    tail: tuple[str, ...] = ()

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
        if self.probe:  # a burst measures, it does not judge: it ran, or it could not
            return "passed" if self.burst is not None else "error"
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
    # A setup layer (:func:`is_setup`): known even of a layer that never ran.
    setup: bool = False

    @property
    def bursts(self) -> list[BurstRecord]:
        """The measurements of a burst layer, one per host that gave one (for the record)."""
        return [r.burst for r in self.runs if r.burst is not None]

    @classmethod
    def blocked(cls, layer: Layer, hosts: Sequence[str], why: str) -> LayerOutcome:
        return cls(
            layer.name,
            layer.role,
            tuple(hosts),
            "blocked",
            0.0,
            reason=why,
            command=layer.command,
            setup=is_setup(layer),
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
            setup=self.setup,
        )


def is_setup(layer: Layer) -> bool:
    """A layer that writes no JUnit XML and is no burst probe prepares, it does not test:
    the report shows it as a step, not as a layer of "0 tests" (:attr:`Layer.step`)."""
    return layer.step


def no_junit_reason(layer: str, where: str) -> str:
    """Why a test layer without JUnit XML failed, and the way out: a setup command written
    as a layer (the usual cause) has nothing to report, so it should be a step."""
    name = layer.split(".", 1)[0]  # pass N of --repeat runs "name.N"; the suite says "name"
    return (
        f"layer {name} wrote no JUnit XML at $READINESS_JUNIT ({where}); if it runs no tests, "
        f"make it a step: '- step: {name}'"
    )


def output_tail(log: Path, lines: int = TAIL_LINES) -> tuple[str, ...]:
    """The last ``lines`` lines of output in a stored layer log, for a terminal.

    Only the log's end is read (a log may hold a GiB). Its header and stream markers are
    left out, and so are blank lines; each line is what a terminal would have shown of it
    (the text after its last carriage return: a progress bar), with control characters
    replaced and cut to a sane width, since the output comes from a host and may hold
    anything. The log was scrubbed of secrets when it was written.
    """
    try:
        with log.open("rb") as f:
            size = f.seek(0, 2)
            start = max(0, size - TAIL_READ_BYTES)
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ()
    found = text.split("\n")  # not splitlines(): a lone \r redraws a line, it ends none
    if start > 0:
        found = found[1:]  # the first line was cut by where the read began
    elif _LOG_MARKERS[0] in found:
        found = found[found.index(_LOG_MARKERS[0]) :]  # after the header
    shown_lines = [_visible(line) for line in found if line not in _LOG_MARKERS]
    return tuple(line for line in shown_lines if line.strip())[-lines:]


def _visible(line: str) -> str:
    line = line.rstrip("\r").rsplit("\r", 1)[-1].rstrip()  # CRLF ends a line; a lone CR redraws it
    line = "".join(c if c.isprintable() or c == "\t" else "?" for c in line)
    return _cut(line, TAIL_LINE_CHARS)


def layer_script(
    layer: Layer,
    layout: Layout,
    *,
    venv: str,
    junit_path: str,
    base_url: str | None,
    env: Mapping[str, str],
) -> str:
    """The script of one layer on one host; the ledger file sits beside the JUnit XML."""
    results = junit_path.rsplit("/", 1)[0]
    workdir = layout.app if layer.role == "server" else layout.client
    environment = (
        app_environment(layout, venv, env)
        if layer.role == "server"
        else client_environment(layout, venv, env)
    )
    # A burst layer's "command" describes it: the probe runs in its place.
    command = layer.command if layer.burst is None else burst_command(layer, venv, base_url)
    return render(
        "layer.sh",
        root=layout.root,
        # Both are shell already: a rendered script, and the suite author's command (or
        # the rendered burst.sh).
        environment=Shell(environment.rstrip("\n")),
        command=Shell(command),
        junit_dir=results,
        junit_path=junit_path,
        layer=layer,
        base_url=base_url,
        workdir=workdir,
        ledger=ledger_path(results, layer.name),
        retry=layer.retry.to_env() if layer.retry else None,
    )


def burst_url(base_url: str, path: str) -> str:
    """The URL a burst asks for: the live server's, with the burst's path."""
    return base_url.rstrip("/") + path


def burst_command(layer: Layer, venv: str, base_url: str | None) -> str:
    """The rendered burst.sh of a burst layer whose path is known (:func:`with_burst_path`)."""
    burst = layer.burst
    if burst is None or burst.path is None or base_url is None:
        raise ValueError(f"layer {layer.name}: a burst needs its path and the live server's URL")
    return render(
        "burst.sh",
        python=f"{venv}/bin/python",
        url=burst_url(base_url, burst.path),
        requests=burst.requests,
        timeout=repr(burst.timeout_s),
    )


def with_burst_path(layer: Layer, health_path: str) -> Layer:
    """A burst layer with its path given (the health path by default) and described so;
    any other layer as it is."""
    if layer.burst is None:
        return layer
    burst = replace(layer.burst, path=layer.burst.path or health_path)
    return replace(layer, burst=burst, command=burst.describe())


def parse_burst(
    stdout: str, *, layer: str, host: str, url: str, requests: int
) -> tuple[BurstRecord | None, str | None]:
    """(the measurement, None) from the probe's last summary line, or (None, why not).

    The line comes from a host: anything in it may be wrong, and a wrong line is a
    reason, never an exception. The counts must add up to the requests asked for.
    """
    line = next(
        (ln for ln in reversed(stdout.splitlines()) if BURST_KIND in ln and ln.startswith("{")),
        None,
    )
    if line is None:
        return None, "the burst probe printed no summary"
    try:
        data = json.loads(line)
        if not isinstance(data, dict) or data.get("kind") != BURST_KIND:
            raise ValueError("not a burst summary")
        record = BurstRecord(
            layer=layer,
            host=host,
            url=url,
            requests=_count(data, "requests"),
            ok=_count(data, "ok"),
            errors=_errors(data.get("errors")),
            latency_ms=_latency(data.get("latency_ms")),
            slow=_count(data, "slow"),
            duration_s=_number(data.get("duration_s")),
        )
    except (ValueError, TypeError, RecursionError) as err:
        return None, f"the burst probe's summary is garbled ({err})"
    counted = record.ok + sum(record.errors.values())
    if record.requests != requests or counted != requests:
        return None, (
            f"the burst probe's summary does not add up: {requests} requests asked, "
            f"{record.requests} reported, {counted} accounted for"
        )
    return record, None


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} is not a count: {value!r:.40}")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a number: {value!r:.40}")
    if value < 0:
        raise ValueError(f"a negative time: {value!r:.40}")
    return float(value)


def _errors(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValueError("errors is not a mapping")
    for name in value:
        if not (isinstance(name, str) and name.isprintable() and 0 < len(name) <= 100):
            raise ValueError(f"an error name that is not one: {name!r:.40}")
    return {name: _count(value, name) for name in value}


def _latency(value: object) -> dict[str, float]:
    if not isinstance(value, dict) or not set(value) <= set(BURST_PERCENTILES):
        raise ValueError("latency_ms is not p50/p90/p99/max")
    return {key: _number(value[key]) for key in BURST_PERCENTILES if key in value}


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
        return self._judge(host, result, output.finish(self._header(result)), junit_path)

    def _judge(self, host: str, result: Result, stored: StoredOutput, junit_path: str) -> HostRun:
        """The host's run, judged as the layer's kind asks: a burst by its summary, a test
        layer by its JUnit XML, a step by its exit code (and its output's end, kept)."""
        tests, junit, problem, burst, no_junit = TestCounts(), None, None, None, False
        tail: tuple[str, ...] = ()
        if self.layer.burst is not None:
            burst, problem = self._burst(host, result)
        elif self.layer.junit:
            tests, junit, problem, no_junit = self._junit(host, junit_path)
            if no_junit and result.timed_out:  # killed before it could write any: the
                problem, no_junit = None, False  # reason is the timeout, not a missing step
            elif no_junit and result.exit_code != 0:
                # It crashed before its runner wrote anything (an import error): the hint
                # to make it a step would mislead; its exit code and last line explain.
                tail = output_tail(stored.path)
                last = tail[-1] if tail else "it printed nothing"
                last = _cut(last, REASON_LINE_CHARS)
                problem = f"exit code {result.exit_code} and no JUnit XML: {last}"
                no_junit = False
        elif result.exit_code != 0 or result.timed_out:
            tail = output_tail(stored.path)
            if not result.timed_out:  # a timeout's reason is the timeout
                last = tail[-1] if tail else "it printed nothing"
                problem = f"exit code {result.exit_code}: {_cut(last, REASON_LINE_CHARS)}"
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
            probe=self.layer.burst is not None,
            burst=burst,
            no_junit=no_junit,
            tail=tail,
        )

    def _header(self, result: Result) -> str:
        return (
            f"$ {self.layer.command}\n# exit code {result.exit_code}"
            f"{' (timed out)' if result.timed_out else ''}, {result.duration_s:.1f}s\n"
        )

    def _burst(self, host: str, result: Result) -> tuple[BurstRecord | None, str | None]:
        """(the measurement, None) of a burst layer's run, or (None, why there is none)."""
        burst = self.layer.burst
        assert burst is not None and burst.path is not None and self.base_url is not None
        if result.timed_out:
            return None, None  # the status says it, with the layer's timeout
        if result.exit_code != 0:
            said = result.stderr.strip().splitlines() or ["it said nothing"]
            return None, f"the burst probe could not run (exit {result.exit_code}): {said[-1]}"
        return parse_burst(
            result.stdout,
            layer=self.layer.name,
            host=host,
            url=burst_url(self.base_url, burst.path),
            requests=burst.requests,
        )

    def _junit(self, host: str, path: str) -> tuple[TestCounts, str | None, str | None, bool]:
        """(counts, the stored copy's path, a problem, whether the file was missing) for the
        JUnit XML the layer wrote. Missing is told apart from unreadable: only a layer that
        wrote none may be a setup command that should have been a step.

        The file streams into ``junit/<layer>/<host>.xml.part``, scrubbed on the way
        (:func:`fetch_scrubbed`), is counted from there a piece at a time, and takes its
        name only then: memory stays flat whatever its size, and a fetch that fails or a
        file that is not JUnit XML leaves no file in the run store."""
        target = self.store.path("junit", self.layer.name, f"{host}.xml")
        part = target.with_name(f"{target.name}.part")
        try:
            fetch_scrubbed(self.transports[host], path, part, self.secrets, JUNIT_MAX_BYTES)
            tests = read_counts(part, source=f"{host}:{path}")
            os.replace(part, target)
        except FileTooLargeError as err:  # there, but refused: not a missing file
            return TestCounts(), None, f"{_NOT_KEPT}: {err.detail}", False
        except ReadinessError as err:
            return TestCounts(), None, err.detail if isinstance(err, HostError) else str(err), True
        except (JUnitError, OSError) as err:  # OSError: the run store's disk, not the host's
            return TestCounts(), None, f"{_NOT_KEPT}: {err}", False
        finally:
            with contextlib.suppress(OSError):  # gone already if it became the stored copy
                part.unlink()
        problem = "the JUnit XML lists no test at all" if tests.total == 0 else None
        return tests, self.store.relative(target), problem, False


class _PartFile:
    """A stored copy's ``.part`` file, created (mode 0600, like every run file, and its
    folder) by the first write: a JUnit XML that is not there leaves no trace."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: BinaryIO | None = None

    def write(self, data: bytes) -> int:
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = os.open(self.path, flags, 0o600)
            os.fchmod(fd, 0o600)  # a .part a killed run left may have had another mode
            self.handle = os.fdopen(fd, "wb")
        return self.handle.write(data)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def fetch_scrubbed(
    transport: Transport, remote: str, part: Path, secrets: Sequence[str], limit: int
) -> int:
    """Fetch ``remote`` into ``part`` a piece at a time, scrubbed of ``secrets`` before
    any of it is written, in every spelling a secret may take in XML, JSON or a URL
    (:func:`~orchestrator.vault.encoded_forms`: parsing the file for ``tests.jsonl`` and
    the pages would otherwise bring an escaped one back). Returns the remote file's size.
    The caller removes ``part`` when this raises."""
    out = _PartFile(part)
    try:
        scrubbed = RedactingWriter(out, encoded_forms(secrets))
        size = transport.get_to(remote, scrubbed, limit)
        scrubbed.finish()  # writes, if only b"": an empty file is kept as one too
    finally:
        out.close()
    return size


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
    health_path: str = "/",
) -> LayerOutcome:
    """Run ``layer`` on every host in parallel; never raises for a failing layer. A burst
    layer without a path probes ``health_path`` (the application's)."""
    t0 = time.monotonic()
    layer = with_burst_path(layer, health_path)
    if layer.burst is not None and base_url is None:
        why = "a burst needs the live server, and none runs for this layer"
        return replace(LayerOutcome.blocked(layer, list(transports), why), status="error")
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
    reason = _reason(layer, ordered, secrets)
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
        setup=is_setup(layer),
    )


def _reason(layer: Layer, runs: Sequence[HostRun], secrets: Sequence[str]) -> str | None:
    """The layer's problems on its hosts in one paragraph, scrubbed; a missing JUnit XML
    said once for all the hosts that lacked it, with the hint to make the layer a step."""
    missing = [f"{r.host}: {r.problem}" for r in runs if r.no_junit]
    problems = [f"{r.host}: {r.problem}" for r in runs if r.problem and not r.no_junit]
    if missing:
        problems.insert(0, no_junit_reason(layer.name, "; ".join(missing)))
    return redact("; ".join(problems), secrets) or None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
