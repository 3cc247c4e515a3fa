"""`bots.<name>.qr_source: self-log` means it: no line of another dialect changes that bot.

A bot with a self-log and a plain brolog log, both followed by a real `wechaty-exporter serve`.
The self-log (written by the peer bot's own `SelfLog`) says a QR is pending. Then the real
wechaty StarterBot (tests/genuine/bot.mjs on wechaty-puppet-mock) writes its whole log into the
other file: Waiting, Scanned, Confirmed(4), `Contact<HelperBob> login`, chat, a logout, a fresh
Waiting and a Timeout(5), each a line a chat message could have forged. None of them may clear
the self-log's QR, log the bot in or out, name its account or count: they are counted as
suspect events (`not_from_self_log`), the Waiting scans as rejected QRs. `replay` says the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.exporter.test_restart import Exporter

from wechaty_exporter.peerbot.selflog import SelfLog

GENUINE = Path(__file__).resolve().parents[1] / "genuine"
QR = "https://login.weixin.qq.com/l/SelfLogOnly1A=="
LINES_RE = re.compile(r'^wechaty_log_lines_total\{bot="bob"\} (\S+)$', re.M)


def _config(tmp_path: Path, *logs: Path) -> Path:
    config = tmp_path / "config.yaml"
    body = {"bots": {"bob": {"logs": [str(p) for p in logs], "qr_source": "self-log"}}}
    config.write_text(json.dumps(body), "utf-8")  # JSON is YAML
    return config


def _starter_bot(out: Path, record: Path) -> None:
    """The real StarterBot's whole run, appended to `out` as it prints it."""
    node = shutil.which("node")
    if node is None or not (GENUINE / "node_modules" / "wechaty").is_dir():
        pytest.fail("node and tests/genuine/node_modules are needed (scripts/setup.sh --test)")
    env = {k: v for k, v in os.environ.items() if k not in ("WECHATY_LOG", "GENUINE_GO")}
    with out.open("ab") as sink:
        done = subprocess.run(
            [node, str(GENUINE / "bot.mjs"), "starter", "chat", str(record)],
            stdout=sink, stderr=sink, cwd=GENUINE, env=env, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, out.read_text("utf-8")


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{name}\{{{re.escape(want)}\}} (\S+)$", text, re.M)
    assert m is not None, f"{name}{{{want}}} not in the exposition"
    return float(m.group(1))


def _bob(doc: dict[str, Any]) -> dict[str, Any]:
    keys = ("logged_in", "qr_pending", "user", "logins_total", "logouts_total", "qr_codes_total")
    return {k: doc[k] for k in keys}


EXPECTED = {
    "logged_in": False,
    "qr_pending": True,
    "user": None,
    "logins_total": 0,
    "logouts_total": 0,
    "qr_codes_total": 1,
}


def test_serve_and_replay_take_nothing_but_the_self_log(
    tmp_path: Path, exporters: Callable[..., Exporter]
) -> None:
    self_log, plain = tmp_path / "bob.self.log", tmp_path / "bob.log"
    plain.touch()
    writer = SelfLog(self_log)
    writer.open()
    writer.write("scan", {"status": 2, "qrcode": QR}, at=time.time())
    config = _config(tmp_path, self_log, plain)

    exporter = exporters("--config", str(config))
    exporter.start()
    exporter.wait_for(lambda: exporter.bob()["qr_pending"], "the self-log's QR pending")

    _starter_bot(plain, tmp_path / "record.json")
    lines = sum(len(p.read_bytes().splitlines()) for p in (self_log, plain))
    record = json.loads((tmp_path / "record.json").read_text("utf-8"))
    assert record["logins"] == 1 and record["logouts"] == 1  # what the plain log says happened

    def read_all() -> bool:
        m = LINES_RE.search(exporter.get("/metrics") or "")
        return m is not None and float(m.group(1)) == lines

    exporter.wait_for(read_all, "every line read")
    assert _bob(exporter.bob()) == EXPECTED
    assert exporter.get("/api/v1/bots/bob/qr")["qrcode"] == QR
    metrics = exporter.get("/metrics")
    # Scanned, Confirmed, login, logout, Timeout: five lines that would have changed bob
    assert (
        _metric(
            metrics, "wechaty_exporter_suspect_events_total", bot="bob", reason="not_from_self_log"
        )
        == 5
    )
    assert _metric(metrics, "wechaty_exporter_rejected_qr_total", bot="bob") == 2  # 2 Waiting
    for reason in ("waiting_while_logged_in", "login_of_another_account"):
        assert (
            _metric(metrics, "wechaty_exporter_suspect_events_total", bot="bob", reason=reason) == 0
        )

    # replay, in either order of the files, says the same
    for order in ((self_log, plain), (plain, self_log)):
        done = subprocess.run(
            [sys.executable, "-m", "wechaty_exporter", "replay", "--config", str(config),
             "--format", "json", *(f"bob={p}" for p in order)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        doc = json.loads(done.stdout)["bots"][0]
        assert _bob(doc) == EXPECTED
        assert doc["qr"] == QR


def test_without_self_log_the_same_lines_take_over(tmp_path: Path) -> None:
    """The control: with `qr_source: any`, the StarterBot's lines do change bob (the test above
    can fail), and its last Timeout(5) clears the self-log's QR."""
    self_log, plain = tmp_path / "bob.self.log", tmp_path / "bob.log"
    writer = SelfLog(self_log)
    writer.open()
    writer.write("scan", {"status": 2, "qrcode": QR}, at=time.time())
    _starter_bot(plain, tmp_path / "record.json")
    done = subprocess.run(
        [sys.executable, "-m", "wechaty_exporter", "replay", "--format", "json",
         f"bob={self_log}", f"bob={plain}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    doc = json.loads(done.stdout)["bots"][0]
    assert doc["user"] == "HelperBob" and doc["logins_total"] == 1 and doc["logouts_total"] == 1
    assert doc["qr"] is None
