"""Reliability kit: the real exporter process, a log writer with one line pattern, the oracle.

The oracle (`Truth`) is the writer's own record of what each line it wrote says, in the
exporter's terms; it never runs the exporter's parser or state machine, so their bugs show.

Everything here is synchronous (threads, urllib, subprocess): the torture tests drive real
processes and real files and only poll HTTP, so they need no event loop of their own.
"""

from __future__ import annotations

import json
import os
import signal
import stat
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
from urllib.parse import quote

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


# --- one line pattern for every torture test, and the writer's own record of it -------------

QR_PREFIX = "https://login.weixin.qq.com/l/"
# Every 25th line is a state change. One cycle of them walks every rule of the state machine
# (src/wechaty_exporter/logs/state.py, docs/exporter.md "Event semantics") in four dialects:
# a logout and the same logout again; a QR and the same QR from a second logger; a Scanned; a
# new QR, wrapped; a Confirmed scan and its login line; a QR while logged in (a re-login without
# a logout line: logged out, but no logout counted); a Timeout; a login. A lost, repeated or
# reordered event shows in the state. Errors and forged scans count per line, so a line read
# twice shows in errors_total / rejected_qr_total as well as in lines_total.
CYCLE = 11


@dataclass(frozen=True)
class Effect:
    """What the generator meant a line to say, in the exporter's terms (docs/exporter.md)."""

    kind: str  # login, logout, waiting, confirmed, cleared, error, rejected, chat
    qr: str | None = None  # waiting: the QR as the exporter must report it (unwrapped)
    user: str | None = None  # login: the user the line names


def pattern(i: int, bot: str = "bob", user: str = "Bob") -> tuple[str, Effect]:
    """Line number i (0-based) of the torture pattern, without its newline, and what it says."""
    step, slot = divmod(i, 25)
    if slot == 0:
        cycle, kind = divmod(step, CYCLE)
        qr = f"{QR_PREFIX}{bot}{cycle:06d}"
        if kind == 0:
            return (
                f"2026-11-25 10:{i // 60 % 60:02d}:{i % 60:02d},{i % 1000:03d} - Wechaty - INFO - "
                f"receive <logout> event <EventLogoutPayload(contact_id='wxid_{bot}', "
                f"data='kicked {i}')>"
            ), Effect("logout")
        if kind == 1:  # the bot's own line for the same logout: no second logout
            return f"10:00:00 INFO StarterBot Contact<{user}> logout", Effect("logout")
        if kind == 2:
            return f"10:00:00 INFO StarterBot onScan: Waiting(2) - {qr}a", Effect(
                "waiting", qr + "a"
            )
        if kind == 3:  # the same QR from EventLogger: one QR code, not two
            line = f"10:00:00 INFO WechatyPluginContrib EventLogger scan: {qr}a,2,"
            return line, Effect("waiting", qr + "a")
        if kind == 4:
            return "10:00:00 INFO StarterBot onScan: Scanned(3)", Effect("cleared")
        if kind == 5:  # a new QR, as wechaty.js.org's image link: the exporter unwraps it
            wrapped = "https://wechaty.js.org/qrcode/" + quote(qr + "b", safe="")
            return f"10:00:00 INFO StarterBot onScan: Waiting(2) - {wrapped}", Effect(
                "waiting", qr + "b"
            )
        if kind == 6:
            return (
                "2026-11-25 10:00:00,000 - Wechaty - INFO - receive <scan> event "
                "<EventScanPayload(status=<ScanStatus.Confirmed: 4>, qrcode=None, data=None)>"
            ), Effect("confirmed")
        if kind == 7:  # the login line after its Confirmed scan: no second login
            return f"10:00:00 INFO StarterBot Contact<{user}> login", Effect("login", user=user)
        if kind == 8:  # kicked out without a logout line: logged out, no logout counted
            return f"10:00:00 INFO StarterBot onScan: Waiting(2) - {qr}c", Effect(
                "waiting", qr + "c"
            )
        if kind == 9:
            return "10:00:00 INFO StarterBot onScan: Timeout(5)", Effect("cleared")
        line = f"10:00:00 INFO WechatyPluginContrib EventLogger login: Contact<{user}>"
        return line, Effect("login", user=user)
    if slot == 7:
        return f"10:00:00 ERR StarterBot puppet error {i}", Effect("error")
    if slot == 13:  # a forged scan, as chat text with a newline would write it
        return (
            f"10:00:00 INFO StarterBot onScan: Waiting(2) - https://evil.example/l/{i}",
            Effect("rejected"),
        )
    pad = "x" * (i * 7 % 90)
    return f"10:00:00 INFO StarterBot Message#Text[🗣Contact<Alice>]\tline {i:07d} {pad}", Effect(
        "chat"
    )


def pattern_line(i: int, bot: str = "bob", user: str = "Bob") -> str:
    """Line number i (0-based) of the torture pattern, without its newline."""
    return pattern(i, bot, user)[0]


