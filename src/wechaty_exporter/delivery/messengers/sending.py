"""Which message is being sent now, for a messenger that fans one message out to several channels.

The `Messenger` protocol carries a contact and a text or image, not the message's identity. A
messenger that sends to several channels (apprise: one URL each) must remember which channels
already took a message, so that a retry after a partial failure sends only to the rest. The
rescuer and the QR refresher say what they are sending through a context variable around each
call; the messenger reads it with `current()`. Without one (a chat command's reply), there is
nothing to remember and every channel gets the message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["MessageRef", "current", "sending"]


@dataclass(frozen=True, slots=True)
class MessageRef:
    """One message of a delivery: `about` is what it belongs to (an alert's dedupe key, or a QR
    refresh's key), `step` which message of it (intro, qr, back-online, ...)."""

    about: str
    step: str


_CURRENT: ContextVar[MessageRef | None] = ContextVar("wechaty_exporter_message", default=None)


@contextmanager
def sending(ref: MessageRef) -> Iterator[None]:
    """Mark the messenger calls inside the block as sending `ref`."""
    token = _CURRENT.set(ref)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> MessageRef | None:
    """The message being sent now, if the caller said."""
    return _CURRENT.get()
