"""The receiver's settings: the `receiver:` section of the config → one frozen object.

    receiver:
      listen_address: "127.0.0.1:9840"
      exporter_url: "http://127.0.0.1:9839"   # the default for bots not in `exporters`
      exporter_token_file: /etc/wechaty-exporter/qr-token   # the exporter's QR bearer token
      exporter_timeout: 5s
      exporters:                   # optional, per bot: the exporter that watches it (many hosts)
        alice: {url: "http://10.0.0.5:9839", token_file: /etc/wechaty-exporter/alice-qr-token}
        bob: {url: "http://10.0.0.6:9839"}
      admins:                      # who is told about each bot (contact id, weixin, name or alias)
        alice: [wxid_admin1]
        bob: [wxid_admin1, "Carol"]
      fallback_admins: [wxid_admin1]   # alerts without a bot label or about a bot not listed
                                       # (default: every admin above)
      auth:                        # optional; the same secret Alertmanager sends
        bearer_token_file: /etc/wechaty-exporter/webhook-token
        # or: basic: {username: alertmanager, password_file: /etc/wechaty-exporter/webhook-pw}
      max_body_bytes: 1048576
      dedupe_ttl: 1h               # repeats / HA duplicates of an alert are dropped this long
      rate_limit: {burst: 6, per_hour: 30, max_hold: 5s}   # per admin contact
      qr_wait: 20s                 # how long to wait for a QR that is not there yet
      qr_poll_interval: 1s
      qr_alerts: [WechatyBotLoggedOut]   # alert names that carry a login QR
      timezone: Asia/Shanghai      # times in messages
      messenger:
        type: outbox               # outbox | webhook | wechaty
        path: /var/lib/wechaty-exporter/outbox.jsonl   # default <state-dir>/outbox.jsonl
        # webhook: url: https://..., token_file: ..., timeout: 10s
        # wechaty: further keys are passed to the wechaty messenger as options
      login_test:                  # optional, per bot: proves messages flow once it is back
        bob: {to: wxid_bob_self, text: "login test: messages reach bob"}

Secrets are read from files at load time and never accepted as YAML literals.

With `exporters` and no `exporter_url` set (in the file or by `--exporter-url`), there is no
default exporter: every bot in `admins` must be listed, or loading fails naming the bot (so does
`apply_receiver_flags`, for bots `--admin` adds); a bot reached only through `fallback_admins`
then has no exporter to fetch its QR from.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from wechaty_exporter.settings import (
    BOT_NAME,
    ConfigError,
    check_keys,
    format_address,
    parse_bot_key,
    parse_duration,
    parse_listen_address,
    parse_secret_file,
)

DEFAULT_LISTEN_HOST = "127.0.0.1"
DEFAULT_LISTEN_PORT = 9840
DEFAULT_EXPORTER_URL = "http://127.0.0.1:9839"
MESSENGER_KINDS = ("outbox", "webhook", "wechaty")
MessengerKind = Literal["outbox", "webhook", "wechaty"]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """What Alertmanager must present on POST /alerts."""

    scheme: Literal["bearer", "basic"]
    secret: str = field(repr=False)  # the bearer token or the basic-auth password
    username: str = ""  # basic only


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """Token bucket per admin contact: `burst` messages at once, refilled at `per_hour`.

    A send that would have to wait longer than `max_hold` seconds for tokens is not held: the
    receiver answers 503 and Alertmanager's retry delivers it later.
    """

    burst: int = 6
    per_hour: float = 30.0
    max_hold: float = 5.0


@dataclass(frozen=True, slots=True)
class LoginTestSettings:
    """A text sent to the rescued bot's own account once it is back online."""

    to: str
    text: str


