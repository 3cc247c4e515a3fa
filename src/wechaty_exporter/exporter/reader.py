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

    def read(self, chunk: int, until: int) -> Iterator[tuple[list[str], int]]:
        """Read in chunks up to at least `until` (or EOF); yield (lines, start offset) per chunk."""
        while True:
            data = os.pread(self.fd, chunk, self.read_pos)
            if not data:
                return
            if self.fp_len < FINGERPRINT_BYTES and self.read_pos < FINGERPRINT_BYTES:
                self.fp_len, self.fp_hex = fingerprint(self.fd, FINGERPRINT_BYTES)
            self.read_pos += len(data)
            lines, start = self._feed(data)
            if lines:
                yield lines, start
            if len(data) < chunk or self.read_pos >= until:
                return

    def _feed(self, data: bytes) -> tuple[list[str], int]:
        """Take the next bytes; return the lines they complete and where the first one began."""
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
            return [], start
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
        if body_from <= last:
            body = data[body_from:last]
            pieces = body.split(b"\n") if len(body) > limit else None
            if pieces is None or max(map(len, pieces)) <= limit:
                lines.extend(body.decode("utf-8", "replace").split("\n"))
            else:
                for piece in pieces:
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
        return lines, start

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
