"""`python -m bench.reliability`: run tests/reliability once, write docs/RELIABILITY.md from it.

    python -m bench.reliability                          # the whole suite; writes the page
    python -m bench.reliability --out /tmp/r.md -- -m "not slow"   # pytest arguments after --
    python -m bench.reliability --figures F --out /tmp/r.md        # render a kept figures file

The tests record their figures through the `figures` fixture (tests/reliability/conftest.py);
with RELIABILITY_FIGURES=FILE set they append them to FILE as JSON lines, with every test's
outcome. This script starts with an empty FILE, writes the run's date, machine and command into
it, runs pytest once, and renders the page from FILE alone: every number on the page comes from
that one run. The prose around the tables is bench/reliability.template.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import BENCH, REPO, load1, machine_info

TEMPLATE = BENCH / "reliability.template.md"
OUT = REPO / "docs" / "RELIABILITY.md"
ENV = "RELIABILITY_FIGURES"  # tests/reliability/conftest.py
# The worst of a test's reports is its outcome; an xfail is a strict expected failure (a known
# limit the test documents), which is as good as a pass here.
RANK = {"passed": 0, "xfailed": 1, "skipped": 2, "xpassed": 3, "failed": 4}
GOOD = ("passed", "xfailed")


# --- one run's records ---------------------------------------------------------------------------


@dataclass
class Run:
    """What one figures file holds: the run, each test's figures and outcome."""

    meta: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    outcomes: dict[str, str] = field(default_factory=dict)  # node id -> passed/failed/skipped
    durations: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @classmethod
    def load(cls, path: Path) -> Run:
        run = cls()
        runs = 0
        for line in path.read_text(encoding="utf-8").splitlines():
            doc = json.loads(line)
            kind = doc["kind"]
            if kind == "run":
                runs += 1
                run.meta = doc
            elif kind == "end":
                run.end = doc
            elif kind == "figure":
                run.figures[doc["function"]].append(doc)
            elif kind == "outcome":  # a failed setup, call or teardown fails the test
                test = doc["test"]
                run.durations[test] += doc["duration"]
                before = run.outcomes.get(test, "passed")
                run.outcomes[test] = max(before, doc["outcome"], key=RANK.__getitem__)
        if runs != 1:
            raise SystemExit(f"{path}: {runs} runs recorded; a page is made from exactly one")
        return run

    def tests_of(self, function: str) -> list[str]:
        return [t for t in self.outcomes if t.split("::")[-1].split("[")[0] == function]

    def verdict(self, functions: tuple[str, ...]) -> tuple[str, bool]:
        """("", True) when every test of the functions passed; else what went wrong."""
        tests = [t for f in functions for t in self.tests_of(f)]
        if not tests:
            return "not run", False
        bad = [t for t in tests if self.outcomes[t] not in GOOD]
        if not bad:
            return "", True
        kinds = sorted({self.outcomes[t] for t in bad})
        return f"**{' / '.join(kinds).upper()}**: {len(bad)} of {len(tests)}", False


# --- the results table ---------------------------------------------------------------------------


def n(x: float) -> str:
    """A count, with thin spaces between thousands as the prose writes them."""
    return f"{x:,.0f}".replace(",", " ")


def ms(x: float) -> str:
    return f"{x:.1f} ms" if x < 10 else f"{x:.0f} ms"


Row = tuple[str, str, str]  # scenario, count, result
Builder = Callable[[list[dict[str, Any]]], tuple[str, str]]


def _data(figs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["data"] for f in figs]


