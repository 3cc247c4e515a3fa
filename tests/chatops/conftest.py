"""Fixtures for the chat command tests: the real Alertmanager and the real exporter, each started
once per session on a free loopback port with a temporary data dir (tests/integration/harness.py
starts, waits for and stops them; a failing test shows their logs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.harness import (
    Alertmanager,
    BotLogs,
    Exporter,
    Processes,
    run_alertmanager,
    start_exporter,
)

# Two receivers, routed as deploy/alertmanager routes a duet; no webhooks: nothing is sent.
ALERTMANAGER_CONFIG = """\
route:
  receiver: peer-bob
  group_by: [alertname, bot]
  group_wait: 1h
  routes:
    - receiver: peer-alice
      matchers: ['bot="bob"']
receivers:
  - name: peer-bob
  - name: peer-alice
"""


@pytest.fixture(scope="session")
def command_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with Processes(tmp_path_factory.mktemp("command-process-logs")) as registry:
        yield registry


@pytest.fixture(scope="session")
def real_alertmanager(
    command_processes: Processes, tmp_path_factory: pytest.TempPathFactory
) -> Alertmanager:
    workdir = tmp_path_factory.mktemp("commands-alertmanager")
    config = workdir / "alertmanager.yml"
    config.write_text(ALERTMANAGER_CONFIG)
    return run_alertmanager(command_processes, config, workdir / "data")


@pytest.fixture(scope="session")
def exporter_logs(tmp_path_factory: pytest.TempPathFactory) -> BotLogs:
    return BotLogs(tmp_path_factory.mktemp("command-bot-logs"))


@pytest.fixture(scope="session")
def real_exporter(
    command_processes: Processes, exporter_logs: BotLogs, tmp_path_factory: pytest.TempPathFactory
) -> Exporter:
    """`wechaty-exporter serve --log alice=... --log bob=...` tailing real files."""
    return start_exporter(command_processes, exporter_logs, tmp_path_factory.mktemp("state"))


@pytest.fixture
def totp_secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "totp-secret"
    path.write_text("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n")
    path.chmod(0o600)
    return path
