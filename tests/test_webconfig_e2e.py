"""`--web.config.file` end to end: the real Prometheus scrapes `serve` over TLS with basic auth,
the real Alertmanager posts to `receiver` over TLS with basic auth; a bad file stops each command
with every problem listed (exit 2). Processes, certificates (a CA made here) and bcrypt are real.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.helpers import free_port
from tests.integration.harness import (
    Processes,
    exporter_command,
    http_json,
    http_ok,
    require_binary,
    wait_until,
)
from tests.webconfig_pki import CertificateAuthority

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "change-me"  # deploy/web-config.yml's example users' password


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    with Processes(tmp_path / "process-logs") as running:
        yield running


def _env() -> dict[str, str]:
    src = str(REPO / "src")
    return {"PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), src) if p)}


def _deployed(tmp_path: Path, ca: CertificateAuthority) -> Path:
    """deploy/web-config.yml as shipped, next to the files it names (a certificate from the
    test's CA); its users' password is the example's, "change-me"."""
    server = ca.issue("server")
    (tmp_path / "tls").mkdir(exist_ok=True)
    shutil.copy(server.cert, tmp_path / "tls" / "server.crt")
    shutil.copy(server.key, tmp_path / "tls" / "server.key")
    shutil.copy(ca.path, tmp_path / "tls" / "ca.crt")
    return Path(shutil.copy(REPO / "deploy" / "web-config.yml", tmp_path / "web-config.yml"))


def _secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    path.chmod(0o600)


def _https_status(url: str, context: ssl.SSLContext, auth: tuple[str, str] | None) -> int:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0  # not listening yet


def _targets(prometheus: str) -> dict[str, dict[str, Any]]:
    body = http_json(f"{prometheus}/api/v1/targets")
    return {t["labels"]["job"]: t for t in body["data"]["activeTargets"]}


def test_prometheus_scrapes_the_exporter_over_tls_with_basic_auth(
    tmp_path: Path, processes: Processes
) -> None:
    binary = require_binary("prometheus", "prometheus")
    ca = CertificateAuthority(tmp_path / "pki")
    web_config = _deployed(tmp_path, ca)
    log = tmp_path / "alice.log"
    log.write_text("")
    address = f"127.0.0.1:{free_port()}"
    processes.start(
        "exporter",
        [
            *exporter_command(), "serve", "--log", f"alice={log}",
            "--web.listen-address", address, "--web.config.file", str(web_config),
        ],
        env=_env(),
    )  # fmt: skip
    trusted = ssl.create_default_context(cafile=str(ca.path))
    wait_until(
        lambda: _https_status(f"https://{address}/healthz", trusted, None) == 200,
        timeout=20, what="the exporter over TLS", processes=processes,
    )  # fmt: skip
    assert _https_status(f"https://{address}/metrics", trusted, None) == 401
    assert _https_status(f"https://{address}/metrics", trusted, ("prometheus", PASSWORD)) == 200

    # deploy/prometheus/prometheus-tls.yml's job as shipped, pointed at this exporter, and two
    # jobs that must fail: a wrong password, and no trust in the test's CA.
    _secret(tmp_path / "secrets" / "scrape-password", PASSWORD)
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus-tls.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    (job,) = config["scrape_configs"]
    job["static_configs"][0]["targets"] = [address]
    wrong = {**job, "job_name": "wrong-password", "basic_auth": {"username": "prometheus",
                                                               "password": "guess"}}  # fmt: skip
    untrusted = {**job, "job_name": "untrusted-ca", "tls_config": {}}
    config["scrape_configs"] += [wrong, untrusted]
    config_path = tmp_path / "prometheus.yml"  # relative paths: from tmp_path
    config_path.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    processes.start(
        "prometheus",
        [
            binary, f"--config.file={config_path}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: http_ok(f"{url}/-/ready"), timeout=30, what="Prometheus", processes=processes
    )

    def scraped() -> dict[str, dict[str, Any]] | None:
        targets = _targets(url)
        done = len(targets) == 3 and all(t["health"] != "unknown" for t in targets.values())
        return targets if done else None

    targets = wait_until(scraped, timeout=30, what="three scrapes", processes=processes)
    assert targets["wechaty"]["health"] == "up", targets["wechaty"]
    assert targets["wechaty"]["scrapeUrl"].startswith("https://")
    assert targets["wrong-password"]["health"] == "down"
    assert "401" in targets["wrong-password"]["lastError"]
    assert targets["untrusted-ca"]["health"] == "down"
    assert "certificate" in targets["untrusted-ca"]["lastError"]
    query = urllib.parse.urlencode({"query": 'wechaty_bot_state_known{job="wechaty"}'})
    series = wait_until(
        lambda: http_json(f"{url}/api/v1/query?{query}")["data"]["result"] or None,
        timeout=10, what="a metric scraped over TLS", processes=processes,
    )  # fmt: skip
    assert series[0]["metric"]["bot"] == "alice"


def test_alertmanager_posts_to_the_receiver_over_tls_with_basic_auth(
    tmp_path: Path, processes: Processes
) -> None:
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    ca = CertificateAuthority(tmp_path / "pki")
    web_config = _deployed(tmp_path, ca)
    outbox = tmp_path / "outbox.jsonl"
    receiver = f"127.0.0.1:{free_port()}"
    processes.start(
        "receiver",
        [
            *exporter_command(), "receiver", "--web.listen-address", receiver,
            "--web.config.file", str(web_config), "--outbox", str(outbox),
            "--admin", "alice=Admin", "--exporter-url", f"http://127.0.0.1:{free_port()}",
        ],
        env=_env(),
    )  # fmt: skip
    trusted = ssl.create_default_context(cafile=str(ca.path))
    wait_until(
        lambda: _https_status(f"https://{receiver}/healthz", trusted, None) == 200,
        timeout=20, what="the receiver over TLS", processes=processes,
    )  # fmt: skip
    assert _https_status(f"https://{receiver}/-/ready", trusted, None) == 401
    assert _https_status(f"https://{receiver}/-/ready", trusted, ("alertmanager", "no")) == 401

    # deploy/alertmanager/alertmanager-tls.yml as shipped, its webhook pointed at this receiver.
    _secret(tmp_path / "secrets" / "webhook-password", PASSWORD)
    config = yaml.safe_load((REPO / "deploy" / "alertmanager" / "alertmanager-tls.yml").read_text())
    config["route"].update(group_wait="0s", group_interval="1s")
    (webhook,) = config["receivers"][0]["webhook_configs"]
    webhook["url"] = f"https://{receiver}/alerts"
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(json.dumps(config))
    port = free_port()
    processes.start(
        "alertmanager",
        [
            binary, f"--config.file={config_path}", f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ],
    )  # fmt: skip
    am = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: http_ok(f"{am}/-/ready"), timeout=30, what="Alertmanager", processes=processes
    )
    alert = [{"labels": {"alertname": "WechatyWebConfigTest", "bot": "alice", "severity": "page"},
              "annotations": {"summary": "sent over TLS"}}]  # fmt: skip
    request = urllib.request.Request(
        f"{am}/api/v2/alerts",
        data=json.dumps(alert).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200

    def delivered() -> list[dict[str, Any]] | None:
        if not outbox.exists():
            return None
        records = [json.loads(line) for line in outbox.read_text().splitlines() if line]
        return records or None

    records = wait_until(delivered, timeout=30, what="the DM in the outbox", processes=processes)
    assert records[0]["to"] == "Admin" and records[0]["bot"] == "alice"
    assert "WechatyWebConfigTest" in json.dumps(records) or records[0]["type"] == "text"


@pytest.mark.parametrize("command", ["serve", "receiver", "bot"])
def test_a_bad_web_config_stops_the_command_with_every_problem(
    tmp_path: Path, command: str
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(
        "tls_server_config:\n  cert_file: absent.pem\n  key_file: absent-key.pem\n"
        "  client_auth_type: RequestClientCert\n"
        "basic_auth_users:\n  prometheus: hunter2\n"
    )
    extra = {"serve": ["--log", f"alice={tmp_path / 'a.log'}"], "receiver": ["--outbox", "o"]}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "wechaty_exporter", command, *extra.get(command, []),
         "--web.listen-address", f"127.0.0.1:{free_port()}"],
        env={**os.environ, **_env(), "WECHATY_EXPORTER_WEB_CONFIG_FILE": str(path),
             "WECHATY_PUPPET_SERVICE_ENDPOINT": "127.0.0.1:1", "WECHATY_PUPPET_SERVICE_TOKEN": "t"},
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert str(path) in done.stderr and "4 problem(s)" in done.stderr, done.stderr
    for key in ("client_auth_type", "basic_auth_users.prometheus", "cert_file: ", "key_file: "):
        assert key in done.stderr
    assert time.monotonic() - started < 30


def test_the_receiver_fetches_a_qr_from_an_exporter_behind_tls_and_basic_auth(
    tmp_path: Path, processes: Processes
) -> None:
    """Both servers behind the same web config: Alertmanager's payload reaches the receiver with
    a password, and the receiver fetches the QR over TLS with the exporter's QR token alone
    (docs/operations.md#tls-and-basic-auth: the QR endpoints are left to that token)."""
    ca = CertificateAuthority(tmp_path / "pki")
    web_config = _deployed(tmp_path, ca)
    log = tmp_path / "bob.log"
    log.write_text(
        "10:00:00 INFO StarterBot Contact<Bob> logout\n"
        "10:00:01 INFO StarterBot onScan: Waiting(2) - https://login.weixin.qq.com/l/Qr-TLS-1\n"
    )
    token = tmp_path / "secrets" / "qr-token"
    _secret(token, "qr-token-over-tls-0123456789")
    exporter = f"127.0.0.1:{free_port()}"
    processes.start(
        "exporter",
        [
            *exporter_command(), "serve", "--log", f"bob={log}", "--web.listen-address", exporter,
            "--web.config.file", str(web_config), "--web.qr-token-file", str(token),
        ],
        env=_env(),
    )  # fmt: skip
    trusted = ssl.create_default_context(cafile=str(ca.path))
    wait_until(
        lambda: _https_status(f"https://{exporter}/healthz", trusted, None) == 200,
        timeout=20, what="the exporter over TLS", processes=processes,
    )  # fmt: skip
    config = tmp_path / "receiver.yml"
    config.write_text(
        f"receiver:\n  exporter_url: https://{exporter}\n  exporter_token_file: {token}\n"
        "  qr_wait: 5s\n"
    )
    outbox = tmp_path / "outbox.jsonl"
    receiver = f"127.0.0.1:{free_port()}"
    processes.start(
        "receiver",
        [
            *exporter_command(), "receiver", "--config", str(config), "--web.listen-address",
            receiver, "--web.config.file", str(web_config), "--outbox", str(outbox),
            "--admin", "bob=Admin",
        ],
        env={**_env(), "SSL_CERT_FILE": str(ca.path)},  # the exporter's CA, for its client
    )  # fmt: skip
    wait_until(
        lambda: _https_status(f"https://{receiver}/healthz", trusted, None) == 200,
        timeout=20, what="the receiver over TLS", processes=processes,
    )  # fmt: skip
    payload = (REPO / "tests" / "delivery" / "payloads" / "firing.json").read_bytes()
    request = urllib.request.Request(
        f"https://{receiver}/alerts",
        data=payload,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic "
            + base64.b64encode(f"alertmanager:{PASSWORD}".encode()).decode(),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30, context=trusted) as response:
        assert response.status == 200
    records = [json.loads(line) for line in outbox.read_text().splitlines() if line]
    images = [r for r in records if r["type"] == "image"]
    assert images and images[0]["to"] == "Admin" and images[0]["png_base64"], records
