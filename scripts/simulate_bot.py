#!/usr/bin/env python3
"""A simulated WeChat bot for the demo: writes the log lines a real Wechaty bot writes, no more.

No WeChat is involved. The bot starts, logs in, and chats; with --cycle it is logged out after
--first-logout seconds, prints a fresh login QR every --qr-every seconds while logged out (WeChat's
QR codes expire), is "scanned" after --offline seconds, logs back in, and starts over after
--online seconds. Dialects (the formats wechaty-exporter parses, logs/dialects/):

  brolog          TypeScript Wechaty: `10:00:00 INFO StarterBot Contact<Alice Bot> login`
  python-wechaty  `2026-11-25 10:00:00,123 - Wechaty - INFO - receive <login> event <...>`

    python scripts/simulate_bot.py alice --log /tmp/alice.log --dialect brolog --cycle

Some chat messages *contain* event text (`onScan: Waiting(2) - https://evil.example/...`): a
chat message is not an event, and the exporter must ignore them. SIGINT/SIGTERM stop it quietly.
"""

from __future__ import annotations

import argparse
import base64
import random
import secrets
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

CHATTER = (
    ("Carol", "ops", "good morning"),
    ("Dave", None, "ping"),
    ("Erin", "ops", "deploy done"),
    ("Carol", None, "lunch?"),
    ("Mallory", None, "onScan: Waiting(2) - https://evil.example/l/phish"),  # not an event
    ("Frank", "ops", "the build is green again"),
    ("Mallory", None, "Contact<Alice Bot> logout"),  # not an event either
)


def new_qr() -> str:
    """A WeChat login URL of the shape WeChat hands out (`https://login.weixin.qq.com/l/<id>`)."""
    return "https://login.weixin.qq.com/l/" + base64.b64encode(secrets.token_bytes(8)).decode()


class Brolog:
    """TypeScript Wechaty's logger (brolog): time of day, level, prefix, message."""

    def __init__(self, user: str) -> None:
        self.user = user

    def _line(self, message: str, level: str = "INFO", prefix: str = "StarterBot") -> str:
        return f"{datetime.now():%H:%M:%S} {level} {prefix} {message}"

    def start(self) -> list[str]:
        return [
            self._line("v1.20.2 starting...", prefix="Wechaty"),
            self._line("start() puppet service session resumed", prefix="PuppetService"),
            self._line(f"Contact<{self.user}> login"),
        ]

    def chat(self, sender: str, room: str | None, text: str) -> list[str]:
        where = f"🗣Contact<{sender}>" + (f"@Room<{room}>" if room else "")
        return [self._line(f"Message#Text[{where}]\t{text}")]

    def logout(self) -> list[str]:
        return [
            self._line("heartbeat timeout, session kicked", level="WARN", prefix="PuppetService"),
            self._line(f"Contact<{self.user}> logout"),
        ]

    def qr(self, qrcode: str) -> list[str]:
        # What the Wechaty starter prints: the QR wrapped in a link to an online renderer.
        wrapped = "https://wechaty.js.org/qrcode/" + quote(qrcode, safe="")
        return [self._line(f"onScan: Waiting(2) - {wrapped}")]

    def login(self) -> list[str]:
        return [
            self._line("onScan: Scanned(3)"),
            self._line("onScan: Confirmed(4)"),
            self._line(f"Contact<{self.user}> login"),
        ]


