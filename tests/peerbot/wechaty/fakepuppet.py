"""A fake Wechaty puppet service on loopback, for what the real one cannot be made to do.

No WeChat account is reachable from tests. Where it can, the real python-wechaty client talks to
the real puppet service (wechaty-puppet-service 1.19's PuppetServer on wechaty-puppet-mock, over
its default TLS: tests/puppetservice/). This hand-written plaintext grpclib server stays for what
that one cannot do on cue: count the RPCs the client makes (`calls`), answer them with an error
status (`fail_rpcs`), go down and come back on the same port with its state (`go_down`,
`come_back`), and hold contacts tests set up with friend flags or add mid-test. It differs from
the real server where the client cannot tell: its ids are readable (``wxid_...``, the real ones
are opaque cuids), an unknown id answers INTERNAL (the real one: UNKNOWN), sends return a message
id (the real ones: none) and are not echoed back as incoming messages, and its Stop does not log
the account out. It copies that server's observable behaviour, as far as the client depends on it:

- one Event stream at a time (a second one gets ALREADY_EXISTS); when it opens, a logged-in
  account is announced with a login event, else a pending QR is re-sent as a scan event;
- Stop ends the open Event stream; every RPC error is INTERNAL, as the real server reports them;
- event payloads are JSON strings with camelCase keys (`contactId`, `messageId`, `qrcode`);
- MessagePayload.type carries TypeScript's MessageType numbers (Text = 7, Image = 6), which the
  Python client remaps to wechaty-grpc's enum;
- MessageSendFile carries a FileBox as JSON; base64 boxes are decoded and kept as bytes;
- message ids are unique per fake: python-wechaty silently drops, process-wide and forever, any
  message id it has seen before.

It implements the RPCs the client was seen to call (Stop, Start, Event, ContactPayload,
ContactList, MessagePayload, MessageSendText, MessageSendFile). Every other route in wechaty-grpc's
`PuppetStub` answers UNIMPLEMENTED, is logged at ERROR and recorded in `unimplemented`, so a test
can assert that the client needed nothing more. `calls` records every RPC by name.

A test drives it: `scan()`, `login()`, `logout()`, `receive_text()` emit events; `sent`,
`texts_to()` and `files_to()` read what the bot sent; `go_down()` closes the server (connections
drop, the port refuses), `come_back()` listens on the same port again, and `fail_rpcs()` makes
every RPC answer UNAVAILABLE while the server stays up.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream
from wechaty_grpc.wechaty import PuppetStub
from wechaty_grpc.wechaty import puppet as pb

log = logging.getLogger("fakepuppet")

TEXT = 7  # TypeScript wechaty-puppet MessageType.Text
IMAGE = 6  # TypeScript wechaty-puppet MessageType.Image

ALL_ROUTES = tuple(
    sorted(set(re.findall(r'"/wechaty\.Puppet/(\w+)"', inspect.getsource(PuppetStub))))
)


@dataclass(frozen=True)
class FakeContact:
    id: str
    name: str
    alias: str = ""
    weixin: str = ""
    friend: bool = True


# A sample address book: the bot's own account, an admin reachable by id, weixin, alias and name,
# and contacts that a careless lookup would confuse with the admin or with each other.
ME = FakeContact("wxid_peerbot", "Peer Bot", weixin="peer_bot")
ADMIN = FakeContact("wxid_admin01", "Ada Admin", alias="oncall-boss", weixin="ada_weixin")
CONTACTS = (
    ADMIN,
    FakeContact("wxid_mum", "Ada Admin's mum", alias="oncall-boss-2"),  # substrings of ADMIN's
    FakeContact("wxid_bob", "Bob", weixin="bob_wx"),
    FakeContact("wxid_twin1", "Twin"),
    FakeContact("wxid_twin2", "Twin"),
)


@dataclass(frozen=True)
class Sent:
    """One message the bot sent: a text, or a file with its decoded bytes."""

    message_id: str
    to: str
    text: str | None = None
    filename: str | None = None
    data: bytes | None = None


_StreamHandler = Callable[[Stream[Any, Any]], Awaitable[None]]


class _Server(Server):
    """grpclib's Server.close() cancels requests but leaves connections open; a puppet service
    that goes down drops them. This one remembers its connections so `drop()` can close them."""

    def __init__(self, handlers: list[Any]) -> None:
        super().__init__(handlers)
        self.transports: list[asyncio.BaseTransport] = []

    def _protocol_factory(self) -> Any:
        protocol = super()._protocol_factory()
        connection_made = protocol.connection_made

        def record(transport: asyncio.BaseTransport) -> None:
            self.transports.append(transport)
            connection_made(transport)

        protocol.connection_made = record
        return protocol

    async def drop(self) -> None:
        self.close()
        for transport in self.transports:
            transport.close()
        await self.wait_closed()


class FakePuppet:
    def __init__(self, me: FakeContact = ME, contacts: Iterable[FakeContact] = CONTACTS) -> None:
        self.me = me
        self.contacts = {c.id: c for c in (me, *contacts)}
        self.logged_in = False
        self.pending_scan: dict[str, Any] | None = None
        self.calls: list[str] = []
        self.unimplemented: list[str] = []
        self.sent: list[Sent] = []
        self.messages: dict[str, pb.MessagePayloadResponse] = {}
        self.failing: Status | None = None
        self.port = 0
        self._server: _Server | None = None
        self._events: asyncio.Queue[pb.EventResponse | None] | None = None
        self._event_stream_open = asyncio.Event()
        # python-wechaty drops any message id it has seen before in this process, from any bot.
        self._id_prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        server = _Server([self])
        await server.start("127.0.0.1", port)
        assert server._server is not None
        self.port = server._server.sockets[0].getsockname()[1]
        self._server = server
        log.info("fake puppet listening on %s", self.endpoint)

    async def go_down(self) -> None:
        """Close the server: open streams and connections drop, new connections are refused."""
        if self._server is not None:
            await self._server.drop()
            self._server = None
        self._end_event_stream()

    async def come_back(self) -> None:
        await self.start(self.port)

    def fail_rpcs(self, status: Status | None = Status.UNAVAILABLE) -> None:
        """Answer every RPC with `status` (None: answer normally again)."""
        self.failing = status

    async def wait_event_stream(self) -> None:
        async with asyncio.timeout(5):
            await self._event_stream_open.wait()

    # -- driving events ----------------------------------------------------------------------

    def scan(self, qrcode: str, status: int = 2) -> None:
        payload = {"status": status, "qrcode": qrcode, "data": ""}
        self.pending_scan = payload if status == 2 else None
        self._emit(pb.EventType.EVENT_TYPE_SCAN, payload)

    def login(self) -> None:
        self.logged_in, self.pending_scan = True, None
        self._emit(pb.EventType.EVENT_TYPE_LOGIN, {"contactId": self.me.id})

    def logout(self, reason: str = "logged out by the phone") -> None:
        self.logged_in = False
        self._emit(pb.EventType.EVENT_TYPE_LOGOUT, {"contactId": self.me.id, "data": reason})

    def heartbeat(self) -> None:
        self._emit(pb.EventType.EVENT_TYPE_HEARTBEAT, {"data": "heartbeat"})

    def receive_text(self, from_id: str, text: str) -> str:
        message_id = self._message(from_id, self.me.id, TEXT, text=text)
        self._emit(pb.EventType.EVENT_TYPE_MESSAGE, {"messageId": message_id})
        return message_id

    # -- reading what was sent ---------------------------------------------------------------

    def texts_to(self, contact_id: str) -> list[str]:
        return [s.text for s in self.sent if s.to == contact_id and s.text is not None]

    def files_to(self, contact_id: str) -> list[tuple[str, bytes]]:
        return [
            (s.filename or "", s.data)
            for s in self.sent
            if s.to == contact_id and s.data is not None
        ]

    # -- gRPC --------------------------------------------------------------------------------

    def __mapping__(self) -> dict[str, Handler]:
        implemented: dict[str, tuple[_StreamHandler, Cardinality, type, type]] = {
            "Start": (self._start, Cardinality.UNARY_UNARY, pb.StartRequest, pb.StartResponse),
            "Stop": (self._stop, Cardinality.UNARY_UNARY, pb.StopRequest, pb.StopResponse),
            "Event": (self._event, Cardinality.UNARY_STREAM, pb.EventRequest, pb.EventResponse),
            "ContactList": (
                self._contact_list,
                Cardinality.UNARY_UNARY,
                pb.ContactListRequest,
                pb.ContactListResponse,
            ),
            "ContactPayload": (
                self._contact_payload,
                Cardinality.UNARY_UNARY,
                pb.ContactPayloadRequest,
                pb.ContactPayloadResponse,
            ),
            "MessagePayload": (
                self._message_payload,
                Cardinality.UNARY_UNARY,
                pb.MessagePayloadRequest,
                pb.MessagePayloadResponse,
            ),
            "MessageSendText": (
                self._message_send_text,
                Cardinality.UNARY_UNARY,
                pb.MessageSendTextRequest,
                pb.MessageSendTextResponse,
            ),
            "MessageSendFile": (
                self._message_send_file,
                Cardinality.UNARY_UNARY,
                pb.MessageSendFileRequest,
                pb.MessageSendFileResponse,
            ),
        }
        mapping = {}
        for name in ALL_ROUTES:
            func, cardinality, request, reply = implemented.get(
                name, (self._unimplemented(name), Cardinality.UNARY_UNARY, pb.StartRequest, None)
            )
            mapping[f"/wechaty.Puppet/{name}"] = Handler(
                self._recorded(name, func), cardinality, request, reply
            )
        return mapping

    def _recorded(self, name: str, func: _StreamHandler) -> _StreamHandler:
        async def handler(stream: Stream[Any, Any]) -> None:
            self.calls.append(name)
            if self.failing is not None:
                raise GRPCError(self.failing, f"fake puppet: {name} failed on purpose")
            await func(stream)

        return handler

    def _unimplemented(self, name: str) -> _StreamHandler:
        async def handler(stream: Stream[Any, Any]) -> None:
            log.error("fake puppet: the client called %s, which the fake does not implement", name)
            self.unimplemented.append(name)
            raise GRPCError(Status.UNIMPLEMENTED, f"fake puppet does not implement {name}")

        return handler

    async def _start(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(pb.StartResponse())

    async def _stop(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        self._end_event_stream()
        await stream.send_message(pb.StopResponse())

    async def _event(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        if self._events is not None:
            raise GRPCError(Status.ALREADY_EXISTS, "event() can not call twice")
        events: asyncio.Queue[pb.EventResponse | None] = asyncio.Queue()
        self._events = events
        self._event_stream_open.set()
        if self.logged_in:
            self._emit(pb.EventType.EVENT_TYPE_LOGIN, {"contactId": self.me.id})
        elif self.pending_scan is not None:
            self._emit(pb.EventType.EVENT_TYPE_SCAN, self.pending_scan)
        try:
            while (event := await events.get()) is not None:
                await stream.send_message(event)
        finally:
            if self._events is events:
                self._events = None
                self._event_stream_open.clear()

    async def _contact_list(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(pb.ContactListResponse(ids=list(self.contacts)))

    async def _contact_payload(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        contact = self.contacts.get(request.id)
        if contact is None:
            raise GRPCError(Status.INTERNAL, f"contact {request.id!r} not found")
        await stream.send_message(
            pb.ContactPayloadResponse(
                id=contact.id,
                name=contact.name,
                alias=contact.alias,
                weixin=contact.weixin,
                friend=contact.friend,
                type=pb.ContactType.CONTACT_TYPE_PERSONAL,
            )
        )

    async def _message_payload(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        payload = self.messages.get(request.id)
        if payload is None:
            raise GRPCError(Status.INTERNAL, f"message {request.id!r} not found")
        await stream.send_message(payload)

    async def _message_send_text(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        self._check_conversation(request.conversation_id)
        message_id = self._message(self.me.id, request.conversation_id, TEXT, text=request.text)
        self.sent.append(Sent(message_id, request.conversation_id, text=request.text))
        await stream.send_message(pb.MessageSendTextResponse(id=message_id))

    async def _message_send_file(self, stream: Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        self._check_conversation(request.conversation_id)
        box = json.loads(request.filebox)
        if "base64" not in box:
            raise GRPCError(Status.INTERNAL, f"fake puppet only takes base64 file boxes: {box}")
        data = base64.b64decode(box["base64"], validate=True)
        message_id = self._message(
            self.me.id, request.conversation_id, IMAGE, filename=box.get("name", "")
        )
        sent = Sent(message_id, request.conversation_id, filename=box.get("name"), data=data)
        self.sent.append(sent)
        await stream.send_message(pb.MessageSendFileResponse(id=message_id))

    # -- internals ---------------------------------------------------------------------------

    def _check_conversation(self, conversation_id: str) -> None:
        if not self.logged_in:
            raise GRPCError(Status.INTERNAL, "not logged in")
        if conversation_id not in self.contacts:
            raise GRPCError(Status.INTERNAL, f"conversation {conversation_id!r} not found")

    def _message(
        self, from_id: str, to_id: str, kind: int, *, text: str = "", filename: str = ""
    ) -> str:
        message_id = f"msg-{self._id_prefix}-{next(self._ids)}"
        self.messages[message_id] = pb.MessagePayloadResponse(
            id=message_id,
            filename=filename,
            text=text,
            timestamp=int(time.time()),
            type=kind,  # type: ignore[arg-type]  # TypeScript numbering, as the real service
            from_id=from_id,
            to_id=to_id,
        )
        return message_id

    def _emit(self, kind: pb.EventType, payload: dict[str, Any]) -> None:
        if self._events is None:
            log.info("fake puppet: no event stream open, %s not delivered", kind.name)
            return
        self._events.put_nowait(pb.EventResponse(type=kind, payload=json.dumps(payload)))

    def _end_event_stream(self) -> None:
        if self._events is not None:
            self._events.put_nowait(None)
            self._events = None
            self._event_stream_open.clear()
