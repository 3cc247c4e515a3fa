"""What an admin is sent about a notification group: the DM's texts and the QR images after it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Literal

from wechaty_exporter.delivery.alerts import (
    Alert,
    back_online_text,
    dm_texts,
    exporter_down_text,
    generic_text,
    logged_out_text,
    no_qr_text,
    qr_timeout_text,
)
from wechaty_exporter.delivery.exporter_client import PendingQr
from wechaty_exporter.delivery.messengers.sending import MessageRef
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.templates import Messages
from wechaty_exporter.qrimage import qr_png

Sent = Callable[[Alert, str, str], bool]  # (alert, contact, step): already accepted?


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to one contact: a text or a PNG. `ids` are the (alert key, step) pairs it
    settles once accepted (a DM's text speaks for several alerts); `bot` is what the messenger
    is told it is about: the bots, comma-separated, or else the alert names."""

    ids: tuple[tuple[str, str], ...]
    text: str | None = None
    png: bytes | None = None
    filename: str = "qr.png"
    bot: str = ""

    @property
    def kind(self) -> Literal["text", "image"]:
        return "image" if self.png is not None else "text"

    @property
    def ref(self) -> MessageRef:
        """What a fan-out messenger remembers this message by (`messengers.sending`)."""
        keys = "+".join(dict.fromkeys(key for key, _ in self.ids))
        return MessageRef(keys, "+".join(dict.fromkeys(step for _, step in self.ids)))


@dataclass(slots=True)
class FoundQr:
    """A bot's freshest QR (and its PNG), or why there is none (`error`; both None: none yet)."""

    qr: PendingQr | None = None
    error: str | None = None
    png: bytes = b""

    def __post_init__(self) -> None:
        if self.qr is not None and not self.png:
            self.png = qr_png(self.qr.qrcode)


def step_of(alert: Alert, qr_alerts: Sequence[str]) -> str:
    """The step of the alert's block in a DM: intro (logged out), back-online or alert."""
    if alert.bot is not None and alert.alertname in qr_alerts:
        return "intro" if alert.status == "firing" else "back-online"
    return "alert"


def dm_messages(
    settings: ReceiverSettings,
    to: str,
    mine: Sequence[Alert],
    found: Mapping[str, FoundQr],
    *,
    now: float,
    tz: tzinfo,
    sent: Sent,
) -> list[Outgoing]:
    """`to`'s DM: a text (a few, within WeChat's limit) with a block per alert still owed to
    `to`, then the QR image of each logged-out bot whose QR `to` is owed."""
    messages, qr_alerts = settings.messages, settings.qr_alerts
    shown: dict[str, list[Alert]] = {}  # bot → its alerts whose QR goes to `to` now
    for a in mine:
        got = found.get(a.bot or "")
        if step_of(a, qr_alerts) == "intro" and got and got.qr and not sent(a, to, "qr"):
            shown.setdefault(a.bot or "", []).append(a)
    order = list(shown)
    blocks: list[tuple[Alert, str]] = []
    for a in mine:
        step, bot = step_of(a, qr_alerts), a.bot or ""
        if sent(a, to, step):
            continue
        if step == "intro":
            got = found.get(bot, FoundQr())
            if got.qr is not None:
                index = order.index(bot) + 1 if bot in order else 1
                text = logged_out_text(
                    messages, a, bot, now=now, tz=tz, qr_seen_at=got.qr.seen_at,
                    index=index, count=max(1, len(order)),
                    logout_reason=got.qr.logout_reason,
                )  # fmt: skip
            elif got.error is not None:
                text = exporter_down_text(messages, a, bot, now=now, tz=tz, reason=got.error)
            else:
                wait = settings.qr_wait
                text = no_qr_text(messages, a, bot, now=now, tz=tz, wait_seconds=wait)
        elif step == "back-online":
            text = back_online_text(messages, a, bot, now=now, tz=tz)
        else:
            text = generic_text(messages, a, now=now, tz=tz)
        blocks.append((a, text))
    out = [
        Outgoing(
            tuple((blocks[i][0].dedupe_key, step_of(blocks[i][0], qr_alerts)) for i in group),
            text=text,
            bot=about(blocks[i][0] for i in group),
        )
        for text, group in dm_texts(messages, blocks, qr_bots=order)
    ]
    return out + qr_images(shown, found)


def qr_images(shown: Mapping[str, Sequence[Alert]], found: Mapping[str, FoundQr]) -> list[Outgoing]:
    """The QR image of each bot in `shown`, settling the QR step of its alerts there."""
    return [
        Outgoing(tuple((a.dedupe_key, "qr") for a in alerts), png=found[bot].png,
                 filename=f"{bot}-login-qr.png", bot=bot)
        for bot, alerts in shown.items()
    ]  # fmt: skip


def qr_timeout_message(messages: Messages, late: Sequence[Alert], *, waited: float) -> Outgoing:
    """The one text naming the bots of `late` whose QR did not come within `waited` seconds."""
    bots = list(dict.fromkeys(a.bot or "" for a in late))
    text = qr_timeout_text(messages, bots, waited=waited)
    return Outgoing(tuple((a.dedupe_key, "qr") for a in late), text=text, bot=about(late))


def about(alerts: Iterable[Alert]) -> str:
    """What a message is about, for the messenger: its bots, else its alert names."""
    items = list(alerts)
    bots = dict.fromkeys(a.bot for a in items if a.bot)
    return ",".join(bots) if bots else ",".join(dict.fromkeys(a.alertname for a in items))
