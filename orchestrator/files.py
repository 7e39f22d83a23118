"""Writing files on the control node so that no reader ever sees half of one.

Run records, the lab state, sshd configs, known_hosts and the inventory's secrets are all
read by other processes (a report, ``lab.status``, sshd, a second run) while readiness may
be rewriting them, and a run can be killed at any moment. :func:`atomic_write` is the one
way they are written: the reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

_ATTEMPTS = 100


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, replace: bool = True) -> None:
    """Replace ``path`` with ``data`` in one step; the file ends up with exactly ``mode``.

    The temporary file is created in the same folder (``os.replace`` is atomic only within
    one file system) and with the final mode from the start, so a secret written with
    ``mode=0o600`` is never readable by others, not even for a moment. The umask may only
    narrow that creation mode; ``fchmod`` then sets the exact mode, as callers expect. On
    any failure (including Ctrl-C) the temporary file is removed and ``path`` keeps its
    old content. The temporary name is ``.<name>.<random>.tmp``, which ``lab.down``'s
    clean-up of ``.*.tmp`` leftovers recognises.

    There is no fsync: what the callers need is that readers and crashes of readiness
    never see a torn file, which the rename gives. Surviving a power cut is not needed:
    every such file is rewritten by the next run (the record after every step, the lab
    state by ``lab.up``), and fsyncing each of a run's many writes would slow every step.
    The parent folder must exist: creating it (and choosing its mode) is the caller's job.

    With ``replace=False`` a file already at ``path`` is never replaced, even one that
    appeared a moment ago: the complete file is hard-linked into place, which fails with
    :class:`FileExistsError` instead (a check before writing would leave a race).
    """
    fd, tmp = _create_temp(path, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path, follow_symlinks=False)
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _create_temp(path: Path, mode: int) -> tuple[int, Path]:
    """A new, exclusively created file beside ``path`` and its open descriptor.

    Not :func:`tempfile.mkstemp`: it always creates mode 0600 and cannot be told the
    final mode, and O_EXCL with our own random name is all it does besides.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path} after {_ATTEMPTS} tries")
