"""Attacks on the receiver's defaults and on the text it sends, each against the real parts.

- A receiver listening beyond loopback without `auth` would let anyone who reaches it have the
  admins sent whatever they post: it refuses to start (the real `wechaty-exporter receiver` and
  `bot` processes), naming what to set; with a bearer token, or basic auth from
  `--web.config.file`, it serves.
- A `bot` label that is no bot name (bidi controls, 20,000 characters, a path, a newline) is
  answered 400 before anything is fetched or sent.
- Annotations are whatever was posted to Alertmanager: in the admin's DM they are quoted ("> "),
  one line each, bounded, their links inert, so "URGENT: WeChat security check, scan
  https://evil.example/verify now" cannot pass for the receiver's own instructions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from tests.delivery.kit import SRC, FakeExporter, MakeRig, base_settings, payload_doc
from tests.helpers import eventually, free_port

from wechaty_exporter.delivery.chattext import MAX_QUOTED_CHARS, defang, quoted_text
from wechaty_exporter.delivery.guard_settings import AuthSettings
from wechaty_exporter.delivery.settings import ReceiverSettings, open_listen_problem
from wechaty_exporter.delivery.templates import LANGUAGES

PHISH = "URGENT: WeChat security check, scan https://evil.example/verify now"
LINK = re.compile(r"(?i)https?://|evil\.example|www\.")
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


# --- listening beyond loopback needs auth -------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **extra,
    }


def _run(*args: str, timeout: float = 15, **env: str) -> subprocess.CompletedProcess[str]:
    """`wechaty-exporter ARGS` to its end; a server that starts instead fails the test."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "wechaty_exporter", *args],
            capture_output=True, text=True, env=_env(**env), timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # it started and served: the attack surface
        raise AssertionError(f"it started: {' '.join(args)}") from exc


def _refused(done: subprocess.CompletedProcess[str], address: str, where: str) -> None:
    assert done.returncode == 2, done.stderr
    assert f"{where}.listen_address {address} is reachable from other hosts" in done.stderr
    assert f"Set {where}.auth (bearer_token_file: FILE" in done.stderr
    assert "or listen on loopback (127.0.0.1:PORT)" in done.stderr


def test_the_receiver_refuses_to_listen_on_every_interface_without_auth(tmp_path: Path) -> None:
    port = free_port()
    done = _run(
        "receiver", "--web.listen-address", f"0.0.0.0:{port}", "--admin", "bob=wxid_admin",
        "--outbox", str(tmp_path / "outbox.jsonl"),
    )  # fmt: skip
    _refused(done, f"0.0.0.0:{port}", "receiver")
    assert not (tmp_path / "outbox.jsonl").exists()


def test_from_its_config_file_too(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yml"
    section = {"listen_address": f":{port}", "admins": {"bob": ["wxid_admin"]}}
    config.write_text(json.dumps({"receiver": section}) + "\n")  # JSON is YAML
    done = _run("receiver", "--config", str(config), "--state-dir", str(tmp_path / "state"))
    _refused(done, f"0.0.0.0:{port}", "receiver")


def test_the_peer_bot_refuses_too(tmp_path: Path) -> None:
    """Its receiver is checked before the bot connects: no puppet service is needed to see it."""
    port = free_port()
    done = _run(
        "bot", "--web.listen-address", f"[::]:{port}", "--admin", "bob=wxid_admin",
        "--state-dir", str(tmp_path / "state"),
        WECHATY_PUPPET_SERVICE_ENDPOINT=f"127.0.0.1:{free_port()}",
        WECHATY_PUPPET_SERVICE_TOKEN="test-token",
    )  # fmt: skip
    _refused(done, f"[::]:{port}", "receiver")


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.10", True),
        ("wechaty-bob", True),  # a name may resolve to any address
        ("127.0.0.1", False),
        ("127.0.0.53", False),
        ("::1", False),
        ("localhost", False),
    ],
)
def test_which_hosts_need_auth(host: str, refused: bool) -> None:
    settings = ReceiverSettings(listen_host=host)
    assert (open_listen_problem(settings) is not None) is refused
    guarded = ReceiverSettings(listen_host=host, auth=AuthSettings("bearer", "s3cret"))
    assert open_listen_problem(guarded) is None


@contextlib.asynccontextmanager
async def _serving(args: list[str], port: int, tmp_path: Path) -> AsyncIterator[None]:
    """`wechaty-exporter ARGS` serving (its /healthz answers on 127.0.0.1:`port`) until the end."""
    output = tmp_path / f"server-{port}.out"
    with output.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wechaty_exporter", *args, stdout=out, stderr=out, env=_env()
        )
    try:
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                assert proc.returncode is None, output.read_text()
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(up, within=15, interval=0.05)
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def _post_alert(port: int, **headers: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{port}/alerts",
            data=json.dumps(payload_doc("no_rescuer_firing")),
            headers={"Content-Type": "application/json", **headers},
        ) as resp,
    ):
        return resp.status


