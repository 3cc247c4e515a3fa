"""Slow clients against a real `wechaty-exporter receiver`, over raw sockets: 1,100 requests that
never finish their headers leave /metrics, /healthz and POST /alerts answering, and a half-open
request is closed after `--web.read-header-timeout`."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

from tests.rawhttp import Server, closed_by_peer, half_open, raise_nofile, request


def _receiver(tmp_path: Path, *args: str) -> Server:
    return Server(
        tmp_path, "receiver", "--outbox", str(tmp_path / "outbox.jsonl"),
        "--state-dir", str(tmp_path), "--admin", "bob=wxid_admin", *args,
    ).start()  # fmt: skip


def test_the_receiver_answers_during_1100_half_open_requests(tmp_path: Path) -> None:
    raise_nofile(4096)
    server = _receiver(tmp_path)
    attackers: list[socket.socket] = []
    try:
        attackers = half_open(server.port, 1100)
        assert len(attackers) >= 1050
        for path in ["/metrics", "/healthz", "/-/ready"]:
            started = time.monotonic()
            status, _, body = request(server.port, path, timeout=15)
            assert status == 200, body
            assert time.monotonic() - started < 10
        assert sum(closed_by_peer(s, within=0.01) is not None for s in attackers[:500]) >= 490
    finally:
        for sock in attackers:
            sock.close()
        server.stop()


def test_a_half_open_request_to_the_receiver_is_closed_in_time(tmp_path: Path) -> None:
    server = _receiver(tmp_path, "--web.read-header-timeout", "2s", "--web.max-connections", "64")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n")
            waited = closed_by_peer(sock, within=30)
        assert waited is not None, "still open after 30s"
        assert waited >= 1.0
        metrics = request(server.port, "/metrics")[2].decode()
        found = re.search(
            r'wechaty_receiver_http_connections_closed_total{reason="header_timeout"} (\S+)',
            metrics,
        )
        assert found and float(found.group(1)) >= 1, metrics
        # 100 silent connections over a cap of 64: the oldest are shed, new clients served
        crowd = half_open(server.port, 100)
        assert request(server.port, "/healthz", timeout=15)[0] == 200
        assert sum(closed_by_peer(s, within=0.01) is not None for s in crowd[:30]) >= 30
        for sock in crowd:
            sock.close()
    finally:
        server.stop()


def test_bad_limit_flags_are_usage_errors(tmp_path: Path) -> None:
    for flag, value in [("--web.max-connections", "3"), ("--web.read-header-timeout", "soon")]:
        server = Server(tmp_path, "receiver", "--outbox", str(tmp_path / "o.jsonl"), flag, value)
        server.start_process()
        assert server.wait() == 2
        assert flag in server.output.read_text()
