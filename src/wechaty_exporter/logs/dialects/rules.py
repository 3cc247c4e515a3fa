"""Custom dialects: rules saying which lines of a bot's log are scan, login and logout events.

Pure: a rule set is parsed and compiled from plain data (the YAML of docs/dialects.md), and a
`RuleMatcher` turns lines into events. No I/O.

A rule is one regular expression in RE2 syntax, run on google-re2 (linear time in the line's
length, whatever the pattern: a rule is input too, and a hostile line must not stall the loop)::

    {event: scan|login|logout, match: REGEX, name: NAME, status: FIXED, no_qr: BOOL,
     then: {match: REGEX, within: N}}

- **Anchored**: a rule matches a whole line, never part of one, after ANSI escapes and a trailing
  CR are removed. It is tried on the line as written and after each wrapper of `structure`
  (pm2 prefixes, pm2 ``--time`` and ``docker -t`` dates), innermost first; pm2 JSON lines are
  parsed and each part of their message is a line. Rules are tried in order; the first that
  matches takes the line.
- **Groups** (named, ``(?P<name>...)``): ``qrcode``, ``status`` (scan), ``user`` (login,
  logout), ``reason`` (logout), ``time`` (any). One pair of surrounding quotes is removed from a
  value; an empty value, ``None`` or ``null`` is no value; a ``user`` written ``Contact<Name>``
  is ``Name``. ``status`` is a number (``2``), a name (``Waiting``, ``SCAN_STATUS_WAITING``,
  ``ScanStatus.Waiting``) or both (``Waiting(2)``, ``<ScanStatus.Waiting: 2>``): the number wins;
  outside 0..5 the line is no event. ``time`` holding a full date (``2026-11-25 10:00:00,123``,
  ISO 8601) stamps the event; else the wrapper's date, else the time the line was read.
- **status**: from the ``status`` group, or fixed by the rule's ``status`` key (number or name).
- **QR**: a scan whose status is Waiting(2) takes its QR from the ``qrcode`` group, unwrapped and
  checked against the allowlist (`qr.check_qr`) like any other: a QR that fails becomes a
  RejectedQr. ``no_qr: true`` declares a status line that never carries the QR: its Waiting scan
  says "logged out, waiting for a scan" without one.
- **then**: a two-line rule. The first line (``match``) opens an entry; the event is emitted when
  one of the next ``within`` lines (default 1) matches ``then.match``, with the groups of both
  lines (the time of the first). Lines in between are read as usual; if none matches, no event.
  A scan whose first line already says a status other than Waiting is emitted at once.

A dialect is ``{rules: [...], mode: instead|alongside, include: [profile, ...], description}``:
with ``instead`` (the default) only its rules read the file, so no chat line can trigger a
built-in dialect; with ``alongside`` the built-in detection reads the lines no rule took.
``include`` appends the rules of built-in profiles (`profiles`). Every problem of a rule set is
reported with its location (`parse_dialect`); nothing invalid is ever compiled half-way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import re2

from wechaty_exporter.logs.dialects.context import (
    STATUS_BY_NAME,
    STATUSES,
    DialectContext,
    text,
)
from wechaty_exporter.logs.dialects.patterns import (
    HINTS,
    Regex,
    block_prefilter,
    is_re2,
    options,
    required_literal,
    scan_pattern,
)
from wechaty_exporter.logs.dialects.structure import DATE_RE, When
from wechaty_exporter.logs.events import Event, Login, Logout, Scan, ScanStatus

__all__ = [
    "EVENTS",
    "GROUPS",
    "MODES",
    "Dialect",
    "Rule",
    "RuleMatcher",
    "Then",
    "is_re2",
    "parse_dialect",
    "parse_status",
]

EVENTS = ("scan", "login", "logout")
GROUPS: dict[str, tuple[str, ...]] = {
    "scan": ("qrcode", "status", "time"),
    "login": ("user", "time"),
    "logout": ("user", "reason", "time"),
}
MODES = ("instead", "alongside")
MAX_PATTERN = 4096  # characters of one rule's regex
MAX_RULES = 200  # rules of one dialect, includes aside
MAX_WITHIN = 100
_RULE_KEYS = ("event", "match", "name", "no_qr", "status", "then")
_DIALECT_KEYS = ("description", "include", "mode", "rules")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_NUMBER_RE = re.compile(r"\d+")
_WORD_RE = re.compile(r"[A-Za-z_]+")
_CONTACT_RE = re.compile(r"Contact(?:Self)?<(.*)>\Z", re.DOTALL)


@dataclass(frozen=True, slots=True, eq=False)
class Then:
    """The second line of a two-line rule."""

    match: str
    within: int
    regex: Regex


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One compiled rule; `regex` runs on UTF-8 bytes of a whole line."""

    name: str
    event: str
    match: str
    regex: Regex
    status: ScanStatus | None = None
    no_qr: bool = False
    then: Then | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Dialect:
    """A named rule set. `mode`: ``instead`` of the built-in detection, or ``alongside`` it
    (rules first; a line no rule takes goes to the built-ins). `prefilter` finds, in a block of
    bytes, the lines a rule could match (None: every line must be read).

    `literals`: for each rule's match and then.match, a run of characters every line it matches
    holds (`patterns.required_literal`); None when one has none. Then `prefilter.literal_search`
    finds, in a block, the lines that may hold one (`LineParser.skipper`)."""

    name: str
    rules: tuple[Rule, ...]
    mode: str = "instead"
    description: str = ""
    prefilter: Regex | None = None
    literals: tuple[str, ...] | None = None

    @property
    def instead(self) -> bool:
        return self.mode == "instead"


