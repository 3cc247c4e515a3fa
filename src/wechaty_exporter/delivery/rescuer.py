"""The receiver's delivery logic, apart from HTTP: alerts → messages, each sent once, within limits.

Rescue can be paused per bot (the peer bot's `rescue off <bot>` chat command): `rescue_enabled`,
asked for each alert with a `bot` label, decides. A paused bot's alerts are answered 200 and
counted with outcome `paused`; nothing is sent and nothing is recorded as delivered, so
Alertmanager's next repeat after `rescue on` is delivered as usual.

Each message has a stable id (alert key | contact | step) recorded in the DeliveryStore once the
messenger accepted it; an alert key (fingerprint | status | startsAt) is recorded once all its
messages went out, and later copies of it (repeats, Alertmanager-HA duplicates) are dropped until
`dedupe_ttl` passes. One lock per alert key serialises concurrent duplicates.

One webhook call is one notification group (Alertmanager's `group_by`): each admin gets one DM
about it, naming the count and the bots, with a block per alert (the texts come from templates,
in `receiver.language`), and after it the QR image of each logged-out bot (`outgoing` assembles
them). Dedupe stays per alert: a DM's text settles the message id of every alert it speaks for,
so a retry of a group that went out in part sends only the alerts, and the QRs, not yet accepted.

A firing delivered is also remembered (its `fired_key`) for `FIRED_MEMORY`, longer than dedupe:
its resolved notification then tells how long it lasted. A resolved alert whose firing was not
delivered here (Alertmanager delivered out of order, or sent the resolved alone) is told without
a duration it cannot vouch for (`alerts.lasted`); it settles only its own key, so a later firing
with a newer startsAt is a new alert and is delivered.
"""

from __future__ import annotations

import contextlib
import logging
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from wechaty_exporter.delivery.alerts import (
    NO_RESCUER,
    Alert,
    Notification,
    dedupe_key,
    login_test_text,
)
from wechaty_exporter.delivery.exporter_client import ExporterError, PendingQr, QrSource
from wechaty_exporter.delivery.guard_settings import RateLimitSettings
from wechaty_exporter.delivery.keylock import KeyLock
from wechaty_exporter.delivery.messengers import DeliveryError, Messenger
from wechaty_exporter.delivery.messengers.sending import sending
from wechaty_exporter.delivery.metrics import ReceiverMetrics
from wechaty_exporter.delivery.outgoing import (
    FoundQr,
    Outgoing,
    dm_messages,
    qr_images,
    qr_timeout_message,
    step_of,
)
from wechaty_exporter.delivery.refresh import watch_outage
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore

