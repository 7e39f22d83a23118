"""What a run's ``report.html`` shows beyond the record's own fields: the handoff.

The run page is what a sysadmin is handed: how to run it again (the inputs as run), the
hosts as they were, the failing tests with their messages, every file the run kept. All
of it comes from the run directory and nothing else: a path that would lead out of it
(absolute, ``..``, a symlink) is named, never read or linked. Test names, messages and
files are the suite's output: data, escaped by the template, with control characters
written out (an ANSI escape shows as ``\\x1b[31m``: it neither vanishes nor colours).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from orchestrator.history import FAILING, duration_s, totals
from orchestrator.junit import TestCounts
from orchestrator.record import HostRecord, RunRecord
from orchestrator.testcases import TestCase, run_cases, tests_path

# Bytes of an input file shown in the page: an inventory or suite is far smaller.
INPUT_LIMIT = 256 * 1024
NOT_RECORDED = "not recorded"
NOT_APPLICABLE = "-"


def href(path: str) -> str | None:
    """A run-relative path as a link, or None when it is not one inside the run directory
    (absolute, climbing out with ``..``, or a URL: never followed from the page)."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path:
        return None
    return quote(pure.as_posix())


def _inside(run_dir: Path, path: str) -> Path | None:
    """The file a run-relative path names, if it is inside the run directory."""
    if href(path) is None:
        return None
    target = (run_dir / path).resolve()
    return target if target.is_relative_to(run_dir.resolve()) else None


@dataclass(frozen=True)
class InputFile:
    """One input of the run (inventory, suite) as run, secrets already scrubbed."""

    name: str
    path: str
    content: str | None
    problem: str | None = None


def read_input(run_dir: Path, name: str, path: str) -> InputFile:
    target = _inside(run_dir, path)
    if target is None:
        return InputFile(name, path, None, "not inside the run directory: not shown")
    try:
        with target.open("rb") as handle:
            data = handle.read(INPUT_LIMIT + 1)
    except OSError as err:
        return InputFile(name, path, None, f"could not be read: {err.strerror or err}")
    text = data[:INPUT_LIMIT].decode("utf-8", errors="replace")
    cut = f"only the first {INPUT_LIMIT // 1024} KiB are shown" if len(data) > INPUT_LIMIT else None
    return InputFile(name, path, text, cut)


def inputs(run_dir: Path, record: RunRecord) -> list[InputFile]:
    """The inventory and the suite first, then any other input, by name."""
    first = [n for n in ("inventory", "suite") if n in record.inputs]
    rest = sorted(n for n in record.inputs if n not in first)
    return [read_input(run_dir, n, record.inputs[n]) for n in [*first, *rest]]


@dataclass(frozen=True)
class RunFile:
    path: str
    href: str
    size: int


def run_files(run_dir: Path) -> list[RunFile]:
    """Every file the run kept (but this page), by path. Symlinks are left out: what
    they point at may be outside the run."""
    found = []
    for folder, dirs, files in os.walk(run_dir):
        base = Path(folder)
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
        for name in files:
            file = base / name
            rel = file.relative_to(run_dir).as_posix()
            link = href(rel)
            if rel == "report.html" or link is None or file.is_symlink():
                continue
            try:
                found.append(RunFile(rel, link, file.stat().st_size))
            except OSError:
                continue
    return sorted(found, key=lambda f: (f.path.count("/") > 0, f.path))


@dataclass(frozen=True)
class FactRow:
    label: str
    values: list[str]  # one per host, in the record's host order


# fact key, label, the role it applies to (None: every host)
FACTS: tuple[tuple[str, str, str | None], ...] = (
    ("hostname", "hostname", None),
    ("os", "OS", None),
    ("kernel", "kernel", None),
    ("machine", "machine", None),
    ("cpus", "CPUs", None),
    ("memory_mb", "memory", None),
    ("python", "Python", None),
    ("python_venv", "Python of the virtualenvs", None),
    ("django", "Django", "server"),
    ("database_server", "database server", "db"),
    ("somaxconn", "net.core.somaxconn", None),
    ("tcp_max_syn_backlog", "net.ipv4.tcp_max_syn_backlog", None),
    ("tcp_abort_on_overflow", "net.ipv4.tcp_abort_on_overflow", None),
    ("deploy_root_writable", "deploy root writable", None),
    ("deploy_root_unsafe", "deploy root unsafe", None),
)
# The database server's version fact before ``readiness.run/2``.
_ALIASES = {"mariadbd": "database_server"}


