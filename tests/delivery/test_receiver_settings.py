"""delivery/settings.py: the `receiver:` section, every problem at once, and flag overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from wechaty_exporter.config import parse_config
from wechaty_exporter.delivery.guard_settings import AuthSettings, RateLimitSettings
from wechaty_exporter.delivery.messenger_settings import MessengerSettings
from wechaty_exporter.delivery.receiver_flags import apply_receiver_flags, parse_admin_flag
from wechaty_exporter.delivery.settings import (
    ExporterTarget,
    LoginTestSettings,
    ReceiverSettings,
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
        "receiver.auth.basic.username: must be a non-empty string without ':'",
        "receiver.auth.basic.password: secrets are read from files; use password_file",
        "receiver.max_body_bytes: must be an integer from 1024 to 67108864, got 10",
        "receiver.dedupe_ttl: expected a duration like 1s or 500ms, got 'soon'",
        "receiver.rate_limit.burst: must be an integer from 2 to 1000, got 1",
        "receiver.rate_limit.per_hour: must be a positive number, got 0",
        "receiver.rate_limit.max_hold: expected a duration",
        "receiver.qr_wait: must be positive, got -5",
        "receiver.timezone: not a known IANA time zone: 'Mars/Olympus'",
        "receiver.messenger.type: must be one of outbox, webhook, apprise, wechaty,"
        " got 'carrier-pigeon'",
        "receiver.login_test.bob.to: must be a non-empty string",
        "receiver.login_test.bob.text: must be a non-empty string",
    ]
    for want in expected:
        assert any(e.startswith(want) for e in errors), (want, errors)
    assert len(errors) == len(expected), errors


def test_a_literal_secret_is_one_problem_that_says_where_secrets_go() -> None:
    _, errors = parse({"auth": {"basic": {"username": "am", "password": "hunter2"}}})
    assert errors == [
        "receiver.auth.basic.password: secrets are read from files; use password_file"
    ]
    _, errors = parse({"messenger": {"type": "webhook", "url": "http://x", "token": "t0k"}})
    assert errors == ["receiver.messenger.token: secrets are read from files; use token_file"]
    _, errors = parse({"auth": {"basic": {"username": "am"}}})
    assert errors == ["receiver.auth.basic.password_file: required"]


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


# --- exporters: one receiver, bots on many hosts -------------------------------------------------

A, B = "http://10.0.0.5:9839", "http://10.0.0.6:9839"


@pytest.fixture
def token_files(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "alice-qr-token").write_text("tok-alice\n")
    (tmp_path / "empty").write_text("\n")
    return {
        "alice": str(tmp_path / "alice-qr-token"),
        "missing": str(tmp_path / "missing"),
        "empty": str(tmp_path / "empty"),
    }


def _with_files(raw: Any, files: dict[str, str]) -> Any:
    """`{file:NAME}` placeholders in the table → the fixture's paths."""
    if isinstance(raw, dict):
        return {k: _with_files(v, files) for k, v in raw.items()}
    if isinstance(raw, str) and raw.startswith("{file:"):
        return files[raw[6:-1]]
    return raw


# raw section → {bot: (url, token) or None}: who is asked about each bot
VALID_EXPORTERS = [
    pytest.param(
        {"admins": {"alice": ["x"]}},
        {"alice": ("http://127.0.0.1:9839", None), "zed": ("http://127.0.0.1:9839", None)},
        id="no-exporters-the-default-for-all",
    ),
    pytest.param(
        {"exporters": {}, "admins": {"alice": ["x"]}},
        {"alice": ("http://127.0.0.1:9839", None)},
        id="empty-exporters-as-absent",
    ),
    pytest.param(
        {
            "exporter_url": "http://127.0.0.1:9839",
            "exporters": {
                "alice": {"url": A + "/", "token_file": "{file:alice}"},
                "bob": {"url": B},
            },
            "admins": {"alice": ["x"], "bob": ["x"], "carol": ["x"]},
        },
        {
            "alice": (A, "tok-alice"),
            "bob": (B, None),
            "carol": ("http://127.0.0.1:9839", None),
            "zed": ("http://127.0.0.1:9839", None),
        },
        id="the-documented-example-with-a-default",
    ),
    pytest.param(
        {
            "exporters": {"alice": {"url": A}, "bob": {"url": B}},
            "admins": {"alice": ["x"], "bob": ["x"]},
            "fallback_admins": ["x"],
        },
        {"alice": (A, None), "bob": (B, None), "zed": None},
        id="no-default-every-admins-bot-listed",
    ),
]


@pytest.mark.parametrize(("raw", "routes"), VALID_EXPORTERS)
def test_exporters(
    raw: dict[str, Any], routes: dict[str, Any], token_files: dict[str, str]
) -> None:
    settings, errors = parse(_with_files(raw, token_files))
    assert errors == []
    assert settings is not None
    for bot, want in routes.items():
        target = settings.exporter_for(bot)
        assert (None if target is None else (target.url, target.token)) == want, bot
    assert settings.missing_exporters() == ()
    assert "tok-alice" not in repr(settings)


