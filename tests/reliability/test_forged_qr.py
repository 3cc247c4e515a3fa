"""Forged login QRs never reach an admin: end to end, `wechaty-exporter serve` tailing a log into
which chat messages with embedded newlines forge scan lines, and `wechaty-exporter receiver`
(outbox messenger) asked to rescue the bot.

A chat message is logged with its text as is, so "hi\\n10:00:01 INFO StarterBot onScan: ..."
puts a line into the log that looks exactly like the bot's own. Each forgery below is written
the way a logger writes such a message: one write() of the chat line, the newline and the forged
line(s). Every one must be rejected by the QR allowlist (counted in
wechaty_exporter_rejected_qr_total), leave the genuine pending QR in place, and never appear in
anything the receiver sends.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.integration.harness import Processes, token_file
from tests.reliability.conftest import Figures
from tests.reliability.kit import Effect, ExporterProcess, Observed, Truth, caught_up, explain
from tests.reliability.stack import ReceiverProcess

from wechaty_exporter.delivery.messengers.outbox import read_outbox
from wechaty_exporter.logs.replay import replay_file
from wechaty_exporter.logs.state import BotState

GENUINE = "https://login.weixin.qq.com/l/genuine0001"
CHAT = "10:00:00 INFO StarterBot Message#Text[🗣Contact<Mallory>]\thello"
PY = "2026-11-25 10:00:01,000 - Wechaty - INFO - receive <scan> event "
EVIL = [
    "https://evil.example/l/1",
    "https://login.weixin.qq.com.evil.example/l/2",
    "https://login.weixin.qq.com@evil.example/l/3",
    "https://evil.example\\@login.weixin.qq.com/l/4",
    "https://evil.example/?u=https://login.weixin.qq.com/l/5",
    "https://wechaty.js.org/qrcode/https%3A%2F%2Fevil.example%2Fl%2F6",
    "https://api.qrserver.com/v1/create-qr-code/?data=https%3A%2F%2Fevil.example%2Fl%2F7",
    "https://login.weixin.qq.cοm/l/8",  # a Greek omicron
    "https://login%2eweixin.qq.com.evil.example/l/9",
    "javascript://login.weixin.qq.com/%0aalert(10)",
    "http://127.0.0.1/l/11",
    "https://evilweixin.qq.com/l/12",
    "https://xn--weixin-qq-com.evil.example/l/13",
    "https://login.weixin.qq.com:443@evil.example/l/14",
    "https://login.weixin.qq.com /l/15 https://evil.example",
]
MARKERS = ["evil", "127.0.0.1", "javascript", "cοm", "xn--", "%2e"]  # in no message, ever


def forgeries() -> list[str]:
    """Chat text that forges scan lines, in every dialect and wrapper the exporter reads."""
    out = []
    for i, qr in enumerate(EVIL):
        dialect = i % 7
        if dialect == 0:
            forged = f"10:00:01 INFO StarterBot onScan: Waiting(2) - {qr}"
        elif dialect == 1:
            forged = f"10:00:01 INFO WechatyPluginContrib EventLogger scan: {qr},2,"
        elif dialect == 2:
            forged = (
                "10:00:01 INFO WechatyPluginContrib QRCodeTerminal Login QR Code Status: "
                f"Waiting(2)\nQR Code Image URL: {qr}"
            )
        elif dialect == 3:
            forged = PY + f"<EventScanPayload(status=<ScanStatus.Waiting: 2>, qrcode={qr!r})>"
        elif dialect == 4:
            body = json.dumps({"status": 2, "qrcode": qr}, separators=(",", ":"))
            forged = f"2026-11-25T10:00:01.000+08:00 INFO wechaty-exporter scan {body}"
        elif dialect == 5:
            forged = f"0|bob  | 2026-11-25T02:00:01.5Z 10:00:01 INFO X onScan: Waiting(2) - {qr}"
        else:
            forged = f"\x1b[32m10:00:01 INFO StarterBot onScan: Waiting(2) - {qr}\x1b[0m\r"
        out.append(f"{CHAT}\n{forged}")
    # pm2 JSON: one line whose message holds the chat text and the forged line.
    message = f"{CHAT}\n10:00:01 INFO StarterBot onScan: Waiting(2) - https://evil.example/l/16\n"
    pm2 = {"message": message, "timestamp": "2026-11-25T02:00:01.000Z", "app_name": "bob",
           "process_id": 0}  # fmt: skip
    out.append(json.dumps(pm2, ensure_ascii=False))
    # U+2028 is no line break for the tailer: this stays one chat line, no event at all.
    out.append(
        f"{CHAT}\u202810:00:01 INFO StarterBot onScan: Waiting(2) - https://evil.example/l/17"
    )
    return out


def alert(fingerprint: str) -> bytes:
    doc = {
        "version": "4", "status": "firing", "receiver": "peer-alice", "groupKey": fingerprint,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "WechatyBotLoggedOut", "bot": "bob", "severity": "critical"},
            "annotations": {"summary": "bob is logged out"},
            "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": fingerprint,
        }],
    }  # fmt: skip
    return json.dumps(doc).encode()


def post(url: str, body: bytes, token: str) -> int:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def decode_qr(png: bytes, tmp_path: Path) -> str:
    path = tmp_path / "qr.png"
    path.write_bytes(png)
    done = subprocess.run(
        ["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def processes(tmp_path: Path) -> Any:
    (tmp_path / "process-logs").mkdir()
    registry = Processes(tmp_path / "process-logs")
    yield registry
    registry.stop_all()


def test_forged_qr_lines_never_reach_an_admin(
    tmp_path: Path, processes: Processes, figures: Figures
) -> None:
    log = tmp_path / "bob.log"
    log.write_text("")
    exporter = ExporterProcess(tmp_path, [("bob", log)]).start()
    token_path, token = token_file(tmp_path)
    outbox = tmp_path / "outbox.jsonl"
    receiver = ReceiverProcess(
        tmp_path,
        {
            "language": "en",
            "exporter_url": exporter.url,
            "admins": {"bob": ["wxid_admin"]},
            "auth": {"bearer_token_file": str(token_path)},
            "qr_wait": "1s",
            "qr_poll_interval": "200ms",
            "rate_limit": {"burst": 100, "per_hour": 100000, "max_hold": "0s"},
            "messenger": {"type": "outbox", "path": str(outbox)},
        },
        tmp_path / "receiver-state",
    )
    try:
        receiver.start(processes)

        def write(*chunks: str) -> None:
            with log.open("a", encoding="utf-8") as f:
                for chunk in chunks:
                    f.write(chunk + "\n")
                    f.flush()  # one write() per chat message, as a logger does

        forged = forgeries()
        truth = Truth()  # the oracle: what the lines written say, recorded as they are written

        def forge() -> None:
            write(*forged)
            for chunk in forged:  # chat, and a forged scan in its line(s): one rejected QR
                truth.see(Effect("chat"), lines=chunk.count("\n") + 1)
                if "\u2028" not in chunk:  # U+2028 is no line break: that one is chat only
                    truth.see(Effect("rejected"), lines=0)

        # Round 1: a genuine QR is pending, then the forgeries arrive.
        write(
            "09:00:00 INFO StarterBot Contact<Bob> login",
            "10:00:00 INFO StarterBot Contact<Bob> logout",
            f"10:00:00 INFO StarterBot onScan: Waiting(2) - {GENUINE}",
        )
        truth.see(Effect("login", user="Bob"))
        truth.see(Effect("logout"))
        truth.see(Effect("waiting", GENUINE))
        forge()
        exporter.wait(lambda: caught_up(exporter, truth.lines), "every line read")
        assert exporter.qr("bob") == GENUINE
        assert post(f"{receiver.url}/alerts", alert(secrets.token_hex(8)), token) == 200
        # Round 2: back in, then the same forgeries: no QR is pending, none may become one.
        write("10:10:00 INFO StarterBot Contact<Bob> login")
        truth.see(Effect("login", user="Bob"))
        forge()
        exporter.wait(lambda: caught_up(exporter, truth.lines), "every line read again")
        assert exporter.qr("bob") is None
        began = time.monotonic()
        assert post(f"{receiver.url}/alerts", alert(secrets.token_hex(8)), token) == 200
        waited = time.monotonic() - began

        got, want = Observed.of_exporter(exporter, "bob"), truth.observed()
        if got != want:
            state = BotState()
            replay_file(state, str(log))
            raise AssertionError(explain(got, want, Observed.of_state(state)))
        rejected = len(EVIL) + 1  # every forgery but the U+2028 one, which is not a line
        assert got.rejected == 2 * rejected
        assert got.qr_codes == 1

        sent = read_outbox(outbox)
        images = [r for r in sent if r["type"] == "image"]
        assert len(images) == 1, "one image: the genuine QR of round 1"
        assert decode_qr(base64.b64decode(images[0]["png_base64"]), tmp_path) == GENUINE
        texts = [r["text"] for r in sent if r["type"] == "text"]
        assert len(texts) == 3  # round 1: intro; round 2: "no QR yet", "still no QR"
        assert "No login QR yet" in texts[1] and "Still no login QR" in texts[2]
        for record in sent:
            blob = json.dumps(record, ensure_ascii=False)
            assert not [m for m in MARKERS if m in blob], record
        figures(
            f"{len(forged)} forging chat messages x 2 rounds ({len(EVIL) + 1} forged scan "
            f"lines each, 7 dialects/wrappers + pm2 JSON): {got.rejected} rejected, 0 accepted; "
            f"the admin got {len(images)} QR (the genuine one) and {len(texts)} texts, none "
            f"naming a forged URL; round 2 answered after {waited:.1f} s (qr_wait 1 s)",
            messages=len(forged),
            forged_lines=len(EVIL) + 1,
            rejected=got.rejected,
            images=len(images),
            texts=len(texts),
            round2_seconds=waited,
        )
    finally:
        exporter.stop()
