"""Starts the real exporter, Prometheus and Alertmanager on free loopback ports, and webhook sinks.

Every process gets a free port, a temporary data dir and a log file (Processes); Prometheus and
Alertmanager run the fast profile, rendered from deploy/ by deploy/prometheus/profiles/render.py.
Webhook sinks (aiohttp servers in a thread of this process) stand in for the receivers and
record every POST. The fixtures live in tests/integration/conftest.py and tests/deploy/conftest.py.

The binaries are required, never skipped: a missing one fails with how to install it. The
exporter is `wechaty-exporter` next to this Python, on PATH, or `python -m wechaty_exporter`;
WECHATY_EXPORTER_COMMAND (a shell-quoted command) runs another build instead.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from aiohttp import web
from scripts.processes import Supervisor
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
RECEIVERS = ("peer-alice", "peer-bob", "fallback", "watchdog")
BOTS = {"alice": "Alice", "bob": "Bob"}  # bot name → WeChat display name in its log

T = TypeVar("T")


def _load_render() -> Any:
    path = REPO / "deploy" / "prometheus" / "profiles" / "render.py"
    spec = importlib.util.spec_from_file_location("wechaty_deploy_render", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_render()


# --- binaries, ports, polling -------------------------------------------------------------------


def require_binary(name: str, package: str) -> str:
    """The binary's path, or a test failure that says how to install it (CI must not skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found on PATH. Install the Debian package: "
            f"apt-get update && apt-get install -y {package}. These tests never skip.",
            pytrace=False,
        )
    return path


def require_node(node_dir: Path, module: str) -> str:
    """node's path, once `npm ci` has installed `module` in `node_dir`, or a test failure that
    says how to get both (CI must not skip)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found on PATH (Node 20). These tests never skip.", pytrace=False)
    if not (node_dir / "node_modules" / module).is_dir():
        pytest.fail(
            f"{node_dir / 'node_modules'} is incomplete: run `bash scripts/setup.sh --test` "
            f"(npm ci in {node_dir.relative_to(REPO)}). These tests never skip.",
            pytrace=False,
        )
    return node


@dataclass(frozen=True)
class Tool:
    """A command-line tool (promtool, amtool) whose failures fail the test with its output."""

    path: str

    def result(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.path, *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
        )

    def run(self, *args: str, cwd: Path | None = None) -> str:
        """The tool's output; a non-zero exit fails the test with the command and its output."""
        done = self.result(*args, cwd=cwd)
        output = done.stdout + done.stderr
        if done.returncode != 0:
            where = f" (in {cwd})" if cwd else ""
            pytest.fail(
                f"$ {shlex.join([self.path, *args])}{where}\nexit status {done.returncode}\n"
                f"{output}",
                pytrace=False,
            )
        return output


def exporter_command() -> list[str]:
    """How to run wechaty-exporter: an override, the console script, or `python -m`."""
    override = os.environ.get("WECHATY_EXPORTER_COMMAND")
    if override:
        return shlex.split(override)
    script = Path(sys.executable).parent / "wechaty-exporter"
    if script.exists():
        return [str(script)]
    found = shutil.which("wechaty-exporter")
    if found:
        return [found]
    return [sys.executable, "-m", "wechaty_exporter"]


def token_file(directory: Path) -> tuple[Path, str]:
    """A fresh bearer token in `directory`/receiver-token (mode 0600): (path, token)."""
    token = secrets.token_urlsafe(24)
    path = directory / "receiver-token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path, token


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    processes: Processes | None = None,
) -> T:
    """Poll `probe` until it returns something other than None/False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        if processes is not None:
            processes.check_alive()
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            logs = processes.logs() if processes is not None else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs}", pytrace=False)
        time.sleep(interval)


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


# --- processes ---------------------------------------------------------------------------------


class Processes(Supervisor):
    """Every process the session started (scripts/processes.py): stopped at teardown, logs shown
    on failure. As a context manager it stops them all on leaving the block."""

    def check_alive(self) -> None:
        """Fail the test, showing every process's log, when one of them has exited."""
        dead = self.exited()
        if dead is not None:
            pytest.fail(
                f"{dead.name} exited with status {dead.popen.returncode}: {shlex.join(dead.argv)}\n"
                f"{self.logs()}",
                pytrace=False,
            )


