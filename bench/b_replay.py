"""Benchmark 1: replay throughput vs `mtail --one_shot` (bench/wechaty.mtail) and `grep -c ''`.

Also `replay` with custom rules configured (a dialect in mode ``alongside``: the bot's own login
and logout lines besides the built-in detection; the log holds none of them, so the counts stay
the generator's truth and the mtail program stays equivalent), and replay's start-up (an empty
file, and `-X importtime`: it must not import the HTTP stack).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.common import MTAIL_PROGRAM, Context, Result, exporter_command, fmt, median
from bench.logs import WRAPPERS, Truth, generate, write_log

COUNTERS = {
    "lines": "wechaty_log_lines_total",
    "logins": "wechaty_bot_logins_total",
    "logouts": "wechaty_bot_logouts_total",
    "qr_codes": "wechaty_qr_codes_total",
    "rejected_qr": "wechaty_exporter_rejected_qr_total",
    "errors": "wechaty_log_errors_total",
}


# A custom dialect as docs/dialects.md describes one: two rules of the bot's own, alongside the
# built-in detection.
CUSTOM_CONFIG = """\
dialects:
  mybot:
    mode: alongside
    description: the bot's own login and logout lines, besides the built-in detection
    rules:
      - name: my-login
        event: login
        match: '(?P<time>\\d\\d:\\d\\d:\\d\\d) +INFO +MyBot logged in as (?P<user>.+)'
      - name: my-logout
        event: logout
        match: '(?P<time>\\d\\d:\\d\\d:\\d\\d) +INFO +MyBot logged out: (?P<reason>.+)'
bots:
  bench:
    logs: [{path}]
    dialect: mybot
"""
HTTP_STACK = ("aiohttp", "prometheus_client", "http.server")
STARTUP_RUNS = 11


def commands(path: Path, config: Path | None = None) -> dict[str, list[str]]:
    replay = [*exporter_command(), "replay", "--bot", "bench", "--format", "prometheus"]
    custom: dict[str, list[str]] = {}
    if config is not None:
        name = "wechaty-exporter replay --config custom.yaml"
        custom = {name: [*replay, "--config", str(config), str(path)]}
    return {
        "grep -c ''": ["grep", "-c", "", str(path)],
        "mtail --one_shot": [
            "mtail", "--one_shot", "--one_shot_format", "prometheus", "--logtostderr",
            "--progs", str(MTAIL_PROGRAM), "--logs", str(path),
            "--address", "127.0.0.1", "--port", "0",
        ],
        "wechaty-exporter replay": [*replay, str(path)],
        **custom,
    }  # fmt: skip


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the child) and stdout of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def counters(exposition: str) -> dict[str, float]:
    """Our counter names → value, from a Prometheus exposition (ours or mtail's)."""
    found = {}
    for key, name in COUNTERS.items():
        m = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", exposition, re.MULTILINE)
        if m:
            found[key] = float(m.group(1))
    return found


def check_counts(tool: str, got: dict[str, float], truth: Truth) -> list[str]:
    want = truth.counters()
    bad = [f"{k}: {got.get(k)} != {v}" for k, v in want.items() if got.get(k) != v]
    if bad:
        raise AssertionError(f"{tool} disagrees with the generated truth: {'; '.join(bad)}")
    return [f"{k} {int(v)}" for k, v in got.items()]


def compare(
    path: Path, truth: Truth, repeats: int, config: Path | None = None
) -> dict[str, dict[str, list[float]]]:
    """Interleaved runs (the order rotates each repeat); checks every tool's counts once."""
    cmds = commands(path, config)
    path.read_bytes()  # page cache warm for everyone
    runs: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in cmds}
    names = list(cmds)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            wall, cpu, out = timed(cmds[name])
            runs[name]["wall"].append(wall)
            runs[name]["cpu"].append(cpu)
            if r == 0:
                if name == "grep -c ''":
                    assert int(out) == truth.lines, (out, truth.lines)
                else:
                    check_counts(name, counters(out), truth)
    return runs


