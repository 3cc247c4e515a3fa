"""Every command-line flag from the environment too, as systemd, compose and Kubernetes configure.

A flag `--web.listen-address` is also `WECHATY_EXPORTER_WEB_LISTEN_ADDRESS` (the prefix, then the
flag upper-cased with dots and dashes as underscores). Layers, highest first: the flag, the
variable, the config file, the default. Kinds of flags:

- a flag with a value: the variable's value, checked like the flag's (type and choices);
- an on/off flag (`--no-inotify`): `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`, empty;
- a repeatable flag (`--log`, `--admin`): values separated by commas,
  `WECHATY_EXPORTER_LOG=alice=/var/log/alice.log,bob=/var/log/bob.log`; given on the command
  line at all, the flag replaces the variable's values instead of adding to them.

A malformed variable is a usage error naming the variable, exactly like a malformed flag.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

PREFIX = "WECHATY_EXPORTER_"
SEPARATOR = ","
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})
_NOT_FLAGS = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)


def variable(action: argparse.Action) -> str:
    """The environment variable of a flag: its long option, upper-cased, `.`/`-` as `_`."""
    option = max(action.option_strings, key=len).lstrip("-")
    return PREFIX + option.replace(".", "_").replace("-", "_").upper()


def flags(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[argparse.ArgumentParser, argparse.Action]]:
    """Every flag of `parser` and of its subcommands, with the parser it belongs to."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from flags(sub)
        elif action.option_strings and not isinstance(action, _NOT_FLAGS):
            yield parser, action


def _convert(parser: argparse.ArgumentParser, action: argparse.Action, name: str, text: str) -> Any:
    try:
        value = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        parser.error(f"{name}={text!r}: {exc}")
    if action.choices is not None and value not in action.choices:
        choices = ", ".join(map(str, action.choices))
        parser.error(f"{name}={text!r}: expected one of {choices}")
    return value


def apply(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> dict[str, list[Any]]:
    """Make every flag's variable its default. Returns the repeatable flags' values by dest, for
    `fill_repeated` once the command line is parsed (so that flags replace them)."""
    repeated: dict[str, list[Any]] = {}
    for owner, action in flags(parser):
        name = variable(action)
        text = environ.get(name)
        if text is None:
            continue
        if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            word = text.strip().lower()
            if word not in TRUE | FALSE:
                owner.error(f"{name}={text!r}: expected one of 1, true, yes, on, 0, false, no, off")
            on = word in TRUE
            action.default = on if isinstance(action, argparse._StoreTrueAction) else not on
        elif isinstance(action, argparse._AppendAction):
            items = [item.strip() for item in text.split(SEPARATOR) if item.strip()]
            repeated[action.dest] = [_convert(owner, action, name, item) for item in items]
        else:
            action.default = _convert(owner, action, name, text)
    return repeated


def fill_repeated(args: argparse.Namespace, repeated: Mapping[str, Sequence[Any]]) -> None:
    """Repeatable flags not given on the command line take their variable's values."""
    for dest, values in repeated.items():
        if hasattr(args, dest) and not getattr(args, dest):
            setattr(args, dest, list(values))
