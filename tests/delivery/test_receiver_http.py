"""POST /alerts end to end through aiohttp's test client: real payloads, outbox or webhook delivery,
the exporter stand-in on loopback, a store on disk."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from tests.delivery.kit import (
    QR_BOB,
    QR_BOB_NEWER,
    FakeExporter,
    MakeRig,
    PeerBot,
    Rig,
    base_settings,
    decode_qr,
    payload,
    payload_doc,
    webhook_messenger,
)

from wechaty_exporter.delivery.guard_settings import AuthSettings, RateLimitSettings
from wechaty_exporter.delivery.settings import LoginTestSettings


def kinds(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["to"], r["type"]) for r in records]


def png_of(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record.get("png_base64") or record["png_base64"])


# --- the rescue --------------------------------------------------------------------------------


async def test_firing_sends_text_then_a_qr_that_scans(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig()
    status, doc = await rig.post(payload("firing"))
    assert status == 200, doc
    assert doc["alerts"] == [
        {"fingerprint": "59c41b3133069dd4", "status": "firing", "outcome": "delivered"}
    ]
    text, image = rig.sent()
    assert set(text) == {"time", "to", "bot", "type", "text"}
    assert set(image) == {"time", "to", "bot", "type", "png_base64"}
    assert (text["to"], text["bot"], text["type"]) == ("wxid_admin", "bob", "text")
    assert text["text"] == (  # one alert: its block alone, no first line counting alerts
        "bob is logged out of WeChat, since 2026-11-25 01:01 UTC (3 min ago).\n"
        "Scan the QR code below (shown 2026-11-25 01:02 UTC) with bob's WeChat to log it back in.\n"
        "QR expired? Send: qr bob"
    )
    assert (image["to"], image["bot"], image["type"]) == ("wxid_admin", "bob", "image")
    assert decode_qr(png_of(image), tmp_path) == QR_BOB
    assert rig.metric("wechaty_receiver_notifications_total", outcome="delivered") == 1
    assert rig.metric("wechaty_receiver_messages_total", type="image") == 1
    assert rig.metric("wechaty_receiver_requests_total", code="200") == 1


async def test_the_qr_is_the_freshest_at_send_time(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig()
    exporter.qrs["bob"] = QR_BOB_NEWER  # the bot printed a newer QR after the alert fired
    assert (await rig.post(payload("firing")))[0] == 200
    assert decode_qr(png_of(rig.sent()[1]), tmp_path) == QR_BOB_NEWER


async def test_no_qr_yet_then_it_appears_within_the_wait(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    exporter.appear_after["bob"] = (3, QR_BOB)  # 404 for the first three requests
    rig = await make_rig()
    status, _ = await rig.post(payload("firing"))
    assert status == 200
    intro, image = rig.sent()
    assert "No login QR yet: bob has not shown one" in intro["text"]
    assert decode_qr(png_of(image), tmp_path) == QR_BOB
    assert exporter.polls["bob"] == 4
    assert rig.clock.now - (1795568519.715 + 180) == 3.0  # three 1 s polls on the test clock


async def test_no_qr_within_the_wait_tells_the_admin_to_ask(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    rig = await make_rig()
    status, _ = await rig.post(payload("firing"))
    assert status == 200
    intro, hint = rig.sent()
    assert "I will send it here if it appears within 5 s" in intro["text"]
    assert hint["text"] == "Still no login QR from bob after 5 s. Once it shows one, send: qr bob"
    assert exporter.polls["bob"] == 6  # one at once, five during the 5 s wait
    assert (await rig.post(payload("ha_duplicate")))[1]["alerts"][0]["outcome"] == "duplicate"


async def test_exporter_down_while_the_qr_is_needed_is_503_then_the_retry_sends_only_the_qr(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    exporter.fail_status = 500
    rig = await make_rig()
    status, doc = await rig.post(payload("firing"))
    assert status == 503
    assert "exporter unreachable" in doc["error"]
    (intro,) = rig.sent()  # the admin learns at once that bob is down
    assert "I could not fetch its login QR" in intro["text"]
    exporter.fail_status = None
    exporter.qrs["bob"] = QR_BOB
    status, _ = await rig.post(payload("firing"))
    assert status == 200
    (image,) = rig.sent()[1:]
    assert decode_qr(png_of(image), tmp_path) == QR_BOB
    assert rig.metric("wechaty_receiver_exporter_errors_total") == 6


async def test_exporter_port_closed_is_503(make_rig: MakeRig, exporter: FakeExporter) -> None:
    rig = await make_rig(base_settings("http://127.0.0.1:9", qr_wait=1.0))
    status, doc = await rig.post(payload("firing"))
    assert status == 503
    assert "127.0.0.1:9" in doc["error"]


async def test_back_online_during_the_wait_ends_it_quietly(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    rig = await make_rig(base_settings(exporter.url, qr_wait=3600, qr_poll_interval=0.5))
    exporter.polled.clear()
    firing = asyncio.create_task(rig.post(payload("firing")))
    await exporter.polled.wait()  # the intro went out; now it polls
    status, _ = await rig.post(payload("resolved"))
    assert status == 200
    assert (await firing)[0] == 200
    texts = [r["text"] for r in rig.sent()]
    assert len(texts) == 2
    assert texts[0].startswith("bob is logged out")
    assert texts[1].startswith("bob is back online")


async def test_resolved_says_back_online_and_runs_the_login_test(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    settings = base_settings(
        exporter.url,
        login_tests=(("bob", LoginTestSettings(to="wxid_bob_self", text="login test for bob")),),
    )
    rig = await make_rig(settings)
    status, _ = await rig.post(payload("resolved"))
    assert status == 200
    back, login_test = rig.sent()
    assert back["to"] == "wxid_admin"
    assert back["text"].startswith("bob is back online (the alert lasted 24 s")
    assert (login_test["to"], login_test["bot"], login_test["text"]) == (
        "wxid_bob_self",
        "bob",
        "login test for bob",
    )
    assert exporter.polls == {}  # no QR needed


async def test_a_rescuer_back_runs_no_login_test(make_rig: MakeRig, exporter: FakeExporter) -> None:
    """WechatyNoRescuer resolves when any bot of the duet is back: bob may still be out, so
    bob's login test (which says bob is back) must not run."""
    settings = base_settings(
        exporter.url,
        qr_alerts=("WechatyNoRescuer", "WechatyBotLoggedOut"),
        login_tests=(("bob", LoginTestSettings(to="wxid_bob_self", text="login test for bob")),),
    )
    rig = await make_rig(settings)
    body = payload("resolved").decode().replace("WechatyBotLoggedOut", "WechatyNoRescuer")
    status, _ = await rig.post(body.encode())
    assert status == 200
    (back,) = rig.sent()
    assert back["to"] == "wxid_admin" and back["text"].startswith("A rescuer is back")


