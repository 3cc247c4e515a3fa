"""A resolved notification that arrives before (or without) its firing, through POST /alerts.

Alertmanager delivers out of order (an HA peer's copy, a retry after a 503, a resolved sent alone
for an alert that fired and resolved between two flushes of its group), and whoever can post to
it chooses startsAt. What the receiver says then must be what it knows: a resolved alert whose
firing it never delivered is not announced with a duration taken from an arbitrary startsAt
("back online (the alert lasted 331 d 5 h)"), and it does not stand in the way of the firing of a
newer outage. Payloads are the captured Alertmanager 0.25 ones (payloads/README.md), retimed.
"""

from __future__ import annotations

import json
from typing import Any

from tests.delivery.kit import QR_BOB, STARTS_AT, FakeExporter, MakeRig, base_settings, payload_doc

from wechaty_exporter.delivery.alerts import rfc3339

A_YEAR_AGO = "2025-12-28T20:00:00Z"  # 331 d 5 h before resolved.json's endsAt


def resolved(starts_at: str, ends_at: str | None = None, name: str = "resolved") -> str:
    doc: dict[str, Any] = payload_doc(name)
    doc["alerts"][0]["startsAt"] = starts_at
    if ends_at is not None:
        doc["alerts"][0]["endsAt"] = ends_at
    return json.dumps(doc)


def firing(starts_at: str) -> str:
    doc: dict[str, Any] = payload_doc("firing")
    doc["alerts"][0]["startsAt"] = starts_at
    return json.dumps(doc)


async def test_a_resolved_without_its_firing_claims_no_year_long_outage(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig()
    status, doc = await rig.post(resolved(A_YEAR_AGO))
    assert status == 200
    assert doc["alerts"][0]["outcome"] == "delivered"
    (back,) = rig.sent()
    assert back["text"] == "bob is back online."
    assert " d " not in back["text"] and "2025" not in back["text"]


async def test_the_firing_of_a_newer_outage_after_it_is_delivered_with_its_qr(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig()
    assert (await rig.post(resolved(A_YEAR_AGO)))[0] == 200
    status, doc = await rig.post(firing(rfc3339(STARTS_AT)))  # the outage now, a newer startsAt
    assert status == 200
    assert doc["alerts"][0]["outcome"] == "delivered"
    back, logged_out, image = rig.sent()
    assert back["text"] == "bob is back online."
    assert logged_out["text"].startswith("bob is logged out of WeChat, since 2026-11-25 01:01")
    assert image["type"] == "image"


async def test_in_chinese_too(make_rig: MakeRig, exporter: FakeExporter) -> None:
    rig = await make_rig(base_settings(exporter.url, language="zh"))
    assert (await rig.post(resolved(A_YEAR_AGO)))[0] == 200
    (back,) = rig.sent()
    assert back["text"] == "bob 已重新上线。"


async def test_a_generic_alert_resolved_alone_says_resolved_without_a_duration(
    make_rig: MakeRig,
) -> None:
    rig = await make_rig()
    assert (await rig.post(resolved(A_YEAR_AGO, name="no_rescuer_resolved")))[0] == 200
    (text,) = (r["text"] for r in rig.sent())
    assert text.endswith("\nResolved.")
    assert "Resolved after" not in text


async def test_a_start_after_the_end_is_no_duration(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    """A forged or garbled resolved alert that ended before it started: no "lasted 0 s"."""
    rig = await make_rig()
    body = resolved("2026-11-25T01:05:00Z", ends_at="2026-11-25T01:02:24.099682Z")
    assert (await rig.post(body))[0] == 200
    (back,) = rig.sent()
    assert back["text"] == "bob is back online."


async def test_a_short_resolved_alone_keeps_its_duration(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    """What Alertmanager really sends alone (fired and resolved before its group flushed):
    24 s, believable, told as before."""
    rig = await make_rig()
    assert (await rig.post(json.dumps(payload_doc("resolved"))))[0] == 200
    (back,) = rig.sent()
    assert back["text"].startswith("bob is back online (the alert lasted 24 s, from ")


async def test_a_firing_delivered_here_vouches_for_a_long_outage(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    """The firing went out, the bot stayed out five hours (past the dedupe records' hour):
    its resolved tells the whole duration."""
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig()
    assert (await rig.post(firing(rfc3339(STARTS_AT))))[0] == 200
    rig.clock.now += 5 * 3600
    ends = rfc3339(STARTS_AT + 5 * 3600 + 60)
    assert (await rig.post(resolved(rfc3339(STARTS_AT), ends_at=ends)))[0] == 200
    *_, back = rig.sent()
    assert back["text"].startswith("bob is back online (the alert lasted 5 h 1 min, from ")
