"""The peer bot: a python-wechaty bot that hosts the receiver, answers chat commands and writes
its own self-log.

`run_peer_bot` serves the receiver (POST /alerts) on the bot's event loop and sends through the
bot; `/-/ready` answers 200 only while the bot's event stream is open and its account is logged in.
When the event stream is lost, the bot reconnects with backoff; meanwhile sends fail as transient,
so the receiver answers 503 and Alertmanager retries.

Chat commands (`bot.commands` in the config; admins are `bot.receiver.admins`): every text the bot
receives goes to `bot_commands.ChatCommands`, which replies to its talker only. `rescue off <bot>`
pauses the receiver's messages about that bot (answered 200, counted as outcome `paused`); the
bot's /metrics adds `wechaty_bot_commands_total{command,outcome}`; with
`bot.commands.alertmanager_url` set, `ack` silences are ended every minute once their alerts
resolved.

Self-log. The bot appends its own puppet's events to a file (`--self-log`, default
``<state-dir>/self.log``, ``-`` for stdout) in the format `dialects.format_self_log` writes and the
exporter parses, one line per event, values JSON-escaped so no name, reason or QR can start a
line of its own::

    2026-11-25T09:00:01.000+08:00 INFO wechaty-exporter scan {"status":2,"qrcode":"https://..."}
    2026-11-25T09:00:10.500+08:00 INFO wechaty-exporter login {"user":"Peer\\n伙伴","id":"wxid_p"}
    2026-11-25T22:00:00.000+08:00 INFO wechaty-exporter logout {"user":"Peer\\n伙伴","id":"wxid_p",
        "reason":"kicked"}   (one line)

``scan``: ``status`` (ScanStatus number) and ``qrcode`` (the puppet's payload or null); ``login``:
``user`` (display name or null) and ``id``; ``logout``: ``user``, ``id``, ``reason`` (or null).

The exporter tails that file (``serve --log alice=/path/alice.self.log``): two bots rescuing each
other plus one exporter form the duet with no other code. Kinds that are not events, ignored by the
parser: ``puppet`` (``state`` connected / stopped, and lost at level ERROR, counted in
``wechaty_log_errors_total``) and ``heartbeat`` (every `heartbeat` seconds, so a quiet but running
bot's log never looks stale, default every 10 min). A login line names the account once
ContactPayload answered (or gives up after `lookup_timeout`); lines are written in the order the
events arrived, stamped with their arrival time. Each reconnect logs the login the puppet service
announces again. The file (it holds login QRs) is opened with O_APPEND, mode 0640, and reopened
when rotated away. Never point the exporter at the bot's stderr instead: python-wechaty logs
contact names as they are (`wechaty_compat.one_line_logs` escapes their line breaks in this
process).

Why the puppet, not Wechaty's events: python-wechaty emits ``login`` once per start (a re-login
after a logout reaches only the puppet), and its scan handler raises after its listeners ran, so
plugins never see a scan. `SelfLogger.follow` therefore hooks every puppet a bot creates, before
its event stream opens. `ExporterPlugin` does the same inside an existing python-wechaty bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.main import serve_receiver
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.logs.dialects.parser import format_self_log
from wechaty_exporter.peerbot import compat
from wechaty_exporter.peerbot.commands import ACK_CHECK_INTERVAL, ChatCommands
from wechaty_exporter.peerbot.messenger import (
    BotStartError,
    PuppetService,
    RunningBot,
    WechatyMessenger,
    new_bot,
    start_bot,
)
from wechaty_exporter.peerbot.settings import BotSettings

__all__ = [
    "ExporterPlugin",
    "PeerBot",
    "SelfLog",
    "SelfLogger",
    "run_peer_bot",
]

log = logging.getLogger(__name__)

Fields = Mapping[str, object]
Clock = Callable[[], float]


class SelfLog:
    """Appends self-log lines to a file (reopened when rotated away), or to stdout for None."""

    def __init__(self, path: Path | None, *, stream: TextIO | None = None) -> None:
        self.path = path
        self._stream = stream
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else "stdout"

    def open(self) -> None:
        """Open the file now, so an unusable path fails at start. Raises OSError."""
        if self.path is not None:
            self._file(self.path)

    def write(self, kind: str, fields: Fields, *, at: float, level: str = "INFO") -> None:
        """One line; a failure to write is logged, never raised."""
        line = format_self_log(kind, fields, at, level) + "\n"
        try:
            if self.path is None:
                stream = self._stream if self._stream is not None else sys.stdout
                stream.write(line)
                stream.flush()
                return
            data = line.encode("utf-8")
            fd = self._file(self.path)
            while data:
                data = data[os.write(fd, data) :]
        except OSError as exc:
            log.error("cannot write the self-log %s: %s", self, exc)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _file(self, path: Path) -> int:
        try:
            st = os.stat(path)
            ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            ident = None
        if self._fd is not None and ident != self._ident:
            self.close()  # rotated away or deleted: continue in a file at the path
        if self._fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            self._fd = os.open(path, flags, 0o640)
            st = os.fstat(self._fd)
            self._ident = (st.st_dev, st.st_ino)
        return self._fd


class SelfLogger:
    """Writes the scan/login/logout events of a bot's puppets to a SelfLog, in arrival order."""

    def __init__(self, out: SelfLog, *, clock: Clock = time.time, lookup_timeout: float = 5.0):
        self.out = out
        self._clock = clock
        self._lookup_timeout = lookup_timeout
        self._names: dict[str, str] = {}  # contact id → display name, for logout lines
        self._bots: weakref.WeakSet[Any] = weakref.WeakSet()
        self._puppets: weakref.WeakSet[Any] = weakref.WeakSet()
        self._tail: asyncio.Future[None] | None = None

    def follows(self, bot: Any) -> bool:
        return bot in self._bots

    def follow(self, bot: Any) -> None:
        """Log the events of every puppet `bot` starts from now on (each restart makes one)."""
        if bot in self._bots:
            return
        self._bots.add(bot)
        compat.on_new_puppet(bot, lambda puppet: self.attach(bot, puppet))

    def attach(self, bot: Any, puppet: Any) -> None:
        """Log the events of this one puppet, from its next event on."""
        if puppet in self._puppets:
            return
        self._puppets.add(puppet)
        compat.on_puppet_event(puppet, "scan", lambda payload: self._scan(payload))
        compat.on_puppet_event(
            puppet, "login", lambda payload: self.logged_in(bot, payload.contact_id)
        )
        compat.on_puppet_event(puppet, "logout", lambda payload: self._logout(payload))

    def logged_in(self, bot: Any, contact_id: str | None) -> None:
        """A login line for `contact_id`, named once its ContactPayload answered."""
        if not contact_id:
            return

        async def fields() -> Fields:
            name = await self._display_name(bot, contact_id)
            if name:
                self._names[contact_id] = name
            return {"user": name, "id": contact_id}

        self._append("login", fields)

    def note(self, kind: str, fields: Fields, *, level: str = "INFO") -> None:
        """A line of a kind that is not an event (``puppet``, ``heartbeat``)."""

        async def same() -> Fields:
            return fields

        self._append(kind, same, level=level)

    async def flush(self) -> None:
        """Wait until every line so far is written."""
        if self._tail is not None:
            await asyncio.wait({self._tail})

    def _scan(self, payload: Any) -> None:
        status = getattr(payload.status, "value", payload.status)
        qrcode = payload.qrcode or None
        self.note("scan", {"status": int(status), "qrcode": qrcode})

    def _logout(self, payload: Any) -> None:
        contact_id: str = payload.contact_id or ""

        async def fields() -> Fields:  # the name as known once earlier lines were written
            name = self._names.get(contact_id)
            return {"user": name, "id": contact_id or None, "reason": payload.data or None}

        self._append("logout", fields)

    def _append(
        self, kind: str, fields: Callable[[], Awaitable[Fields]], *, level: str = "INFO"
    ) -> None:
        at = self._clock()
        previous = self._tail
        self._tail = asyncio.ensure_future(self._write(previous, kind, fields, at, level))

    async def _write(
        self,
        previous: asyncio.Future[None] | None,
        kind: str,
        fields: Callable[[], Awaitable[Fields]],
        at: float,
        level: str,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        try:
            values = await fields()
        except Exception:  # a bug here must not cost the lines after it
            log.exception("self-log: cannot describe the %s event", kind)
            return
        self.out.write(kind, values, at=at, level=level)

    async def _display_name(self, bot: Any, contact_id: str) -> str | None:
        try:
            async with asyncio.timeout(self._lookup_timeout):
                record = await compat.contact_record(bot, contact_id)
        except Exception as exc:
            log.warning("self-log: no name for %s (%r); logging its id", contact_id, exc)
            return self._names.get(contact_id)
        return record.name or None


class _CurrentBot:
    """The receiver's messenger: sends through whichever bot is connected now."""

    name = "wechaty"

    def __init__(self) -> None:
        self.messenger: WechatyMessenger | None = None

    def _current(self) -> WechatyMessenger:
        if self.messenger is None:
            raise DeliveryError("the peer bot is not connected to its puppet service")
        return self.messenger

    async def send_text(self, to: str, text: str, *, bot: str) -> None:
        await self._current().send_text(to, text, bot=bot)

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None:
        await self._current().send_image(to, png, bot=bot, filename=filename)

    async def resolve(self, to: str) -> str:
        """For the chat commands: the contact id `to` names (DeliveryError when offline)."""
        return await self._current().resolve(to)

    async def close(self) -> None:
        """The bots are PeerBot's to close."""


class PeerBot:
    """Keeps one python-wechaty bot connected to its puppet service, self-logging its events and
    handing every text it receives to `commands` (when set)."""

    def __init__(
        self,
        service: PuppetService,
        self_log: SelfLogger,
        *,
        name: str = "peer",
        start_timeout: float = 30.0,
        reconnect_min_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        send_timeout: float = 15.0,
        commands: ChatCommands | None = None,
    ) -> None:
        self.service = service
        self.self_log = self_log
        self.name = name
        self.start_timeout = start_timeout
        self.reconnect_min_delay = min(reconnect_min_delay, reconnect_max_delay)
        self.reconnect_max_delay = reconnect_max_delay
        self.send_timeout = send_timeout
        self.messenger = _CurrentBot()
        self.running: RunningBot | None = None
        self.commands = commands

    @property
    def ready(self) -> bool:
        """Connected and logged in: a message sent now can go out."""
        running = self.running
        return running is not None and running.alive and running.logged_in

    async def connect(self) -> None:
        """One attempt to start a bot on the puppet service. Raises BotStartError."""
        await _probe(self.service.endpoint, min(self.start_timeout, 5.0))
        bot = new_bot(self.service, name=self.name)
        self.self_log.follow(bot)
        messenger = WechatyMessenger(bot, timeout=self.send_timeout)
        commands = self.commands
        if commands is not None:  # replies go through the bot that received the message
            compat.on_text_message(bot, lambda text: commands.on_text(text, messenger))
        self.running = await start_bot(bot, self.service, within=self.start_timeout)
        self.messenger.messenger = messenger
        self.self_log.note("puppet", {"state": "connected", "endpoint": self.service.endpoint})
        log.info("bot %s connected to the puppet service at %s", self.name, self.service.endpoint)

    async def run(self) -> None:
        """Until cancelled: when the event stream ends, reconnect with backoff. The backoff
        starts over only after a connection that held, so a flapping service is not hammered."""
        delay = self.reconnect_min_delay
        while True:
            if self.running is not None:
                since = time.monotonic()
                await asyncio.wait({self.running.task})
                self._lost()
                if time.monotonic() - since >= self.reconnect_max_delay:
                    delay = self.reconnect_min_delay
            while self.running is None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_max_delay)
                try:
                    await self.connect()
                except BotStartError as exc:
                    log.warning("reconnecting failed: %s; next try in %.1f s", exc, delay)

    async def stop(self) -> None:
        """Stop RPC, close the bot; the receiver's sends fail as transient from now on."""
        running, self.running = self.running, None
        self.messenger.messenger = None
        if running is not None:
            await running.stop(grace=3.0)
            self.self_log.note("puppet", {"state": "stopped", "endpoint": self.service.endpoint})

    def _lost(self) -> None:
        running, self.running = self.running, None
        if running is None:
            return
        self.messenger.messenger = None
        task = running.task
        error = None if task.cancelled() else task.exception()
        reason = repr(error) if error is not None else "the event stream ended"
        self.self_log.note(
            "puppet",
            {"state": "lost", "endpoint": self.service.endpoint, "error": reason},
            level="ERROR",
        )
        running.close()  # no Stop RPC: it would stop the puppet a new bot gets


