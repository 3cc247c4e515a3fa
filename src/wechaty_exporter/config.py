"""Configuration: YAML → shape check → cross-checks → one frozen object, every problem at once.

    exporter:
      listen_address: "127.0.0.1:9839"
      state_dir: /var/lib/wechaty-exporter
      qr_token_file: /etc/wechaty-exporter/qr-token   # a file holding the bearer token
      qr_hosts: [weixin.qq.com, wechat.com]            # QR allowlist (subdomains included)
      poll_interval: 1s
      max_line_bytes: 65536
    bots:
      alice:
        logs: [/home/bots/.pm2/logs/alice-out.log, /home/bots/.pm2/logs/alice-error.log]
      bob:
        logs: [/var/log/bob.log]

The other top-level sections belong to other parts and are validated here by their own parsers,
so `check-config` lists every problem of every section at once: `receiver:` (receiver_settings.py,
read by `wechaty-exporter receiver`) and `bot:` (bot_settings.py, read by `wechaty-exporter bot`;
it holds the bot's receiver as `bot.receiver` and its chat commands as `bot.commands`, the one
place for them: a top-level `commands:` is an error pointing there).

Secrets are never YAML literals: the config names files that hold them. Flags override the file
(`apply_serve_flags`); everything also works from flags alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from wechaty_exporter.dialects import DEFAULT_QR_HOSTS

if TYPE_CHECKING:
    from wechaty_exporter.bot_settings import BotSettings
    from wechaty_exporter.receiver_settings import ReceiverSettings

BOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(Exception):
    """The configuration is not usable; `problems` lists every reason with its location."""

    def __init__(self, problems: Sequence[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    """Everything `serve` needs, validated."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 9839
    state_dir: Path | None = None
    qr_token_file: Path | None = None
    qr_hosts: tuple[str, ...] = DEFAULT_QR_HOSTS
    poll_interval: float = 1.0
    max_line_bytes: int = 65536
    bots: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (bot, (path, ...)), in config order
    self_log_qr_bots: frozenset[str] = frozenset()  # bots whose QRs count only from a self-log

    @property
    def listen_address(self) -> str:
        return format_address(self.listen_host, self.listen_port)

    def logs(self) -> dict[str, str]:
        """path → bot."""
        return {path: bot for bot, paths in self.bots for path in paths}


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration file, validated."""

    exporter: ExporterSettings = field(default_factory=ExporterSettings)
    receiver: ReceiverSettings | None = None  # the `receiver:` section, when present
    bot: BotSettings | None = None  # the `bot:` section (with bot.receiver, bot.commands)
    raw: Mapping[str, Any] = field(default_factory=dict)  # the parsed YAML


def parse_duration(value: object, where: str, errors: list[str]) -> float | None:
    """'500ms', '1s', '2m', '1h', or a number of seconds."""
    if isinstance(value, bool):
        errors.append(f"{where}: expected a duration like 1s or 500ms, got {value!r}")
        return None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        errors.append(f"{where}: expected a duration like 1s or 500ms, got {value!r}")
        return None
    if seconds <= 0:
        errors.append(f"{where}: must be positive, got {value!r}")
        return None
    return seconds


def parse_listen_address(value: object, where: str, errors: list[str]) -> tuple[str, int] | None:
    """'HOST:PORT', '[::1]:PORT' or ':PORT' (all interfaces)."""
    if not isinstance(value, str) or ":" not in value:
        errors.append(f"{where}: expected HOST:PORT, got {value!r}")
        return None
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        errors.append(f"{where}: port must be a number from 0 to 65535, got {port_text!r}")
        return None
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """HOST:PORT, an IPv6 host in brackets: the inverse of `parse_listen_address`."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_bot_key(value: object, where: str, errors: list[str]) -> str | None:
    """A mapping key under `where` that must be a bot name; reports `where.<key>` otherwise."""
    if isinstance(value, str) and BOT_NAME.match(value):
        return value
    errors.append(f"{where}.{value}: bot name must match {BOT_NAME.pattern}")
    return None


