"""The receiver's command-line flags (`--admin`, `--outbox`, ...) over the settings of its file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from wechaty_exporter.delivery.messenger_settings import MessengerSettings
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.settings import BOT_NAME, ConfigError, parse_http_url, parse_listen_address


def parse_admin_flag(value: str) -> tuple[str, str]:
    """`--admin BOT=CONTACT` → (BOT, CONTACT); raises ValueError with a clear reason."""
    bot, sep, contact = value.partition("=")
    if not sep or not bot or not contact:
        raise ValueError(f"--admin expects BOT=CONTACT, got {value!r}")
    if not BOT_NAME.fullmatch(bot):
        raise ValueError(f"--admin {value!r}: bot name must match {BOT_NAME.pattern}")
    return bot, contact


def parse_admin_flags(values: Iterable[str]) -> list[tuple[str, str]]:
    """Every `--admin BOT=CONTACT` flag; raises ConfigError listing every bad one."""
    admins, problems = [], []
    for value in values:
        try:
            admins.append(parse_admin_flag(value))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems, "flags")
    return admins


def apply_receiver_flags(
    settings: ReceiverSettings,
    *,
    listen: str | None = None,
    exporter_url: str | None = None,
    admins: Iterable[tuple[str, str]] = (),
    outbox: str | Path | None = None,
) -> ReceiverSettings:
    """Flags override the file. `--admin` flags for a bot replace that bot's configured admins;
    `--outbox PATH` selects the outbox messenger writing to PATH; `--exporter-url` is the
    default exporter (as `exporter_url` in the file). A bot with admins and no exporter is an
    error. Raises ConfigError."""
    errors: list[str] = []
    changes: dict[str, Any] = {}
    if listen is not None:
        parsed = parse_listen_address(listen, "--web.listen-address", errors)
        if parsed:
            changes["listen_host"], changes["listen_port"] = parsed
    if exporter_url is not None:
        url = parse_http_url(exporter_url, "--exporter-url", errors)
        if url:
            changes["exporter_url"] = url
            changes["exporter_url_set"] = True
    flagged: dict[str, list[str]] = {}
    for bot, contact in admins:
        if not BOT_NAME.fullmatch(bot):
            errors.append(f"--admin {bot}={contact}: bot name must match {BOT_NAME.pattern}")
        elif contact not in flagged.setdefault(bot, []):
            flagged[bot].append(contact)
    if flagged:
        merged = dict(settings.admins)
        merged.update({bot: tuple(contacts) for bot, contacts in flagged.items()})
        changes["admins"] = tuple(merged.items())
    if outbox is not None:
        changes["messenger"] = MessengerSettings(kind="outbox", path=Path(outbox))
    if errors:
        raise ConfigError(errors, "flags")
    result = replace(settings, **changes)
    missing = result.missing_exporters()
    if missing:
        raise ConfigError(
            [
                f"no exporter for bot {bot!r}: add it to receiver.exporters or give"
                " --exporter-url (the default exporter)"
                for bot in missing
            ],
            "flags",
        )
    return result