async def _probe(endpoint: str, within: float) -> None:
    """Refuse fast: python-wechaty's own endpoint check blocks the event loop for up to 3 s."""
    host, _, port = endpoint.rpartition(":")
    try:
        async with asyncio.timeout(within):
            _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    except (OSError, TimeoutError) as exc:
        detail = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise BotStartError(f"puppet service at {endpoint} unreachable: {detail}") from exc
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _heartbeat(peer: PeerBot, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        connected = peer.running is not None and peer.running.alive
        peer.self_log.note("heartbeat", {"connected": connected, "logged_in": peer.ready})


async def run_peer_bot(
    settings: BotSettings,
    service: PuppetService,
    *,
    started: asyncio.Future[list[str]] | None = None,
    heartbeat: float = 600.0,
    ack_check_interval: float = ACK_CHECK_INTERVAL,
) -> None:
    """Serve the receiver, answer chat commands and keep the bot connected until cancelled.

    `started` receives the receiver's addresses once it listens and the bot is connected.
    Raises BotStartError when the first connection fails, OSError when the self-log or the
    listen address is unusable.
    """
    out = SelfLog(settings.self_log_path())
    out.open()
    self_log = SelfLogger(out)
    peer = PeerBot(
        service,
        self_log,
        name=settings.name,
        start_timeout=settings.puppet.start_timeout,
        reconnect_max_delay=settings.puppet.reconnect_max_delay,
        send_timeout=settings.send_timeout,
    )
    commands = ChatCommands(
        settings.commands, settings.receiver, resolver=peer.messenger, name=settings.name
    )
    peer.commands = commands
    registry = CollectorRegistry()
    registry.register(commands.collector())
    listening: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(
            serve_receiver(
                settings.receiver,
                state_dir=settings.state_dir,
                messenger=peer.messenger,
                ready=lambda: peer.ready,
                started=listening,
                registry=registry,
                rescue_enabled=commands.rescue_enabled,
            ),
            name="receiver",
        )
    ]
    try:
        first: list[asyncio.Future[Any]] = [listening, tasks[0]]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        if tasks[0].done():
            tasks[0].result()  # the receiver could not start: its error
        await peer.connect()
        log.info(
            "peer bot %s: receiver on %s, self-log %s",
            settings.name,
            ", ".join(listening.result()),
            out,
        )
        if started is not None and not started.done():
            started.set_result(listening.result())
        tasks.append(asyncio.create_task(peer.run(), name="reconnect"))
        tasks.append(asyncio.create_task(_heartbeat(peer, heartbeat), name="heartbeat"))
        if commands.alertmanager is not None:
            expiry = commands.expire_acks(ack_check_interval)
            tasks.append(asyncio.create_task(expiry, name="ack expiry"))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await peer.stop()
        await commands.close()
        await self_log.flush()
        out.close()


