"""The peer bot's settings: the `bot:` section of the config → one frozen object.

    bot:
      name: alice                  # this bot's name: in its own log lines and the Wechaty name
      self_log: /var/log/wechaty-exporter/alice.self.log   # its scan/login/logout lines, for the
                                   # exporter to tail (`--log alice=...`); "-" is stdout; default
                                   # <state_dir>/self.log, or stdout without a state dir
      state_dir: /var/lib/wechaty-exporter/alice   # delivery state (SQLite), default self-log
      puppet:                      # each key defaults to the standard environment variable
        endpoint: 127.0.0.1:8788   # WECHATY_PUPPET_SERVICE_ENDPOINT (plaintext gRPC host:port)
        token_file: /etc/wechaty-exporter/alice-puppet-token   # WECHATY_PUPPET_SERVICE_TOKEN
        start_timeout: 30s         # the service must answer Stop/Start within this
        reconnect_max_delay: 30s   # backoff cap while the event stream is lost
      receiver:                    # the keys of the `receiver:` section (delivery/settings.py);
        listen_address: "127.0.0.1:9412"   # it is the webhook Alertmanager calls
        exporter_url: "http://127.0.0.1:9839"
        admins: {bob: [wxid_admin1]}       # this bot tells wxid_admin1 about bob
        messenger: {type: wechaty, timeout: 15s}   # always this bot; only the timeout is set here
      commands:                    # the chat commands (chatops/settings.py); their admins are
        alertmanager_url: http://127.0.0.1:9093   # receiver.admins above: wxid_admin1 commands bob
        totp_secret_file: /etc/wechaty-exporter/totp-secret
        restart: {bob: [pm2, restart, bob]}

Everything `wechaty-exporter bot` reads is in this one section: the receiver it hosts and the
commands it answers live under `bot:`, not in the top-level `receiver:` (read by
`wechaty-exporter receiver`) or anywhere else. Flags override the file (`apply_bot_flags`);
everything also works from flags and the puppet environment variables alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from wechaty_exporter.chatops.settings import CommandsSettings, parse_commands_settings
from wechaty_exporter.delivery.receiver_flags import apply_receiver_flags
from wechaty_exporter.delivery.settings import ReceiverSettings, parse_receiver_settings
from wechaty_exporter.settings import (
    BOT_NAME,
    ConfigError,
    check_keys,
    parse_duration,
    parse_secret_file,
)

DEFAULT_NAME = "peer"
SELF_LOG_FILENAME = "self.log"
STDOUT = "-"


@dataclass(frozen=True, slots=True)
class PuppetSettings:
    """Where the bot's puppet service is; None falls back to the standard environment variable."""

    endpoint: str | None = None
    token: str | None = field(default=None, repr=False)  # read from token_file
    start_timeout: float = 30.0
    reconnect_max_delay: float = 30.0


@dataclass(frozen=True, slots=True)
class BotSettings:
    """Everything `wechaty-exporter bot` needs, validated."""

    name: str = DEFAULT_NAME
    self_log: str | None = None  # a path, STDOUT, or None for the default
    state_dir: Path | None = None
    puppet: PuppetSettings = field(default_factory=PuppetSettings)
    receiver: ReceiverSettings = field(default_factory=ReceiverSettings)
    commands: CommandsSettings = field(default_factory=CommandsSettings)
    send_timeout: float = 15.0  # one send or contact lookup through the puppet service

    def self_log_path(self) -> Path | None:
        """The self-log file, or None for stdout."""
        if self.self_log == STDOUT:
            return None
        if self.self_log is not None:
            return Path(self.self_log)
        return self.state_dir / SELF_LOG_FILENAME if self.state_dir is not None else None


_KEYS = ("name", "self_log", "state_dir", "puppet", "receiver", "commands")
_PUPPET_KEYS = ("endpoint", "token_file", "start_timeout", "reconnect_max_delay")