@dataclass(frozen=True, slots=True)
class ExporterTarget:
    """One exporter the receiver asks for login QRs: its URL and QR bearer token (from a file)."""

    url: str
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class MessengerSettings:
    kind: MessengerKind = "outbox"
    path: Path | None = None  # outbox; None → <state-dir>/outbox.jsonl
    url: str | None = None  # webhook
    token: str | None = field(default=None, repr=False)  # webhook bearer token (from a file)
    timeout: float = 10.0  # webhook
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # wechaty


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """Everything `receiver` (and the receiver inside `bot`) needs, validated."""

    listen_host: str = DEFAULT_LISTEN_HOST
    listen_port: int = DEFAULT_LISTEN_PORT
    exporter_url: str = DEFAULT_EXPORTER_URL
    exporter_url_set: bool = False  # given in the file or by --exporter-url, not the default
    exporter_token: str | None = field(default=None, repr=False)
    exporter_timeout: float = 5.0
    exporters: tuple[tuple[str, ExporterTarget], ...] = ()  # (bot, its exporter), config order
    admins: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (bot, (contact, ...)), config order
    fallback_admins: tuple[str, ...] = ()
    auth: AuthSettings | None = None
    max_body_bytes: int = 1 << 20
    dedupe_ttl: float = 3600.0
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    qr_wait: float = 20.0
    qr_poll_interval: float = 1.0
    qr_alerts: tuple[str, ...] = ("WechatyBotLoggedOut",)
    timezone: str = "UTC"
    messenger: MessengerSettings = field(default_factory=MessengerSettings)
    login_tests: tuple[tuple[str, LoginTestSettings], ...] = ()

    @property
    def listen_address(self) -> str:
        return format_address(self.listen_host, self.listen_port)

    def admins_for(self, bot: str | None) -> tuple[str, ...]:
        """Who is told about `bot`: its admins; for an alert without a bot label or about a bot
        not listed, the fallback admins, or when none are set, every admin."""
        if bot is not None:
            for name, contacts in self.admins:
                if name == bot:
                    return contacts
        if self.fallback_admins:
            return self.fallback_admins
        return tuple(dict.fromkeys(c for _, contacts in self.admins for c in contacts))

    def login_test_for(self, bot: str) -> LoginTestSettings | None:
        return dict(self.login_tests).get(bot)

    @property
    def default_exporter(self) -> ExporterTarget | None:
        """The exporter of bots not in `exporters`: `exporter_url` (and its token), unless
        `exporters` is given and `exporter_url` was not set, in which case there is none."""
        if self.exporters and not self.exporter_url_set:
            return None
        return ExporterTarget(self.exporter_url, self.exporter_token)

    def exporter_for(self, bot: str) -> ExporterTarget | None:
        """The exporter that watches `bot` (None: no exporter is configured for it)."""
        for name, target in self.exporters:
            if name == bot:
                return target
        return self.default_exporter

    def missing_exporters(self) -> tuple[str, ...]:
        """The bots with admins but no exporter to fetch their QR from (config order)."""
        return tuple(bot for bot, _ in self.admins if self.exporter_for(bot) is None)


_KEYS = {
    "listen_address", "exporter_url", "exporter_token_file", "exporter_timeout", "exporters",
    "admins", "fallback_admins", "auth", "max_body_bytes", "dedupe_ttl", "rate_limit", "qr_wait",
    "qr_poll_interval", "qr_alerts", "timezone", "messenger", "login_test",
}  # fmt: skip


