"""`wechaty-exporter bot`: the peer bot from its settings, until stopped.

The puppet service comes from `bot.puppet` in the config, else WECHATY_PUPPET_SERVICE_ENDPOINT /
WECHATY_PUPPET_SERVICE_TOKEN.

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
from pathlib import Path

from wechaty_exporter.delivery.main import until_signalled
from wechaty_exporter.peerbot.settings import BotSettings

log = logging.getLogger(__name__)

PROG = "wechaty-exporter bot"


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
