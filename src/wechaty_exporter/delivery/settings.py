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
      language: zh                 # zh (default) | en: every message and chat reply
      templates_dir: /etc/wechaty-exporter/templates   # optional: <language>/<name>.txt.j2
                                   # files replacing shipped templates (delivery/templates.py)
      messenger:
        type: outbox               # outbox | webhook | apprise | wechaty
        path: /var/lib/wechaty-exporter/outbox.jsonl   # default <state-dir>/outbox.jsonl
        # webhook: url: https://..., token_file: ..., timeout: 10s
        # apprise: urls: [{url_file: ...}, {url_env: ..., to: [...]}, "json://literal-no-secret"],
        #          urls_files: [...], timeout: 30s   (delivery/messengers/apprise.py)
        # wechaty: further keys are passed to the wechaty messenger as options
      qr_refresh: {interval: 60s, max: 10, poll: 5s}   # a newer QR while the outage lasts
      login_test:                  # optional, per bot: proves messages flow once it is back
        bob: {to: wxid_bob_self, text: "login test: messages reach bob"}   # text: default
                                   # the login_test template
      commands:                    # only in the top-level `receiver:` (config.py): POST /commands
        bot: alice                 # for the plugin bot alice; the keys of `bot.commands`
        restart: {bob: [pm2, restart, bob]}   # (chatops/settings.py)

Secrets are read from files at load time and never accepted as YAML literals.

A receiver that listens beyond loopback needs `auth` (or a `--web.config.file` that asks every
request for basic auth or a verified client certificate): whoever reaches POST /alerts decides
what the admins are sent. `open_listen_problem` says why such settings must not start;
`delivery.main.serve_receiver`, which every receiver and peer bot starts through, refuses them
before it binds.

With `exporters` and no `exporter_url` set (in the file or by `--exporter-url`), there is no
default exporter: every bot in `admins` must be listed, or loading fails naming the bot (so does
`receiver_flags.apply_receiver_flags`, for bots `--admin` adds); a bot reached only through
`fallback_admins` then has no exporter to fetch its QR from.
"""

from __future__ import annotations

import ipaddress
import ssl
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wechaty_exporter.delivery.guard_settings import (
    AuthSettings,
    RateLimitSettings,
    parse_auth,
    parse_rate_limit,
)
from wechaty_exporter.delivery.messenger_settings import MessengerSettings, parse_messenger
from wechaty_exporter.delivery.refresh_settings import QrRefreshSettings, parse_qr_refresh
from wechaty_exporter.delivery.templates import (
    DEFAULT_LANGUAGE,
    Messages,
    TemplateSet,
    parse_messages,
    shipped_templates,
)
from wechaty_exporter.settings import (
    check_keys,
    format_address,
    parse_bot_key,
    parse_duration,
    parse_http_url,
    parse_listen_address,
    parse_secret_file,
)

if TYPE_CHECKING:
    from wechaty_exporter.webconfig import WebConfig

DEFAULT_LISTEN_HOST = "127.0.0.1"
DEFAULT_LISTEN_PORT = 9840
DEFAULT_EXPORTER_URL = "http://127.0.0.1:9839"


@dataclass(frozen=True, slots=True)
class LoginTestSettings:
    """A text sent to the rescued bot's own account once it is back online (None: the
    `login_test` template's)."""

    to: str
    text: str | None = None


@dataclass(frozen=True, slots=True)
class ExporterTarget:
    """One exporter the receiver asks for login QRs: its URL and QR bearer token (from a file)."""

    url: str
    token: str | None = field(default=None, repr=False)


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
    qr_refresh: QrRefreshSettings = field(default_factory=QrRefreshSettings)
    language: str = DEFAULT_LANGUAGE  # of every message and chat reply (templates.LANGUAGES)
    templates_dir: Path | None = None  # replacements for the shipped templates
    web_config_file: Path | None = None  # --web.config.file: TLS and basic auth (webconfig)
    templates: TemplateSet = field(default_factory=shipped_templates, repr=False, compare=False)

    @property
    def messages(self) -> Messages:
        """The templates in this receiver's language: every text it (and its bot) sends."""
        return Messages(self.templates, self.language)

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
    "qr_poll_interval", "qr_alerts", "timezone", "messenger", "login_test", "qr_refresh",
    "language", "templates_dir",
}  # fmt: skip


