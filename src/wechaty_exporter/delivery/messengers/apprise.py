"""Apprise messenger: each message to every channel apprise reaches (WeCom, DingTalk, e-mail, ...).

A channel is one apprise URL (https://github.com/caronc/apprise/wiki), taken from a file
(`url_file`, or `urls_files` for several per file), from an environment variable (`url_env`), or
written in the config only when it holds no secret. The rule is apprise's own: a literal URL is
accepted when apprise's redacted form of it (what it prints with privacy on) equals the URL itself,
and it sets no custom header or payload parameter (`+name=`, `-name=`, `:name=`, where tokens of
generic webhooks travel). Anything else must come from `url_file` or `url_env`.

A channel may be limited to some admin contacts (`to`); a channel without `to` takes every message
once, whichever admin it is for (the contact names only choose channels).

Images: a channel whose service takes attachments (apprise says so per service) gets the QR PNG
attached to a short caption, unless its entry says `attach: false`. One that does not gets a text
saying how to get the QR instead: the QR is a login credential, so it is never handed to an image
host or a renderer, and an attachment goes only to the service the operator chose. Both texts
are templates (`qr_attached`, `qr_not_attached`) in the receiver's language, from the `Messages`
the messenger is built with.

Apprise is synchronous: each channel is sent in a worker thread, all channels of a message at
once, each bounded by `timeout`. When a channel fails (apprise says no, raises, or times out), the
message raises a transient DeliveryError: the receiver answers 503 and Alertmanager retries. The
channels that took the message are recorded (per message, from `sending.current()`, and channel,
in the delivery store), so the retry sends only to the others. A channel that finishes after its
timeout is recorded then, so the retry skips it too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import apprise
from apprise.attachment.memory import AttachMemory

from wechaty_exporter.delivery.messengers import DeliveryError
from wechaty_exporter.delivery.messengers.sending import MessageRef, current
from wechaty_exporter.delivery.store import DeliveryStore
from wechaty_exporter.delivery.templates import Messages, default_messages
from wechaty_exporter.settings import ConfigError, check_keys, parse_duration, read_secret

__all__ = [
    "CHANNEL_KEYS",
    "DEFAULT_TIMEOUT",
    "MESSENGER_KEYS",
    "AppriseChannel",
    "AppriseMessenger",
    "parse_apprise",
    "secret_problem",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0  # seconds per channel and message; e-mail servers can be slow
MESSENGER_KEYS = ("type", "urls", "urls_files", "timeout")
CHANNEL_KEYS = ("url", "url_file", "url_env", "to", "attach")
_CUSTOM_ARGUMENT = ("+", "-", ":")  # apprise's custom headers and payload fields
_TITLE_CHARS = 120
CLOSE_GRACE = 10.0  # seconds `close` waits for sends still running past their timeout


@dataclass(frozen=True, slots=True)
class AppriseChannel:
    """One apprise URL (kept out of repr: it may hold a token) and who it is for."""

    url: str = field(repr=False)
    source: str  # where the URL came from, for logs and errors: never the URL itself
    to: tuple[str, ...] = ()  # admin contacts whose messages go here; () = every message
    service: str = ""  # apprise's name for the service (E-Mail, WeCom Bot, ...)
    attachments: bool = False  # the service takes the QR PNG as an attachment

    @property
    def id(self) -> str:
        """A stable id for delivery records: a hash, so the store never holds the URL."""
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return f"{self.service or 'apprise'} ({self.source})"

    def takes(self, contact: str) -> bool:
        return not self.to or contact in self.to


# --- configuration ----------------------------------------------------------------------------


def _asset() -> apprise.AppriseAsset:
    # Keep apprise's persistent store in memory: the receiver's state lives in its own store,
    # and a sandboxed service (ProtectHome, ProtectSystem) has no cache dir to write.
    return apprise.AppriseAsset(storage_mode="memory")


def _instantiate(url: str) -> Any:
    """Apprise's plugin for `url`, or None when apprise does not understand it."""
    try:
        return apprise.Apprise.instantiate(url, asset=_asset(), suppress_exceptions=True)
    except Exception:  # a plugin's own parser failing is "not understood" too
        return None


