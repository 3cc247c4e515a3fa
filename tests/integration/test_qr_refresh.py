"""A fresh QR while the outage lasts, on the real binaries: bot log → exporter → Prometheus →
Alertmanager → a real `wechaty-exporter receiver` (outbox messenger) → the admin.

bob logs out and prints a QR: the admin gets it. bob prints a newer QR during the same outage: the
receiver sends that one by itself (delivery/refresh.py; `qr_refresh.interval` 2 s here). bob logs
in: the admin hears he is back, and nothing more arrives after that.

A stack of its own (exporter, Prometheus, Alertmanager on the fast profile, the receiver as
Alertmanager's `peer-alice`), so the session's shared bots are left alone; the other receivers go
to the session's webhook sinks.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.delivery.kit import decode_qr
from tests.helpers import free_port
from tests.integration.harness import (
    REPO,
    BotLogs,
    Processes,
    Prometheus,
    WebhookSinks,
    brolog,
    exporter_command,
    http_ok,
    run_prometheus,
    start_alertmanager,
    start_exporter,
    token_file,
    wait_until,
)

from wechaty_exporter.delivery.messengers.outbox import read_outbox

REFRESH_INTERVAL_S = 2.0
QUIET_WINDOW_S = 3 * REFRESH_INTERVAL_S  # longer than an interval plus a few polls


@dataclass
class Stack:
    processes: Processes
    logs: BotLogs
    prometheus: Prometheus
    outbox: Path
    receiver_url: str
    tmp: Path

    def sent(self, after: int = 0) -> list[dict[str, Any]]:
        return [r for r in read_outbox(self.outbox)[after:] if r["bot"] == "bob"]

    def wait_sent(self, after: int, what: str, count: int = 1) -> list[dict[str, Any]]:
        return wait_until(
            lambda: (lambda got: got if len(got) >= count else None)(self.sent(after)),
            timeout=30,
            what=what,
            processes=self.processes,
        )

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"{self.receiver_url}/metrics", timeout=5) as response:
            text = response.read().decode()
        wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0


def _receiver_config(directory: Path, token: Path) -> Path:
    section = {
        "auth": {"bearer_token_file": str(token)},
        "admins": {"alice": ["admin"], "bob": ["admin"]},
        "rate_limit": {"burst": 20, "per_hour": 3600},
        "qr_refresh": {"interval": f"{REFRESH_INTERVAL_S:g}s", "max": 10, "poll": "200ms"},
    }
    path = directory / "receiver.yml"
    path.write_text(json.dumps({"receiver": section}) + "\n")  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, sinks: WebhookSinks) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("qr-refresh")
    with Processes(tmp / "process-logs") as processes:
        logs = BotLogs(tmp / "bots")
        logs.directory.mkdir()
        exporter = start_exporter(processes, logs, tmp / "exporter-state")
        token, _ = token_file(tmp)
        address = f"127.0.0.1:{free_port()}"
        outbox = tmp / "outbox.jsonl"
        src = str(REPO / "src")
        pythonpath = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), src) if p)
        processes.start(
            "receiver",
            [*exporter_command(), "receiver", "--config", str(_receiver_config(tmp, token)),
             "--web.listen-address", address, "--exporter-url", exporter.url,
             "--outbox", str(outbox), "--state-dir", str(tmp / "receiver-state")],
            env={"PYTHONPATH": pythonpath},
        )  # fmt: skip
        receiver_url = f"http://{address}"
        wait_until(
            lambda: http_ok(f"{receiver_url}/-/ready"),
            timeout=20,
            what="the receiver to be ready",
            processes=processes,
        )
        alertmanager = start_alertmanager(
            processes, tmp, {**sinks.urls, "peer-alice": f"{receiver_url}/alerts"}, token
        )
        prometheus = run_prometheus(
            processes,
            tmp,
            [exporter.address],
            [urllib.parse.urlsplit(alertmanager.url).netloc],
        )
        yield Stack(processes, logs, prometheus, outbox, receiver_url, tmp)


def _scan_line(qr: str) -> str:
    return brolog(f"onScan: Waiting(2) - {qr}")


def _new_qr() -> str:
    return f"https://login.weixin.qq.com/l/{secrets.token_hex(6)}"


def test_a_newer_qr_reaches_the_admin_during_the_outage_and_nothing_after_login(
    stack: Stack, latency_report: list[str]
) -> None:
    stack.logs.login("alice")
    stack.logs.login("bob")
    wait_until(  # alice must be known as logged in, or bob would have no rescuer
        lambda: (
            stack.prometheus.values("wechaty_bot_logged_in", "bot") == {"alice": 1.0, "bob": 1.0}
        ),
        timeout=20,
        what="Prometheus to see alice and bob logged in",
        processes=stack.processes,
    )

    first, newer = _new_qr(), _new_qr()
    stack.logs.write("bob", brolog("Contact<Bob> logout"), _scan_line(first))
    rescue = stack.wait_sent(0, "the rescue (text and QR) in the outbox", count=2)
    assert [r["type"] for r in rescue] == ["text", "image"]
    assert decode_qr(_png(rescue[1]), stack.tmp) == first

    mark = len(read_outbox(stack.outbox))
    printed = time.time()
    stack.logs.write("bob", _scan_line(newer))  # WeChat replaced the QR: the old one is dead
    refresh = stack.wait_sent(mark, "the newer QR in the outbox", count=2)
    arrived = time.time() - printed
    assert [r["type"] for r in refresh] == ["text", "image"]
    assert decode_qr(_png(refresh[1]), stack.tmp) == newer
    assert "显示了新的登录二维码" in refresh[0]["text"]  # the receiver's language: zh, the default
    assert stack.metric("wechaty_receiver_qr_refreshes_total", bot="bob") == 1.0

    mark = len(read_outbox(stack.outbox))
    stack.logs.login("bob")
    [back] = stack.wait_sent(mark, "the back-online message")
    assert back["type"] == "text"
    mark = len(read_outbox(stack.outbox))
    time.sleep(QUIET_WINDOW_S)
    assert stack.sent(mark) == [], "nothing after the login"
    assert stack.metric("wechaty_receiver_qr_refreshes_total", bot="bob") == 1.0
    latency_report.append(
        f"QR refresh: {arrived:.2f} s from the newer QR line to the admin "
        f"(qr_refresh.interval {REFRESH_INTERVAL_S:g} s counts from the rescue)"
    )


def _png(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["png_base64"])
