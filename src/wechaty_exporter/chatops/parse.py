"""Chat text → a `Command` or what is wrong with it; also durations and lenient RFC 3339 times."""

from __future__ import annotations

import re

from wechaty_exporter.chatops.model import Command, Usage
from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.alerts import parse_rfc3339
from wechaty_exporter.delivery.chattext import clip
from wechaty_exporter.delivery.templates import Messages, default_messages

WORDS = (
    "help", "status", "qr", "alerts", "silence", "silences", "unsilence", "ack", "restart",
    "log", "rescue",
)  # fmt: skip

_CODE = re.compile(r"^\d{6}$")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_time(value: object) -> float | None:
    """An RFC 3339 time from a JSON document (the exporter's, Alertmanager's) → Unix seconds.

    Lenient: None for a missing or non-string value, Go's zero time, or anything
    `parse_rfc3339` refuses, so one bad field reads as unknown instead of failing the document.
    """
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def parse_duration(text: str) -> float | None:
    """'90s', '30m', '2h', '1d', '1w', '1h30m' → seconds; None for anything else."""
    m = _DURATION.match(text.lower())
    if m is None or not any(m.groups()):
        return None
    w, d, h, mins, s = (int(g or 0) for g in m.groups())
    return float((((w * 7 + d) * 24 + h) * 60 + mins) * 60 + s)


def parse_command(
    text: str, settings: CommandsSettings, messages: Messages | None = None
) -> Command | Usage | None:
    """A chat message → a Command, a Usage (what is wrong, in `messages`' language), or None
    (empty: not a command).

    Command words are case-insensitive, arguments keep their case. For a command whose policy
    is totp, a last argument of six digits is taken as the code.
    """
    words = text.split()
    if not words:
        return None
    m = messages or default_messages()
    word = words[0].lower().removeprefix("/")
    args = list(words[1:])

    def say(problem: str, **values: object) -> str:
        base = {"word": word, "value": "", "needs_code": False, "direction": "", "longest": ""}
        return m.render("chat/usage.txt.j2", problem=problem, **{**base, **values})

    if word not in WORDS:
        return Usage("unknown", say("unknown_command", value=clip(words[0], 40)), text)
    key = word
    if word == "rescue":
        direction = args[0].lower() if args else ""
        if direction not in ("on", "off"):
            return Usage("rescue_on", say("rescue"), text)
        key = f"rescue_{direction}"
    code = None
    if settings.policy(key) == "totp" and args and _CODE.match(args[-1]):
        code = args.pop()
    shown = " ".join((word, *args))

    def usage(problem: str, **values: object) -> Usage:
        return Usage(key, say(problem, **values), shown)

    def bot_at(i: int) -> str:
        return args[i]

    n = len(args)
    if word in ("help", "status", "silences"):
        if n and word != "help":
            return usage("no_arguments")
        return Command(key, word, tuple(args), code=code)
    if word in ("qr", "alerts"):
        if n > 1:
            return usage("optional_bot")
        return Command(key, word, tuple(args), bot=args[0] if args else None, code=code)
    if word in ("ack", "restart"):
        if n != 1:
            return usage("bot", needs_code=settings.policy(key) == "totp")
        return Command(key, word, tuple(args), bot=bot_at(0), code=code)
    if word == "unsilence":
        if n != 1:
            return usage("unsilence")
        return Command(key, word, tuple(args), silence_id=args[0], code=code)
    if word == "log":
        if n not in (1, 2):
            return usage("log")
        lines = settings.log_default_lines
        if n == 2:
            if not args[1].isdigit() or int(args[1]) < 1:
                return usage("log_lines")
            lines = min(int(args[1]), settings.log_max_lines)
        return Command(key, word, tuple(args), bot=bot_at(0), lines=lines, code=code)
    if word == "rescue":
        if n != 2:
            return usage("rescue_bot", direction=args[0].lower())
        return Command(key, word, tuple(args), bot=bot_at(1), code=code)
    # silence <bot> <duration> [comment]
    if n < 2:
        return usage("silence")
    seconds = parse_duration(args[1])
    if seconds is None:
        return usage("silence_duration", value=clip(args[1], 20))
    if seconds < 60 or seconds > settings.silence_max:
        return usage("silence_range", longest=m.duration(settings.silence_max))
    return Command(
        key,
        word,
        tuple(args),
        bot=bot_at(0),
        duration=seconds,
        comment=" ".join(args[2:]),
        code=code,
    )
