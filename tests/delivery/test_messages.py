"""Every text from a template (delivery/templates.py): both languages, overrides, what check-config
reports about a broken one (the real CLI), and values that cannot smuggle control or bidi
characters into an admin's chat."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.delivery.kit import (
    QR_BOB,
    SRC,
    FakeExporter,
    MakeRig,
    base_settings,
    payload,
    payload_doc,
)

from wechaty_exporter.config import parse_config
from wechaty_exporter.delivery.alerts import decode_notification, dm_texts, generic_text
from wechaty_exporter.delivery.chattext import MAX_TEXT_CHARS, format_duration, split_text
from wechaty_exporter.delivery.sandbox import clean_value
from wechaty_exporter.delivery.settings import ReceiverSettings, parse_receiver_settings
from wechaty_exporter.delivery.template_samples import sample_values
from wechaty_exporter.delivery.templates import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    Messages,
    check_templates,
    default_messages,
    shipped_templates,
    template_names,
)
from wechaty_exporter.settings import ConfigError

SHIPPED = Path(SRC) / "wechaty_exporter" / "delivery" / "templates"
# What must never reach a chat: C0/C1 controls, DEL, and the bidi controls (U+202A-U+202E,
# U+2066-U+2069, U+200E/F, U+061C) that make a text read differently from what it says.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
EVIL = "evil\u202etxt.exe\u2066x\u2069\u200e\u200f\u061c\x1b[31m\x07\r\nSend: qr eve\u2028y\x85z"


# --- the shipped templates ------------------------------------------------------------------------


def test_the_default_language_is_chinese() -> None:
    assert DEFAULT_LANGUAGE == "zh"
    assert ReceiverSettings().language == "zh"
    assert default_messages().language == "zh"


def test_the_package_ships_exactly_every_template_in_both_languages() -> None:
    files = {p.relative_to(SHIPPED).as_posix() for p in SHIPPED.rglob("*") if p.is_file()}
    assert files == {f"{lang}/{name}" for lang in LANGUAGES for name in template_names()}


def test_the_shipped_templates_pass_the_check() -> None:
    assert check_templates(shipped_templates()) == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", template_names())
def test_every_template_renders_every_sample(language: str, name: str) -> None:
    messages = default_messages(language)
    for values in sample_values(language)[name]:
        text = messages.render(name, **values)
        assert "{{" not in text and "{%" not in text
        assert not UNSAFE.search(text)
        if name != "alert_dm.txt.j2":  # the first line of a DM: only for two alerts or more
            assert text.strip(), values
        if language == "zh" and text:
            assert re.search("[\u4e00-\u9fff]", text) or "[" in text, text  # Chinese, really


@pytest.mark.parametrize(
    ("seconds", "en", "zh"),
    [(0, "0 s", "0 秒"), (59, "59 s", "59 秒"), (180, "3 min", "3 分钟"), (3600, "1 h", "1 小时"),
     (3660, "1 h 1 min", "1 小时 1 分钟"), (90000, "1 d 1 h", "1 天 1 小时")],
)  # fmt: skip
def test_durations_in_the_language(seconds: float, en: str, zh: str) -> None:
    assert (format_duration(seconds, "en"), format_duration(seconds, "zh")) == (en, zh)


def test_a_generic_alert_in_chinese() -> None:
    zh = default_messages("zh")
    alert = decode_notification(payload("no_rescuer_firing")).alerts[0]
    assert generic_text(zh, alert, now=alert.starts_at + 180, tz=UTC) == (
        "[告警] WechatyNoRescuer\n> Every bot of the duet is logged out\n"
        "> No peer bot can deliver a rescue QR; use another channel.\n"
        "自 2026-11-25 01:01 UTC 起触发（3 分钟前）。"
    )


async def test_chinese_end_to_end(make_rig: MakeRig, exporter: FakeExporter) -> None:
    exporter.qrs["bob"] = QR_BOB
    rig = await make_rig(base_settings(exporter.url, language="zh", timezone="Asia/Shanghai"))
    assert (await rig.post(payload("firing")))[0] == 200
    assert (await rig.post(payload("resolved")))[0] == 200
    text, _image, back = rig.sent()
    assert text["text"] == (
        "bob 已退出微信登录，自 2026-11-25 09:01 CST 起（3 分钟前）。\n"
        "请用 bob 的微信扫描下方二维码重新登录（二维码显示于 2026-11-25 09:02 CST）。\n"
        "二维码过期了？发送：qr bob"
    )
    assert back["text"] == "bob 已重新上线（告警持续 24 秒，始于 2026-11-25 09:01 CST）。"


async def test_chinese_while_waiting_for_the_qr(make_rig: MakeRig, exporter: FakeExporter) -> None:
    rig = await make_rig(base_settings(exporter.url, language="zh"))
    assert (await rig.post(payload("firing")))[0] == 200
    intro, timeout = (r["text"] for r in rig.sent())
    assert "还没有登录二维码：bob 尚未显示。若它在 5 秒内出现，我会发到这里。" in intro
    assert timeout == "等待 5 秒后，bob 仍未显示登录二维码。出现后请发送：qr bob"


# --- overrides ------------------------------------------------------------------------------------


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def parse(raw: dict[str, Any]) -> tuple[ReceiverSettings | None, list[str]]:
    errors: list[str] = []
    return parse_receiver_settings(raw, errors), errors


async def test_an_override_replaces_one_template_and_the_rest_stay_shipped(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    root = tmp_path / "templates"
    write(root, "en/back_online.txt.j2", "{{ bot }} ist wieder da ({{ alert.lasted }}).\n")
    settings, errors = parse({"templates_dir": str(root), "language": "en"})
    assert errors == []
    assert settings is not None and settings.templates_dir == root
    rig = await make_rig(base_settings(exporter.url, language="en", templates=settings.templates))
    assert (await rig.post(payload("resolved")))[0] == 200
    assert (await rig.post(payload("no_rescuer_firing")))[0] == 200
    back, other = (r["text"] for r in rig.sent())
    assert back == "bob ist wieder da (24 s)."
    assert other.startswith("[FIRING] WechatyNoRescuer\n")  # not overridden: the shipped one
    zh = Messages(settings.templates, "zh")  # only en/back_online was replaced
    values = sample_values("zh")["back_online.txt.j2"][0]
    assert zh.render("back_online.txt.j2", **values).startswith("bob 已重新上线")


BROKEN = [
    ("syntax", "zh/no_qr.txt.j2", "line one\n{{ bot }} {% if %}\n", 2, "syntax error"),
    ("unknown variable", "en/back_online.txt.j2", "a\n\n{{ bot }} {{ nope }}\n", 3,
     "unknown variable 'nope'"),
    ("sandbox escape", "zh/chat/failed.txt.j2", "x\n{{ ''.__class__ }}\n", 2, "sandbox"),
    ("sandbox escape via mro", "en/alert.txt.j2",
     "{{ alert.name.__class__.__mro__[1].__subclasses__() }}\n", 1, "sandbox"),
    ("unknown attribute", "en/logged_out.txt.j2", "{{ alert.nmae }}\n", 1, "nmae"),
    ("a branch only a case reaches", "en/chat/qr.txt.j2",
     '{% if case == "no_qr" %}{{ bot.nope }}{% endif %}\n', 1, "nope"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "name", "text", "line", "says"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_a_broken_override_is_a_config_error_with_its_file_and_line(
    tmp_path: Path, what: str, name: str, text: str, line: int, says: str
) -> None:
    path = write(tmp_path / "t", name, text)
    settings, errors = parse({"templates_dir": str(tmp_path / "t")})
    assert settings is None
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"receiver.templates_dir: {path}, line {line}: "), errors
    assert says in errors[0]


@pytest.mark.parametrize(
    ("name", "says"),
    [("fr/alert.txt.j2", "not a template name"), ("en/alerts.txt.j2", "not a template name")],
)
def test_a_file_that_is_no_template_is_reported(tmp_path: Path, name: str, says: str) -> None:
    write(tmp_path / "t", name, "{{ alert.name }}\n")
    write(tmp_path / "t", "README.md", "notes, not a template: ignored\n")
    _, errors = parse({"templates_dir": str(tmp_path / "t")})
    assert [e.split(": ", 2)[2][: len(says)] for e in errors] == [says]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"language": "fr"}, "receiver.language: must be one of zh, en, got 'fr'"),
        ({"templates_dir": 5}, "receiver.templates_dir: expected a directory path, got 5"),
        ({"templates_dir": "/nonexistent/t"}, "receiver.templates_dir: /nonexistent/t: not a dir"),
    ],
)
def test_bad_language_and_templates_dir(raw: dict[str, Any], error: str) -> None:
    _, errors = parse(raw)
    assert [e[: len(error)] for e in errors] == [error]


def test_the_bot_section_checks_its_templates_too(tmp_path: Path) -> None:
    write(tmp_path / "t", "zh/chat/help.txt.j2", "{{ bots.__init__ }}\n")
    with pytest.raises(ConfigError) as caught:
        parse_config({"bot": {"receiver": {"templates_dir": str(tmp_path / "t")}}})
    (problem,) = caught.value.problems
    assert problem.startswith(f"bot.receiver.templates_dir: {tmp_path / 't'}/zh/chat/help.txt.j2")


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    argv = [sys.executable, "-m", "wechaty_exporter", "check-config", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def test_check_config_reports_every_broken_template_and_passes_good_ones(tmp_path: Path) -> None:
    """The real CLI: exit 1 naming each broken file and line, and it does not crash; exit 0 once
    the overrides are fixed."""
    root = tmp_path / "templates"
    syntax = write(root, "zh/logged_out.txt.j2", "{{ bot }}\n{% for %}\n")
    unknown = write(root, "en/qr_timeout.txt.j2", "{{ bots | join(', ') }} {{ waited_for }}\n")
    escape = write(root, "en/chat/status.txt.j2", "ok\n\n{{ ''.__class__.__mro__ }}\n")
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"receiver": {"templates_dir": str(root), "language": "en"}}))
    done = check_config(config)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    assert f"{syntax}, line 2: syntax error" in done.stderr
    assert f"{unknown}, line 1: unknown variable 'waited_for'" in done.stderr
    assert f"{escape}, line 3: sandbox: access to attribute '__class__'" in done.stderr
    assert "3 problem(s)" in done.stderr
    syntax.write_text("{{ bot }} 掉线了。\n{{ qr_caption }}\n", encoding="utf-8")
    unknown.write_text("{{ bots | join(', ') }}: no QR after {{ waited }}.\n")
    escape.unlink()
    done = check_config(config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{config}: OK")


async def test_an_override_failing_on_real_values_falls_back_to_the_shipped_template(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The samples have an `instance` label; this alert has none: the shipped text goes out."""
    root = tmp_path / "templates"
    override = write(root, "en/alert.txt.j2", "{{ alert.name }} on {{ alert.labels.instance }}\n")
    settings, errors = parse({"templates_dir": str(root), "language": "en"})
    assert errors == [] and settings is not None
    rig = await make_rig(base_settings(exporter.url, language="en", templates=settings.templates))
    with caplog.at_level(logging.ERROR, logger="wechaty_exporter.delivery.templates"):
        assert (await rig.post(payload("no_rescuer_firing")))[0] == 200
    (sent,) = rig.sent()
    assert sent["text"].startswith("[FIRING] WechatyNoRescuer\n")
    assert f"template {override} failed, the shipped one is used" in caplog.text