def parse_receiver_settings(
    raw: Mapping[str, Any], errors: list[str], where: str = "receiver"
) -> ReceiverSettings | None:
    """Validate the `receiver:` section; append every problem to `errors` (None if any)."""
    before = len(errors)
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping")
        return None
    check_keys(raw, _KEYS, where, errors)
    changes: dict[str, Any] = {}
    if "listen_address" in raw:
        parsed = parse_listen_address(raw["listen_address"], f"{where}.listen_address", errors)
        if parsed:
            changes["listen_host"], changes["listen_port"] = parsed
    if "exporter_url" in raw:
        url = _http_url(raw["exporter_url"], f"{where}.exporter_url", errors)
        if url:
            changes["exporter_url"] = url
        changes["exporter_url_set"] = True
    if "exporter_token_file" in raw:
        changes["exporter_token"] = parse_secret_file(
            raw["exporter_token_file"], f"{where}.exporter_token_file", errors
        )
    for key in ("exporter_timeout", "dedupe_ttl", "qr_wait", "qr_poll_interval"):
        if key in raw:
            seconds = parse_duration(raw[key], f"{where}.{key}", errors)
            if seconds is not None:
                changes[key] = seconds
    if "exporters" in raw:
        changes["exporters"] = _exporters(raw["exporters"], f"{where}.exporters", errors)
    if "admins" in raw:
        changes["admins"] = _admins(raw["admins"], f"{where}.admins", errors)
    if "fallback_admins" in raw:
        changes["fallback_admins"] = _contacts(
            raw["fallback_admins"], f"{where}.fallback_admins", errors
        )
    if "auth" in raw:
        changes["auth"] = _auth(raw["auth"], f"{where}.auth", errors)
    if "max_body_bytes" in raw:
        cap = raw["max_body_bytes"]
        if isinstance(cap, int) and not isinstance(cap, bool) and 1024 <= cap <= 64 << 20:
            changes["max_body_bytes"] = cap
        else:
            errors.append(
                f"{where}.max_body_bytes: must be an integer from 1024 to 67108864, got {cap!r}"
            )
    if "rate_limit" in raw:
        changes["rate_limit"] = _rate_limit(raw["rate_limit"], f"{where}.rate_limit", errors)
    if "qr_alerts" in raw:
        changes["qr_alerts"] = _contacts(raw["qr_alerts"], f"{where}.qr_alerts", errors)
    if "timezone" in raw:
        tz = raw["timezone"]
        try:
            if not isinstance(tz, str):
                raise ValueError
            zoneinfo.ZoneInfo(tz)
            changes["timezone"] = tz
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            errors.append(f"{where}.timezone: not a known IANA time zone: {tz!r}")
    if "messenger" in raw:
        changes["messenger"] = _messenger(raw["messenger"], f"{where}.messenger", errors)
    if "login_test" in raw:
        changes["login_tests"] = _login_tests(raw["login_test"], f"{where}.login_test", errors)
    if isinstance(raw.get("exporters"), Mapping) and raw["exporters"] and "exporter_url" not in raw:
        listed = set(raw["exporters"])  # a listed bot with a bad entry is reported there
        unlisted = [bot for bot, _ in changes.get("admins", ()) if bot not in listed]
        errors.extend(missing_exporter_problems(unlisted, where))
    if len(errors) > before:
        return None
    return replace(ReceiverSettings(), **changes)


def missing_exporter_problems(bots: Iterable[str], where: str = "receiver") -> list[str]:
    """One problem per bot with admins but no exporter (`ReceiverSettings.missing_exporters`)."""
    return [
        f"{where}.exporters: bot {bot!r} has admins but no exporter to fetch its QR from;"
        f" add {bot} to {where}.exporters or set {where}.exporter_url (the default for bots"
        " not listed)"
        for bot in bots
    ]


def parse_admin_flag(value: str) -> tuple[str, str]:
    """`--admin BOT=CONTACT` → (BOT, CONTACT); raises ValueError with a clear reason."""
    bot, sep, contact = value.partition("=")
    if not sep or not bot or not contact:
        raise ValueError(f"--admin expects BOT=CONTACT, got {value!r}")
    if not BOT_NAME.match(bot):
        raise ValueError(f"--admin {value!r}: bot name must match {BOT_NAME.pattern}")
    return bot, contact


def parse_admin_flags(values: Iterable[str]) -> list[tuple[str, str]]:
    """Every `--admin BOT=CONTACT` flag; raises ConfigError listing every bad one."""
    admins, problems = [], []
    for value in values:
        try:
            admins.append(parse_admin_flag(value))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(problems, "flags")
    return admins