# raw section → every problem (each a prefix of the error), exactly, in order
BAD_EXPORTERS = [
    pytest.param(
        {"exporters": ["http://a:9839"]},
        ["receiver.exporters: must be a mapping of bot name to {url, token_file}"],
        id="not-a-mapping",
    ),
    pytest.param(
        {"exporters": {"bad name!": {"url": A}}},
        ["receiver.exporters.bad name!: bot name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"],
        id="bad-bot-name",
    ),
    pytest.param(
        {"exporters": {"alice": A}},
        ["receiver.exporters.alice: must be a mapping with url (and token_file)"],
        id="entry-not-a-mapping",
    ),
    pytest.param(
        {"exporters": {"alice": {"token_file": "{file:alice}"}}},
        ["receiver.exporters.alice.url: required (the exporter that watches alice)"],
        id="url-required",
    ),
    pytest.param(
        {"exporters": {"alice": {"url": "ftp://a"}, "bob": {"url": 9839}}},
        [
            "receiver.exporters.alice.url: expected an http(s) URL, got 'ftp://a'",
            "receiver.exporters.bob.url: expected an http(s) URL, got 9839",
        ],
        id="url-not-http",
    ),
    pytest.param(
        {"exporters": {"alice": {"url": A, "token": "literal"}}},
        ["receiver.exporters.alice.token: secrets are read from files; use token_file"],
        id="literal-token",
    ),
    pytest.param(
        {"exporters": {"alice": {"url": A, "token_file": "{file:missing}"}}},
        ["receiver.exporters.alice.token_file: cannot read "],
        id="token-file-missing",
    ),
    pytest.param(
        {"exporters": {"alice": {"url": A, "token_file": "{file:empty}"}}},
        ["receiver.exporters.alice.token_file: {file:empty} is empty"],
        id="token-file-empty",
    ),
    pytest.param(
        {"exporters": {"alice": {"url": A, "token_file": ["x"]}}},
        ["receiver.exporters.alice.token_file: expected the path of a file holding the secret"],
        id="token-file-not-a-path",
    ),
    pytest.param(
        {"exporters": {"alice": {"url": A, "timeout": "1s"}}},
        ["receiver.exporters.alice.timeout: unknown key (known: token_file, url)"],
        id="unknown-key",
    ),
    pytest.param(
        {
            "exporters": {"alice": {"url": A}},
            "admins": {"alice": ["x"], "bob": ["x"], "carol": ["y"]},
        },
        [
            "receiver.exporters: bot 'bob' has admins but no exporter to fetch its QR from; add"
            " bob to receiver.exporters or set receiver.exporter_url (the default for bots not"
            " listed)",
            "receiver.exporters: bot 'carol' has admins but no exporter",
        ],
        id="an-admins-bot-without-an-exporter",
    ),
    pytest.param(
        {
            "exporters": {"alice": {"url": "nope"}, "7 up": {"url": B}, "bob": {"token": "t"}},
            "admins": {"alice": ["x"], "bob": ["x"], "carol": ["x"]},
        },
        [
            "receiver.exporters.alice.url: expected an http(s) URL, got 'nope'",
            "receiver.exporters.7 up: bot name must match",
            "receiver.exporters.bob.token: secrets are read from files; use token_file",
            "receiver.exporters.bob.url: required (the exporter that watches bob)",
            "receiver.exporters: bot 'carol' has admins but no exporter",
        ],
        id="every-problem-at-once",  # a listed bot with a bad entry is not "missing" too
    ),
]


@pytest.mark.parametrize(("raw", "expected"), BAD_EXPORTERS)
def test_bad_exporters(
    raw: dict[str, Any], expected: list[str], token_files: dict[str, str]
) -> None:
    settings, errors = parse(_with_files(raw, token_files))
    assert settings is None
    assert len(errors) == len(expected), errors
    for want, got in zip(expected, errors, strict=True):
        for name, path in token_files.items():
            want = want.replace(f"{{file:{name}}}", path)
        assert got.startswith(want), (want, got)


def test_a_missing_exporter_is_reported_under_bot_receiver_too() -> None:
    errors: list[str] = []
    raw = {"exporters": {"alice": {"url": A}}, "admins": {"bob": ["x"]}}
    assert parse_receiver_settings(raw, errors, "bot.receiver") is None
    assert errors == [
        "bot.receiver.exporters: bot 'bob' has admins but no exporter to fetch its QR from; add"
        " bob to bot.receiver.exporters or set bot.receiver.exporter_url (the default for bots"
        " not listed)"
    ]


def test_flags_and_exporters() -> None:
    base, errors = parse({"exporters": {"alice": {"url": A}}, "admins": {"alice": ["x"]}})
    assert errors == []
    assert base is not None
    assert base.default_exporter is None
    with pytest.raises(ConfigError) as caught:  # --admin adds a bot no exporter watches
        apply_receiver_flags(base, admins=[("carol", "c"), ("dave", "d")])
    assert caught.value.problems == [
        "no exporter for bot 'carol': add it to receiver.exporters or give --exporter-url"
        " (the default exporter)",
        "no exporter for bot 'dave': add it to receiver.exporters or give --exporter-url"
        " (the default exporter)",
    ]
    # --exporter-url sets the default exporter, as exporter_url in the file would
    settings = apply_receiver_flags(base, exporter_url=B, admins=[("carol", "c")])
    assert settings.exporter_url_set
    assert settings.exporter_for("alice") == ExporterTarget(A)
    assert settings.exporter_for("carol") == ExporterTarget(B)
    assert apply_receiver_flags(base) == base
