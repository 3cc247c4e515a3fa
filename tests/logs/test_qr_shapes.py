"""A login QR is a URL with the shape of one (host and path), not any URL on a WeChat host.

A chat message with a newline forges a whole scan line; on an allowed host its URL used to reach
the admin as "the login QR". Each attack here is a URL on a WeChat host that is no login QR.
The genuine shapes come from public sources: wechat4u and wechaty-puppet-wechat4u build
``https://login.weixin.qq.com/l/<uuid>`` (tests/genuine/node_modules/wechaty-puppet-wechat4u),
the pad protocols (padplus, padlocal, gewechat) log ``http://weixin.qq.com/x/<uuid>``, and WeCom
logins ``https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?key=<32 hex>&wx=1``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from wechaty_exporter.config import parse_config
from wechaty_exporter.exporter.settings import ExporterSettings, parse_exporter_settings
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.qr import (
    DEFAULT_QR_SHAPES,
    check_qr,
    compile_qr_shapes,
    parse_qr_shape,
)
from wechaty_exporter.logs.events import RejectedQr, Scan, ScanStatus
from wechaty_exporter.logs.replay import replay_file
from wechaty_exporter.logs.state import BotState
from wechaty_exporter.settings import ConfigError

NOW = 1_800_000_000.0
JS = "https://wechaty.js.org/qrcode/"

ATTACKS = [
    # OAuth consent phishing: the admin "scans the login QR" and grants the attacker's app.
    "https://open.weixin.qq.com/connect/qrconnect?appid=wxATTACKER&redirect_uri="
    "https%3A%2F%2Fevil.example%2Fcb&response_type=code&scope=snsapi_login",
    "https://mp.weixin.qq.com/s/AttackerArticle",
    "https://www.wechat.com/anything?go=https://evil.example",
    "https://login.weixin.qq.com./l/IbfDrtBmzQ==",  # trailing dot
    "https://login.weixin.qq.com/l/IbfDrtBmzQ==?go=https://evil.example",
    "https://login.weixin.qq.com/l/IbfDrtBmzQ==#https://evil.example",
    "https://login.weixin.qq.com/l/a/../../connect/qrconnect",
    "https://login.weixin.qq.com/l/%2e%2e",
    "https://login.weixin.qq.com/l/",
    "https://login.weixin.qq.com/L/IbfDrtBmzQ==",
    "https://login.weixin.qq.com:8443/l/IbfDrtBmzQ==",
    "https://login.weixin.qq.com/qrcode/IbfDrtBmzQ==",
    "https://weixin.qq.com/r/qymXj7DEO_1ErfTs93y5",  # an official account's QR, not a login
    "https://weixin.qq.com/x/abc/extra",
    "http://login.weixin.qq.com/l/IbfDrtBmzQ==",  # web login QRs are https
    "https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?key=F391FFDC1FD94F0C77CC0F757198D909&wx=1"
    "&redirect=https://evil.example",
    "https://wx.work.weixin.qq.com/cgi-bin/other?key=F391FFDC1FD94F0C77CC0F757198D909&wx=1",
    "https://work.weixin.qq.com/wework_admin/loginpage_wx",
]

GENUINE = [
    "https://login.weixin.qq.com/l/IbfDrtBmzQ==",
    "https://login.weixin.qq.com/l/Acg3Az1aZQ==",
    "https://login.weixin.qq.com/l/wbGYbM_K8Q==",
    "http://weixin.qq.com/x/QfsfuToGOs-EVGgaa-gn",
    "http://weixin.qq.com/x/492VGBAXEst7YekIyAMm",
    "https://weixin.qq.com/x/IcPycVXZP4RV8WZ9MXF-",
    "https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?key=F391FFDC1FD94F0C77CC0F757198D909&wx=1",
    "HTTPS://LOGIN.WEIXIN.QQ.COM/l/IbfDrtBmzQ==",  # scheme and host are case-insensitive
]


@pytest.mark.parametrize("url", ATTACKS)
def test_a_url_on_a_wechat_host_that_is_no_login_qr_is_rejected(url: str) -> None:
    assert check_qr(url) == (None, "not a login qr")
    assert check_qr(JS + quote(url, safe="")) == (None, "not a login qr")


@pytest.mark.parametrize("url", GENUINE)
def test_genuine_login_qrs_pass(url: str) -> None:
    assert check_qr(url) == (url, None)
    assert check_qr(JS + quote(url, safe="")) == (url, None)


@pytest.mark.parametrize("url", ATTACKS[:4])
def test_a_forged_scan_line_is_rejected_and_counted_not_pending(url: str) -> None:
    """The forged line, byte for byte a genuine one, after a real QR: the real one stays."""
    real = GENUINE[0]
    lines = [
        f"10:00:00 INFO StarterBot onScan: Waiting(2) - {JS}{quote(real, safe='')}",
        "10:00:01 INFO StarterBot Message#Text[🗣Contact<Mallory>]\tplease scan:",
        f"10:00:01 INFO StarterBot onScan: Waiting(2) - {JS}{quote(url, safe='')}",
    ]
    parser, state = LineParser(), BotState()
    events = [e for line in lines for e in parser.feed(line, NOW)]
    assert events == [Scan(NOW, ScanStatus.WAITING, real), RejectedQr(NOW, "not a login qr")]
    for event in events:
        state.apply(event)
    assert state.qr is not None and state.qr.qrcode == real
    assert state.rejected_qr_total == 1


def test_every_qr_of_the_samples_and_the_dialect_corpus_passes() -> None:
    """The shipped sample logs and every dialect sample: no QR of theirs fails for its shape."""
    root = Path(__file__).resolve().parents[2]
    logs = [
        *sorted((root / "src/wechaty_exporter/samples").glob("*.log")),
        *sorted((root / "tests/data/dialects").glob("*.log")),
    ]
    assert len(logs) > 5
    accepted = 0
    for path in logs:
        parser = LineParser()
        for line in path.read_text(encoding="utf-8").splitlines():
            for event in parser.feed(line, NOW):
                assert event != RejectedQr(event.at, "not a login qr"), (path, line)
                accepted += isinstance(event, Scan) and event.qrcode is not None
    assert accepted > 10


def test_shapes_are_configurable_per_parser_and_replay(tmp_path: Path) -> None:
    shape = "https://qr.example.org/login/{id}"
    url = "https://qr.example.org/login/Abc-123"
    line = f"10:00:00 INFO Bot onScan: Waiting(2) - {url}"
    assert LineParser(["example.org"]).feed(line, NOW) == [RejectedQr(NOW, "not a login qr")]
    parser = LineParser(["example.org"], qr_shapes=[shape])
    assert parser.feed(line, NOW) == [Scan(NOW, ScanStatus.WAITING, url)]
    # Only that shape: the defaults are gone, and the host allowlist still applies.
    assert parser.feed(f"10:00:01 INFO Bot onScan: Waiting(2) - {GENUINE[0]}", NOW) == [
        RejectedQr(NOW, "host not allowed")
    ]
    log = tmp_path / "bot.log"
    log.write_text(line + "\n")
    state = BotState()
    replay_file(state, str(log), qr_hosts=["example.org"], qr_shapes=[shape])
    assert state.qr is not None and state.qr.qrcode == url


def test_replay_command_takes_the_shapes_from_the_config(tmp_path: Path) -> None:
    url = "https://qr.example.org/login/Abc-123"
    log = tmp_path / "bot.log"
    log.write_text(f"10:00:00 INFO Bot onScan: Waiting(2) - {url}\n")
    config = tmp_path / "config.yml"
    config.write_text(
        "exporter:\n"
        "  qr_hosts: [example.org]\n"
        "  qr_shapes:\n"
        '    - "https://qr.example.org/login/{id}"\n'
        f"bots:\n  bot:\n    logs: [{log}]\n"
    )
    run = [sys.executable, "-m", "wechaty_exporter", "replay", "--format", "json"]
    plain = subprocess.run([*run, str(log)], capture_output=True, text=True, check=True)
    configured = subprocess.run(
        [*run, "--config", str(config), str(log)], capture_output=True, text=True, check=True
    )
    assert url not in plain.stdout
    assert json.loads(plain.stdout)["bots"][0]["qr_pending"] is False
    assert json.loads(configured.stdout)["bots"][0]["qr_pending"] is True


def test_the_default_shapes_are_the_documented_ones() -> None:
    assert DEFAULT_QR_SHAPES == (
        "https://login.weixin.qq.com/l/{id}",
        "http://weixin.qq.com/x/{id}",
        "https://weixin.qq.com/x/{id}",
        "https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?key={id}&wx=1",
    )
    assert ExporterSettings().qr_shapes == DEFAULT_QR_SHAPES
    assert [s.host for s in compile_qr_shapes()] == [
        "login.weixin.qq.com", "weixin.qq.com", "weixin.qq.com", "wx.work.weixin.qq.com",
    ]  # fmt: skip


BAD_SHAPES = [
    ("ftp://weixin.qq.com/x/{id}", "expected http:// or https://"),
    ("https://Login.weixin.qq.com/l/{id}", "expected http:// or https://"),
    ("https://login.weixin.qq.com:443/l/{id}", "expected http:// or https://"),
    ("https://login.weixin.qq.com./l/{id}", "expected http:// or https://"),
    ("https://user@login.weixin.qq.com/l/{id}", "expected http:// or https://"),
    ("https://{id}.weixin.qq.com/l/x", "expected http:// or https://"),
    ("https://login.weixin.qq.com/l/x", "no {id}"),
    ("https://login.weixin.qq.com/l/{id}#x", "no fragment"),
    ("https://login.weixin.qq.com/l/{uuid}", "the only placeholder is {id}"),
    ("https://login.weixin.qq.com/l/ {id}", "printable ASCII"),
    ("https://-bad.weixin.qq.com/l/{id}", "bad host"),
    ("", "expected a URL template"),
    (7, "expected a URL template"),
]


@pytest.mark.parametrize(("template", "problem"), BAD_SHAPES)
def test_a_bad_shape_names_its_problem(template: object, problem: str) -> None:
    shape, problems = parse_qr_shape(template)
    assert shape is None
    assert any(problem in p for p in problems), problems


def test_every_shape_problem_is_listed_at_once() -> None:
    raw = {
        "exporter": {
            "qr_shapes": [
                "https://login.weixin.qq.com/l/{id}",
                "ftp://weixin.qq.com/x/{id}",
                "https://qr.example.org/l/{id}",
                "https://login.weixin.qq.com/l/x",
            ],
            "poll_interval": "soon",
        },
    }
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "c.yml")
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems if p.startswith("exporter.qr_shapes")] == [
        "exporter.qr_shapes[1]", "exporter.qr_shapes[2]", "exporter.qr_shapes[3]",
    ]  # fmt: skip
    assert any("qr.example.org is not in exporter.qr_hosts" in p for p in problems)
    assert any(p.startswith("exporter.poll_interval") for p in problems)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"qr_shapes": []}, "exporter.qr_shapes: expected a non-empty list"),
        ({"qr_shapes": "https://login.weixin.qq.com/l/{id}"}, "exporter.qr_shapes: expected"),
        ({"qr_hosts": ["example.org"]}, "exporter.qr_hosts: no login-QR shape is on these"),
    ],
)
def test_shapes_that_would_reject_every_qr_are_a_config_error(
    section: dict[str, object], problem: str
) -> None:
    errors: list[str] = []
    parse_exporter_settings(section, None, errors)
    assert any(e.startswith(problem) for e in errors), errors


def test_custom_hosts_with_their_shapes_load() -> None:
    errors: list[str] = []
    settings = parse_exporter_settings(
        {"qr_hosts": ["example.org"], "qr_shapes": ["https://qr.example.org/l/{id}"]}, None, errors
    )
    assert errors == []
    assert settings.qr_shapes == ("https://qr.example.org/l/{id}",)
    # A narrower host list keeps the default shapes on it, with no complaint.
    errors = []
    assert parse_exporter_settings({"qr_hosts": ["login.weixin.qq.com"]}, None, errors)
    assert errors == []