def parse_bot_settings(
    raw: Mapping[str, Any], errors: list[str], where: str = "bot"
) -> BotSettings | None:
    """Validate the `bot:` section; append every problem to `errors` (None if any)."""
    before = len(errors)
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping")
        return None
    check_keys(raw, _KEYS, where, errors)
    changes: dict[str, Any] = {}
    if "name" in raw:
        name = raw["name"]
        if isinstance(name, str) and BOT_NAME.match(name):
            changes["name"] = name
        else:
            errors.append(f"{where}.name: must match {BOT_NAME.pattern}, got {name!r}")
    for key in ("self_log", "state_dir"):
        if key in raw:
            value = raw[key]
            if isinstance(value, str) and value.strip():
                changes[key] = value if key == "self_log" else Path(value)
            else:
                errors.append(f"{where}.{key}: expected a path, got {value!r}")
    if "puppet" in raw:
        changes["puppet"] = _puppet(raw["puppet"], f"{where}.puppet", errors)
    if "receiver" in raw:
        here = f"{where}.receiver"
        receiver = parse_receiver_settings(raw["receiver"], errors, here)
        if receiver is not None:
            changes["receiver"] = receiver
            if "messenger" in raw["receiver"]:
                timeout = _messenger_timeout(receiver, f"{here}.messenger", errors)
                if timeout is not None:
                    changes["send_timeout"] = timeout
    if "commands" in raw:
        commands = parse_commands_settings(raw["commands"], errors, f"{where}.commands")
        if commands is not None:
            changes["commands"] = commands
    if len(errors) > before:
        return None
    return replace(BotSettings(), **changes)


def apply_bot_flags(
    settings: BotSettings,
    *,
    listen: str | None = None,
    exporter_url: str | None = None,
    admins: Iterable[tuple[str, str]] = (),
    self_log: str | None = None,
    state_dir: str | Path | None = None,
) -> BotSettings:
    """Flags override the file (`--admin` as for the receiver). Raises ConfigError."""
    receiver = apply_receiver_flags(
        settings.receiver, listen=listen, exporter_url=exporter_url, admins=admins
    )
    changes: dict[str, Any] = {"receiver": receiver}
    if self_log is not None:
        if not self_log.strip():
            raise ConfigError(["--self-log: expected a path or -"], "flags")
        changes["self_log"] = self_log
    if state_dir is not None:
        changes["state_dir"] = Path(state_dir)
    return replace(settings, **changes)


# --- pieces ------------------------------------------------------------------------------------


def _puppet(value: object, where: str, errors: list[str]) -> PuppetSettings:
    default = PuppetSettings()
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping with endpoint, token_file, ...")
        return default
    check_keys(value, _PUPPET_KEYS, where, errors)
    changes: dict[str, Any] = {}
    if "endpoint" in value:
        endpoint = value["endpoint"]
        if isinstance(endpoint, str) and endpoint.strip():
            changes["endpoint"] = endpoint.strip()
        else:
            errors.append(f"{where}.endpoint: expected host:port, got {endpoint!r}")
    if "token_file" in value:
        token = parse_secret_file(value["token_file"], f"{where}.token_file", errors)
        if token is not None:
            changes["token"] = token
    for key in ("start_timeout", "reconnect_max_delay"):
        if key in value:
            seconds = parse_duration(value[key], f"{where}.{key}", errors)
            if seconds is not None:
                changes[key] = seconds
    return replace(default, **changes)


def _messenger_timeout(receiver: ReceiverSettings, where: str, errors: list[str]) -> float | None:
    """The bot always sends through its own account: only `type: wechaty` and its timeout."""
    messenger = receiver.messenger
    if messenger.kind != "wechaty":
        errors.append(
            f"{where}.type: the bot sends through its own WeChat account (wechaty); "
            f"use `wechaty-exporter receiver` for {messenger.kind}"
        )
        return None
    check_keys(messenger.options, ("timeout",), where, errors)
    if "timeout" in messenger.options:
        return parse_duration(messenger.options["timeout"], f"{where}.timeout", errors)
    return None
