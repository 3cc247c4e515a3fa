"""Benchmark 5: /metrics latency with 100 bots; /healthz on the same server is the HTTP floor.

100 bots, one log each (a login, a logout, a pending QR, chat); requests alternate between
/metrics, /healthz and /api/v1/bots over one keep-alive connection, sequentially.
"""

from __future__ import annotations

from datetime import datetime

from bench.common import Context, Http, Result, dist, fmt, median, start_exporter

# What Prometheus 2.42 sends when it scrapes: OpenMetrics preferred, gzip.
PROMETHEUS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
REQUESTS = {  # label → (path, headers)
    "/metrics as Prometheus asks (OpenMetrics, gzip)": ("/metrics", PROMETHEUS),
    "/metrics, text format 0.0.4": ("/metrics", {}),
    "/healthz": ("/healthz", {}),
    "/api/v1/bots": ("/api/v1/bots", {}),
}


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
    times: dict[str, list[float]] = {label: [] for label in REQUESTS}
    try:
        http_ = Http(address)
        for _ in range(20):  # warm up
            for path, headers in REQUESTS.values():
                http_.get(path, headers)
        size = len(http_.get("/metrics")[1])
        ctx.log(f"scrape: {n} rounds")
        for _ in range(n):
            for label, (path, headers) in REQUESTS.items():
                status, _, seconds = http_.get(path, headers)
                assert status == 200, (path, status)
                times[label].append(seconds * 1000)
        http_.close()
    finally:
        proc.stop()
    d = {label: dist(t) for label, t in times.items()}
    om, text, floor = (times[k] for k in list(REQUESTS)[:3])
    res.body += [
        f"100 bots (100 log files, ~1,900 samples; the text exposition is {size / 1024:.0f} KiB). "
        f"{n} rounds of the requests below in turn over one keep-alive connection, client-side "
        "time from the request to the last byte. Prometheus 2.42 asks for OpenMetrics and gzip; "
        "the exporter answers in the text format 0.0.4 anyway (prometheus_client's OpenMetrics "
        "encoder took twice as long; see the history below), gzipped.",
        "",
        "| request | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |",
        "|---|---|---|---|---|",
        *[
            f"| `{label}` | {fmt(x['p50'])} | {fmt(x['p90'])} | {fmt(x['p99'])} | {fmt(x['max'])} |"
            for label, x in d.items()
        ],
        "",
        f"`/metrics` p50 is {fmt(median(om) / median(floor), 0)}× (as Prometheus asks) and "
        f"{fmt(median(text) / median(floor), 0)}× (text) the `/healthz` floor.",
    ]
    res.samples["/metrics, 100 bots, as Prometheus asks"] = om
    res.samples["/metrics, 100 bots, text"] = text
    for short, label in (("as Prometheus asks (gzip)", 0), ("text", 1)):
        got = d[list(REQUESTS)[label]]
        res.goals.append(
            (
                f"`/metrics` p99, 100 bots, {short}",
                "< 10 ms",
                f"{fmt(got['p99'])} ms",
                got["p99"] < 10,
            )
        )
    res.raw = d
    return res
