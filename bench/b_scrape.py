"""Benchmark 5: /metrics latency with 100 bots; /healthz on the same server is the HTTP floor.

100 bots, one log each (a login, a logout, a pending QR, chat); requests alternate between
/metrics, /healthz and /api/v1/bots over one keep-alive connection, sequentially.
"""

from __future__ import annotations

from datetime import datetime

from bench.common import Context, Http, Result, dist, fmt, median, start_exporter

PATHS = ("/metrics", "/healthz", "/api/v1/bots")


def run(ctx: Context) -> Result:
    n = ctx.sizes.scrape_requests
    res = Result("scrape", "5. Scrape")
    logs = []
    stamp = f"{datetime.now():%H:%M:%S}"
    for i in range(100):
        path = ctx.tmp / f"scrape-{i:03d}.log"
        lines = [
            f"{stamp} INFO StarterBot Contact<Bot {i}> login",
            *[f"{stamp} INFO StarterBot Message#Text[🗣Contact<Alice>]\thi"] * 20,
            f"{stamp} ERR PuppetService stream error",
            f"{stamp} INFO StarterBot Contact<Bot {i}> logout",
            f"{stamp} INFO StarterBot onScan: Waiting(2) - https://login.weixin.qq.com/l/s{i}",
        ]
        path.write_text("\n".join(lines) + "\n")
        logs.append((f"bot{i:03d}", path))
    proc, address = start_exporter(ctx, "scrape", logs)
    times: dict[str, list[float]] = {p: [] for p in PATHS}
    try:
        http_ = Http(address)
        for _ in range(20):  # warm up
            for p in PATHS:
                http_.get(p)
        size = len(http_.get("/metrics")[1])
        ctx.log(f"scrape: {n} rounds")
        for _ in range(n):
            for p in PATHS:
                status, _, seconds = http_.get(p)
                assert status == 200, (p, status)
                times[p].append(seconds * 1000)
        http_.close()
    finally:
        proc.stop()
    d = {p: dist(t) for p, t in times.items()}
    res.body += [
        f"100 bots (100 log files); {n} rounds of `/metrics`, `/healthz`, `/api/v1/bots` "
        f"in turn over one keep-alive connection; the exposition is {size / 1024:.0f} KiB. "
        "Client-side time from request to the last byte.",
        "",
        "| path | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |",
        "|---|---|---|---|---|",
        *[
            f"| `{p}` | {fmt(x['p50'])} | {fmt(x['p90'])} | {fmt(x['p99'])} | {fmt(x['max'])} |"
            for p, x in d.items()
        ],
        "",
        f"`/metrics` p50 is {fmt(median(times['/metrics']) / median(times['/healthz']), 1)}× "
        "the `/healthz` floor.",
    ]
    res.samples["/metrics, 100 bots"] = times["/metrics"]
    p99 = d["/metrics"]["p99"]
    res.goals.append(("`/metrics` p99, 100 bots", "< 10 ms", f"{fmt(p99)} ms", p99 < 10))
    res.raw = d
    return res
