"""Delivery through a python-wechaty bot, and the one correct way to start such a bot here.

`WechatyMessenger` sends an admin a text or a PNG through a running bot's puppet service. Who the
admin is comes from `--admin BOT=CONTACT`: CONTACT is matched exactly against every contact's id,
then weixin, then alias, then name. A tie at the deciding level goes to the one contact among
them who is the bot's friend (an admin the bot can DM is one; a stranger met in a group who took
the admin's display name is not); any other tie is refused rather than guessed, since the image
is a login credential, and logged as an error saying how to fix the config. Resolutions are
cached per logged-in account.

A display name is anyone's to copy, so an admin found by name is pinned: the contact id it
resolved to is kept for that account for the messenger's life (a warning says so, once, and
names the id to configure instead). A stranger who takes the name later can then neither receive
the admin's messages nor make the name ambiguous and every delivery fail.

Traps behind the shape of this module (see also `wechaty_compat`):

- ``Contact.find("<weixin>")`` never matches a weixin (the filter compares ``quit ==
  payload.weixin``), and a callable query is rejected; ``ContactQueryFilter`` matches alias and
  name by substring. Resolution here lists the contacts itself.
- ``Contact.say()`` loads the sent message back (MessagePayload and more) after the send RPC
  succeeded; a failure there would be reported as a failed delivery and the admin would get the
  message twice once Alertmanager retries. Sends here stop at MessageSendText / MessageSendFile.
- gRPC calls have no deadline: a hung puppet service would hang the webhook. Every call here
  runs under a timeout.
- ``Wechaty.start()`` blocks for the life of the event stream and swallows start errors;
  `start_bot` runs the stream as a task and returns once the puppet service answered (or the
  account logged in), raising `BotStartError` otherwise.
- puppet-service 0.8.10 needs a token even with an explicit endpoint (it is sent as the HTTP/2
  ``:authority``; servers that check it need the real one) and speaks plaintext gRPC only:
  `PuppetService.from_env` adds TLS as the TypeScript client does it (`puppettls`).
  Without an endpoint it would ask api.chatie.io for one; `PuppetService` refuses that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from grpclib.const import Status
from grpclib.exceptions import GRPCError

from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.peerbot import compat
from wechaty_exporter.peerbot.compat import ContactRecord, Wechaty
from wechaty_exporter.peerbot.puppettls import (
    PuppetConnectError,
    PuppetTLSConfigError,
    PuppetTransport,
    TLSOptions,
)

__all__ = [
    "BotStartError",
    "PuppetService",
    "PuppetServiceConfigError",
    "RunningBot",
    "WechatyMessenger",
    "match_contacts",
    "new_bot",
    "start_bot",
]

log = logging.getLogger(__name__)

ENDPOINT_ENV = "WECHATY_PUPPET_SERVICE_ENDPOINT"
TOKEN_ENV = "WECHATY_PUPPET_SERVICE_TOKEN"
PLAINTEXT = PuppetTransport.plaintext()

# ContactPayload answers these when the service is away or overloaded, not when the id is unknown
# (the TypeScript puppet service reports every puppet failure, "not found" included, as INTERNAL).
_UNAVAILABLE = frozenset(
    {
        Status.UNAVAILABLE,
        Status.DEADLINE_EXCEEDED,
        Status.RESOURCE_EXHAUSTED,
        Status.CANCELLED,
        Status.ABORTED,
        Status.UNAUTHENTICATED,
    }
)


# Failures that may pass: the puppet service is away, refusing, failing or too slow.
_TRANSIENT: tuple[type[Exception], ...] = (*compat.TRANSPORT_ERRORS, TimeoutError)


class PuppetServiceConfigError(ValueError):
    """The puppet service endpoint or token is missing or unusable."""


class BotStartError(RuntimeError):
    """The bot did not come up: the puppet service refused, failed, or stayed silent."""


@dataclass(frozen=True)
class PuppetService:
    """Where the bot's puppet service listens (gRPC `host:port`), its token, and how to reach it
    (`from_env`: TLS unless asked otherwise; constructed directly: plaintext unless given)."""

    endpoint: str
    token: str
    transport: PuppetTransport = PLAINTEXT

    def __repr__(self) -> str:
        return f"PuppetService(endpoint={self.endpoint!r}, token=<redacted>)"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] = os.environ,
        *,
        endpoint: str | None = None,
        token: str | None = None,
        tls: TLSOptions | None = None,
    ) -> PuppetService:
        """Explicit values first, then the standard WECHATY_PUPPET_SERVICE_* variables (TLS
        ones included, `puppettls`)."""
        endpoint = endpoint or environ.get(ENDPOINT_ENV, "")
        token = token or environ.get(TOKEN_ENV, "")
        problems = []
        if not endpoint:
            problems.append(
                f"no puppet service endpoint: set {ENDPOINT_ENV} to the host:port of a "
                "Wechaty puppet service"
            )
        if not token:
            problems.append(
                f"no puppet service token: set {TOKEN_ENV} (wechaty-puppet-service 0.8.10 needs "
                "one even with an explicit endpoint; a service that does not check tokens takes "
                "any string)"
            )
        if problems:
            raise PuppetServiceConfigError("; ".join(problems))
        try:
            transport = PuppetTransport.resolve(token, environ, tls or TLSOptions())
        except PuppetTLSConfigError as exc:
            raise PuppetServiceConfigError(str(exc)) from exc
        return cls(endpoint=plaintext_endpoint(endpoint), token=token, transport=transport)


def plaintext_endpoint(value: str) -> str:
    """`host:port` from `host:port`, `http://host:port` or `grpc://host:port`; refuses
    `https://` and `grpcs://`, which would suggest the scheme chooses TLS (`puppettls` does)."""
    text = value.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    if scheme.lower() in {"https", "grpcs"}:
        raise PuppetServiceConfigError(
            f"puppet service endpoint {value!r}: give host:port; the bot speaks TLS unless "
            "plaintext is asked for (WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_CLIENT=true or "
            "bot.puppet.tls: false), whatever the scheme"
        )
    if scheme.lower() not in {"", "http", "grpc"}:
        raise PuppetServiceConfigError(f"puppet service endpoint {value!r}: unknown scheme")
    try:
        parts = urlsplit(f"//{rest.rstrip('/')}")
        port = parts.port
    except ValueError as exc:
        raise PuppetServiceConfigError(f"puppet service endpoint {value!r}: {exc}") from exc
    if not parts.hostname or port is None or parts.path:
        raise PuppetServiceConfigError(
            f"puppet service endpoint {value!r}: expected host:port, e.g. 127.0.0.1:8788"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_bot(
    service: PuppetService, *, name: str = "wechaty-exporter", plugin_port: int | None = None
) -> Wechaty:
    """A bot for `service`, not started: add listeners and plugins, then `start_bot` it.

    The plugin web server (started only by plugins that register routes) gets `plugin_port` on
    127.0.0.1, by default a free one, instead of python-wechaty's 0.0.0.0:5000.
    """
    port = plugin_port if plugin_port is not None else _free_loopback_port()
    return compat.new_bot(
        endpoint=service.endpoint,
        token=service.token,
        plugin_port=port,
        name=name,
        transport=service.transport,
    )


class RunningBot:
    """A started bot: the task that carries its event stream, its login state, and `stop()`."""

    def __init__(self, bot: Wechaty, endpoint: str, task: asyncio.Task[None]) -> None:
        self.bot = bot
        self.endpoint = endpoint
        self.task = task
        task.add_done_callback(self._stream_ended)

    @property
    def alive(self) -> bool:
        """The event stream is still open (messages and logouts still arrive)."""
        return not self.task.done()

    @property
    def logged_in(self) -> bool:
        return compat.login_user_id(self.bot) is not None

    async def stop(self, grace: float = 5.0) -> None:
        """Stop RPC (best effort, `grace` seconds), then close the channel, end the stream task."""
        try:
            async with asyncio.timeout(grace):
                await compat.request_stop(self.bot)
        except _TRANSIENT as exc:
            log.warning("puppet service at %s did not take Stop: %r", self.endpoint, exc)
        # Stop ends the event stream from the server side; let the client read that end.
        await asyncio.wait({self.task}, timeout=1.0)
        compat.close_bot(self.bot)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    def close(self) -> None:
        """Close the channel and drop the bot, without the Stop RPC: after a lost stream, a Stop
        would reach the puppet service's next session and stop the puppet a new bot gets."""
        compat.close_bot(self.bot)
        self.task.cancel()

    def _stream_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            log.info("puppet service at %s ended the event stream", self.endpoint)
        else:
            log.error("event stream from puppet service at %s failed: %r", self.endpoint, exc)


