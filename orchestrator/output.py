"""A layer's output on its way to the run store: scrubbed, capped, never whole in memory.

The transport hands every chunk of a script's stdout and stderr to a sink as it arrives
(:class:`~orchestrator.transport.OutputSink`); :class:`LayerOutput` is the one layers
use. A layer may print hundreds of MiB, so each stream goes to disk at once, its first
and its last bytes kept (the start says what ran, the end of a failing test run
explains it), secrets scrubbed even when a chunk boundary cuts one in two, and the log
written once at the end, with what the cap dropped said in it.
"""

from __future__ import annotations

import codecs
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from orchestrator.store import RunStore
from orchestrator.transport import STREAMS, ByteWriter
from orchestrator.vault import redact

MIB = 1 << 20
RESULT_TAIL_BYTES = 64 * 1024
"""How much of each stream's end a layer's Result still holds in memory."""
_COPY = MIB


class StreamRedactor:
    """Scrubs secrets (:func:`~orchestrator.vault.redact`) from a stream read in chunks.

    A chunk may end inside a secret, or inside a UTF-8 character: the end of each chunk
    that could still be the start of a secret is held back until the next chunk (or the
    final call) shows whether it is one, so a secret split across chunks is scrubbed like
    any other. What is held back stays under twice the longest secret.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = [secret for secret in secrets if secret]
        self.hold = max((len(secret) for secret in self.secrets), default=1) - 1
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""

    def feed(self, data: bytes, *, final: bool = False) -> bytes:
        """The scrubbed text that ``data`` completes (all that is left, if ``final``)."""
        text = self.pending + self.decoder.decode(data, final)
        cut = len(text) if final else self._safe_cut(text)
        self.pending = text[cut:]
        return redact(text[:cut], self.secrets).encode()

    def _safe_cut(self, text: str) -> int:
        """Where to split ``text``: no secret across it, and a secret starting after it
        may still be completed by the next chunk."""
        cut = max(0, len(text) - self.hold)
        moved = True
        while moved:
            moved = False
            for secret in self.secrets:
                at = text.find(secret, max(0, cut - len(secret) + 1), cut + len(secret) - 1)
                if 0 <= at < cut:  # this occurrence straddles the cut: keep all of it back
                    cut, moved = at, True
        return cut


class RedactingWriter:
    """Bytes on their way to ``out``, scrubbed of ``secrets`` as they go
    (:class:`StreamRedactor`): what a fetched file is written through
    (:meth:`~orchestrator.transport.Transport.get_to`), so that no secret of it ever
    reaches the disk, not even in a partial file. Give it every form a secret may take
    there (:func:`~orchestrator.vault.encoded_forms`); :meth:`finish` writes what the
    last chunk held back."""

    def __init__(self, out: ByteWriter, secrets: Sequence[str]) -> None:
        self.out = out
        self.redactor = StreamRedactor(secrets)

    def write(self, data: bytes) -> int:
        self.out.write(self.redactor.feed(data))
        return len(data)

    def finish(self) -> None:
        self.out.write(self.redactor.feed(b"", final=True))


class _Kept:
    """One stream's scrubbed bytes on disk as they arrive: its first ``head`` bytes in one
    file and its last ``tail`` bytes in a ring file; so at most head + tail bytes of disk
    and one chunk of memory, however much the layer prints."""

    def __init__(self, directory: Path, name: str, head: int, tail: int) -> None:
        self.name = name
        self.head_cap, self.tail_cap = head, tail
        self.head = (directory / f"{name}.head").open("w+b")
        self.ring = (directory / f"{name}.tail").open("w+b", buffering=0)
        self.total = 0

    def write(self, data: bytes) -> None:
        if self.total < self.head_cap:
            self.head.write(data[: self.head_cap - self.total])
        if self.tail_cap:
            last = data[-self.tail_cap :]
            at = (self.total + len(data) - len(last)) % self.tail_cap
            first = last[: self.tail_cap - at]
            os.pwrite(self.ring.fileno(), first, at)
            if len(last) > len(first):
                os.pwrite(self.ring.fileno(), last[len(first) :], 0)
        self.total += len(data)

    def copy(self, out: BinaryIO, budget: int) -> int:
        """Write what ``budget`` bytes keep of the stream to ``out``: all of it, or its
        head, a line saying how much was dropped, and its tail. Returns the bytes dropped."""
        head = min(self.total, self.head_cap) if budget >= self.total else budget // 2
        tail = min(budget, self.total) - head
        self.head.flush()
        _copy_range(self.head.fileno(), out, 0, head, None)
        dropped = self.total - head - tail
        if dropped:
            out.write(
                f"\n[readiness: {dropped} bytes of {self.name} dropped here; kept the first "
                f"{head} and the last {tail} (the layer's max_output_mb)]\n".encode()
            )
        _copy_range(self.ring.fileno(), out, self.total - tail, self.total, self.tail_cap)
        return dropped

    def close(self) -> None:
        self.head.close()
        self.ring.close()


def _copy_range(fd: int, out: BinaryIO, start: int, end: int, ring: int | None) -> None:
    """Copy stream offsets [start, end) from ``fd`` (a ring of ``ring`` bytes, if given)."""
    while start < end:
        at = start if ring is None else start % ring
        size = min(_COPY, end - start, _COPY if ring is None else ring - at)
        data = os.pread(fd, size, at)
        if not data:
            raise OSError(f"output file ended early at {at}")
        out.write(data)
        start += len(data)


def _shares(limit: int, totals: Sequence[int]) -> list[int]:
    """Split ``limit`` bytes between streams: a stream that needs less than an even share
    keeps all of it, and what it leaves goes to the others."""
    shares = [0] * len(totals)
    left = limit
    order = sorted(range(len(totals)), key=lambda i: totals[i])
    for done, index in enumerate(order):
        shares[index] = min(totals[index], left // (len(totals) - done))
        left -= shares[index]
    return shares


@dataclass(frozen=True)
class StoredOutput:
    """Where a layer's output was kept and how much of it the cap dropped."""

    path: Path
    log: str
    total: int
    dropped: int


