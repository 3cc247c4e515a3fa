"""POST /commands: what a plugin bot posts (an admin's chat message) and the replies it gets back.

The TypeScript plugin forwards its admins' direct messages here and sends the replies itself:

    {"from": {"id", "name", "weixin"?, "alias"?}, "text": "...", "bot": "<the plugin bot's name>"}
    → {"replies": [{"type": "text", "text"} | {"type": "image", "png_base64", "filename"}]}

This module holds only the wire format: `decode_command_request` (400 with a reason for a body
that is not that shape), `encode_replies`, and the handler's signature. The receiver does not
know what a command is (delivery imports no chat code): whoever starts it injects a
`CommandsHandler` (`peerbot.commands.ChatCommands.answer`), which parses, applies the policy,
runs and audits exactly as the python bot does, and raises `CommandRefused` (400 a bot name that
is not its own, 403 a sender who is not an admin).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from wechaty_exporter.settings import BOT_NAME

__all__ = [
    "MAX_COMMAND_BODY_BYTES",
    "CommandRefused",
    "CommandReply",
    "CommandRequest",
    "CommandSender",
    "CommandsHandler",
    "decode_command_request",
    "encode_replies",
]

MAX_COMMAND_BODY_BYTES = 16 * 1024  # a chat message and who wrote it; more is not a message
MAX_FIELD_CHARS = 256  # contact id, name, weixin, alias


class CommandRefused(Exception):
    """The request is not answered: `status` (400, 403) and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CommandSender:
    """`from`: the contact who wrote to the plugin bot, as its puppet knows them."""

    id: str
    name: str = ""
    weixin: str = ""
    alias: str = ""


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """One forwarded chat message."""

    sender: CommandSender
    text: str
    bot: str


class CommandReply(Protocol):
    """One reply (`chatops.model.Reply` is one): a text, or a PNG image with its file name."""

    @property
    def kind(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def png(self) -> bytes: ...
    @property
    def filename(self) -> str: ...


CommandsHandler = Callable[[CommandRequest], Awaitable[Sequence[CommandReply]]]


def _refuse(reason: str) -> CommandRefused:
    return CommandRefused(400, reason)


def _string(doc: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
    if key not in doc or doc[key] is None:
        if required:
            raise _refuse(f"{where}{key}: required")
        return ""
    value = doc[key]
    if not isinstance(value, str):
        raise _refuse(f"{where}{key}: must be a string, got {type(value).__name__}")
    if len(value) > MAX_FIELD_CHARS:
        raise _refuse(f"{where}{key}: longer than {MAX_FIELD_CHARS} characters")
    return value


def decode_command_request(body: bytes) -> CommandRequest:
    """The body → a request; raises CommandRefused(400) naming what is wrong."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _refuse(f"expected a JSON object, got {type(doc).__name__}")
    sender = doc.get("from")
    if not isinstance(sender, dict):
        raise _refuse("from: required, an object with id and name")
    contact_id = _string(sender, "id", "from.", required=True)
    if not contact_id.strip():
        raise _refuse("from.id: must not be empty")
    name = _string(sender, "name", "from.", required=False)
    weixin = _string(sender, "weixin", "from.", required=False)
    alias = _string(sender, "alias", "from.", required=False)
    if "text" not in doc:
        raise _refuse("text: required")
    text = doc["text"]
    if not isinstance(text, str):
        raise _refuse(f"text: must be a string, got {type(text).__name__}")
    bot = doc.get("bot")
    if not isinstance(bot, str):
        raise _refuse("bot: required, the name of the bot the message was sent to")
    if not BOT_NAME.fullmatch(bot):
        raise _refuse(f"bot: must match {BOT_NAME.pattern}, got {bot[:80]!r}")
    return CommandRequest(CommandSender(contact_id, name, weixin, alias), text, bot)


def encode_replies(replies: Sequence[CommandReply]) -> dict[str, Any]:
    """`{"replies": [...]}` in the order they are to be sent."""
    out: list[dict[str, str]] = []
    for reply in replies:
        if reply.kind == "image":
            out.append(
                {
                    "type": "image",
                    "png_base64": base64.b64encode(reply.png).decode("ascii"),
                    "filename": reply.filename,
                }
            )
        else:
            out.append({"type": "text", "text": reply.text})
    return {"replies": out}
