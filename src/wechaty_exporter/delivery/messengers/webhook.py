"""Webhook messenger: hands each message to a bot written in another language as one JSON POST.

Request: `POST <url>`, `Content-Type: application/json`, `Authorization: Bearer <token>` when a
token file is configured, body

    {"time": "2026-11-25T01:02:03.456Z", "to": "<contact>", "bot": "<bot the alert is about>",
     "type": "text", "text": "..."}
    {"time": ..., "to": ..., "bot": ..., "type": "image", "png_base64": "...",
     "filename": "bob-login-qr.png"}

(the outbox record, plus `filename` on images). Any 2xx means accepted. 5xx, 408, 429, a timeout or
a connection error are transient (the receiver answers 503 and Alertmanager retries); any other
status is permanent (a bad contact or configuration, which a retry cannot fix).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from wechaty_exporter.delivery.alerts import rfc3339
from wechaty_exporter.delivery.messengers import DeliveryError

_TRANSIENT_STATUS = frozenset({408, 425, 429})


class WebhookMessenger:
    """JSON POST per message."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        self._clock = clock

    async def send_text(self, to: str, text: str, *, bot: str) -> None:
        await self._post({"to": to, "bot": bot, "type": "text", "text": text})

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None:
        encoded = base64.b64encode(png).decode("ascii")
        body = {"to": to, "bot": bot, "type": "image", "png_base64": encoded, "filename": filename}
        await self._post(body)

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

    async def _post(self, fields: dict[str, Any]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        body = {"time": rfc3339(self._clock()), **fields}
        try:
            async with self._session.post(
                self.url, json=body, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as resp:
                if 200 <= resp.status < 300:
                    return
                detail = (await resp.text(errors="replace"))[:200].strip()
                reason = f"webhook {self.url}: HTTP {resp.status}"
                if detail:
                    reason += f": {detail}"
                transient = resp.status >= 500 or resp.status in _TRANSIENT_STATUS
                raise DeliveryError(reason, transient=transient)
        except TimeoutError as exc:
            reason = f"webhook {self.url}: timed out after {self._timeout.total:g} s"
            raise DeliveryError(reason) from exc
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"webhook {self.url}: {exc.__class__.__name__}: {exc}") from exc
