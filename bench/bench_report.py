"""Benchmark of the reports over a grown store: prints figures, asserts nothing.

A synthetic store of ``--runs`` runs (default 20) of ``--tests`` test cases each (default
5,000) is written to a temporary folder with the run store's own writers (``RunStore``,
``RunRecord``, ``testcases.to_line``): two inventories taking turns, two commits of the
application, a setup layer, a server and a client layer, about 1 % of the cases failing
with a message and a traceback, some of them only in some runs (flaky), counters, logs,
packages and the network as readiness 4 records them. Then the pages are rendered, each
``--rounds`` times, and the best time of each is printed with the page's size: the
index and the history together (the target is under 3 s: they are rebuilt after every
run), and the report of one run (its failing tests and files are read too).

No root, no lab. Run: ``.venv/bin/python bench/bench_report.py [--runs 20] [--tests 5000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.counters import WATCHED  # noqa: E402
from orchestrator.junit import TestCounts  # noqa: E402
from orchestrator.record import (  # noqa: E402
    BuildRecord,
    CounterRecord,
    FlowRecord,
    HostRecord,
    LayerRecord,
    ListenRecord,
    NetworkRecord,
    ProjectRecord,
    RunRecord,
)
from orchestrator.report import render_history, render_index, render_run  # noqa: E402
from orchestrator.store import RunStore  # noqa: E402
from orchestrator.testcases import MERGED_JUNIT, TESTS_FILE, TestCase, to_line  # noqa: E402

TARGET_S = 3.0
TRACEBACK = "".join(
    f'  File "tests/test_api.py", line {n}, in test\n    call()\n' for n in range(12)
)
PACKAGES = {f"package-{n}": f"1.{n}.0" for n in range(40)} | {"django": "4.2.11"}
INVENTORY = "hosts:\n" + "".join(f"  h{n}: {{address: 10.0.0.{n + 1}}}\n" for n in (1, 2, 3))
SUITE = "layers:\n" + "".join(
    f"  - name: {n}\n    role: server\n" for n in ("migrate", "unit", "api")
)
HOSTS = {
    "single": [HostRecord("h1", "10.0.0.2", ["db", "server", "client"], "ssh")],
    "cluster": [
        HostRecord("h1", "10.0.0.2", ["db"], "ssh"),
        HostRecord("h2", "10.0.0.3", ["server"], "ssh"),
        HostRecord("h3", "10.0.0.4", ["client"], "ssh"),
    ],
}


def outcome(rng: random.Random, index: int) -> str:
    """1 % of the tests always fail, 0.5 % fail in about a third of the runs, 2 % skip."""
    if index % 100 == 7:
        return "failed"
    if index % 200 == 13:
        return "failed" if rng.random() < 0.35 else "passed"
    return "skipped" if index % 50 == 3 else "passed"


def cases(rng: random.Random, tests: int, server: str, client: str) -> list[TestCase]:
    found = []
    for i in range(tests):
        layer, host = ("unit", server) if i < tests * 2 // 5 else ("api", client)
        status = outcome(rng, i)
        failed = status == "failed"
        found.append(
            TestCase(
                layer, host, f"tests.test_{layer}.TestGroup{i // 100}", f"test_case_{i}",
                status, 0.01, i + 1,
                message=f"AssertionError: expected 200, got 500 (case {i})" if failed else None,
                kind="AssertionError" if failed else None,
                text=TRACEBACK if failed else None,
            )
        )  # fmt: skip
    return found


def layer(name: str, role: str, host: str, counted: list[TestCase], start: float) -> LayerRecord:
    statuses = [c.status for c in counted]
    tests = TestCounts(
        len(statuses), statuses.count("passed"), statuses.count("failed"), 0,
        statuses.count("skipped"),
    )  # fmt: skip
    status = "failed" if tests.failed else "passed"
    return LayerRecord(
        name, role, [host], status, 60.0, tests, junit=[f"junit/{name}/{host}.xml"],
        logs=[f"logs/{host}/{name}.log"], start_s=start,
    )  # fmt: skip


def a_run(runs_root: Path, index: int, tests: int, rng: random.Random) -> None:
    inventory = ("single", "cluster")[index % 2]
    hosts = HOSTS[inventory]
    db, server, client = hosts[0].name, hosts[min(1, len(hosts) - 1)].name, hosts[-1].name
    store = RunStore.create(runs_root, inventory)
    started = f"2026-03-{1 + index:02d}T10:00:00Z"
    record = RunRecord(
        store.run_id, inventory, f"inventories/{inventory}.yaml", "broker",
        "all-on-one" if inventory == "single" else "distributed", started,
        finished_at=f"2026-03-{1 + index:02d}T10:04:10Z",
    )  # fmt: skip
    record.command = f"invoke readiness --inventory={inventory}"
    record.readiness_version = "0.4.0"
    record.project = ProjectRecord("/srv/app", ("c0ffee" if index < 10 else "decade") * 6, False)
    record.hosts = hosts
    for name, text in (("inventory", INVENTORY), ("suite", SUITE)):
        record.inputs[name] = store.relative(store.write_text(text, "inputs", f"{name}.yaml"))
    record.build = BuildRecord("a", "b", "s", "c", 10.0, PACKAGES, {"pytest": "8.1.1"})
    record.network = NetworkRecord(
        [ListenRecord(db, "database", 3306, "10.0.0.2"), ListenRecord(server, "server", 8000)],
        [FlowRecord(client, server, "client -> server", 8000, crosses=client != server)],
    )
    kept = cases(rng, tests, server, client)
    record.layers = [
        LayerRecord("migrate", "server", [server], "passed", 5.0, setup=True, start_s=30.0),
        layer("unit", "server", server, [c for c in kept if c.layer == "unit"], 35.0),
        layer("api", "client", client, [c for c in kept if c.layer == "api"], 95.0),
    ]
    record.verdict = "not-ready" if any(c.status == "failed" for c in kept) else "ready"
    record.reasons = ["a layer failed"] if record.verdict == "not-ready" else []
    lines = "".join(json.dumps(to_line(c)) + "\n" for c in kept)
    record.tests_file = store.relative(store.write_text(lines, TESTS_FILE))
    record.junit_file = store.relative(store.write_text("<testsuites/>\n", MERGED_JUNIT))
    for name in ("unit", "api"):
        record.counters[name] = {
            h.name: CounterRecord(delta={k: rng.choice((0, 0, 0, 2)) for k in WATCHED})
            for h in hosts
        }
        for h in hosts:
            store.write_text(f"{name} on {h.name}\n" * 200, "logs", h.name, f"{name}.log")
    store.write_record(record)


def best(job: Callable[[], Path], rounds: int) -> tuple[float, float, int]:
    """The best wall time and the best CPU time of ``rounds`` renders (on a busy machine
    the CPU time is the steadier figure: it leaves out the waits for a core), and the
    size of the page written."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        page = job()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), page.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs in the synthetic store")
    parser.add_argument("--tests", type=int, default=5000, help="test cases per run")
    parser.add_argument("--rounds", type=int, default=3, help="renders of each page")
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="readiness-bench-report.") as tmp:
        reports = Path(tmp) / "reports"
        started = time.perf_counter()
        for index in range(args.runs):
            a_run(reports / "runs", index, args.tests, rng)
        built = time.perf_counter() - started
        print(f"store: {args.runs} runs x {args.tests} tests written in {built:.1f} s")
        load = os.getloadavg()[0]
        print(f"  load average before rendering: {load:.1f} on {os.cpu_count()} CPUs")
        run_dir = sorted((reports / "runs").iterdir())[-1]
        pages = {
            "index.html": best(lambda: render_index(reports), args.rounds),
            "history.html": best(lambda: render_history(reports), args.rounds),
            "report.html": best(lambda: render_run(run_dir), args.rounds),
        }
        for label, (wall, cpu, size) in pages.items():
            print(f"  {label:13} {wall:6.3f} s wall {cpu:6.3f} s CPU {size / 1024:8.1f} KiB")
        both = pages["index.html"][0] + pages["history.html"][0]
        both_cpu = pages["index.html"][1] + pages["history.html"][1]
        verdict = "under" if both < TARGET_S else "OVER"
        print(
            f"  index + history {both:.3f} s wall ({both_cpu:.3f} s CPU): "
            f"{verdict} the {TARGET_S:.0f} s target; report.html is of one run"
        )
        flaky = (reports / "history.html").read_text().split('<table id="flaky">')[1]
        print(f"  flaky tests listed: {flaky.split('</table>')[0].count('<tr>') - 1}")


if __name__ == "__main__":
    main()