async def test_with_auth_it_serves_beyond_loopback(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    port = free_port()
    config = tmp_path / "config.yml"
    section = {
        "listen_address": f"0.0.0.0:{port}",
        "auth": {"bearer_token_file": str(token)},
        "fallback_admins": ["wxid_admin"],
    }
    config.write_text(json.dumps({"receiver": section}) + "\n")
    args = ["receiver", "--config", str(config), "--outbox", str(tmp_path / "outbox.jsonl")]
    async with _serving(args, port, tmp_path):
        assert await _post_alert(port) == 401
        assert await _post_alert(port, Authorization="Bearer s3cret-token") == 200


async def test_basic_auth_from_the_web_config_file_guards_it_too(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(b"am-password", bcrypt.gensalt(rounds=4)).decode()
    web.write_text(json.dumps({"basic_auth_users": {"am": hashed}}) + "\n")
    port = free_port()
    args = [
        "receiver", "--web.listen-address", f"0.0.0.0:{port}", "--web.config.file", str(web),
        "--admin", "bob=wxid_admin", "--outbox", str(tmp_path / "outbox.jsonl"),
    ]  # fmt: skip
    async with _serving(args, port, tmp_path):
        assert await _post_alert(port) == 401
        basic = "Basic " + base64.b64encode(b"am:am-password").decode()
        assert await _post_alert(port, Authorization=basic) == 200


# --- the bot label is a bot name ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bot",
    [
        "bob\u202egnp.exe",  # bidi: reads as "bobexe.png"
        "b" * 20_000,
        "../../api/v1/bots",
        "bob\n",
        "bob carol",
        "-bob",
    ],
)
async def test_a_bot_label_that_is_no_bot_name_is_400(
    make_rig: MakeRig, exporter: FakeExporter, bot: str
) -> None:
    rig = await make_rig()
    doc = payload_doc("firing")
    doc["alerts"][0]["labels"]["bot"] = bot
    status, reply = await rig.post(json.dumps(doc))
    assert status == 400
    assert reply["error"].startswith("alerts[0].labels.bot: not a bot name")
    assert len(reply["error"]) < 300  # the label is not echoed whole
    assert exporter.polls == {}
    assert not rig.outbox.exists() or rig.sent() == []


# --- annotations are quoted alert text ----------------------------------------------------------


def _stale_alert(annotations: dict[str, str], name: str = "WechatyLogStale") -> str:
    doc: dict[str, Any] = payload_doc("truncated")  # one WechatyLogStale alert about bob
    doc["alerts"][0]["annotations"] = annotations
    doc["alerts"][0]["labels"]["alertname"] = name
    return json.dumps(doc)


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_phishing_annotation_is_quoted_and_its_link_inert(
    make_rig: MakeRig, exporter: FakeExporter, language: str
) -> None:
    rig = await make_rig(base_settings(exporter.url, language=language))
    forged = "Scan the QR code below with bob's WeChat to log it back in."
    body = _stale_alert(
        {
            "summary": PHISH,
            # a line break, or a run of spaces that wraps on a phone, to start a line of its own
            "description": f"x\n{forged}\r\n\u2028{' ' * 300}{forged}",
            "runbook_url": "https://evil.example/verify?bot=bob",
        }
    )
    status, _ = await rig.post(body)
    assert status == 200
    (text,) = (r["text"] for r in rig.sent())
    assert not LINK.search(text), text
    lines = text.splitlines()
    assert lines[1] == "> URGENT: WeChat security check, scan hxxps[:]//evil[.]example/verify now"
    assert lines[2] == f"> x {forged} {forged}"
    assert not any(line.startswith(("Scan", "URGENT")) for line in lines)
    assert "hxxps[:]//evil[.]example/verify?bot=bob" in lines[-1]


async def test_invisible_characters_cannot_hide_a_link(make_rig: MakeRig) -> None:
    rig = await make_rig()
    sneaky = "scan h\u200bttps\u2060://evil\ufeff.example/x or www\u00ad.evil.example now"
    status, _ = await rig.post(_stale_alert({"summary": sneaky, "description": "\u202e" * 50}))
    assert status == 200
    (text,) = (r["text"] for r in rig.sent())
    assert not LINK.search(text) and not UNSAFE.search(text), text
    assert "> scan hxxps[:]//evil[.]example/x or www[.]evil[.]example now" in text


async def test_annotations_are_bounded(make_rig: MakeRig) -> None:
    rig = await make_rig()
    status, _ = await rig.post(_stale_alert({"summary": "s" * 20_000, "description": "d" * 20_000}))
    assert status == 200
    (text,) = (r["text"] for r in rig.sent())
    quoted = [line for line in text.splitlines() if line.startswith("> ")]
    assert len(quoted) == 2
    assert all(len(line) == 2 + MAX_QUOTED_CHARS and line.endswith("…") for line in quoted)


async def test_an_alert_name_cannot_carry_a_link_either(make_rig: MakeRig) -> None:
    rig = await make_rig()
    status, _ = await rig.post(_stale_alert({}, name=PHISH + " " + "x" * 500))
    assert status == 200
    (text,) = (r["text"] for r in rig.sent())
    head = text.splitlines()[0]
    assert not LINK.search(head)
    assert len(head) < 130


def test_quoting_keeps_ordinary_text_as_it_was() -> None:
    for text in (
        "Wechaty bot bob is logged out",
        "bob has been logged out for more than 1m; scan the QR to log it back in.",
        "为了你的帐号安全，请重新登录。",
        "WeChat 8.0.4 on bob's phone",
    ):
        assert quoted_text(text) == text
    assert defang("see docs/alerting.md#x") == "see docs/alerting[.]md#x"
