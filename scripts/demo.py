#!/usr/bin/env python3
"""The whole rescue loop on this machine: two simulated bots → exporter → Prometheus → Alertmanager
→ receivers → the admin's phone (this terminal).

What runs, all on loopback, all stopped by Ctrl-C (or SIGTERM), with every temp file removed:

- two simulated bots (scripts/simulate_bot.py) writing real-format logs: alice (TypeScript Wechaty,
  brolog) is logged out every couple of minutes and prints a fresh login QR every 20 s until it is
  "scanned"; bob (python-wechaty) stays logged in;
- the exporter (`wechaty-exporter serve`) following both logs;
- the real Prometheus and Alertmanager, configured from deploy/ in the fast profile (rendered by
  deploy/prometheus/profiles/render.py, as the integration tests do);
- three receivers (`wechaty-exporter receiver --outbox`): the ones bob and alice would host as peer
  bots, and the fallback channel; their outbox files are the admin's phone: every message is
  printed here as it arrives, a QR image drawn in text and saved as PNG;
- a dead man's switch for the Watchdog alert.

    python scripts/demo.py                  # until Ctrl-C (scripts/demo.sh sets up .venv first)
    python scripts/demo.py --duration 120   # stop by itself after two minutes

`--events FILE` writes what happens as JSON lines, for tests (tests/demo/test_demo.py).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, TextIO

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: find scripts/processes.py as scripts.processes
from scripts.processes import ChildExited, Supervisor  # noqa: E402

# Fixed ports people can bookmark; a busy one falls back to a free port (printed).
DEFAULT_PORTS = {
    "exporter": 9839,
    "prometheus": 9090,
    "alertmanager": 9093,
    "peer-bob": 9411,
    "peer-alice": 9412,
    "fallback": 9413,
    "watchdog": 9414,
}
# Alertmanager's receivers (deploy/alertmanager/alertmanager.yml) → who sends the admin's messages.
RECEIVERS = {"peer-bob": "bob", "peer-alice": "alice", "fallback": "fallback channel"}
ADMIN = "admin"
BINARIES = {"prometheus": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager"}
# Web UI pages to link, most recent UI first: upstream Prometheus serves its React UI at /alerts
# and /graph (3.x: /query); Debian 12's 2.42 ships only the classic UI, under /classic/.
PROMETHEUS_PAGES = {
    "alerts": ("/alerts", "/classic/alerts"),
    "query": ("/query", "/graph", "/classic/graph"),
}
PROMETHEUS_QUERY = "?" + urllib.parse.urlencode({"g0.expr": "wechaty_bot_logged_in", "g0.tab": "1"})
# What a server without its web UI answers with 200 instead (Debian's Alertmanager at `/`).
NO_UI_MARKERS = (b"does not include a web application",)


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived: stop everything."""


class StartupError(Exception):
    """Something did not come up; the message says what, with the process's log."""


# --- output ------------------------------------------------------------------------------------


