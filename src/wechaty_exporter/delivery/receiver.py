"""Alertmanager webhook → messages to admins: POST /alerts, with dedupe, rate limit and retries.

Status codes (Alertmanager retries 5xx, never 4xx):
- 200 once every message about every alert was accepted by the messenger (or had been before);
- 503 when a delivery failed for a reason that may pass (messenger transient error, the exporter
  unreachable while a QR is needed, an admin's rate limit needing a longer wait than `max_hold`),
  with Retry-After; the retry sends only the messages not yet accepted;
- 500 when a delivery failed permanently (unknown contact, bad messenger config): Alertmanager
  retries, which repeats nothing, and counts the failure where the operator sees it;
- 400 malformed payload, 401 missing/wrong credentials, 413 body over the cap, 415 not JSON,
  408 body not received within `body_timeout` (a slow or stalled client does not hold a handler).

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

import asyncio
import base64
import binascii
import hmac
import logging
import sqlite3
import time
import zoneinfo
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.aiohttp import make_aiohttp_handler

from wechaty_exporter.delivery.alerts import (
    Alert,
    Notification,
    PayloadError,
    back_online_text,
    decode_notification,
    exporter_down_text,
    generic_text,
    no_qr_text,
    qr_timeout_text,
    rescue_text,
)
from wechaty_exporter.delivery.exporter_client import ExporterClient, ExporterError, PendingQr
from wechaty_exporter.delivery.messengers import DeliveryError, Messenger
from wechaty_exporter.delivery.settings import RateLimitSettings, ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.qrimage import qr_png

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


_RETRYABLE = (Outcome.RATE_LIMITED, Outcome.TRANSIENT_FAILURE)


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


class ReceiverMetrics:
    """The receiver's own metrics, on a registry of its own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "wechaty_receiver_requests",
            "Webhook requests to POST /alerts, by HTTP status code.",
            ["code"],
            registry=registry,
        )
        self.notifications = Counter(
            "wechaty_receiver_notifications",
            "Alerts handled, by outcome (delivered, duplicate, no_recipient, rate_limited, "
            "transient_failure, permanent_failure, paused).",
            ["outcome"],
            registry=registry,
        )
        self.messages = Counter(
            "wechaty_receiver_messages",
            "Messages accepted by the messenger, by type (text, image).",
            ["type"],
            registry=registry,
        )
        self.message_failures = Counter(
            "wechaty_receiver_message_failures",
            "Messages not accepted, by kind (transient, permanent, error: the messenger raised).",
            ["kind"],
            registry=registry,
        )
        self.dedupe_hits = Counter(
            "wechaty_receiver_dedupe_hits",
            "Alerts dropped as repeats or HA duplicates of one already delivered.",
            registry=registry,
        )
        self.truncated = Counter(
            "wechaty_receiver_truncated_alerts",
            "Alerts Alertmanager left out of payloads (truncatedAlerts).",
            registry=registry,
        )
        self.exporter_errors = Counter(
            "wechaty_receiver_exporter_errors",
            "Failed requests to the exporter's QR API.",
            registry=registry,
        )
        self.latency = Histogram(
            "wechaty_receiver_request_duration_seconds",
            "Time to answer POST /alerts (includes waiting for a QR).",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
            registry=registry,
        )
        self.delivery_delay = Histogram(
            "wechaty_receiver_alert_delivery_delay_seconds",
            "From an alert's startsAt to its last message accepted by the messenger.",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
            registry=registry,
        )


