"""Files that hold login QRs (credentials): private directories and files, no link followed.

A login QR in a file is a credential, so every file that holds one (the exporter's state file,
the receiver's SQLite store, the outbox, the self-log) is opened through here:

- `private_dir` creates a missing directory 0700 and refuses one that others can write (mode
  ``g+w`` or ``o+w``) or that belongs to another user: whoever can write there can plant a file
  or a symbolic link where the QR is about to go.
- `open_private` never follows a symbolic link (O_NOFOLLOW) nor waits on a FIFO (O_NONBLOCK),
  refuses anything but a regular file of this user with one link, and tightens a looser mode
  (an old 0644 file becomes 0600).
- `write_private_atomic` replaces a file by a temporary one with a random name, created
  exclusively (O_CREAT | O_EXCL | O_NOFOLLOW) and 0600: a link planted at a predictable name
  receives nothing.

The refusals are `UnsafePathError`, an OSError whose message says what to change.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

__all__ = [
    "UnsafePathError",
    "open_private",
    "private_dir",
    "remove_stale_temporaries",
    "write_private_atomic",
]

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UnsafePathError(PermissionError):
    """A path that could hand a login QR to someone else; the message says what to change."""


def private_dir(path: Path | str) -> Path:
    """`path` as a directory for files that hold QRs: created 0700 when missing (parents with
    the usual mode), else checked. Raises UnsafePathError (others may write it, or it is not
    this user's nor root's) or OSError."""
    path = Path(path)
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path}: not a directory")
    mode = stat.S_IMODE(st.st_mode)
    if mode & _OTHERS_WRITE:
        raise UnsafePathError(
            f"{path}: the directory is group- or world-writable (mode {mode:04o}), so others "
            f"could plant files or links where login QRs are written; chmod 0700 {path}"
        )
    if st.st_uid not in (os.geteuid(), 0):
        raise UnsafePathError(
            f"{path}: the directory belongs to uid {st.st_uid}, not to this user "
            f"(uid {os.geteuid()}) or root; use a directory of your own, mode 0700"
        )
    return path


def open_private(path: Path | str, flags: int, mode: int = PRIVATE_FILE) -> int:
    """`os.open` for a file that holds QRs: created with `mode`, never through a symbolic link;
    an existing file must be this user's regular file with one link, and loses any permission
    beyond `mode`. Returns the descriptor. Raises UnsafePathError or OSError."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(
                f"{path}: a symbolic link; a file that holds login QRs is never written or read "
                "through one (remove the link)"
            ) from exc
        raise
    try:
        st = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = "not a regular file"
        elif st.st_uid != os.geteuid():
            problem = f"belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})"
        elif st.st_nlink > 1:
            problem = f"has {st.st_nlink} hard links; a file that holds login QRs has one"
        if problem is not None:
            raise UnsafePathError(f"{path}: {problem}")
        if stat.S_IMODE(st.st_mode) & ~mode:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _temporary_name(name: str) -> str:
    return f".{name}.{secrets.token_hex(8)}.tmp"


def write_private_atomic(directory: Path, name: str, data: bytes) -> None:
    """Replace `directory`/`name` with `data` atomically: a random, exclusive, 0600 temporary
    file, fsync, rename, fsync the directory. Check the directory with `private_dir` first."""
    target = directory / name
    tmp = directory / _temporary_name(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(directory: Path, name: str) -> int:
    """Remove the temporary files a crash left behind for `name` (they may hold a QR); the
    count removed. Links are removed, never followed."""
    removed = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(f".{name}.") and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
    return removed
