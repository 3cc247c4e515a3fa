"""The commands that run servers: `serve`, `receiver` and `bot`, from their flags and the config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
from typing import TYPE_CHECKING

from wechaty_exporter.config import load_config
from wechaty_exporter.delivery.receiver_flags import apply_receiver_flags, parse_admin_flags
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.exporter.settings import ExporterSettings, apply_serve_flags
from wechaty_exporter.peerbot.settings import BotSettings, apply_bot_flags
from wechaty_exporter.settings import ConfigError, format_address, read_secret

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("wechaty_exporter")


def _serve_settings(args: argparse.Namespace) -> ExporterSettings:
    settings = load_config(args.config).exporter if args.config else ExporterSettings()
    settings = apply_serve_flags(
        settings,
        logs=args.logs,
        listen=args.listen,
        state_dir=args.state_dir,
        qr_token_file=args.qr_token_file,
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


async def _serve_exporter(app: web.Application, sock: socket.socket) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    from wechaty_exporter.delivery.main import until_signalled
    from wechaty_exporter.exporter.app import create_exporter_app
    from wechaty_exporter.exporter.monitor import Monitor

    settings = _serve_settings(args)
    token = (
        read_secret(settings.qr_token_file, "--web.qr-token-file")
        if settings.qr_token_file
        else None
    )
    sock = _listen(settings.listen_host, settings.listen_port)
    monitor = Monitor(settings, use_inotify=not args.no_inotify)
    app = create_exporter_app(monitor, qr_token=token)
    host, port = sock.getsockname()[:2]
    base = f"http://{format_address(host, port)}"
    for bot, paths in settings.bots:
        log.info("bot %s: %s", bot, ", ".join(paths))
    log.info(
        "serving on %s/ (status page), %s/metrics, %s/api/v1/bots; state dir: %s",
        base, base, base, settings.state_dir or "none (restarts recover from the logs' ends)",
    )  # fmt: skip
    asyncio.run(until_signalled(_serve_exporter(app, sock), log))
    return 0


def receiver_settings_from_args(args: argparse.Namespace) -> ReceiverSettings:
    """`receiver` flags over the config file's `receiver:` section. Raises ConfigError."""
    config = getattr(args, "config", None)
    settings = (load_config(config).receiver if config else None) or ReceiverSettings()
    return apply_receiver_flags(
        settings,
        listen=getattr(args, "listen", None),
        exporter_url=getattr(args, "exporter_url", None),
        admins=parse_admin_flags(getattr(args, "admins", None) or ()),
        outbox=getattr(args, "outbox", None),
    )


def bot_settings_from_args(args: argparse.Namespace) -> BotSettings:
    """`bot` flags over the config file's `bot:` section. Raises ConfigError.

    Reads these `args` attributes (each may be missing or None): `config`, `listen`,
    `exporter_url`, `admins` (a list of BOT=CONTACT strings), `self_log`, `state_dir`."""
    config = getattr(args, "config", None)
    settings = (load_config(config).bot if config else None) or BotSettings()
    return apply_bot_flags(
        settings,
        listen=getattr(args, "listen", None),
        exporter_url=getattr(args, "exporter_url", None),
        admins=parse_admin_flags(getattr(args, "admins", None) or ()),
        self_log=getattr(args, "self_log", None),
        state_dir=getattr(args, "state_dir", None),
    )


def cmd_receiver(args: argparse.Namespace) -> int:
    from wechaty_exporter.delivery.main import run_receiver_cli

    return run_receiver_cli(receiver_settings_from_args(args), args.state_dir)


def cmd_bot(args: argparse.Namespace) -> int:
    from wechaty_exporter.peerbot.main import run_bot_cli

    return run_bot_cli(bot_settings_from_args(args))
