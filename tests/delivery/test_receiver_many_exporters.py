"""One receiver, bots on many hosts (`receiver.exporters`): each bot's QR comes from the exporter
that watches it. Two real `wechaty-exporter serve` processes (alice's with a QR token), each
tailing its own bot's log, and the real `wechaty-exporter receiver` process writing an outbox; the
chat commands ask the same per-bot exporters. The PNGs are decoded the way a phone would."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from tests.chatops.kit import ADA, make_ctx, texts
from tests.delivery.kit import (
    QR_BOB,
    SRC,
    FakeExporter,
    MakeRig,
    Process,
    base_settings,
    decode_qr,
    payload,
    payload_about,
)
from tests.helpers import append, eventually

from wechaty_exporter.chatops.commands import handle_message
from wechaty_exporter.delivery.exporter_client import ExporterError, Exporters
from wechaty_exporter.delivery.messengers.outbox import read_outbox
from wechaty_exporter.delivery.settings import (
    ExporterTarget,
    ReceiverSettings,
    parse_receiver_settings,
)

ADMINS = {"alice": ["wxid_ada"], "bob": ["wxid_bo"]}


def scan_line(qr: str) -> str:
    return f"10:00:00 INFO StarterBot onScan: Waiting(2) - {qr}"


@dataclass
class Hosts:
    """Exporter A watches alice (QR token required off loopback), exporter B watches bob."""

    a: Process
    b: Process
    token_file: Path
    qr: dict[str, str]
    tmp_path: Path

    def receiver_section(self, token_file: Path | None = None) -> dict[str, Any]:
        return {
            "qr_wait": "1s",
            "qr_poll_interval": "200ms",
            "exporters": {
                "alice": {"url": self.a.url, "token_file": str(token_file or self.token_file)},
                "bob": {"url": self.b.url},
            },
            "admins": ADMINS,
        }

    def config(self, section: dict[str, Any], name: str = "config.yml") -> Path:
        path = self.tmp_path / name
        path.write_text(yaml.safe_dump({"receiver": section}))
        return path


def secret_file(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def hosts(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Hosts]:
    token_file = secret_file(tmp_path / "alice-qr-token", secrets.token_urlsafe(24))
    logs = {bot: tmp_path / f"{bot}.log" for bot in ("alice", "bob")}
    for log in logs.values():
        log.write_text("")
    a = Process(
        tmp_path, "exporter-a", "serve", "--log", f"alice={logs['alice']}",
        "--web.qr-token-file", str(token_file),
    )  # fmt: skip
    b = Process(tmp_path, "exporter-b", "serve", "--log", f"bob={logs['bob']}")
    qr = {bot: f"https://login.weixin.qq.com/l/{secrets.token_hex(6)}" for bot in logs}
    await a.start(session)
    try:
        await b.start(session)
        try:
            for bot, exporter in (("alice", a), ("bob", b)):
                append(logs[bot], scan_line(qr[bot]))
                url = f"{exporter.url}/api/v1/bots/{bot}/qr"

                async def pending(url: str = url) -> bool:
                    async with session.get(url) as resp:  # from loopback: no token needed
                        return resp.status == 200

                await eventually(pending, within=15, interval=0.05)
            yield Hosts(a, b, token_file, qr, tmp_path)
        finally:
            await b.stop()
    finally:
        await a.stop()


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    async with session.post(url + "/alerts", data=body, headers=headers) as resp:
        return resp.status, await resp.json()


def _by_contact(outbox: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for record in read_outbox(outbox):
        out.setdefault(record["to"], []).append(record)
    return out


async def test_each_admin_gets_the_qr_from_the_exporter_that_watches_the_bot(
    hosts: Hosts, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.jsonl"
    config = hosts.config(hosts.receiver_section())
    receiver = Process(
        tmp_path, "receiver", "receiver", "--config", str(config), "--outbox", str(outbox),
        "--state-dir", str(tmp_path / "receiver-state"),
    )  # fmt: skip
    await receiver.start(session)
    try:
        for bot in ("alice", "bob"):
            status, doc = await _post(session, receiver.url, payload_about("firing", bot))
            assert status == 200, doc
            assert doc["alerts"][0]["outcome"] == "delivered"
    finally:
        assert await receiver.stop() == 0
    sent = _by_contact(outbox)
    assert sorted(sent) == ["wxid_ada", "wxid_bo"]
    for contact, bot in (("wxid_ada", "alice"), ("wxid_bo", "bob")):
        text, image = sent[contact]
        assert (text["bot"], image["bot"]) == (bot, bot)
        # The config sets no language: Chinese, the default.
        assert text["text"].startswith(f"{bot} 已退出微信登录")
        assert f"请用 {bot} 的微信扫描下方二维码重新登录（二维码显示于 " in text["text"]
        assert decode_qr(base64.b64decode(image["png_base64"]), tmp_path) == hosts.qr[bot]
    started = receiver.output.read_text()
    assert f"alice: {hosts.a.url}, bob: {hosts.b.url}" in started
    assert "alice-qr-token" not in started


async def test_the_token_file_is_what_the_receiver_shows_alices_exporter(
    hosts: Hosts, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """From loopback the exporter serves QRs without a token, but refuses a wrong one: so this
    proves the receiver sends alice's token_file to alice's exporter (and bob needs none)."""
    wrong = secret_file(tmp_path / "wrong-token", "not-" + hosts.token_file.read_text().strip())
    outbox = tmp_path / "outbox.jsonl"
    config = hosts.config(hosts.receiver_section(token_file=wrong))
    receiver = Process(
        tmp_path, "receiver", "receiver", "--config", str(config), "--outbox", str(outbox),
    )  # fmt: skip
    await receiver.start(session)
    try:
        status, _ = await _post(session, receiver.url, payload_about("firing", "alice"))
        assert status == 503  # Alertmanager retries: the QR is still owed
        status, _ = await _post(session, receiver.url, payload_about("firing", "bob"))
        assert status == 200
    finally:
        assert await receiver.stop() == 0
    sent = _by_contact(outbox)
    [intro] = sent["wxid_ada"]
    assert f"GET {hosts.a.url}/api/v1/bots/alice/qr: HTTP 401" in intro["text"]
    image = sent["wxid_bo"][1]
    assert decode_qr(base64.b64decode(image["png_base64"]), tmp_path) == hosts.qr["bob"]


async def test_chat_commands_ask_each_bots_own_exporter(hosts: Hosts, tmp_path: Path) -> None:
    errors: list[str] = []
    settings = parse_receiver_settings(hosts.receiver_section(), errors)
    assert errors == []
    assert settings is not None
    exporters = Exporters(settings, timeout=2)
    try:
        ctx, _ = make_ctx(exporter=exporters)
        for bot in ("alice", "bob"):
            replies = await handle_message(ctx, ADA, f"qr {bot}", time.time())
            assert [r.kind for r in replies] == ["text", "image"]
            assert decode_qr(replies[1].png, tmp_path) == hosts.qr[bot]
        reply = texts(await handle_message(ctx, ADA, "qr", time.time()))
        assert reply == "Several bots wait for a scan; send one of: qr alice, qr bob"
        status = texts(await handle_message(ctx, ADA, "status", time.time())).splitlines()
        assert [line.split(":")[0] for line in status if not line.startswith(" ")] == [
            "alice",
            "bob",
        ]
        assert sum("QR waiting since" in line for line in status) == 2

        await hosts.b.stop()  # bob's host is down: alice is still reported
        status = texts(await handle_message(ctx, ADA, "status", time.time())).splitlines()
        assert status[0].startswith("alice: ")
        assert "QR waiting since" in status[1]
        assert status[2].startswith(
            f"bob: its exporter could not be asked (GET {hosts.b.url}/api/v1/bots: "
        )
        replies = await handle_message(ctx, ADA, "qr alice", time.time())
        assert decode_qr(replies[1].png, tmp_path) == hosts.qr["alice"]
        reply = texts(await handle_message(ctx, ADA, "qr bob", time.time()))
        assert reply.startswith(f"qr bob: failed: GET {hosts.b.url}/api/v1/bots/bob/qr: ")

        await hosts.a.stop()  # no exporter answers: `status` fails as with one exporter
        reply = texts(await handle_message(ctx, ADA, "status", time.time()))
        assert reply.startswith(f"status: failed: GET {hosts.a.url}/api/v1/bots: ")
        assert f"; GET {hosts.b.url}/api/v1/bots: " in reply
    finally:
        await exporters.close()


async def test_one_client_per_distinct_exporter_and_none_for_an_unknown_bot() -> None:
    a = ExporterTarget("http://10.0.0.5:9839", token="t-a")
    b = ExporterTarget("http://10.0.0.6:9839")
    routed = (("alice", a), ("bob", b), ("carol", ExporterTarget(b.url)))
    with_default = ReceiverSettings(
        exporter_url=a.url, exporter_url_set=True, exporter_token="t-a", exporters=routed
    )
    exporters = Exporters(with_default)
    try:
        assert [c.base_url for c in exporters.clients] == [a.url, b.url]
        assert exporters.client_for("carol") is exporters.client_for("bob")
        assert exporters.client_for("zed") is exporters.client_for("alice")  # the default
    finally:
        await exporters.close()

    without_default = ReceiverSettings(exporters=routed)
    exporters = Exporters(without_default)
    try:
        assert len(exporters.clients) == 2
        assert exporters.client_for("zed") is None
        with pytest.raises(ExporterError, match="no exporter is configured for zed"):
            await exporters.pending_qr("zed")
    finally:
        await exporters.close()


async def test_a_bot_only_the_fallback_admins_hear_of_has_no_exporter(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    """No default exporter: bob's QR comes from his; zed, in neither `admins` nor `exporters`,
    gets the alert text saying why there is no QR, and 503 (Alertmanager retries)."""
    exporter.qrs["bob"] = QR_BOB
    settings = base_settings(
        exporter.url,
        exporter_url_set=False,
        exporters=(("bob", ExporterTarget(exporter.url)),),
        admins=(("bob", ("wxid_admin",)),),
        fallback_admins=("wxid_ops",),
    )
    assert settings.default_exporter is None
    rig = await make_rig(settings)
    assert (await rig.post(payload("firing")))[0] == 200
    status, doc = await rig.post(payload_about("firing", "zed"))
    assert status == 503, doc
    (bob_text, bob_qr), [zed_text] = _split(rig.sent(), "wxid_admin", "wxid_ops")
    assert decode_qr(base64.b64decode(bob_qr["png_base64"]), tmp_path) == QR_BOB
    assert bob_text["bot"] == "bob"
    assert zed_text["text"].startswith("zed is logged out")
    assert "no exporter is configured for zed" in zed_text["text"]
    assert "zed" not in exporter.polls  # nobody was asked about zed
    assert rig.metric("wechaty_receiver_exporter_errors_total") > 0


def _split(records: list[dict[str, Any]], *contacts: str) -> list[list[dict[str, Any]]]:
    return [[r for r in records if r["to"] == contact] for contact in contacts]


def _receiver_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "wechaty_exporter", "receiver", *args]
    argv += ["--outbox", str(tmp_path / "outbox.jsonl"), "--web.listen-address", "127.0.0.1:0"]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=False)


ONLY_ALICE = {"alice": {"url": "http://10.0.0.5:9839"}}


@pytest.mark.parametrize(
    ("section", "flags", "problem"),
    [
        # the file: bob has admins, only alice has an exporter, no default exporter_url
        (
            {"exporters": ONLY_ALICE, "admins": ADMINS},
            [],
            "receiver.exporters: bot 'bob' has admins but no exporter to fetch its QR from;"
            " add bob to receiver.exporters or set receiver.exporter_url",
        ),
        # the flags: --admin adds carol, whom `exporters` does not know
        (
            {"exporters": ONLY_ALICE, "admins": {"alice": ["wxid_ada"]}},
            ["--admin", "carol=wxid_c"],
            "no exporter for bot 'carol': add it to receiver.exporters or give --exporter-url",
        ),
    ],
    ids=["file", "admin-flag"],
)
def test_a_bot_without_an_exporter_stops_the_receiver_at_start(
    tmp_path: Path, section: dict[str, Any], flags: list[str], problem: str
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"receiver": section}))
    done = _receiver_cli(tmp_path, "--config", str(config), *flags)
    assert done.returncode == 2, done.stderr
    assert problem in done.stderr
    assert "1 problem(s)" in done.stderr
    assert not (tmp_path / "outbox.jsonl").exists()
