"""`chatops/redact.py`: what a `log` reply must never show, on genuine log lines.

The genuine lines below were written by the real packages: wechaty 1.x on wechaty-puppet-mock
(tests/genuine generates them: StarterBot, EventLogger, QRCodeTerminal, WECHATY_LOG=verbose),
python-wechaty 0.10.7 (src/wechaty_exporter/samples/bob.log) and the peer bot's own stderr at
`--log.level debug` before the HTTP/2 loggers were clamped (the hpack line). Lines with a made-up
secret in them say so.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from wechaty_exporter.chatops.redact import (
    MIN_SECRET_CHARS,
    QR_REDACTED,
    REDACTED,
    SecretsFilter,
    env_secrets,
    known_secrets,
    redact_line,
    redact_lines,
)

REPO = Path(__file__).resolve().parents[2]
TOKEN = "Zebra-Kettle-7q9"  # a puppet token no generic pattern would catch: only its value can
TOTP = "JBSWY3DPEHPK3PXP"
SECRETS = known_secrets(TOKEN, TOTP, "t")  # "t": too short to redact (MIN_SECRET_CHARS)
QR = QR_REDACTED

TABLE = [
    # --- login QRs, every way a real bot writes one ---------------------------------------------
    (
        "08:28:56 INFO StarterBot onScan: Waiting(2) - https://wechaty.js.org/qrcode/https%3A%2F%2F"
        "login.weixin.qq.com%2Fl%2FGen113947nkA%3D%3D",
        f"08:28:56 INFO StarterBot onScan: Waiting(2) - {QR}",
    ),
    (
        "08:28:56 INFO StarterBot onScan: Timeout(5) - https://wechaty.js.org/qrcode/https%3A%2F%2F"
        "login.weixin.qq.com%2Fl%2FGen213947nkB%3D%3D",
        f"08:28:56 INFO StarterBot onScan: Timeout(5) - {QR}",
    ),
    (
        "08:28:56 VERB Mocker scan(https://login.weixin.qq.com/l/Gen113947nkA==, 2)",
        f"08:28:56 VERB Mocker scan({QR}, 2)",
    ),
    (
        '06:14:51 INFO WechatyPluginContrib EventLoggerPlugin() scan: ["https://login.weixin.qq.com'
        '/l/Gen1cu2yqmA==",2,null]',
        f'06:14:51 INFO WechatyPluginContrib EventLoggerPlugin() scan: ["{QR}",2,null]',
    ),
    (
        "08:00:02 INFO WechatyPluginContrib EventLogger scan: https://login.weixin.qq.com/l/IdE1aa==,2,",
        f"08:00:02 INFO WechatyPluginContrib EventLogger scan: {QR},2,",
    ),
    (
        "QR Code Image URL: https://api.qrserver.com/v1/create-qr-code/?data=https%3A%2F%2F"
        "login.weixin.qq.com%2Fl%2FIdQ1dd%3D%3D",
        f"QR Code Image URL: {QR}",
    ),
    ("█▀▀▀▀▀█ ▄▀▄ █▄ █▀▀▀▀▀█", QR),  # QRCodeTerminal draws the QR itself
    (
        "2026-11-25 09:48:10,318 - Wechaty - INFO - receive <scan> event <EventScanPayload("
        "status=<ScanStatus.Waiting: 2>, qrcode='https://login.weixin.qq.com/l/4ZqF9mXwTg==', "
        "data=None)>",
        "2026-11-25 09:48:10,318 - Wechaty - INFO - receive <scan> event <EventScanPayload("
        f"status=<ScanStatus.Waiting: 2>, qrcode='{QR}', data=None)>",
    ),
    (
        "2026-11-25 09:48:10,319 - Wechaty - INFO - or you can scan qrcode from: "
        "https://wechaty.js.org/qrcode/https://login.weixin.qq.com/l/4ZqF9mXwTg==",
        f"2026-11-25 09:48:10,319 - Wechaty - INFO - or you can scan qrcode from: {QR}",
    ),
    (  # the peer bot's self-log
        '2026-11-25T09:00:01.000+08:00 INFO wechaty-exporter scan {"status":2,'
        '"qrcode":"http://weixin.qq.com/x/IdP1gg"}',
        f'2026-11-25T09:00:01.000+08:00 INFO wechaty-exporter scan {{"status":2,"qrcode":"{QR}"}}',
    ),
    (  # a forged one in chat: a phishing QR is no better to see
        "08:28:56 INFO StarterBot Message#Text[🗣Contact<Mallory>]\tonScan: Waiting(2) - "
        "http://weixin.qq.com/x/PHISH",
        f"08:28:56 INFO StarterBot Message#Text[🗣Contact<Mallory>]\tonScan: Waiting(2) - {QR}",
    ),
    (  # any URL on a scan line, whatever its host
        "09:59:12 INFO StarterBot onScan: Waiting(2) - https://evil.example/l/phish",
        f"09:59:12 INFO StarterBot onScan: Waiting(2) - {QR}",
    ),
    (  # a scheme-less login URL, on a line that says nothing of scans
        "10:00:00 INFO StarterBot Message#Text[🗣Contact<Carol>]\tlogin.weixin.qq.com/l/AbC123==",
        f"10:00:00 INFO StarterBot Message#Text[🗣Contact<Carol>]\t{QR}",
    ),
    (  # made up: a login URL inside another URL, or JSON-escaped
        "hi https://example.com/?u=https%3A%2F%2Flogin.weixin.qq.com%2Fl%2FAbC123%3D%3D&x=1",
        f"hi https://example.com/?u=https%3A%2F%2F{QR}",
    ),
    ('{"u":"https:\\/\\/login.weixin.qq.com\\/l\\/AbC123=="}', f'{{"u":"https:\\/\\/{QR}"}}'),
    # --- the puppet token and other secrets -------------------------------------------------------
    (  # the peer bot's stderr at --log.level debug, before the fix
        "2026-12-02 09:20:07,023 DEBUG hpack.hpack: Adding b':authority'=b'Zebra-Kettle-7q9' to "
        "the header table, sensitive:False, huffman:True",
        f"2026-12-02 09:20:07,023 DEBUG hpack.hpack: Adding b':authority'=b'{REDACTED}' to the "
        "header table, sensitive:False, huffman:True",
    ),
    (  # python-wechaty's PuppetService, as the library writes it (the bot filters its own)
        "2026-12-02 09:20:07,020 - PuppetService - WARNING - there are endpoint<127.0.0.1:37713> "
        "and token<puppet_service_1f0e6ad2>, and the endpoint will be used for service ...",
        "2026-12-02 09:20:07,020 - PuppetService - WARNING - there are endpoint<127.0.0.1:37713> "
        f"and token<{REDACTED}>, and the endpoint will be used for service ...",
    ),
    ("WECHATY_PUPPET_SERVICE_TOKEN=insecure_0d5c7a1e", f"WECHATY_PUPPET_SERVICE_TOKEN={REDACTED}"),
    (  # made up: bare service tokens
        "using puppet_padlocal_0123456789abcdef0123456789abcdef and insecure_3f9a1c22-77",
        f"using {REDACTED} and {REDACTED}",
    ),
    (
        '08:28:55 VERB PuppetService constructor({"token":"8a4d1b0e-8f3c-4c53-9a1e-2f6a0c7d9b11"})',
        f'08:28:55 VERB PuppetService constructor({{"token":"{REDACTED}"}})',
    ),
    (  # genuine: wechaty 1.x instance ids are UUIDs, and so are most puppet-service tokens
        "08:28:56 VERB PuppetWatchdogAgent constructor(9d029134-c571-4e5b-b831-03d0d45c59aa)",
        f"08:28:56 VERB PuppetWatchdogAgent constructor({REDACTED})",
    ),
    ("GET /qr?token=s3cr3t-value&bot=bob HTTP/1.1", f"GET /qr?token={REDACTED}&bot=bob HTTP/1.1"),
    (
        "Authorization: Bearer 3q2-7wEkG_9sLx0PvT4nQm8c",
        f"Authorization: Bearer {REDACTED}",
    ),
    ("totp_secret: JBSWY3DPEHPK3PXP", f"totp_secret: {REDACTED}"),
    (f"secret {TOTP} in a sentence", f"secret {REDACTED} in a sentence"),  # known: exact value
    (f"password='hunter22' api_key: {'ab' * 3}", f"password='{REDACTED}' api_key: {REDACTED}"),
    ("sha256 0123456789abcdef0123456789abcdef01234567", f"sha256 {REDACTED}"),
    (
        "png iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
        "+A8AAQUBAScY42YAAAAASUVORK5CYII=",
        f"png {REDACTED}",
    ),
    # --- left as they are: the rest of the log stays readable -------------------------------------
    ("08:28:56 INFO StarterBot onScan: Scanned(3)", None),
    ("08:28:56 VERB WechatySkeleton on(scan, listener) registering... listenerCount: 0", None),
    ("08:28:55 VERB wechaty-puppet-service monkeyPatchMetadataFromHttp2Headers()", None),
    ("09:58:36 INFO StarterBot Contact<Alice Bot> login", None),
    ("10:01:40 WARN PuppetService heartbeat timeout, reconnecting", None),
    (
        '06:14:51 INFO WechatyPluginContrib EventLoggerPlugin() message: [{"_events":{},'
        '"_eventsCount":0,"id":"cmx5qe88p00052l7dcy0qbalr","payload":{"id":'
        '"cmx5qe88p00052l7dcy0qbalr","talkerId":"wxid_mallory","timestamp":1796192091961}}]',
        None,
    ),
    (
        "2026-11-25 09:48:10,320 - Wechaty - INFO - receive <scan> event <EventScanPayload("
        "status=<ScanStatus.Scanned: 3>, qrcode=None, data=None)>",
        None,
    ),
    (
        "    at PuppetService.start (/home/bots/node_modules/wechaty-puppet-service/dist/cjs/src/"
        "client/puppet-service.js:123:9)",
        None,
    ),
    ("token expired, please re-login; 3 tokens left", None),
    ("Bearer token missing", None),
    ("2026-11-25 09:00:00,120 - WechatyPuppetService - INFO - creating grpc channel ...", None),
    ("the t in the bot's log is not a secret", None),  # "t" is shorter than MIN_SECRET_CHARS
]


@pytest.mark.parametrize(("line", "expected"), TABLE)
def test_redact_line(line: str, expected: str | None) -> None:
    assert redact_line(line, SECRETS) == (line if expected is None else expected)


def test_known_secrets() -> None:
    assert known_secrets(None, "", "short", " ab/c+d=ef ") == ("ab%2Fc%2Bd%3Def", "ab/c+d=ef")
    assert len("short") < MIN_SECRET_CHARS
    # the longer first, so a secret that contains another is blanked whole
    assert known_secrets("abcdef", "abcdefgh") == ("abcdefgh", "abcdef")
    encoded = "GET /?x=ab%2Fc%2Bd%3Def"
    assert redact_line(encoded, known_secrets("ab/c+d=ef")) == f"GET /?x={REDACTED}"


def test_env_secrets() -> None:
    environ = {"WECHATY_PUPPET_SERVICE_TOKEN": "one", "TOKEN": "", "HOME": "/root"}
    assert env_secrets(environ) == ("one",)


def test_qr_art_is_kept_once() -> None:
    art = ["█▀▀▀▀▀█ ▄▀▄ █▄ █▀▀▀▀▀█", "█ ███ █ ▀█▄▀▀█ █ ███ █", "▀▀▀▀▀▀▀ ▀ ▀ ▀ ▀▀▀▀▀▀▀"]
    lines = ['07:59:59 VERB WechatyPluginContrib QRCodeTerminal("{"small":true}")', *art, "x"]
    assert redact_lines(lines) == [lines[0], QR, "x"]
    assert redact_lines(["same line", "same line"]) == ["same line", "same line"]


QR_ID = re.compile(r"(?i)weixin\.qq\.com/[lx]/([A-Za-z0-9_-]{4,})")


@pytest.mark.parametrize(
    "path",
    sorted([*(REPO / "src/wechaty_exporter/samples").glob("*.log"),
            *(REPO / "tests/data/dialects").glob("*.log")]),
    ids=lambda p: p.name,
)  # fmt: skip
def test_real_logs_keep_no_qr_and_the_rest(path: Path) -> None:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out = redact_lines(lines)
    text = unquote(unquote("\n".join(out)))
    ids = {m.group(1) for line in lines for m in QR_ID.finditer(unquote(unquote(line)))}
    assert ids, "no QR in a sample: pick another file"
    assert not [i for i in ids if i in text]
    # every line that did not speak of a QR or a scan reads as before
    quiet = [line for line in lines if not re.search(r"(?i)scan|qr|qq\.com|[█▀▄]|https?://", line)]
    assert quiet and all(line in out for line in quiet)


def test_secrets_filter_blanks_records_and_tracebacks() -> None:
    record = logging.LogRecord(
        "hpack.hpack", logging.DEBUG, __file__, 1, "Adding %r", (TOKEN,), None
    )
    try:
        raise RuntimeError(f"refused token {TOKEN}")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    assert SecretsFilter(SECRETS).filter(record)
    formatted = logging.Formatter("%(name)s %(message)s").format(record)
    assert TOKEN not in formatted
    assert f"Adding '{REDACTED}'" in formatted
    assert f"RuntimeError: refused token {REDACTED}" in formatted
