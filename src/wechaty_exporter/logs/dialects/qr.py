"""Login-QR unwrapping and validation: only a WeChat login URL on the host allowlist is a QR.

Every dialect's Waiting scan goes through `check_qr_normalized` (see `context`); the settings
take `DEFAULT_QR_HOSTS` as the default allowlist.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import parse_qsl, unquote

__all__ = [
    "DEFAULT_QR_HOSTS",
    "QR_MAX_LENGTH",
    "check_qr",
    "check_qr_normalized",
    "normalize_hosts",
    "unwrap_qr",
]

DEFAULT_QR_HOSTS: tuple[str, ...] = ("weixin.qq.com", "wechat.com")
QR_MAX_LENGTH = 2048  # an unwrapped QR payload longer than this is rejected

_QR_RAW_MAX = 8192  # a wrapped QR longer than this is rejected before unwrapping
_MAX_UNWRAP = 4

_PATH_WRAPPERS = tuple(
    f"{scheme}://{host}/qrcode/"
    for scheme in ("https", "http")
    for host in ("wechaty.js.org", "wechaty.github.io")
)
_QUERY_WRAPPERS = (
    "https://api.qrserver.com/v1/create-qr-code",
    "http://api.qrserver.com/v1/create-qr-code",
)
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# Printable ASCII without space and backslash (browsers read "\" as "/" in http URLs).
_QR_CHARS_RE = re.compile(r"[\x21-\x5b\x5d-\x7e]+\Z")
_AUTHORITY_END_RE = re.compile(r"[/?#]")
_AUTHORITY_RE = re.compile(r"([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?)(?::[0-9]{1,5})?\Z")


def unwrap_qr(raw: str) -> str:
    """Strip QR-image wrappers (wechaty.js.org, wechaty.github.io, api.qrserver.com), nested or not.

    >>> unwrap_qr("https://wechaty.js.org/qrcode/https%3A%2F%2Flogin.weixin.qq.com%2Fl%2Fabc")
    'https://login.weixin.qq.com/l/abc'

    A string that is not a wrapper is returned unchanged.
    """
    for _ in range(_MAX_UNWRAP):
        inner = _unwrap_once(raw)
        if inner is None:
            break
        raw = inner
    return raw


def _unwrap_once(s: str) -> str | None:
    low = s[:64].lower()
    for prefix in _PATH_WRAPPERS:
        if low.startswith(prefix):
            rest = s[len(prefix) :]
            # Raw form keeps its scheme ("https://..."); the encoded form has "%3A" instead.
            return rest if _SCHEME_RE.match(rest) else unquote(rest)
    for prefix in _QUERY_WRAPPERS:
        if low.startswith(prefix):
            tail = s[len(prefix) :]
            if tail.startswith("/"):
                tail = tail[1:]
            if not tail.startswith("?"):
                return None
            for key, value in parse_qsl(tail[1:].partition("#")[0], keep_blank_values=True):
                if key == "data":
                    return value
            return None
    return None


def normalize_hosts(hosts: Sequence[str]) -> tuple[str, ...]:
    """An allowlist as `check_qr_normalized` takes it: lower case, no trailing dot, no blanks."""
    if isinstance(hosts, str):  # one host, not a sequence of one-letter hosts
        hosts = (hosts,)
    return tuple(h for h in (host.strip().lower().rstrip(".") for host in hosts) if h)


def check_qr(
    raw: str, allowed_hosts: Sequence[str] = DEFAULT_QR_HOSTS
) -> tuple[str | None, str | None]:
    """Unwrap `raw` and accept it only as a WeChat login URL: ``(url, None)`` or ``(None, reason)``.

    Valid: scheme http or https, no userinfo, only printable ASCII (no whitespace, control
    characters or backslash), at most `QR_MAX_LENGTH` characters, and a host equal to an allowed
    host or a subdomain of one (label-exact, case-insensitive, a trailing dot tolerated).
    Reasons: "missing qr", "qr too long", "bad character", "not a url", "scheme not allowed",
    "userinfo not allowed", "bad host", "host not allowed".
    """
    return check_qr_normalized(raw, normalize_hosts(allowed_hosts))


def check_qr_normalized(raw: str, hosts: tuple[str, ...]) -> tuple[str | None, str | None]:
    """`check_qr` with an allowlist already passed through `normalize_hosts`."""
    if not raw:
        return None, "missing qr"
    if len(raw) > _QR_RAW_MAX:
        return None, "qr too long"
    url = unwrap_qr(raw)
    if not url:
        return None, "missing qr"
    if len(url) > QR_MAX_LENGTH:
        return None, "qr too long"
    if _QR_CHARS_RE.match(url) is None:
        return None, "bad character"
    scheme = _SCHEME_RE.match(url)
    if scheme is None:
        return None, "not a url"
    if scheme.group().lower() not in ("http:", "https:"):
        return None, "scheme not allowed"
    if not url.startswith("//", scheme.end()):
        return None, "not a url"
    authority = _AUTHORITY_END_RE.split(url[scheme.end() + 2 :], maxsplit=1)[0]
    if "@" in authority:
        return None, "userinfo not allowed"
    m = _AUTHORITY_RE.match(authority)
    if m is None:
        return None, "bad host"
    host = m.group(1).lower().rstrip(".")
    for allowed in hosts:
        if host == allowed or host.endswith("." + allowed):
            return url, None
    return None, "host not allowed"