__all__ = [
    "RETRYABLE",
    "BatchResult",
    "Clock",
    "Outcome",
    "Rescuer",
    "Sleep",
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
FIRED_MEMORY = 35 * 86400.0  # how long a delivered firing is remembered for its resolved's text


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

    # --- one notification: one DM per admin ---------------------------------------------------

    async def deliver(self, notification: Notification) -> list[tuple[Alert, BatchResult]]:
        if notification.truncated_alerts:
            self.metrics.truncated.inc(notification.truncated_alerts)
            log.warning(
                "Alertmanager left %d alert(s) out of group %s (max_alerts)",
                notification.truncated_alerts,
                notification.group_key,
            )
        self.store.purge(self.clock())
        results = await self.deliver_group(notification.alerts)
        for _, result in results:
            self.metrics.notifications.labels(result.outcome.value).inc()
        return results

    async def deliver_alert(self, alert: Alert) -> BatchResult:
        """One alert, as a group of its own."""
        ((_, result),) = await self.deliver_group((alert,))
        return result

    async def deliver_group(self, alerts: Sequence[Alert]) -> list[tuple[Alert, BatchResult]]:
        """One notification group (one webhook call). Alerts delivered before (or resolved before
        this firing copy), paused, or with nobody to tell are settled without a message; each
        admin gets one DM about the rest, as far as each alert is still owed to that admin, and
        after it the QR image of each logged-out bot. What becomes of each alert, in order."""
        async with contextlib.AsyncExitStack() as turns:
            for key in sorted({a.dedupe_key for a in alerts}):  # one order: no deadlock
                await turns.enter_async_context(self._locks.hold(key))
            results: dict[int, BatchResult] = {}
            live: dict[str, Alert] = {}  # dedupe key → alert to deliver, in payload order
            for i, alert in enumerate(alerts):
                early = self._screen(alert, live)
                if early is None:
                    live[alert.dedupe_key] = self._with_history(alert)
                else:
                    results[i] = early
            settled = await self._deliver_live(list(live.values())) if live else {}
            for i, alert in enumerate(alerts):
                if i in results:
                    continue
                result = results[i] = settled[alert.dedupe_key]
                if result.outcome is Outcome.DELIVERED:
                    done_at = self.clock()
                    self.store.mark_done(alert.dedupe_key, done_at + self.settings.dedupe_ttl)
                    if alert.status == "firing":
                        self.store.mark_done(alert.fired_key, done_at + FIRED_MEMORY)
                    self.metrics.delivery_delay.observe(max(0.0, done_at - alert.starts_at))
        return [(alert, results[i]) for i, alert in enumerate(alerts)]

    def _with_history(self, alert: Alert) -> Alert:
        """A resolved `alert`, told whether its firing was delivered here (`Alert.firing_seen`)."""
        if alert.status != "resolved":
            return alert
        now = self.clock()
        firing_key = dedupe_key_of(alert, "firing")
        seen = self.store.is_done(alert.fired_key, now) or self.store.is_done(firing_key, now)
        return replace(alert, firing_seen=seen)

    def _screen(self, alert: Alert, live: Mapping[str, Alert]) -> BatchResult | None:
        """What becomes of `alert` without a message, or None when it is to be delivered."""
        now = self.clock()
        if (
            alert.dedupe_key in live
            or self.store.is_done(alert.dedupe_key, now)
            or (alert.status == "firing" and self.store.is_done(alert.resolved_key, now))
        ):
            self.metrics.dedupe_hits.inc()
            return BatchResult(Outcome.DUPLICATE)
        if alert.bot is not None and not self.rescue_enabled(alert.bot):
            log.info("rescue of %s is paused: %s not sent", alert.bot, alert.alertname)
            return BatchResult(Outcome.PAUSED)
        if not self.settings.admins_for(alert.bot):
            log.warning("no admin to tell about %s (bot=%s)", alert.alertname, alert.bot)
            return BatchResult(Outcome.NO_RECIPIENT)
        return None

    def _kind(self, alert: Alert) -> str:
        """The step of the alert's block in a DM: intro (logged out), back-online or alert."""
        return step_of(alert, self.settings.qr_alerts)

    # --- the DM, the QRs that come late, the login tests ----------------------------------------

    async def _deliver_live(self, alerts: Sequence[Alert]) -> dict[str, BatchResult]:
        """Send what `alerts` are owed; per alert key, the worst result of its messages."""
        tally: dict[str, list[BatchResult]] = {a.dedupe_key: [] for a in alerts}
        rescue = [a for a in alerts if self._kind(a) == "intro"]
        found: dict[str, FoundQr] = {}  # bot → its freshest QR (or why there is none)
        owed = [
            a.bot or "" for a in rescue if not all(self._sent(a, to, "qr") for to in self._to(a))
        ]
        for bot in dict.fromkeys(owed):
            found[bot] = FoundQr(*await self._fetch_qr(bot))
        for to in dict.fromkeys(to for a in alerts for to in self._to(a)):
            mine = [a for a in alerts if to in self._to(a)]
            dm = dm_messages(
                self.settings, to, mine, found, now=self.clock(), tz=self.tz, sent=self._sent
            )
            await self._send_and_tally(to, dm, tally)
        await self._late_qrs(rescue, found, tally)
        # A resolved WechatyNoRescuer means a rescuer is back, not that this bot is: no test.
        back = [a for a in alerts if self._kind(a) == "back-online" and a.alertname != NO_RESCUER]
        await self._login_tests(back, tally)
        results = {key: worst_of(got) for key, got in tally.items()}
        for a in rescue:
            qr = found[a.bot or ""].qr if a.bot in found else None
            self._watch(a, a.bot or "", self._to(a), qr, results[a.dedupe_key])
        return results

    def _to(self, alert: Alert) -> tuple[str, ...]:
        return self.settings.admins_for(alert.bot)

    async def _late_qrs(
        self,
        rescue: Sequence[Alert],
        found: dict[str, FoundQr],
        tally: dict[str, list[BatchResult]],
    ) -> None:
        """The bots that had no QR yet: wait (a bounded time, all at once) for theirs; then each
        admin told so gets the QRs that came and one text naming the bots still without one."""
        waiting: dict[str, list[tuple[str, Alert]]] = {}  # bot → (admin, alert) owed its QR
        for a in rescue:
            bot = a.bot or ""
            if bot in found and found[bot].qr is None:
                for to in self._to(a):
                    if self._sent(a, to, "intro") and not self._sent(a, to, "qr"):
                        waiting.setdefault(bot, []).append((to, a))
        if not waiting:
            return
        pending = {bot: [a for _, a in pairs] for bot, pairs in waiting.items()}
        images: dict[str, dict[str, list[Alert]]] = {}  # admin → bot → alerts
        late: dict[str, list[Alert]] = {}  # admin → alerts whose wait ran out
        for bot, (qr, error) in (await self._wait_for_qrs(pending)).items():
            found[bot] = FoundQr(qr, error)
            for to, a in waiting[bot]:
                if qr is not None:
                    images.setdefault(to, {}).setdefault(bot, []).append(a)
                elif error is not None:
                    reason = f"exporter unreachable while {bot}'s QR is needed: {error}"
                    tally[a.dedupe_key].append(
                        BatchResult(Outcome.TRANSIENT_FAILURE, reason=reason)
                    )
                elif not self.store.is_done(a.resolved_key, self.clock()):  # else: back online
                    late.setdefault(to, []).append(a)
        for to in dict.fromkeys([*images, *late]):
            outgoing = qr_images(images.get(to, {}), found)
            if late.get(to):
                messages, waited = self.settings.messages, self.settings.qr_wait
                outgoing.append(qr_timeout_message(messages, late[to], waited=waited))
            await self._send_and_tally(to, outgoing, tally)

    async def _login_tests(
        self, back: Sequence[Alert], tally: dict[str, list[BatchResult]]
    ) -> None:
        """Back online: the bot's login test (once per bot), to its own contact."""
        for bot in dict.fromkeys(a.bot or "" for a in back):
            test = self.settings.login_test_for(bot)
            if test is None:
                continue
            text = test.text or login_test_text(
                self.settings.messages, bot, test.to, now=self.clock(), tz=self.tz
            )
            ids = tuple((a.dedupe_key, "login-test") for a in back if a.bot == bot)
            await self._send_and_tally(test.to, [Outgoing(ids, text=text, bot=bot)], tally)

    def _watch(
        self,
        alert: Alert,
        bot: str,
        recipients: Sequence[str],
        qr: PendingQr | None,
        result: BatchResult,
    ) -> BatchResult:
        """A QR delivered to every admin starts the outage that delivery/refresh.py watches."""
        if qr is not None and result.outcome is Outcome.DELIVERED:
            watch_outage(self.store, alert, bot, recipients, qr.qrcode, now=self.clock())
        return result

    # --- sending ------------------------------------------------------------------------------

    def _id(self, key: str, to: str, step: str) -> str:
        """A message's id in the store: alert key | contact | step."""
        return f"{key}|{to}|{step}"

    def _sent(self, alert: Alert, to: str, step: str) -> bool:
        return self.store.is_sent(self._id(alert.dedupe_key, to, step), self.clock())

    async def _send_and_tally(
        self, to: str, outgoing: Sequence[Outgoing], tally: dict[str, list[BatchResult]]
    ) -> None:
        """Send to `to`; each alert a message speaks for gets the result if one of its messages
        is still not accepted after it, else delivered."""
        result = await self._send_out(to, outgoing)
        now = self.clock()
        for message in outgoing:
            for key, step in message.ids:
                sent = self.store.is_sent(self._id(key, to, step), now)
                tally[key].append(BatchResult(Outcome.DELIVERED) if sent else result)

    async def _send_out(self, to: str, messages: Sequence[Outgoing]) -> BatchResult:
        """Send the messages not yet sent to `to`, in order; stop at the first failure."""
        owed = [
            m
            for m in messages
            if not all(self.store.is_sent(self._id(k, to, s), self.clock()) for k, s in m.ids)
        ]
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
        for i, message in enumerate(owed):
            bot = message.bot
            try:
                with sending(message.ref):  # for fan-out messengers
                    if message.png is not None:
                        png, name = message.png, message.filename
                        await self.messenger.send_image(to, png, bot=bot, filename=name)
                    else:
                        await self.messenger.send_text(to, message.text or "", bot=bot)
            except DeliveryError as exc:
                bucket.refund(len(owed) - i)
                kind = "transient" if exc.transient else "permanent"
                self.metrics.message_failures.labels(kind).inc()
                log.warning("%s: %s delivery to %s failed: %s", bot, kind, to, exc)
                outcome = Outcome.TRANSIENT_FAILURE if exc.transient else Outcome.PERMANENT_FAILURE
                return BatchResult(outcome, reason=exc.reason)
            except Exception as exc:  # a messenger bug must not turn into a crash or silence
                bucket.refund(len(owed) - i)
                self.metrics.message_failures.labels("error").inc()
                log.exception("%s: messenger %s failed on %s", bot, self.messenger.name, to)
                reason = f"messenger {self.messenger.name}: {exc.__class__.__name__}: {exc}"
                return BatchResult(Outcome.TRANSIENT_FAILURE, reason=reason)
            expires = self.clock() + self.settings.dedupe_ttl
            for key, step in message.ids:
                self.store.mark_sent(self._id(key, to, step), expires)
            self.metrics.messages.labels(message.kind).inc()
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

    async def _wait_for_qrs(
        self, pending: Mapping[str, Sequence[Alert]]
    ) -> dict[str, tuple[PendingQr | None, str | None]]:
        """Poll the exporters until each bot shows a QR or all its alerts resolved, or `qr_wait`
        passes: per bot, the last answer (a QR, or the error of the last try)."""
        deadline = self.clock() + self.settings.qr_wait
        found: dict[str, tuple[PendingQr | None, str | None]] = {
            bot: (None, None) for bot in pending
        }
        left = list(pending)
        while left and self.clock() < deadline:
            await self.sleep(min(self.settings.qr_poll_interval, max(0.0, deadline - self.clock())))
            for bot in list(left):
                found[bot] = await self._fetch_qr(bot)
                back = all(self.store.is_done(a.resolved_key, self.clock()) for a in pending[bot])
                if found[bot][0] is not None or back:
                    left.remove(bot)
        return found


def _always(bot: str) -> bool:
    return True


def dedupe_key_of(alert: Alert, status: str) -> str:
    """The dedupe key of `alert`'s notification with `status` (same fingerprint and startsAt)."""
    return dedupe_key(alert.fingerprint, status, alert.starts_at_raw)


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
