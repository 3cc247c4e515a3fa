"""Benchmark 4: footprint: peak RSS with 10 busy bots, idle CPU with 50 quiet files; mtail beside.

Busy: 10 bots, each log appended 200 lines/s (chat, with a logout → QR → login cycle every
2,000 lines) for 20 s; the follower's CPU over the window and its peak RSS (VmHWM) at the end,
and the exporter's line counts must equal what was written. Idle: 50 files that do not change;
utime + stime from /proc/<pid>/stat over 30 s after a settling pause. The peak RSS after the
1 GB cold start comes from benchmark 3.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from bench.common import (
    MTAIL_PROGRAM,
    Context,
    Http,
    Proc,
    Result,
    fmt,
    free_port,
    get_ok,
    start_exporter,
    start_process,
    wait_for,
)

CHAT = "INFO StarterBot Message#Text[🗣Contact<Alice>@Room<Ops 运维群>]\thello 好的 see you"


def _stamp() -> str:
    return f"{datetime.now():%H:%M:%S}"


def _seed_logs(ctx: Context, prefix: str, count: int) -> list[tuple[str, Path]]:
    logs = []
    for i in range(count):
        path = ctx.tmp / f"{prefix}-{i:02d}.log"
        lines = [f"{_stamp()} {CHAT}"] * 50 + [f"{_stamp()} INFO StarterBot Contact<Bot{i}> login"]
        path.write_text("\n".join(lines) + "\n")
        logs.append((f"bot{i:02d}", path))
    return logs


def _mtail(ctx: Context, name: str, logs: list[tuple[str, Path]]) -> tuple[Proc, str]:
    port = free_port()
    proc = start_process(
        [
            "mtail", "--progs", str(MTAIL_PROGRAM), "--logtostderr",
            "--logs", ",".join(str(p) for _, p in logs),
            "--address", "127.0.0.1", "--port", str(port),
        ],
        ctx.tmp / f"{name}.out",
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    wait_for(lambda: proc.check() or get_ok(address, "/metrics"), 30, "mtail /metrics")
    return proc, address


def lines_read(address: str) -> int:
    http_ = Http(address)
    metrics = http_.get("/metrics")[1].decode()
    http_.close()
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("wechaty_log_lines_total{")
        )
    )


def busy(ctx: Context, proc: Proc, logs: list[tuple[str, Path]]) -> tuple[float, int, int]:
    """Write for busy_seconds; returns (CPU % of one core, peak RSS KiB, lines written)."""
    rate = ctx.sizes.busy_lines_per_second
    seconds = ctx.sizes.busy_seconds
    files = [path.open("a", encoding="utf-8") for _, path in logs]
    written = 0
    tick = 0.05
    per_tick = max(1, round(rate * tick))
    cpu0, t0 = proc.cpu_seconds(), time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        for i, f in enumerate(files):
            batch = [f"{_stamp()} {CHAT}"] * per_tick
            if n % max(1, 2000 // per_tick) == 0 and n:  # an event cycle every 2,000 lines
                batch[-3:] = [
                    f"{_stamp()} INFO StarterBot Contact<Bot{i}> logout",
                    f"{_stamp()} INFO StarterBot onScan: Waiting(2) - "
                    f"https://login.weixin.qq.com/l/b{i}n{n}",
                    f"{_stamp()} INFO StarterBot Contact<Bot{i}> login",
                ]
            f.write("\n".join(batch) + "\n")
            f.flush()
            written += len(batch)
        n += 1
        time.sleep(max(0.0, t0 + n * tick - time.perf_counter()))
    for f in files:
        f.close()
    time.sleep(0.5)  # let the follower catch up
    cpu = (proc.cpu_seconds() - cpu0) / (time.perf_counter() - t0) * 100
    return cpu, proc.status_kb("VmHWM"), written


def idle(ctx: Context, proc: Proc) -> float:
    time.sleep(min(3.0, ctx.sizes.idle_seconds))
    cpu0, t0 = proc.cpu_seconds(), time.perf_counter()
    time.sleep(ctx.sizes.idle_seconds)
    return (proc.cpu_seconds() - cpu0) / (time.perf_counter() - t0) * 100


def run(ctx: Context) -> Result:
    sizes = ctx.sizes
    res = Result("footprint", "4. Footprint")
    rows = []

    # busy: exporter, then mtail, on fresh files
    logs = _seed_logs(ctx, "busy", 10)
    state = ctx.tmp / "busy-state"
    state.mkdir(exist_ok=True)
    proc, address = start_exporter(ctx, "busy-exporter", logs, state_dir=state)
    try:
        ctx.log(f"footprint: 10 busy bots, {sizes.busy_seconds:.0f} s")
        before = lines_read(address)
        cpu, hwm, written = busy(ctx, proc, logs)
        wait_for(lambda: lines_read(address) == before + written, 10, "every line to be read")
    finally:
        proc.stop()
    busy_exporter = (cpu, hwm)
    rows.append(("exporter", f"10 bots × {sizes.busy_lines_per_second} lines/s", cpu, hwm))
    logs = _seed_logs(ctx, "busy-mtail", 10)
    mtail, _ = _mtail(ctx, "busy-mtail", logs)
    try:
        ctx.log("footprint: mtail, 10 busy files")
        cpu, hwm, _ = busy(ctx, mtail, logs)
    finally:
        mtail.stop()
    rows.append(("mtail", f"10 files × {sizes.busy_lines_per_second} lines/s", cpu, hwm))

    # idle: 50 quiet files
    logs = _seed_logs(ctx, "idle", 50)
    idle_cpu = {}
    for label, inotify in (("exporter", True), ("exporter --no-inotify", False)):
        proc, _ = start_exporter(ctx, f"idle-{inotify}", logs, inotify=inotify)
        try:
            ctx.log(f"footprint: {label}, 50 quiet files, {sizes.idle_seconds:.0f} s")
            idle_cpu[label] = idle(ctx, proc)
            rows.append((label, "50 quiet files", idle_cpu[label], proc.status_kb("VmHWM")))
        finally:
            proc.stop()
    mtail, _ = _mtail(ctx, "idle-mtail", logs)
    try:
        ctx.log("footprint: mtail, 50 quiet files")
        cpu = idle(ctx, mtail)
        rows.append(("mtail", "50 quiet files", cpu, mtail.status_kb("VmHWM")))
    finally:
        mtail.stop()

    res.body += [
        "CPU is utime + stime of the process over the window, as % of one core; peak RSS is "
        "VmHWM. Busy: 10 logs appended at the rate shown (chat, with a logout → QR → login cycle "
        f"every 2,000 lines) for {sizes.busy_seconds:.0f} s; the exporter's "
        "`wechaty_log_lines_total` matched the lines written. Idle: "
        f"{sizes.idle_seconds:.0f} s after a settling pause. mtail follows the same files with "
        "bench/wechaty.mtail.",
        "",
        "| process | load | CPU (% of a core) | peak RSS (MB) |",
        "|---|---|---|---|",
        *[f"| {p} | {what} | {fmt(c, 2)} | {fmt(h / 1024, 1)} |" for p, what, c, h in rows],
    ]
    cold = ctx.shared.get("coldstart_hwm")
    if cold:
        label, kb = cold
        res.body.append(
            f"| exporter | after the {label} cold start (benchmark 3) | – | {fmt(kb / 1024, 1)} |"
        )
        res.goals.append(
            (
                f"peak RSS after the {label} cold start",
                "< 60 MB",
                f"{fmt(kb / 1024, 1)} MB",
                kb < 60 * 1024,
            )
        )
    res.goals.append(
        (
            "peak RSS, 10 busy bots",
            "< 60 MB",
            f"{fmt(busy_exporter[1] / 1024, 1)} MB",
            busy_exporter[1] < 60 * 1024,
        )
    )
    got = idle_cpu["exporter"]
    res.goals.append(
        ("idle CPU, 50 quiet files (inotify)", "< 0.5 % of a core", f"{fmt(got, 2)} %", got < 0.5)
    )
    res.raw = {"rows": rows}
    return res
