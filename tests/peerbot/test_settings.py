"""The `bot:` config section and the bot's flags → BotSettings, every problem at once."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from wechaty_exporter.cli.run import bot_settings_from_args
from wechaty_exporter.peerbot.settings import (
    BotSettings,
    PuppetSettings,
    apply_bot_flags,
    parse_bot_settings,
)
from wechaty_exporter.settings import ConfigError


def test_a_full_section(tmp_path: Path) -> None:
    token = tmp_path / "puppet-token"
    token.write_text("s3cret\n")
    errors: list[str] = []
    settings = parse_bot_settings(
        {
            "name": "alice",
            "self_log": "/var/log/alice.self.log",
            "state_dir": "/var/lib/alice",
            "puppet": {
                "endpoint": "127.0.0.1:8788",
                "token_file": str(token),
                "start_timeout": "10s",
                "reconnect_max_delay": "1m",
            },
            "receiver": {
                "listen_address": "127.0.0.1:9412",
                "admins": {"bob": ["wxid_admin"]},
                "messenger": {"type": "wechaty", "timeout": "20s"},
            },
        },
        errors,
    )
    assert errors == []
    assert settings is not None
    assert (settings.name, settings.self_log, settings.state_dir) == (
        "alice",
        "/var/log/alice.self.log",
        Path("/var/lib/alice"),
    )
    assert settings.puppet == PuppetSettings("127.0.0.1:8788", "s3cret", 10.0, 60.0)
    assert settings.send_timeout == 20.0
    assert settings.receiver.listen_port == 9412
    assert settings.receiver.admins_for("bob") == ("wxid_admin",)
    assert "s3cret" not in repr(settings)


def test_every_problem_with_its_place(tmp_path: Path) -> None:
    errors: list[str] = []
    parsed = parse_bot_settings(
        {
            "name": "no spaces please",
            "selflog": "x",
            "puppet": {
                "token": "literal",
                "token_file": str(tmp_path / "missing"),
                "start_timeout": "soon",
            },
            "receiver": {"admins": {"bob": []}},
        },
        errors,
    )
    assert parsed is None
    wanted = [
        "bot.selflog: unknown key",
        "bot.name: must match",
        "bot.puppet.token: secrets are read from files",
        "bot.puppet.token_file: cannot read",
        "bot.puppet.start_timeout: expected a duration",
        "bot.receiver.admins.bob: must name at least one contact",
    ]
    for problem in wanted:
        assert any(e.startswith(problem) for e in errors), (problem, errors)

    errors = []
    parse_bot_settings({"receiver": {"messenger": {"type": "webhook", "url": "http://x"}}}, errors)
    assert errors == [
        "bot.receiver.messenger.type: the bot sends through its own WeChat account (wechaty); "
        "use `wechaty-exporter receiver` for webhook"
    ]


def test_self_log_defaults() -> None:
    assert BotSettings().self_log_path() is None  # stdout
    assert BotSettings(state_dir=Path("/s")).self_log_path() == Path("/s/self.log")
    assert BotSettings(state_dir=Path("/s"), self_log="-").self_log_path() is None
    assert BotSettings(self_log="/l/a.log").self_log_path() == Path("/l/a.log")


def test_flags_override_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "bot:\n"
        "  name: alice\n"
        "  self_log: /var/log/alice.self.log\n"
        "  receiver:\n"
        "    listen_address: 127.0.0.1:9412\n"
        "    admins: {bob: [wxid_old], carol: [wxid_carol]}\n"
        "  commands:\n"
        "    restart: {bob: [pm2, restart, bob]}\n"
        "    security: {restart: none}\n"
    )
    args = argparse.Namespace(
        config=str(config),
        listen="127.0.0.1:9500",
        exporter_url="http://exporter:9839/",
        admins=["bob=wxid_new"],
        self_log="-",
        state_dir=str(tmp_path / "state"),
    )
    settings = bot_settings_from_args(args)
    assert settings.name == "alice"
    assert settings.receiver.listen_port == 9500
    assert settings.receiver.exporter_url == "http://exporter:9839"
    assert dict(settings.receiver.admins) == {"bob": ("wxid_new",), "carol": ("wxid_carol",)}
    assert settings.self_log_path() is None
    assert settings.state_dir == tmp_path / "state"
    assert settings.commands.restart_argv("bob") == ("pm2", "restart", "bob")
    assert settings.commands.policy("restart") == "none"


def test_flags_alone_and_their_errors() -> None:
    settings = bot_settings_from_args(argparse.Namespace(admins=["bob=wxid_a"]))
    assert settings.receiver.admins == (("bob", ("wxid_a",)),)
    with pytest.raises(ConfigError, match="--admin expects BOT=CONTACT"):
        bot_settings_from_args(argparse.Namespace(admins=["wxid_a"]))
    with pytest.raises(ConfigError, match=r"--web\.listen-address"):
        apply_bot_flags(BotSettings(), listen="nowhere")


def test_config_file_problems_name_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("bot:\n  puppet: {endpoint: ''}\n")
    with pytest.raises(ConfigError) as err:
        bot_settings_from_args(argparse.Namespace(config=str(config)))
    assert err.value.source == str(config)
    assert err.value.problems == ["bot.puppet.endpoint: expected host:port, got ''"]
