"""delivery/settings.py: the `receiver:` section, every problem at once, and flag overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from wechaty_exporter.config import parse_config
from wechaty_exporter.delivery.settings import (
    AuthSettings,
    LoginTestSettings,
    MessengerSettings,
    RateLimitSettings,
    ReceiverSettings,
    apply_receiver_flags,
    parse_admin_flag,
    parse_receiver_settings,
)
from wechaty_exporter.settings import ConfigError


def parse(raw: Any) -> tuple[ReceiverSettings | None, list[str]]:
    errors: list[str] = []
    return parse_receiver_settings(raw, errors), errors


@pytest.fixture
def secrets(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name, value in (("webhook", "tok-1\n"), ("qr", "tok-2"), ("pw", "pw-3"), ("peer", "tok-4")):
        path = tmp_path / name
        path.write_text(value)
        out[name] = str(path)
    return out


def test_defaults() -> None:
    settings, errors = parse({})
    assert errors == []
    assert settings == ReceiverSettings()
    assert settings.listen_address == "127.0.0.1:9840"
    assert settings.exporter_url == "http://127.0.0.1:9839"
    assert settings.qr_wait == 20
    assert settings.dedupe_ttl == 3600
    assert settings.messenger == MessengerSettings(kind="outbox", path=None)


def test_the_documented_example(secrets: dict[str, str]) -> None:
    raw = yaml.safe_load(f"""
listen_address: "0.0.0.0:19840"
exporter_url: "http://exporter:9839/"
exporter_token_file: {secrets["qr"]}
exporter_timeout: 3s
admins:
  alice: [wxid_admin1]
  bob: [wxid_admin1, "Carol"]
fallback_admins: wxid_admin1
auth:
  bearer_token_file: {secrets["webhook"]}
max_body_bytes: 65536
dedupe_ttl: 30m
rate_limit: {{burst: 4, per_hour: 20, max_hold: 0}}
qr_wait: 45s
qr_poll_interval: 500ms
qr_alerts: [WechatyBotLoggedOut, MyLogout]
timezone: Asia/Shanghai
messenger:
  type: webhook
  url: http://peer:8080/send
  token_file: {secrets["peer"]}
  timeout: 4s
login_test:
  bob: {{to: wxid_bob, text: "login test"}}
