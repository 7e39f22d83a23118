"""Benchmark of a layer's bounded output: prints figures, asserts nothing.

A local script prints ``--mib`` MiB (default 200) on stdout, a secret sprinkled through
it, through :class:`~orchestrator.transport.LocalTransport`, once into the sink a layer
uses (:class:`~orchestrator.output.LayerOutput`: scrubbed, capped at 20 MiB, written to
disk as it arrives) and, for comparison, once without a sink (all of it in memory, as
layers did before the cap). For each: the peak RSS of this process above what it was
before the run (the kernel's high-water mark, reset before each run), the throughput,
and the size of what was kept.

No root, no lab. Run: ``.venv/bin/python bench/bench_output.py [--mib 200] [--no-compare]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.output import MIB, LayerOutput  # noqa: E402
from orchestrator.store import RunStore  # noqa: E402
from orchestrator.suite import DEFAULT_MAX_OUTPUT_MB  # noqa: E402
from orchestrator.transport import LocalTransport, OutputSink  # noqa: E402

SECRET = "bench-s3cret-value"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=200, help="MiB the script prints")
    parser.add_argument("--no-compare", action="store_true", help="skip the run without sink")
    args = parser.parse_args()
    limit = DEFAULT_MAX_OUTPUT_MB * MIB
    print(f"a script printing {args.mib} MiB on stdout through LocalTransport")
    with tempfile.TemporaryDirectory(prefix="readiness-bench-output.") as tmp:
        store = RunStore.create(Path(tmp), "bench")
        output = LayerOutput(store, limit, [SECRET], "logs", "local", "bench.log")
        seconds, peak = measure(args.mib, output)
        stored = output.finish("$ bench\n")
        kept = stored.path.stat().st_size
        print(
            f"  sink (LayerOutput, cap {DEFAULT_MAX_OUTPUT_MB} MiB): "
            f"{args.mib / seconds:7.1f} MiB/s, {seconds:6.2f} s, "
            f"peak RSS +{peak / MIB:6.1f} MiB, kept {kept / MIB:.1f} MiB "
            f"(dropped {stored.dropped / MIB:.1f} MiB), "
            f"secret in the log: {SECRET in stored.path.read_text()}"
        )
    if not args.no_compare:
        seconds, peak = measure(args.mib, None)
        print(
            f"  no sink (all in memory):        {args.mib / seconds:7.1f} MiB/s, "
            f"{seconds:6.2f} s, peak RSS +{peak / MIB:6.1f} MiB"
        )


if __name__ == "__main__":
    main()
