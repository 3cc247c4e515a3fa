"""The exporter's settings: `exporter:`, `bots:` and `dialects:` sections, `serve`'s flags → one
frozen object.

exporter:
  listen_address: "127.0.0.1:9839"
  state_dir: /var/lib/wechaty-exporter
  qr_token_file: /etc/wechaty-exporter/qr-token   # a file holding the bearer token
  hostnames: [exporter.example.org]              # names it is reached by (Host), for QRs
  qr_hosts: [weixin.qq.com, wechat.com]            # QR allowlist (subdomains included)
  qr_shapes:                                       # login-QR shapes, {id}: the QR's id
    - "https://login.weixin.qq.com/l/{id}"         # (default: qr.DEFAULT_QR_SHAPES)
  poll_interval: 1s
  max_line_bytes: 65536
bots:
  alice:
    logs: [/home/bots/.pm2/logs/alice-out.log, /home/bots/.pm2/logs/alice-error.log]
  bob:
    logs: [/var/log/bob.log]
    qr_source: self-log                            # QRs only from the unforgeable self-log
  carol:
    logs: [/var/log/carol.log]
    dialect: padlocal                              # a built-in profile or one of dialects:
dialects:                                          # custom rules (logs/dialects/rules.py)
  padlocal:
    rules:
      - {event: login, match: '[0-9:]{8} VERB [[]PuppetPadlocal] login success: (?P<user>.+)'}
                                                   # more: docs/dialects.md
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wechaty_exporter.logs.dialects.profiles import AUTO, PROFILES, builtin_names
from wechaty_exporter.logs.dialects.qr import (
    DEFAULT_QR_HOSTS,
    DEFAULT_QR_SHAPES,
    host_allowed,
    parse_qr_shape,
)
from wechaty_exporter.logs.dialects.rules import Dialect, parse_dialect
from wechaty_exporter.settings import (
    ConfigError,
    check_keys,
    format_address,
    parse_bot_key,
    parse_duration,
    parse_listen_address,
    str_list,
)


@dataclass(frozen=True, slots=True)
class ExporterSettings:
    """Everything `serve` needs, validated."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 9839
    state_dir: Path | None = None
    qr_token_file: Path | None = None
    hostnames: tuple[str, ...] = ()  # Host names besides loopback and the listen address
    qr_hosts: tuple[str, ...] = DEFAULT_QR_HOSTS
    qr_shapes: tuple[str, ...] = DEFAULT_QR_SHAPES  # login-QR URL templates, `{id}` the QR's id
    poll_interval: float = 1.0
    max_line_bytes: int = 65536
    bots: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (bot, (path, ...)), in config order
    self_log_qr_bots: frozenset[str] = frozenset()  # bots whose QRs count only from a self-log
    dialects: tuple[tuple[str, Dialect], ...] = ()  # the `dialects:` section, by name
    bot_dialects: tuple[tuple[str, str], ...] = ()  # bot → dialect name (default: auto)
    log_dialects: tuple[tuple[str, str], ...] = ()  # path → dialect name, over its bot's

    def dialect_name(self, bot: str, path: str) -> str:
        """The dialect a log file is read with: its own, else its bot's, else ``auto``."""
        return dict(self.log_dialects).get(path) or dict(self.bot_dialects).get(bot) or AUTO

    def dialect(self, bot: str, path: str) -> Dialect | None:
        """The rules a log file is read with; None: the built-in detection (``auto``)."""
        name = self.dialect_name(bot, path)
        return dict(self.dialects).get(name) or PROFILES.get(name)

    @property
    def listen_address(self) -> str:
        return format_address(self.listen_host, self.listen_port)

    def logs(self) -> dict[str, str]:
        """path → bot."""
        return {path: bot for bot, paths in self.bots for path in paths}


QR_SOURCES = ("any", "self-log")