async def start_bot(
    bot: Wechaty, service: PuppetService, *, require_login: bool = False, within: float = 30.0
) -> RunningBot:
    """Start `bot`; return once the puppet service answered Stop/Start (or the login came).

    Raises BotStartError when the service refuses or fails first, or nothing happens within
    `within` seconds. A bot that is not logged in starts fine unless `require_login`: it shows a QR.
    """
    connected = asyncio.Event()
    logged_in = asyncio.Event()
    failures: list[BaseException] = []
    failed = asyncio.Event()

    def on_handler_error(exc: BaseException) -> None:
        # Only a failure between the puppet's login and the bot's counts: Wechaty's scan handler,
        # for one, fails on every scan (its plugin dispatch asserts the status is a str).
        if compat.login_user_id(bot) is not None and not logged_in.is_set():
            failures.append(exc)
            failed.set()

    def on_connected() -> None:
        compat.on_puppet_error(bot, on_handler_error)
        connected.set()

    compat.on_event(bot, "login", lambda *_: logged_in.set())
    task = asyncio.create_task(compat.run_bot(bot, on_connected), name=f"wechaty {service}")
    goal = asyncio.create_task((logged_in if require_login else connected).wait())
    failure = asyncio.create_task(failed.wait())
    try:
        await asyncio.wait(
            {task, goal, failure}, timeout=within, return_when=asyncio.FIRST_COMPLETED
        )
    except BaseException:  # cancelled while waiting: take the bot down with us
        task.cancel()
        compat.close_bot(bot)
        raise
    finally:
        goal.cancel()
        failure.cancel()

    where = f"puppet service at {service.endpoint}"
    if (logged_in if require_login else connected).is_set():
        return RunningBot(bot, service.endpoint, task)

    cause: BaseException | None = None
    if task.done() and not task.cancelled() and task.exception() is not None:
        cause = task.exception()
        problem = f"{where} failed: {cause!r}"
        if isinstance(cause, PuppetConnectError):
            problem = str(cause)
    elif task.done():
        problem = f"{where} ended the event stream at once"
    elif failures:
        cause = failures[0]
        problem = f"{where}: handling the login failed: {cause!r}"
    elif connected.is_set():
        problem = (
            f"{where} answered, but no login within {within:g}s (is the account waiting for "
            "a QR scan?)"
        )
    else:
        problem = f"{where} did not answer Start within {within:g}s"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    compat.close_bot(bot)
    raise BotStartError(problem) from cause


