"""`alerts`, `silence`, `silences`, `unsilence` and `ack` against the real Alertmanager (0.25, API
v2) on a loopback port. Each test names its own bots, so they share one Alertmanager."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tests.chatops.kit import ADA, OPS, SECRET, STRANGER, code_at, make_ctx, settings, texts
from tests.integration.harness import Alertmanager, free_port

from wechaty_exporter.chatops.alertmanager import AlertmanagerClient, Matcher, rfc3339
from wechaty_exporter.chatops.commands import handle_message
from wechaty_exporter.chatops.handlers import expire_resolved_acks

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
async def am(real_alertmanager: Alertmanager) -> AsyncIterator[AlertmanagerClient]:
    client = AlertmanagerClient(real_alertmanager.url)
    yield client
    await client.close()


def new_bot() -> str:
    return f"bot-{secrets.token_hex(4)}"


async def post_alerts(url: str, *alerts: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/v2/alerts", json=list(alerts)) as resp,
    ):
        assert resp.status == 200, await resp.text()


def logged_out(bot: str, starts_at: float, ends_at: float | None = None) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {"alertname": "WechatyBotLoggedOut", "bot": bot, "severity": "critical"},
        "annotations": {"summary": f"WeChat bot {bot} is logged out"},
        "startsAt": rfc3339(starts_at),
    }
    if ends_at is not None:
        alert["endsAt"] = rfc3339(ends_at)
    return alert


async def test_silence_created_listed_expired(am: AlertmanagerClient) -> None:
    bot, other = new_bot(), new_bot()
    ctx, audits = make_ctx(
        admins={bot: ("ada_weixin",), other: ("wxid_ops",)},
        settings=settings(totp_secret=SECRET),
        alertmanager=am,
    )
    now = time.time()
    assert await handle_message(ctx, STRANGER, f"silence {bot} 2h {code_at(now)}", now) == []
    assert await am.silences([Matcher("bot", bot)]) == []

    reply = texts(
        await handle_message(ctx, ADA, f"silence {bot} 2h Moving house {code_at(now)}", now)
    )
    assert reply.startswith(f"Silenced {bot} for 2 h, until ")
    found = UUID.search(reply)
    assert found is not None
    silence_id = found.group()

    silence = await am.silence(silence_id)
    assert silence is not None
    assert silence.matchers == (Matcher("bot", bot),)
    assert (silence.created_by, silence.comment, silence.state) == (
        "Ada Admin",
        "Moving house",
        "active",
    )
    assert silence.ends_at == pytest.approx(now + 7200, abs=1)

    listing = texts(await handle_message(ctx, ADA, "silences", now + 1))
    assert listing.splitlines()[0].startswith(f"{silence_id} {bot} until ")
    assert listing.splitlines()[0].endswith(" by Ada Admin")
    assert listing.splitlines()[1] == "  Moving house"
    assert silence_id not in texts(await handle_message(ctx, OPS, "silences", now + 1))

    # Another admin's bot: not theirs to end, whatever code they bring.
    reply = texts(
        await handle_message(ctx, OPS, f"unsilence {silence_id} {code_at(now + 30)}", now + 2)
    )
    assert reply == f"'{silence_id}' is no active silence of your bots. Send: silences"
    assert (await am.silence(silence_id)).state == "active"  # type: ignore[union-attr]

    # The code Ada used is spent; the next step's code works (a unique prefix is enough).
    reply = texts(await handle_message(ctx, ADA, f"unsilence {silence_id} {code_at(now)}", now + 3))
    assert reply.startswith("That code was already used")
    next_code = code_at(now + 60)
    reply = texts(
        await handle_message(ctx, ADA, f"unsilence {silence_id[:8]} {next_code}", now + 31)
    )
    assert reply == f"Silence {silence_id} of {bot} expired."
    assert (await am.silence(silence_id)).state == "expired"  # type: ignore[union-attr]
    assert texts(await handle_message(ctx, ADA, "silences", now + 32)) == "No silences."

    assert [(r.command, r.outcome) for r in audits.records] == [
        ("silence", "ignored"),
        ("silence", "ok"),
        ("silences", "ok"),
        ("silences", "ok"),
        ("unsilence", "usage"),
        ("unsilence", "replayed"),
        ("unsilence", "ok"),
        ("silences", "ok"),
    ]
    assert audits.records[1].detail == f"silence {silence_id}"


async def test_alerts_and_ack_until_resolved(
    am: AlertmanagerClient, real_alertmanager: Alertmanager
) -> None:
    bot, stranger_bot = new_bot(), new_bot()
    ctx, audits = make_ctx(admins={bot: ("wxid_admin01",)}, alertmanager=am)
    now = time.time()
    started = now - 120
    await post_alerts(
        real_alertmanager.url, logged_out(bot, started), logged_out(stranger_bot, now)
    )

    reply = texts(await handle_message(ctx, ADA, "alerts", now))
    assert reply.splitlines()[0].startswith(f"WechatyBotLoggedOut {bot}: since ")
    assert "(2 min ago)" in reply.splitlines()[0]
    assert reply.splitlines()[1] == f"  WeChat bot {bot} is logged out"
    assert stranger_bot not in reply

    assert "Reply YES" in texts(await handle_message(ctx, ADA, f"ack {bot}", now))
    reply = texts(await handle_message(ctx, ADA, "YES", now + 1))
    assert reply.startswith(f"Acknowledged WechatyBotLoggedOut for {bot}: silenced until resolved")
    found = UUID.search(reply)
    assert found is not None
    ack_id = found.group()
    ack = await am.silence(ack_id)
    assert ack is not None
    assert ack.matchers == (Matcher("bot", bot),)
    assert ack.comment == "[ack] until resolved: WechatyBotLoggedOut"
    assert ack.ends_at == pytest.approx(now + 86400, abs=2)

    assert await expire_resolved_acks(am) == []  # still firing
    await post_alerts(real_alertmanager.url, logged_out(bot, started, ends_at=time.time() - 1))
    assert await am.alerts([Matcher("bot", bot)]) == []
    assert await expire_resolved_acks(am) == [ack_id]
    assert (await am.silence(ack_id)).state == "expired"  # type: ignore[union-attr]

    assert texts(await handle_message(ctx, ADA, "alerts", now + 2)) == "No alerts firing."
    await handle_message(ctx, ADA, f"ack {bot}", now + 3)
    assert texts(await handle_message(ctx, ADA, "yes", now + 4)) == f"Nothing is firing for {bot}."
    assert [(r.command, r.outcome) for r in audits.records] == [
        ("alerts", "ok"),
        ("ack", "pending"),
        ("ack", "ok"),
        ("alerts", "ok"),
        ("ack", "pending"),
        ("ack", "ok"),
    ]


async def test_alerts_filter_by_receiver(
    am: AlertmanagerClient, real_alertmanager: Alertmanager
) -> None:
    name = f"Routing{secrets.token_hex(3)}"
    now = time.time()
    await post_alerts(
        real_alertmanager.url,
        {"labels": {"alertname": name, "bot": "bob"}, "startsAt": rfc3339(now)},
        {"labels": {"alertname": name, "bot": "alice"}, "startsAt": rfc3339(now)},
    )
    only = [Matcher("alertname", name)]
    to_alice = await am.alerts(only, receiver="peer-alice")  # alerts about bob go to alice
    assert [a.labels["bot"] for a in to_alice] == ["bob"]
    assert to_alice[0].receivers == ("peer-alice",)
    assert [a.labels["bot"] for a in await am.alerts(only, receiver="peer-bob")] == ["alice"]
    assert len(await am.alerts([f'alertname="{name}"', 'bot=~"al.*"'])) == 1  # text form


async def test_alertmanager_down_is_reported() -> None:
    client = AlertmanagerClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    try:
        ctx, audits = make_ctx(alertmanager=client)
        reply = texts(await handle_message(ctx, ADA, "silences", 100.0))
    finally:
        await client.close()
    assert reply.startswith("silences: failed: GET http://127.0.0.1:")
    assert (audits.last().outcome, audits.last().command) == ("failed", "silences")
