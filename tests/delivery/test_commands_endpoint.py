"""POST /commands: a plugin bot's forwarded chat messages, answered by the real
`wechaty-exporter receiver` process from its YAML config (`receiver.commands`), with the real
`wechaty-exporter serve` tailing bob's log for `qr` and `status`, and a real restart argv.

What the TypeScript plugin sends is exactly the documented body; what the admin would receive is
the replies in the response. The policy state lives in the receiver between requests: a YES in a
second request confirms, a TOTP code counts once.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.delivery.kit import MakeRig, Process, base_settings, decode_qr
from tests.helpers import append, eventually

from wechaty_exporter.config import parse_config
from wechaty_exporter.settings import ConfigError

QR = "https://login.weixin.qq.com/l/cmdQrBob01=="
QR_LINE = f"12:00:00 INFO StarterBot onScan: Waiting(2) - {QR}"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TOKEN = "plugin-receiver-token-0123456789"
ADA = {"id": "wxid_ada", "name": "Ada"}  # admin of bob by id
OPS = {"id": "wxid_ops", "name": "Ops", "alias": "oncall-ops"}  # admin of bob by alias
STRANGER = {"id": "wxid_stranger", "name": "Ada"}  # took Ada's display name
MARKER_CODE = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write('restarted\\n')"

Post = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def exporter(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[Process]:
    """`wechaty-exporter serve` with bob logged out and a login QR pending."""
    log = tmp_path / "bob.log"
    log.write_text("")
    proc = Process(tmp_path, "exporter", "serve", "--log", f"bob={log}")
    await proc.start(session)
    append(log, QR_LINE)

    async def pending() -> bool:
        async with session.get(f"{proc.url}/api/v1/bots/bob/qr") as resp:
            return resp.status == 200

    await eventually(pending, within=10)
    yield proc
    await proc.stop()


def _config(tmp_path: Path, exporter: Process, commands: dict[str, Any] | None) -> Path:
    token = tmp_path / "receiver-token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    receiver: dict[str, Any] = {
        "exporter_url": exporter.url,
        "auth": {"bearer_token_file": str(token)},
        "admins": {"bob": [ADA["id"], OPS["alias"]]},
        "language": "en",
        "messenger": {"type": "outbox", "path": str(tmp_path / "outbox.jsonl")},
    }
    if commands is not None:
        receiver["commands"] = commands
    path = tmp_path / "receiver.yml"
    path.write_text(json.dumps({"receiver": receiver}))  # JSON is YAML
    return path


def _commands(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    marker = tmp_path / "restarted"
    return {
        "bot": "alice",
        "restart": {"bob": [sys.executable, "-c", MARKER_CODE, str(marker)]},
        "reply_rate_limit": {"burst": 100, "per_minute": 100},
        **changes,
    }


@pytest.fixture
async def start_receiver(
    tmp_path: Path, exporter: Process, session: aiohttp.ClientSession
) -> AsyncIterator[Callable[[dict[str, Any] | None], Awaitable[Process]]]:
    started: list[Process] = []

    async def start(commands: dict[str, Any] | None) -> Process:
        config = _config(tmp_path, exporter, commands)
        state = tmp_path / f"receiver-state-{len(started)}"
        proc = Process(tmp_path, "receiver", "receiver", "--config", str(config),
                       "--state-dir", str(state))  # fmt: skip
        await proc.start(session)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        assert await proc.stop() == 0, proc.output.read_text()


def poster(session: aiohttp.ClientSession, receiver: Process) -> Post:
    async def post(
        text: Any = None,
        sender: dict[str, Any] | None = None,
        *,
        bot: Any = "alice",
        body: Any = None,
        token: str | None = TOKEN,
    ) -> tuple[int, Any]:
        if body is None:
            body = {"from": sender or ADA, "text": text, "bot": bot}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with session.post(receiver.url + "/commands", data=data, headers=headers) as resp:
            try:
                doc = await resp.json()
            except aiohttp.ContentTypeError:
                doc = await resp.text()
            return resp.status, doc

    return post


def texts(doc: dict[str, Any]) -> list[str]:
    assert all(r["type"] == "text" for r in doc["replies"]), doc
    return [r["text"] for r in doc["replies"]]


async def metrics(
    session: aiohttp.ClientSession, receiver: Process
) -> dict[tuple[str, str], float]:
    async with session.get(receiver.url + "/metrics") as resp:
        text = await resp.text()
    return {
        (s.name, ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def audits(receiver: Process) -> list[str]:
    return [line for line in receiver.output.read_text().splitlines() if "command audit:" in line]


async def test_status_and_qr_reach_the_plugin_as_replies(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    receiver = await start_receiver(_commands(tmp_path))
    post = poster(session, receiver)

    status, doc = await post("status")
    assert status == 200, doc
    [reply] = texts(doc)
    assert "bob" in reply and "logged out" in reply.lower(), reply

    status, doc = await post("qr bob", OPS)  # Ops is bob's admin by alias
    assert status == 200, doc
    text, image = doc["replies"]
    assert text["type"] == "text" and "bob" in text["text"]
    assert image["type"] == "image"
    assert image["filename"] == "bob-login-qr.png"
    assert decode_qr(base64.b64decode(image["png_base64"]), tmp_path) == QR
    assert not (tmp_path / "outbox.jsonl").exists()  # replies go back, not through the messenger

    counted = await metrics(session, receiver)
    assert counted[("wechaty_bot_commands_total", "command=qr,outcome=ok")] == 1
    assert counted[("wechaty_receiver_command_requests_total", "code=200")] == 2
    assert any("command=qr" in line and "outcome=ok" in line for line in audits(receiver))


async def test_restart_runs_only_after_yes_in_a_second_request(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    receiver = await start_receiver(_commands(tmp_path, security={"restart": "confirm"}))
    post = poster(session, receiver)
    marker = tmp_path / "restarted"

    status, doc = await post("restart bob")
    assert status == 200, doc
    assert texts(doc) == ["Reply YES within 1 min to run: restart bob"]
    assert not marker.exists()

    status, doc = await post("YES", OPS)  # another admin's YES confirms nothing of Ada's
    assert (status, texts(doc)) == (200, ["Nothing to confirm."])
    assert not marker.exists()

    status, doc = await post("yes")
    assert status == 200, doc
    [reply] = texts(doc)
    assert reply.startswith("restart bob: exit status 0 after"), reply
    assert marker.read_text() == "restarted\n"

    status, doc = await post("YES")  # spent
    assert (status, texts(doc)) == (200, ["Nothing to confirm."])
    assert marker.read_text() == "restarted\n"
    lines = audits(receiver)
    assert any("command=restart" in x and "outcome=pending" in x for x in lines), lines
    assert any("command=restart" in x and "outcome=ok" in x and "confirmed" in x for x in lines), (
        lines
    )


async def test_restart_with_a_totp_code_counts_each_code_once(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    secret = tmp_path / "totp-secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    receiver = await start_receiver(
        _commands(tmp_path, totp_secret_file=str(secret), totp_max_failures=3)
    )
    post = poster(session, receiver)
    marker = tmp_path / "restarted"
    totp = pyotp.TOTP(SECRET)

    status, doc = await post("restart bob")
    assert (status, texts(doc)) == (
        200,
        ["restart needs a code from your authenticator app: restart bob 123456"],
    )
    valid = {totp.at(int(time.time()) + d) for d in (-60, -30, 0, 30, 60)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    status, doc = await post(f"restart bob {wrong}")
    assert (status, texts(doc)) == (200, ["Wrong code; nothing done (2 tries left)."])
    assert not marker.exists()

    code = totp.now()
    status, doc = await post(f"restart bob {code}")
    assert status == 200, doc
    assert texts(doc)[0].startswith("restart bob: exit status 0 after"), doc
    assert marker.read_text() == "restarted\n"

    status, doc = await post(f"restart bob {code}", OPS)  # a code counts once, for everyone
    assert (status, texts(doc)) == (
        200,
        ["That code was already used; nothing done. Wait for the next one."],
    )
    assert marker.read_text() == "restarted\n"
    output = receiver.output.read_text()
    assert code not in output and wrong not in output  # codes never reach the log
    lines = audits(receiver)
    assert [x.split("outcome=")[1].split()[0] for x in lines if "command=restart" in x] == [
        "no_code",
        "bad_code",
        "ok",
        "replayed",
    ]


async def test_a_stranger_is_refused_403_and_audited(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    receiver = await start_receiver(_commands(tmp_path))
    post = poster(session, receiver)

    status, doc = await post("restart bob", STRANGER)
    assert status == 403, doc
    assert "not an admin" in doc["error"]
    assert not (tmp_path / "restarted").exists()
    # Ada's display name is not Ada: a name alone never makes an admin
    status, doc = await post("status", {"id": "wxid_other", "name": ADA["id"]})
    assert status == 403, doc

    lines = audits(receiver)
    assert any(
        "sender='wxid_stranger'" in x and "command=restart" in x and "outcome=ignored" in x
        for x in lines
    ), lines
    counted = await metrics(session, receiver)
    assert counted[("wechaty_bot_commands_total", "command=restart,outcome=ignored")] == 1
    assert counted[("wechaty_receiver_command_requests_total", "code=403")] == 2


async def test_a_probe_is_never_a_command(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    receiver = await start_receiver(_commands(tmp_path))
    post = poster(session, receiver)
    probe = "wechaty-exporter probe v1 bob 1795568519"
    for sender in (ADA, STRANGER):
        status, doc = await post(probe, sender)
        assert (status, doc) == (200, {"replies": []})
    assert audits(receiver) == []
    # Only the v1 probe is exempt: anything else from an admin is read as a command.
    status, doc = await post(probe.replace("v1", "v2"))
    assert (status, texts(doc)) == (200, ["Unknown command 'wechaty-exporter'. Send help."])
    [line] = audits(receiver)
    assert "command=unknown" in line and "outcome=usage" in line


async def test_credentials_are_those_of_alerts(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    receiver = await start_receiver(_commands(tmp_path))
    post = poster(session, receiver)
    for token in (None, "wrong-token"):
        status, doc = await post("status", token=token)
        assert status == 401, doc
        assert doc == {"error": "missing or wrong credentials"}
    assert audits(receiver) == []
    counted = await metrics(session, receiver)
    assert counted[("wechaty_receiver_command_requests_total", "code=401")] == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        ([1, 2], "expected a JSON object, got list"),
        ({"text": "status", "bot": "alice"}, "from: required"),
        ({"from": {"name": "Ada"}, "text": "status", "bot": "alice"}, "from.id: required"),
        ({"from": {"id": 7}, "text": "status", "bot": "alice"}, "from.id: must be a string"),
        ({"from": {"id": " "}, "text": "status", "bot": "alice"}, "from.id: must not be empty"),
        ({"from": ADA, "text": ["status"], "bot": "alice"}, "text: must be a string, got list"),
        ({"from": ADA, "bot": "alice"}, "text: required"),
        ({"from": ADA, "text": "status"}, "bot: required"),
        ({"from": ADA, "text": "status", "bot": "../etc"}, "bot: must match"),
        ({"from": ADA, "text": "status", "bot": "alice\n"}, "bot: must match"),
        ({"from": ADA, "text": "status", "bot": "carol"}, "'carol' is not the bot"),
    ],
)
async def test_a_malformed_body_is_400_with_the_reason(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
    tmp_path: Path,
    body: Any,
    reason: str,
) -> None:
    receiver = await start_receiver(_commands(tmp_path))
    status, doc = await poster(session, receiver)(body=body)
    assert status == 400, doc
    assert reason in doc["error"], doc
    assert audits(receiver) == []


async def test_size_and_type_limits(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
    tmp_path: Path,
) -> None:
    receiver = await start_receiver(_commands(tmp_path))
    status, doc = await poster(session, receiver)("x" * 20000)
    assert (status, doc) == (413, {"error": "body larger than 16384 bytes"})
    async with session.post(
        receiver.url + "/commands",
        data="status",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"},
    ) as resp:
        assert resp.status == 415


async def test_without_receiver_commands_it_is_404(
    start_receiver: Callable[..., Awaitable[Process]],
    session: aiohttp.ClientSession,
) -> None:
    receiver = await start_receiver(None)
    status, doc = await poster(session, receiver)("status")
    assert (status, doc) == (
        404,
        {"error": "chat commands are not configured here (receiver.commands)"},
    )
    status, doc = await poster(session, receiver)("status", token=None)
    assert status == 401  # credentials first: a stranger learns nothing


async def test_an_in_process_receiver_without_a_handler_is_404(make_rig: MakeRig) -> None:
    rig = await make_rig(base_settings("http://127.0.0.1:9"))
    resp = await rig.client.post(
        "/commands",
        data=json.dumps({"from": ADA, "text": "status", "bot": "alice"}),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 404
    assert rig.metric("wechaty_receiver_command_requests_total", code="404") == 1


def test_check_config_lists_every_problem_of_receiver_commands(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            {
                "receiver": {
                    "commands": {
                        "bot": "../x",
                        "restart": {"bob": "pm2 restart bob"},
                        "security": {"restart": "totp"},
                        "zz": 1,
                    }
                }
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "receiver.commands.bot: must match" in problems
    assert "receiver.commands.restart.bob: must be a non-empty list of strings" in problems
    assert "receiver.commands.security.restart: totp needs receiver.commands.totp_secret_file" in (
        problems
    )
    assert "receiver.commands.zz: unknown key" in problems

    with pytest.raises(ConfigError) as caught:
        parse_config({"receiver": {"commands": {"restart": {"bob": ["true"]}}}})
    assert caught.value.problems == [
        "receiver.commands.bot: required: the name of the plugin bot whose admins' messages it"
        " answers"
    ]
    # The python bot's commands stay in bot.commands: bot.receiver has no `commands`.
    with pytest.raises(ConfigError) as caught:
        parse_config({"bot": {"receiver": {"commands": {"bot": "alice"}}}})
    assert any(p.startswith("bot.receiver.commands: unknown key") for p in caught.value.problems)

    config = parse_config({"receiver": {"commands": {"bot": "alice", "confirm_timeout": "30s"}}})
    assert config.receiver_commands is not None
    assert config.receiver_commands.bot == "alice"
    assert config.receiver_commands.settings.confirm_timeout == 30.0
