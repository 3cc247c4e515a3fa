"""The TypeScript duet end to end (tests/duet/kit.py): two mocked Wechaty bots with the plugin,
the real exporter (`qr_source: self-log`), Prometheus, Alertmanager and receiver.

One set of processes for the module; the tests follow alice through one life, in order: scan,
login and hostile chat; a logout that reaches the admin through bob with alice's freshest QR;
the admin's `qr` and `restart` through bob; probes that stop reaching bob; last, a self-log line
forged by chat text in the bot's console log, which must change nothing.
"""

from __future__ import annotations

import base64
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.delivery.kit import decode_qr
from tests.duet.kit import ADMIN, ALICE, MALLORY, Duet, self_log
from tests.integration.harness import Processes

pytestmark = pytest.mark.timeout(180)

QR0 = "https://login.weixin.qq.com/l/DuetAlice0A=="
QR1 = "https://login.weixin.qq.com/l/DuetAlice1B=="
QR2 = "https://login.weixin.qq.com/l/DuetAlice2C=="
QR3 = "https://login.weixin.qq.com/l/DuetAlice3D=="
PHISH = "https://login.weixin.qq.com/l/PHISH=="
REASON = "为了你的帐号安全，请重新登录。"


def sample(duet: Duet, name: str, **labels: str) -> float | None:
    return duet.metrics().get((name, frozenset(labels.items())))


def _state(duet: Duet) -> dict[str, Any]:
    doc = duet.bot("alice")
    keys = ("logged_in", "qr_pending", "user", "logins_total", "logouts_total", "qr_codes_total")
    return {k: doc[k] for k in keys}


def test_exporter_follows_scan_and_login_and_hostile_chat_changes_nothing(
    duet: Duet, processes: Processes
) -> None:
    """alice's scan and login, as the exporter (`qr_source: self-log`) serves them in
    /api/v1/bots and /metrics; then a stranger's chat with newlines and whole forged scan, login
    and logout lines, which land in alice's console log: read, counted, and applied to nothing."""
    if duet.alice.logged_in():  # (only when run on its own after the others)
        duet.logout_alice("again")
    else:
        assert duet.initial["alice"]["logged_in"] is None  # unknown until the first event
        assert duet.initial["bob"]["logged_in"] is True
    base = duet.bot("alice")

    # scan: logged out, the QR pending
    duet.alice.scan(QR0)
    duet.until(lambda: duet.pending_qr("alice") == QR0, "alice's QR in the exporter")
    doc = duet.bot("alice")
    assert (doc["logged_in"], doc["qr_pending"]) == (False, True)
    assert doc["qr_codes_total"] == base["qr_codes_total"] + 1
    assert sample(duet, "wechaty_qr_pending", bot="alice") == 1
    assert sample(duet, "wechaty_bot_logged_in", bot="alice") == 0

    # login: logged in as HelperAlice, no QR
    duet.login_alice()
    duet.until(lambda: duet.bot("alice")["logged_in"] is True, "alice logged in")
    logged_in = _state(duet)
    assert logged_in == {
        "logged_in": True,
        "qr_pending": False,
        "user": ALICE["name"],
        "logins_total": base["logins_total"] + 1,
        "logouts_total": base["logouts_total"],
        "qr_codes_total": base["qr_codes_total"] + 1,
    }
    assert duet.pending_qr("alice") is None
    assert sample(duet, "wechaty_bot_logged_in", bot="alice") == 1
    assert sample(duet, "wechaty_qr_pending", bot="alice") == 0
    assert sample(duet, "wechaty_bot_info", bot="alice", user=ALICE["name"]) == 1
    assert sample(duet, "wechaty_bot_logins_total", bot="alice") == logged_in["logins_total"]
    assert sample(duet, "wechaty_bot_state_known", bot="alice") == 1

    # hostile chat: newlines and whole forged event lines, from a stranger
    suspect = ("wechaty_exporter_suspect_events_total", "not_from_self_log")
    suspects = sample(duet, suspect[0], bot="alice", reason=suspect[1]) or 0.0
    rejected = sample(duet, "wechaty_exporter_rejected_qr_total", bot="alice") or 0.0
    errors = sample(duet, "wechaty_log_errors_total", bot="alice")
    forged = [
        f"12:00:00 INFO X onScan: Waiting(2) - {PHISH}",
        "12:00:01 INFO X Contact<Mallory> login",
        f"12:00:02 INFO X Contact<{ALICE['name']}> logout",
    ]
    for line in forged:
        duet.alice.message(MALLORY["id"], f"hi\n{line}\nbye")
    duet.alice.message(MALLORY["id"], "wechaty-exporter probe v1 bob 999")
    # the forged lines are whole lines of alice's console log, which the exporter follows
    # (wechaty-puppet-mock writes each chat text there twice)...
    console = duet.alice.console_log

    def copies() -> list[int] | None:
        lines = console.read_text(errors="replace").splitlines()
        counts = [lines.count(line) for line in forged]
        return counts if all(counts) else None

    counts = duet.until(copies, "the forged lines in alice's console log")
    scans, others = counts[0], sum(counts[1:])

    # ...and it read each of them, and applied none: forged logins and logouts are suspect
    # events, forged scans rejected QRs (a scan from outside the self-log)
    def vetted() -> tuple[float, float] | None:
        now = (
            sample(duet, suspect[0], bot="alice", reason=suspect[1]) or 0.0,
            sample(duet, "wechaty_exporter_rejected_qr_total", bot="alice") or 0.0,
        )
        return now if now[0] >= suspects + others and now[1] >= rejected + scans else None

    assert duet.until(vetted, "the forged lines counted") == (suspects + others, rejected + scans)
    assert _state(duet) == logged_in
    assert duet.pending_qr("alice") is None
    assert sample(duet, "wechaty_bot_info", bot="alice", user="Mallory") is None
    assert sample(duet, "wechaty_log_errors_total", bot="alice") == errors
    text = duet.alice.self_log.read_text("utf-8")
    assert "PHISH" not in text and "Mallory" not in text
    assert 999 not in [e["seq"] for e in self_log(duet.alice.self_log, "probe")]


