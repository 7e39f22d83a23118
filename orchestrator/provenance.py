"""How to run it again: the command, readiness's version, the project's commit, the inputs.

A report handed to a sysadmin must let anyone reproduce the run: the exact command, the
inventory and suite as they were (copied into the run directory, since the files may
change tomorrow), which commit of the application was deployed and which version of
readiness deployed it. Secrets never go with them: an inventory's ``application.env``
may carry a token, so values under secret-looking names are scrubbed from the copies.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

from orchestrator import __version__, userfiles
from orchestrator.inventory import Inventory
from orchestrator.plan import Options, Plan
from orchestrator.record import ProjectRecord, RunRecord, UserFileRecord
from orchestrator.store import RunStore
from orchestrator.suite import Suite
from orchestrator.vault import encoded_forms, redact

GIT_TIMEOUT_S = 10
# Names under which an environment value is treated as a secret in the copied inventory.
SECRET_NAME = re.compile(r"pass|secret|token|key|credential|auth|private|dsn|url", re.I)


def command_line(inventory: str, suite: str | None, options: Options) -> str:
    """The ``invoke readiness`` command that runs this again, quoted for a POSIX shell
    (inventory and suite as the user gave them: a name or a path)."""
    argv = ["invoke", "readiness", f"--inventory={inventory}"]
    if suite:
        argv.append(f"--suite={suite}")
    if options.keep_going:
        argv.append("--keep-going")
    if options.keep:
        argv.append("--keep")
    if options.repeat != 1:
        argv.append(f"--repeat={options.repeat}")
    if options.faults:
        argv.append(f"--faults={','.join(options.faults)}")
    return shlex.join(argv)


def _git(folder: Path, *args: str) -> str | None:
    """One read-only git query in ``folder``; None when it is no checkout, git is
    missing, or git does not trust the checkout. git's own ownership check is never
    overridden: a repository owned by another user could run commands from its config
    (a clean filter during ``status``), as whoever runs readiness. No fsmonitor hook, no
    optional locks, no pager."""
    argv = ["git", "-c", "core.fsmonitor=false", "--no-optional-locks", "--no-pager"]
    argv += ["-C", str(folder), *args]
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def project_of(source: Path) -> ProjectRecord:
    """The application's source folder and the git commit it is at (if it is a checkout)."""
    commit = _git(source, "rev-parse", "HEAD")
    dirty = None
    if commit:
        status = _git(source, "status", "--porcelain", "--untracked-files=no", "--", ".")
        dirty = None if status is None else bool(status)
    return ProjectRecord(source=str(source), commit=commit or None, dirty=dirty)


def readiness_version(root: Path) -> str:
    """The package version, and the commit when readiness runs from a git checkout."""
    commit = _git(root, "rev-parse", "--short=12", "HEAD")
    return f"{__version__} (git {commit})" if commit else __version__


def secret_values(inventory: Inventory) -> list[str]:
    """The values of the application's environment whose names look like secrets."""
    return [v for k, v in inventory.application.env.items() if SECRET_NAME.search(k)]


def scrub_env(text: str) -> str:
    """The inventory's text with the value of each secret-looking ``application.env``
    key replaced where it is written, however it is spelled (quoted, escaped, folded
    over lines, an anchor): the parsed document says where each value is, so no
    spelling of the value has to match. Comments and layout are kept."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return text
    env = _child(_child(root, "application"), "env")
    spans: set[tuple[int, int]] = set()
    if isinstance(env, yaml.MappingNode):
        for key, value in env.value:
            if isinstance(key, yaml.ScalarNode) and SECRET_NAME.search(str(key.value)):
                spans.add((value.start_mark.index, value.end_mark.index))
    for start, end in sorted(spans, reverse=True):
        old = text[start:end]
        tail = old[len(old.rstrip()) :]  # a block scalar's span ends with its line break
        text = text[:start] + "'[redacted]'" + tail + text[end:]
    return text


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v  # type: ignore[no-any-return]
    return None


def keep_inputs(store: RunStore, inventory: Inventory, suite: Suite) -> dict[str, str]:
    """Copies of the inventory and suite files in the run directory (``inputs/``), with
    secrets scrubbed; name -> run-relative path. A file that cannot be read is left out
    (the run goes on: its record still names the file)."""
    hidden: Sequence[str] = encoded_forms(secret_values(inventory))
    kept: dict[str, str] = {}
    for name, path in (("inventory", inventory.file), ("suite", suite.file)):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if name == "inventory":
            text = scrub_env(text)
        stored = store.write_text(redact(text, hidden), "inputs", f"{name}.yaml")
        kept[name] = store.relative(stored)
    return kept


def record_provenance(record: RunRecord, store: RunStore, plan: Plan) -> None:
    """Fill the record's command, versions, project and inputs at the start of a run."""
    code = Path(__file__).resolve().parent.parent
    record.command = plan.options.command or command_line(plan.inventory.name, None, plan.options)
    record.readiness_version = readiness_version(code)
    record.project = project_of(plan.inventory.application.source)
    record.inputs = keep_inputs(store, plan.inventory, plan.suite)
    record.files = files_of(plan.inventory)


def files_of(inventory: Inventory) -> list[UserFileRecord]:
    """Which of the user's files the run used: where each was found, and its digest."""
    return [
        UserFileRecord(
            field=f.field,
            value=f.value,
            path=str(f.path),
            base=f.base,
            kind="folder" if f.path.is_dir() else "file",
            sha256=None if f.path.is_dir() else userfiles.digest(f.path),
        )
        for f in inventory.application.files
    ]
