"""The receiver's view of the exporter API (freshest login QR, bot list), with timeouts.

With bots on many hosts, one exporter per host: `Exporters` asks each bot's own exporter
(`receiver.exporters`, else `receiver.exporter_url`), one `ExporterClient` per distinct URL and
token, and merges the bot lists of them all for the chat command `status`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from wechaty_exporter.delivery.alerts import parse_rfc3339
from wechaty_exporter.delivery.settings import ExporterTarget, ReceiverSettings


class ExporterError(Exception):
    """The exporter could not be asked (down, timed out, refused us, or answered nonsense)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PendingQr:
    """`GET /api/v1/bots/{bot}/qr`: the login QR a bot waits to have scanned, and what WeChat
    said when the bot was logged out (`logout_reason`: None from an exporter that does not say,
    as before it served the field)."""

    bot: str
    qrcode: str
    status: str | None
    seen_at: float | None
    logout_reason: str | None = None


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
        reason = doc.get("logout_reason")  # an additive field: missing or odd is no reason
        return PendingQr(
            bot=bot,
            qrcode=qrcode,
            status=None if qr_status is None else str(qr_status),
            seen_at=seen_at,
            logout_reason=reason if isinstance(reason, str) and reason.strip() else None,
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


class QrSource(Protocol):
    """What the rescuer asks for a bot's QR: one `ExporterClient`, or `Exporters` per bot."""

    async def pending_qr(self, bot: str) -> PendingQr | None: ...


class Exporters:
    """Each bot's exporter (`ReceiverSettings.exporter_for`): one client per distinct (url,
    token), all closed by `close()`. Asking about a bot without an exporter raises ExporterError."""

    def __init__(self, settings: ReceiverSettings, *, timeout: float | None = None) -> None:
        self._settings = settings
        seconds = settings.exporter_timeout if timeout is None else timeout
        self._clients: dict[ExporterTarget, ExporterClient] = {}
        targets = [t for _, t in settings.exporters]
        if settings.default_exporter is not None:
            targets.append(settings.default_exporter)
        for target in targets:
            if target not in self._clients:
                self._clients[target] = ExporterClient(
                    target.url, token=target.token, timeout=seconds
                )
        # the bots whose exporter is known, so an unreachable one can be named in `bots()`
        names = [bot for bot, _ in settings.exporters] + [bot for bot, _ in settings.admins]
        self.known_bots = tuple(dict.fromkeys(names))

    @property
    def clients(self) -> tuple[ExporterClient, ...]:
        return tuple(self._clients.values())

    def client_for(self, bot: str) -> ExporterClient | None:
        target = self._settings.exporter_for(bot)
        return None if target is None else self._clients[target]

    def describe(self) -> str:
        """For the start-up log line: the default exporter and the per-bot ones (no tokens)."""
        default = self._settings.default_exporter
        parts = [default.url] if default is not None else []
        parts += [f"{bot}: {target.url}" for bot, target in self._settings.exporters]
        return ", ".join(parts)

    async def pending_qr(self, bot: str) -> PendingQr | None:
        """The freshest QR for `bot` from the exporter that watches it."""
        client = self.client_for(bot)
        if client is None:
            raise ExporterError(
                f"no exporter is configured for {bot} (receiver.exporters, receiver.exporter_url)"
            )
        return await client.pending_qr(bot)

    async def bots(self) -> list[dict[str, Any]]:
        """Every exporter's `GET /api/v1/bots`, merged: a bot's document comes from its own
        exporter (another exporter's word about it counts only for a bot without one). A bot
        whose exporter cannot be asked gets `{"bot", "exporter_error"}`; when none can be
        asked, this raises ExporterError."""
        clients = self.clients
        answers = await asyncio.gather(*(c.bots() for c in clients), return_exceptions=True)
        docs: dict[str, dict[str, Any]] = {}
        failed: list[tuple[ExporterClient, str]] = []
        for client, answer in zip(clients, answers, strict=True):
            if isinstance(answer, ExporterError):
                failed.append((client, answer.reason))
                continue
            if isinstance(answer, BaseException):
                raise answer
            for doc in answer:
                bot = doc.get("bot")
                if not isinstance(bot, str):
                    continue
                own = self.client_for(bot)
                if own is client or (own is None and bot not in docs):
                    docs[bot] = doc
        if failed and len(failed) == len(clients):
            raise ExporterError("; ".join(dict.fromkeys(reason for _, reason in failed)))
        for client, reason in failed:
            for bot in self.known_bots:
                if bot not in docs and self.client_for(bot) is client:
                    docs[bot] = {"bot": bot, "exporter_error": reason}
        return list(docs.values())

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
