"""Edge rules of the Alertmanager payload parser (delivery/alerts.py) that test_receiver_alerts.py
does not pin down: RFC 3339 in both directions, optional fields and their defaults, and what a
400 says about a bad value. Written against mutants the suite let through (docs/MUTATION.md)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wechaty_exporter.delivery.alerts import (
    PayloadError,
    decode_notification,
    parse_notification,
    parse_rfc3339,
    rfc3339,
)

FIRING: dict[str, Any] = json.loads(
    (Path(__file__).parent / "payloads" / "firing.json").read_text()
)
BASE = datetime(2026, 11, 25, 1, 1, 59, tzinfo=UTC).timestamp()


def doc(**changes: Any) -> dict[str, Any]:
    """firing.json with top-level fields replaced (None: removed)."""
    body = copy.deepcopy(FIRING)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def with_alert(**changes: Any) -> dict[str, Any]:
    """firing.json with fields of its one alert replaced (None: removed)."""
    body = copy.deepcopy(FIRING)
    for key, value in changes.items():
        if value is None:
            body["alerts"][0].pop(key, None)
        else:
            body["alerts"][0][key] = value
    return body


def error(body: object) -> str:
    with pytest.raises(PayloadError) as caught:
        parse_notification(body)
    return str(caught.value)


# --- RFC 3339 ----------------------------------------------------------------------------------


def test_rfc3339_writes_utc_with_milliseconds_and_z() -> None:
    assert rfc3339(BASE + 0.7159) == "2026-11-25T01:01:59.715Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert parse_rfc3339(rfc3339(BASE + 0.5)) == BASE + 0.5


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-11-25T01:01:59Z", BASE),
        ("2026-11-25T01:01:59z", BASE),  # RFC 3339 allows a lowercase z
        ("2026-11-25T01:01:59.25Z", BASE + 0.25),
        ("2026-11-25T06:31:59+05:30", BASE),  # minutes of the offset count
        ("2026-11-24T17:01:59-08:00", BASE),
        ("2026-11-25T01:01:59+00:00", BASE),
    ],
)
def test_parse_rfc3339_zones(text: str, seconds: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(seconds, abs=1e-6)


def test_parse_rfc3339_range_edges() -> None:
    last = datetime(9999, 12, 29, 23, 59, 59, tzinfo=UTC).timestamp()
    assert parse_rfc3339("9999-12-29T23:59:59Z") == last  # the last time allowed
    with pytest.raises(ValueError, match="time out of range") as caught:
        parse_rfc3339("9999-12-30T00:00:00Z")
    assert "9999-12-30T00:00:00Z" in str(caught.value)
    # Year 1 is Go's zero time, whatever the day: the lower bound only guards the offsets.
    assert parse_rfc3339("0001-01-03T00:00:00Z") is None
    assert parse_rfc3339("0002-01-01T00:00:00+23:59") == pytest.approx(
        datetime(1, 12, 31, 0, 1, tzinfo=UTC).timestamp()
    )


# --- defaults of optional fields ---------------------------------------------------------------


def test_optional_top_level_fields_default_to_empty() -> None:
    n = parse_notification(
        doc(receiver=None, groupKey=None, externalURL=None, truncatedAlerts=None)
    )
    assert (n.receiver, n.group_key, n.external_url, n.truncated_alerts) == ("", "", "", 0)
    n = parse_notification(doc(truncatedAlerts=3))
    assert n.truncated_alerts == 3


def test_annotations_may_be_missing_and_generator_url_is_kept_or_dropped() -> None:
    (a,) = parse_notification(with_alert(annotations=None, generatorURL=None)).alerts
    assert dict(a.annotations) == {}
    assert a.generator_url == ""
    (a,) = parse_notification(with_alert(generatorURL=7)).alerts
    assert a.generator_url == ""  # not a string: left out, not an error
    (a,) = parse_notification(FIRING).alerts
    assert a.generator_url == FIRING["alerts"][0]["generatorURL"]


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    body = json.dumps(with_alert(generatorURL="a\ud800b", fingerprint="f\udfffp")).encode()
    (a,) = decode_notification(body).alerts
    assert (a.generator_url, a.fingerprint) == ("a\ufffdb", "f\ufffdp")


# --- what a 400 says ---------------------------------------------------------------------------


def test_missing_version_names_what_is_expected() -> None:
    assert error(doc(version=None)) == (
        'version: missing (expected "4", Alertmanager webhook version 4)'
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "a boolean"),
        (4, "a number"),
        (4.5, "a number"),
        ({}, "an object"),
        ("x", "a string"),
    ],
)
def test_the_kind_of_a_wrong_value_is_named(value: object, shown: str) -> None:
    assert error(doc(alerts=value)) == f"alerts: expected a list, got {shown}"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("", '""'),
        (False, "false"),
        (12, "12"),
        ("x" * 58, '"' + "x" * 58 + '"'),  # 60 characters: shown whole
        ("x" * 59, '"' + "x" * 56 + "..."),  # 61: cut to 57 and "..."
        ({"a": 1}, "an object"),
        ([1], "a list"),
    ],
)
def test_a_wrong_value_is_shown_short(value: object, shown: str) -> None:
    assert error(with_alert(status=value)) == (
        f'alerts[0].status: expected "firing" or "resolved", got {shown}'
    )


def test_a_body_that_is_not_usable_json_is_clipped() -> None:
    with pytest.raises(PayloadError) as caught:
        decode_notification(b"[" * 100_000)
    assert str(caught.value).startswith("body is not usable JSON: RecursionError: ")
    assert len(str(caught.value)) <= 200
