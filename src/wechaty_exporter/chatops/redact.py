"""Secrets and login QRs taken out of log text before it leaves the host (`log <bot>` replies).

Pure: `redact_line` and `redact_lines` take the text and the known secrets, and return the text
with, in this order:

- every known secret (the bot's puppet token, TOTP secret, receiver and exporter tokens: exact
  values of at least `MIN_SECRET_CHARS` characters, also URL-encoded) replaced by `REDACTED`;
- every login QR replaced by `QR_REDACTED`: WeChat login URLs (`login.weixin.qq.com/l/…`,
  `weixin.qq.com/x/…`, with or without a scheme, URL-encoded or JSON-escaped), the QR wrappers
  (`wechaty.js.org/qrcode/…`, `wechaty.github.io/qrcode/…`, `api.qrserver.com/v1/create-qr-code/…`),
  every URL on a line that speaks of a scan or a QR code, quoted `qrcode` values, and QR codes
  drawn in block characters (QRCodeTerminal); consecutive lines that became the same are kept
  once;
- token-like values replaced by `REDACTED`: `puppet_…_…`/`insecure_…` service tokens, UUIDs,
  the value after `token`, `secret`, `password`, `api_key`, `authorization` and the like (`=`,
  `:`, `<`, JSON and Python quoting), `Bearer …`/`Basic …` credentials (8+ characters, with a
  digit or symbol), and long runs of hex (32+) or base64 (32+ characters of at least two of
  digits, upper and lower case, not made of words like a camelCase name or a path).

The rest of a line stays as it was, so the log reads as before: times, levels, loggers, contact
names, chat text. `SecretsFilter` applies the known secrets alone to the bot's own log records.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

REDACTED = "[redacted]"
QR_REDACTED = "[QR redacted: use the qr command]"
MIN_SECRET_CHARS = 6  # shorter "secrets" (test tokens like "t") would blank every word

# What python-wechaty and wechaty-puppet-service read the puppet token from.
PUPPET_TOKEN_ENV = ("WECHATY_PUPPET_SERVICE_TOKEN", "WECHATY_PUPPET_TOKEN", "TOKEN", "token")

_URL_CHARS = r"[^\s\"'<>`,)\]}]"
_SLASH = r"(?:\\?/|%2F)"  # as is, JSON-escaped or URL-encoded
_URL = re.compile(rf"(?i)\b(?:https?|wss?|ftp)://{_URL_CHARS}+")
_QR_URL = re.compile(
    rf"(?i)(?:\b(?:https?|wss?)://)?(?:"
    rf"(?:login\.)?weixin\.qq\.com{_SLASH}[lx]{_SLASH}|login\.wx\d?\.qq\.com{_SLASH}|"
    rf"wechaty\.(?:js\.org|github\.io)/qrcode|api\.qrserver\.com/v1/create-qr-code"
    rf"){_URL_CHARS}*"
)
_SCAN_LINE = re.compile(r"(?i)scan|qr[ _-]?code")
_QRCODE_VALUE = re.compile(r"""(?i)(qr_?code["']?\s*[:=]\s*)(["'])(?:(?!\2).)+\2""")
_QR_ART = re.compile(r"[█▀▄▌▐][█▀▄▌▐ ]{6,}[█▀▄▌▐]")

_SERVICE_TOKEN = re.compile(
    r"(?i)(?<![\w-])(?:puppet_[a-z0-9]+|insecure)_(?=[\w-]*\d)[\w-]{8,}|(?<![\w-])"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![\w-])"
)
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)(?=[\w.~+/=-]*[\d=+/_])[\w.~+/=-]{8,}")
_KEY_VALUE = re.compile(
    r"(?i)(?<![\w-])([\w.-]*(?:token|secret|passw(?:or)?d|passwd|pwd|api[_-]?key|"
    r"access[_-]?key|authorization|credentials?)"
    r"(?:[\"']?\s*[:=]\s*[\"']?|<|\(\s*[\"']?))"
    r"(?!\[|bearer\b|basic\b|none\b|null\b|undefined\b)"
    r"([^\s\"'<>,;&)\]}]+)"
)
_HEX_RUN = re.compile(r"(?<![\w+/=-])[0-9a-fA-F]{32,}(?![\w+/=-])")
_B64_RUN = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{32,}={0,2}(?![\w+/=-])")
_WORD = re.compile(r"[A-Z]?[a-z]{3,}")


def known_secrets(*values: str | None) -> tuple[str, ...]:
    """The values worth redacting exactly: set, long enough, longest first (so a secret that
    contains another is replaced whole), each also as URL-encoded when that differs."""
    out: set[str] = set()
    for value in values:
        value = (value or "").strip()
        if len(value) < MIN_SECRET_CHARS:
            continue
        out.add(value)
        out.add(quote(value, safe=""))
    return tuple(sorted(out, key=lambda v: (-len(v), v)))


def env_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The puppet tokens in `environ` (what python-wechaty would read), for `known_secrets`."""
    return tuple(environ[name] for name in PUPPET_TOKEN_ENV if environ.get(name))


def redact_secrets(text: str, secrets: Sequence[str]) -> str:
    """`text` with each of `secrets` (from `known_secrets`) replaced by `REDACTED`."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _b64_token(match: re.Match[str]) -> str:
    run = match.group(0)
    classes = sum(
        (any(c.isdigit() for c in run), any(c.isupper() for c in run),
         any(c.islower() for c in run))
    )  # fmt: skip
    words = sum(len(w) for w in _WORD.findall(run))  # camelCase names and paths are words
    return REDACTED if classes >= 2 and words * 2 < len(run) else run


def redact_line(line: str, secrets: Sequence[str] = ()) -> str:
    """One log line (or any text) without secrets, QRs or token-like values (module docstring).
    `secrets`: `known_secrets(...)`."""
    text = redact_secrets(line, secrets)
    text = _QR_ART.sub(QR_REDACTED, text)
    text = _QRCODE_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{QR_REDACTED}{m.group(2)}", text)
    text = _QR_URL.sub(QR_REDACTED, text)
    if _SCAN_LINE.search(text):
        text = _URL.sub(QR_REDACTED, text)
    text = _SERVICE_TOKEN.sub(REDACTED, text)
    text = _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _HEX_RUN.sub(REDACTED, text)
    return _B64_RUN.sub(_b64_token, text)


def redact_lines(lines: Iterable[str], secrets: Sequence[str] = ()) -> list[str]:
    """`redact_line` for each line; a run of lines that became the same QR placeholder line (a
    QR drawn in block characters) is kept once."""
    out: list[str] = []
    for line in lines:
        clean = redact_line(line, secrets)
        if out and clean == out[-1] and QR_REDACTED in clean and clean != line:
            continue
        out.append(clean)
    return out


class SecretsFilter(logging.Filter):
    """A handler filter: each record's message, arguments applied, and its traceback without
    the known secrets. Attach it to handlers (a logger's filter misses its children)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = redact_secrets(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact_secrets(record.stack_info, self.secrets)
        return True
