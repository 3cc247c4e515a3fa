"""The one module that imports python-wechaty: made importable on Python 3.11+, typed at its edge.

Pinned stack: wechaty 0.10.7, wechaty-puppet 0.4.23, wechaty-puppet-service 0.8.10, wechaty-grpc
0.20.19, with ``pyee<12`` (12 dropped the top-level ``AsyncIOEventEmitter``) and ``urllib3<2`` (2
dropped ``get_host``). Nothing else in the project imports wechaty*; everything untyped stays here.

Traps found in that stack, and what this module does about them:

- ``WechatyOptions.puppet_options = PuppetOptions()`` is a mutable dataclass default, which Python
  3.11 rejects at import (wechaty/python-wechaty#385, open). The shim below makes ``PuppetOptions``
  hashable so the import succeeds; it does not make the shared default safe, so `new_bot` always
  passes a fresh ``PuppetOptions``.
- Importing wechaty creates ``$CACHE_DIR`` (default ``./.wechaty``, relative to the working
  directory); the plugin scheduler would keep ``job.db`` there. `new_bot` gives it an in-memory one.
- puppet-service and the plugin manager import ``telnetlib`` (removed in Python 3.13): this stack
  runs on 3.11 and 3.12 only. Its endpoint "ping" is a blocking connect of up to 3 s.
- ``PuppetService`` logs the token at WARNING whenever endpoint and token are both set (always,
  for us): `_RedactTokens` rewrites those records.
- ``Wechaty.start()`` swallows start errors (prints them, sleeps 60 s and restarts, or stops the
  event loop) and blocks for the life of the event stream: `run_bot` does the same steps and lets
  errors propagate.
- puppet-service 0.8.10 opens a plaintext channel (``_init_puppet``, after a blocking endpoint
  "ping") with the token as the HTTP/2 ``:authority``; puppet-service 1.x servers speak TLS by
  default and check an ``authorization: Wechaty <token>`` header. `new_bot` replaces the new
  puppet's ``_init_puppet`` with `_open_channel`, which connects as `puppettls.PuppetTransport`
  says (TLS with the Wechaty CA and the token's server name, or plaintext), for `run_bot` and
  ``Wechaty.start()`` alike. `run_bot` turns a failed first call that the transport explains
  (certificate, server name, TLS against plaintext) into `puppettls.PuppetConnectError`.
- The plugin manager checks ``127.0.0.1:<port>`` (default 5000) at the first login and refuses the
  login if something listens there: `new_bot` takes an explicit loopback port.
- ``Contact._pool`` is one class-level dict shared by every bot and restart: pooled contacts keep
  the puppet they were loaded with. Sending therefore goes through the current puppet by id, and
  `close_bot` drops the closing bot's entries.
- Received message ids are deduplicated process-wide, forever (``SingleIdContainer``): a second
  bot in the same process never sees a message id the first one saw.
- Wechaty emits ``login`` and ``ready`` once per start: after a logout, a re-login reaches only
  the puppet (`login_user_id` follows it). Its scan handler raises AssertionError on every scan
  after the bot's own listeners ran (plugins never get ``on_scan``; "internal error <>" is logged
  at ERROR). ``ScanStatus`` is a plain Enum: compare ``.value``, not the int. `on_new_puppet` and
  `on_puppet_event` reach the puppet's own events for that reason.
- Wechaty logs every received message with its text at INFO (``receive message <...>``), and an
  admin's text may hold a TOTP code: `one_line_logs` shows logged messages by id only.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import wechaty_puppet.schemas.puppet as _puppet_schema

# wechaty/python-wechaty#385 (open): python-wechaty declares `puppet_options: PuppetOptions =
# PuppetOptions()` in the WechatyOptions dataclass. PuppetOptions is an eq dataclass, so its
# __hash__ is None, and Python 3.11+ treats any unhashable default as mutable and raises
# ValueError at import. Identity hashing is enough to get past that check.
if _puppet_schema.PuppetOptions.__hash__ is None:
    _puppet_schema.PuppetOptions.__hash__ = object.__hash__

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.events import SendRequest, listen
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from wechaty import (
    Contact,
    ContactPayload,
    FileBox,
    Message,
    MessageType,
    Room,
    ScanStatus,
    Tag,
    Wechaty,
    WechatyError,
    WechatyOptions,
    WechatyPlugin,
)
from wechaty_grpc.wechaty import PuppetStub
from wechaty_puppet import PuppetOptions, WechatyPuppetError

from wechaty_exporter.peerbot.puppettls import (
    PuppetConnectError,
    PuppetTransport,
    connection_error,
)

__all__ = [
    "TRANSPORT_ERRORS",
    "Contact",
    "ContactPayload",
    "ContactRecord",
    "FileBox",
    "IncomingText",
    "Message",
    "MessageType",
    "PuppetOptions",
    "ScanStatus",
    "Wechaty",
    "WechatyOptions",
    "WechatyPlugin",
    "close_bot",
    "contact_ids",
    "contact_record",
    "login_user_id",
    "new_bot",
    "on_event",
    "on_new_puppet",
    "on_puppet_error",
    "on_puppet_event",
    "on_text_message",
    "one_line_logs",
    "request_stop",
    "run_bot",
    "send_file",
    "send_text",
    "text_of",
]

log = logging.getLogger(__name__)

# What a call through the puppet raises when the puppet service is away, slow or refusing:
# gRPC status errors, a dropped HTTP/2 stream or connection, a refused connect (OSError), and
# wechaty's own errors for a puppet that is stopped or not yet connected.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    GRPCError,
    StreamTerminatedError,
    ProtocolError,
    OSError,
    WechatyPuppetError,
    WechatyError,
)


class _RedactTokens(logging.Filter):
    """PuppetService puts the token in log messages; the token is a credential."""

    _value = re.compile(r"<[^<>]*>")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token" in message:
            record.msg, record.args = self._value.sub("<redacted>", message), None
        return True


logging.getLogger("PuppetService").addFilter(_RedactTokens())


@dataclass(frozen=True)
class ContactRecord:
    """The fields of a contact that `--admin BOT=CONTACT` can match."""

    id: str
    name: str
    alias: str
    weixin: str
    friend: bool


def new_bot(
    *,
    endpoint: str,
    token: str,
    plugin_port: int,
    name: str = "wechaty-exporter",
    transport: PuppetTransport | None = None,
) -> Any:
    """A Wechaty bot for one puppet service, not yet started.

    `plugin_port` is where the plugin web server (only started by plugins with routes) binds on
    127.0.0.1; it must be free, as the plugin manager checks it at login. Each puppet the bot
    creates connects over `transport` (default: plaintext, as python-wechaty does).
    """
    options = WechatyOptions(
        name=name,
        puppet="wechaty-puppet-service",
        puppet_options=PuppetOptions(token=token, end_point=endpoint),
        host="127.0.0.1",
        port=plugin_port,
        scheduler=AsyncIOScheduler(),
    )
    bot = Wechaty(options)
    chosen = transport if transport is not None else PuppetTransport.plaintext()
    bot._exporter_transport = chosen
    init_puppet = bot.init_puppet

    async def init_puppet_over_transport() -> None:
        await init_puppet()
        puppet = bot._puppet
        if puppet is not None:
            puppet._init_puppet = lambda: _open_channel(puppet, chosen, endpoint, token)

    bot.init_puppet = init_puppet_over_transport
    return bot


def _open_channel(puppet: Any, transport: PuppetTransport, endpoint: str, token: str) -> None:
    """puppet-service 0.8.10's ``_init_puppet`` (minus its blocking "ping"), over `transport`."""
    if transport.problem:
        raise PuppetConnectError(transport.problem)
    host, _, port = endpoint.rpartition(":")
    if transport.tls:
        config = Configuration(ssl_target_name_override=transport.server_name)
        channel = Channel(host.strip("[]"), int(port), ssl=transport.ssl_context(), config=config)
        authorization = f"Wechaty {token}"

        async def authorize(event: SendRequest) -> None:
            event.metadata["authorization"] = authorization

        listen(channel, SendRequest, authorize)
    else:
        channel = Channel(host.strip("[]"), int(port))
    channel._authority = token  # the token as :authority, as puppet-service 0.8.10 (and 1.x) send
    puppet.channel = channel
    puppet._puppet_stub = PuppetStub(channel)