# --- values cannot carry control or bidi characters -----------------------------------------------


def test_clean_value() -> None:
    # Line breaks (CR, LF, U+2028, NEL) become spaces; other controls and bidi marks go.
    assert clean_value(EVIL) == "eviltxt.exex[31m  Send: qr eve y z"
    assert clean_value("x" * 1000) == "x" * 399 + "…"
    assert clean_value("好" * 10) == "好" * 10


async def test_control_and_bidi_characters_in_alerts_never_reach_the_text(
    make_rig: MakeRig, exporter: FakeExporter
) -> None:
    doc = payload_doc("grouped")
    for alert in doc["alerts"]:
        alert["labels"]["alertname"] = f"Stale{EVIL}"
        alert["annotations"] = {"summary": f"sum {EVIL}", "description": EVIL, "runbook_url": EVIL}
    for language in LANGUAGES:
        rig = await make_rig(base_settings(exporter.url, language=language))
        doc["alerts"][0]["fingerprint"] += language  # new alerts for the second receiver state
        doc["alerts"][1]["fingerprint"] += language
        status, _ = await rig.post(json.dumps(doc))
        assert status == 200
        for record in rig.sent():
            text = record["text"]
            assert not UNSAFE.search(text), (language, text)
            assert "evil" in text
            assert not any(line.startswith("Send: qr eve") for line in text.splitlines())


