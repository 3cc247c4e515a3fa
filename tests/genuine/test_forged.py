"""The forged-line corpus: what the suspect rules reject of an attacker's forged lines, measured.

tests/genuine/forge.mjs runs the real wechaty 1.20 on wechaty-puppet-mock in every style that
writes chat text raw (the StarterBot, EventLogger 1.11, the ding-dong example, WECHATY_LOG
verbose and silly). A logged-in bot receives an attacker's playbook: each message a newline and
a forged event line, stamped with the bot's own clock (Waiting scans through every logger, other
accounts' logins, the bot's own login, Scanned, Confirmed, Timeout, an ERR line, and last a
forged logout followed by a forged Waiting scan); then the bot really logs out and prints a QR
that times out. Every line of each log is fed to the parser and the state machine in order.

A forged line is a line of one of the forged texts. Each one that reads as an event is:
rejected (every event a RejectedQr or a suspect), harmless (applied, but the login state, the
pending QR and the account stay as they were) or applied. Genuine lines must never give a
rejected or suspect event (false rejections), over this corpus and, in test_genuine.py and
tests/logs/test_forged.py, the genuine corpus, the sample logs, the dialect fixtures and the
bench generator's logs.

What no rule here can see through, and the tests pin: a forged logout (the bot then looks
logged out: the state machine has nothing to hold a Waiting scan after it against), a forged
line written whole (verbose and silly: wechaty-puppet-mock's `say(<text>)`), and any forged line
read while the state is unknown (the ding-dong example, whose own lines are never read). The
remedy is the self-log (`qr_source: self-log`, tests/exporter/test_selflog_exclusive.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from wechaty_exporter.logs.dialects.parser import LineParser
from wechaty_exporter.logs.events import ErrorLogged, RejectedQr, Suspect
from wechaty_exporter.logs.state import BotState

pytestmark = pytest.mark.timeout(240)

HERE = Path(__file__).resolve().parent
STYLES = ("starter", "eventlogger-1-11", "ding-dong", "verbose", "silly")
CUT_STYLES = ("starter", "eventlogger-1-11")  # chat text cut to 70 characters, state known
LEVEL = {"verbose": "verbose", "silly": "silly"}
PHISH = "http://weixin.qq.com/x/PHISHabc"


@dataclass
class Measured:
    """One log, line by line."""

    forged_lines: int = 0  # forged lines that read as an event
    rejected: int = 0
    harmless: int = 0
    applied: list[str] = field(default_factory=list)  # forged lines that changed the bot
    by: Counter[str] = field(default_factory=Counter)  # rejections by rule
    genuine_events: int = 0
    false_rejections: list[str] = field(default_factory=list)
    forged_qr_pending_at: list[str] = field(default_factory=list)  # lines that made it pending
    logged_out_by: list[str] = field(default_factory=list)  # forged lines that logged it out


def _forged_texts(record: dict[str, Any]) -> list[str]:
    return [part for text in record["messages"] for part in text.split("\n")[1:] if part]


def _is_forged(line: str, parts: list[str]) -> bool:
    """A line of a forged text: whole, cut by msg.toString(), or inside puppet-mock's say(...)."""
    return any(line.startswith(p) or (len(line) >= 5 and p.startswith(line)) for p in parts)


def measure(path: Path, record: dict[str, Any]) -> Measured:
    parts = _forged_texts(record)
    parser, state, got = LineParser(), BotState(), Measured()
    for raw in path.read_bytes().split(b"\n"):
        line = raw.decode("utf-8", "replace").removesuffix("\r")
        forged = _is_forged(line, parts)
        before = (state.logged_in, state.qr, state.user)
        applied = [state.apply(e) for e in parser.feed(line, 0.0)]
        events = [e for e in applied if not isinstance(e, ErrorLogged)]
        if not events:
            continue
        refused = [e for e in events if isinstance(e, RejectedQr | Suspect)]
        if not forged:
            got.genuine_events += len(events)
            got.false_rejections += [f"{e!r}: {line}" for e in refused]
            continue
        got.forged_lines += 1
        for e in refused:
            got.by["qr check" if isinstance(e, RejectedQr) else e.reason] += 1
        after = (state.logged_in, state.qr, state.user)
        if len(refused) == len(events):
            got.rejected += 1
        elif after == before:
            got.harmless += 1
        else:
            got.applied.append(line)
        qr = state.qr
        if qr is not None and qr.qrcode not in record["genuine_qrs"] and before[1] != qr:
            got.forged_qr_pending_at.append(line)
        if before[0] is True and state.logged_in is False:
            got.logged_out_by.append(line)
    return got


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Measured, dict[str, Any]]]:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "wechaty-plugin-contrib-1-11").is_dir():
        pytest.fail("node and tests/genuine/node_modules are needed (scripts/setup.sh --test)")
    out = tmp_path_factory.mktemp("forged")
    runs = {}
    for style in STYLES:
        env = {k: v for k, v in os.environ.items() if k not in ("WECHATY_LOG", "GENUINE_GO")}
        if style in LEVEL:
            env["WECHATY_LOG"] = LEVEL[style]
        sink = (out / f"{style}.log").open("wb")
        runs[style] = subprocess.Popen(
            [node, str(HERE / "forge.mjs"), style, str(out / f"{style}.json")],
            stdout=sink, stderr=sink, cwd=HERE, env=env,
        )  # fmt: skip
        sink.close()
    measured = {}
    for style, proc in runs.items():
        assert proc.wait(timeout=180) == 0, (out / f"{style}.log").read_text("utf-8")
        record = json.loads((out / f"{style}.json").read_text("utf-8"))
        measured[style] = (measure(out / f"{style}.log", record), record)
    return measured


