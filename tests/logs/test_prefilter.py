"""`LineParser.feed_block` (the whole-block prefilter replay uses) is exactly per-line `feed`.

The prefilter skips runs of lines that provably hold no event; these tests compare it with feeding
every line on mixes of the sample logs' lines, their fragments, and every wrapper (pm2 console,
pm2 --time, docker stamps, ANSI, CR, pm2 JSON with and without escapes, overlong lines, bad UTF-8),
split into blocks anywhere, including inside a QRCodeTerminal entry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wechaty_exporter.logs import replay
from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.dialects.prefilter import quiet_run
from wechaty_exporter.logs.events import Event
from wechaty_exporter.logs.state import BotState

DATA = Path(__file__).resolve().parents[1] / "data" / "dialects"
NOW = 1_764_000_000.0
SAMPLES = sorted(
    {line for path in sorted(DATA.glob("*.log")) for line in path.read_text("utf-8").splitlines()}
)
EXTRA = [
    "10:00:00 INFO StarterBot Message#Text[🗣Contact<Alice>]\thello",
    "10:00:00 VERB PuppetService onGrpcStreamEvent({type:EVENT_TYPE_MESSAGE(9)})",
    "10:00:00 INFO WechatyPluginContrib EventLogger message: Message#Text[🗣Contact<A>]\thi",
    "10:00:00 INFO Bot \x1b[0monScan: Waiting(2) - https://login.weixin.qq.com/l/ansi",
    "10:00:00 INFO Bot Con\x1b[0mtact<Bob> login",
    "10:00:00 \x1b[31mERR\x1b[39m PuppetService boom",
    "10:00:00 \x1b[32mINFO\x1b[39m Bot \x1b[1mContact<Bob> logout",
    "10:00:00 \x1b[32mINFO\x1b[39m Event\x1b[0mLogger scan: https://login.weixin.qq.com/l/x,2,",
    "2026-11-25 09:00:00,000 - Wechaty - INFO - receive message <Message#Text[]\thi>",
    "2026-11-25 09:00:00,000 - Wechaty - ERRORS - x",
    "2026-11-25 09:00:00,000 - Wechaty - FATAL - boom",
    "2026-11-25 09:00:00,000 - Wechaty - CRITICAL - boom",
    '2026-11-25T09:00:00.000+08:00 INFO wechaty-exporter login {"user":"B"}',
    "2026-11-25T09:00:00Z INFO wechaty-exporter logout {}",
    "10:00:01 INFO WechatyPluginContrib QRCodeTerminal Login QR Code Status: Waiting(2)",
    "QR Code Image URL: https://login.weixin.qq.com/l/IdPre",
    "10:00:02 INFO EventLogger scan: https://login.weixin.qq.com/l/IdPfx==,2,",
    "10:00:02 INFO EventLogger logout: Contact<Bob>,kicked",
    "10:00:03 INFO QRCodeTerminal Login QR Code Status: Waiting(2)",
    "10:00:04  INFO  Bot  Contact<Bob> login",
    # wechaty-plugin-contrib 1.12's EventLogger: JSON arrays, chat escaped inside them
    '10:00:05 INFO WechatyPluginContrib EventLoggerPlugin() scan: ["https://login.weixin.qq.com'
    '/l/IdJs==",2,null]',
    '10:00:05 INFO WechatyPluginContrib EventLoggerPlugin() scan: ["https://login.weixin.qq.com'
    '/l/IdJs==",5,null]',
    '10:00:06 INFO WechatyPluginContrib EventLoggerPlugin() login: [{"id":"b","payload":'
    '{"name":"Bob"}}]',
    '10:00:07 INFO WechatyPluginContrib EventLoggerPlugin() logout: [{"id":"b"},"为了你的帐号'
    '安全，请重新登录。"]',
    '10:00:08 INFO WechatyPluginContrib EventLoggerPlugin() message: [{"payload":{"text":"\\n'
    '10:00:00 INFO Bot onScan: Waiting(2) - https://login.weixin.qq.com/l/x"}}]',
    "10:00:08 INFO WechatyPluginContrib EventLoggerPlugin() ready: []",
    "10:00:08 INFO WechatyPluginContrib EventLoggerPlugin() login: {}",
    "10:00:08 INFO WechatyPluginContrib EventLoggerPlugin()  login: [{}]",
    "10:00:08 INFO EventLoggerPlugin() login: [{}]",
    "10:00:08 ERR WechatyPluginContrib EventLoggerPlugin() error: [{}]",
    '{"message":"10:00:00 INFO Bot Message#Text[]\\thi\\n","app_name":"bob",'
    '"message":"10:00:00 INFO X Contact<Bob> login"}',
    '{"message":"bob | 10:00:00 INFO Bot chat\\n10:00:01 INFO Bot Contact<Bob> login\\n",'
    '"app_name":"bob"}',
]
# brolog lines with a coloured level, the one ANSI shape the prefilter skips when it is chat
EXTRA += [
    re.sub(r"^(\d\d:\d\d:\d\d +)([A-Z]+)", "\\1\x1b[32m\\2\x1b[39m", line)
    for line in SAMPLES + EXTRA
    if re.match(r"\d\d:\d\d:\d\d +[A-Z]+ ", line)
]
WRAPPERS = [
    "",
    "0|bob    | ",
    "PM2      | ",
    "bob      | ",
    "2026-11-25T10:00:00: ",
    "2026-11-25 10:00:01 +08:00: ",
    "2026-11-25 10:00:02.250: ",
    "2026-11-25T02:00:00.123456789Z ",
    "2026-11-25T02:00:00+0800 ",
    "{",
    "| ",
    "10:00:00 | ",
]
ESCAPES = ["\x1b[32m", "\x1b[0m", "\x1b]0;title\x07", "\x1b]0;open", "\x1b[", "\x1bM", "\x1b"]


def _pieces() -> list[str]:
    pieces = {p for line in SAMPLES + EXTRA for p in re.split(r"(?<=[ :<>(),|\t=\-])", line)}
    return sorted(pieces - {""})


PIECES = _pieces()


@st.composite
def physical_line(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind <= 3:
        line = draw(st.sampled_from(SAMPLES + EXTRA))
    elif kind <= 5:
        line = "".join(draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12)))
    elif kind == 6:
        line = draw(st.text(max_size=30))
    else:
        parts = draw(st.lists(st.sampled_from(SAMPLES + EXTRA), min_size=1, max_size=3))
        parts = [draw(st.sampled_from(["", "", "", *WRAPPERS])) + part for part in parts]
        message = "\n".join(parts) + draw(st.sampled_from(["\n", "", "\r\n"]))
        fields: dict[str, object] = {"message": message}
        fields |= draw(
            st.sampled_from(
                [
                    {"timestamp": "2026-11-25T02:00:00.000Z", "type": "out", "process_id": 0},
                    {"app_name": "bob"},
                    {"process_id": 1.5e3, "ok": True, "none": None},
                    {},
                ]
            )
        )
        ascii_only = draw(st.booleans())
        separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
        line = json.dumps(fields, ensure_ascii=ascii_only, separators=separators)
        if draw(st.integers(0, 3)) == 0:  # a second "message" key: json.loads keeps the last
            line = line[:-1] + ',"message":"10:00:00 INFO X Contact<Bob> login"}'
        if draw(st.integers(0, 3)) == 0:  # capitals (and so every keyword) as \u escapes
            line = re.sub("[A-Z]", lambda m: f"\\u{ord(m.group()):04x}", line)
    for _ in range(draw(st.integers(0, 2))):
        line = draw(st.sampled_from(WRAPPERS)) + line
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from(ESCAPES)) + line[at:]
    if draw(st.integers(0, 9)) == 0:
        at = draw(st.integers(0, len(line)))
        line = (
            line[:at]
            + draw(st.sampled_from(["x" * 9000, " " * 9000, "\x1b[" + "1" * 9000]))
            + line[at:]
        )
    if draw(st.booleans()):
        line += "\r"
    return line


@st.composite
def log_bytes(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(physical_line(), max_size=12))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if data and draw(st.integers(0, 4)) == 0:  # bad UTF-8 somewhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xe4\xb8", b"\xc3"])) + data[at:]
    if lines and draw(st.booleans()):
        data += b"\n"
    return data


def per_line(data: bytes, max_chars: int | None = None) -> tuple[list[Event], bool]:
    parser = LineParser()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    events: list[Event] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace")
        if max_chars is not None:
            line = line[:max_chars]
        events += parser.feed(line, NOW)
    return events, parser.awaiting_continuation


def blockwise(
    data: bytes, cuts: list[int], max_chars: int | None = None
) -> tuple[list[Event], bool]:
    """feed_block over `data` split after the newlines at the given (sorted) positions."""
    parser = LineParser()
    newlines = [i + 1 for i, b in enumerate(data) if b == 0x0A]
    bounds = sorted({newlines[c % len(newlines)] for c in cuts} if newlines else set())
    events: list[Event] = []
    start = 0
    for bound in [*bounds, len(data)]:
        events += parser.feed_block(data[start:], NOW, max_chars, end=bound - start)
        start = bound
    return events, parser.awaiting_continuation


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log_bytes(), st.lists(st.integers(0, 50), max_size=4), st.sampled_from([None, 40, 8192]))
def test_feed_block_equals_feeding_every_line(
    data: bytes, cuts: list[int], max_chars: int | None
) -> None:
    assert blockwise(data, cuts, max_chars) == per_line(data, max_chars)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.log")), ids=lambda p: p.name)
def test_sample_logs_blockwise(path: Path) -> None:
    data = path.read_bytes()
    for cuts in ([], [1], [3, 4], list(range(0, 60, 2))):
        assert blockwise(data, cuts) == per_line(data)


QUIET = [
    "10:00:00 INFO StarterBot Message#Text[🗣Contact<Alice>@Room<Ops 运维群>]\thello 好的",
    "10:00:00 VERB PuppetService onGrpcStreamEvent({type:EVENT_TYPE_MESSAGE(9)})",
    "10:00:00 WARN PuppetService startGrpcStream() heartbeat late\r",
    "2026-11-25T10:00:00: 10:00:00 INFO StarterBot Message#Text[🗣Contact<A>]\thi",
    "2026-11-25T02:00:00.123456789Z 2026-11-25 09:00:00,000 - Wechaty - INFO - receive message <x>",
    "0|bob    | 10:00:10 INFO StarterBot Message#Text[🗣Contact<Alice>]\thi",
    '{"message":"10:00:09 INFO StarterBot Message#Text[🗣Contact<Alice>]\\thello\\n",'
    '"timestamp":"2026-11-25T02:00:09.000Z","type":"out","process_id":0,"app_name":"bob"}',
]


@pytest.mark.parametrize("line", QUIET)
def test_chat_lines_are_skipped(line: str) -> None:
    """The prefilter is worth having: ordinary chat in every wrapper is skipped, not fed."""
    data = (line + "\n").encode()
    assert quiet_run(False).match(data).end() == len(data)  # type: ignore[union-attr]
    assert quiet_run(True).match(data).end() == len(data)  # type: ignore[union-attr]


def test_coloured_chat_is_skipped() -> None:
    data = "10:00:00 \x1b[32mINFO\x1b[39m StarterBot Message#Text[🗣Contact<A>]\thi\n".encode()
    assert quiet_run(True).match(data).end() == len(data)  # type: ignore[union-attr]


def _matters(line: str) -> bool:
    parser = LineParser()
    return bool(parser.feed(line, NOW)) or parser.awaiting_continuation


@pytest.mark.parametrize("line", [line for line in SAMPLES + EXTRA if _matters(line)])
def test_event_lines_are_never_skipped(line: str) -> None:
    data = (line + "\n").encode()
    quiet = quiet_run(True) if b"\x1b" in data else quiet_run(False)
    assert quiet.match(data).end() == 0  # type: ignore[union-attr]


def test_replay_file_across_block_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"".join(p.read_bytes() for p in sorted(DATA.glob("*.log")))
    path = tmp_path / "mix.log"
    path.write_bytes(data + b"10:00:00 INFO Bot Contact<Bob> logout kicked")  # no final newline
    expected = BotState()
    parser = LineParser()
    now = path.stat().st_mtime
    count = 0
    for raw in path.read_bytes().split(b"\n"):
        count += 1
        for event in parser.feed(raw.decode("utf-8", "replace"), now):
            expected.apply(event)
    expected.saw_lines(count, now)
    for chunk in (7, 64, 1000, 1 << 20):
        monkeypatch.setattr(replay, "CHUNK", chunk)
        state = BotState()
        replay.replay_file(state, str(path))
        assert state == expected