def parse_dialects(raw: object, errors: list[str]) -> dict[str, Dialect]:
    """`dialects:` (name → rules) → compiled dialects; every problem, located, goes to `errors`."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append("dialects: expected a mapping of dialect name → {rules: [...]}")
        return {}
    out: dict[str, Dialect] = {}
    for name, body in raw.items():
        if parse_bot_key(name, "dialects", errors) is None:
            continue
        if name in builtin_names():
            errors.append(f"dialects.{name}: the name of a built-in dialect; choose another")
            continue
        dialect = parse_dialect(name, body, f"dialects.{name}", errors, PROFILES)
        if dialect is not None:
            out[name] = dialect
    return out


def _dialect_name(value: object, where: str, known: Sequence[str], errors: list[str]) -> str | None:
    if isinstance(value, str) and value in known:
        return value
    errors.append(f"{where}: unknown dialect {value!r} (known: {', '.join(known)})")
    return None


def _parse_bot_dialects(
    name: str, body: dict[str, Any], paths: Sequence[str], known: Sequence[str], errors: list[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """`bots.<name>.dialect` and `.log_dialects` → (bot, dialect) and (path, dialect) pairs."""
    where = f"bots.{name}"
    mine: list[tuple[str, str]] = []
    per_log: list[tuple[str, str]] = []
    if "dialect" in body and (
        d := _dialect_name(body["dialect"], f"{where}.dialect", known, errors)
    ):
        mine.append((name, d))
    logs = body.get("log_dialects")
    if logs is None:
        return mine, per_log
    if not isinstance(logs, dict):
        errors.append(f"{where}.log_dialects: expected a mapping of log path → dialect name")
        return mine, per_log
    for path, value in logs.items():
        if path not in paths:
            errors.append(f"{where}.log_dialects.{path}: not one of the bot's logs")
        elif d := _dialect_name(value, f"{where}.log_dialects.{path}", known, errors):
            per_log.append((path, d))
    return mine, per_log


def _parse_bots(raw: object, errors: list[str], dialects: Sequence[str] = ()) -> dict[str, Any]:
    """`bots:` → the ExporterSettings fields it sets (bots, self_log_qr_bots, bot_dialects,
    log_dialects); `dialects`: the names of the `dialects:` section."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append("bots: expected a mapping of bot name → {logs: [...]}")
        return {}
    known = [*builtin_names(), *dialects]
    bot_dialects: list[tuple[str, str]] = []
    log_dialects: list[tuple[str, str]] = []
    bots, self_log_only = [], set()
    for name, body in raw.items():
        if parse_bot_key(name, "bots", errors) is None:
            continue
        where = f"bots.{name}"
        if not isinstance(body, dict):
            errors.append(f"{where}: expected a mapping with a 'logs' list")
            continue
        check_keys(body, {"logs", "qr_source", "dialect", "log_dialects"}, where, errors)
        source = body.get("qr_source", "any")
        if source not in QR_SOURCES:
            errors.append(f"{where}.qr_source: expected one of {', '.join(QR_SOURCES)}")
        elif source == "self-log":
            self_log_only.add(name)
        if "logs" not in body:
            errors.append(f"{where}.logs: required")
            continue
        bots.append((name, str_list(body["logs"], f"{where}.logs", errors)))
        mine, per_log = _parse_bot_dialects(name, body, bots[-1][1], known, errors)
        bot_dialects += mine
        log_dialects += per_log
    return {
        "bots": tuple(bots),
        "self_log_qr_bots": frozenset(self_log_only),
        "bot_dialects": tuple(bot_dialects),
        "log_dialects": tuple(log_dialects),
    }


