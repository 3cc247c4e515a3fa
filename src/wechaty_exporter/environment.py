"""Every command-line flag from the environment too, as systemd, compose and Kubernetes configure.

A flag `--web.listen-address` is also `WECHATY_EXPORTER_WEB_LISTEN_ADDRESS` (the prefix, then the
flag upper-cased with dots and dashes as underscores). Layers, highest first: the flag, the
variable, the config file, the default. Kinds of flags:

- a flag with a value: the variable's value, checked like the flag's (type and choices);
- an on/off flag (`--no-inotify`): `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`, empty;
- a repeatable flag (`--log`, `--admin`): values separated by commas,
  `WECHATY_EXPORTER_LOG=alice=/var/log/alice.log,bob=/var/log/bob.log`; given on the command
  line at all, the flag replaces the variable's values instead of adding to them.

A malformed variable is a usage error naming the variable, exactly like a malformed flag, for the
command it belongs to: the variables of other commands are not looked at.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
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


def _convert(action: argparse.Action, text: str) -> Any:
    """`text` as the flag would take it; ValueError saying why not."""
    try:
        value = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from exc
    if action.choices is not None and value not in action.choices:
        raise ValueError(f"expected one of {', '.join(map(str, action.choices))}")
    return value


@dataclass
class Pending:
    """What `apply` left for after parsing: repeatable flags' values and malformed variables, by
    the parser (subcommand) they belong to, so a variable only matters to the command it is for
    (WECHATY_EXPORTER_FORMAT=prometheus is `replay`'s, and no error for `explain`)."""

    repeated: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)


def apply(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> Pending:
    """Make every flag's variable its default; returns what `finish` needs once parsed."""
    pending = Pending()
    for owner, action in flags(parser):
        name = variable(action)
        text = environ.get(name)
        if text is None:
            continue
        try:
            if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
                word = text.strip().lower()
                if word not in TRUE | FALSE:
                    raise ValueError("expected one of 1, true, yes, on, 0, false, no, off")
                on = word in TRUE
                action.default = on if isinstance(action, argparse._StoreTrueAction) else not on
            elif isinstance(action, argparse._AppendAction):
                items = [item.strip() for item in text.split(SEPARATOR) if item.strip()]
                values = [_convert(action, item) for item in items]
                pending.repeated.setdefault(owner.prog, {})[action.dest] = values
            else:
                action.default = _convert(action, text)
        except ValueError as exc:
            pending.problems.setdefault(owner.prog, []).append(f"{name}={text!r}: {exc}")
    return pending


def finish(
    args: argparse.Namespace, pending: Pending, parser: argparse.ArgumentParser, prog: str
) -> None:
    """After parsing, for the command that runs (`prog`): a malformed variable is a usage error;
    repeatable flags not given on the command line take their variable's values."""
    for problem in pending.problems.get(prog, []):
        parser.error(problem)
    for dest, values in pending.repeated.get(prog, {}).items():
        if not getattr(args, dest, None):
            setattr(args, dest, list(values))
