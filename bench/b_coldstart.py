"""Benchmark 3: cold start (no saved state) on 10 MB / 100 MB / 1 GB logs, vs reading the file.

Each log is generated chat with logins and QRs, ending in a logout and a pending QR followed by
300 lines of chat: the decisive entry is near the end. Measured from the process start to the
first 200 on /-/ready; then /api/v1/bots and /api/v1/bots/bench/qr must show the right state.
The reference is reading the whole file, `cat FILE > /dev/null` and Python reading it in 4 MiB
blocks (warm page cache), interleaved with the exporter's runs. Also footprint (a): the
exporter's peak RSS (VmHWM) once ready on the largest log.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from bench.common import (
    Context,
    Http,
    Result,
    exporter_command,
    fmt,
    median,
    start_exporter,
    wait_ready,
)
from bench.logs import write_sized


def cat_seconds(path: Path) -> float:
    began = time.perf_counter()
    with open("/dev/null", "wb") as null:
        subprocess.run(["cat", str(path)], stdout=null, check=True)
    return time.perf_counter() - began


def python_read_seconds(path: Path) -> float:
    began = time.perf_counter()
    with path.open("rb", buffering=0) as f:
        while f.read(4 << 20):
            pass
    return time.perf_counter() - began


def cold_start(ctx: Context, path: Path, qr: str, name: str) -> tuple[float, float, int]:
    """Seconds to ready, the in-process recovery seconds (its log line), peak RSS in KiB."""
    proc, address = start_exporter(ctx, name, [("bench", path)], wait=False)
    try:
        wait_ready(proc, address)
        ready = time.perf_counter() - proc.started
        http_ = Http(address)
        bot = json.loads(http_.get("/api/v1/bots")[1])["bots"][0]
        assert bot["logged_in"] is False and bot["qr_pending"] is True, bot
        status, body, _ = http_.get("/api/v1/bots/bench/qr")
        assert status == 200 and json.loads(body)["qrcode"] == qr, (status, body[:200])
        http_.close()
        hwm = proc.status_kb("VmHWM")
    finally:
        proc.stop()
    m = re.search(r"cold-started in (\d+) ms", proc.output())
    recovery = int(m.group(1)) / 1000 if m else float("nan")
    return ready, recovery, hwm


def run(ctx: Context) -> Result:
    sizes = ctx.sizes
    res = Result("coldstart", "3. Cold start")
    res.body += [
        "No saved state; the log's last decisive entry (a logout and a pending QR) is 300 lines "
        "before its end. *Ready* is from the process start (fork/exec) to the first 200 on "
        "`/-/ready`, after which the API showed the right state and QR every time; *recovery* is "
        "the exporter's own figure for the backward scan (its start-up log line). The "
        "references read the whole file with a warm page cache; *replay whole file* is what "
        "reading everything would cost with this parser (one run). Interleaved, "
        f"{sizes.coldstart_repeats} repeats, medians.",
        "",
        "| log | ready (s) | recovery (ms) | `cat` whole file (s) | Python read (s) | "
        "ready ÷ `cat` | replay whole file (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst_ready = 0.0
    hwm_largest = 0
    for size in sizes.coldstart_sizes:
        path = ctx.tmp / f"cold-{size >> 20}M.log"
        ctx.log(f"coldstart: generating {size >> 20} MiB")
        truth = write_sized(path, size)
        assert truth.qr is not None
        readies, recoveries, cats, reads, hwms = [], [], [], [], []
        for r in range(sizes.coldstart_repeats):
            cats.append(cat_seconds(path))
            ready, recovery, hwm = cold_start(ctx, path, truth.qr, f"cold-{size >> 20}-{r}")
            readies.append(ready)
            recoveries.append(recovery)
            hwms.append(hwm)
            reads.append(python_read_seconds(path))
        ratio = median([a / b for a, b in zip(readies, cats, strict=True)])
        began = time.perf_counter()  # what reading everything costs with this parser
        subprocess.run(
            [*exporter_command(), "replay", "--bot", "bench", str(path)],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        replay_all = time.perf_counter() - began
        label = f"{size / (1 << 30):.0f} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"
        res.body.append(
            f"| {label} | {fmt(median(readies))} | {fmt(median(recoveries) * 1000, 1)} | "
            f"{fmt(median(cats))} | {fmt(median(reads))} | {fmt(ratio)} | {fmt(replay_all)} | "
            f"{fmt(max(hwms) / 1024, 1)} |"
        )
        res.raw[label] = {"ready": readies, "recovery": recoveries, "cat": cats, "read": reads}
        worst_ready = max(worst_ready, median(readies))
        hwm_largest = max(hwms)
        path.unlink()
    res.goals.append(
        (
            "cold start to ready (largest log)",
            "< 0.5 s, flat",
            f"{fmt(worst_ready)} s",
            worst_ready < 0.5,
        )
    )
    res.raw["hwm_largest_kb"] = hwm_largest
    ctx.shared["coldstart_hwm"] = (label, hwm_largest)
    return res
