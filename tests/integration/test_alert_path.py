"""The alert path on the real binaries: bot log → exporter → Prometheus → Alertmanager → receiver.

Fast profile (deploy/prometheus/profiles/fast.yml): 1 s scrape and evaluation, WechatyBotLoggedOut
`for: 2s`, WechatyNoRescuer `for: 1s`, `group_wait: 0s`. The budget is in
docs/alerting.md#latency-budget; the measured figures are printed in the terminal summary.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime

from tests.integration.harness import (
    Alertmanager,
    BotLogs,
    Notification,
    Processes,
    Prometheus,
    WebhookSinks,
    wait_until,
)

# Computed fast-profile budget: ≤ 1 s scrape + ≤ 1 s evaluation + 2 s `for` + 0 s group_wait +
# delivery, plus the exporter noticing the line. How long to await a notification, with room for
# a loaded CI machine; the times taken are reported in the terminal summary, not asserted.
FIRING_BOUND_S = 15.0
RESOLVED_BOUND_S = 15.0


def _epoch(rfc3339: str) -> float:
    """Alertmanager's RFC 3339 times carry up to 9 fractional digits; Python takes 6."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", rfc3339).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


def _both_logged_in(bot_logs: BotLogs, prometheus: Prometheus, processes: Processes) -> None:
    bot_logs.login("alice")
    bot_logs.login("bob")
    wait_until(
        lambda: prometheus.values("wechaty_bot_logged_in", "bot") == {"alice": 1.0, "bob": 1.0},
        timeout=20,
        what="Prometheus to see alice and bob logged in",
        processes=processes,
    )
    wait_until(
        lambda: not prometheus.query('ALERTS{alertname=~"WechatyBotLoggedOut|WechatyNoRescuer"}'),
        timeout=20,
        what="no logout alert pending or firing",
        processes=processes,
    )


def _has(
    receiver: str, status: str, alertname: str, **labels: str
) -> Callable[[Notification], bool]:
    def match(n: Notification) -> bool:
        return n.receiver == receiver and bool(n.alerts(status, alertname, **labels))

    return match


def test_start_up_raises_nothing_but_watchdog(
    prometheus: Prometheus, sinks: WebhookSinks, processes: Processes
) -> None:
    watchdog = sinks.wait_for(
        _has("watchdog", "firing", "Watchdog"),
        after=0,
        timeout=20,
        what="Watchdog at the dead man's switch",
    )
    assert watchdog.payload["groupLabels"] == {"alertname": "Watchdog"}
    wait_until(
        lambda: prometheus.values('up{job="wechaty"}', "job") == {"wechaty": 1.0},
        timeout=20,
        what="Prometheus to scrape the exporter",
        processes=processes,
    )
    # The bots' logs are still empty: their state is unknown, which must alert nobody.
    assert prometheus.values("wechaty_bot_state_known", "bot") == {"alice": 0.0, "bob": 0.0}
    assert prometheus.query('ALERTS{alertname!="Watchdog", alertstate="firing"}') == []
    received = [(n.receiver, n.payload["groupLabels"]) for n in sinks.since(0)]
    assert all(labels == {"alertname": "Watchdog"} for _, labels in received), received
    assert {receiver for receiver, _ in received} == {"watchdog"}, received