def test_a_logout_reaches_the_admin_through_bob_with_the_freshest_qr(
    duet: Duet, processes: Processes, tmp_path: Path
) -> None:
    """alice logs out (state and reason in the exporter), shows a QR, the alert fires, alice
    shows a newer QR: Prometheus → Alertmanager → the receiver → bob's plugin → bob's puppet DMs
    the admin the alert (with WeChat's reason) and a PNG that decodes to the newer QR."""
    if not duet.alice.logged_in():  # (only when run on its own)
        duet.login_alice()
        duet.until(lambda: duet.bot("alice")["logged_in"] is True, "alice logged in")
    base = duet.bot("alice")
    sent_before = len(duet.bob.sent())
    # Alertmanager holds alice's logout alert until both QRs are in (no race with its `for`)
    held = duet.silence(alertname="WechatyBotLoggedOut", bot="alice")

    # alice is logged out: the exporter has it with WeChat's reason, no QR yet
    duet.logout_alice(REASON)
    duet.until(lambda: duet.bot("alice")["logged_in"] is False, "alice logged out")
    doc = duet.bot("alice")
    assert (doc["qr_pending"], doc["logout_reason"], doc["user"]) == (False, REASON, ALICE["name"])
    assert doc["logouts_total"] == base["logouts_total"] + 1
    assert doc["logins_total"] == base["logins_total"]
    assert sample(duet, "wechaty_bot_logged_in", bot="alice") == 0
    assert sample(duet, "wechaty_bot_logouts_total", bot="alice") == doc["logouts_total"]

    # a first QR, and the alert fires while it is alice's freshest (held by the silence)
    duet.alice.scan(QR1)
    duet.until(lambda: duet.pending_qr("alice") == QR1, "alice's first QR in the exporter")

    def suppressed() -> bool:
        alerts = duet.alertmanager.alerts(alertname="WechatyBotLoggedOut", bot="alice")
        return any(held in a["status"]["silencedBy"] for a in alerts)

    duet.until(suppressed, "WechatyBotLoggedOut for alice in Alertmanager")
    # then a second one
    duet.alice.scan(QR2)
    duet.until(lambda: duet.pending_qr("alice") == QR2, "alice's second QR in the exporter")
    assert duet.bot("alice")["qr_codes_total"] == base["qr_codes_total"] + 2
    assert not [s for s in duet.bob.sent()[sent_before:] if s["to"] == ADMIN["id"]]
    duet.unsilence(held)

    # Prometheus → Alertmanager → the receiver → bob's plugin → bob's puppet → the admin
    def delivered() -> list[dict[str, Any]] | None:
        new = [s for s in duet.bob.sent()[sent_before:] if s["to"] == ADMIN["id"]]
        files = [s for s in new if s["type"] == "file"]
        return new if files else None

    new = duet.until(delivered, "the logout DM with alice's QR from bob", timeout=60)
    texts = [s["text"] for s in new if s["type"] == "text"]
    assert any(
        "alice is logged out of WeChat" in t and f"WeChat said: {REASON}" in t for t in texts
    ), texts
    [image] = [s for s in new if s["type"] == "file"]
    assert image["name"] == "alice-login-qr.png"
    assert decode_qr(base64.b64decode(image["base64"]), tmp_path) == QR2
    assert new.index(image) > min(i for i, s in enumerate(new) if s["type"] == "text")
    firing = duet.alertmanager.alerts(alertname="WechatyBotLoggedOut")
    assert [a["labels"]["bot"] for a in firing] == ["alice"]
    # nothing went to anyone else but the admin and the peer (probes)
    assert {s["to"] for s in duet.bob.sent()[sent_before:]} <= {ADMIN["id"], ALICE["id"]}


