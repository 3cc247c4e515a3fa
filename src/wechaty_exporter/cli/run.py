"""The commands that run servers: `serve`, `receiver` and `bot`, from their flags and the config."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import socket
import ssl
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from wechaty_exporter.chatops.settings import PluginCommands
from wechaty_exporter.config import load_config
from wechaty_exporter.delivery.receiver_flags import apply_receiver_flags, parse_admin_flags
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.exporter.settings import ExporterSettings, apply_serve_flags
from wechaty_exporter.peerbot.settings import BotSettings, apply_bot_flags
from wechaty_exporter.privatefiles import private_dir
from wechaty_exporter.settings import ConfigError, format_address, read_secret
from wechaty_exporter.webconfig import guard, open_web_config
from wechaty_exporter.webserver import (
    GuardCollector,
    GuardedRunner,
    parse_limits,
    set_default_limits,
)

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("wechaty_exporter")


_QR_PATH = re.compile(r"^/api/v1/bots/[^/]+/qr(\.png)?$")


def _serve_settings(args: argparse.Namespace) -> ExporterSettings:
    settings = load_config(args.config).exporter if args.config else ExporterSettings()
    settings = apply_serve_flags(
        settings,
        logs=args.logs,
        listen=args.listen,
        state_dir=args.state_dir,
        qr_token_file=args.qr_token_file,
        hostnames=getattr(args, "hostnames", None) or (),
    )
    if not settings.bots:
        raise ConfigError(["no logs to watch: give --log NAME=PATH or bots: in --config"], "serve")
    return settings


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts, so a busy address fails at once
    and nothing claims to serve on it. Raises OSError naming the address."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        return socket.create_server((host, port), family=info[0][0])
    except OSError as exc:
        where = format_address(host, port)
        raise OSError(exc.errno, f"cannot listen on {where}: {exc.strerror or exc}") from exc


async def _serve_exporter(
    app: web.Application, sock: socket.socket, ssl_context: ssl.SSLContext | None = None
) -> None:
    from wechaty_exporter.exporter.app import REGISTRY

    runner = GuardedRunner(app, shutdown_timeout=5)  # webserver.py: slow clients
    app[REGISTRY].register(GuardCollector(runner.guard, "wechaty_exporter"))
    await runner.setup()
    try:
        await runner.listen(sock=sock, ssl_context=ssl_context)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    from wechaty_exporter.delivery.main import until_signalled
    from wechaty_exporter.exporter.app import create_exporter_app
    from wechaty_exporter.exporter.monitor import Monitor

    _web_limits(args)
    settings = _serve_settings(args)
    token = (
        read_secret(settings.qr_token_file, "--web.qr-token-file")
        if settings.qr_token_file
        else None
    )
    web_config = open_web_config(getattr(args, "web_config_file", None))
    if settings.state_dir:  # refuse an unsafe state dir now, not at shutdown
        private_dir(settings.state_dir)
    sock = _listen(settings.listen_host, settings.listen_port)
    monitor = Monitor(settings, use_inotify=not args.no_inotify)
    app = create_exporter_app(
        monitor, qr_token=token, hostnames=(*settings.hostnames, settings.listen_host)
    )
    tls = web_config.ssl_context if web_config else None
    if web_config:  # a QR request carrying the bearer token is checked by its own handler
        qr_checked = (lambda r: bool(_QR_PATH.match(r.path))) if token else None
        guard(app, web_config, bearer_checked=qr_checked)
    host, port = sock.getsockname()[:2]
    base = f"{'https' if tls else 'http'}://{format_address(host, port)}"
    for bot, paths in settings.bots:
        log.info("bot %s: %s", bot, ", ".join(paths))
    log.info(
        "serving on %s/ (status page), %s/metrics, %s/api/v1/bots; state dir: %s",
        base, base, base, settings.state_dir or "none (restarts recover from the logs' ends)",
    )  # fmt: skip
    asyncio.run(until_signalled(_serve_exporter(app, sock, tls), log))
    return 0


def _web_limits(args: argparse.Namespace) -> None:
    """`--web.read-header-timeout` and `--web.max-connections`, for every server started here."""
    set_default_limits(
        parse_limits(
            getattr(args, "read_header_timeout", None), getattr(args, "max_connections", None)
        )
    )


def receiver_settings_from_args(args: argparse.Namespace) -> ReceiverSettings:
    """`receiver` flags over the config file's `receiver:` section. Raises ConfigError."""
    return _receiver_from_args(args)[0]