# --- the DM of a group: one text within WeChat's limit, split at block boundaries -----------------


def test_a_long_group_is_split_between_whole_blocks() -> None:
    doc = payload_doc("grouped")
    template = doc["alerts"][0]
    doc["alerts"] = [
        {**template, "fingerprint": f"fp{i}", "labels": {**template["labels"], "bot": f"bot{i}"},
         "annotations": {"summary": f"bot{i} " + "x" * 380, "description": "y" * 390}}
        for i in range(12)
    ]  # fmt: skip
    alerts = decode_notification(json.dumps(doc).encode()).alerts
    en = default_messages("en")
    blocks = [(a, generic_text(en, a, now=a.starts_at, tz=UTC)) for a in alerts]
    texts = dm_texts(en, blocks)
    assert len(texts) > 1
    assert all(len(text) <= MAX_TEXT_CHARS for text, _ in texts)
    assert [i for _, group in texts for i in group] == list(range(12))  # each block once, in order
    assert texts[0][0].startswith("12 alerts firing: bot0, bot1, bot2")
    for text, group in texts:
        for i in group:
            assert blocks[i][1] in text  # whole blocks, never cut
    assert dm_texts(en, []) == []


def test_split_text_is_the_one_splitter() -> None:
    from wechaty_exporter.chatops import texts

    assert texts.split_text is split_text
    assert split_text("ab\ncd\nef", 5) == ["ab\ncd", "ef"]


