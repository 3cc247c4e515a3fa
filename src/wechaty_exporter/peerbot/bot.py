"""The peer bot: a python-wechaty bot that hosts the receiver, answers chat commands, self-logs.

`run_peer_bot` serves the receiver (POST /alerts) on the bot's event loop and sends through the
bot; `/-/ready` answers 200 only while the bot's event stream is open and its account is logged in.
When the event stream is lost, the bot reconnects with backoff; meanwhile sends fail as transient,
so the receiver answers 503 and Alertmanager retries.

Chat commands (`bot.commands` in the config; admins are `bot.receiver.admins`): every text the bot
receives goes to `commands.ChatCommands`, which replies to its talker only. `rescue off <bot>`
pauses the receiver's messages about that bot (answered 200, counted as outcome `paused`); the
bot's /metrics adds `wechaty_bot_commands_total{command,outcome}`; with
`bot.commands.alertmanager_url` set, `ack` silences are ended every minute once their alerts
resolved.

The bot writes its own puppet's events to its self-log (`selflog`), the file the exporter tails.
The same wiring inside an existing python-wechaty bot is `plugin.ExporterPlugin` (`hosting`).

The duet probe (`bot.probe`, off unless set): while logged in, every interval ± jitter the bot DMs
its peer bot's account ``wechaty-exporter probe v1 <its name> <seq>`` (`probe_text`; seq counts
from 1 per process) and self-logs ``probe_sent`` (``probe_failed`` at WARN when the send failed).
A received text matching `PROBE_RE` never reaches the chat commands and is never answered: from
the configured peer contact, in a DM, it is self-logged as ``probe``; from anyone else, or in a
group, it is dropped. The exporter turns those lines into
``wechaty_bot_probe_received_timestamp_seconds`` and ``wechaty_bot_probe_sent_timestamp_seconds``,
and the rule ``WechatyBotUnresponsive`` fires when a bot that says it is logged in stops
receiving its peer's probes (a phone-side logout that no logout event reported).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wechaty_exporter.chatops.commands import PROBE_RE, probe_text
from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.peerbot import compat
from wechaty_exporter.peerbot.commands import ACK_CHECK_INTERVAL, ChatCommands
from wechaty_exporter.peerbot.hosting import Hosting
from wechaty_exporter.peerbot.messenger import (
    BotStartError,
    PuppetService,
    RunningBot,
    WechatyMessenger,
    new_bot,
    start_bot,
)
from wechaty_exporter.peerbot.selflog import SelfLogger
from wechaty_exporter.peerbot.settings import BotSettings, ProbeSettings

if TYPE_CHECKING:
    from wechaty_exporter.peerbot.compat import IncomingText

__all__ = ["PROBE_RE", "PeerBot", "probe_text", "run_peer_bot"]

log = logging.getLogger(__name__)

_ERROR_CHARS = 200  # of a failed probe's error, in the self-log


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
        probe: ProbeSettings | None = None,
        rng: Callable[[], float] = random.random,
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
        self.admin_pins: dict[str, dict[str, str]] = {}  # kept across reconnects (messenger.py)
        self.probe = probe
        self.probe_seq = 0  # the last probe's number
        self._rng = rng

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
        messenger = WechatyMessenger(bot, timeout=self.send_timeout, pins=self.admin_pins)
        # replies go through the bot that received the message
        compat.on_text_message(bot, lambda text: self._on_text(text, messenger))
        self.running = await start_bot(bot, self.service, within=self.start_timeout)
        self.messenger.messenger = messenger
        self.self_log.note("puppet", {"state": "connected", "endpoint": self.service.endpoint})
        log.info("bot %s connected to the puppet service at %s", self.name, self.service.endpoint)

    async def _on_text(self, text: IncomingText, messenger: WechatyMessenger) -> None:
        """A probe is never a command nor answered; any other text goes to the commands."""
        m = PROBE_RE.fullmatch(text.text)
        if m is not None:
            if await self._from_peer(text, messenger):
                self.self_log.probe_received(m.group(1), int(m.group(2)))
            else:
                log.info("a probe text from %s dropped: not the configured peer", text.talker_id)
            return
        if self.commands is not None:
            await self.commands.on_text(text, messenger)

    async def _from_peer(self, text: IncomingText, messenger: WechatyMessenger) -> bool:
        """`text` is a DM from the configured peer contact (matched as admins are: its id,
        weixin or alias, or what the contact resolves to)."""
        probe = self.probe
        if probe is None or text.room_id is not None or text.from_self or not text.talker_id:
            return False
        if probe.peer in (text.talker_id, text.talker_weixin or None, text.talker_alias or None):
            return True
        try:
            return await messenger.resolve(probe.peer) == text.talker_id
        except DeliveryError:
            return False

    def _next_wait(self) -> float:
        probe = self.probe
        assert probe is not None
        return probe.interval * (1.0 + probe.jitter * (2.0 * self._rng() - 1.0))

    async def send_probes(self) -> None:
        """Until cancelled: every interval ± jitter, a probe to the peer while logged in."""
        probe = self.probe
        if probe is None:
            return
        while True:
            await asyncio.sleep(self._next_wait())
            if self.ready:
                await self.send_probe(probe)

    async def send_probe(self, probe: ProbeSettings) -> None:
        """One probe to the peer, and its self-log line (`probe_sent` or `probe_failed`)."""
        self.probe_seq += 1
        seq = self.probe_seq
        try:
            await self.messenger.send_text(
                probe.peer, probe_text(self.name, seq), bot=probe.peer_bot
            )
        except Exception as exc:  # DeliveryError, or anything the puppet raised: logged, not fatal
            error = (str(exc) or type(exc).__name__)[:_ERROR_CHARS]
            log.warning("probe %d to %s failed: %s", seq, probe.peer_bot, error)
            self.self_log.probe_failed(probe.peer_bot, error)
        else:
            self.self_log.probe_sent(probe.peer_bot, seq)

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
    hosting = Hosting(settings.self_log_path())
    peer = PeerBot(
        service,
        hosting.self_log,
        name=settings.name,
        start_timeout=settings.puppet.start_timeout,
        reconnect_max_delay=settings.puppet.reconnect_max_delay,
        send_timeout=settings.send_timeout,
        probe=settings.probe,
    )
    listening: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
    tasks: list[asyncio.Task[None]] = [
        hosting.serve(
            settings.receiver,
            settings.commands,
            messenger=peer.messenger,
            ready=lambda: peer.ready,
            state_dir=settings.state_dir,
            task_name="receiver",
            name=settings.name,
            started=listening,
        )
    ]
    peer.commands = hosting.chat
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
            hosting.out,
        )
        if started is not None and not started.done():
            started.set_result(listening.result())
        tasks.append(asyncio.create_task(peer.run(), name="reconnect"))
        tasks.append(asyncio.create_task(_heartbeat(peer, heartbeat), name="heartbeat"))
        if peer.probe is not None:
            tasks.append(asyncio.create_task(peer.send_probes(), name="probe"))
        expiry = hosting.expire_acks(ack_check_interval)
        if expiry is not None:
            tasks.append(expiry)
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
        await hosting.close()
