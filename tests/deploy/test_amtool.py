"""amtool on deploy/alertmanager: the config checks and the duet's routing table holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.harness import REPO, Tool, render

CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
RULE_FILES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))

# The routing table of docs/alerting.md#routing: labels → receivers, in routing-tree order.
ROUTES = [
    ("alertname=WechatyBotLoggedOut bot=alice", "peer-bob"),
    ("alertname=WechatyBotLoggedOut bot=bob", "peer-alice"),
    ("alertname=WechatyNoRescuer bot=alice duet=alice-bob", "fallback,peer-bob"),
    ("alertname=WechatyNoRescuer bot=bob duet=alice-bob", "fallback,peer-alice"),
    ("alertname=WechatyBotStateUnknown bot=alice", "peer-bob"),
    # a bot that says it is logged in but receives no probe: its peer tells the admin
    ("alertname=WechatyBotUnresponsive bot=alice duet=alice-bob", "peer-bob"),
    ("alertname=WechatyBotUnresponsive bot=bob duet=alice-bob", "peer-alice"),
    ("alertname=WechatyLogMissing bot=bob path=/var/log/bob.log", "peer-alice"),
    ("alertname=WechatyLogStale bot=alice", "peer-bob"),
    ("alertname=WechatyExporterDown job=wechaty instance=127.0.0.1:9839", "fallback"),
    ("alertname=WechatyExporterDown job=wechaty", "fallback"),
    ("alertname=Watchdog severity=none", "watchdog"),
    ("alertname=WechatyBotLoggedOut bot=carol", "fallback"),  # a bot outside the duet
    ("alertname=SomethingElse", "fallback"),
]


def _config() -> dict[str, Any]:
    return dict(yaml.safe_load(CONFIG.read_text()))


def _alert_names() -> set[str]:
    return {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_check_config(amtool: Tool) -> None:
    amtool.run("check-config", str(CONFIG))


def test_fast_profile_checks(amtool: Tool, tmp_path: Path) -> None:
    config = render.render_alertmanager(
        render.load_profile("fast"),
        tmp_path,
        receiver_urls={"peer-bob": "http://127.0.0.1:1/alerts"},
        credentials_file=tmp_path / "token",
    )
    amtool.run("check-config", str(config))
    rendered = yaml.safe_load(config.read_text())
    assert rendered["route"]["group_wait"] == "0s"
    assert rendered["route"]["routes"] == _config()["route"]["routes"]
    assert rendered["inhibit_rules"] == _config()["inhibit_rules"]


@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=[labels for labels, _ in ROUTES])
def test_route(amtool: Tool, labels: str, receivers: str) -> None:
    output = amtool.run(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={receivers}",
        *labels.split(),
    )
    assert output.splitlines()[0] == receivers


def test_root_route_groups_by_alertname_and_bot() -> None:
    assert _config()["route"]["group_by"] == ["alertname", "bot"]


def test_receivers_resolve_and_authenticate() -> None:
    for receiver in _config()["receivers"]:
        for webhook in receiver["webhook_configs"]:
            if receiver["name"] == "watchdog":
                continue  # a dead man's switch URL carries its own secret
            assert webhook["url"].endswith("/alerts"), receiver["name"]
            assert webhook["send_resolved"] is True, receiver["name"]
            auth = webhook["http_config"]["authorization"]
            assert auth["type"] == "Bearer"
            assert auth["credentials_file"].startswith("/"), "secrets come from files"


def test_inhibit_rules_name_real_alerts_and_shared_labels() -> None:
    names = _alert_names()
    for rule in _config()["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            assert matcher.startswith("alertname"), matcher
            value = matcher.split("=", 1)[1].lstrip("~").strip('"')
            assert set(value.split("|")) <= names, matcher
        assert rule["equal"], "an inhibition without `equal` would cross duets and bots"
