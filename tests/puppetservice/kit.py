"""The real puppet service for tests: wechaty-puppet-service's PuppetServer on wechaty-puppet-mock.

`RealPuppet` runs tests/puppetservice/server.mjs (versions: package-lock.json there, installed by
`npm ci`) on a free loopback port with the server's defaults: TLS with the Wechaty CA's bundled
certificate for the server name ``insecure``, and the token checked. A test drives the mock
account (`scan`, `login`, `logout`, `say`) and reads what the bot sent (`texts_to`, `files_to`).

What it does that the hand-written fake (tests/peerbot/wechaty/fakepuppet.py) does not:
the first Stop stops the mock puppet, which logs the account out (a logout event, if the stream
is open); contact ids are the Mocker's opaque cuids (`contacts`, `me`); ContactPayload of an
unknown id answers UNKNOWN; MessageSendText/File return no message id; and every message the bot
sends comes back to it as an incoming message from its own account.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SERVER = HERE / "server.mjs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_token() -> str:
    """A token in the Wechaty format: server name ``insecure``, then a random part."""
    return f"insecure_{secrets.token_hex(8)}"


@dataclass
class Sent:
    to: str
    text: str | None = None
    filename: str | None = None
    data: bytes | None = None


@dataclass
class RealPuppet:
    token: str = field(default_factory=new_token)
    tls: bool = True
    env: dict[str, str] = field(default_factory=dict)  # e.g. the server's own certificate
    name: str = "Peer Bot"  # the account's display name
    port: int = 0  # 0: a free one
    me: str = ""
    contacts: dict[str, str] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _proc: asyncio.subprocess.Process | None = None
    _replies: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        node = shutil.which("node")
        assert node, "node is not installed"
        assert (HERE / "node_modules" / "wechaty-puppet-service").is_dir(), (
            "run `npm ci` in tests/puppetservice (scripts/setup.sh --test does)"
        )
        self.port = self.port or _free_port()  # a port given: a service coming back on it
        args = [str(SERVER), str(self.port), self.token, *([] if self.tls else ["--no-tls"])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WECHATY_")}
        self._proc = await asyncio.create_subprocess_exec(
            node, *args, cwd=HERE, env={**env, "MOCK_ACCOUNT_NAME": self.name, **self.env},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._readers = [
            asyncio.create_task(self._read_stdout(ready)),
            asyncio.create_task(self._read_stderr()),
        ]
        try:
            async with asyncio.timeout(30):
                doc = await ready
        except TimeoutError:
            await self.stop()
            raise AssertionError(f"the puppet service did not start: {self.stderr[-20:]}") from None
        self.me, self.contacts = doc["me"], doc["contacts"]

    async def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.write(b'{"op":"stop"}\n')
                await proc.stdin.drain()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in self._readers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- driving the mock account ------------------------------------------------------------

    async def command(self, op: str, **args: Any) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        number = next(self._ids)
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[number] = reply
        line = json.dumps({"id": number, "op": op, **args}) + "\n"
        self._proc.stdin.write(line.encode())
        await self._proc.stdin.drain()
        async with asyncio.timeout(10):
            doc = await reply
        assert doc["ok"], f"{op}: {doc.get('error')}"
        return doc

    async def scan(self, qrcode: str, status: int = 2) -> None:
        await self.command("scan", qrcode=qrcode, status=status)

    async def login(self) -> None:
        await self.command("login")

    async def logout(self, reason: str = "logged out by the phone") -> None:
        await self.command("logout", reason=reason)

    async def say(self, who: str, text: str) -> None:
        """Contact `who` (a key of `contacts`) sends the account `text`."""
        await self.command("say", **{"from": who, "text": text})

    # -- what the bot sent -------------------------------------------------------------------

    def texts_to(self, contact_id: str) -> list[str]:
        return [s.text for s in self.sent if s.to == contact_id and s.text is not None]

    def files_to(self, contact_id: str) -> list[tuple[str, bytes]]:
        return [(s.filename or "", s.data) for s in self.sent if s.to == contact_id and s.data]

    def log(self) -> str:
        return "\n".join(self.stderr[-40:])

    # -- internals ---------------------------------------------------------------------------

    async def _read_stdout(self, ready: asyncio.Future[dict[str, Any]]) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async for raw in self._proc.stdout:
            try:
                doc = json.loads(raw)
            except ValueError:
                self.stderr.append(raw.decode(errors="replace").rstrip())
                continue
            if doc.get("event") == "ready" and not ready.done():
                ready.set_result(doc)
            elif doc.get("event") == "sent":
                data = base64.b64decode(doc["base64"]) if "base64" in doc else None
                self.sent.append(Sent(doc["to"], doc.get("text"), doc.get("file"), data))
            elif "reply" in doc:
                future = self._replies.pop(doc["reply"], None)
                if future is not None and not future.done():
                    future.set_result(doc)

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for raw in self._proc.stderr:
            self.stderr.append(raw.decode(errors="replace").rstrip())
