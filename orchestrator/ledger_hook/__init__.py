"""The transport-ledger hook's wheel: ``readiness_ledger``, for every venv readiness builds.

The package's sources live beside this module (``readiness_ledger/``); hosts install
them only from a wheelhouse, so the control node builds the wheel itself, by hand:
no build backend to install, no network, and **deterministic** (fixed timestamps and
permissions, sorted entries, stored uncompressed so that no zlib version can change a
byte). Same sources give a byte-identical wheel, so a wheelhouse cached by digest is
reused, and :func:`source_digest` names exactly what the wheel holds.

The wheel holds the package, ``readiness_ledger.pth`` at its root (processed by
``site`` at every start-up of the venv's interpreter: it costs one environment lookup
unless ``READINESS_LEDGER`` is set) and the dist-info the wheel spec asks for.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

from orchestrator.files import atomic_write

NAME = "readiness_ledger"
VERSION = "1.0"
WHEEL_NAME = f"{NAME}-{VERSION}-py3-none-any.whl"
SOURCES = Path(__file__).resolve().parent / NAME
PTH = (
    'import os; os.environ.get("READINESS_LEDGER") and __import__("readiness_ledger").activate()\n'
)
_DIST_INFO = f"{NAME}-{VERSION}.dist-info"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644  # a regular file, rw-r--r--

METADATA = f"""\
Metadata-Version: 2.1
Name: {NAME}
Version: {VERSION}
Summary: readiness's transport ledger: connection errors of a layer's test processes
"""
WHEEL = """\
Wheel-Version: 1.0
Generator: readiness (orchestrator.ledger_hook)
Root-Is-Purelib: true
Tag: py3-none-any
"""


def _payload() -> dict[str, bytes]:
    """Every file of the wheel but RECORD: wheel path -> content."""
    files = {f"{NAME}/{path.name}": path.read_bytes() for path in sorted(SOURCES.glob("*.py"))}
    files[f"{NAME}.pth"] = PTH.encode()
    files[f"{_DIST_INFO}/METADATA"] = METADATA.encode()
    files[f"{_DIST_INFO}/WHEEL"] = WHEEL.encode()
    return files


def _record(files: dict[str, bytes]) -> bytes:
    """RECORD: ``path,sha256=<urlsafe base64, unpadded>,size``; RECORD itself unhashed."""
    lines = []
    for path, data in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(data)}\n")
    lines.append(f"{_DIST_INFO}/RECORD,,\n")
    return "".join(lines).encode()


def wheel_bytes() -> bytes:
    """The wheel, built in memory from the sources."""
    files = _payload()
    files[f"{_DIST_INFO}/RECORD"] = _record(files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path, data in sorted(files.items()):
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.create_system = 3  # Unix, whatever the control node is
            info.external_attr = _FILE_MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, data)
    return buffer.getvalue()


def source_digest() -> str:
    """sha256 of the wheel the current sources make: it changes exactly when they do."""
    return hashlib.sha256(wheel_bytes()).hexdigest()


def build_wheel(dest_dir: Path) -> Path:
    """``dest_dir/readiness_ledger-1.0-py3-none-any.whl``, written atomically and left
    untouched when it already holds these bytes (its mtime stays, for caches)."""
    data = wheel_bytes()
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / WHEEL_NAME
    if not (path.is_file() and path.read_bytes() == data):
        atomic_write(path, data)
    return path
