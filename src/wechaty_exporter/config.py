"""The whole config file: YAML → each wing's section parser → one frozen Config, all problems.

    exporter: ...   bots: ...    exporter/settings.py, read by `wechaty-exporter serve` and `replay`
    dialects: ...                custom log rules the bots may name (exporter/settings.py, the
                                 rules engine in logs/dialects/rules.py; docs/dialects.md)
    receiver: ...                delivery/settings.py, read by `wechaty-exporter receiver`;
                                 its `commands` (POST /commands for a plugin bot) are the chat
                                 commands' keys plus `bot` (chatops/settings.py)
    bot: ...                     peerbot/settings.py, read by `wechaty-exporter bot`; it holds the
                                 bot's receiver as `bot.receiver` and its chat commands as
                                 `bot.commands` (chatops/settings.py), the one place for its own

Each section is validated by its own wing's parser, and every problem of every section is
collected, so `check-config` lists them all at once. This module assembles the wings' settings;
no wing imports it. Secrets are never YAML literals: the config names files that hold them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wechaty_exporter.chatops.settings import PluginCommands, parse_plugin_commands
from wechaty_exporter.delivery.settings import ReceiverSettings, parse_receiver_settings
from wechaty_exporter.exporter.settings import ExporterSettings, parse_exporter_settings
from wechaty_exporter.peerbot.settings import BotSettings, parse_bot_settings
from wechaty_exporter.settings import ConfigError, check_keys

SECTIONS = ("exporter", "bots", "dialects", "receiver", "bot")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration file, validated."""

    exporter: ExporterSettings = field(default_factory=ExporterSettings)
    receiver: ReceiverSettings | None = None  # the `receiver:` section, when present
    receiver_commands: PluginCommands | None = None  # its `commands`: POST /commands
    bot: BotSettings | None = None  # the `bot:` section (with bot.receiver, bot.commands)
    raw: Mapping[str, Any] = field(default_factory=dict)  # the parsed YAML


def parse_config(raw: object, source: str = "config") -> Config:
    """Validate a parsed YAML document; raise ConfigError listing every problem."""
    errors: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["top level: expected a mapping"], source)
    if "commands" in raw:
        errors.append("commands: chat commands are configured in the bot's section: bot.commands")
    check_keys({k: v for k, v in raw.items() if k != "commands"}, SECTIONS, "config", errors)
    exporter = parse_exporter_settings(
        raw.get("exporter"), raw.get("bots"), errors, raw.get("dialects")
    )
    receiver: ReceiverSettings | None = None
    receiver_commands: PluginCommands | None = None
    bot: BotSettings | None = None
    if "receiver" in raw:
        section = raw["receiver"]
        if isinstance(section, dict):
            receiver = parse_receiver_settings(
                section, errors, "receiver", extra_keys=("commands",)
            )
            if "commands" in section:
                receiver_commands = parse_plugin_commands(
                    section["commands"], errors, "receiver.commands"
                )
        else:
            errors.append("receiver: expected a mapping")
    if raw.get("bot") is not None:
        bot = parse_bot_settings(raw["bot"], errors, "bot")
    if errors:
        raise ConfigError(errors, source)
    return Config(
        exporter=exporter,
        receiver=receiver,
        receiver_commands=receiver_commands,
        bot=bot,
        raw=raw,
    )


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], source) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}invalid YAML: {problem}"], source) from exc
    return parse_config(raw, source)
