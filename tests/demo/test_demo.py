"""The README's first command, run non-interactively: scripts/demo.py brings the whole loop up.

Real everything (simulated bots writing real-format logs, the exporter, Prometheus and Alertmanager
with deploy/'s fast profile, the receivers): within a minute the admin's outbox holds a logged-out
bot's login QR, the PNG saved for the admin decodes (zbarimg) to the QR the exporter has pending
for that bot right now, every http link the demo printed answers 200 with a real page (not a
"no web UI" placeholder; the amtool command printed instead of one works), and after SIGINT
(Ctrl-C) no process of the demo is left and its temp dir is gone. The demo runs in a session of
its own, so "no process left" covers grandchildren too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "scripts" / "demo.py"
FIRST_QR_BOUND_S = 60.0
LINK = re.compile(r"(?<!\S)https?://\S+")  # a link as printed: a word of its own
NO_UI = "does not include a web application"  # Debian's Alertmanager, at `/`


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(
            f"{binary} not found: apt-get install -y {package} (scripts/setup.sh --test does)",
            pytrace=False,
        )
    return path


def _events(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def _wait_event(
    path: Path, kind: str, proc: subprocess.Popen[bytes], output: Path, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in _events(path):
            if event["event"] == kind:
                return event
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(
        f"no {kind!r} event within {timeout:.0f} s (demo exit status {proc.poll()}); "
        f"its output:\n{output.read_text(errors='replace')}",
        pytrace=False,
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the printed link itself must answer, not a page it redirects to


def _check_links(text: str) -> list[str]:
    """Every http link in the demo's output answers 200 itself, and none is a placeholder page
    for a missing web UI; the amtool command, when printed, runs. Returns the links."""
    links = sorted(set(LINK.findall(text)))
    opener = urllib.request.build_opener(_NoRedirect)
    for link in links:
        try:
            with opener.open(link, timeout=5) as response:
                status, body = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            status, body = error.code, ""
        assert status == 200, f"{link} answered {status}"
        assert NO_UI not in " ".join(body.split()), f"{link} is the 'no web UI' page"
    for line in text.splitlines():
        if line.strip().startswith("amtool "):
            done = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, f"{line.strip()}: {done.stderr}"
    return links


def _session_members(sid: int) -> list[str]:
    """Every live process in session `sid`, as 'pid command'."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(f"{entry.name} {stat[: stat.rfind(')') + 1]}")
    return found


def test_demo_delivers_the_current_qr_and_leaves_nothing_behind(tmp_path: Path) -> None:
    zbarimg = _require("zbarimg", "zbar-tools")
    _require("prometheus", "prometheus")
    _require("prometheus-alertmanager", "prometheus-alertmanager")
    events, output = tmp_path / "events.jsonl", tmp_path / "demo-output.txt"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(DEMO), "--random-ports", "--duration", "85",
             "--events", str(events)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            start_new_session=True,
        )  # fmt: skip
    ready: dict[str, Any] = {}
    try:
        ready = _wait_event(events, "ready", proc, output, timeout=30)
        delivered = _wait_event(events, "qr_delivered", proc, output, timeout=FIRST_QR_BOUND_S)
        decoded = subprocess.run(
            [zbarimg, "--raw", "-q", delivered["png"]], capture_output=True, text=True, check=False
        )
        url = f"{ready['urls']['exporter']}/api/v1/bots/{delivered['bot']}/qr"
        with urllib.request.urlopen(url, timeout=5) as response:
            pending = json.load(response)
        assert decoded.returncode == 0, decoded.stderr
        assert decoded.stdout.strip() == pending["qrcode"]
        assert pending["qrcode"].startswith("https://login.weixin.qq.com/l/")
        # While it runs: every link it printed works with the installed Prometheus and
        # Alertmanager (Debian 12: Prometheus's classic UI only, no Alertmanager UI).
        links = _check_links(output.read_text(errors="replace"))
        urls = ready["urls"]
        assert any(link.startswith(urls["prometheus"] + "/") for link in links), links
        assert any(link.startswith(urls["alertmanager"] + "/") for link in links), links
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"the demo did not stop on SIGINT:\n{output.read_text()}", pytrace=False)

    text = output.read_text(errors="replace")
    assert proc.returncode == 0, text
    for progress in ("Prometheus ready", "Alertmanager ready", "first scrape", "firing",
                     "from bob (peer bot)", "first login QR delivered", "▀"):  # fmt: skip
        assert progress in text, f"{progress!r} not in the demo's output:\n{text}"
    assert not Path(ready["dir"]).exists(), "the demo's temp dir is still there"
    assert _session_members(proc.pid) == [], "processes of the demo are still running"
    for name, pid in ready["pids"].items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) is still running"
    assert _events(events)[-1]["event"] == "stopped"