class Out:
    """Progress lines stamped with the time since start; colour only on a terminal."""

    def __init__(self, stream: TextIO, events: Path | None) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.color = stream.isatty() and os.environ.get("NO_COLOR") is None
        self.events = events.open("a", encoding="utf-8") if events else None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def style(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def raw(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def say(self, text: str, code: str = "") -> None:
        stamp = self.style(f"{self.elapsed():7.1f}s", "2")
        self.raw(f"{stamp}  {self.style(text, code) if code else text}")

    def event(self, kind: str, **fields: Any) -> None:
        if self.events is not None:
            record = {"event": kind, "elapsed": round(self.elapsed(), 3), **fields}
            self.events.write(json.dumps(record) + "\n")
            self.events.flush()

    def close(self) -> None:
        if self.events is not None:
            self.events.close()


# --- helpers -----------------------------------------------------------------------------------


def load_render() -> ModuleType:
    """deploy/prometheus/profiles/render.py: the one way deploy/ becomes runnable configs."""
    path = REPO / "deploy" / "prometheus" / "profiles" / "render.py"
    spec = importlib.util.spec_from_file_location("wechaty_deploy_render", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pick_ports(random_ports: bool) -> dict[str, int]:
    """Each default port if it is free, else (or always with random_ports) a free one."""
    chosen: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        port = 0 if random_ports else default
        while True:
            with socket.socket() as s:
                # As the servers do: a port left in TIME_WAIT by the last run is free to use.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    port = 0
                    continue
                got = int(s.getsockname()[1])
            if got not in chosen.values():
                break
            port = 0
        chosen[name] = got
    return chosen


def http_get(url: str, timeout: float = 2.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bytes(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as an HTTPError: the link itself must answer


def serves_page(url: str, timeout: float = 2.0) -> bool:
    """True when `url` itself (no redirect) answers 200 with an HTML page that is not a
    placeholder for a missing web UI."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=timeout) as response:
            if response.status != 200 or response.headers.get_content_type() != "text/html":
                return False
            body = bytes(response.read(1 << 20))
    except (OSError, urllib.error.URLError, ValueError):
        return False
    text = b" ".join(body.split()).lower()  # the placeholder's sentence spans lines
    return b"<html" in text and not any(marker in text for marker in NO_UI_MARKERS)


def first_page(base: str, paths: tuple[str, ...], query: str = "") -> str | None:
    """The first of `paths` under `base` that serves a page, as a link (None: none does)."""
    return next((base + p + query for p in paths if serves_page(base + p + query)), None)


def http_json(url: str) -> Any:
    body = http_get(url)
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def local_timezone() -> str | None:
    """This machine's IANA zone name (for times in the admin's messages), if it can tell."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        with contextlib.suppress(OSError):
            name = Path("/etc/timezone").read_text().strip()
    if not name:
        with contextlib.suppress(OSError):
            name = os.readlink("/etc/localtime").split("zoneinfo/", 1)[-1]
    try:
        import zoneinfo

        zoneinfo.ZoneInfo(name)
    except (ValueError, KeyError, ImportError, OSError):
        return None
    return name or None


def qr_matrix(png_bytes: bytes) -> list[bytearray] | None:
    """The modules of a QR image (1 = dark), read back from the PNG exactly as delivered."""
    try:
        import png  # pypng, installed with the project's dev extras
    except ImportError:
        return None
    try:
        width, _height, rows, _info = png.Reader(bytes=png_bytes).asRGB8()
        dark = [[row[3 * x] < 128 for x in range(width)] for row in rows]
    except Exception:
        return None
    top = next((y for y, row in enumerate(dark) if any(row)), None)
    if top is None:
        return None
    left = dark[top].index(True)
    run = 0
    while left + run < width and dark[top][left + run]:
        run += 1
    scale, rest = divmod(run, 7)  # the top-left finder pattern is 7 modules wide
    if scale == 0 or rest:
        return None
    n = (width - 2 * left) // scale
    half = scale // 2
    try:
        return [
            bytearray(int(dark[top + r * scale + half][left + c * scale + half]) for c in range(n))
            for r in range(n)
        ]
    except IndexError:
        return None


def draw_qr(matrix: list[bytearray], stream: TextIO) -> None:
    """Half-block characters, light modules drawn as blocks (made for a dark terminal)."""
    import segno.writers

    size = (len(matrix), len(matrix))
    segno.writers.write_terminal_compact(matrix, size, stream, border=2)  # type: ignore[attr-defined]


# --- processes ---------------------------------------------------------------------------------


class WatchdogSink:
    """The dead man's switch: Alertmanager's `watchdog` receiver posts the Watchdog alert here."""

    def __init__(self, port: int) -> None:
        self.hits = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                sink.hits += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Outbox:
    """One receiver's outbox file, read as it grows."""

    sender: str
    path: Path
    offset: int = 0
    partial: bytes = b""

    def new_records(self) -> Iterator[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)


# --- the demo ----------------------------------------------------------------------------------


class Demo:
    def __init__(self, args: argparse.Namespace, out: Out) -> None:
        self.args = args
        self.out = out
        self.dir = Path(tempfile.mkdtemp(prefix="wechaty-exporter-demo."))
        for sub in ("bots", "logs", "admin", "secrets"):
            (self.dir / sub).mkdir()
        self.children = Supervisor(self.dir / "logs", own_groups=True)
        self.ports = pick_ports(args.random_ports)
        self.moved = {
            name: port
            for name, port in self.ports.items()
            if not args.random_ports and port != DEFAULT_PORTS[name]
        }
        self.url = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.watchdog: WatchdogSink | None = None
        self.outboxes: list[Outbox] = []
        self.qr_images = 0
        self.first_qr_at: float | None = None
        self.bot_states: dict[str, tuple[Any, Any]] = {}
        self.prom_alerts: dict[tuple[str, str], str] = {}
        self.am_alerts: dict[str, str] = {}
        self.watchdog_seen = False
        self.scraped_at: float | None = None
        self.logged_out_at: dict[str, float] = {}

    # --- start -------------------------------------------------------------------------------

    def start(self) -> None:
        out = self.out
        out.raw(out.style("wechaty-exporter demo: the whole rescue loop on this machine", "1"))
        out.raw(f"  work dir {self.dir} (removed when the demo stops)")
        out.raw()
        render = load_render()
        profile = render.load_profile("fast")
        python = [sys.executable]
        src = str(REPO / "src")
        env = {"PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
        exporter = [*python, "-m", "wechaty_exporter"]

        token = self.dir / "secrets" / "receiver-token"
        token.write_text(secrets.token_urlsafe(24) + "\n")
        token.chmod(0o600)

        # The bots first, so their logs exist (with a login) when the exporter starts.
        logs = {bot: self.dir / "bots" / f"{bot}.log" for bot in ("alice", "bob")}
        simulate = [*python, str(REPO / "scripts" / "simulate_bot.py")]
        a = self.args
        self.children.start(
            "bot-alice",
            [*simulate, "alice", "--log", str(logs["alice"]), "--dialect", "brolog", "--cycle",
             "--first-logout", str(a.first_logout), "--offline", str(a.offline),
             "--online", str(a.online), "--qr-every", str(a.qr_every)],
        )  # fmt: skip
        self.children.start(
            "bot-bob",
            [*simulate, "bob", "--log", str(logs["bob"]), "--dialect", "python-wechaty"],
        )
        out.say("bots started: alice (TypeScript Wechaty log), bob (python-wechaty log)")
        deadline = time.monotonic() + 10
        while not all(p.exists() and p.stat().st_size for p in logs.values()):
            self._check_children()
            if time.monotonic() > deadline:
                raise StartupError("the simulated bots wrote no log lines within 10 s")
            time.sleep(0.05)

        self.watchdog = WatchdogSink(self.ports["watchdog"])
        self.children.start(
            "exporter",
            [*exporter, "serve", "--log", f"alice={logs['alice']}", "--log", f"bob={logs['bob']}",
             "--web.listen-address", f"127.0.0.1:{self.ports['exporter']}",
             "--state-dir", str(self.dir / "exporter-state")],
            env,
        )  # fmt: skip
        for name, host in RECEIVERS.items():
            self._start_receiver(name, host, exporter, env, token)
        am_config = render.render_alertmanager(
            profile,
            self.dir / "alertmanager",
            receiver_urls={
                **{name: f"{self.url[name]}/alerts" for name in RECEIVERS},
                "watchdog": f"{self.url['watchdog']}/watchdog",
            },
            credentials_file=token,
        )
        self.children.start(
            "alertmanager",
            [shutil.which("prometheus-alertmanager") or "prometheus-alertmanager",
             f"--config.file={am_config}", f"--storage.path={self.dir / 'alertmanager-data'}",
             f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
             "--cluster.listen-address="],
        )  # fmt: skip
        prom_config = render.render_prometheus(
            profile,
            self.dir / "prometheus",
            exporter_targets=[f"127.0.0.1:{self.ports['exporter']}"],
            alertmanagers=[f"127.0.0.1:{self.ports['alertmanager']}"],
        )
        self.children.start(
            "prometheus",
            [shutil.which("prometheus") or "prometheus", f"--config.file={prom_config}",
             f"--storage.tsdb.path={self.dir / 'prometheus-data'}",
             f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
             *render.prometheus_flags(profile)],
        )  # fmt: skip

        self._wait_ready("exporter", f"{self.url['exporter']}/-/ready", self.url["exporter"] + "/")
        for name, host in RECEIVERS.items():
            self._wait_ready(f"receiver {name}", f"{self.url[name]}/-/ready", f"(hosted by {host})")
        self._wait_ready("Alertmanager", f"{self.url['alertmanager']}/-/ready", "")
        self._wait_ready("Prometheus", f"{self.url['prometheus']}/-/ready", "(fast profile)")
        out.event(
            "ready",
            pid=os.getpid(),
            dir=str(self.dir),
            urls=self.url,
            pids={c.name: c.popen.pid for c in self.children.started},
        )
        self._print_links()

    def _start_receiver(
        self, name: str, host: str, exporter: list[str], env: dict[str, str], token: Path
    ) -> None:
        home = self.dir / "receivers" / name
        home.mkdir(parents=True)
        section: dict[str, Any] = {
            "auth": {"bearer_token_file": str(token)},
            "admins": {"alice": [ADMIN], "bob": [ADMIN]},
            # A demo bot logs out every couple of minutes; production keeps the default budget.
            "rate_limit": {"burst": 20, "per_hour": 3600},
            # alice prints a fresh QR every 20 s while logged out: each newer one reaches the
            # admin by itself (production: at most one a minute).
            "qr_refresh": {"interval": "15s", "poll": "1s"},
        }
        zone = local_timezone()
        if zone:
            section["timezone"] = zone
        config = home / "config.yml"
        config.write_text(json.dumps({"receiver": section}, indent=2) + "\n")  # JSON is YAML
        outbox = home / "outbox.jsonl"
        self.outboxes.append(Outbox(host, outbox))
        self.children.start(
            f"receiver-{name}",
            [*exporter, "receiver", "--config", str(config),
             "--web.listen-address", f"127.0.0.1:{self.ports[name]}",
             "--exporter-url", self.url["exporter"], "--outbox", str(outbox),
             "--state-dir", str(home)],
            env,
        )  # fmt: skip

    def _check_children(self) -> None:
        try:
            self.children.check()
        except ChildExited as error:
            raise StartupError(str(error)) from None

    def _wait_ready(self, what: str, url: str, note: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while http_get(url, timeout=1) is None:
            self._check_children()
            if time.monotonic() > deadline:
                raise StartupError(f"{what} was not ready at {url} within {timeout:.0f} s")
            time.sleep(0.05)
        self.out.say(f"{what} ready  {note}".rstrip(), "32")

    def _web_ui_rows(self) -> list[tuple[str, str, str]]:
        """Links to Prometheus's and Alertmanager's pages that answer on the installed versions,
        found by asking them; the API (and amtool) where there is no web UI."""
        prom, am = self.url["prometheus"], self.url["alertmanager"]
        rows = []
        alerts = first_page(prom, PROMETHEUS_PAGES["alerts"])
        if alerts is not None:
            rows.append(("Prometheus", alerts, "alert rules and their state"))
        else:
            rows.append(("Prometheus", f"{prom}/api/v1/alerts", "its alerts as JSON (no web UI)"))
        query = first_page(prom, PROMETHEUS_PAGES["query"], PROMETHEUS_QUERY)
        if query is not None:
            rows.append(("", query, "the query wechaty_bot_logged_in, as a table"))
        if serves_page(f"{am}/"):
            rows.append(("Alertmanager", f"{am}/#/alerts", "alerts, routed to the peer bots"))
        else:
            rows.append(("Alertmanager", f"{am}/api/v2/alerts", "its alerts as JSON (no web UI)"))
            rows.append(("", f"amtool --alertmanager.url={am} alert query", ""))
        return rows

    def _print_links(self) -> None:
        out, u = self.out, self.url
        rows = [
            ("status page", f"{u['exporter']}/", "every bot; a logged-out bot's QR, scannable"),
            ("metrics", f"{u['exporter']}/metrics", ""),
            *self._web_ui_rows(),
            ("bot logs", str(self.dir / "bots"), "alice.log, bob.log"),
            ("admin's QRs", str(self.dir / "admin"), "each delivered QR as PNG"),
        ]
        out.raw()
        if self.moved:
            moved = ", ".join(f"{n} {DEFAULT_PORTS[n]} → {p}" for n, p in self.moved.items())
            out.raw(f"  busy default ports, free ones used instead: {moved}")
        out.raw(out.style("  Open these while it runs:", "1"))
        for label, where, note in rows:
            shown = out.style(where, "4") if where.startswith(("http", "/")) else where
            out.raw(f"    {label:<13} {shown}  {note}".rstrip())
        out.raw(
            f"  alice is logged out {self.args.first_logout:g} s after start, every "
            f"{self.args.online + self.args.offline:g} s after that. Ctrl-C stops everything."
        )
        out.raw()

    # --- run ---------------------------------------------------------------------------------

    def run(self) -> int:
        stop_at = time.monotonic() + self.args.duration if self.args.duration else float("inf")
        next_poll = 0.0
        while time.monotonic() < stop_at:
            self._check_children()
            for outbox in self.outboxes:
                records = list(outbox.new_records())
                if records:  # show what led to the message before the message
                    self.poll_prometheus()
                    self.poll_alertmanager()
                for record in records:
                    self.show_message(outbox.sender, record)
            if self.args.exit_after_first_qr and self.first_qr_at is not None:
                return 0
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + 0.5
                self.poll_exporter()
                self.poll_prometheus()
                self.poll_alertmanager()
                if self.watchdog and self.watchdog.hits and not self.watchdog_seen:
                    self.watchdog_seen = True
                    self.out.say(
                        "alerting pipeline alive: Watchdog reached the dead man's switch", "32"
                    )
            time.sleep(0.1)
        if self.args.exit_after_first_qr:
            self.out.say(f"no QR delivered within {self.args.duration:g} s", "31")
            return 1
        self.out.say(f"ran for {self.args.duration:g} s (--duration)")
        return 0

    def poll_exporter(self) -> None:
        doc = http_json(f"{self.url['exporter']}/api/v1/bots")
        if not isinstance(doc, dict):
            return
        for bot in doc.get("bots", []):
            name = bot["bot"]
            now = (bot["logged_in"], bot["qr_seen_at"] if bot["qr_pending"] else None)
            before = self.bot_states.get(name)
            self.bot_states[name] = now
            if before == now:
                continue
            state = {True: "logged in", False: "logged out", None: "state unknown"}[now[0]]
            if now[0] is False and (before is None or before[0] is not False):
                self.logged_out_at[name] = self.out.elapsed()
            if before is None or before[0] != now[0]:
                extra = ", login QR pending" if now[1] else ""
                self.out.say(f"exporter: {name} {state}{extra}", "31" if now[0] is False else "")
            elif now[1] is not None:
                self.out.say(
                    f"exporter: {name} printed a new login QR (the last one expired); the "
                    f"status page shows it, and a peer bot answers `qr {name}` with it"
                )

    def query(self, expr: str) -> list[dict[str, Any]] | None:
        url = f"{self.url['prometheus']}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        doc = http_json(url)
        if not isinstance(doc, dict) or doc.get("status") != "success":
            return None
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def poll_prometheus(self) -> None:
        if self.scraped_at is None:
            if not self.query('up{job="wechaty"} == 1'):
                return
            self.scraped_at = time.monotonic()
            logged_in = self.query("wechaty_bot_logged_in") or []
            words = ", ".join(
                f"{r['metric']['bot']} {'logged in' if r['value'][1] == '1' else 'logged out'}"
                for r in sorted(logged_in, key=lambda r: str(r["metric"].get("bot")))
            )
            self.out.say(f"first scrape: Prometheus sees {words or 'the exporter'}", "32")
        if time.monotonic() < self.scraped_at + 2:
            return  # rules evaluated before the first scrape saw no target (`absent(up)`)
        result = self.query('ALERTS{alertname!="Watchdog"}')
        if result is None:
            return
        seen = {
            (r["metric"]["alertname"], r["metric"].get("bot", "")): r["metric"]["alertstate"]
            for r in result
        }
        for key, state in seen.items():
            if self.prom_alerts.get(key) != state:
                self.out.say(f"Prometheus: {_alert_name(*key)} {state}", "33")
        for key in self.prom_alerts.keys() - seen.keys():
            self.out.say(f"Prometheus: {_alert_name(*key)} resolved", "32")
        self.prom_alerts = seen

    def poll_alertmanager(self) -> None:
        doc = http_json(f"{self.url['alertmanager']}/api/v2/alerts")
        if not isinstance(doc, list):
            return
        seen: dict[str, str] = {}
        for alert in doc:
            labels = alert.get("labels", {})
            if labels.get("alertname") == "Watchdog":
                continue
            name = _alert_name(labels.get("alertname", "?"), labels.get("bot", ""))
            receivers = ", ".join(r["name"] for r in alert.get("receivers", []))
            state = alert.get("status", {}).get("state", "active")
            seen[alert["fingerprint"]] = name
            if alert["fingerprint"] not in self.am_alerts:
                verb = "→ " + receivers if state == "active" else f"({state})"
                self.out.say(f"Alertmanager: {name} {verb}", "33")
        for fingerprint, name in list(self.am_alerts.items()):
            if fingerprint not in seen:
                self.out.say(f"Alertmanager: {name} resolved → sends the all-clear")
        self.am_alerts = seen

    def show_message(self, sender: str, record: dict[str, Any]) -> None:
        out = self.out
        when = record.get("time", "")
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone()
            when = f"{when:%H:%M:%S}"
        frm = f"{sender} (peer bot)" if sender in RECEIVERS.values() else sender
        head = f"── admin's WeChat · from {frm} · to {record.get('to')} · {when} "
        out.say(out.style(head + "─" * max(0, 72 - len(head)), "1;36"))
        if record.get("type") == "image":
            self.show_image(sender, record)
        else:
            for line in str(record.get("text", "")).splitlines():
                out.raw(f"           │ {line}")
            out.event("message", sender=sender, bot=record.get("bot"), type="text")
        out.raw()

    def show_image(self, sender: str, record: dict[str, Any]) -> None:
        out = self.out
        bot = str(record.get("bot"))
        data = base64.b64decode(record["png_base64"])
        self.qr_images += 1
        path = self.dir / "admin" / f"{bot}-login-qr-{self.qr_images}.png"
        path.write_bytes(data)
        out.raw(f"           │ [image] {bot}'s login QR, saved as {path}")
        current = http_get(f"{self.url['exporter']}/api/v1/bots/{bot}/qr.png")
        if current == data:
            out.raw(f"           │ it is {bot}'s pending QR on the exporter right now")
        elif current is not None:
            out.raw(f"           │ {bot} has printed a newer QR since; the status page shows it")
        matrix = qr_matrix(data)
        if matrix is not None:
            out.raw("           │ (drawn for a dark terminal; the PNG and status page work too)")
            draw_qr(matrix, out.stream)
            out.stream.flush()
        out.event("message", sender=sender, bot=bot, type="image", png=str(path))
        if self.first_qr_at is None:
            self.first_qr_at = out.elapsed()
            since = self.logged_out_at.get(bot)
            after = f", {self.first_qr_at - since:.1f} s after {bot} logged out" if since else ""
            out.say(
                f"first login QR delivered to the admin, {self.first_qr_at:.1f} s after the "
                f"demo started{after}",
                "1;32",
            )
            out.event("qr_delivered", bot=bot, png=str(path), sender=sender)

    # --- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        stopped = self.children.stop_all()
        if self.watchdog is not None:
            self.watchdog.close()
        if self.args.keep:
            self.out.say(f"stopped {stopped} process(es); kept {self.dir} (--keep)")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.out.say(f"stopped {stopped} process(es); removed {self.dir}")
        self.out.event("stopped", dir=str(self.dir), removed=not self.dir.exists())


def _alert_name(alertname: str, bot: str) -> str:
    return f'{alertname}{{bot="{bot}"}}' if bot else alertname


def _missing_binaries() -> list[str]:
    return sorted({pkg for binary, pkg in BINARIES.items() if shutil.which(binary) is None})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=0,
        metavar="S",
        help="stop after S seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--exit-after-first-qr",
        action="store_true",
        help="stop once the first login QR reached the admin (exit 1 if none "
        "did within --duration)",
    )
    parser.add_argument(
        "--random-ports", action="store_true", help="free ports only, no fixed defaults"
    )
    parser.add_argument(
        "--events",
        type=Path,
        metavar="FILE",
        help="append what happens to FILE as JSON lines (for tests)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir when stopping")
    parser.add_argument(
        "--first-logout",
        type=float,
        default=15,
        metavar="S",
        help="alice is logged out S seconds after start (default 15)",
    )
    parser.add_argument(
        "--offline",
        type=float,
        default=70,
        metavar="S",
        help="how long alice stays logged out (default 70)",
    )
    parser.add_argument(
        "--online",
        type=float,
        default=50,
        metavar="S",
        help="how long alice stays logged in between logouts (default 50)",
    )
    parser.add_argument(
        "--qr-every",
        type=float,
        default=20,
        metavar="S",
        help="a fresh QR while logged out every S seconds (default 20)",
    )
    args = parser.parse_args(argv)

    missing = _missing_binaries()
    if missing:
        print(
            f"demo: missing Debian packages: {' '.join(missing)}\n"
            f"  install them as root: apt-get update && apt-get install -y {' '.join(missing)}\n"
            "  (or run `sudo bash scripts/demo.sh`, which installs them)",
            file=sys.stderr,
        )
        return 1

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)

    out = Out(sys.stdout, args.events)
    demo = Demo(args, out)
    code = 1
    try:
        demo.start()
        code = demo.run()
    except Interrupted as stop:
        out.raw()
        out.say(f"{stop}: stopping")
        code = 0
    except StartupError as error:
        out.say(f"demo failed: {error}", "31")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        demo.stop()
        out.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