async def test_grouped_alerts_each_go_to_their_bots_admins(make_rig: MakeRig) -> None:
    """One DM per admin per group: wxid_admin (bob and carol) gets one text about both."""
    rig = await make_rig()
    status, doc = await rig.post(payload("grouped"))
    assert status == 200
    assert [a["outcome"] for a in doc["alerts"]] == ["delivered", "delivered"]
    sent = rig.sent()
    assert [(r["to"], r["bot"]) for r in sent] == [
        ("wxid_admin", "bob,carol"),
        ("wxid_ops", "carol"),
    ]
    assert sent[0]["text"].startswith(
        "2 alerts firing: bob, carol\n\n[FIRING] WechatyBotStateUnknown (bob)\n> bob state unknown"
    )
    assert "\n\n[FIRING] WechatyBotStateUnknown (carol)\n> carol state unknown" in sent[0]["text"]
    assert sent[1]["text"].startswith("[FIRING] WechatyBotStateUnknown (carol)\n")


async def test_an_alert_without_a_bot_goes_to_the_fallback_admins(make_rig: MakeRig) -> None:
    rig = await make_rig()
    assert (await rig.post(payload("no_rescuer_firing")))[0] == 200
    assert (await rig.post(payload("no_rescuer_resolved")))[0] == 200
    firing, resolved = rig.sent()
    assert (firing["to"], firing["bot"]) == ("wxid_ops", "WechatyNoRescuer")
    assert firing["text"].startswith("[FIRING] WechatyNoRescuer\n")
    assert resolved["text"].startswith("[RESOLVED] WechatyNoRescuer\n")


