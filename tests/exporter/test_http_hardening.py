"""Attacks on a real `wechaty-exporter serve`, over raw sockets: proxies and DNS rebinding asking
for the QR, slow clients holding connections, and a bearer token guessed by brute force."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import append
from tests.rawhttp import Server, closed_by_peer, half_open, raise_nofile, request

from wechaty_exporter.exporter.qraccess import TokenThrottle, client_key, host_name
from wechaty_exporter.exporter.settings import apply_serve_flags, parse_exporter_settings
from wechaty_exporter.settings import ConfigError

QR = "https://login.weixin.qq.com/l/Ib7RyoVDcw=="
TOKEN = "a-long-enough-qr-token-0123456789"
QR_PATHS = ["/api/v1/bots/bob/qr", "/api/v1/bots/bob/qr.png"]


def _bob_log(tmp_path: Path) -> Path:
    log = tmp_path / "bob.log"
    append(log, "09:00:00 INFO StarterBot Contact<Bob> logout",
           f"09:00:01 INFO StarterBot onScan: Waiting(2) - {QR}")  # fmt: skip
    return log


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One exporter with a pending QR, a token file and one configured name."""
    tmp = tmp_path_factory.mktemp("hardening")
    (tmp / "token").write_text(TOKEN + "\n")
    server = Server(
        tmp, "serve", "--log", f"bob={_bob_log(tmp)}", "--web.qr-token-file", str(tmp / "token"),
        "--web.hostname", "exporter.example.org",
    )  # fmt: skip
    server.start()
    deadline = time.monotonic() + 20
    while request(server.port, QR_PATHS[0])[0] != 200:
        assert time.monotonic() < deadline, "no QR pending"
        time.sleep(0.05)
    yield server
    server.stop()


def _shows_qr(exporter: Server, path: str, headers: dict[str, str], **kw: str) -> bool:
    status, _, body = request(exporter.port, path, headers, **kw)
    if path == "/":
        assert status == 200
        return b"data:image/svg" in body
    assert status in (200, 401, 403), (status, body)
    return status == 200


FORWARDING = [
    "X-Real-IP", "CF-Connecting-IP", "True-Client-IP", "X-Client-IP", "Via", "X-Forwarded-Host",
    "X-Original-Forwarded-For", "X-Forwarded-For", "Forwarded", "X-Forwarded-Proto",
    "X-Cluster-Client-IP", "Fastly-Client-IP",
]  # fmt: skip


@pytest.mark.parametrize("path", [*QR_PATHS, "/"])
def test_a_loopback_client_gets_the_qr_under_local_names(exporter: Server, path: str) -> None:
    port = exporter.port
    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST",
             f"exporter.example.org:{port}", "exporter.example.org.", f"127.0.0.2:{port}",
             ]  # fmt: skip
    for host in hosts:
        assert _shows_qr(exporter, path, {"Host": host}), host


@pytest.mark.parametrize("header", FORWARDING)
@pytest.mark.parametrize("path", [*QR_PATHS, "/"])
def test_any_forwarding_header_means_remote(exporter: Server, path: str, header: str) -> None:
    """From 127.0.0.1 these headers got the QR: a local proxy forwarding someone else."""
    value = "by=proxy;for=203.0.113.9" if header == "Forwarded" else "203.0.113.9"
    assert not _shows_qr(exporter, path, {header: value})
    if path != "/":
        status, headers, body = request(exporter.port, path, {header: value})
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert header in body.decode() and "proxied" in body.decode()


@pytest.mark.parametrize("path", [*QR_PATHS, "/"])
def test_a_rebinding_page_gets_no_qr(exporter: Server, path: str) -> None:
    """`Host: evil.example:PORT` from 127.0.0.1: a page whose DNS name now points here."""
    port = exporter.port
    for host in [f"evil.example:{port}", "localhost.evil.example", f"127.0.0.1.nip.io:{port}",
                 "exporter.example.org.evil.example", "", "evil.example:port", "[::1"]:  # fmt: skip
        assert not _shows_qr(exporter, path, {"Host": host}), host
    if path != "/":
        status, _, body = request(exporter.port, path, {"Host": f"evil.example:{port}"})
        assert status == 401 and "is not a name of this exporter" in body.decode()


