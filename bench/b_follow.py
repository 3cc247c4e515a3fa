"""Benchmark 8: following a live log: CPU per line at 2,000 lines/s, the exporter beside mtail.

One log appended at `follow_lines_per_second` (chat and puppet chatter from bench/logs.py's
generator, a logout → QR → login cycle every 2,000 lines) for `follow_seconds`, in ticks of
`follow_tick` seconds, one write() per line (as a Node process's console.log does). The
exporter (`serve --state-dir`, inotify) and mtail (bench/wechaty.mtail, its default 250 ms poll)
follow the same file at the same time; each one's CPU is utime + stime from /proc/<pid>/stat over
the window, divided by the lines written. Both must have read every line.
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

from bench.b_footprint import _mtail, lines_read
from bench.common import Context, Http, Proc, Result, fmt, median, start_exporter, wait_for
from bench.logs import generate

_STAMP = re.compile(rb"^\d\d:\d\d:\d\d ")


def _lines(count: int) -> list[bytes]:
    """Plain brolog lines of the generator (its plain wrapper), with their events."""
    lines, _ = generate(count, seed=21, wrappers=("plain",))
    return [line.encode("utf-8") + b"\n" for line in lines]


def _mtail_lines(address: str) -> int:
    http_ = Http(address)
    metrics = http_.get("/metrics")[1].decode()
    http_.close()
    m = re.search(r"^wechaty_log_lines_total\{[^}]*\} (\S+)$", metrics, re.MULTILINE)
    return int(float(m.group(1))) if m else -1


def write(path: Path, lines: list[bytes], rate: int, seconds: float, tick: float) -> int:
    """Append lines at `rate` per second, each with its own write(); returns lines written."""
    per_tick = max(1, round(rate * tick))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    written = 0
    t0 = time.perf_counter()
    n = 0
    try:
        while time.perf_counter() - t0 < seconds:
            stamp = time.strftime("%H:%M:%S").encode()
            for _ in range(per_tick):
                line = lines[written % len(lines)]
                os.write(fd, _STAMP.sub(stamp + b" ", line, count=1))
                written += 1
            n += 1
            time.sleep(max(0.0, t0 + n * tick - time.perf_counter()))
    finally:
        os.close(fd)
    return written


def one_run(ctx: Context, run: int) -> dict[str, float]:
    sizes = ctx.sizes
    path = ctx.tmp / f"follow-{run}.log"
    path.write_bytes(b"")
    state = ctx.tmp / f"follow-state-{run}"
    state.mkdir(exist_ok=True)
    lines = _lines(20_000)
    exporter, address = start_exporter(
        ctx, f"follow-exporter-{run}", [("bench", path)], state_dir=state
    )
    mtail: Proc | None = None
    try:
        mtail, mtail_address = _mtail(ctx, f"follow-mtail-{run}", [("bench", path)])
        time.sleep(1.0)  # both settled
        cpu0 = {"exporter": exporter.cpu_seconds(), "mtail": mtail.cpu_seconds()}
        t0 = time.perf_counter()
        written = write(
            path, lines, sizes.follow_lines_per_second, sizes.follow_seconds, sizes.follow_tick
        )
        wait_for(lambda: lines_read(address) == written, 15, "the exporter to read every line")
        wait_for(lambda: _mtail_lines(mtail_address) == written, 15, "mtail to read every line")
        elapsed = time.perf_counter() - t0
        cpu = {
            "exporter": exporter.cpu_seconds() - cpu0["exporter"],
            "mtail": mtail.cpu_seconds() - cpu0["mtail"],
        }
    finally:
        exporter.stop()
        if mtail is not None:
            mtail.stop()
    path.unlink()
    return {
        "written": written,
        "rate": written / elapsed,
        **{f"{k} ms/line": v * 1000 / written for k, v in cpu.items()},
        **{f"{k} %": v / elapsed * 100 for k, v in cpu.items()},
    }


def run(ctx: Context) -> Result:
    sizes = ctx.sizes
    res = Result("follow", "8. Following a live log")
    runs = []
    for r in range(sizes.follow_repeats):
        ctx.log(f"follow: run {r + 1} of {sizes.follow_repeats}, {sizes.follow_seconds:.0f} s")
        runs.append(one_run(ctx, r))
    # A smoke run is short enough for a follower's CPU to round to zero ticks: no ratio then.
    ratios = [
        x["exporter ms/line"] / x["mtail ms/line"] if x["mtail ms/line"] else math.nan for x in runs
    ]
    ratio = median(ratios)
    res.body += [
        f"One log appended at {sizes.follow_lines_per_second:,} lines/s for "
        f"{sizes.follow_seconds:.0f} s (plain brolog lines from bench/logs.py's generator: chat, "
        "puppet chatter and its login cycles), one write() per line in ticks of "
        f"{sizes.follow_tick * 1000:.0f} ms. The exporter (`serve --state-dir`, inotify) and mtail "
        "(bench/wechaty.mtail, default 250 ms poll) follow the same file at the same time; CPU is "
        "utime + stime from /proc/<pid>/stat over the window (to the last line read), per line "
        f"written. Both read every line. {sizes.follow_repeats} runs, medians.",
        "",
        "| follower | CPU per line (ms) | CPU (% of a core) |",
        "|---|---|---|",
    ]
    for who in ("exporter", "mtail"):
        res.body.append(
            f"| {who} | {fmt(median([x[f'{who} ms/line'] for x in runs]), 4)} | "
            f"{fmt(median([x[f'{who} %'] for x in runs]), 2)} |"
        )
    res.body += [
        "",
        f"The exporter's CPU per line is {fmt(ratio, 2)}× mtail's (median of the runs' ratios; "
        f"per run: {', '.join(fmt(r, 2) for r in ratios)}).",
    ]
    res.goals.append(
        (
            f"follow CPU per line at {sizes.follow_lines_per_second:,} lines/s vs mtail",
            "≤ 1×",
            f"{fmt(ratio, 2)}×",
            round(ratio, 2) <= 1.0,
        )
    )
    res.raw = {"runs": runs}
    return res
