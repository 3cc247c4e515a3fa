"""alerts.py: payload validation and message texts (pure, synchronous, table-driven)."""

from __future__ import annotations

import copy
import json
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.delivery.kit import STARTS_AT, payload, payload_doc

from wechaty_exporter.delivery.alerts import (
    Alert,
    PayloadError,
    back_online_text,
    decode_notification,
    exporter_down_text,
    format_duration,
    generic_text,
    logged_out_text,
    no_qr_text,
    parse_notification,
    parse_rfc3339,
    qr_timeout_text,
)
from wechaty_exporter.delivery.templates import default_messages

EN = default_messages("en")  # the texts below are the English templates'; Chinese: test_messages.py

# --- the real payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "alerts", "truncated"),
    [
        ("firing", "firing", [("WechatyBotLoggedOut", "bob", "firing")], 0),
        ("resolved", "resolved", [("WechatyBotLoggedOut", "bob", "resolved")], 0),
        ("ha_duplicate", "firing", [("WechatyBotLoggedOut", "bob", "firing")], 0),
        (
            "grouped",
            "firing",
            [
                ("WechatyBotStateUnknown", "bob", "firing"),
                ("WechatyBotStateUnknown", "carol", "firing"),
            ],
            0,
        ),
        ("truncated", "firing", [("WechatyLogStale", "bob", "firing")], 1),
        ("no_rescuer_firing", "firing", [("WechatyNoRescuer", None, "firing")], 0),
        ("no_rescuer_resolved", "resolved", [("WechatyNoRescuer", None, "resolved")], 0),
    ],
)
def test_real_payloads_parse(
    name: str, status: str, alerts: list[tuple[str, str | None, str]], truncated: int
) -> None:
    n = decode_notification(payload(name))
    assert n.status == status
    assert [(a.alertname, a.bot, a.status) for a in n.alerts] == alerts
    assert n.truncated_alerts == truncated
    assert n.receiver
    assert n.group_key
    assert n.external_url.startswith("http")


def test_firing_alert_fields() -> None:
    (alert,) = decode_notification(payload("firing")).alerts
    assert alert.starts_at == pytest.approx(STARTS_AT)
    assert alert.ends_at is None  # Go's zero time
    assert alert.fingerprint == "59c41b3133069dd4"
    assert alert.summary == "Wechaty bot bob is logged out"
    assert alert.labels["severity"] == "critical"


def test_ha_duplicate_and_resolved_share_identity_with_firing() -> None:
    (firing,) = decode_notification(payload("firing")).alerts
    (dup,) = decode_notification(payload("ha_duplicate")).alerts
    (resolved,) = decode_notification(payload("resolved")).alerts
    assert dup.dedupe_key == firing.dedupe_key
    assert resolved.dedupe_key == firing.resolved_key != firing.dedupe_key
    assert resolved.ends_at is not None
    assert resolved.ends_at > resolved.starts_at


# --- what is rejected, and why -------------------------------------------------------------------


def _firing() -> dict[str, Any]:
    return payload_doc("firing")


def _mutated(path: str, value: Any) -> dict[str, Any]:
    """firing.json with one field set (value ...) or deleted (value DELETE)."""
    doc = copy.deepcopy(_firing())
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return doc


DELETE = object()

