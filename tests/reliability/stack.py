"""The alerting side for the receiver-fault tests: real Alertmanagers (clustered or not), real
Prometheus, `wechaty-exporter receiver` as a process, and a scriptable peer-bot endpoint.

Configs come from deploy/ through the fast profile (deploy/prometheus/profiles/render.py), as in
tests/integration; process handling and webhook sinks are tests/integration/harness.py's.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from tests.integration.harness import (
    Processes,
    free_port,
    http_ok,
    render,
    require_binary,
    run_prometheus,
    wait_until,
)
from tests.reliability.kit import Metrics, child_env


@dataclass(frozen=True)
class Alertmanager:
    url: str
    cluster: str  # HOST:PORT it gossips on ("" when not clustered)
    log: Path  # its output, at debug level

    def flushes(self, bot: str) -> list[str]:
        """The states in each flush of `bot`'s WechatyBotLoggedOut group, in order, from the
        debug log ("flushing" ... alerts=[WechatyBotLoggedOut[fp][active|resolved]]).

        A group's flushes run one after another: the notification of one flush (retries
        included, or its skip when the notification log says it was sent already) is over when
        the next flush begins. So once a flush is logged after the one that sent something,
        whatever that one would still send, a copy or a retry, has arrived.
        """
        found = []
        group = f'bot=\\"{bot}\\"}}:{{alertname=\\"WechatyBotLoggedOut\\"'
        for line in self.log.read_text(errors="replace").splitlines():
            if "msg=flushing" in line and group in line.replace(", ", ","):
                found.append(line.rsplit("alerts=", 1)[-1])
        return found

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return Metrics.parse(response.read().decode()).value(name, **labels)

    def post_alert(self, labels: dict[str, str], *, annotations: dict[str, str] | None = None,
                   starts_at: datetime | None = None, minutes: int = 10) -> None:  # fmt: skip
        """Fire an alert the way Prometheus does (API v2), ending in `minutes` unless re-sent."""
        start = starts_at or datetime.now(UTC)
        doc = [
            {
                "labels": labels,
                "annotations": annotations or {"summary": f"{labels.get('bot')} is logged out"},
                "startsAt": start.isoformat().replace("+00:00", "Z"),
                "endsAt": (start + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
            }
        ]
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(doc).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200


def start_alertmanager(
    processes: Processes,
    workdir: Path,
    name: str,
    receiver_urls: dict[str, str],
    token: Path,
    *,
    peers: tuple[str, ...] | None = None,
    peer_timeout: str = "15s",
) -> Alertmanager:
    """One Alertmanager on the fast profile. `peers` None: no cluster; () the first of a cluster;
    else the addresses of the members to join."""
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    config = render.render_alertmanager(
        render.load_profile("fast"), workdir / name, receiver_urls=receiver_urls,
        credentials_file=token,
    )  # fmt: skip
    port = free_port()
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / name / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=debug",  # its flushes: see Alertmanager.flushes
    ]
    cluster = ""
    if peers is None:
        argv.append("--cluster.listen-address=")
    else:
        cluster = f"127.0.0.1:{free_port()}"
        argv += [
            f"--cluster.listen-address={cluster}",
            f"--cluster.advertise-address={cluster}",
            f"--cluster.peer-timeout={peer_timeout}",
            "--cluster.gossip-interval=50ms",
            "--cluster.pushpull-interval=1s",
            "--cluster.settle-timeout=5s",
        ]
        argv += [f"--cluster.peer={peer}" for peer in peers]
    child = processes.start(name, argv)
    am = Alertmanager(f"http://127.0.0.1:{port}", cluster, child.log_path)
    wait_until(
        lambda: http_ok(f"{am.url}/-/ready"), timeout=30, what=f"{name} ready", processes=processes
    )
    return am


def cluster_size(am: Alertmanager) -> int:
    with urllib.request.urlopen(f"{am.url}/api/v2/status", timeout=5) as response:
        status = json.load(response)
    return len(status["cluster"].get("peers") or [])


def start_prometheus(
    processes: Processes, workdir: Path, exporter: str, alertmanagers: list[Alertmanager]
) -> str:
    targets = [am.url.removeprefix("http://") for am in alertmanagers]
    return run_prometheus(processes, workdir, [exporter], targets).url


# --- the receiver process ---------------------------------------------------------------------


@dataclass
class ReceiverProcess:
    """`python -m wechaty_exporter receiver --config FILE --state-dir DIR` on a fixed port."""

    workdir: Path
    settings: dict[str, Any]  # the `receiver:` section
    state_dir: Path
    port: int = field(default_factory=free_port)
    name: str = "receiver"
    processes: Processes | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, processes: Processes) -> None:
        self.processes = processes
        config = self.workdir / f"{self.name}.yml"
        section = {**self.settings, "listen_address": f"127.0.0.1:{self.port}"}
        config.write_text(yaml.safe_dump({"receiver": section}))
        self.starts += 1
        argv = [sys.executable, "-m", "wechaty_exporter", "receiver", "--config", str(config),
                "--state-dir", str(self.state_dir)]  # fmt: skip
        processes.start(f"{self.name}-{self.starts}", argv, env=child_env())
        wait_until(
            lambda: http_ok(f"{self.url}/-/ready"),
            timeout=20,
            what=f"{self.name} ready",
            processes=processes,
        )

    def kill9(self) -> None:
        assert self.processes is not None
        name = f"{self.name}-{self.starts}"
        process = next(p for p in self.processes.started if p.name == name)
        process.popen.kill()
        process.popen.wait(10)
        self.processes.started.remove(process)  # killed on purpose: not a death to report

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return Metrics.parse(response.read().decode()).value(name, **labels)


# --- a peer bot that fails, then recovers -----------------------------------------------------


class PeerBotEndpoint:
    """What the webhook messenger posts to: a peer bot written in another language, on loopback.

    While `failing` is True it answers 503 to images (texts are taken), as a bot whose upload
    to WeChat fails; every request is recorded, accepted ones separately.
    """

    def __init__(self) -> None:
        self.failing = True
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
            if self.failing and body["type"] == "image":
                return web.json_response({"error": "upload failed"}, status=503)
            self.accepted.append(body)
        return web.json_response({"ok": True})

    async def _start(self) -> None:
        app = web.Application(client_max_size=8 << 20)
        app.router.add_post("/send", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/send"

    def __enter__(self) -> PeerBotEndpoint:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def count(self, kind: str, *, accepted: bool = False) -> int:
        with self._lock:
            pool = self.accepted if accepted else self.requests
            return sum(1 for r in pool if r["type"] == kind)
