"""The collector: a snapshot in, metric families out, read back with prometheus_client."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from wechaty_exporter.exporter.collector import BotView, FileView, WechatyCollector
from wechaty_exporter.logs.events import ErrorLogged, Login, Logout, RejectedQr, Scan, ScanStatus
from wechaty_exporter.logs.state import BotState

QR = "https://login.weixin.qq.com/l/secret"


def registry_for(*views: BotView) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WechatyCollector(lambda: views, "1.2.3"))
    return registry


def bob_logged_out() -> BotView:
    state = BotState()
    for e in (Login(100, "Bob"), Logout(200), Scan(300, ScanStatus.WAITING, QR),
              ErrorLogged(250), RejectedQr(260, "evil")):  # fmt: skip
        state.apply(e)
    state.saw_lines(42, 310)
    files = (FileView("/b.log", True, 2, 1, 0, 3), FileView("/b-err.log", False, 0, 0, 4, 0))
    return BotView("bob", state, files)


def test_values() -> None:
    r = registry_for(bob_logged_out())
    v = r.get_sample_value
    bob = {"bot": "bob"}
    assert v("wechaty_bot_logged_in", bob) == 0
    assert v("wechaty_bot_state_known", bob) == 1
    assert v("wechaty_qr_pending", bob) == 1
    assert v("wechaty_qr_last_seen_timestamp_seconds", bob) == 300
    assert v("wechaty_bot_last_login_timestamp_seconds", bob) == 100
    assert v("wechaty_bot_last_logout_timestamp_seconds", bob) == 200
    assert v("wechaty_bot_logins_total", bob) == 1
    assert v("wechaty_bot_logouts_total", bob) == 1
    assert v("wechaty_qr_codes_total", bob) == 1
    assert v("wechaty_log_lines_total", bob) == 42
    assert v("wechaty_log_errors_total", bob) == 1
    assert v("wechaty_log_last_line_timestamp_seconds", bob) == 310
    assert v("wechaty_log_file_present", {"bot": "bob", "path": "/b.log"}) == 1
    assert v("wechaty_log_file_present", {"bot": "bob", "path": "/b-err.log"}) == 0
    assert v("wechaty_exporter_log_rotations_total", bob) == 2
    assert v("wechaty_exporter_log_truncations_total", bob) == 1
    assert v("wechaty_exporter_read_errors_total", bob) == 4
    assert v("wechaty_exporter_log_lines_cut_total", bob) == 3
    assert v("wechaty_exporter_rejected_qr_total", bob) == 1
    assert v("wechaty_bot_info", {"bot": "bob", "user": "Bob"}) == 1
    assert v("wechaty_exporter_build_info", {"version": "1.2.3"}) == 1


def test_unknown_state_has_no_logged_in_sample() -> None:
    r = registry_for(BotView("new", BotState(), (FileView("/n.log", False, 0, 0, 0, 0),)))
    assert r.get_sample_value("wechaty_bot_logged_in", {"bot": "new"}) is None
    assert r.get_sample_value("wechaty_bot_state_known", {"bot": "new"}) == 0
    assert r.get_sample_value("wechaty_qr_pending", {"bot": "new"}) == 0


def test_exposition_parses_and_never_leaks_the_qr() -> None:
    text = generate_latest(registry_for(bob_logged_out())).decode()
    assert "secret" not in text and "login.weixin" not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["wechaty_bot_logins"].type == "counter"
    assert families["wechaty_bot_logged_in"].type == "gauge"
    for family in families.values():
        assert family.documentation, family.name
