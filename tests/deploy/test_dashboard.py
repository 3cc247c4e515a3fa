"""The Grafana dashboard: its shape, and every panel query evaluated on a live Prometheus.

Grafana is not installable here, so its part is played by substituting the template variables
the way Grafana would and sending each query to a real Prometheus scraping a real exporter.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from typing import Any

import pytest
from tests.integration.harness import REPO, Exporter, Prometheus, http_json

DASHBOARD_PATH = REPO / "deploy" / "grafana" / "dashboards" / "wechaty.json"
DASHBOARD: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
PANELS: list[dict[str, Any]] = DASHBOARD["panels"]
TARGETS = [(panel, target) for panel in PANELS for target in panel.get("targets", [])]
VARIABLES = {v["name"]: v for v in DASHBOARD["templating"]["list"]}

# What Grafana would put in: one real bot, and the fast profile's intervals (1 s scrape).
SUBSTITUTIONS = {
    "${bot}": "alice",
    "$bot": "alice",
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
}

REQUIRED_PANELS = {
    "Login state over time",
    "QR pending",
    "Logins, logouts and QR codes",
    "Time since last login",
    "Log error rate",
    "Exporter up",
}


def _substitute(expr: str) -> str:
    for variable in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(variable, SUBSTITUTIONS[variable])
    assert "$" not in expr, f"a template variable is left in {expr!r}"
    return expr


def test_datasource_is_a_variable_not_an_import_input() -> None:
    text = DASHBOARD_PATH.read_text()
    assert "${DS_" not in text
    assert "__inputs" not in DASHBOARD
    assert VARIABLES["datasource"]["type"] == "datasource"
    assert VARIABLES["datasource"]["query"] == "prometheus"
    for panel in PANELS:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_bot_variable_lists_label_values() -> None:
    bot = VARIABLES["bot"]
    assert bot["type"] == "query"
    assert bot["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert bot["definition"] == "label_values(wechaty_bot_state_known, bot)"


def test_panels_cover_the_issue_and_have_unique_ids() -> None:
    titles = {panel["title"] for panel in PANELS}
    assert titles >= REQUIRED_PANELS
    ids = [panel["id"] for panel in PANELS]
    assert len(ids) == len(set(ids))
    for panel in PANELS:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


@pytest.mark.parametrize(
    ("panel", "target"),
    TARGETS,
    ids=[f"{panel['title']}/{target['refId']}" for panel, target in TARGETS],
)
def test_panel_query_returns_data(
    live: tuple[Exporter, Prometheus], panel: dict[str, Any], target: dict[str, Any]
) -> None:
    _, prometheus = live
    expr = _substitute(target["expr"])
    result = prometheus.query(expr)
    assert result, f"{panel['title']}: {expr!r} returned no data"
    if '{bot=~"alice"}' in expr:
        assert {r["metric"].get("bot") for r in result} == {"alice"}


def test_bot_variable_query_finds_the_bots(live: tuple[Exporter, Prometheus]) -> None:
    _, prometheus = live
    match = re.fullmatch(r"label_values\((\w+), (\w+)\)", VARIABLES["bot"]["definition"])
    assert match
    metric, label = match.groups()
    url = f"{prometheus.url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
        {"match[]": metric}
    )
    assert set(http_json(url)["data"]) == {"alice", "bob"}


def test_every_metric_the_deploy_files_use_is_exported(live: tuple[Exporter, Prometheus]) -> None:
    exporter, _ = live
    with urllib.request.urlopen(f"{exporter.url}/metrics", timeout=5) as response:
        exposition = response.read().decode()
    exported = set(re.findall(r"^(wechaty_\w+?)(?:\{| )", exposition, flags=re.MULTILINE))
    used: set[str] = set()
    for path in [DASHBOARD_PATH, *sorted((REPO / "deploy" / "prometheus" / "rules").glob("*"))]:
        used |= set(re.findall(r"\bwechaty_[a-z_]+", path.read_text()))
    assert used - exported == set()