def test_two_host_headers_get_no_qr(exporter: Server) -> None:
    head = (
        f"GET /api/v1/bots/bob/qr HTTP/1.1\r\nHost: 127.0.0.1:{exporter.port}\r\n"
        "Host: evil.example\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", exporter.port), timeout=10) as sock:
        sock.sendall(head.encode())
        reply = sock.recv(65536)
    assert not reply.startswith(b"HTTP/1.1 200")


def test_the_token_holder_gets_the_qr_under_any_name(exporter: Server) -> None:
    """A rebinding page cannot know the token; a client sending it may use any name."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    headers = {**auth, "Host": "exporter.internal:9839", "X-Forwarded-For": "203.0.113.9"}
    assert request(exporter.port, QR_PATHS[0], headers)[0] == 200


def test_metrics_and_api_answer_any_name(exporter: Server) -> None:
    """Only the QR depends on the name: scrapes through any name keep working."""
    for path in ["/metrics", "/api/v1/bots", "/healthz"]:
        assert request(exporter.port, path, {"Host": "evil.example"})[0] == 200


def _metric(exporter: Server, reason: str) -> float:
    text = request(exporter.port, "/metrics")[2].decode()
    found = re.search(rf'wechaty_exporter_qr_refused_total{{reason="{reason}"}} (\S+)', text)
    assert found, text
    return float(found.group(1))


def test_wrong_tokens_are_throttled_per_address(exporter: Server) -> None:
    """Guessing from 127.0.0.2: five tries, then 429 with Retry-After whatever the token, while
    the token's holder at 127.0.0.3 is served. Counted in wechaty_exporter_qr_refused_total."""
    wrong_before = _metric(exporter, "wrong_token")
    throttled_before = _metric(exporter, "throttled")
    path, attacker, holder = QR_PATHS[0], "127.0.0.2", "127.0.0.3"
    statuses = [
        request(exporter.port, path, {"Authorization": f"Bearer guess{i}"}, source=attacker)[0]
        for i in range(5)
    ]
    assert statuses == [401] * 5
    for guess in ["guess-more", TOKEN]:  # the right token too: a throttled guess learns nothing
        status, headers, body = request(
            exporter.port, path, {"Authorization": f"Bearer {guess}"}, source=attacker
        )
        assert status == 429 and 1 <= int(headers["retry-after"]) <= 60, body
        assert b"too many wrong bearer tokens" in body and QR.encode() not in body
    status, _, body = request(exporter.port, "/", {"Authorization": "Bearer x"}, source=attacker)
    assert status == 429 and b"data:image" not in body
    for _ in range(3):
        ok = request(exporter.port, path, {"Authorization": f"Bearer {TOKEN}"}, source=holder)
        assert ok[0] == 200 and QR.encode() in ok[2]
    assert _metric(exporter, "wrong_token") == wrong_before + 5
    assert _metric(exporter, "throttled") == throttled_before + 3


def test_the_throttle_refills_and_groups_ipv6_by_64() -> None:
    now = [0.0]
    throttle = TokenThrottle(burst=2, refill=10.0, clock=lambda: now[0])
    for _ in range(2):
        assert throttle.retry_after("2001:db8::1") is None
        throttle.failed("2001:db8::1")
    assert throttle.retry_after("2001:db8::ffff") == 10  # the same /64
    assert throttle.retry_after("2001:db8:0:1::1") is None  # another /64
    assert throttle.retry_after("::ffff:192.0.2.1") is None
    now[0] = 10.0
    assert throttle.retry_after("2001:db8::1") is None
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_the_throttle_remembers_a_bounded_number_of_clients() -> None:
    throttle = TokenThrottle(burst=1, refill=60.0, max_clients=3, clock=lambda: 0.0)
    for i in range(10):
        throttle.failed(f"192.0.2.{i}")
    assert len(throttle._buckets) == 3
    assert throttle.retry_after("192.0.2.9") == 60


