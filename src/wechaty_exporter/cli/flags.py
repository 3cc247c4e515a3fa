"""The `wechaty-exporter` command line: every subcommand's flags and help, nothing run here.

Every flag can also come from the environment as WECHATY_EXPORTER_<FLAG> (environment.py).
"""

from __future__ import annotations

import argparse
import os

from wechaty_exporter import __version__, environment
from wechaty_exporter.settings import parse_log_flag


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
    _add_web_config(serve)
    serve.add_argument(
        "--web.hostname", dest="hostnames", action="append", default=[], metavar="NAME",
        help="a name this exporter is reached by (the Host header), besides its listen address "
        "and localhost: requests naming another host get no login QR (DNS rebinding); repeat",
    )  # fmt: skip
    _add_web_limits(serve)
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

    _add_log_tools(sub)
    _add_receiver_parser(sub)
    _add_bot_parser(sub)
    return parser


def _add_log_tools(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`explain` and `dialects`: what the exporter makes of a log, and the rules it knows.

    Their --format flags carry a second, longer name so that each has its own environment
    variable (WECHATY_EXPORTER_EXPLAIN_FORMAT, ..._DIALECTS_FORMAT), apart from replay's."""
    explain = sub.add_parser(
        "explain",
        help="dry-run a log: which lines became which events, and which look like events but "
        "match nothing",
        description="Read whole log files as `serve` would and say, line by line, which lines "
        "became which events under which dialect or rule, which login QRs were rejected and "
        "why, and the near misses (lines that look like scan, login, logout or QR text but "
        "matched nothing); then the bot's end state. Exit status 0 when a login, logout or "
        "Waiting/Confirmed scan was found, 1 when none was (the exporter would say 'state "
        "unknown'), 2 for a usage or config error.",
    )
    explain.add_argument("--config", help="YAML config: its dialects, bots and qr_hosts")
    explain.add_argument(
        "--bot", help="read every PATH as this bot's (its dialect; default: the bot whose log "
        "it is in --config)",
    )  # fmt: skip
    explain.add_argument(
        "--format", choices=["text", "json"],
        default="text", help="output (default: text; colour on a terminal unless NO_COLOR)",
    )  # fmt: skip
    explain.add_argument("paths", nargs="+", metavar="PATH")
    _add_common(explain)

    dialects = sub.add_parser(
        "dialects",
        help="print the built-in dialects as rules, to start a custom one from",
        description="Print the built-in dialects in the rule form of a config file's "
        "`dialects:` section (docs/dialects.md): copy one under a new name and edit it.",
    )
    dialects.add_argument(
        "--format", choices=["text", "yaml"],
        default="text", help="output (default: text)",
    )  # fmt: skip
    _add_common(dialects)


def _add_web_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--web.config.file", dest="web_config_file", metavar="FILE",
        help="TLS, basic auth and headers for the HTTP server, in the exporter-toolkit's web "
        "config format; re-read when it changes (docs/operations.md)",
    )  # fmt: skip


def _add_web_limits(p: argparse.ArgumentParser) -> None:
    """What slow clients may hold of a server (webserver.py)."""
    p.add_argument(
        "--web.read-header-timeout", dest="read_header_timeout", metavar="DURATION",
        help="close a connection that has not sent a whole request head this long after "
        "connecting or starting it (default: 10s)",
    )  # fmt: skip
    p.add_argument(
        "--web.max-connections", dest="max_connections", metavar="N",
        help="connections kept open; past it the oldest half-open or idle one is closed "
        "(default: 512)",
    )  # fmt: skip


def _add_delivery_flags(p: argparse.ArgumentParser, *, state_help: str) -> None:
    """Flags shared by `receiver` and `bot`: both deliver alerts to admins."""
    p.add_argument("--config", help="YAML config file")
    p.add_argument(
        "--web.listen-address", dest="listen", metavar="HOST:PORT",
        help="where to serve HTTP (default: 127.0.0.1:9840)",
    )  # fmt: skip
    _add_web_config(p)
    _add_web_limits(p)
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
