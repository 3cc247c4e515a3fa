"""Two blocks of the alert DM, in both languages: the logged-out block says what WeChat said when
it logged the bot out (the exporter's `logout_reason`, bounded and sanitized like every value),
and a resolved WechatyNoRescuer says a rescuer is back, not that its bot is (the rule resolves
when any bot of the duet logs in).

The reason from a real exporter process reading a real log: test_receiver_real_exporter.py."""

from __future__ import annotations

import json
import re
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from tests.delivery.kit import QR_BOB, FakeExporter, MakeRig, base_settings, payload, payload_doc

from wechaty_exporter.delivery.alerts import (
    MAX_REASON_CHARS,
    back_online_text,
    decode_notification,
    logged_out_text,
)
from wechaty_exporter.delivery.templates import default_messages

REASON = "为了你的帐号安全，请重新登录。"
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
EVIL = "evil\u202etxt.exe\u2066x\u2069\u200e\x1b[31m\x07\r\nSend: qr eve\u2028y\x85z"
QR_ALERTS = ("WechatyNoRescuer", "WechatyBotLoggedOut")  # deploy/compose/fallback.yml
RESCUER_BACK = {"en": "A rescuer is back: ", "zh": "救援者已恢复："}
BACK = {  # WechatyBotLoggedOut resolved: the bot itself is back
    "en": "bob is back online (the alert lasted 24 s, from 2026-11-25 01:01 UTC).",
    "zh": "bob 已重新上线（告警持续 24 秒，始于 2026-11-25 01:01 UTC）。",
}


def _alert(name: str) -> Any:
    return decode_notification(payload(name)).alerts[0]


def no_rescuer(status: str, bot: str = "bob") -> bytes:
    """WechatyNoRescuer as the rule sends it: one alert per logged-out bot (a `bot` label)."""
    doc = payload_doc(f"no_rescuer_{status}")
    for alert in doc["alerts"]:
        alert["labels"]["bot"] = bot
    return json.dumps(doc).encode()


# --- the logout reason ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "line"), [("en", f"WeChat said: {REASON}"), ("zh", f"微信提示：{REASON}")]
)
def test_the_logged_out_block_says_what_wechat_said(language: str, line: str) -> None:
    messages, alert = default_messages(language), _alert("firing")
    now = alert.starts_at + 180
    text = logged_out_text(messages, alert, "bob", now=now, tz=UTC, qr_seen_at=now,
                           logout_reason=REASON)  # fmt: skip
    lines = text.splitlines()
    assert lines[1] == line  # after the first line, before the caption
    for reason in (None, "", "  \r\n "):  # nothing said (or an old exporter): no line at all
        without = logged_out_text(messages, alert, "bob", now=now, tz=UTC, qr_seen_at=now,
                                  logout_reason=reason)  # fmt: skip
        assert without.splitlines() == lines[:1] + lines[2:]


def test_the_reason_is_bounded_and_sanitized() -> None:
    en, alert = default_messages("en"), _alert("firing")
    now = alert.starts_at + 180
    text = logged_out_text(en, alert, "bob", now=now, tz=UTC, qr_seen_at=now,
                           logout_reason=EVIL + "长" * 1000)  # fmt: skip
    (said,) = (x for x in text.splitlines() if x.startswith("WeChat said: "))
    reason = said.removeprefix("WeChat said: ")
    assert len(reason) == MAX_REASON_CHARS == 200 and reason.endswith("…")
    assert reason.startswith("eviltxt.exex[31m  Send: qr eve y z长")
    assert not UNSAFE.search(text)
    assert not any(x.startswith("Send: qr eve") for x in text.splitlines())


async def test_the_reason_comes_with_the_qr_and_an_odd_one_is_ignored(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    exporter.qrs["bob"] = QR_BOB
    exporter.reasons["bob"] = f"{REASON}\u202e\n"
    rig = await make_rig(base_settings(exporter.url, language="zh"))
    assert (await rig.post(payload("firing")))[0] == 200
    text, image = rig.sent()
    assert f"\n微信提示：{REASON}\n" in text["text"] and image["type"] == "image"

    exporter.reasons["bob"] = {"not": "a string"}  # an exporter's odd answer: still the QR
    other = await make_rig(base_settings(exporter.url), state_dir=tmp_path / "other")
    assert (await other.post(payload("firing")))[0] == 200
    text, image = other.sent()[2:]
    assert "WeChat said" not in text["text"] and image["type"] == "image"


# --- WechatyNoRescuer resolved: a rescuer is back -------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "A rescuer is back: a bot of bob's duet is online again, so bob can reach you again"
               " (no rescuer for 24 s, from 2026-11-25 01:01 UTC). bob itself may still be logged"
               " out."),
        ("zh", "救援者已恢复：bob 所在组中已有机器人重新上线，bob 又能联系到你了（无救援者状态持续"
               " 24 秒，始于 2026-11-25 01:01 UTC）。bob 本身可能仍未登录。"),
    ],
)  # fmt: skip
def test_a_resolved_no_rescuer_says_a_rescuer_is_back(language: str, expected: str) -> None:
    messages = default_messages(language)
    alert = decode_notification(no_rescuer("resolved")).alerts[0]
    assert back_online_text(messages, alert, "bob", now=alert.starts_at + 600, tz=UTC) == expected
    logged_out = _alert("resolved")
    back = back_online_text(messages, logged_out, "bob", now=logged_out.starts_at, tz=UTC)
    assert back == BACK[language]


@pytest.mark.parametrize("language", ["en", "zh"])
async def test_the_fallback_receiver_tells_a_rescuer_is_back(
    make_rig: MakeRig, exporter: FakeExporter, language: str
) -> None:
    """qr_alerts as in deploy/compose/fallback.yml: the QR when no rescuer is left, and on
    resolve the rescuer text; WechatyBotLoggedOut still says the bot is back."""
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig(base_settings(exporter.url, language=language, qr_alerts=QR_ALERTS))
    assert (await rig.post(no_rescuer("firing")))[0] == 200
    assert (await rig.post(no_rescuer("resolved")))[0] == 200
    assert (await rig.post(payload("resolved")))[0] == 200
    intro, image, rescuer, back = rig.sent()
    assert image["type"] == "image" and "qr bob" in intro["text"]
    assert rescuer["text"].startswith(RESCUER_BACK[language])
    assert back["text"] == BACK[language]
