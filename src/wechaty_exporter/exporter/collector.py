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
    # HELP wechaty_bot_probe_received_timestamp_seconds When the last duet probe from the peer ...
    # TYPE wechaty_bot_probe_received_timestamp_seconds gauge
    wechaty_bot_probe_received_timestamp_seconds{bot="bob"} 1.7640570e+09
    # HELP wechaty_bot_probe_sent_timestamp_seconds When this bot last sent a duet probe to ...
    # TYPE wechaty_bot_probe_sent_timestamp_seconds gauge
    wechaty_bot_probe_sent_timestamp_seconds{bot="bob",peer="alice"} 1.7640571e+09
    # HELP wechaty_exporter_build_info The exporter's version.
    # TYPE wechaty_exporter_build_info gauge
    wechaty_exporter_build_info{version="0.1.0"} 1.0

The QR payload is a login credential: it never appears in a label.

`families` is the one definition of every metric: its name, help text, type, labels and samples.
`WechatyCollector` hands those families to prometheus_client (`serve`); `render_text` writes
them in the text format 0.0.4 without importing prometheus_client (`replay`, whose start-up must
not pay for its HTTP stack). tests/logs/test_replay_text.py checks that both render the same
bytes for the same snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wechaty_exporter.logs.events import SUSPECT_REASONS
from wechaty_exporter.logs.state import BotState

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = [
    "BotView",
    "Family",
    "FileView",
    "Snapshot",
    "WechatyCollector",
    "families",
    "render_text",
]


@dataclass(frozen=True, slots=True)
class FileView:
    """One log file's tailer health, as the collector needs it, and its dialect (API only)."""

    path: str
    present: bool
    rotations: int
    truncations: int
    read_errors: int
    lines_cut: int
    dialect: str = "auto"  # what it is read as: `auto` or a dialect's name
    speaks: str | None = None  # the dialect of its first event; None: none parsed yet


@dataclass(frozen=True, slots=True)
class BotView:
    """One bot at scrape time: its state and its files."""

    name: str
    state: BotState
    files: tuple[FileView, ...]


Snapshot = Callable[[], Sequence[BotView]]


def _sample(name: str, labels: dict[str, str], value: float) -> tuple[str, dict[str, str], float]:
    """A sample as `families` builds it for `render_text`: (name, labels, value), the first
    fields of prometheus_client's `Sample`, which is built instead when the collector serves."""
    return name, labels, value


# Builds one sample: `_sample`, or prometheus_client's `Sample`.
SampleType = Callable[[str, dict[str, str], float], Any]


