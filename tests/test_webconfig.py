"""`--web.config.file`: the exporter-toolkit format, checked at load, over real TLS and bcrypt.

Every server here is a real aiohttp server on loopback with a TLS context from the file; the
certificates come from a CA made by the test (tests/webconfig_pki.py), the hashes from bcrypt.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tests.helpers import free_port
from tests.webconfig_pki import CertificateAuthority, Issued, bcrypt_hash

from wechaty_exporter.settings import ConfigError
from wechaty_exporter.webconfig import (
    BasicAuth,
    LiveWebConfig,
    guard,
    open_web_config,
    parse_basic,
    read_web_config,
)

PASSWORD = "s3cret pass"


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _write(path: Path, text: str) -> Path:
    """Write `text` so that a re-read notices it even within one mtime tick (size or inode)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def _tls_yaml(server: Issued, extra: str = "") -> str:
    return f"tls_server_config:\n  cert_file: {server.cert}\n  key_file: {server.key}\n{extra}"


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "pki")


# --- the file ---------------------------------------------------------------------------------


def test_a_full_file_loads(tmp_path: Path, ca: CertificateAuthority) -> None:
    server = ca.issue("server")
    hashed = bcrypt_hash(PASSWORD)
    path = _write(
        tmp_path / "web.yml",
        _tls_yaml(
            server,
            f"  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: {ca.path}\n"
            "  min_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"
            "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"
            "    Strict-Transport-Security: max-age=31536000\n"
            f"basic_auth_users:\n  prometheus: '{hashed}'\n",
        ),
    )
    config, context = read_web_config(path)
    assert config.tls is not None and context is not None
    assert config.tls.verify_mode == ssl.CERT_OPTIONAL
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert config.headers == (
        ("X-Frame-Options", "deny"),
        ("Strict-Transport-Security", "max-age=31536000"),
    )
    assert config.users == {"prometheus": hashed.encode()}
    assert hashed not in repr(config)  # hashes stay out of logs and tracebacks