async def run_bot(bot: Any, on_connected: Callable[[], None]) -> None:
    """`Wechaty.start()` without its error handling: runs until the event stream ends.

    Calls `on_connected` once the puppet service answered Stop and Start, just before the event
    stream opens. Errors propagate to the caller.
    """
    await bot.init_puppet()
    await bot.init_puppet_event_bridge(bot.puppet)
    puppet = bot.puppet
    puppet._init_puppet()  # `_open_channel`: no connection yet
    try:
        try:
            await puppet.puppet_stub.stop()
        finally:
            await puppet.puppet_stub.start()
    except Exception as exc:
        transport: PuppetTransport = getattr(bot, "_exporter_transport", PuppetTransport(False))
        clear = connection_error(transport, puppet.options.end_point, exc)
        if clear is not None:
            raise clear from exc
        raise
    bot.started = True
    on_connected()
    await puppet._listen_for_event()


def on_event(bot: Any, event: str, callback: Callable[..., Awaitable[None] | None]) -> None:
    """Listen to a Wechaty event (`login`, `logout`, `scan`, `message`, `error`, ...)."""
    bot.on(event, callback)


def on_puppet_error(bot: Any, callback: Callable[[BaseException], None]) -> None:
    """Errors raised inside Wechaty's own event handlers (they are only logged otherwise).

    Call after `run_bot` has bridged the events (i.e. from `on_connected`).
    """

    def listener(payload: object) -> None:
        if isinstance(payload, BaseException):
            callback(payload)

    bot.puppet.on("error", listener)


