"""Raw-socket HTTP for the attack tests: servers started as real processes, requests written by
hand (any Host, any header, from any loopback address), and connections left half-open."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import free_port

SRC = str(Path(__file__).resolve().parents[1] / "src")


def request(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    source: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """GET `path` on 127.0.0.1:`port` with exactly `headers` (Host included: default
    127.0.0.1:port), from `source` when given; (status, headers lower-cased, body)."""
    fields = {"Host": f"127.0.0.1:{port}", "Connection": "close", **(headers or {})}
    head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    with socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    ) as sock:
        sock.sendall(head.encode() + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    raw_head, _, body = data.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    parsed = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return status, parsed, body


def half_open(port: int, count: int, *, timeout: float = 3.0) -> list[socket.socket]:
    """`count` connections each sending a request head it never finishes (slowloris); those
    the server would not take within `timeout` are left out."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(timeout)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        except OSError:
            sock.close()
            continue
        socks.append(sock)
    return socks


def closed_by_peer(sock: socket.socket, within: float) -> float | None:
    """Seconds until the server closed `sock` (EOF or reset), None if still open after `within`."""
    start = time.monotonic()
    sock.settimeout(within)
    try:
        data = sock.recv(1)
    except TimeoutError:
        return None
    except OSError:
        return time.monotonic() - start
    return time.monotonic() - start if data == b"" else None


def raise_nofile(needed: int) -> None:
    """This test process needs `needed` descriptors (its attack sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


class Server:
    """`python -m wechaty_exporter <args>` on a free port, with the open-file limit a systemd
    service gets by default (1024), output kept in a file."""

    def __init__(self, tmp_path: Path, *args: str, nofile: int = 1024) -> None:
        self.port = free_port()
        self.args = [
            sys.executable, "-m", "wechaty_exporter", *args,
            "--web.listen-address", f"127.0.0.1:{self.port}",
        ]  # fmt: skip
        self.output = tmp_path / f"server-{self.port}.out"
        self.nofile = nofile
        self.proc: subprocess.Popen[bytes] | None = None

    def _limit(self) -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, hard))

    def start_process(self) -> None:
        env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=out, env=env, preexec_fn=self._limit
            )

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def start(self) -> Server:
        """Start and wait until /-/ready answers 200."""
        self.start_process()
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"exited: {self.output.read_text()}")
            try:
                if request(self.port, "/-/ready", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready in 30s: {self.output.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