def http_imports(empty: Path) -> list[str]:
    """The modules of the HTTP stack `replay` imports (`python -X importtime`)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "wechaty_exporter", "replay", "--bot", "b",
         "--format", "prometheus", str(empty)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    return [name for name in HTTP_STACK if name in names]


def run(ctx: Context) -> Result:
    sizes = ctx.sizes
    res = Result("replay", "1. Replay throughput")
    ctx.log(f"replay: generating {sizes.replay_lines:,} lines")
    lines, truth = generate(sizes.replay_lines)
    path = ctx.tmp / "replay.log"
    size = write_log(path, lines)
    del lines
    empty = ctx.tmp / "empty.log"
    empty.write_bytes(b"")
    config = ctx.tmp / "custom.yaml"
    config.write_text(CUSTOM_CONFIG.format(path=path))
    ctx.log(f"replay: {size / 1e6:.0f} MB; {sizes.replay_repeats} interleaved repeats")
    runs = compare(path, truth, sizes.replay_repeats, config)
    small = ctx.tmp / "small.log"
    small_lines, _ = generate(1000, seed=7)
    write_log(small, small_lines)
    # As an installed package starts: its modules' bytecode cached (pip compiles it; a checkout
    # run with PYTHONDONTWRITEBYTECODE compiles every module at every start).
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = str(ctx.tmp / "pycache")
    timed(commands(small)["wechaty-exporter replay"], cached)  # writes the cache
    startup, startup_small, startup_cached, floor = [], [], [], []
    for _ in range(STARTUP_RUNS):  # interleaved with the interpreter's own start, the floor
        floor.append(timed([sys.executable, "-c", "pass"])[0])
        startup.append(timed(commands(empty)["wechaty-exporter replay"])[0])
        startup_small.append(timed(commands(small)["wechaty-exporter replay"])[0])
        startup_cached.append(timed(commands(small)["wechaty-exporter replay"], cached)[0])
    bytecode = "not written" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "written as usual"
    imported = http_imports(empty)

    mtail_wall = runs["mtail --one_shot"]["wall"]
    replay_wall = runs["wechaty-exporter replay"]["wall"]
    custom_wall = runs["wechaty-exporter replay --config custom.yaml"]["wall"]
    grep_wall = runs["grep -c ''"]["wall"]
    vs_mtail = median([m / r for m, r in zip(mtail_wall, replay_wall, strict=True)])
    custom_vs_mtail = median([m / r for m, r in zip(mtail_wall, custom_wall, strict=True)])
    vs_grep = median([r / g for g, r in zip(grep_wall, replay_wall, strict=True)])
    mix = ", ".join(f"{k} {v / truth.lines:.0%}" for k, v in sorted(truth.wrappers.items()))
    res.body += [
        f"A generated log of {truth.lines:,} lines ({size / 1e6:.0f} MB): {truth.logins} logins, "
        f"{truth.logouts} logouts, {truth.qr_codes} QR codes (with QR art; onScan, EventLogger and "
        f"QRCodeTerminal forms; some printed twice, which counts once), {truth.rejected_qr} "
        f"rejected QRs, {truth.errors} ERR lines, "
        f"forged chat lines; the rest chat and puppet chatter. Wrappers by share of lines: {mix}. "
        "`bench/wechaty.mtail` implements the same semantics for mtail (state changes, not lines; "
        "a QR code when the pending QR changes; the QRCodeTerminal two-line rule; the QR host "
        "allowlist); every tool's counts were "
        "checked against the generator's truth (all equal). The page cache is warm; the runs are "
        f"interleaved, {sizes.replay_repeats} repeats, medians.",
        "",
        "| command | wall (s) | CPU (s) | lines/s | vs mtail |",
        "|---|---|---|---|---|",
    ]
    for name, r in runs.items():
        wall = median(r["wall"])
        ratio = median([m / w for m, w in zip(mtail_wall, r["wall"], strict=True)])
        res.body.append(
            f"| `{name}` | {fmt(wall)} | {fmt(median(r['cpu']))} | "
            f"{fmt(truth.lines / wall / 1e6)} M | {fmt(ratio, 1)}× |"
        )
    res.body += [
        "",
        "*`replay --config custom.yaml`*: with a dialect of two rules of the bot's own in "
        "mode `alongside` (bench/b_replay.py, `CUSTOM_CONFIG`); the log holds none of its lines, "
        "so its counts are the truth too. Every ratio is the median of the repeats' ratios "
        f"(replay ÷ `grep -c ''`: {fmt(vs_grep, 1)}×, the read bound).",
        "",
        f"Start-up: `wechaty-exporter replay` of an empty file (interpreter start, imports, "
        f"output) takes {fmt(median(startup), 3)} s (median of {len(startup)}; min "
        f"{fmt(min(startup), 3)} s, max {fmt(max(startup), 3)} s), of a 1,000-line log "
        f"{fmt(median(startup_small), 3)} s (min {fmt(min(startup_small), 3)} s; bytecode "
        f"{bytecode}), and {fmt(median(startup_cached), 3)} s (min "
        f"{fmt(min(startup_cached), 3)} s) with the bytecode of every module cached, as an "
        f"installed package starts; against {fmt(median(floor), 3)} s for `python -c pass` "
        "(all interleaved). Of the HTTP stack "
        f"({', '.join(HTTP_STACK)}) it imports {', '.join(imported) or 'nothing'} "
        "(`python -X importtime`; the text output is `collector.render_text`).",
    ]
    res.goals += [
        ("replay vs mtail", "≥ 10×", f"{fmt(vs_mtail, 1)}×", vs_mtail >= 10),
        (
            "replay vs mtail, custom rules",
            "≥ 10×",
            f"{fmt(custom_vs_mtail, 1)}×",
            custom_vs_mtail >= 10,
        ),
        ("replay vs `grep -c ''`", "≤ 5× its time", f"{fmt(vs_grep, 1)}×", vs_grep <= 5),
        (
            "replay start-up (empty file)",
            "≤ 0.1 s",
            f"{fmt(median(startup), 3)} s",
            median(startup) <= 0.1,
        ),
        (
            "replay start-up (1,000-line log)",
            "≤ 0.1 s",
            f"{fmt(median(startup_small), 3)} s",
            median(startup_small) <= 0.1,
        ),
        (
            "replay start-up (1,000-line log, bytecode cached as installed)",
            "≤ 0.1 s",
            f"{fmt(median(startup_cached), 3)} s",
            median(startup_cached) <= 0.1,
        ),
    ]
    res.raw = {
        "runs": runs,
        "startup": startup,
        "startup_small": startup_small,
        "startup_cached": startup_cached,
        "python_floor": floor,
        "imported": imported,
        "lines": truth.lines,
        "bytes": size,
    }

    # One wrapper at a time: where each variant stands.
    res.body += [
        "",
        f"Per wrapper ({sizes.wrapper_lines:,}-line logs of one wrapper each, "
        f"{sizes.wrapper_repeats} interleaved repeats, medians). At this size replay's start-up "
        "is a large share of its time, so its rate without it (wall minus the empty-file run) "
        "is shown too:",
        "",
        "| wrapper | MB | mtail lines/s | replay lines/s | vs mtail | replay lines/s "
        "without start-up |",
        "|---|---|---|---|---|---|",
    ]
    for wrapper in WRAPPERS:
        wlines, wtruth = generate(sizes.wrapper_lines, seed=13, wrappers=(wrapper,))
        wpath = ctx.tmp / f"replay-{wrapper}.log"
        wsize = write_log(wpath, wlines)
        del wlines
        ctx.log(f"replay: wrapper {wrapper}")
        wruns = compare(wpath, wtruth, sizes.wrapper_repeats)
        m, p = wruns["mtail --one_shot"]["wall"], wruns["wechaty-exporter replay"]["wall"]
        res.body.append(
            f"| {wrapper} | {wsize / 1e6:.0f} | {fmt(wtruth.lines / median(m) / 1e6)} M | "
            f"{fmt(wtruth.lines / median(p) / 1e6)} M | "
            f"{fmt(median([a / b for a, b in zip(m, p, strict=True)]), 1)}× | "
            f"{fmt(wtruth.lines / max(1e-3, median(p) - median(startup)) / 1e6)} M |"
        )
        wpath.unlink()
    path.unlink()
    return res
