"""The status page at `/`: every bot at a glance, and a scannable QR for a logged-out bot.

It is the fallback when both bots of a duet are logged out and nobody can be messaged: the admin
opens the page (from the exporter's host, or with the token) and scans the QR off the screen,
from a laptop or a phone. So: logged-out bots come first, a one-line summary says what to do, and
the QR is drawn large (at least ~8 CSS px per module on a phone, ~11 on a laptop) with its quiet
zone on white. Pure: snapshot in, HTML out. The QR is drawn here (inline SVG), never by a third
party. tests/exporter/test_statuspage.py screenshots it in headless Chromium and decodes the QR.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape

import segno

from wechaty_exporter.exporter.collector import BotView, FileView
from wechaty_exporter.logs.state import BotState

REFRESH_SECONDS = 5

_STYLE = """
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 background:#eef0f3;color:#1d2330}
header{background:#1d2330;color:#fff;padding:14px 20px}
header h1{font-size:1.05rem;margin:0;font-weight:600;color:#b8c0cc}
.summary{margin:6px 0 4px;font-size:1.45rem;font-weight:700;line-height:1.25}
.summary.out{color:#ff8182}.summary.ok{color:#6fdd8b}.summary.unknown{color:#d0d7de}
.meta{margin:0;font-size:.85rem;color:#b8c0cc}.meta a{color:#b8c0cc}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px;
 padding:16px;max-width:1400px}
.bot{background:#fff;border-radius:10px;box-shadow:0 1px 3px #0003;padding:16px 20px;
 border-left:8px solid #8c959f;min-width:0}
.bot.in{border-left-color:#1a7f37}.bot.out{border-left-color:#cf222e}
.head{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.head h2{margin:0;font-size:1.5rem;overflow-wrap:anywhere}
.state{display:inline-block;padding:3px 12px;border-radius:14px;font-weight:700;color:#fff;
 font-size:1.05rem}
.state.in{background:#1a7f37}.state.out{background:#cf222e}.state.unknown{background:#6e7781}
.since{margin:6px 0 0;font-size:1.05rem}
.since small,.ago small{color:#57606a;font-size:.8rem}
.qr{margin:14px 0 4px;text-align:center}
.qr img{display:block;margin:0 auto;width:min(100%,440px);height:auto;background:#fff;
 image-rendering:pixelated;image-rendering:crisp-edges}
.qr .how{font-size:1.05rem;font-weight:600;margin:10px 0 2px}
.qr p{margin:2px 0;font-size:.9rem;color:#57606a}
.qr.hidden{background:#fff8c5;border-radius:8px;padding:10px;text-align:left}
.qr .old{color:#9a6700;font-weight:600}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 14px;
 margin:14px 0 0;font-size:.92rem}
dt{color:#57606a}dd{margin:0;overflow-wrap:anywhere}
.missing{color:#cf222e;font-weight:600}
@media (max-width:480px){
 main{padding:8px;gap:10px}.bot{padding:12px 12px;border-left-width:6px}
 header{padding:12px}
}
@media (min-width:760px){
 .bot.has-qr{grid-column:1/-1;display:grid;grid-template-columns:minmax(0,460px) minmax(0,1fr);
  grid-template-rows:auto auto 1fr;column-gap:32px;align-items:start}
 .bot.has-qr>*{grid-column:2}
 .bot.has-qr>.qr{grid-column:1;grid-row:1/span 3;margin:0}
}
"""

# A login QR lives about as long as WeChat shows it; older ones have likely been replaced.
QR_LIKELY_EXPIRED_SECONDS = 5 * 60


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _ago(ts: float | None, now: float) -> str:
    """'3 min ago' with the full time under it; an em dash for never."""
    if ts is None:
        return "—"
    stamp = escape(_stamp(ts))
    return f'<span class="ago" title="{stamp}">{_span(now - ts)} ago <small>{stamp}</small></span>'


# Characters of a logout reason shown (WeChat's are one short sentence; a log can say more).
REASON_SHOWN = 200


def _reason(reason: str) -> str:
    """A logout reason as the page shows it: escaped, at most `REASON_SHOWN` characters."""
    if len(reason) > REASON_SHOWN:
        reason = reason[: REASON_SHOWN - 1] + "…"
    return f'<span class="reason">{escape(reason)}</span>'


def _state_words(view: BotView) -> tuple[str, str]:
    """(css class, words) for the bot's login state."""
    logged_in = view.state.logged_in
    if logged_in is None:
        return "unknown", "state unknown"
    return ("in", "logged in") if logged_in else ("out", "logged out")


def _qr_block(view: BotView, *, show_qr: bool, now: float) -> str:
    qr = view.state.qr
    if qr is None:
        return ""
    name = escape(view.name)
    if not show_qr:
        return (
            '<div class="qr hidden"><p>A login QR is pending. It is shown only on the '
            "exporter's own host (loopback, not through a proxy, under one of its own names: "
            "localhost, its listen address or --web.hostname) or to clients with the bearer "
            "token.</p></div>"
        )
    uri = segno.make(qr.qrcode, error="m").svg_data_uri(
        scale=10, border=4, dark="#000", light="#fff"
    )
    age = now - qr.seen_at
    freshness = f"<p>QR shown {_ago(qr.seen_at, now)}</p>"
    if age > QR_LIKELY_EXPIRED_SECONDS:
        freshness += (
            '<p class="old">This QR is old and has probably expired; the bot prints a new one '
            "when WeChat asks, and this page shows it within seconds.</p>"
        )
    return (
        f'<div class="qr"><img alt="login QR code for {name}" src="{uri}">'
        f'<p class="how">Scan with WeChat on {name}\'s phone</p>{freshness}'
        f"<p>This page refreshes every {REFRESH_SECONDS} s.</p></div>"
    )


def _dialect(f: FileView) -> str:
    """What a log is read as and what it turned out to speak (a custom dialect is named)."""
    words = f"speaks {f.speaks}" if f.speaks is not None else "no event parsed yet"
    if f.dialect != "auto":
        words += f", dialect {f.dialect}"
    return f" <small>{escape(words)}</small>"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counted(state: BotState, since: float | None) -> str:
    """The API's counters, and discreetly, when they began (a cold start counts from there)."""
    counts = " · ".join(
        (_plural(state.logins_total, "login"), _plural(state.logouts_total, "logout"),
         _plural(state.qr_codes_total, "QR"))
    )  # fmt: skip
    if since is None:
        return f"{counts} <small>counted from the first line of its logs</small>"
    stamp = escape(_stamp(since))
    return f'{counts} <small title="when the exporter began counting">counted since {stamp}</small>'


def _bot_card(
    view: BotView, *, show_qr: bool, now: float, counting: Mapping[str, float | None] | None
) -> str:
    s = view.state
    css, words = _state_words(view)
    since = ""
    if s.since is not None:
        since = (
            f'<p class="since">{words} for {_span(now - s.since)} '
            f"<small>since {escape(_stamp(s.since))}</small></p>"
        )
    elif s.logged_in is None:
        since = '<p class="since"><small>no login, logout or scan seen in its logs yet</small></p>'
    errors = _ago(s.last_error, now)
    if s.errors_total:
        errors += (
            f" <small>({s.errors_total} error line{'s' if s.errors_total > 1 else ''})</small>"
        )
    rows = [
        ("account", escape(s.user) if s.user else "—"),
        ("last login", _ago(s.last_login, now)),
        ("last logout", _ago(s.last_logout, now)),
        *([("logout reason", _reason(s.logout_reason))] if s.logout_reason else []),
        ("last error", errors),
    ]
    if counting is not None and view.name in counting:
        rows.append(("counts", _counted(s, counting[view.name])))
    for f in view.files:
        status = "" if f.present else ' <span class="missing">missing or unreadable</span>'
        rows.append(("log", f"<code>{escape(f.path)}</code>{status}{_dialect(f)}"))
    details = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    name = escape(view.name)
    qr = _qr_block(view, show_qr=show_qr, now=now)
    classes = f"bot {css}" + (" has-qr" if qr else "")
    return (
        f'<section class="{classes}" id="bot-{name}">'
        f'<div class="head"><h2>{name}</h2><span class="state {css}">{words}</span></div>'
        f"{since}{qr}<dl>{details}</dl></section>"
    )


def _summary(views: Sequence[BotView], *, show_qr: bool) -> tuple[str, str]:
    """(css class, one line) saying what needs doing."""
    out = [v for v in views if v.state.logged_in is False]
    unknown = [v for v in views if v.state.logged_in is None]
    if out:
        names = ", ".join(v.name for v in out)
        verb = "is" if len(out) == 1 else "are"
        if any(v.state.qr for v in out):
            todo = "scan the QR below" if show_qr else "a login QR is pending"
        else:
            todo = "waiting for a login QR"
        return "out", f"{names} {verb} logged out: {todo}"
    if not views:
        return "unknown", "No bots configured"
    if unknown:
        n = len(unknown)
        return "unknown", f"{n} bot{'s' if n > 1 else ''} not seen logging in or out yet"
    if len(views) == 1:
        return "ok", f"{views[0].name} is logged in"
    return "ok", f"All {len(views)} bots are logged in"


def _order(view: BotView) -> int:
    """Logged-out bots first (their QR is what the reader came for), then unknown, then in."""
    return {False: 0, None: 1, True: 2}[view.state.logged_in]


def render_status_page(
    views: Sequence[BotView],
    *,
    show_qr: bool,
    version: str,
    now: float | None = None,
    counting_since: Mapping[str, float | None] | None = None,
) -> str:
    """The whole page. Refreshes itself every few seconds so a new QR replaces an expired one.

    `counting_since` (bot → when its counters began, as in the API) adds each bot's counts.
    """
    now = time.time() if now is None else now
    ordered = sorted(views, key=_order)
    cards = "".join(
        _bot_card(v, show_qr=show_qr, now=now, counting=counting_since) for v in ordered
    )
    css, summary = _summary(views, show_qr=show_qr)
    out = sum(1 for v in views if v.state.logged_in is False)
    title = f"{out} logged out · wechaty-exporter" if out else "wechaty-exporter"
    plural = "s" if len(views) != 1 else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<meta http-equiv=refresh content={REFRESH_SECONDS}><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><header><h1>wechaty-exporter</h1>"
        f'<p class="summary {css}">{escape(summary)}</p>'
        f'<p class="meta">{len(views)} bot{plural} · updated {escape(_stamp(now))} · '
        f"version {escape(version)} · "
        '<a href="metrics">metrics</a> · <a href="api/v1/bots">api</a></p></header>'
        f"<main>{cards}</main></body></html>"
    )
