"""Benchmark of the deploy pipeline on a real lab: prints figures, asserts nothing.

Measured in one run, on one machine, so the ratios are comparable:

* cold deploy (fresh deploy roots) vs warm redeploy (nothing changed), single host;
* a second deploy root on that host with the same requirements (another inventory's
  name) vs the cold deploy: its virtualenvs are linked from the host's cache;
* cold deploy to the 3-host cluster vs to the single host;
* the orchestrator's own overhead in a full single-host run: wall time minus the
  layers' own run time, as a share of the wall time;
* SSH round trips per host of a deploy (probe + push + database).

Uses its own lab prefix, subnet and state folder; needs root. Run:
``.venv/bin/python bench/bench_deploy.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.lab import lab_down  # noqa: E402
from tests.e2e.support import broker_inventories, run_readiness  # noqa: E402

PREFIX = "bd"
SUBNET = "10.213.76.0/24"
SINGLE, CLUSTER = broker_inventories(PREFIX, SUBNET)
# The full runs on a host whose virtualenv cache holds nothing of the broker's (h2 is the
# cluster's database host): their cold deploy builds, as a first deploy to a host does.
FULL = SINGLE.replace("{name: h1,", "{name: h2,")
NOOP_SUITE = "layers:\n  - {name: noop, role: server, command: 'true', junit: false}\n"


def readiness(work: Path, name: str, text: str, *args: str) -> dict[str, Any]:
    """Run the CLI; its record, with the process's own wall time added as ``_wall_s``."""
    run = run_readiness(work, name, text, *args)
    if run.code != 0:
        sys.exit(f"readiness failed (exit {run.code}):\n{run.diagnostics()}")
    return {**run.record, "_wall_s": run.wall_s}


def step_s(record: dict[str, Any], name: str) -> float:
    return float(next(s["duration_s"] for s in record["steps"] if s["name"] == name))


def deployed_s(record: dict[str, Any]) -> float:
    """From the deploy step's start until every host is deployed. The step itself ends
    sooner when a client-only host's deploy goes on in the background (pipelined), so
    its duration is when the first layer could start, not the cost of the deploy."""
    step = next(s for s in record["steps"] if s["name"] == "deploy")
    ends = [
        float(d["start_s"]) + float(d["duration_s"])
        for d in record["deploy"]
        if d.get("duration_s")
    ]
    return max([float(step["duration_s"]), *(e - float(step["start_s"]) for e in ends)])


def wall_s(record: dict[str, Any]) -> float:
    return sum(float(s["duration_s"]) for s in record["steps"])


def bytes_sent(record: dict[str, Any]) -> int:
    """What the deploy sent to every host, once per host: a host's components share one
    push, which each of their entries reports (a database entry sends nothing: None)."""
    per_host = {d["host"]: d.get("bytes_sent") or 0 for d in record["deploy"]}
    return sum(per_host.values())


def push_s(record: dict[str, Any]) -> float:
    """How long the code push took (probe to installed): the deploy without the database."""
    return max(float(d["duration_s"]) for d in record["deploy"] if d["component"] != "db")


def linked(record: dict[str, Any]) -> list[str]:
    """The venvs the deploy linked from the hosts' caches (once per host)."""
    per_host = {d["host"]: d["linked"] for d in record["deploy"] if d["component"] != "db"}
    return sorted(digest for digests in per_host.values() for digest in digests)


def sent_parts(record: dict[str, Any]) -> list[str]:
    return [part for d in record["deploy"] for part in d.get("sent") or []]


def round_trips(record: dict[str, Any]) -> dict[str, int]:
    """Per host, the round trips of connect and deploy (probe, push, database), as the
    record counts them per step."""
    trips: dict[str, int] = {}
    for step in record["steps"]:
        if step["name"] in ("connect", "deploy"):
            for host, n in step.get("round_trips", {}).items():
                trips[host] = trips.get(host, 0) + n
    return dict(sorted(trips.items()))


