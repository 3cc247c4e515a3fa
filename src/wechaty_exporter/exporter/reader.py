"""Read one open log file into complete lines: partial lines, over-long lines, decoding.

A ``Reader`` holds one file descriptor and the bytes of the line it is in the middle of. It knows
nothing of paths or rotation; the follower decides which descriptor to read and when.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Protocol

from wechaty_exporter.exporter.files import FINGERPRINT_BYTES, Cursor, fingerprint
from wechaty_exporter.logs.dialects.parser import long_line_start
from wechaty_exporter.logs.replay import LineBlock


class CutCounter(Protocol):
    """Where a reader counts the lines it cut at max_line (the path's FileStats)."""

    lines_cut: int


class Reader:
    """One open file descriptor and the bytes of the line it is in the middle of."""

    __slots__ = (
        "cut",
        "dev",
        "fd",
        "fp_hex",
        "fp_len",
        "ino",
        "max_line",
        "offset",
        "partial",
        "read_pos",
        "seen",
        "skip",
        "stats",
    )

    def __init__(self, fd: int, st: os.stat_result, max_line: int, stats: CutCounter) -> None:
        self.fd = fd
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.max_line = max_line
        self.stats = stats
        self.offset = 0  # start of the line in `partial`: first byte not yet yielded
        self.read_pos = 0  # next byte to read; offset + bytes buffered or dropped
        self.partial = bytearray()  # at most max_line bytes
        self.cut = False  # partial holds a cut line; drop bytes until the newline
        self.skip = False  # started mid-line; drop bytes until the newline, yield nothing
        self.seen: tuple[int, int] = (-1, -1)  # (size, mtime_ns) when last verified
        self.fp_len, self.fp_hex = fingerprint(fd, FINGERPRINT_BYTES)

    def seek(self, pos: int) -> None:
        """Start reading at pos; inside a line, skip to after its newline."""
        self.offset = self.read_pos = pos
        self.partial.clear()
        self.cut = False
        self.skip = pos > 0 and os.pread(self.fd, 1, pos - 1) != b"\n"

    def cursor(self) -> Cursor:
        return Cursor(self.offset, self.ino, self.dev, self.fp_hex, self.fp_len)

    def rewritten(self, st: os.stat_result) -> bool:
        """True when the file was truncated (or truncated and rewritten) under us."""
        if (st.st_size, st.st_mtime_ns) == self.seen:
            return False
        self.seen = (st.st_size, st.st_mtime_ns)
        if st.st_size < self.read_pos:
            return True
        head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        if hashlib.sha256(head[: self.fp_len]).hexdigest() != self.fp_hex:
            return True
        self.fp_len, self.fp_hex = len(head), hashlib.sha256(head).hexdigest()
        return False

    def read(self, chunk: int, until: int) -> Iterator[tuple[LineBlock, int]]:
        """Read in chunks up to at least `until` (or EOF); yield (lines, start offset) per chunk.

        Each pread asks for what is known to be there (up to `chunk`), not a whole chunk: a
        live file grows by a few KiB between two reads, and a 1 MiB buffer allocated and shrunk
        on every wake-up costs more than the read."""
        while True:
            want = min(chunk, max(until - self.read_pos, 4096))
            data = os.pread(self.fd, want, self.read_pos)
            if not data:
                return
            if self.fp_len < FINGERPRINT_BYTES and self.read_pos < FINGERPRINT_BYTES:
                self.fp_len, self.fp_hex = fingerprint(self.fd, FINGERPRINT_BYTES)
            self.read_pos += len(data)
            lines, start = self._feed(data)
            if lines:
                yield lines, start
            if len(data) < want or self.read_pos >= until:
                return

    def _feed(self, data: bytes) -> tuple[LineBlock, int]:
        """Take the next bytes; return the lines they complete and where the first one began.

        The lines stay bytes (a `LineBlock`) unless one of them must be cut at max_line."""
        limit = self.max_line
        start = self.offset
        last = data.rfind(b"\n")
        if last < 0:
            if not (self.skip or self.cut):
                room = limit - len(self.partial)
                if len(data) > room:
                    self.partial += data[:room]
                    self.cut = True
                    self.stats.lines_cut += 1
                else:
                    self.partial += data
            return LineBlock([], b""), start
        chunk_start = self.read_pos - len(data)
        lines: list[str] = []
        body_from = 0
        if self.skip or self.cut or self.partial:
            first = data.find(b"\n")
            body_from = first + 1
            if self.skip:
                self.skip = False
                start = chunk_start + body_from
            else:
                if not self.cut:
                    self.partial += data[:first]
                    if len(self.partial) > limit:
                        del self.partial[limit:]
                        self.stats.lines_cut += 1
                lines.append(self.partial.decode("utf-8", "replace"))
            self.partial.clear()
            self.cut = False
        block = b""
        if body_from <= last:
            if last - body_from <= limit or long_line_start(data, body_from, last, limit) < 0:
                block = data[body_from : last + 1] if body_from or last + 1 < len(data) else data
            else:
                for piece in data[body_from:last].split(b"\n"):
                    if len(piece) > limit:
                        piece = piece[:limit]
                        self.stats.lines_cut += 1
                    lines.append(piece.decode("utf-8", "replace"))
        tail = data[last + 1 :]
        if len(tail) > limit:
            self.partial += tail[:limit]
            self.cut = True
            self.stats.lines_cut += 1
        else:
            self.partial += tail
        self.offset = chunk_start + last + 1
        return LineBlock(lines, block), start

    def flush(self) -> list[str]:
        """The final partial line of a file nobody will write to any more (empty when none)."""
        if self.skip or not (self.partial or self.cut):
            return []
        line = self.partial.decode("utf-8", "replace")
        self.partial.clear()
        self.cut = False
        self.offset = self.read_pos
        return [line]

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
