"""A newer login QR while the outage lasts: sent by the receiver itself, within limits.

WeChat replaces a login QR every few minutes, so the one the rescue delivered stops working
while the admin is away. Once the rescuer delivered a bot's QR to every admin, it records an
outage in the delivery store (`watch_outage`: the alert, the admins, the hash of the QR sent).
`QrRefresher.run` then asks the bot's exporter every `receiver.qr_refresh.poll` whether a
different QR is pending and, when one is and `interval` has passed since the last QR went out,
sends it (a short text, then the image) to the same admins. At most `max` refreshes per outage.

The outage ends when the alert's resolved notification was delivered here (its resolved key is
done in the store), when the exporter says the bot is logged in, or after a day.

Dedupe: each refresh is keyed by (bot, hash of the QR): per admin, a claim in the store is taken
before sending (`DeliveryStore.claim`, atomic), so the same QR never goes to an admin twice, not
after a restart, and not from two receivers sharing one state dir (an Alertmanager HA pair's
receivers on one host). Two receivers with separate state dirs each send it once. A failed send
releases its claim and is tried again at the next poll; the messages of it already accepted are
not repeated (per-message ids, and per channel for the apprise messenger).

Time is injected (`clock`, `sleep`): `tick` is one pass, testable without sleeping.
"""

from __future__ import annotations

import hashlib
import logging
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from datetime import tzinfo
from typing import Any, Protocol

from wechaty_exporter.delivery.alerts import Alert
from wechaty_exporter.delivery.chattext import format_time
from wechaty_exporter.delivery.exporter_client import ExporterError, PendingQr
from wechaty_exporter.delivery.messengers import DeliveryError, Messenger
from wechaty_exporter.delivery.messengers.sending import MessageRef, sending
from wechaty_exporter.delivery.metrics import ReceiverMetrics
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore, Outage
from wechaty_exporter.delivery.templates import Messages
from wechaty_exporter.qrimage import qr_png

__all__ = ["OUTAGE_TTL", "BotSource", "QrRefresher", "qr_hash", "refresh_text", "watch_outage"]

log = logging.getLogger(__name__)

OUTAGE_TTL = 24 * 3600.0  # an outage nobody resolved is forgotten after a day
RETRY_AFTER_FAILURE = 30.0  # at most this long before a failed refresh is tried again


class BotSource(Protocol):
    """What the refresher asks the exporters (`exporter_client.Exporters` has both)."""

    async def pending_qr(self, bot: str) -> PendingQr | None: ...

    async def bots(self) -> list[dict[str, Any]]: ...


def qr_hash(qrcode: str) -> str:
    """A QR payload's short hash: refresh keys and the store never hold the credential."""
    return hashlib.sha256(qrcode.encode("utf-8")).hexdigest()[:16]


def watch_outage(
    store: DeliveryStore,
    alert: Alert,
    bot: str,
    recipients: Sequence[str],
    qrcode: str,
    *,
    now: float,
) -> None:
    """The rescuer delivered `qrcode` to every admin in `recipients`: watch for newer ones."""
    store.open_outage(
        Outage(
            bot=bot,
            alert_key=alert.dedupe_key,
            resolved_key=alert.resolved_key,
            recipients=tuple(recipients),
            qr_hash=qr_hash(qrcode),
            sent_at=now,
            expires_at=now + OUTAGE_TTL,
        )
    )


def refresh_text(messages: Messages, bot: str, *, seen_at: float | None, tz: tzinfo) -> str:
    """The caption sent right before a refreshed QR (the `qr_refresh.txt.j2` template)."""
    shown_at = format_time(seen_at, tz) if seen_at is not None else ""
    return messages.render("qr_refresh.txt.j2", bot=bot, shown_at=shown_at)


