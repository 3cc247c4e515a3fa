"""The web config file as served: TLS contexts from it, re-read when it or its files change."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Iterable
from pathlib import Path

import yaml

from wechaty_exporter.settings import ConfigError
from wechaty_exporter.webconfig.fileformat import TlsSettings, WebConfig, parse_web_config

log = logging.getLogger("wechaty_exporter.webconfig")

# --- TLS contexts ---------------------------------------------------------------------------


@functools.cache
def _default_ciphers() -> str:
    fresh = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    return ":".join(c["name"] for c in fresh.get_ciphers() if c["protocol"] != "TLSv1.3")


def _tune(context: ssl.SSLContext, tls: TlsSettings) -> None:
    """What OpenSSL copies into each connection when it starts (and so can be changed in place
    on a live context): versions, client verification, TLS 1.2 suites and their order."""
    context.minimum_version = tls.min_version
    context.maximum_version = tls.max_version
    context.verify_mode = tls.verify_mode
    context.set_ciphers(":".join(tls.ciphers) if tls.ciphers else _default_ciphers())
    if tls.prefer_server_ciphers:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE


def build_context(tls: TlsSettings, errors: list[str]) -> ssl.SSLContext | None:
    """A server context for `tls`, its files read now; None with the problems in `errors`."""
    where = "tls_server_config"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    before = len(errors)
    try:
        _tune(context, tls)
    except (ssl.SSLError, ValueError) as exc:
        errors.append(f"{where}.cipher_suites: OpenSSL refuses them: {exc}")
    named = {
        "cert_file": tls.cert_file,
        "key_file": tls.key_file,
        "client_ca_file": tls.client_ca_file,
    }
    absent = [f"{where}.{k}: {p}: no such file" for k, p in named.items() if p and not p.is_file()]
    errors += absent
    try:
        if not absent:
            context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        errors.append(
            f"{where}.cert_file/key_file: cannot load {tls.cert_file} with {tls.key_file} "
            f"(a PEM certificate and its private key): {exc}"
        )
    if absent:
        return None
    try:
        if tls.client_ca_file is not None:
            context.load_verify_locations(cafile=tls.client_ca_file)
        elif tls.client_ca is not None:
            context.load_verify_locations(cadata=tls.client_ca)
    except (OSError, ssl.SSLError, ValueError) as exc:
        key = "client_ca_file" if tls.client_ca_file is not None else "client_ca"
        errors.append(f"{where}.{key}: not a PEM CA certificate: {exc}")
    return context if len(errors) == before else None


def read_web_config(path: Path) -> tuple[WebConfig, ssl.SSLContext | None]:
    """The file, validated, and the TLS context it asks for. Raises ConfigError listing every
    problem, under the file's name."""
    errors: list[str] = []
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], str(path)) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(path)) from exc
    config = parse_web_config(raw, path.parent, errors)
    context = None
    if config is not None and config.tls is not None:
        context = build_context(config.tls, errors)
    if errors or config is None:
        raise ConfigError(errors, str(path))
    return config, context


# --- the live file --------------------------------------------------------------------------


def _signature(paths: Iterable[Path]) -> tuple[object, ...]:
    stamps: list[object] = []
    for path in paths:
        try:
            st = path.stat()
            stamps.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev))
        except OSError as exc:
            stamps.append((str(path), exc.errno))
    return tuple(stamps)


class LiveWebConfig:
    """The file as last read well, re-read when it or a file it names changes.

    `ssl_context` (None for plain HTTP) is what the server listens with, for good: each new
    connection is switched to the newest good certificate, key and client CA from its
    ClientHello callback, and its per-connection settings (versions, client verification,
    suites) are changed in place, so the connection after a change has noticed them all."""

    def __init__(self, path: Path, config: WebConfig, context: ssl.SSLContext | None) -> None:
        self.path = path
        self.config = config
        self.ssl_context = context
        self._current = context
        self._files = self._watched(config)
        self._seen = _signature(self._files)
        self.reloads = 0
        self.failures = 0
        if context is not None:
            context.sni_callback = self._hello

    @classmethod
    def open(cls, path: str | Path) -> LiveWebConfig:
        """Read the file now. Raises ConfigError listing every problem."""
        path = Path(path).expanduser().absolute()
        return cls(path, *read_web_config(path))

    def _watched(self, *configs: WebConfig | None) -> tuple[Path, ...]:
        files = [self.path]
        for config in configs:
            if config is not None and config.tls is not None:
                files += config.tls.files
        return tuple(dict.fromkeys(files))

    def current(self) -> WebConfig:
        """The configuration to use now, after a re-read when something changed."""
        self.refresh()
        return self.config

    def refresh(self) -> bool:
        """Re-read when the file or one it names changed since the last look; True when a new
        configuration took over. A broken one is logged and the last good one stays."""
        before = _signature(self._files)  # taken before reading: a write meanwhile is seen next
        if before == self._seen:
            return False
        attempt: WebConfig | None = None
        try:
            config, context = read_web_config(self.path)
            attempt = config
            self._take(config, context)
        except ConfigError as exc:
            self.failures += 1
            log.error("%s; still serving with its last good version", exc)
            return False
        finally:
            self._files = self._watched(self.config, attempt)
            earlier = {stamp[0]: stamp for stamp in before if isinstance(stamp, tuple)}
            self._seen = tuple(
                earlier.get(str(path), stamp)
                for path, stamp in zip(self._files, _signature(self._files), strict=True)
            )
        self.reloads += 1
        log.info("%s re-read: %s", self.path, describe(self.config))
        return True

    def _take(self, config: WebConfig, context: ssl.SSLContext | None) -> None:
        if (config.tls is None) != (self.ssl_context is None):
            serving = "TLS" if self.ssl_context is not None else "plain HTTP"
            change = "removed" if config.tls is None else "added"
            raise ConfigError(
                [f"tls_server_config: {change} while serving {serving}; restart to change that"],
                str(self.path),
            )
        if self.ssl_context is not None and config.tls is not None:
            _tune(self.ssl_context, config.tls)
        self.config = config
        self._current = context

    def _hello(
        self, connection: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object
    ) -> None:
        """OpenSSL's ClientHello (server name) callback, called with or without SNI."""
        try:
            self.refresh()
            if self._current is not None and self._current is not connection.context:
                connection.context = self._current
        except Exception:  # raised here, it would only fail the handshake
            log.exception("web config: choosing the certificate failed")


def describe(config: WebConfig) -> str:
    """One line for the log: what the file turns on, no secrets."""
    parts = []
    if config.tls is not None:
        clients = {ssl.CERT_NONE: "no client certificates", ssl.CERT_OPTIONAL:
                   "client certificates verified if given", ssl.CERT_REQUIRED:
                   "client certificates required"}[config.tls.verify_mode]  # fmt: skip
        parts.append(f"TLS ({config.tls.cert_file.name}, {clients})")
    else:
        parts.append("plain HTTP")
    count = len(config.users)
    parts.append(f"basic auth for {count} user(s)" if count else "no basic auth")
    if config.headers:
        parts.append(f"{len(config.headers)} extra header(s)")
    return ", ".join(parts)


def open_web_config(path: str | Path | None) -> LiveWebConfig | None:
    """`--web.config.file` or None. Raises ConfigError listing every problem of the file."""
    if path is None or str(path) == "":
        return None
    live = LiveWebConfig.open(path)
    log.info("web config %s: %s", live.path, describe(live.config))
    return live
