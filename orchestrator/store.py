"""The run store: one directory per run holding everything about it (as in Jepsen).

``reports/runs/<run-id>/`` holds ``run.json`` (the record), ``junit/<layer>/<host>.xml``,
``logs/<host>/...`` and ``report.html``. The record is rewritten atomically after every
step, so an orchestrator that crashes or is killed still leaves what already ran on
disk; reports are rendered only from this directory, so any report can be rebuilt.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.files import atomic_write
from orchestrator.record import RunRecord, from_json

RECORD = "run.json"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id(inventory: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", inventory)[:40]
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


def _safe_part(part: str) -> str:
    """A single path component that cannot climb out of the run directory."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", part).lstrip(".")
    return cleaned or "_"


class RunStore:
    """Writes one run's directory; every path is confined to it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    @classmethod
    def create(cls, runs_root: Path, inventory: str) -> RunStore:
        runs_root.mkdir(parents=True, exist_ok=True)
        while True:
            directory = runs_root / new_run_id(inventory)
            try:
                directory.mkdir()
                return cls(directory)
            except FileExistsError:
                continue

    @property
    def run_id(self) -> str:
        return self.dir.name

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*(_safe_part(p) for p in parts))

    def write_bytes(self, data: bytes, *parts: str) -> Path:
        target = self.path(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        # 0600 is the mode these files always had (mkstemp's); making run files readable
        # by other users would be a decision of its own, not part of sharing the helper.
        atomic_write(target, data, mode=0o600)
        return target

    def write_text(self, text: str, *parts: str) -> Path:
        return self.write_bytes(text.encode("utf-8", "replace"), *parts)

    def write_record(self, record: RunRecord) -> Path:
        return self.write_text(json.dumps(record.to_json(), indent=2) + "\n", RECORD)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.dir).as_posix()


def read_record(run_dir: Path) -> RunRecord:
    """The run's record; :class:`~orchestrator.record.RecordError` (a ValueError) if it is
    not one, ``OSError`` if it cannot be read."""
    return from_json(json.loads((run_dir / RECORD).read_text()))
