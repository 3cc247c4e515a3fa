"""Settings primitives every wing uses: ConfigError, keys, durations, secret files, addresses, URLs.

A section parser appends every problem it finds to `errors` (a list of "where: what" lines) and goes
on, so `check-config` can list them all at once; `ConfigError` carries that list.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


def parse_http_url(value: object, where: str, errors: list[str]) -> str | None:
    """An http(s) URL with a host, without its trailing '/'; problems go to `errors`."""
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc:
            return value.rstrip("/")
    errors.append(f"{where}: expected an http(s) URL, got {value!r}")
    return None


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


def str_list(value: object, where: str, errors: list[str]) -> tuple[str, ...]:
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
    """Report every key of `section` that is not in `allowed`, naming the known ones; a secret
    written as a literal (`token:` where `token_file:` is known) is told where secrets go."""
    known = sorted(allowed)
    for key in section:
        if key in known:
            continue
        if f"{key}_file" in known:
            errors.append(f"{where}.{key}: secrets are read from files; use {key}_file")
        else:
            errors.append(f"{where}.{key}: unknown key (known: {', '.join(known)})")


def read_secret(path: Path, what: str) -> str:
    """A secret from a file: stripped, non-empty. Raises ConfigError with a clear reason."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError([f"{what}: cannot read {path}: {exc.strerror or exc}"]) from exc
    if not value:
        raise ConfigError([f"{what}: {path} is empty"])
    return value
