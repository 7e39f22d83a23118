"""HTML reports, rendered only from run directories (so any report can be rebuilt).

``reports/runs/<id>/report.html`` summarises one run; ``reports/index.html`` puts the
latest run of each inventory side by side. Templates autoescape everything: inventory
and host names are user input.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from orchestrator import counters
from orchestrator.record import RunRecord
from orchestrator.store import RECORD, read_record
from orchestrator.templating import templates

ALARMING = {
    "TcpExt.ListenOverflows",
    "TcpExt.ListenDrops",
    "TcpExt.TCPAbortOnData",
    "TcpExt.TCPAbortOnClose",
    "TcpExt.TCPAbortOnTimeout",
    "Tcp.EstabResets",
    "Tcp.OutRsts",
}


def _env() -> jinja2.Environment:
    # Strict: a field the record lacks fails the render (and the tests), never renders empty.
    return templates(autoescape=True)


def render_run(run_dir: Path) -> Path:
    """Write ``report.html`` into the run directory from its run.json."""
    record = read_record(run_dir)
    html = (
        _env()
        .get_template("run.html.j2")
        .render(r=record, watched=counters.WATCHED, alarming=ALARMING)
    )
    out = run_dir / "report.html"
    out.write_text(html, encoding="utf-8")
    return out


def latest_runs(runs_root: Path) -> list[RunRecord]:
    """The newest readable record of each inventory, ordered by inventory name."""
    latest: dict[str, RunRecord] = {}
    if not runs_root.is_dir():
        return []
    for run_dir in sorted(runs_root.iterdir()):
        if not (run_dir / RECORD).is_file():
            continue
        try:
            record = read_record(run_dir)
        except (OSError, ValueError, json.JSONDecodeError):
            continue
        name = record.inventory
        if name not in latest or record.started_at >= latest[name].started_at:
            latest[name] = record
    return [latest[name] for name in sorted(latest)]


def senders(record: RunRecord) -> dict[str, int]:
    """How many errors and swallowed resets each sender explains, most first: the line of
    the side-by-side that says whether resets follow the topology."""
    counts: dict[str, int] = {}
    for r in [*record.ledger.errors, *record.ledger.resets]:
        if r.side == "none":
            who = "no host's TCP stack (firewall or middlebox)"
        elif r.side == "unknown":
            who = "unknown"
        else:
            who = f"the {r.side}'s socket" + (f" on {r.host}" if r.host else "")
        counts[who] = counts.get(who, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def render_index(reports_root: Path) -> Path:
    runs = latest_runs(reports_root / "runs")
    html = _env().get_template("index.html.j2").render(runs=runs, senders=senders)
    out = reports_root / "index.html"
    reports_root.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
