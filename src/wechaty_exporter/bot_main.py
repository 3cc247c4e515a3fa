"""`wechaty-exporter bot`: settings from the config file and flags, then the peer bot until stopped.

Reads these `args` attributes (each may be missing or None): `config`, `listen`, `exporter_url`,
`admins` (a list of BOT=CONTACT strings), `self_log`, `state_dir`. The puppet service comes from
`bot.puppet` in the config, else WECHATY_PUPPET_SERVICE_ENDPOINT / WECHATY_PUPPET_SERVICE_TOKEN.

Exit status: 0 after SIGINT/SIGTERM; 1 when the bot cannot start (puppet service unreachable or
refusing, self-log or listen address unusable); 2 for a configuration problem (ConfigError is raised
for the CLI to print; a missing puppet endpoint or token is printed here). Failures print one line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path

from wechaty_exporter.bot_settings import BotSettings, apply_bot_flags
from wechaty_exporter.config import load_config
from wechaty_exporter.receiver_main import until_signalled
from wechaty_exporter.receiver_settings import parse_admin_flags

log = logging.getLogger(__name__)

PROG = "wechaty-exporter bot"


def bot_settings_from_args(args: argparse.Namespace) -> BotSettings:
    """`bot` flags over the config file's `bot:` section. Raises ConfigError."""
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


def run_bot_cli(args: argparse.Namespace) -> int:
    """`wechaty-exporter bot`: run until SIGINT/SIGTERM. Raises ConfigError."""
    settings = bot_settings_from_args(args)
    # Importing python-wechaty creates $CACHE_DIR (default ./.wechaty in the working directory).
    cache = settings.state_dir or Path(tempfile.gettempdir())
    os.environ.setdefault("CACHE_DIR", str(cache / "wechaty-cache"))

    from wechaty_exporter.bot import run_peer_bot
    from wechaty_exporter.messengers.wechaty import (
        BotStartError,
        PuppetService,
        PuppetServiceConfigError,
    )
    from wechaty_exporter.messengers.wechaty_compat import one_line_logs

    one_line_logs()

    try:
        service = PuppetService.from_env(
            endpoint=settings.puppet.endpoint, token=settings.puppet.token
        )
    except PuppetServiceConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if not settings.receiver.admins and not settings.receiver.fallback_admins:
        log.warning("no admins configured (--admin BOT=CONTACT): alerts will reach nobody")

    try:
        asyncio.run(until_signalled(run_peer_bot(settings, service), log))
    except (BotStartError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0
