"""Serving an aiohttp app so that slow or idle clients cannot starve it: every server uses this.

aiohttp alone gives a connection that never finishes its request headers an hour (its keep-alive
timer, 3630 s) and takes connections without limit, so a thousand half-open requests made
/metrics and /healthz time out. `GuardedRunner` serves an app with two bounds (`ServerLimits`):

- a header deadline: a connection must send a whole request head within `read_header_timeout`
  of connecting, and a later request's head within the same time of its first byte; else it is
  closed. Idle keep-alive connections are closed after `IDLE_TIMEOUT`.
- a connection cap: past `max_connections`, the oldest connection that has not yet sent a whole
  request is shed, else the oldest one between requests (idle keep-alive), else the new one; a
  request being answered is never cut. New clients (a scrape of /metrics) keep being answered.

`listen(ssl_context=...)` takes a TLS context for servers that speak HTTPS.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wechaty_exporter.settings import ConfigError, parse_duration

log = logging.getLogger(__name__)

DEFAULT_READ_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 512
IDLE_TIMEOUT = 75.0  # seconds an idle keep-alive connection is kept (above common scrape intervals)
MAX_READ_HEADER_TIMEOUT = 300.0
MIN_CONNECTIONS, MAX_CONNECTIONS = 8, 65536
FD_HEADROOM = 64  # descriptors kept for log files, state files and outgoing requests

# The two RequestHandler attributes the header deadline reads; checked once here so that an aiohttp
# that renames them fails at import, not silently.
for _name in ("_request_count", "_waiter"):
    if _name not in RequestHandler.__slots__:  # pragma: no cover - aiohttp changed
        raise ImportError(f"aiohttp's RequestHandler has no {_name}; webserver.py needs updating")


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How long a client may take to send its request head, and how many connections are kept."""

    read_header_timeout: float = DEFAULT_READ_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def parse_limits(read_header_timeout: str | None, max_connections: str | None) -> ServerLimits:
    """`--web.read-header-timeout` and `--web.max-connections` (None: the default) → limits.
    Raises ConfigError naming the flag."""
    errors: list[str] = []
    timeout = DEFAULT_READ_HEADER_TIMEOUT
    if read_header_timeout is not None:
        where = "--web.read-header-timeout"
        parsed = parse_duration(read_header_timeout, where, errors)
        if parsed is not None and parsed > MAX_READ_HEADER_TIMEOUT:
            errors.append(f"{where}: at most {MAX_READ_HEADER_TIMEOUT:g}s, got {parsed:g}s")
        elif parsed is not None:
            timeout = parsed
    cap = DEFAULT_MAX_CONNECTIONS
    if max_connections is not None:
        text = max_connections.strip()
        if text.isdigit() and MIN_CONNECTIONS <= int(text) <= MAX_CONNECTIONS:
            cap = int(text)
        else:
            errors.append(
                f"--web.max-connections: expected an integer from {MIN_CONNECTIONS} to "
                f"{MAX_CONNECTIONS}, got {max_connections!r}"
            )
    if errors:
        raise ConfigError(errors, "flags")
    return ServerLimits(read_header_timeout=timeout, max_connections=cap)


_defaults = ServerLimits()


def set_default_limits(limits: ServerLimits) -> None:
    """The limits of every server started without its own (the CLI sets the flags' here once,
    so that `bot` and the plugin's receiver get them without threading them through)."""
    global _defaults
    _defaults = limits


def default_limits() -> ServerLimits:
    return _defaults


@dataclass(slots=True)
class GuardStats:
    """What the guard did, for logs and metrics."""

    open: int = 0
    shed: int = 0  # connections closed to make room
    refused: int = 0  # new connections closed because every other was busy
    header_timeouts: int = 0  # connections closed for not finishing a request head in time


class GuardCollector(Collector):
    """`<prefix>_http_connections_open` and `<prefix>_http_connections_closed_total{reason}`
    (shed, refused, header_timeout) of one server, for its /metrics."""

    def __init__(self, guard: ConnectionGuard, prefix: str) -> None:
        self._guard, self._prefix = guard, prefix

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        stats = self._guard.stats
        open_ = GaugeMetricFamily(
            f"{self._prefix}_http_connections_open", "HTTP connections open now."
        )
        open_.add_metric([], stats.open)
        closed = CounterMetricFamily(
            f"{self._prefix}_http_connections_closed",
            "HTTP connections closed by the server's guard: shed at --web.max-connections, "
            "refused there (every other busy), or not sending a request head in time.",
            labels=["reason"],
        )
        for reason, value in (
            ("shed", stats.shed),
            ("refused", stats.refused),
            ("header_timeout", stats.header_timeouts),
        ):
            closed.add_metric([reason], value)
        yield from (open_, closed)