""")
    settings, errors = parse(raw)
    assert errors == []
    assert settings is not None
    assert (settings.listen_host, settings.listen_port) == ("0.0.0.0", 19840)
    assert settings.exporter_url == "http://exporter:9839"
    assert settings.exporter_token == "tok-2"
    assert settings.exporter_timeout == 3
    assert settings.admins_for("bob") == ("wxid_admin1", "Carol")
    assert settings.admins_for("zed") == settings.admins_for(None) == ("wxid_admin1",)
    assert settings.auth == AuthSettings("bearer", "tok-1")
    assert settings.max_body_bytes == 65536
    assert settings.dedupe_ttl == 1800
    assert settings.rate_limit == RateLimitSettings(burst=4, per_hour=20, max_hold=0)
    assert (settings.qr_wait, settings.qr_poll_interval) == (45, 0.5)
    assert settings.qr_alerts == ("WechatyBotLoggedOut", "MyLogout")
    assert settings.timezone == "Asia/Shanghai"
    assert settings.messenger == MessengerSettings(
        kind="webhook", url="http://peer:8080/send", token="tok-4", timeout=4
    )
    assert settings.login_test_for("bob") == LoginTestSettings("wxid_bob", "login test")
    assert "tok-" not in repr(settings)  # secrets stay out of logs


def test_basic_auth_and_wechaty_options(secrets: dict[str, str]) -> None:
    settings, errors = parse(
        {
            "auth": {"basic": {"username": "am", "password_file": secrets["pw"]}},
            "messenger": {"type": "wechaty", "puppet_port": 5001},
        }
    )
    assert errors == []
    assert settings is not None
    assert settings.auth == AuthSettings("basic", "pw-3", username="am")
    assert settings.messenger.kind == "wechaty"
    assert dict(settings.messenger.options) == {"puppet_port": 5001}


def test_every_problem_is_reported_with_its_location(tmp_path: Path) -> None:
    raw = {
        "listen_adress": "x",
        "listen_address": "nowhere",
        "exporter_url": "ftp://x",
        "exporter_token_file": str(tmp_path / "missing"),
        "admins": {"bob": ["ok", 3, ""], "bad name!": ["x"], "carol": []},
        "fallback_admins": [None],
        "auth": {"basic": {"username": "a:b", "password": "literal"}},
        "max_body_bytes": 10,
        "dedupe_ttl": "soon",
        "rate_limit": {"burst": 1, "per_hour": 0, "max_hold": "-1s"},
        "qr_wait": -5,
        "timezone": "Mars/Olympus",
        "messenger": {"type": "carrier-pigeon"},
        "login_test": {"bob": {"to": "", "text": ""}},
    }
    settings, errors = parse(raw)
    assert settings is None
    expected = [
        "receiver.listen_adress: unknown key",
        "receiver.listen_address: expected HOST:PORT, got 'nowhere'",
        "receiver.exporter_url: expected an http(s) URL, got 'ftp://x'",
        "receiver.exporter_token_file: cannot read",
        "receiver.admins.bob[1]: must be a non-empty string, got 3",
        "receiver.admins.bob[2]: must be a non-empty string, got ''",
        "receiver.admins.bad name!: bot name must match",
        "receiver.admins.carol: must name at least one contact",
        "receiver.fallback_admins[0]: must be a non-empty string, got None",
        "receiver.auth.basic.password: unknown key",
        "receiver.auth.basic.username: must be a non-empty string without ':'",
        "receiver.auth.basic.password: secrets are read from files; use password_file",
        "receiver.auth.basic.password_file: expected the path of a file",
        "receiver.max_body_bytes: must be an integer from 1024 to 67108864, got 10",
        "receiver.dedupe_ttl: expected a duration like 1s or 500ms, got 'soon'",
        "receiver.rate_limit.burst: must be an integer from 2 to 1000, got 1",
        "receiver.rate_limit.per_hour: must be a positive number, got 0",
        "receiver.rate_limit.max_hold: expected a duration",
        "receiver.qr_wait: must be positive, got -5",
        "receiver.timezone: not a known IANA time zone: 'Mars/Olympus'",
        "receiver.messenger.type: must be one of outbox, webhook, wechaty, got 'carrier-pigeon'",
        "receiver.login_test.bob.to: must be a non-empty string",
        "receiver.login_test.bob.text: must be a non-empty string",
    ]
    for want in expected:
        assert any(e.startswith(want) for e in errors), (want, errors)
    assert len(errors) == len(expected), errors


def test_an_empty_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    _, errors = parse({"auth": {"bearer_token_file": str(tmp_path / "empty")}})
    assert errors == [f"receiver.auth.bearer_token_file: {tmp_path / 'empty'} is empty"]


def test_auth_needs_exactly_one_scheme(secrets: dict[str, str]) -> None:
    _, errors = parse({"auth": {}})
    assert errors == ["receiver.auth: set exactly one of bearer_token_file and basic"]


def test_the_config_loader_reports_receiver_problems_with_the_rest() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"receiver": {"qr_wait": "never", "admins": {"bob": [1]}}})
    assert "receiver.qr_wait: expected a duration like 1s or 500ms, got 'never'" in (
        caught.value.problems
    )
    assert "receiver.admins.bob[0]: must be a non-empty string, got 1" in caught.value.problems


# --- flags -------------------------------------------------------------------------------------


def test_flags_override_the_file() -> None:
    base = ReceiverSettings(
        admins=(("bob", ("a",)), ("carol", ("c",))),
        messenger=MessengerSettings(kind="webhook", url="http://peer/send"),
    )
    settings = apply_receiver_flags(
        base,
        listen="[::1]:9999",
        exporter_url="http://10.0.0.2:9839",
        admins=[("bob", "x"), ("bob", "y"), ("bob", "x"), ("dave", "d")],
        outbox="/tmp/out.jsonl",
    )
    assert settings.listen_address == "[::1]:9999"
    assert settings.exporter_url == "http://10.0.0.2:9839"
    assert settings.admins == (("bob", ("x", "y")), ("carol", ("c",)), ("dave", ("d",)))
    assert settings.messenger == MessengerSettings(kind="outbox", path=Path("/tmp/out.jsonl"))
    assert apply_receiver_flags(base) == base


def test_bad_flags_raise_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        apply_receiver_flags(
            ReceiverSettings(), listen="x", exporter_url="nope", admins=[("b b", "x")]
        )
    assert len(caught.value.problems) == 3


@pytest.mark.parametrize(
    ("value", "result"),
    [("bob=wxid_1", ("bob", "wxid_1")), ("bob=Alice Smith", ("bob", "Alice Smith")),
     ("bob=a=b", ("bob", "a=b"))],
)  # fmt: skip
def test_admin_flag(value: str, result: tuple[str, str]) -> None:
    assert parse_admin_flag(value) == result


@pytest.mark.parametrize("value", ["bob", "=x", "bob=", "b b=x"])
def test_bad_admin_flag(value: str) -> None:
    with pytest.raises(ValueError, match="--admin"):
        parse_admin_flag(value)
