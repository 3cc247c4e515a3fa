"""Login-QR unwrapping and validation: only a URL with the shape of a WeChat login QR, on the
host allowlist, is a QR.

Every dialect's Waiting scan goes through `check_qr_normalized` (see `context`); the settings
take `DEFAULT_QR_HOSTS` as the default allowlist and `DEFAULT_QR_SHAPES` as the default shapes.

A shape is a URL template: scheme, host, path and (optionally) query, with ``{id}`` standing for
one QR identifier (one or more of ``A-Z a-z 0-9 _ - =``). The defaults are the shapes login QRs
have: web WeChat (wechat4u, puppet-wechat4u, itchat-style bots) and wechaty's IoClient
``https://login.weixin.qq.com/l/<uuid>``, the iPad and Windows protocols (padplus, tokens of
wechaty-puppet-service) ``http://weixin.qq.com/x/<uuid>``, and WeCom as python-wechaty logs it
``https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?key=<key>&wx=1``.
A WeChat host alone proves nothing: ``open.weixin.qq.com/connect/qrconnect?appid=...`` is an
OAuth consent page, ``mp.weixin.qq.com/s/...`` an article.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, unquote

__all__ = [
    "DEFAULT_QR_HOSTS",
    "DEFAULT_QR_SHAPES",
    "QR_MAX_LENGTH",
    "QrShape",
    "check_qr",
    "check_qr_normalized",
    "compile_qr_shapes",
    "host_allowed",
    "normalize_hosts",
    "parse_qr_shape",
    "unwrap_qr",
]

DEFAULT_QR_HOSTS: tuple[str, ...] = ("weixin.qq.com", "wechat.com")
DEFAULT_QR_SHAPES: tuple[str, ...] = (
    "https://login.weixin.qq.com/l/{id}",
    "http://weixin.qq.com/x/{id}",
    "https://weixin.qq.com/x/{id}",
    "https://wx.work.weixin.qq.com/cgi-bin/crtx_auth?key={id}&wx=1",
)
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

ID = "{id}"
_ID_RE = "[A-Za-z0-9_=-]+"  # the length: QR_MAX_LENGTH
_SHAPE_MAX = 512
_SHAPE_HEAD_RE = re.compile(r"(https?)://([a-z0-9-]+(?:\.[a-z0-9-]+)+)(/.*)\Z", re.DOTALL)
_DNS_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


@dataclass(frozen=True, slots=True)
class QrShape:
    """One login-QR shape: its template, its host and the pattern a whole QR URL must match
    (scheme and host case-insensitive, no port, userinfo, trailing dot or fragment)."""

    template: str
    host: str
    pattern: re.Pattern[str]


def parse_qr_shape(template: object) -> tuple[QrShape | None, list[str]]:
    """A shape template → ``(shape, [])`` or ``(None, problems)``, every problem named.

    >>> parse_qr_shape("https://login.weixin.qq.com/l/{id}")[0].host
    'login.weixin.qq.com'
    """
    if not isinstance(template, str) or not template:
        return None, [f"expected a URL template like https://login.weixin.qq.com/l/{ID}"]
    problems: list[str] = []
    if len(template) > _SHAPE_MAX:
        problems.append(f"longer than {_SHAPE_MAX} characters")
    bare = template.replace(ID, "")
    if bare and _QR_CHARS_RE.match(bare) is None:
        problems.append("only printable ASCII without spaces or backslashes")
    if "{" in bare or "}" in bare:
        problems.append(f"the only placeholder is {ID}")
    if "#" in template:
        problems.append("no fragment (#): a login QR has none")
    head = _SHAPE_HEAD_RE.match(template)
    if head is None:
        problems.append(
            "expected http:// or https://, a lower-case DNS name with a dot (no port, user or "
            "trailing dot), then a path starting with /"
        )
    else:
        if not all(_DNS_LABEL_RE.match(label) for label in head.group(2).split(".")):
            problems.append(f"bad host {head.group(2)!r}")
        if ID not in head.group(3):
            problems.append(f"no {ID} in the path or query: a shape matches one QR per id")
    if problems or head is None:
        return None, problems
    scheme, host, rest = head.groups()
    body = "".join(
        _ID_RE if part == ID else re.escape(part) for part in re.split(f"({re.escape(ID)})", rest)
    )
    pattern = re.compile(f"(?i:{re.escape(scheme)})://(?i:{re.escape(host)}){body}\\Z")
    return QrShape(template, host, pattern), []


@lru_cache(maxsize=32)
def _compiled(templates: tuple[str, ...]) -> tuple[QrShape, ...]:
    shapes = []
    for template in templates:
        shape, problems = parse_qr_shape(template)
        if shape is None:
            raise ValueError(f"QR shape {template!r}: {'; '.join(problems)}")
        shapes.append(shape)
    return tuple(shapes)


def compile_qr_shapes(templates: Sequence[str] | None = None) -> tuple[QrShape, ...]:
    """Shape templates (None: `DEFAULT_QR_SHAPES`) → shapes. Raises ValueError on a bad one
    (the settings validate them first, with every problem listed)."""
    if templates is None:
        return _compiled(DEFAULT_QR_SHAPES)
    if isinstance(templates, str):  # one shape, not a sequence of one-letter shapes
        templates = (templates,)
    return _compiled(tuple(templates))


def host_allowed(host: str, hosts: Sequence[str]) -> bool:
    """`host` (lower case, no trailing dot) is an allowed host or a subdomain of one."""
    return any(host == allowed or host.endswith("." + allowed) for allowed in hosts)


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
    raw: str,
    allowed_hosts: Sequence[str] = DEFAULT_QR_HOSTS,
    shapes: Sequence[str] | None = None,
) -> tuple[str | None, str | None]:
    """Unwrap `raw` and accept it only as a WeChat login URL: ``(url, None)`` or ``(None, reason)``.

    Valid: scheme http or https, no userinfo, only printable ASCII (no whitespace, control
    characters or backslash), at most `QR_MAX_LENGTH` characters, a host equal to an allowed
    host or a subdomain of one (label-exact, case-insensitive), and the whole URL of one of the
    `shapes` (templates; None: `DEFAULT_QR_SHAPES`).
    Reasons: "missing qr", "qr too long", "bad character", "not a url", "scheme not allowed",
    "userinfo not allowed", "bad host", "host not allowed", "not a login qr".
    """
    return check_qr_normalized(raw, normalize_hosts(allowed_hosts), compile_qr_shapes(shapes))


def check_qr_normalized(
    raw: str, hosts: tuple[str, ...], shapes: tuple[QrShape, ...] | None = None
) -> tuple[str | None, str | None]:
    """`check_qr` with an allowlist already passed through `normalize_hosts` and shapes through
    `compile_qr_shapes` (None: the default shapes)."""
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
    if not host_allowed(host, hosts):
        return None, "host not allowed"
    for shape in compile_qr_shapes() if shapes is None else shapes:
        if shape.pattern.match(url):
            return url, None
    return None, "not a login qr"