class Family:
    """One metric family: `name` as prometheus_client names it (a counter's without
    ``_total``; its samples carry the suffix), help text, ``gauge`` or ``counter``."""

    __slots__ = ("documentation", "labels", "name", "samples", "type")

    def __init__(self, name: str, documentation: str, type: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.type = type
        self.labels = labels
        self.samples: list[Any] = []  # of `SampleType`


def _gauge(name: str, doc: str, labels: Sequence[str] = ("bot",)) -> Family:
    return Family(name, doc, "gauge", tuple(labels))


def _counter(name: str, doc: str, labels: Sequence[str] = ("bot",)) -> Family:
    # prometheus_client appends "_total" to counter family names itself.
    return Family(name.removesuffix("_total"), doc, "counter", tuple(labels))


def families(bots: Sequence[BotView], version: str, sample: SampleType = _sample) -> list[Family]:
    """Every metric family for a snapshot of every bot; `sample` builds each sample."""
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
    last_login = _gauge("wechaty_bot_last_login_timestamp_seconds", "When the bot last logged in.")
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
    last_line = _gauge("wechaty_log_last_line_timestamp_seconds", "When the last line was read.")
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
    suspect = _counter(
        "wechaty_exporter_suspect_events",
        "Login, logout and scan lines not applied: a chat message may have forged them.",
        labels=("bot", "reason"),
    )
    info = _gauge("wechaty_bot_info", "The logged-in account of the bot.", labels=("bot", "user"))
    probe_received = _gauge(
        "wechaty_bot_probe_received_timestamp_seconds",
        "When the last duet probe from the peer reached this bot (self-log).",
    )
    probe_sent = _gauge(
        "wechaty_bot_probe_sent_timestamp_seconds",
        "When this bot last sent a duet probe to its peer bot `peer` (self-log).",
        labels=("bot", "peer"),
    )

    # Samples are appended directly, one shared label dict per bot: a scrape of 100 bots
    # builds ~2,000 samples, and add_metric's per-sample dict(zip(...)) was most of collect().
    def adder(family: Family) -> Callable[[dict[str, str], float], None]:
        name = family.name + ("_total" if family.type == "counter" else "")
        append = family.samples.append
        return lambda labels, value: append(sample(name, labels, value))

    add_logged_in, add_known = adder(logged_in), adder(known)
    add_qr_pending, add_qr_seen = adder(qr_pending), adder(qr_seen)
    add_last_login, add_last_logout = adder(last_login), adder(last_logout)
    add_last_line, add_present, add_info = adder(last_line), adder(present), adder(info)
    add_logins, add_logouts = adder(logins), adder(logouts)
    add_qr_codes, add_lines = adder(qr_codes), adder(lines)
    add_errors, add_rejected = adder(errors), adder(rejected)
    add_rotations, add_truncations = adder(rotations), adder(truncations)
    add_read_errors, add_lines_cut = adder(read_errors), adder(lines_cut)
    add_suspect = adder(suspect)
    add_probe_received, add_probe_sent = adder(probe_received), adder(probe_sent)
    for bot in bots:
        s, one = bot.state, {"bot": bot.name}
        if s.logged_in is not None:
            add_logged_in(one, 1.0 if s.logged_in else 0.0)
        add_known(one, 1.0 if s.known else 0.0)
        add_qr_pending(one, 1.0 if s.qr is not None else 0.0)
        if s.qr is not None:
            add_qr_seen(one, s.qr.seen_at)
        if s.last_login is not None:
            add_last_login(one, s.last_login)
        if s.last_logout is not None:
            add_last_logout(one, s.last_logout)
        if s.last_line_at is not None:
            add_last_line(one, s.last_line_at)
        if s.user:
            add_info({"bot": bot.name, "user": s.user}, 1.0)
        if s.last_probe_received is not None:
            add_probe_received(one, s.last_probe_received)
        for peer, sent_at in s.probes_sent.items():
            add_probe_sent({"bot": bot.name, "peer": peer}, sent_at)
        add_logins(one, s.logins_total)
        add_logouts(one, s.logouts_total)
        add_qr_codes(one, s.qr_codes_total)
        add_lines(one, s.lines_total)
        add_errors(one, s.errors_total)
        add_rejected(one, s.rejected_qr_total)
        for reason in SUSPECT_REASONS:  # every reason, from 0: increase() sees the first
            add_suspect({"bot": bot.name, "reason": reason}, s.suspects.get(reason, 0))
        rotated = truncated = failed = cut = 0
        for f in bot.files:
            rotated += f.rotations
            truncated += f.truncations
            failed += f.read_errors
            cut += f.lines_cut
            add_present({"bot": bot.name, "path": f.path}, 1.0 if f.present else 0.0)
        add_rotations(one, rotated)
        add_truncations(one, truncated)
        add_read_errors(one, failed)
        add_lines_cut(one, cut)

    build = _gauge("wechaty_exporter_build_info", "The exporter's version.", ("version",))
    adder(build)({"version": version}, 1.0)
    return [
        logged_in, known, qr_pending, qr_seen, last_login, last_logout, logins, logouts,
        qr_codes, lines, errors, present, last_line, rotations, truncations, read_errors,
        lines_cut, rejected, suspect, info, probe_received, probe_sent, build,
    ]  # fmt: skip


class WechatyCollector:
    """Turns a snapshot of every bot into prometheus_client metric families, on every scrape
    (a prometheus_client `Collector`; prometheus_client is imported when it is first used)."""

    def __init__(self, snapshot: Snapshot, version: str) -> None:
        self._snapshot = snapshot
        self._version = version

    def describe(self) -> Iterator[Metric]:
        # Describing nothing keeps registration cheap and lets collect() decide at scrape time.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
        from prometheus_client.samples import Sample

        for family in families(self._snapshot(), self._version, Sample):
            kind = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
            metric = kind(family.name, family.documentation, labels=list(family.labels))
            metric.samples = family.samples
            yield metric


def _go_float(value: float) -> str:
    """A sample value as prometheus_client's text format writes it (`floatToGoString`)."""
    d = float(value)
    if math.isinf(d):
        return "+Inf" if d > 0 else "-Inf"
    if math.isnan(d):
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:  # Go switches to exponents sooner than Python
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_text(bots: Sequence[BotView], version: str) -> str:
    """The text exposition (format 0.0.4) of a snapshot: byte for byte what prometheus_client's
    `generate_latest` writes for `WechatyCollector` (tests/logs/test_replay_text.py)."""
    out: list[str] = []
    for family in families(bots, version):
        name = family.name + ("_total" if family.type == "counter" else "")
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {family.type}\n")
        for sample_name, labels, value, *_ in family.samples:
            pairs = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(labels.items()))
            braces = f"{{{pairs}}}" if pairs else ""
            out.append(f"{sample_name}{braces} {_go_float(value)}\n")
    return "".join(out)