# -- reading rules -------------------------------------------------------------------------


def _compile(pattern: object, event: str, where: str, errors: list[str]) -> tuple[Regex, list[str]]:
    """A rule's regex compiled with re2, and its group names; problems go to `errors`."""
    if not isinstance(pattern, str) or not pattern:
        errors.append(f"{where}: expected a regular expression (a non-empty string)")
        return None, []
    if len(pattern) > MAX_PATTERN:
        errors.append(f"{where}: longer than {MAX_PATTERN} characters")
        return None, []
    try:
        regex = re2.compile(pattern, options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        hint = next((h for token, h in HINTS if token in pattern), None)
        if hint is None and re.search(r"\\[1-9]", pattern):
            hint = "RE2 has no backreferences"
        errors.append(
            f"{where}: not a valid RE2 regular expression ({reason})"
            + (f"; {hint}" if hint else "")
        )
        return None, []
    names, _ = scan_pattern(pattern)
    allowed = GROUPS[event]
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            errors.append(f"{where}: group {name!r} appears more than once")
        if name not in allowed:
            errors.append(
                f"{where}: unknown group {name!r} for a {event} rule (known: {', '.join(allowed)})"
            )
    if regex.fullmatch(b"") is not None:
        errors.append(f"{where}: matches an empty line; a rule must match a line's structure")
    return regex, names


def parse_status(value: str) -> ScanStatus | None:
    """A status as logged: a number, a name, or both (the number wins); None if it is none."""
    numbers = _NUMBER_RE.findall(value)
    if numbers:
        number = int(numbers[-1])
        return STATUSES[number] if number < len(STATUSES) else None
    words = _WORD_RE.findall(value)
    if not words:
        return None
    return STATUS_BY_NAME.get(words[-1].upper().removeprefix("SCAN_STATUS_"))


def _fixed_status(value: object, where: str, errors: list[str]) -> ScanStatus | None:
    status: ScanStatus | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        status = STATUSES[value] if 0 <= value < len(STATUSES) else None
    elif isinstance(value, str) and _WORD_RE.fullmatch(value.strip()):
        status = parse_status(value.strip())
    if status is None:
        names = ", ".join(s.name.title() for s in ScanStatus)
        errors.append(f"{where}: expected a scan status, 0 to 5 or a name ({names}); got {value!r}")
    return status


def _check_keys(
    body: Mapping[Any, Any], known: tuple[str, ...], where: str, errors: list[str]
) -> None:
    for key in body:
        if key not in known:
            errors.append(f"{where}.{key}: unknown key (known: {', '.join(known)})")


def _parse_rule(raw: object, where: str, default_name: str, errors: list[str]) -> Rule | None:
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping with event and match")
        return None
    before = len(errors)
    _check_keys(raw, _RULE_KEYS, where, errors)
    name = raw.get("name", default_name)
    if "name" in raw and (not isinstance(name, str) or not _NAME_RE.match(name)):
        errors.append(f"{where}.name: expected a name matching {_NAME_RE.pattern[:-2]}")
        name = default_name
    event = raw.get("event")
    if event not in EVENTS:
        errors.append(f"{where}.event: expected one of {', '.join(EVENTS)}, got {event!r}")
        return None
    if "match" not in raw:
        errors.append(f"{where}.match: required")
        return None
    regex, names = _compile(raw["match"], event, f"{where}.match", errors)
    then: Then | None = None
    then_names: list[str] = []
    if "then" in raw:
        then, then_names = _parse_then(raw["then"], event, f"{where}.then", errors)
        for group in set(names) & set(then_names):
            errors.append(f"{where}.then.match: group {group!r} is also in match; keep one")
    groups = set(names) | set(then_names)
    status: ScanStatus | None = None
    no_qr = raw.get("no_qr", False)
    if not isinstance(no_qr, bool):
        errors.append(f"{where}.no_qr: expected true or false")
        no_qr = False
    if event != "scan":
        for key in ("status", "no_qr"):
            if key in raw:
                errors.append(f"{where}.{key}: only scan rules take it")
    else:
        if "status" in raw:
            status = _fixed_status(raw["status"], f"{where}.status", errors)
            if "status" in groups:
                errors.append(f"{where}.status: fixed here and captured by a group; keep one")
        elif "status" not in groups:
            errors.append(
                f"{where}: a scan rule needs a 'status' group (in match or then.match) "
                "or a fixed status"
            )
        may_wait = "status" not in raw or status is ScanStatus.WAITING
        if no_qr and "qrcode" in groups:
            errors.append(f"{where}.no_qr: the rule has a 'qrcode' group")
        elif may_wait and not no_qr and "qrcode" not in groups:
            errors.append(
                f"{where}: a scan rule that can say Waiting(2) needs a 'qrcode' group (in match "
                "or then.match), or no_qr: true for a status line that never carries the QR"
            )
    if len(errors) > before or regex is None:
        return None
    return Rule(str(name), event, raw["match"], regex, status, no_qr, then)


def _parse_then(
    raw: object, event: str, where: str, errors: list[str]
) -> tuple[Then | None, list[str]]:
    if not isinstance(raw, dict):
        errors.append(f"{where}: expected a mapping with match (and within)")
        return None, []
    _check_keys(raw, ("match", "within"), where, errors)
    within = raw.get("within", 1)
    if isinstance(within, bool) or not isinstance(within, int) or not 1 <= within <= MAX_WITHIN:
        errors.append(f"{where}.within: expected a number of lines from 1 to {MAX_WITHIN}")
        within = 1
    if "match" not in raw:
        errors.append(f"{where}.match: required")
        return None, []
    regex, names = _compile(raw["match"], event, f"{where}.match", errors)
    if regex is None:
        return None, names
    return Then(raw["match"], within, regex), names


def parse_dialect(
    name: str,
    body: object,
    where: str,
    errors: list[str],
    includable: Mapping[str, Dialect] | None = None,
) -> Dialect | None:
    """``{rules: [...], mode, include, description}`` → a compiled Dialect; every problem, with
    its location under `where`, goes to `errors` (then None). `includable`: the dialects
    ``include`` may name (the built-in profiles), whose rules follow the dialect's own."""
    if not isinstance(body, dict):
        errors.append(f"{where}: expected a mapping with a 'rules' list")
        return None
    before = len(errors)
    _check_keys(body, _DIALECT_KEYS, where, errors)
    mode = body.get("mode", "instead")
    if mode not in MODES:
        errors.append(f"{where}.mode: expected one of {', '.join(MODES)}, got {mode!r}")
    description = body.get("description", "")
    if not isinstance(description, str):
        errors.append(f"{where}.description: expected a string")
        description = ""
    rules: list[Rule] = []
    raw_rules = body.get("rules", [])
    if not isinstance(raw_rules, list):
        errors.append(f"{where}.rules: expected a list of rules")
        raw_rules = []
    if len(raw_rules) > MAX_RULES:
        errors.append(f"{where}.rules: more than {MAX_RULES} rules")
        raw_rules = raw_rules[:MAX_RULES]
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, f"{where}.rules[{i}]", f"rules[{i}]", errors)
        if rule is not None:
            if any(r.name == rule.name for r in rules):
                errors.append(f"{where}.rules[{i}].name: {rule.name!r} names an earlier rule")
            rules.append(rule)
    include = body.get("include", [])
    if isinstance(include, str):
        include = [include]
    if not isinstance(include, list):
        errors.append(f"{where}.include: expected a list of built-in dialect names")
        include = []
    known = includable or {}
    for i, other in enumerate(include):
        if isinstance(other, str) and other in known:
            rules.extend(known[other].rules)
        else:
            names = ", ".join(known) or "none"
            errors.append(f"{where}.include[{i}]: not a built-in rule set (known: {names})")
    if not raw_rules and not include:
        errors.append(f"{where}.rules: required (a non-empty list), or include")
    if len(errors) > before:
        return None
    patterns = [p for r in rules for p in (r.match, r.then.match if r.then else None) if p]
    found = [required_literal(p) for p in patterns]
    literals = tuple(dict.fromkeys(lit for lit in found if lit)) if all(found) else None
    return Dialect(
        name, tuple(rules), str(mode), description, block_prefilter(patterns), literals or None
    )