def test_logout_reaches_the_peer_and_relogin_resolves(
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    sinks: WebhookSinks,
    bot_logs: BotLogs,
    processes: Processes,
    receiver_token: tuple[object, str],
    latency_report: list[str],
) -> None:
    _both_logged_in(bot_logs, prometheus, processes)

    mark = sinks.mark()
    written = time.time()
    bot_logs.logout("bob")
    firing = sinks.wait_for(
        _has("peer-alice", "firing", "WechatyBotLoggedOut", bot="bob"),
        after=mark,
        timeout=FIRING_BOUND_S,
        what="WechatyBotLoggedOut{bot=bob} at peer-alice",
    )
    fired_in = firing.received_at - written
    alert = firing.alerts("firing", "WechatyBotLoggedOut", bot="bob")[0]
    assert firing.authorization == f"Bearer {receiver_token[1]}"
    assert firing.payload["version"] == "4"
    assert firing.payload["groupLabels"] == {"alertname": "WechatyBotLoggedOut", "bot": "bob"}
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["duet"] == "alice-bob"
    assert alert["annotations"]["runbook_url"].endswith("#wechatybotloggedout")

    mark_resolve = sinks.mark()
    relogin = time.time()
    bot_logs.login("bob")
    resolved = sinks.wait_for(
        _has("peer-alice", "resolved", "WechatyBotLoggedOut", bot="bob"),
        after=mark_resolve,
        timeout=RESOLVED_BOUND_S,
        what="the resolved WechatyBotLoggedOut{bot=bob} at peer-alice",
    )
    resolved_in = resolved.received_at - relogin

    wrong = [
        n.receiver
        for n in sinks.since(mark)
        if n.receiver != "peer-alice" and n.alerts("firing", "WechatyBotLoggedOut", bot="bob")
    ]
    assert wrong == [], "an alert about bob must reach only bob's peer"

    fired_at = _epoch(alert["startsAt"])
    latency_report.append(
        f"WechatyBotLoggedOut firing: {fired_in:.2f} s from the logout line to the receiver "
        f"(line → firing in Prometheus {fired_at - written:.2f} s, "
        f"firing → receiver {firing.received_at - fired_at:.2f} s)"
    )
    latency_report.append(f"WechatyBotLoggedOut resolved: {resolved_in:.2f} s from the login line")


def test_no_rescuer_reaches_the_fallback_and_inhibits_logouts(
    prometheus: Prometheus,
    alertmanager: Alertmanager,
    sinks: WebhookSinks,
    bot_logs: BotLogs,
    processes: Processes,
    latency_report: list[str],
) -> None:
    _both_logged_in(bot_logs, prometheus, processes)

    # bob goes first: alice still rescues him.
    mark = sinks.mark()
    bot_logs.logout("bob")
    sinks.wait_for(
        _has("peer-alice", "firing", "WechatyBotLoggedOut", bot="bob"),
        after=mark,
        timeout=FIRING_BOUND_S,
        what="WechatyBotLoggedOut{bot=bob} at peer-alice",
    )

    # Then alice: nobody is left to deliver.
    mark = sinks.mark()
    written = time.time()
    bot_logs.logout("alice")

    def both_bots(n: Notification) -> bool:
        bots = {a["labels"]["bot"] for a in n.alerts("firing", "WechatyNoRescuer")}
        return n.receiver == "fallback" and bots == {"alice", "bob"}

    fallback = sinks.wait_for(
        both_bots, after=mark, timeout=FIRING_BOUND_S, what="WechatyNoRescuer at the fallback"
    )
    fired_in = fallback.received_at - written
    assert fallback.payload["groupLabels"] == {"alertname": "WechatyNoRescuer", "duet": "alice-bob"}
    # `continue: true`: the peers get it as well.
    for receiver, bot in (("peer-bob", "alice"), ("peer-alice", "bob")):
        sinks.wait_for(
            _has(receiver, "firing", "WechatyNoRescuer", bot=bot),
            after=mark,
            timeout=5,
            what=f"WechatyNoRescuer{{bot={bot}}} at {receiver}",
        )

    def logouts_inhibited() -> bool:
        alerts = alertmanager.alerts(alertname="WechatyBotLoggedOut")
        return {a["labels"]["bot"] for a in alerts} == {"alice", "bob"} and all(
            a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"] for a in alerts
        )

    wait_until(
        logouts_inhibited,
        timeout=10,
        what="both WechatyBotLoggedOut alerts suppressed by WechatyNoRescuer in Alertmanager",
        processes=processes,
    )
    leaked = [n.receiver for n in sinks.since(mark) if n.alerts("firing", "WechatyBotLoggedOut")]
    assert leaked == [], "WechatyNoRescuer must inhibit WechatyBotLoggedOut"

    mark = sinks.mark()
    bot_logs.login("alice")
    bot_logs.login("bob")

    def resolved_both(n: Notification) -> bool:
        bots = {a["labels"]["bot"] for a in n.alerts("resolved", "WechatyNoRescuer")}
        return n.receiver == "fallback" and bots == {"alice", "bob"}

    sinks.wait_for(
        resolved_both,
        after=mark,
        timeout=RESOLVED_BOUND_S,
        what="the resolved WechatyNoRescuer at the fallback",
    )
    latency_report.append(f"WechatyNoRescuer firing: {fired_in:.2f} s from the second logout line")
