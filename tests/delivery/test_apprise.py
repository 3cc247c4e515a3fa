"""The apprise messenger with real apprise against real loopback servers: an SMTP server (aiosmtpd)
and HTTP endpoints (aiohttp) standing in for a JSON webhook and a Gotify server.

The e-mail carries the QR PNG, which zbarimg decodes to the freshest QR; a service without
attachments gets the text saying how to get the QR instead; a channel failing transiently makes the
receiver answer 503, and the retry sends only to the channels that had not taken the message.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller
from tests.delivery.kit import QR_BOB, FakeExporter, base_settings, decode_qr, payload
from tests.helpers import free_port

from wechaty_exporter.delivery.exporter_client import Exporters
from wechaty_exporter.delivery.main import build_messenger
from wechaty_exporter.delivery.messenger_settings import MessengerSettings
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.delivery.messengers.apprise import (
    AppriseChannel,
    AppriseMessenger,
    parse_apprise,
)
from wechaty_exporter.delivery.messengers.sending import MessageRef, sending
from wechaty_exporter.delivery.receiver import REGISTRY, create_receiver_app
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.delivery.templates import Messages, default_messages, load_templates

# --- loopback services --------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An SMTP server's inbox: every message as parsed by the standard library."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@dataclass
class Hook:
    """An HTTP endpoint that answers `script` statuses in order (then 200) and records requests."""

    script: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    delay: float = 0.0
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.script.pop(0) if self.script else 200
        if status == 200:
            self.accepted.append(body)
        return web.json_response({"status": status}, status=status)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


async def _serve(hook: Hook, path: str) -> web.AppRunner:
    app = web.Application(client_max_size=8 << 20)
    app.router.add_post(path, hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.port = runner.addresses[0][1]
    return runner


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    found = Hook()
    runner = await _serve(found, "/hook")
    yield found
    await runner.cleanup()


@pytest.fixture
async def gotify() -> AsyncIterator[Hook]:
    found = Hook()
    runner = await _serve(found, "/message")
    yield found
    await runner.cleanup()


def mail_url(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=bot@example.com&to=admin@example.com"


def channels(
    value: dict[str, Any], env: dict[str, str] | None = None
) -> tuple[AppriseChannel, ...]:
    errors: list[str] = []
    found, _ = parse_apprise(value, "receiver.messenger", errors, environ=env or {})
    assert errors == []
    return found


def _attachments(message: EmailMessage) -> list[tuple[str, bytes]]:
    return [
        (part.get_filename() or "", part.get_payload(decode=True))
        for part in message.iter_attachments()
    ]


async def _receiver(
    aiohttp_client: Any,
    exporter: FakeExporter,
    messenger: AppriseMessenger,
    store: DeliveryStore,
    language: str = "en",
) -> TestClient[web.Request, web.Application]:
    settings = base_settings(exporter.url, language=language)
    app = create_receiver_app(settings, messenger, Exporters(settings, timeout=2), store)
    return await aiohttp_client(app)


async def _post(client: TestClient[web.Request, web.Application]) -> int:
    resp = await client.post(
        "/alerts", data=payload("firing"), headers={"Content-Type": "application/json"}
    )
    return resp.status


# --- the receiver through apprise ---------------------------------------------------------------


async def test_email_carries_the_png_and_a_failing_channel_is_retried_alone(
    aiohttp_client: Any,
    exporter: FakeExporter,
    mailbox: tuple[Mailbox, int],
    hook: Hook,
    tmp_path: Path,
) -> None:
    box, smtp_port = mailbox
    exporter.qrs["bob"] = QR_BOB
    found = channels({"urls": [mail_url(smtp_port), f"json://127.0.0.1:{hook.port}/hook"]})
    assert [(c.service, c.attachments) for c in found] == [("E-Mail", True), ("JSON", True)]
    store = DeliveryStore(tmp_path / "receiver.sqlite3")
    messenger = AppriseMessenger(found, timeout=10, store=store)
    client = await _receiver(aiohttp_client, exporter, messenger, store)

    hook.script = [500]  # the webhook fails once
    assert await _post(client) == 503
    assert len(box.messages) == 1  # the intro reached the mailbox; the QR was not sent yet
    assert len(hook.requests) == 1
    assert hook.accepted == []

    assert await _post(client) == 200  # Alertmanager's retry
    assert len(box.messages) == 2, "the mailbox had the intro: only the QR is new"
    intro, image = box.messages
    assert "qr bob" in intro.get_content()  # the rescue text (any language)
    assert _attachments(intro) == []
    [(filename, png)] = _attachments(image)
    assert filename == "bob-login-qr.png"
    assert decode_qr(png, tmp_path) == QR_BOB
    assert image["Subject"] == "bob: login QR"

    texts = [r for r in hook.accepted if not r["attachments"]]
    images = [r for r in hook.accepted if r["attachments"]]
    assert len(texts) == 1 and "qr bob" in texts[0]["message"]
    assert len(images) == 1
    [attached] = images[0]["attachments"]
    assert attached["mimetype"] == "image/png"
    assert decode_qr(base64.b64decode(attached["base64"]), tmp_path) == QR_BOB

    assert await _post(client) == 200  # a repeat: nothing anywhere
    assert len(box.messages) == 2
    assert len(hook.accepted) == 2
    failures = client.app[REGISTRY].get_sample_value(
        "wechaty_receiver_message_failures_total", {"kind": "transient"}
    )
    assert failures == 1.0
    await messenger.close()
    store.close()


@pytest.mark.parametrize(
    ("language", "says"),
    [("en", "status page on the exporter host"), ("zh", "此渠道不发送 bob 的登录二维码")],
)
async def test_a_service_without_attachments_gets_how_to_get_the_qr(
    aiohttp_client: Any,
    exporter: FakeExporter,
    gotify: Hook,
    tmp_path: Path,
    language: str,
    says: str,
) -> None:
    exporter.qrs["bob"] = QR_BOB
    url_file = tmp_path / "gotify-url"
    url_file.write_text(f"gotify://127.0.0.1:{gotify.port}/AbCdEfGhIjKlMnO\n")
    found = channels({"urls": [{"url_file": str(url_file)}]})
    assert [(c.service, c.attachments) for c in found] == [("Gotify", False)]
    store = DeliveryStore(tmp_path / "receiver.sqlite3")
    settings = base_settings(
        exporter.url, language=language, messenger=MessengerSettings("apprise", channels=found)
    )
    messenger = build_messenger(settings, state_dir=tmp_path, store=store)  # as the receiver does
    assert isinstance(messenger, AppriseMessenger)
    client = await _receiver(aiohttp_client, exporter, messenger, store, language=language)

    assert await _post(client) == 200
    assert [h["X-Gotify-Key"] for h in gotify.headers] == ["AbCdEfGhIjKlMnO"] * 2
    intro, instead = (r["message"] for r in gotify.accepted)
    assert "qr bob" in intro and says not in intro
    assert says in instead  # in the receiver's language
    assert "`qr bob`" in instead
    sent = " ".join(str(r) for r in gotify.accepted)
    assert QR_BOB not in sent and "IbfDrtBmzQ" not in sent  # the credential goes nowhere
    await messenger.close()
    store.close()


@pytest.mark.parametrize(
    ("language", "caption", "instead"),
    [
        ("en", "bob's login QR is attached (bob-login-qr.png): scan it with bob's WeChat.",
         "bob's login QR is not sent on this channel: it is a login credential, and this service"
         " takes no attachments. Open the status page on the exporter host, or send `qr bob` to"
         " the peer bot."),
        ("zh", "bob 的登录二维码在附件中（bob-login-qr.png）：请用 bob 的微信扫描。",
         "此渠道不发送 bob 的登录二维码：它是登录凭证，而此服务不支持附件。请打开 exporter"
         " 所在主机上的状态页，或向对端机器人发送 `qr bob`。"),
    ],
)  # fmt: skip
async def test_the_texts_around_a_qr_image_are_templates_in_the_receivers_language(
    tmp_path: Path, language: str, caption: str, instead: str
) -> None:
    got: list[tuple[str, str, bytes | None]] = []

    def notify(channel: AppriseChannel, message: Any) -> bool:
        got.append((channel.source, message.body, message.png))
        return True

    found = (
        AppriseChannel("json://127.0.0.1:1/a", "mail", attachments=True),
        AppriseChannel("json://127.0.0.1:1/b", "wecom", attachments=False),
    )
    messenger = AppriseMessenger(
        found, timeout=10, notify=notify, messages=default_messages(language)
    )
    await messenger.send_image("admin", b"PNG", bot="bob", filename="bob-login-qr.png")
    assert sorted(got) == [("mail", caption, b"PNG"), ("wecom", instead, None)]

    # An operator's override of one of them (templates_dir) is what goes out.
    root = tmp_path / "templates" / language
    root.mkdir(parents=True)
    (root / "qr_attached.txt.j2").write_text("QR {{ bot }}: {{ filename }}\n", encoding="utf-8")
    templates, problems = load_templates(tmp_path / "templates")
    assert problems == []
    got.clear()
    custom = AppriseMessenger(found, timeout=10, notify=notify,
                              messages=Messages(templates, language))  # fmt: skip
    await custom.send_image("admin", b"PNG", bot="bob", filename="bob-login-qr.png")
    assert sorted(got) == [("mail", "QR bob: bob-login-qr.png", b"PNG"), ("wecom", instead, None)]


# --- the messenger alone ------------------------------------------------------------------------


async def test_a_channel_past_its_timeout_is_recorded_when_it_finishes(
    hook: Hook, tmp_path: Path
) -> None:
    hook.delay = 1.0
    found = channels({"urls": [f"json://127.0.0.1:{hook.port}/hook"]})
    store = DeliveryStore(tmp_path / "receiver.sqlite3")
    messenger = AppriseMessenger(found, timeout=0.2, store=store)
    with sending(MessageRef("alert-1", "intro")), pytest.raises(DeliveryError) as caught:
        await messenger.send_text("admin", "hello", bot="bob")
    assert caught.value.transient
    assert "timed out after 0.2 s" in caught.value.reason
    await messenger.close()  # waits for the late send, which then counts as delivered
    assert len(hook.accepted) == 1
    with sending(MessageRef("alert-1", "intro")):
        await messenger.send_text("admin", "hello", bot="bob")  # the retry: skipped
    assert len(hook.requests) == 1
    store.close()


async def test_channels_follow_their_contacts_and_a_shared_one_takes_each_message_once(
    hook: Hook, gotify: Hook, tmp_path: Path
) -> None:
    url_file = tmp_path / "gotify-url"
    url_file.write_text(f"gotify://127.0.0.1:{gotify.port}/AbCdEfGhIjKlMnO\n")
    found = channels(
        {
            "urls": [
                f"json://127.0.0.1:{hook.port}/hook",  # everyone's
                {"url_file": str(url_file), "to": ["ops"]},
            ]
        }
    )
    messenger = AppriseMessenger(found, timeout=10)
    for to in ("admin", "ops"):
        with sending(MessageRef("alert-1", "alert")):
            await messenger.send_text(to, f"for {to}", bot="bob")
    assert [r["message"] for r in hook.accepted] == ["for admin"]
    assert [r["message"] for r in gotify.accepted] == ["for ops"]
    await messenger.send_text("admin", "a chat reply: no message id", bot="bob")
    assert len(hook.accepted) == 2
    only_ops = AppriseMessenger(found[1:], timeout=10)
    with pytest.raises(DeliveryError) as caught:
        await only_ops.send_text("admin", "nobody's", bot="bob")
    assert not caught.value.transient


# --- configuration ------------------------------------------------------------------------------


def _problems(value: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    errors: list[str] = []
    parse_apprise(value, "receiver.messenger", errors, environ=env or {})
    return errors


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123456", "AAHdqTcvCH1v"),
        ("mailtos://joe:hunter2@smtp.example.com?to=admin@example.com", "hunter2"),
        ("wecombot://a1b2c3d4-e5f6-7788-9900-aabbccddeeff", "a1b2c3d4"),
        ("dingtalk://abcdef0123456789abcdef0123456789/", "abcdef0123"),
        ("json://hooks.example.com/x?+Authorization=Bearer%20s3cr3t", "s3cr3t"),
    ],
)
def test_a_literal_url_with_a_secret_is_refused_without_quoting_it(url: str, secret: str) -> None:
    [problem] = _problems({"type": "apprise", "urls": [url]})
    assert problem.startswith("receiver.messenger.urls[0]: not accepted as a literal URL")
    assert problem.endswith("put it in a file (url_file) or an environment variable (url_env)")
    assert secret not in problem


def test_urls_from_files_and_the_environment(tmp_path: Path) -> None:
    one = tmp_path / "wecom-url"
    one.write_text("wecombot://a1b2c3d4-e5f6-7788-9900-aabbccddeeff\n")
    many = tmp_path / "urls"
    many.write_text("# the on-call channels\n\ndingtalk://abcdef0123456789abcdef/\nntfy://alerts\n")
    found = channels(
        {
            "type": "apprise",
            "urls": [
                {"url_file": str(one), "to": "ops"},
                {"url_env": "TELEGRAM_URL", "to": ["ops", "admin"]},
                "json://127.0.0.1:8080/hook",
                {"url": "ntfy://wechaty-ops-5f2c9a", "attach": False},  # text instead of the QR
            ],
            "urls_files": [str(many)],
        },
        env={"TELEGRAM_URL": "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123456"},
    )
    assert [(c.service, c.source, c.to, c.attachments) for c in found] == [
        ("WeCom Bot", f"url_file {one}", ("ops",), False),
        ("Telegram", "url_env TELEGRAM_URL", ("ops", "admin"), True),
        ("JSON", "urls[2]", (), True),
        ("ntfy", "urls[3]", (), False),
        ("DingTalk", f"{many} line 3", (), False),
        ("ntfy", f"{many} line 4", (), True),
    ]
    assert "AAHdq" not in repr(found)


def test_configuration_problems_are_each_named(tmp_path: Path) -> None:
    problems = _problems(
        {
            "type": "apprise",
            "urls": [
                "nonsense://x",
                {"url_env": "MISSING"},
                {"url_file": str(tmp_path / "absent")},
                {"url": "json://h/x", "url_env": "X"},
                {"url_env": "X", "to": []},
                42,
                {"url_env": "X", "attach": "no"},
            ],
            "urls_files": "",
            "timeout": "soon",
            "token": "abc",
        },
        env={"X": "json://127.0.0.1/x"},
    )
    assert problems == [
        "receiver.messenger.token: unknown key (known: timeout, type, urls, urls_files)",
        "receiver.messenger.urls[0]: not accepted as a literal URL: apprise does not understand"
        " this URL; put it in a file (url_file) or an environment variable (url_env)",
        "receiver.messenger.urls[1].url_env: environment variable MISSING is not set or empty",
        f"receiver.messenger.urls[2].url_file: cannot read {tmp_path / 'absent'}: No such file or"
        " directory",
        "receiver.messenger.urls[3]: set exactly one of url_file, url_env and url",
        "receiver.messenger.urls[4].to: expected a contact or a non-empty list of contacts",
        "receiver.messenger.urls[5]: expected a URL or a mapping with url_file, url_env or url",
        "receiver.messenger.urls[6].attach: expected true or false, got 'no'",
        "receiver.messenger.urls_files: expected a file path or a list of file paths",
        "receiver.messenger.timeout: expected a duration like 1s or 500ms, got 'soon'",
    ]
    assert _problems({"type": "apprise"}) == [
        "receiver.messenger: the apprise messenger needs urls or urls_files"
    ]
