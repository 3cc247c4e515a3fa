"""Hostile input, fuzzed: the dialect parser and the webhook payload parser, 100 000 cases each.

Hypothesis drives both. Each case is one example: a line fed to one long-lived LineParser (so a
QRCodeTerminal entry left open by one case meets the next), or one request body given to
`alerts.decode_notification`. Most examples are a seed for a mutator of real input (the sample
logs in tests/data/dialects, the Alertmanager 0.25 payloads in tests/delivery/payloads), which
keeps generation cheap enough for 100 000 cases in well under a minute; the rest are Hypothesis'
own text, bytes and JSON strategies. A failure prints the example, and its seed reproduces it.

Properties: no exception escapes but PayloadError; every event is one of the five kinds; a QR
that reaches the state is an allowlisted WeChat login URL; every text a decoded alert produces
encodes to UTF-8 (it is sent and stored); memory is bounded (tracemalloc peak of every 256th
case, measured against the input's size). The slowest case is reported, not bounded: a
catastrophic backtrack shows as a run that does not end (pytest's timeout), and speed is
bench/'s business.

FUZZ_EXAMPLES sets the number of cases (default 100 000); runs are derandomized (the same cases
on every run) unless FUZZ_RANDOM=1.
"""

from __future__ import annotations

import copy
import gc
import json
import os
import random
import re
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tests.reliability.conftest import Figures