@pytest.mark.parametrize("style", STYLES)
def test_no_genuine_event_is_rejected(corpus: dict[str, Any], style: str) -> None:
    got, _ = corpus[style]
    if style != "ding-dong":  # its own bare lines are never read
        assert got.genuine_events >= 7  # Waiting, Scanned, Confirmed, login, logout, Waiting, ...
    assert got.false_rejections == []


@pytest.mark.parametrize("style", CUT_STYLES)
def test_cut_chat_forges_nothing_until_a_forged_logout(corpus: dict[str, Any], style: str) -> None:
    """Where chat text is cut to 70 characters and the bot's state is known, no forged line
    changes the bot, except the forged logout, which the state machine cannot tell from a real
    one; the forged Waiting scan right after it then goes through (the documented limit)."""
    got, record = corpus[style]
    logout = f"INFO StarterBot Contact<{'HelperBob'}> logout"
    assert [line.split(" ", 1)[1] for line in got.applied] == [
        logout,
        f"INFO X onScan: Waiting(2) - {PHISH}",
    ]
    assert len(got.logged_out_by) == 1 and got.logged_out_by[0].endswith(logout)
    assert len(got.forged_qr_pending_at) == 1 and got.forged_qr_pending_at[0].endswith(PHISH)
    assert got.by["waiting_while_logged_in"] >= 2 and got.by["login_of_another_account"] >= 1
    assert got.forged_lines >= 12
    assert record["messages"][-2].endswith(logout)


@pytest.mark.parametrize("style", ["verbose", "silly", "ding-dong"])
def test_whole_forged_lines_and_an_unknown_state_are_the_limit(
    corpus: dict[str, Any], style: str
) -> None:
    """Stated, not hidden: where the whole chat text is logged (verbose, silly), or the state is
    unknown (ding-dong), forged lines go through. Strict: this fails the day they do not."""
    got, _ = corpus[style]
    assert got.applied
    assert got.rejected > 0  # what is rejected still is


def test_report_the_figures(corpus: dict[str, Any], record_property: Any) -> None:
    """The measured figures, per style and in all (`pytest -s` prints them)."""
    rows, total, rejected, harmless, fr, genuine, ruled, passed = [], 0, 0, 0, 0, 0, 0, 0
    for style in STYLES:
        got, _ = corpus[style]
        ruled += sum(n for rule, n in got.by.items() if rule != "qr check")
        passed += len(got.applied)
        total += got.forged_lines
        rejected += got.rejected
        harmless += got.harmless
        fr += len(got.false_rejections)
        genuine += got.genuine_events
        rows.append(
            f"{style:18} forged event lines {got.forged_lines:3}  rejected {got.rejected:3} "
            f"({100 * got.rejected / got.forged_lines:5.1f} %)  harmless {got.harmless:2}  "
            f"applied {len(got.applied):2}  by {dict(got.by)}"
        )
    rows.append(
        f"all: {rejected}/{total} forged event lines rejected ({100 * rejected / total:.1f} %), "
        f"{harmless} harmless, {total - rejected - harmless} applied; false rejections "
        f"{fr} of {genuine} genuine events; of the forged events past the QR check that would "
        f"change the bot, the suspect rules rejected {ruled} of {ruled + passed} "
        f"({100 * ruled / (ruled + passed):.1f} %)"
    )
    print("\n" + "\n".join(rows))
    record_property("forged_corpus", rows[-1])
    assert fr == 0
    assert rejected / total >= 0.5
