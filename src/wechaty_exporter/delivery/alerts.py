"""Alertmanager webhook payload → validated alerts, and the text of every message about them (pure).

Strict about what the receiver needs (version "4", the alerts list, each alert's status,
labels.alertname, fingerprint and startsAt, and a `bot` label, when there is one, that is a bot
name), tolerant of every field it does not read. Time is an argument; nothing here does I/O. Each
text is a template (`templates`), rendered with the values built here; `dm_texts` puts the blocks
of a notification group into one DM.

Whoever can post to Alertmanager chooses an alert's annotations, so they are never shown as the
receiver's own words: `alert_values` gives them as `chattext.quoted_text` (one line, no control or
bidi character, links made inert, bounded), and the shipped templates print them after a quote
marker ("> "). A resolved alert tells how long it lasted only when that is known: the receiver
delivered its firing (`Alert.firing_seen`), or it is short enough for a notification Alertmanager
sends alone (fired and resolved between two flushes of its group); a made-up or out-of-order
startsAt does not become "back online (the alert lasted 331 d 5 h)".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Any, Literal

from wechaty_exporter.delivery.chattext import MAX_TEXT_CHARS as MAX_TEXT_CHARS
from wechaty_exporter.delivery.chattext import clip as clip
from wechaty_exporter.delivery.chattext import format_duration as format_duration
from wechaty_exporter.delivery.chattext import format_time as format_time
from wechaty_exporter.delivery.chattext import pack, quoted_text
from wechaty_exporter.delivery.chattext import split_text as split_text
from wechaty_exporter.delivery.sandbox import clean_value
from wechaty_exporter.delivery.templates import Messages
from wechaty_exporter.settings import BOT_NAME

Status = Literal["firing", "resolved"]

# Resolves when ANY bot of the duet logs in: its resolved text says a rescuer is back, not that
# the alert's bot is (deploy/prometheus/rules/wechaty.yml).
NO_RESCUER = "WechatyNoRescuer"
MAX_REASON_CHARS = 200  # of the logout reason WeChat gave, in a DM
MAX_NAME_CHARS = 100  # of an alert name, in a DM
# A resolved alert whose firing the receiver did not deliver: longer than this, its duration is
# not believed (Alertmanager sends a resolved notification alone only for an alert that fired and
# resolved between two flushes of its group: group_wait, group_interval).
UNSEEN_MAX_LASTED = 3600.0

# Alertmanager's webhook (version 4) stamps times with Go's RFC 3339 (up to nanoseconds); a zero
# `endsAt` ("0001-01-01T00:00:00Z") means "not ended".
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)
_GO_ZERO_YEAR = 1
# Times an alert may carry: every time zone can still show them (datetime spans years 1-9999).
_MIN_TIME = -62135596800.0 + 2 * 86400  # 0001-01-03T00:00:00Z
_MAX_TIME = 253402300799.0 - 2 * 86400  # 9999-12-29T23:59:59Z
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class PayloadError(ValueError):
    """The webhook payload is not usable; `reason` names the field and what was wrong."""

    def __init__(self, reason: str) -> None:
        reason = _clean(reason)  # it is logged and sent back: keep it encodable
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of a notification, as far as the receiver needs it."""

    status: Status
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float
    starts_at_raw: str
    ends_at: float | None
    fingerprint: str
    generator_url: str = ""
    firing_seen: bool = False  # resolved: the receiver delivered this alert's firing (rescuer)

    @property
    def alertname(self) -> str:
        return self.labels["alertname"]

    @property
    def bot(self) -> str | None:
        return self.labels.get("bot") or None

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", "")

    @property
    def dedupe_key(self) -> str:
        """Alertmanager repeats and HA duplicates share fingerprint, status and startsAt."""
        return dedupe_key(self.fingerprint, self.status, self.starts_at_raw)

    @property
    def resolved_key(self) -> str:
        """The dedupe key the resolved notification of this same alert has."""
        return dedupe_key(self.fingerprint, "resolved", self.starts_at_raw)

    @property
    def fired_key(self) -> str:
        """The store record saying this alert's firing was delivered (kept longer than dedupe)."""
        return dedupe_key(self.fingerprint, "fired", self.starts_at_raw)