def rotation(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = _data(figs)
    total = {k: sum(x[k] for x in d) for k in ("lines", "logins", "logouts", "qr_codes")}
    return (
        f"{len(d)} scenarios, {n(total['lines'])} lines, {total['logins']} logins, "
        f"{total['logouts']} logouts, {total['qr_codes']} QR codes",
        f"0 events lost, 0 double-counted: the state equal to the oracle in all {len(d)}, "
        "also after the rotated-away file was closed",
    )


def kill9(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"{d['kills']} kills, {d['starts']} starts, {n(d['lines'])} lines (seed {d['seed']})",
        f"after every restart the state equals the oracle ({d['logins']} logins, "
        f"{d['logouts']} logouts, {d['qr_codes']} QR codes at the end); lines_total exact; "
        f"{d['kills_with_unsaved']} of {d['kills']} kills left {d['unsaved_median']} (median) "
        f"to {d['unsaved_max']} (max) lines unsaved, each read again and applied once",
    )


def puppet(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"1 alert, puppet down {d['down_seconds']:.1f} s, {d['answered_503']:.0f} × 503",
        f"delivered {d['delivered_seconds']:.1f} s after the puppet came back: "
        f"{d['texts']} text + {d['images']} QR, no repeat in the flushes that followed",
    )


def killed_receiver(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"1 alert, QR refused {d['refused']} ×",
        f"QR delivered {d['images']} ×, intro text sent {d['texts']} × (not again)",
    )


def fuzz_parser(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"{n(d['cases'])} lines, {d['seconds']:.0f} s",
        f"no exception; {n(d['accepted'])} QRs accepted, every one allowlisted, "
        f"{n(d['rejected'])} rejected; slowest case {ms(d['slowest_ms'])}; "
        f"tracemalloc peak {d['peak_kib']} KiB",
    )


def fuzz_payload(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"{n(d['cases'])} bodies, {d['seconds']:.0f} s",
        f"only `PayloadError` raised; every text built from the {n(d['decoded'])} decoded "
        f"bodies encodes to UTF-8; slowest case {ms(d['slowest_ms'])}; "
        f"peak {d['peak_kib']} KiB",
    )


def oversized(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        "declared 10 MiB; chunked",
        f"413 after {ms(d['declared_ms'])}, no body sent; chunked: 413 after "
        f"{d['chunked_kib']} KiB sent (cap {d['cap_kib']} KiB in the test)",
    )


def slowloris(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        "1 body, 1 byte / 100 ms",
        f"408 after {d['seconds']:.2f} s, {d['sent']} of {d['size']} bytes sent (body timeout "
        f"{d['body_timeout']:g} s in the test, 10 s by default)",
    )


def stalled(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"{d['stalled']} connections",
        f"{d['delivered']} real alerts delivered meanwhile, slowest answer "
        f"{ms(d['slowest_ms'])}; the {d['answered_408']} stalled bodies got 408",
    )


def broken(figs: list[dict[str, Any]]) -> tuple[str, str]:
    codes = sorted({f["data"]["status"] for f in figs if "status" in f["data"]})
    cut = sum(f["data"].get("cut", 0) for f in figs)
    kinds = sum(1 for f in figs if "status" in f["data"])
    return (
        f"{kinds} kinds, plus {cut} bodies cut short",
        f"answered {', '.join(map(str, codes))}, no 500; cut bodies a quiet 400 each; "
        "the receiver keeps serving",
    )


def forged(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"{d['messages']} chat messages × 2 rounds, {d['forged_lines']} forged scan lines each, "
        "7 dialects and wrappers plus pm2 JSON",
        f"{d['rejected']} rejected, 0 accepted; the admin got {d['images']} QR (the genuine "
        f"one) and {d['texts']} texts, none naming a forged URL",
    )


def long_lines(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"{d['long_lines']} lines of 10 MiB, {d['bad_lines']} lines of bad bytes",
        f"state equal to the oracle; {d['cut']} lines cut (1 warning logged), {d['rejected']} QRs "
        f"rejected; RSS {d['rss_before_mib']} → {d['rss_peak_mib']} MiB",
    )


def not_a_file(figs: list[dict[str, Any]]) -> tuple[str, str]:
    return (
        f"{len(figs)}",
        "ready at once, 1 warning each, `read_errors_total` 1, the other bot is not affected, "
        "the bot recovers when the file is fixed",
    )


def load(figs: list[dict[str, Any]]) -> tuple[str, str]:
    d = figs[-1]["data"]
    return (
        f"{n(d['lines'])} lines, {d['scrapes']} scrapes of {d['scrape_kib']} KiB",
        f"scrapes: median {ms(d['scrape_median_ms'])}, max {ms(d['scrape_max_ms'])}; RSS "
        f"{d['rss_first_mib']:.0f} → {d['rss_max_mib']:.0f} MiB (+{d['rss_growth_mib']:.1f} MiB "
        f"after the first 5 s); {n(d['events'])} events, {d['missed']} bots off the oracle",
    )


def cluster(figs: list[dict[str, Any]]) -> tuple[str, str]:
    """Recorded as text: its own words."""
    return ("1 alert, firing then resolved", figs[-1]["text"])


ROWS: list[tuple[str, tuple[str, ...], Builder]] = [
    ("rotation matrix (real exporter process)", ("test_rotation_matrix",), rotation),
    ("`kill -9` at random points of a burst", ("test_kill9_at_random_points_of_a_burst",), kill9),
    (
        "puppet service down → 503 → Alertmanager retries",
        ("test_puppet_down_then_alertmanager_retries_and_delivers_once",),
        puppet,
    ),
    (
        "receiver SIGKILLed mid-retry, restarted on its state dir",
        ("test_receiver_killed_mid_retry_loses_and_repeats_nothing",),
        killed_receiver,
    ),
    (
        "2 Alertmanagers in a cluster, both notifying",
        ("test_two_clustered_alertmanagers_one_dm_per_alert",),
        cluster,
    ),
    ("fuzz: dialect parser", ("test_fuzz_dialect_parser",), fuzz_parser),
    ("fuzz: webhook payload parser", ("test_fuzz_webhook_payload_parser",), fuzz_payload),
    ("oversized bodies", ("test_oversized_bodies_are_refused_without_reading_them",), oversized),
    ("slowloris body", ("test_slow_body_is_cut_off",), slowloris),
    (
        "50 stalled bodies + 50 stalled headers",
        ("test_stalled_clients_do_not_hold_the_receiver",),
        stalled,
    ),
    (
        "broken HTTP bodies (bad chunk, two lengths, bad gzip, ...)",
        ("test_broken_bodies_get_a_4xx", "test_body_cut_short_by_the_client"),
        broken,
    ),
    (
        "forged QR lines via multi-line chat text (exporter + receiver, outbox)",
        ("test_forged_qr_lines_never_reach_an_admin",),
        forged,
    ),
    ("10 MiB lines + invalid UTF-8", ("test_ten_megabyte_lines_and_invalid_utf8",), long_lines),
    (
        "log is a directory / a FIFO / unreadable (root without `CAP_DAC_*`)",
        ("test_log_that_is_not_a_readable_file",),
        not_a_file,
    ),
    (
        "load: 200 bots, 1 000 lines/s, /metrics every 1 s",
        ("test_200_bots_at_1000_lines_per_second",),
        load,
    ),
]


def results_table(run: Run) -> list[str]:
    lines = ["| scenario | count | result |", "|---|---|---|"]
    for scenario, functions, build in ROWS:
        figs = [f for fn in functions for f in run.figures.get(fn, [])]
        verdict, ok = run.verdict(functions)
        if figs:
            count, result = build(figs)
        else:
            count, result = "–", ""
        if not ok:
            result = f"{verdict}{'; ' + result if result else ''}"
        if scenario.startswith("load") and figs:
            scenario += f", {figs[-1]['data']['seconds']:g} s"
        lines.append(f"| {scenario} | {count} | {result} |")
    known = {fn for _, functions, _ in ROWS for fn in functions}
    others = sorted({t for t in run.outcomes if t.split("::")[-1].split("[")[0] not in known})
    with_figures = [f for fn, figs in sorted(run.figures.items()) if fn not in known for f in figs]
    if with_figures:
        lines += ["", "Other figures of this run:", ""]
        for fig in with_figures:
            verdict = run.outcomes.get(fig["test"], "not run")
            lines.append(f"- `{fig['test'].split('::')[-1]}` ({verdict}): {fig['text']}")
    plain = [t for t in others if t not in {f["test"] for f in with_figures}]
    if plain:
        by: dict[str, list[str]] = defaultdict(list)
        for t in plain:
            by[run.outcomes[t]].append(t)
        lines += ["", f"Besides these, {len(plain)} tests that record no figures:", ""]
        for outcome in sorted(by, key=RANK.__getitem__):
            tests = by[outcome]
            names = ", ".join(f"`{t.split('::')[-1]}`" for t in tests)
            shown = outcome.upper() if outcome not in GOOD else outcome
            lines.append(f"- {len(tests)} {shown}{': ' + names if outcome != 'passed' else ''}")
    return lines


def suite_line(run: Run) -> str:
    counts: dict[str, int] = defaultdict(int)
    for outcome in run.outcomes.values():
        counts[outcome] += 1
    seconds = run.end.get("seconds", 0.0)
    slow = sorted(run.durations.items(), key=lambda kv: -kv[1])[:1]
    parts = [f"{counts[k]} {k}" for k in RANK if counts[k]]
    text = (
        f"This run: **{sum(counts.values())} tests, {', '.join(parts)}, in {seconds:.0f} s** "
        f"(pytest exit status {run.end.get('returncode', '?')})."
    )
    if slow:
        test, took = slow[0]
        text += f" The longest test was `{test.split('::')[-1]}` ({took:.0f} s)."
    return text


def generated(run: Run) -> str:
    meta = run.meta
    machine = dict(meta.get("machine", {}))
    machine["load average (1 min) before / after"] = (
        f"{meta.get('load_before', 0):.2f} / {run.end.get('load_after', 0):.2f}"
    )
    rows = "\n".join(f"| {k} | {v} |" for k, v in machine.items())
    return (
        f"Written by `{meta['command']}` from the run of {meta['date']} (pytest "
        f"`{meta['pytest']}`, revision {meta.get('revision', 'unknown')}); do not edit by hand, "
        "rerun it. The machine:\n\n"
        f"| | |\n|---|---|\n{rows}"
    )


def render(run: Run) -> str:
    page = TEMPLATE.read_text(encoding="utf-8")
    for key, value in (
        ("@@GENERATED@@", generated(run)),
        ("@@SUITE@@", suite_line(run)),
        ("@@RESULTS@@", "\n".join(results_table(run))),
    ):
        assert key in page, key
        page = page.replace(key, value)
    return page


# --- running the suite ---------------------------------------------------------------------------


def revision() -> str:
    """The commit the run tested, and whether the tree had changes on top of it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    changed = len(git("status", "--porcelain").splitlines())
    return f"{commit}" + (f" with {changed} files changed on top" if changed else "")


def run_suite(figures: Path, pytest_args: list[str], command: str) -> int:
    figures.write_text("")  # one run per file: nothing carried over
    argv = [sys.executable, "-m", "pytest", "tests/reliability", "-p", "no:cacheprovider", "-rs"]
    argv += pytest_args
    meta = {
        "kind": "run",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "pytest": shlex.join(["python", *argv[1:]]),
        "revision": revision(),
        "machine": machine_info(),
        "load_before": load1(),
        "env": {k: v for k, v in os.environ.items() if k in ("LOAD_SECONDS", "FUZZ_EXAMPLES")},
    }
    with figures.open("a", encoding="utf-8") as f:
        f.write(json.dumps(meta, ensure_ascii=False) + "\n")
    began = time.monotonic()
    done = subprocess.run(argv, cwd=REPO, env={**os.environ, ENV: str(figures)}, check=False)
    end = {
        "kind": "end",
        "seconds": time.monotonic() - began,
        "returncode": done.returncode,
        "load_after": load1(),
    }
    with figures.open("a", encoding="utf-8") as f:
        f.write(json.dumps(end) + "\n")
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    pytest_args: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, pytest_args = args[:cut], args[cut + 1 :]
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help="the page (default %(default)s)")
    parser.add_argument(
        "--figures", type=Path, help="render this figures file of one run, without running"
    )
    parser.add_argument("--keep", type=Path, help="keep the run's figures file here")
    opts = parser.parse_args(args)
    if opts.figures is not None:
        returncode = 0
        figures = opts.figures
    else:
        figures = opts.keep or Path(tempfile.mkdtemp(prefix="wechaty-reliability-")) / "f.jsonl"
        command = shlex.join(["python", "-m", "bench.reliability", *(argv or sys.argv[1:])])
        returncode = run_suite(figures, pytest_args, command)
    run = Run.load(figures)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(render(run), encoding="utf-8")
    print(f"wrote {opts.out} from {figures}", flush=True)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