class LayerOutput:
    """The sink a layer's output streams into (:class:`~orchestrator.transport.OutputSink`):
    scrubbed of secrets as it arrives, capped at ``limit`` bytes (both streams together),
    and written as one log by :meth:`finish`."""

    tail_bytes = RESULT_TAIL_BYTES

    def __init__(self, store: RunStore, limit: int, secrets: Sequence[str], *parts: str) -> None:
        self.store, self.limit, self.secrets = store, limit, secrets
        self.path = store.path(*parts)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._parts = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        half = limit // 2
        self._streams = {name: _Kept(self._parts, name, half, limit - half) for name in STREAMS}
        self._redactors = {name: StreamRedactor(secrets) for name in STREAMS}

    def write(self, stream: str, data: bytes) -> None:
        self._streams[stream].write(self._redactors[stream].feed(data))

    def finish(self, header: str) -> StoredOutput:
        """Write the log (``header``, then what the cap keeps of each stream), atomically
        and 0600 like every run file, and remove the parts."""
        try:
            for name in STREAMS:
                self._streams[name].write(self._redactors[name].feed(b"", final=True))
            totals = [self._streams[name].total for name in STREAMS]
            total, dropped = sum(totals), 0
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(redact(header, self.secrets).encode())
                    shares = _shares(self.limit, totals)
                    if sum(shares) < total:
                        out.write(
                            f"# output truncated: {total - sum(shares)} of {total} bytes "
                            f"dropped (max_output_mb: {self.limit / MIB:g})\n".encode()
                        )
                    for name, share in zip(STREAMS, shares, strict=True):
                        out.write(f"--- {name} ---\n".encode())
                        dropped += self._streams[name].copy(out, share)
                        out.write(b"\n")
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        finally:
            self.close()
        return StoredOutput(self.path, self.store.relative(self.path), total, dropped)

    def close(self) -> None:
        """Remove the parts (also when the layer's run failed before :meth:`finish`)."""
        for kept in self._streams.values():
            kept.close()
        shutil.rmtree(self._parts, ignore_errors=True)
