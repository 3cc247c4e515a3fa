"""The self-log, receiver and chat commands as a plugin inside an existing python-wechaty bot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.peerbot import compat
from wechaty_exporter.peerbot.commands import ChatCommands
from wechaty_exporter.peerbot.hosting import Hosting
from wechaty_exporter.peerbot.messenger import WechatyMessenger

__all__ = ["ExporterPlugin"]

log = logging.getLogger(__name__)


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
        self.hosting = Hosting(Path(self_log) if self_log is not None else None)
        self.out = self.hosting.out
        self.self_log = self.hosting.self_log
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
        self._tasks.append(
            self.hosting.serve(
                receiver,
                self._commands_settings,
                messenger=messenger,
                ready=lambda: compat.login_user_id(wechaty) is not None,
                state_dir=self._state_dir,
                task_name="wechaty-exporter receiver",
            )
        )
        if self.hosting.chat is not None:
            self._chat = (self.hosting.chat, wechaty, messenger)
        expiry = self.hosting.expire_acks()
        if expiry is not None:
            self._tasks.append(expiry)
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
        await self.hosting.close()


def _report_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception())
