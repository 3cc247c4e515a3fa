"""Shared by the benchmarks: sizes, statistics, processes, HTTP, /proc readings, machine info."""

from __future__ import annotations

import http.client
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scripts.processes import Child as Proc
from scripts.processes import spawn

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
MTAIL_PROGRAM = BENCH / "wechaty.mtail"


def exporter_command() -> list[str]:
    script = Path(sys.executable).parent / "wechaty-exporter"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "wechaty_exporter"]


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is: `FULL` for the report, `SMOKE` to check they still run."""

    name: str
    replay_lines: int
    replay_repeats: int
    wrapper_lines: int
    wrapper_repeats: int
    latency_events: int
    coldstart_sizes: tuple[int, ...]
    coldstart_repeats: int
    busy_seconds: float
    busy_lines_per_second: int  # per bot
    idle_seconds: float
    scrape_requests: int
    receiver_alerts: int
    e2e_rescues: int
    follow_lines_per_second: int = 2000
    follow_seconds: float = 20.0
    follow_tick: float = 0.01  # seconds between the writer's bursts
    follow_repeats: int = 3


FULL = Sizes(
    name="full",
    replay_lines=2_000_000,
    replay_repeats=5,
    wrapper_lines=500_000,
    wrapper_repeats=3,
    latency_events=1000,
    coldstart_sizes=(10 << 20, 100 << 20, 1 << 30),
    coldstart_repeats=5,
    busy_seconds=20.0,
    busy_lines_per_second=200,
    idle_seconds=30.0,
    scrape_requests=2000,
    receiver_alerts=500,
    e2e_rescues=20,
)
SMOKE = Sizes(
    name="smoke",
    replay_lines=20_000,
    replay_repeats=1,
    wrapper_lines=2_000,
    wrapper_repeats=1,
    latency_events=15,
    coldstart_sizes=(1 << 20,),
    coldstart_repeats=1,
    busy_seconds=1.0,
    busy_lines_per_second=50,
    idle_seconds=1.0,
    scrape_requests=30,
    receiver_alerts=5,
    e2e_rescues=1,
    follow_lines_per_second=200,
    follow_seconds=1.0,
    follow_repeats=1,
)


@dataclass
class Context:
    sizes: Sizes
    tmp: Path
    log: Callable[[str], None]
    shared: dict[str, Any] = field(default_factory=dict)  # figures one benchmark gives another


@dataclass
class Result:
    """One benchmark's section of the report."""

    key: str
    title: str
    body: list[str] = field(default_factory=list)  # markdown lines
    goals: list[tuple[str, str, str, bool | None]] = field(
        default_factory=list
    )  # what, goal, got, met
    samples: dict[str, list[float]] = field(default_factory=dict)  # latency distributions (ms)
    raw: dict[str, Any] = field(default_factory=dict)


# --- statistics --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def dist(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


def fmt(x: float, digits: int = 2) -> str:
    if x != x:  # nan
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


# --- processes, HTTP ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Http:
    """One keep-alive HTTP/1.1 connection; `get` returns (status, body, seconds)."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        began = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=headers or {})
            response = self.conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        return response.status, body, time.perf_counter() - began

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float]:
        began = time.perf_counter()
        self.conn.request("POST", path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, data, time.perf_counter() - began

    def close(self) -> None:
        self.conn.close()


def get_ok(address: str, path: str) -> bool:
    try:
        http_ = Http(address, timeout=1.0)
        try:
            return http_.get(path)[0] == 200
        finally:
            http_.close()
    except (OSError, http.client.HTTPException):
        return False


def wait_for(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def start_process(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> Proc:
    """A child process with its output in a file (scripts/processes.py), named by its binary."""
    return spawn(Path(argv[0]).name, argv, log_path, env=env)


def start_exporter(
    ctx: Context,
    name: str,
    logs: Sequence[tuple[str, Path]],
    *,
    inotify: bool = True,
    state_dir: Path | None = None,
    wait: bool = True,
) -> tuple[Proc, str]:
    address = f"127.0.0.1:{free_port()}"
    argv = [*exporter_command(), "serve", "--web.listen-address", address]
    for bot, path in logs:
        argv += ["--log", f"{bot}={path}"]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    if not inotify:
        argv.append("--no-inotify")
    proc = start_process(argv, ctx.tmp / f"{name}.out")
    if wait:
        wait_ready(proc, address)
    return proc, address


def wait_ready(proc: Proc, address: str, timeout: float = 60.0) -> None:
    def probe() -> bool:
        proc.check()
        return get_ok(address, "/-/ready")

    wait_for(probe, timeout, f"{proc.argv[0]} at {address}/-/ready", interval=0.005)


# --- the machine -------------------------------------------------------------------------------


def _version(argv: list[str], pattern: str) -> str:
    path = shutil.which(argv[0])
    if path is None:
        return "not installed"
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1) if m else "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    import aiohttp
    import prometheus_client  # noqa: F401

    from wechaty_exporter import __version__

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wechaty-exporter": __version__,
        "aiohttp": aiohttp.__version__,
        "mtail": _version(["mtail", "--version"], r"mtail version (\S+)"),
        "prometheus": _version(["prometheus", "--version"], r"version (\S+)"),
        "alertmanager": _version(["prometheus-alertmanager", "--version"], r"version (\S+)"),
        "grep": _version(["grep", "--version"], r"grep \(GNU grep\) (\S+)"),
    }


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])
