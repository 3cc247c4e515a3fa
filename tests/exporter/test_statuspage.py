"""The status page: what it says (pure rendering), and that a browser shows a scannable QR.

The screenshot tests run the real exporter (`python -m wechaty_exporter serve` on a free port,
tailing a real log with a login QR line), render `/` in headless Chromium at a laptop and a phone
viewport, and decode the screenshot with zbarimg: the QR on screen must be the bot's pending QR.
Chromium (Debian `chromium`) and zbarimg (`zbar-tools`) are required; CI installs them
(scripts/setup.sh --test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.helpers import free_port

from wechaty_exporter.exporter.collector import BotView, FileView
from wechaty_exporter.exporter.statuspage import render_status_page
from wechaty_exporter.logs.events import ScanStatus
from wechaty_exporter.logs.state import BotState, PendingQr

SRC = str(Path(__file__).resolve().parents[2] / "src")
QR = "https://login.weixin.qq.com/l/Ib7RyoVDcw=="
NOW = 1_764_000_000.0


def _view(name: str, state: BotState, present: bool = True) -> BotView:
    return BotView(name, state, (FileView(f"/var/log/{name}.log", present, 0, 0, 0, 0),))


def _out(qr: str | None = QR, seen: float = NOW - 30) -> BotState:
    pending = PendingQr(qr, ScanStatus.WAITING, seen) if qr else None
    return BotState(logged_in=False, known=True, since=NOW - 60, qr=pending)


def _in() -> BotState:
    return BotState(logged_in=True, known=True, since=NOW - 3600, user="Alice Bot")


# --- what the page says ------------------------------------------------------------------------


def test_logged_out_bot_comes_first_with_its_qr_and_a_summary() -> None:
    views = [_view("alice", _in()), _view("carol", BotState()), _view("bob", _out())]
    page = render_status_page(views, show_qr=True, version="1.0", now=NOW)
    assert page.index('id="bot-bob"') < page.index('id="bot-carol"') < page.index('id="bot-alice"')
    assert "bob is logged out: scan the QR below" in page
    assert page.count("data:image/svg+xml") == 1
    assert "logged out for 60 s" in page and "logged in for 60 min" in page
    assert "<title>1 logged out · wechaty-exporter</title>" in page
    assert QR not in page  # only inside the image: never as text on the page


def test_summary_when_all_are_in_or_unknown() -> None:
    both_in = [_view("alice", _in()), _view("bob", _in())]
    assert "All 2 bots are logged in" in render_status_page(both_in, show_qr=True, version="1")
    unknown = [_view("alice", _in()), _view("carol", BotState())]
    page = render_status_page(unknown, show_qr=True, version="1", now=NOW)
    assert "1 bot not seen logging in or out yet" in page
    assert "no login, logout or scan seen" in page


def test_qr_hidden_from_remote_clients_without_a_token() -> None:
    page = render_status_page([_view("bob", _out())], show_qr=False, version="1", now=NOW)
    assert "data:image" not in page
    assert "a login QR is pending" in page and "bearer token" in page


def test_old_qr_is_flagged_and_missing_log_is_shown() -> None:
    views = [_view("bob", _out(seen=NOW - 600), present=False)]
    page = render_status_page(views, show_qr=True, version="1", now=NOW)
    assert "probably expired" in page
    assert "missing or unreadable" in page


def test_names_are_escaped() -> None:
    state = BotState(logged_in=True, known=True, user="<script>x</script>")
    page = render_status_page([_view("bob", state)], show_qr=True, version="<v>", now=NOW)
    assert "<script>x" not in page and "&lt;script&gt;" in page and "&lt;v&gt;" in page


def test_counts_say_since_when_they_count() -> None:
    state = BotState(logged_in=True, known=True, logins_total=1, qr_codes_total=2)
    views = [_view("alice", state), _view("bob", _out())]
    counting = {"alice": NOW - 120, "bob": None}
    page = render_status_page(views, show_qr=True, version="1", now=NOW, counting_since=counting)
    assert "1 login · 0 logouts · 2 QRs" in page and "counted since" in page
    assert "counted from the first line of its logs" in page
    assert "counted" not in render_status_page(views, show_qr=True, version="1", now=NOW)


# --- what a browser shows ------------------------------------------------------------------------


def _require(names: tuple[str, ...], package: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{names[0]} not found: install it with `apt-get install -y {package}` "
        "(scripts/setup.sh --test does). The status page screenshot tests never skip.",
        pytrace=False,
    )


@dataclass(frozen=True)
class Exporter:
    url: str
    output: Path


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    """The real exporter tailing alice (logged in) and bob (logged out, QR pending)."""
    logs = tmp_path_factory.mktemp("logs")
    (logs / "alice.log").write_text("09:58:36 INFO StarterBot Contact<Alice Bot> login\n")
    (logs / "bob.log").write_text("")
    port = free_port()
    output = logs / "exporter.out"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wechaty_exporter", "serve",
             "--log", f"alice={logs / 'alice.log'}", "--log", f"bob={logs / 'bob.log'}",
             "--web.listen-address", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get(f"{url}/-/ready") is not None, proc, output, "the exporter to be ready")
        with (logs / "bob.log").open("a") as log:  # appended while running: the tailer's path
            log.write(f"10:00:00 INFO StarterBot Contact<Bob Bot> logout\n"
                      f"10:00:01 INFO StarterBot onScan: Waiting(2) - {QR}\n")  # fmt: skip
        _wait(lambda: _get(f"{url}/api/v1/bots/bob/qr"), proc, output, "bob's QR on the exporter")
        yield Exporter(url, output)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bytes(response.read())
    except OSError:
        return None


def _wait(
    probe: Callable[[], object], proc: subprocess.Popen[bytes], output: Path, what: str
) -> None:
    deadline = time.monotonic() + 15
    while not probe():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {what}; exporter output:\n{output.read_text()}", pytrace=False)
        time.sleep(0.05)


def _screenshot(url: str, size: tuple[int, int], tmp_path: Path) -> Path:
    chromium = _require(("chromium", "chromium-browser"), "chromium")
    shot = tmp_path / f"status-{size[0]}x{size[1]}.png"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium'}",
         f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)},
        check=False,
    )  # fmt: skip
    assert shot.exists(), f"chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr}"
    return shot


def _decode(png: Path) -> list[str]:
    zbarimg = _require(("zbarimg",), "zbar-tools")
    done = subprocess.run(
        [zbarimg, "--raw", "-q", str(png)], capture_output=True, text=True, check=False
    )
    return done.stdout.split()


@pytest.mark.parametrize(
    "size", [(1280, 1600), (390, 844)], ids=["laptop-1280x1600", "phone-390x844"]
)
def test_screenshot_shows_the_pending_qr(
    exporter: Exporter, size: tuple[int, int], tmp_path: Path
) -> None:
    pending = json.loads(_get(f"{exporter.url}/api/v1/bots/bob/qr") or b"{}")
    shot = _screenshot(exporter.url + "/", size, tmp_path)
    # The phone viewport shows the QR above the fold: the screenshot is only the first screen.
    assert _decode(shot) == [pending["qrcode"]] == [QR], f"screenshot: {shot}"