class Rescuer:
    """Turns alerts into messages and sends them exactly as far as the store says is still owed."""

    def __init__(
        self,
        settings: ReceiverSettings,
        messenger: Messenger,
        exporter: ExporterClient,
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
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

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
        async with self._lock(alert.dedupe_key):
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
                return _worst(first.values())
            elif self.store.is_done(alert.resolved_key, self.clock()):
                return _worst(first.values())  # back online meanwhile: nothing left to say
            else:
                step = Step("qr", qr_timeout_text(bot, waited=self.settings.qr_wait))
            first.update(await self._each(alert, waiting, [step]))
        return _worst(first.values())

    async def _back_online(self, alert: Alert, bot: str, recipients: Sequence[str]) -> BatchResult:
        text = back_online_text(alert, bot, now=self.clock(), tz=self.tz)
        results = list((await self._each(alert, recipients, [Step("back-online", text)])).values())
        login_test = self.settings.login_test_for(bot)
        if login_test is not None:
            steps = [Step("login-test", login_test.text)]
            results += (await self._each(alert, [login_test.to], steps, bot=bot)).values()
        return _worst(results)

    async def _to_all(
        self, alert: Alert, recipients: Sequence[str], steps: Sequence[Step]
    ) -> BatchResult:
        return _worst((await self._each(alert, recipients, steps)).values())

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

    @asynccontextmanager
    async def _lock(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _always(bot: str) -> bool:
    return True


def _worst(results: Iterable[BatchResult]) -> BatchResult:
    """Retryable beats permanent beats delivered: the HTTP answer follows the worst alert."""
    items = list(results)
    for wanted in (*_RETRYABLE, Outcome.PERMANENT_FAILURE):
        matching = [r for r in items if r.outcome is wanted]
        if matching:
            return BatchResult(
                wanted,
                retry_after=max(r.retry_after for r in matching),
                reason="; ".join(r.reason for r in matching if r.reason),
            )
    return BatchResult(Outcome.DELIVERED)


# --- HTTP shell --------------------------------------------------------------------------------

SETTINGS = web.AppKey("receiver_settings", ReceiverSettings)
RESCUER = web.AppKey("rescuer", Rescuer)
METRICS = web.AppKey("receiver_metrics", ReceiverMetrics)
REGISTRY = web.AppKey("receiver_registry", CollectorRegistry)
READY = web.AppKey[Callable[[], bool]]("receiver_ready")
STORE = web.AppKey("delivery_store", DeliveryStore)
BODY_TIMEOUT = web.AppKey("body_timeout", float)
DEFAULT_BODY_TIMEOUT = 10.0  # seconds for the whole body; Alertmanager sends it at once


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": reason}, status=status, headers=headers)


def _authorized(request: web.Request, settings: ReceiverSettings) -> bool:
    auth = settings.auth
    if auth is None:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if auth.scheme == "bearer":
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.encode(), auth.secret.encode())
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(credentials, validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    user_ok = hmac.compare_digest(user, auth.username.encode())
    password_ok = hmac.compare_digest(password, auth.secret.encode())
    return bool(sep) and user_ok and password_ok


async def _read_capped(request: web.Request, cap: int) -> bytes | None:
    """The body, or None once it exceeds `cap` bytes (whatever Content-Length claims)."""
    if request.content_length is not None and request.content_length > cap:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def handle_alerts(request: web.Request) -> web.Response:
    app = request.app
    metrics = app[METRICS]
    with metrics.latency.time():
        response = await _handle_alerts(request)
    metrics.requests.labels(str(response.status)).inc()
    return response


async def _handle_alerts(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if not _authorized(request, settings):
        assert settings.auth is not None
        challenge = (
            'Bearer realm="wechaty-exporter"'
            if settings.auth.scheme == "bearer"
            else 'Basic realm="wechaty-exporter", charset="UTF-8"'
        )
        return _error(401, "missing or wrong credentials", {"WWW-Authenticate": challenge})
    if request.content_type != "application/json":
        got = request.content_type or "none"
        return _error(415, f"Content-Type must be application/json, got {got}")
    timeout = request.app[BODY_TIMEOUT]
    try:
        async with asyncio.timeout(timeout):
            body = await _read_capped(request, settings.max_body_bytes)
    except web.HTTPRequestEntityTooLarge:
        body = None
    except TimeoutError:
        log.warning("request body from %s not received within %g s", request.remote, timeout)
        response = _error(408, f"request body not received within {timeout:g} s")
        response.force_close()
        return response
    except RequestPayloadError as exc:  # a broken chunked encoding, a bad Content-Encoding
        return _error(400, f"bad request body: {exc}")
    except ConnectionResetError:  # the client went away mid-body: nobody to answer
        return _error(400, "connection closed before the body was complete")
    if body is None:
        return _error(413, f"body larger than {settings.max_body_bytes} bytes")
    try:
        notification = decode_notification(body)
    except PayloadError as exc:
        log.warning("rejected webhook payload: %s", exc.reason)
        return _error(400, exc.reason)
    try:
        results = await request.app[RESCUER].deliver(notification)
    except sqlite3.Error as exc:  # the state dir's disk is full or broken: retry later
        log.exception("delivery store failed")
        return _error(503, f"delivery store: {exc}", {"Retry-After": "60"})
    worst = _worst(r for _, r in results)
    summary = [
        {"fingerprint": a.fingerprint, "status": a.status, "outcome": r.outcome.value}
        for a, r in results
    ]
    if worst.outcome in _RETRYABLE:
        retry_after = str(max(1, round(worst.retry_after))) if worst.retry_after else "30"
        return web.json_response(
            {"error": worst.reason or "delivery failed; retry", "alerts": summary},
            status=503,
            headers={"Retry-After": retry_after},
        )
    if worst.outcome is Outcome.PERMANENT_FAILURE:
        return web.json_response({"error": worst.reason, "alerts": summary}, status=500)
    return web.json_response({"status": "ok", "alerts": summary})


async def handle_healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def handle_ready(request: web.Request) -> web.Response:
    if request.app[READY]() and request.app[STORE].check():
        return web.Response(text="ready\n")
    return web.Response(text="not ready\n", status=503)


def create_receiver_app(
    settings: ReceiverSettings,
    messenger: Messenger,
    exporter: ExporterClient,
    store: DeliveryStore,
    *,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    ready: Callable[[], bool] | None = None,
    registry: CollectorRegistry | None = None,
    rescue_enabled: Callable[[str], bool] | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> web.Application:
    """The receiver app. The caller owns (and closes) messenger, exporter client and store.

    `ready` lets a host (the peer bot) hold /-/ready at 503 until it can send; `rescue_enabled`
    (default: always) lets it pause the messages about a bot (see the module docstring).
    `body_timeout` bounds how long a request body may take to arrive (408 after it).
    """
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ReceiverMetrics(registry)
    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[REGISTRY] = registry
    app[STORE] = store
    app[BODY_TIMEOUT] = body_timeout
    app[READY] = ready if ready is not None else (lambda: True)
    app[RESCUER] = Rescuer(
        settings,
        messenger,
        exporter,
        store,
        metrics,
        clock=clock,
        sleep=sleep,
        rescue_enabled=rescue_enabled,
    )
    app.router.add_post("/alerts", handle_alerts)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/-/ready", handle_ready)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    return app
