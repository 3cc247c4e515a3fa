"""Runs the receiver until cancelled: messenger, delivery store and exporter clients around it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from wechaty_exporter.delivery.commands_http import CommandsHandler
from wechaty_exporter.delivery.exporter_client import Exporters
from wechaty_exporter.delivery.messengers import Messenger
from wechaty_exporter.delivery.messengers.apprise import AppriseMessenger
from wechaty_exporter.delivery.messengers.outbox import OutboxMessenger
from wechaty_exporter.delivery.messengers.webhook import WebhookMessenger
from wechaty_exporter.delivery.receiver import METRICS, REGISTRY, create_receiver_app
from wechaty_exporter.delivery.refresh import QrRefresher
from wechaty_exporter.delivery.settings import (
    ReceiverSettings,
    missing_exporter_problems,
    open_listen_problem,
)
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.settings import ConfigError, format_address
from wechaty_exporter.webconfig import guard, open_web_config
from wechaty_exporter.webserver import GuardCollector, GuardedRunner

log = logging.getLogger(__name__)

OUTBOX_FILENAME = "outbox.jsonl"


def build_messenger(
    settings: ReceiverSettings, *, state_dir: Path, store: DeliveryStore | None = None
) -> Messenger:
    """The messenger the settings choose. `wechaty` needs a running bot: `wechaty-exporter bot`
    builds that one itself and passes it to `serve_receiver`. `store` keeps the apprise
    messenger's per-channel delivery records (in memory without one)."""
    chosen = settings.messenger
    if chosen.kind == "outbox":
        path = chosen.path if chosen.path is not None else state_dir / OUTBOX_FILENAME
        return OutboxMessenger(path)
    if chosen.kind == "webhook":
        if chosen.url is None:
            raise ConfigError(["receiver.messenger.url: required for the webhook messenger"])
        return WebhookMessenger(chosen.url, token=chosen.token, timeout=chosen.timeout)
    if chosen.kind == "apprise":
        if not chosen.channels:
            raise ConfigError(["receiver.messenger.urls: the apprise messenger needs a URL"])
        return AppriseMessenger(
            chosen.channels,
            timeout=chosen.timeout,
            store=store,
            record_ttl=settings.dedupe_ttl,
            messages=settings.messages,
        )
    raise ConfigError(
        [
            "receiver.messenger.type: wechaty sends from inside `wechaty-exporter bot`;"
            " `wechaty-exporter receiver` alone supports outbox, webhook and apprise"
        ]
    )


async def serve_receiver(
    settings: ReceiverSettings,
    *,
    state_dir: Path | str | None,
    messenger: Messenger | None = None,
    ready: Callable[[], bool] | None = None,
    started: asyncio.Future[list[str]] | None = None,
    registry: CollectorRegistry | None = None,
    rescue_enabled: Callable[[str], bool] | None = None,
    commands: CommandsHandler | None = None,
) -> None:
    """Serve the receiver until cancelled. A messenger passed in stays open (its owner closes it);
    `started`, when given, receives the bound addresses once the site listens. Without a state
    dir, delivery state lives in memory and a restart may repeat messages. `registry` (served
    at /metrics, the receiver's metrics added), `rescue_enabled` (whether to send about a
    bot; default always) and `commands` (POST /commands; 404 without) go to
    `create_receiver_app`. A bot with admins but no exporter
    (`receiver.exporters`) raises ConfigError before anything starts."""
    missing = missing_exporter_problems(settings.missing_exporters())
    if missing:
        raise ConfigError(missing, "receiver")
    web_config = open_web_config(settings.web_config_file)
    unguarded = open_listen_problem(settings, web=web_config.config if web_config else None)
    if unguarded is not None:  # beyond loopback without auth: refuse to start
        raise ConfigError([unguarded], "receiver")
    own_messenger = messenger is None
    if state_dir is None:
        if (
            messenger is None
            and settings.messenger.kind == "outbox"
            and not settings.messenger.path
        ):
            raise ConfigError(["no outbox file: give --outbox PATH or --state-dir DIR"], "receiver")
        log.warning("no --state-dir: dedupe state is in memory only; a restart may repeat messages")
        store = DeliveryStore(":memory:")
        directory = Path.cwd()
    else:
        directory = Path(state_dir)
        store = DeliveryStore.in_state_dir(directory)
    chosen = messenger or build_messenger(settings, state_dir=directory, store=store)
    exporter = Exporters(settings)
    runner: web.AppRunner | None = None
    refreshing: asyncio.Task[None] | None = None
    try:
        app = create_receiver_app(
            settings,
            chosen,
            exporter,
            store,
            ready=ready,
            registry=registry,
            rescue_enabled=rescue_enabled,
            commands=commands,
        )
        refresher = QrRefresher(
            settings,
            chosen,
            exporter,
            store,
            app[METRICS],
            clock=time.time,
            sleep=asyncio.sleep,
            rescue_enabled=rescue_enabled,
        )
        if web_config is not None:  # with `auth` bearer, /alerts and /commands check it
            guard(app, web_config, bearer_checked=_bearer_checked(settings))
        refreshing = asyncio.create_task(refresher.run(), name="qr-refresh")
        runner = GuardedRunner(app)  # webserver.py: header deadline, connection cap
        app[REGISTRY].register(GuardCollector(runner.guard, "wechaty_receiver"))
        await runner.setup()
        tls = web_config.ssl_context if web_config is not None else None
        await runner.listen(host=settings.listen_host, port=settings.listen_port, ssl_context=tls)
        addresses = [_address(a) for a in runner.addresses]
        log.info(
            "receiver listening on %s, messenger %s, exporter %s, state %s",
            ", ".join(addresses),
            chosen.name,
            exporter.describe(),
            store.path,
        )
        if started is not None and not started.done():
            started.set_result(addresses)
        await asyncio.Event().wait()
    finally:
        if refreshing is not None:
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing
        if runner is not None:
            await runner.cleanup()
        await exporter.close()
        if own_messenger:
            await chosen.close()
        store.close()


def _bearer_checked(settings: ReceiverSettings) -> Callable[[web.Request], bool] | None:
    """The requests whose handler checks `receiver.auth`'s bearer token itself."""
    if settings.auth is None or settings.auth.scheme != "bearer":
        return None
    return lambda request: request.method == "POST" and request.path in ("/alerts", "/commands")


def _address(sockname: object) -> str:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return format_address(str(sockname[0]), sockname[1])
    return str(sockname)


async def until_signalled(work: Awaitable[None], logger: logging.Logger = log) -> None:
    """Await `work` until SIGINT/SIGTERM cancels it (the main task of `asyncio.run`); logs
    "stopped" to `logger` then."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await work
    except asyncio.CancelledError:
        logger.info("stopped")


def run_receiver_cli(settings: ReceiverSettings, state_dir: str | None) -> int:
    """`wechaty-exporter receiver`: serve until SIGINT/SIGTERM. Raises ConfigError."""
    if not settings.admins and not settings.fallback_admins:
        log.warning("no admins configured (--admin BOT=CONTACT): alerts will reach nobody")
    asyncio.run(until_signalled(serve_receiver(settings, state_dir=state_dir)))
    return 0
