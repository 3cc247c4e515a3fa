"""`auth` and `rate_limit`: who may post alerts to the receiver, how fast it messages an admin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from wechaty_exporter.settings import check_keys, parse_duration, parse_secret_file


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


def parse_auth(value: object, where: str, errors: list[str]) -> AuthSettings | None:
    """Validate `receiver.auth` (a bearer token or basic auth, secrets from files)."""
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


def parse_rate_limit(value: object, where: str, errors: list[str]) -> RateLimitSettings:
    """Validate `receiver.rate_limit` (the defaults for what it leaves out)."""
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
