"""`logout_reason` in `GET /api/v1/bots` and on the status page; never on /metrics.

A real `wechaty-exporter serve` follows a log of wechaty-plugin-contrib 1.12's EventLogger: the
reason WeChat gave (its own words) is in the API while the bot is logged out, is kept in the state
file across a restart, and is null again once the bot logs in. The status page shows it escaped
and bounded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.exporter.test_restart import Exporter
from tests.helpers import append

from wechaty_exporter.exporter.collector import BotView, FileView
from wechaty_exporter.exporter.statuspage import REASON_SHOWN, render_status_page
from wechaty_exporter.logs.state import BotState

REASON = "为了你的帐号安全，请重新登录。"
QR = "https://login.weixin.qq.com/l/IdReasonApi=="
ELP = "INFO WechatyPluginContrib EventLoggerPlugin()"
CONTACT = '{"_events":{},"_eventsCount":0,"id":"wxid_bob","payload":{"id":"wxid_bob","name":"Bob"}}'
NOW = 1_800_000_000.0


def test_the_api_says_why_the_bot_logged_out(
    tmp_path: Path, exporters: Callable[..., Exporter]
) -> None:
    log, state = tmp_path / "bob.log", tmp_path / "state"
    append(log, f"09:00:00 {ELP} login: [{CONTACT}]")
    first = exporters("--log", f"bob={log}", "--state-dir", str(state))
    first.start()
    first.wait_for(lambda: first.bob()["logged_in"] is True, "logged in")
    assert first.bob()["logout_reason"] is None
    append(log, f'10:00:00 {ELP} logout: [{CONTACT},"{REASON}"]',
           f'10:00:01 {ELP} scan: ["{QR}",2,null]')  # fmt: skip
    first.wait_for(lambda: first.bob()["qr_pending"], "QR pending")
    bob = first.bob()
    assert (bob["logged_in"], bob["user"], bob["logout_reason"]) == (False, "Bob", REASON)
    assert REASON not in first.get("/metrics")  # never a label
    assert REASON in first.get("/")
    first.stop()

    second = exporters("--log", f"bob={log}", "--state-dir", str(state))
    second.start()
    assert second.bob()["logout_reason"] == REASON  # from the state file
    saved = json.loads((state / "exporter-state.json").read_text("utf-8"))
    assert saved["bots"]["bob"]["logout_reason"] == REASON
    append(log, f'10:05:00 {ELP} scan: ["{QR}",4,null]', f"10:05:01 {ELP} login: [{CONTACT}]")
    second.wait_for(lambda: second.bob()["logged_in"] is True, "logged in again")
    assert second.bob()["logout_reason"] is None


def test_replay_shows_the_field(tmp_path: Path) -> None:
    log = tmp_path / "bob.log"
    append(log, f"09:00:00 {ELP} login: [{CONTACT}]", f'10:00:00 {ELP} logout: [{CONTACT},"k"]')
    done = subprocess.run(
        [sys.executable, "-m", "wechaty_exporter", "replay", "--format", "json", str(log)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout)["bots"][0]["logout_reason"] == "k"
    append(log, f"11:00:00 {ELP} login: [{CONTACT}]")
    done = subprocess.run(
        [sys.executable, "-m", "wechaty_exporter", "replay", "--format", "json", str(log)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    doc = json.loads(done.stdout)["bots"][0]
    assert "logout_reason" in doc and doc["logout_reason"] is None


def _view(state: BotState) -> BotView:
    return BotView("bob", state, (FileView("/var/log/bob.log", True, 0, 0, 0, 0),))


def test_the_status_page_escapes_and_bounds_the_reason() -> None:
    hostile = "<script>alert(1)</script>&" + "长" * 1000
    state = BotState(logged_in=False, known=True, since=NOW - 60, logout_reason=hostile)
    page = render_status_page([_view(state)], show_qr=True, version="1", now=NOW)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in page
    assert "长" * (REASON_SHOWN - 27) + "…" in page and "长" * (REASON_SHOWN - 26) not in page
    assert "logout reason" in page

    state = BotState(logged_in=False, known=True, since=NOW - 60, logout_reason=REASON)
    page = render_status_page([_view(state)], show_qr=True, version="1", now=NOW)
    assert f'<span class="reason">{REASON}</span>' in page
    # no reason, no row
    page = render_status_page([_view(BotState(logged_in=True))], show_qr=True, version="1")
    assert "logout reason" not in page