class ExporterPlugin(compat.WechatyPlugin):  # type: ignore[misc]
    """Self-logging, and optionally the receiver and the chat commands, inside an existing
    python-wechaty bot.

        bot = Wechaty(options)
        bot.use(ExporterPlugin("/var/log/alice.self.log", bot=bot))
        await bot.start()

    Given the bot before it starts, it logs from the first QR on; without `bot`, from the first
    login, when python-wechaty first hands a plugin the bot. With `receiver` settings it serves
    the receiver on the bot's event loop from that first login on, sending through this bot;
    with `commands` settings too, it answers the chat commands of the receiver's admins.
    Call `close()` when the bot stops.
    """

    def __init__(
        self,
        self_log: str | Path | None,
        *,
        bot: Any = None,
        receiver: ReceiverSettings | None = None,
        commands: CommandsSettings | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        if commands is not None and receiver is None:
            raise ValueError("chat commands need the receiver settings: their admins")
        self.out = SelfLog(Path(self_log) if self_log is not None else None)
        self.out.open()
        self.self_log = SelfLogger(self.out)
        self._receiver_settings = receiver
        self._commands_settings = commands
        self._state_dir = state_dir
        self._tasks: list[asyncio.Task[None]] = []
        self._chat: tuple[ChatCommands, Any, WechatyMessenger] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        if bot is not None:
            self.self_log.follow(bot)

    async def init_plugin(self, wechaty: Any) -> None:
        if not self.self_log.follows(wechaty):
            self.self_log.follow(wechaty)
            self.self_log.attach(wechaty, wechaty.puppet)
            self.self_log.logged_in(wechaty, compat.login_user_id(wechaty))  # this very login
        receiver = self._receiver_settings
        if receiver is None or self._tasks:
            return
        messenger = WechatyMessenger(wechaty)
        registry = CollectorRegistry()
        rescue_enabled = None
        if self._commands_settings is not None:
            chat = ChatCommands(self._commands_settings, receiver, resolver=messenger)
            self._chat = (chat, wechaty, messenger)
            registry.register(chat.collector())
            rescue_enabled = chat.rescue_enabled
            if chat.alertmanager is not None:
                self._tasks.append(asyncio.create_task(chat.expire_acks(), name="ack expiry"))
        self._tasks.append(
            asyncio.create_task(
                serve_receiver(
                    receiver,
                    state_dir=self._state_dir,
                    messenger=messenger,
                    ready=lambda: compat.login_user_id(wechaty) is not None,
                    registry=registry,
                    rescue_enabled=rescue_enabled,
                ),
                name="wechaty-exporter receiver",
            )
        )
        for task in self._tasks:
            task.add_done_callback(_report_end)

    async def on_message(self, msg: Any) -> None:
        """Chat commands, each in a task of its own: python-wechaty awaits plugins one by one."""
        if self._chat is None:
            return
        chat, wechaty, messenger = self._chat
        try:
            incoming = compat.text_of(wechaty, msg)
        except Exception:
            log.exception("cannot read message %r", msg)
            return
        if incoming is not None:
            task = asyncio.create_task(chat.on_text(incoming, messenger))
            self._handling.add(task)
            task.add_done_callback(self._handling.discard)

    async def close(self) -> None:
        for task in [*self._tasks, *self._handling]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._chat is not None:
            await self._chat[0].close()
        await self.self_log.flush()
        self.out.close()


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception())
