"""The TypeScript duet, whole: two mocked Wechaty bots with the plugin (plugins/wechaty/test/
duet-bot.mjs on wechaty-puppet-mock, the only fake, at the outer edge), the real exporter
following their self-logs, the real Prometheus and Alertmanager on the fast profile, and the real
receiver speaking through bob's plugin.

    alice (duet-bot) ─self-log─┐                      ┌─ peer-bob → receiver ─webhook→ bob's plugin
    bob   (duet-bot) ─self-log─┴→ exporter → Prometheus → Alertmanager ─ peer-alice, fallback,
                                                                         watchdog → WebhookSinks
    admin ─DM→ bob's plugin ─POST /commands→ receiver (qr, restart) ─replies→ bob ─DM→ admin

alice runs with WECHATY_LOG=verbose and the exporter also follows its console output (what pm2
would keep as alice-out.log): wechaty-puppet-mock writes every chat text there raw, newlines and
all, so a hostile chat message really puts a forged event line into a file the exporter reads.

The two mocked bots share no WeChat: the test is the network between them (duet-bot's relay).
bob's probes are relayed to alice only while alice is logged in (a mocked bot never receives a
message while logged out; WeChat would not deliver one either).
"""

from __future__ import annotations

import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scripts.processes import Child
from tests.helpers import free_port
from tests.integration.harness import (
    REPO,
    Alertmanager,
    Exporter,
    Processes,
    Prometheus,
    WebhookSinks,
    exporter_command,
    http_json,
    http_ok,
    require_node,
    run_prometheus,
    shorten_unresponsive_window,
    start_alertmanager,
    wait_until,
)

PLUGIN = REPO / "plugins" / "wechaty"
DUET_BOT = PLUGIN / "test" / "duet-bot.mjs"

ADMIN = {"id": "wxid_admin", "name": "Admin", "weixin": "admin_wx", "friend": True}
ALICE = {"id": "wxid_alice", "name": "HelperAlice"}
BOB = {"id": "wxid_bob", "name": "HelperBob"}
MALLORY = {"id": "wxid_mallory", "name": "Mallory"}  # a stranger who chats with alice
PROBE_INTERVAL = "300ms"  # the rule's window is cut to seconds (shorten_unresponsive_window)
SINKS = ("peer-alice", "fallback", "watchdog")  # Alertmanager's other receivers
# The restart argv: appends to the marker file it is given.
MARKER_CODE = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write('restarted\\n')"


