"""Oversized, slow and broken request bodies against the receiver, on a real loopback socket.

The receiver app (`create_receiver_app`, the one `wechaty-exporter receiver` and the peer bot
serve) listens on a free port with a 1 s body timeout (the default is 10 s) and a 64 KiB body
cap; clients are raw sockets that send exactly the bytes each attack needs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from tests.helpers import free_port
from tests.reliability.conftest import Figures

from wechaty_exporter.delivery.exporter_client import ExporterClient
from wechaty_exporter.delivery.guard_settings import RateLimitSettings
from wechaty_exporter.delivery.messengers.outbox import OutboxMessenger, read_outbox
from wechaty_exporter.delivery.receiver import REGISTRY, create_receiver_app
from wechaty_exporter.delivery.settings import ReceiverSettings
from wechaty_exporter.delivery.store import DeliveryStore

CAP = 64 * 1024
BODY_TIMEOUT = 1.0
PAYLOAD = json.loads(
    (Path(__file__).resolve().parents[1] / "delivery" / "payloads" / "firing.json").read_text()
)


def alert_body(n: int) -> bytes:
    """A valid webhook body: WechatyLogStale about bob (no QR, so no exporter needed)."""
    doc = json.loads(json.dumps(PAYLOAD))
    alert = doc["alerts"][0]
    alert["labels"]["alertname"] = "WechatyLogStale"
    alert["fingerprint"] = f"{n:016x}"
    return json.dumps(doc).encode()


@dataclass
class Receiver:
    port: int
    outbox: Path
    app: web.Application

    def requests(self, code: int) -> float:
        value = self.app[REGISTRY].get_sample_value(
            "wechaty_receiver_requests_total", {"code": str(code)}
        )
        return value or 0.0


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    settings = ReceiverSettings(
        admins=(("bob", ("wxid_admin",)),),
        max_body_bytes=CAP,
        rate_limit=RateLimitSettings(burst=1000, per_hour=360000, max_hold=0),
    )
    store = DeliveryStore(":memory:")
    outbox = tmp_path / "outbox.jsonl"
    messenger = OutboxMessenger(outbox)
    exporter = ExporterClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    app = create_receiver_app(settings, messenger, exporter, store, body_timeout=BODY_TIMEOUT)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield Receiver(port, outbox, app)
    await runner.cleanup()
    await exporter.close()
    store.close()


def head(port: int, length: int | None, extra: str = "") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else ""
    if length is None:
        framing = "Transfer-Encoding: chunked\r\n"
    return (
        f"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{framing}{extra}\r\n"
    ).encode()


def handler_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """aiohttp's "Error handling request" records, except its own 400s for bad HTTP framing."""
    return [
        r
        for r in caplog.records
        if "Error handling request" in r.getMessage()
        and not (r.exc_info and issubclass(r.exc_info[0] or Exception, HttpProcessingError))
    ]


async def status_of(reader: asyncio.StreamReader, within: float = 5.0) -> int:
    line = await asyncio.wait_for(reader.readline(), within)
    assert line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), line
    return int(line.split()[1])


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def post(port: int, body: bytes) -> tuple[int, float]:
    began = time.monotonic()
    reader, writer = await connect(port)
    writer.write(head(port, len(body), "Connection: close\r\n") + body)
    await writer.drain()
    status = await status_of(reader)
    writer.close()
    return status, time.monotonic() - began


async def test_oversized_bodies_are_refused_without_reading_them(
    receiver: Receiver, figures: Figures
) -> None:
    # Declared too large: 413 before a byte of the body is read (none is ever sent).
    reader, writer = await connect(receiver.port)
    began = time.monotonic()
    writer.write(head(receiver.port, 10 << 20))
    await writer.drain()
    assert await status_of(reader) == 413
    at_once = time.monotonic() - began
    writer.close()

    # Chunked, no declared size: 413 once the cap is passed, long before 10 MB arrived.
    reader, writer = await connect(receiver.port)
    writer.write(head(receiver.port, None))
    answer = asyncio.ensure_future(status_of(reader))
    chunk = b"x" * 8192
    sent = 0
    try:
        while sent < 10 << 20 and not answer.done():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            await asyncio.sleep(0)
            sent += len(chunk)
    except ConnectionError:
        pass
    assert await answer == 413
    assert sent < 10 << 20, "the whole 10 MB went in before the refusal"
    writer.close()
    figures(
        f"declared 10 MiB: 413 after {at_once * 1000:.0f} ms, no body sent; chunked: 413 after "
        f"{sent >> 10} KiB sent (cap 64 KiB)",
        declared_ms=at_once * 1000,
        chunked_kib=sent >> 10,
        cap_kib=CAP >> 10,
    )
    assert (await post(receiver.port, alert_body(1)))[0] == 200


