"""Chat replies in the bot's receiver language (Chinese by default), and contact names or command
output that cannot carry control or bidi characters into a reply."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

import pytest
from tests.chatops.kit import ADA, OPS, SECRET, T0, ZH, code_at, make_ctx, settings, texts

from wechaty_exporter.chatops.commands import handle_message
from wechaty_exporter.chatops.model import CommandContext
from wechaty_exporter.chatops.texts import silences_text, status_text
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.templates import default_messages
from wechaty_exporter.peerbot.settings import parse_bot_settings

UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
BIDI = "\u202e\u2066\u200f\u061c"


def test_the_default_context_replies_in_chinese() -> None:
    ctx = CommandContext(settings=settings(), admins={})
    assert ctx.messages.language == "zh"


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_the_bot_replies_in_its_receiver_language(language: str) -> None:
    from wechaty_exporter.peerbot.commands import ChatCommands

    errors: list[str] = []
    bot = parse_bot_settings({"receiver": {"language": language}}, errors)
    assert errors == [] and bot is not None
    chat = ChatCommands(bot.commands, bot.receiver, resolver=None)
    try:
        assert chat.context.messages.language == language
    finally:
        await chat.close()


async def test_chinese_replies() -> None:
    ctx, audits = make_ctx(messages=ZH)
    assert texts(await handle_message(ctx, ADA, "help", T0)).splitlines()[:2] == [
        "你的机器人：alice、bob",
        "help — 本列表",
    ]
    reply = texts(await handle_message(ctx, ADA, "rescue off bob", T0))
    assert reply == "请在 1 分钟内回复 YES 以执行：rescue off bob"
    assert texts(await handle_message(ctx, ADA, "yes", T0 + 1)).startswith("已暂停对 bob 的救援")
    assert texts(await handle_message(ctx, ADA, "yes", T0 + 2)) == "没有待确认的命令。"
    assert texts(await handle_message(ctx, ADA, "no", T0 + 3)) == "没有可取消的命令。"
    assert (
        texts(await handle_message(ctx, ADA, "reboot", T0))
        == "未知命令“reboot”。发送 help 查看可用命令。"
    )
    assert (
        texts(await handle_message(ctx, OPS, "qr bob", T0))
        == "未知的机器人“bob”。你的机器人：alice"
    )
    assert texts(await handle_message(ctx, ADA, "status", T0)) == "status：没有配置导出器。"
    reply = texts(await handle_message(ctx, ADA, "silence bob 9999h", T0))
    assert reply == "silence：时长须在 1 分钟到 7 天之间"
    assert (
        texts(await handle_message(ctx, ADA, "log bob 0", T0))
        == "用法：log <机器人> [行数]：行数须为正整数"
    )
    assert [o for _, o in audits.outcomes()] == [
        "ok", "pending", "ok", "usage", "usage", "usage", "forbidden", "forbidden", "usage",
        "usage",
    ]  # fmt: skip


async def test_chinese_totp_replies() -> None:
    ctx, _ = make_ctx(messages=ZH, settings=settings(totp_secret=SECRET))
    reply = texts(await handle_message(ctx, ADA, "rescue off bob", T0))
    assert reply == "rescue 需要身份验证器应用中的验证码：rescue off bob 123456"
    wrong = f"{(int(code_at(T0)) + 1) % 1_000_000:06d}"
    reply = texts(await handle_message(ctx, ADA, f"rescue off bob {wrong}", T0))
    assert reply == "验证码错误，未执行任何操作（还可尝试 4 次）。"


def status_doc(**changes: Any) -> dict[str, Any]:
    doc = {
        "bot": "bob", "logged_in": False, "qr_pending": True, "since": "2023-11-14T22:10:00Z",
        "qr_seen_at": "2023-11-14T22:10:01Z", "last_error": "2023-11-14T22:09:00Z",
        "log_files": [{"path": "/var/log/bob.log", "present": False}],
    }  # fmt: skip
    doc.update(changes)
    return doc


def test_status_in_chinese() -> None:
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    docs = [status_doc(), status_doc(bot="alice", logged_in=True, user="Alice", qr_pending=False,
                                     last_error=None, log_files=[])]  # fmt: skip
    text = status_text(
        docs, ["alice", "bob", "carol"], now=now, tz=UTC, paused=["bob"], messages=ZH
    )
    assert text.splitlines() == [
        "alice：已登录（账号 Alice），自 2023-11-14 22:10 UTC 起（3 分钟前）",
        "bob：已掉线，自 2023-11-14 22:10 UTC 起（3 分钟前）",
        "  二维码等待扫描，自 2023-11-14 22:10 UTC 起（3 分钟前）；发送：qr bob",
        "  最近的错误行：2023-11-14 22:09 UTC（4 分钟前）",
        "  日志文件缺失：/var/log/bob.log",
        "  救援已暂停（发送 rescue on bob 恢复）",
        "carol：不在导出器的监控中",
    ]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_contact_names_and_fields_cannot_carry_control_or_bidi_characters(language: str) -> None:
    messages = default_messages(language)
    evil = f"Al{BIDI}ice\x07\x1b[2J\r\nbob: logged in"
    docs = [status_doc(bot="bob", logged_in=True, user=evil, qr_pending=False)]
    text = status_text(docs, ["bob"], now=T0, tz=UTC, messages=messages)
    assert not UNSAFE.search(text)
    assert "Alice" in text
    assert not any(line.startswith("bob: logged in") for line in text.splitlines()[1:])

    class Silence:
        id = f"3f2a{BIDI}"
        ends_at = T0 + 3600
        created_by = evil
        comment = f"moving{BIDI}\nhouse"
        state = "active"

        def equal_value(self, label: str) -> str:
            return "bob"

    text = silences_text([Silence()], now=T0, tz=UTC, messages=messages)
    assert not UNSAFE.search(text)
    assert "moving house" in text and "3f2a" in text


async def test_a_sender_cannot_put_bidi_characters_into_a_reply() -> None:
    ctx, _ = make_ctx()
    reply = texts(await handle_message(ctx, ADA, f"qr b{BIDI}ob", T0))
    assert reply == "Unknown bot 'bob'. Your bots: alice, bob"
    reply = texts(await handle_message(ctx, ADA, f"silence bob 2{BIDI}h", T0))
    assert not UNSAFE.search(reply)


def test_receiver_settings_messages_follow_the_language() -> None:
    assert ReceiverSettings(language="en").messages.language == "en"
    assert ReceiverSettings().messages.language == "zh"
