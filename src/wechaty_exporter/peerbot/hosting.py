"""What a bot hosts around itself, wired once for `run_peer_bot` and `ExporterPlugin` alike.

A bot's self-log is opened at once (an unusable path fails before anything starts); `serve` starts
the receiver sending through the bot, with the chat commands answering its admins when configured:
they share the bot's /metrics registry and pause the receiver's messages (`rescue off <bot>`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry

from wechaty_exporter.chatops.settings import CommandsSettings
from wechaty_exporter.delivery.main import serve_receiver
from wechaty_exporter.delivery.messengers import Messenger
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.peerbot.commands import ACK_CHECK_INTERVAL, ChatCommands
from wechaty_exporter.peerbot.selflog import SelfLog, SelfLogger

__all__ = ["BotMessenger", "Hosting"]


class BotMessenger(Messenger, Protocol):
    """Sends through the bot, and names contacts for the chat commands (DeliveryError offline)."""

    async def resolve(self, to: str) -> str: ...


class Hosting:
    """A bot's self-log, and once served its receiver and chat commands; `close` ends them."""

    def __init__(self, self_log: Path | None) -> None:
        """Open the self-log (None: stdout). Raises OSError when the path is unusable."""
        self.out = SelfLog(self_log)
        self.out.open()
        self.self_log = SelfLogger(self.out)
        self.chat: ChatCommands | None = None

    def serve(
        self,
        receiver: ReceiverSettings,
        commands: CommandsSettings | None,
        *,
        messenger: BotMessenger,
        ready: Callable[[], bool],
        state_dir: Path | str | None,
        task_name: str,
        name: str = "peer",
        started: asyncio.Future[list[str]] | None = None,
    ) -> asyncio.Task[None]:
        """The receiver's task, sending through `messenger`; with `commands`, the chat commands
        (`chat`, replying as `name`) first, their counters on the receiver's /metrics."""
        registry = CollectorRegistry()
        rescue_enabled = None
        if commands is not None:
            self.chat = ChatCommands(commands, receiver, resolver=messenger, name=name)
            registry.register(self.chat.collector())
            rescue_enabled = self.chat.rescue_enabled
        return asyncio.create_task(
            serve_receiver(
                receiver,
                state_dir=state_dir,
                messenger=messenger,
                ready=ready,
                started=started,
                registry=registry,
                rescue_enabled=rescue_enabled,
            ),
            name=task_name,
        )

    def expire_acks(self, every: float = ACK_CHECK_INTERVAL) -> asyncio.Task[None] | None:
        """The task ending `ack` silences once resolved; None without chat commands or
        Alertmanager."""
        if self.chat is None or self.chat.alertmanager is None:
            return None
        return asyncio.create_task(self.chat.expire_acks(every), name="ack expiry")

    async def close(self) -> None:
        """Close the chat commands' clients, write the self-log lines still owed, close it.
        The tasks are their starter's to cancel first."""
        if self.chat is not None:
            await self.chat.close()
        await self.self_log.flush()
        self.out.close()
