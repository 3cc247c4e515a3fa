"""chatops/settings.py: the `commands:` section, every problem at once with its location."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from wechaty_exporter.chatops.settings import (
    CommandsSettings,
    ReplyRateLimit,
    load_commands_settings,
    parse_commands_settings,
)
from wechaty_exporter.settings import ConfigError


def parse(raw: Any) -> tuple[CommandsSettings | None, list[str]]:
    errors: list[str] = []
    return parse_commands_settings(raw, errors), errors


def test_defaults() -> None:
    assert parse({}) == (CommandsSettings(), [])
    assert parse(None) == (CommandsSettings(), [])


def test_the_documented_example(totp_secret_file: Path) -> None:
    import wechaty_exporter.chatops.settings as module

    assert module.__doc__ is not None
    example = module.__doc__.split("\n\n", 1)[1].split("\n\nWho may")[0]
    raw = yaml.safe_load(example)["commands"]
    raw["totp_secret_file"] = str(totp_secret_file)
    settings, errors = parse(raw)
    assert errors == []
    assert settings is not None
    assert settings.totp_secret == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    assert "JBSW" not in repr(settings)
    assert settings.policy("restart") == "totp"
    assert settings.policy("log") == "confirm"
    assert settings.policy("silence") == "totp"  # dangerous + a secret
    assert settings.restart_argv("bob") == ("pm2", "restart", "bob")
    assert settings.restart_argv("alice") is None
    assert [p.name for p in settings.log_paths("bob")] == ["bob-out.log", "bob-error.log"]
    assert settings.restart_timeout == 60.0
    assert settings.totp_failure_window == 600.0
    assert settings.silence_max == 168 * 3600.0
    assert settings.alertmanager_url == "http://127.0.0.1:9093"
    assert settings.reply_rate_limit == ReplyRateLimit(burst=10, per_minute=6.0)


def test_every_problem_at_once(tmp_path: Path) -> None:
    weak = tmp_path / "weak"
    weak.write_text("JBSWY3DP")
    _, errors = parse(
        {
            "security": {"restart": "totp", "reboot": "none", "log": "maybe"},
            "totp_secret": "JBSWY3DPEHPK3PXP",
            "restart": {"bob": "pm2 restart bob", "Bad Name": ["x"], "carol": []},
            "restart_timeout": "soon",
            "log_files": {"bob": [""], "alice": 3},
            "log_max_lines": 500,
            "alertmanager_url": "localhost:9093",
            "reply_rate_limit": {"burst": 0, "per_minute": -1, "extra": 1},
            "max_reply_chars": 10,
            "colour": "blue",
        }
    )
    expected = [
        "commands.colour: unknown key",
        "commands.totp_secret: secrets are read from files; use totp_secret_file",
        "commands.security.reboot: unknown command",
        "commands.security.log: must be one of none, confirm, totp, got 'maybe'",
        "commands.security.restart: totp needs commands.totp_secret_file",
        "commands.log_max_lines: must be an integer from 1 to 200, got 500",
        "commands.max_reply_chars: must be an integer from 200 to 4000, got 10",
        "commands.restart_timeout: expected a duration",
        "commands.restart.bob: must be a non-empty list of strings",
        "commands.restart.Bad Name: bot name must match",
        "commands.restart.carol: must be a non-empty list of strings",
        "commands.log_files.bob[0]: must be a file path",
        "commands.log_files.alice: must be a path or a non-empty list of paths",
        "commands.alertmanager_url: expected an http(s) URL",
        "commands.reply_rate_limit.extra: unknown key",
        "commands.reply_rate_limit.burst: must be an integer from 1 to 1000",
        "commands.reply_rate_limit.per_minute: must be a positive number",
    ]
    for start in expected:
        assert any(e.startswith(start) for e in errors), (start, errors)
    assert len(errors) == len(expected), errors


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("JBSWY3DP\n", "has 40 bits; use at least 80"),
        ("not base32!", "does not hold a base32 secret"),
        ("", "is empty"),
    ],
)
def test_totp_secret_file_problems(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "secret"
    path.write_text(content)
    _, errors = parse({"totp_secret_file": str(path)})
    assert len(errors) == 1
    assert errors[0].startswith("commands.totp_secret_file: ")
    assert problem in errors[0]


def test_missing_secret_file(tmp_path: Path) -> None:
    _, errors = parse({"totp_secret_file": str(tmp_path / "nope")})
    assert errors[0].startswith("commands.totp_secret_file: cannot read")


def test_lowercase_spaced_secret_is_normalized(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("jbsw y3dp ehpk 3pxp\n")
    settings, errors = parse({"totp_secret_file": str(path)})
    assert errors == []
    assert settings is not None
    assert settings.totp_secret == "JBSWY3DPEHPK3PXP"


def test_load_raises_with_location() -> None:
    with pytest.raises(ConfigError) as info:
        load_commands_settings({"log_default_lines": 50, "log_max_lines": 10}, "bot.commands")
    assert info.value.problems == [
        "bot.commands.log_default_lines: 50 is more than log_max_lines (10)"
    ]
