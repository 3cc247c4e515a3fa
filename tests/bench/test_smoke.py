"""The benchmarks still run: `python -m bench --smoke` (tiny sizes, seconds), every section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECTIONS = [
    "## 1. Replay throughput",
    "## 2. Detection latency",
    "## 3. Cold start",
    "## 4. Footprint",
    "## 5. Scrape",
    "## 6. Receiver",
    "## 7. End to end",
    "## 8. Following a live log",
]


@pytest.mark.timeout(150)
def test_smoke_run_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out), "--tmp", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = out.read_text()
    for section in SECTIONS:
        assert section in report
    assert "| nproc |" in report
    assert out.with_suffix(".png").stat().st_size > 10_000
