"""The `wechaty-exporter` command: subcommands, flags, logging; the only place that starts servers.

Every flag can also come from the environment as WECHATY_EXPORTER_<FLAG> (environment.py), e.g.
WECHATY_EXPORTER_WEB_LISTEN_ADDRESS=0.0.0.0:9839. Flags win over the environment, which wins over
the config file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wechaty_exporter import __version__, environment
from wechaty_exporter.config import load_config
from wechaty_exporter.delivery.settings import (
    ReceiverSettings,
    apply_receiver_flags,
    parse_admin_flags,
)
from wechaty_exporter.exporter.settings import ExporterSettings, apply_serve_flags
from wechaty_exporter.peerbot.settings import BotSettings, apply_bot_flags
from wechaty_exporter.settings import ConfigError, format_address, parse_log_flag, read_secret

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("wechaty_exporter")


def _systemd_state_dir() -> str | None:
    """--state-dir's default: the first of systemd's $STATE_DIRECTORY (a colon-separated list
    when a unit names several)."""
    systemd = os.environ.get("STATE_DIRECTORY")
    return systemd.split(":")[0] if systemd else None


def _log_flag(value: str) -> tuple[str, str]:
    try:
        return parse_log_flag(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (default: info)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wechaty-exporter",
        description=(
            "Keeps WeChat chatbots logged in: follows Wechaty bot logs, serves their login state "
            "as Prometheus metrics, and hands the freshest login QR to whoever must scan it."
        ),
        epilog="Run `wechaty-exporter COMMAND --help` for a command's flags. Every flag can "
        f"also be set as an environment variable {environment.PREFIX}<FLAG> (upper case, dots "
        "and dashes as underscores; a repeatable flag's values separated by commas, e.g. "
        f"{environment.PREFIX}LOG=alice=/var/log/alice.log,bob=/var/log/bob.log); flags win.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser(
        "serve",
        help="follow bot logs and serve /metrics, the API and the status page",
        description="Follow bot logs and serve /metrics, /api/v1/bots, QR endpoints and a "
        "status page. Example: wechaty-exporter serve --log bob=/var/log/bob.log",
    )
    serve.add_argument("--config", help="YAML config file")
    serve.add_argument(
        "--log",
        dest="logs",
        action="append",
        type=_log_flag,
        default=[],
        metavar="NAME=PATH",
        help="a bot's log file; repeat for more bots, or the same NAME for a second file",
    )
    serve.add_argument(
        "--web.listen-address",
        dest="listen",
        metavar="HOST:PORT",
        help="where to serve HTTP (default: 127.0.0.1:9839)",
    )
    serve.add_argument(
        "--state-dir",
        default=_systemd_state_dir(),
        metavar="DIR",
        help="where read positions and bot states are saved so restarts lose nothing "
        "(default: $STATE_DIRECTORY; without one, each start recovers from the logs' ends)",
    )
    serve.add_argument(
        "--web.qr-token-file",
        dest="qr_token_file",
        metavar="FILE",
        help="file holding a bearer token that lets non-loopback clients fetch login QRs",
    )
    serve.add_argument(
        "--no-inotify",
        action="store_true",
        help="poll files instead of using inotify (network filesystems)",
    )
    _add_common(serve)

    replay = sub.add_parser(
        "replay",
        help="parse whole log files once and print the resulting state",
        description="Run the exporter's parser and state machine over whole files, once. "
        "Each PATH belongs to --bot, or to NAME when given as NAME=PATH, or else to the bot "
        "named by the file (alice-out.log and alice-error.log are both bot alice).",
    )
    replay.add_argument("--bot", help="bot name for every PATH")
    replay.add_argument(
        "--format", choices=["prometheus", "json"], default="json", help="output (default: json)"
    )
    replay.add_argument("--config", help="YAML config (for exporter.qr_hosts, bots.*.qr_source)")
    replay.add_argument("paths", nargs="+", metavar="PATH")
    _add_common(replay)

    check = sub.add_parser(
        "check-config",
        help="validate a config file and list every problem",
        description="Validate a config file: prints every problem with its location. Exit "
        "status: 0 when the file is usable, 1 when it has problems, 2 for a usage error.",
    )
    check.add_argument("file", metavar="FILE")
    _add_common(check)

    _add_receiver_parser(sub)
    _add_bot_parser(sub)
    return parser


def _add_delivery_flags(p: argparse.ArgumentParser, *, state_help: str) -> None:
    """Flags shared by `receiver` and `bot`: both deliver alerts to admins."""
    p.add_argument("--config", help="YAML config file")
    p.add_argument(
        "--web.listen-address", dest="listen", metavar="HOST:PORT",
        help="where to serve HTTP (default: 127.0.0.1:9840)",
    )  # fmt: skip
    p.add_argument(
        "--exporter-url", metavar="URL",
        help="the exporter to fetch QR codes from (default: http://127.0.0.1:9839)",
    )  # fmt: skip
    p.add_argument(
        "--admin", dest="admins", action="append", default=[], metavar="BOT=CONTACT",
        help="who is told about BOT; repeat for more",
    )  # fmt: skip
    p.add_argument(
        "--state-dir", default=_systemd_state_dir(),
        metavar="DIR", help=state_help,
    )  # fmt: skip
    _add_common(p)


def _add_receiver_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    receiver = sub.add_parser(
        "receiver",
        help="take Alertmanager webhooks and message the admins (alert + freshest QR)",
        description="Serve POST /alerts for Alertmanager's webhook; for every firing alert "
        "about a bot, send its admins the alert and the freshest login QR.",
    )
    receiver.add_argument(
        "--outbox", metavar="PATH",
        help="deliver to a JSONL outbox file instead of a messenger (dry runs, demos)",
    )  # fmt: skip
    _add_delivery_flags(receiver, state_help="where dedupe and delivery state is kept")


def _add_bot_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bot = sub.add_parser(
        "bot",
        help="run the peer bot: python-wechaty + the receiver + chat commands + self-log",
        description="Run a python-wechaty bot that hosts the receiver (POST /alerts), answers "
        "admins' chat commands and writes its own scan/login/logout lines to a self-log the "
        "exporter can follow. The puppet service comes from WECHATY_PUPPET_SERVICE_ENDPOINT "
        "and WECHATY_PUPPET_SERVICE_TOKEN.",
    )
    bot.add_argument(
        "--self-log", metavar="PATH",
        help="file for this bot's own scan/login/logout lines, for the exporter to follow "
        "(default: <state-dir>/self.log; '-' for stdout)",
    )  # fmt: skip
    _add_delivery_flags(bot, state_help="where the self-log, dedupe and delivery state are kept")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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


def _replay_targets(args: argparse.Namespace) -> list[tuple[str, str]]:
    targets = []
    for item in args.paths:
        name, sep, path = item.partition("=")
        if sep and name and not os.path.exists(item):
            targets.append((name, path))
        elif args.bot:
            targets.append((args.bot, item))
        else:
            stem = Path(item).name.split(".")[0]
            for suffix in ("-out", "-error", "-err"):
                stem = stem.removesuffix(suffix)
            targets.append((stem or "bot", item))
    return targets


def cmd_replay(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, generate_latest

    from wechaty_exporter.exporter.app import bot_document
    from wechaty_exporter.exporter.collector import BotView, FileView, WechatyCollector
    from wechaty_exporter.logs.replay import replay_files

    exporter = load_config(args.config).exporter if args.config else ExporterSettings()
    targets = _replay_targets(args)
    states = replay_files(
        targets, qr_hosts=exporter.qr_hosts, self_log_qr_bots=exporter.self_log_qr_bots
    )
    views = [
        BotView(bot, state, tuple(FileView(p, True, 0, 0, 0, 0) for b, p in targets if b == bot))
        for bot, state in states.items()
    ]
    if args.format == "json":
        doc = {"bots": [bot_document(v, with_qr=True) for v in views]}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WechatyCollector(lambda: views, __version__))
        sys.stdout.write(generate_latest(registry).decode())
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Exit 0 when the file is usable, 1 with every problem listed when it is not (as promtool
    and amtool do); 2 stays for usage errors."""
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(f"wechaty-exporter check-config: {exc}", file=sys.stderr)
        return 1
    bots = config.exporter.bots
    files = sum(len(paths) for _, paths in bots)
    sections = ", ".join(sorted(k for k in config.raw if k != "bots")) or "none"
    print(f"{args.file}: OK ({len(bots)} bot(s), {files} log file(s); sections: {sections})")
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


COMMANDS = {
    "serve": cmd_serve,
    "replay": cmd_replay,
    "check-config": cmd_check_config,
    "receiver": cmd_receiver,
    "bot": cmd_bot,
}


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> argparse.Namespace:
    """The command line over the environment (`environment.py`) over the defaults."""
    parser = build_parser()
    repeated = environment.apply(parser, os.environ if environ is None else environ)
    args = parser.parse_args(argv)
    environment.fill_repeated(args, repeated)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"wechaty-exporter {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"wechaty-exporter {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
