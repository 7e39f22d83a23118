"""Time lab.up / lab.up again (no-op) / lab.status / lab.down; print the medians.

Usage (root): ``.venv/bin/python bench/bench_lab.py [--rounds=5] [--hosts=4]``

Uses its own prefix and subnet and a temporary state folder, so it never touches a
user's lab, and always tears its lab down. Times are wall-clock for the library calls
(what `invoke lab.*` adds on top is the Python start-up, about 0.3 s here).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orchestrator.lab import lab_down, lab_status, lab_up  # noqa: E402

PREFIX = "bench"
SUBNET = "10.213.74.0/24"


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=4)
    args = parser.parse_args(argv)

    timings: dict[str, list[float]] = {"up": [], "up again": [], "status": [], "down": []}
    with tempfile.TemporaryDirectory(prefix="readiness-bench-") as tmp:
        state_dir = Path(tmp) / PREFIX
        deploy_base = Path(tmp) / "deploy"
        lab_down(prefix=PREFIX, state_dir=state_dir)
        try:
            for _ in range(args.rounds):
                timings["up"].append(
                    _timed(
                        lambda: lab_up(
                            hosts=args.hosts,
                            prefix=PREFIX,
                            subnet=SUBNET,
                            state_dir=state_dir,
                            deploy_base=deploy_base,
                        )
                    )
                )
                timings["up again"].append(
                    _timed(lambda: lab_up(prefix=PREFIX, state_dir=state_dir))
                )
                status = lab_status(prefix=PREFIX, state_dir=state_dir)  # warm imports
                if not status.ok:
                    print(status.table(), file=sys.stderr)
                    return 1
                timings["status"].append(
                    _timed(lambda: lab_status(prefix=PREFIX, state_dir=state_dir))
                )
                timings["down"].append(_timed(lambda: lab_down(prefix=PREFIX, state_dir=state_dir)))
        finally:
            lab_down(prefix=PREFIX, state_dir=state_dir)

    print(f"lab of {args.hosts} hosts, {args.rounds} rounds (median / min / max, seconds)")
    for name, values in timings.items():
        print(
            f"  lab.{name:<9} {statistics.median(values):6.3f}  "
            f"{min(values):6.3f}  {max(values):6.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
