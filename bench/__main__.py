"""`python -m bench`: run every benchmark of issue 7, write docs/BENCHMARKS.md and the plot.

bash bench/run.sh            # the full run (about 10 minutes), writes the report
bash bench/run.sh --smoke    # seconds: tiny sizes, only checks that every benchmark works
bash bench/run.sh --only replay,latency --out /tmp/b.md
bash bench/run.sh --only replay,follow --merge   # rerun two sections of docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import (
    b_coldstart,
    b_e2e,
    b_follow,
    b_footprint,
    b_latency,
    b_receiver,
    b_replay,
    b_scrape,
)
from bench.common import FULL, REPO, SMOKE, Context, Result, load1, machine_info
from bench.report import merge_report, write_plot, write_report

BENCHMARKS = {
    "replay": b_replay.run,
    "follow": b_follow.run,
    "latency": b_latency.run,
    "coldstart": b_coldstart.run,  # also footprint (a): peak RSS after the 1 GB cold start
    "footprint": b_footprint.run,
    "scrape": b_scrape.run,
    "receiver": b_receiver.run,
    "e2e": b_e2e.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; only check they run")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {list(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, help="report (default docs/BENCHMARKS.md; smoke: tmp)")
    parser.add_argument("--plot", type=Path, help="PNG (default docs/benchmarks-latency.png)")
    parser.add_argument("--tmp", type=Path, help="scratch directory (default: a new one in /tmp)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace those benchmarks' sections and summary rows in the report "
        "instead of writing a report of them alone",
    )
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    tmp = Path(tempfile.mkdtemp(prefix="wechaty-bench-", dir=args.tmp))
    if args.smoke:
        out = args.out or Path(tempfile.gettempdir()) / "wechaty-bench-smoke.md"
        plot = args.plot or out.with_suffix(".png")
    else:
        out = args.out or REPO / "docs" / "BENCHMARKS.md"
        plot = args.plot or REPO / "docs" / "benchmarks-latency.png"
    began = time.monotonic()

    def log(message: str) -> None:
        print(f"[bench {time.monotonic() - began:6.1f}s load {load1():.2f}] {message}", flush=True)

    ctx = Context(sizes, tmp, log)
    machine = machine_info()
    load_before = load1()
    results: list[Result] = []
    failed = []
    try:
        for name in chosen:
            log(f"== {name}")
            try:
                results.append(BENCHMARKS[name](ctx))
            except Exception:
                failed.append(name)
                traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # generated logs, the 1 GB one too
    machine["load average (1 min) before / after"] = f"{load_before:.2f} / {load1():.2f}"
    machine["duration"] = f"{time.monotonic() - began:.0f} s"
    command = "bash bench/run.sh" + (" --smoke" if args.smoke else "")
    if args.only:
        command += f" --only {args.only}"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and out.exists():
        command += " --merge"
        merge_report(results, machine, command, out)
        log(f"merged into {out} (the plot stays the full run's)")
    else:
        write_plot(results, plot)
        write_report(results, machine, command, sizes, out, plot)
        log(f"wrote {out} and {plot}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
