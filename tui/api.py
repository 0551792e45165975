"""The daemon's read-only HTTP API, served by aiohttp.web.

Endpoints (all JSON, ``application/json; charset=utf-8``):

* ``GET /healthz`` - never needs a token; 200 when healthy, 503 when not.  Without the
  token (when one is configured) only the summary (:data:`PUBLIC_HEALTH` keys): the details
  (source errors and addresses, the history file's path, notifier errors) need the token.
* ``GET /api/v1/snapshot`` - the last completed poll cycle's document (503 before the first);
  serialised once per document, with ``ETag``/``If-None-Match`` support.
* ``GET /api/v1/rigs/{name}/history?since=&until=`` - one rig's history (404: unknown rig).
* ``GET /api/v1/site/history?since=&until=`` - the site's history.
* ``GET /api/v1/alerts?since=[&until=]`` - alerts raised in a window.

When a token is configured, everything but ``/healthz`` needs ``Authorization: Bearer <token>``.
Listening anywhere but loopback needs a token (:func:`check_listen`).  Nothing here logs
request headers or query strings, so the token never reaches a log line.

This is the only module that imports aiohttp; the daemon imports it lazily.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from tui.tokens import (  # re-exported: the API's token and listen rules
    MIN_TOKEN_LENGTH,
    TOKEN_ENV,
    ListenError,
    load_token,
    token_file_too_open,
)

__all__ = [
    "DEFAULT_LISTEN",
    "MAX_SPAN_SECONDS",
    "MIN_TOKEN_LENGTH",
    "SNAPSHOT_CACHE",
    "TOKEN_ENV",
    "ApiBackend",
    "ApiServer",
    "ListenError",
    "SnapshotCache",
    "check_listen",
    "encode_json",
    "host_is_local",
    "is_loopback",
    "load_token",
    "make_app",
    "parse_listen",
    "token_file_too_open",
]

DEFAULT_LISTEN: tuple[str, int] = ("127.0.0.1", 9184)
#: The longest window a history/alerts query may ask for.
MAX_SPAN_SECONDS = 400 * 86_400.0
DEFAULT_HISTORY_SPAN = 3_600.0
DEFAULT_ALERTS_SPAN = 86_400.0
SHUTDOWN_TIMEOUT = 2.0
SERVER_NAME = "minertop"
JSON_CONTENT_TYPE = "application/json"

_log = logging.getLogger(__name__)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BackendUnavailable(Exception):
    """A backend can't answer right now (one line, shown to the client with a 503)."""


# --------------------------------------------------------------------------- listen address


_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_LISTEN_EXAMPLES = "e.g. 127.0.0.1:9184, [::1]:9184 or 0.0.0.0:9184"


def _parse_port(text: str, whole: str) -> int:
    if not text:
        raise ListenError(f"missing port in {whole!r}: expected HOST:PORT ({_LISTEN_EXAMPLES})")
    if not (text.isascii() and text.isdigit()) or int(text) > 65_535:
        raise ListenError(f"bad port {text!r} in {whole!r}: expected a number 0-65535")
    return int(text)


def parse_listen(text: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) into ``(host, port)``.

    The host comes back without brackets.  Port 0 (any free port) is allowed.  An empty host
    (``:9184``) is refused rather than guessed: say 127.0.0.1 or 0.0.0.0.
    """
    whole = text.strip()
    if not whole:
        raise ListenError(f"empty listen address: expected HOST:PORT ({_LISTEN_EXAMPLES})")
    if whole.startswith("["):
        close = whole.find("]")
        if close < 0:
            raise ListenError(f"missing ']' in {whole!r}: write IPv6 as [::1]:9184")
        host, rest = whole[1:close], whole[close + 1 :]
        if not rest.startswith(":"):
            raise ListenError(f"missing port in {whole!r}: expected [ADDRESS]:PORT")
        port = _parse_port(rest[1:], whole)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ListenError(f"bad IPv6 address {host!r} in {whole!r}") from None
        return host, port
    host, sep, port_text = whole.rpartition(":")
    if not sep:
        raise ListenError(f"missing port in {whole!r}: expected HOST:PORT ({_LISTEN_EXAMPLES})")
    if not host:
        raise ListenError(
            f"missing host in {whole!r}: use 127.0.0.1{whole} (this machine only) "
            f"or 0.0.0.0{whole} (all interfaces, needs a token)"
        )
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ListenError(f"bad host {host!r} in {whole!r}: expected HOST:PORT") from None
        raise ListenError(f"IPv6 addresses need brackets: [{host}]:{port_text}")
    port = _parse_port(port_text, whole)
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ListenError(f"bad IPv4 address {host!r} in {whole!r}") from None
    elif not _HOSTNAME_RE.fullmatch(host):
        raise ListenError(f"bad host {host!r} in {whole!r}: expected an IP address or hostname")
    return host, port


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped loopback) and ``localhost``; anything else,
    including the wildcards 0.0.0.0 and ::, hostnames and LAN addresses, is not loopback."""
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    name = name.lower().removesuffix(".")
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def host_is_local(header: str) -> bool:
    """True when a request's ``Host`` header names this machine: a loopback address or
    ``localhost`` (also ``*.localhost``), or the machine's own host name, with any port.

    A tokenless API answers only these (:func:`make_app`), which defeats DNS rebinding: a web
    page can make its own name resolve to 127.0.0.1, but its requests still carry that name.
    A missing Host (HTTP/1.0) is taken as local: a browser always sends one.
    """
    name = header.strip()
    if not name:
        return True
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rpartition(":")[0]
    name = name.lower().removesuffix(".")
    if is_loopback(name) or name.endswith(".localhost"):
        return True
    own = socket.gethostname().lower().removesuffix(".")
    return bool(own) and name in (own, own.partition(".")[0])


