"""deploy/'s web config examples: the server's file loads, and promtool and amtool accept the
Prometheus and Alertmanager files that scrape and post with it (tests/test_webconfig_e2e.py runs
them against the real servers)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.integration.harness import REPO, Tool, require_binary
from tests.webconfig_pki import CertificateAuthority

from wechaty_exporter.settings import ConfigError
from wechaty_exporter.webconfig import read_web_config

DEPLOY = REPO / "deploy"


def _beside(tmp_path: Path, example: Path) -> Path:
    """`example` copied into `tmp_path` with the files its relative paths name."""
    ca = CertificateAuthority(tmp_path / "pki")
    server = ca.issue("server")
    (tmp_path / "tls").mkdir()
    shutil.copy(server.cert, tmp_path / "tls" / "server.crt")
    shutil.copy(server.key, tmp_path / "tls" / "server.key")
    shutil.copy(ca.path, tmp_path / "tls" / "ca.crt")
    (tmp_path / "secrets").mkdir()
    for name in ("scrape-password", "webhook-password"):
        (tmp_path / "secrets" / name).write_text("change-me\n")
    return Path(shutil.copy(example, tmp_path / example.name))


def test_the_example_web_config_loads(tmp_path: Path) -> None:
    config, context = read_web_config(_beside(tmp_path, DEPLOY / "web-config.yml"))
    assert context is not None and config.tls is not None
    assert set(config.users) == {"prometheus", "alertmanager"}
    assert dict(config.headers)["X-Frame-Options"] == "deny"


def test_the_example_web_config_names_its_certificate(tmp_path: Path) -> None:
    """Without the files beside it, the example says which are missing."""
    copy = Path(shutil.copy(DEPLOY / "web-config.yml", tmp_path / "web-config.yml"))
    with pytest.raises(ConfigError) as caught:
        read_web_config(copy)
    assert any("tls/server.crt: no such file" in p for p in caught.value.problems)


def test_promtool_accepts_the_tls_scrape_config(tmp_path: Path) -> None:
    promtool = Tool(require_binary("promtool", "prometheus"))
    path = _beside(tmp_path, DEPLOY / "prometheus" / "prometheus-tls.yml")
    output = promtool.run("check", "config", str(path))
    assert "SUCCESS" in output
    # promtool reads the section: a password given twice is refused.
    broken = path.read_text().replace(
        "      password_file: secrets/scrape-password",
        "      password_file: secrets/scrape-password\n      password: inline",
    )
    assert broken != path.read_text()
    path.write_text(broken)
    refused = promtool.result("check", "config", str(path))
    assert refused.returncode != 0 and "password" in refused.stdout + refused.stderr


def test_amtool_accepts_the_tls_webhook_config(tmp_path: Path) -> None:
    amtool = Tool(require_binary("amtool", "prometheus-alertmanager"))
    path = _beside(tmp_path, DEPLOY / "alertmanager" / "alertmanager-tls.yml")
    output = amtool.run("check-config", str(path))
    assert "SUCCESS" in output and "1 receivers" in output
