"""`bot.probe`: off unless set, and every problem of it listed."""

from __future__ import annotations

from typing import Any

from wechaty_exporter.peerbot.settings import ProbeSettings, parse_bot_settings


def parse(raw: dict[str, Any]) -> tuple[Any, list[str]]:
    errors: list[str] = []
    return parse_bot_settings(raw, errors), errors


def test_off_unless_configured() -> None:
    settings, errors = parse({"name": "alice"})
    assert errors == [] and settings.probe is None


def test_defaults_and_values() -> None:
    settings, errors = parse({"name": "alice", "probe": {"peer": "wxid_bob", "peer_bot": "bob"}})
    assert errors == []
    assert settings.probe == ProbeSettings("wxid_bob", "bob", 600.0, 0.1)
    probe = {"peer": " Bob Bot ", "peer_bot": "bob", "interval": "90s", "jitter": 0}
    settings, errors = parse({"name": "alice", "probe": probe})
    assert errors == []
    assert settings.probe == ProbeSettings("Bob Bot", "bob", 90.0, 0.0)


def test_every_problem_is_listed() -> None:
    probe = {"peer": "", "peer_bot": "b b", "interval": "0s", "jitter": 1, "every": "1m"}
    settings, errors = parse({"name": "alice", "probe": probe})
    assert settings is None
    wheres = sorted(e.split(":", 1)[0] for e in errors)
    assert wheres == [
        "bot.probe.every",
        "bot.probe.interval",
        "bot.probe.jitter",
        "bot.probe.peer",
        "bot.probe.peer_bot",
    ], errors


def test_more_problems() -> None:
    for probe, where in (
        ("wxid_bob", "bot.probe"),
        ({"peer_bot": "bob"}, "bot.probe.peer"),
        ({"peer": "wxid_bob"}, "bot.probe.peer_bot"),
        ({"peer": "wxid_bob", "peer_bot": "bob\n"}, "bot.probe.peer_bot"),
        ({"peer": "wxid_bob", "peer_bot": "bob", "jitter": True}, "bot.probe.jitter"),
        ({"peer": "wxid_bob", "peer_bot": "bob", "jitter": -0.1}, "bot.probe.jitter"),
        ({"peer": "wxid_bob", "peer_bot": "bob", "interval": "soon"}, "bot.probe.interval"),
        ({"peer": "wxid_bob", "peer_bot": "alice"}, "bot.probe.peer_bot"),  # itself
    ):
        settings, errors = parse({"name": "alice", "probe": probe})
        assert settings is None
        assert [e.split(":", 1)[0] for e in errors] == [where], (probe, errors)