def test_relative_paths_are_read_from_the_files_directory(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    server = ca.issue("server")
    path = _write(
        ca.directory / "web.yml",
        f"tls_server_config:\n  cert_file: {server.cert.name}\n  key_file: {server.key.name}\n",
    )
    config, _ = read_web_config(path)
    assert config.tls is not None and config.tls.cert_file == server.cert


def test_an_empty_file_turns_nothing_on(tmp_path: Path) -> None:
    config, context = read_web_config(_write(tmp_path / "web.yml", ""))
    assert config.tls is None and context is None and not config.users


def test_every_problem_is_listed_at_once_with_the_file_and_key_path(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "web.yml",
        "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing-key.pem\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS14\n"
        "  bogus: 1\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n    Server: me\n"
        "basic_auth_users:\n  alice: plain-password\n  'bad:name': '$2b$04$x'\n"
        "rate_limit: {interval: 1s, burst: 5}\n",
    )
    with pytest.raises(ConfigError) as caught:
        read_web_config(path)
    error = caught.value
    assert error.source == str(path)
    text = "\n".join(error.problems)
    for expected in (
        "rate_limit: not supported",
        "tls_server_config.bogus: unknown key",
        "tls_server_config.min_version: expected one of TLS10, TLS11, TLS12, TLS13, got 'TLS14'",
        "tls_server_config.client_ca_file: required to verify client certificates",
        "http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin",
        "http_server_config.headers.Server: not one of",
        "basic_auth_users.alice: expected a bcrypt hash",
        "basic_auth_users: 'bad:name'",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert "tls_server_config.cert_file: " in text and "missing.pem: no such file" in text
    assert "tls_server_config.key_file: " in text and "missing-key.pem: no such file" in text
    assert len(error.problems) == 10, text
    assert str(path) in str(error)


def test_an_unreadable_certificate_is_named(tmp_path: Path, ca: CertificateAuthority) -> None:
    server = ca.issue("server")
    other = ca.issue("other")
    path = _write(tmp_path / "web.yml", _tls_yaml(Issued(server.cert, other.key)))
    with pytest.raises(ConfigError, match="cert_file/key_file: cannot load"):
        read_web_config(path)
    missing = _write(tmp_path / "missing.yml", _tls_yaml(Issued(tmp_path / "no.pem", server.key)))
    with pytest.raises(ConfigError, match=r"no\.pem: no such file"):
        read_web_config(missing)


def test_not_yaml_and_no_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_web_config(_write(tmp_path / "web.yml", "basic_auth_users: [unclosed\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        read_web_config(tmp_path / "absent.yml")


@pytest.mark.parametrize(
    ("snippet", "reason"),
    [
        ("  client_auth_type: RequestClientCert\n", "not possible with Python's ssl module"),
        ("  client_auth_type: RequireAnyClientCert\n", "not possible with Python's ssl module"),
        ("  cert: '-----BEGIN CERTIFICATE-----'\n", "inline certificates are not supported"),
        ("  key: '-----BEGIN PRIVATE KEY-----'\n", "inline keys are not supported"),
        ("  curve_preferences: [CurveP256]\n", "cannot set a list of curves"),
        ("  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", "TLS 1.3 suite"),
        ("  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n", "not a TLS 1.2 cipher suite"),
        ("http_server_config:\n  http2: true\n", "HTTP/1.1 only"),
    ],
)
def test_what_python_cannot_honour_is_refused(
    tmp_path: Path, ca: CertificateAuthority, snippet: str, reason: str
) -> None:
    path = _write(tmp_path / "web.yml", _tls_yaml(ca.issue("server"), snippet))
    with pytest.raises(ConfigError, match=reason):
        read_web_config(path)


def test_the_authorization_header_is_parsed_strictly() -> None:
    assert parse_basic(_basic("prometheus", "a:b")["Authorization"]) == ("prometheus", b"a:b")
    assert parse_basic("basic " + base64.b64encode(b"u:p").decode()) == ("u", b"p")
    assert parse_basic("Bearer abc") is None
    assert parse_basic("Basic !!!") is None
    assert parse_basic("Basic " + base64.b64encode(b"no-colon").decode()) is None


# --- basic auth -------------------------------------------------------------------------------


async def test_successful_checks_are_cached_and_failures_are_not() -> None:
    auth = BasicAuth()
    users = {"prometheus": bcrypt_hash(PASSWORD).encode()}
    right = _basic("prometheus", PASSWORD)["Authorization"]
    assert await auth.check(users, right)
    assert await auth.check(users, right)
    assert auth.bcrypt_checks == 1
    wrong = _basic("prometheus", "guess")["Authorization"]
    assert not await auth.check(users, wrong)
    assert not await auth.check(users, wrong)
    assert auth.bcrypt_checks == 3
    # The cache is keyed by the hash too: a new hash for the user needs a new check.
    changed = {"prometheus": bcrypt_hash("another").encode()}
    assert not await auth.check(changed, right)
    assert auth.bcrypt_checks == 4


async def test_an_unknown_user_costs_a_bcrypt_check_too() -> None:
    auth = BasicAuth()
    users = {"prometheus": bcrypt_hash(PASSWORD, cost=10).encode()}
    # Warm the decoy hash once, then time a known user's and an unknown user's failure.
    assert not await auth.check(users, _basic("nobody", PASSWORD)["Authorization"])
    started = time.perf_counter()
    assert not await auth.check(users, _basic("prometheus", "wrong")["Authorization"])
    known = time.perf_counter() - started
    started = time.perf_counter()
    assert not await auth.check(users, _basic("nobody", PASSWORD)["Authorization"])
    unknown = time.perf_counter() - started
    assert auth.bcrypt_checks == 3
    assert unknown > known / 3, (known, unknown)


async def test_bcrypt_runs_off_the_event_loop() -> None:
    """A cost-11 check takes 0.1 s to over a second; the loop keeps ticking meanwhile."""
    auth = BasicAuth()
    users = {"prometheus": bcrypt_hash(PASSWORD, cost=11).encode()}
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    assert await auth.check(users, _basic("prometheus", PASSWORD)["Authorization"])
    took = time.perf_counter() - started
    done.set()
    await ticking
    assert took > 0.05, f"cost 11 took {took:.3f}s: not a real bcrypt check"
    assert len(gaps) > 5 and max(gaps) < took / 2, (took, max(gaps))


async def test_a_password_over_bcrypts_72_bytes_is_refused_not_raised() -> None:
    auth = BasicAuth()
    users = {"prometheus": bcrypt_hash(PASSWORD).encode()}
    assert not await auth.check(users, _basic("prometheus", "x" * 100)["Authorization"])


# --- served over TLS --------------------------------------------------------------------------


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text=f"hello {request.path}\n")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """serve(path, bearer_checked=None) → (https URL, LiveWebConfig, BasicAuth)."""
    runners: list[web.AppRunner] = []

    async def start(
        path: Path, bearer_checked: Callable[[web.Request], bool] | None = None
    ) -> tuple[str, LiveWebConfig, BasicAuth]:
        live = open_web_config(path)
        assert live is not None
        app = web.Application()
        for route in ("/", "/metrics", "/healthz", "/api/v1/bots/alice/qr"):
            app.router.add_get(route, _hello)
        auth = guard(app, live, bearer_checked=bearer_checked)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=live.ssl_context).start()
        scheme = "https" if live.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{port}", live, auth

    yield start
    for runner in runners:
        await runner.cleanup()


async def _get(
    url: str, context: ssl.SSLContext | bool = False, headers: dict[str, str] | None = None
) -> tuple[int, str, Any]:
    """A fresh connection each time: (status, body, headers)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=context, headers=headers or {}) as response,
    ):
        return response.status, await response.text(), response.headers


async def _peer_certificate(url: str) -> bytes:
    host, port = url.removeprefix("https://").split(":")
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection(host, int(port), ssl=insecure)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return bytes(der)


async def test_tls_with_the_tests_ca_and_basic_auth_on_every_path_but_healthz(
    tmp_path: Path, ca: CertificateAuthority, serve: Callable[..., Any]
) -> None:
    path = _write(
        tmp_path / "web.yml",
        _tls_yaml(
            ca.issue("server"), f"basic_auth_users:\n  prometheus: '{bcrypt_hash(PASSWORD)}'\n"
        ),
    )
    url, _, _ = await serve(path)
    trusted = ca.client_context()
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await _get(f"{url}/healthz", ssl.create_default_context())  # system CAs: not ours
    with pytest.raises(aiohttp.ClientError):
        await _get(url.replace("https:", "http:") + "/healthz")  # plain HTTP to a TLS port
    assert (await _get(f"{url}/healthz", trusted))[0] == 200
    for route in ("/", "/metrics", "/api/v1/bots/alice/qr"):
        status, _, headers = await _get(f"{url}{route}", trusted)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic realm=")
        assert (await _get(f"{url}{route}", trusted, _basic("prometheus", "nope")))[0] == 401
        assert (await _get(f"{url}{route}", trusted, _basic("grafana", PASSWORD)))[0] == 401
        assert (await _get(f"{url}{route}", trusted, _basic("prometheus", PASSWORD)))[:2] == (
            200,
            f"hello {route}\n",
        )


async def test_a_bearer_request_passes_only_where_its_handler_checks_it(
    tmp_path: Path, ca: CertificateAuthority, serve: Callable[..., Any]
) -> None:
    path = _write(tmp_path / "web.yml", f"basic_auth_users:\n  u: '{bcrypt_hash(PASSWORD)}'\n")
    url, _, _ = await serve(path, bearer_checked=lambda r: r.path.endswith("/qr"))
    bearer = {"Authorization": "Bearer token"}
    assert (await _get(f"{url}/api/v1/bots/alice/qr", headers=bearer))[0] == 200
    assert (await _get(f"{url}/metrics", headers=bearer))[0] == 401
    assert (await _get(f"{url}/api/v1/bots/alice/qr"))[0] == 401


async def test_headers_are_on_every_answer_even_a_401(
    tmp_path: Path, serve: Callable[..., Any]
) -> None:
    path = _write(
        tmp_path / "web.yml",
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        "    Content-Security-Policy: \"default-src 'none'\"\n"
        f"basic_auth_users:\n  u: '{bcrypt_hash(PASSWORD)}'\n",
    )
    url, _, _ = await serve(path)
    for answer in (
        await _get(f"{url}/metrics"),
        await _get(f"{url}/metrics", headers=_basic("u", PASSWORD)),
        await _get(f"{url}/nowhere", headers=_basic("u", PASSWORD)),
    ):
        assert answer[2]["X-Content-Type-Options"] == "nosniff"
        assert answer[2]["Content-Security-Policy"] == "default-src 'none'"


async def test_client_certificates_from_the_ca_only(
    tmp_path: Path, ca: CertificateAuthority, serve: Callable[..., Any]
) -> None:
    stranger_ca = CertificateAuthority(tmp_path / "stranger", "stranger CA")
    path = _write(
        tmp_path / "web.yml",
        _tls_yaml(
            ca.issue("server"),
            f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.path}\n"
            "  client_allowed_sans: [prometheus.example, '::1']\n",
        ),
    )
    url, _, _ = await serve(path)
    good = ca.client_context(ca.issue("prom", dns=("prometheus.example",), client=True))
    assert (await _get(f"{url}/metrics", good))[0] == 200
    with pytest.raises(aiohttp.ClientError):
        await _get(f"{url}/metrics", ca.client_context())  # no certificate
    forged = ca.client_context(stranger_ca.issue("prom2", dns=("prometheus.example",), client=True))
    with pytest.raises(aiohttp.ClientError):
        await _get(f"{url}/metrics", forged)
    other_san = ca.client_context(ca.issue("grafana", dns=("grafana.example",), client=True))
    assert (await _get(f"{url}/metrics", other_san))[0] == 403
    by_ip = ca.client_context(ca.issue("local", dns=(), ips=("0::1",), client=True))
    assert (await _get(f"{url}/metrics", by_ip))[0] == 200  # ::1 however it is written


async def test_tls_versions_are_enforced(
    tmp_path: Path, ca: CertificateAuthority, serve: Callable[..., Any]
) -> None:
    path = _write(tmp_path / "web.yml", _tls_yaml(ca.issue("server"), "  max_version: TLS12\n"))
    url, _, _ = await serve(path)
    tls12 = ca.client_context()
    assert (await _get(f"{url}/", tls12))[0] == 200
    tls13_only = ca.client_context()
    tls13_only.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(aiohttp.ClientError):
        await _get(f"{url}/", tls13_only)


async def test_a_changed_file_takes_over_for_new_connections(
    tmp_path: Path, ca: CertificateAuthority, serve: Callable[..., Any]
) -> None:
    """A new certificate from a new CA, a new password: the next connection has both."""
    path = _write(
        tmp_path / "web.yml",
        _tls_yaml(ca.issue("server"), f"basic_auth_users:\n  u: '{bcrypt_hash(PASSWORD)}'\n"),
    )
    url, live, _ = await serve(path)
    assert (await _get(f"{url}/", ca.client_context(), _basic("u", PASSWORD)))[0] == 200
    new_ca = CertificateAuthority(tmp_path / "new", "new CA")
    rotated = new_ca.issue("server2")
    _write(path, _tls_yaml(rotated, f"basic_auth_users:\n  u: '{bcrypt_hash('new pass')}'\n"))
    new_client = new_ca.client_context()
    assert (await _get(f"{url}/", new_client, _basic("u", "new pass")))[0] == 200
    assert (await _get(f"{url}/", new_client, _basic("u", PASSWORD)))[0] == 401
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await _get(f"{url}/", ca.client_context(), _basic("u", "new pass"))
    assert live.reloads == 1
    # The certificate file alone changing (renewed in place) is noticed too.
    renewed = new_ca.issue("server2")
    assert renewed.cert == rotated.cert
    served = await _peer_certificate(url)
    assert served == ssl.PEM_cert_to_DER_cert(rotated.cert.read_text())
    assert live.reloads == 2


async def test_a_broken_file_keeps_the_last_good_one_and_logs_it(
    tmp_path: Path, ca: CertificateAuthority, serve: Callable[..., Any], caplog: Any
) -> None:
    server = ca.issue("server")
    path = _write(
        tmp_path / "web.yml",
        _tls_yaml(server, f"basic_auth_users:\n  u: '{bcrypt_hash(PASSWORD)}'\n"),
    )
    url, live, _ = await serve(path)
    trusted = ca.client_context()
    caplog.set_level(logging.ERROR, logger="wechaty_exporter.webconfig")
    _write(path, _tls_yaml(server, "basic_auth_users:\n  u: plain\n  v: [list]\n"))
    for _ in range(3):
        assert (await _get(f"{url}/", trusted, _basic("u", PASSWORD)))[0] == 200
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, errors  # once per change, not per request
    assert str(path) in errors[0] and "basic_auth_users.u" in errors[0]
    assert "basic_auth_users.v" in errors[0] and "last good" in errors[0]
    # Dropping TLS while serving it is refused too; a good file then takes over.
    _write(path, f"basic_auth_users:\n  u: '{bcrypt_hash('next')}'\n")
    assert (await _get(f"{url}/", trusted, _basic("u", PASSWORD)))[0] == 200
    assert "restart" in caplog.records[-1].getMessage()
    _write(path, _tls_yaml(server, f"basic_auth_users:\n  u: '{bcrypt_hash('next')}'\n"))
    assert (await _get(f"{url}/", trusted, _basic("u", "next")))[0] == 200
    assert (live.failures, live.reloads) == (2, 1)


async def test_plain_http_with_basic_auth_only(tmp_path: Path, serve: Callable[..., Any]) -> None:
    path = _write(tmp_path / "web.yml", f"basic_auth_users:\n  u: '{bcrypt_hash(PASSWORD)}'\n")
    url, live, auth = await serve(path)
    assert url.startswith("http://") and live.ssl_context is None
    assert (await _get(f"{url}/metrics"))[0] == 401
    for _ in range(5):
        assert (await _get(f"{url}/metrics", headers=_basic("u", PASSWORD)))[0] == 200
    assert auth.bcrypt_checks == 1


async def test_client_certificates_required_from_a_change_on(
    tmp_path: Path, ca: CertificateAuthority, serve: Callable[..., Any]
) -> None:
    """Client verification and its CA, turned on while serving, hold for the next connection."""
    server = ca.issue("server")
    path = _write(tmp_path / "web.yml", _tls_yaml(server))
    url, live, _ = await serve(path)
    assert (await _get(f"{url}/metrics", ca.client_context()))[0] == 200
    client_ca = CertificateAuthority(tmp_path / "clients", "client CA")
    _write(
        path,
        _tls_yaml(
            server,
            f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {client_ca.path}\n",
        ),
    )
    assert live.refresh()
    with pytest.raises(aiohttp.ClientError):
        await _get(f"{url}/metrics", ca.client_context())
    with pytest.raises(aiohttp.ClientError):  # the server's CA is not the clients' one
        await _get(f"{url}/metrics", ca.client_context(ca.issue("c1", client=True)))
    good = ca.client_context(client_ca.issue("c2", client=True))
    assert (await _get(f"{url}/metrics", good))[0] == 200


async def test_the_receivers_bearer_auth_and_the_files_basic_auth_together(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    """With `receiver.auth` bearer, POST /alerts is the bearer's to check; the rest stays
    behind the file's basic auth, over the file's TLS."""
    from wechaty_exporter.delivery.guard_settings import AuthSettings
    from wechaty_exporter.delivery.main import serve_receiver
    from wechaty_exporter.delivery.messenger_settings import MessengerSettings
    from wechaty_exporter.delivery.settings import ReceiverSettings

    path = _write(
        tmp_path / "web.yml",
        _tls_yaml(ca.issue("server"), f"basic_auth_users:\n  am: '{bcrypt_hash(PASSWORD)}'\n"),
    )
    settings = ReceiverSettings(
        listen_port=free_port(),
        auth=AuthSettings(scheme="bearer", secret="the-token"),
        messenger=MessengerSettings(kind="outbox", path=tmp_path / "outbox.jsonl"),
        web_config_file=path,
    )
    started: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_receiver(settings, state_dir=tmp_path, started=started))
    try:
        (address,) = await asyncio.wait_for(started, 10)
        url, trusted = f"https://{address}", ca.client_context()
        assert (await _get(f"{url}/healthz", trusted))[0] == 200
        assert (await _get(f"{url}/metrics", trusted, {"Authorization": "Bearer the-token"}))[
            0
        ] == 401
        assert (await _get(f"{url}/metrics", trusted, _basic("am", PASSWORD)))[0] == 200
        async with aiohttp.ClientSession() as session:

            async def post(headers: dict[str, str]) -> tuple[int, str]:
                async with session.post(
                    f"{url}/alerts", ssl=trusted, headers=headers, data=b"{}"
                ) as response:
                    return response.status, await response.text()

            ok = {"Authorization": "Bearer the-token", "Content-Type": "application/json"}
            status, body = await post(ok)
            assert status == 400 and "error" in body  # past both layers: the payload is empty
            wrong = {**ok, "Authorization": "Bearer wrong"}
            assert (await post(wrong))[0] == 401  # the receiver's own check
            assert (await post({"Content-Type": "application/json"}))[0] == 401
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