def parse_secret_file(value: object, where: str, errors: list[str]) -> str | None:
    """`*_file: PATH` → the secret that file holds (`read_secret`); problems go to `errors`."""
    if not isinstance(value, str) or not value:
        errors.append(f"{where}: expected the path of a file holding the secret, got {value!r}")
        return None
    try:
        return read_secret(Path(value), where)
    except ConfigError as exc:
        errors.extend(exc.problems)
        return None


def parse_log_flag(value: str) -> tuple[str, str]:
    """`--log NAME=PATH` → (NAME, PATH); raises ValueError with a clear reason."""
    name, sep, path = value.partition("=")
    if not sep or not path:
        raise ValueError(f"--log expects NAME=PATH, got {value!r}")
    if not BOT_NAME.match(name):
        raise ValueError(f"--log {value!r}: bot name must match {BOT_NAME.pattern}")
    return name, path


def _str_list(value: object, where: str, errors: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        errors.append(f"{where}: expected a non-empty list of strings")
        return ()
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item:
            out.append(item)
        else:
            errors.append(f"{where}[{i}]: expected a non-empty string, got {item!r}")
    return tuple(out)


def check_keys(
    section: Mapping[str, Any], allowed: Iterable[str], where: str, errors: list[str]
) -> None:
    """Report every key of `section` that is not in `allowed`, naming the known ones."""
    known = sorted(allowed)
    for key in section:
        if key not in known:
            errors.append(f"{where}.{key}: unknown key (known: {', '.join(known)})")


QR_SOURCES = ("any", "self-log")


def _parse_bots(raw: object, errors: list[str]) -> dict[str, Any]:
    """`bots:` → the ExporterSettings fields it sets (bots, self_log_qr_bots)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append("bots: expected a mapping of bot name → {logs: [...]}")
        return {}
    bots, self_log_only = [], set()
    for name, body in raw.items():
        if parse_bot_key(name, "bots", errors) is None:
            continue
        where = f"bots.{name}"
        if not isinstance(body, dict):
            errors.append(f"{where}: expected a mapping with a 'logs' list")
            continue
        check_keys(body, {"logs", "qr_source"}, where, errors)
        source = body.get("qr_source", "any")
        if source not in QR_SOURCES:
            errors.append(f"{where}.qr_source: expected one of {', '.join(QR_SOURCES)}")
        elif source == "self-log":
            self_log_only.add(name)
        if "logs" not in body:
            errors.append(f"{where}.logs: required")
            continue
        bots.append((name, _str_list(body["logs"], f"{where}.logs", errors)))
    return {"bots": tuple(bots), "self_log_qr_bots": frozenset(self_log_only)}


def _parse_exporter(raw: object, errors: list[str]) -> ExporterSettings:
    settings = ExporterSettings()
    if raw is None:
        return settings
    if not isinstance(raw, dict):
        errors.append("exporter: expected a mapping")
        return settings
    where = "exporter"
    known = {
        "listen_address", "state_dir", "qr_token_file", "qr_hosts", "poll_interval",
        "max_line_bytes",
    }  # fmt: skip
    check_keys(raw, known, where, errors)
    changes: dict[str, Any] = {}
    if "listen_address" in raw:
        parsed = parse_listen_address(raw["listen_address"], f"{where}.listen_address", errors)
        if parsed:
            changes["listen_host"], changes["listen_port"] = parsed
    for key in ("state_dir", "qr_token_file"):
        if key in raw:
            if isinstance(raw[key], str) and raw[key]:
                changes[key] = Path(raw[key])
            else:
                errors.append(f"{where}.{key}: expected a path")
    if "qr_hosts" in raw:
        hosts = _str_list(raw["qr_hosts"], f"{where}.qr_hosts", errors)
        for i, host in enumerate(hosts):
            if not re.fullmatch(r"[A-Za-z0-9.-]+", host) or "." not in host:
                errors.append(f"{where}.qr_hosts[{i}]: expected a DNS name, got {host!r}")
        changes["qr_hosts"] = tuple(h.lower().rstrip(".") for h in hosts)
    if "poll_interval" in raw:
        interval = parse_duration(raw["poll_interval"], f"{where}.poll_interval", errors)
        if interval is not None:
            changes["poll_interval"] = interval
    if "max_line_bytes" in raw:
        cap = raw["max_line_bytes"]
        if isinstance(cap, int) and not isinstance(cap, bool) and 1024 <= cap <= 16 << 20:
            changes["max_line_bytes"] = cap
        else:
            errors.append(f"{where}.max_line_bytes: expected an integer from 1024 to 16777216")
    return replace(settings, **changes)


def parse_config(raw: object, source: str = "config") -> Config:
    """Validate a parsed YAML document; raise ConfigError listing every problem."""
    errors: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["top level: expected a mapping"], source)
    if "commands" in raw:
        errors.append("commands: chat commands are configured in the bot's section: bot.commands")
    known = {"exporter", "bots", "receiver", "bot"}
    check_keys({k: v for k, v in raw.items() if k != "commands"}, known, "config", errors)
    exporter = _parse_exporter(raw.get("exporter"), errors)
    exporter = replace(exporter, **_parse_bots(raw.get("bots"), errors))
    seen: dict[str, str] = {}
    for name, paths in exporter.bots:
        for path in paths:
            if path in seen and seen[path] != name:
                errors.append(f"bots.{name}.logs: {path} is already a log of bot {seen[path]}")
            seen[path] = name
    # The sections' parsers use this module's helpers, hence the late imports.
    from wechaty_exporter.bot_settings import parse_bot_settings
    from wechaty_exporter.receiver_settings import parse_receiver_settings

    receiver: ReceiverSettings | None = None
    bot: BotSettings | None = None
    if "receiver" in raw:
        section = raw["receiver"]
        if isinstance(section, dict):
            receiver = parse_receiver_settings(section, errors, "receiver")
        else:
            errors.append("receiver: expected a mapping")
    if raw.get("bot") is not None:
        bot = parse_bot_settings(raw["bot"], errors, "bot")
    if errors:
        raise ConfigError(errors, source)
    return Config(exporter=exporter, receiver=receiver, bot=bot, raw=raw)


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


def apply_serve_flags(
    settings: ExporterSettings,
    *,
    logs: Sequence[tuple[str, str]] = (),
    listen: str | None = None,
    state_dir: str | None = None,
    qr_token_file: str | None = None,
) -> ExporterSettings:
    """Flags override the file. `--log` flags add to (and for a named bot, replace) its logs."""
    errors: list[str] = []
    changes: dict[str, Any] = {}
    if listen is not None:
        parsed = parse_listen_address(listen, "--web.listen-address", errors)
        if parsed:
            changes["listen_host"], changes["listen_port"] = parsed
    if state_dir is not None:
        changes["state_dir"] = Path(state_dir)
    if qr_token_file is not None:
        changes["qr_token_file"] = Path(qr_token_file)
    if logs:
        flagged: dict[str, list[str]] = {}
        for bot, path in logs:
            flagged.setdefault(bot, [])
            if path not in flagged[bot]:
                flagged[bot].append(path)
        merged = dict(settings.bots)
        merged.update({bot: tuple(paths) for bot, paths in flagged.items()})
        owners: dict[str, str] = {}
        for bot, paths in merged.items():
            for path in paths:
                if owners.setdefault(path, bot) != bot:
                    errors.append(f"--log {bot}={path}: already a log of bot {owners[path]}")
        changes["bots"] = tuple(merged.items())
    if errors:
        raise ConfigError(errors, "flags")
    return replace(settings, **changes)


def read_secret(path: Path, what: str) -> str:
    """A secret from a file: stripped, non-empty. Raises ConfigError with a clear reason."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError([f"{what}: cannot read {path}: {exc.strerror or exc}"]) from exc
    if not value:
        raise ConfigError([f"{what}: {path} is empty"])
    return value
