"""The duet probe in the exporter: the two gauges, the API field, the state file."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from wechaty_exporter.exporter import statefile
from wechaty_exporter.exporter.app import bot_document
from wechaty_exporter.exporter.collector import BotView, FileView, WechatyCollector
from wechaty_exporter.logs.events import Login, ProbeReceived, ProbeSent
from wechaty_exporter.logs.state import BotState

FILES = (FileView("/a.self.log", True, 0, 0, 0, 0),)


def alice() -> BotView:
    state = BotState()
    for event in (
        Login(100, "Alice"),
        ProbeReceived(1_764_000_000.5, "bob", 7),
        ProbeSent(1_764_000_010.0, "bob", 8),
        ProbeSent(1_764_000_020.0, "carol", 1),
    ):
        state.apply(event)
    return BotView("alice", state, FILES)


def registry_for(*views: BotView) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WechatyCollector(lambda: views, "1.2.3"))
    return registry


def test_the_probe_gauges() -> None:
    r = registry_for(alice(), BotView("quiet", BotState(), FILES))
    v = r.get_sample_value
    received = "wechaty_bot_probe_received_timestamp_seconds"
    sent = "wechaty_bot_probe_sent_timestamp_seconds"
    assert v(received, {"bot": "alice"}) == 1_764_000_000.5
    assert v(sent, {"bot": "alice", "peer": "bob"}) == 1_764_000_010.0
    assert v(sent, {"bot": "alice", "peer": "carol"}) == 1_764_000_020.0
    # a bot that never received nor sent a probe has neither gauge (the rule reads "never")
    assert v(received, {"bot": "quiet"}) is None
    text = generate_latest(r).decode()
    assert f"# TYPE {received} gauge" in text and f"# TYPE {sent} gauge" in text
    assert (
        'peer="bob"' in text and 'wechaty_bot_probe_sent_timestamp_seconds{bot="quiet"' not in text
    )
    assert v("wechaty_bot_logged_in", {"bot": "alice"}) == 1  # unchanged by probes


def test_the_api_shows_the_last_probe_received() -> None:
    assert bot_document(alice())["last_probe_received"] == "2025-11-24T16:00:00.500+00:00"
    assert bot_document(BotView("quiet", BotState(), FILES))["last_probe_received"] is None


def test_probe_times_survive_the_state_file(tmp_path: Path) -> None:
    view = alice()
    statefile.write(tmp_path, statefile.encode({"alice": view.state}, {}))
    saved = statefile.load(tmp_path)
    again = saved.bots["alice"]
    assert again.last_probe_received == 1_764_000_000.5 and again.probe_from == "bob"
    assert again.probes_sent == {"bob": 1_764_000_010.0, "carol": 1_764_000_020.0}
    r = registry_for(BotView("alice", again, FILES))
    assert r.get_sample_value(
        "wechaty_bot_probe_sent_timestamp_seconds", {"bot": "alice", "peer": "bob"}
    ) == (1_764_000_010.0)
