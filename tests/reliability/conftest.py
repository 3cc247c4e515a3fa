"""Reliability suite fixtures: the `slow` marker and a `figures` report in the terminal summary.

Every scenario records what it measured (counts, losses, timings) through the `figures`
fixture; pytest prints them under "reliability figures" at the end, which is where the numbers
in docs/RELIABILITY.md come from.
"""

from __future__ import annotations

from typing import Any

import pytest

FIGURES = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: long-running reliability test (fuzzing, load); CI runs it too"
    )


class Figures:
    """Lines for the terminal summary."""

    def __init__(self, sink: list[str], test: str) -> None:
        self._sink = sink
        self._test = test

    def __call__(self, text: str) -> None:
        self._sink.append(f"{self._test}: {text}")


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    sink = request.config.stash.setdefault(FIGURES, [])
    return Figures(sink, request.node.name)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.line(line)
