"""Fixtures: the real exporter (and, for the full path, Prometheus and Alertmanager) around the
peer bots, from tests/integration/harness.py. A failing test shows the processes' logs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.integration.harness import (
    Alertmanager,
    BotLogs,
    Exporter,
    Processes,
    Prometheus,
    WebhookSinks,
    free_port,
    start_alertmanager,
    start_exporter,
    start_prometheus,
    token_file,
)

MEASURED = pytest.StashKey[list[str]]()


@dataclass(frozen=True)
class Duet:
    """alice's and bob's self-logs (`logs.path(bot)`), tailed by one real exporter process."""

    processes: Processes
    logs: BotLogs
    exporter: Exporter


@dataclass(frozen=True)
class FullPath:
    """The duet under real Prometheus and Alertmanager (fast profile). Alertmanager calls the
    peer bots' receivers (`peer-alice`, `peer-bob`) at `ports` with the bearer `token`."""

    duet: Duet
    prometheus: Prometheus
    alertmanager: Alertmanager
    ports: dict[str, int]
    token: str


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            duet = value.duet if isinstance(value, FullPath) else value
            if isinstance(duet, Duet):
                report.sections.extend(duet.processes.log_sections())
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(MEASURED, [])
    if lines:
        terminalreporter.section("peer bot timings")
        for line in lines:
            terminalreporter.line(line)


@pytest.fixture(scope="session")
def measured(pytestconfig: pytest.Config) -> list[str]:
    """Lines for the terminal summary."""
    return pytestconfig.stash.setdefault(MEASURED, [])


def _duet(tmp_path_factory: pytest.TempPathFactory) -> Duet:
    processes = Processes(tmp_path_factory.mktemp("process-logs"))
    logs = BotLogs(tmp_path_factory.mktemp("self-logs"))
    try:
        exporter = start_exporter(processes, logs, tmp_path_factory.mktemp("exporter-state"))
    except BaseException:
        processes.stop_all()
        raise
    return Duet(processes, logs, exporter)


@pytest.fixture
def duet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Duet]:
    running = _duet(tmp_path_factory)
    try:
        yield running
    finally:
        running.processes.stop_all()


@pytest.fixture(scope="module")
def full_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FullPath]:
    duet = _duet(tmp_path_factory)
    token_path, token = token_file(tmp_path_factory.mktemp("secrets"))
    ports = {"alice": free_port(), "bob": free_port()}
    try:
        with WebhookSinks(("fallback", "watchdog")) as sinks:
            urls = dict(sinks.urls)
            urls["peer-alice"] = f"http://127.0.0.1:{ports['alice']}/alerts"
            urls["peer-bob"] = f"http://127.0.0.1:{ports['bob']}/alerts"
            work = tmp_path_factory.mktemp("alerting")
            alertmanager = start_alertmanager(duet.processes, work, urls, token_path)
            prometheus = start_prometheus(duet.processes, work, duet.exporter, alertmanager)
            yield FullPath(duet, prometheus, alertmanager, ports, token)
    finally:
        duet.processes.stop_all()