def _parse_exporter(raw: object, errors: list[str]) -> ExporterSettings:
    settings = ExporterSettings()
    if raw is None:
        return settings
    if not isinstance(raw, dict):
        errors.append("exporter: expected a mapping")
        return settings
    where = "exporter"
    known = {
        "listen_address", "state_dir", "qr_token_file", "qr_hosts", "qr_shapes",
        "poll_interval", "max_line_bytes", "hostnames",
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
    known_problems = len(errors)
    if "qr_hosts" in raw:
        hosts = str_list(raw["qr_hosts"], f"{where}.qr_hosts", errors)
        for i, host in enumerate(hosts):
            if not re.fullmatch(r"[A-Za-z0-9.-]+", host) or "." not in host:
                errors.append(f"{where}.qr_hosts[{i}]: expected a DNS name, got {host!r}")
        changes["qr_hosts"] = tuple(h.lower().rstrip(".") for h in hosts)
    _parse_qr_shapes(raw, changes, errors, hosts_ok=len(errors) == known_problems)
    if "hostnames" in raw:
        names = str_list(raw["hostnames"], f"{where}.hostnames", errors)
        changes["hostnames"] = parse_hostnames(names, f"{where}.hostnames", errors)
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


def _parse_qr_shapes(
    raw: dict[str, Any], changes: dict[str, Any], errors: list[str], *, hosts_ok: bool
) -> None:
    """`exporter.qr_shapes` → changes["qr_shapes"]; a shape on no allowed host, or allowed hosts
    with no shape at all (every QR rejected), is a problem too (`hosts_ok`: the hosts are
    valid, so such a problem is not an echo of theirs)."""
    hosts = changes.get("qr_hosts", DEFAULT_QR_HOSTS)
    shapes: tuple[str, ...] = DEFAULT_QR_SHAPES
    if "qr_shapes" in raw:
        where = "exporter.qr_shapes"
        listed = raw["qr_shapes"]
        if not isinstance(listed, list) or not listed:
            errors.append(
                f"{where}: expected a non-empty list of URL templates like {DEFAULT_QR_SHAPES[0]}"
            )
            return
        for i, template in enumerate(listed):
            shape, problems = parse_qr_shape(template)
            errors.extend(f"{where}[{i}]: {problem}, got {template!r}" for problem in problems)
            if shape is not None and hosts_ok and not host_allowed(shape.host, hosts):
                errors.append(
                    f"{where}[{i}]: host {shape.host} is not in exporter.qr_hosts "
                    f"({', '.join(hosts) or 'none'}), so this shape never matches"
                )
        shapes = tuple(t for t in listed if isinstance(t, str))
        changes["qr_shapes"] = shapes
    elif (
        "qr_hosts" in raw
        and hosts_ok
        and hosts
        and not any(
            (shape := parse_qr_shape(t)[0]) is not None and host_allowed(shape.host, hosts)
            for t in shapes
        )
    ):
        errors.append(
            f"exporter.qr_hosts: no login-QR shape is on these hosts, so every QR would be "
            f"rejected; name yours in exporter.qr_shapes (default: {', '.join(shapes)})"
        )


def _ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_hostnames(names: Sequence[str], where: str, errors: list[str]) -> tuple[str, ...]:
    """Host names (or IP addresses) the exporter is reached by, lower case, without a port."""
    out = []
    for i, name in enumerate(names):
        host = name.strip().lower().rstrip(".").strip("[]")
        if not (re.fullmatch(r"[a-z0-9.-]*[a-z0-9]", host) or _ip_address(host)):
            errors.append(f"{where}[{i}]: expected a host name without a port, got {name!r}")
        else:
            out.append(host)
    return tuple(out)


def apply_serve_flags(
    settings: ExporterSettings,
    *,
    logs: Sequence[tuple[str, str]] = (),
    listen: str | None = None,
    state_dir: str | None = None,
    qr_token_file: str | None = None,
    hostnames: Sequence[str] = (),
) -> ExporterSettings:
    """Flags override the file. `--log` flags add to (and for a named bot, replace) its logs;
    `--web.hostname` flags replace `exporter.hostnames`."""
    errors: list[str] = []
    changes: dict[str, Any] = {}
    if hostnames:
        changes["hostnames"] = parse_hostnames(hostnames, "--web.hostname", errors)
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


def parse_exporter_settings(
    exporter: object, bots: object, errors: list[str], dialects: object = None
) -> ExporterSettings:
    """The `exporter:`, `bots:` and `dialects:` sections → ExporterSettings; problems go to
    `errors`."""
    custom = parse_dialects(dialects, errors)
    # A bot may name any dialect of the section, even one with problems (reported there once).
    declared = [n for n in dialects if isinstance(n, str)] if isinstance(dialects, dict) else []
    settings = replace(
        _parse_exporter(exporter, errors),
        **_parse_bots(bots, errors, declared),
        dialects=tuple(custom.items()),
    )
    seen: dict[str, str] = {}
    for name, paths in settings.bots:
        for path in paths:
            if path in seen and seen[path] != name:
                errors.append(f"bots.{name}.logs: {path} is already a log of bot {seen[path]}")
            seen[path] = name
    return settings