class QrRefresher:
    """Sends newer QRs for the outages in the store; `run` polls until cancelled."""

    def __init__(
        self,
        settings: ReceiverSettings,
        messenger: Messenger,
        exporter: BotSource,
        store: DeliveryStore,
        metrics: ReceiverMetrics,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        rescue_enabled: Callable[[str], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.messages = settings.messages  # the receiver's language and templates
        self.limits = settings.qr_refresh
        self.messenger = messenger
        self.exporter = exporter
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.rescue_enabled = rescue_enabled or (lambda bot: True)
        self.tz = zoneinfo.ZoneInfo(settings.timezone)
        self._retry_at: dict[str, float] = {}  # bot → not before (after a failed send)
        self._spent: set[str] = set()  # alert keys whose budget was logged as spent

    async def run(self) -> None:
        """Poll every `qr_refresh.poll` until cancelled; a failing pass is logged, not fatal."""
        if self.limits.max == 0:
            return
        while True:
            try:
                await self.tick()
            except Exception:  # the store or a messenger bug: keep the receiver up
                log.exception("QR refresh pass failed")
            await self.sleep(self.limits.poll)

    async def tick(self) -> int:
        """One pass over every open outage; returns how many refreshes went out."""
        sent = 0
        for outage in self.store.outages(self.clock()):
            if await self._check(outage):
                sent += 1
        return sent

    async def _check(self, outage: Outage) -> bool:
        bot, now = outage.bot, self.clock()
        if self.store.is_done(outage.resolved_key, now):
            self.store.end_outage(bot, outage.alert_key)
            return False
        if outage.refreshes >= self.limits.max:
            if outage.alert_key not in self._spent:
                self._spent.add(outage.alert_key)
                log.info("%s: %d QR refreshes sent, the most per outage", bot, outage.refreshes)
            return False
        if now < self._retry_at.get(bot, 0.0) or not self.rescue_enabled(bot):
            return False
        try:
            qr = await self.exporter.pending_qr(bot)
        except ExporterError as exc:
            self.metrics.exporter_errors.inc()
            log.debug("QR refresh of %s: %s", bot, exc.reason)
            return False
        if qr is None:
            if await self._logged_in(bot):
                log.info("%s is logged in: no more QR refreshes", bot)
                self.store.end_outage(bot, outage.alert_key)
            return False
        digest = qr_hash(qr.qrcode)
        if digest == outage.qr_hash or now - outage.sent_at < self.limits.interval:
            return False
        complete, sent_any = await self._send(outage, qr, digest)
        if not complete:
            self._retry_at[bot] = now + min(self.limits.interval, RETRY_AFTER_FAILURE)
            return False
        self.store.outage_refreshed(bot, outage.alert_key, digest, self.clock())
        if sent_any:
            self.metrics.qr_refreshes.labels(bot).inc()
            log.info("%s: sent a newer login QR (%d of at most %d)", bot, outage.refreshes + 1,
                     self.limits.max)  # fmt: skip
        return sent_any

    async def _logged_in(self, bot: str) -> bool:
        try:
            docs = await self.exporter.bots()
        except ExporterError:
            return False
        return any(d.get("bot") == bot and d.get("logged_in") is True for d in docs)

    async def _send(self, outage: Outage, qr: PendingQr, digest: str) -> tuple[bool, bool]:
        """The caption and the image to every admin not yet claimed: (all done, any sent)."""
        bot = outage.bot
        about = f"refresh|{bot}|{digest}"
        text = refresh_text(self.messages, bot, seen_at=qr.seen_at, tz=self.tz)
        png = qr_png(qr.qrcode)
        filename = f"{bot}-login-qr.png"
        complete, sent_any = True, False
        for to in outage.recipients:
            now = self.clock()
            claim = f"{about}|{to}"
            if not self.store.claim(claim, now + OUTAGE_TTL, now):
                continue  # sent before, or another receiver sharing the store sends it
            for step in ("text", "qr"):
                message_id = f"{about}|{to}|{step}"
                if self.store.is_sent(message_id, self.clock()):
                    continue
                try:
                    with sending(MessageRef(about, step)):
                        if step == "qr":
                            await self.messenger.send_image(to, png, bot=bot, filename=filename)
                        else:
                            await self.messenger.send_text(to, text, bot=bot)
                except Exception as exc:  # a messenger bug must not stop the refresher
                    permanent = isinstance(exc, DeliveryError) and not exc.transient
                    kind = "error"
                    if isinstance(exc, DeliveryError):
                        kind = "permanent" if permanent else "transient"
                    self.metrics.message_failures.labels(kind).inc()
                    log.warning("QR refresh of %s to %s failed (%s): %s", bot, to, kind, exc)
                    if not permanent:  # a permanent failure keeps its claim: no retry can help
                        self.store.release(claim)
                        complete = False
                    break
                self.store.mark_sent(message_id, self.clock() + OUTAGE_TTL)
                self.metrics.messages.labels("image" if step == "qr" else "text").inc()
                sent_any = True
        return complete, sent_any
