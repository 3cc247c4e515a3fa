"""The `wechaty-exporter` command: parse the flags, set up logging, run one subcommand.

The only place that starts servers (cli/run.py). Every flag can also come from the environment as
WECHATY_EXPORTER_<FLAG> (environment.py), e.g. WECHATY_EXPORTER_WEB_LISTEN_ADDRESS=0.0.0.0:9839.
Flags win over the environment, which wins over the config file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from wechaty_exporter import environment
from wechaty_exporter.cli.flags import build_parser
from wechaty_exporter.settings import ConfigError


def _setup_logging(level: str) -> None:
    import logging

    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# Subcommand → (module, function), imported only when run: `replay` must not pay for the HTTP
# stack (aiohttp, prometheus_client's exposition) that `serve` and `receiver` import.
COMMANDS = {
    "serve": ("run", "cmd_serve"),
    "replay": ("logtools", "cmd_replay"),
    "check-config": ("logtools", "cmd_check_config"),
    "explain": ("logtools", "cmd_explain"),
    "dialects": ("logtools", "cmd_dialects"),
    "receiver": ("run", "cmd_receiver"),
    "bot": ("run", "cmd_bot"),
}

# Commands that only read files and print: nothing they import logs, so they skip the logging
# set-up and its imports (part of `replay`'s start-up budget, docs/BENCHMARKS.md).
_UNLOGGED = frozenset({"replay", "explain", "dialects"})


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs subcommand `name`, its module imported now."""
    module, function = COMMANDS[name]
    found: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"wechaty_exporter.cli.{module}"), function
    )
    return found


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> argparse.Namespace:
    """The command line over the environment (`environment.py`) over the defaults."""
    parser = build_parser()
    pending = environment.apply(parser, os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    (subcommands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = subcommands.choices[args.command]
    environment.finish(args, pending, command, command.prog)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command not in _UNLOGGED:
        _setup_logging(args.log_level)
    try:
        return command(args.command)(args)
    except ConfigError as exc:
        print(f"wechaty-exporter {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"wechaty-exporter {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
