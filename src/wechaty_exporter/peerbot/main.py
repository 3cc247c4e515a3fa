"""`wechaty-exporter bot`: the peer bot from its settings, until stopped.

The puppet service comes from `bot.puppet` in the config, else WECHATY_PUPPET_SERVICE_ENDPOINT /
WECHATY_PUPPET_SERVICE_TOKEN.

Secrets stay out of the bot's log, whatever `--log.level`: the HTTP/2 libraries (`WIRE_LOGGERS`)
log every header at DEBUG, the puppet token (sent as `:authority`) too, so they never go below
INFO; and every handler blanks the secrets the bot holds (`bot_secrets`) from every record.

Exit status: 0 after SIGINT/SIGTERM; 1 when the bot cannot start (puppet service unreachable or
refusing, self-log or listen address unusable); 2 for a configuration problem (ConfigError is raised
for the CLI to print; a missing puppet endpoint or token is printed here). Failures print one line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from wechaty_exporter.chatops.redact import SecretsFilter, known_secrets
from wechaty_exporter.delivery.main import until_signalled
from wechaty_exporter.peerbot.settings import BotSettings

log = logging.getLogger(__name__)

PROG = "wechaty-exporter bot"
# grpclib's HTTP/2 stack: hpack logs each header it encodes or decodes at DEBUG.
WIRE_LOGGERS = ("hpack", "h2", "grpclib")


def bot_secrets(settings: BotSettings, puppet_token: str | None = None) -> tuple[str, ...]:
    """Every secret the bot holds: the puppet token, the TOTP secret, the receiver's bearer token
    or password, the exporters' QR tokens (`redact.known_secrets`: long enough ones)."""
    receiver = settings.receiver
    return known_secrets(
        puppet_token,
        settings.puppet.token,
        settings.commands.totp_secret,
        receiver.exporter_token,
        *(target.token for _, target in receiver.exporters),
        receiver.auth.secret if receiver.auth is not None else None,
    )


def keep_secrets_out_of_logs(secrets: tuple[str, ...]) -> None:
    """`WIRE_LOGGERS` at INFO or above, and `secrets` blanked by every handler there is (the
    root logger's and those of loggers that do not propagate, like python-wechaty's)."""
    for name in WIRE_LOGGERS:
        wire = logging.getLogger(name)
        if wire.getEffectiveLevel() < logging.INFO:
            wire.setLevel(logging.INFO)
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    blank = SecretsFilter(secrets)
    for handler in {h for logger in loggers for h in logger.handlers}:
        handler.addFilter(blank)


def run_bot_cli(settings: BotSettings) -> int:
    """`wechaty-exporter bot`: run until SIGINT/SIGTERM. Raises ConfigError."""
    # Importing python-wechaty creates $CACHE_DIR (default ./.wechaty in the working directory).
    cache = settings.state_dir or Path(tempfile.gettempdir())
    os.environ.setdefault("CACHE_DIR", str(cache / "wechaty-cache"))

    from wechaty_exporter.peerbot.bot import run_peer_bot
    from wechaty_exporter.peerbot.compat import one_line_logs
    from wechaty_exporter.peerbot.messenger import (
        BotStartError,
        PuppetService,
        PuppetServiceConfigError,
    )

    one_line_logs()

    try:
        service = PuppetService.from_env(
            endpoint=settings.puppet.endpoint, token=settings.puppet.token, tls=settings.puppet.tls
        )
    except PuppetServiceConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    secrets = bot_secrets(settings, service.token)
    keep_secrets_out_of_logs(secrets)
    settings = replace(settings, commands=replace(settings.commands, known_secrets=secrets))
    if not settings.receiver.admins and not settings.receiver.fallback_admins:
        log.warning("no admins configured (--admin BOT=CONTACT): alerts will reach nobody")

    try:
        asyncio.run(until_signalled(run_peer_bot(settings, service), log))
    except (BotStartError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0
