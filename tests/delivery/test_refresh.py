"""The QR refresher (delivery/refresh.py) on a test clock: no sleeping.

A newer QR goes to the admins who had the old one once `interval` passed, at most `max` per
outage, never twice (restarts and receivers sharing a store included), and never after the bot is
logged in or its alert resolved. The rescuer opens the outage when it delivers a QR.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from tests.delivery.kit import QR_BOB, QR_BOB_NEWER, Clock, MakeRig, decode_qr, payload

from wechaty_exporter.delivery.alerts import decode_notification
from wechaty_exporter.delivery.exporter_client import ExporterError, PendingQr
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.delivery.messengers.sending import current
from wechaty_exporter.delivery.metrics import ReceiverMetrics
from wechaty_exporter.delivery.refresh import QrRefresher, qr_hash, refresh_text, watch_outage
from wechaty_exporter.delivery.refresh_settings import QrRefreshSettings
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.delivery.templates import load_templates

QR_BOB_NEWEST = "https://login.weixin.qq.com/l/Qm9iTmV3ZXN0"
ALERT = decode_notification(payload("firing")).alerts[0]


@dataclass
class Source:
    """The exporters as the refresher sees them: a QR per bot, whether each is logged in."""

    qrs: dict[str, str] = field(default_factory=dict)
    logged_in: dict[str, bool] = field(default_factory=dict)
    down: bool = False
    asked: int = 0

    async def pending_qr(self, bot: str) -> PendingQr | None:
        self.asked += 1
        if self.down:
            raise ExporterError("connection refused")
        qr = self.qrs.get(bot)
        return None if qr is None else PendingQr(bot, qr, "Waiting", 1795568600.0)

    async def bots(self) -> list[dict[str, Any]]:
        return [{"bot": bot, "logged_in": state} for bot, state in self.logged_in.items()]


@dataclass
class Phone:
    """A messenger recording what each admin got (and the message ref it was sent under)."""

    got: list[tuple[str, str, Any]] = field(default_factory=list)
    fail: list[DeliveryError] = field(default_factory=list)  # raised by the next sends
    name: str = "phone"

    async def send_text(self, to: str, text: str, *, bot: str) -> None:
        self._next()
        self.got.append((to, "text", text))

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None:
        self._next()
        ref = current()
        assert ref is not None
        self.got.append((to, "image", png))

    async def close(self) -> None:
        return None

    def _next(self) -> None:
        if self.fail:
            raise self.fail.pop(0)


@dataclass
class Rig:
    store: DeliveryStore
    source: Source
    phone: Phone
    clock: Clock
    registry: CollectorRegistry
    refresher: QrRefresher

    def refreshes(self, bot: str = "bob") -> float:
        value = self.registry.get_sample_value("wechaty_receiver_qr_refreshes_total", {"bot": bot})
        return value or 0.0


def _rig(
    tmp_path: Path, *, store: DeliveryStore | None = None, language: str = "zh", **limits: Any
) -> Rig:
    settings = replace(
        ReceiverSettings(), qr_refresh=QrRefreshSettings(**limits), language=language
    )
    registry = CollectorRegistry()
    clock = Clock()
    store = store or DeliveryStore(tmp_path / "receiver.sqlite3")
    source, phone = Source(qrs={"bob": QR_BOB}), Phone()
    refresher = QrRefresher(
        settings, phone, source, store, ReceiverMetrics(registry), clock=clock, sleep=clock.sleep
    )
    return Rig(store, source, phone, clock, registry, refresher)


def _open(rig: Rig, recipients: tuple[str, ...] = ("wxid_admin",)) -> None:
    watch_outage(rig.store, ALERT, "bob", recipients, QR_BOB, now=rig.clock())


async def test_a_newer_qr_goes_out_once_the_interval_passed(tmp_path: Path) -> None:
    rig = _rig(tmp_path, interval=60.0)
    _open(rig)
    assert await rig.refresher.tick() == 0  # the QR delivered is still the freshest
    rig.source.qrs["bob"] = QR_BOB_NEWER
    rig.clock.now += 30
    assert await rig.refresher.tick() == 0  # newer, but within the interval
    assert rig.phone.got == []
    rig.clock.now += 30
    assert await rig.refresher.tick() == 1
    [(to, kind, text), (to2, kind2, png)] = rig.phone.got
    assert (to, kind, to2, kind2) == ("wxid_admin", "text", "wxid_admin", "image")
    # The receiver's language (zh, the default), its timezone (UTC, the default).
    assert text == (
        "bob 显示了新的登录二维码（显示于 2026-11-25 01:03 UTC），之前发送的已失效。"
        "请用 bob 的微信扫描这一个。"
    )
    assert decode_qr(png, tmp_path) == QR_BOB_NEWER
    assert rig.refreshes() == 1.0
    [outage] = rig.store.outages(rig.clock())
    assert (outage.qr_hash, outage.refreshes) == (qr_hash(QR_BOB_NEWER), 1)
    rig.clock.now += 600
    assert await rig.refresher.tick() == 0  # the same QR again: nothing
    assert len(rig.phone.got) == 2


async def test_the_refresh_text_is_a_template_in_the_receivers_language(tmp_path: Path) -> None:
    rig = _rig(tmp_path, interval=10.0, language="en")
    _open(rig)
    rig.source.qrs["bob"] = QR_BOB_NEWER
    rig.clock.now += 10
    assert await rig.refresher.tick() == 1
    (_, kind, text), _image = rig.phone.got
    assert (kind, text) == ("text", (
        "bob showed a newer login QR (shown 2026-11-25 01:03 UTC); the one sent before no "
        "longer works. Scan this one with bob's WeChat."
    ))  # fmt: skip
    root = tmp_path / "templates"
    (root / "en").mkdir(parents=True)
    (root / "en" / "qr_refresh.txt.j2").write_text("{{ bot }}: new QR {{ shown_at }}\n")
    templates, problems = load_templates(root)
    assert problems == []
    custom = replace(rig.refresher.settings, templates=templates)
    assert refresh_text(custom.messages, "bob", seen_at=None, tz=UTC) == "bob: new QR"


async def test_at_most_max_per_outage(tmp_path: Path) -> None:
    rig = _rig(tmp_path, interval=10.0, max=2)
    _open(rig)
    for n in range(4):
        rig.source.qrs["bob"] = f"https://login.weixin.qq.com/l/n{n}"
        rig.clock.now += 10
        await rig.refresher.tick()
    assert rig.refreshes() == 2.0
    assert [kind for _, kind, _ in rig.phone.got] == ["text", "image"] * 2
    asked = rig.source.asked
    await rig.refresher.tick()
    assert rig.source.asked == asked, "a spent budget asks the exporter nothing"


async def test_login_or_the_resolved_alert_ends_the_outage(tmp_path: Path) -> None:
    rig = _rig(tmp_path, interval=10.0)
    _open(rig)
    del rig.source.qrs["bob"]  # scanned: no QR pending, but not logged in yet
    rig.source.logged_in["bob"] = False
    rig.clock.now += 10
    await rig.refresher.tick()
    assert len(rig.store.outages(rig.clock())) == 1
    rig.source.logged_in["bob"] = True
    await rig.refresher.tick()
    assert rig.store.outages(rig.clock()) == []

    _open(rig)  # the next outage; its resolved notification was delivered here
    rig.store.mark_done(ALERT.resolved_key, rig.clock() + 3600)
    rig.source.qrs["bob"] = QR_BOB_NEWER
    rig.clock.now += 60
    assert await rig.refresher.tick() == 0
    assert rig.store.outages(rig.clock()) == []
    assert rig.phone.got == []


async def test_a_restart_or_a_second_receiver_on_the_store_does_not_repeat_it(
    tmp_path: Path,
) -> None:
    rig = _rig(tmp_path, interval=10.0)
    _open(rig)
    rig.source.qrs["bob"] = QR_BOB_NEWER
    rig.clock.now += 10
    # The HA twin shares the state dir: same store file, its own process and phone.
    twin = _rig(tmp_path, store=DeliveryStore(tmp_path / "receiver.sqlite3"), interval=10.0)
    twin.source.qrs["bob"] = QR_BOB_NEWER
    twin.clock.now = rig.clock.now
    assert await rig.refresher.tick() == 1
    assert await twin.refresher.tick() == 0
    assert twin.phone.got == []
    assert len(rig.phone.got) == 2
    # A restart mid-send (the row not yet updated) claims nothing twice either.
    rig.store.open_outage(replace(rig.store.outages(rig.clock())[0], qr_hash=qr_hash(QR_BOB)))
    restarted = _rig(tmp_path, store=DeliveryStore(tmp_path / "receiver.sqlite3"), interval=10.0)
    restarted.source.qrs["bob"] = QR_BOB_NEWER
    restarted.clock.now = rig.clock.now
    assert await restarted.refresher.tick() == 0
    assert restarted.phone.got == []


async def test_a_failed_send_is_retried_without_repeating_what_went_out(tmp_path: Path) -> None:
    rig = _rig(tmp_path, interval=10.0)
    _open(rig, ("wxid_admin", "wxid_ops"))
    rig.source.qrs["bob"] = QR_BOB_NEWER
    rig.clock.now += 10
    # admin: the text goes out, the image fails; ops is tried all the same.
    original = rig.phone.send_image
    calls = 0

    async def image_fails_once(to: str, png: bytes, *, bot: str, filename: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise DeliveryError("puppet offline")
        await original(to, png, bot=bot, filename=filename)

    rig.phone.send_image = image_fails_once  # type: ignore[method-assign]
    assert await rig.refresher.tick() == 0
    assert [(to, kind) for to, kind, _ in rig.phone.got] == [
        ("wxid_admin", "text"),
        ("wxid_ops", "text"),
        ("wxid_ops", "image"),
    ]
    assert await rig.refresher.tick() == 0  # backing off after a failure
    rig.clock.now += 10
    assert await rig.refresher.tick() == 1
    assert [(to, kind) for to, kind, _ in rig.phone.got[3:]] == [("wxid_admin", "image")]
    assert rig.refreshes() == 1.0


async def test_an_unreachable_exporter_or_max_zero_sends_nothing(tmp_path: Path) -> None:
    rig = _rig(tmp_path, interval=10.0)
    _open(rig)
    rig.source.down = True
    rig.clock.now += 60
    assert await rig.refresher.tick() == 0
    errors = rig.registry.get_sample_value("wechaty_receiver_exporter_errors_total")
    assert errors == 1.0
    off = _rig(tmp_path, max=0)
    await off.refresher.run()  # returns at once: refresh is off


@pytest.mark.parametrize("delivered", [True, False])
async def test_the_rescuer_opens_an_outage_once_the_qr_is_delivered(
    make_rig: MakeRig, exporter: Any, delivered: bool
) -> None:
    exporter.qrs["bob"] = QR_BOB
    if not delivered:
        exporter.fail_status = 500
    rig = await make_rig()
    status, _ = await rig.post(payload("firing"))
    outages = rig.store.outages(rig.clock())
    if delivered:
        assert status == 200
        [outage] = outages
        assert (outage.bot, outage.recipients) == ("bob", ("wxid_admin",))
        assert outage.qr_hash == qr_hash(QR_BOB)
        assert outage.resolved_key == ALERT.resolved_key
    else:
        assert status == 503
        assert outages == []
