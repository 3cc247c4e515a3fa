"""The peer bot against the real wechaty-puppet-service 1.19 server: TLS by default, the way the
TypeScript client does it; plaintext only when asked; clear errors when the two disagree."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from tests.integration.harness import free_port
from tests.peerbot.kit import parse, self_log_lines, start_peer, until, without_time
from tests.puppetservice.kit import RealPuppet, new_token
from tests.webconfig_pki import CertificateAuthority

from wechaty_exporter.logs.events import ScanStatus
from wechaty_exporter.peerbot.messenger import (
    BotStartError,
    PuppetService,
    PuppetServiceConfigError,
    new_bot,
    start_bot,
)
from wechaty_exporter.peerbot.puppettls import (
    CA_CERT_ENV,
    NO_TLS_ENV,
    SERVER_NAME_ENV,
    PuppetTransport,
    TLSOptions,
    server_name_from_token,
    wechaty_ca,
)

QR = "https://login.weixin.qq.com/l/TlsQr1=="
StartPuppet = Callable[..., Awaitable[RealPuppet]]


async def test_peer_bot_over_tls_by_default_logs_in_and_self_logs(
    real: RealPuppet, tmp_path: Path
) -> None:
    service = PuppetService.from_env({}, endpoint=real.endpoint, token=real.token)
    assert service.transport.tls and service.transport.server_name == "insecure"
    path = tmp_path / "alice.self.log"
    peer = await start_peer(service, path)
    try:
        await real.scan(QR)
        await real.scan("", status=3)
        await real.login()
        await until(lambda: self_log_lines(path, "login"), what="the login line")
        await until(lambda: peer.get("/-/ready"), what="ready")
        assert await peer.get("/-/ready") == 200
        await real.logout("kicked")
        await until(lambda: self_log_lines(path, "logout"), what="the logout line")
    finally:
        await peer.stop()
    assert without_time(parse(path)) == [
        ("Scan", ScanStatus.WAITING, QR),
        ("Scan", ScanStatus.SCANNED, None),
        ("Login", "Peer Bot"),
        ("Logout", "Peer Bot", "kicked"),
    ]
    login = json.loads(self_log_lines(path, "login")[0].split(" ", 4)[4])
    assert login == {"user": "Peer Bot", "id": real.me}  # an opaque id, not a wxid


async def test_plaintext_only_when_asked(puppets: StartPuppet) -> None:
    plain = await puppets(tls=False)
    # The TLS client against a plaintext server: refused, saying how to ask for plaintext.
    service = PuppetService.from_env({}, endpoint=plain.endpoint, token=plain.token)
    with pytest.raises(BotStartError) as refused:
        await start_bot(new_bot(service), service, within=10)
    assert f"set {NO_TLS_ENV}=true" in str(refused.value)
    assert "'insecure'" in str(refused.value)

    asked = PuppetService.from_env({NO_TLS_ENV: "true"}, endpoint=plain.endpoint, token=plain.token)
    assert not asked.transport.tls
    await plain.login()
    running = await start_bot(new_bot(asked), asked, require_login=True, within=10)
    try:
        assert running.logged_in
    finally:
        await running.stop(grace=2)


async def test_plaintext_client_against_the_tls_server_names_the_fix(real: RealPuppet) -> None:
    service = PuppetService.from_env({NO_TLS_ENV: "true"}, endpoint=real.endpoint, token=real.token)
    with pytest.raises(BotStartError) as refused:
        await start_bot(new_bot(service), service, within=10)
    message = str(refused.value)
    assert f"puppet service at {real.endpoint} dropped the plaintext connection" in message
    assert f"unset {NO_TLS_ENV}" in message
    assert "TLS" in message


async def test_a_wrong_ca_fails_naming_the_ca_and_server_name(
    real: RealPuppet, tmp_path: Path
) -> None:
    other = CertificateAuthority(tmp_path / "pki", "other CA")
    service = PuppetService.from_env(
        {CA_CERT_ENV: str(other.path)}, endpoint=real.endpoint, token=real.token
    )
    with pytest.raises(BotStartError) as refused:
        await start_bot(new_bot(service), service, within=10)
    message = str(refused.value)
    assert message.startswith(f"TLS handshake with puppet service at {real.endpoint} failed")
    assert "server name 'insecure' (derived from the token)" in message
    assert f"{CA_CERT_ENV} (file {other.path})" in message
    assert f"set {CA_CERT_ENV} to the CA that signed its certificate" in message


async def test_a_wrong_server_name_fails_then_the_variable_fixes_it(real: RealPuppet) -> None:
    # The server checks the token only; the client derives "other" from this token's prefix.
    wrong = PuppetService(real.endpoint, real.token, PuppetTransport.resolve("other_1", {}))
    with pytest.raises(BotStartError) as refused:
        await start_bot(new_bot(wrong), wrong, within=10)
    message = str(refused.value)
    assert "server name 'other'" in message and f"set {SERVER_NAME_ENV}" in message

    fixed = PuppetService.from_env(
        {SERVER_NAME_ENV: "insecure"}, endpoint=real.endpoint, token=real.token
    )
    assert fixed.transport.server_name_source == SERVER_NAME_ENV
    await real.login()
    running = await start_bot(new_bot(fixed), fixed, require_login=True, within=10)
    await running.stop(grace=2)


async def test_own_ca_and_server_certificate(tmp_path: Path, puppets: StartPuppet) -> None:
    """A server with its own certificate (the server's ..._TLS_SERVER_CERT/_KEY): the client
    trusts its CA from a PEM in the variable (escaped newlines, as the TypeScript client takes)."""
    ca = CertificateAuthority(tmp_path / "pki", "own CA")
    issued = ca.issue("puppet", dns=("puppet.example",), ips=())
    server = await puppets(
        env={
            "WECHATY_PUPPET_SERVICE_TLS_SERVER_CERT": issued.cert.read_text(),
            "WECHATY_PUPPET_SERVICE_TLS_SERVER_KEY": issued.key.read_text(),
        }
    )
    pem = ca.path.read_text().replace("\n", "\\n")
    env = {CA_CERT_ENV: pem, SERVER_NAME_ENV: "puppet.example"}
    service = PuppetService.from_env(env, endpoint=server.endpoint, token=server.token)
    assert service.transport.ca_source == f"{CA_CERT_ENV} (PEM)"
    await server.login()
    running = await start_bot(new_bot(service), service, require_login=True, within=10)
    await running.stop(grace=2)

    # The bundled Wechaty CA does not vouch for this server.
    default = PuppetService.from_env(
        {SERVER_NAME_ENV: "puppet.example"}, endpoint=server.endpoint, token=server.token
    )
    with pytest.raises(BotStartError, match="the Wechaty CA"):
        await start_bot(new_bot(default), default, within=10)


async def test_a_token_without_a_server_name_fails_saying_what_to_set(real: RealPuppet) -> None:
    service = PuppetService.from_env({}, endpoint=real.endpoint, token="no-prefix")
    with pytest.raises(BotStartError) as refused:
        await start_bot(new_bot(service), service, within=10)
    message = str(refused.value)
    assert message.startswith("the puppet service token has no server name prefix")
    assert f"set {SERVER_NAME_ENV}" in message and f"set {NO_TLS_ENV}=true" in message


async def test_wrong_token_is_refused(real: RealPuppet) -> None:
    service = PuppetService.from_env({}, endpoint=real.endpoint, token=new_token())
    with pytest.raises(BotStartError, match="UNAUTHENTICATED"):
        await start_bot(new_bot(service), service, within=10)


def test_transport_settings_follow_the_typescript_client(tmp_path: Path) -> None:
    assert server_name_from_token("insecure_0a1b") == "insecure"
    assert server_name_from_token("Puppet.Example_x_y") == "puppet.example_x"
    assert server_name_from_token("_lead") == "" and server_name_from_token("plain") == ""
    assert "-----BEGIN CERTIFICATE-----" in wechaty_ca()

    default = PuppetTransport.resolve("insecure_t", {})
    assert (default.tls, default.ca_pem, default.server_name) == (True, wechaty_ca(), "insecure")
    assert not PuppetTransport.resolve("t", {NO_TLS_ENV: "TRUE"}).tls
    assert PuppetTransport.resolve("insecure_t", {NO_TLS_ENV: "false"}).tls
    # The config wins over the environment.
    assert not PuppetTransport.resolve("t", {}, TLSOptions(enabled=False)).tls
    assert PuppetTransport.resolve("insecure_t", {NO_TLS_ENV: "true"}, TLSOptions(True)).tls
    named = PuppetTransport.resolve(
        "insecure_t", {SERVER_NAME_ENV: "env.example"}, TLSOptions(True, server_name="cfg")
    )
    assert (named.server_name, named.server_name_source) == ("cfg", "bot.puppet.tls.server_name")

    missing = tmp_path / "missing.pem"
    with pytest.raises(PuppetServiceConfigError, match="cannot read the CA file"):
        PuppetService.from_env({CA_CERT_ENV: str(missing)}, endpoint="h:1", token="insecure_t")
    garbage = "-----BEGIN CERTIFICATE-----\\nbm90IGEgY2VydA==\\n-----END CERTIFICATE-----"
    with pytest.raises(PuppetServiceConfigError, match="unusable"):
        PuppetService.from_env({CA_CERT_ENV: garbage}, endpoint="h:1", token="insecure_t")


async def bot_process(
    real: RealPuppet, tmp_path: Path, port: int, **env_vars: str
) -> asyncio.subprocess.Process:
    """`wechaty-exporter bot` against `real`: only its endpoint and token (and `env_vars`) set;
    stdout and stderr go to tmp_path/stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECHATY_PUPPET_SERVICE_")}
    env.pop("CACHE_DIR", None)
    env |= {"WECHATY_PUPPET_SERVICE_ENDPOINT": real.endpoint}
    env |= {"WECHATY_PUPPET_SERVICE_TOKEN": real.token, **env_vars}
    with (tmp_path / "stderr").open("wb") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wechaty_exporter", "bot",
            "--web.listen-address", f"127.0.0.1:{port}",
            "--self-log", str(tmp_path / "alice.self.log"),
            "--state-dir", str(tmp_path / "state"), "--exporter-url", "http://127.0.0.1:9",
            cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=sink, stderr=sink,
        )  # fmt: skip


