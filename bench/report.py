"""docs/BENCHMARKS.md and the latency plot, from the benchmarks' results."""

from __future__ import annotations

import os
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
