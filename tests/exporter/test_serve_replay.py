"""`serve` after a cold start and `replay` say the same about the sample logs, field by field.

A real `wechaty-exporter serve` (no state dir: a cold start) and `wechaty-exporter replay
--format json` read copies of both sample logs. Everything about the bot's login agrees; the
counters differ only as docs/exporter.md says they must: a cold start counts from the last
decisive entry it replayed, and `counting_since` says so (null for replay: the whole file).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.exporter.test_restart import Exporter

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "wechaty_exporter" / "samples"
AGREE = ("user", "logged_in", "qr_pending", "last_login", "last_logout", "since",
         "qr_seen_at", "last_error", "logout_reason")  # fmt: skip
COUNTERS = ("logins_total", "logouts_total", "qr_codes_total")


def copies(tmp_path: Path) -> dict[str, Path]:
    logs = tmp_path / "logs"
    logs.mkdir()
    return {bot: Path(shutil.copy2(SAMPLES / f"{bot}.log", logs)) for bot in ("alice", "bob")}


def replay(logs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "wechaty_exporter", "replay", "--format", "json",
         *(f"{bot}={path}" for bot, path in logs.items())],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {doc["bot"]: doc for doc in json.loads(done.stdout)["bots"]}


def served(exporters: Callable[..., Exporter], logs: dict[str, Path], *args: str) -> Exporter:
    exporter = exporters(*(a for bot, p in logs.items() for a in ("--log", f"{bot}={p}")), *args)
    exporter.start()
    return exporter


def bots(exporter: Exporter) -> dict[str, dict[str, Any]]:
    return {doc["bot"]: doc for doc in exporter.get("/api/v1/bots")["bots"]}


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_cold_start_agrees_with_replay(tmp_path: Path, exporters: Callable[..., Exporter]) -> None:
    logs = copies(tmp_path)
    expected = replay(logs)
    got = bots(served(exporters, logs))
    assert set(got) == set(expected) == {"alice", "bob"}
    for bot in ("alice", "bob"):
        for name in AGREE:
            assert got[bot][name] == expected[bot][name], f"{bot}: {name}"
        assert expected[bot]["counting_since"] is None  # replay counts the whole file
    assert got["bob"]["user"] == "wxid_bob" and got["bob"]["logged_in"] is False
    # bob's logout said why; the QR after it is all the cold start replays, the reason is kept.
    assert got["bob"]["logout_reason"] == "kicked by another device"
    assert got["alice"]["logout_reason"] is None  # logged in

    # The counters, where they must differ. bob: the last decisive entry is the QR after the
    # logout, so the cold start counts that QR, not the login and logout before it.
    assert [expected["bob"][c] for c in COUNTERS] == [1, 1, 1]
    assert [got["bob"][c] for c in COUNTERS] == [0, 0, 1]
    assert got["bob"]["counting_since"] == got["bob"]["qr_seen_at"]
    # alice: the last decisive entry is the login; the QR scanned before it is not counted.
    # Its lines carry no date: they are stamped with the file's mtime, in both.
    assert [expected["alice"][c] for c in COUNTERS] == [1, 0, 1]
    assert [got["alice"][c] for c in COUNTERS] == [1, 0, 0]
    assert ts(got["alice"]["counting_since"]) == pytest.approx(logs["alice"].stat().st_mtime)


def test_a_resumed_exporter_keeps_counting_since(
    tmp_path: Path, exporters: Callable[..., Exporter]
) -> None:
    logs = copies(tmp_path)
    state = str(tmp_path / "state")
    first = served(exporters, logs, "--state-dir", state)
    before = bots(first)
    first.stop()
    again = bots(served(exporters, logs, "--state-dir", state))
    for bot in ("alice", "bob"):
        assert again[bot]["counting_since"] == before[bot]["counting_since"] is not None
        assert [again[bot][c] for c in COUNTERS] == [before[bot][c] for c in COUNTERS]
        assert again[bot]["user"] == before[bot]["user"]


def test_status_page_says_since_when_it_counts(
    tmp_path: Path, exporters: Callable[..., Exporter]
) -> None:
    page = served(exporters, copies(tmp_path)).get("/")
    assert "0 logins · 0 logouts · 1 QR" in page and "counted since" in page