@dataclass(frozen=True, slots=True)
class Notification:
    """One webhook call: a group of alerts."""

    status: Status
    alerts: tuple[Alert, ...]
    receiver: str = ""
    group_key: str = ""
    truncated_alerts: int = 0
    external_url: str = ""


def dedupe_key(fingerprint: str, status: str, starts_at_raw: str) -> str:
    return f"{fingerprint}|{status}|{starts_at_raw}"


def rfc3339(ts: float) -> str:
    """Unix seconds → RFC 3339 in UTC with milliseconds, e.g. 2026-11-25T01:02:03.456Z."""
    return (
        datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def parse_rfc3339(text: str) -> float | None:
    """RFC 3339 (as Go and Python write it) → Unix seconds; Go's zero time → None.

    Raises ValueError on anything else.
    """
    m = _RFC3339.match(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if year == _GO_ZERO_YEAR:
        return None
    zone = m.group(8)
    if zone in ("Z", "z"):
        tz: tzinfo = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    fraction = float("0." + m.group(7)) if m.group(7) else 0.0
    seconds = datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp() + fraction
    if not _MIN_TIME <= seconds <= _MAX_TIME:
        raise ValueError(f"time out of range: {text!r}")
    return seconds


def decode_notification(body: bytes) -> Notification:
    """Request body → Notification; raises PayloadError."""
    try:
        text = body.decode("utf-8")  # RFC 8259: JSON between systems is UTF-8
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    except (ValueError, RecursionError) as exc:  # a number over 4300 digits, nesting too deep
        raise PayloadError(
            f"body is not usable JSON: {exc.__class__.__name__}: {exc}"[:200]
        ) from exc
    return parse_notification(doc)


def parse_notification(doc: object) -> Notification:
    """Decoded JSON → Notification; raises PayloadError naming the first bad field."""
    if not isinstance(doc, dict):
        raise PayloadError(f"payload: expected a JSON object, got {_kind(doc)}")
    version = doc.get("version")
    if version is None:
        raise PayloadError('version: missing (expected "4", Alertmanager webhook version 4)')
    if version != "4":
        raise PayloadError(f'version: expected "4", got {json.dumps(version)}')
    status = _status(doc.get("status"), "status")
    raw_alerts = doc.get("alerts")
    if raw_alerts is None:
        raise PayloadError("alerts: missing")
    if not isinstance(raw_alerts, list):
        raise PayloadError(f"alerts: expected a list, got {_kind(raw_alerts)}")
    alerts = tuple(_alert(item, f"alerts[{i}]") for i, item in enumerate(raw_alerts))
    truncated = doc.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError(
            f"truncatedAlerts: expected a non-negative integer, got {json.dumps(truncated)}"
        )
    return Notification(
        status=status,
        alerts=alerts,
        receiver=_optional_str(doc, "receiver", ""),
        group_key=_optional_str(doc, "groupKey", ""),
        truncated_alerts=truncated,
        external_url=_optional_str(doc, "externalURL", ""),
    )


def _alert(item: object, where: str) -> Alert:
    if not isinstance(item, dict):
        raise PayloadError(f"{where}: expected an object, got {_kind(item)}")
    status = _status(item.get("status"), f"{where}.status")
    labels = _str_map(item.get("labels"), f"{where}.labels", required=True)
    if not labels.get("alertname"):
        raise PayloadError(f"{where}.labels.alertname: missing or empty")
    bot = labels.get("bot")
    if bot and not BOT_NAME.fullmatch(bot):  # it names an exporter URL path, store keys, a DM
        raise PayloadError(
            f"{where}.labels.bot: not a bot name (must match {BOT_NAME.pattern}), got {_show(bot)}"
        )
    annotations = _str_map(item.get("annotations"), f"{where}.annotations", required=False)
    fingerprint = item.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        got = _show(fingerprint)
        raise PayloadError(f"{where}.fingerprint: expected a non-empty string, got {got}")
    starts_raw = item.get("startsAt")
    if starts_raw is None:
        raise PayloadError(f"{where}.startsAt: missing")
    starts_at = _time(starts_raw, f"{where}.startsAt")
    if starts_at is None:
        raise PayloadError(f"{where}.startsAt: the zero time is not a start time")
    ends_raw = item.get("endsAt")
    ends_at = None if ends_raw is None else _time(ends_raw, f"{where}.endsAt")
    generator = item.get("generatorURL", "")
    return Alert(
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        starts_at_raw=str(starts_raw),
        ends_at=ends_at,
        fingerprint=_clean(fingerprint),
        generator_url=_clean(generator) if isinstance(generator, str) else "",
    )


def _time(value: object, where: str) -> float | None:
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected an RFC 3339 string, got {_show(value)}")
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise PayloadError(f"{where}: {exc}") from exc


def _status(value: object, where: str) -> Status:
    if value == "firing":
        return "firing"
    if value == "resolved":
        return "resolved"
    if value is None:
        raise PayloadError(f'{where}: missing (expected "firing" or "resolved")')
    raise PayloadError(f'{where}: expected "firing" or "resolved", got {_show(value)}')


def _str_map(value: object, where: str, *, required: bool) -> Mapping[str, str]:
    if value is None:
        if required:
            raise PayloadError(f"{where}: missing")
        return MappingProxyType({})
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object of strings, got {_kind(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{where}.{key}: expected a string, got {_show(item)}")
    return MappingProxyType({_clean(k): _clean(v) for k, v in value.items()})


def _optional_str(doc: Mapping[str, object], key: str, default: str) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise PayloadError(f"{key}: expected a string, got {_show(value)}")
    return _clean(value)


def _clean(text: str) -> str:
    """Lone surrogates (a JSON escape like "\\ud800" alone) cannot be encoded to send or store:
    each becomes U+FFFD. Alertmanager never sends them; anyone else gets a readable message."""
    return _SURROGATE.sub("\ufffd", text)


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, float) else type(value).__name__)


def _show(value: object) -> str:
    if value is None:
        return "null"
    text = json.dumps(value) if isinstance(value, str | int | float | bool) else _kind(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- message texts: each block of a DM is one template (delivery/templates) ----------------------


def alert_values(alert: Alert, *, now: float, tz: tzinfo, messages: Messages) -> dict[str, Any]:
    """What the `alert` variable of a template holds (docs/configuration.md lists it).

    `summary`, `description` and `runbook_url` are `quoted_text` (templates print them after a
    quote marker); `lasted` is empty when the duration is not known (`lasted`)."""
    return {
        "name": quoted_text(alert.alertname, MAX_NAME_CHARS),
        "status": alert.status,
        "bot": alert.bot or "",
        "summary": quoted_text(alert.summary),
        "description": quoted_text(alert.annotations.get("description", "")),
        "runbook_url": quoted_text(alert.annotations.get("runbook_url", "")),
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": format_time(alert.starts_at, tz),
        "ends_at": format_time(alert.ends_at, tz) if alert.ends_at is not None else "",
        "ago": messages.duration(now - alert.starts_at),
        "lasted": lasted(alert, now=now, messages=messages),
        "fingerprint": alert.fingerprint,
        "generator_url": alert.generator_url,
    }


def lasted(alert: Alert, *, now: float, messages: Messages) -> str:
    """How long `alert` lasted (until it ended, or now), or "" when that is not known: it ends
    before it starts, or it resolved, its firing was not delivered here, and it is longer than a
    notification Alertmanager sends alone can be (`UNSEEN_MAX_LASTED`)."""
    ended = alert.ends_at if alert.ends_at is not None else now
    span = ended - alert.starts_at
    if span < 0:
        return ""
    if alert.status == "resolved" and not alert.firing_seen and span > UNSEEN_MAX_LASTED:
        return ""
    return messages.duration(span)


def qr_command(bot: str) -> str:
    """What the admin sends to the peer bot for a newer QR."""
    return f"qr {bot}"


def qr_caption(
    messages: Messages,
    bot: str,
    *,
    tz: tzinfo,
    seen_at: float | None,
    index: int = 1,
    count: int = 1,
) -> str:
    """What to do with the QR image that follows (the `index`th of `count`)."""
    shown_at = format_time(seen_at, tz) if seen_at is not None else ""
    values = {"bot": bot, "shown_at": shown_at, "index": index, "count": count}
    return messages.render("qr_caption.txt.j2", **values)


def logged_out_text(
    messages: Messages,
    alert: Alert,
    bot: str,
    *,
    now: float,
    tz: tzinfo,
    qr_seen_at: float | None,
    index: int = 1,
    count: int = 1,
    logout_reason: str | None = None,
) -> str:
    """Firing logged-out alert with a QR: its block of the DM the QR image follows, with what
    WeChat said when the bot was logged out (the exporter's `logout_reason`), if anything."""
    caption = qr_caption(messages, bot, tz=tz, seen_at=qr_seen_at, index=index, count=count)
    values = alert_values(alert, now=now, tz=tz, messages=messages)
    reason = clean_value(logout_reason or "", MAX_REASON_CHARS).strip()
    return messages.render(
        "logged_out.txt.j2", bot=bot, alert=values, qr_caption=caption, logout_reason=reason
    )


def no_qr_text(
    messages: Messages, alert: Alert, bot: str, *, now: float, tz: tzinfo, wait_seconds: float
) -> str:
    """Firing logged-out alert, but the bot has shown no login QR yet."""
    values = alert_values(alert, now=now, tz=tz, messages=messages)
    wait = messages.duration(wait_seconds)
    return messages.render("no_qr.txt.j2", bot=bot, alert=values, wait=wait)


def exporter_down_text(
    messages: Messages, alert: Alert, bot: str, *, now: float, tz: tzinfo, reason: str
) -> str:
    """Firing logged-out alert, but the exporter could not be asked for the QR."""
    values = alert_values(alert, now=now, tz=tz, messages=messages)
    return messages.render("exporter_down.txt.j2", bot=bot, alert=values, reason=reason)


def qr_timeout_text(messages: Messages, bots: Sequence[str], *, waited: float) -> str:
    """The bounded wait for the QRs of `bots` ran out."""
    text = messages.render("qr_timeout.txt.j2", bots=list(bots), waited=messages.duration(waited))
    return clip(text)


def back_online_text(messages: Messages, alert: Alert, bot: str, *, now: float, tz: tzinfo) -> str:
    """Resolved alert that carried a QR (`qr_alerts`): the bot is back online, or, for
    WechatyNoRescuer, which resolves once any bot of the duet logs in, a rescuer is back."""
    values = alert_values(alert, now=now, tz=tz, messages=messages)
    name = "rescuer_back.txt.j2" if alert.alertname == NO_RESCUER else "back_online.txt.j2"
    return messages.render(name, bot=bot, alert=values)


def generic_text(messages: Messages, alert: Alert, *, now: float, tz: tzinfo) -> str:
    """An alert without QR relevance (WechatyNoRescuer, WechatyLogStale, ...), either status."""
    values = alert_values(alert, now=now, tz=tz, messages=messages)
    return messages.render("alert.txt.j2", alert=values)


def login_test_text(messages: Messages, bot: str, to: str, *, now: float, tz: tzinfo) -> str:
    """The login test's text when `receiver.login_test.<bot>.text` does not set one."""
    return clip(messages.render("login_test.txt.j2", bot=bot, to=to, now=format_time(now, tz)))


MAX_HEAD_CHARS = 300  # the first line of a DM


def dm_texts(
    messages: Messages,
    blocks: Sequence[tuple[Alert, str]],
    *,
    qr_bots: Sequence[str] = (),
    limit: int = MAX_TEXT_CHARS,
) -> list[tuple[str, list[int]]]:
    """One DM about a notification group: a first line naming the count and the bots, then one
    block per alert. As few texts of at most `limit` characters as it takes, each holding whole
    blocks (by index into `blocks`), so a text that went out never has to be sent again for
    another's sake. No blocks: no text."""
    if not blocks:
        return []
    alerts = [alert for alert, _ in blocks]
    head = clip(
        messages.render(
            "alert_dm.txt.j2",
            count=len(alerts),
            firing=sum(a.status == "firing" for a in alerts),
            resolved=sum(a.status == "resolved" for a in alerts),
            bots=list(dict.fromkeys(a.bot for a in alerts if a.bot)),
            alertnames=list(
                dict.fromkeys(quoted_text(a.alertname, MAX_NAME_CHARS) for a in alerts)
            ),
            qr_bots=list(qr_bots),
        ),
        MAX_HEAD_CHARS,
    )
    room = limit - len(head) - 2
    texts = [clip(text, room) for _, text in blocks]
    units = [f"{head}\n\n{texts[0]}" if head else texts[0], *texts[1:]]
    return [("\n\n".join(units[i] for i in group), group) for group in pack(units, limit, "\n\n")]