@pytest.mark.parametrize(
    ("value", "host"),
    [("a.example:80", "a.example"), ("[::1]:9839", "::1"), ("A.Example.", "a.example"),
     ("x:y", None), ("[::1", None), ("", None), ("[::1]x", None)],
)  # fmt: skip
def test_host_name(value: str, host: str | None) -> None:
    assert host_name(value) == host


def test_metrics_answer_during_1100_half_open_requests(tmp_path: Path) -> None:
    """1,100 connections that never finish their headers, against an exporter with the open-file
    limit of a systemd service (1024): /metrics and /healthz still answer, and the oldest
    half-open connections were closed to make room."""
    raise_nofile(4096)
    server = Server(tmp_path, "serve", "--log", f"bob={_bob_log(tmp_path)}").start()
    try:
        started = time.monotonic()
        attackers = half_open(server.port, 1100)
        opened = time.monotonic() - started
        assert len(attackers) >= 1050, f"only {len(attackers)} connected in {opened:.1f}s"
        for path in ["/metrics", "/healthz", "/metrics"]:
            t0 = time.monotonic()
            status, _, body = request(server.port, path, timeout=15)
            assert status == 200, body
            assert time.monotonic() - t0 < 10
        shed = [s for s in attackers[:500] if closed_by_peer(s, within=0.01) is not None]
        assert len(shed) >= 500 - 10  # the oldest went first (the default cap is 512)
        text = request(server.port, "/metrics")[2].decode()
        assert "wechaty_bot_logged_in" in text
        shed_total = re.search(
            r'wechaty_exporter_http_connections_closed_total{reason="shed"} (\S+)', text
        )
        assert shed_total and float(shed_total.group(1)) >= 500, text
    finally:
        for sock in attackers:
            sock.close()
        server.stop()


@pytest.mark.parametrize("opening", [b"", b"GET /metrics HTTP/1.1\r\nHost: x\r\n"])
def test_a_half_open_connection_is_closed_after_the_header_deadline(
    tmp_path: Path, opening: bytes
) -> None:
    server = Server(
        tmp_path, "serve", "--log", f"bob={_bob_log(tmp_path)}", "--web.read-header-timeout", "2s"
    ).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(opening)
            waited = closed_by_peer(sock, within=30)
        assert waited is not None, "still open after 30s"
        assert waited >= 1.0
    finally:
        server.stop()


def test_a_kept_alive_connection_must_finish_its_next_head_in_time(tmp_path: Path) -> None:
    server = Server(
        tmp_path, "serve", "--log", f"bob={_bob_log(tmp_path)}", "--web.read-header-timeout", "2s"
    ).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(3)  # idle longer than the header deadline: kept
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and then nothing
            assert closed_by_peer(sock, within=30) is not None
    finally:
        server.stop()


def test_hostnames_from_the_file_and_the_flag() -> None:
    errors: list[str] = []
    settings = parse_exporter_settings(
        {"hostnames": ["Exporter.Example.org.", "[::1]"]}, {}, errors
    )
    assert errors == [] and settings.hostnames == ("exporter.example.org", "::1")
    flagged = apply_serve_flags(settings, hostnames=["metrics.internal"])
    assert flagged.hostnames == ("metrics.internal",)
    with pytest.raises(ConfigError, match=r"--web\.hostname"):
        apply_serve_flags(settings, hostnames=["evil.example:80"])
    parse_exporter_settings({"hostnames": ["a b"]}, {}, errors)
    assert errors and "exporter.hostnames" in errors[0]