async def test_bot_command_asked_for_plaintext_against_tls_exits_naming_the_fix(
    real: RealPuppet, tmp_path: Path
) -> None:
    """The issue's failure (`failed: StreamTerminatedError('Connection lost')`), now one line
    that says what to change."""
    proc = await bot_process(real, tmp_path, free_port(), **{NO_TLS_ENV: "true"})
    async with asyncio.timeout(30):
        assert await proc.wait() == 1
    lines = (tmp_path / "stderr").read_text(errors="replace").splitlines()
    assert lines[-1].startswith(
        f"wechaty-exporter bot: puppet service at {real.endpoint} dropped the plaintext connection"
    ), lines[-5:]
    assert f"unset {NO_TLS_ENV}" in lines[-1]
    assert not any("Traceback" in line for line in lines)


async def test_bot_command_over_tls_serves_until_sigterm(real: RealPuppet, tmp_path: Path) -> None:
    """`wechaty-exporter bot` as a process, only the endpoint and token set: TLS."""
    await real.login()
    port = free_port()
    self_log = tmp_path / "alice.self.log"
    out = tmp_path / "stderr"
    proc = await bot_process(real, tmp_path, port)

    async def ready() -> bool:
        if proc.returncode is not None:
            raise AssertionError(out.read_text(errors="replace")[-3000:])
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/-/ready") as resp,
            ):
                return resp.status == 200
        except aiohttp.ClientConnectionError:
            return False

    try:
        await until(ready, within=30, interval=0.1, what="the bot ready over TLS")
        await until(lambda: self_log_lines(self_log, "login"), what="the login line")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert real.token not in out.read_text(errors="replace"), "the token stays out of the log"
