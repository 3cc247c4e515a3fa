"""Outbox messenger: every message becomes one JSON line in a file (dry runs, demos, tests).

Record schema (a public contract: demos and tools read it): `{"time": RFC3339, "to": CONTACT,
"bot": BOT, "type": "text"|"image", "text": "..."}` or, for images, `"png_base64": "..."` instead
of `"text"`. Each record is appended with one write, then flushed and fsynced before the send
counts as accepted.

Its image records are login QRs, so the file is private (`privatefiles.open_private`): created
0600, an older, looser one tightened to 0600, and a symbolic link, another user's file or a
hard-linked one refused (a DeliveryError that names the path), never written through.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wechaty_exporter.delivery.alerts import rfc3339
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.privatefiles import UnsafePathError, open_private


class OutboxMessenger:
    """Appends messages to a JSONL file; an OSError (disk full, ...) is a transient failure."""

    name = "outbox"

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = asyncio.Lock()

    async def send_text(self, to: str, text: str, *, bot: str) -> None:
        await self._append({"to": to, "bot": bot, "type": "text", "text": text})

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None:
        encoded = base64.b64encode(png).decode("ascii")
        await self._append({"to": to, "bot": bot, "type": "image", "png_base64": encoded})

    async def close(self) -> None:
        return None

    async def _append(self, fields: dict[str, Any]) -> None:
        record = {"time": rfc3339(self._clock()), **fields}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        async with self._lock:
            try:
                await asyncio.to_thread(self._write, line)
            except UnsafePathError as exc:
                raise DeliveryError(f"outbox {exc}") from exc
            except OSError as exc:
                raise DeliveryError(f"outbox {self.path}: {exc.strerror or exc}") from exc

    def _write(self, line: bytes) -> None:
        # O_APPEND: one write() per record keeps lines whole even with another writer.
        fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def read_outbox(path: Path | str) -> list[dict[str, Any]]:
    """Every record of an outbox file (for tests, demos and `tail`-like tools)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
