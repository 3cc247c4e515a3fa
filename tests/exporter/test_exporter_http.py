"""The exporter app over real files, through aiohttp's test client on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request
from prometheus_client.parser import text_string_to_metric_families
from tests.helpers import append, eventually

from wechaty_exporter.exporter.app import QR_TOKEN, create_exporter_app, qr_access
from wechaty_exporter.exporter.monitor import Monitor
from wechaty_exporter.exporter.settings import ExporterSettings

QR = "https://login.weixin.qq.com/l/Ib7RyoVDcw=="
WRAPPED = "https://wechaty.js.org/qrcode/https%3A%2F%2Flogin.weixin.qq.com%2Fl%2FIb7RyoVDcw%3D%3D"


def settings(tmp_path: Path, **bots: list[Path]) -> ExporterSettings:
    return ExporterSettings(
        bots=tuple((b, tuple(str(p) for p in paths)) for b, paths in bots.items()),
        state_dir=tmp_path / "state",
        poll_interval=0.2,
    )


@pytest.fixture
async def duet(tmp_path: Path, aiohttp_client: Any) -> tuple[TestClient, Path, Path]:
    alice, bob = tmp_path / "alice.log", tmp_path / "bob.log"
    append(alice, "09:00:00 INFO StarterBot Contact<Alice> login")
    monitor = Monitor(settings(tmp_path, alice=[alice], bob=[bob]))
    client = await aiohttp_client(create_exporter_app(monitor))
    await eventually(lambda: _ready(client))
    return client, alice, bob


async def _ready(client: TestClient) -> bool:
    return (await client.get("/-/ready")).status == 200


async def bots(client: TestClient) -> dict[str, dict[str, Any]]:
    body = await (await client.get("/api/v1/bots")).json()
    return {b["bot"]: b for b in body["bots"]}


async def test_api_follows_the_logs(duet: tuple[TestClient, Path, Path]) -> None:
    client, _, bob = duet
    state = await bots(client)
    assert state["alice"]["logged_in"] is True and state["alice"]["user"] == "Alice"
    assert state["bob"]["logged_in"] is None  # missing file: unknown, never "logged out"
    assert state["bob"]["log_files"] == [{"path": str(bob), "present": False}]

    append(bob, "10:00:00 INFO StarterBot Contact<Bob> logout",
           f"10:00:01 INFO StarterBot onScan: Waiting(2) - {WRAPPED}")  # fmt: skip

    async def bob_pending() -> dict[str, Any] | None:
        b = (await bots(client))["bob"]
        return b if b["qr_pending"] else None

    b = await eventually(bob_pending)
    assert b["logged_in"] is False and b["logouts_total"] == 1
    assert b["qr_codes_total"] == 1 and b["qr_seen_at"].endswith("+00:00")
    assert b["log_files"][0]["present"] is True

    resp = await client.get("/api/v1/bots/bob/qr")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    doc = await resp.json()
    assert doc["bot"] == "bob" and doc["qrcode"] == QR and doc["status"] == "Waiting"

    png = await client.get("/api/v1/bots/bob/qr.png")
    assert png.content_type == "image/png"
    assert await zbar(await png.read()) == QR

    assert (await client.get("/api/v1/bots/alice/qr")).status == 404
    assert (await client.get("/api/v1/bots/nobody/qr")).status == 404

    page = await (await client.get("/")).text()
    assert "bob" in page and "logged out" in page and "data:image/svg+xml" in page


async def zbar(png: bytes) -> str:
    proc = await asyncio.create_subprocess_exec(
        "zbarimg", "--raw", "-q", "-", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate(png)
    assert proc.returncode == 0
    return out.decode().strip()


async def test_metrics_exposition(duet: tuple[TestClient, Path, Path]) -> None:
    client, _, bob = duet
    append(bob, "2026-11-25 10:00:00,000 - Wechaty - ERROR - stream broke")
    await eventually(lambda: _errors(client))
    text = await (await client.get("/metrics")).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert samples[("wechaty_bot_logged_in", (("bot", "alice"),))] == 1
    assert ("wechaty_bot_logged_in", (("bot", "bob"),)) not in samples
    assert samples[("wechaty_log_errors_total", (("bot", "bob"),))] == 1
    assert samples[("wechaty_log_file_present", (("bot", "bob"), ("path", str(bob))))] == 1


async def _errors(client: TestClient) -> bool:
    return 'wechaty_log_errors_total{bot="bob"} 1.0' in await (await client.get("/metrics")).text()


async def test_qr_is_refused_behind_a_proxy(duet: tuple[TestClient, Path, Path]) -> None:
    client, _, bob = duet
    append(bob, f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}")
    await eventually(lambda: _has_qr(client))
    resp = await client.get("/api/v1/bots/bob/qr", headers={"X-Forwarded-For": "203.0.113.9"})
    assert resp.status == 403 and "loopback" in (await resp.json())["error"]
    page = await (await client.get("/", headers={"Forwarded": "for=203.0.113.9"})).text()
    assert "data:image" not in page and "pending" in page


async def _has_qr(client: TestClient) -> bool:
    return (await client.get("/api/v1/bots/bob/qr")).status == 200


@pytest.mark.parametrize(
    ("token", "remote", "header", "allowed"),
    [
        ("", "127.0.0.1", None, None),
        ("", "::1", None, None),
        ("", "203.0.113.9", None, "loopback clients only"),
        ("s3cret", "203.0.113.9", None, "a bearer token is required"),
        ("s3cret", "203.0.113.9", "Bearer s3cret", None),
        ("s3cret", "203.0.113.9", "Bearer wrong", "wrong bearer token"),
        ("s3cret", "127.0.0.1", "Bearer wrong", "wrong bearer token"),
    ],
)
def test_qr_access(token: str, remote: str, header: str | None, allowed: str | None) -> None:
    app = create_exporter_app(Monitor(ExporterSettings()), qr_token=token)
    headers = {"Authorization": header} if header else {}
    request = make_mocked_request("GET", "/api/v1/bots/bob/qr", headers=headers, app=app)
    request = request.clone(remote=remote)
    assert app[QR_TOKEN] == token
    reason = qr_access(request)
    assert reason == allowed if allowed is None else allowed in (reason or "")


async def test_token_gets_401_not_403(tmp_path: Path, aiohttp_client: Any) -> None:
    bob = tmp_path / "bob.log"
    append(bob, f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}")
    monitor = Monitor(settings(tmp_path, bob=[bob]))
    client = await aiohttp_client(create_exporter_app(monitor, qr_token="t0k"))
    await eventually(lambda: _ready(client))
    resp = await client.get("/api/v1/bots/bob/qr", headers={"Authorization": "Bearer nope"})
    assert resp.status == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    ok = await client.get(
        "/api/v1/bots/bob/qr", headers={"Authorization": "Bearer t0k", "X-Forwarded-For": "x"}
    )
    assert ok.status == 200


async def test_health(duet: tuple[TestClient, Path, Path]) -> None:
    client, _, _ = duet
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/-/ready")).status == 200


async def test_metrics_are_text_format_and_gzip(duet: tuple[TestClient, Path, Path]) -> None:
    client, _, _ = duet
    resp = await client.get(
        "/metrics",
        headers={
            "Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5",
            "Accept-Encoding": "gzip",
        },
    )
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert resp.headers["Content-Encoding"] == "gzip"
    assert "wechaty_exporter_build_info" in await resp.text()


async def test_self_log_qr_source(tmp_path: Path, aiohttp_client: Any) -> None:
    """`bots.bob.qr_source: self-log`: a scan line in brolog, even with a genuine WeChat URL,
    is rejected; the scan of the self-log (a file of its own) is taken."""
    from wechaty_exporter.logs.dialects.selflog import format_self_log

    bob, self_log = tmp_path / "bob.log", tmp_path / "bob.self.log"
    monitor = Monitor(
        ExporterSettings(
            bots=(("bob", (str(bob), str(self_log))),),
            poll_interval=0.2,
            self_log_qr_bots=frozenset({"bob"}),
        )
    )
    client = await aiohttp_client(create_exporter_app(monitor))
    await eventually(lambda: _ready(client))
    append(bob, f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}")
    await eventually(lambda: _rejected(client, 1))
    assert (await client.get("/api/v1/bots/bob/qr")).status == 404
    append(bob, format_self_log("scan", {"status": 2, "qrcode": QR}, 1_800_000_000.0))
    await eventually(lambda: _suspect(client, "self_log_in_mixed_log"))  # in bob.log: forgeable
    assert (await client.get("/api/v1/bots/bob/qr")).status == 404
    append(self_log, format_self_log("scan", {"status": 2, "qrcode": QR}, 1_800_000_000.0))
    await eventually(lambda: _has_qr(client))


async def _suspect(client: TestClient, reason: str) -> bool:
    text = await (await client.get("/metrics")).text()
    return f'wechaty_exporter_suspect_events_total{{bot="bob",reason="{reason}"}} 1.0' in text


async def _rejected(client: TestClient, n: int) -> bool:
    text = await (await client.get("/metrics")).text()
    return f'wechaty_exporter_rejected_qr_total{{bot="bob"}} {n}.0' in text
