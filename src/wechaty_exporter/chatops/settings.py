"""The chat commands' settings: the `bot.commands:` section of the config → one frozen object.

    commands:                    # inside `bot:` (peerbot/settings.py), the one place for them
      security:                    # per command: none | confirm | totp
        restart: totp              # dangerous: restart, silence, unsilence, ack, rescue_off, log
        log: confirm               # default to totp with a secret file, else confirm; others none
      totp_secret_file: /etc/wechaty-exporter/totp-secret   # base32, as the authenticator has it
      totp_max_failures: 5         # wrong or replayed codes per admin ...
      totp_failure_window: 10m     # ... within this long, then codes are refused until it passes
      confirm_timeout: 60s         # "reply YES within 60 s"
      restart:                     # argv per bot, run without a shell
        bob: [pm2, restart, bob]
      restart_timeout: 60s         # then the process group is killed
      log_files:                   # what `log <bot>` reads (a path or a list of paths)
        bob: [/home/bob/.pm2/logs/bob-out.log, /home/bob/.pm2/logs/bob-error.log]
      log_default_lines: 20
      log_max_lines: 200           # at most 200
      alertmanager_url: http://127.0.0.1:9093
      alertmanager_timeout: 5s
      silence_max: 168h            # longest `silence <bot> <duration>`
      ack_max: 24h                 # an ack ends when the bot's alerts resolve, or after this
      reply_rate_limit: {burst: 10, per_minute: 6}   # commands per admin contact
      max_reply_chars: 1800        # replies are split into texts of at most this many characters

Who may command which bot is `bot.receiver.admins`, next to this section. Secrets are read from
files.

A standalone `wechaty-exporter receiver` answers the commands a TypeScript bot with the plugin
forwards (POST /commands) from `receiver.commands`: the same keys, plus `bot`, the plugin bot's
name (`parse_plugin_commands`); its admins are `receiver.admins`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from wechaty_exporter.settings import (
    BOT_NAME,
    ConfigError,
    check_keys,
    parse_bot_key,
    parse_duration,
    parse_secret_file,
)

Policy = Literal["none", "confirm", "totp"]
POLICIES: tuple[Policy, ...] = get_args(Policy)

# The policy keys: one per command, `rescue` split by direction. Also the `command` metric label.
COMMAND_KEYS = (
    "help", "status", "qr", "alerts", "silence", "silences", "unsilence", "ack", "restart", "log",
    "rescue_on", "rescue_off",
)  # fmt: skip
# `log` too: a log can hold what no chat should (replies are redacted, chatops/redact.py).
DANGEROUS = frozenset({"restart", "silence", "unsilence", "ack", "rescue_off", "log"})

MAX_LOG_LINES = 200
MIN_TOTP_SECRET_BYTES = 10  # 80 bits; RFC 4226 asks for 128, recommends 160


@dataclass(frozen=True, slots=True)
class ReplyRateLimit:
    """Token bucket per admin contact: `burst` commands at once, refilled at `per_minute`."""

    burst: int = 10
    per_minute: float = 6.0


@dataclass(frozen=True, slots=True)
class CommandsSettings:
    """Everything the chat commands need besides who the admins are, validated."""

    security: tuple[tuple[str, Policy], ...] = ()  # overrides, in config order
    totp_secret: str | None = field(default=None, repr=False)  # base32, from totp_secret_file
    totp_max_failures: int = 5
    totp_failure_window: float = 600.0
    confirm_timeout: float = 60.0
    restart: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (bot, argv)
    restart_timeout: float = 60.0
    log_files: tuple[tuple[str, tuple[Path, ...]], ...] = ()  # (bot, paths)
    log_default_lines: int = 20
    log_max_lines: int = MAX_LOG_LINES
    alertmanager_url: str | None = None
    alertmanager_timeout: float = 5.0
    silence_max: float = 7 * 86400.0
    ack_max: float = 86400.0
    reply_rate_limit: ReplyRateLimit = field(default_factory=ReplyRateLimit)
    max_reply_chars: int = 1800
    # Not from the config: the secrets the bot holds (puppet token, receiver and exporter
    # tokens), blanked out of `log` replies. Set by whoever starts the bot.
    known_secrets: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def policy(self, command: str) -> Policy:
        """The check before `command` runs: the override, else the default for its kind."""
        for name, policy in self.security:
            if name == command:
                return policy
        if command in DANGEROUS:
            return "totp" if self.totp_secret else "confirm"
        return "none"

    def restart_argv(self, bot: str) -> tuple[str, ...] | None:
        return dict(self.restart).get(bot)

    def log_paths(self, bot: str) -> tuple[Path, ...]:
        return dict(self.log_files).get(bot, ())


_KEYS = {
    "security", "totp_secret_file", "totp_max_failures", "totp_failure_window", "confirm_timeout",
    "restart", "restart_timeout", "log_files", "log_default_lines", "log_max_lines",
    "alertmanager_url", "alertmanager_timeout", "silence_max", "ack_max", "reply_rate_limit",
    "max_reply_chars",
}  # fmt: skip


def parse_commands_settings(
    raw: Mapping[str, Any] | None,
    errors: list[str],
    where: str = "commands",
    *,
    extra_keys: tuple[str, ...] = (),
) -> CommandsSettings | None:
    """Validate the `commands:` section; append every problem to `errors` (None if any).
    `extra_keys` are accepted too, left to the caller."""
    before = len(errors)
    if raw is None:
        return CommandsSettings()
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping")
        return None
    check_keys(raw, _KEYS | set(extra_keys), where, errors)
    changes: dict[str, Any] = {}
    if "totp_secret_file" in raw:
        changes["totp_secret"] = _totp_secret(
            raw["totp_secret_file"], f"{where}.totp_secret_file", errors
        )
    if "security" in raw:
        changes["security"] = _security(raw["security"], f"{where}.security", errors)
        if changes.get("totp_secret") is None:
            for name, policy in changes["security"]:
                if policy == "totp":
                    errors.append(f"{where}.security.{name}: totp needs {where}.totp_secret_file")
    for key, low, high in (
        ("totp_max_failures", 1, 100),
        ("log_default_lines", 1, MAX_LOG_LINES),
        ("log_max_lines", 1, MAX_LOG_LINES),
        ("max_reply_chars", 200, 4000),
    ):
        if key in raw:
            value = raw[key]
            if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
                changes[key] = value
            else:
                errors.append(
                    f"{where}.{key}: must be an integer from {low} to {high}, got {value!r}"
                )
    for key in (
        "totp_failure_window", "confirm_timeout", "restart_timeout", "alertmanager_timeout",
        "silence_max", "ack_max",
    ):  # fmt: skip
        if key in raw:
            seconds = parse_duration(raw[key], f"{where}.{key}", errors)
            if seconds is not None:
                changes[key] = seconds
    if "restart" in raw:
        changes["restart"] = _restart(raw["restart"], f"{where}.restart", errors)
    if "log_files" in raw:
        changes["log_files"] = _log_files(raw["log_files"], f"{where}.log_files", errors)
    if "alertmanager_url" in raw:
        url = raw["alertmanager_url"]
        if isinstance(url, str) and url.startswith(("http://", "https://")) and len(url) > 8:
            changes["alertmanager_url"] = url.rstrip("/")
        else:
            errors.append(f"{where}.alertmanager_url: expected an http(s) URL, got {url!r}")
    if "reply_rate_limit" in raw:
        changes["reply_rate_limit"] = _rate_limit(
            raw["reply_rate_limit"], f"{where}.reply_rate_limit", errors
        )
    settings = replace(CommandsSettings(), **changes)
    if settings.log_default_lines > settings.log_max_lines:
        errors.append(
            f"{where}.log_default_lines: {settings.log_default_lines} is more than "
            f"log_max_lines ({settings.log_max_lines})"
        )
    if len(errors) > before:
        return None
    return settings


@dataclass(frozen=True, slots=True)
class PluginCommands:
    """`receiver.commands`: the chat commands POST /commands answers for one plugin bot."""

    bot: str  # the plugin bot's name, as its requests give it
    settings: CommandsSettings


def parse_plugin_commands(
    raw: object, errors: list[str], where: str = "receiver.commands"
) -> PluginCommands | None:
    """Validate `receiver.commands` (the `commands` keys and `bot`); every problem to `errors`."""
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping with bot and the chat commands' keys")
        return None
    bot = raw.get("bot")
    good_bot = isinstance(bot, str) and BOT_NAME.fullmatch(bot) is not None
    if bot is None:
        errors.append(
            f"{where}.bot: required: the name of the plugin bot whose admins' messages it answers"
        )
    elif not good_bot:
        errors.append(f"{where}.bot: must match {BOT_NAME.pattern}, got {bot!r}")
    settings = parse_commands_settings(raw, errors, where, extra_keys=("bot",))
    if settings is None or not good_bot:
        return None
    assert isinstance(bot, str)
    return PluginCommands(bot=bot, settings=settings)


def load_commands_settings(
    raw: Mapping[str, Any] | None, where: str = "commands"
) -> CommandsSettings:
    """`parse_commands_settings` that raises ConfigError with every problem."""
    errors: list[str] = []
    settings = parse_commands_settings(raw, errors, where)
    if settings is None:
        raise ConfigError(errors, where)
    return settings


# --- pieces ------------------------------------------------------------------------------------


def _totp_secret(value: object, where: str, errors: list[str]) -> str | None:
    secret = parse_secret_file(value, where, errors)
    if secret is None:
        return None
    normalized = secret.replace(" ", "").upper()
    try:
        raw = base64.b32decode(normalized + "=" * (-len(normalized) % 8))
    except (binascii.Error, ValueError):
        errors.append(f"{where}: {value} does not hold a base32 secret")
        return None
    if len(raw) < MIN_TOTP_SECRET_BYTES:
        errors.append(
            f"{where}: the secret in {value} has {len(raw) * 8} bits; use at least "
            f"{MIN_TOTP_SECRET_BYTES * 8} (e.g. pyotp.random_base32())"
        )
        return None
    return normalized


def _security(value: object, where: str, errors: list[str]) -> tuple[tuple[str, Policy], ...]:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping of command to {' | '.join(POLICIES)}")
        return ()
    out: list[tuple[str, Policy]] = []
    for name, policy in value.items():
        if name not in COMMAND_KEYS:
            errors.append(f"{where}.{name}: unknown command (known: {', '.join(COMMAND_KEYS)})")
            continue
        if policy not in POLICIES:
            errors.append(f"{where}.{name}: must be one of {', '.join(POLICIES)}, got {policy!r}")
            continue
        out.append((name, policy))
    return tuple(out)


def _restart(
    value: object, where: str, errors: list[str]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping of bot name to an argv list")
        return ()
    out: list[tuple[str, tuple[str, ...]]] = []
    for bot, argv in value.items():
        if parse_bot_key(bot, where, errors) is None:
            continue
        if (
            not isinstance(argv, list)
            or not argv
            or not all(isinstance(a, str) for a in argv)
            or not argv[0]
        ):
            errors.append(
                f"{where}.{bot}: must be a non-empty list of strings (an argv, run without a "
                f"shell), got {argv!r}"
            )
            continue
        out.append((bot, tuple(argv)))
    return tuple(out)


def _log_files(
    value: object, where: str, errors: list[str]
) -> tuple[tuple[str, tuple[Path, ...]], ...]:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping of bot name to a path or a list of paths")
        return ()
    out: list[tuple[str, tuple[Path, ...]]] = []
    for bot, paths in value.items():
        if parse_bot_key(bot, where, errors) is None:
            continue
        items = [paths] if isinstance(paths, str) else paths
        if not isinstance(items, list) or not items:
            errors.append(f"{where}.{bot}: must be a path or a non-empty list of paths")
            continue
        good: list[Path] = []
        for i, item in enumerate(items):
            if isinstance(item, str) and item:
                good.append(Path(item))
            else:
                errors.append(f"{where}.{bot}[{i}]: must be a file path, got {item!r}")
        out.append((bot, tuple(dict.fromkeys(good))))
    return tuple(out)


def _rate_limit(value: object, where: str, errors: list[str]) -> ReplyRateLimit:
    default = ReplyRateLimit()
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping with burst and per_minute")
        return default
    check_keys(value, ("burst", "per_minute"), where, errors)
    burst = value.get("burst", default.burst)
    if not (isinstance(burst, int) and not isinstance(burst, bool) and 1 <= burst <= 1000):
        errors.append(f"{where}.burst: must be an integer from 1 to 1000, got {burst!r}")
        burst = default.burst
    rate = value.get("per_minute", default.per_minute)
    if not (isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0):
        errors.append(f"{where}.per_minute: must be a positive number, got {rate!r}")
        rate = default.per_minute
    return ReplyRateLimit(burst=burst, per_minute=float(rate))