def _memory(mb: str) -> str:
    try:
        value = int(mb)
    except ValueError:
        return mb
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"


def _fact(record: RunRecord, host: HostRecord, key: str, role: str | None) -> str:
    if key == "django":
        packages = record.build.server_packages if record.build else {}
        value = packages.get("django") if "server" in host.roles else None
    else:
        value = host.facts.get(key)
        if value is None and key == "database_server":
            value = host.facts.get("mariadbd")
    if value is not None:
        return _memory(value) if key == "memory_mb" else value
    return NOT_APPLICABLE if role and role not in host.roles else NOT_RECORDED


def host_facts(record: RunRecord) -> list[FactRow]:
    """Facts as rows, hosts as columns (a table that fits however many facts there are).
    ``deploy_root_unsafe`` only when some host had it; facts this page does not know
    yet follow under their own names."""
    rows = [
        FactRow(label, [_fact(record, h, key, role) for h in record.hosts])
        for key, label, role in FACTS
        if key != "deploy_root_unsafe" or any(key in h.facts for h in record.hosts)
    ]
    known = {key for key, _, _ in FACTS} | set(_ALIASES)
    extra = sorted({k for h in record.hosts for k in h.facts} - known)
    rows += [FactRow(k, [h.facts.get(k, NOT_RECORDED) for h in record.hosts]) for k in extra]
    return rows


@dataclass(frozen=True)
class Packages:
    """What one kind of virtualenv holds, and the hosts it was built on."""

    venv: str
    hosts: list[str]
    packages: dict[str, str]


def packages(record: RunRecord) -> list[Packages]:
    build = record.build
    found = []
    for venv, role, held in (
        ("application", "server", build.server_packages if build else {}),
        ("test client", "client", build.client_packages if build else {}),
    ):
        hosts = [h.name for h in record.hosts if role in h.roles]
        found.append(Packages(venv, hosts, dict(sorted(held.items()))))
    return found


@dataclass(frozen=True)
class CounterRow:
    key: str
    values: list[int | None]  # per host, None: not read
    alarming: bool

    @property
    def moved(self) -> bool:
        return any(self.values)


@dataclass(frozen=True)
class CounterTable:
    """One layer's counters: counters as rows, hosts as columns (one column per counter
    ran off a laptop's screen), the ones that moved first, the alarming ones on top."""

    layer: str
    hosts: list[str]
    moved: list[CounterRow]
    still: list[CounterRow]


def counter_tables(
    record: RunRecord, watched: Sequence[str], alarming: Collection[str]
) -> list[CounterTable]:
    tables = []
    for layer, by_host in record.counters.items():
        hosts = list(by_host)
        seen = {k for c in by_host.values() for k in c.delta}
        keys = [*watched, *sorted(seen - set(watched))]
        rows = [
            CounterRow(k, [by_host[h].delta.get(k) for h in hosts], k in alarming) for k in keys
        ]
        moved = sorted((r for r in rows if r.moved), key=lambda r: not r.alarming)
        tables.append(CounterTable(layer, hosts, moved, [r for r in rows if not r.moved]))
    return tables


@dataclass(frozen=True)
class RunPage:
    """Everything the run page shows that is not a field of the record as it is."""

    inputs: list[InputFile]
    cases_recorded: bool
    failing: list[TestCase]
    retried: int
    totals: TestCounts
    duration_s: float | None
    facts: list[FactRow]
    packages: list[Packages]
    counters: list[CounterTable]
    files: list[RunFile]
    addresses: dict[str, str]
    probes: set[str]  # burst layers: they measure, they run no tests


def run_page(
    run_dir: Path, record: RunRecord, watched: Sequence[str], alarming: Collection[str]
) -> RunPage:
    """The run page's data; a test file that is missing or not inside the run reads as
    not recorded (never as "no test failed")."""
    # run_cases reads tests.jsonl (only inside the run), or an older record's JUnit.
    cases = run_cases(run_dir, record)
    if record.tests_file:
        recorded = tests_path(run_dir, record.tests_file) is not None
    else:
        recorded = bool(cases)
    return RunPage(
        inputs=inputs(run_dir, record),
        cases_recorded=recorded,
        failing=[c for c in cases if c.status in FAILING],
        retried=sum(1 for c in cases if c.status == "retried"),
        totals=totals(record),
        duration_s=duration_s(record),
        facts=host_facts(record),
        packages=packages(record),
        counters=counter_tables(record, watched, alarming),
        files=run_files(run_dir),
        addresses={h.name: h.address for h in record.hosts},
        probes={b.layer for b in record.bursts},
    )
