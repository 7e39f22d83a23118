"""Benchmark of scale and size on a real lab: prints figures, asserts nothing.

Measured in one run, on one machine, so the ratios are comparable:

* cold deploy to 1, 3, 6 and 12 hosts (one database, one server, the rest clients), as a
  ratio to the one-host deploy;
* the broker's client layer run by 1 and by 10 client hosts at once against one server
  (the layer's wall time per host count);
* a one-file change of the application: bytes sent and time, against the cold deploy;
* the orchestrator's peak memory (RSS) while it pushes a 1 GiB wheel to a lab host
  through the deploy's own stream and SSH transport, against the wheel's size.

Uses its own lab prefix, subnet and state folder; needs root. Run:
``.venv/bin/python bench/bench_scale.py``.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_deploy import (  # noqa: E402  (the same figures)
    bytes_sent,
    deployed_s,
    readiness,
    step_s,
)

from orchestrator.bundle import Bundle  # noqa: E402
from orchestrator.deploy import Artifacts, HostNeeds, open_push_stream  # noqa: E402
from orchestrator.lab import lab_down, lab_up  # noqa: E402
from orchestrator.wheelhouse import Wheelhouse  # noqa: E402
from tests.e2e.support import (  # noqa: E402
    BROKER,
    broker_application,
    lab_section,
)

PREFIX = "bs"
SUBNET = "10.213.85.0/24"
HOSTS = 12
NOOP_SUITE = "layers:\n  - step: noop\n    role: server\n    command: 'true'\n"


def inventory(source: Path, hosts: int) -> str:
    """One host with every role, or db on h1, the server on h2 and clients on the rest."""
    lab = lab_section(PREFIX, SUBNET, HOSTS)
    if hosts == 1:
        return (
            lab
            + "hosts:\n  - {name: h1, roles: [db, server, client]}\n"
            + broker_application(source)
        )
    lines = ["  - {name: h1, roles: [db]}", "  - {name: h2, roles: [server]}"]
    lines += [f"  - {{name: h{i}, roles: [client]}}" for i in range(3, hosts + 1)]
    return lab + "hosts:\n" + "\n".join(lines) + "\n" + broker_application(source)


def layer_s(record: dict[str, Any], name: str) -> float:
    return float(next(la["duration_s"] for la in record["layers"] if la["name"] == name))


def cold(work: Path, source: Path, hosts: int) -> dict[str, Any]:
    """A deploy onto fresh deploy roots: each size gets inventory names of its own."""
    noop = work / "noop.yaml"
    return readiness(work, f"cold{hosts}", inventory(source, hosts), f"--suite={noop}")


def push_rss(work: Path) -> tuple[int, int]:
    """(wheel bytes, peak RSS in bytes) of pushing one 1 GiB wheel to a lab host."""
    wheels = work / "big-wheelhouse"
    wheels.mkdir()
    wheel = wheels / "big-1.0-py3-none-any.whl"
    with wheel.open("wb") as handle:  # sparse: costs no disk until read
        handle.truncate(1 << 30)
    house = Wheelhouse(wheels, "big")
    bundle = Bundle(b"", "none", 0)
    needs = HostNeeds(False, False, (house,), None)
    lab = lab_up(hosts=HOSTS, prefix=PREFIX, subnet=SUBNET, state_dir=work / "lab" / PREFIX)
    transport = lab.transport(lab.hosts[0].name)
    try:
        with open_push_stream(["wheels-big"], needs, Artifacts(bundle, bundle, house, house)) as s:
            transport.run("cat > /dev/null", stdin=s, timeout=600).check("pushing 1 GiB")
    finally:
        transport.close()
    return wheel.stat().st_size, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def patches(record: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    """The code parts the deploy sent as their difference, once per host and part."""
    return sorted(
        {
            (d["host"], p["part"], p["files"], p["removed"])
            for d in record["deploy"]
            for p in d.get("patched") or []
        }
    )


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench_scale needs root (it brings up a lab)")
    with tempfile.TemporaryDirectory(prefix="readiness-bench-scale-") as tmp:
        work = Path(tmp)
        (work / "noop.yaml").write_text(NOOP_SUITE)
        source = work / "broker"  # a copy: the one-file change must not touch the repo
        shutil.copytree(BROKER, source, ignore=shutil.ignore_patterns("__pycache__"))
        try:
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            # Warm the control node's caches (wheelhouses, uv): building is not deploying.
            readiness(work, "warmup", inventory(source, 1), f"--suite={work / 'noop.yaml'}")
            colds: dict[int, dict[str, Any]] = {}
            for n in (1, 3, 6, 12):
                # Fresh lab hosts for each size: a host's cache of built virtualenvs
                # would make a second deploy there link instead of build (not cold).
                lab_down(prefix=PREFIX, state_dir=work / "lab" / PREFIX)
                colds[n] = cold(work, source, n)
                if n == 1:  # cold1 is deployed: change one file, deploy again
                    target = source / "broker" / "settings.py"
                    target.write_text(target.read_text() + "\n# one changed line\n")
                    changed = readiness(
                        work, "cold1", inventory(source, 1), f"--suite={work / 'noop.yaml'}"
                    )
            clients = {n: readiness(work, f"clients{n}", inventory(source, n + 2)) for n in (1, 10)}
            size, rss = push_rss(work)
        finally:
            lab_down(prefix=PREFIX, state_dir=work / "lab" / PREFIX)
    base = deployed_s(colds[1])
    for n, record in colds.items():
        deploy, first = deployed_s(record), step_s(record, "deploy")
        print(
            f"cold deploy, {n:2d} host(s)   {deploy:7.2f} s   ratio {deploy / base:5.2f}x "
            f"(target for 12 <= 1.3x)   sent {bytes_sent(record) / 1e6:7.1f} MB   "
            f"first layer could start after {first:6.2f} s ({first / base:4.2f}x; the "
            "client hosts' deploys go on in the background)"
        )
    redeploy = step_s(changed, "deploy")
    print(
        f"one-file change redeploy   {redeploy:7.2f} s   ratio {redeploy / base:6.1%} of the "
        f"cold deploy (target <= 10%)   sent {bytes_sent(changed)} bytes, parts "
        f"{sorted({p for d in changed['deploy'] for p in d.get('sent') or []})}, "
        f"patched (host, part, files, removed) {patches(changed)}"
    )
    for n, record in clients.items():
        print(
            f"client layer on {n:2d} client host(s) at once: rest-integration "
            f"{layer_s(record, 'rest-integration'):6.2f} s, verdict {record['verdict']}"
        )
    print(
        f"push of a {size / (1 << 30):.1f} GiB wheel: orchestrator peak RSS "
        f"{rss / (1 << 20):.0f} MiB (before the runs {rss_before / (1 << 20):.0f} MiB; "
        "target < 250 MiB)"
    )


if __name__ == "__main__":
    main()