# --- bot logs ----------------------------------------------------------------------------------


def brolog(message: str, level: str = "INFO", prefix: str = "StarterBot") -> str:
    """One line as TypeScript Wechaty's brolog writes it."""
    return f"{datetime.now():%H:%M:%S} {level} {prefix} {message}"


@dataclass
class BotLogs:
    """Each bot's log file, written the way a running bot appends to it."""

    directory: Path

    def path(self, bot: str) -> Path:
        return self.directory / f"{bot}.log"

    def self_log(self, bot: str) -> Path:
        """The bot's self-log: a file of its own (self-log lines count only there)."""
        return self.directory / f"{bot}.self.log"

    def write(self, bot: str, *lines: str, path: Path | None = None) -> None:
        with (path or self.path(bot)).open("a", encoding="utf-8") as log:
            log.write("".join(line + "\n" for line in lines))

    def login(self, bot: str) -> None:
        self.write(bot, brolog(f"Contact<{BOTS[bot]}> login"))

    def logout(self, bot: str) -> None:
        qr = f"https://login.weixin.qq.com/l/{secrets.token_hex(6)}"
        self.write(
            bot,
            brolog(f"Contact<{BOTS[bot]}> logout"),
            brolog(f"onScan: Waiting(2) - {qr}"),
        )


# --- the real servers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Exporter:
    address: str  # HOST:PORT

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@dataclass(frozen=True)
class Prometheus:
    url: str
    config: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector; fails the test on a query error."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            body = http_json(url)
        except urllib.error.HTTPError as error:
            pytest.fail(f"query {expr!r}: {error.code} {error.read().decode()}", pytrace=False)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def values(self, expr: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}


@dataclass(frozen=True)
class Alertmanager:
    url: str
    config: Path

    def alerts(self, **matchers: str) -> list[dict[str, Any]]:
        query = [("filter", f'{k}="{v}"') for k, v in matchers.items()]
        return list(http_json(f"{self.url}/api/v2/alerts?" + urllib.parse.urlencode(query)))


def start_exporter(
    processes: Processes, logs: BotLogs, state_dir: Path, *, self_logs: bool = False
) -> Exporter:
    """An exporter following each bot's log (and, with `self_logs`, its self-log too)."""
    address = f"127.0.0.1:{free_port()}"
    argv = [*exporter_command(), "serve"]
    for bot in BOTS:
        for path in (logs.path(bot), logs.self_log(bot)) if self_logs else (logs.path(bot),):
            path.touch()
            argv += ["--log", f"{bot}={path}"]
    argv += ["--web.listen-address", address, "--state-dir", str(state_dir)]
    src = str(REPO / "src")
    pythonpath = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), src) if p)
    processes.start("exporter", argv, env={"PYTHONPATH": pythonpath})
    exporter = Exporter(address)
    wait_until(
        lambda: http_ok(f"{exporter.url}/-/ready"),
        timeout=20,
        what=f"the exporter at {exporter.url}/-/ready",
        processes=processes,
    )
    return exporter


def start_prometheus(
    processes: Processes, workdir: Path, exporter: Exporter, alertmanager: Alertmanager | None
) -> Prometheus:
    am = [urllib.parse.urlsplit(alertmanager.url).netloc] if alertmanager else []
    return run_prometheus(processes, workdir, [exporter.address], am)


def run_prometheus(
    processes: Processes,
    workdir: Path,
    exporter_targets: list[str],
    alertmanagers: list[str],
    *,
    rules: Callable[[Path], None] | None = None,
) -> Prometheus:
    """Prometheus on the fast profile scraping `exporter_targets` (HOST:PORT), once ready;
    `rules` may rewrite the rendered rules directory first (shorten_unresponsive_window)."""
    binary = require_binary("prometheus", "prometheus")
    profile = render.load_profile("fast")
    config = render.render_prometheus(
        profile,
        workdir / "prometheus",
        exporter_targets=exporter_targets,
        alertmanagers=alertmanagers,
    )
    if rules is not None:
        rules(workdir / "prometheus" / "rules")
    port = free_port()
    processes.start(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            *render.prometheus_flags(profile),
        ],
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", config)
    wait_until(
        lambda: http_ok(f"{prometheus.url}/-/ready"),
        timeout=30,
        what="Prometheus to be ready",
        processes=processes,
    )
    return prometheus


