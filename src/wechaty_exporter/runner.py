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
_BLOCK = 16 * 1024


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


async def run_argv(
    argv: Sequence[str],
    *,
    time_limit: float,
    max_output: int = MAX_OUTPUT_BYTES,
    kill_grace: float = 2.0,
) -> RunResult:
    """Run `argv` (no shell, stdin closed, own session); after `time_limit` seconds SIGTERM its
    process group, then SIGKILL after `kill_grace` seconds."""
    args = tuple(argv)
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return RunResult(args, None, False, 0.0, "", False, error=f"{exc.strerror or exc}")
    assert proc.stdout is not None
    buffer = bytearray()
    dropped = False

    async def collect() -> None:
        nonlocal dropped
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(_BLOCK):
            buffer.extend(chunk)
            if len(buffer) > max_output:
                del buffer[: len(buffer) - max_output]
                dropped = True

    reader = asyncio.create_task(collect())
    timed_out = False
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
    finally:
        if proc.returncode is None:  # cancelled: take the whole group down
            _signal_group(proc.pid, signal.SIGKILL)
    # A daemon the command started may keep the pipe open: stop reading, and let it live (the
    # command exited in time; what it started is the restarted bot).
    try:
        await asyncio.wait_for(asyncio.shield(reader), 1.0)
    except TimeoutError:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return RunResult(
        argv=args,
        returncode=None if timed_out else proc.returncode,
        timed_out=timed_out,
        duration=time.monotonic() - started,
        output=bytes(buffer).decode("utf-8", errors="replace"),
        truncated=dropped,
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
    `commands.CommandContext`)."""

    def __init__(self, *, max_output: int = MAX_OUTPUT_BYTES, max_tail_bytes: int = MAX_TAIL_BYTES):
        self._max_output = max_output
        self._max_tail_bytes = max_tail_bytes

    async def run(self, argv: Sequence[str], *, time_limit: float) -> RunResult:
        return await run_argv(argv, time_limit=time_limit, max_output=self._max_output)

    async def tail(self, path: Path, n: int) -> tuple[list[str], bool]:
        return await asyncio.to_thread(tail_lines, path, n, max_bytes=self._max_tail_bytes)
