"""The status page at `/`: every bot at a glance, and a scannable QR for a logged-out bot.

It is the fallback when both bots of a duet are logged out and nobody can be messaged: the admin
opens the page (from the exporter's host, or with the token) and scans the QR off the screen.
Pure: snapshot in, HTML out. The QR is drawn here (inline SVG), never by a third party.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from html import escape

import segno

from wechaty_exporter.collector import BotView

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px}
header h1{font-size:1.2rem;margin:0}
header p{margin:4px 0 0;font-size:.85rem;color:#b8c0cc}
main{display:flex;flex-wrap:wrap;gap:16px;padding:16px}
.bot{background:#fff;border-radius:10px;box-shadow:0 1px 3px #0002;padding:16px 20px;flex:1 1 320px;max-width:560px}
.bot h2{margin:0 0 8px;font-size:1.3rem}
.state{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.in{background:#1a7f37}.out{background:#cf222e}.unknown{background:#6e7781}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:12px 0 0;font-size:.92rem}
dt{color:#57606a}dd{margin:0}
.qr{margin-top:14px;text-align:center}
.qr img{width:min(100%,360px);image-rendering:pixelated;background:#fff}
.qr p{font-size:.85rem;color:#57606a}
.missing{color:#cf222e}
"""


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "—"
    seconds = max(0, int(now - ts))
    if seconds < 90:
        span = f"{seconds} s"
    elif seconds < 5400:
        span = f"{seconds // 60} min"
    elif seconds < 172800:
        span = f"{seconds // 3600} h"
    else:
        span = f"{seconds // 86400} days"
    stamp = datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    return f'<span title="{escape(stamp)}">{escape(stamp)} ({span} ago)</span>'


def _bot_card(view: BotView, *, show_qr: bool, now: float) -> str:
    s = view.state
    if s.logged_in is None:
        badge, word = "unknown", "state unknown"
    elif s.logged_in:
        badge, word = "in", "logged in"
    else:
        badge, word = "out", "logged out"
    rows = [
        ("since", _ago(s.since, now)),
        ("account", escape(s.user) if s.user else "—"),
        ("last login", _ago(s.last_login, now)),
        ("last logout", _ago(s.last_logout, now)),
        ("last error", _ago(s.last_error, now)),
        ("QR pending", "yes" if s.qr else "no"),
    ]
    for f in view.files:
        status = "" if f.present else ' <span class="missing">(missing)</span>'
        rows.append(("log", f"<code>{escape(f.path)}</code>{status}"))
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    qr = ""
    if s.qr is not None:
        if show_qr:
            uri = segno.make(s.qr.qrcode, error="m").svg_data_uri(scale=8, border=4)
            qr = (
                f'<div class="qr"><img alt="login QR for {escape(view.name)}" src="{uri}">'
                f"<p>Scan with WeChat on the bot's phone. Appeared {_ago(s.qr.seen_at, now)}."
                "</p></div>"
            )
        else:
            qr = (
                '<div class="qr"><p>A login QR is pending. It is shown only on the '
                "exporter's host or with the bearer token.</p></div>"
            )
    name = escape(view.name)
    return (
        f'<section class="bot" id="bot-{name}"><h2>{name} '
        f'<span class="state {badge}">{word}</span></h2><dl>{body}</dl>{qr}</section>'
    )


def render_status_page(
    views: Sequence[BotView], *, show_qr: bool, version: str, now: float | None = None
) -> str:
    """The whole page. Refreshes itself every 5 s so a new QR replaces an expired one."""
    now = time.time() if now is None else now
    cards = "".join(_bot_card(v, show_qr=show_qr, now=now) for v in views)
    if not cards:
        cards = "<p>No bots configured.</p>"
    out = sum(1 for v in views if v.state.logged_in is False)
    title = f"{out} logged out · wechaty-exporter" if out else "wechaty-exporter"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<meta http-equiv=refresh content=5><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><header><h1>wechaty-exporter</h1>"
        f"<p>{len(views)} bot(s) · version {escape(version)} · "
        '<a style="color:#b8c0cc" href="metrics">metrics</a> · '
        '<a style="color:#b8c0cc" href="api/v1/bots">api</a></p></header>'
        f"<main>{cards}</main></body></html>"
    )