REJECTED = [
    ("version", DELETE, 'version: missing (expected "4"'),
    ("version", "3", 'version: expected "4", got "3"'),
    ("version", 4, 'version: expected "4", got 4'),
    ("status", DELETE, 'status: missing (expected "firing" or "resolved")'),
    ("status", "pending", 'status: expected "firing" or "resolved", got "pending"'),
    ("alerts", DELETE, "alerts: missing"),
    ("alerts", {}, "alerts: expected a list, got an object"),
    ("alerts.0", "x", "alerts[0]: expected an object, got a string"),
    ("alerts.0.status", "ok", 'alerts[0].status: expected "firing" or "resolved", got "ok"'),
    ("alerts.0.labels", DELETE, "alerts[0].labels: missing"),
    ("alerts.0.labels", [], "alerts[0].labels: expected an object of strings, got a list"),
    ("alerts.0.labels.alertname", DELETE, "alerts[0].labels.alertname: missing or empty"),
    ("alerts.0.labels.alertname", "", "alerts[0].labels.alertname: missing or empty"),
    ("alerts.0.labels.bot", 7, "alerts[0].labels.bot: expected a string, got 7"),
    ("alerts.0.annotations.summary", None, "alerts[0].annotations.summary: expected a string"),
    ("alerts.0.fingerprint", DELETE, "alerts[0].fingerprint: expected a non-empty string, got nu"),
    ("alerts.0.fingerprint", "", 'alerts[0].fingerprint: expected a non-empty string, got ""'),
    ("alerts.0.startsAt", DELETE, "alerts[0].startsAt: missing"),
    ("alerts.0.startsAt", 17e8, "alerts[0].startsAt: expected an RFC 3339 string, got 17000"),
    ("alerts.0.startsAt", "yesterday", "alerts[0].startsAt: not an RFC 3339 time: 'yesterday'"),
    ("alerts.0.startsAt", "0001-01-01T00:00:00Z", "alerts[0].startsAt: the zero time is not"),
    ("alerts.0.endsAt", "2026-13-45T00:00:00Z", "alerts[0].endsAt:"),
    ("truncatedAlerts", -1, "truncatedAlerts: expected a non-negative integer, got -1"),
    ("truncatedAlerts", "1", 'truncatedAlerts: expected a non-negative integer, got "1"'),
    ("groupKey", 5, "groupKey: expected a string, got 5"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "value", "reason"), REJECTED)
def test_rejected_with_the_field_and_the_problem(path: str, value: Any, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_notification(_mutated(path, value))
    assert caught.value.reason.startswith(reason), caught.value.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "body is not JSON: Expecting value (line 1, column 1)"),
        (b'{"version": "4",', "body is not JSON:"),
        (b"\xff\xfe", "body is not UTF-8"),
        (b"[]", "payload: expected a JSON object, got a list"),
        (b"null", "payload: expected a JSON object, got null"),
    ],
)
def test_rejected_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_notification(body)
    assert caught.value.reason.startswith(reason), caught.value.reason


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("surprise", {"new": "field"}),  # unknown top-level field
        ("alerts.0.extra", [1, 2]),  # unknown alert field
        ("alerts.0.annotations", DELETE),  # nothing we need
        ("alerts.0.endsAt", DELETE),
        ("alerts.0.generatorURL", DELETE),
        ("truncatedAlerts", DELETE),
        ("groupLabels", DELETE),
        ("commonLabels", "not even an object"),  # not read, so not judged
    ],
)
def test_tolerates_what_it_does_not_need(path: str, value: Any) -> None:
    assert len(parse_notification(_mutated(path, value)).alerts) == 1


def test_an_empty_alert_list_is_valid() -> None:
    assert parse_notification(_mutated("alerts", [])).alerts == ()


def test_a_later_bad_alert_names_its_index() -> None:
    doc = payload_doc("grouped")
    del doc["alerts"][1]["fingerprint"]
    with pytest.raises(PayloadError, match=r"^alerts\[1\]\.fingerprint"):
        parse_notification(json.loads(json.dumps(doc)))


# --- times -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T01:01:59.715Z", 1795568519.715),
        ("2026-11-25T01:01:59Z", 1795568519.0),
        ("2026-11-25T01:01:59.715123456Z", 1795568519.715123456),  # Go's nanoseconds
        ("2026-11-25T09:01:59.715+08:00", 1795568519.715),
        ("2026-11-25T01:01:59.715+00:00", 1795568519.715),  # Python's isoformat (the exporter)
        ("2026-11-24T20:01:59.715-05:00", 1795568519.715),
        ("0001-01-01T00:00:00Z", None),
    ],
)
def test_rfc3339(text: str, expected: float | None) -> None:
    got = parse_rfc3339(text)
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-6))


@pytest.mark.parametrize("text", ["2026-11-25", "2026-11-25T01:01Z", "2026-11-25T01:01:59", "x"])
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_rfc3339(text)


