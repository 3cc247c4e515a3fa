"""What `restart` and `log` do on the host: run a configured argv, read the end of a log file.

The argv comes from the config, never from chat text, and runs without a shell in a process group
of its own, so a timeout kills everything it started. A log file is read backwards from its end,
so `log bob 50` costs the same on a 5 GB file as on a 5 kB one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_OUTPUT_BYTES = 64 * 1024  # kept from the end of a command's output
MAX_TAIL_BYTES = 256 * 1024  # read at most this much from the end of a log file
MAX_TAIL_LINES = 200
_BLOCK = 16 * 1024  # read size when reading a log file backwards


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a command ended: its exit status (None when it was killed on timeout) and output."""

    argv: tuple[str, ...]
    returncode: int | None
    timed_out: bool
    duration: float
    output: str  # stdout and stderr interleaved, the last `MAX_OUTPUT_BYTES` at most
    truncated: bool  # output lost its beginning
    error: str | None = None  # the command could not be started (not found, not executable)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.error is None


class _Tail(asyncio.Protocol):
    """Keeps the last `limit` bytes that arrive on a pipe."""

    def __init__(self, limit: int, closed: asyncio.Future[None]) -> None:
        self.data = bytearray()
        self.dropped = False
        self._limit = limit
        self._closed = closed

    def data_received(self, data: bytes) -> None:
        self.data.extend(data)
        if len(self.data) > self._limit:
            del self.data[: len(self.data) - self._limit]
            self.dropped = True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


async def run_argv(
    argv: Sequence[str],
    *,
    time_limit: float,
    max_output: int = MAX_OUTPUT_BYTES,
    kill_grace: float = 2.0,
    drain: float = 1.0,
) -> RunResult:
    """Run `argv` (no shell, stdin closed, own session); after `time_limit` seconds SIGTERM its
    process group, then SIGKILL after `kill_grace` seconds.

    Output is what arrives until the command exits, plus at most `drain` seconds; then the pipe
    is closed. Whatever the command started in the background lives on, but must not write to
    the command's output (pm2, systemctl and docker do not): it would get EPIPE or SIGPIPE.
    """
    args = tuple(argv)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    # Our own pipe, not asyncio's: Process.wait() would also wait for asyncio's pipe to close,
    # which a background child that inherited it may never do.
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        return RunResult(args, None, False, 0.0, "", False, error=f"{exc.strerror or exc}")
    finally:
        os.close(write_fd)
    closed: asyncio.Future[None] = loop.create_future()
    tail = _Tail(max_output, closed)
    transport, _ = await loop.connect_read_pipe(lambda: tail, os.fdopen(read_fd, "rb", 0))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), time_limit)
        except TimeoutError:
            timed_out = True
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), kill_grace)
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(closed), drain)
    finally:
        if proc.returncode is None:  # cancelled: take the whole group down
            _signal_group(proc.pid, signal.SIGKILL)
        transport.close()
    return RunResult(
        argv=args,
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        duration=time.monotonic() - started,
        output=bytes(tail.data).decode("utf-8", errors="replace"),
        truncated=tail.dropped,
    )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def tail_lines(
    path: str | Path, n: int, *, max_bytes: int = MAX_TAIL_BYTES
) -> tuple[list[str], bool]:
    """The last `n` (≤ 200) lines of `path`, reading backwards at most `max_bytes` from its end.

    Returns (lines, clipped): `clipped` is True when the byte budget ran out before `n` lines
    were found (the first line returned may then be the end of a longer one). Raises OSError.
    """
    n = max(0, min(n, MAX_TAIL_LINES))
    if n == 0:
        return [], False
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos = end
        data = b""
        while pos > 0 and data.count(b"\n") <= n and end - pos < max_bytes:
            step = min(_BLOCK, pos, max_bytes - (end - pos))
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    clipped = pos > 0 and data.count(b"\n") <= n
    if data.endswith(b"\n"):
        data = data[:-1]
    parts = data.split(b"\n")
    if pos > 0 and not clipped:
        parts = parts[1:]  # the first piece is the end of a line we did not read whole
    lines = [p.rstrip(b"\r").decode("utf-8", errors="replace") for p in parts[-n:]]
    if lines == [""] and end == 0:
        lines = []
    return lines, clipped


class LocalRunner:
    """Runs restart argvs and reads log files on this host (the `runner` and `logs` of
    `model.CommandContext`)."""

    def __init__(self, *, max_output: int = MAX_OUTPUT_BYTES, max_tail_bytes: int = MAX_TAIL_BYTES):
        self._max_output = max_output
        self._max_tail_bytes = max_tail_bytes

    async def run(self, argv: Sequence[str], *, time_limit: float) -> RunResult:
        return await run_argv(argv, time_limit=time_limit, max_output=self._max_output)

    async def tail(self, path: Path, n: int) -> tuple[list[str], bool]:
        return await asyncio.to_thread(tail_lines, path, n, max_bytes=self._max_tail_bytes)
