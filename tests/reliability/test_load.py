"""Load: 200 bots' logs written at 1 000 lines/s in total while /metrics is scraped every second.

One `wechaty-exporter serve` process with a state dir follows 200 files (one per bot, as pm2
writes them into one directory). A writer thread appends the torture pattern round-robin, 10
lines every 10 ms; the test scrapes /metrics once a second over a kept-alive connection, as
Prometheus does, and samples the exporter's RSS. Afterwards every bot's state must equal the
reference replay of its own lines, every scrape must have taken under 50 ms, and RSS must not
grow beyond a bound after the first seconds.

LOAD_SECONDS sets the duration (default 20 s in CI; docs/RELIABILITY.md has a 60 s run).
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from pathlib import Path

import pytest
from tests.reliability.conftest import Figures
from tests.reliability.kit import (
    ExporterProcess,
    Metrics,
    Observed,
    pattern_line,
    reference,
    rss_kib,
)

pytestmark = pytest.mark.slow

BOTS = 200
RATE = 1000  # lines per second, all bots together
SECONDS = float(os.environ.get("LOAD_SECONDS", "20"))
SCRAPE_LIMIT = 0.050
RSS_GROWTH_LIMIT_MIB = 16


class RoundRobinWriter(threading.Thread):
    """10 lines every 10 ms, bot after bot, each bot's lines following the torture pattern."""

    def __init__(self, paths: list[Path], seconds: float) -> None:
        super().__init__(daemon=True)
        self.fds = [os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for p in paths]
        self.written: list[list[str]] = [[] for _ in paths]
        self.total = 0
        self.seconds = seconds
        self.lag = 0.0  # how far behind its schedule the writer ever fell

    def run(self) -> None:
        began = time.perf_counter()
        ticks = int(self.seconds * 100)
        n = len(self.fds)
        for tick in range(ticks):
            for _ in range(RATE // 100):
                bot = self.total % n
                line = pattern_line(len(self.written[bot]), f"bot{bot:03d}", f"User{bot:03d}")
                os.write(self.fds[bot], (line + "\n").encode())
                self.written[bot].append(line)
                self.total += 1
            ahead = began + (tick + 1) / 100 - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            else:
                self.lag = max(self.lag, -ahead)
        for fd in self.fds:
            os.close(fd)


def test_200_bots_at_1000_lines_per_second(tmp_path: Path, figures: Figures) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    paths = [logs / f"bot{i:03d}-out.log" for i in range(BOTS)]
    for path in paths:
        path.touch()
    exporter = ExporterProcess(
        tmp_path, [(f"bot{i:03d}", p) for i, p in enumerate(paths)], state_dir=tmp_path / "state"
    ).start()
    writer = RoundRobinWriter(paths, SECONDS)
    scrapes: list[float] = []
    rss: list[int] = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=5)
        writer.start()
        began = time.monotonic()
        while writer.is_alive():
            t0 = time.perf_counter()
            conn.request("GET", "/metrics")
            response = conn.getresponse()
            body = response.read()
            scrapes.append(time.perf_counter() - t0)
            assert response.status == 200 and b"wechaty_log_lines_total" in body
            rss.append(rss_kib(exporter.pid()))
            next_at = began + len(scrapes)
            time.sleep(max(0.0, next_at - time.monotonic()))
        writer.join()
        total = writer.total

        def lines_read() -> bool:
            metrics = Metrics.parse(exporter.fetch("/metrics")[1].decode())
            read = sum(
                metrics.value("wechaty_log_lines_total", bot=f"bot{i:03d}") for i in range(BOTS)
            )
            assert read <= total
            return read == total

        exporter.wait(lines_read, "every line read", timeout=30)
        docs = exporter.bots()
        metrics = exporter.metrics()
        missed = 0
        for i in range(BOTS):
            bot = f"bot{i:03d}"
            want = Observed.of_state(reference(writer.written[i]))
            doc = docs[bot]
            got = Observed(
                logged_in=doc["logged_in"],
                qr=exporter.qr(bot) if doc["qr_pending"] else None,
                user=doc["user"],
                logins=doc["logins_total"],
                logouts=doc["logouts_total"],
                qr_codes=doc["qr_codes_total"],
                lines=int(metrics.value("wechaty_log_lines_total", bot=bot)),
                errors=int(metrics.value("wechaty_log_errors_total", bot=bot)),
                rejected=int(metrics.value("wechaty_exporter_rejected_qr_total", bot=bot)),
            )
            missed += got != want
            assert got == want, bot
        warm = rss[min(5, len(rss) - 1)]
        growth = (max(rss) - warm) / 1024
        events = sum(
            s.logins_total + s.logouts_total + s.qr_codes_total
            for s in (reference(w) for w in writer.written)
        )
        figures(
            f"{BOTS} bots, {total} lines in {SECONDS:g} s ({total / SECONDS:.0f}/s, writer lag "
            f"max {writer.lag * 1000:.0f} ms), {len(scrapes)} scrapes of "
            f"{len(body) // 1024} KiB: median {statistics.median(scrapes) * 1000:.1f} ms, max "
            f"{max(scrapes) * 1000:.1f} ms; RSS {rss[0] // 1024} -> {max(rss) // 1024} MiB "
            f"(+{growth:.1f} MiB after the first 5 s); {events} login/logout/QR events, "
            f"{missed} bots off the reference"
        )
        assert max(scrapes) < SCRAPE_LIMIT, [round(s * 1000, 1) for s in scrapes]
        assert growth < RSS_GROWTH_LIMIT_MIB
        state = json.loads((tmp_path / "state" / "exporter-state.json").read_text())
        assert len(state["bots"]) == BOTS
    finally:
        exporter.stop()
    assert "Traceback" not in exporter.log_text()
