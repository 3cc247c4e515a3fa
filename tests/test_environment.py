"""Every flag from the environment: this walks the argument parser, so no flag is missed again."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from wechaty_exporter import environment
from wechaty_exporter.cli import main, parse_args
from wechaty_exporter.cli.flags import build_parser

# A command line that parses for each subcommand, before any flag is added.
MINIMAL = {
    "serve": ["serve"],
    "replay": ["replay", "some.log"],
    "check-config": ["check-config", "config.yml"],
    "explain": ["explain", "some.log"],
    "dialects": ["dialects"],
    "receiver": ["receiver"],
    "bot": ["bot"],
}
REPEATED_SAMPLE = "alice=/var/log/a.log, bob=/var/log/b.log"


def _command(parser: argparse.ArgumentParser) -> str:
    return parser.prog.removeprefix("wechaty-exporter ")


def _sample(action: argparse.Action) -> tuple[str, Any]:
    """A valid value for the variable of `action`, and what the parsed flag must then be."""
    if isinstance(action, argparse._StoreTrueAction):
        return "yes", True
    if isinstance(action, argparse._AppendAction):
        items = [item.strip() for item in REPEATED_SAMPLE.split(",")]
        return REPEATED_SAMPLE, [action.type(i) if callable(action.type) else i for i in items]
    if action.choices is not None:
        choice = next(c for c in action.choices if c != action.default)
        return str(choice), choice
    return "from-the-environment", "from-the-environment"


def _flags() -> list[tuple[str, str, argparse.Action]]:
    return [
        (_command(parser), environment.variable(action), action)
        for parser, action in environment.flags(build_parser())
    ]


def test_every_subcommand_has_flags_walked() -> None:
    assert {command for command, _, _ in _flags()} == set(MINIMAL)


@pytest.mark.parametrize(("command", "name", "action"), _flags(), ids=lambda v: str(v))
def test_every_flag_reads_its_variable(command: str, name: str, action: argparse.Action) -> None:
    text, expected = _sample(action)
    args = parse_args(MINIMAL[command], {name: text})
    assert getattr(args, action.dest) == expected, f"{name} did not set {action.option_strings}"
    assert (
        name
        == "WECHATY_EXPORTER_"
        + max(action.option_strings, key=len)
        .lstrip("-")
        .replace(".", "_")
        .replace("-", "_")
        .upper()
    )


@pytest.mark.parametrize(("command", "name", "action"), _flags(), ids=lambda v: str(v))
def test_the_flag_wins_over_its_variable(command: str, name: str, action: argparse.Action) -> None:
    text, from_env = _sample(action)
    option = max(action.option_strings, key=len)
    if isinstance(action, argparse._StoreTrueAction):
        # An on/off flag given on the command line is on whatever the variable says.
        args = parse_args([*MINIMAL[command], option], {name: "false"})
        assert getattr(args, action.dest) is True
        return
    value = "carol=/var/log/c.log" if isinstance(action, argparse._AppendAction) else None
    if value is None:
        value = (
            next(str(c) for c in action.choices if str(c) != text)
            if action.choices
            else "from-the-flag"
        )
    args = parse_args([*MINIMAL[command], option, value], {name: text})
    got = getattr(args, action.dest)
    if isinstance(action, argparse._AppendAction):
        assert got == [action.type(value) if callable(action.type) else value]  # replaced
    else:
        assert got == value and got != from_env


def test_malformed_variables_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "WECHATY_EXPORTER_LOG": "no-equals-sign",
        "WECHATY_EXPORTER_LOG_LEVEL": "chatty",
        "WECHATY_EXPORTER_NO_INOTIFY": "maybe",
    }
    for name, text in cases.items():
        with pytest.raises(SystemExit) as exc:
            parse_args(["serve"], {name: text})
        assert exc.value.code == 2
        assert name in capsys.readouterr().err


def test_an_unset_or_unrelated_environment_changes_nothing() -> None:
    plain = parse_args(["serve", "--log", "bob=/var/log/bob.log"], {})
    noisy = parse_args(["serve", "--log", "bob=/var/log/bob.log"], {"UNRELATED": "1"})
    assert vars(plain) == vars(noisy)
    assert plain.logs == [("bob", "/var/log/bob.log")] and plain.no_inotify is False


def test_a_command_runs_from_the_environment_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay` with its bot from the environment: the whole command, not only the parser."""
    log = tmp_path / "x.log"
    log.write_text("10:00:00 INFO StarterBot Contact<Bob> login\n")
    monkeypatch.setenv("WECHATY_EXPORTER_BOT", "bob")
    monkeypatch.setenv("WECHATY_EXPORTER_FORMAT", "prometheus")
    assert main(["replay", str(log)]) == 0
    assert 'wechaty_bot_logged_in{bot="bob"} 1.0' in capsys.readouterr().out


def test_a_variable_matters_only_to_the_command_that_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--format` is replay's, explain's and dialects' with different choices: the variable is
    checked for the command that runs, and a value another command would refuse is no error."""
    environ = {"WECHATY_EXPORTER_FORMAT": "prometheus"}
    assert parse_args(["replay", "x.log"], environ).format == "prometheus"
    with pytest.raises(SystemExit) as exc:
        parse_args(["explain", "x.log"], environ)
    assert exc.value.code == 2
    assert "WECHATY_EXPORTER_FORMAT='prometheus': expected one of text, json" in (
        capsys.readouterr().err
    )
    assert parse_args(["serve"], environ).logs == []  # serve has no --format: untouched
