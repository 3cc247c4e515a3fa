"""Basic auth against the file's bcrypt hashes, off the event loop, and the middleware that
puts the file's auth, client SAN check and headers in front of every route."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import ipaddress
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping

import bcrypt
from aiohttp import web

from wechaty_exporter.webconfig.fileformat import EXEMPT_PATHS, REALM
from wechaty_exporter.webconfig.live import LiveWebConfig

# --- basic auth -----------------------------------------------------------------------------


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(4, "big") + value


@functools.cache
def _decoy() -> bytes:
    """A hash to check unknown users' passwords against, at the usual cost."""
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(10))


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # longer than bcrypt's 72 bytes, or a hash it cannot read
        return False


def parse_basic(header: str) -> tuple[str, bytes] | None:
    """`Authorization: Basic base64(user:password)` → (user, password); None when it is not."""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
        user, sep, password = decoded.partition(b":")
        return (user.decode("utf-8"), password) if sep else None
    except (binascii.Error, UnicodeDecodeError):
        return None


class BasicAuth:
    """bcrypt checks off the event loop, successes cached under a keyed digest."""

    def __init__(self, *, cache_size: int = 1024, threads: int = 4) -> None:
        self._key = secrets.token_bytes(32)
        self._ok: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size
        self._threads = threads
        self._slots: asyncio.Semaphore | None = None
        self.bcrypt_checks = 0

    def _digest(self, user: str, hashed: bytes, password: bytes) -> bytes:
        message = _field(user.encode()) + _field(hashed) + _field(password)
        return hmac.new(self._key, message, hashlib.sha256).digest()

    async def check(self, users: Mapping[str, bytes], header: str) -> bool:
        """Whether `header` names a user of `users` with the right password."""
        parsed = parse_basic(header)
        if parsed is None:
            return False
        user, password = parsed
        hashed = users.get(user)
        digest = self._digest(user, hashed or b"", password)
        if hashed is not None and digest in self._ok:
            self._ok.move_to_end(digest)
            return True
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._threads)
        async with self._slots:
            self.bcrypt_checks += 1
            ok = await asyncio.to_thread(_checkpw, password, hashed or _decoy())
        if not ok or hashed is None:
            return False
        self._ok[digest] = None
        if len(self._ok) > self._cache_size:
            self._ok.popitem(last=False)
        return True


# --- the middleware -------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _san(value: str) -> str:
    """A SAN as compared: IP addresses in one spelling (Python writes ::1 as 0:0:0:0:0:0:0:1)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return value


def _peer_sans(request: web.Request) -> set[str]:
    """The DNS, IP, email and URI names of the client's verified certificate."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return set()
    return {_san(str(value)) for _, value in cert.get("subjectAltName", ())}


def guard(
    app: web.Application,
    live: LiveWebConfig,
    *,
    bearer_checked: Callable[[web.Request], bool] | None = None,
) -> BasicAuth:
    """Put the file's basic auth, client SAN check and headers in front of every route of
    `app` (before it starts). `bearer_checked(request)` names the requests whose handler checks
    a bearer token itself: carrying one, they skip the basic-auth check."""
    auth = BasicAuth()

    @web.middleware
    async def web_config(request: web.Request, handler: Handler) -> web.StreamResponse:
        config = live.current()
        try:
            tls = config.tls
            if (
                tls is not None
                and tls.allowed_sans
                and not _peer_sans(request) & {_san(san) for san in tls.allowed_sans}
            ):
                raise web.HTTPForbidden(text="client certificate SAN not allowed\n")
            if config.users and not _exempt(request, bearer_checked):
                header = request.headers.get("Authorization", "")
                if not await auth.check(config.users, header):
                    raise web.HTTPUnauthorized(
                        text="401 Unauthorized\n", headers={"WWW-Authenticate": REALM}
                    )
            response = await handler(request)
        except web.HTTPException as exc:
            for name, value in config.headers:
                exc.headers[name] = value
            raise
        if not response.prepared:
            for name, value in config.headers:
                response.headers[name] = value
        return response

    app.middlewares.insert(0, web_config)
    return auth


def _exempt(request: web.Request, bearer_checked: Callable[[web.Request], bool] | None) -> bool:
    if request.path in EXEMPT_PATHS and request.method in ("GET", "HEAD"):
        return True
    header = request.headers.get("Authorization", "")
    return (
        bearer_checked is not None and header[:7].lower() == "bearer " and bearer_checked(request)
    )
