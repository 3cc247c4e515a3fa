"""The puppet token stays out of `wechaty-exporter bot`'s stderr at `--log.level debug`, and out
of what its `log` command sends to the chat.

The attack: grpclib sends the puppet token as the HTTP/2 `:authority`, and hpack logs every
header it encodes at DEBUG ("Adding b':authority'=b'<token>' to the header table"), so a debug
log shared for troubleshooting gave the token away; and `log bob` sent the token and the login
QR to the chat as plain text. The bot is the real process with the real python-wechaty client,
on the fake puppet service; the admin writes to it through the fake.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.integration.harness import free_port
from tests.peerbot.kit import ADMIN, ALICE, self_log_lines, start_fake, stop_fake, until

from wechaty_exporter.chatops.redact import QR_REDACTED, REDACTED

REPO = Path(__file__).resolve().parents[2]
TOKEN = "Zebra-Kettle-7q9"  # no generic pattern catches it: only the known value can
QR_ID = "4ZqF9mXwTg"  # bob's login QR, in samples/bob.log


async def run_bot(tmp_path: Path, *args: str, endpoint: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECHATY_PUPPET_SERVICE_")}
    env.pop("CACHE_DIR", None)
    env.update(WECHATY_PUPPET_SERVICE_ENDPOINT=endpoint, WECHATY_PUPPET_SERVICE_TOKEN=TOKEN)
    env["WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_CLIENT"] = "true"  # the fake speaks plaintext
    stderr = (tmp_path / "stderr").open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wechaty_exporter", "bot", *args, cwd=tmp_path, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=stderr, stderr=stderr,
        )  # fmt: skip
    finally:
        stderr.close()


async def test_debug_log_and_log_replies_hold_no_token(tmp_path: Path) -> None:
    bob_log = tmp_path / "bob.log"
    sample = (REPO / "src/wechaty_exporter/samples/bob.log").read_text(encoding="utf-8")
    bob_log.write_text(  # bob's own python-wechaty, whose PuppetService logs its token as is
        sample + "2026-11-25 09:48:11,000 - PuppetService - WARNING - there are endpoint"
        f"<127.0.0.1:8788> and token<{TOKEN}>, and the endpoint will be used for service ...\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yml"
    config.write_text(
        f"bot:\n  receiver: {{language: en}}\n  commands: {{log_files: {{bob: [{bob_log}]}}}}\n",
        encoding="utf-8",
    )
    self_log = tmp_path / "alice.self.log"
    fake = await start_fake(ALICE, logged_in=True)
    proc = await run_bot(
        tmp_path, "--config", str(config), "--log.level", "debug",
        "--web.listen-address", f"127.0.0.1:{free_port()}", "--self-log", str(self_log),
        "--admin", f"bob={ADMIN.id}", "--exporter-url", "http://127.0.0.1:9",
        endpoint=fake.endpoint,
    )  # fmt: skip

    def replies(count: int) -> list[str] | None:
        if proc.returncode is not None:
            raise AssertionError((tmp_path / "stderr").read_text(errors="replace")[-3000:])
        texts = fake.texts_to(ADMIN.id)
        return texts if len(texts) >= count else None

    try:
        await until(lambda: self_log_lines(self_log, "login"), within=20, what="the login")
        fake.receive_text(ADMIN.id, "log bob 20")
        (ask,) = await until(lambda: replies(1), within=10, what="the YES question")
        assert ask == "Reply YES within 1 min to run: log bob 20"
        fake.receive_text(ADMIN.id, "YES")
        texts = await until(lambda: replies(2), within=10, what="the log")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await stop_fake(fake)

    reply = "\n".join(texts[1:])
    assert reply.startswith("bob.log, last 8 lines:\n"), reply
    assert f"qrcode='{QR_REDACTED}'" in reply
    assert f"and token<{REDACTED}>" in reply
    assert TOKEN not in reply and QR_ID not in reply

    stderr = (tmp_path / "stderr").read_text(errors="replace")
    assert " DEBUG " in stderr, "the bot did not log at debug: the test proves nothing"
    assert "connected to the puppet service" in stderr
    assert TOKEN not in stderr
    assert " DEBUG hpack" not in stderr
