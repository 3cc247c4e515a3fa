"""Reliability suite fixtures: the `slow` marker and a `figures` report in the terminal summary.

Every scenario records what it measured (counts, losses, timings) through the `figures`
fixture; pytest prints them under "reliability figures" at the end. With RELIABILITY_FIGURES=FILE
in the environment each figure is also appended to FILE as one JSON line (the test's node id,
the text, and the numbers as `data`), and so is each test's outcome: `python -m bench.reliability`
runs this suite that way and renders docs/RELIABILITY.md from the figures of that one run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

FIGURES = pytest.StashKey[list[str]]()
FIGURES_ENV = "RELIABILITY_FIGURES"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: long-running reliability test (fuzzing, load); CI runs it too"
    )


def _record(doc: dict[str, Any]) -> None:
    """Append one JSON line to $RELIABILITY_FIGURES, if it is set."""
    path = os.environ.get(FIGURES_ENV)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n")


class Figures:
    """Lines for the terminal summary, and (with $RELIABILITY_FIGURES) for the report."""

    def __init__(self, sink: list[str], node: pytest.Item) -> None:
        self._sink = sink
        self._node = node

    def __call__(self, text: str, **data: Any) -> None:
        self._sink.append(f"{self._node.name}: {text}")
        callspec = getattr(self._node, "callspec", None)
        _record(
            {
                "kind": "figure",
                "test": self._node.nodeid,
                "function": getattr(self._node, "originalname", self._node.name),
                "params": callspec.id if callspec is not None else "",
                "text": text,
                "data": data,
                "at": time.time(),
            }
        )


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    sink = request.config.stash.setdefault(FIGURES, [])
    return Figures(sink, request.node)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each test's outcome (a failed setup or teardown too), for the report's verdicts."""
    if report.when == "call" or report.outcome != "passed":
        outcome = report.outcome
        if hasattr(report, "wasxfail"):  # an expected failure, not a skip
            outcome = "xfailed" if report.skipped else "xpassed"
        _record(
            {
                "kind": "outcome",
                "test": report.nodeid,
                "when": report.when,
                "outcome": outcome,
                "duration": report.duration,
            }
        )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.line(line)
