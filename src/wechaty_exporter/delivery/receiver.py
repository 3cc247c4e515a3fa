"""Alertmanager webhook → messages to admins: the HTTP shell of POST /alerts around the `Rescuer`.

Status codes (Alertmanager retries 5xx, never 4xx):
- 200 once every message about every alert was accepted by the messenger (or had been before);
- 503 when a delivery failed for a reason that may pass (messenger transient error, the exporter
  unreachable while a QR is needed, an admin's rate limit needing a longer wait than `max_hold`),
  with Retry-After; the retry sends only the messages not yet accepted;
- 500 when a delivery failed permanently (unknown contact, bad messenger config): Alertmanager
  retries, which repeats nothing, and counts the failure where the operator sees it;
- 400 malformed payload, 401 missing/wrong credentials, 413 body over the cap, 415 not JSON,
  408 body not received within `body_timeout` (a slow or stalled client does not hold a handler).

POST /commands (same auth, the same 401/408/413/415) runs a plugin bot's chat message through the
injected `commands` handler (`commands_http`): 200 `{"replies": [...]}` (none for a probe), 400
a malformed body or another bot's name, 403 a sender who is not an admin (audited), 404 when no
handler was given (the receiver answers no commands), 500 when the handler failed.

Dedupe, rate limit, pausing rescue per bot and the QR wait are the rescuer's (`rescuer`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import sqlite3
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from wechaty_exporter.delivery.alerts import PayloadError, decode_notification
from wechaty_exporter.delivery.commands_http import (
    MAX_COMMAND_BODY_BYTES,
    CommandRefused,
    CommandsHandler,
    decode_command_request,
    encode_replies,
)
from wechaty_exporter.delivery.exporter_client import QrSource
from wechaty_exporter.delivery.messengers import Messenger
from wechaty_exporter.delivery.metrics import ReceiverMetrics
from wechaty_exporter.delivery.rescuer import RETRYABLE, Clock, Outcome, Rescuer, Sleep, worst_of
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore

__all__ = [
    "BODY_TIMEOUT",
    "COMMANDS",
    "DEFAULT_BODY_TIMEOUT",
    "METRICS",
    "READY",
    "REGISTRY",
    "RESCUER",
    "SETTINGS",
    "STORE",
    "create_receiver_app",
    "handle_alerts",
    "handle_commands",
    "handle_healthz",
    "handle_ready",
]

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("receiver_settings", ReceiverSettings)
RESCUER = web.AppKey("rescuer", Rescuer)
METRICS = web.AppKey("receiver_metrics", ReceiverMetrics)
REGISTRY = web.AppKey("receiver_registry", CollectorRegistry)
READY = web.AppKey[Callable[[], bool]]("receiver_ready")
STORE = web.AppKey("delivery_store", DeliveryStore)
BODY_TIMEOUT = web.AppKey("body_timeout", float)
COMMANDS = web.AppKey[CommandsHandler | None]("commands_handler")
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


def _unauthorized(request: web.Request, settings: ReceiverSettings) -> web.Response | None:
    """401 with the challenge of `receiver.auth`'s scheme, or None when authorized."""
    if _authorized(request, settings):
        return None
    assert settings.auth is not None
    challenge = (
        'Bearer realm="wechaty-exporter"'
        if settings.auth.scheme == "bearer"
        else 'Basic realm="wechaty-exporter", charset="UTF-8"'
    )
    return _error(401, "missing or wrong credentials", {"WWW-Authenticate": challenge})


async def _json_body(request: web.Request, cap: int) -> bytes | web.Response:
    """The JSON body of at most `cap` bytes, or the error response (415, 408, 413, 400)."""
    if request.content_type != "application/json":
        got = request.content_type or "none"
        return _error(415, f"Content-Type must be application/json, got {got}")
    timeout = request.app[BODY_TIMEOUT]
    try:
        async with asyncio.timeout(timeout):
            body = await _read_capped(request, cap)
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
        return _error(413, f"body larger than {cap} bytes")
    return body


async def _handle_alerts(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    refused = _unauthorized(request, settings)
    if refused is not None:
        return refused
    body = await _json_body(request, settings.max_body_bytes)
    if isinstance(body, web.Response):
        return body
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
    worst = worst_of(r for _, r in results)
    summary = [
        {"fingerprint": a.fingerprint, "status": a.status, "outcome": r.outcome.value}
        for a, r in results
    ]
    if worst.outcome in RETRYABLE:
        retry_after = str(max(1, round(worst.retry_after))) if worst.retry_after else "30"
        return web.json_response(
            {"error": worst.reason or "delivery failed; retry", "alerts": summary},
            status=503,
            headers={"Retry-After": retry_after},
        )
    if worst.outcome is Outcome.PERMANENT_FAILURE:
        return web.json_response({"error": worst.reason, "alerts": summary}, status=500)
    return web.json_response({"status": "ok", "alerts": summary})


async def handle_commands(request: web.Request) -> web.Response:
    """POST /commands (see the module docstring)."""
    response = await _handle_commands(request)
    request.app[METRICS].command_requests.labels(str(response.status)).inc()
    return response


async def _handle_commands(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    refused = _unauthorized(request, settings)
    if refused is not None:
        return refused
    handler = request.app[COMMANDS]
    if handler is None:
        return _error(404, "chat commands are not configured here (receiver.commands)")
    body = await _json_body(request, min(settings.max_body_bytes, MAX_COMMAND_BODY_BYTES))
    if isinstance(body, web.Response):
        return body
    try:
        command = decode_command_request(body)
        replies = await handler(command)
    except CommandRefused as exc:
        if exc.status == 400:
            log.warning("rejected POST /commands: %s", exc.reason)
        return _error(exc.status, exc.reason)
    except Exception:
        log.exception("chat command over POST /commands failed")
        return _error(500, "the command failed; see the receiver's log")
    return web.json_response(encode_replies(replies))


async def handle_healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def handle_ready(request: web.Request) -> web.Response:
    if request.app[READY]() and request.app[STORE].check():
        return web.Response(text="ready\n")
    return web.Response(text="not ready\n", status=503)


def create_receiver_app(
    settings: ReceiverSettings,
    messenger: Messenger,
    exporter: QrSource,
    store: DeliveryStore,
    *,
    clock: Clock = time.time,
    sleep: Sleep = asyncio.sleep,
    ready: Callable[[], bool] | None = None,
    registry: CollectorRegistry | None = None,
    rescue_enabled: Callable[[str], bool] | None = None,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    commands: CommandsHandler | None = None,
) -> web.Application:
    """The receiver app. The caller owns (and closes) messenger, exporter client and store.

    `ready` lets a host (the peer bot) hold /-/ready at 503 until it can send; `rescue_enabled`
    (default: always) lets it pause the messages about a bot (see `rescuer`).
    `body_timeout` bounds how long a request body may take to arrive (408 after it).
    `commands` answers POST /commands (404 without it; `commands_http`).
    """
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ReceiverMetrics(registry)
    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[REGISTRY] = registry
    app[STORE] = store
    app[BODY_TIMEOUT] = body_timeout
    app[COMMANDS] = commands
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
    app.router.add_post("/commands", handle_commands)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/-/ready", handle_ready)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    return app