class ConnectionGuard:
    """The open connections of one server, oldest first; sheds at the cap."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.stats = GuardStats()
        self._open: dict[_Connection, None] = {}
        self._warned_at = float("-inf")

    def admit(self, conn: _Connection) -> None:
        self._open[conn] = None
        if len(self._open) > self.limits.max_connections:
            victim = self._victim(conn)
            if victim is conn:
                self.stats.refused += 1
            else:
                self.stats.shed += 1
            self._warn()
            self.drop(victim)
            victim.force_close()
        self.stats.open = len(self._open)

    def drop(self, conn: _Connection) -> None:
        self._open.pop(conn, None)
        self.stats.open = len(self._open)

    def _victim(self, new: _Connection) -> _Connection:
        idle = None
        for conn in self._open:
            if conn is new:
                continue
            if conn.fresh:
                return conn  # the oldest that never sent a whole request head
            if idle is None and conn.waiting:
                idle = conn
        return idle or new

    def _warn(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning(
                "%d connections open (--web.max-connections): shedding the oldest that sent no "
                "whole request or are idle (so far: %d shed, %d refused)",
                self.limits.max_connections, self.stats.shed, self.stats.refused,
            )  # fmt: skip


class _Connection(RequestHandler):
    """aiohttp's connection handler with a deadline on request heads, registered with a guard."""

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard
        self._head_timer: asyncio.TimerHandle | None = None

    @property
    def fresh(self) -> bool:
        """No whole request head received yet (silent or half-open)."""
        return self._request_count == 0

    @property
    def waiting(self) -> bool:
        """Between requests: kept alive and idle, or part of the next head received."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()
        self.guard.admit(self)

    def data_received(self, data: bytes) -> None:
        heads, waiting = self._request_count, self.waiting
        super().data_received(data)
        if self._request_count != heads:
            self._disarm()  # a whole head arrived: the handler reads the body under its own limits
        elif data and waiting and self._head_timer is None:
            self._arm()  # the first bytes of a later request's head

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self.guard.drop(self)
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        timeout = self.guard.limits.read_header_timeout
        self._head_timer = self._loop.call_later(timeout, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        self.guard.stats.header_timeouts += 1
        self.guard.drop(self)
        self.force_close()


class _GuardedSite(web.BaseSite):
    """A listening socket (given, or bound to host and port) whose connections the guard keeps."""

    def __init__(
        self,
        runner: GuardedRunner,
        factory: Callable[[], _Connection],
        *,
        sock: socket.socket | None,
        host: str | None,
        port: int | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._factory = factory
        # A TLS handshake left unfinished is held no longer than a request head.
        self._tls: dict[str, Any] = (
            {"ssl": ssl_context, "ssl_handshake_timeout": runner.limits.read_header_timeout}
            if ssl_context is not None
            else {}
        )
        self._sock, self._host, self._port = sock, host, port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host or self._sock}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            self._server = await loop.create_server(
                self._factory, sock=self._sock, backlog=self._backlog, **self._tls
            )
        else:
            self._server = await loop.create_server(
                self._factory, self._host, self._port,
                backlog=self._backlog, reuse_address=True, **self._tls,
            )  # fmt: skip


class GuardedRunner(web.AppRunner):
    """An AppRunner whose sites bound header time and connections (`ServerLimits`; default: those
    `set_default_limits` set). `setup()`, then `listen(...)`, then `cleanup()`."""

    _HANDLER_ARGS: ClassVar[dict[str, Any]] = {
        "access_log": None,
        "keepalive_timeout": IDLE_TIMEOUT,
    }

    def __init__(
        self,
        app: web.Application,
        limits: ServerLimits | None = None,
        *,
        shutdown_timeout: float = 60.0,
    ) -> None:
        super().__init__(app, shutdown_timeout=shutdown_timeout, **self._HANDLER_ARGS)
        self.limits = limits or default_limits()
        self.guard = ConnectionGuard(self.limits)
        _raise_fd_limit(self.limits.max_connections + FD_HEADROOM)

    def _connection(self) -> _Connection:
        server = self.server
        assert server is not None, "setup() first"
        loop = asyncio.get_running_loop()
        return _Connection(server, self.guard, loop=loop, **self._HANDLER_ARGS)

    async def listen(
        self,
        *,
        sock: socket.socket | None = None,
        host: str | None = None,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Serve on `sock`, or on `host` and `port` (every address `host` resolves to)."""
        site = _GuardedSite(
            self, self._connection, sock=sock, host=host, port=port, ssl_context=ssl_context
        )
        await site.start()


def _raise_fd_limit(needed: int) -> None:
    """Raise the soft limit on open files to `needed` when the hard limit allows: a cap above the
    limit would stall accepting (EMFILE) before the guard ever sheds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        target = soft
    if target < needed:
        log.warning(
            "open files limited to %d: --web.max-connections %d needs about %d (raise LimitNOFILE)",
            target, needed - FD_HEADROOM, needed,
        )  # fmt: skip
