"""The exporter's HTTP face: /metrics, the JSON API, QR endpoints and the status page.

The login QR is a credential. Its endpoints (and the QR on the status page) answer loopback
clients that are not behind a proxy and name the exporter by one of its own names, and anyone
holding the bearer token when a token file is configured; everyone else gets 401/403 and no hint
of the QR, and an address that sent too many wrong tokens 429 (qraccess.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, generate_latest

from wechaty_exporter import __version__
from wechaty_exporter.exporter.collector import BotView, WechatyCollector
from wechaty_exporter.exporter.monitor import Monitor
from wechaty_exporter.exporter.qraccess import (
    AccessCollector,
    AccessCounts,
    TokenThrottle,
    forwarding_header,
    local_name,
)
from wechaty_exporter.exporter.statuspage import render_status_page
from wechaty_exporter.logs.state import PendingQr
from wechaty_exporter.qrimage import qr_png

MONITOR = web.AppKey("monitor", Monitor)
QR_TOKEN = web.AppKey("qr_token", str)  # "" when no token is configured
LOCAL_NAMES = web.AppKey("local_names", frozenset)  # Host names besides loopback and localhost
THROTTLE = web.AppKey("token_throttle", TokenThrottle)  # wrong bearer tokens, per address
REFUSED = web.AppKey("qr_refused", AccessCounts)
REGISTRY = web.AppKey("registry", CollectorRegistry)  # /metrics: the server adds its own there

NO_STORE = {"Cache-Control": "no-store"}
# The Prometheus text format 0.0.4, spelled out: older prometheus_client releases lack a constant.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


def rfc3339(ts: float | None) -> str | None:
    """Unix seconds → RFC 3339 in UTC (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


def bot_document(
    view: BotView, *, with_qr: bool = False, counting_since: float | None = None
) -> dict[str, Any]:
    """One bot as `/api/v1/bots` shows it (docs/exporter.md, "The API"); `with_qr` adds the raw
    QR (replay only).

    `counting_since`: the time from which logins_total, logouts_total and qr_codes_total count
    every change (docs/exporter.md); None, as for `replay`, means from the logs' first line.
    """
    s = view.state
    doc: dict[str, Any] = {
        "bot": view.name,
        "logged_in": s.logged_in,
        "qr_pending": s.qr is not None,
        "user": s.user,
        "logins_total": s.logins_total,
        "logouts_total": s.logouts_total,
        "qr_codes_total": s.qr_codes_total,
        "counting_since": rfc3339(counting_since),
        "last_login": rfc3339(s.last_login),
        "last_logout": rfc3339(s.last_logout),
        "logout_reason": s.logout_reason,
        "qr_seen_at": rfc3339(s.qr.seen_at if s.qr else None),
        "log_files": [{"path": f.path, "present": f.present} for f in view.files],
        # per log: what it is read as (`auto` or a dialect) and what it speaks (null: no event yet)
        "dialects": {f.path: {"dialect": f.dialect, "speaks": f.speaks} for f in view.files},
        "since": rfc3339(s.since),
        "last_error": rfc3339(s.last_error),
        "last_probe_received": rfc3339(s.last_probe_received),  # the duet probe (self-log)
    }
    if with_qr:
        doc["qr"] = s.qr.qrcode if s.qr else None
    return doc


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request gets no QR, and the status and headers that say so."""

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)


def qr_refusal(request: web.Request) -> Refusal | None:
    """None when the client may see QR codes, else how it is refused (qraccess.py)."""
    app = request.app
    token, refused = app[QR_TOKEN], app[REFUSED]
    header = request.headers.get("Authorization", "")
    challenge = {"WWW-Authenticate": "Bearer"} if token else {}
    status = 401 if token else 403
    if token and header.startswith("Bearer "):
        throttle = app[THROTTLE]
        if (wait := throttle.retry_after(request.remote)) is not None:
            refused.throttled += 1
            reason = f"too many wrong bearer tokens from this address; retry in {wait}s"
            return Refusal(429, reason, {"Retry-After": str(wait)})
        if hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            return None
        throttle.failed(request.remote)
        refused.wrong_token += 1
        return Refusal(401, "wrong bearer token", challenge)
    try:
        loopback = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        loopback = False
    if loopback and (name := forwarding_header(request.headers.keys())) is not None:
        refused.forwarded += 1
        reason = f"forwarded ({name}): QR codes are served to loopback clients only, not proxied"
        return Refusal(status, reason, challenge)
    if loopback and not local_name(request.headers.getall("Host", []), app[LOCAL_NAMES]):
        refused.foreign_host += 1
        host = request.headers.get("Host", "")
        reason = (
            f"Host {host!r} is not a name of this exporter (localhost, a loopback address, its "
            "listen address or --web.hostname): no QR for a page that may be DNS rebinding"
        )
        return Refusal(status, reason, challenge)
    if loopback:
        return None
    if token:
        return Refusal(status, "a bearer token is required", challenge)
    reason = "QR codes are served to loopback clients only (configure a token file for others)"
    return Refusal(status, reason, challenge)


def qr_access(request: web.Request) -> str | None:
    """None when the client may see QR codes, else the reason it may not."""
    refusal = qr_refusal(request)
    return None if refusal is None else refusal.reason


def _pending_qr(request: web.Request) -> tuple[str, PendingQr]:
    """The bot and its pending QR, or the HTTP error that answers instead (404, 401, 403)."""
    monitor, bot = request.app[MONITOR], request.match_info["bot"]
    if bot not in monitor.bots:
        raise _error(404, f"no bot named {bot!r}")
    if (refusal := qr_refusal(request)) is not None:
        raise _error(refusal.status, refusal.reason, refusal.headers)
    qr = monitor.pending_qr(bot)
    if qr is None:
        raise _error(404, f"no login QR pending for {bot}", NO_STORE)
    return bot, qr


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> web.HTTPException:
    error = web.HTTPException(
        text=json.dumps({"error": reason}), content_type="application/json", headers=headers
    )
    error.set_status(status)
    return error


async def handle_bots(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    since = monitor.counting_since
    docs = [bot_document(v, counting_since=since.get(v.name)) for v in monitor.snapshot()]
    return web.json_response({"bots": docs})


async def handle_qr(request: web.Request) -> web.Response:
    bot, qr = _pending_qr(request)
    state = request.app[MONITOR].bots.get(bot)
    body = {"bot": bot, "qrcode": qr.qrcode, "status": qr.status.name.title(),
            "seen_at": rfc3339(qr.seen_at),
            "logout_reason": state.logout_reason if state else None}  # fmt: skip
    return web.json_response(body, headers=NO_STORE)


async def handle_qr_png(request: web.Request) -> web.Response:
    _, qr = _pending_qr(request)
    return web.Response(body=qr_png(qr.qrcode), content_type="image/png", headers=NO_STORE)


async def handle_status_page(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    refusal = qr_refusal(request)
    if refusal is not None and refusal.status == 429:
        raise _error(refusal.status, refusal.reason, refusal.headers)
    show_qr = refusal is None
    html = render_status_page(
        monitor.snapshot(),
        show_qr=show_qr,
        version=__version__,
        counting_since=monitor.counting_since,
    )
    return web.Response(text=html, content_type="text/html", headers=NO_STORE)


def metrics_handler(registry: CollectorRegistry) -> Handler:
    """/metrics in the text format 0.0.4, gzip when asked.

    Always text, even when the scraper prefers OpenMetrics: nothing here needs OpenMetrics'
    extras, Prometheus accepts both, and prometheus_client's OpenMetrics encoder takes twice as
    long (docs/BENCHMARKS.md).
    """

    async def handle_metrics(request: web.Request) -> web.Response:
        response = web.Response(
            body=generate_latest(registry), headers={"Content-Type": TEXT_FORMAT}
        )
        response.enable_compression()
        return response

    return handle_metrics


async def handle_healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def handle_ready(request: web.Request) -> web.Response:
    if request.app[MONITOR].ready.is_set():
        return web.Response(text="ready\n")
    return web.Response(text="recovering state from the logs\n", status=503)


def create_exporter_app(
    monitor: Monitor,
    *,
    qr_token: str | None = None,
    hostnames: Iterable[str] = (),
    throttle: TokenThrottle | None = None,
) -> web.Application:
    """The exporter app. Its cleanup context runs `monitor` for the app's lifetime.

    `hostnames`: names the exporter is reached by besides localhost and loopback addresses (the
    listen address, `--web.hostname`); `throttle`: of wrong bearer tokens (default 5 at once,
    then one every 12 s per address)."""
    app = web.Application()
    app[MONITOR] = monitor
    app[QR_TOKEN] = qr_token or ""
    app[LOCAL_NAMES] = frozenset(h.lower().strip("[]").rstrip(".") for h in hostnames if h)
    app[THROTTLE] = throttle or TokenThrottle()
    app[REFUSED] = AccessCounts()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WechatyCollector(monitor.snapshot, __version__))
    registry.register(AccessCollector(app[REFUSED]))
    app[REGISTRY] = registry
    app.router.add_get("/", handle_status_page)
    app.router.add_get("/metrics", metrics_handler(registry))
    app.router.add_get("/api/v1/bots", handle_bots)
    app.router.add_get("/api/v1/bots/{bot}/qr", handle_qr)
    app.router.add_get("/api/v1/bots/{bot}/qr.png", handle_qr_png)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/-/ready", handle_ready)
    app.cleanup_ctx.append(_run_monitor)
    return app


async def _run_monitor(app: web.Application) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(app[MONITOR].run(stop), name="monitor")
    yield
    stop.set()
    try:
        await asyncio.wait_for(task, timeout=10)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
