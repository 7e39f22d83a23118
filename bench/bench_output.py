"""Benchmark of a layer's bounded output and JUnit XML: prints figures, asserts nothing.

A local script prints ``--mib`` MiB (default 200) on stdout, a secret sprinkled through
it, through :class:`~orchestrator.transport.LocalTransport`, once into the sink a layer
uses (:class:`~orchestrator.output.LayerOutput`: scrubbed, capped at 20 MiB, written to
disk as it arrives) and, for comparison, once without a sink (all of it in memory, as
layers did before the cap). For each: the peak RSS of this process above what it was
before the run (the kernel's high-water mark, reset before each run), the throughput,
and the size of what was kept.

Then a layer's JUnit XML: a synthetic pytest-like file of ``--junit-mib`` MiB (default
200), an XML-escaped secret in some of its failure messages, fetched through
:class:`~orchestrator.transport.LocalTransport` the way a layer keeps it (streamed and
scrubbed into the run store, then counted a piece at a time), and the same for a file of
``--junit-small-mib`` MiB (default 2), both in this one process: the peak RSS of each
(absolute, and above the RSS before it), their ratio, the throughput, and whether the
counts are right and a secret reached the stored copy.

No root, no lab. Run: ``.venv/bin/python bench/bench_output.py [--mib 200] [--no-compare]
[--junit-mib 200] [--junit-small-mib 2] [--only-junit]``.
"""

from __future__ import annotations

import argparse
import mmap
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.junit import TestCounts  # noqa: E402
from orchestrator.layers import LayerRun  # noqa: E402
from orchestrator.layout import Layout  # noqa: E402
from orchestrator.output import MIB, LayerOutput  # noqa: E402
from orchestrator.store import RunStore  # noqa: E402
from orchestrator.suite import DEFAULT_MAX_OUTPUT_MB, Layer  # noqa: E402
from orchestrator.transport import LocalTransport, OutputSink  # noqa: E402
from orchestrator.vault import encoded_forms  # noqa: E402

SECRET = "bench-s3cret-value"
# The JUnit XML's secret has the characters XML escapes: every spelling of it is scrubbed
# (24 of them), the slow case; the inventory's own secrets are URL-safe (one spelling).
JUNIT_SECRET = 'bench&s3cret"value'
JUNIT_SECRET_XML = "bench&amp;s3cret&quot;value"


def script(mib: int) -> str:
    """Prints ``mib`` MiB of test-runner-like lines, a secret in every 1000th."""
    return (
        "python3 -c '\n"
        "import sys\n"
        f'line = b"tests/test_x.py::test_case PASSED" + b"." * 90 + b"\\n"\n'
        f'secret = b"password={SECRET}" + b"." * (len(line) - 10 - {len(SECRET)}) + b"\\n"\n'
        "block = (line * 999 + secret) * 8\n"
        f"left = {mib} * 1024 * 1024\n"
        "out = sys.stdout.buffer\n"
        "while left > 0:\n"
        "    out.write(block[:left])\n"
        "    left -= len(block)\n"
        "'\n"
    )


def _status(key: str) -> int:
    """A /proc/self/status figure, in bytes (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def measure(mib: int, sink: OutputSink | None) -> tuple[float, int]:
    """(seconds, peak RSS above the RSS before the run) for one run of the script."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status("VmRSS")
    started = time.monotonic()
    result = LocalTransport().run(script(mib), sink=sink, timeout=600)
    elapsed = time.monotonic() - started
    if not result.ok:
        sys.exit(f"the script failed: {result.stderr[-2000:]}")
    return elapsed, _status("VmHWM") - before


# One block of the synthetic JUnit XML: 100 test cases as pytest writes them, 10 of them
# failing with the secret in the failure's message, each with some captured output.
_PASSED = (
    '<testcase classname="tests.test_api.TestOrders" name="test_case_{i}" time="0.012">'
    "<system-out>GET /api/orders/{i} 200 OK" + " ." * 60 + "</system-out></testcase>\n"
)
_FAILED = (
    '<testcase classname="tests.test_api.TestOrders" name="test_fail_{i}" time="0.020">'
    f'<failure message="login as admin:{JUNIT_SECRET_XML} refused">Traceback ...'
    + " x" * 200
    + "</failure></testcase>\n"
)
_BLOCK = "".join((_FAILED if i % 10 == 0 else _PASSED).format(i=i) for i in range(100))