#: The ``/healthz`` keys anyone may read; the rest (sources with their errors and addresses,
#: the history file, notifiers) needs the token when one is configured.
PUBLIC_HEALTH = frozenset({"service", "version", "status", "healthy", "uptime_s", "cycles",
                           "cycle_s"})


def check_listen(host: str, token: str | None) -> None:
    """Refuse to listen off loopback without a token."""
    if not is_loopback(host) and not token:
        raise ListenError(f"listening on {host} needs a token: --token-file PATH or ${TOKEN_ENV}")


# --------------------------------------------------------------------------------- tokens


# ------------------------------------------------------------------------------- backend


class ApiBackend(Protocol):
    """What the API serves; the daemon implements it."""

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, document)``."""
        ...

    def snapshot_doc(self) -> dict[str, Any] | None:
        """The last completed cycle's document (None: no cycle completed yet).

        Return the *same* object until the next cycle and don't mutate it afterwards: the API
        caches its serialisation keyed on the object's identity."""
        ...

    async def rig_history(self, rig: str, since: float, until: float) -> dict[str, Any] | None:
        """None: unknown rig."""
        ...

    async def site_history(self, since: float, until: float) -> dict[str, Any]: ...

    async def alerts(self, since: float, until: float | None) -> dict[str, Any]: ...


# ---------------------------------------------------------------------------------- JSON


