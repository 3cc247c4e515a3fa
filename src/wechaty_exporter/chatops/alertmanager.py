"""The chat commands' view of Alertmanager's API v2: alerts, silences, with timeouts."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import aiohttp

from wechaty_exporter.chatops.parse import parse_time
from wechaty_exporter.delivery.alerts import rfc3339


class AlertmanagerError(Exception):
    """Alertmanager could not be asked (down, timed out, refused, or answered nonsense)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher of a silence: `name="value"`, `name=~"regex"`, `!=`, `!~`."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def __str__(self) -> str:
        op = (
            ("=~" if self.is_regex else "=") if self.is_equal else ("!~" if self.is_regex else "!=")
        )
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{op}"{escaped}"'

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """`name="value"` (or `=~`, `!=`, `!~`), as amtool and Alertmanager's filters write it."""
        m = _MATCHER.match(text)
        if m is None:
            raise ValueError(f"not a matcher: {text!r}")
        name, op, quoted = m.groups()
        value = re.sub(r"\\(.)", r"\1", quoted)
        return cls(name, value, is_regex="~" in op, is_equal=not op.startswith("!"))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


MatcherLike = Matcher | str  # a Matcher or its text form, e.g. 'bot="bob"'


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert Alertmanager holds and has not seen resolve (`GET /api/v2/alerts`)."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: float | None
    ends_at: float | None
    state: str  # active | suppressed | unprocessed
    silenced_by: tuple[str, ...]
    inhibited_by: tuple[str, ...]
    receivers: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence (`GET /api/v2/silences`)."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float | None
    ends_at: float | None
    created_by: str
    comment: str
    state: str  # active | pending | expired

    def equal_value(self, label: str) -> str | None:
        """The value a plain `label="..."` matcher of this silence requires, if any."""
        for m in self.matchers:
            if m.name == label and m.is_equal and not m.is_regex:
                return m.value
        return None


