"""Every metric the exporter serves: names, help texts, and how a state snapshot becomes them.

The collector builds fresh metric families from a snapshot at scrape time; there are no
module-level metric objects and no global registry. A sample exposition for one bot:

    # HELP wechaty_bot_logged_in 1 when the bot is logged in, 0 when logged out; absent while ...
    # TYPE wechaty_bot_logged_in gauge
    wechaty_bot_logged_in{bot="bob"} 0.0
    # HELP wechaty_bot_state_known 1 once any login, logout or scan was seen for the bot.
    # TYPE wechaty_bot_state_known gauge
    wechaty_bot_state_known{bot="bob"} 1.0
    # HELP wechaty_qr_pending 1 while a login QR waits to be scanned.
    # TYPE wechaty_qr_pending gauge
    wechaty_qr_pending{bot="bob"} 1.0
    # HELP wechaty_qr_last_seen_timestamp_seconds When the pending login QR appeared.
    # TYPE wechaty_qr_last_seen_timestamp_seconds gauge
    wechaty_qr_last_seen_timestamp_seconds{bot="bob"} 1.7640576e+09
    # HELP wechaty_bot_logouts_total Logouts seen in the bot's logs.
    # TYPE wechaty_bot_logouts_total counter
    wechaty_bot_logouts_total{bot="bob"} 1.0
    # HELP wechaty_log_file_present 1 when the log file exists and is readable.
    # TYPE wechaty_log_file_present gauge
    wechaty_log_file_present{bot="bob",path="/var/log/bob.log"} 1.0
    # HELP wechaty_exporter_build_info The exporter's version.
    # TYPE wechaty_exporter_build_info gauge
    wechaty_exporter_build_info{version="0.1.0"} 1.0

The QR payload is a login credential: it never appears in a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wechaty_exporter.state import BotState


@dataclass(frozen=True, slots=True)
class FileView:
    """One log file's tailer health, as the collector needs it."""

    path: str
    present: bool
    rotations: int
    truncations: int
    read_errors: int
    lines_cut: int


@dataclass(frozen=True, slots=True)
class BotView:
    """One bot at scrape time: its state and its files."""

    name: str
    state: BotState
    files: tuple[FileView, ...]


Snapshot = Callable[[], Sequence[BotView]]


def _gauge(name: str, doc: str, labels: Sequence[str] = ("bot",)) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str) -> CounterMetricFamily:
    # prometheus_client appends "_total" to counter family names itself.
    return CounterMetricFamily(name.removesuffix("_total"), doc, labels=["bot"])


class WechatyCollector(Collector):
    """Turns a snapshot of every bot into metric families, on every scrape."""

    def __init__(self, snapshot: Snapshot, version: str) -> None:
        self._snapshot = snapshot
        self._version = version

    def describe(self) -> Iterator[Metric]:
        # Describing nothing keeps registration cheap and lets collect() decide at scrape time.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        bots = self._snapshot()
        logged_in = _gauge(
            "wechaty_bot_logged_in",
            "1 when the bot is logged in, 0 when logged out; absent while unknown.",
        )
        known = _gauge(
            "wechaty_bot_state_known", "1 once any login, logout or scan was seen for the bot."
        )
        qr_pending = _gauge("wechaty_qr_pending", "1 while a login QR waits to be scanned.")
        qr_seen = _gauge(
            "wechaty_qr_last_seen_timestamp_seconds", "When the pending login QR appeared."
        )
        last_login = _gauge(
            "wechaty_bot_last_login_timestamp_seconds", "When the bot last logged in."
        )
        last_logout = _gauge(
            "wechaty_bot_last_logout_timestamp_seconds", "When the bot last logged out."
        )
        logins = _counter("wechaty_bot_logins_total", "Logins seen in the bot's logs.")
        logouts = _counter("wechaty_bot_logouts_total", "Logouts seen in the bot's logs.")
        qr_codes = _counter("wechaty_qr_codes_total", "Distinct login QR codes seen.")
        lines = _counter("wechaty_log_lines_total", "Lines read from the bot's logs.")
        errors = _counter("wechaty_log_errors_total", "Lines logged at level ERR or ERROR.")
        present = _gauge(
            "wechaty_log_file_present",
            "1 when the log file exists and is readable.",
            labels=("bot", "path"),
        )
        last_line = _gauge(
            "wechaty_log_last_line_timestamp_seconds", "When the last line was read."
        )
        rotations = _counter(
            "wechaty_exporter_log_rotations_total", "Log rotations followed (rename, delete)."
        )
        truncations = _counter(
            "wechaty_exporter_log_truncations_total", "Log truncations followed (copytruncate)."
        )
        read_errors = _counter(
            "wechaty_exporter_read_errors_total", "Failures to open or read a log file."
        )
        lines_cut = _counter(
            "wechaty_exporter_log_lines_cut_total", "Lines longer than the line cap, cut."
        )
        rejected = _counter(
            "wechaty_exporter_rejected_qr_total",
            "Scan lines whose QR is not an allowed WeChat login URL (possible forgery).",
        )
        info = _gauge(
            "wechaty_bot_info", "The logged-in account of the bot.", labels=("bot", "user")
        )

        for bot in bots:
            s, name = bot.state, [bot.name]
            if s.logged_in is not None:
                logged_in.add_metric(name, 1.0 if s.logged_in else 0.0)
            known.add_metric(name, 1.0 if s.known else 0.0)
            qr_pending.add_metric(name, 1.0 if s.qr is not None else 0.0)
            if s.qr is not None:
                qr_seen.add_metric(name, s.qr.seen_at)
            if s.last_login is not None:
                last_login.add_metric(name, s.last_login)
            if s.last_logout is not None:
                last_logout.add_metric(name, s.last_logout)
            if s.last_line_at is not None:
                last_line.add_metric(name, s.last_line_at)
            if s.user:
                info.add_metric([bot.name, s.user], 1.0)
            logins.add_metric(name, s.logins_total)
            logouts.add_metric(name, s.logouts_total)
            qr_codes.add_metric(name, s.qr_codes_total)
            lines.add_metric(name, s.lines_total)
            errors.add_metric(name, s.errors_total)
            rejected.add_metric(name, s.rejected_qr_total)
            rotations.add_metric(name, sum(f.rotations for f in bot.files))
            truncations.add_metric(name, sum(f.truncations for f in bot.files))
            read_errors.add_metric(name, sum(f.read_errors for f in bot.files))
            lines_cut.add_metric(name, sum(f.lines_cut for f in bot.files))
            for f in bot.files:
                present.add_metric([bot.name, f.path], 1.0 if f.present else 0.0)

        build = _gauge("wechaty_exporter_build_info", "The exporter's version.", ("version",))
        build.add_metric([self._version], 1.0)
        yield from (
            logged_in, known, qr_pending, qr_seen, last_login, last_logout, logins, logouts,
            qr_codes, lines, errors, present, last_line, rotations, truncations, read_errors,
            lines_cut, rejected, info, build,
        )  # fmt: skip
