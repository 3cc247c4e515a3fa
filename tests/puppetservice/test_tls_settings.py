"""`bot.puppet.tls` in the config: parsed, validated by check-config, and winning over the
environment when the bot builds its puppet service."""

from __future__ import annotations

from pathlib import Path

import pytest

from wechaty_exporter import cli
from wechaty_exporter.peerbot.messenger import PuppetService
from wechaty_exporter.peerbot.puppettls import NO_TLS_ENV, TLSOptions, wechaty_ca
from wechaty_exporter.peerbot.settings import parse_bot_settings


def test_tls_keys_parse(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(wechaty_ca())
    errors: list[str] = []
    off = parse_bot_settings({"puppet": {"tls": False}}, errors)
    on = parse_bot_settings({"puppet": {"tls": True}}, errors)
    mapping = {"tls": {"ca_file": str(ca), "server_name": "puppet.example"}}
    named = parse_bot_settings({"puppet": mapping}, errors)
    default = parse_bot_settings({}, errors)
    assert errors == []
    assert off is not None and off.puppet.tls == TLSOptions(enabled=False)
    assert on is not None and on.puppet.tls == TLSOptions(enabled=True)
    assert named is not None
    assert named.puppet.tls == TLSOptions(True, ca, "puppet.example")
    assert default is not None and default.puppet.tls == TLSOptions()

    # The config wins over the environment, both ways.
    env = {NO_TLS_ENV: "true"}
    plain = PuppetService.from_env(env, endpoint="h:1", token="insecure_t", tls=off.puppet.tls)
    assert not plain.transport.tls
    tls = PuppetService.from_env(env, endpoint="h:1", token="t_x", tls=named.puppet.tls)
    assert tls.transport.tls and tls.transport.server_name == "puppet.example"
    assert tls.transport.ca_source == f"bot.puppet.tls.ca_file (file {ca})"
    assert not PuppetService.from_env(env, endpoint="h:1", token="t").transport.tls


def test_tls_problems_each_with_its_place(tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    errors: list[str] = []
    raw = {"tls": {"ca_file": str(tmp_path / "missing.pem"), "server_name": "two words", "x": 1}}
    assert parse_bot_settings({"puppet": raw}, errors) is None
    assert parse_bot_settings({"puppet": {"tls": "yes"}}, errors) is None
    assert parse_bot_settings({"puppet": {"tls": {"ca_file": str(not_pem)}}}, errors) is None
    assert "bot.puppet.tls.x: unknown key (known: ca_file, server_name)" in errors
    assert f"bot.puppet.tls.ca_file: {tmp_path / 'missing.pem'} is not a readable file" in errors
    assert "bot.puppet.tls.server_name: expected a host name, got 'two words'" in errors
    assert "bot.puppet.tls: expected true, false or a mapping with ca_file, server_name" in errors
    assert f"bot.puppet.tls.ca_file: {not_pem} holds no PEM certificate" in errors


def test_check_config_reports_tls_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text("bot:\n  puppet:\n    tls: {server_name: ''}\n")
    assert cli.main(["check-config", str(config)]) != 0
    out = capsys.readouterr()
    assert "bot.puppet.tls.server_name: expected a host name, got ''" in out.out + out.err
    config.write_text("bot:\n  puppet:\n    tls: false\n")
    assert cli.main(["check-config", str(config)]) == 0
