"""The state file holds pending login QRs: nobody else may receive, plant or swap one.

Attacks: a symbolic link planted at the temporary path received the whole state, QR included;
a planted state file's non-WeChat QR was served after a restart; the state dir was made 0755 and
a group- or world-writable one was used as it was.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wechaty_exporter.exporter import statefile
from wechaty_exporter.exporter.files import cursor_at
from wechaty_exporter.exporter.monitor import Monitor
from wechaty_exporter.exporter.settings import ExporterSettings
from wechaty_exporter.logs.events import ScanStatus
from wechaty_exporter.logs.state import BotState, PendingQr
from wechaty_exporter.privatefiles import UnsafePathError

QR = "https://login.weixin.qq.com/l/IbfDrtBmzQ=="
PHISH = "https://open.weixin.qq.com/connect/qrconnect?appid=wxATTACKER&redirect_uri=x"


def _waiting(qr: str) -> BotState:
    return BotState(logged_in=False, known=True, qr=PendingQr(qr, ScanStatus.WAITING, 1.0))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_link_planted_at_the_old_temporary_path_receives_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    loot = tmp_path / "loot"
    loot.write_text("")
    for name in (statefile.FILENAME + ".tmp", "." + statefile.FILENAME + ".tmp"):
        (state_dir / name).symlink_to(loot)
    statefile.write(state_dir, statefile.encode({"bob": _waiting(QR)}, {}))
    assert loot.read_text() == ""
    target = state_dir / statefile.FILENAME
    assert target.is_file() and not target.is_symlink()
    assert _mode(target) == 0o600
    assert QR in target.read_text()


def test_a_link_planted_at_the_state_file_is_replaced_not_followed(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    loot = tmp_path / "loot"
    loot.write_text("")
    (state_dir / statefile.FILENAME).symlink_to(loot)
    # Read through the link: refused (moved aside), never taken as this exporter's state.
    loot.write_text(statefile.encode({"bob": _waiting(QR)}, {}).decode())
    assert statefile.load(state_dir).bots == {}
    assert (state_dir / (Path(statefile.FILENAME).stem + ".corrupt")).is_symlink()
    loot.write_text("")
    statefile.write(state_dir, statefile.encode({"bob": _waiting(QR)}, {}))
    assert loot.read_text() == ""
    assert not (state_dir / statefile.FILENAME).is_symlink()


def test_the_state_dir_is_made_0700_and_the_file_0600(tmp_path: Path) -> None:
    old = os.umask(0)  # even a careless umask gives nobody else access
    try:
        state_dir = tmp_path / "a" / "state"
        statefile.write(state_dir, statefile.encode({"bob": _waiting(QR)}, {}))
    finally:
        os.umask(old)
    assert _mode(state_dir) == 0o700
    assert _mode(state_dir / statefile.FILENAME) == 0o600
    assert [p.name for p in state_dir.iterdir()] == [statefile.FILENAME]  # no temporary left


def test_an_old_loose_state_file_is_tightened_when_read(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    path = state_dir / statefile.FILENAME
    path.write_bytes(statefile.encode({"bob": _waiting(QR)}, {}))
    path.chmod(0o644)
    assert statefile.load(state_dir).bots["bob"].qr is not None
    assert _mode(path) == 0o600


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722, 0o1777])
def test_a_state_dir_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state_dir.chmod(mode)
    data = statefile.encode({"bob": _waiting(QR)}, {})
    with pytest.raises(UnsafePathError) as info:
        statefile.write(state_dir, data)
    assert "group- or world-writable" in str(info.value)
    assert f"chmod 0700 {state_dir}" in str(info.value)
    with pytest.raises(UnsafePathError):
        statefile.load(state_dir)
    assert list(state_dir.iterdir()) == []


def test_a_state_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    not_dir = tmp_path / "state"
    not_dir.write_text("")
    with pytest.raises(FileExistsError):
        statefile.write(not_dir, b"{}")


def test_a_planted_foreign_qr_is_dropped_on_load_and_counted(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    statefile.write(
        state_dir,
        statefile.encode(
            {"bob": _waiting(PHISH), "eve": _waiting("https://evil.example/l/x"),
             "alice": _waiting(QR)},
            {},
        ),
    )  # fmt: skip
    saved = statefile.load(state_dir)
    assert saved.bots["bob"].qr is None and saved.bots["bob"].rejected_qr_total == 1
    assert saved.bots["eve"].qr is None and saved.bots["eve"].rejected_qr_total == 1
    assert saved.bots["alice"].qr == PendingQr(QR, ScanStatus.WAITING, 1.0)
    assert saved.bots["alice"].rejected_qr_total == 0
    # A custom shape keeps a custom QR; the defaults do not.
    custom = "https://qr.example.org/l/Abc"
    statefile.write(state_dir, statefile.encode({"bob": _waiting(custom)}, {}))
    assert statefile.load(state_dir).bots["bob"].qr is None
    kept = statefile.load(state_dir, ["example.org"], ["https://qr.example.org/l/{id}"])
    assert kept.bots["bob"].qr is not None


def test_a_planted_state_file_serves_no_foreign_qr_after_a_restart(tmp_path: Path) -> None:
    """The exporter itself: a restart on a planted state file (its cursor at the log's end, so
    the log does not overwrite the QR) has no QR pending, and counts the rejected one."""
    log = tmp_path / "bob.log"
    log.write_text("10:00:00 INFO StarterBot Contact<Bob> logout\n")
    fd = os.open(log, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        cursor = cursor_at(fd, st, st.st_size)
    finally:
        os.close(fd)
    state_dir = tmp_path / "state"
    state = _waiting(PHISH)
    state.qr_codes_total = 1
    statefile.write(state_dir, statefile.encode({"bob": state}, {str(log): ("bob", cursor)}))
    monitor = Monitor(
        ExporterSettings(bots=(("bob", (str(log),)),), state_dir=state_dir), use_inotify=False
    )
    starts = monitor.recover()
    assert starts[str(log)] == cursor  # resumed from the planted file, not cold
    assert monitor.pending_qr("bob") is None
    assert monitor.bots["bob"].rejected_qr_total == 1


def test_stale_temporaries_are_removed_on_load(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    stale = state_dir / f".{statefile.FILENAME}.0123456789abcdef.tmp"
    stale.write_bytes(statefile.encode({"bob": _waiting(QR)}, {}))
    legacy = state_dir / f"{statefile.FILENAME}.tmp"
    legacy.write_bytes(stale.read_bytes())
    other = state_dir / "keep.tmp"
    other.write_text("")
    statefile.load(state_dir)
    assert not stale.exists() and not legacy.exists() and other.exists()
