"""The `receiver.qr_refresh` keys (delivery/refresh.py), parsed apart from settings.py.

    qr_refresh:
      interval: 60s   # at most one QR per bot per interval (the rescue's counts)
      max: 10         # at most this many refreshes per outage; 0: off
      poll: 5s        # how often the bot's exporter is asked meanwhile

A module of its own so that settings.py stays small; `ReceiverSettings.qr_refresh` holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from wechaty_exporter.settings import check_keys, parse_duration

__all__ = ["QrRefreshSettings", "parse_qr_refresh"]


@dataclass(frozen=True, slots=True)
class QrRefreshSettings:
    """A newer QR sent by itself while a bot's logout alert fires: at most one per `interval`
    per bot, at most `max` per outage (0: never); the exporter is asked every `poll`."""

    interval: float = 60.0
    max: int = 10
    poll: float = 5.0


def parse_qr_refresh(value: object, where: str, errors: list[str]) -> QrRefreshSettings:
    """`receiver.qr_refresh` → settings; problems go to `errors` (the defaults stand then)."""
    default = QrRefreshSettings()
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping with interval, max, poll")
        return default
    check_keys(value, ("interval", "max", "poll"), where, errors)
    changes: dict[str, Any] = {}
    for key in ("interval", "poll"):
        if key in value:
            seconds = parse_duration(value[key], f"{where}.{key}", errors)
            if seconds is not None:
                changes[key] = seconds
    if "max" in value:
        most = value["max"]
        if isinstance(most, int) and not isinstance(most, bool) and 0 <= most <= 1000:
            changes["max"] = most
        else:
            errors.append(f"{where}.max: must be an integer from 0 (off) to 1000, got {most!r}")
    return replace(default, **changes)
