"""`wechaty-exporter bot` until cli.py has that subcommand: the same flags, then run_bot_cli."""

from __future__ import annotations

import argparse
import logging
import sys

from wechaty_exporter.bot_main import run_bot_cli
from wechaty_exporter.config import ConfigError


def main() -> int:
    parser = argparse.ArgumentParser(prog="wechaty-exporter bot")
    parser.add_argument("--config")
    parser.add_argument("--web.listen-address", dest="listen")
    parser.add_argument("--exporter-url")
    parser.add_argument("--admin", dest="admins", action="append", default=[])
    parser.add_argument("--self-log")
    parser.add_argument("--state-dir")
    parser.add_argument("--log.level", dest="log_level", default="info")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return run_bot_cli(args)
    except ConfigError as exc:  # as cli.main does
        print(f"wechaty-exporter bot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
