"""One DM per admin per notification group (delivery/rescuer.py `deliver_group`): the count and
the bots in one text, then one QR image per logged-out bot; dedupe stays per alert, so neither an
Alertmanager retry nor a retry after a partial failure sends anything twice."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from pathlib import Path
from typing import Any

from tests.delivery.kit import (
    QR_BOB,
    QR_BOB_NEWER,
    FakeExporter,
    MakeRig,
    PeerBot,
    base_settings,
    decode_qr,
    payload,
    payload_doc,
    webhook_messenger,
)

QR_CAROL = QR_BOB_NEWER
BOTH = (("bob", ("wxid_admin", "wxid_ops")), ("carol", ("wxid_admin", "wxid_ops")))


def group(*alerts: tuple[str, str, str]) -> str:
    """A firing group (firing.json's shape) of (alertname, bot, fingerprint) alerts."""
    doc = payload_doc("firing")
    first = doc["alerts"][0]
    doc["alerts"] = []
    for name, bot, fingerprint in alerts:
        alert = copy.deepcopy(first)
        alert["labels"].update(alertname=name, bot=bot)
        alert["annotations"]["summary"] = f"{name} {bot}"
        alert["fingerprint"] = fingerprint
        doc["alerts"].append(alert)
    doc["groupLabels"] = {}
    return json.dumps(doc)


THREE = group(
    ("WechatyBotLoggedOut", "bob", "fp-bob"),
    ("WechatyBotLoggedOut", "carol", "fp-carol"),
    ("WechatyLogStale", "bob", "fp-stale"),
)


def by_contact(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        out.setdefault(record["to"], []).append(record)
    return out


def png(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["png_base64"])


async def test_three_alerts_for_two_bots_are_one_text_and_a_qr_per_logged_out_bot(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    exporter.qrs.update(bob=QR_BOB, carol=QR_CAROL)
    rig = await make_rig(base_settings(exporter.url, admins=BOTH))
    status, doc = await rig.post(THREE)
    assert status == 200, doc
    assert [a["outcome"] for a in doc["alerts"]] == ["delivered"] * 3
    sent = by_contact(rig.sent())
    assert sorted(sent) == ["wxid_admin", "wxid_ops"]
    for contact, records in sent.items():
        assert [(r["type"], r["bot"]) for r in records] == [
            ("text", "bob,carol"),
            ("image", "bob"),
            ("image", "carol"),
        ], contact
        text = records[0]["text"]
        assert text.startswith("3 alerts firing: bob, carol (QR codes below: bob, carol)\n\n")
        assert "bob is logged out of WeChat" in text and "carol is logged out of WeChat" in text
        assert "Scan QR code 1 of 2 below" in text and "Scan QR code 2 of 2 below" in text
        assert "[FIRING] WechatyLogStale (bob)" in text
        assert decode_qr(png(records[1]), tmp_path) == QR_BOB
        assert decode_qr(png(records[2]), tmp_path) == QR_CAROL
    assert exporter.polls == {"bob": 1, "carol": 1}  # one QR request per bot, not per admin
    # Alertmanager's retry of the same payload (or its HA peer's copy) sends nothing more.
    status, doc = await rig.post(THREE)
    assert status == 200
    assert [a["outcome"] for a in doc["alerts"]] == ["duplicate"] * 3
    assert len(rig.sent()) == 6
    assert rig.metric("wechaty_receiver_dedupe_hits_total") == 3


async def test_each_admin_hears_only_of_their_bots(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    """base_settings: wxid_admin has bob and carol, wxid_ops only carol."""
    exporter.qrs.update(bob=QR_BOB, carol=QR_CAROL)
    rig = await make_rig()
    assert (await rig.post(THREE))[0] == 200
    sent = by_contact(rig.sent())
    assert [r["type"] for r in sent["wxid_admin"]] == ["text", "image", "image"]
    ops = sent["wxid_ops"]
    assert [(r["type"], r["bot"]) for r in ops] == [("text", "carol"), ("image", "carol")]
    assert ops[0]["text"].startswith("carol is logged out of WeChat")  # one alert: no count line
    assert "bob" not in ops[0]["text"]
    assert "Scan the QR code below (shown " in ops[0]["text"]


async def test_a_failed_qr_image_is_all_the_retry_sends(
    make_rig: MakeRig, exporter: FakeExporter, peer: PeerBot
) -> None:
    exporter.qrs.update(bob=QR_BOB, carol=QR_CAROL)
    rig = await make_rig(
        base_settings(exporter.url, admins=BOTH), messenger=webhook_messenger(peer)
    )
    peer.script = [200, 200, 503]  # wxid_admin: the text, bob's QR, then carol's QR fails
    status, doc = await rig.post(THREE)
    assert status == 503
    outcomes = [a["outcome"] for a in doc["alerts"]]
    assert outcomes == ["delivered", "transient_failure", "delivered"]
    assert len(peer.accepted) == 5  # wxid_ops got all three
    status, doc = await rig.post(THREE)  # Alertmanager retries
    assert status == 200
    assert [a["outcome"] for a in doc["alerts"]] == ["duplicate", "delivered", "duplicate"]
    (again,) = peer.accepted[5:]
    assert (again["to"], again["type"], again["filename"]) == (
        "wxid_admin",
        "image",
        "carol-login-qr.png",
    )


async def test_a_failed_text_is_resent_to_that_admin_only(
    make_rig: MakeRig, exporter: FakeExporter, peer: PeerBot
) -> None:
    exporter.qrs.update(bob=QR_BOB, carol=QR_CAROL)
    rig = await make_rig(
        base_settings(exporter.url, admins=BOTH), messenger=webhook_messenger(peer)
    )
    peer.fail_for["wxid_admin"] = 503  # wxid_admin's peer bot is away; wxid_ops gets it all
    assert (await rig.post(THREE))[0] == 503
    assert [(r["to"], r["type"]) for r in peer.accepted] == [("wxid_ops", "text")] + [
        ("wxid_ops", "image")
    ] * 2
    del peer.fail_for["wxid_admin"]
    assert (await rig.post(THREE))[0] == 200
    assert [(r["to"], r["type"]) for r in peer.accepted[3:]] == [("wxid_admin", "text")] + [
        ("wxid_admin", "image")
    ] * 2
    assert peer.accepted[3]["text"].startswith("3 alerts firing: bob, carol")


async def test_an_alert_delivered_before_is_left_out_of_the_group(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    """Alertmanager adds carol's alert to bob's group: the next DM is about carol alone."""
    exporter.qrs.update(bob=QR_BOB, carol=QR_CAROL)
    rig = await make_rig(base_settings(exporter.url, admins=BOTH))
    bob = ("WechatyBotLoggedOut", "bob", "fp-bob")
    assert (await rig.post(group(bob)))[0] == 200
    assert len(rig.sent()) == 4  # text and QR to each admin
    status, doc = await rig.post(group(bob, ("WechatyBotLoggedOut", "carol", "fp-carol")))
    assert status == 200
    assert [a["outcome"] for a in doc["alerts"]] == ["duplicate", "delivered"]
    later = rig.sent()[4:]
    assert [(r["type"], r["bot"]) for r in later] == [("text", "carol"), ("image", "carol")] * 2
    assert all("bob" not in r.get("text", "") for r in later)


async def test_a_split_dm_whose_second_text_failed_resends_only_that_part(
    make_rig: MakeRig, exporter: FakeExporter, peer: PeerBot
) -> None:
    """Twelve alerts with long annotations take two texts; the second is refused: the retry
    sends the blocks of the second text only."""
    doc = payload_doc("grouped")
    first = doc["alerts"][0]
    doc["alerts"] = [
        {**first, "fingerprint": f"fp{i}", "labels": {**first["labels"], "bot": f"bot{i}"},
         "annotations": {"summary": f"bot{i} " + "x" * 380, "description": "y" * 390}}
        for i in range(12)
    ]  # fmt: skip
    body = json.dumps(doc)
    rig = await make_rig(messenger=webhook_messenger(peer))  # bot0..bot11: the fallback admin
    peer.script = [200, 503]
    status, reply = await rig.post(body)
    assert status == 503
    (part_one,) = peer.accepted
    assert part_one["to"] == "wxid_ops" and part_one["text"].startswith("12 alerts firing: ")
    delivered = [a["outcome"] == "delivered" for a in reply["alerts"]]
    assert 0 < sum(delivered) < 12 and delivered == sorted(delivered, reverse=True)
    assert (await rig.post(body))[0] == 200
    rest = [r["text"] for r in peer.accepted[1:]]
    assert rest, "the retry sent the rest"
    for i, was_sent in enumerate(delivered):
        block = f"(bot{i})\n> bot{i} "
        assert (block in part_one["text"]) is was_sent
        assert sum(block in text for text in rest) == (0 if was_sent else 1)
    assert rest[0].startswith(f"{12 - sum(delivered)} alerts firing: ")
    assert all(len(r["text"]) <= 1500 for r in peer.accepted)


async def test_a_qr_that_comes_late_follows_the_others(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    exporter.qrs["bob"] = QR_BOB
    exporter.appear_after["carol"] = (2, QR_CAROL)  # not there at first, then after two polls
    admins = (("bob", ("wxid_admin",)), ("carol", ("wxid_admin",)))
    rig = await make_rig(base_settings(exporter.url, admins=admins))
    body = group(("WechatyBotLoggedOut", "bob", "fp-bob"), ("WechatyBotLoggedOut", "carol", "fp-c"))
    status, _ = await rig.post(body)
    assert status == 200
    text, bob, carol = rig.sent()
    assert "bob is logged out" in text["text"] and "Scan the QR code below" in text["text"]
    assert "No login QR yet: carol has not shown one" in text["text"]
    assert decode_qr(png(bob), tmp_path) == QR_BOB
    assert decode_qr(png(carol), tmp_path) == QR_CAROL


async def test_qrs_that_never_come_are_one_text_naming_the_bots(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    rig = await make_rig(base_settings(exporter.url, admins=BOTH))
    body = group(("WechatyBotLoggedOut", "bob", "fp-bob"), ("WechatyBotLoggedOut", "carol", "fp-c"))
    assert (await rig.post(body))[0] == 200
    for records in by_contact(rig.sent()).values():
        intro, late = (r["text"] for r in records)
        assert intro.startswith("2 alerts firing: bob, carol\n")
        assert late == (
            "Still no login QR from bob, carol after 5 s. Once one shows, send: qr bob or qr carol"
        )
    assert exporter.polls == {"bob": 6, "carol": 6}  # polled together, not one wait after another


async def test_concurrent_copies_of_a_group_send_once(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    exporter.qrs.update(bob=QR_BOB, carol=QR_CAROL)
    rig = await make_rig(base_settings(exporter.url, admins=BOTH))
    results = await asyncio.gather(*(rig.post(THREE) for _ in range(4)))
    assert [status for status, _ in results] == [200] * 4
    outcomes = sorted(a["outcome"] for _, doc in results for a in doc["alerts"])
    assert outcomes == ["delivered"] * 3 + ["duplicate"] * 9
    assert len(rig.sent()) == 6


async def test_resolved_and_firing_in_one_group(make_rig: MakeRig, exporter: FakeExporter) -> None:
    exporter.qrs["carol"] = QR_CAROL
    doc = json.loads(group(("WechatyBotLoggedOut", "carol", "fp-carol")))
    resolved = payload_doc("resolved")["alerts"][0]  # bob, back online
    doc["alerts"].insert(0, resolved)
    rig = await make_rig(base_settings(exporter.url, admins=BOTH))
    assert (await rig.post(json.dumps(doc)))[0] == 200
    for records in by_contact(rig.sent()).values():
        assert [r["type"] for r in records] == ["text", "image"]
        text = records[0]["text"]
        assert text.startswith("2 alerts (1 firing, 1 resolved): bob, carol\n\n")
        assert "bob is back online (the alert lasted 24 s" in text
    assert (await rig.post(payload("ha_duplicate")))[1]["alerts"][0]["outcome"] == "duplicate"