from wechaty_exporter.delivery.alerts import (
    MAX_TEXT_CHARS,
    PayloadError,
    back_online_text,
    decode_notification,
    exporter_down_text,
    generic_text,
    logged_out_text,
    no_qr_text,
    qr_timeout_text,
)
from wechaty_exporter.delivery.templates import default_messages
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.qr import QR_MAX_LENGTH, check_qr
from wechaty_exporter.logs.events import (
    ErrorLogged,
    Login,
    Logout,
    ProbeReceived,
    ProbeSent,
    RejectedQr,
    Scan,
    ScanStatus,
    Suspect,
)
from wechaty_exporter.logs.state import BotState

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=os.environ.get("FUZZ_RANDOM") != "1",
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)
SEEDS = st.integers(min_value=0, max_value=2**64 - 1)
DATA = Path(__file__).resolve().parents[1] / "data" / "dialects"
PAYLOADS = Path(__file__).resolve().parents[1] / "delivery" / "payloads"
# pytest-timeout for the 100 000-case runs: a guard against a hang, not a speed bound. A run
# takes about a minute on a quiet 2-core machine and several on a busy one (the suite's 120 s
# would fail it there); it scales with FUZZ_EXAMPLES.
HANG = max(120, EXAMPLES // 100)


class Tally:
    """Cases run, the slowest one, and the worst tracemalloc peak per input size."""

    def __init__(self) -> None:
        self.cases = 0
        self.slowest = 0.0
        self.peak = 0  # bytes
        self.peak_input = 0  # size of the input that made it

    def run(self, size: int, case: Callable[[], None]) -> None:
        self.cases += 1
        traced = self.cases % 256 == 0
        if traced:
            tracemalloc.start()
        gc.disable()  # Hypothesis' own garbage is collected between cases, not timed in one
        began = time.perf_counter()
        try:
            case()
        finally:
            took = time.perf_counter() - began
            gc.enable()
            if traced:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                # Bounded: a fixed allowance plus a small multiple of the input.
                assert peak < (1 << 20) + 16 * size, f"{peak} bytes for a {size}-byte input"
                if peak > self.peak:
                    self.peak, self.peak_input = peak, size
        self.slowest = max(self.slowest, took)


# --- the dialect parser -----------------------------------------------------------------------

SAMPLE_LINES = [
    line for path in sorted(DATA.glob("*.log")) for line in path.read_text("utf-8").splitlines()
]
assert SAMPLE_LINES, f"no sample logs in {DATA}"
FRAGMENTS = sorted(
    {p for line in SAMPLE_LINES for p in re.split(r"(?<=[ :<>(),|\t=\-])", line) if p}
    | {"\r", "\x1b[31m", "\x1b[0m", "\x1b]0;t\x07", "\\n", '"', "'", "\\", "\ud800", "\x00"}
    | {"onScan: Waiting(2) - ", "Contact<", "> login", "> logout", "EventLogger ", "{", "}"}
    | {"QR Code Image URL: ", "https://login.weixin.qq.com/l/", "https://evil.example/", "%2F"}
)
WRAPPERS = [
    "",
    "0|bob  | ",
    "PM2      | ",
    "2026-11-25T10:00:00: ",
    "2026-11-25 10:00:00 +08:00: ",
    "2026-11-25T02:00:00.123456789Z ",
    "\x1b[32m",
]


def hostile_line(seed: int) -> str:
    """A line built from real log lines: spliced, bit-flipped, wrapped, stretched."""
    r = random.Random(seed)
    base = r.choice(SAMPLE_LINES)
    kind = r.randrange(8)
    if kind == 0:  # fragments of real lines in any order
        line = "".join(r.choice(FRAGMENTS) for _ in range(r.randrange(1, 30)))
    elif kind == 1:  # a real line with a splice of fragments
        cut = r.randrange(len(base) + 1)
        insert = "".join(r.choice(FRAGMENTS) for _ in range(r.randrange(4)))
        line = base[:cut] + insert + base[cut + r.randrange(6) :]
    elif kind == 2:  # a real line with random bytes flipped, decoded as the tailer does
        raw = bytearray(base.encode())
        for _ in range(r.randrange(1, 5)):
            if raw:
                raw[r.randrange(len(raw))] = r.randrange(256)
        line = raw.decode("utf-8", "replace")
    elif kind == 3:  # stretched past the 8 KiB the parser reads for structure
        cut = r.randrange(len(base) + 1)
        line = base[:cut] + r.choice(FRAGMENTS) * r.randrange(100, 3000) + base[cut:]
    elif kind == 4:  # inside a pm2 JSON line, several lines in one message
        parts = [r.choice(SAMPLE_LINES) for _ in range(r.randrange(1, 4))]
        doc = {"message": "\n".join(parts) + "\n", "timestamp": r.choice(
            ["2026-11-25T02:00:00.000Z", 1795568400000, "x", None, 1e300]
        ), "app_name": "bob", "process_id": 0}  # fmt: skip
        line = json.dumps(doc, ensure_ascii=r.random() < 0.5)
        if r.random() < 0.3:
            line = line[: r.randrange(len(line) + 1)]
    elif kind == 5:  # a self-log line with a hostile JSON body
        body = r.choice(['{"status":2,"qrcode":', '{"user":', "[" * 5000, "{" * 3, '"'])
        line = (
            "2026-11-25T10:00:00.000+08:00 "
            + r.choice(["INFO", "ERROR"])
            + " wechaty-exporter "
            + r.choice(["scan", "login", "logout", "x"])
            + " "
            + body
            + r.choice(FRAGMENTS) * r.randrange(3)
        )
    elif kind == 6:  # wrappers stacked beyond what the parser unwraps
        line = "".join(r.choice(WRAPPERS) for _ in range(r.randrange(1, 8))) + base
    else:
        line = base
    return line


# Three in four examples come from the seeded mutator (cheap to generate), one in four is
# Hypothesis' own text.
LINES = st.one_of(
    SEEDS.map(hostile_line), SEEDS.map(hostile_line), SEEDS.map(hostile_line), st.text(max_size=200)
)
KINDS = (Login, Logout, Scan, RejectedQr, ErrorLogged, Suspect, ProbeReceived, ProbeSent)


@pytest.mark.slow
@pytest.mark.timeout(HANG)
def test_fuzz_dialect_parser(figures: Figures) -> None:
    tally = Tally()
    parser = LineParser()
    state = BotState()
    events = [0]

    def feed(line: str) -> None:
        for event in parser.feed(line, 1795568400.0):
            assert isinstance(event, KINDS)
            if isinstance(event, Scan) and event.qrcode is not None:
                assert event.status is ScanStatus.WAITING
                assert len(event.qrcode) <= QR_MAX_LENGTH
                assert check_qr(event.qrcode) == (event.qrcode, None), event.qrcode
            state.apply(event)
            events[0] += 1
        assert parser.entry_lines in (1, 2)
        if state.qr is not None:
            assert check_qr(state.qr.qrcode)[0] == state.qr.qrcode

    @FUZZ
    @given(LINES)
    def case(line: str) -> None:
        tally.run(len(line) * 4, lambda: feed(line))

    began = time.perf_counter()
    case()
    took = time.perf_counter() - began
    assert tally.cases >= EXAMPLES
    figures(
        f"{tally.cases} lines in {took:.0f} s, {events[0]} events, no exception; slowest case "
        f"{tally.slowest * 1000:.1f} ms; tracemalloc peak {tally.peak // 1024} KiB "
        f"(for a {tally.peak_input // 1024} KiB input); {state.rejected_qr_total} QRs rejected, "
        f"{state.qr_codes_total} accepted, every accepted one allowlisted",
        cases=tally.cases,
        seconds=took,
        events=events[0],
        slowest_ms=tally.slowest * 1000,
        peak_kib=tally.peak // 1024,
        rejected=state.rejected_qr_total,
        accepted=state.qr_codes_total,
    )


# --- the webhook payload parser ---------------------------------------------------------------

REAL_PAYLOADS = [p.read_bytes() for p in sorted(PAYLOADS.glob("*.json"))]
assert REAL_PAYLOADS, f"no Alertmanager payloads in {PAYLOADS}"
NASTY: list[Any] = [
    None, True, 0, -1, 2**63, 1.5, 1e308, "", "firing", "resolved", "4", 4, [], {},
    "2026-11-25T01:01:59.715Z", "0001-01-01T00:00:00Z", "0000-00-00T00:00:00Z",
    "9999-12-31T23:59:59-23:59", "0001-01-02T00:00:00+23:59", "2026-02-30T00:00:00Z",
    "2026-11-25T01:01:59.9999999999Z", "２０２６-11-25T01:01:59Z", "\ud800", "\udfff\ud800",
    "WechatyBotLoggedOut", "bob", "x" * 5000, "\u2028\u0085\x00", "🤖" * 100, {"alertname": ""},
    {"alertname": "WechatyBotLoggedOut", "bot": "bob"}, [{"status": "firing"}],
]  # fmt: skip
BIG_NUMBER = "1" * 5000


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


DOCS = [json.loads(body) for body in REAL_PAYLOADS]
PATHS = [_paths(doc)[1:] for doc in DOCS]


def hostile_body(seed: int) -> bytes:
    """A real Alertmanager payload with fields replaced, removed or retyped, then maybe mangled
    as bytes (cut, flipped, nested past any recursion limit, a 5000-digit number)."""
    r = random.Random(seed)
    i = r.randrange(len(DOCS))
    doc = json.loads(REAL_PAYLOADS[i])
    for _ in range(r.randrange(4)):
        path = r.choice(PATHS[i])
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            if r.random() < 0.25:
                del node[path[-1]]
            else:
                node[path[-1]] = copy.deepcopy(r.choice(NASTY))  # NASTY stays as it is
        except (KeyError, IndexError, TypeError):
            pass
    text = json.dumps(doc, ensure_ascii=r.random() < 0.5)
    body = text.encode("utf-8", "surrogatepass")
    kind = r.randrange(10)
    if kind == 0:
        body = body[: r.randrange(len(body) + 1)]
    elif kind == 1 and body:
        mangled = bytearray(body)
        for _ in range(r.randrange(1, 4)):
            mangled[r.randrange(len(mangled))] = r.randrange(256)
        body = bytes(mangled)
    elif kind == 2:
        depth = r.choice([100, 1000, 10**5])
        body = body.replace(b'"alerts":', b'"alerts":' + b"[" * depth, 1) + b"]" * depth
    elif kind == 3:
        body = body.replace(b'"truncatedAlerts":0', f'"truncatedAlerts":{BIG_NUMBER}'.encode())
    return body


# Three in four examples come from the seeded mutator, one in four is Hypothesis' own bytes.
BODIES = st.one_of(
    SEEDS.map(hostile_body),
    SEEDS.map(hostile_body),
    SEEDS.map(hostile_body),
    st.binary(max_size=300),
)
NOW = 1795568700.0
TIME_ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12")]


MESSAGES = (default_messages("zh"), default_messages("en"))


def _texts(body: bytes) -> int:
    """Decode, then build every message the receiver could send about each alert."""
    try:
        notification = decode_notification(body)
    except PayloadError as exc:
        exc.reason.encode("utf-8")
        return 0
    for alert in notification.alerts:
        tz = TIME_ZONES[len(alert.fingerprint) % len(TIME_ZONES)]
        bot = alert.bot or "bot"
        m = MESSAGES[len(alert.fingerprint) % len(MESSAGES)]  # zh and en alike
        texts = [
            generic_text(m, alert, now=NOW, tz=tz),
            logged_out_text(m, alert, bot, now=NOW, tz=tz, qr_seen_at=alert.starts_at),
            no_qr_text(m, alert, bot, now=NOW, tz=tz, wait_seconds=20),
            exporter_down_text(m, alert, bot, now=NOW, tz=tz, reason="down"),
            back_online_text(m, alert, bot, now=NOW, tz=tz),
            qr_timeout_text(m, [bot], waited=20),
        ]
        for text in texts:
            assert len(text) <= MAX_TEXT_CHARS + 200
            text.encode("utf-8")  # sent to WeChat, written to the outbox
        alert.dedupe_key.encode("utf-8")  # stored in SQLite
        alert.resolved_key.encode("utf-8")
    return len(notification.alerts)


@pytest.mark.parametrize("body", [b"[" * 10**5, b"1" * 5000, b'{"a":' * 10**4])
def test_payload_parser_known_escapes(body: bytes) -> None:
    """Found by the fuzzer: these raised RecursionError / ValueError out of the parser."""
    with pytest.raises(PayloadError):
        decode_notification(body)


def test_payload_out_of_range_times_and_lone_surrogates() -> None:
    """Found by the fuzzer: a start time no time zone can show; labels no encoder takes."""
    doc = json.loads(REAL_PAYLOADS[0])
    doc["alerts"][0]["startsAt"] = "9999-12-31T23:59:59-23:59"
    with pytest.raises(PayloadError, match="out of range"):
        decode_notification(json.dumps(doc).encode())
    doc = json.loads(REAL_PAYLOADS[0])
    doc["alerts"][0]["labels"]["instance"] = "b\ud800ob"
    doc["alerts"][0]["fingerprint"] = "\udfff"
    assert _texts(json.dumps(doc).encode()) == 1
    doc["alerts"][0]["labels"]["bot"] = "b\ud800ob"  # no bot name: refused with its reason
    with pytest.raises(PayloadError, match=r"labels\.bot: not a bot name"):
        decode_notification(json.dumps(doc).encode())


@pytest.mark.slow
@pytest.mark.timeout(HANG)
def test_fuzz_webhook_payload_parser(figures: Figures) -> None:
    tally = Tally()
    decoded = [0]

    def run(body: bytes) -> None:
        decoded[0] += _texts(body) > 0

    @FUZZ
    @given(BODIES)
    def case(body: bytes) -> None:
        tally.run(len(body), lambda: run(body))

    began = time.perf_counter()
    case()
    took = time.perf_counter() - began
    assert tally.cases >= EXAMPLES
    figures(
        f"{tally.cases} bodies in {took:.0f} s, {decoded[0]} decoded with alerts, the rest "
        f"PayloadError, nothing else raised; slowest case {tally.slowest * 1000:.1f} ms; "
        f"tracemalloc peak {tally.peak // 1024} KiB (for a {tally.peak_input // 1024} KiB body)",
        cases=tally.cases,
        seconds=took,
        decoded=decoded[0],
        slowest_ms=tally.slowest * 1000,
        peak_kib=tally.peak // 1024,
    )
