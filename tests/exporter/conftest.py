"""Fixtures of the exporter tests: real `wechaty-exporter serve` processes, stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.exporter.test_restart import Exporter


@pytest.fixture
def exporters(tmp_path: Path) -> Iterator[Callable[..., Exporter]]:
    made: list[Exporter] = []

    def make(*args: str) -> Exporter:
        made.append(Exporter(tmp_path, *args))
        return made[-1]

    yield make
    for e in made:
        e.stop()