# The shipped WechatyBotUnresponsive window, for a 10m probe interval, and what it becomes for a
# probe interval of about 0.3 s: 2 s for `1200`, 4 s for `35m`, 3 s for `2100`.
UNRESPONSIVE_WINDOW = {"< 1200": "< 2", "[35m]": "[4s]", "< 2100": "< 3"}


def shorten_unresponsive_window(rules_dir: Path) -> None:
    """Rewrite WechatyBotUnresponsive in the rendered rules to UNRESPONSIVE_WINDOW (seconds);
    each piece must be in the shipped rule exactly once."""
    [rules] = sorted(rules_dir.glob("*.yml"))
    doc = yaml.safe_load(rules.read_text())
    [rule] = [
        r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "WechatyBotUnresponsive"
    ]
    for old, new in UNRESPONSIVE_WINDOW.items():
        assert rule["expr"].count(old) == 1, f"the shipped rule no longer has {old!r}"
        rule["expr"] = rule["expr"].replace(old, new)
    rules.write_text(yaml.safe_dump(doc, sort_keys=False))


def start_alertmanager(
    processes: Processes, workdir: Path, receiver_urls: dict[str, str], token_file: Path
) -> Alertmanager:
    config = render.render_alertmanager(
        render.load_profile("fast"),
        workdir / "alertmanager",
        receiver_urls=receiver_urls,
        credentials_file=token_file,
    )
    return run_alertmanager(processes, config, workdir / "alertmanager-data")


def run_alertmanager(processes: Processes, config: Path, storage: Path) -> Alertmanager:
    """One Alertmanager (no cluster) on `config`, storing in `storage`, once ready."""
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    port = free_port()
    processes.start(
        "alertmanager",
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
    )
    alertmanager = Alertmanager(f"http://127.0.0.1:{port}", config)
    wait_until(
        lambda: http_ok(f"{alertmanager.url}/-/ready"),
        timeout=30,
        what="Alertmanager to be ready",
        processes=processes,
    )
    return alertmanager


# --- webhook sinks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One webhook POST as a sink received it."""

    receiver: str
    received_at: float  # time.time()
    authorization: str | None
    payload: dict[str, Any]

    def alerts(self, status: str, alertname: str, **labels: str) -> list[dict[str, Any]]:
        return [
            a
            for a in self.payload.get("alerts", [])
            if a["status"] == status
            and a["labels"].get("alertname") == alertname
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]


class WebhookSinks:
    """One aiohttp server per receiver (POST /alerts), run in a thread; records every POST."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.urls: dict[str, str] = {}
        self.received: list[Notification] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runners: list[web.AppRunner] = []

    def _app(self, name: str) -> web.Application:
        async def alerts(request: web.Request) -> web.Response:
            notification = Notification(
                receiver=name,
                received_at=time.time(),
                authorization=request.headers.get("Authorization"),
                payload=await request.json(),
            )
            with self._changed:
                self.received.append(notification)
                self._changed.notify_all()
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/alerts", alerts)
        return app

    async def _start(self) -> None:
        for name in self.names:
            runner = web.AppRunner(self._app(name))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            self.urls[name] = f"http://127.0.0.1:{port}/alerts"
            self._runners.append(runner)

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()

    def __enter__(self) -> WebhookSinks:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def mark(self) -> int:
        """A position: wait_for(after=mark) sees only what arrives from now on."""
        with self._changed:
            return len(self.received)

    def since(self, mark: int) -> list[Notification]:
        with self._changed:
            return self.received[mark:]

    def wait_for(
        self, match: Callable[[Notification], bool], *, after: int, timeout: float, what: str
    ) -> Notification:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for notification in self.received[after:]:
                    if match(notification):
                        return notification
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [
                        (n.receiver, [(a["status"], a["labels"]) for a in n.payload["alerts"]])
                        for n in self.received[after:]
                    ]
                    pytest.fail(
                        f"no {what} within {timeout}s; received since: {seen}", pytrace=False
                    )
                self._changed.wait(left)
