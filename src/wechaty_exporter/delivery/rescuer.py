"""The receiver's delivery logic, apart from HTTP: alerts → messages, each sent once, within limits.

Rescue can be paused per bot (the peer bot's `rescue off <bot>` chat command): `rescue_enabled`,
asked for each alert with a `bot` label, decides. A paused bot's alerts are answered 200 and
counted with outcome `paused`; nothing is sent and nothing is recorded as delivered, so
Alertmanager's next repeat after `rescue on` is delivered as usual.

Each message has a stable id (alert key | contact | step) recorded in the DeliveryStore once the
messenger accepted it; an alert key (fingerprint | status | startsAt) is recorded once all its
messages went out, and later copies of it (repeats, Alertmanager-HA duplicates) are dropped until
`dedupe_ttl` passes. One lock per alert key serialises concurrent duplicates.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from wechaty_exporter.delivery.alerts import (
    Alert,
    Notification,
    back_online_text,
    exporter_down_text,
    generic_text,
    no_qr_text,
    qr_timeout_text,
    rescue_text,
)
from wechaty_exporter.delivery.exporter_client import ExporterError, PendingQr, QrSource
from wechaty_exporter.delivery.keylock import KeyLock
from wechaty_exporter.delivery.messengers import DeliveryError, Messenger
from wechaty_exporter.delivery.metrics import ReceiverMetrics
from wechaty_exporter.delivery.settings import RateLimitSettings, ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.qrimage import qr_png

__all__ = [
    "RETRYABLE",
    "BatchResult",
    "Clock",
    "Outcome",
    "Rescuer",
    "Sleep",
    "Step",
    "TokenBucket",
    "worst_of",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Outcome(Enum):
    """What became of one alert; also the `outcome` label of the notifications metric."""

    DELIVERED = "delivered"
    DUPLICATE = "duplicate"
    NO_RECIPIENT = "no_recipient"
    RATE_LIMITED = "rate_limited"
    TRANSIENT_FAILURE = "transient_failure"
    PERMANENT_FAILURE = "permanent_failure"
    PAUSED = "paused"  # rescue of the alert's bot is paused: nothing sent


RETRYABLE = (Outcome.RATE_LIMITED, Outcome.TRANSIENT_FAILURE)  # answered 503: a retry may pass


@dataclass(frozen=True, slots=True)
class Step:
    """One message of a delivery: `step` names it inside the alert (intro, qr, back-online, ...)."""

    step: str
    text: str | None = None
    png: bytes | None = None
    filename: str = "qr.png"

    @property
    def kind(self) -> Literal["text", "image"]:
        return "image" if self.png is not None else "text"


@dataclass(slots=True)
class BatchResult:
    """What became of one alert's messages (to one contact, or to all, the worst of them)."""

    outcome: Outcome
    retry_after: float = 0.0
    reason: str = ""


class TokenBucket:
    """Per-contact send budget. `reserve` takes tokens now, possibly going negative, and returns
    how long the caller must wait before sending; time is an argument."""

    def __init__(self, burst: int, per_second: float, now: float) -> None:
        self.capacity = float(burst)
        self.rate = per_second
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = now

    def delay(self, n: int, now: float) -> float:
        self._refill(now)
        missing = n - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def reserve(self, n: int, now: float) -> float:
        wait = self.delay(n, now)
        self.tokens -= n
        return wait

    def refund(self, n: int) -> None:
        self.tokens = min(self.capacity, self.tokens + n)


