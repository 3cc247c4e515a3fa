"""`receiver.messenger`: the messenger that delivers (outbox, webhook, apprise or wechaty)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from wechaty_exporter.settings import check_keys, parse_duration, parse_http_url, parse_secret_file

MESSENGER_KINDS = ("outbox", "webhook", "apprise", "wechaty")
MessengerKind = Literal["outbox", "webhook", "apprise", "wechaty"]

if TYPE_CHECKING:
    from wechaty_exporter.delivery.messengers.apprise import AppriseChannel


@dataclass(frozen=True, slots=True)
class MessengerSettings:
    """The messenger `receiver` delivers through, and what it needs."""

    kind: MessengerKind = "outbox"
    path: Path | None = None  # outbox; None → <state-dir>/outbox.jsonl
    url: str | None = None  # webhook
    token: str | None = field(default=None, repr=False)  # webhook bearer token (from a file)
    timeout: float = 10.0  # webhook
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # wechaty
    channels: tuple[AppriseChannel, ...] = ()  # apprise: one per URL (timeout: per channel)


def parse_messenger(value: object, where: str, errors: list[str]) -> MessengerSettings | None:
    """Validate `receiver.messenger`; append every problem to `errors`."""
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping with a type ({', '.join(MESSENGER_KINDS)})")
        return None
    kind = value.get("type")
    if kind not in MESSENGER_KINDS:
        errors.append(f"{where}.type: must be one of {', '.join(MESSENGER_KINDS)}, got {kind!r}")
        return None
    if kind == "outbox":
        check_keys(value, ("type", "path"), where, errors)
        path = value.get("path")
        if path is not None and (not isinstance(path, str) or not path):
            errors.append(f"{where}.path: must be a file path, got {path!r}")
            return None
        return MessengerSettings(kind="outbox", path=Path(path) if path else None)
    if kind == "webhook":
        check_keys(value, ("type", "url", "token_file", "timeout"), where, errors)
        url = parse_http_url(value.get("url"), f"{where}.url", errors)
        token = None
        if "token_file" in value:
            token = parse_secret_file(value["token_file"], f"{where}.token_file", errors)
        timeout = 10.0
        if "timeout" in value:
            timeout = parse_duration(value["timeout"], f"{where}.timeout", errors) or timeout
        return MessengerSettings(kind="webhook", url=url, token=token, timeout=timeout)
    if kind == "apprise":
        from wechaty_exporter.delivery.messengers.apprise import parse_apprise

        channels, timeout = parse_apprise(value, where, errors)
        return MessengerSettings(kind="apprise", channels=channels, timeout=timeout)
    options = {k: v for k, v in value.items() if k != "type"}
    return MessengerSettings(kind="wechaty", options=MappingProxyType(options))