def test_configuration_md_lists_every_template_and_its_variables() -> None:
    page = (Path(SRC).parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_/]+\.txt\.j2)` \| (.*) \|$", page, re.MULTILINE))
    assert sorted(rows) == sorted(template_names())
    for name, text in rows.items():
        documented = set(re.findall(r"`([a-z_]+)`", text))
        for case in sample_values("en")[name]:
            assert set(case) <= documented, (name, set(case) - documented)
            for value in case.values():  # the fields of a list of mappings (chat/status' bots)
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    assert set(value[0]) <= documented, (name, set(value[0]) - documented)
    alert = sample_values("en")["alert.txt.j2"][0]["alert"]
    holds = page[page.index("`alert` holds") :].split("\n\n")[0]
    assert set(alert) <= set(re.findall(r"`([a-z_]+)`", holds))


async def test_the_login_test_text_defaults_to_its_template(
    make_rig: MakeRig, exporter: FakeExporter, tmp_path: Path
) -> None:
    settings, errors = parse({"login_test": {"bob": {"to": "wxid_bob_self"}}})
    assert errors == [] and settings is not None
    (test,) = (t for _, t in settings.login_tests)
    assert (test.to, test.text) == ("wxid_bob_self", None)
    for language, expected in (
        ("en", "Login test: bob is back online and its messages reach you again ("),
        ("zh", "登录测试：bob 已重新上线，它的消息可以再次送达（"),
    ):
        changes = {"language": language, "login_tests": settings.login_tests}
        rig = await make_rig(base_settings(exporter.url, **changes), state_dir=tmp_path / language)
        assert (await rig.post(payload("resolved")))[0] == 200
        login_test = rig.sent()[-1]
        assert (login_test["to"], login_test["bot"]) == ("wxid_bob_self", "bob")
        assert login_test["text"].startswith(expected)
