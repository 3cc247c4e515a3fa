"""Generated Wechaty logs for the benchmarks: realistic mixes with a known ground truth.

A log is a sequence of "runs" of one bot process, each written through one wrapper (plain brolog,
ANSI-coloured levels, pm2 ``--time`` stamps, ``pm2 logs`` console prefixes, CRLF, pm2 JSON). Most
lines are chat messages and puppet chatter; every few thousand lines the bot goes through a
logout → QR (one to three, with QR art, as onScan, EventLogger or QRCodeTerminal) → scan →
login cycle; a QR is often printed again (a second logger, a refresh: the same QR, maybe in
another form), which is no new QR code. A few chat messages forge event lines, a few real scans
carry a QR that is not a WeChat URL, about 0.2 % of lines are ERR. `Truth` counts what the
exporter must find, with its semantics (counters count state changes; a QR code counts when the
pending QR changes), so both `replay` and the mtail program can be checked.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BOT = "Bob"
BASE_TIME = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC).timestamp()

_PEOPLE = ["Alice", "Carol", "Dave", "李雷", "韩梅梅", "Eve 🐱", "Frank", "王小明"]
_ROOMS = ["Ops 运维群", "Family", "Weekend hiking", "wechaty-dev", "读书会"]
_WORDS = [
    "hello", "good", "morning", "are", "you", "there", "ok", "thanks", "see", "you", "later",
    "lunch", "meeting", "at", "3", "pm", "please", "check", "the", "deploy", "it", "works", "for",
    "me", "好的", "收到", "谢谢", "明天见", "没问题", "哈哈", "👍", "🙏", "😂", "the", "build",
    "is", "green", "who", "has", "the", "keys", "let's", "go", "ship", "it", "tomorrow", "maybe",
    "weekend",
]  # fmt: skip
_ART = ["█▀▀▀▀▀█ ▄▀▄ █▄ █▀▀▀▀▀█", "█ ███ █ ▀█▄▀▀ █ ███ █", "▀▀▀▀▀▀▀ ▀ ▀ ▀ ▀▀▀▀▀▀▀"]
# A run of the bot process writes through one wrapper; the weights pick the next run's.
WRAPPER_WEIGHTS = {
    "plain": 40,
    "ansi": 15,
    "pm2time": 15,
    "pm2console": 15,
    "crlf": 5,
    "pm2json": 10,
}
WRAPPERS = tuple(WRAPPER_WEIGHTS)


@dataclass
class Truth:
    """What a correct parser must report for the generated lines."""

    lines: int = 0
    logins: int = 0
    logouts: int = 0
    qr_codes: int = 0
    rejected_qr: int = 0
    errors: int = 0
    logged_in: bool | None = None
    qr: str | None = None  # the pending QR (unwrapped), if any
    wrappers: dict[str, int] = field(default_factory=dict)  # lines per wrapper

    def counters(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "logins": self.logins,
            "logouts": self.logouts,
            "qr_codes": self.qr_codes,
            "rejected_qr": self.rejected_qr,
            "errors": self.errors,
        }


class _Writer:
    """Formats lines through the current wrapper and tracks the truth as events are emitted."""

    def __init__(self, rng: random.Random, truth: Truth) -> None:
        self.rng = rng
        self.truth = truth
        self.t = BASE_TIME
        self.wrapper = "plain"
        self.out: list[str] = []

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self.t, UTC).strftime("%H:%M:%S")

    def raw(self, text: str) -> None:
        """One physical line (without its wrapper) as the bot printed it."""
        self.t += self.rng.random() * 2.0
        w = self.wrapper
        if w == "pm2time":
            text = datetime.fromtimestamp(self.t, UTC).strftime("%Y-%m-%dT%H:%M:%S: ") + text
        elif w == "pm2console":
            text = "0|bob    | " + text
        elif w == "crlf":
            text += "\r"
        elif w == "pm2json":
            stamp = datetime.fromtimestamp(self.t, UTC).isoformat(timespec="milliseconds")
            text = json.dumps(
                {
                    "message": text + "\n",
                    "timestamp": stamp.replace("+00:00", "Z"),
                    "type": "out",
                    "process_id": 0,
                    "app_name": "bob",
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
        self.out.append(text)
        self.truth.lines += 1
        self.truth.wrappers[w] = self.truth.wrappers.get(w, 0) + 1

    def log(self, level: str, prefix: str, message: str) -> None:
        shown = f"\x1b[32m{level}\x1b[39m" if self.wrapper == "ansi" else level
        self.raw(f"{self._stamp()} {shown} {prefix} {message}")
        if level == "ERR":
            self.truth.errors += 1

    # -- noise -------------------------------------------------------------------------------

    def chat(self) -> None:
        rng = self.rng
        who = rng.choice(_PEOPLE)
        where = f"Contact<{who}>"
        if rng.random() < 0.4:
            where += f"@Room<{rng.choice(_ROOMS)}>"
        if rng.random() < 0.08:
            self.log("INFO", "StarterBot", f"Message#Image[🗣{where}]\t<img>")
            return
        text = " ".join(rng.choices(_WORDS, k=rng.randint(2, 14)))
        self.log("INFO", "StarterBot", f"Message#Text[🗣{where}]\t{text}")

    def forged_chat(self) -> None:
        """Chat text that contains an event line: never an event."""
        forged = self.rng.choice(
            [
                "onScan: Waiting(2) - https://login.weixin.qq.com/l/forged",
                f"Contact<{BOT}> logout",
                f"{self._stamp()} INFO StarterBot Contact<{BOT}> login",
                "scan: https://login.weixin.qq.com/l/forged,2,",
            ]
        )
        self.log("INFO", "StarterBot", f"Message#Text[🗣Contact<Mallory>]\t{forged}")

    def puppet(self) -> None:
        rng = self.rng
        r = rng.random()
        mid = f"{rng.getrandbits(64):016x}"
        if r < 0.5:
            payload = f'"{{\\"messageId\\":\\"{mid}\\"}}"'
            self.log(
                "VERB",
                "PuppetService",
                f"onGrpcStreamEvent({{type:EVENT_TYPE_MESSAGE(9), payload:{payload}}})",
            )
        elif r < 0.85:
            self.log("SILL", "PuppetService", f"messageRawPayload({mid})")
        elif r < 0.97:
            self.log("VERB", "Message", f'static find({{"id":"{mid}"}})')
        else:
            self.log("WARN", "PuppetService", "startGrpcStream() heartbeat late, reconnecting")

    def error(self) -> None:
        self.log("ERR", "PuppetService", "startGrpcStream() grpcStream.on(error) 14 UNAVAILABLE")

    def noise(self, n: int) -> None:
        rng = self.rng
        for _ in range(n):
            r = rng.random()
            if r < 0.70:
                self.chat()
            elif r < 0.998:
                self.puppet()
            else:
                self.error()
            if rng.random() < 0.0005:
                self.forged_chat()

    # -- events ------------------------------------------------------------------------------

    def login(self) -> None:
        if self.rng.random() < 0.5 or self.wrapper == "pm2json":
            self.log("INFO", "StarterBot", f"Contact<{BOT}> login")
        else:
            self.log("INFO", "WechatyPluginContrib", f"EventLogger login: Contact<{BOT}>")
        self._to(True)

    def logout(self) -> None:
        if self.rng.random() < 0.5 or self.wrapper == "pm2json":
            self.log("INFO", "StarterBot", f"Contact<{BOT}> logout")
        else:
            self.log("INFO", "WechatyPluginContrib", f"EventLogger logout: Contact<{BOT}>,kicked")
        if self.truth.logged_in is not False:
            self.truth.logouts += 1
        self.truth.logged_in = False
        self.truth.qr = None

    def _to(self, logged_in: bool) -> None:
        if logged_in and self.truth.logged_in is not True:
            self.truth.logins += 1
        self.truth.logged_in = logged_in
        self.truth.qr = None

    def waiting(self, *, forged_host: bool = False, qr: str | None = None) -> None:
        """A Waiting scan with a new QR, or with `qr` (the pending one, printed again)."""
        rng = self.rng
        host = "weixin.qq.com.evil.example" if forged_host else "login.weixin.qq.com"
        qr = qr or f"https://{host}/l/{rng.getrandbits(48):012x}=="
        encoded = qr.replace(":", "%3A").replace("/", "%2F").replace("=", "%3D")
        form = "onscan" if self.wrapper == "pm2json" else rng.choice(["onscan", "el", "qrt"])
        if form == "onscan":
            msg = f"onScan: Waiting(2) - https://wechaty.js.org/qrcode/{encoded}"
            self.log("INFO", "StarterBot", msg)
            for art in _ART:
                self.raw(art)
        elif form == "el":
            self.log("INFO", "WechatyPluginContrib", f"EventLogger scan: {qr},2,")
        else:
            self.log(
                "INFO", "WechatyPluginContrib", "QRCodeTerminal Login QR Code Status: Waiting(2)"
            )
            self.raw(
                f"QR Code Image URL: https://api.qrserver.com/v1/create-qr-code/?data={encoded}"
            )
        if forged_host:
            self.truth.rejected_qr += 1
        else:
            if qr != self.truth.qr:  # the same QR again is no new QR code
                self.truth.qr_codes += 1
            self.truth.logged_in = False
            self.truth.qr = qr

    def scan(self, name: str, number: int) -> None:
        if self.wrapper != "pm2json" and self.rng.random() < 0.3:
            self.log("INFO", "WechatyPluginContrib", f"EventLogger scan: ,{number},")
        else:
            self.log("INFO", "StarterBot", f"onScan: {name}({number})")
        if number == 4:
            self._to(True)
        else:
            self.truth.qr = None

    def cycle(self) -> None:
        """Logged out → QR(s) → scanned → confirmed → login, with chat in between."""
        self.logout()
        self.noise(self.rng.randint(0, 20))
        for i in range(self.rng.choice([1, 1, 2, 3])):
            if i:
                self.scan("Timeout", 5)
            if self.rng.random() < 0.05:
                self.waiting(forged_host=True)
            self.waiting()
            if self.rng.random() < 0.3:  # printed again: a second logger, or a refresh
                self.noise(self.rng.randint(0, 3))
                self.waiting(qr=self.truth.qr)
            self.noise(self.rng.randint(0, 10))
        self.scan("Scanned", 3)
        self.scan("Confirmed", 4)
        self.login()


def generate(
    lines: int,
    seed: int = 7,
    *,
    cycle_every: int = 8000,
    tail: int = 0,
    wrappers: tuple[str, ...] = WRAPPERS,
) -> tuple[list[str], Truth]:
    """About `lines` lines (a few more at the end of a cycle) and their truth.

    With `tail` > 0 the log ends with a logout and a pending QR followed by `tail` lines of chat:
    the decisive entry a cold start must find, near the end.
    """
    rng = random.Random(seed)
    truth = Truth()
    w = _Writer(rng, truth)
    w.login()
    body = max(0, lines - tail - 10)
    while truth.lines < body:
        w.wrapper = rng.choices(wrappers, [WRAPPER_WEIGHTS[x] for x in wrappers])[0]
        run_end = min(body, truth.lines + rng.randint(5_000, 40_000))
        while truth.lines < run_end:
            w.noise(min(run_end - truth.lines, int(rng.expovariate(1 / cycle_every)) + 1))
            if truth.lines < run_end:
                w.cycle()
    if tail:
        w.wrapper = "plain"
        w.logout()
        w.waiting()
        w.noise(tail)
    return w.out, truth


def write_log(path: Path, lines: list[str]) -> int:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.write_bytes(data)
    return len(data)


def write_sized(path: Path, size: int, seed: int = 11, tail: int = 300) -> Truth:
    """A log of about `size` bytes (a generated block repeated) ending in a known decisive tail.

    Only the tail's truth matters for a cold start (logged out, its QR pending).
    """
    block_lines, _ = generate(100_000, seed)
    block = ("\n".join(block_lines) + "\n").encode("utf-8")
    tail_lines, truth = generate(0, seed + 1, tail=tail)
    tail_data = ("\n".join(tail_lines[1:]) + "\n").encode("utf-8")  # without its first login
    with path.open("wb") as f:
        written = 0
        while written + len(block) + len(tail_data) <= size:
            f.write(block)
            written += len(block)
        rest = size - written - len(tail_data)
        if rest > 0:
            cut = block.rfind(b"\n", 0, rest) + 1
            f.write(block[:cut])
        f.write(tail_data)
    return truth
