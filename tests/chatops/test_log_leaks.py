"""`log <bot>` leaks nothing: no puppet token, no QR, and not without a YES (or a code).

The attack: the admin's WeChat account is borrowed (an unlocked phone, a logged-in desktop
client) or the admin forwards a reply; `log bob` returned the bob's puppet token and the login
QR URL as plain text. The log is a real file holding genuine lines (python-wechaty's sample
log, the peer bot's own debug lines before the hpack fix); the handler is the real one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.chatops.kit import ADA, SECRET, T0, code_at, make_ctx, settings, texts

from wechaty_exporter.chatops.commands import handle_message
from wechaty_exporter.chatops.redact import QR_REDACTED, REDACTED
from wechaty_exporter.chatops.runner import LocalRunner
from wechaty_exporter.chatops.settings import CommandsSettings

REPO = Path(__file__).resolve().parents[2]
TOKEN = "Zebra-Kettle-7q9"  # bob's puppet token: no generic pattern catches it
EXPORTER_TOKEN = "qr-token-4f0c2b"
QR_ID = "4ZqF9mXwTg"  # in samples/bob.log

DEBUG_LINES = [
    "2026-12-02 09:20:07,020 - PuppetService - WARNING - there are endpoint<127.0.0.1:37713> and "
    f"token<{TOKEN}>, and the endpoint will be used for service ...",
    f"2026-12-02 09:20:07,023 DEBUG hpack.hpack: Adding b':authority'=b'{TOKEN}' to the header "
    "table, sensitive:False, huffman:True",
    f"2026-12-02 09:20:08,001 DEBUG aiohttp.client: GET /api/v1/bots/bob/qr?token={EXPORTER_TOKEN}",
    "x" * 380 + f" authority {TOKEN} after the cut",  # clipped at 400 characters: mid-token
]


@pytest.fixture
def bob_log(tmp_path: Path) -> Path:
    log = tmp_path / "bob.log"
    sample = (REPO / "src/wechaty_exporter/samples/bob.log").read_text(encoding="utf-8")
    log.write_text(sample + "\n".join(DEBUG_LINES) + "\n", encoding="utf-8")
    return log


def log_settings(log: Path, **changes: Any) -> CommandsSettings:
    return settings(log_files=(("bob", (log,)),), known_secrets=(TOKEN, EXPORTER_TOKEN), **changes)


def assert_clean(reply: str) -> None:
    assert reply.startswith("bob.log, last 11 lines:\n"), reply
    for leak in (TOKEN, TOKEN[:6], EXPORTER_TOKEN, QR_ID, "login.weixin.qq.com", "wechaty.js.org"):
        assert leak not in reply
    assert f"qrcode='{QR_REDACTED}'" in reply
    assert f"or you can scan qrcode from: {QR_REDACTED}" in reply
    assert f"token<{REDACTED}>" in reply
    assert f"=b'{REDACTED}' to the header table" in reply
    # the rest reads as before
    assert "receive <login> event <EventLoginPayload(contact_id='wxid_bob')>" in reply
    assert "endpoint<127.0.0.1:37713>" in reply


async def test_log_asks_for_yes_and_shows_no_secret(bob_log: Path) -> None:
    ctx, audits = make_ctx(settings=log_settings(bob_log), logs=LocalRunner())
    assert texts(await handle_message(ctx, ADA, "log bob 50", T0)) == (
        "Reply YES within 1 min to run: log bob 50"
    )
    assert audits.last().outcome == "pending"
    reply = texts(await handle_message(ctx, ADA, "YES", T0 + 5))
    assert_clean(reply)
    assert audits.last().outcome == "ok"


async def test_log_needs_a_code_with_totp(bob_log: Path) -> None:
    ctx, _ = make_ctx(settings=log_settings(bob_log, totp_secret=SECRET), logs=LocalRunner())
    reply = texts(await handle_message(ctx, ADA, "log bob 50", T0))
    assert reply == "log needs a code from your authenticator app: log bob 50 123456"
    reply = texts(await handle_message(ctx, ADA, f"log bob 50 {code_at(T0)}", T0))
    assert_clean(reply)
    assert SECRET not in reply


async def test_log_blanks_the_environment_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a user's own bot (`ExporterPlugin`) the puppet token is python-wechaty's, from its
    environment variable: that one is blanked too."""
    env_token = "Plain-Words-Token-Here"
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", env_token)
    log = tmp_path / "bob.log"
    log.write_text(f"10:00:00 INFO PuppetService endpoint and {env_token}\n", encoding="utf-8")
    ctx, _ = make_ctx(
        settings=settings(log_files=(("bob", (log,)),), security=(("log", "none"),)),
        logs=LocalRunner(),
    )
    reply = texts(await handle_message(ctx, ADA, "log bob", T0))
    assert reply.endswith(f"10:00:00 INFO PuppetService endpoint and {REDACTED}"), reply


async def test_log_overridden_to_none_still_redacts(bob_log: Path) -> None:
    commands = replace(log_settings(bob_log), security=(("log", "none"),))
    ctx, _ = make_ctx(settings=commands, logs=LocalRunner())
    assert_clean(texts(await handle_message(ctx, ADA, "log bob 50", T0)))
