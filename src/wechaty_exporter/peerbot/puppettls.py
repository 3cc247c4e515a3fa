"""How the peer bot reaches its puppet service: TLS as the TypeScript client does, or plaintext.

wechaty-puppet-service 1.x servers speak TLS by default; python-wechaty 0.10.7 (puppet-service
0.8.10) speaks plaintext only. `PuppetTransport` is what the TypeScript client (puppet-service
1.x, `GrpcManager`) would use, worked out from the same settings:

- CA: ``WECHATY_PUPPET_SERVICE_TLS_CA_CERT`` (PEM text, ``\\n`` escapes allowed, or here also a
  PEM file's path), else the Wechaty community CA the TypeScript client ships (public, bundled
  here as ``certs/wechaty-ca.pem``; its servers' default certificate is for ``insecure``).
- Server name (SNI, and the name the certificate must carry): ``..._TLS_SERVER_NAME``, else
  the token's prefix before its last ``_``, lower-cased (``insecure_0a1b...`` → ``insecure``).
  A token without one needs the variable, as in the TypeScript client (the bot fails to connect,
  saying so).
- Plaintext only when ``WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_CLIENT=true`` (or ``bot.puppet.tls:
  false`` in the config).
- The token goes in an ``authorization: Wechaty <token>`` header on every call (what a 1.x server
  checks) and, as python-wechaty always did, as the HTTP/2 ``:authority`` (what a 1.x server falls
  back to, and what older servers check).

`connection_error` turns a failed first call into an error that says which CA and server name
were used and which variable to set.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "CA_CERT_ENV",
    "NO_TLS_ENV",
    "SERVER_NAME_ENV",
    "PuppetConnectError",
    "PuppetTLSConfigError",
    "PuppetTransport",
    "TLSOptions",
    "connection_error",
    "server_name_from_token",
    "wechaty_ca",
]

CA_CERT_ENV = "WECHATY_PUPPET_SERVICE_TLS_CA_CERT"
SERVER_NAME_ENV = "WECHATY_PUPPET_SERVICE_TLS_SERVER_NAME"
NO_TLS_ENV = "WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_CLIENT"
WECHATY_CA = "the Wechaty CA (bundled, as in the TypeScript client)"


class PuppetTLSConfigError(ValueError):
    """The TLS settings cannot work (no server name, unreadable CA)."""


class PuppetConnectError(ConnectionError):
    """The first call to the puppet service failed in a way the settings can explain."""


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """`bot.puppet.tls` from the config; None defers to the environment variable."""

    enabled: bool | None = None
    ca_file: Path | None = None
    server_name: str | None = None


@dataclass(frozen=True)
class PuppetTransport:
    """TLS with a CA and a server name, or plaintext (`tls` False)."""

    tls: bool
    ca_pem: str = ""
    ca_source: str = ""
    server_name: str = ""
    server_name_source: str = ""
    problem: str = ""  # why it cannot connect (no server name): raised at connect, not here

    @classmethod
    def plaintext(cls) -> PuppetTransport:
        return cls(tls=False)

    @classmethod
    def resolve(
        cls,
        token: str,
        environ: Mapping[str, str] = os.environ,
        options: TLSOptions = TLSOptions(),
    ) -> PuppetTransport:
        """From `options` (the config), else the environment, else the TypeScript defaults.
        Raises PuppetTLSConfigError."""
        enabled = options.enabled
        if enabled is None:
            enabled = environ.get(NO_TLS_ENV, "").strip().lower() != "true"
        if not enabled:
            return cls.plaintext()
        if options.ca_file is not None:
            ca_pem, ca_source = _read_ca(options.ca_file, "bot.puppet.tls.ca_file")
        elif environ.get(CA_CERT_ENV, "").strip():
            ca_pem, ca_source = _ca_from_env(environ[CA_CERT_ENV])
        else:
            ca_pem, ca_source = wechaty_ca(), WECHATY_CA
        if options.server_name:
            name, name_source = options.server_name, "bot.puppet.tls.server_name"
        elif environ.get(SERVER_NAME_ENV, "").strip():
            name, name_source = environ[SERVER_NAME_ENV].strip(), SERVER_NAME_ENV
        else:
            name, name_source = server_name_from_token(token), "derived from the token"
        problem = ""
        if not name:  # reported at connect time, after the other settings' problems
            problem = (
                "the puppet service token has no server name prefix (as in insecure_<uuid>), "
                f"which TLS needs: add one to the token, set {SERVER_NAME_ENV}, or for a "
                f"plaintext puppet service set {NO_TLS_ENV}=true"
            )
        transport = cls(True, ca_pem, ca_source, name, name_source, problem)
        transport.ssl_context()  # an unusable CA fails here, at start
        return transport

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the server's certificate against the CA and the server name; offers h2."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies; trusts no system CA
        try:
            context.load_verify_locations(cadata=self.ca_pem)
        except (ssl.SSLError, ValueError) as exc:
            raise PuppetTLSConfigError(f"the CA from {self.ca_source} is unusable: {exc}") from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["h2"])
        return context

    def describe(self) -> str:
        if not self.tls:
            return f"plaintext gRPC ({NO_TLS_ENV}=true or bot.puppet.tls: false)"
        return (
            f"TLS, server name {self.server_name!r} ({self.server_name_source}), "
            f"CA {self.ca_source}"
        )


def server_name_from_token(token: str) -> str:
    """The TypeScript client's SNI: the token before its last ``_``, lower-cased ("" if none)."""
    underscore = token.rfind("_")
    return token[:underscore].lower() if underscore > 0 else ""


