"""The pure side of the chat commands: parsing, policies, who is an admin, YES confirmations, TOTP
with a fixed clock, rate limits, splitting, reply text. No processes, no network, no sleeps."""

from __future__ import annotations

from collections import deque
from datetime import UTC

import pyotp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.chatops.kit import (
    ADA,
    ADMINS,
    EN,
    OPS,
    SECRET,
    SELF,
    STRANGER,
    T0,
    code_at,
    make_ctx,
    settings,
    texts,
)

from wechaty_exporter.chatops.commands import handle_message
from wechaty_exporter.chatops.model import Command, CommandState, Sender, Usage
from wechaty_exporter.chatops.parse import parse_command, parse_duration
from wechaty_exporter.chatops.policy import admin_bots, check_totp, totp_step
from wechaty_exporter.chatops.settings import CommandsSettings, ReplyRateLimit
from wechaty_exporter.chatops.texts import alerts_text, clean_line, split_text, status_text

TOTP = settings(totp_secret=SECRET)
CONFIRM = settings()


# --- parsing -------------------------------------------------------------------------------------

PARSE_CASES = [
    # text, settings, expected fields of the Command (or Usage key / None)
    ("help", CONFIRM, {"key": "help"}),
    ("HELP me", CONFIRM, {"key": "help", "args": ("me",)}),
    ("/Status", CONFIRM, {"key": "status"}),
    ("qr", CONFIRM, {"key": "qr", "bot": None}),
    ("QR Bob", CONFIRM, {"key": "qr", "bot": "Bob"}),  # arguments keep their case
    ("alerts bob", CONFIRM, {"key": "alerts", "bot": "bob"}),
    ("Silence bob 2h Moving  House", CONFIRM,
     {"key": "silence", "bot": "bob", "duration": 7200.0, "comment": "Moving House"}),
    ("silence bob 1h30m", CONFIRM, {"key": "silence", "duration": 5400.0, "comment": ""}),
    ("silence bob 2h ticket 123456", TOTP,
     {"key": "silence", "comment": "ticket", "code": "123456"}),
    ("silences", CONFIRM, {"key": "silences"}),
    ("unsilence 3F2A-b", CONFIRM, {"key": "unsilence", "silence_id": "3F2A-b"}),
    ("ack bob", CONFIRM, {"key": "ack", "bot": "bob"}),
    ("restart bob", TOTP, {"key": "restart", "bot": "bob", "code": None}),
    ("RESTART bob 123456", TOTP,
     {"key": "restart", "bot": "bob", "code": "123456", "args": ("bob",)}),
    ("log bob", CONFIRM, {"key": "log", "bot": "bob", "lines": 20}),
    ("log bob 5", CONFIRM, {"key": "log", "lines": 5}),
    ("log bob 5000", CONFIRM, {"key": "log", "lines": 200}),  # capped
    ("rescue OFF bob", CONFIRM, {"key": "rescue_off", "bot": "bob"}),
    ("rescue on bob", CONFIRM, {"key": "rescue_on", "bot": "bob"}),
    ("rescue off bob 123456", TOTP, {"key": "rescue_off", "code": "123456"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "config", "expected"), PARSE_CASES)
def test_parse(text: str, config: CommandsSettings, expected: dict[str, object]) -> None:
    parsed = parse_command(text, config)
    assert isinstance(parsed, Command), parsed
    for name, value in expected.items():
        assert getattr(parsed, name) == value, (name, parsed)
    assert "123456" not in parsed.shown


USAGE_CASES = [
    ("hello there", CONFIRM, "unknown"),
    ("status bob", CONFIRM, "status"),
    ("qr alice bob", CONFIRM, "qr"),
    ("silence bob", CONFIRM, "silence"),
    ("silence bob 2x", CONFIRM, "silence"),
    ("silence bob 30s", CONFIRM, "silence"),  # under a minute
    ("silence bob 9999h", CONFIRM, "silence"),  # over silence_max
    ("restart", CONFIRM, "restart"),
    ("restart bob 123456", CONFIRM, "restart"),  # no TOTP configured: a code is an extra arg
    ("restart bob now 123456", TOTP, "restart"),
    ("unsilence", CONFIRM, "unsilence"),
    ("log", CONFIRM, "log"),
    ("log bob -3", CONFIRM, "log"),
    ("log bob 0", CONFIRM, "log"),
    ("rescue bob", CONFIRM, "rescue_on"),
    ("rescue off", CONFIRM, "rescue_off"),
]


@pytest.mark.parametrize(("text", "config", "key"), USAGE_CASES)
def test_parse_usage(text: str, config: CommandsSettings, key: str) -> None:
    parsed = parse_command(text, config, EN)
    assert isinstance(parsed, Usage), parsed
    assert parsed.key == key
    assert parsed.message.startswith(("Usage: ", "Unknown command ", "silence: ")), parsed


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_parse_empty_is_not_a_command(text: str) -> None:
    assert parse_command(text, CONFIRM) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1H30M", 5400),
     ("", None), ("2", None), ("h", None), ("1m2h", None), ("-1h", None)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


# --- policies ------------------------------------------------------------------------------------

DANGEROUS = ("restart", "silence", "unsilence", "ack", "rescue_off", "log")  # log: it may leak
SAFE = ("help", "status", "qr", "alerts", "silences", "rescue_on")


@pytest.mark.parametrize("key", DANGEROUS + SAFE)
def test_policy_defaults(key: str) -> None:
    dangerous = key in DANGEROUS
    assert CommandsSettings().policy(key) == ("confirm" if dangerous else "none")
    assert CommandsSettings(totp_secret=SECRET).policy(key) == ("totp" if dangerous else "none")


def test_policy_overrides() -> None:
    s = CommandsSettings(totp_secret=SECRET, security=(("log", "totp"), ("ack", "none")))
    assert (s.policy("log"), s.policy("ack"), s.policy("restart")) == ("totp", "none", "totp")


# --- who is an admin -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "resolved", "bots"),
    [
        (ADA, {}, ("alice", "bob")),  # alice by id, bob by weixin
        (OPS, {}, ("alice",)),
        (STRANGER, {}, ()),  # Ada's display name is not enough
        (Sender("wxid_x", alias="ada_weixin"), {}, ("bob",)),  # the owner's remark is trusted
        (Sender("wxid_x", name="ada_weixin"), {}, ()),  # a self-chosen name is not
        (STRANGER, {"ada_weixin": "wxid_stranger"}, ("bob",)),  # the messenger resolved it so
        (SELF, {}, ()),
        (Sender("wxid_admin01", room="room@chatroom"), {}, ()),  # groups never
        (Sender(""), {"": ""}, ()),
    ],
)
def test_admin_bots(sender: Sender, resolved: dict[str, str | None], bots: tuple[str]) -> None:
    assert admin_bots(sender, ADMINS, resolved) == bots


