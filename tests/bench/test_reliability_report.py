"""bench/reliability.py renders docs/RELIABILITY.md from the figures of exactly one run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.reliability import Run, render

NODE = "tests/reliability/test_hostile_requests.py::test_slow_body_is_cut_off"
LIMIT = "tests/reliability/test_other.py::test_known_limit"


def write(path: Path, *docs: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


RUN = {
    "kind": "run",
    "date": "2026-12-01 10:00 UTC",
    "command": "python -m bench.reliability",
    "pytest": "python -m pytest tests/reliability",
    "machine": {"nproc": "2"},
    "load_before": 0.5,
}
END = {"kind": "end", "seconds": 12.0, "returncode": 1, "load_after": 0.7}
FIGURE = {
    "kind": "figure",
    "test": NODE,
    "function": "test_slow_body_is_cut_off",
    "params": "",
    "text": "slowloris",
    "data": {"seconds": 1.02, "body_timeout": 1.0, "sent": 10, "size": 1299},
}


def test_page_from_one_run(tmp_path: Path) -> None:
    failed = "tests/reliability/test_kill9.py::test_kill9_at_random_points_of_a_burst"
    figures = write(
        tmp_path / "f.jsonl",
        RUN,
        FIGURE,
        {"kind": "outcome", "test": NODE, "when": "call", "outcome": "passed", "duration": 1.1},
        {"kind": "outcome", "test": failed, "when": "call", "outcome": "failed", "duration": 9.0},
        {"kind": "outcome", "test": LIMIT, "when": "call", "outcome": "xfailed", "duration": 1.0},
        END,
    )
    page = render(Run.load(figures))
    assert "from the run of 2026-12-01 10:00 UTC" in page
    assert "| slowloris body | 1 body, 1 byte / 100 ms | 408 after 1.02 s, 10 of 1299" in page
    assert "| `kill -9` at random points of a burst | – | **FAILED**: 1 of 1 |" in page
    assert "| fuzz: dialect parser | – | not run |" in page
    assert "3 tests, 1 passed, 1 xfailed, 1 failed, in 12 s** (pytest exit status 1)" in page
    assert "- 1 xfailed: `test_known_limit`" in page
    assert "@@" not in page


def test_figures_of_two_runs_are_refused(tmp_path: Path) -> None:
    figures = write(tmp_path / "f.jsonl", RUN, FIGURE, END, RUN, END)
    with pytest.raises(SystemExit, match="2 runs"):
        Run.load(figures)