@dataclass(frozen=True)
class Observed:
    """What one bot's state is: read from the exporter (API, QR endpoint, /metrics together),
    from a BotState, or from the oracle."""

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
        return cls.of_document(doc, qr, metrics, bot)

    @classmethod
    def of_document(
        cls, doc: dict[str, Any], qr: str | None, metrics: Metrics, bot: str
    ) -> Observed:
        """From one bot's /api/v1/bots entry, its pending QR and a /metrics exposition."""
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


@dataclass
class Truth:
    """The oracle: what the lines written say, kept by whoever wrote them, as they wrote them.

    Independent of the code under test: no LineParser, no BotState, no replay. It applies the
    rules of docs/exporter.md ("Event semantics") to what the writer meant each line to say, so
    a parser or state-machine bug makes the exporter (and `replay`) disagree with it.
    """

    lines: int = 0
    logins: int = 0
    logouts: int = 0
    qr_codes: int = 0
    errors: int = 0
    rejected: int = 0
    logged_in: bool | None = None
    qr: str | None = None  # the pending QR
    user: str | None = None

    def see(self, effect: Effect, lines: int = 1) -> None:
        """One line (or a multi-line entry) written that says `effect`."""
        self.lines += lines
        kind = effect.kind
        if kind in ("login", "confirmed"):
            self.logins += self.logged_in is not True  # counters count changes, not lines
            self.logged_in, self.qr = True, None
            self.user = effect.user or self.user
        elif kind == "logout":
            self.logouts += self.logged_in is not False
            self.logged_in, self.qr = False, None
        elif kind == "waiting":  # logged out, but not a logout: no logout is counted
            assert effect.qr is not None
            self.qr_codes += effect.qr != self.qr  # a QR counts when the pending one changes
            self.logged_in, self.qr = False, effect.qr
        elif kind == "cleared":  # Scanned, Timeout, Cancel
            self.qr = None
        elif kind == "error":
            self.errors += 1
        elif kind == "rejected":
            self.rejected += 1
        else:
            assert kind == "chat", kind

    def observed(self) -> Observed:
        return Observed(
            logged_in=self.logged_in,
            qr=self.qr,
            user=self.user,
            logins=self.logins,
            logouts=self.logouts,
            qr_codes=self.qr_codes,
            lines=self.lines,
            errors=self.errors,
            rejected=self.rejected,
        )


def truth_of_pattern(n: int, bot: str = "bob", user: str = "Bob") -> Truth:
    """The oracle for the first n lines of the pattern."""
    truth = Truth()
    for i in range(n):
        truth.see(pattern(i, bot, user)[1])
    return truth


def reference(lines: Iterable[str]) -> BotState:
    """The state `wechaty-exporter replay` reaches over these lines, in order: the code under
    test run offline. Never the judge (that is `Truth`); it only tells where a failure lies."""
    state = BotState()
    replay_lines(state, LineParser(), lines, 0.0)
    return state


def explain(got: Observed, want: Observed, replayed: Observed | None) -> str:
    """Why the exporter and the oracle disagree, for an assertion message."""
    text = f"\nexporter: {got}\noracle:   {want}"
    if replayed is None:
        return text
    where = (
        "replay agrees with the oracle: the bug is in following the file"
        if replayed == want
        else "replay disagrees with the oracle too: the bug is in the parser or the state machine"
    )
    return f"{text}\nreplay:   {replayed}\n{where}"


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

    `truth` is the oracle: the record of what the written lines say, kept as they are written.
    `written` lists every line in the order it was written, for `replay` when a check fails.
    Thread-safe enough for one writing thread plus readers of `count`.
    """

    def __init__(self, path: Path, *, keep_open: bool) -> None:
        self.path = path
        self.keep_open = keep_open
        self.fd: int | None = None
        self.written: list[str] = []
        self.truth = Truth()
        self.next = 0
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
            line, effect = pattern(self.next)
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
            self.truth.see(effect)
            self.written.append(line)
            if rate is not None and k % 10 == 9:
                ahead = began + (k + 1) / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def check(self, exporter: ExporterProcess, what: str = "", bot: str = "bob") -> Observed:
        """The exporter's state of the bot must be the oracle's; returns it."""
        got, want = Observed.of_exporter(exporter, bot), self.truth.observed()
        if got != want:
            replayed = Observed.of_state(reference(self.written))
            raise AssertionError(f"{what}{explain(got, want, replayed)}")
        return want


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


def open_inodes(pid: int) -> set[tuple[int, int]]:
    """(device, inode) of every regular file the process has open (Linux /proc)."""
    found = set()
    fds = Path(f"/proc/{pid}/fd")
    for fd in fds.iterdir():
        try:
            st = os.stat(fd)  # follows the link to the open file, even a deleted one
        except OSError:  # closed meanwhile
            continue
        if stat.S_ISREG(st.st_mode):
            found.add((st.st_dev, st.st_ino))
    return found


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")