def parse_receiver_settings(
    raw: Mapping[str, Any],
    errors: list[str],
    where: str = "receiver",
    *,
    extra_keys: tuple[str, ...] = (),
) -> ReceiverSettings | None:
    """Validate the `receiver:` section; append every problem to `errors` (None if any).
    `extra_keys` are accepted too, left to the caller (`config.py`: the top-level receiver's
    `commands`, whose settings are the chat commands')."""
    before = len(errors)
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping")
        return None
    check_keys(raw, _KEYS | set(extra_keys), where, errors)
    changes: dict[str, Any] = {}
    if "listen_address" in raw:
        parsed = parse_listen_address(raw["listen_address"], f"{where}.listen_address", errors)
        if parsed:
            changes["listen_host"], changes["listen_port"] = parsed
    if "exporter_url" in raw:
        url = parse_http_url(raw["exporter_url"], f"{where}.exporter_url", errors)
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
        changes["auth"] = parse_auth(raw["auth"], f"{where}.auth", errors)
    if "max_body_bytes" in raw:
        cap = raw["max_body_bytes"]
        if isinstance(cap, int) and not isinstance(cap, bool) and 1024 <= cap <= 64 << 20:
            changes["max_body_bytes"] = cap
        else:
            errors.append(
                f"{where}.max_body_bytes: must be an integer from 1024 to 67108864, got {cap!r}"
            )
    if "rate_limit" in raw:
        changes["rate_limit"] = parse_rate_limit(raw["rate_limit"], f"{where}.rate_limit", errors)
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
        changes["messenger"] = parse_messenger(raw["messenger"], f"{where}.messenger", errors)
    if "qr_refresh" in raw:
        changes["qr_refresh"] = parse_qr_refresh(raw["qr_refresh"], f"{where}.qr_refresh", errors)
    if "login_test" in raw:
        changes["login_tests"] = _login_tests(raw["login_test"], f"{where}.login_test", errors)
    changes.update(parse_messages(raw, where, errors))  # language, templates (all checked)
    if isinstance(raw.get("exporters"), Mapping) and raw["exporters"] and "exporter_url" not in raw:
        listed = set(raw["exporters"])  # a listed bot with a bad entry is reported there
        unlisted = [bot for bot, _ in changes.get("admins", ()) if bot not in listed]
        errors.extend(missing_exporter_problems(unlisted, where))
    if len(errors) > before:
        return None
    return replace(ReceiverSettings(), **changes)


def is_loopback_host(host: str) -> bool:
    """`host` (a listen address's) is this machine only: localhost, 127.0.0.0/8, ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # any other name may resolve to an address others reach
        return False


def open_listen_problem(
    settings: ReceiverSettings, where: str = "receiver", web: WebConfig | None = None
) -> str | None:
    """Why `settings` must not start: listening beyond loopback with neither `auth` nor a web
    config (`web`, `--web.config.file`) that guards every request (None: fine)."""
    if settings.auth is not None or is_loopback_host(settings.listen_host) or _guards(web):
        return None
    return (
        f"{where}.listen_address {settings.listen_address} is reachable from other hosts and"
        f" {where}.auth is not set: anyone who reaches it could have your admins sent whatever"
        f" they post. Set {where}.auth (bearer_token_file: FILE holding the token Alertmanager"
        " sends, in alertmanager.yml webhook_configs.http_config.authorization.credentials_file;"
        f" or basic: {{username, password_file}}; or basic_auth_users in --web.config.file), or"
        " listen on loopback (127.0.0.1:PORT)"
    )


def _guards(web: WebConfig | None) -> bool:
    """`web` asks every request for basic auth or for a client certificate it verifies."""
    if web is None:
        return False
    verified = web.tls is not None and web.tls.verify_mode == ssl.CERT_REQUIRED
    return bool(web.users) or verified


def missing_exporter_problems(bots: Iterable[str], where: str = "receiver") -> list[str]:
    """One problem per bot with admins but no exporter (`ReceiverSettings.missing_exporters`)."""
    return [
        f"{where}.exporters: bot {bot!r} has admins but no exporter to fetch its QR from;"
        f" add {bot} to {where}.exporters or set {where}.exporter_url (the default for bots"
        " not listed)"
        for bot in bots
    ]


# --- pieces ------------------------------------------------------------------------------------


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
            url = parse_http_url(spec["url"], f"{here}.url", errors)
        token = None
        if "token_file" in spec:
            token = parse_secret_file(spec["token_file"], f"{here}.token_file", errors)
            if token is None:
                continue
        if url is not None:
            out.append((bot, ExporterTarget(url=url, token=token)))
    return tuple(out)


_EXPORTER_KEYS = ("url", "token_file")


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
        good_text = text is None or (isinstance(text, str) and bool(text.strip()))
        if not good_text:
            errors.append(f"{here}.text: must be a non-empty string")
        if isinstance(to, str) and to and good_text:
            out.append((bot, LoginTestSettings(to=to, text=text)))
    return tuple(out)
