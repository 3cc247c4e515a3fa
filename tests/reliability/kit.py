"""Reliability kit: the real exporter process, a log writer with one line pattern, the reference.

Everything here is synchronous (threads, urllib, subprocess): the torture tests drive real
processes and real files and only poll HTTP, so they need no event loop of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from tests.helpers import free_port

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.replay import replay_lines
from wechaty_exporter.logs.state import BotState

REPO = Path(__file__).resolve().parents[2]
SRC = str(REPO / "src")
WAIT = 15.0  # upper bound for anything awaited; a pass takes a small fraction of it


def child_env(**extra: str) -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": pythonpath, **extra}


# --- the exporter process ---------------------------------------------------------------------


class ExporterProcess:
    """`python -m wechaty_exporter serve` on a free loopback port; output kept in a file."""

    def __init__(
        self,
        workdir: Path,
        logs: Sequence[tuple[str, Path | str]],
        *,
        state_dir: Path | None = None,
        args: Sequence[str] = (),
        wrapper: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [*wrapper, sys.executable, "-m", "wechaty_exporter", "serve"]
        for bot, path in logs:
            self.argv += ["--log", f"{bot}={path}"]
        if state_dir is not None:
            self.argv += ["--state-dir", str(state_dir)]
        self.argv += ["--web.listen-address", f"127.0.0.1:{self.port}", *args]
        self.output = workdir / f"exporter-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # lifecycle

    def start(self, *, ready: bool = True) -> ExporterProcess:
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=child_env()
            )
        self.starts += 1
        if ready:
            try:
                self.wait(lambda: self.status("/-/ready") == 200, "ready")
            except BaseException:
                self.proc.kill()  # never leave one behind, whatever it is stuck in
                self.proc.wait(10)
                raise
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"exporter ignored SIGTERM for 10 s\n{self.tail()}") from None
        return self.proc.returncode

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.output.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait(self, check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"exporter exited while waiting for {what}:\n{self.tail()}")
            last = check()
            if last:
                return last
            time.sleep(0.01)
        raise AssertionError(f"not {what} within {timeout}s; last {last!r}\n{self.tail()}")

    # HTTP

    def fetch(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, b""

    def status(self, path: str) -> int:
        return self.fetch(path, timeout=1.0)[0]

    def bots(self) -> dict[str, dict[str, Any]]:
        status, body = self.fetch("/api/v1/bots")
        assert status == 200, (status, body)
        return {b["bot"]: b for b in json.loads(body)["bots"]}

    def qr(self, bot: str) -> str | None:
        status, body = self.fetch(f"/api/v1/bots/{bot}/qr")
        if status == 404:
            return None
        assert status == 200, (status, body)
        qrcode: str = json.loads(body)["qrcode"]
        return qrcode

    def metrics(self) -> Metrics:
        status, body = self.fetch("/metrics")
        assert status == 200, (status, body)
        return Metrics.parse(body.decode())


class Metrics:
    """One /metrics exposition, read as {(sample name, sorted labels): value}."""

    def __init__(self, samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
        self.samples = samples

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[s.name, tuple(sorted(s.labels.items()))] = s.value
        return cls(samples)

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def value(self, name: str, **labels: str) -> float:
        found = self.get(name, **labels)
        return 0.0 if found is None else found


# --- one line pattern for every torture test --------------------------------------------------

QR_PREFIX = "https://login.weixin.qq.com/l/"
# Every 25th line is a state change, cycling through a logout, QR codes, a Scanned and a
# Confirmed scan and a login, in three dialects; each one changes a counter or the pending QR,
# so a lost or reordered event shows in the state. Errors and forged scans count per line, so a
# line read twice shows in errors_total / rejected_qr_total as well as in lines_total.
_CYCLE = 6


def pattern_line(i: int, bot: str = "bob", user: str = "Bob") -> str:
    """Line number i (0-based) of the torture pattern, without its newline."""
    step, slot = divmod(i, 25)
    if slot == 0:
        kind = step % _CYCLE
        if kind == 0:
            return (
                f"2026-11-25 10:{i // 60 % 60:02d}:{i % 60:02d},{i % 1000:03d} - Wechaty - INFO - "
                f"receive <logout> event <EventLogoutPayload(contact_id='wxid_{bot}', "
                f"data='kicked {i}')>"
            )
        if kind in (1, 3):
            return f"10:00:00 INFO StarterBot onScan: Waiting(2) - {QR_PREFIX}{bot}{i:07d}"
        if kind == 2:
            return "10:00:00 INFO StarterBot onScan: Scanned(3)"
        if kind == 4:
            return (
                "2026-11-25 10:00:00,000 - Wechaty - INFO - receive <scan> event "
                "<EventScanPayload(status=<ScanStatus.Confirmed: 4>, qrcode=None, data=None)>"
            )
        return f"10:00:00 INFO StarterBot Contact<{user}> login"
    if slot == 7:
        return f"10:00:00 ERR StarterBot puppet error {i}"
    if slot == 13:  # a forged scan, as chat text with a newline would write it
        return f"10:00:00 INFO StarterBot onScan: Waiting(2) - https://evil.example/l/{i}"
    pad = "x" * (i * 7 % 90)
    return f"10:00:00 INFO StarterBot Message#Text[🗣Contact<Alice>]\tline {i:07d} {pad}"


def reference(lines: Iterable[str]) -> BotState:
    """The state `wechaty-exporter replay` reaches over these lines, in order."""
    state = BotState()
    replay_lines(state, LineParser(), lines, 0.0)
    return state


@dataclass(frozen=True)
class Observed:
    """What the exporter says about one bot: API, QR endpoint and /metrics together."""

    logged_in: bool | None
    qr: str | None
    user: str | None
    logins: int
    logouts: int
    qr_codes: int
    lines: int
    errors: int
    rejected: int

    @classmethod
    def of_exporter(cls, exporter: ExporterProcess, bot: str) -> Observed:
        doc = exporter.bots()[bot]
        metrics = exporter.metrics()
        qr = exporter.qr(bot) if doc["qr_pending"] else None
        assert doc["logins_total"] == metrics.value("wechaty_bot_logins_total", bot=bot)
        assert doc["logouts_total"] == metrics.value("wechaty_bot_logouts_total", bot=bot)
        assert doc["qr_codes_total"] == metrics.value("wechaty_qr_codes_total", bot=bot)
        return cls(
            logged_in=doc["logged_in"],
            qr=qr,
            user=doc["user"],
            logins=doc["logins_total"],
            logouts=doc["logouts_total"],
            qr_codes=doc["qr_codes_total"],
            lines=int(metrics.value("wechaty_log_lines_total", bot=bot)),
            errors=int(metrics.value("wechaty_log_errors_total", bot=bot)),
            rejected=int(metrics.value("wechaty_exporter_rejected_qr_total", bot=bot)),
        )

    @classmethod
    def of_state(cls, state: BotState) -> Observed:
        return cls(
            logged_in=state.logged_in,
            qr=state.qr.qrcode if state.qr else None,
            user=state.user,
            logins=state.logins_total,
            logouts=state.logouts_total,
            qr_codes=state.qr_codes_total,
            lines=state.lines_total,
            errors=state.errors_total,
            rejected=state.rejected_qr_total,
        )


def lines_read(exporter: ExporterProcess, bot: str = "bob") -> int:
    return int(exporter.metrics().value("wechaty_log_lines_total", bot=bot))


def caught_up(exporter: ExporterProcess, expected: int, bot: str = "bob") -> bool:
    """True once the exporter read `expected` lines of the bot; fails at once on more."""
    got = lines_read(exporter, bot)
    assert got <= expected, f"{bot}: read {got} lines, only {expected} were written"
    return got == expected


# --- the writer -------------------------------------------------------------------------------


class Writer:
    """A bot's logger: keeps one descriptor open (node, pm2), or opens the path for every line.

    `written` lists every line in the order it was written: the reference replays exactly that.
    Thread-safe enough for one writing thread plus readers of `count`.
    """

    def __init__(self, path: Path, *, keep_open: bool, start: int = 0) -> None:
        self.path = path
        self.keep_open = keep_open
        self.fd: int | None = None
        self.written: list[str] = []
        self.next = start
        if keep_open:
            self.reopen()

    @property
    def count(self) -> int:
        return len(self.written)

    def reopen(self, path: Path | None = None) -> None:
        """What a logger does on SIGHUP (or when told its file moved)."""
        self.path = path or self.path
        if self.keep_open:
            if self.fd is not None:
                os.close(self.fd)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, n: int, *, rate: float | None = None) -> None:
        """Write the next n pattern lines, at `rate` lines per second (None: as fast as it can)."""
        began = time.perf_counter()
        for k in range(n):
            line = pattern_line(self.next)
            self.next += 1
            data = (line + "\n").encode()
            if self.fd is not None:
                os.write(self.fd, data)
            else:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            self.written.append(line)
            if rate is not None and k % 10 == 9:
                ahead = began + (k + 1) / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Background(threading.Thread):
    """Runs a function in a thread; join() re-raises what it raised."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:
            self.error = e

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout if timeout is not None else WAIT)
        assert not self.is_alive(), "background thread still running"
        if self.error is not None:
            raise self.error


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")
