"""Config: every problem at once, with its location; flags override the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from wechaty_exporter.config import load_config, parse_config
from wechaty_exporter.exporter.settings import ExporterSettings, apply_serve_flags
from wechaty_exporter.settings import ConfigError, parse_log_flag, read_secret


def test_full_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        """
exporter:
  listen_address: "0.0.0.0:9999"
  state_dir: /var/lib/x
  qr_hosts: [weixin.qq.com, Example.COM.]
  poll_interval: 500ms
  max_line_bytes: 4096
bots:
  alice: {logs: [/a/out.log, /a/err.log]}
  bob: {logs: /b.log}
"""
    )
    cfg = load_config(path).exporter
    assert (cfg.listen_host, cfg.listen_port) == ("0.0.0.0", 9999)
    assert cfg.state_dir == Path("/var/lib/x")
    assert cfg.qr_hosts == ("weixin.qq.com", "example.com")
    assert cfg.poll_interval == 0.5
    assert cfg.max_line_bytes == 4096
    assert cfg.bots == (("alice", ("/a/out.log", "/a/err.log")), ("bob", ("/b.log",)))
    assert cfg.logs()["/a/err.log"] == "alice"


def test_every_problem_reported_at_once() -> None:
    raw = {
        "exporter": {
            "listen_address": "nope",
            "poll_interval": "fast",
            "max_line_bytes": True,
            "qr_hosts": ["bad host"],
            "colour": "blue",
        },
        "bots": {
            "bad name!": {"logs": ["/x"]},
            "ok": {"logs": []},
            "me": {},
            "u": {"logs": ["/x"]},
        },
        "extra": 1,
    }
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "c.yml")
    problems = info.value.problems
    expected = [
        "exporter.listen_address", "exporter.poll_interval", "exporter.max_line_bytes",
        "exporter.qr_hosts[0]", "exporter.colour: unknown key", "bots.bad name!", "bots.ok.logs",
        "bots.me.logs: required", "config.extra: unknown key",
    ]  # fmt: skip
    for where in expected:
        assert any(p.startswith(where) for p in problems), (where, problems)
    assert "c.yml: 9 problem(s)" in str(info.value)


def test_same_file_for_two_bots() -> None:
    with pytest.raises(ConfigError, match=r"bots.b.logs: /x is already a log of bot a"):
        parse_config({"bots": {"a": {"logs": ["/x"]}, "b": {"logs": ["/x"]}}})


def test_yaml_syntax_error_has_a_location(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("bots:\n  alice: [\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: invalid YAML"):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config("/nonexistent/c.yml")


def test_flags_override_and_merge() -> None:
    base = parse_config({"bots": {"alice": {"logs": ["/a"]}, "bob": {"logs": ["/b"]}}}).exporter
    out = apply_serve_flags(
        base,
        logs=[("bob", "/b-out"), ("bob", "/b-err"), ("carol", "/c")],
        listen=":9000",
        state_dir="/s",
    )
    assert dict(out.bots) == {"alice": ("/a",), "bob": ("/b-out", "/b-err"), "carol": ("/c",)}
    assert (out.listen_host, out.listen_port, out.state_dir) == ("0.0.0.0", 9000, Path("/s"))


def test_flags_alone() -> None:
    out = apply_serve_flags(ExporterSettings(), logs=[("bob", "/b")])
    assert out.bots == (("bob", ("/b",)),) and out.listen_address == "127.0.0.1:9839"


def test_bad_flags() -> None:
    with pytest.raises(ConfigError, match="already a log of bot a"):
        apply_serve_flags(ExporterSettings(), logs=[("a", "/x"), ("b", "/x")])
    with pytest.raises(ConfigError, match="port must be"):
        apply_serve_flags(ExporterSettings(), listen="host:http")
    for bad in ("bob", "=/x", "bob=", "b b=/x"):
        with pytest.raises(ValueError, match="--log"):
            parse_log_flag(bad)


def test_read_secret(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("  s3cret\n")
    assert read_secret(tmp_path / "t", "token") == "s3cret"
    (tmp_path / "e").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_secret(tmp_path / "e", "token")
    with pytest.raises(ConfigError, match="cannot read"):
        read_secret(tmp_path / "missing", "token")


def test_check_config_reports_every_problem_of_every_section(tmp_path: Path) -> None:
    """What `check-config` lists: exporter, receiver, the bot, its receiver and its commands."""
    path = tmp_path / "c.yml"
    path.write_text(
        f"""
exporter: {{poll_interval: fast}}
bots: {{alice: {{logs: [/a.log]}}}}
receiver: {{rate_limit: {{burst: 0}}}}
commands: {{restart: {{bob: [pm2, restart, bob]}}}}
bot:
  name: "not ok!"
  puppet: {{token: literal}}
  receiver: {{admins: {{bob: [wxid_admin]}}, messenger: {{type: outbox}}}}
  commands:
    totp_secret: literal
    totp_secret_file: {tmp_path / "missing-secret"}
    restart: {{bob: "pm2 restart bob"}}
    security: {{restart: sometimes}}
    reply_rate_limit: {{burst: 0}}
    colour: blue
"""
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    expected = [
        "exporter.poll_interval:",
        "receiver.rate_limit.burst:",
        "commands: chat commands are configured in the bot's section: bot.commands",
        "bot.name:",
        "bot.puppet.token: secrets are read from files; use token_file",
        "bot.receiver.messenger.type:",
        "bot.commands.totp_secret: secrets are read from files",
        "bot.commands.totp_secret_file: cannot read",
        "bot.commands.restart.bob: must be a non-empty list",
        "bot.commands.security.restart: must be one of",
        "bot.commands.reply_rate_limit.burst:",
        "bot.commands.colour: unknown key",
    ]
    for where in expected:
        assert any(p.startswith(where) for p in problems), (where, problems)
    assert len(problems) == len(expected), problems


def test_the_bot_section_with_commands_is_accepted(tmp_path: Path) -> None:
    secret = tmp_path / "totp"
    secret.write_text("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n")
    config = parse_config(
        {
            "bots": {"bob": {"logs": ["/b.log"]}},
            "bot": {
                "name": "alice",
                "receiver": {"admins": {"bob": ["wxid_admin"]}},
                "commands": {
                    "alertmanager_url": "http://127.0.0.1:9093",
                    "totp_secret_file": str(secret),
                    "restart": {"bob": ["pm2", "restart", "bob"]},
                    "log_files": {"bob": "/b.log"},
                },
            },
        }
    )
    assert config.raw["bot"]["name"] == "alice"
    assert parse_config({"bot": None}).raw == {"bot": None}  # an empty section: defaults


def test_qr_source_per_bot() -> None:
    raw = {"bots": {"a": {"logs": ["/a"], "qr_source": "self-log"}, "b": {"logs": ["/b"]}}}
    assert parse_config(raw).exporter.self_log_qr_bots == frozenset({"a"})
    with pytest.raises(ConfigError, match=r"bots.b.qr_source: expected one of any, self-log"):
        parse_config({"bots": {"b": {"logs": ["/b"], "qr_source": "brolog"}}})