# --- message texts -----------------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _alert(name: str = "firing") -> Alert:
    return decode_notification(payload(name)).alerts[0]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (3660, "1 h 1 min"),
     (86400, "1 d"), (90000, "1 d 1 h"), (-5, "0 s")],
)  # fmt: skip
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


TEXTS = [
    (
        lambda a: logged_out_text(
            EN, a, "bob", now=STARTS_AT + 300, tz=SHANGHAI, qr_seen_at=STARTS_AT + 30
        ),
        "bob is logged out of WeChat, since 2026-11-25 09:01 CST (5 min ago).\n"
        "Scan the QR code below (shown 2026-11-25 09:02 CST) with bob's WeChat to log it back in.\n"
        "QR expired? Send: qr bob",
    ),
    (
        lambda a: logged_out_text(
            EN, a, "bob", now=STARTS_AT + 300, tz=UTC, qr_seen_at=None, index=2, count=3
        ),
        "bob is logged out of WeChat, since 2026-11-25 01:01 UTC (5 min ago).\n"
        "Scan QR code 2 of 3 below with bob's WeChat to log it back in.\n"
        "QR expired? Send: qr bob",
    ),
    (
        lambda a: no_qr_text(EN, a, "bob", now=STARTS_AT + 60, tz=UTC, wait_seconds=20),
        "bob is logged out of WeChat, since 2026-11-25 01:01 UTC (1 min ago).\n"
        "No login QR yet: bob has not shown one. I will send it here if it appears within 20 s.",
    ),
    (
        lambda a: exporter_down_text(EN, a, "bob", now=STARTS_AT, tz=UTC, reason="HTTP 500"),
        "bob is logged out of WeChat, since 2026-11-25 01:01 UTC (0 s ago).\n"
        "I could not fetch its login QR (HTTP 500); I will keep trying. You can also send: qr bob",
    ),
    (
        lambda a: qr_timeout_text(EN, ["bob"], waited=20),
        "Still no login QR from bob after 20 s. Once it shows one, send: qr bob",
    ),
    (
        lambda a: qr_timeout_text(EN, ["bob", "carol"], waited=20),
        "Still no login QR from bob, carol after 20 s. Once one shows, send: qr bob or qr carol",
    ),
]


@pytest.mark.parametrize(("make", "expected"), TEXTS)
def test_rescue_texts(make: Any, expected: str) -> None:
    assert make(_alert()) == expected


def test_back_online_text() -> None:
    text = back_online_text(EN, _alert("resolved"), "bob", now=STARTS_AT + 999, tz=UTC)
    assert text == "bob is back online (the alert lasted 24 s, from 2026-11-25 01:01 UTC)."


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "no_rescuer_firing",
            "[FIRING] WechatyNoRescuer\n> Every bot of the duet is logged out\n"
            "> No peer bot can deliver a rescue QR; use another channel.\n"
            "Firing since 2026-11-25 01:01 UTC (2 min ago).",
        ),
        (
            "no_rescuer_resolved",
            "[RESOLVED] WechatyNoRescuer\n> Every bot of the duet is logged out\n"
            "Resolved after 24 s.",
        ),
        (
            "truncated",
            "[FIRING] WechatyLogStale (bob)\n> bob log stale\nFiring since 2026-11-25 01:01 UTC "
            "(2 min ago).",
        ),
    ],
)
def test_generic_texts(name: str, expected: str) -> None:
    assert generic_text(EN, _alert(name), now=STARTS_AT + 120, tz=UTC) == expected


def test_generic_text_carries_the_runbook_when_firing() -> None:
    text = generic_text(EN, _alert("firing"), now=STARTS_AT, tz=UTC)
    assert "Runbook: hxxps[:]//github[.]com/" in text  # quoted alert text: no link


def test_overlong_annotations_are_bounded() -> None:
    doc = _mutated("alerts.0.annotations.summary", "x" * 5000)
    alert = parse_notification(doc).alerts[0]
    text = generic_text(EN, alert, now=STARTS_AT, tz=UTC)
    summary = text.splitlines()[1]
    assert len(summary) == 400  # MAX_VALUE_CHARS: one value printed into a template
    assert summary.endswith("…")
