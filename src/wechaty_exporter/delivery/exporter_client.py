"""The receiver's view of the exporter API (freshest login QR, bot list), with timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from wechaty_exporter.delivery.alerts import parse_rfc3339


class ExporterError(Exception):
    """The exporter could not be asked (down, timed out, refused us, or answered nonsense)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PendingQr:
    """`GET /api/v1/bots/{bot}/qr`: the login QR a bot waits to have scanned."""

    bot: str
    qrcode: str
    status: str | None
    seen_at: float | None


class ExporterClient:
    """Small aiohttp client; one session, created on first use, closed by `close()`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def _get(self, path: str) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = self.base_url + path
        try:
            async with self._session.get(
                url, headers=self._headers(), timeout=self._timeout, allow_redirects=False
            ) as resp:
                if resp.status == 404:
                    return 404, None
                if resp.status != 200:
                    raise ExporterError(f"GET {url}: HTTP {resp.status}")
                try:
                    return 200, await resp.json(content_type=None)
                except ValueError as exc:
                    raise ExporterError(f"GET {url}: response is not JSON") from exc
        except TimeoutError as exc:
            raise ExporterError(f"GET {url}: timed out after {self._timeout.total:g} s") from exc
        except aiohttp.ClientError as exc:
            raise ExporterError(f"GET {url}: {exc.__class__.__name__}: {exc}") from exc

    async def pending_qr(self, bot: str) -> PendingQr | None:
        """The freshest QR for `bot`, or None when the exporter has none pending (404)."""
        status, doc = await self._get(f"/api/v1/bots/{quote(bot, safe='')}/qr")
        if status == 404:
            return None
        if not isinstance(doc, dict):
            raise ExporterError(f"QR of {bot}: expected a JSON object")
        qrcode = doc.get("qrcode")
        if not isinstance(qrcode, str) or not qrcode:
            raise ExporterError(f"QR of {bot}: 'qrcode' missing or empty")
        seen_at: float | None = None
        if isinstance(doc.get("seen_at"), str):
            try:
                seen_at = parse_rfc3339(doc["seen_at"])
            except ValueError as exc:
                raise ExporterError(f"QR of {bot}: bad seen_at: {exc}") from exc
        qr_status = doc.get("status")
        return PendingQr(
            bot=bot,
            qrcode=qrcode,
            status=None if qr_status is None else str(qr_status),
            seen_at=seen_at,
        )

    async def bots(self) -> list[dict[str, Any]]:
        """`GET /api/v1/bots` → the list under "bots"."""
        _, doc = await self._get("/api/v1/bots")
        if not isinstance(doc, dict) or not isinstance(doc.get("bots"), list):
            raise ExporterError('/api/v1/bots: expected {"bots": [...]}')
        return [item for item in doc["bots"] if isinstance(item, dict)]

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None
