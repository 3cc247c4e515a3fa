"""The web config file's format (exporter-toolkit's): its keys, what each accepts, and the parse.

A YAML document in, a WebConfig or "key.path: what" problems out; the files it names are only
looked for here (live.py reads them).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAG = "--web.config.file"
EXEMPT_PATHS = frozenset({"/healthz"})  # answered without credentials: liveness only
REALM = 'Basic realm="wechaty-exporter", charset="UTF-8"'

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
_TOP_REFUSED = {
    "rate_limit": "not supported: limit requests in front of the server (a reverse proxy)",
}
_TLS_KEYS = (
    "cert_file", "key_file", "client_auth_type", "client_ca_file", "client_ca",
    "client_allowed_sans", "min_version", "max_version", "cipher_suites",
    "prefer_server_cipher_suites",
)  # fmt: skip
_TLS_REFUSED = {
    "cert": "inline certificates are not supported: give cert_file",
    "key": "inline keys are not supported: give key_file",
    "curve_preferences": "Python's ssl module cannot set a list of curves: remove it "
    "(OpenSSL's defaults are X25519, P-256, P-384, P-521)",
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_CLIENT_AUTH_REFUSED = ("RequestClientCert", "RequireAnyClientCert")
_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's names (crypto/tls) of the TLS 1.2 suites → OpenSSL's.
_CIPHERS = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
_TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
# exporter-toolkit's headers, and the values it accepts (None: any).
_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Content-Security-Policy": None,
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-Content-Type-Options": ("nosniff",),
    "X-XSS-Protection": None,
    "Strict-Transport-Security": None,
}
_BCRYPT = re.compile(r"^\$2[abxy]\$(\d\d)\$[./A-Za-z0-9]{53}$")


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """`tls_server_config`, validated; paths made absolute against the file's directory."""

    cert_file: Path
    key_file: Path
    verify_mode: ssl.VerifyMode = ssl.CERT_NONE
    client_ca_file: Path | None = None
    client_ca: str | None = None  # inline PEM
    allowed_sans: tuple[str, ...] = ()
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: tuple[str, ...] = ()  # OpenSSL names; () keeps OpenSSL's defaults
    prefer_server_ciphers: bool = True

    @property
    def files(self) -> tuple[Path, ...]:
        """The files whose change means a re-read."""
        named = (self.cert_file, self.key_file, self.client_ca_file)
        return tuple(p for p in named if p is not None)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """One read of the file: TLS (None: plain HTTP), extra response headers, basic-auth users."""

    tls: TlsSettings | None = None
    headers: tuple[tuple[str, str], ...] = ()
    users: Mapping[str, bytes] = field(default_factory=dict, repr=False)


# --- parsing --------------------------------------------------------------------------------


def parse_web_config(raw: object, base: Path, errors: list[str]) -> WebConfig | None:
    """The file's YAML document; every problem appended to `errors` as "key.path: what"."""
    if raw is None:
        return WebConfig()
    if not isinstance(raw, Mapping):
        errors.append(f"expected a mapping with {', '.join(_TOP_KEYS)}, got {type(raw).__name__}")
        return None
    before = len(errors)
    _check_keys(raw, _TOP_KEYS, _TOP_REFUSED, "", errors)
    tls = _tls(raw["tls_server_config"], base, errors) if "tls_server_config" in raw else None
    headers = _http(raw.get("http_server_config"), errors)
    users = _users(raw.get("basic_auth_users"), errors)
    if len(errors) > before:
        return None
    return WebConfig(tls=tls, headers=headers, users=users)


def _check_keys(
    raw: Mapping[Any, Any], known: Iterable[str], refused: Mapping[str, str], where: str,
    errors: list[str],
) -> None:  # fmt: skip
    prefix = f"{where}." if where else ""
    for key in raw:
        if key in refused:
            errors.append(f"{prefix}{key}: {refused[key]}")
        elif key not in known:
            errors.append(f"{prefix}{key}: unknown key (expected one of {', '.join(known)})")


def _text(value: object, where: str, errors: list[str]) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    errors.append(f"{where}: expected a non-empty string, got {value!r}")
    return None


def _path(value: object, base: Path, where: str, errors: list[str]) -> Path | None:
    text = _text(value, where, errors)
    return None if text is None else base / Path(text).expanduser()


