"""Who may see a login QR: a local client under a local name, or the holder of the bearer token.

A loopback client sees QRs only when nothing says it speaks for someone else and the name it
asked for is the exporter's own:

- any proxy or forwarding header (`FORWARDING`: X-Forwarded-*, Forwarded, Via, X-Real-IP,
  CF-Connecting-IP, True-Client-IP, ...) means a remote client behind a local proxy;
- the `Host` must be a loopback address, `localhost` (or a name under `.localhost`), the listen
  address or a name given by `--web.hostname` / `exporter.hostnames`. Another name is a page
  that rebound its DNS name to 127.0.0.1 (DNS rebinding): it gets no QR (403 on the QR
  endpoints, the status page without its QR), and nothing else changes for it.

A wrong bearer token costs the client's address (an IPv6 client's /64) one try of a small bucket
(`TokenThrottle`); an empty bucket answers 429 with Retry-After whatever the token, so guessing
is slow and learns nothing, while the holder of the right token elsewhere is never held up.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

# Headers a proxy, load balancer or CDN adds to say whom it forwards for.
FORWARDING = frozenset({
    "forwarded", "via", "x-real-ip", "cf-connecting-ip", "true-client-ip", "x-client-ip",
    "client-ip", "x-cluster-client-ip", "fastly-client-ip", "x-originating-ip", "x-remote-ip",
    "x-remote-addr", "x-proxyuser-ip", "x-envoy-external-address", "cdn-loop",
})  # fmt: skip
FORWARDING_PREFIXES = ("x-forwarded-", "x-original-forwarded", "x-original-host")

TOKEN_BURST = 5  # wrong tokens an address may send at once
TOKEN_REFILL_SECONDS = 12.0  # then one more every this long (5 a minute)
MAX_TRACKED_CLIENTS = 4096


def forwarding_header(names: Iterable[str]) -> str | None:
    """The first header among `names` that says the request was forwarded, else None."""
    for name in names:
        low = name.lower()
        if low in FORWARDING or low.startswith(FORWARDING_PREFIXES):
            return name
    return None


def host_name(value: str) -> str | None:
    """A Host header's host, lower case, without port or brackets; None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
    else:
        host, _, port = value.partition(":")
        if port and not port.isdigit():
            return None
    host = host.rstrip(".")
    return host or None


def local_name(hosts: list[str], names: frozenset[str]) -> bool:
    """Whether the Host headers `hosts` name this exporter: none at all (not a browser), or one
    that is a loopback address, localhost, or in `names`."""
    if not hosts:
        return True
    if len(hosts) > 1:
        return False
    host = host_name(hosts[0])
    if host is None:
        return False
    if host in names or host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_key(remote: str | None) -> str:
    """The unit a throttle counts: an IPv4 address, an IPv6 /64, else the text as it is."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote or "?"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped or address) if address.version == 6 else str(address)


@dataclass(slots=True)
class _Bucket:
    tries: float
    at: float


class TokenThrottle:
    """Wrong bearer tokens per client: `burst` at once, then one every `refill` seconds."""

    def __init__(
        self,
        burst: int = TOKEN_BURST,
        refill: float = TOKEN_REFILL_SECONDS,
        *,
        max_clients: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst, self.refill, self.max_clients, self.clock = burst, refill, max_clients, clock
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, key: str) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            now = self.clock()
            bucket.tries = min(self.burst, bucket.tries + (now - bucket.at) / self.refill)
            bucket.at = now
        return bucket

    def retry_after(self, remote: str | None) -> int | None:
        """Seconds until `remote` may try a token again; None: it may now."""
        bucket = self._bucket(client_key(remote))
        if bucket is None or bucket.tries >= 1:
            return None
        return max(1, math.ceil((1 - bucket.tries) * self.refill))

    def failed(self, remote: str | None) -> None:
        """`remote` sent a wrong token: one try less."""
        key = client_key(remote)
        bucket = self._bucket(key)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._forget()
            bucket = self._buckets[key] = _Bucket(float(self.burst), self.clock())
        bucket.tries -= 1
        self._buckets[key] = self._buckets.pop(key)  # most recent last

    def _forget(self) -> None:
        """Room for one more client: the refilled buckets go, else the least recent."""
        now = self.clock()
        full = [
            k
            for k, b in self._buckets.items()
            if b.tries + (now - b.at) / self.refill >= self.burst
        ]
        for key in full or [next(iter(self._buckets))]:
            del self._buckets[key]


@dataclass(slots=True)
class AccessCounts:
    """QR requests refused, by why; served as metrics (`AccessCollector`)."""

    wrong_token: int = 0
    throttled: int = 0
    forwarded: int = 0
    foreign_host: int = 0

    def as_dict(self) -> Mapping[str, int]:
        return {
            "wrong_token": self.wrong_token,
            "throttled": self.throttled,
            "forwarded": self.forwarded,
            "foreign_host": self.foreign_host,
        }


class AccessCollector(Collector):
    """`wechaty_exporter_qr_refused_total{reason}`: QR requests refused (or status pages shown
    without their QR), by reason: wrong_token, throttled, forwarded, foreign_host."""

    def __init__(self, counts: AccessCounts) -> None:
        self._counts = counts

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "wechaty_exporter_qr_refused",
            "Requests refused a login QR: wrong bearer token, throttled after wrong tokens "
            "(429), forwarded by a proxy, or naming a foreign Host (DNS rebinding).",
            labels=["reason"],
        )
        for reason, value in self._counts.as_dict().items():
            family.add_metric([reason], value)
        yield family