async def test_slow_body_is_cut_off(receiver: Receiver, figures: Figures) -> None:
    body = alert_body(2)
    reader, writer = await connect(receiver.port)
    writer.write(head(receiver.port, len(body)))
    began = time.monotonic()
    answer = asyncio.ensure_future(status_of(reader, within=10))
    sent = 0
    for byte in body:  # slowloris: one byte every 100 ms, for minutes if let
        if answer.done():
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            break
        sent += 1
        await asyncio.sleep(0.1)
    status = await answer
    took = time.monotonic() - began
    assert status == 408
    assert sent < len(body), "the whole body went in: nothing was cut off"
    assert took >= BODY_TIMEOUT, "cut off before its body timeout"  # never fails for slowness
    writer.close()
    figures(
        f"slowloris body: 408 after {took:.2f} s, {sent} of {len(body)} bytes sent "
        f"(body timeout {BODY_TIMEOUT:g} s)",
        seconds=took,
        body_timeout=BODY_TIMEOUT,
        sent=sent,
        size=len(body),
    )


async def test_stalled_clients_do_not_hold_the_receiver(
    receiver: Receiver, figures: Figures, caplog: pytest.LogCaptureFixture
) -> None:
    """100 stalled clients (half mid-body, half mid-headers): real alerts still get through."""
    caplog.set_level(logging.WARNING)
    stalled = []
    for i in range(50):
        reader, writer = await connect(receiver.port)
        writer.write(head(receiver.port, 1000) + b'{"version":')  # and nothing more
        stalled.append((reader, writer))
        reader2, writer2 = await connect(receiver.port)
        writer2.write(f"POST /alerts HTTP/1.1\r\nHost: x{i}\r\nContent-".encode())  # no end
        stalled.append((reader2, writer2))
    for _, writer in stalled:
        await writer.drain()
    timings = [await post(receiver.port, alert_body(100 + i)) for i in range(5)]
    assert [status for status, _ in timings] == [200] * 5
    slowest = max(took for _, took in timings)
    # The stalled bodies are answered 408 and closed once the body timeout passes.
    answers = await asyncio.gather(*(status_of(r, within=5) for r, _ in stalled[::2]))
    assert answers == [408] * 50
    assert len(read_outbox(receiver.outbox)) == 5
    for _, writer in stalled:
        writer.close()
    assert receiver.requests(500) == 0
    assert not handler_errors(caplog)
    figures(
        f"50 stalled bodies + 50 stalled headers open: 5 alerts delivered, slowest answer "
        f"{slowest * 1000:.0f} ms; the 50 stalled bodies answered 408",
        stalled=len(stalled),
        delivered=5,
        slowest_ms=slowest * 1000,
        answered_408=answers.count(408),
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",  # not a chunk size
        b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":1}\r\n0\r\n\r\n',  # chunk longer than said
        b"Content-Length: -1\r\n\r\n{}",
        b"Content-Length: 5\r\nContent-Length: 7\r\n\r\n{}{}{}{",
        b"Content-Encoding: gzip\r\nContent-Length: 8\r\n\r\nnot gzip",
        b"Content-Length: 2\r\n\r\n\xff\xfe",
        b"Content-Length: 6\r\n\r\n[[[[[[",
    ],
    ids=[
        "bad-chunk-size",
        "bad-chunk",
        "negative-length",
        "two-lengths",
        "bad-gzip",
        "not-utf8",
        "truncated-json",
    ],
)
async def test_broken_bodies_get_a_4xx(
    receiver: Receiver, raw: bytes, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    caplog.set_level(logging.WARNING)
    reader, writer = await connect(receiver.port)
    writer.write(
        b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + raw
    )
    await writer.drain()
    status = await status_of(reader)
    writer.close()
    assert 400 <= status < 500
    assert receiver.requests(500) == 0
    assert not handler_errors(caplog)
    assert (await post(receiver.port, alert_body(3)))[0] == 200
    figures(f"answered {status}, then a real alert 200", status=status)


async def test_body_cut_short_by_the_client(
    receiver: Receiver, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    caplog.set_level(logging.WARNING)
    cut = 20
    for _ in range(cut):
        _, writer = await connect(receiver.port)
        writer.write(head(receiver.port, 1000) + b'{"version":"4"')
        await writer.drain()
        writer.close()
    # Each handler ends (a quiet 400 to nobody) once it notices: await that, not a while.
    async with asyncio.timeout(10):
        while receiver.requests(400) < cut:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert (await post(receiver.port, alert_body(4)))[0] == 200
    assert receiver.requests(500) == 0
    assert receiver.requests(400) == cut
    assert not handler_errors(caplog)
    figures(f"{cut} bodies cut short: each a quiet 400, then a real alert 200", cut=cut)