def match_contacts(contacts: Iterable[ContactRecord], query: str) -> list[ContactRecord]:
    """The contacts `query` names: exact id, else weixin, else alias, else name matches."""
    return _match(contacts, query)[1]


def _match(contacts: Iterable[ContactRecord], query: str) -> tuple[str, list[ContactRecord]]:
    """`match_contacts`, and the field that decided ("" when nothing matched)."""
    pool = list(contacts)
    if not query:
        return "", []
    for field in ("id", "weixin", "alias", "name"):
        found = [c for c in pool if getattr(c, field) == query]
        if found:
            return field, found
    return "", []


def break_tie(found: list[ContactRecord]) -> ContactRecord | None:
    """The one contact `found` means: the only one, or the only friend among several."""
    if len(found) == 1:
        return found[0]
    friends = [c for c in found if c.friend]
    return friends[0] if len(friends) == 1 else None


class WechatyMessenger:
    """Messenger over a running python-wechaty bot (see the module docstring)."""

    name = "wechaty"

    def __init__(
        self,
        bot: Wechaty,
        *,
        timeout: float = 15.0,
        concurrency: int = 16,
        pins: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """`pins` (account → display name → contact id) may be shared by the messengers of
        successive connections of one bot, so a reconnect keeps what was pinned."""
        self._bot = bot
        self._timeout = timeout
        self._concurrency = concurrency
        self._resolved: dict[str, str] = {}
        self._resolved_for: str | None = None
        self._pinned = pins if pins is not None else {}  # account → display name → contact id

    async def send_text(self, to: str, text: str, *, bot: str) -> None:
        if not text:
            raise DeliveryError("refusing to send an empty text", transient=False)
        contact_id = await self.resolve(to)
        await self._send(to, compat.send_text(self._bot, contact_id, text))

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None:
        name = os.path.basename(filename) or "qr.png"
        if not name.lower().endswith(".png"):
            name += ".png"
        contact_id = await self.resolve(to)
        await self._send(to, compat.send_file(self._bot, contact_id, png, name))

    async def close(self) -> None:
        """Forget cached resolutions; the bot belongs to whoever started it."""
        self._resolved.clear()

    async def resolve(self, to: str) -> str:
        """The contact id `to` names for the logged-in account, or DeliveryError."""
        user = compat.login_user_id(self._bot)
        if user is None:
            raise DeliveryError("the bot is not logged in to WeChat", transient=True)
        if user != self._resolved_for:
            self._resolved, self._resolved_for = {}, user
        pinned = self._pinned.setdefault(user, {})
        if to in pinned:
            return pinned[to]
        if to in self._resolved:
            return self._resolved[to]
        try:
            async with asyncio.timeout(self._timeout):
                contact_id, field = await self._lookup(to)
        except DeliveryError:
            raise
        except _TRANSIENT as exc:
            raise _transient("looking up contacts", exc) from exc
        if field == "name":
            pinned[to] = contact_id
            log.warning(
                "admin %r is named by display name, which anyone can take: pinned to contact %s"
                " for this account; configure the admin as %s (or its weixin) instead",
                to, contact_id, contact_id,
            )  # fmt: skip
        else:
            self._resolved[to] = contact_id
        return contact_id

    async def _lookup(self, to: str) -> tuple[str, str]:
        """The contact id `to` names, and the field that decided ("id", ..., "name")."""
        # An id costs one ContactPayload; anything else means reading every contact.
        try:
            record = await compat.contact_record(self._bot, to)
        except GRPCError as exc:
            if exc.status in _UNAVAILABLE:
                raise
        else:
            if record.id == to:
                return to, "id"
        field, found = _match(await self._directory(), to)
        if not found:
            raise DeliveryError(
                f"no contact of the bot matches {to!r} (by id, weixin, alias or name)",
                transient=False,
            )
        chosen = break_tie(found)
        if chosen is None:
            ids = ", ".join(sorted(c.id for c in found))
            reason = (
                f"{to!r} matches {len(found)} contacts by {field} ({ids}); none can be told"
                " from the others, so nothing is sent to any: name the admin by id or weixin"
            )
            log.error("admin contact: %s", reason)
            raise DeliveryError(reason, transient=False)
        if len(found) > 1:
            others = ", ".join(sorted(c.id for c in found if c is not chosen))
            log.warning(
                "admin %r: %s is the bot's friend, %s with the same %s are not: %s is used",
                to, chosen.id, others, field, chosen.id,
            )  # fmt: skip
        return chosen.id, field

    async def _directory(self) -> list[ContactRecord]:
        ids = await compat.contact_ids(self._bot)
        limit = asyncio.Semaphore(self._concurrency)

        async def one(contact_id: str) -> ContactRecord | None:
            async with limit:
                try:
                    return await compat.contact_record(self._bot, contact_id)
                except GRPCError as exc:
                    if exc.status in _UNAVAILABLE:
                        raise
                    log.warning("contact %s has no payload: %s", contact_id, exc.message)
                    return None

        records = await asyncio.gather(*(one(i) for i in ids))
        return [r for r in records if r is not None]

    async def _send(self, to: str, call: Awaitable[str | None]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await call
        except _TRANSIENT as exc:
            # The contact may be gone: look it up afresh on the retry.
            self._resolved.pop(to, None)
            raise _transient("sending", exc) from exc


def _transient(doing: str, exc: BaseException) -> DeliveryError:
    detail = exc.message if isinstance(exc, GRPCError) and exc.message else str(exc)
    kind = exc.status.name if isinstance(exc, GRPCError) else type(exc).__name__
    return DeliveryError(f"puppet service unreachable while {doing}: {kind}: {detail}")