def phases(record: dict[str, Any]) -> dict[str, dict[str, int]]:
    """step -> host -> round trips, for every step that made any."""
    return {s["name"]: s["round_trips"] for s in record["steps"] if s.get("round_trips")}


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench_deploy needs root (it brings up a lab)")
    with tempfile.TemporaryDirectory(prefix="readiness-bench-deploy-") as tmp:
        work = Path(tmp)
        noop = work / "noop.yaml"
        noop.write_text(NOOP_SUITE)
        try:
            # Warm the control node's wheelhouse cache first: building wheels is not deploying.
            readiness(work, "warmup", SINGLE, f"--suite={noop}")
            lab_down(prefix=PREFIX, state_dir=work / "lab" / PREFIX)
            cold = readiness(work, "single", SINGLE, f"--suite={noop}", "--keep")
            warm = readiness(work, "single", SINGLE, f"--suite={noop}")
            second = readiness(work, "second", SINGLE, f"--suite={noop}")
            cluster = readiness(work, "cluster", CLUSTER, f"--suite={noop}")
            full_cold = readiness(work, "full", FULL)
            full = readiness(work, "full", FULL)
        finally:
            lab_down(prefix=PREFIX, state_dir=work / "lab" / PREFIX)
    cold_s, warm_s = (step_s(r, "deploy") for r in (cold, warm))
    cluster_s = deployed_s(cluster)  # every host, not only those the first layer waits for
    print(f"cold deploy, single host       {cold_s:8.2f} s")
    print(
        f"warm redeploy, single host     {warm_s:8.2f} s"
        f"   ratio {warm_s / cold_s:6.1%} (target <= 15%)"
    )
    # The deploy step of a new root also starts its own database (as long either way):
    # the code push, where the venvs are built or linked, is shown on its own too.
    second_s, cold_push, second_push = step_s(second, "deploy"), push_s(cold), push_s(second)
    print(
        f"second deploy root, same requirements {second_s:5.2f} s"
        f"   ratio {second_s / cold_s:6.1%} (code push {second_push:.2f} s vs {cold_push:.2f} s"
        f" cold: {second_push / cold_push:.1%}), bytes {bytes_sent(second)} vs"
        f" {bytes_sent(cold)} ({bytes_sent(second) / bytes_sent(cold):.2%});"
        f" venvs linked from the host's cache: {linked(second)}"
    )
    print(
        f"cold deploy, 3-host cluster    {cluster_s:8.2f} s"
        f"   ratio {cluster_s / cold_s:6.2f}x (target <= 1.5x)"
    )
    for label, run in (("warm", full), ("cold", full_cold)):
        layers_s = sum(float(layer["duration_s"]) for layer in run["layers"])
        total_s = float(run["_wall_s"])
        print(
            f"full single run ({label} deploy): wall {total_s:.1f} s (whole invoke process), "
            f"layers {layers_s:.1f} s, overhead {(total_s - layers_s) / total_s:6.1%} "
            "(target <= 20%)"
        )
    print(f"SSH round trips per host, cold: {round_trips(cold)}")
    print(f"SSH round trips per host, warm: {round_trips(warm)}")
    print(f"SSH round trips per host, cluster: {round_trips(cluster)}")
    print(f"SSH round trips per host and step, full warm single run: {phases(full)}")
    print(f"bytes sent cold: {bytes_sent(cold)}, warm: {bytes_sent(warm)}")
    # The probe (connect step) also checks every deployed tree for drift: its cost shows here.
    print(
        f"connect (probe) single host: cold {step_s(cold, 'connect'):.2f} s, "
        f"warm {step_s(warm, 'connect'):.2f} s, after a full run {step_s(full, 'connect'):.2f} s"
    )
    # After the broker's own layers ran on the host (bytecode, test caches, whatever they
    # write): a warm redeploy must still find nothing to resend.
    print(
        f"warm redeploy after a full run: {step_s(full, 'deploy'):.2f} s, "
        f"bytes sent {bytes_sent(full)}, parts {sent_parts(full)}"
    )


if __name__ == "__main__":
    main()