def apply_receiver_flags(
    settings: ReceiverSettings,
    *,
    listen: str | None = None,
    exporter_url: str | None = None,
    admins: Iterable[tuple[str, str]] = (),
    outbox: str | Path | None = None,
) -> ReceiverSettings:
    """Flags override the file. `--admin` flags for a bot replace that bot's configured admins;
    `--outbox PATH` selects the outbox messenger writing to PATH; `--exporter-url` is the
    default exporter (as `exporter_url` in the file). A bot with admins and no exporter is an
    error. Raises ConfigError."""
    errors: list[str] = []
    changes: dict[str, Any] = {}
    if listen is not None:
        parsed = parse_listen_address(listen, "--web.listen-address", errors)
        if parsed:
            changes["listen_host"], changes["listen_port"] = parsed
    if exporter_url is not None:
        url = _http_url(exporter_url, "--exporter-url", errors)
        if url:
            changes["exporter_url"] = url
            changes["exporter_url_set"] = True
    flagged: dict[str, list[str]] = {}
    for bot, contact in admins:
        if not BOT_NAME.match(bot):
            errors.append(f"--admin {bot}={contact}: bot name must match {BOT_NAME.pattern}")
        elif contact not in flagged.setdefault(bot, []):
            flagged[bot].append(contact)
    if flagged:
        merged = dict(settings.admins)
        merged.update({bot: tuple(contacts) for bot, contacts in flagged.items()})
        changes["admins"] = tuple(merged.items())
    if outbox is not None:
        changes["messenger"] = MessengerSettings(kind="outbox", path=Path(outbox))
    if errors:
        raise ConfigError(errors, "flags")
    result = replace(settings, **changes)
    missing = result.missing_exporters()
    if missing:
        raise ConfigError(
            [
                f"no exporter for bot {bot!r}: add it to receiver.exporters or give"
                " --exporter-url (the default exporter)"
                for bot in missing
            ],
            "flags",
        )
    return result


# --- pieces ------------------------------------------------------------------------------------


def _http_url(value: object, where: str, errors: list[str]) -> str | None:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.netloc:
            return value.rstrip("/")
    errors.append(f"{where}: expected an http(s) URL, got {value!r}")
    return None