def _finite(obj: Any) -> Any:
    """A copy of ``obj`` with NaN/inf floats as None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(value) for value in obj]
    return obj


def encode_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON; non-finite floats become null (strict JSON parsers reject NaN)."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(obj), ensure_ascii=False, separators=(",", ":"))
    # Lone surrogates (undecodable bytes in a rig name) can't be UTF-8: replace them.
    return text.encode("utf-8", "replace")


def _json(status: int, obj: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=encode_json(obj),
        content_type=JSON_CONTENT_TYPE,
        charset="utf-8",
        headers=headers,
    )


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return _json(status, {"error": message}, headers)


class SnapshotCache:
    """The serialised document, keyed on the identity of the document object.

    Holding a reference to the document keeps its ``id()`` from being reused by a new object.
    One entry, replaced whole (a tuple), so :meth:`prime` may run in a worker thread while
    requests read it on the loop: they see the old entry or the new one, never a mix.
    """

    def __init__(self) -> None:
        #: (document, body, etag, gzip or None)
        self._entry: tuple[dict[str, Any], bytes, str, bytes | None] | None = None
        #: How many documents have been serialised (for tests and diagnostics).
        self.serialisations = 0

    def _for(self, doc: dict[str, Any]) -> tuple[dict[str, Any], bytes, str, bytes | None]:
        e = self._entry
        if e is None or e[0] is not doc:
            body = encode_json(doc)
            etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
            e = (doc, body, etag, None)
            self._entry = e
            self.serialisations += 1
        return e

    def get(self, doc: dict[str, Any]) -> tuple[bytes, str]:
        """``(body, etag)`` for ``doc``; the etag is a quoted strong validator."""
        e = self._for(doc)
        return e[1], e[2]

    def gzipped(self, doc: dict[str, Any] | None = None) -> bytes:
        """The body of ``doc`` (default: the current one), gzip-compressed once (a 5,000-rig
        snapshot is 1.8 MB of JSON)."""
        e = self._entry if doc is None else self._for(doc)
        assert e is not None
        if e[3] is None:
            e = (e[0], e[1], e[2], gzip.compress(e[1], compresslevel=5, mtime=0))
            self._entry = e
        return e[3]  # type: ignore[return-value]

    def prime(self, doc: dict[str, Any]) -> None:
        """Serialise and compress ``doc`` now (from a worker thread), so that requests find
        the bytes ready instead of making them on the event loop."""
        self.gzipped(doc)


SNAPSHOT_CACHE: web.AppKey[SnapshotCache] = web.AppKey("minertop_snapshot_cache", SnapshotCache)
#: The cache of ``/api/v1/view`` (the daemon primes it in a thread on every new view).
VIEW_CACHE: web.AppKey[SnapshotCache] = web.AppKey("minertop_view_cache", SnapshotCache)


# ----------------------------------------------------------------------------- parameters


class _BadParam(Exception):
    pass


def _timestamp(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise _BadParam(f"{name}: expected a unix time in seconds, got {shown!r}")
    return value


def _window(request: web.Request, now: float, default_span: float) -> tuple[float, float, bool]:
    """``(since, until, until_given)``; until defaults to now, since to until - default_span."""
    since = _timestamp(request, "since")
    given = _timestamp(request, "until")
    until = now if given is None else given
    if since is None:
        since = until - default_span
    if given is not None and since > until:
        raise _BadParam("since: must not be later than until")
    if until - since > MAX_SPAN_SECONDS:
        days = MAX_SPAN_SECONDS / 86_400
        raise _BadParam(f"since: the window from since to until is longer than {days:g} days")
    return since, until, given is not None


def _path_for_log(request: web.Request) -> str:
    # The raw (still percent-encoded) path without the query: no control characters, no token.
    return request.rel_url.raw_path


# ---------------------------------------------------------------------------------- app


def make_app(
    backend: ApiBackend,
    *,
    token: str | None,
    clock: Callable[[], float] = time.time,
    logger: logging.Logger | None = None,
) -> web.Application:
    """The aiohttp application: routes, auth, JSON errors, one DEBUG line per request.

    Run it with ``web.AppRunner(app, access_log=None)`` (as :class:`ApiServer` does): aiohttp's
    own access log is not used, so no header or query string is ever logged.
    """
    log = logger or _log
    token_digest = hashlib.sha256(token.encode("utf-8")).digest() if token else None
    cache = SnapshotCache()

    def authorised(request: web.Request) -> bool:
        if token_digest is None:
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        offered = credentials.strip().encode("utf-8", "surrogateescape")
        # Hash both sides first so the comparison doesn't leak the token's length either.
        return hmac.compare_digest(hashlib.sha256(offered).digest(), token_digest)

    @web.middleware
    async def access_log(request: web.Request, handler: _Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            log.debug(
                "%s %s %d %.1fms",
                request.method,
                _path_for_log(request),
                status,
                (time.perf_counter() - started) * 1000,
            )

    @web.middleware
    async def json_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {
                key: value
                for key, value in exc.headers.items()
                if key.lower() not in ("content-type", "content-length")
            }
            message = {404: "not found", 405: "method not allowed"}.get(
                exc.status, (exc.reason or "error").lower()
            )
            return _error(exc.status, message, headers)
        except _BadParam as exc:
            return _error(400, str(exc))
        except BackendUnavailable as exc:  # e.g. the history file can't be read: no bug
            log.warning("%s %s: %s", request.method, _path_for_log(request), exc)
            return _error(503, str(exc))
        except Exception:
            log.exception("API error on %s %s", request.method, _path_for_log(request))
            return _error(500, "internal error")

    @web.middleware
    async def loopback_host(request: web.Request, handler: _Handler) -> web.StreamResponse:
        # Without a token the API listens on loopback only, where anything on this machine
        # may read it, but a web page must not: through DNS rebinding a page's own name can
        # come to point at 127.0.0.1, and the browser then sends that name as the Host.
        if token_digest is None and not host_is_local(request.headers.get("Host", "")):
            return _error(
                403,
                "this API has no token, so it answers only requests addressed to this machine "
                "(Host: 127.0.0.1, localhost, [::1] or its own name); configure a token "
                f"(--token-file PATH or ${TOKEN_ENV}) to serve it under another name",
            )
        return await handler(request)

    @web.middleware
    async def auth(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.rel_url.path != "/healthz" and not authorised(request):
            return _error(401, "unauthorized", {"WWW-Authenticate": 'Bearer realm="minertop"'})
        return await handler(request)

    async def healthz(request: web.Request) -> web.StreamResponse:
        healthy, doc = backend.health()
        if not authorised(request):  # a probe without the token: the summary only
            doc = {k: v for k, v in doc.items() if k in PUBLIC_HEALTH}
            doc["details"] = "send the token for the details"
        return _json(200 if healthy else 503, doc, {"Cache-Control": "no-cache"})

    view_cache = SnapshotCache()

    async def snapshot(request: web.Request) -> web.StreamResponse:
        return _cached(request, backend.snapshot_doc(), request.app[SNAPSHOT_CACHE])

    async def view(request: web.Request) -> web.StreamResponse:
        """The engine's latest view for an attached dashboard (see tui.wire)."""
        get = getattr(backend, "view_doc", None)
        return _cached(request, get() if get is not None else None, view_cache)

    def _cached(request: web.Request, doc: dict[str, Any] | None,
                cache: SnapshotCache) -> web.StreamResponse:
        if doc is None:
            return _error(503, "no poll cycle completed yet", {"Cache-Control": "no-cache"})
        body, etag = cache.get(doc)
        headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        wanted = request.if_none_match
        if wanted and any(tag.value in ("*", etag[1:-1]) for tag in wanted):
            return web.Response(status=304, headers=headers)
        if "gzip" in request.headers.get("Accept-Encoding", "").lower():
            headers["Content-Encoding"] = "gzip"
            body = cache.gzipped(doc)
        return web.Response(
            body=body, content_type=JSON_CONTENT_TYPE, charset="utf-8", headers=headers
        )

    async def metrics(request: web.Request) -> web.StreamResponse:
        """Prometheus text exposition of the last completed cycle (see tui.metrics)."""
        get = getattr(backend, "metrics_doc", None)
        doc = get() if get is not None else None
        if doc is None:
            return _error(503, "no poll cycle completed yet", {"Cache-Control": "no-cache"})
        body, gz = doc
        headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding",
                   "Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        if "gzip" in request.headers.get("Accept-Encoding", "").lower():
            headers["Content-Encoding"] = "gzip"
            body = gz
        return web.Response(body=body, headers=headers)

    async def rig_history(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        since, until, _ = _window(request, clock(), DEFAULT_HISTORY_SPAN)
        doc = await backend.rig_history(name, since, until)
        if doc is None:
            return _error(404, f"unknown rig {name!r}")
        return _json(200, doc)

    async def site_history(request: web.Request) -> web.StreamResponse:
        since, until, _ = _window(request, clock(), DEFAULT_HISTORY_SPAN)
        return _json(200, await backend.site_history(since, until))

    async def alerts(request: web.Request) -> web.StreamResponse:
        since, until, until_given = _window(request, clock(), DEFAULT_ALERTS_SPAN)
        return _json(200, await backend.alerts(since, until if until_given else None))

    async def server_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["Server"] = SERVER_NAME

    app = web.Application(middlewares=[access_log, json_errors, loopback_host, auth])
    app[SNAPSHOT_CACHE] = cache
    app[VIEW_CACHE] = view_cache
    app.on_response_prepare.append(server_header)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/snapshot", snapshot)
    app.router.add_get("/api/v1/view", view)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/rigs/{name}/history", rig_history)
    app.router.add_get("/api/v1/site/history", site_history)
    app.router.add_get("/api/v1/alerts", alerts)
    return app


# ------------------------------------------------------------------------------- server


class _ScrubBadRequests(logging.Filter):
    """aiohttp logs a malformed request's offending line (which could be an Authorization
    header) with a traceback on ``aiohttp.server``; keep only the exception's class."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {type(exc).__name__} (HTTP {exc.code})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


_SCRUB_BAD_REQUESTS = _ScrubBadRequests()


_OS_REASONS = {
    errno.EADDRINUSE: "address already in use",
    errno.EADDRNOTAVAIL: "address not available on this machine",
    errno.EACCES: "permission denied",
}


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ApiServer:
    """The API on ``host:port``: ``await start()``, ``await stop()`` (or ``async with``)."""

    def __init__(
        self,
        backend: ApiBackend,
        host: str,
        port: int,
        *,
        token: str | None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_listen(host, token)
        self.host = host
        self._port = port
        self._log = logger or _log
        self.app = make_app(backend, token=token or None, clock=clock, logger=self._log)
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the real one for port 0), else the configured one."""
        return self._port

    @property
    def url(self) -> str:
        return f"http://{_host_port(self.host, self.port)}"

    async def start(self) -> None:
        """Bind and serve; ListenError (one line) when the address can't be used."""
        if self._runner is not None:
            raise RuntimeError("ApiServer already started")
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        logging.getLogger("aiohttp.server").addFilter(_SCRUB_BAD_REQUESTS)  # no-op if added
        await runner.setup()
        where = _host_port(self.host, self._port)
        try:
            site = web.TCPSite(runner, self.host, self._port)
            await site.start()
        except socket.gaierror as exc:
            await runner.cleanup()
            raise ListenError(f"can't listen on {where}: {exc.strerror}") from None
        except OSError as exc:
            await runner.cleanup()
            reason = _OS_REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
            raise ListenError(f"can't listen on {where}: {reason.lower()}") from None
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        if addresses:
            self._port = int(addresses[0][1])
        self._log.info("API listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and close connections; bounded by a ~2 s grace period."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
