"""docs/configuration.md matches the config parsers: every key they accept is documented, and every
documented key is accepted.

The accepted keys come from the parsers themselves: each section (and nested mapping) is fed an
unknown key, and the parser's error lists the known ones ("x.zz: unknown key (known: a, b)"), so
this test needs no copy of the schema. Documented keys are the backticked dotted paths in the
first column of the page's tables; a mapping keyed by bot name is written `<name>` or `<bot>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from wechaty_exporter.config import parse_config
from wechaty_exporter.delivery.settings import parse_receiver_settings
from wechaty_exporter.peerbot.settings import parse_bot_settings
from wechaty_exporter.settings import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
PROBE = "zz_probe"
Parser = Callable[[Mapping[str, Any], list[str], str], object]


def _known(errors: list[str], where: str) -> list[str]:
    prefix = f"{where}.{PROBE}: unknown key (known: "
    for error in errors:
        if error.startswith(prefix):
            return [k.strip() for k in error[len(prefix) : -1].split(",")]
    raise AssertionError(f"no unknown-key error for {where} in {errors}")


def _probe_config(section: Mapping[str, Any], where: str) -> list[str]:
    try:
        parse_config(section)
    except ConfigError as exc:
        return _known(exc.problems, where)
    raise AssertionError(f"{where}: the probe key was accepted")


def _probe(parse: Parser, raw: Mapping[str, Any], root: str, where: str) -> list[str]:
    errors: list[str] = []
    parse(raw, errors, root)
    return _known(errors, where)


def _paths(prefix: str, keys: list[str]) -> set[str]:
    return {f"{prefix}.{key}" for key in keys}


def accepted_keys() -> dict[str, set[str]]:
    """Section → every dotted key its parser accepts (mappings and their keys)."""
    p = {PROBE: 1}
    out = {"top": set(_probe_config(p, "config"))}
    out["exporter"] = _paths("exporter", _probe_config({"exporter": p}, "exporter"))
    bot_keys = _probe_config({"bots": {"x": {"logs": [], **p}}}, "bots.x")
    out["bots"] = _paths("bots.<name>", bot_keys)

    def rx(raw: Mapping[str, Any], where: str) -> list[str]:
        return _probe(parse_receiver_settings, raw, "receiver", where)

    receiver = _paths("receiver", _probe_config({"receiver": p}, "receiver"))
    plugin = _probe_config({"receiver": {"commands": p}}, "receiver.commands")
    receiver |= _paths("receiver.commands", ["bot"] if "bot" in plugin else [])
    receiver |= _paths("receiver.auth", rx({"auth": p}, "receiver.auth"))
    receiver |= _paths("receiver.auth.basic", rx({"auth": {"basic": p}}, "receiver.auth.basic"))
    receiver |= _paths("receiver.rate_limit", rx({"rate_limit": p}, "receiver.rate_limit"))
    receiver |= _paths("receiver.qr_refresh", rx({"qr_refresh": p}, "receiver.qr_refresh"))
    for kind in ("outbox", "webhook", "apprise"):
        messenger = rx({"messenger": {"type": kind, **p}}, "receiver.messenger")
        receiver |= _paths("receiver.messenger", messenger)
    login_test = rx({"login_test": {"x": p}}, "receiver.login_test.x")
    receiver |= _paths("receiver.login_test.<bot>", login_test)
    out["receiver"] = receiver

    def bx(raw: Mapping[str, Any], where: str) -> list[str]:
        return _probe(parse_bot_settings, raw, "bot", where)

    bot = _paths("bot", bx(p, "bot"))
    bot |= _paths("bot.puppet", bx({"puppet": p}, "bot.puppet"))
    bot |= _paths("bot.commands", bx({"commands": p}, "bot.commands"))
    bot |= _paths("bot.probe", bx({"probe": p}, "bot.probe"))
    rate = bx({"commands": {"reply_rate_limit": p}}, "bot.commands.reply_rate_limit")
    bot |= _paths("bot.commands.reply_rate_limit", rate)
    out["bot"] = bot
    out["receiver.commands"] = _paths("receiver.commands", plugin)
    return out


def documented_keys() -> set[str]:
    return set(re.findall(r"^\| `([a-z_][a-z0-9_.<>]*)` \|", DOC.read_text(), re.MULTILINE))


ACCEPTED = accepted_keys()
DOCUMENTED = documented_keys()


def test_every_top_level_section_is_documented_and_accepted() -> None:
    sections = {k for k in DOCUMENTED if "." not in k}
    assert sorted(sections - ACCEPTED["top"]) == [], "documented, but config.py does not accept it"
    assert sorted(ACCEPTED["top"] - sections) == [], f"accepted, but not in {DOC.name}"


@pytest.mark.parametrize("section", ["exporter", "bots", "receiver", "bot"])
def test_section_keys_match_the_parser(section: str) -> None:
    documented = {k for k in DOCUMENTED if k.startswith(section + ".")}
    accepted = ACCEPTED[section]
    assert sorted(accepted - documented) == [], f"accepted but not in {DOC.name}"
    assert sorted(documented - accepted) == [], f"in {DOC.name} but not accepted"


def test_receiver_commands_are_the_bot_commands_and_the_plugin_bot() -> None:
    """`receiver.commands` takes every key of `bot.commands` (documented once, there) and `bot`."""
    commands = {k.removeprefix("bot.commands.") for k in ACCEPTED["bot"]}
    commands = {k for k in commands if "." not in k and not k.startswith("bot.")}
    plugin = {k.removeprefix("receiver.commands.") for k in ACCEPTED["receiver.commands"]}
    assert plugin == commands | {"bot"}
