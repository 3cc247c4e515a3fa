"""The receiver's store, the outbox and the self-log hold login QRs (or who got them): private.

Attacks: the receiver's SQLite files were 0644; an existing outbox kept 0644 and a symbolic link
at the outbox's path was followed (the QR images went wherever it pointed); the self-log was
opened through a link as well.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.delivery.messengers.outbox import OutboxMessenger, read_outbox
from wechaty_exporter.delivery.store import FILENAME, DeliveryStore
from wechaty_exporter.peerbot.selflog import SelfLog
from wechaty_exporter.privatefiles import UnsafePathError

PNG = b"\x89PNG\r\n\x1a\n-a-login-qr"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_store_is_created_private_even_under_a_careless_umask(tmp_path: Path) -> None:
    state_dir = tmp_path / "receiver"
    old = os.umask(0)
    try:
        store = DeliveryStore.in_state_dir(state_dir)
        store.mark_done("alert-key", 9e9)  # WAL and SHM files appear
    finally:
        os.umask(old)
    try:
        assert _mode(state_dir) == 0o700
        files = sorted(p.name for p in state_dir.iterdir())
        assert files == [FILENAME, f"{FILENAME}-shm", f"{FILENAME}-wal"]
        assert {name: _mode(state_dir / name) for name in files} == dict.fromkeys(files, 0o600)
    finally:
        store.close()


def test_an_old_0644_store_and_its_companions_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.execute("INSERT INTO t VALUES (1)")
    db.commit()
    companions = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    for p in companions:
        p.chmod(0o644)
    store = DeliveryStore(path)
    try:
        assert {p.name: _mode(p) for p in companions} == {p.name: 0o600 for p in companions}
        assert store.check()
    finally:
        store.close()
        db.close()


def test_a_link_at_the_store_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.sqlite3"
    link = tmp_path / FILENAME
    link.symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        DeliveryStore(link)
    assert not elsewhere.exists()
    wal_link = tmp_path / "b" / f"{FILENAME}-wal"
    wal_link.parent.mkdir()
    wal_link.symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        DeliveryStore(wal_link.parent / FILENAME)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777])
def test_a_receiver_state_dir_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    state_dir = tmp_path / "receiver"
    state_dir.mkdir()
    state_dir.chmod(mode)
    with pytest.raises(UnsafePathError, match=f"chmod 0700 {state_dir}"):
        DeliveryStore.in_state_dir(state_dir)
    assert list(state_dir.iterdir()) == []


def test_a_new_outbox_is_0600_and_an_old_0644_one_is_tightened(tmp_path: Path) -> None:
    new, old = tmp_path / "new.jsonl", tmp_path / "old.jsonl"
    old.write_text("")
    old.chmod(0o644)
    for path in (new, old):
        asyncio.run(OutboxMessenger(path).send_image("admin", PNG, bot="bob", filename="qr.png"))
        assert _mode(path) == 0o600
        assert read_outbox(path)[0]["type"] == "image"


def test_a_link_at_the_outbox_is_refused_and_receives_nothing(tmp_path: Path) -> None:
    loot = tmp_path / "loot.jsonl"
    loot.write_text("")
    link = tmp_path / "outbox.jsonl"
    link.symlink_to(loot)
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "not-yet")
    for path in (link, dangling):
        with pytest.raises(DeliveryError, match="symbolic link"):
            asyncio.run(OutboxMessenger(path).send_image("admin", PNG, bot="b", filename="q.png"))
    assert loot.read_text() == ""
    assert not (tmp_path / "not-yet").exists()


def test_a_hard_linked_outbox_is_refused(tmp_path: Path) -> None:
    loot = tmp_path / "loot.jsonl"
    loot.write_text("")
    os.link(loot, tmp_path / "outbox.jsonl")
    with pytest.raises(DeliveryError, match="hard links"):
        asyncio.run(OutboxMessenger(tmp_path / "outbox.jsonl").send_text("a", "hi", bot="b"))
    assert loot.read_text() == ""


def test_the_self_log_refuses_a_link_and_keeps_to_0640(tmp_path: Path) -> None:
    loot = tmp_path / "loot.log"
    loot.write_text("")
    link = tmp_path / "bob.self.log"
    link.symlink_to(loot)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        SelfLog(link).open()
    out = SelfLog(link)
    out.write("scan", {"status": 2, "qrcode": "https://login.weixin.qq.com/l/x"}, at=1.0)
    out.close()
    assert loot.read_text() == ""
    loose = tmp_path / "alice.self.log"
    loose.write_text("")
    loose.chmod(0o666)
    out = SelfLog(loose)
    out.open()
    out.close()
    assert _mode(loose) == 0o640
    fresh = tmp_path / "carol.self.log"
    out = SelfLog(fresh)
    out.open()
    out.close()
    assert _mode(fresh) == 0o640


def test_the_receiver_refuses_a_state_dir_others_can_write_at_start(tmp_path: Path) -> None:
    state_dir = tmp_path / "receiver"
    state_dir.mkdir()
    state_dir.chmod(0o777)
    run = subprocess.run(
        [
            sys.executable, "-m", "wechaty_exporter", "receiver",
            "--outbox", str(tmp_path / "outbox.jsonl"), "--state-dir", str(state_dir),
            "--web.listen-address", "127.0.0.1:0", "--exporter-url", "http://127.0.0.1:9",
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert f"{state_dir}: the directory is group- or world-writable (mode 0777)" in run.stderr
    assert f"chmod 0700 {state_dir}" in run.stderr
    assert list(state_dir.iterdir()) == []