def _strings(value: object, where: str, errors: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors.append(f"{where}: expected a list of strings, got {value!r}")
        return []
    return list(value)


def _tls(raw: object, base: Path, errors: list[str]) -> TlsSettings | None:
    where = "tls_server_config"
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping with cert_file and key_file, got {raw!r}")
        return None
    _check_keys(raw, _TLS_KEYS, _TLS_REFUSED, where, errors)
    changes: dict[str, Any] = {}
    for key in ("cert_file", "key_file"):
        if key not in raw:
            errors.append(f"{where}.{key}: required to serve TLS")
        else:
            changes[key] = _path(raw[key], base, f"{where}.{key}", errors)
    if "client_auth_type" in raw:
        kind = raw["client_auth_type"]
        if kind in _CLIENT_AUTH:
            changes["verify_mode"] = _CLIENT_AUTH[kind]
        elif kind in _CLIENT_AUTH_REFUSED:
            errors.append(
                f"{where}.client_auth_type: {kind} (a certificate asked for but not verified) "
                "is not possible with Python's ssl module: use RequireAndVerifyClientCert"
            )
        else:
            errors.append(
                f"{where}.client_auth_type: expected one of {', '.join(_CLIENT_AUTH)}, got {kind!r}"
            )
    if "client_ca_file" in raw and "client_ca" in raw:
        errors.append(f"{where}: give client_ca_file or client_ca, not both")
    if "client_ca_file" in raw:
        changes["client_ca_file"] = _path(
            raw["client_ca_file"], base, f"{where}.client_ca_file", errors
        )
    if "client_ca" in raw:
        changes["client_ca"] = _text(raw["client_ca"], f"{where}.client_ca", errors)
    for key in ("cert_file", "key_file", "client_ca_file"):
        named = changes.get(key)
        if named is not None and not named.is_file():
            errors.append(f"{where}.{key}: {named}: no such file")
            changes[key] = None
    verify = changes.get("verify_mode", ssl.CERT_NONE)
    if verify != ssl.CERT_NONE and not (changes.get("client_ca_file") or changes.get("client_ca")):
        errors.append(f"{where}.client_ca_file: required to verify client certificates")
    if "client_allowed_sans" in raw:
        sans = _strings(raw["client_allowed_sans"], f"{where}.client_allowed_sans", errors)
        if verify != ssl.CERT_REQUIRED:
            errors.append(
                f"{where}.client_allowed_sans: needs client_auth_type RequireAndVerifyClientCert"
            )
        changes["allowed_sans"] = tuple(sans)
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = raw.get(key, default)
        if name in _VERSIONS:
            changes[key] = _VERSIONS[name]
        else:
            errors.append(f"{where}.{key}: expected one of {', '.join(_VERSIONS)}, got {name!r}")
    if (
        "min_version" in changes
        and "max_version" in changes
        and (changes["min_version"] > changes["max_version"])
    ):
        errors.append(f"{where}: min_version is above max_version")
    if "cipher_suites" in raw:
        changes["ciphers"] = _ciphers(raw["cipher_suites"], f"{where}.cipher_suites", errors)
    if "prefer_server_cipher_suites" in raw:
        prefer = raw["prefer_server_cipher_suites"]
        if isinstance(prefer, bool):
            changes["prefer_server_ciphers"] = prefer
        else:
            errors.append(f"{where}.prefer_server_cipher_suites: expected true or false")
    if any(value is None for value in changes.values()) or "cert_file" not in changes:
        return None
    if "key_file" not in changes:
        return None
    return TlsSettings(**changes)


def _ciphers(raw: object, where: str, errors: list[str]) -> tuple[str, ...]:
    names = []
    for name in _strings(raw, where, errors):
        if name in _CIPHERS:
            names.append(_CIPHERS[name])
        elif name in _TLS13_SUITES:
            errors.append(
                f"{where}: {name} is a TLS 1.3 suite; they are not configurable (nor in Go): "
                "remove it"
            )
        else:
            errors.append(f"{where}: {name}: not a TLS 1.2 cipher suite OpenSSL 3 offers")
    return tuple(names)


def _http(raw: object, errors: list[str]) -> tuple[tuple[str, str], ...]:
    where = "http_server_config"
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping with headers, got {raw!r}")
        return ()
    _check_keys(raw, ("http2", "headers"), {}, where, errors)
    if raw.get("http2", False) is not False:
        errors.append(f"{where}.http2: this server speaks HTTP/1.1 only: set false or remove it")
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping):
        errors.append(f"{where}.headers: expected a mapping of header: value")
        return ()
    found = []
    for name, value in headers.items():
        key = f"{where}.headers.{name}"
        canonical = next((h for h in _HEADERS if h.lower() == str(name).lower()), None)
        if canonical is None:
            errors.append(f"{key}: not one of {', '.join(_HEADERS)}")
            continue
        if value is None or value == "":
            continue  # blank: unset
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            errors.append(f"{key}: expected a one-line string, got {value!r}")
            continue
        accepted = _HEADERS[canonical]
        if accepted is not None and value.lower() not in accepted:
            errors.append(f"{key}: expected one of {', '.join(accepted)}, got {value!r}")
            continue
        found.append((canonical, value))
    return tuple(found)


def _users(raw: object, errors: list[str]) -> dict[str, bytes]:
    where = "basic_auth_users"
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: expected a mapping of user: bcrypt hash")
        return {}
    users = {}
    for user, hashed in raw.items():
        if not isinstance(user, str) or not user or ":" in user:
            errors.append(f"{where}: {user!r}: a user name is a non-empty string without ':'")
        elif not isinstance(hashed, str) or not (match := _BCRYPT.match(hashed.strip())):
            errors.append(
                f"{where}.{user}: expected a bcrypt hash ($2y$10$... from "
                "`htpasswd -nBC 10 \"\" | tr -d ':\\n'`), not a plain password"
            )
        elif not 4 <= int(match.group(1)) <= 31:
            errors.append(f"{where}.{user}: bcrypt cost must be 4 to 31")
        else:
            # $2y$ (htpasswd) and $2b$ are the same algorithm; the bcrypt package takes both.
            users[user] = hashed.strip().encode()
    return users
