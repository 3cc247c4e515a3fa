"""Load: 200 bots' logs written at 1 000 lines/s in total while /metrics is scraped every second.

One `wechaty-exporter serve` process with a state dir follows 200 files (one per bot, as pm2
writes them into one directory). A writer thread appends the torture pattern round-robin, 10
lines every 10 ms; the test scrapes /metrics once a second over a kept-alive connection, as
Prometheus does, and samples the exporter's RSS. Afterwards every bot's state must equal the
oracle (the writer's own record of what each bot's lines say, kit.Truth), every scrape must
have answered 200 with the metrics, and RSS must not grow beyond a bound after the first
seconds. Scrape times are reported, not bounded: speed is bench/'s business (bench/b_scrape.py).

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
    CYCLE,
    ExporterProcess,
    Metrics,
    Observed,
    Truth,
    explain,
    pattern,
    reference,
    rss_kib,
)

pytestmark = pytest.mark.slow

BOTS = 200
RATE = 1000  # lines per second, all bots together
SECONDS = float(os.environ.get("LOAD_SECONDS", "20"))
RSS_GROWTH_LIMIT_MIB = 16


class RoundRobinWriter(threading.Thread):
    """10 lines every 10 ms, bot after bot, each bot's lines following the torture pattern.

    Bot i starts at the (i mod CYCLE)-th state change of the pattern's cycle, so that in a
    20 s run (100 lines a bot) the bots together still go through every rule of the cycle.
    """

    def __init__(self, paths: list[Path], seconds: float) -> None:
        super().__init__(daemon=True)
        self.fds = [os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for p in paths]
        self.written: list[list[str]] = [[] for _ in paths]
        self.truths = [Truth() for _ in paths]  # the oracle: each bot's record, kept as written
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
                i = bot % CYCLE * 25 + len(self.written[bot])
                line, effect = pattern(i, f"bot{bot:03d}", f"User{bot:03d}")
                os.write(self.fds[bot], (line + "\n").encode())
                self.written[bot].append(line)
                self.truths[bot].see(effect)
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
            want = writer.truths[i].observed()
            doc = docs[bot]
            qr = exporter.qr(bot) if doc["qr_pending"] else None
            got = Observed.of_document(doc, qr, metrics, bot)
            missed += got != want
            if got != want:
                replayed = Observed.of_state(reference(writer.written[i]))
                raise AssertionError(f"{bot}{explain(got, want, replayed)}")
        warm = rss[min(5, len(rss) - 1)]
        growth = (max(rss) - warm) / 1024
        events = sum(t.logins + t.logouts + t.qr_codes for t in writer.truths)
        figures(
            f"{BOTS} bots, {total} lines in {SECONDS:g} s ({total / SECONDS:.0f}/s, writer lag "
            f"max {writer.lag * 1000:.0f} ms), {len(scrapes)} scrapes of "
            f"{len(body) // 1024} KiB: median {statistics.median(scrapes) * 1000:.1f} ms, max "
            f"{max(scrapes) * 1000:.1f} ms; RSS {rss[0] // 1024} -> {max(rss) // 1024} MiB "
            f"(+{growth:.1f} MiB after the first 5 s); {events} login/logout/QR events, "
            f"{missed} bots off the oracle",
            bots=BOTS,
            seconds=SECONDS,
            lines=total,
            writer_lag_ms=writer.lag * 1000,
            scrapes=len(scrapes),
            scrape_kib=len(body) // 1024,
            scrape_median_ms=statistics.median(scrapes) * 1000,
            scrape_max_ms=max(scrapes) * 1000,
            rss_first_mib=rss[0] / 1024,
            rss_max_mib=max(rss) / 1024,
            rss_growth_mib=growth,
            events=events,
            missed=missed,
        )
        assert growth < RSS_GROWTH_LIMIT_MIB
        state = json.loads((tmp_path / "state" / "exporter-state.json").read_text())
        assert len(state["bots"]) == BOTS
    finally:
        exporter.stop()
    assert "Traceback" not in exporter.log_text()
