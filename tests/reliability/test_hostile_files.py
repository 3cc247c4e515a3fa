"""Hostile logs against the real exporter process: 10 MB lines, invalid UTF-8, and a path that is
a directory, a FIFO or unreadable. Each must give one clear log line and a metric, never a crash,
a hang, or a stuck /-/ready; the other bot of the same exporter must not notice.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from tests.reliability.conftest import Figures
from tests.reliability.kit import (
    Effect,
    ExporterProcess,
    Observed,
    Truth,
    caught_up,
    explain,
    rss_kib,
)

from wechaty_exporter.logs.replay import replay_file
from wechaty_exporter.logs.state import BotState

MIB = 1 << 20
QR = "https://login.weixin.qq.com/l/hostile01"


def write(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def replayed(path: Path) -> Observed:
    """`wechaty-exporter replay` over the file, with the same 64 KiB line cap: not the judge
    (that is the test's own record, a kit.Truth), only a hint at where a failure lies."""
    state = BotState()
    replay_file(state, str(path))
    return Observed.of_state(state)


def test_ten_megabyte_lines_and_invalid_utf8(tmp_path: Path, figures: Figures) -> None:
    log = tmp_path / "bob.log"
    log.write_bytes(b"")
    exporter = ExporterProcess(tmp_path, [("bob", log)], state_dir=tmp_path / "state").start()
    try:
        before = rss_kib(exporter.pid())
        junk = b"x" * MIB
        peak = before

        def sample() -> None:
            nonlocal peak
            peak = max(peak, rss_kib(exporter.pid()))

        truth = Truth()  # the oracle: what each line written says, recorded as it is written
        # A 10 MB scan line whose QR the 64 KiB cap cuts: a rejected QR, never a truncated one.
        write(log, f"10:00:00 INFO StarterBot onScan: Waiting(2) - {QR}".encode())
        for _ in range(10):
            write(log, junk)
            sample()
        write(log, b"\n")
        truth.see(Effect("rejected"))
        # A 10 MB chat line with what looks like a login at its very end (beyond the cap).
        write(log, b"10:00:01 INFO StarterBot Message#Text[\xf0\x9f\x97\xa3Contact<Eve>]\t")
        for _ in range(10):
            write(log, junk)
            sample()
        write(log, b" Contact<Eve> login\n")
        truth.see(Effect("chat"))
        # A 10 MB pm2 JSON line: cut, so not JSON, so not an event.
        write(log, b'{"message":"10:00:02 INFO StarterBot Contact<Eve> login\\n' + junk * 10)
        write(log, b'","timestamp":"2026-11-25T02:00:02.000Z","app_name":"bob","process_id":0}\n')
        truth.see(Effect("chat"))
        # Invalid UTF-8 everywhere: in chat, in a user name, in a QR, alone, with NULs and CRs.
        # The last QR comes while logged in: logged out by it, but no logout is counted.
        write(
            log,
            b"10:00:03 INFO StarterBot Message#Text[\xff\xfe]\t\xc3\x28 \xa0\xa1 \xed\xa0\x80\n"
            b"10:00:04 INFO StarterBot Contact<B\xffob> logout\n"
            b"10:00:04 INFO StarterBot Contact<B\xffob> login\n"
            b"10:00:05 INFO StarterBot onScan: Waiting(2) - https://login.weixin.qq.com/l/\xff\n"
            b"\xff\xff\xff\xff\n"
            b"\x00\x00\x00 10:00:06 ERR StarterBot \x00 boom\r\n"
            b"10:00:07 ERR StarterBot \x00 boom\r\n"
            b"10:00:08 INFO StarterBot onScan: Waiting(2) - " + QR.encode() + b"\r\n",
        )
        truth.see(Effect("chat"))
        truth.see(Effect("logout"))
        truth.see(Effect("login", user="B\ufffdob"))  # each bad byte becomes U+FFFD
        truth.see(Effect("rejected"))  # a QR with U+FFFD in it is no WeChat URL
        truth.see(Effect("chat"))
        truth.see(Effect("chat"))  # NULs before the time: not a log line, so no ERR either
        truth.see(Effect("error"))
        truth.see(Effect("waiting", QR))
        lines = truth.lines
        exporter.wait(lambda: sample() or caught_up(exporter, lines), "every line read", timeout=30)
        sample()
        got, want = Observed.of_exporter(exporter, "bob"), truth.observed()
        assert got == want, explain(got, want, replayed(log))
        assert (got.logged_in, got.qr, got.user) == (False, QR, "B\ufffdob")
        assert (got.logins, got.logouts, got.qr_codes, got.errors) == (1, 1, 1, 1)
        assert got.rejected == 2  # the cut QR and the one with an invalid byte
        metrics = exporter.metrics()
        assert metrics.value("wechaty_exporter_log_lines_cut_total", bot="bob") == 3
        assert metrics.value("wechaty_exporter_read_errors_total", bot="bob") == 0
        cut = [line for line in exporter.log_text().splitlines() if "was cut" in line]
        assert len(cut) == 1 and " WARNING " in cut[0], cut  # logged once, then counted
        growth = (peak - before) // 1024
        assert growth < 48, f"RSS grew {growth} MiB while reading 30 MB of overlong lines"
        figures(
            f"3 lines of 10 MiB + {lines - 3} lines of invalid UTF-8: state equal to the oracle, "
            f"3 lines cut (1 warning logged), 2 QRs rejected, exporter RSS {before // 1024} MiB "
            f"-> peak {peak // 1024} MiB (+{growth} MiB)",
            long_lines=3,
            bad_lines=lines - 3,
            cut=3,
            rejected=got.rejected,
            rss_before_mib=before // 1024,
            rss_peak_mib=peak // 1024,
        )
    finally:
        code = exporter.stop()
    assert code == 0
    assert "Traceback" not in exporter.log_text()


def _unprivileged() -> list[str]:
    """Root reads mode-000 files anyway: run the exporter without CAP_DAC_* (setpriv)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def _make(kind: str, path: Path) -> str:
    """Put `kind` at path; returns what the exporter's warning must say."""
    if kind == "directory":
        path.mkdir()
        return "is a directory, not a regular file"
    if kind == "fifo":
        os.mkfifo(path)
        return "is a FIFO, not a regular file"
    path.write_text("10:00:00 INFO StarterBot Contact<Bob> login\n")
    path.chmod(0)
    return "permission denied"


def _unmake(kind: str, path: Path) -> None:
    if kind == "directory":
        path.rmdir()
    elif kind == "fifo":
        path.unlink()
    else:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.mark.parametrize("kind", ["directory", "fifo", "unreadable"])
def test_log_that_is_not_a_readable_file(tmp_path: Path, kind: str, figures: Figures) -> None:
    bob, alice = tmp_path / "bob.log", tmp_path / "alice.log"
    alice.write_text("")
    said = _make(kind, bob)
    exporter = ExporterProcess(
        tmp_path,
        [("bob", bob), ("alice", alice)],
        state_dir=tmp_path / "state",
        wrapper=_unprivileged(),
    )
    exporter.start()  # ready: a FIFO used to block the start-up scan forever
    try:

        def metric(name: str, **labels: str) -> float:
            return exporter.metrics().value(name, **labels)

        exporter.wait(
            lambda: metric("wechaty_exporter_read_errors_total", bot="bob") == 1, "read error"
        )
        assert metric("wechaty_log_file_present", bot="bob", path=str(bob)) == 0
        warnings = [
            line
            for line in exporter.log_text().splitlines()
            if " WARNING " in line and str(bob) in line and said in line
        ]
        assert len(warnings) == 1, exporter.tail()
        # The other bot is followed as if nothing happened.
        alice.write_text("10:00:00 INFO StarterBot Contact<Alice> login\n")
        exporter.wait(lambda: exporter.bots()["alice"]["logged_in"] is True, "alice logged in")

        _unmake(kind, bob)
        if kind != "unreadable":
            bob.write_text("10:00:00 INFO StarterBot Contact<Bob> login\n")
        exporter.wait(lambda: exporter.bots()["bob"]["logged_in"] is True, "bob readable again")
        assert metric("wechaty_log_file_present", bot="bob", path=str(bob)) == 1
        assert metric("wechaty_exporter_read_errors_total", bot="bob") == 1, "counted once"
        text = exporter.log_text()
        assert "Traceback" not in text
        assert re.search(rf"{re.escape(str(bob))}: readable again", text)
        figures(f"{kind}: ready at once, 1 warning ({said!r}), read_errors_total 1, recovered")
    finally:
        code = exporter.stop()  # a FIFO used to keep the process from stopping, too
    assert code == 0
