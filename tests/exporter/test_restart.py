"""Restarts lose nothing: the real exporter process, killed with SIGKILL and started again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import append, free_port

QR = "https://login.weixin.qq.com/l/restart"


class Exporter:
    """`wechaty-exporter serve` as a child process on a free loopback port."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.args = [
            sys.executable, "-m", "wechaty_exporter", "serve", *args,
            "--web.listen-address", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        self.log = tmp_path / f"exporter-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=out)
        self.wait_for(lambda: self.get("/-/ready") == "ready\n", what="ready")

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                body = r.read().decode()
        except (urllib.error.URLError, ConnectionError):
            return None
        return json.loads(body) if path.startswith("/api/") else body

    def bob(self) -> dict[str, Any]:
        bots: list[dict[str, Any]] = self.get("/api/v1/bots")["bots"]
        return bots[0]

    def wait_for(self, check: Callable[[], Any], what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited: {self.log.read_text()}")
            if check():
                return
            time.sleep(0.02)
        raise AssertionError(f"not {what} within {timeout}s; log:\n{self.log.read_text()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def test_sigkill_with_state_dir_neither_loses_nor_repeats(
    tmp_path: Path, exporters: Callable[..., Exporter]
) -> None:
    log, state = tmp_path / "bob.log", tmp_path / "state"
    append(log, "09:00:00 INFO StarterBot Contact<Bob> login")
    first = exporters("--log", f"bob={log}", "--state-dir", str(state))
    first.start()
    first.wait_for(lambda: first.bob()["logged_in"] is True, "logged in")
    append(log, "10:00:00 INFO StarterBot Contact<Bob> logout",
           f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}")  # fmt: skip
    first.wait_for(lambda: first.bob()["qr_pending"], "QR pending")
    first.kill9()  # maybe before the state with the logout was saved: it must be replayed once

    append(log, "10:05:00 INFO StarterBot onScan: Scanned(3)",
           "10:05:02 INFO StarterBot onScan: Confirmed(4)",
           "10:05:03 INFO StarterBot Contact<Bob> login")  # fmt: skip
    second = exporters("--log", f"bob={log}", "--state-dir", str(state))
    second.start()
    second.wait_for(lambda: second.bob()["logged_in"] is True, "logged in again")
    bob = second.bob()
    assert (bob["logins_total"], bob["logouts_total"], bob["qr_codes_total"]) == (2, 1, 1)
    assert bob["qr_pending"] is False
    assert oct(os.stat(state / "exporter-state.json").st_mode & 0o777) == "0o600"
    metrics = second.get("/metrics")
    assert 'wechaty_log_lines_total{bot="bob"} 6.0' in metrics


def test_rotation_while_down_is_read_from_the_start(
    tmp_path: Path, exporters: Callable[..., Exporter]
) -> None:
    log, state = tmp_path / "bob.log", tmp_path / "state"
    append(log, "09:00:00 INFO StarterBot Contact<Bob> login")
    first = exporters("--log", f"bob={log}", "--state-dir", str(state))
    first.start()
    first.wait_for(lambda: first.bob()["logged_in"] is True, "logged in")
    first.stop()  # a clean stop saves state
    log.rename(tmp_path / "bob.log.1")
    append(log, "11:00:00 INFO StarterBot Contact<Bob> logout")
    second = exporters("--log", f"bob={log}", "--state-dir", str(state))
    second.start()
    second.wait_for(lambda: second.bob()["logged_in"] is False, "logged out")
    assert second.bob()["logouts_total"] == 1 and second.bob()["logins_total"] == 1


def test_without_state_dir_the_state_comes_from_the_end_of_the_log(
    tmp_path: Path, exporters: Callable[..., Exporter]
) -> None:
    log = tmp_path / "bob.log"
    append(log, "09:00:00 INFO StarterBot Contact<Bob> login",
           "10:00:00 INFO StarterBot Contact<Bob> logout",
           f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}",
           "10:00:02 INFO StarterBot Message#Text[🗣Contact<Carol>]\thello")  # fmt: skip
    first = exporters("--log", f"bob={log}")
    first.start()
    first.kill9()
    second = exporters("--log", f"bob={log}")
    second.start()
    bob = second.bob()
    assert bob["logged_in"] is False and bob["qr_pending"] is True
    assert second.get("/api/v1/bots/bob/qr")["qrcode"] == QR