def _contacts(value: object, where: str, errors: list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        errors.append(f"{where}: must be a list of strings, got {value!r}")
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            errors.append(f"{where}[{i}]: must be a non-empty string, got {item!r}")
        elif item not in out:
            out.append(item)
    return tuple(out)


def _admins(
    value: object, where: str, errors: list[str]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping of bot name to a list of contacts")
        return ()
    out: list[tuple[str, tuple[str, ...]]] = []
    for bot, contacts in value.items():
        if parse_bot_key(bot, where, errors) is None:
            continue
        parsed = _contacts(contacts, f"{where}.{bot}", errors)
        if contacts == []:
            errors.append(f"{where}.{bot}: must name at least one contact")
        out.append((bot, parsed))
    return tuple(out)


def _exporters(
    value: object, where: str, errors: list[str]
) -> tuple[tuple[str, ExporterTarget], ...]:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping of bot name to {{url, token_file}}")
        return ()
    out: list[tuple[str, ExporterTarget]] = []
    for bot, spec in value.items():
        if parse_bot_key(bot, where, errors) is None:
            continue
        here = f"{where}.{bot}"
        if not isinstance(spec, Mapping):
            errors.append(f"{here}: must be a mapping with url (and token_file)")
            continue
        check_keys(spec, _EXPORTER_KEYS, here, errors)  # a literal token: is told to use token_file
        if "url" not in spec:
            errors.append(f"{here}.url: required (the exporter that watches {bot})")
            url = None
        else:
            url = _http_url(spec["url"], f"{here}.url", errors)
        token = None
        if "token_file" in spec:
            token = parse_secret_file(spec["token_file"], f"{here}.token_file", errors)
            if token is None:
                continue
        if url is not None:
            out.append((bot, ExporterTarget(url=url, token=token)))
    return tuple(out)


_EXPORTER_KEYS = ("url", "token_file")


def _auth(value: object, where: str, errors: list[str]) -> AuthSettings | None:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping with bearer_token_file or basic")
        return None
    check_keys(value, ("bearer_token_file", "basic"), where, errors)
    if ("bearer_token_file" in value) == ("basic" in value):
        errors.append(f"{where}: set exactly one of bearer_token_file and basic")
        return None
    if "bearer_token_file" in value:
        token = parse_secret_file(value["bearer_token_file"], f"{where}.bearer_token_file", errors)
        return AuthSettings("bearer", token) if token else None
    basic = value["basic"]
    if not isinstance(basic, Mapping):
        errors.append(f"{where}.basic: must be a mapping with username and password_file")
        return None
    check_keys(basic, ("username", "password_file"), f"{where}.basic", errors)
    username = basic.get("username")
    if not isinstance(username, str) or not username or ":" in username:
        errors.append(f"{where}.basic.username: must be a non-empty string without ':'")
    password = None
    if "password_file" in basic:
        password = parse_secret_file(basic["password_file"], f"{where}.basic.password_file", errors)
    elif "password" not in basic:  # a literal password is reported once, by check_keys
        errors.append(f"{where}.basic.password_file: required")
    if isinstance(username, str) and username and ":" not in username and password:
        return AuthSettings("basic", password, username=username)
    return None


def _rate_limit(value: object, where: str, errors: list[str]) -> RateLimitSettings:
    default = RateLimitSettings()
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping with burst, per_hour, max_hold")
        return default
    check_keys(value, ("burst", "per_hour", "max_hold"), where, errors)
    changes: dict[str, Any] = {}
    burst = value.get("burst", default.burst)
    if isinstance(burst, int) and not isinstance(burst, bool) and 2 <= burst <= 1000:
        changes["burst"] = burst
    else:  # a rescue is a text and an image, which go out together
        errors.append(f"{where}.burst: must be an integer from 2 to 1000, got {burst!r}")
    per_hour = value.get("per_hour", default.per_hour)
    if isinstance(per_hour, int | float) and not isinstance(per_hour, bool) and per_hour > 0:
        changes["per_hour"] = float(per_hour)
    else:
        errors.append(f"{where}.per_hour: must be a positive number, got {per_hour!r}")
    if "max_hold" in value:
        hold = value["max_hold"]
        if hold == 0 or hold == "0s":
            changes["max_hold"] = 0.0
        else:
            seconds = parse_duration(hold, f"{where}.max_hold", errors)
            if seconds is not None:
                changes["max_hold"] = seconds
    return replace(default, **changes)


def _messenger(value: object, where: str, errors: list[str]) -> MessengerSettings | None:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping with a type ({', '.join(MESSENGER_KINDS)})")
        return None
    kind = value.get("type")
    if kind not in MESSENGER_KINDS:
        errors.append(f"{where}.type: must be one of {', '.join(MESSENGER_KINDS)}, got {kind!r}")
        return None
    if kind == "outbox":
        check_keys(value, ("type", "path"), where, errors)
        path = value.get("path")
        if path is not None and (not isinstance(path, str) or not path):
            errors.append(f"{where}.path: must be a file path, got {path!r}")
            return None
        return MessengerSettings(kind="outbox", path=Path(path) if path else None)
    if kind == "webhook":
        check_keys(value, ("type", "url", "token_file", "timeout"), where, errors)
        url = _http_url(value.get("url"), f"{where}.url", errors)
        token = None
        if "token_file" in value:
            token = parse_secret_file(value["token_file"], f"{where}.token_file", errors)
        timeout = 10.0
        if "timeout" in value:
            timeout = parse_duration(value["timeout"], f"{where}.timeout", errors) or timeout
        return MessengerSettings(kind="webhook", url=url, token=token, timeout=timeout)
    options = {k: v for k, v in value.items() if k != "type"}
    return MessengerSettings(kind="wechaty", options=MappingProxyType(options))


def _login_tests(
    value: object, where: str, errors: list[str]
) -> tuple[tuple[str, LoginTestSettings], ...]:
    if not isinstance(value, Mapping):
        errors.append(f"{where}: must be a mapping of bot name to {{to, text}}")
        return ()
    out: list[tuple[str, LoginTestSettings]] = []
    for bot, spec in value.items():
        if parse_bot_key(bot, where, errors) is None:
            continue
        here = f"{where}.{bot}"
        if not isinstance(spec, Mapping):
            errors.append(f"{here}: must be a mapping with to and text")
            continue
        check_keys(spec, ("to", "text"), here, errors)
        to, text = spec.get("to"), spec.get("text")
        if not isinstance(to, str) or not to:
            errors.append(f"{here}.to: must be a non-empty string (the bot's own contact)")
        if not isinstance(text, str) or not text.strip():
            errors.append(f"{here}.text: must be a non-empty string")
        if isinstance(to, str) and to and isinstance(text, str) and text.strip():
            out.append((bot, LoginTestSettings(to=to, text=text)))
    return tuple(out)
