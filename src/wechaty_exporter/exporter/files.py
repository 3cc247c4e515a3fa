"""Recognise and open log files: what the tailer, the cold start and the state file share.

A ``Cursor`` is a read position that survives a restart: the offset plus the file's identity
(device, inode) and a hash of its first bytes, so a file replaced or truncated while we were down
is noticed. ``open_regular`` opens a log without ever blocking (a FIFO at a log path would wait
for a writer for ever) and refuses anything that is not a regular file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FINGERPRINT_BYTES = 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where reading stands in one file; JSON-able through to_dict()/from_dict()."""

    offset: int
    inode: int
    device: int
    fingerprint: str
    fingerprint_len: int

    def to_dict(self) -> dict[str, int | str]:
        return {
            "offset": self.offset,
            "inode": self.inode,
            "device": self.device,
            "fingerprint": self.fingerprint,
            "fingerprint_len": self.fingerprint_len,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cursor:
        """Build a Cursor from to_dict()'s output; ValueError when a field is missing or wrong."""
        try:
            fields = {name: data[name] for name in ("offset", "inode", "device", "fingerprint_len")}
            fingerprint = data["fingerprint"]
        except (KeyError, TypeError) as e:
            raise ValueError(f"cursor: missing field {e}") from None
        for name, value in fields.items():
            if type(value) is not int or value < 0:
                raise ValueError(f"cursor: {name} must be a non-negative integer, got {value!r}")
        if not isinstance(fingerprint, str) or len(fingerprint) != 64:
            raise ValueError(f"cursor: fingerprint must be 64 hex digits, got {fingerprint!r}")
        try:
            int(fingerprint, 16)
        except ValueError:
            raise ValueError(f"cursor: fingerprint must be hex, got {fingerprint!r}") from None
        if fields["fingerprint_len"] > FINGERPRINT_BYTES:
            raise ValueError(f"cursor: fingerprint_len above {FINGERPRINT_BYTES}")
        return cls(fingerprint=fingerprint, **fields)


def fingerprint(fd: int, length: int) -> tuple[int, str]:
    """Hash the first `length` bytes of `fd`; return how many there were and their SHA-256."""
    head = os.pread(fd, length, 0)
    return len(head), hashlib.sha256(head).hexdigest()


def cursor_at(fd: int, st: os.stat_result, offset: int) -> Cursor:
    """The Cursor for `offset` in the open regular file `fd` (`st` its fstat), as the tailer
    itself records it."""
    length, digest = fingerprint(fd, min(st.st_size, FINGERPRINT_BYTES))
    return Cursor(offset, st.st_ino, st.st_dev, digest, length)


def file_kind(mode: int) -> str:
    """What a non-regular file is, for messages: "a directory", "a FIFO", ..."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


class NotRegularFile(OSError):
    """open_regular() found a directory, FIFO, device or socket; `kind` says which."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(errno.EINVAL, "not a regular file", path)
        self.kind = kind


def open_regular(path: str) -> tuple[int, os.stat_result]:
    """Open `path` read-only and non-blocking (a plain open of a FIFO waits for a writer forever)
    and fstat it; anything but a regular file is closed again and raises NotRegularFile."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, file_kind(st.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, st
