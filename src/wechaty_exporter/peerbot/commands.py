"""The chat commands inside a running bot: a received text → `commands.handle_message` → replies.

`ChatCommands` owns what the commands work with (the exporters of the receiver settings, as
`Exporters`: `qr` asks the bot's own, `status` all of them; the Alertmanager client, the restart
runner, the rescue switches, the command state) and is handed every text its bot receives
(`PeerBot` and `ExporterPlugin` do that). Replies go to the talker's contact id and
nowhere else: a group message gets none (`handle_message` answers groups, the bot itself and
strangers with nothing), and nothing is ever sent to a room. One admin's messages are handled
one at a time, in the order they arrived, so `restart bob` is pending before its `YES` is read.

Every command leaves one audit line on the ``wechaty_exporter.audit`` logger (WARNING for wrong,
replayed and rate-limited codes, INFO otherwise) and counts in::

    # HELP wechaty_bot_commands_total Chat commands handled, by command and outcome.
    # TYPE wechaty_bot_commands_total counter
    wechaty_bot_commands_total{command="restart",outcome="ok"} 1.0
    wechaty_bot_commands_total{command="restart",outcome="no_code"} 2.0

on the bot's /metrics (`CommandsCollector`, reading `CommandState.outcomes` at scrape time).
`command` is a policy key (`commands_settings.COMMAND_KEYS`, `yes`, `no`, `unknown`), `outcome`
one of `chatops.model.OUTCOMES`.

A plugin bot's forwarded messages (POST /commands on a receiver, `answer`) take the same path:
the same sender turns, `handle_message`, state (a YES in a later request confirms), audit and
counters; the replies go back in the HTTP response instead of through a messenger. There is no
contact directory over HTTP (`resolver` None): an admin is named by id, weixin or alias.

`rescue on|off <bot>` flips `rescue` (in memory: a restarted bot rescues every bot again), which
the hosted receiver asks before each alert (`rescue_enabled`). With Alertmanager configured,
`expire_acks` ends `ack` silences once their alerts resolved, checking every minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zoneinfo
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, Metric

from wechaty_exporter.chatops.alertmanager import AlertmanagerClient
from wechaty_exporter.chatops.commands import handle_message, is_probe, sender_bots
from wechaty_exporter.chatops.handlers import expire_resolved_acks
from wechaty_exporter.chatops.model import (
    CommandContext,
    CommandState,
    ContactResolver,
    Reply,
    RescueSwitches,
    Sender,
)
from wechaty_exporter.chatops.runner import LocalRunner
from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.commands_http import CommandRefused, CommandRequest
from wechaty_exporter.delivery.exporter_client import Exporters
from wechaty_exporter.delivery.keylock import KeyLock
from wechaty_exporter.delivery.messengers import DeliveryError, Messenger
from wechaty_exporter.delivery.settings import ReceiverSettings

if TYPE_CHECKING:  # importing wechaty_compat imports python-wechaty
    from wechaty_exporter.peerbot.compat import IncomingText

__all__ = ["ACK_CHECK_INTERVAL", "ChatCommands", "CommandsCollector"]

log = logging.getLogger(__name__)

ACK_CHECK_INTERVAL = 60.0  # seconds between checks for `ack` silences whose alerts resolved


class CommandsCollector:
    """`wechaty_bot_commands_total{command,outcome}` from the command state, at scrape time."""

    def __init__(self, state: CommandState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "wechaty_bot_commands",
            "Chat commands handled, by command and outcome.",
            labels=["command", "outcome"],
        )
        for (command, outcome), count in sorted(self._state.outcomes.items()):
            family.add_metric([command, outcome], float(count))
        yield family


class ChatCommands:
    """Answers the chat commands a bot receives (see the module docstring)."""

    def __init__(
        self,
        settings: CommandsSettings,
        receiver: ReceiverSettings,
        *,
        resolver: ContactResolver | None,
        name: str = "peer",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.rescue = RescueSwitches()
        self.exporter = Exporters(receiver)  # each bot's exporter, as the receiver asks it
        self.alertmanager = (
            AlertmanagerClient(settings.alertmanager_url, timeout=settings.alertmanager_timeout)
            if settings.alertmanager_url is not None
            else None
        )
        runner = LocalRunner()
        self.context = CommandContext(
            settings=settings,
            admins={bot: contacts for bot, contacts in receiver.admins},
            exporter=self.exporter,
            alertmanager=self.alertmanager,
            runner=runner,
            logs=runner,
            rescue=self.rescue,
            resolver=resolver,
            tz=zoneinfo.ZoneInfo(receiver.timezone),
            messages=receiver.messages,  # replies in the bot's receiver.language
        )
        self._clock = clock
        self._turns = KeyLock()  # one message per sender at a time, in arrival order

    def collector(self) -> CommandsCollector:
        return CommandsCollector(self.context.state)

    def rescue_enabled(self, bot: str) -> bool:
        """For the hosted receiver: whether to send about `bot` (`rescue on|off <bot>`)."""
        return self.rescue.rescue_enabled(bot)

    async def on_text(self, message: IncomingText, replier: Messenger) -> None:
        """Handle one received text; send the replies to its talker. Never raises."""
        if not message.talker_id:
            return
        sender = Sender(
            id=message.talker_id,
            name=message.talker_name,
            weixin=message.talker_weixin,
            alias=message.talker_alias,
            is_self=message.from_self,
            room=message.room_id,
        )
        try:
            async with self._turns.hold(sender.id):
                replies = await handle_message(self.context, sender, message.text, self._clock())
                await self._send(replier, sender.id, replies)
        except Exception:
            log.exception("chat command from %s failed", sender.id)

    async def answer(self, request: CommandRequest) -> list[Reply]:
        """POST /commands: a message a plugin bot forwards → the replies for it to send.

        Raises CommandRefused: 400 when `request.bot` is not this bot's name, 403 when the
        sender is not an admin (a command word from them is audited as `ignored`)."""
        if request.bot != self.name:
            raise CommandRefused(
                400, f"bot: {request.bot!r} is not the bot this receiver answers for"
            )
        if is_probe(request.text):
            return []
        who = request.sender
        sender = Sender(id=who.id, name=who.name, weixin=who.weixin, alias=who.alias)
        async with self._turns.hold(sender.id):
            now = self._clock()
            admin = bool(await sender_bots(self.context, sender, now))
            replies = await handle_message(self.context, sender, request.text, now)
        if not admin:
            raise CommandRefused(403, f"{who.id!r} is not an admin of any bot here")
        return replies

    async def _send(self, replier: Messenger, to: str, replies: list[Reply]) -> None:
        for i, reply in enumerate(replies):
            try:
                if reply.kind == "image":
                    await replier.send_image(to, reply.png, bot=self.name, filename=reply.filename)
                else:
                    await replier.send_text(to, reply.text, bot=self.name)
            except DeliveryError as exc:
                log.warning("cannot reply to %s: %s (%d unsent)", to, exc, len(replies) - i)
                return

    async def expire_acks(self, every: float = ACK_CHECK_INTERVAL) -> None:
        """Until cancelled: every `every` seconds, end the `ack` silences whose alerts resolved.
        Returns at once without Alertmanager."""
        am = self.alertmanager
        if am is None:
            return
        while True:
            await asyncio.sleep(every)
            try:
                expired = await expire_resolved_acks(am)
            except Exception as exc:
                reason = getattr(exc, "reason", None) or repr(exc)
                log.warning("cannot end resolved acks: %s", reason)
                continue
            for silence_id in expired:
                log.info("ack silence %s ended: its alerts resolved", silence_id)

    async def close(self) -> None:
        await self.exporter.close()
        if self.alertmanager is not None:
            await self.alertmanager.close()
