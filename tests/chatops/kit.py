"""Shared values for the command tests: admins, a stranger, a fixed clock, a context builder."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pyotp

from wechaty_exporter.chatops.model import (
    AuditRecord,
    CommandContext,
    CommandState,
    Reply,
    RescueSwitches,
    Sender,
)
from wechaty_exporter.chatops.settings import CommandsSettings, ReplyRateLimit
from wechaty_exporter.delivery.templates import default_messages

T0 = 1_700_000_010.0  # 10 s into a 30 s TOTP step
EN = default_messages("en")  # the tests read English replies (test_languages.py: Chinese)
ZH = default_messages("zh")
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

ADA = Sender("wxid_admin01", name="Ada Admin", weixin="ada_weixin", alias="oncall-boss")
OPS = Sender("wxid_ops", name="Ops")
# Took Ada's display name: must not pass for her.
STRANGER = Sender("wxid_stranger", name="Ada Admin")
SELF = Sender("wxid_peerbot", name="Peer Bot", is_self=True)

# Ada administers alice (by id) and bob (by weixin); Ops only alice.
ADMINS: dict[str, tuple[str, ...]] = {"alice": ("wxid_ops", "wxid_admin01"), "bob": ("ada_weixin",)}


def code_at(now: float, secret: str = SECRET) -> str:
    """What the admin's authenticator app shows at `now` (pyotp's own clock path)."""
    return pyotp.TOTP(secret).at(int(now))


@dataclass
class Audits:
    """The audit sink: every record handed to it."""

    records: list[AuditRecord] = field(default_factory=list)

    def __call__(self, record: AuditRecord) -> None:
        self.records.append(record)

    def last(self) -> AuditRecord:
        return self.records[-1]

    def outcomes(self) -> list[tuple[str, str]]:
        return [(r.command, r.outcome) for r in self.records]


def settings(**changes: Any) -> CommandsSettings:
    base = CommandsSettings(reply_rate_limit=ReplyRateLimit(burst=1000, per_minute=1000))
    return replace(base, **changes)


def make_ctx(**changes: Any) -> tuple[CommandContext, Audits]:
    audits = Audits()
    ctx = CommandContext(
        settings=changes.pop("settings", settings()),
        admins=changes.pop("admins", ADMINS),
        state=CommandState(),
        rescue=changes.pop("rescue", RescueSwitches()),
        audit=audits,
        messages=changes.pop("messages", EN),
        **changes,
    )
    return ctx, audits


def texts(replies: list[Reply]) -> str:
    assert all(r.kind == "text" for r in replies), replies
    return "\n".join(r.text for r in replies)