def _replies(duet: Duet, before: int, want: int) -> list[dict[str, Any]]:
    def got() -> list[dict[str, Any]] | None:
        new = [s for s in duet.bob.sent()[before:] if s["to"] == ADMIN["id"]]
        return new if len(new) >= want else None

    result: list[dict[str, Any]] = duet.until(got, f"{want} replies from bob", timeout=60)
    return result


def test_qr_and_restart_from_the_admin_through_bob(
    duet: Duet, processes: Processes, tmp_path: Path
) -> None:
    """The admin DMs bob `qr alice` and `restart alice` (TOTP): bob's plugin → the receiver's
    POST /commands → the replies, sent by bob to the admin: alice's newest QR as a PNG, the
    restart argv run once its code is given. A stranger's command never reaches the receiver."""
    if duet.alice.logged_in():  # (only when run on its own)
        duet.logout_alice(REASON)
    duet.alice.scan(QR3)
    duet.until(lambda: duet.pending_qr("alice") == QR3, "alice's newest QR in the exporter")

    # qr: a caption and alice's newest QR, sent by bob to the admin
    before = len(duet.bob.sent())
    duet.bob.message(ADMIN["id"], "qr alice")
    caption, image = _replies(duet, before, 2)
    assert caption["type"] == "text" and image["type"] == "file", (caption, image)
    assert caption["text"].startswith("Scan the QR code below"), caption
    assert "alice's WeChat" in caption["text"] and "logged out" not in caption["text"]
    assert image["name"] == "alice-login-qr.png"
    assert decode_qr(base64.b64decode(image["base64"]), tmp_path) == QR3

    # restart: refused without a code, run with the authenticator's code
    before = len(duet.bob.sent())
    duet.bob.message(ADMIN["id"], "restart alice")
    [ask] = _replies(duet, before, 1)
    assert ask["text"] == "restart needs a code from your authenticator app: restart alice 123456"
    assert not duet.marker.exists()

    before = len(duet.bob.sent())
    duet.bob.message(ADMIN["id"], f"restart alice {pyotp.TOTP(duet.totp_secret).now()}")
    [done] = _replies(duet, before, 1)
    assert done["text"].startswith("restart alice: exit status 0 after"), done
    assert duet.marker.read_text() == "restarted\n"

    # a stranger's command never leaves bob's plugin: the receiver sees the admin's next only
    requests = _command_requests(duet)
    before = len(duet.bob.sent())
    duet.bob.message(MALLORY["id"], "restart alice")
    duet.bob.message(ADMIN["id"], "qr alice")  # the admin's next command is answered
    replies = _replies(duet, before, 2)
    assert decode_qr(base64.b64decode(replies[-1]["base64"]), tmp_path) == QR3
    assert not [s for s in duet.bob.sent()[before:] if s["to"] == MALLORY["id"]]
    assert _command_requests(duet) == {**requests, "200": requests.get("200", 0) + 1}
    assert duet.marker.read_text() == "restarted\n"


def _command_requests(duet: Duet) -> dict[str, float]:
    """The receiver's wechaty_receiver_command_requests_total, by code."""
    with urllib.request.urlopen(f"{duet.receiver_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        s.labels["code"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "wechaty_receiver_command_requests_total"
    }


def _unresponsive(duet: Duet) -> dict[str, str]:
    result = duet.prometheus.query('ALERTS{alertname="WechatyBotUnresponsive"}')
    return {r["metric"]["bot"]: r["metric"]["alertstate"] for r in result}


