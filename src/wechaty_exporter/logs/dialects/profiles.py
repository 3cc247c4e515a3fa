"""The built-in dialects, by name: `auto` and the profiles written in the rule form of `rules`.

``auto`` (the default) is `LineParser`'s own detection: every family of `brolog`, `pywechaty` and
`selflog`, in every wrapper of `structure`. It stays hand-written (its `feed_block` prefilter
makes a replay run at the speed of reading), and the profiles below say in rules what it reads,
so `wechaty-exporter dialects` can print them as a starting point for a bot's own rules
(tests/logs/test_rules.py checks that they read the sample logs as `auto` does). A bot may also
name a profile (``dialect: brolog``) to read only that family.

Not in rule form: the self-log (a JSON body, parsed as JSON) and error lines (``ERR``, ``ERROR``:
rules say scan, login and logout). ``ding-dong`` is the console output of Wechaty's bundled
ding-dong example (``console.info``, no level or prefix): opt-in only, never auto-detected, since
bare text like ``Bob login`` is also what any chat line can print.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wechaty_exporter.logs.dialects.rules import Dialect, parse_dialect

__all__ = ["AUTO", "PROFILES", "PROFILE_SOURCES", "builtin_names", "render_text"]

AUTO = "auto"
_HMS = r"\d\d:\d\d:\d\d"
_BROLOG = rf"(?P<time>{_HMS}) +(?:ERR|WARN|INFO|VERB|SILL) +"
_PY = r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - Wechaty - [A-Z]+ - receive "
_JSON_STR = r'"(?:[^"\\]|\\.)*"'  # a JSON string
# A JSON-stringified Contact, up to the name in its payload (the first key "name" there).
_JSON_NAME = rf'\{{.*?"payload":\{{(?:[^{{}}]*?,)?"name":(?P<user>{_JSON_STR})'
_PY_STR = r"""None|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*""" + '"'  # a Python str repr

# YAML-shaped, exactly as `dialects:` in a config file takes them.
PROFILE_SOURCES: dict[str, dict[str, Any]] = {
    "brolog": {
        "description": "TypeScript Wechaty's brolog lines: HH:MM:SS LEVEL Prefix message",
        "rules": [
            {
                "name": "onScan",
                "event": "scan",
                "match": _BROLOG
                + r"\S+ onScan: [A-Za-z]+\((?P<status>\d{1,3})\)(?: - (?P<qrcode>.*))?",
            },
            {
                "name": "contact-login",
                "event": "login",
                "match": _BROLOG + r"\S+ Contact(?:Self)?<(?P<user>.*)> login",
            },
            {
                "name": "contact-logout",
                "event": "logout",
                "match": _BROLOG
                + r"\S+ Contact(?:Self)?<(?P<user>.*)> logout(?:[ :,] ?(?P<reason>.*))?",
            },
        ],
    },
    "eventlogger": {
        "description": "wechaty-plugin-contrib's EventLogger, after any brolog prefix",
        "rules": [
            {
                "name": "scan",
                "event": "scan",
                "match": _BROLOG
                + r"(?:\S+ )?EventLogger scan: (?P<qrcode>.*?),(?P<status>\d{1,3}),.*",
            },
            {
                "name": "login",
                "event": "login",
                "match": _BROLOG + r"(?:\S+ )?EventLogger login: Contact(?:Self)?<(?P<user>.*)>",
            },
            {
                "name": "logout",
                "event": "logout",
                "match": _BROLOG + r"(?:\S+ )?EventLogger logout: "
                r"Contact(?:Self)?<(?P<user>.*?)>(?:,(?P<reason>.*))?",
            },
            # 1.12 on: the event's arguments as JSON; the account is the contact's payload.name
            {
                "name": "scan-json",
                "event": "scan",
                "match": _BROLOG + r"\S+ EventLoggerPlugin\(\) scan: "
                rf"\[(?P<qrcode>{_JSON_STR}),(?P<status>\d{{1,3}})[,\]].*",
            },
            {
                "name": "login-json",
                "event": "login",
                "match": _BROLOG + r"\S+ EventLoggerPlugin\(\) login: "
                rf"\[{_JSON_NAME}.*\]",
            },
            {
                "name": "logout-json",
                "event": "logout",
                "match": _BROLOG + r"\S+ EventLoggerPlugin\(\) logout: "
                rf"\[{_JSON_NAME}.*\}}(?:,(?P<reason>{_JSON_STR}|null))?\]",
            },
        ],
    },
    "qrcode-terminal": {
        "description": "wechaty-plugin-contrib's QRCodeTerminal: a status line, then the URL line",
        "rules": [
            {
                "name": "status-then-url",
                "event": "scan",
                "match": _BROLOG + r"(?:\S+ )?QRCodeTerminal "
                r"(?:Login QR Code Status|onScan): [A-Za-z]+\((?P<status>\d{1,3})\)",
                "then": {"match": r"QR Code Image URL: (?P<qrcode>.*)", "within": 1},
            },
        ],
    },
    "python-wechaty": {
        "description": "python-wechaty's logging lines of logger Wechaty (receive <event> event)",
        "rules": [
            {
                "name": "scan",
                "event": "scan",
                "match": _PY + r"<scan> event <EventScanPayload\(status=(?P<status>"
                r"<ScanStatus\.\w+: \d{1,3}>|\d{1,3}|ScanStatus\.\w+), "
                rf"qrcode=(?P<qrcode>{_PY_STR})(?:, data=.*)?\)>",
            },
            {
                "name": "login",
                "event": "login",
                "match": _PY
                + rf"<login> event <EventLoginPayload\(contact_id=(?P<user>{_PY_STR})\)>",
            },
            {
                "name": "logout",
                "event": "logout",
                "match": _PY
                + rf"<logout> event <EventLogoutPayload\(contact_id=(?P<user>{_PY_STR})"
                rf"(?:, data=(?P<reason>{_PY_STR}))?\)>",
            },
        ],
    },
    "ding-dong": {
        "description": "console lines of Wechaty's ding-dong example (opt-in, never detected)",
        "rules": [
            {
                "name": "onScan",
                "event": "scan",
                "match": r"onScan: [A-Za-z]+\((?P<status>\d{1,3})\)(?: - (?P<qrcode>\S+))?",
            },
            {"name": "login", "event": "login", "match": r"(?P<user>.+) login"},
            {"name": "logout", "event": "logout", "match": r"(?P<user>.+) (?:logged out|logout)"},
        ],
    },
}


def _compile_profiles() -> dict[str, Dialect]:
    out: dict[str, Dialect] = {}
    for name, body in PROFILE_SOURCES.items():
        errors: list[str] = []
        dialect = parse_dialect(name, body, f"built-in {name}", errors)
        if dialect is None:  # pragma: no cover - a broken built-in fails every test at import
            raise AssertionError("; ".join(errors))
        out[name] = dialect
    return out


PROFILES: Mapping[str, Dialect] = _compile_profiles()


def builtin_names() -> tuple[str, ...]:
    """Every name `bots.<name>.dialect` accepts besides the config's own dialects."""
    return (AUTO, *PROFILES)


_AUTO_TEXT = (
    "auto (the default)\n"
    "  The built-in detection: brolog (TypeScript Wechaty), EventLogger, QRCodeTerminal,\n"
    "  python-wechaty and the self-log, in any wrapper (pm2 prefixes, pm2 --time, pm2 JSON,\n"
    "  docker -t, ANSI colours, CRLF); ERR/ERROR lines are counted as errors. The profiles\n"
    "  below say in rules what it reads (ding-dong excepted: opt-in only).\n"
)


def render_text(dialects: Mapping[str, Dialect] = PROFILES) -> str:
    """The dialects for a terminal: each one's rules, what they match and take."""
    parts = [_AUTO_TEXT]
    for name, dialect in dialects.items():
        lines = [f"{name}  ({dialect.description})" if dialect.description else name]
        for rule in dialect.rules:
            fixed = f", status {rule.status.name.title()}" if rule.status is not None else ""
            no_qr = ", no QR" if rule.no_qr else ""
            lines.append(f"  {rule.event:<7}{rule.name}{fixed}{no_qr}")
            lines.append(f"    match: {rule.match}")
            if rule.then is not None:
                lines.append(f"    then (within {rule.then.within}): {rule.then.match}")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
