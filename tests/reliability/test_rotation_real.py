"""Rotation as production does it: the real `logrotate` and pm2's own rotation, real writers.

One scenario runner (after grok_exporter's tailer tests) over writer × rotation × timing:

- writer: a node bot (tests/node/bot.js) that **keeps its file open** and reopens it on SIGHUP
  (logrotate's postrotate sends it), one that **reopens the file for every line**, and **pm2**
  6.0.14, whose daemon writes the bot's stdout to `$PM2_HOME/logs/bob-out.log` and keeps it open;
- rotation: logrotate 3.21 (Debian package `logrotate`) run on a generated config, `logrotate -f`:
  **create**, **copytruncate**, **delaycompress** (create + compress + delaycompress: the second
  run gzips the first run's file while the exporter may still be draining it), **dateext**
  (create + dateext); for pm2, **pm2-logrotate** 3.0.0 installed into pm2 (`pm2 install .` in its
  package, configured with `pm2 set`, cutting on its cron) and logrotate on **pm2's own template**
  (pm2/lib/templates/logrotate.d/pm2: copytruncate + compress + delaycompress);
- timing: **burst** (two rotations while the bot writes at RATE lines/s) or **restart** (the
  exporter is stopped, the log rotated while it is down and the bot writes on, then the exporter
  is started again on its state dir).

The judge is independent of the code under test: bench/logs.py generates the lines together with
their truth (its `Truth`: lines, logins, logouts, QR codes, rejected QRs, errors, the login state
and pending QR, counted by the generator as it emits them), and the bot's own record says it
wrote every line. The exporter's API, QR endpoint and /metrics must equal that truth: 0 events
lost, 0 counted twice. Before comparing, each scenario waits until the exporter has closed every
rotated-away file (after its 5 s drain) and then writes one marker line and waits for it, so
whatever a late drain could add has been counted.

copytruncate (logrotate's and pm2-logrotate's, which copies and truncates too) loses what the
writer writes between the copy and the truncate, and what the reader had not read when the file
is cut: a race no reader can close (docs/exporter.md). Those rotations therefore happen while the
bot holds still (its `hold` file) and after the exporter has read everything it wrote; for
pm2-logrotate, whose cron decides the moment, the test sets a cron expression that names the
next cut's second and the bot holds still around it. The rename rotations (create,
delaycompress, dateext) happen mid-burst, unheld. With a writer that reopens the file for every
line, the writer sometimes creates the new log between logrotate's rename and its `create`, and
logrotate then moves that file to `bob.log-YYYYMMDDHH.backup`. That is one rotation more, which
the counts allow for, and no line is lost: the exporter drains the moved file.

Found: a rename rotation while the exporter is down loses the old file's tail (60 to 120 lines
per scenario here): the six `restart` scenarios of create, delaycompress and dateext are marked
xfail(strict) with the cause (RENAMED_WHILE_DOWN) until the exporter reads that tail.

Needs: the `logrotate` and `nodejs` Debian packages, and `npm ci` in tests/node (pm2 6.0.14 and
pm2-logrotate 3.0.0, pinned by its package-lock.json). pm2 runs with PM2_HOME in the test's
tmp dir and is killed at the end. Sizes: ROTATION_REAL_LINES (default 3000) lines per scenario
at RATE lines/s; the 20 scenarios take about 2 min on 2 busy cores.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bench.logs import WRAPPERS, Truth, generate
from tests.integration.harness import require_binary
from tests.reliability.conftest import Figures
from tests.reliability.kit import WAIT, ExporterProcess, child_env

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "node"
BOT = NODE_DIR / "bot.js"
PM2 = NODE_DIR / "node_modules" / ".bin" / "pm2"
PM2_LOGROTATE = NODE_DIR / "node_modules" / "pm2-logrotate"
PM2_TEMPLATE = NODE_DIR / "node_modules" / "pm2" / "lib" / "templates" / "logrotate.d" / "pm2"

LINES = int(os.environ.get("ROTATION_REAL_LINES", "3000"))
RATE = 1500  # lines per second
CYCLE_EVERY = 60  # bench.logs: a logout → QR → scan → login cycle every ~60 lines
DOWN = 0.3  # seconds the bot writes on while the exporter is down
MARKER = "10:00:00 INFO StarterBot Message#Text[🗣Contact<Alice>]\tthe last line"

LOGROTATE_KINDS = ["create", "copytruncate", "delaycompress", "dateext"]
PM2_KINDS = ["pm2-logrotate", "pm2-template"]
CUTS = ("copytruncate", "pm2-logrotate", "pm2-template")  # copy, then truncate in place

# The exporter bug these scenarios found (not fixed here: src/ belongs to others): a log renamed
# away while the exporter is down loses what was written to it after the exporter stopped.
RENAMED_WHILE_DOWN = (
    "exporter bug: rotated by rename while the exporter was down, the old file's tail is never "
    "read. At start-up the saved cursor's inode is no longer at the path, so exporter/follow.py "
    "Follower._resume logs 'replaced since the saved cursor; reading from the start' and reads "
    "the new file from byte 0; the lines written to the old file (now bob.log.1 or bob.log-DATE) "
    "between the stop and the rename (reopening writer) or the SIGHUP (keep-open writer) are lost"
)
LOST = {kind: RENAMED_WHILE_DOWN for kind in ("create", "delaycompress", "dateext")}


def case(kind: str, writer: str, timing: str) -> Any:
    marks = []
    if timing == "restart" and kind in LOST:
        marks.append(pytest.mark.xfail(reason=LOST[kind], strict=True))
    return pytest.param(kind, writer, timing, id=f"{writer}-{kind}-{timing}", marks=marks)


CASES = [
    case(kind, writer, timing)
    for timing in ("burst", "restart")
    for kind, writers in [(k, ("keep-open", "reopen")) for k in LOGROTATE_KINDS]
    + [(k, ("pm2",)) for k in PM2_KINDS]
    for writer in writers
]


def require_node_modules() -> None:
    if not (PM2.exists() and PM2_LOGROTATE.exists()):
        pytest.fail(
            f"{PM2} or pm2-logrotate missing: run `npm ci` in {NODE_DIR} (scripts/setup.sh --test "
            "does). These tests never skip.",
            pytrace=False,
        )


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.01)
    raise AssertionError(f"not {what} within {timeout}s; last {last!r}")


def append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def rotated_away_open(pid: int, log: Path) -> set[int]:
    """Inodes of regular files the exporter holds open, other than the log at the path and its
    own stdout/stderr: the rotated-away files it is still draining."""
    try:
        current = os.stat(log).st_ino
    except FileNotFoundError:
        current = -1
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if fd.name in ("0", "1", "2"):
            continue
        try:
            st = os.stat(fd)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_ino != current:
            found.add(st.st_ino)
    return found


# --- the bot ----------------------------------------------------------------------------------


class Bot:
    """tests/node/bot.js, run by node directly or by pm2; steered through its control dir."""

    def __init__(self, tmp: Path, writer: str, log: Path, lines: list[str], rate: int) -> None:
        self.writer = writer
        self.rate = rate
        self.log = log
        self.control = tmp / "control"
        self.control.mkdir()
        self.lines_file = tmp / "lines.json"
        self.lines_file.write_text(json.dumps(lines, ensure_ascii=False))
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = tmp / "bot.out"
        self.holds = 0
        self.pm2_home = tmp / "pm2"

    def argv(self) -> list[str]:
        return ["--lines", str(self.lines_file), "--control", str(self.control),
                "--rate", str(self.rate)]  # fmt: skip

    # pm2

    def pm2(self, *args: str, cwd: Path | None = None) -> str:
        env = {**child_env(), "PM2_HOME": str(self.pm2_home)}
        done = subprocess.run(
            [str(PM2), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"pm2 {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def start(self) -> None:
        if self.writer == "pm2":
            self.pm2("start", str(BOT), "--name", "bob", "--no-autorestart", "--", *self.argv())
            return
        argv = ["node", str(BOT), *self.argv(), "--out", str(self.log), "--mode", self.writer]
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.writer == "pm2" and self.pm2_home.exists():
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.pm2("kill")
            with contextlib.suppress(OSError, ValueError):  # the daemon, if `pm2 kill` failed
                os.kill(int((self.pm2_home / "pm2.pid").read_text()), signal.SIGKILL)

    # its record

    def record(self, name: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads((self.control / name).read_text())
        except FileNotFoundError:
            return None
        return doc

    def hold(self, *, answer: bool = True) -> int:
        """Stop writing; returns how many lines the bot had written (its record). Without
        `answer`, before the bot runs: it starts held."""
        self.holds += 1
        token = str(self.holds)
        (self.control / ".hold").write_text(token)
        os.replace(self.control / ".hold", self.control / "hold")
        if not answer:
            return 0
        reply = wait_for(
            lambda: self.record(f"held-{token}") or self.record("done"), "the bot holding still"
        )
        return int(reply["written"])

    def release(self) -> None:
        (self.control / "hold").unlink()

    def done(self) -> dict[str, Any]:
        if self.proc is not None and self.proc.poll() not in (None, 0):
            raise AssertionError(f"bot exited {self.proc.returncode}: {self.output.read_text()}")
        return wait_for(lambda: self.record("done"), "the bot done", timeout=60)


# --- the rotations ----------------------------------------------------------------------------


def logrotate_config(kind: str, log: Path, bot: Bot) -> str:
    """The config a deployment would write for this log (`kill -HUP` for a keep-open logger)."""
    if kind == "pm2-template":  # pm2's own, as `pm2 logrotate -u root` installs it
        home = str(bot.pm2_home)
        return PM2_TEMPLATE.read_text().replace("%HOME_PATH%", home).replace("%USER%", "root")
    body = ["rotate 10", "missingok"]
    if kind == "copytruncate":
        body.append("copytruncate")
    else:
        body.append("create 0644 root root")
    if kind == "delaycompress":
        body += ["compress", "delaycompress"]
    if kind == "dateext":
        body += ["dateext", "dateformat -%Y%m%d-%s"]  # %s: two rotations a day do not collide
    if kind != "copytruncate" and bot.writer == "keep-open":
        body += ["postrotate", f"    kill -HUP $(cat {bot.control / 'pid'})", "endscript"]
    inner = "".join(f"    {line}\n" for line in body)
    return f"{log} {{\n{inner}}}\n"


class Scenario:
    """One log, one bot, one exporter, one kind of rotation."""

    def __init__(self, tmp: Path, kind: str, writer: str, timing: str, seed: int) -> None:
        self.tmp, self.kind, self.writer, self.timing = tmp, kind, writer, timing
        wrapper = WRAPPERS[seed % len(WRAPPERS)]
        lines, self.truth = generate(LINES, seed, cycle_every=CYCLE_EVERY, wrappers=(wrapper,))
        self.wrapper = wrapper
        if writer == "pm2":
            self.log = tmp / "pm2" / "logs" / "bob-out.log"
        else:
            self.log = tmp / "logs" / "bob.log"
        self.log.parent.mkdir(parents=True)
        self.bot = Bot(tmp, writer, self.log, lines, RATE)
        self.lines = len(lines)
        self.exporter = ExporterProcess(tmp, [("bob", self.log)], state_dir=tmp / "state")
        self.config = tmp / "logrotate.conf"
        self.config.write_text(logrotate_config(kind, self.log, self.bot))
        self.config.chmod(0o644)
        self.runs = 0  # rotations done
        self.last_rotation = 0.0

    # metrics

    def metric(self, name: str, **labels: str) -> float:
        return self.exporter.metrics().value(name, bot="bob", **labels)

    def read(self) -> int:
        return int(self.metric("wechaty_log_lines_total"))

    def caught_up(self, expected: int) -> bool:
        got = self.read()
        assert got <= expected, f"read {got} lines, only {expected} were written"
        return got == expected

    # setting up

    def start(self) -> None:
        self.bot.hold(answer=False)  # the bot waits until the exporter follows its log
        if self.writer == "pm2":
            if self.kind == "pm2-logrotate":
                self.install_pm2_logrotate()
            self.bot.start()
            wait_for(self.log.exists, "pm2 creating the log")
        else:
            self.log.touch()
            self.bot.start()
        self.exporter.start()
        present = {"bot": "bob", "path": str(self.log)}
        self.exporter.wait(
            lambda: self.exporter.metrics().value("wechaty_log_file_present", **present) == 1,
            "the log present",
        )
        self.bot.release()

    def install_pm2_logrotate(self) -> None:
        """pm2-logrotate as its README installs it, from the pinned package (no download):
        `pm2 set` its keys, then `pm2 install .` in its directory. Its cron waits for
        `cut_by_pm2_logrotate`; the size limit never triggers."""
        for key, value in [
            ("max_size", "1G"),
            ("workerInterval", "1"),
            ("rotateInterval", "0 0 1 1 *"),  # New Year's midnight: not during the test
            ("retain", "10"),
            ("rotateModule", "false"),
        ]:
            self.bot.pm2("set", f"pm2-logrotate:{key}", value)
        self.bot.pm2("install", ".", cwd=PM2_LOGROTATE)

    # rotating

    def logrotate(self) -> None:
        if self.kind == "dateext":  # dateformat has seconds: one rotation per second
            # 50 ms past the next second: logrotate's time() is the kernel's coarse clock,
            # which can still show the last second a few milliseconds into the next one.
            nxt = int(self.last_rotation) + 1.05
            wait_for(lambda: time.time() >= nxt, "the next second", 2)
        binary = require_binary("logrotate", "logrotate")
        state = self.tmp / "logrotate.status"
        done = subprocess.run(
            [binary, "-f", "-s", str(state), str(self.config)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"logrotate: {done.stdout}{done.stderr}"
        self.last_rotation = time.time()
        self.runs += 1

    def cut_by_pm2_logrotate(self, *, before_cut: Callable[[], None] = lambda: None) -> None:
        """The bot holds still and the exporter reads everything; then pm2-logrotate is told to
        cut at a second 3 to 4 s away (its cron expression names that second; `pm2 set`
        restarts it with the new one), and the bot goes on once the cut is made. `before_cut`
        runs once all is still (stopping the exporter)."""
        written = self.bot.hold()
        self.exporter.wait(lambda: self.caught_up(written), "caught up before the cut")
        before_cut()
        before = len(self.rotated_files())
        # `pm2 set` takes about 0.5 s, the restarted module a second more to schedule its job.
        at = int(time.time() + 2.5) + 1
        self.bot.pm2("set", "pm2-logrotate:rotateInterval", f"{at % 60} * * * * *")
        assert time.time() < at - 1.0, "pm2 set too slow: the cut's second is too close"

        def cut() -> bool:  # the copy is there and the log truncated (not only the copy begun)
            return len(self.rotated_files()) > before and self.log.stat().st_size == 0

        wait_for(cut, "pm2-logrotate's cut", timeout=at - time.time() + 5)
        self.runs += 1
        self.bot.release()

    def rotated_files(self) -> list[str]:
        return sorted(p.name for p in self.log.parent.iterdir() if p.name != self.log.name
                      and p.name.startswith(self.log.stem))  # fmt: skip

    def rotate_in_burst(self) -> None:
        """One rotation while the bot writes (held still across a copy-and-truncate)."""
        if self.kind == "pm2-logrotate":
            self.cut_by_pm2_logrotate()
        elif self.kind in CUTS:
            written = self.bot.hold()
            self.exporter.wait(lambda: self.caught_up(written), "caught up before the cut")
            self.logrotate()
            self.bot.release()
        else:
            self.logrotate()

    def rotate_while_down(self) -> None:
        """Stop the exporter, rotate, let the bot write on, start the exporter again."""

        def stop() -> None:
            assert self.exporter.stop() == 0, self.exporter.tail()

        if self.kind == "pm2-logrotate":
            self.cut_by_pm2_logrotate(before_cut=stop)
        elif self.kind in CUTS:
            written = self.bot.hold()
            self.exporter.wait(lambda: self.caught_up(written), "caught up before the cut")
            stop()
            self.logrotate()
            self.bot.release()
        else:
            stop()
            self.logrotate()
        time.sleep(DOWN)  # the bot writes on into the new file while nobody reads it
        self.exporter.start()

    def run(self) -> None:
        if self.timing == "burst":
            for k in (1, 2):  # two rotations, at a third and two thirds of the lines
                target = self.lines * k // 3
                self.exporter.wait(lambda t=target: self.read() >= t, f"{target} lines read")
                self.rotate_in_burst()
        else:
            target = self.lines // 3
            self.exporter.wait(lambda: self.read() >= target, f"{target} lines read")
            self.rotate_while_down()


def compressed_lines(directory: Path, stem: str) -> int:
    count = 0
    for path in directory.iterdir():
        if path.name.startswith(stem) and path.suffix == ".gz":
            with gzip.open(path, "rt", errors="replace") as f:
                count += sum(1 for _ in f)
    return count


@pytest.mark.parametrize(("kind", "writer", "timing"), CASES)
def test_real_rotation(
    tmp_path: Path, kind: str, writer: str, timing: str, figures: Figures
) -> None:
    require_binary("logrotate", "logrotate")
    require_binary("node", "nodejs")
    require_node_modules()
    seed = CASES.index(next(c for c in CASES if c.values == (kind, writer, timing)))
    s = Scenario(tmp_path, kind, writer, timing, seed)
    began = time.monotonic()
    try:
        s.start()
        s.run()
        record = s.bot.done()
        assert record["written"] == s.lines, record  # the bot's own record: every line out
        exporter = s.exporter
        read = settled(s, s.lines)
        assert read == s.lines, (
            f"{s.lines - read} of {s.lines} lines written never read: {LOST.get(kind, 'lost')}"
        )
        # A rotated-away file is drained for 5 s and then closed: wait for that, then one more
        # line. It is read after the close, so anything read twice is counted by then.
        exporter.wait(lambda: not rotated_away_open(exporter.pid(), s.log), "old files closed")
        append(s.log, MARKER)
        exporter.wait(lambda: s.caught_up(s.lines + 1), "the marker read")
        truth: Truth = s.truth
        got, want = observed(exporter), expected(truth, s.lines + 1)
        assert got == want, f"\nexporter: {got}\ntruth:    {want}"
        rotations = s.metric("wechaty_exporter_log_rotations_total")
        truncations = s.metric("wechaty_exporter_log_truncations_total")
        if timing == "burst":
            # A reopening writer may create the log between logrotate's rename and its create:
            # logrotate then moves that file aside to LOG-YYYYMMDDHH.backup, one rename more.
            backups = sum(name.endswith(".backup") for name in s.rotated_files())
            expected_counts = (0, s.runs) if kind in CUTS else (s.runs + backups, 0)
            assert (rotations, truncations) == expected_counts
        else:  # a cut seen at start-up is a truncation or a replacement, by the sizes
            assert rotations + truncations == s.runs
        assert s.metric("wechaty_exporter_read_errors_total") == 0
        took = time.monotonic() - began
        gz = compressed_lines(s.log.parent, s.log.stem)
        figures(
            f"{s.lines + 1} lines ({s.wrapper}), {want['logins']} logins, {want['logouts']} "
            f"logouts, {want['qr_codes']} QR codes, {s.runs} rotations by {kind} "
            f"({', '.join(s.rotated_files())}; {gz} lines gzipped), exporter saw "
            f"{rotations:.0f} rotations + {truncations:.0f} truncations: equal to the truth, "
            f"{took:.1f} s"
        )
    finally:
        s.bot.stop()
        code = s.exporter.stop()
    assert code == 0, s.exporter.tail()
    assert "Traceback" not in s.exporter.log_text()


def settled(s: Scenario, expected: int) -> int:
    """Lines read once the exporter read `expected`, or read nothing new for 2 s."""
    last, since = -1, time.monotonic()
    while True:
        read = s.read()
        assert read <= expected, f"read {read} lines, only {expected} were written"
        if read == expected:
            return read
        if read != last:
            last, since = read, time.monotonic()
        elif time.monotonic() - since > 2.0:
            return read
        time.sleep(0.05)


def observed(exporter: ExporterProcess) -> dict[str, Any]:
    doc = exporter.bots()["bob"]
    metrics = exporter.metrics()
    return {
        "lines": int(metrics.value("wechaty_log_lines_total", bot="bob")),
        "logins": doc["logins_total"],
        "logouts": doc["logouts_total"],
        "qr_codes": doc["qr_codes_total"],
        "rejected_qr": int(metrics.value("wechaty_exporter_rejected_qr_total", bot="bob")),
        "errors": int(metrics.value("wechaty_log_errors_total", bot="bob")),
        "logged_in": doc["logged_in"],
        "qr": exporter.qr("bob") if doc["qr_pending"] else None,
    }


def expected(truth: Truth, lines: int) -> dict[str, Any]:
    return {**truth.counters(), "lines": lines, "logged_in": truth.logged_in, "qr": truth.qr}
