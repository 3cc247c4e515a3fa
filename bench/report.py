"""docs/BENCHMARKS.md and the latency plot, from the benchmarks' results."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from bench.common import BENCH, Result, Sizes

PANELS = (
    ("Detection latency (line → /api/v1/bots)", ("exporter", "mtail")),
    ("Scrape and receiver", ("/metrics", "receiver")),
    ("End to end, fast profile", ("end to end",)),
)


def write_plot(results: list[Result], path: Path) -> None:
    """ECDFs of every latency distribution, log time axis, one panel per kind."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = {k: v for r in results for k, v in r.samples.items() if v}
    fig, axes = plt.subplots(1, len(PANELS), figsize=(15, 4.5))
    for ax, (title, prefixes) in zip(axes, PANELS, strict=True):
        shown = 0
        for label, values in samples.items():
            if not label.startswith(prefixes):
                continue
            xs = sorted(values)
            ys = [(i + 1) / len(xs) for i in range(len(xs))]
            ax.step(xs, ys, where="post", label=f"{label} (n={len(xs)})")
            shown += 1
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log")
        ax.set_xlabel("milliseconds (log scale)")
        ax.set_ylabel("fraction of events ≤ x")
        ax.grid(True, which="both", alpha=0.3)
        ax.axhline(0.99, color="grey", linewidth=0.6, linestyle=":")
        if shown:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("wechaty-exporter latency distributions (ECDF; dotted line: p99)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    results: list[Result],
    machine: dict[str, str],
    command: str,
    sizes: Sizes,
    out: Path,
    plot: Path,
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{command}` on {now} ({sizes.name} sizes); do not edit by hand, rerun it. "
        "Every figure was measured in that one run, each beside its reference (mtail, `grep`, "
        "`cat`, an HTTP floor) measured on the same machine, interleaved where it matters; "
        "figures are medians of repeats or percentiles of many events. The machine has 2 cores "
        "shared with other work, so absolute times are noisy; the ratios are what to compare.",
        "",
        "## Summary",
        "",
        "| what | goal | measured | |",
        "|---|---|---|---|",
    ]
    for r in results:
        for what, goal, got, met in r.goals:
            mark = {True: "met", False: "**missed**", None: "–"}[met]
            lines.append(f"| {what} | {goal} | {got} | {mark} |")
    lines += [
        "",
        f"![latency distributions]({os.path.relpath(plot, out.parent)})",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in machine.items()],
        "",
        "## Reproduce",
        "",
        "```sh",
        "pip install -e '.[test,bench]'   # matplotlib for the plot",
        "apt-get install -y mtail prometheus prometheus-alertmanager zbar-tools",
        "bash bench/run.sh                # this report and the plot (about 10 minutes)",
        "bash bench/run.sh --smoke        # seconds: only checks that every benchmark still runs",
        "bash bench/run.sh --only replay,latency --out /tmp/b.md   # a subset, elsewhere",
        "bash bench/run.sh --only replay,follow --merge   # rerun those sections of this report",
        "```",
        "",
        "Generated logs go to a temporary directory (the 1 GiB one too) and are deleted at the "
        "end. `bench/logs.py` is the generator, `bench/wechaty.mtail` the mtail program.",
        "",
    ]
    for r in results:
        lines += [f"## {r.title}", "", *r.body, ""]
    history = BENCH / "HISTORY.md"
    if history.exists():
        lines += [history.read_text().rstrip(), ""]
    out.write_text("\n".join(lines))


def merge_report(results: list[Result], machine: dict[str, str], command: str, out: Path) -> None:
    """Rerun sections into an existing report: each benchmark's section and its summary rows are
    replaced (or added), with a line saying when, by what and under which load they were
    measured; every other section stays as the full run wrote it."""
    text = out.read_text()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = machine.get("load average (1 min) before / after", "?")
    stamp = (
        f"*Rerun by `{command}` on {now} (load average before / after {load}, "
        f"{machine.get('duration', '?')}); the rest of this report is from the full run.*"
    )
    head, *sections = re.split(r"\n(?=## )", text)
    titled = {s.split("\n", 1)[0][3:].strip(): s for s in sections}
    order = [s.split("\n", 1)[0][3:].strip() for s in sections]
    for r in results:
        body = "\n".join([f"## {r.title}", "", stamp, "", *r.body, ""])
        if r.title not in titled:
            at = next((i for i, t in enumerate(order) if t.startswith("Performance work")), None)
            order.insert(len(order) if at is None else at, r.title)
        titled[r.title] = body
    summary = titled.get("Summary", "")
    rows = summary.split("\n")
    for r in results:
        for what, goal, got, met in r.goals:
            mark = {True: "met", False: "**missed**", None: "–"}[met]
            row = f"| {what} | {goal} | {got} | {mark} |"
            found = [i for i, line in enumerate(rows) if line.startswith(f"| {what} |")]
            if found:
                rows[found[0]] = row
            else:
                last = max(i for i, line in enumerate(rows) if line.startswith("|"))
                rows.insert(last + 1, row)
    if summary:
        titled["Summary"] = "\n".join(rows)
    history = BENCH / "HISTORY.md"
    if history.exists():  # the hand-measured history, as write_report appends it
        text = history.read_text().rstrip() + "\n"
        title = text.split("\n", 1)[0][3:].strip()
        if title not in titled:
            order.append(title)
        titled[title] = text
    out.write_text("\n".join([head, *[titled[t].rstrip("\n") + "\n" for t in order]]))
