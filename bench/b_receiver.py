"""Benchmark 6: receiver webhook deliveries/s through the outbox messenger, dedupe on.

`wechaty-exporter receiver --outbox` with a state dir (SQLite dedupe store), the admin rate limit
raised out of the way (burst 1000, 10^9/h), and a real exporter with a pending QR for bot alice.
Each new WechatyBotLoggedOut alert is one POST /alerts → two outbox records (the text, then the
QR as PNG, fetched from the exporter and rendered) for one admin. Then the same alerts again:
Alertmanager repeats and HA duplicates, which dedupe must drop. Finally 8 concurrent clients.
/healthz on the same receiver is the HTTP floor.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    Context,
    Http,
    Proc,
    Result,
    dist,
    exporter_command,
    fmt,
    free_port,
    start_exporter,
    start_process,
    wait_ready,
)

HEADERS = {"Content-Type": "application/json"}


def payload(i: int) -> bytes:
    starts = (datetime(2026, 11, 25, tzinfo=UTC) + timedelta(seconds=i)).isoformat()
    labels = {"alertname": "WechatyBotLoggedOut", "bot": "alice", "severity": "critical"}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "Wechaty bot alice is logged out"},
        "startsAt": starts.replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": f"{i:016x}",
    }
    doc = {
        "version": "4",
        "groupKey": '{}:{alertname="WechatyBotLoggedOut", bot="alice"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "peer-bob",
        "groupLabels": {"alertname": "WechatyBotLoggedOut", "bot": "alice"},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": [alert],
    }
    return json.dumps(doc).encode()


def post_all(address: str, bodies: list[bytes]) -> list[float]:
    http_ = Http(address)
    times = []
    for body in bodies:
        status, answer, seconds = http_.post("/alerts", body, HEADERS)
        assert status == 200, (status, answer[:300])
        times.append(seconds * 1000)
    http_.close()
    return times


def start_receiver(ctx: Context, exporter: str) -> tuple[Proc, str, Path]:
    config = ctx.tmp / "receiver.yml"
    config.write_text(
        "receiver:\n"
        "  rate_limit: {burst: 1000, per_hour: 1000000000, max_hold: 5s}\n"
        "  dedupe_ttl: 1h\n"
    )
    state = ctx.tmp / "receiver-state"
    state.mkdir(exist_ok=True)
    outbox = ctx.tmp / "outbox.jsonl"
    address = f"127.0.0.1:{free_port()}"
    argv = [
        *exporter_command(), "receiver", "--config", str(config),
        "--web.listen-address", address, "--exporter-url", f"http://{exporter}",
        "--admin", "alice=wxid_admin", "--outbox", str(outbox), "--state-dir", str(state),
    ]  # fmt: skip
    proc = start_process(argv, ctx.tmp / "receiver.out")
    wait_ready(proc, address)
    return proc, address, outbox


def run(ctx: Context) -> Result:
    n = ctx.sizes.receiver_alerts
    res = Result("receiver", "6. Receiver")
    log = ctx.tmp / "receiver-alice.log"
    stamp = f"{datetime.now():%H:%M:%S}"
    log.write_text(
        f"{stamp} INFO StarterBot Contact<Alice> logout\n"
        f"{stamp} INFO StarterBot onScan: Waiting(2) - https://login.weixin.qq.com/l/IdBench==\n"
    )
    exporter, exporter_address = start_exporter(ctx, "receiver-exporter", [("alice", log)])
    receiver = None
    try:
        receiver, address, outbox = start_receiver(ctx, exporter_address)
        http_ = Http(address)
        floor = []
        for _ in range(max(50, n // 5)):
            floor.append(http_.get("/healthz")[2] * 1000)
        http_.close()
        post_all(address, [payload(10**9 + i) for i in range(5)])  # warm up
        ctx.log(f"receiver: {n} new alerts, then {n} duplicates")
        bodies = [payload(i) for i in range(n)]
        began = time.perf_counter()
        fresh = post_all(address, bodies)
        fresh_rate = n / (time.perf_counter() - began)
        began = time.perf_counter()
        dupes = post_all(address, bodies)
        dupe_rate = n / (time.perf_counter() - began)

        ctx.log("receiver: 8 concurrent clients")
        chunks = [[payload(2 * 10**9 + i) for i in range(c, n, 8)] for c in range(8)]
        results: list[list[float]] = [[] for _ in chunks]

        def client(k: int) -> None:
            results[k] = post_all(address, chunks[k])

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        concurrent_rate = n / (time.perf_counter() - began)
        concurrent = [x for r in results for x in r]
        records = [json.loads(line) for line in outbox.read_text().splitlines()]
        images = sum(1 for r in records if r["type"] == "image")
        assert images == n + 5 + n, (images, n)  # fresh + warm-up + concurrent; none for dupes
    finally:
        if receiver is not None:
            receiver.stop()
        exporter.stop()
    d_fresh, d_dupe, d_conc, d_floor = dist(fresh), dist(dupes), dist(concurrent), dist(floor)
    res.body += [
        f"{n} new alerts, one per POST, one client; then the same {n} again (duplicates); then "
        f"{n} new alerts from 8 concurrent clients. Every new alert put exactly one text and one "
        "QR image in the outbox; no duplicate did.",
        "",
        "| requests | deliveries/s | p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---|---|---|---|",
        f"| new alerts (text + QR image each) | {fmt(fresh_rate, 0)} | {fmt(d_fresh['p50'])} | "
        f"{fmt(d_fresh['p99'])} | {fmt(d_fresh['max'])} |",
        f"| duplicates (dropped by dedupe) | {fmt(dupe_rate, 0)} | {fmt(d_dupe['p50'])} | "
        f"{fmt(d_dupe['p99'])} | {fmt(d_dupe['max'])} |",
        f"| new alerts, 8 concurrent clients | {fmt(concurrent_rate, 0)} | {fmt(d_conc['p50'])} | "
        f"{fmt(d_conc['p99'])} | {fmt(d_conc['max'])} |",
        f"| `/healthz` (floor) | – | {fmt(d_floor['p50'])} | {fmt(d_floor['p99'])} | "
        f"{fmt(d_floor['max'])} |",
        "",
        "Each new alert costs a QR fetch from the exporter, a PNG render, two outbox appends "
        "(each fsynced) and the SQLite dedupe records.",
    ]
    res.samples["receiver, new alert"] = fresh
    res.samples["receiver, duplicate"] = dupes
    res.goals.append(
        (
            "receiver deliveries/s, p99",
            "(no goal set)",
            f"{fmt(fresh_rate, 0)}/s, p99 {fmt(d_fresh['p99'])} ms",
            None,
        )
    )
    res.raw = {"fresh": d_fresh, "dupes": d_dupe, "concurrent": d_conc, "floor": d_floor}
    return res