# -- matching lines ------------------------------------------------------------------------


def _value(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    value = raw.decode("utf-8", "surrogatepass").strip(" \t")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if value in ("", "None", "null"):
        return None
    return value


def _user(value: str | None) -> str | None:
    if value is not None and (m := _CONTACT_RE.match(value)) is not None:
        return m.group(1) or None
    return value


Groups = dict[str, bytes | None]


class RuleMatcher:
    """One per LineParser: a dialect's rules, and the two-line entry in progress."""

    __slots__ = ("_dialect", "_pending", "_quick", "entry_lines", "lines", "note")

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._quick = dialect.prefilter
        # (rule, first line's groups, its wrapper date, its physical line, lines left)
        self._pending: tuple[Rule, Groups, When, int, int] | None = None
        self.lines = 0  # physical lines seen (the LineParser counts them)
        self.entry_lines = 1  # lines of the entry the last match completed
        self.note: str | None = None  # why the last line a rule took gave no event

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def line(
        self,
        line: str,
        when: When,
        now: float,
        ctx: DialectContext,
        out: list[Event],
        wrappers: Callable[[str, When], list[tuple[int, When]]],
    ) -> str | None:
        """Events of one line (ANSI escapes and CR removed); returns the name of the rule that
        took it (its event emitted, an entry opened or completed), else None.

        `wrappers` gives the positions where the line may start after its wrappers (0 first),
        with the date each one carries."""
        self.entry_lines = 1
        self.note = None
        data = line.encode("utf-8", "surrogatepass")
        pending = self._pending
        if pending is None and self._quick is not None and self._quick.search(data) is None:
            return None
        starts = wrappers(line, when)
        offsets = [(len(line[:pos].encode("utf-8", "surrogatepass")), w) for pos, w in starts]
        offsets.reverse()  # innermost first
        if pending is not None:
            rule, first, first_when, first_line, left = pending
            then = rule.then
            assert then is not None
            for offset, _ in offsets:
                m = then.regex.fullmatch(data[offset:] if offset else data)
                if m is not None:
                    self._pending = None
                    self.entry_lines = self.lines - first_line + 1
                    self._emit(rule, first | m.groupdict(), first_when, now, ctx, out)
                    return rule.name
            if left > 1:
                self._pending = (rule, first, first_when, first_line, left - 1)
            else:
                self._pending = None
                self.note = (
                    f"rule {rule.name}: no line matching then.match within {then.within} "
                    f"line(s) of its first line; no event"
                )
        for offset, w in offsets:
            text_at = data[offset:] if offset else data
            for rule in self._dialect.rules:
                m = rule.regex.fullmatch(text_at)
                if m is None:
                    continue
                groups: Groups = m.groupdict()
                if rule.then is not None and self._waits(rule, groups):
                    self._pending = (rule, groups, w, self.lines, rule.then.within)
                else:
                    self._emit(rule, groups, w, now, ctx, out)
                return rule.name
        return None

    @staticmethod
    def _waits(rule: Rule, groups: Groups) -> bool:
        """Whether a first line needs its then-line: always, except a scan it already shows
        to be in a status other than Waiting (which carries no QR)."""
        if rule.event != "scan":
            return True
        status = rule.status
        if status is None and "status" in groups:
            raw = _value(groups["status"])
            status = parse_status(raw) if raw is not None else None
        return status is None or status is ScanStatus.WAITING

    def _emit(
        self,
        rule: Rule,
        groups: Groups,
        when: When,
        now: float,
        ctx: DialectContext,
        out: list[Event],
    ) -> None:
        stamp = _value(groups.get("time"))
        date = DATE_RE.match(stamp) if stamp else None
        at = ctx.at(date if date is not None else when, now)
        if rule.event == "login":
            out.append(Login(at, text(_user(_value(groups.get("user"))))))
            return
        if rule.event == "logout":
            user = text(_user(_value(groups.get("user"))))
            out.append(Logout(at, user, text(_value(groups.get("reason")))))
            return
        status = rule.status
        if status is None:
            raw = _value(groups.get("status"))
            status = parse_status(raw) if raw is not None else None
            if status is None:
                self.note = f"rule {rule.name}: status {raw!r} is not a scan status; no event"
                return
        if status is not ScanStatus.WAITING:
            out.append(Scan(at, status))
        elif rule.no_qr:
            out.append(Scan(at, ScanStatus.WAITING))
        else:
            out.append(ctx.waiting(at, _value(groups.get("qrcode")), False))