def test_unresponsive_fires_for_the_bot_probes_stop_reaching(
    duet: Duet, processes: Processes
) -> None:
    """alice logs back in (the resolved logout alert reaches the admin through bob); probes flow
    both ways; alice's stop reaching bob: WechatyBotUnresponsive fires for bob alone, both still
    logged in, routed to bob's peer; and resolves once they flow again."""
    was_out = bool(duet.alertmanager.alerts(alertname="WechatyBotLoggedOut", bot="alice"))
    before = len(duet.bob.sent())
    if not duet.alice.logged_in():
        duet.login_alice()
    duet.until(lambda: duet.bot("alice")["logged_in"] is True, "alice logged in")
    if was_out:  # (always, after the tests above) the resolved alert reaches the admin too
        duet.until(
            lambda: [
                s for s in duet.bob.sent()[before:]
                if s["to"] == ADMIN["id"] and "alice is back online" in s.get("text", "")
            ],
            "the back-online DM from bob",
        )  # fmt: skip
    prometheus = duet.prometheus

    # probes flow both ways: both gauges fresh in Prometheus, nothing unresponsive
    def flowing() -> bool:
        now = time.time()
        received = prometheus.values("wechaty_bot_probe_received_timestamp_seconds", "bot")
        sent = prometheus.values("wechaty_bot_probe_sent_timestamp_seconds", "peer")
        return (
            set(received) == set(sent) == {"alice", "bob"}
            and all(now - 3 < v <= now + 1 for v in (*received.values(), *sent.values()))
            and _unresponsive(duet) == {}
        )

    duet.until(flowing, "probes both ways in Prometheus", timeout=30)
    assert self_log(duet.bob.self_log, "probe")[-1]["from"] == "alice"
    assert self_log(duet.alice.self_log, "probe")[-1]["from"] == "bob"

    # alice's probes stop reaching bob; both still say they are logged in, alice keeps probing
    mark = duet.sinks.mark()
    duet.relay_alice_to_bob(False)
    cut = time.monotonic()
    duet.until(lambda: _unresponsive(duet) == {"bob": "firing"}, "unresponsive bob", timeout=30)
    assert time.monotonic() - cut >= 3, "fired before the window passed"
    assert prometheus.values("wechaty_bot_logged_in", "bot") == {"alice": 1.0, "bob": 1.0}
    sent_at = prometheus.values('wechaty_bot_probe_sent_timestamp_seconds{bot="alice"}', "peer")
    assert time.time() - sent_at["bob"] < 3, sent_at
    # routed by the real Alertmanager to the peer of bob (alice's receiver)
    notification = duet.sinks.wait_for(
        lambda n: bool(n.alerts("firing", "WechatyBotUnresponsive", bot="bob")),
        after=mark,
        timeout=30,
        what="WechatyBotUnresponsive for bob at peer-alice",
    )
    assert notification.receiver == "peer-alice"
    assert not [
        n
        for n in duet.sinks.since(mark)
        if n.alerts("firing", "WechatyBotUnresponsive", bot="alice")
    ]

    # probes reach bob again: resolved
    duet.relay_alice_to_bob(True)
    duet.until(lambda: _unresponsive(duet) == {}, "WechatyBotUnresponsive to resolve", timeout=30)


def test_a_chat_message_cannot_forge_a_self_log_line_in_the_console_log(
    duet: Duet, processes: Processes
) -> None:
    """Last in the module. The console log holds other lines, so a self-log line there is a
    suspect event (self_log_in_mixed_log), never a pending QR."""
    if not duet.alice.logged_in():
        duet.login_alice()
    duet.until(lambda: duet.bot("alice")["logged_in"] is True, "alice logged in")
    state = _state(duet)
    counted = ("wechaty_exporter_suspect_events_total", "wechaty_exporter_rejected_qr_total")

    def vetted() -> float:
        return sum(
            v for (name, labels), v in duet.metrics().items()
            if name in counted and ("bot", "alice") in labels
        )  # fmt: skip

    before = vetted()
    stamp = datetime.now().astimezone().isoformat(timespec="milliseconds")
    line = f'{stamp} INFO wechaty-exporter scan {{"status":2,"qrcode":"{PHISH}"}}'
    duet.alice.message(MALLORY["id"], f"hi\n{line}\nbye")
    console = duet.alice.console_log
    duet.until(
        lambda: line in console.read_text(errors="replace").splitlines(),
        "the forged self-log line in alice's console log",
    )
    # the exporter read it: it either vetted it (counted) or applied it (the state changed)
    duet.until(lambda: vetted() > before or _state(duet) != state, "the exporter to read the line")
    assert duet.pending_qr("alice") is None
    assert _state(duet) == state
    mixed = frozenset({("bot", "alice"), ("reason", "self_log_in_mixed_log")})
    assert duet.metrics()[("wechaty_exporter_suspect_events_total", mixed)] >= 1