async def test_without_fallback_admins_every_admin_hears_of_botless_alerts(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    rig = await make_rig(base_settings(exporter.url, fallback_admins=()))
    assert (await rig.post(payload("no_rescuer_firing")))[0] == 200
    assert [r["to"] for r in rig.sent()] == ["wxid_admin", "wxid_ops"]


async def test_nobody_to_tell_is_200_and_counted(make_rig: MakeRig, exporter: FakeExporter) -> None:
    rig = await make_rig(base_settings(exporter.url, admins=(), fallback_admins=()))
    status, doc = await rig.post(payload("firing"))
    assert status == 200
    assert doc["alerts"][0]["outcome"] == "no_recipient"
    assert rig.sent() == []
    assert rig.metric("wechaty_receiver_notifications_total", outcome="no_recipient") == 1


async def test_truncated_alerts_are_delivered_and_counted(make_rig: MakeRig) -> None:
    rig = await make_rig()
    assert (await rig.post(payload("truncated")))[0] == 200
    assert len(rig.sent()) == 1
    assert rig.metric("wechaty_receiver_truncated_alerts_total") == 1


# --- dedupe and restarts -----------------------------------------------------------------------


async def test_ha_duplicate_is_dropped(make_rig: MakeRig, exporter: FakeExporter) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig()
    assert (await rig.post(payload("firing")))[0] == 200
    status, doc = await rig.post(payload("ha_duplicate"))
    assert status == 200
    assert doc["alerts"][0]["outcome"] == "duplicate"
    assert len(rig.sent()) == 2
    assert rig.metric("wechaty_receiver_dedupe_hits_total") == 1


async def test_a_late_firing_copy_after_resolved_is_dropped(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    """The order the real HA pair produced: firing, resolved, then the peer's stale firing."""
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig()
    for name in ("firing", "resolved", "ha_duplicate"):
        assert (await rig.post(payload(name)))[0] == 200
    assert [r["type"] for r in rig.sent()] == ["text", "image", "text"]
    assert rig.sent()[-1]["text"].startswith("bob is back online")


async def test_concurrent_duplicates_send_once(make_rig: MakeRig, exporter: FakeExporter) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig()
    results = await asyncio.gather(*(rig.post(payload("firing")) for _ in range(5)))
    assert [s for s, _ in results] == [200] * 5
    outcomes = sorted(d["alerts"][0]["outcome"] for _, d in results)
    assert outcomes == ["delivered"] + ["duplicate"] * 4
    assert len(rig.sent()) == 2


async def test_a_repeat_after_the_dedupe_ttl_is_sent_again(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig(base_settings(exporter.url, dedupe_ttl=600))
    assert (await rig.post(payload("firing")))[0] == 200
    rig.clock.now += 599
    assert (await rig.post(payload("firing")))[1]["alerts"][0]["outcome"] == "duplicate"
    rig.clock.now += 2
    assert (await rig.post(payload("firing")))[1]["alerts"][0]["outcome"] == "delivered"
    assert len(rig.sent()) == 4  # a reminder with the (then) freshest QR


async def test_restart_does_not_repeat(make_rig: MakeRig, exporter: FakeExporter) -> None:
    exporter.qrs["bob"] = QR_BOB
    first = await make_rig()
    assert (await first.post(payload("firing")))[0] == 200
    await first.client.close()
    first.store.close()
    second = await make_rig(state_dir=first.state_dir)  # a new process on the same state dir
    status, doc = await second.post(payload("ha_duplicate"))
    assert status == 200
    assert doc["alerts"][0]["outcome"] == "duplicate"
    assert len(second.sent()) == 2


# --- failures and retries ----------------------------------------------------------------------


async def test_transient_failure_is_503_then_the_retry_delivers_exactly_once(
    make_rig: MakeRig, exporter: FakeExporter, peer: PeerBot, tmp_path: Path
) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig(messenger=webhook_messenger(peer))
    peer.script = [503]  # the peer bot is offline
    status, doc = await rig.post(payload("firing"))
    assert status == 503
    assert doc["alerts"][0]["outcome"] == "transient_failure"
    assert "HTTP 503" in doc["error"]
    assert rig.metric("wechaty_receiver_message_failures_total", kind="transient") == 1
    status, _ = await rig.post(payload("firing"))  # Alertmanager retries
    assert status == 200
    assert [(r["to"], r["type"]) for r in peer.accepted] == [
        ("wxid_admin", "text"),
        ("wxid_admin", "image"),
    ]
    assert decode_qr(base64.b64decode(peer.accepted[1]["png_base64"]), tmp_path) == QR_BOB
    assert peer.accepted[1]["filename"] == "bob-login-qr.png"


async def test_partial_failure_then_a_restart_sends_only_the_rest(
    make_rig: MakeRig, exporter: FakeExporter, peer: PeerBot, tmp_path: Path
) -> None:
    exporter.qrs["carol"] = QR_BOB
    doc = payload_doc("firing")
    doc["alerts"][0]["labels"]["bot"] = "carol"  # carol has two admins
    body = json.dumps(doc)
    rig = await make_rig(messenger=webhook_messenger(peer))
    peer.script = [200, 502]  # admin 1's text goes out, its image fails; admin 2 gets both
    status, _ = await rig.post(body)
    assert status == 503
    assert [(r["to"], r["type"]) for r in peer.accepted] == [
        ("wxid_admin", "text"),
        ("wxid_ops", "text"),
        ("wxid_ops", "image"),
    ]
    await rig.client.close()
    rig.store.close()
    again = await make_rig(messenger=webhook_messenger(peer), state_dir=rig.state_dir)
    status, _ = await again.post(body)
    assert status == 200
    assert [(r["to"], r["type"]) for r in peer.accepted[3:]] == [("wxid_admin", "image")]


async def test_permanent_failure_is_500_and_the_retry_repeats_nothing(
    make_rig: MakeRig, exporter: FakeExporter, peer: PeerBot
) -> None:
    exporter.qrs["carol"] = QR_BOB
    doc = payload_doc("firing")
    doc["alerts"][0]["labels"]["bot"] = "carol"
    peer.fail_for["wxid_ops"] = 404  # no such contact
    rig = await make_rig(messenger=webhook_messenger(peer))
    status, reply = await rig.post(json.dumps(doc))
    assert status == 500
    assert reply["alerts"][0]["outcome"] == "permanent_failure"
    assert "HTTP 404" in reply["error"]
    status, _ = await rig.post(json.dumps(doc))
    assert status == 500
    assert [(r["to"], r["type"]) for r in peer.accepted] == [
        ("wxid_admin", "text"),
        ("wxid_admin", "image"),
    ]
    assert len(peer.requests) == 4  # the unknown contact was tried once per attempt


async def test_rate_limit_answers_503_then_delivers_when_the_bucket_refills(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    exporter.qrs["bob"] = QR_BOB
    limit = RateLimitSettings(burst=2, per_hour=60, max_hold=0)  # one message a minute
    rig = await make_rig(base_settings(exporter.url, rate_limit=limit))
    assert (await rig.post(payload("firing")))[0] == 200  # uses the whole burst
    rig.clock.now += 30
    resp = await rig.client.post(
        "/alerts", data=payload("resolved"), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "30"
    assert (await resp.json())["alerts"][0]["outcome"] == "rate_limited"
    assert len(rig.sent()) == 2
    rig.clock.now += 30
    assert (await rig.post(payload("resolved")))[0] == 200
    assert rig.sent()[-1]["text"].startswith("bob is back online")


async def test_rate_limit_holds_a_short_wait(make_rig: MakeRig, exporter: FakeExporter) -> None:
    exporter.qrs["bob"] = QR_BOB
    limit = RateLimitSettings(burst=2, per_hour=60, max_hold=60)
    rig = await make_rig(base_settings(exporter.url, rate_limit=limit))
    assert (await rig.post(payload("firing")))[0] == 200
    before = rig.clock.now
    assert (await rig.post(payload("resolved")))[0] == 200
    assert rig.clock.now - before == 60  # held (on the test clock) until a token was back
    assert len(rig.sent()) == 3


async def test_rate_limits_are_per_admin(make_rig: MakeRig, exporter: FakeExporter) -> None:
    limit = RateLimitSettings(burst=2, per_hour=1, max_hold=0)
    rig = await make_rig(base_settings(exporter.url, rate_limit=limit))
    assert (await rig.post(payload("grouped")))[0] == 200  # one DM each: wxid_admin, wxid_ops
    assert (await rig.post(payload("no_rescuer_firing")))[0] == 200  # wxid_ops: 2nd
    status, doc = await rig.post(payload("no_rescuer_resolved"))  # wxid_ops: 3rd
    assert status == 503
    assert doc["alerts"][0]["outcome"] == "rate_limited"


# --- what is refused ---------------------------------------------------------------------------


async def test_malformed_payloads_are_400_with_the_reason(make_rig: MakeRig) -> None:
    rig = await make_rig()
    doc = payload_doc("firing")
    doc["version"] = "3"
    assert await rig.post(json.dumps(doc)) == (400, {"error": 'version: expected "4", got "3"'})
    del doc["version"]
    doc["alerts"] = [{"status": "firing"}]
    status, reply = await rig.post(json.dumps({**doc, "version": "4"}))
    assert (status, reply) == (400, {"error": "alerts[0].labels: missing"})
    status, reply = await rig.post("{not json")
    assert status == 400
    assert reply["error"].startswith("body is not JSON")
    assert rig.metric("wechaty_receiver_requests_total", code="400") == 3
    assert rig.sent() == []


async def test_wrong_content_type_is_415(make_rig: MakeRig) -> None:
    rig = await make_rig()
    resp = await rig.client.post(
        "/alerts", data=payload("firing"), headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 415
    assert await resp.json() == {"error": "Content-Type must be application/json, got text/plain"}
    ok = await rig.post(
        payload("no_rescuer_firing"), **{"Content-Type": "application/json; charset=utf-8"}
    )
    assert ok[0] == 200


async def test_oversized_body_is_413(make_rig: MakeRig, exporter: FakeExporter) -> None:
    rig = await make_rig(base_settings(exporter.url, max_body_bytes=2048))
    doc = payload_doc("firing")
    doc["commonAnnotations"]["description"] = "x" * 4000
    status, reply = await rig.post(json.dumps(doc))
    assert (status, reply) == (413, {"error": "body larger than 2048 bytes"})

    async def chunks() -> Any:  # no Content-Length: the cap holds while reading
        for _ in range(10):
            yield b" " * 1024

    resp = await rig.client.post(
        "/alerts", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413


async def _auth_rig(make_rig: MakeRig, exporter: FakeExporter, auth: AuthSettings) -> Rig:
    return await make_rig(base_settings(exporter.url, auth=auth))


async def test_bearer_auth(make_rig: MakeRig, exporter: FakeExporter) -> None:
    rig = await _auth_rig(make_rig, exporter, AuthSettings("bearer", "s3cret-token"))
    body = payload("no_rescuer_firing")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}):
        resp = await rig.client.post(
            "/alerts", data=body, headers={"Content-Type": "application/json", **headers}
        )
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert await resp.json() == {"error": "missing or wrong credentials"}
    assert rig.sent() == []
    assert (await rig.post(body, Authorization="Bearer s3cret-token"))[0] == 200
    # 401 comes before anything else is looked at
    resp = await rig.client.post("/alerts", data=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status == 401


async def test_basic_auth(make_rig: MakeRig, exporter: FakeExporter) -> None:
    rig = await _auth_rig(make_rig, exporter, AuthSettings("basic", "pw", username="am"))

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    body = payload("no_rescuer_firing")
    for header in (basic("am", "nope"), basic("eve", "pw"), "Basic !!!", "Bearer pw"):
        assert (await rig.post(body, Authorization=header))[0] == 401
    assert (await rig.post(body, Authorization=basic("am", "pw")))[0] == 200


# --- health, readiness, metrics ----------------------------------------------------------------


async def test_health_ready_and_metrics(make_rig: MakeRig, exporter: FakeExporter) -> None:
    ready = {"value": False}
    rig = await make_rig(ready=lambda: ready["value"])
    assert (await rig.client.get("/healthz")).status == 200
    assert (await rig.client.get("/-/ready")).status == 503
    ready["value"] = True
    assert (await rig.client.get("/-/ready")).status == 200
    await rig.post(payload("no_rescuer_firing"))
    text = await (await rig.client.get("/metrics")).text()
    for name in (
        'wechaty_receiver_requests_total{code="200"} 1.0',
        'wechaty_receiver_notifications_total{outcome="delivered"} 1.0',
        "wechaty_receiver_request_duration_seconds_count 1.0",
        "wechaty_receiver_dedupe_hits_total 0.0",
        "wechaty_receiver_alert_delivery_delay_seconds_count 1.0",
    ):
        assert name in text
    assert "python_gc" not in text  # its own registry, not the global one


async def test_two_apps_have_separate_registries(make_rig: MakeRig, tmp_path: Path) -> None:
    a = await make_rig()
    b = await make_rig(state_dir=tmp_path / "other")
    await a.post(payload("no_rescuer_firing"))
    assert a.metric("wechaty_receiver_requests_total", code="200") == 1
    assert b.metric("wechaty_receiver_requests_total", code="200") == 0


async def test_settings_are_used_as_given(make_rig: MakeRig, exporter: FakeExporter) -> None:
    settings = replace(base_settings(exporter.url), timezone="Asia/Shanghai")
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig(settings)
    await rig.post(payload("firing"))
    assert "since 2026-11-25 09:01 CST" in rig.sent()[0]["text"]


class CrashingMessenger:
    """A messenger with a bug: raises something other than DeliveryError."""

    name = "crashing"

    async def send_text(self, to: str, text: str, *, bot: str) -> None:
        raise RuntimeError("puppet went away mid-call")

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None:
        raise RuntimeError("unreachable")

    async def close(self) -> None:
        return None


async def test_a_messenger_bug_is_a_logged_503_not_a_crash(make_rig: MakeRig) -> None:
    rig = await make_rig(messenger=CrashingMessenger())
    status, doc = await rig.post(payload("no_rescuer_firing"))
    assert status == 503
    assert doc["error"] == "messenger crashing: RuntimeError: puppet went away mid-call"
    assert rig.metric("wechaty_receiver_message_failures_total", kind="error") == 1


async def test_a_broken_delivery_store_is_503_and_not_ready(make_rig: MakeRig) -> None:
    rig = await make_rig()
    rig.store.close()  # as good as a full or vanished disk
    status, doc = await rig.post(payload("no_rescuer_firing"))
    assert status == 503
    assert doc["error"].startswith("delivery store:")
    assert (await rig.client.get("/-/ready")).status == 503
    assert rig.sent() == []
