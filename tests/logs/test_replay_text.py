"""`replay`'s text output (`collector.render_text`, no prometheus_client) is byte for byte what
prometheus_client's `generate_latest` renders for `WechatyCollector`: one definition of every
metric (`collector.families`), two renderers that cannot drift apart unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from wechaty_exporter import __version__
from wechaty_exporter.exporter.collector import BotView, FileView, WechatyCollector, render_text
from wechaty_exporter.logs.events import (
    ErrorLogged,
    Event,
    Login,
    Logout,
    ProbeReceived,
    ProbeSent,
    RejectedQr,
    Scan,
    ScanStatus,
    Suspect,
)
from wechaty_exporter.logs.replay import replay_files
from wechaty_exporter.logs.state import BotState

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "tests" / "data").glob("**/*.log"))

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
labels = st.one_of(names, st.sampled_from(['a"b', "a\\b", "a\nb", "\\n", 'x\\"', "Ünï 名"]))
stamps = st.one_of(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.sampled_from([0.0, 1.0, 1764057600.0, 1764057600.123, 1e6, 12345678.9, 1e-7]),
)
qrs = st.just("https://login.weixin.qq.com/l/abc")


@st.composite
def events(draw: st.DrawFn) -> Event:
    at = draw(stamps)
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return Login(at, draw(st.one_of(st.none(), labels)))
    if kind == 1:
        return Logout(at, draw(st.one_of(st.none(), labels)), draw(st.one_of(st.none(), labels)))
    if kind == 2:
        return Scan(at, draw(st.sampled_from(list(ScanStatus))), draw(qrs))
    if kind == 3:
        return ErrorLogged(at)
    if kind == 4:
        return RejectedQr(at, draw(labels))
    if kind == 5:
        return ProbeReceived(at, draw(labels), draw(st.integers(0, 99)))
    if kind == 6:
        return ProbeSent(at, draw(labels), draw(st.integers(0, 99)))
    return Suspect(at, "waiting_while_logged_in", Scan(at, ScanStatus.WAITING, None))


@st.composite
def views(draw: st.DrawFn) -> list[BotView]:
    out = []
    for name in draw(st.lists(labels, max_size=3, unique=True)):
        state = BotState()
        for event in draw(st.lists(events(), max_size=8)):
            state.apply(event)
        if draw(st.booleans()):
            state.saw_lines(draw(st.integers(0, 10**12)), draw(stamps))
        files = tuple(
            FileView(path, *draw(st.tuples(st.booleans(), *[st.integers(0, 10**9)] * 4)))
            for path in draw(st.lists(labels, max_size=3))
        )
        out.append(BotView(name, state, files))
    return out


def through_prometheus_client(bots: list[BotView], version: str) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WechatyCollector(lambda: bots, version))
    return generate_latest(registry).decode()


@settings(max_examples=300, deadline=None)
@given(views(), labels)
def test_render_text_is_what_prometheus_client_renders(bots: list[BotView], version: str) -> None:
    assert render_text(bots, version) == through_prometheus_client(bots, version)


def test_no_bots() -> None:
    assert render_text([], "0.1.0") == through_prometheus_client([], "0.1.0")


def test_replay_command_prints_what_the_collector_renders(tmp_path: Path) -> None:
    """The command's output, for the sample logs, against prometheus_client in process."""
    assert SAMPLES, "tests/data holds the sample logs"
    paths = [str(p) for p in SAMPLES[:6]]
    done = subprocess.run(
        [sys.executable, "-m", "wechaty_exporter", "replay", "--bot", "bob",
         "--format", "prometheus", *paths],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    states = replay_files([("bob", p) for p in paths])
    views = [
        BotView(
            bot,
            state,
            tuple(FileView(p, True, 0, 0, 0, 0, dialect="auto") for p in paths),
        )
        for bot, state in states.items()
    ]
    assert done.stdout == through_prometheus_client(views, __version__)
    assert "wechaty_bot_logins_total" in done.stdout


def test_replay_imports_neither_prometheus_client_nor_the_rules(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    code = (
        "import sys; from wechaty_exporter.cli import main; "
        f"main(['replay', '--bot', 'b', '--format', 'prometheus', {str(empty)!r}]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('prometheus_client', 'aiohttp', 'http', 'yaml', 'logging') "
        "or m.endswith(('dialects.rules', 'dialects.patterns'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
