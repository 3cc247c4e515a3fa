"""Integration fixtures: one exporter, Prometheus, Alertmanager and webhook sinks per session.

All on free loopback ports with temporary data dirs (tests/integration/harness.py); stopped at the
end of the session; a failing test shows the tail of every process log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.harness import (
    RECEIVERS,
    Alertmanager,
    BotLogs,
    Exporter,
    Processes,
    Prometheus,
    WebhookSinks,
    start_alertmanager,
    start_exporter,
    start_prometheus,
    token_file,
)

# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with Processes(tmp_path_factory.mktemp("process-logs")) as registry:
        yield registry


@pytest.fixture(scope="session")
def bot_logs(tmp_path_factory: pytest.TempPathFactory) -> BotLogs:
    return BotLogs(tmp_path_factory.mktemp("bot-logs"))


@pytest.fixture(scope="session")
def exporter(
    processes: Processes, bot_logs: BotLogs, tmp_path_factory: pytest.TempPathFactory
) -> Exporter:
    return start_exporter(processes, bot_logs, tmp_path_factory.mktemp("exporter-state"))


@pytest.fixture(scope="session")
def receiver_token(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return token_file(tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="session")
def sinks() -> Iterator[WebhookSinks]:
    with WebhookSinks(RECEIVERS) as running:
        yield running


@pytest.fixture(scope="session")
def alertmanager(
    processes: Processes,
    sinks: WebhookSinks,
    receiver_token: tuple[Path, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Alertmanager:
    return start_alertmanager(
        processes, tmp_path_factory.mktemp("alertmanager"), sinks.urls, receiver_token[0]
    )


@pytest.fixture(scope="session")
def prometheus(
    processes: Processes,
    exporter: Exporter,
    alertmanager: Alertmanager,
    tmp_path_factory: pytest.TempPathFactory,
) -> Prometheus:
    return start_prometheus(
        processes, tmp_path_factory.mktemp("prometheus"), exporter, alertmanager
    )


LATENCIES = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def latency_report(pytestconfig: pytest.Config) -> list[str]:
    """Lines for the terminal summary: the measured alert-path latencies."""
    return pytestconfig.stash.setdefault(LATENCIES, [])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(LATENCIES, [])
    if lines:
        terminalreporter.section("alert path latency (fast profile)")
        for line in lines:
            terminalreporter.line(line)
