"""Messengers carry the receiver's messages to admins: one small interface, several transports.

A messenger either accepts a message (returns) or raises DeliveryError. `transient=True` means the
failure may pass (peer bot offline, puppet unreachable): the receiver answers 503 so Alertmanager
retries. `transient=False` means retrying cannot help (unknown contact, bad configuration).
"""

from __future__ import annotations

from typing import Protocol


class DeliveryError(Exception):
    """A message was not accepted by the messenger."""

    def __init__(self, reason: str, *, transient: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class Messenger(Protocol):
    """Sends text and images to a contact on behalf of the alert about `bot`."""

    name: str

    async def send_text(self, to: str, text: str, *, bot: str) -> None: ...

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None: ...

    async def close(self) -> None: ...
