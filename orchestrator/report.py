"""HTML reports, rendered only from run directories (so any report can be rebuilt).

``reports/runs/<id>/report.html`` summarises one run; ``reports/index.html`` puts the
latest run of each inventory side by side. Templates autoescape everything: inventory
and host names are user input.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from orchestrator import comparison, counters, handoff, svg
from orchestrator.history import history
from orchestrator.record import RunRecord
from orchestrator.store import RECORD, read_record
from orchestrator.templating import templates, visible
from orchestrator.testcases import TestCase, run_cases

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
    page = handoff.run_page(run_dir, record, counters.WATCHED, ALARMING)
    html = (
        _env()
        .get_template("run.html.j2")
        .render(r=record, page=page, visible=visible, href=handoff.href)
    )
    out = run_dir / "report.html"
    out.write_text(html, encoding="utf-8")
    return out


@dataclass(frozen=True)
class StoredRun:
    """One readable run of the store: its directory and its record. Its test cases are
    read on demand (a store of many runs x thousands of tests must stay fast)."""

    dir: Path
    record: RunRecord

    def cases(self) -> list[TestCase]:
        return run_cases(self.dir, self.record)


def stored_runs(runs_root: Path) -> list[StoredRun]:
    """Every readable run of the store, oldest first; unreadable ones are left out (a
    report is never blocked by one broken record). Any exception counts as unreadable,
    not only the expected ones: a record nested too deep raises RecursionError, and one
    such file must not break the index, history and summary of every later run."""
    if not runs_root.is_dir():
        return []
    found: list[StoredRun] = []
    for run_dir in sorted(runs_root.iterdir()):
        if not (run_dir / RECORD).is_file():
            continue
        try:
            found.append(StoredRun(run_dir, read_record(run_dir)))
        except Exception:  # whatever is wrong with it, the record is skipped (see above)
            continue
    found.sort(key=lambda run: (run.record.started_at, run.record.run_id))
    return found


def latest_runs(runs_root: Path) -> list[RunRecord]:
    """The newest readable record of each inventory, ordered by inventory name."""
    latest: dict[str, RunRecord] = {}
    for run in stored_runs(runs_root):
        latest[run.record.inventory] = run.record
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


def render_index(reports_root: Path, compare: tuple[StoredRun, StoredRun] | None = None) -> Path:
    """``reports/index.html``: all-on-one against distributed, test by test, for the
    latest run of each topology or the two runs of ``invoke report --compare``."""
    runs = stored_runs(reports_root / "runs")
    shown = comparison.shown(runs, compare)
    view = comparison.compare(comparison.entries(shown, reports_root), ALARMING)
    # Linked by directory, not by the record's run id: a copied or renamed run directory
    # keeps its run.json, and only the directory is where its report is.
    others = [
        (run.record, comparison.href(run.dir, reports_root))
        for run in comparison.not_compared(runs, shown)
    ]
    html = (
        _env()
        .get_template("index.html.j2")
        .render(
            view=view,
            others=others,
            named=compare is not None,
            senders=senders,
            diagram=svg.topology,
            clip=svg.clip,
            gantt=svg.timeline([s.record for s in view.sides], [s.label for s in view.sides]),
            seconds=comparison.seconds,
            times=comparison.times,
            notable=comparison.NOTABLE_RATIO,
            matrix_open=comparison.MATRIX_OPEN,
        )
    )
    out = reports_root / "index.html"
    reports_root.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def render_history(reports_root: Path) -> Path:
    """``reports/history.html``: every run of the store, newest first, and the tests that
    both passed and failed across runs of one inventory and commit."""
    page = history(stored_runs(reports_root / "runs"))
    html = _env().get_template("history.html.j2").render(h=page, visible=visible)
    out = reports_root / "history.html"
    reports_root.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def render_summary(reports_root: Path, compare: tuple[StoredRun, StoredRun] | None = None) -> Path:
    """``reports/summary.md``: the comparison of the index in plain text, for a ticket or
    an e-mail (and the end of ``make readiness``)."""
    runs = stored_runs(reports_root / "runs")
    shown = comparison.shown(runs, compare)
    view = comparison.compare(comparison.entries(shown, reports_root), ALARMING)
    index = reports_root / "index.html"
    others = [run.record for run in comparison.not_compared(runs, shown)]
    text = comparison.summary(view, others, str(index))
    out = reports_root / "summary.md"
    reports_root.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out


def render_all(reports_root: Path, run_dir: Path) -> list[Path]:
    """After a run: its report, the comparison, the history and the plain-text summary.
    Each is rendered on its own: one that fails is logged in the run directory and the
    others are still written (a checker that crashes never crashes the run)."""
    written: list[Path] = []
    jobs: tuple[tuple[str, Callable[[], Path]], ...] = (
        ("report", lambda: render_run(run_dir)),
        ("index", lambda: render_index(reports_root)),
        ("history", lambda: render_history(reports_root)),
        ("summary", lambda: render_summary(reports_root)),
    )
    failed: list[str] = []
    for name, job in jobs:
        try:
            written.append(job())
        except Exception:
            failed.append(f"--- {name} ---\n{traceback.format_exc()}")
    if failed:
        (run_dir / "logs").mkdir(exist_ok=True)
        (run_dir / "logs" / "report-error.log").write_text("\n".join(failed), encoding="utf-8")
        raise ReportError(f"could not render: {', '.join(f.split(' ---')[0][4:] for f in failed)}")
    return written


class ReportError(RuntimeError):
    """Some page could not be rendered (the others were); the traceback is in the run's
    logs/report-error.log."""