def _receiver_from_args(
    args: argparse.Namespace,
) -> tuple[ReceiverSettings, PluginCommands | None]:
    """`receiver_settings_from_args`, and the file's `receiver.commands` (POST /commands)."""
    config = getattr(args, "config", None)
    loaded = load_config(config) if config else None
    settings = (loaded.receiver if loaded else None) or ReceiverSettings()
    commands = loaded.receiver_commands if loaded else None
    return _with_web_config(
        apply_receiver_flags(
            settings,
            listen=getattr(args, "listen", None),
            exporter_url=getattr(args, "exporter_url", None),
            admins=parse_admin_flags(getattr(args, "admins", None) or ()),
            outbox=getattr(args, "outbox", None),
        ),
        args,
    ), commands


def _with_web_config(settings: ReceiverSettings, args: argparse.Namespace) -> ReceiverSettings:
    """`--web.config.file`, for the receiver (and the bot's) to read when it starts."""
    path = getattr(args, "web_config_file", None)
    return replace(settings, web_config_file=Path(path)) if path else settings


def bot_settings_from_args(args: argparse.Namespace) -> BotSettings:
    """`bot` flags over the config file's `bot:` section. Raises ConfigError.

    Reads these `args` attributes (each may be missing or None): `config`, `listen`,
    `exporter_url`, `admins` (a list of BOT=CONTACT strings), `self_log`, `state_dir`."""
    config = getattr(args, "config", None)
    settings = (load_config(config).bot if config else None) or BotSettings()
    settings = replace(settings, receiver=_with_web_config(settings.receiver, args))
    return apply_bot_flags(
        settings,
        listen=getattr(args, "listen", None),
        exporter_url=getattr(args, "exporter_url", None),
        admins=parse_admin_flags(getattr(args, "admins", None) or ()),
        self_log=getattr(args, "self_log", None),
        state_dir=getattr(args, "state_dir", None),
    )


def cmd_receiver(args: argparse.Namespace) -> int:
    from wechaty_exporter.delivery.main import run_receiver_cli, until_signalled

    _web_limits(args)
    settings, commands = _receiver_from_args(args)
    if commands is None:
        return run_receiver_cli(settings, args.state_dir)
    if not settings.admins:
        log.warning("receiver.commands without receiver.admins: POST /commands answers nobody")
    asyncio.run(until_signalled(_receiver_with_commands(settings, commands, args.state_dir)))
    return 0


async def _receiver_with_commands(
    settings: ReceiverSettings, plugin: PluginCommands, state_dir: str | None
) -> None:
    """The receiver answering POST /commands for the plugin bot `plugin.bot` as the python bot
    answers its chat (`ChatCommands`: the same parser, policy, handlers, audit and counters on
    /metrics; `rescue off` pauses this receiver's messages; `ack` silences end once resolved)."""
    from prometheus_client import CollectorRegistry

    from wechaty_exporter.chatops.redact import known_secrets
    from wechaty_exporter.delivery.main import serve_receiver
    from wechaty_exporter.peerbot.commands import ChatCommands

    secrets = known_secrets(
        plugin.settings.totp_secret,
        settings.exporter_token,
        *(target.token for _, target in settings.exporters),
        settings.auth.secret if settings.auth is not None else None,
        settings.messenger.token,
    )
    commands = replace(plugin.settings, known_secrets=secrets)  # kept out of `log` replies
    chat = ChatCommands(commands, settings, resolver=None, name=plugin.bot)
    registry = CollectorRegistry()
    registry.register(chat.collector())
    acks = asyncio.create_task(chat.expire_acks(), name="ack expiry")
    try:
        await serve_receiver(
            settings,
            state_dir=state_dir,
            registry=registry,
            rescue_enabled=chat.rescue_enabled,
            commands=chat.answer,
        )
    finally:
        acks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await acks
        await chat.close()


def cmd_bot(args: argparse.Namespace) -> int:
    from wechaty_exporter.peerbot.main import run_bot_cli

    _web_limits(args)
    return run_bot_cli(bot_settings_from_args(args))
