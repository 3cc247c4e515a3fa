"""One TypeScript duet (tests/duet/kit.py) per module: every process stopped at its end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.duet.kit import Duet, start_duet
from tests.integration.harness import Processes


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with Processes(tmp_path_factory.mktemp("duet-process-logs")) as registry:
        yield registry


@pytest.fixture(scope="module")
def duet(processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Duet]:
    started = start_duet(processes, tmp_path_factory.mktemp("duet"))
    try:
        yield started
    finally:
        processes.stop_all()
        started.sinks.__exit__(None, None, None)