def secret_problem(url: str) -> str | None:
    """Why `url` may not be written in the config as it is (None: it may).

    The rule: apprise must understand it, its redacted form (`url(privacy=True)`) must equal its
    full form, and it must set no custom header or payload parameter (`+`, `-`, `:` arguments),
    which apprise does not redact."""
    plugin = _instantiate(url)
    if plugin is None:
        return "apprise does not understand this URL"
    try:
        full, shown = plugin.url(privacy=False), plugin.url(privacy=True)
    except Exception as exc:  # pragma: no cover - a plugin bug; refuse rather than guess
        return f"apprise cannot redact this URL ({exc.__class__.__name__})"
    if full != shown:
        scheme = urlsplit(url).scheme or "this"
        return f"it holds a secret (apprise redacts part of this {scheme}:// URL)"
    custom = sorted(k for k in _query_keys(url) if k[:1] in _CUSTOM_ARGUMENT)
    if custom:
        return f"it sets custom headers or parameters ({', '.join(custom)}), where tokens travel"
    return None


def _query_keys(url: str) -> set[str]:
    """The URL's argument names, `+` kept (apprise's header prefix, not a space here)."""
    query = urlsplit(url).query
    return {unquote(part.partition("=")[0]) for part in query.split("&") if part}


def _channel(
    url: str, source: str, to: tuple[str, ...], where: str, errors: list[str], attach: bool = True
) -> AppriseChannel | None:
    plugin = _instantiate(url)
    if plugin is None:
        errors.append(f"{where}: apprise does not understand this URL (see its wiki for the forms)")
        return None
    return AppriseChannel(
        url=url,
        source=source,
        to=to,
        service=str(getattr(plugin, "service_name", "") or plugin.__class__.__name__),
        attachments=attach and bool(getattr(plugin, "attachment_support", False)),
    )