def secret_file(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


@dataclass
class DuetBot:
    """One duet-bot.mjs process, driven over its control port."""

    name: str
    child: Child
    control: str
    delivery: dict[str, Any] | None
    self_log: Path

    @property
    def console_log(self) -> Path:
        """Everything the process printed (stdout and stderr)."""
        return self.child.log_path

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if method == "GET" else json.dumps(body or {}).encode()
        request = urllib.request.Request(
            self.control + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            pytest.fail(
                f"{self.name}: {method} {path} → {error.code} {error.read().decode()}",
                pytrace=False,
            )

    def scan(self, qrcode: str, status: int = 2) -> None:
        self.call("POST", "/scan", {"qrcode": qrcode, "status": status})

    def login(self) -> None:
        self.call("POST", "/login")

    def logout(self, reason: str) -> None:
        self.call("POST", "/logout", {"reason": reason})

    def message(self, sender: str, text: str) -> None:
        """A text DM to this bot from contact `sender`; returns once the bot emitted it."""
        self.call("POST", "/message", {"from": sender, "text": text})

    def relay(self, to: str | None, control: str | None = None) -> None:
        """Relay what this bot sends to `to` to the peer's control URL; None: relay nothing."""
        self.call("POST", "/relay", {"to": to, "control": control} if to else {})

    def sent(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", "/sent")["sent"]
        return result

    def logged_in(self) -> bool:
        return bool(self.call("GET", "/state")["logged_in"])


def _node() -> str:
    return require_node(PLUGIN, "wechaty-puppet-mock")


def _listening(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith('{"event":"listening"'):
            doc: dict[str, Any] = json.loads(line)
            return doc
    return None


def start_bot(
    processes: Processes,
    name: str,
    self_log: Path,
    *,
    user: dict[str, Any],
    contacts: list[dict[str, Any]],
    plugin: dict[str, Any],
    wechaty_log: str,
) -> DuetBot:
    config = {
        "user": user,
        "contacts": contacts,
        "plugin": {"name": name, "selfLog": str(self_log), "heartbeat": 0, **plugin},
        "control": "127.0.0.1:0",
    }
    env = {
        "DUET_BOT_CONFIG": json.dumps(config),
        "WECHATY_LOG": wechaty_log,
        # tokens come from the files named in the config only
        "WECHATY_EXPORTER_PLUGIN_TOKEN": "",
        "WECHATY_EXPORTER_RECEIVER_TOKEN": "",
    }
    child = processes.start(f"duet-bot-{name}", [_node(), str(DUET_BOT)], env=env)
    up = wait_until(
        lambda: _listening(child.log_path),
        timeout=60,
        what=f"duet-bot {name} to listen",
        processes=processes,
    )
    return DuetBot(name, child, up["control"], up["delivery"], self_log)


def start_server(processes: Processes, name: str, argv: list[str], url: str) -> None:
    src = str(REPO / "src")
    processes.start(name, [*exporter_command(), *argv], env={"PYTHONPATH": src})
    wait_until(
        lambda: http_ok(f"{url}/-/ready"),
        timeout=30,
        what=f"{name} at {url}/-/ready",
        processes=processes,
    )


@dataclass
class Duet:
    processes: Processes
    alice: DuetBot
    bob: DuetBot
    exporter: Exporter
    receiver_url: str
    prometheus: Prometheus
    alertmanager: Alertmanager
    sinks: WebhookSinks
    totp_secret: str
    marker: Path
    initial: dict[str, dict[str, Any]] = field(default_factory=dict)  # /api/v1/bots at start

    # --- the network between the two bots

    def relay_bob_to_alice(self, on: bool) -> None:
        self.bob.relay(ALICE["id"] if on else None, self.alice.control)

    def relay_alice_to_bob(self, on: bool) -> None:
        self.alice.relay(BOB["id"] if on else None, self.bob.control)

    def login_alice(self) -> None:
        self.alice.login()
        self.relay_bob_to_alice(True)

    def logout_alice(self, reason: str) -> None:
        """Cut bob's probes to alice first: a logged-out mocked bot never receives them."""
        self.relay_bob_to_alice(False)
        # let a probe already on its way land (bob's last probe to alice in alice's self-log)
        seqs = [int(s["text"].rsplit(" ", 1)[1]) for s in self.bob.sent() if s["to"] == ALICE["id"]]
        deadline = time.monotonic() + 2
        while seqs and time.monotonic() < deadline:
            if any(e["seq"] == seqs[-1] for e in self_log(self.alice.self_log, "probe")):
                break
            time.sleep(0.05)
        self.alice.logout(reason)

    # --- Alertmanager

    def silence(self, **labels: str) -> str:
        """A silence on the real Alertmanager matching `labels` exactly; its id."""
        now = datetime.now(UTC)
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True}
                for k, v in labels.items()
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=10)).isoformat(),
            "createdBy": "tests/duet",
            "comment": "hold the notification",
        }
        request = urllib.request.Request(
            f"{self.alertmanager.url}/api/v2/silences",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            silence_id: str = json.load(response)["silenceID"]
        return silence_id

    def unsilence(self, silence_id: str) -> None:
        request = urllib.request.Request(
            f"{self.alertmanager.url}/api/v2/silence/{silence_id}", method="DELETE"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    # --- the exporter

    def bot(self, name: str) -> dict[str, Any]:
        return _api(self.exporter, name)

    def pending_qr(self, name: str) -> str | None:
        try:
            doc = http_json(f"{self.exporter.url}/api/v1/bots/{name}/qr")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        qrcode: str = doc["qrcode"]
        return qrcode

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"{self.exporter.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def until(self, probe: Any, what: str, timeout: float = 30) -> Any:
        return wait_until(probe, timeout=timeout, what=what, processes=self.processes, interval=0.1)


def self_log(path: Path, kind: str) -> list[dict[str, Any]]:
    """The fields of each `kind` line of a self-log."""
    out = []
    for line in path.read_text("utf-8").splitlines():
        parts = line.split(" ", 4)
        if len(parts) == 5 and parts[2] == "wechaty-exporter" and parts[3] == kind:
            out.append(json.loads(parts[4]))
    return out


def start_duet(processes: Processes, root: Path) -> Duet:
    """Everything, in the order each part needs the others' addresses."""
    secrets_dir = root / "secrets"
    secrets_dir.mkdir()
    receiver_token = secret_file(secrets_dir / "receiver-token", secrets.token_urlsafe(24))
    plugin_token = secret_file(secrets_dir / "plugin-token", secrets.token_urlsafe(24))
    totp = pyotp.random_base32()
    totp_file = secret_file(secrets_dir / "totp-secret", totp)
    marker = root / "alice-restarted"
    exporter = Exporter(f"127.0.0.1:{free_port()}")
    receiver_url = f"http://127.0.0.1:{free_port()}"
    logs = root / "logs"
    logs.mkdir()

    contacts = [ADMIN, MALLORY]
    bob = start_bot(
        processes, "bob", logs / "bob.self.log",
        user=BOB, contacts=[*contacts, {**ALICE, "friend": True}], wechaty_log="info",
        plugin={
            "delivery": {"listen": "127.0.0.1:0", "tokenFile": str(plugin_token)},
            "commands": {"receiverUrl": receiver_url, "admins": [ADMIN["id"]],
                         "tokenFile": str(receiver_token)},
            "probe": {"peer": ALICE["id"], "peerBot": "alice", "interval": PROBE_INTERVAL},
        },
    )  # fmt: skip
    alice = start_bot(
        processes, "alice", logs / "alice.self.log",
        user=ALICE, contacts=[*contacts, {**BOB, "friend": True}], wechaty_log="verbose",
        plugin={"probe": {"peer": BOB["id"], "peerBot": "bob", "interval": PROBE_INTERVAL}},
    )  # fmt: skip
    bob.login()
    assert bob.delivery is not None
    alice.relay(BOB["id"], bob.control)  # bob is logged in throughout

    config = root / "exporter.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "bots": {
                    "alice": {
                        "logs": [str(alice.self_log), str(alice.console_log)],
                        "qr_source": "self-log",
                    },
                    "bob": {"logs": [str(bob.self_log)], "qr_source": "self-log"},
                }
            }
        )
    )
    start_server(
        processes,
        "exporter",
        ["serve", "--config", str(config), "--web.listen-address", exporter.address,
         "--state-dir", str(root / "exporter-state")],
        exporter.url,
    )  # fmt: skip

    receiver_config = root / "receiver.yml"
    receiver_config.write_text(
        json.dumps(
            {
                "receiver": {
                    "exporter_url": exporter.url,
                    "auth": {"bearer_token_file": str(receiver_token)},
                    # alice's admin by weixin, bob's by id: both as the plugin resolves them
                    "admins": {"alice": [ADMIN["weixin"]], "bob": [ADMIN["id"]]},
                    "language": "en",
                    "messenger": {
                        "type": "webhook",
                        "url": f"http://{bob.delivery['host']}:{bob.delivery['port']}/send",
                        "token_file": str(plugin_token),
                    },
                    "commands": {
                        "bot": "bob",
                        "totp_secret_file": str(totp_file),
                        "restart": {"alice": [sys.executable, "-c", MARKER_CODE, str(marker)]},
                    },
                }
            }
        )
    )
    start_server(
        processes,
        "receiver",
        ["receiver", "--config", str(receiver_config), "--state-dir", str(root / "receiver-state"),
         "--web.listen-address", receiver_url.removeprefix("http://")],
        receiver_url,
    )  # fmt: skip
    wait_until(
        lambda: _api(exporter, "bob")["logged_in"] is True,
        timeout=30,
        what="the exporter to see bob logged in",
        processes=processes,
    )
    initial = {name: _api(exporter, name) for name in ("alice", "bob")}
    sinks = WebhookSinks(SINKS).__enter__()
    alertmanager = start_alertmanager(
        processes,
        root / "alertmanager",
        {"peer-bob": f"{receiver_url}/alerts", **sinks.urls},
        receiver_token,
    )
    am = alertmanager.url.removeprefix("http://")
    prometheus = run_prometheus(
        processes, root, [exporter.address], [am], rules=shorten_unresponsive_window
    )
    return Duet(
        processes, alice, bob, exporter, receiver_url, prometheus, alertmanager, sinks,
        totp_secret=totp, marker=marker, initial=initial,
    )  # fmt: skip


def _api(exporter: Exporter, name: str) -> dict[str, Any]:
    doc = http_json(f"{exporter.url}/api/v1/bots")
    [bot] = [b for b in doc["bots"] if b["bot"] == name]
    assert isinstance(bot, dict)
    return bot
