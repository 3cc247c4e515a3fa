"""The peer bot's settings: the `bot:` section of the config → one frozen object.

    bot:
      name: alice                  # this bot's name: in its own log lines and the Wechaty name
      self_log: /var/log/wechaty-exporter/alice.self.log   # its scan/login/logout lines, for the
                                   # exporter to tail (`--log alice=...`); "-" is stdout; default
                                   # <state_dir>/self.log, or stdout without a state dir
      state_dir: /var/lib/wechaty-exporter/alice   # delivery state (SQLite), default self-log
      puppet:                      # each key defaults to the standard environment variable
        endpoint: 127.0.0.1:8788   # WECHATY_PUPPET_SERVICE_ENDPOINT (gRPC host:port)
        token_file: /etc/wechaty-exporter/alice-puppet-token   # WECHATY_PUPPET_SERVICE_TOKEN
        tls:                       # TLS unless `false` (or ..._NO_TLS_INSECURE_CLIENT=true)
          ca_file: /etc/wechaty-exporter/puppet-ca.pem   # WECHATY_PUPPET_SERVICE_TLS_CA_CERT,
                                   # default the Wechaty CA
          server_name: insecure    # WECHATY_PUPPET_SERVICE_TLS_SERVER_NAME, default from the token
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
      probe:                       # the duet probe (off unless set): a DM to the peer bot's
        peer: wxid_bob_account     # account (a contact: id, weixin, alias or name) every
        peer_bot: bob              # interval ± jitter, while logged in; peer_bot: its bot name
        interval: 10m              # default 10m
        jitter: 0.1                # a fraction of the interval, default 0.1 (10 %)

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
from wechaty_exporter.peerbot.puppettls import TLSOptions
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
    tls: TLSOptions = field(default_factory=TLSOptions)  # TLS unless false or the env says


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """The duet probe: whom to probe (`peer`, a contact spec of the peer bot's account, and
    `peer_bot`, its bot name) and how often (`interval` seconds ± `jitter` × interval)."""

    peer: str
    peer_bot: str
    interval: float = 600.0
    jitter: float = 0.1


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
    probe: ProbeSettings | None = None  # the duet probe; None: off

    def self_log_path(self) -> Path | None:
        """The self-log file, or None for stdout."""
        if self.self_log == STDOUT:
            return None
        if self.self_log is not None:
            return Path(self.self_log)
        return self.state_dir / SELF_LOG_FILENAME if self.state_dir is not None else None


_KEYS = ("name", "self_log", "state_dir", "puppet", "receiver", "commands", "probe")
_PUPPET_KEYS = ("endpoint", "token_file", "start_timeout", "reconnect_max_delay", "tls")
_TLS_KEYS = ("ca_file", "server_name")
_PROBE_KEYS = ("peer", "peer_bot", "interval", "jitter")


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
    if "probe" in raw:
        probe = _probe(raw["probe"], f"{where}.probe", errors)
        if probe is not None:
            changes["probe"] = probe
            name = changes.get("name", DEFAULT_NAME)
            if probe.peer_bot == name:
                errors.append(f"{where}.probe.peer_bot: names this bot itself, not its peer")
            elif not BOT_NAME.fullmatch(name):  # `match` lets a final newline through
                errors.append(f"{where}.name: a probe names this bot, so it must be one line")
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
    if "tls" in value:
        changes["tls"] = _tls(value["tls"], f"{where}.tls", errors)
    return replace(default, **changes)


def _tls(value: object, where: str, errors: list[str]) -> TLSOptions:
    """`true`/`false`, or a mapping (TLS) with `ca_file` and `server_name`."""
    if isinstance(value, bool):
        return TLSOptions(enabled=value)
    if not isinstance(value, Mapping):
        errors.append(f"{where}: expected true, false or a mapping with ca_file, server_name")
        return TLSOptions()
    check_keys(value, _TLS_KEYS, where, errors)
    ca_file = server_name = None
    if "ca_file" in value:
        raw = value["ca_file"]
        if not isinstance(raw, str) or not raw.strip():
            errors.append(f"{where}.ca_file: expected a path, got {raw!r}")
        elif not Path(raw).is_file():
            errors.append(f"{where}.ca_file: {raw} is not a readable file")
        elif "-----BEGIN CERTIFICATE-----" not in Path(raw).read_text(errors="replace"):
            errors.append(f"{where}.ca_file: {raw} holds no PEM certificate")
        else:
            ca_file = Path(raw)
    if "server_name" in value:
        raw = value["server_name"]
        if isinstance(raw, str) and raw.strip() and not any(c.isspace() for c in raw.strip()):
            server_name = raw.strip()
        else:
            errors.append(f"{where}.server_name: expected a host name, got {raw!r}")
    return TLSOptions(enabled=True, ca_file=ca_file, server_name=server_name)


def _probe(value: object, where: str, errors: list[str]) -> ProbeSettings | None:
    """The `probe:` mapping; every problem appended to `errors`."""
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping with peer, peer_bot, interval, jitter")
        return None
    before = len(errors)
    check_keys(value, _PROBE_KEYS, where, errors)
    peer = value.get("peer")
    if not isinstance(peer, str) or not peer.strip():
        errors.append(f"{where}.peer: the peer bot's account (id, weixin, alias or name) is needed")
    peer_bot = value.get("peer_bot")
    if not isinstance(peer_bot, str) or not BOT_NAME.fullmatch(peer_bot):
        errors.append(f"{where}.peer_bot: the peer's bot name, matching {BOT_NAME.pattern}")
    interval = 600.0
    if "interval" in value:  # parse_duration refuses 0 and less
        interval = parse_duration(value["interval"], f"{where}.interval", errors) or interval
    jitter = value.get("jitter", 0.1)
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0 <= jitter < 1:
        errors.append(f"{where}.jitter: a fraction of the interval, from 0 up to 1, got {jitter!r}")
    if len(errors) > before:
        return None
    assert isinstance(peer, str) and isinstance(peer_bot, str)
    return ProbeSettings(peer.strip(), peer_bot, interval, float(jitter))


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
