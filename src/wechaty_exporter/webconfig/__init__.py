"""`--web.config.file`: TLS and basic auth for every HTTP server, in the exporter-toolkit format.

The YAML file Prometheus' own exporters take (exporter-toolkit's docs/web-configuration.md):
`tls_server_config`, `http_server_config.headers`, `basic_auth_users` (user: bcrypt hash). It is
checked at start with every problem listed (the file's name, then each key path), and re-read
whenever it or a file it names changes: each new connection gets the certificate, key and client
CA of the last good file, each request its users and headers. A file that breaks while running
keeps the last good configuration and logs one error per change, naming every problem.

What Python's ssl module cannot honour is refused with a reason, never silently ignored:
client_auth_type RequestClientCert and RequireAnyClientCert (a certificate asked for but not
verified), inline `cert` and `key`, `curve_preferences`, TLS 1.3 names in `cipher_suites` (their
suites are fixed), `http2: true` (HTTP/1.1 only), `rate_limit`. Serving TLS or plain HTTP is decided
at start: adding or removing `tls_server_config` later is an error until a restart.

Basic auth guards every path but GET /healthz (liveness tells nothing). A path whose own handler
checks a bearer token (the exporter's QR endpoints with a token file, the receiver's POST /alerts
with `receiver.auth` bearer) is passed on with its Bearer header, since one Authorization header
cannot carry both. bcrypt runs in worker threads (at most four at once); successes are cached under
a keyed digest of user, hash and password, so a scrape costs a dictionary look-up after the first;
an unknown user costs a bcrypt check too, so timing does not tell which users exist.
"""

from wechaty_exporter.webconfig.auth import BasicAuth, guard, parse_basic
from wechaty_exporter.webconfig.fileformat import FLAG, TlsSettings, WebConfig, parse_web_config
from wechaty_exporter.webconfig.live import (
    LiveWebConfig,
    describe,
    open_web_config,
    read_web_config,
)

__all__ = [
    "FLAG",
    "BasicAuth",
    "LiveWebConfig",
    "TlsSettings",
    "WebConfig",
    "describe",
    "guard",
    "open_web_config",
    "parse_basic",
    "parse_web_config",
    "read_web_config",
]
