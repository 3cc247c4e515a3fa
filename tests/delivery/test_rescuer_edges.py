"""Edge rules of the rescuer's dedupe, driven directly (no HTTP) with a test clock.

The rule held here (delivery/rescuer.py, `deliver_alert`): a *firing* copy of an alert whose
*resolved* notification was already delivered is dropped, even when ordinary dedupe (the firing's
own key: fingerprint | firing | startsAt) would let it through — because the firing itself was
never delivered here, or because its own record expired before the resolve's did. Without the
rule the admin gets a QR (and a "logged out" text) for a bot that is back online.

In tests/delivery/test_receiver_http.py the late firing copy is the same payload as the firing
delivered before it, so ordinary dedupe drops it first and that test cannot tell the rule is
there; in each test below the firing's own key is provably not done when the copy arrives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from wechaty_exporter.delivery.alerts import Alert, decode_notification
from wechaty_exporter.delivery.exporter_client import PendingQr
from wechaty_exporter.delivery.guard_settings import RateLimitSettings
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.delivery.metrics import ReceiverMetrics
from wechaty_exporter.delivery.rescuer import Outcome, Rescuer
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore

PAYLOADS = Path(__file__).parent / "payloads"
QR = "https://login.weixin.qq.com/l/IbfDrtBmzQ=="
STARTS_AT = 1795568519.715  # firing.json's startsAt
TTL = 600.0


def alert(name: str, **changes: Any) -> Alert:
    """The one alert of a captured Alertmanager payload, with fields of the alert replaced."""
    doc = json.loads((PAYLOADS / f"{name}.json").read_bytes())
    doc["alerts"][0].update(changes)
    (decoded,) = decode_notification(json.dumps(doc).encode()).alerts
    return decoded


@dataclass
class Messenger:
    """Records what it accepted; refuses everything (transiently) while `down`."""

    name: str = "test"
    down: bool = False
    sent: list[tuple[str, str]] = field(default_factory=list)  # (type, text or filename)

    async def send_text(self, to: str, text: str, *, bot: str) -> None:
        if self.down:
            raise DeliveryError("peer bot offline", transient=True)
        self.sent.append(("text", text))

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None:
        if self.down:
            raise DeliveryError("peer bot offline", transient=True)
        self.sent.append(("image", filename))

    async def close(self) -> None:
        return None


class QrSource:
    async def pending_qr(self, bot: str) -> PendingQr | None:
        return PendingQr(bot, QR, "Waiting", STARTS_AT + 60)


@dataclass
class Clock:
    now: float = STARTS_AT + 180

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Rig:
    rescuer: Rescuer
    messenger: Messenger
    store: DeliveryStore
    clock: Clock
    registry: CollectorRegistry

    async def deliver(self, item: Alert) -> Outcome:
        return (await self.rescuer.deliver_alert(item)).outcome

    def dropped(self) -> float:
        return self.registry.get_sample_value("wechaty_receiver_dedupe_hits_total") or 0.0


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    settings = ReceiverSettings(
        exporter_url="http://127.0.0.1:9",
        admins=(("bob", ("wxid_admin",)),),
        dedupe_ttl=TTL,
        qr_wait=0.0,
        rate_limit=RateLimitSettings(burst=100, per_hour=100000, max_hold=0),
        language="en",
    )
    registry = CollectorRegistry()
    store = DeliveryStore.in_state_dir(tmp_path / "state")
    messenger, clock = Messenger(), Clock()
    rescuer = Rescuer(
        settings, messenger, QrSource(), store, ReceiverMetrics(registry),
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    yield Rig(rescuer, messenger, store, clock, registry)
    store.close()


async def test_a_firing_retry_after_its_resolve_is_dropped_though_it_was_never_delivered(
    rig: Rig,
) -> None:
    """Alertmanager's retry of a firing that failed meets the resolve delivered meanwhile."""
    firing, resolved = alert("firing"), alert("resolved")
    rig.messenger.down = True
    assert await rig.deliver(firing) is Outcome.TRANSIENT_FAILURE  # answered 503: AM retries
    rig.messenger.down = False
    rig.clock.now += 30
    assert await rig.deliver(resolved) is Outcome.DELIVERED
    assert [kind for kind, _ in rig.messenger.sent] == ["text"]  # back online
    rig.clock.now += 10
    # Ordinary dedupe cannot drop the retry: the firing was never delivered here.
    assert not rig.store.is_done(firing.dedupe_key, rig.clock())
    assert await rig.deliver(firing) is Outcome.DUPLICATE
    assert [kind for kind, _ in rig.messenger.sent] == ["text"]  # no QR for a bot back online
    assert rig.dropped() == 1


async def test_a_firing_copy_arriving_after_its_resolve_is_dropped(rig: Rig) -> None:
    """The HA pair: one member's resolve arrives before the other member's stale firing."""
    firing, resolved = alert("firing"), alert("resolved")
    assert await rig.deliver(resolved) is Outcome.DELIVERED
    assert not rig.store.is_done(firing.dedupe_key, rig.clock())
    assert await rig.deliver(firing) is Outcome.DUPLICATE
    assert len(rig.messenger.sent) == 1
    assert rig.messenger.sent[0][1].startswith("bob is back online")
    assert rig.dropped() == 1


async def test_a_firing_copy_outliving_its_own_record_is_dropped_while_the_resolve_is_fresh(
    rig: Rig,
) -> None:
    firing, resolved = alert("firing"), alert("resolved")
    assert await rig.deliver(firing) is Outcome.DELIVERED
    rig.clock.now += TTL - 10
    assert await rig.deliver(resolved) is Outcome.DELIVERED
    rig.clock.now += 20  # the firing's record expired, the resolve's has TTL - 20 s to go
    assert not rig.store.is_done(firing.dedupe_key, rig.clock())
    assert await rig.deliver(firing) is Outcome.DUPLICATE
    assert [kind for kind, _ in rig.messenger.sent] == ["text", "image", "text"]
    assert rig.dropped() == 1


async def test_a_new_episode_after_a_resolve_is_delivered(rig: Rig) -> None:
    """Another startsAt is another alert: the resolve of the last one does not hold it back."""
    assert await rig.deliver(alert("resolved")) is Outcome.DELIVERED
    later = alert("firing", startsAt="2026-11-25T02:00:00.000Z")
    assert await rig.deliver(later) is Outcome.DELIVERED
    assert [kind for kind, _ in rig.messenger.sent] == ["text", "text", "image"]
    other = alert("firing", fingerprint="0123456789abcdef")
    assert await rig.deliver(other) is Outcome.DELIVERED
    assert rig.dropped() == 0


async def test_a_firing_after_its_resolve_expired_is_delivered(rig: Rig) -> None:
    assert await rig.deliver(alert("resolved")) is Outcome.DELIVERED
    rig.clock.now += TTL + 1
    assert await rig.deliver(alert("firing")) is Outcome.DELIVERED
    assert rig.dropped() == 0


async def test_a_resolve_after_a_resolve_is_a_plain_duplicate(rig: Rig) -> None:
    assert await rig.deliver(alert("resolved")) is Outcome.DELIVERED
    assert await rig.deliver(alert("resolved")) is Outcome.DUPLICATE
    assert len(rig.messenger.sent) == 1
    assert rig.dropped() == 1