def _contacts(value: object, where: str, errors: list[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(c, str) and c for c in items):
        errors.append(f"{where}: expected a contact or a non-empty list of contacts")
        return ()
    return tuple(dict.fromkeys(items))


def _urls_in_file(path: str, where: str, errors: list[str]) -> list[tuple[str, str]]:
    """Every URL of a file (one per line; blank lines and `#` comments skipped)."""
    try:
        text = read_secret(Path(path), where)
    except ConfigError as exc:
        errors.extend(exc.problems)
        return []
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    return [(f"{path} line {n}", line) for n, line in lines if line and not line.startswith("#")]


def parse_apprise(
    value: Mapping[str, Any],
    where: str,
    errors: list[str],
    environ: Mapping[str, str] | None = None,
) -> tuple[tuple[AppriseChannel, ...], float]:
    """`receiver.messenger` with `type: apprise` → (channels, timeout). Problems go to `errors`;
    a problem never quotes a URL that could hold a secret."""
    env = os.environ if environ is None else environ
    check_keys(value, MESSENGER_KEYS, where, errors)
    channels: list[AppriseChannel] = []
    raw_urls = value.get("urls", [])
    if not isinstance(raw_urls, list):
        errors.append(f"{where}.urls: expected a list of URLs or {{url_file|url_env, to}}")
        raw_urls = []
    for i, item in enumerate(raw_urls):
        here = f"{where}.urls[{i}]"
        to: tuple[str, ...] = ()
        attach = True
        if isinstance(item, str):
            spec: Mapping[str, Any] = {"url": item}
        elif isinstance(item, Mapping):
            spec = item
            check_keys(spec, CHANNEL_KEYS, here, errors)
            if "to" in spec:
                to = _contacts(spec["to"], f"{here}.to", errors)
            if "attach" in spec:
                attach = spec["attach"]
                if not isinstance(attach, bool):
                    errors.append(f"{here}.attach: expected true or false, got {attach!r}")
                    continue
        else:
            errors.append(f"{here}: expected a URL or a mapping with url_file, url_env or url")
            continue
        given = [k for k in ("url", "url_file", "url_env") if k in spec]
        if len(given) != 1:
            errors.append(f"{here}: set exactly one of url_file, url_env and url")
            continue
        key = given[0]
        if key == "url":
            url = spec["url"]
            if not isinstance(url, str) or not url:
                errors.append(f"{here}: expected a URL, got {type(url).__name__}")
                continue
            problem = secret_problem(url)
            if problem is not None:
                errors.append(
                    f"{here}: not accepted as a literal URL: {problem}; put it in a file"
                    " (url_file) or an environment variable (url_env)"
                )
                continue
            source = f"urls[{i}]"
        elif key == "url_file":
            path = spec["url_file"]
            if not isinstance(path, str) or not path:
                errors.append(f"{here}.url_file: expected the path of a file holding the URL")
                continue
            try:
                url = read_secret(Path(path), f"{here}.url_file")
            except ConfigError as exc:
                errors.extend(exc.problems)
                continue
            source = f"url_file {path}"
        else:
            name = spec["url_env"]
            if not isinstance(name, str) or not name:
                errors.append(f"{here}.url_env: expected the name of an environment variable")
                continue
            url = env.get(name, "").strip()
            if not url:
                errors.append(f"{here}.url_env: environment variable {name} is not set or empty")
                continue
            source = f"url_env {name}"
        channel = _channel(url, source, to, f"{here} ({source})", errors, attach)
        if channel is not None:
            channels.append(channel)
    raw_files = value.get("urls_files", [])
    files = [raw_files] if isinstance(raw_files, str) else raw_files
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        errors.append(f"{where}.urls_files: expected a file path or a list of file paths")
        files = []
    for i, path in enumerate(files):
        for source, url in _urls_in_file(path, f"{where}.urls_files[{i}]", errors):
            channel = _channel(url, source, (), f"{where}.urls_files[{i}] ({source})", errors)
            if channel is not None:
                channels.append(channel)
    if not channels and "urls" not in value and "urls_files" not in value:
        errors.append(f"{where}: the apprise messenger needs urls or urls_files")
    timeout = DEFAULT_TIMEOUT
    if "timeout" in value:
        timeout = parse_duration(value["timeout"], f"{where}.timeout", errors) or timeout
    return tuple(channels), timeout


# --- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Message:
    title: str
    body: str
    png: bytes | None = None
    filename: str = "qr.png"


def image_caption(messages: Messages, bot: str, filename: str) -> str:
    """The text the QR PNG is attached to (the `qr_attached.txt.j2` template)."""
    return messages.render("qr_attached.txt.j2", bot=bot, filename=filename)


def no_attachment_text(messages: Messages, bot: str) -> str:
    """Sent instead of the QR where the service takes no attachments (`qr_not_attached`)."""
    return messages.render("qr_not_attached.txt.j2", bot=bot)


def _title(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "wechaty-exporter"
    return first if len(first) <= _TITLE_CHARS else first[: _TITLE_CHARS - 1] + "…"


Notify = Callable[[AppriseChannel, _Message], bool]


class AppriseMessenger:
    """Fans each message out to the channels that take its contact; see the module docstring."""

    name = "apprise"

    def __init__(
        self,
        channels: Sequence[AppriseChannel],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        store: DeliveryStore | None = None,
        record_ttl: float = 3600.0,
        clock: Callable[[], float] = time.time,
        notify: Notify | None = None,
        messages: Messages | None = None,
    ) -> None:
        if not channels:
            raise ValueError("the apprise messenger needs at least one channel")
        self.channels = tuple(channels)
        # The receiver's (ReceiverSettings.messages): the texts it writes around a QR image.
        self.messages = messages if messages is not None else default_messages()
        self.timeout = timeout
        self._store = store
        self._memory: dict[str, float] = {}  # without a store: delivery records in memory
        self._ttl = record_ttl
        self._clock = clock
        self._notify = notify or _notify
        self._late: set[asyncio.Future[bool]] = set()

    async def send_text(self, to: str, text: str, *, bot: str) -> None:
        message = _Message(_title(text), text)
        await self._fan_out(to, lambda channel: message)

    async def send_image(self, to: str, png: bytes, *, bot: str, filename: str) -> None:
        title = f"{bot}: login QR"
        attached = _Message(title, image_caption(self.messages, bot, filename), png, filename)
        plain = _Message(title, no_attachment_text(self.messages, bot))
        await self._fan_out(to, lambda channel: attached if channel.attachments else plain)

    async def close(self) -> None:
        if self._late:  # sends past their timeout (apprise's own request timeouts end them)
            await asyncio.wait(self._late, timeout=max(self.timeout, CLOSE_GRACE))

    # --- internals -----------------------------------------------------------------------------

    def _key(self, ref: MessageRef | None, to: str, channel: AppriseChannel) -> str | None:
        if ref is None:
            return None
        contact = to if channel.to else "*"  # a channel for everyone takes each message once
        return f"{ref.about}|{contact}|{ref.step}|apprise:{channel.id}"

    def _delivered(self, key: str) -> bool:
        now = self._clock()
        if self._store is not None:
            return self._store.is_sent(key, now)
        return self._memory.get(key, 0.0) > now

    def _record(self, key: str) -> None:
        expires = self._clock() + self._ttl
        if self._store is not None:
            self._store.mark_sent(key, expires)
        else:
            self._memory[key] = expires

    async def _fan_out(self, to: str, build: Callable[[AppriseChannel], _Message]) -> None:
        chosen = [c for c in self.channels if c.takes(to)]
        if not chosen:
            raise DeliveryError(f"apprise: no channel takes messages for {to!r}", transient=False)
        ref = current()
        owed = [(c, self._key(ref, to, c)) for c in chosen]
        owed = [(c, key) for c, key in owed if key is None or not self._delivered(key)]
        results = await asyncio.gather(*(self._send(c, build(c), key) for c, key in owed))
        failed = [
            f"{c.name}: {reason}" for (c, _), reason in zip(owed, results, strict=True) if reason
        ]
        if failed:
            sent = len(owed) - len(failed)
            raise DeliveryError(
                f"apprise: {len(failed)} of {len(chosen)} channel(s) failed"
                f" ({sent} sent now, {len(chosen) - len(owed)} before): " + "; ".join(failed)
            )

    async def _send(self, channel: AppriseChannel, message: _Message, key: str | None) -> str:
        """'' once the channel took the message, else why not."""
        future = asyncio.ensure_future(asyncio.to_thread(self._notify, channel, message))
        done, _ = await asyncio.wait({future}, timeout=self.timeout)
        if not done:
            if key is not None:
                self._late.add(future)
                future.add_done_callback(lambda f: self._finish_late(f, channel, key))
            log.warning("apprise: %s timed out after %g s", channel.name, self.timeout)
            return f"timed out after {self.timeout:g} s"
        try:
            accepted = future.result()
        except Exception as exc:
            log.warning("apprise: %s raised %s: %s", channel.name, exc.__class__.__name__, exc)
            return f"{exc.__class__.__name__}: {exc}"
        if not accepted:
            log.warning("apprise: %s did not accept the message", channel.name)
            return "not accepted (apprise's log lines say why)"
        if key is not None:
            self._record(key)
        return ""

    def _finish_late(self, future: asyncio.Future[bool], channel: AppriseChannel, key: str) -> None:
        self._late.discard(future)
        if future.cancelled() or future.exception() is not None or not future.result():
            return
        log.info("apprise: %s took the message after its timeout; a retry skips it", channel.name)
        self._record(key)


def _notify(channel: AppriseChannel, message: _Message) -> bool:
    """One message to one channel, in a worker thread: True when the service took it."""
    client = apprise.Apprise(asset=_asset())
    if not client.add(channel.url):
        return False
    attach = None
    if message.png is not None and channel.attachments:
        memory = AttachMemory(  # type: ignore[no-untyped-call]
            content=message.png, name=message.filename, mimetype="image/png"
        )
        attach = apprise.AppriseAttachment(memory, asset=_asset())
    result = client.notify(
        body=message.body,
        title=message.title,
        body_format=apprise.NotifyFormat.TEXT,
        attach=attach,
    )
    return bool(result)
