"""promtool on what deploy/prometheus ships: config, rules, unit tests, and their conventions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.harness import REPO, Tool, render

PROMETHEUS = REPO / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
ALERTING_DOC = REPO / "docs" / "alerting.md"


def _alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


ALERTS = {rule["alert"]: rule for rule in _alert_rules()}


def test_check_config(promtool: Tool) -> None:
    output = promtool.run("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in output


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_check_rules(promtool: Tool, path: Path) -> None:
    promtool.run("check", "rules", str(path))


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_unit_tests(promtool: Tool, path: Path) -> None:
    promtool.run("test", "rules", path.name, cwd=path.parent)


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    assert set(ALERTS) - firing == set(), "alerts without a test that they fire"
    assert set(ALERTS) - {"Watchdog"} - silent == set(), "alerts without a test that they don't"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_severity_annotations_and_a_runbook_section(name: str) -> None:
    rule = ALERTS[name]
    assert rule["labels"]["severity"] in {"critical", "warning", "info", "none"}
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    assert rule["annotations"]["runbook_url"] == f"docs/alerting.md#{name.lower()}"
    # GitHub's anchor for a heading "### WechatyBotLoggedOut" is "#wechatybotloggedout".
    headings = re.findall(r"^#+ +(\S+) *$", ALERTING_DOC.read_text(), flags=re.MULTILINE)
    assert name in headings, f"docs/alerting.md has no section for {name}"


def test_rules_select_the_exporter_job_of_the_config() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert 'up{job="wechaty"}' in ALERTS["WechatyExporterDown"]["expr"]
    assert "wechaty" in jobs
    for static in jobs["wechaty"]["static_configs"]:
        assert "duet" in static.get("labels", {}), "WechatyNoRescuer counts bots by `duet`"


def test_fast_profile_renders_and_checks(promtool: Tool, tmp_path: Path) -> None:
    profile = render.load_profile("fast")
    config = render.render_prometheus(profile, tmp_path, exporter_targets=["127.0.0.1:1"])
    output = promtool.run("check", "config", str(config))
    assert "SUCCESS" in output
    rendered = [
        rule
        for path in sorted((tmp_path / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "for" in rule
    ]
    assert {r["alert"]: r["for"] for r in rendered} == profile["prometheus"]["for"]
    # Only `for` differs from production.
    for rule in rendered:
        production = ALERTS[rule["alert"]]
        assert {**rule, "for": None} == {**production, "for": None}


def test_fast_profile_must_cover_every_alert_with_a_for(tmp_path: Path) -> None:
    with pytest.raises(render.ProfileError, match="left out"):
        render.render_rules({"WechatyBotLoggedOut": "2s"}, tmp_path)
    with pytest.raises(render.ProfileError, match="unknown"):
        render.render_rules(
            {**render.load_profile("fast")["prometheus"]["for"], "NoSuchAlert": "1s"}, tmp_path
        )
