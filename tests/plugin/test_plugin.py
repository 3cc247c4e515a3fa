"""The TypeScript plugin (plugins/wechaty): its node tests, its self-log read by the Python parser,
its declarations, and its npm package installed into a fresh project.

plugins/wechaty/test/*.test.mjs run on the real wechaty 1.20 with wechaty-puppet-mock driven by its
Mocker (plugins/wechaty/package-lock.json; `npm ci` there: scripts/setup.sh --test): self-log
lines and file safety, hostile chat, the delivery endpoint, commands forwarding against a local
fake receiver, the duet probe, and two test/duet-bot.mjs processes relayed to each other. The
lifecycle test leaves its self-log here, and the exporter's own parser must end in the state the
test drove, with no forged QR ever pending.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from tests.integration.harness import require_node

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.events import ProbeReceived, ProbeSent
from wechaty_exporter.logs.state import BotState

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "plugins" / "wechaty"
NodeRun = tuple[subprocess.CompletedProcess[str], Path]


def _node() -> str:
    return require_node(PLUGIN, "wechaty-puppet-mock")


def _env() -> dict[str, str]:
    drop = ("WECHATY_LOG", "WECHATY_EXPORTER_PLUGIN_TOKEN", "WECHATY_EXPORTER_RECEIVER_TOKEN")
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def node_run(tmp_path_factory: pytest.TempPathFactory) -> NodeRun:
    """`node --test` over every plugins/wechaty/test/*.test.mjs, once."""
    node = _node()
    out = tmp_path_factory.mktemp("plugin")
    scratch = tmp_path_factory.mktemp("plugin-tmp")  # the node tests' own temporary files
    tests = sorted(str(p.relative_to(PLUGIN)) for p in (PLUGIN / "test").glob("*.test.mjs"))
    assert len(tests) >= 5, tests
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *tests],
        capture_output=True, text=True, timeout=240, cwd=PLUGIN,
        env={**_env(), "PLUGIN_TEST_OUT": str(out), "TMPDIR": str(scratch)},
    )  # fmt: skip
    return done, out


def _tap_count(stdout: str, key: str) -> int:
    m = re.search(rf"^# {key} (\d+)$", stdout, re.M)
    assert m is not None, f"no `# {key}` in the TAP output:\n{stdout[-3000:]}"
    return int(m.group(1))


def test_node_tests_pass(node_run: NodeRun) -> None:
    done, _ = node_run
    report = f"{done.stdout[-20000:]}\n{done.stderr[-5000:]}"
    assert done.returncode == 0, report
    assert _tap_count(done.stdout, "fail") == 0, report
    assert _tap_count(done.stdout, "skipped") == 0, report
    assert _tap_count(done.stdout, "todo") == 0, report
    assert _tap_count(done.stdout, "cancelled") == 0, report
    assert _tap_count(done.stdout, "pass") >= 35, report


def _replay(path: Path, bot: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "wechaty_exporter", "replay", "--format", "json", f"{bot}={path}"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (doc,) = json.loads(done.stdout)["bots"]
    assert isinstance(doc, dict)
    return doc


def test_plugin_self_log_read_by_the_exporter(
    node_run: NodeRun,
) -> None:
    """The plugin's self-log of a whole bot life (scan, login, ready, hostile chat with newlines
    and forged event lines, error, logout, a fresh QR) ends in the driven state under replay."""
    done, out = node_run
    log, record_path = out / "lifecycle.self.log", out / "lifecycle.json"
    assert record_path.exists(), f"the lifecycle node test wrote no record:\n{done.stdout[-5000:]}"
    record = json.loads(record_path.read_text("utf-8"))
    doc = _replay(log, record["bot"])
    assert {
        "logged_in": doc["logged_in"],
        "qr": doc["qr"],
        "user": doc["user"],
        "logins": doc["logins_total"],
        "logouts": doc["logouts_total"],
        "qr_codes": doc["qr_codes_total"],
    } == {k: record[k] for k in ("logged_in", "qr", "user", "logins", "logouts", "qr_codes")}
    assert doc["logout_reason"] == "为了你的帐号安全，请重新登录。"
    assert (log.stat().st_mode & 0o777) == 0o600


def test_plugin_self_log_line_by_line(node_run: NodeRun) -> None:
    """Every line parses as the self-log dialect; the one ERROR line counts; no forged QR is ever
    pending; the probe lines the plugin writes are the parser's probe events; heartbeat, ready
    and probe_failed are no events."""
    _, out = node_run
    record = json.loads((out / "lifecycle.json").read_text("utf-8"))
    parser = LineParser()
    state = BotState()
    pending: list[str] = []
    kinds: list[str] = []
    for raw in (out / "lifecycle.self.log").read_text("utf-8").splitlines():
        for event in parser.feed(raw, 0.0):
            kinds.append(type(event).__name__)
            state.apply(event)
            if state.qr is not None and (not pending or pending[-1] != state.qr.qrcode):
                pending.append(state.qr.qrcode)
    assert record["phish"] not in pending
    assert pending == [
        "https://login.weixin.qq.com/l/PluginQr1A==",
        "https://login.weixin.qq.com/l/PluginQr2B==",
    ]
    assert kinds.count("ErrorLogged") == 1, kinds
    assert "RejectedQr" not in kinds, kinds
    probe = LineParser().feed(
        '2026-11-25T10:00:00.000+08:00 INFO wechaty-exporter probe {"from":"alice","seq":1}', 0.0
    )
    assert len(probe) == 1 and isinstance(probe[0], ProbeReceived), probe
    assert (probe[0].sender, probe[0].seq) == ("alice", 1)
    sent = LineParser().feed(
        '2026-11-25T10:00:00.000+08:00 INFO wechaty-exporter probe_sent {"to":"bob","seq":7}', 0.0
    )
    assert len(sent) == 1 and isinstance(sent[0], ProbeSent), sent
    assert (sent[0].to, sent[0].seq) == ("bob", 7)
    for line in (
        '2026-11-25T10:00:00.000+08:00 WARN wechaty-exporter probe_failed {"to":"bob","error":"x"}',
        '2026-11-25T10:00:00.000+08:00 INFO wechaty-exporter heartbeat {"logged_in":true}',
        "2026-11-25T10:00:00.000+08:00 INFO wechaty-exporter ready {}",
    ):
        assert LineParser().feed(line, 0.0) == [], line


def test_type_declarations_check() -> None:
    """index.d.ts compiles with a bot using it the documented way (tsc --noEmit)."""
    node = _node()
    done = subprocess.run(
        [node, str(PLUGIN / "node_modules" / "typescript" / "bin" / "tsc"), "-p", "tsconfig.json"],
        capture_output=True, text=True, timeout=180, cwd=PLUGIN,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


USE_IT = """
import fs from 'node:fs'
import { WechatyBuilder, ScanStatus } from 'wechaty'
import { PuppetMock, mock } from 'wechaty-puppet-mock'
import { WechatyExporter } from 'wechaty-exporter-plugin'

const mocker = new mock.Mocker()
const bot = WechatyBuilder.build({ name: 'packed', puppet: new PuppetMock({ mocker }) })
const plugin = WechatyExporter({ name: 'packed', selfLog: process.argv[2], heartbeat: 0,
  delivery: { listen: 0, noAuth: true } })
bot.use(plugin)
await bot.start()
const user = mocker.createContact({ id: 'wxid_packed', name: 'Packed' })
mocker.createContact({ id: 'wxid_admin', name: 'Admin' })
const next = e => new Promise(r => bot.once(e, () => setImmediate(r)))
let done = next('scan')
mocker.scan('https://login.weixin.qq.com/l/Packed==', ScanStatus.Waiting)
await done
done = next('login')
mocker.login(user)
await done
const { delivery } = await plugin.ready()
const res = await fetch(`http://127.0.0.1:${delivery.port}/send`, { method: 'POST',
  body: JSON.stringify({ to: 'Admin', type: 'text', text: 'hi', bot: 'x' }) })
console.log(JSON.stringify({ status: res.status }))
await plugin.close()
await bot.stop()
process.exit(0)
"""


def test_npm_pack_installs_into_a_fresh_project(tmp_path: Path) -> None:
    """`npm pack` → a tarball with the code, the declarations and the README only, which installs
    (with its peer wechaty, from the npm cache the checkout's `npm ci` filled) into a fresh
    project and works there."""
    node = _node()
    npm = shutil.which("npm")
    assert npm is not None, "npm not found on PATH"
    packed = tmp_path / "pack"
    packed.mkdir()
    done = subprocess.run(
        [npm, "pack", "--json", "--pack-destination", str(packed)],
        capture_output=True, text=True, timeout=120, cwd=PLUGIN,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (tgz,) = packed.glob("wechaty-exporter-plugin-*.tgz")
    with tarfile.open(tgz) as tar:
        names = sorted(tar.getnames())
    assert "package/index.d.ts" in names and "package/src/index.js" in names, names
    assert "package/README.md" in names and "package/package.json" in names, names
    assert not [n for n in names if n.startswith(("package/test/", "package/node_modules/"))], names

    project = tmp_path / "fresh"
    project.mkdir()
    (project / "package.json").write_text(
        json.dumps({"name": "fresh-bot", "private": True, "type": "module"}), "utf-8"
    )
    done = subprocess.run(
        [npm, "install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error",
         str(tgz), "wechaty@1.20.2", "wechaty-puppet-mock@1.19.4"],
        capture_output=True, text=True, timeout=240, cwd=project,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "node_modules" / "wechaty-exporter-plugin" / "index.d.ts").exists()
    (project / "bot.mjs").write_text(USE_IT, "utf-8")
    log = tmp_path / "packed.self.log"
    done = subprocess.run(
        [node, "bot.mjs", str(log)],
        capture_output=True, text=True, timeout=120, cwd=project, env=_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": 200}
    doc = _replay(log, "packed")
    assert doc["logged_in"] is True and doc["user"] == "Packed" and doc["logins_total"] == 1
