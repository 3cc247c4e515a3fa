"""What every template is checked with: each variable it gets, each case it tells apart."""

from __future__ import annotations

import functools
from typing import Any

from wechaty_exporter.delivery.chattext import format_duration


def _alert(language: str, **changes: Any) -> dict[str, Any]:
    alert = {
        "name": "WechatyBotLoggedOut", "status": "firing", "bot": "bob",
        "summary": "WeChat bot bob is logged out",
        "description": "bob is logged out and stays out until someone scans its login QR.",
        "runbook_url": "https://example.org/runbook#wechatybotloggedout",
        "labels": {"alertname": "WechatyBotLoggedOut", "bot": "bob", "severity": "critical",
                   "instance": "127.0.0.1:9839", "job": "wechaty"},
        "annotations": {"summary": "WeChat bot bob is logged out",
                        "description": "bob is logged out and stays out until someone scans "
                                       "its login QR.",
                        "runbook_url": "https://example.org/runbook#wechatybotloggedout"},
        "starts_at": "2026-11-25 09:01 CST", "ends_at": "",
        "ago": format_duration(300, language), "lasted": format_duration(300, language),
        "fingerprint": "59c41b3133069dd4", "generator_url": "http://prometheus:9090/graph",
    }  # fmt: skip
    alert.update(changes)
    return alert


def _status_bot(language: str, **changes: Any) -> dict[str, Any]:
    bot = {
        "name": "bob", "watched": True, "exporter_error": "", "state": "out", "user": "",
        "since": "2026-11-25 09:01 CST", "since_ago": format_duration(180, language),
        "qr_pending": True, "qr_since": "2026-11-25 09:02 CST",
        "qr_since_ago": format_duration(120, language), "last_error": "2026-11-25 09:00 CST",
        "last_error_ago": format_duration(240, language), "missing_logs": ["/var/log/bob.log"],
        "paused": True,
    }  # fmt: skip
    bot.update(changes)
    return bot


