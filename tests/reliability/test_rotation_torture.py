"""Rotation torture through the real exporter process (after grok_exporter's scenario matrix).

writer {keeps its file open, reopens it per line} × rotation {rename + create, rename and create
later, copytruncate, truncate in place (pm2 flush), delete and recreate, symlink flipped} ×
timing {idle, mid-burst at 10 000 lines/s}: 24 scenarios. Each one runs
`python -m wechaty_exporter serve` on one log, writes 2 000 lines of the torture pattern around
one rotation, and then requires the exporter's state (API, QR endpoint, /metrics) to equal the
oracle: the writer's own record of what its lines say (kit.Truth), not a replay through the
exporter's parser and state machine, so a bug there fails here too.

Nothing may be read twice, not even when the exporter closes the rotated-away file after its
5 s drain: each scenario waits until the exporter no longer holds that file open, then writes
one more line and waits for it. That line is read after the close, so whatever the close would
add has arrived by then; only then are the counts compared.

copytruncate and truncate lose whatever the exporter had not read when the file is cut (the
bytes are in log.1 or gone): logrotate's race, not one a reader can close. Those two scenarios
therefore wait, mid-burst too, until the exporter has read everything before they cut, and the
writer writes nothing between the copy and the truncate.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from tests.reliability.conftest import Figures
from tests.reliability.kit import (
    Background,
    ExporterProcess,
    Writer,
    caught_up,
    lines_read,
    open_inodes,
)

ROTATIONS = [
    "rename_create",
    "rename_create_later",
    "copytruncate",
    "truncate",
    "delete_recreate",
    "symlink_flip",
]
LINES = 2000
RATE = 10_000.0  # lines per second
LATE = 50  # lines a keep-open writer still writes to the rotated file before it reopens


def touch(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))


class Scenario:
    """One log, one writer, one exporter; `rotate` performs the rotation kind."""

    def __init__(self, tmp_path: Path, rotation: str, keep_open: bool, idle: bool) -> None:
        self.tmp = tmp_path
        self.rotation = rotation
        self.idle = idle
        logs = tmp_path / "logs"
        logs.mkdir()
        self.log = logs / "bob.log"
        if rotation == "symlink_flip":
            (tmp_path / "targets").mkdir()
            touch(tmp_path / "targets" / "a.log")
            self.log.symlink_to(tmp_path / "targets" / "a.log")
        else:
            touch(self.log)
        self.writer = Writer(self.log, keep_open=keep_open)
        self.exporter = ExporterProcess(tmp_path, [("bob", self.log)], state_dir=tmp_path / "st")
        self.old: tuple[int, int] | None = None  # the file rotated away: (device, inode)

    def metric(self, name: str) -> float:
        return self.exporter.metrics().value(name, bot="bob")

    def present(self) -> float:
        return self.exporter.metrics().value(
            "wechaty_log_file_present", bot="bob", path=str(self.log)
        )

    def noticed(self, name: str) -> None:
        """Idle timing: nothing is written until the exporter noticed the rotation by itself."""
        if self.idle:
            self.exporter.wait(lambda: self.metric(name) >= 1, f"{name} counted")

    def rotate(self) -> None:
        writer, log = self.writer, self.log
        st = os.stat(log)  # through the symlink: the file the exporter reads now
        self.old = (st.st_dev, st.st_ino)
        if self.rotation in ("copytruncate", "truncate"):
            # The known race: lines the exporter has not read when the file is cut are lost.
            self.exporter.wait(lambda: caught_up(self.exporter, writer.count), "caught up")
            if self.rotation == "copytruncate":
                shutil.copyfile(log, log.with_name("bob.log.1"))
            os.truncate(log, 0)
            self.noticed("wechaty_exporter_log_truncations_total")
            return
        if self.rotation == "symlink_flip":  # the way `ln -sfn` + `mv -T` does it: atomically
            (self.tmp / "targets2").mkdir()
            b_log = self.tmp / "targets2" / "b.log"
            touch(b_log)
            (self.tmp / "link.tmp").symlink_to(b_log)
            os.replace(self.tmp / "link.tmp", log)
        elif self.rotation == "delete_recreate":
            log.unlink()
            touch(log)
        else:
            log.rename(log.with_name("bob.log.1"))
            if self.rotation == "rename_create":
                touch(log)
        if self.rotation != "rename_create_later":
            self.noticed("wechaty_exporter_log_rotations_total")
        if writer.keep_open:  # it goes on writing to the old file until it reopens (SIGHUP)
            writer.write(LATE, rate=RATE)
        if self.rotation == "rename_create_later":
            if self.idle:
                self.exporter.wait(lambda: self.present() == 0, "the file missing")
            else:
                time.sleep(0.05)  # the path names nothing for a while, mid-burst
        writer.reopen()  # a reopen-per-line writer creates the file with its next line


@pytest.mark.parametrize("timing", ["idle", "burst"])
@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("keep_open", [True, False], ids=["keep-open", "reopen"])
def test_rotation_matrix(
    tmp_path: Path, keep_open: bool, rotation: str, timing: str, figures: Figures
) -> None:
    s = Scenario(tmp_path, rotation, keep_open, idle=timing == "idle")
    exporter, writer = s.exporter, s.writer
    exporter.start()
    try:
        exporter.wait(lambda: s.present() == 1, "the log present")
        half = LINES // 2

        def burst() -> None:
            writer.write(half, rate=RATE)
            if s.idle:
                exporter.wait(lambda: caught_up(exporter, writer.count), "caught up before")
            s.rotate()
            writer.write(LINES - half, rate=RATE)

        if s.idle:
            burst()
        else:
            thread = Background(burst)
            thread.start()
            thread.join()
        exporter.wait(lambda: caught_up(exporter, writer.count), "every line read")
        truncated = rotation in ("copytruncate", "truncate")
        if not truncated:  # the rotated-away file is drained for 5 s, then closed
            exporter.wait(lambda: s.old not in open_inodes(exporter.pid()), "the old file closed")
        writer.write(1)  # the marker: read after the close, so anything read twice is in by now
        exporter.wait(lambda: caught_up(exporter, writer.count), "the marker line read")
        assert lines_read(exporter) == writer.count, "a line was read twice"

        want = writer.check(exporter, f"{rotation}, {timing}, keep_open={keep_open}")
        rotations = s.metric("wechaty_exporter_log_rotations_total")
        truncations = s.metric("wechaty_exporter_log_truncations_total")
        assert (rotations, truncations) == ((0, 1) if truncated else (1, 0))
        assert s.metric("wechaty_exporter_read_errors_total") == 0
        assert s.present() == 1
        figures(
            f"{writer.count} lines, {want.logins} logins, {want.logouts} logouts, "
            f"{want.qr_codes} QR codes, {want.errors} errors, {want.rejected} forged QRs: "
            "equal to the oracle",
            lines=writer.count,
            logins=want.logins,
            logouts=want.logouts,
            qr_codes=want.qr_codes,
            errors=want.errors,
            rejected=want.rejected,
        )
    finally:
        writer.close()
        code = exporter.stop()
    assert code == 0, exporter.tail()
    assert "Traceback" not in exporter.log_text()