def wechaty_ca() -> str:
    """The Wechaty community root CA (PEM), which the TypeScript client trusts by default."""
    return (
        resources.files("wechaty_exporter.peerbot")
        .joinpath("certs/wechaty-ca.pem")
        .read_text(encoding="ascii")
    )


def _ca_from_env(value: str) -> tuple[str, str]:
    text = value.replace("\\n", "\n").strip()
    if "-----BEGIN" in text:
        return text + "\n", f"{CA_CERT_ENV} (PEM)"
    return _read_ca(Path(text), CA_CERT_ENV)


def _read_ca(path: Path, where: str) -> tuple[str, str]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise PuppetTLSConfigError(f"{where}: cannot read the CA file {path}: {exc}") from exc
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise PuppetTLSConfigError(f"{where}: {path} holds no PEM certificate")
    return text, f"{where} (file {path})"


def connection_error(
    transport: PuppetTransport, endpoint: str, exc: BaseException
) -> PuppetConnectError | None:
    """A clear error for a first call that failed for a reason the transport explains, else None."""
    where = f"puppet service at {endpoint}"
    if transport.tls and isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == 62 or "hostname mismatch" in str(exc).lower():
            fix = f"set {SERVER_NAME_ENV} to the name in its certificate"
        else:
            fix = f"set {CA_CERT_ENV} to the CA that signed its certificate (PEM or a file)"
        return PuppetConnectError(
            f"TLS handshake with {where} failed ({exc.verify_message or exc.reason}) with server "
            f"name {transport.server_name!r} ({transport.server_name_source}) and CA "
            f"{transport.ca_source}: {fix}"
        )
    if transport.tls and isinstance(exc, ssl.SSLError):
        return PuppetConnectError(
            f"TLS handshake with {where} failed ({exc.reason or exc}) with server name "
            f"{transport.server_name!r} and CA {transport.ca_source}; if the service speaks "
            f"plaintext gRPC (puppet-service 0.x, or started with "
            f"WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_SERVER=true), set {NO_TLS_ENV}=true"
        )
    if not transport.tls and _dropped(exc):
        return PuppetConnectError(
            f"{where} dropped the plaintext connection at once ({exc!r}): it probably speaks "
            f"TLS, the default of wechaty-puppet-service 1.x; unset {NO_TLS_ENV} (and "
            "bot.puppet.tls: false) to connect over TLS"
        )
    return None


def _dropped(exc: BaseException) -> bool:
    from grpclib.exceptions import ProtocolError, StreamTerminatedError

    return isinstance(exc, StreamTerminatedError | ProtocolError | ConnectionResetError)