class AlertmanagerClient:
    """Small aiohttp client for Alertmanager's API v2; one session, closed by `close()`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: object = None,
        ok: Sequence[int] = (200,),
    ) -> tuple[int, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = self.base_url + path
        what = f"{method} {url}"
        try:
            async with self._session.request(
                method,
                url,
                params=list(params),
                json=body,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                text = await resp.text()
                if resp.status not in ok:
                    detail = text.strip().replace("\n", " ")[:200]
                    raise AlertmanagerError(f"{what}: HTTP {resp.status} {detail}".rstrip())
                if not text.strip():
                    return resp.status, None
                try:
                    return resp.status, await resp.json(content_type=None)
                except ValueError as exc:
                    raise AlertmanagerError(f"{what}: response is not JSON") from exc
        except TimeoutError as exc:
            raise AlertmanagerError(f"{what}: timed out after {self._timeout.total:g} s") from exc
        except aiohttp.ClientError as exc:
            raise AlertmanagerError(f"{what}: {exc.__class__.__name__}: {exc}") from exc

    async def alerts(
        self,
        matchers: Sequence[MatcherLike] = (),
        *,
        receiver: str | None = None,
        silenced: bool = True,
        inhibited: bool = True,
        active: bool = True,
    ) -> list[Alert]:
        """Unresolved alerts that match every matcher (and, when given, route to `receiver`)."""
        params = [("filter", str(_matcher(m))) for m in matchers]
        params += [
            ("silenced", _flag(silenced)),
            ("inhibited", _flag(inhibited)),
            ("active", _flag(active)),
        ]
        if receiver is not None:
            params.append(("receiver", _regex_escape(receiver)))  # Alertmanager anchors it
        _, doc = await self._call("GET", "/api/v2/alerts", params=params)
        if not isinstance(doc, list):
            raise AlertmanagerError("/api/v2/alerts: expected a JSON list")
        return [_alert(item) for item in doc if isinstance(item, dict)]

    async def create_silence(
        self,
        matchers: Sequence[MatcherLike],
        *,
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
    ) -> str:
        """Create a silence; its id."""
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        body = {
            "matchers": [_matcher(m).to_json() for m in matchers],
            "startsAt": rfc3339(starts_at),
            "endsAt": rfc3339(ends_at),
            "createdBy": created_by,
            "comment": comment,
        }
        _, doc = await self._call("POST", "/api/v2/silences", body=body)
        if not isinstance(doc, dict) or not isinstance(doc.get("silenceID"), str):
            raise AlertmanagerError('/api/v2/silences: expected {"silenceID": ...}')
        silence_id: str = doc["silenceID"]
        return silence_id

    async def silences(self, matchers: Sequence[MatcherLike] = ()) -> list[Silence]:
        """Every silence Alertmanager still keeps (expired ones too), filtered by `matchers`."""
        params = [("filter", str(_matcher(m))) for m in matchers]
        _, doc = await self._call("GET", "/api/v2/silences", params=params)
        if not isinstance(doc, list):
            raise AlertmanagerError("/api/v2/silences: expected a JSON list")
        return [_silence(item) for item in doc if isinstance(item, dict)]

    async def silence(self, silence_id: str) -> Silence | None:
        """One silence, or None when Alertmanager has none with that id."""
        path = f"/api/v2/silence/{quote(silence_id, safe='')}"
        status, doc = await self._call("GET", path, ok=(200, 404))
        if status == 404:
            return None
        if not isinstance(doc, dict):
            raise AlertmanagerError(f"{path}: expected a JSON object")
        return _silence(doc)

    async def expire_silence(self, silence_id: str) -> None:
        """Expire a silence now (`DELETE /api/v2/silence/{id}`)."""
        await self._call("DELETE", f"/api/v2/silence/{quote(silence_id, safe='')}")

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None


# --- decoding ----------------------------------------------------------------------------------


def _matcher(value: MatcherLike) -> Matcher:
    return value if isinstance(value, Matcher) else Matcher.parse(value)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _regex_escape(text: str) -> str:
    # RE2 takes a backslash before ASCII punctuation only.
    return "".join(f"\\{c}" if c in string.punctuation else c for c in text)


def _str_map(value: object) -> Mapping[str, str]:
    if not isinstance(value, dict):
        return MappingProxyType({})
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


def _strs(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _alert(doc: Mapping[str, Any]) -> Alert:
    status = doc.get("status") if isinstance(doc.get("status"), dict) else {}
    assert isinstance(status, dict)
    receivers = doc.get("receivers")
    return Alert(
        fingerprint=str(doc.get("fingerprint", "")),
        labels=_str_map(doc.get("labels")),
        annotations=_str_map(doc.get("annotations")),
        starts_at=parse_time(doc.get("startsAt")),
        ends_at=parse_time(doc.get("endsAt")),
        state=str(status.get("state", "")),
        silenced_by=_strs(status.get("silencedBy")),
        inhibited_by=_strs(status.get("inhibitedBy")),
        receivers=tuple(str(r.get("name", "")) for r in receivers if isinstance(r, dict))
        if isinstance(receivers, list)
        else (),
    )


def _silence(doc: Mapping[str, Any]) -> Silence:
    matchers = doc.get("matchers")
    status = doc.get("status")
    return Silence(
        id=str(doc.get("id", "")),
        matchers=tuple(
            Matcher(
                name=str(m.get("name", "")),
                value=str(m.get("value", "")),
                is_regex=bool(m.get("isRegex", False)),
                is_equal=bool(m.get("isEqual", True)),
            )
            for m in matchers
            if isinstance(m, dict)
        )
        if isinstance(matchers, list)
        else (),
        starts_at=parse_time(doc.get("startsAt")),
        ends_at=parse_time(doc.get("endsAt")),
        created_by=str(doc.get("createdBy", "")),
        comment=str(doc.get("comment", "")),
        state=str(status.get("state", "")) if isinstance(status, dict) else "",
    )