def write_junit(path: Path, mib: int) -> TestCounts:
    """A JUnit XML file of about ``mib`` MiB, written a block at a time; its counts."""
    block = _BLOCK.encode()
    blocks = max(1, (mib * MIB) // len(block))
    with path.open("wb") as out:
        out.write(b'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">\n')
        for _ in range(blocks):
            out.write(block)
        out.write(b"</testsuite></testsuites>\n")
    return TestCounts(total=100 * blocks, passed=90 * blocks, failed=10 * blocks)


def leaks(path: Path) -> bool:
    """Whether any spelling of the secret is in the stored file (mapped, not read)."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return any(data.find(form.encode()) >= 0 for form in encoded_forms([JUNIT_SECRET]))


def measure_junit(tmp: Path, mib: int) -> tuple[float, int, int, int, str]:
    """(seconds, peak RSS, peak above the RSS before, file size, verdict) of keeping one
    layer's JUnit XML of ``mib`` MiB as a layer does (:meth:`LayerRun._junit`)."""
    source = tmp / f"junit-{mib}.xml"
    expected = write_junit(source, mib)
    store = RunStore.create(tmp / "runs", f"bench-{mib}")
    layer = Layer("unit", "client", "pytest", (), 60, "stop")
    job = LayerRun(
        store,
        layer,
        {"local": LocalTransport()},
        {"local": Layout(str(tmp))},
        "",
        None,
        {},
        [JUNIT_SECRET],
        store.run_id,
    )
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status("VmRSS")
    started = time.monotonic()
    tests, stored, problem, _ = job._junit("local", str(source))
    elapsed = time.monotonic() - started
    peak = _status("VmHWM")
    size = source.stat().st_size
    source.unlink()
    if stored is None:
        return elapsed, peak, peak - before, size, f"not kept: {problem}"
    verdict = f"counts {'right' if tests == expected else f'WRONG {tests}'}, "
    verdict += f"secret in the stored copy: {leaks(store.dir / stored)}"
    (store.dir / stored).unlink()
    return elapsed, peak, peak - before, size, verdict


def bench_junit(small: int, big: int) -> None:
    print(f"a layer's JUnit XML through LocalTransport: {small} MiB, then {big} MiB, one process")
    with tempfile.TemporaryDirectory(prefix="readiness-bench-junit.") as tmp:
        figures = []
        for mib in (small, big):
            seconds, peak, grew, size, verdict = measure_junit(Path(tmp), mib)
            figures.append(peak)
            print(
                f"  {size / MIB:6.1f} MiB: {size / MIB / seconds:6.1f} MiB/s, {seconds:6.2f} s, "
                f"peak RSS {peak / MIB:6.1f} MiB (+{grew / MIB:.1f} MiB over the run), {verdict}"
            )
    print(f"  peak RSS ratio, {big} MiB file / {small} MiB file: {figures[1] / figures[0]:.3f}")


def bench_output(mib: int, no_compare: bool) -> None:
    limit = DEFAULT_MAX_OUTPUT_MB * MIB
    print(f"a script printing {mib} MiB on stdout through LocalTransport")
    with tempfile.TemporaryDirectory(prefix="readiness-bench-output.") as tmp:
        store = RunStore.create(Path(tmp), "bench")
        output = LayerOutput(store, limit, [SECRET], "logs", "local", "bench.log")
        seconds, peak = measure(mib, output)
        stored = output.finish("$ bench\n")
        kept = stored.path.stat().st_size
        print(
            f"  sink (LayerOutput, cap {DEFAULT_MAX_OUTPUT_MB} MiB): "
            f"{mib / seconds:7.1f} MiB/s, {seconds:6.2f} s, "
            f"peak RSS +{peak / MIB:6.1f} MiB, kept {kept / MIB:.1f} MiB "
            f"(dropped {stored.dropped / MIB:.1f} MiB), "
            f"secret in the log: {SECRET in stored.path.read_text()}"
        )
    if not no_compare:
        seconds, peak = measure(mib, None)
        print(
            f"  no sink (all in memory):        {mib / seconds:7.1f} MiB/s, "
            f"{seconds:6.2f} s, peak RSS +{peak / MIB:6.1f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="MiB the script prints")
    parser.add_argument("--no-compare", action="store_true", help="skip the run without sink")
    parser.add_argument("--junit-mib", type=int, default=200, help="MiB of the large JUnit XML")
    parser.add_argument("--junit-small-mib", type=int, default=2, help="... of the small one")
    parser.add_argument("--only-junit", action="store_true", help="only the JUnit figure")
    args = parser.parse_args()
    if not args.only_junit:
        bench_output(args.mib, args.no_compare)
    bench_junit(args.junit_small_mib, args.junit_mib)


if __name__ == "__main__":
    main()