class Directory:
    """A ContactResolver as the messenger behaves: a name resolves to one id, or raises."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.asked: list[str] = []

    async def resolve(self, to: str) -> str:
        self.asked.append(to)
        if to not in self.known:
            raise LookupError(f"no contact matches {to!r}")
        return self.known[to]


async def test_admin_by_name_only_through_the_resolver() -> None:
    directory = Directory({"Carol": "wxid_carol"})
    ctx, audits = make_ctx(admins={"bob": ("Carol",)}, resolver=directory)
    carol = Sender("wxid_carol", name="Carol")
    assert texts(await handle_message(ctx, carol, "help", T0)).startswith("Your bots: bob")
    fake = Sender("wxid_fake", name="Carol")
    assert await handle_message(ctx, fake, "restart bob", T0) == []
    assert await handle_message(ctx, fake, "restart bob", T0 + 1) == []
    assert directory.asked == ["Carol"]  # cached (hit or miss), not a lookup per message
    assert audits.outcomes() == [("help", "ok"), ("restart", "ignored"), ("restart", "ignored")]


# --- strangers and the bot itself ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "text", "audited"),
    [
        (STRANGER, "restart bob 123456", True),
        (STRANGER, "qr", True),
        (STRANGER, "YES", False),
        (STRANGER, "hello", False),
        (SELF, "restart bob", False),
        (Sender("wxid_admin01", room="room@chatroom"), "status", False),
    ],
)
async def test_strangers_get_nothing(sender: Sender, text: str, audited: bool) -> None:
    ctx, audits = make_ctx(settings=TOTP)
    assert await handle_message(ctx, sender, text, T0) == []
    assert [r.outcome for r in audits.records] == (["ignored"] if audited else [])
    assert "123456" not in "".join(r.line() for r in audits.records)
    assert ctx.state.pending == {}
    assert ctx.state.failures == {}
    assert ctx.state.buckets == {}


async def test_admin_gets_usage_and_unknown_bot() -> None:
    ctx, audits = make_ctx()
    assert "Unknown command" in texts(await handle_message(ctx, ADA, "reboot", T0))
    reply = texts(await handle_message(ctx, OPS, "rescue off bob", T0))
    assert reply == "Unknown bot 'bob'. Your bots: alice"  # Ops administers alice only
    assert audits.outcomes() == [("unknown", "usage"), ("rescue_off", "forbidden")]
    assert ctx.state.pending == {}


# --- YES within 60 s ---------------------------------------------------------------------------


async def test_confirm_yes_in_time_runs_it() -> None:
    ctx, audits = make_ctx()
    assert ctx.rescue is not None
    reply = texts(await handle_message(ctx, ADA, "rescue off bob", T0))
    assert reply == "Reply YES within 1 min to run: rescue off bob"
    assert ctx.rescue.rescue_enabled("bob")
    reply = texts(await handle_message(ctx, ADA, "yes", T0 + 59))
    assert "paused" in reply
    assert not ctx.rescue.rescue_enabled("bob")
    assert audits.outcomes() == [("rescue_off", "pending"), ("rescue_off", "ok")]
    assert audits.last().detail == "confirmed"
    # Consumed: a second YES confirms nothing.
    assert texts(await handle_message(ctx, ADA, "YES", T0 + 60)) == "Nothing to confirm."


async def test_confirm_late_yes_does_nothing() -> None:
    ctx, audits = make_ctx()
    assert ctx.rescue is not None
    await handle_message(ctx, ADA, "rescue off bob", T0)
    reply = texts(await handle_message(ctx, ADA, "YES", T0 + 60.5))
    assert reply == "Too late: rescue off bob was not run. Send it again."
    assert ctx.rescue.rescue_enabled("bob")
    assert audits.outcomes() == [("rescue_off", "pending"), ("rescue_off", "expired")]


async def test_confirm_yes_from_another_admin_does_nothing() -> None:
    ctx, audits = make_ctx()
    assert ctx.rescue is not None
    await handle_message(ctx, ADA, "rescue off alice", T0)
    assert texts(await handle_message(ctx, OPS, "YES", T0 + 1)) == "Nothing to confirm."
    assert ctx.rescue.rescue_enabled("alice")
    assert await handle_message(ctx, STRANGER, "YES", T0 + 2) == []
    assert ctx.rescue.rescue_enabled("alice")
    await handle_message(ctx, ADA, "YES", T0 + 3)  # still Ada's to confirm
    assert not ctx.rescue.rescue_enabled("alice")
    assert audits.outcomes() == [
        ("rescue_off", "pending"),
        ("yes", "usage"),
        ("rescue_off", "ok"),
    ]


async def test_confirm_no_cancels() -> None:
    ctx, audits = make_ctx()
    assert ctx.rescue is not None
    await handle_message(ctx, ADA, "rescue off bob", T0)
    assert texts(await handle_message(ctx, ADA, "no", T0 + 1)) == "Cancelled: rescue off bob"
    assert texts(await handle_message(ctx, ADA, "yes", T0 + 2)) == "Nothing to confirm."
    assert ctx.rescue.rescue_enabled("bob")
    assert audits.outcomes()[:2] == [("rescue_off", "pending"), ("rescue_off", "cancelled")]


async def test_safe_commands_run_at_once() -> None:
    ctx, audits = make_ctx()
    assert ctx.rescue is not None
    ctx.rescue.set_rescue("bob", False)
    assert "on" in texts(await handle_message(ctx, ADA, "Rescue ON bob", T0))
    assert ctx.rescue.rescue_enabled("bob")
    assert audits.outcomes() == [("rescue_on", "ok")]


# --- TOTP with a fixed clock ---------------------------------------------------------------------


async def test_totp_right_wrong_replayed() -> None:
    ctx, audits = make_ctx(settings=TOTP)
    assert ctx.rescue is not None
    right = code_at(T0)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    reply = texts(await handle_message(ctx, ADA, "rescue off bob", T0))
    assert reply == "rescue needs a code from your authenticator app: rescue off bob 123456"
    reply = texts(await handle_message(ctx, ADA, f"rescue off bob {wrong}", T0))
    assert reply == "Wrong code; nothing done (4 tries left)."
    assert ctx.rescue.rescue_enabled("bob")

    await handle_message(ctx, ADA, f"rescue off bob {right}", T0 + 1)
    assert not ctx.rescue.rescue_enabled("bob")

    ctx.rescue.set_rescue("bob", True)
    reply = texts(await handle_message(ctx, OPS, f"rescue off alice {right}", T0 + 2))
    assert reply.startswith("That code was already used")  # by anyone: one shared secret
    assert ctx.rescue.rescue_enabled("alice")
    assert audits.outcomes() == [
        ("rescue_off", "no_code"),
        ("rescue_off", "bad_code"),
        ("rescue_off", "ok"),
        ("rescue_off", "replayed"),
    ]
    lines = "\n".join(r.line() for r in audits.records)
    assert right not in lines
    assert wrong not in lines


def totp_command(code: str | None) -> Command:
    return Command("restart", "restart", ("bob",), bot="bob", code=code)


@pytest.mark.parametrize(
    ("offset_steps", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False)],
)
def test_totp_window(offset_steps: int, accepted: bool) -> None:
    code = pyotp.TOTP(SECRET).at(int(T0) + 30 * offset_steps)
    gate = check_totp(TOTP, CommandState(), ADA.id, totp_command(code), T0)
    assert gate.proceed is accepted
    assert gate.outcome == ("ok" if accepted else "bad_code")


def test_totp_an_older_code_after_a_newer_one_is_replayed() -> None:
    state = CommandState()
    newer, older = code_at(T0 + 30), code_at(T0)
    assert check_totp(TOTP, state, ADA.id, totp_command(newer), T0).proceed
    gate = check_totp(TOTP, state, ADA.id, totp_command(older), T0 + 1)
    assert (gate.proceed, gate.outcome) == (False, "replayed")


def test_totp_rate_limit() -> None:
    state = CommandState()
    for i in range(5):
        gate = check_totp(TOTP, state, ADA.id, totp_command("000000"), T0 + i)
        assert gate.outcome == "bad_code", i
    # Limited: even the right code is refused, and nothing is spent.
    gate = check_totp(TOTP, state, ADA.id, totp_command(code_at(T0 + 10)), T0 + 10)
    assert (gate.proceed, gate.outcome) == (False, "rate_limited")
    assert state.last_totp_step == -1
    # Per admin: Ops is not limited by Ada's mistakes.
    assert check_totp(TOTP, state, OPS.id, totp_command(code_at(T0 + 10)), T0 + 10).proceed
    # Ten minutes after the first failure, Ada's failures start to age out.
    later = T0 + 600 + 30
    assert check_totp(TOTP, state, ADA.id, totp_command(code_at(later)), later).proceed
    assert state.failures[ADA.id] == deque()


def test_totp_step_matches_rfc_6238() -> None:
    # RFC 6238 appendix B (SHA-1): T = 59 s → 94287082, T = 1111111109 s → 07081804; six digits
    # are the last six of those.
    rfc_secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    assert totp_step("287082", rfc_secret, 59.0) == 1
    assert totp_step("081804", rfc_secret, 1111111109.0) == 1111111109 // 30
    assert totp_step(code_at(T0), SECRET, T0) == int(T0 // 30)
    assert totp_step("12345", SECRET, T0) is None


# --- reply rate limit ----------------------------------------------------------------------------


async def test_reply_rate_limit_per_admin() -> None:
    ctx, audits = make_ctx(settings=settings(reply_rate_limit=ReplyRateLimit(3, 1.0)))
    for _ in range(3):
        assert await handle_message(ctx, ADA, "help", T0)
    assert texts(await handle_message(ctx, ADA, "help", T0)) == "Too many commands; wait a minute."
    assert await handle_message(ctx, ADA, "help", T0 + 1) == []  # warned once, then quiet
    assert await handle_message(ctx, OPS, "help", T0 + 1)  # others unaffected
    assert await handle_message(ctx, ADA, "help", T0 + 61)  # one per minute refills
    assert [o for _, o in audits.outcomes()].count("rate_limited") == 2


# --- help and audit ------------------------------------------------------------------------------


async def test_help_shows_the_check_each_command_needs() -> None:
    ctx, _ = make_ctx(settings=TOTP)
    reply = texts(await handle_message(ctx, ADA, "help", T0))
    assert reply.splitlines()[0] == "Your bots: alice, bob"
    assert "rescue off <bot> <code> — stop DMs about the bot" in reply
    assert "rescue on <bot> — resume them" in reply
    assert "restart" not in reply  # no runner, no argv: not offered
    ctx, _ = make_ctx()
    assert "rescue off <bot> (confirm with YES)" in texts(
        await handle_message(ctx, OPS, "help", T0)
    )


async def test_one_audit_record_per_command() -> None:
    ctx, audits = make_ctx(settings=TOTP)
    messages = ["help", "qr", "nonsense", "log bob", f"rescue off bob {code_at(T0)}", "YES"]
    for i, text in enumerate(messages):
        await handle_message(ctx, ADA, text, T0 + i)
    assert audits.outcomes() == [
        ("help", "ok"),
        ("qr", "forbidden"),  # no exporter configured here
        ("unknown", "usage"),
        ("log", "forbidden"),  # no log file configured
        ("rescue_off", "ok"),
        ("yes", "usage"),
    ]
    assert sum(ctx.state.outcomes.values()) == len(messages)
    line = audits.records[4].line()
    assert line.startswith("command audit: sender='wxid_admin01' name='Ada Admin'")
    assert "outcome=ok" in line


def test_audit_line_cannot_be_forged() -> None:
    parsed = parse_command("silence bob 2h x\ncommand audit: outcome=ok", CONFIRM)
    assert isinstance(parsed, Command)
    from wechaty_exporter.chatops.model import AuditRecord

    line = AuditRecord(T0, "wxid\nx", "n", "silence", parsed.shown, "ok").line()
    assert "\n" not in line


# --- splitting and text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "chunks"),
    [
        ("short", 10, ["short"]),
        ("a\nb\nc", 3, ["a\nb", "c"]),
        ("0123456789abc", 5, ["01234", "56789", "abc"]),
        ("ab\n0123456789", 5, ["ab", "01234", "56789"]),
        ("", 5, [""]),
    ],
)
def test_split_text(text: str, limit: int, chunks: list[str]) -> None:
    assert split_text(text, limit) == chunks


@given(st.text(alphabet="ab \n中", max_size=300), st.integers(min_value=1, max_value=40))
def test_split_text_bounds_and_keeps_the_words(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(len(c) <= limit for c in chunks)
    assert "".join("".join(chunks).split()) == "".join(text.split())


def test_clean_line() -> None:
    assert clean_line("\x1b[32mINFO\x1b[0m ok\x07\tend\r") == "INFO ok\tend"


def test_status_text() -> None:
    docs = [
        {"bot": "alice", "logged_in": True, "user": "Alice", "qr_pending": False,
         "since": "2023-11-14T22:00:00.000+00:00", "last_error": None, "log_files": []},
        {"bot": "bob", "logged_in": False, "qr_pending": True,
         "since": "2023-11-14T22:10:00Z", "qr_seen_at": "2023-11-14T22:10:01Z",
         "last_error": "2023-11-14T22:09:00Z",
         "log_files": [{"path": "/var/log/bob.log", "present": False}]},
    ]  # fmt: skip
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    text = status_text(
        docs, ["alice", "bob", "carol"], now=now, tz=UTC, paused=["bob"], messages=EN
    )
    assert text.splitlines() == [
        "alice: logged in as Alice since 2023-11-14 22:00 UTC (13 min ago)",
        "bob: LOGGED OUT since 2023-11-14 22:10 UTC (3 min ago)",
        "  QR waiting since 2023-11-14 22:10 UTC (3 min ago); send: qr bob",
        "  last error line 2023-11-14 22:09 UTC (4 min ago)",
        "  log file missing: /var/log/bob.log",
        "  rescue paused (rescue on bob to resume)",
        "carol: not watched by the exporter",
    ]


def test_alerts_text_empty() -> None:
    assert alerts_text([], now=T0, tz=UTC, messages=EN) == "No alerts firing."


async def test_a_lone_code_never_reaches_the_audit_log() -> None:
    ctx, audits = make_ctx(settings=TOTP)
    await handle_message(ctx, ADA, "rescue off bob", T0)
    code = code_at(T0)
    reply = texts(await handle_message(ctx, ADA, code, T0 + 1))  # sent on its own, by habit
    assert reply.startswith("Unknown command")
    assert audits.outcomes()[-1] == ("unknown", "usage")
    assert code not in audits.last().line()
    assert "******" in audits.last().line()


def test_default_audit_sink_warns_on_failed_codes(caplog: pytest.LogCaptureFixture) -> None:
    from wechaty_exporter.chatops.model import AuditRecord, CommandContext

    sink = CommandContext(settings=TOTP, admins=ADMINS).audit
    with caplog.at_level("INFO", logger="wechaty_exporter.audit"):
        sink(AuditRecord(T0, ADA.id, ADA.name, "restart", "restart bob", "bad_code", "bob"))
        sink(AuditRecord(T0, ADA.id, ADA.name, "status", "status", "ok"))
    assert [(r.levelname, r.name) for r in caplog.records] == [
        ("WARNING", "wechaty_exporter.audit"),
        ("INFO", "wechaty_exporter.audit"),
    ]
    assert "outcome=bad_code" in caplog.records[0].getMessage()


async def test_admin_of_one_bot_by_id_and_of_another_by_name() -> None:
    directory = Directory({"Ada Admin": ADA.id})
    ctx, _ = make_ctx(admins={"alice": (ADA.id,), "bob": ("Ada Admin",)}, resolver=directory)
    reply = texts(await handle_message(ctx, ADA, "help", T0))
    assert reply.splitlines()[0] == "Your bots: alice, bob"
    assert directory.asked == ["Ada Admin"]


def test_the_core_imports_no_io_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from wechaty_exporter.chatops import commands, handlers, model, parse, policy, settings"
        ", texts\n"
        "print(sorted(m for m in ('asyncio', 'aiohttp', 'wechaty', 'prometheus_client')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
