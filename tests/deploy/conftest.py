"""Fixtures for checking deploy/: promtool and amtool, and a live exporter + Prometheus.

The binaries are required (CI installs the Debian packages); a missing one fails, never skips.
The live stack is the integration harness (tests/integration/harness.py) without Alertmanager.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.harness import (
    BotLogs,
    Exporter,
    Processes,
    Prometheus,
    Tool,
    brolog,
    require_binary,
    start_exporter,
    start_prometheus,
    wait_until,
)

from wechaty_exporter.logs.dialects.selflog import format_self_log


@pytest.fixture(scope="session")
def promtool() -> Tool:
    return Tool(require_binary("promtool", "prometheus"))


@pytest.fixture(scope="session")
def amtool() -> Tool:
    return Tool(require_binary("amtool", "prometheus-alertmanager"))


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    with Processes(tmp_path_factory.mktemp("process-logs")) as registry:
        yield registry


@pytest.fixture(scope="module")
def live(
    processes: Processes, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Exporter, Prometheus]:
    """An exporter whose bots have done everything a panel shows, scraped by Prometheus.

    alice: logged in, one error line, a duet probe from bob received. bob: logged in, then out
    with a login QR pending, a duet probe to alice sent (self-log lines: only they carry probes).
    """
    logs = BotLogs(tmp_path_factory.mktemp("bot-logs"))
    exporter = start_exporter(
        processes, logs, tmp_path_factory.mktemp("exporter-state"), self_logs=True
    )
    logs.login("alice")
    logs.write("alice", brolog("puppet stream reset", level="ERR", prefix="PuppetService"))
    logs.login("bob")
    logs.logout("bob")
    probe = format_self_log("probe", {"from": "bob", "seq": 1}, time.time())
    logs.write("alice", probe, path=logs.self_log("alice"))
    sent = format_self_log("probe_sent", {"to": "alice", "seq": 1}, time.time())
    logs.write("bob", sent, path=logs.self_log("bob"))
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    prometheus = start_prometheus(processes, workdir, exporter, alertmanager=None)
    # rate() and increase() need two samples inside the window.
    wait_until(
        lambda: (
            prometheus.values('count_over_time(up{job="wechaty"}[1m])', "job").get("wechaty", 0)
            >= 3
        ),
        timeout=30,
        what="three scrapes of the exporter",
        processes=processes,
    )
    return exporter, prometheus