class Rescuer:
    """Turns alerts into messages and sends them exactly as far as the store says is still owed."""

    def __init__(
        self,
        settings: ReceiverSettings,
        messenger: Messenger,
        exporter: QrSource,
        store: DeliveryStore,
        metrics: ReceiverMetrics,
        *,
        clock: Clock,
        sleep: Sleep,
        rescue_enabled: Callable[[str], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.messenger = messenger
        self.exporter = exporter
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.sleep = sleep
        self.rescue_enabled = rescue_enabled if rescue_enabled is not None else _always
        self.tz = zoneinfo.ZoneInfo(settings.timezone)
        self._buckets: dict[str, TokenBucket] = {}
        self._locks = KeyLock()  # one per alert key

    # --- one notification ---------------------------------------------------------------------

    async def deliver(self, notification: Notification) -> list[tuple[Alert, BatchResult]]:
        if notification.truncated_alerts:
            self.metrics.truncated.inc(notification.truncated_alerts)
            log.warning(
                "Alertmanager left %d alert(s) out of group %s (max_alerts)",
                notification.truncated_alerts,
                notification.group_key,
            )
        self.store.purge(self.clock())
        results = []
        for alert in notification.alerts:
            result = await self.deliver_alert(alert)
            self.metrics.notifications.labels(result.outcome.value).inc()
            results.append((alert, result))
        return results

    async def deliver_alert(self, alert: Alert) -> BatchResult:
        async with self._locks.hold(alert.dedupe_key):
            now = self.clock()
            if self.store.is_done(alert.dedupe_key, now) or (
                alert.status == "firing" and self.store.is_done(alert.resolved_key, now)
            ):
                self.metrics.dedupe_hits.inc()
                return BatchResult(Outcome.DUPLICATE)
            if alert.bot is not None and not self.rescue_enabled(alert.bot):
                log.info("rescue of %s is paused: %s not sent", alert.bot, alert.alertname)
                return BatchResult(Outcome.PAUSED)
            recipients = self.settings.admins_for(alert.bot)
            if not recipients:
                log.warning("no admin to tell about %s (bot=%s)", alert.alertname, alert.bot)
                return BatchResult(Outcome.NO_RECIPIENT)
            bot = alert.bot
            if bot is not None and alert.alertname in self.settings.qr_alerts:
                if alert.status == "firing":
                    result = await self._rescue(alert, bot, recipients)
                else:
                    result = await self._back_online(alert, bot, recipients)
            else:
                text = generic_text(alert, now=now, tz=self.tz)
                result = await self._to_all(alert, recipients, [Step("alert", text)])
            if result.outcome is Outcome.DELIVERED:
                done_at = self.clock()
                self.store.mark_done(alert.dedupe_key, done_at + self.settings.dedupe_ttl)
                self.metrics.delivery_delay.observe(max(0.0, done_at - alert.starts_at))
            return result

    # --- the three kinds of delivery ----------------------------------------------------------

    async def _rescue(self, alert: Alert, bot: str, recipients: Sequence[str]) -> BatchResult:
        """Logged out: the text, then the freshest QR (waiting a bounded time for one)."""
        filename = f"{bot}-login-qr.png"
        if all(self._sent(alert, to, "qr") for to in recipients):
            return BatchResult(Outcome.DELIVERED)
        qr, error = await self._fetch_qr(bot)
        now = self.clock()
        if qr is not None:
            intro = rescue_text(alert, bot, now=now, tz=self.tz, qr_seen_at=qr.seen_at)
            steps = [Step("intro", intro), Step("qr", png=qr_png(qr.qrcode), filename=filename)]
            return await self._to_all(alert, recipients, steps)
        if error is not None:
            intro = exporter_down_text(alert, bot, now=now, tz=self.tz, reason=error)
        else:
            intro = no_qr_text(alert, bot, now=now, tz=self.tz, wait_seconds=self.settings.qr_wait)
        first = await self._each(alert, recipients, [Step("intro", intro)])
        waiting = [to for to, r in first.items() if r.outcome is Outcome.DELIVERED]
        waiting = [to for to in waiting if not self._sent(alert, to, "qr")]
        if waiting:
            qr, error = await self._wait_for_qr(alert, bot)
            if qr is not None:
                step = Step("qr", png=qr_png(qr.qrcode), filename=filename)
            elif error is not None:
                reason = f"exporter unreachable while {bot}'s QR is needed: {error}"
                for to in waiting:
                    first[to] = BatchResult(Outcome.TRANSIENT_FAILURE, reason=reason)
                return worst_of(first.values())
            elif self.store.is_done(alert.resolved_key, self.clock()):
                return worst_of(first.values())  # back online meanwhile: nothing left to say
            else:
                step = Step("qr", qr_timeout_text(bot, waited=self.settings.qr_wait))
            first.update(await self._each(alert, waiting, [step]))
        return worst_of(first.values())

    async def _back_online(self, alert: Alert, bot: str, recipients: Sequence[str]) -> BatchResult:
        text = back_online_text(alert, bot, now=self.clock(), tz=self.tz)
        results = list((await self._each(alert, recipients, [Step("back-online", text)])).values())
        login_test = self.settings.login_test_for(bot)
        if login_test is not None:
            steps = [Step("login-test", login_test.text)]
            results += (await self._each(alert, [login_test.to], steps, bot=bot)).values()
        return worst_of(results)

    async def _to_all(
        self, alert: Alert, recipients: Sequence[str], steps: Sequence[Step]
    ) -> BatchResult:
        return worst_of((await self._each(alert, recipients, steps)).values())

    # --- sending ------------------------------------------------------------------------------

    async def _each(
        self,
        alert: Alert,
        recipients: Sequence[str],
        steps: Sequence[Step],
        *,
        bot: str | None = None,
    ) -> dict[str, BatchResult]:
        about = bot or alert.bot or alert.alertname
        return {to: await self._send_batch(alert, to, steps, about) for to in recipients}

    def _message_id(self, alert: Alert, to: str, step: str) -> str:
        return f"{alert.dedupe_key}|{to}|{step}"

    def _sent(self, alert: Alert, to: str, step: str) -> bool:
        return self.store.is_sent(self._message_id(alert, to, step), self.clock())

    async def _send_batch(
        self, alert: Alert, to: str, steps: Sequence[Step], bot: str
    ) -> BatchResult:
        """Send the steps not yet sent to `to`, in order; stop at the first failure."""
        owed = [s for s in steps if not self._sent(alert, to, s.step)]
        if not owed:
            return BatchResult(Outcome.DELIVERED)
        bucket = self._bucket(to)
        now = self.clock()
        wait = bucket.delay(len(owed), now)
        if wait > self.settings.rate_limit.max_hold:
            log.warning("rate limit: holding %d message(s) to %s for %.0f s", len(owed), to, wait)
            return BatchResult(Outcome.RATE_LIMITED, retry_after=wait, reason=f"rate limit {to}")
        bucket.reserve(len(owed), now)
        if wait > 0:
            await self.sleep(wait)
        for i, step in enumerate(owed):
            try:
                if step.png is not None:
                    await self.messenger.send_image(to, step.png, bot=bot, filename=step.filename)
                else:
                    await self.messenger.send_text(to, step.text or "", bot=bot)
            except DeliveryError as exc:
                bucket.refund(len(owed) - i)
                kind = "transient" if exc.transient else "permanent"
                self.metrics.message_failures.labels(kind).inc()
                log.warning("%s: %s delivery to %s failed: %s", alert.alertname, kind, to, exc)
                outcome = Outcome.TRANSIENT_FAILURE if exc.transient else Outcome.PERMANENT_FAILURE
                return BatchResult(outcome, reason=exc.reason)
            except Exception as exc:  # a messenger bug must not turn into a crash or silence
                bucket.refund(len(owed) - i)
                self.metrics.message_failures.labels("error").inc()
                log.exception(
                    "%s: messenger %s failed on %s", alert.alertname, self.messenger.name, to
                )
                reason = f"messenger {self.messenger.name}: {exc.__class__.__name__}: {exc}"
                return BatchResult(Outcome.TRANSIENT_FAILURE, reason=reason)
            self.store.mark_sent(
                self._message_id(alert, to, step.step), self.clock() + self.settings.dedupe_ttl
            )
            self.metrics.messages.labels(step.kind).inc()
        return BatchResult(Outcome.DELIVERED)

    def _bucket(self, to: str) -> TokenBucket:
        bucket = self._buckets.get(to)
        if bucket is None:
            limit: RateLimitSettings = self.settings.rate_limit
            bucket = TokenBucket(limit.burst, limit.per_hour / 3600.0, self.clock())
            self._buckets[to] = bucket
        return bucket

    # --- the exporter -------------------------------------------------------------------------

    async def _fetch_qr(self, bot: str) -> tuple[PendingQr | None, str | None]:
        try:
            return await self.exporter.pending_qr(bot), None
        except ExporterError as exc:
            self.metrics.exporter_errors.inc()
            log.warning("cannot fetch the QR of %s: %s", bot, exc.reason)
            return None, exc.reason

    async def _wait_for_qr(self, alert: Alert, bot: str) -> tuple[PendingQr | None, str | None]:
        """Poll the exporter until a QR appears, the bot is back online, or `qr_wait` passes."""
        deadline = self.clock() + self.settings.qr_wait
        qr: PendingQr | None = None
        error: str | None = None
        while self.clock() < deadline:
            await self.sleep(min(self.settings.qr_poll_interval, max(0.0, deadline - self.clock())))
            qr, error = await self._fetch_qr(bot)
            if qr is not None or self.store.is_done(alert.resolved_key, self.clock()):
                break
        return qr, error


def _always(bot: str) -> bool:
    return True


def worst_of(results: Iterable[BatchResult]) -> BatchResult:
    """Retryable beats permanent beats delivered: the HTTP answer follows the worst alert."""
    items = list(results)
    for wanted in (*RETRYABLE, Outcome.PERMANENT_FAILURE):
        matching = [r for r in items if r.outcome is wanted]
        if matching:
            return BatchResult(
                wanted,
                retry_after=max(r.retry_after for r in matching),
                reason="; ".join(r.reason for r in matching if r.reason),
            )
    return BatchResult(Outcome.DELIVERED)