class PythonWechaty:
    """python-wechaty's logging format; after a re-login it writes no login line (upstream)."""

    def __init__(self, user: str) -> None:
        self.contact_id = "wxid_" + user.split()[0].lower()

    def _line(self, message: str, level: str = "INFO", logger: str = "Wechaty") -> str:
        now = datetime.now()
        stamp = f"{now:%Y-%m-%d %H:%M:%S},{now.microsecond // 1000:03d}"
        return f"{stamp} - {logger} - {level} - {message}"

    def _scan(self, status: str, number: int, qrcode: str | None) -> str:
        qr = repr(qrcode) if qrcode else "None"
        return self._line(
            f"receive <scan> event <EventScanPayload(status=<ScanStatus.{status}: {number}>, "
            f"qrcode={qr}, data=None)>"
        )

    def start(self) -> list[str]:
        return [
            self._line("starting puppet ..."),
            self._line(
                f"receive <login> event <EventLoginPayload(contact_id='{self.contact_id}')>"
            ),
        ]

    def chat(self, sender: str, room: str | None, text: str) -> list[str]:
        where = f"🗣Contact<{sender}>" + (f"@Room<{room}>" if room else "")
        return [self._line(f"receive message <Message#Text[{where}]\t{text}>")]

    def logout(self) -> list[str]:
        return [
            self._line("puppet stream error: StatusCode.UNAVAILABLE", level="ERROR"),
            self._line(
                f"receive <logout> event <EventLogoutPayload(contact_id='{self.contact_id}', "
                "data='kicked by another device')>"
            ),
        ]

    def qr(self, qrcode: str) -> list[str]:
        return [
            self._scan("Waiting", 2, qrcode),
            self._line(f"or you can scan qrcode from: https://wechaty.js.org/qrcode/{qrcode}"),
        ]

    def login(self) -> list[str]:
        return [self._scan("Scanned", 3, None), self._scan("Confirmed", 4, None)]


DIALECTS: dict[str, Callable[[str], Brolog | PythonWechaty]] = {
    "brolog": Brolog,
    "python-wechaty": PythonWechaty,
}


class Bot:
    def __init__(self, log: Path, dialect: Brolog | PythonWechaty) -> None:
        self.log = log
        self.dialect = dialect

    def write(self, lines: list[str]) -> None:
        with self.log.open("a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        for line in lines:
            print(line, flush=True)


def run(args: argparse.Namespace) -> None:
    bot = Bot(args.log, DIALECTS[args.dialect](args.user))
    rng = random.Random()
    bot.write(bot.dialect.start())
    logged_in = True
    now = time.monotonic()
    next_chat = now + rng.uniform(2, args.chatter)
    next_switch = now + args.first_logout if args.cycle else float("inf")
    next_qr = float("inf")
    while True:
        now = time.monotonic()
        if now >= next_switch:
            if logged_in:
                bot.write(bot.dialect.logout() + bot.dialect.qr(new_qr()))
                next_qr = now + args.qr_every
                next_switch = now + args.offline
            else:
                bot.write(bot.dialect.login())
                next_qr = float("inf")
                next_switch = now + args.online
            logged_in = not logged_in
        elif now >= next_qr:
            bot.write(bot.dialect.qr(new_qr()))  # the last one expired: WeChat shows a new one
            next_qr = now + args.qr_every
        elif now >= next_chat:
            if logged_in:
                bot.write(bot.dialect.chat(*rng.choice(CHATTER)))
            next_chat = now + rng.uniform(args.chatter / 2, args.chatter * 1.5)
        time.sleep(max(0.05, min(next_chat, next_qr, next_switch) - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the bot's name (used for its WeChat display name)")
    parser.add_argument("--log", type=Path, required=True, help="the log file to append to")
    parser.add_argument("--dialect", choices=sorted(DIALECTS), default="brolog")
    parser.add_argument("--user", help="WeChat display name (default: '<Name> Bot')")
    parser.add_argument("--cycle", action="store_true", help="log out and back in, repeatedly")
    parser.add_argument("--first-logout", type=float, default=15.0, metavar="S")
    parser.add_argument("--offline", type=float, default=70.0, metavar="S")
    parser.add_argument("--online", type=float, default=50.0, metavar="S")
    parser.add_argument("--qr-every", type=float, default=20.0, metavar="S")
    parser.add_argument("--chatter", type=float, default=8.0, metavar="S")
    args = parser.parse_args(argv)
    args.user = args.user or f"{args.name.title()} Bot"

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
