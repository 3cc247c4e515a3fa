"""Edge rules of chatops/policy.py, called directly with a fixed clock (no context, no messenger).

Each test names the documented rule it holds (policy.py's docstring, docs/configuration.md);
several were written against mutants the rest of the suite let through (docs/MUTATION.md).
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import pyotp
import pytest

from wechaty_exporter.chatops.model import Command, CommandState, Pending, Sender
from wechaty_exporter.chatops.policy import (
    TOTP_STEP,
    admin_bots,
    allow_message,
    check_policy,
    check_totp,
    direct_match,
    redact_codes,
    take_confirmation,
    totp_step,
)
from wechaty_exporter.chatops.settings import CommandsSettings, ReplyRateLimit
from wechaty_exporter.delivery.templates import default_messages

T0 = 1_700_000_010.0  # 10 s into a 30 s TOTP step
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ADA, OPS = "wxid_admin01", "wxid_ops"
TOTP = CommandsSettings(totp_secret=SECRET)  # 5 failures per 600 s
EN = default_messages("en")  # the texts asserted below are the English templates'


def code_at(now: float) -> str:
    return pyotp.TOTP(SECRET).at(int(now))


def restart(code: str | None) -> Command:
    return Command("restart", "restart", ("bob",), bot="bob", code=code)


# --- TOTP: a replayed code is a failed attempt ------------------------------------------------


def test_a_replayed_code_counts_as_a_failed_attempt() -> None:
    """docs/configuration.md: totp_max_failures counts "wrong or replayed codes per admin"."""
    state = CommandState()
    right = code_at(T0)
    assert check_totp(TOTP, state, ADA, restart(right), T0).proceed
    assert state.failures[ADA] == deque()
    gate = check_totp(TOTP, state, ADA, restart(right), T0 + 1)
    assert (gate.proceed, gate.outcome) == (False, "replayed")
    assert list(state.failures[ADA]) == [T0 + 1]


def test_replaying_a_spent_code_over_and_over_locks_the_admin_out() -> None:
    """Replays are rate-limited like wrong codes: after 5, even the next right code is refused."""
    state = CommandState()
    spent = code_at(T0)
    assert check_totp(TOTP, state, ADA, restart(spent), T0).proceed
    for i in range(1, 6):
        assert check_totp(TOTP, state, ADA, restart(spent), T0 + i).outcome == "replayed", i
    fresh = T0 + TOTP_STEP  # the authenticator shows the next code now
    gate = check_totp(TOTP, state, ADA, restart(code_at(fresh)), fresh)
    assert (gate.proceed, gate.outcome) == (False, "rate_limited")
    assert state.last_totp_step == int(T0 // TOTP_STEP)  # the fresh code was not spent
    # Another admin is not limited by Ada's replays.
    assert check_totp(TOTP, state, OPS, restart(code_at(fresh)), fresh).proceed


def test_wrong_and_replayed_codes_add_up() -> None:
    state = CommandState()
    spent = code_at(T0)
    assert check_totp(TOTP, state, ADA, restart(spent), T0).proceed
    outcomes = []
    for i in range(1, 6):
        code = spent if i % 2 else "000000"
        outcomes.append(check_totp(TOTP, state, ADA, restart(code), T0 + i).outcome)
    assert outcomes == ["replayed", "bad_code", "replayed", "bad_code", "replayed"]
    assert check_totp(TOTP, state, ADA, restart(spent), T0 + 6).outcome == "rate_limited"


def test_tries_left_counts_down_to_the_limit() -> None:
    state = CommandState()
    replies = [check_totp(TOTP, state, ADA, restart("000000"), T0 + i, EN).text for i in range(5)]
    assert replies == [f"Wrong code; nothing done ({n} tries left)." for n in (4, 3, 2, 1, 0)]
    gate = check_totp(TOTP, state, ADA, restart("000000"), T0 + 5, EN)
    assert gate.outcome == "rate_limited"
    # The first failure at T0 ages out at T0 + 600: refused for 600 - 5 s, shown rounded up.
    assert gate.text == "Too many wrong codes. Codes are refused for 10 min."


def test_a_failure_ages_out_exactly_at_the_window() -> None:
    limit = replace(TOTP, totp_max_failures=1, totp_failure_window=100.0)
    state = CommandState()
    assert check_totp(limit, state, ADA, restart("000000"), T0).outcome == "bad_code"
    assert check_totp(limit, state, ADA, restart("000000"), T0 + 99.9).outcome == "rate_limited"
    assert check_totp(limit, state, ADA, restart("000000"), T0 + 100).outcome == "bad_code"


def test_a_right_code_clears_the_failures() -> None:
    state = CommandState()
    for i in range(4):
        check_totp(TOTP, state, ADA, restart("000000"), T0 + i)
    assert check_totp(TOTP, state, ADA, restart(code_at(T0 + 5)), T0 + 5).proceed
    assert state.failures[ADA] == deque()
    assert state.last_totp_step == int((T0 + 5) // TOTP_STEP)


def test_no_code_is_no_failure() -> None:
    state = CommandState()
    gate = check_totp(TOTP, state, ADA, restart(None), T0, EN)
    assert (gate.proceed, gate.outcome) == (False, "no_code")
    assert gate.text == "restart needs a code from your authenticator app: restart bob 123456"
    assert state.failures[ADA] == deque()


def test_without_a_secret_nothing_passes() -> None:
    gate = check_totp(CommandsSettings(), CommandState(), ADA, restart(code_at(T0)), T0)
    assert (gate.proceed, gate.outcome) == (False, "forbidden")
    assert "TOTP" in gate.text  # says why, in the messages' language


def test_the_refusal_rounds_the_wait_up_to_a_minute() -> None:
    state = CommandState()
    for i in range(5):
        check_totp(TOTP, state, ADA, restart("000000"), T0 + i)
    # The first failure ages out at T0 + 600: 60 s from T0 + 540 is "1 min", not "2 min".
    one = check_totp(TOTP, state, ADA, restart("000000"), T0 + 540).text
    two = check_totp(TOTP, state, ADA, restart("000000"), T0 + 539).text
    assert "1" in one and "2" not in one, one  # "... refused for 1 min."
    assert "2" in two and "1" not in two, two


def test_a_totp_policy_counts_failures_for_the_sender() -> None:
    state = CommandState()
    gate = check_policy(TOTP, state, ADA, restart("000000"), T0)
    assert gate.outcome == "bad_code"
    assert list(state.failures) == [ADA]
    assert list(state.failures[ADA]) == [T0]


def test_a_code_of_the_step_before_a_spent_one_is_replayed() -> None:
    state = CommandState()
    assert check_totp(TOTP, state, ADA, restart(code_at(T0)), T0).proceed
    gate = check_totp(TOTP, state, ADA, restart(code_at(T0 - TOTP_STEP)), T0 + 1)
    assert gate.outcome == "replayed"


def test_totp_step_window_edges() -> None:
    current = int(T0 // TOTP_STEP)
    assert totp_step(code_at(T0 - TOTP_STEP), SECRET, T0) == current - 1
    assert totp_step(code_at(T0 + TOTP_STEP), SECRET, T0) == current + 1
    assert totp_step(code_at(T0 + 2 * TOTP_STEP), SECRET, T0) is None
    assert totp_step(code_at(T0 - 2 * TOTP_STEP), SECRET, T0) is None


# --- policies, YES, budgets, redaction --------------------------------------------------------


def test_check_policy_none_totp_confirm() -> None:
    s = replace(TOTP, security=(("log", "none"), ("ack", "confirm")))
    state = CommandState()
    log = Command("log", "log", ("bob",), bot="bob")
    assert check_policy(s, state, ADA, log, T0).proceed
    assert state.pending == {}
    assert check_policy(s, state, ADA, restart(code_at(T0)), T0).proceed
    ack = Command("ack", "ack", ("bob",), bot="bob")
    gate = check_policy(s, state, ADA, ack, T0, EN)
    assert (gate.proceed, gate.outcome) == (False, "pending")
    assert gate.text == "Reply YES within 1 min to run: ack bob"
    assert state.pending[ADA] == Pending(ack, T0 + 60.0)


def test_yes_exactly_at_the_deadline_still_runs() -> None:
    command = restart(None)
    state = CommandState(pending={ADA: Pending(command, T0 + 60)})
    assert take_confirmation(state, ADA, T0 + 60) is command
    assert state.pending == {}
    state.pending[ADA] = Pending(command, T0 + 60)
    late = take_confirmation(state, ADA, T0 + 60.001, EN)
    assert late == ("Too late: restart bob was not run. Send it again.", "expired", command)
    assert take_confirmation(state, ADA, T0, EN) == ("Nothing to confirm.", "usage", None)


def test_message_budget_refills_and_warns_once() -> None:
    s = replace(TOTP, reply_rate_limit=ReplyRateLimit(burst=2, per_minute=6.0))
    state = CommandState()
    assert allow_message(s, state, ADA, T0) == (True, False)
    assert allow_message(s, state, ADA, T0) == (True, False)
    assert allow_message(s, state, ADA, T0) == (False, True)
    assert allow_message(s, state, ADA, T0 + 1) == (False, False)  # warned already
    assert allow_message(s, state, ADA, T0 + 10) == (True, False)  # 6/min: one token per 10 s
    assert allow_message(s, state, ADA, T0 + 10) == (False, True)  # a new cut-off: warn again
    assert allow_message(s, state, ADA, T0 + 1000)[0]
    assert state.buckets[ADA].tokens == pytest.approx(1.0)  # capped at the burst, then one spent
    assert allow_message(s, state, OPS, T0) == (True, False)


def test_no_time_passed_refills_nothing() -> None:
    s = replace(TOTP, reply_rate_limit=ReplyRateLimit(burst=1, per_minute=60.0))
    state = CommandState()
    assert allow_message(s, state, ADA, T0) == (True, False)
    assert allow_message(s, state, ADA, T0) == (False, True)  # one a second, none in 0 s
    assert allow_message(s, state, ADA, T0 + 0.5) == (False, False)
    assert allow_message(s, state, ADA, T0 + 1) == (True, False)


def test_redact_codes_only_lone_six_digit_numbers() -> None:
    assert redact_codes("restart bob 123456") == "restart bob ******"
    assert redact_codes("123456 654321") == "****** ******"
    assert redact_codes("ticket 1234567 and 12345") == "ticket 1234567 and 12345"
    assert redact_codes("abc123456def") == "abc******def"


def test_direct_match_fields() -> None:
    ada = Sender("wxid_admin01", name="Ada", weixin="ada_weixin", alias="boss")
    assert direct_match(ada, "wxid_admin01")
    assert direct_match(ada, "ada_weixin")
    assert direct_match(ada, "boss")
    assert not direct_match(ada, "Ada")  # a display name is never trusted
    assert not direct_match(ada, "")
    bare = Sender("wxid_x", name="", weixin="", alias="")
    assert not direct_match(bare, "")


def test_admin_bots_through_the_resolver_only_for_the_resolved_id() -> None:
    admins = {"alice": ("Carol",), "bob": ("wxid_carol",)}
    carol = Sender("wxid_carol", name="Carol")
    assert admin_bots(carol, admins, {"Carol": "wxid_carol"}) == ("alice", "bob")
    assert admin_bots(carol, admins, {"Carol": None}) == ("bob",)
    assert admin_bots(carol, admins, {"Carol": "wxid_other"}) == ("bob",)