async def request_stop(bot: Any) -> None:
    """The Stop RPC: the puppet service stops its puppet and ends the event stream."""
    puppet = bot._puppet
    if puppet is not None and puppet._puppet_stub is not None:
        await puppet._puppet_stub.stop()


def close_bot(bot: Any) -> None:
    """Drop the bot's pooled contacts, listeners, channel and scheduler (`stop()` minus Stop).

    ``Wechaty.stop()`` itself would skip closing the channel whenever the Stop RPC fails, and
    leaves its contacts in the process-wide pool, bound to a closed puppet.
    """
    puppet = bot._puppet
    if puppet is not None:
        for accessory in (Contact, Room, Tag):
            pool = accessory._pool
            for key in [key for key, item in pool.items() if item._puppet is puppet]:
                del pool[key]
        puppet._event_stream.remove_all_listeners()
        puppet._puppet_stub = None
        if puppet.channel is not None:
            puppet.channel.close()
            puppet.channel = None
    bot._puppet = None
    bot.started = False
    scheduler = bot._plugin_manager.scheduler
    if scheduler.running:
        scheduler.shutdown(wait=False)


def login_user_id(bot: Any) -> str | None:
    """The logged-in account's contact id, or None (not logged in, or no puppet)."""
    puppet = bot._puppet
    if puppet is None:
        return None
    user: str | None = puppet.login_user_id
    return user or None


async def contact_ids(bot: Any) -> list[str]:
    """ContactList through the current puppet."""
    ids: list[str] = list(await bot.puppet.contact_list())
    return ids


async def contact_record(bot: Any, contact_id: str) -> ContactRecord:
    """ContactPayload through the current puppet (not the shared Contact pool)."""
    payload = await bot.puppet.contact_payload(contact_id)
    return ContactRecord(
        id=payload.id,
        name=payload.name or "",
        alias=payload.alias or "",
        weixin=payload.weixin or "",
        friend=bool(payload.friend),
    )


async def send_text(bot: Any, contact_id: str, text: str) -> str | None:
    """MessageSendText; returns the new message id when the puppet gives one."""
    message_id: str | None = await bot.puppet.message_send_text(
        conversation_id=contact_id, message=text
    )
    return message_id


async def send_file(bot: Any, contact_id: str, data: bytes, filename: str) -> str | None:
    """MessageSendFile with a base64 FileBox (``from_base64`` wants base64 text, not raw bytes)."""
    box = FileBox.from_base64(base64.b64encode(data), name=filename)
    message_id: str | None = await bot.puppet.message_send_file(
        conversation_id=contact_id, file=box
    )
    return message_id