@functools.cache
def sample_values(language: str) -> dict[str, list[dict[str, Any]]]:
    """Template name → the values it is rendered with in `check_templates`, one per case."""
    d = functools.partial(format_duration, language=language)
    alert = functools.partial(_alert, language)
    resolved = alert(status="resolved", ends_at="2026-11-25 09:06 CST")
    status_bot = functools.partial(_status_bot, language)
    commands = [
        {"key": key, "check": check}
        for key, check in (
            ("help", "none"), ("status", "none"), ("qr", "none"), ("alerts", "none"),
            ("silence", "totp"), ("silences", "none"), ("unsilence", "confirm"),
            ("ack", "confirm"), ("restart", "totp"), ("log", "confirm"),
            ("rescue_off", "confirm"), ("rescue_on", "none"),
        )
    ]  # fmt: skip
    # fmt: off
    return {
        "alert_dm.txt.j2": [
            {"count": 3, "firing": 2, "resolved": 1, "bots": ["bob", "carol"],
             "alertnames": ["WechatyBotLoggedOut"], "qr_bots": ["bob"]},
            {"count": 1, "firing": 1, "resolved": 0, "bots": [], "alertnames": ["NoBot"],
             "qr_bots": []},
            {"count": 1, "firing": 0, "resolved": 1, "bots": ["bob"],
             "alertnames": ["WechatyBotLoggedOut"], "qr_bots": []},
        ],
        "qr_caption.txt.j2": [
            {"bot": "bob", "shown_at": "2026-11-25 09:02 CST", "index": 1, "count": 1},
            {"bot": "bob", "shown_at": "", "index": 2, "count": 3},
        ],
        "logged_out.txt.j2": [
            {"bot": "bob", "alert": alert(), "qr_caption": "Scan the QR code below.",
             "logout_reason": reason}
            for reason in ("为了你的帐号安全，请重新登录。", "")
        ],
        "qr_refresh.txt.j2": [
            {"bot": "bob", "shown_at": shown_at} for shown_at in ("2026-11-25 09:12 CST", "")
        ],
        "qr_attached.txt.j2": [{"bot": "bob", "filename": "bob-login-qr.png"}],
        "qr_not_attached.txt.j2": [{"bot": "bob"}],
        "no_qr.txt.j2": [{"bot": "bob", "alert": alert(), "wait": d(20)}],
        "exporter_down.txt.j2": [{"bot": "bob", "alert": alert(), "reason": "HTTP 500"}],
        "qr_timeout.txt.j2": [
            {"bots": ["bob"], "waited": d(20)},
            {"bots": ["bob", "carol"], "waited": d(20)},
        ],
        "back_online.txt.j2": [{"bot": "bob", "alert": resolved}],
        "rescuer_back.txt.j2": [
            {"bot": "bob", "alert": alert(name="WechatyNoRescuer", status="resolved",
                                          ends_at="2026-11-25 09:06 CST")},
        ],
        "login_test.txt.j2": [{"bot": "bob", "to": "wxid_bob", "now": "2026-11-25 09:07 CST"}],
        "alert.txt.j2": [
            {"alert": alert(name="WechatyLogStale", bot="")},
            {"alert": alert(status="resolved", summary="", description="", runbook_url="",
                            ends_at="2026-11-25 09:06 CST")},
        ],
        "chat/help.txt.j2": [
            {"bots": ["alice", "bob"], "commands": commands, "log_max_lines": 200},
        ],
        "chat/status.txt.j2": [
            {"bots": [
                status_bot(),
                status_bot(name="alice", state="in", user="Alice", qr_pending=False,
                           last_error="", missing_logs=[], paused=False),
                status_bot(name="carol", state="unknown", since="", qr_pending=False),
                status_bot(name="dave", exporter_error="HTTP 500"),
                status_bot(name="eve", watched=False),
            ]},
            {"bots": []},
        ],
        "chat/alerts.txt.j2": [
            {"alerts": [
                {"name": "WechatyBotLoggedOut", "bot": "bob", "since": "2026-11-25 09:01 CST",
                 "ago": d(120), "silenced": True, "summary": "WeChat bot bob is logged out"},
                {"name": "NoBot", "bot": "", "since": "", "ago": "", "silenced": False,
                 "summary": ""},
            ], "more": 2},
            {"alerts": [], "more": 0},
        ],
        "chat/silences.txt.j2": [
            {"silences": [
                {"id": "3f2a", "bot": "bob", "until": "2026-11-25 11:01 CST", "state": "active",
                 "created_by": "Ada", "comment": "moving house"},
                {"id": "4e5b", "bot": "?", "until": "?", "state": "pending", "created_by": "?",
                 "comment": ""},
            ]},
            {"silences": []},
        ],
        "chat/silence.txt.j2": [
            {"bot": "bob", "duration": d(7200), "until": "2026-11-25 11:01 CST", "id": "3f2a"},
        ],
        "chat/unsilence.txt.j2": [
            {"case": case, "id": "3f2a", "bot": "bob"}
            for case in ("expired", "not_found", "ambiguous")
        ],
        "chat/ack.txt.j2": [
            {"case": case, "bot": "bob", "alertnames": ["WechatyBotLoggedOut"],
             "until": "2026-11-26 09:01 CST", "id": "3f2a"}
            for case in ("acked", "nothing")
        ],
        "chat/qr.txt.j2": [
            {"case": case, "bot": "bob", "bots": ["bob", "carol"]}
            for case in ("none_waiting", "several", "logged_in", "no_qr")
        ],
        "chat/restart.txt.j2": [
            {"case": case, "bot": "bob", "error": "No such file or directory",
             "seconds": "1.5", "returncode": 1, "clipped": clipped}
            for case in ("exited", "timed_out", "error", "busy")
            for clipped in (False, True)
        ],
        "chat/log.txt.j2": [
            {"case": case, "file": "bob.log", "path": "/var/log/bob.log", "lines": 20,
             "clipped": clipped, "error": "Permission denied", "count": 3}
            for case in ("head", "cannot_read", "left_out")
            for clipped in (False, True)
        ],
        "chat/rescue.txt.j2": [{"bot": "bob", "enabled": on} for on in (True, False)],
        "chat/usage.txt.j2": [
            {"problem": problem, "word": "restart", "value": "2x", "needs_code": code,
             "direction": "off", "longest": d(7 * 86400)}
            for problem in (
                "unknown_command", "rescue", "no_arguments", "optional_bot", "bot",
                "unsilence", "log", "log_lines", "rescue_bot", "silence", "silence_duration",
                "silence_range",
            )
            for code in (False, True)
        ],
        "chat/refused.txt.j2": [
            {"problem": problem, "word": "status", "bot": "bob", "bots": ["alice", "carol"]}
            for problem in (
                "unknown_bot", "no_exporter", "no_alertmanager", "no_restart", "no_log",
                "no_rescue",
            )
        ],
        "chat/policy.txt.j2": [
            {"problem": problem, "command": "restart bob", "word": "restart", "wait": d(600),
             "tries_left": 3, "timeout": d(60)}
            for problem in (
                "confirm", "too_many_codes", "needs_code", "wrong_code", "replayed", "no_totp",
                "nothing_to_confirm", "too_late", "too_many_commands", "nothing_to_cancel",
                "cancelled",
            )
        ],
        "chat/failed.txt.j2": [{"command": "status", "reason": "HTTP 500 from the exporter"}],
    }
    # fmt: on