# --- hooks into python-wechaty's internals ------------------------------------------------------
# Wechaty creates a new puppet on every start in `init_puppet` and wires it in
# `init_puppet_event_bridge`, right before the event stream opens; puppet events are a pyee
# emitter whose listeners run in order.


def on_new_puppet(bot: Any, callback: Callable[[Any], None]) -> None:
    """Call `callback(puppet)` for every puppet `bot` creates, before its event stream opens."""
    bridge = bot.init_puppet_event_bridge

    async def bridge_and_tell(puppet: Any) -> None:
        await bridge(puppet)
        callback(puppet)

    bot.init_puppet_event_bridge = bridge_and_tell


def on_puppet_event(puppet: Any, event: str, callback: Callable[[Any], None]) -> None:
    """A puppet event's payload (``scan``, ``login``, ``logout``) straight from the puppet, which
    sees every re-login Wechaty does not. A failing callback is logged, never raised."""

    def listener(payload: Any) -> None:
        try:
            callback(payload)
        except Exception:  # raising would reach Wechaty's error handler as an "internal error"
            log.exception("puppet %s event listener failed on %r", event, payload)

    puppet.on(event, listener)


@dataclass(frozen=True)
class IncomingText:
    """A text message the bot received, with what the puppet knows of its talker."""

    message_id: str
    text: str
    talker_id: str
    talker_name: str
    talker_weixin: str
    talker_alias: str  # the bot account's remark for the talker
    room_id: str | None  # said in this group; None for a direct message
    from_self: bool  # written by the bot's own account


def text_of(bot: Any, message: Any) -> IncomingText | None:
    """A received (loaded) Message as an IncomingText; None when it is not a text."""
    payload = message.payload
    if payload is None or message.type() != MessageType.MESSAGE_TYPE_TEXT:
        return None
    talker_id = payload.from_id or ""
    contact = message.talker() if talker_id else None
    contact_payload = getattr(contact, "payload", None)

    def talker_field(name: str) -> str:
        value = getattr(contact_payload, name, "")
        return value if isinstance(value, str) else ""

    user = login_user_id(bot)
    return IncomingText(
        message_id=message.message_id,
        text=payload.text or "",
        talker_id=talker_id,
        talker_name=talker_field("name"),
        talker_weixin=talker_field("weixin"),
        talker_alias=talker_field("alias"),
        room_id=payload.room_id or None,
        from_self=bool(talker_id) and talker_id == user,
    )


def on_text_message(
    bot: Any, callback: Callable[[IncomingText], Coroutine[Any, Any, None]]
) -> None:
    """Every text message `bot` receives, once Wechaty loaded it and its talker. A failing
    callback is logged, never raised."""

    async def listener(message: Any) -> None:
        try:
            incoming = text_of(bot, message)
            if incoming is not None:
                await callback(incoming)
        except Exception:
            log.exception("message listener failed on message %s", message.message_id)

    bot.on("message", listener)


# --- logging -------------------------------------------------------------------------------------

_LINE_BREAKS = str.maketrans(
    {"\n": "\\n", "\r": "\\r", "\x85": "\\x85", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


class _OneLine(logging.Filter):
    """Escapes line breaks in a record's message: one record, one line. Messages in a record's
    arguments are shown by id: Wechaty logs every received text, and admins' texts hold codes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, Message) for a in record.args):
            record.args = tuple(
                f"Message <{a.message_id}>" if isinstance(a, Message) else a for a in record.args
            )
        message = record.getMessage()
        escaped = message.translate(_LINE_BREAKS)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


_ONE_LINE = _OneLine()


def one_line_logs() -> None:
    """Keep every log record of this process on one line, and chat texts out of the log.

    python-wechaty logs contact names and message texts as they are, on loggers of its own that
    do not propagate; a name with a newline would otherwise put a line of the attacker's choosing
    (say, a self-log scan line with their QR) into the bot's stderr, which someone may point the
    exporter at; and every received text (``receive message <...>``) would put admins' TOTP codes
    in the log. Exceptions' tracebacks are left as they are.
    """
    loggers = [logging.getLogger(), logging.getLogger("PuppetService")]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger) and not logger.propagate
    ]
    for filterer in [*loggers, *logging.getLogger().handlers]:  # handlers: propagated records
        filterer.addFilter(_ONE_LINE)  # no-op when already there
