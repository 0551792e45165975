"""A minimal asyncio HTTP/1.1 server for the simulator, bound to loopback only.

Enough HTTP for httpx and curl: request line, headers, ``Content-Length`` bodies, keep-alive
(HTTP/1.1 default, ``Connection: close`` honoured), no chunked request bodies.  Each server
carries a :class:`Faults` object that tests flip at runtime to make the service misbehave;
stopping the server closes the listening socket *and* every open connection, so a client
sees a real "connection refused" until :meth:`HttpServer.start` binds the same port again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "FAULT_MODES",
    "Faults",
    "Handler",
    "HttpServer",
    "Request",
    "Response",
    "check_loopback",
]

log = logging.getLogger(__name__)

FAULT_MODES = ("http500", "malformed", "truncated", "slow", "ratelimit")
_MAX_LINE = 8192
_MAX_HEADERS = 100
_MAX_BODY = 4 * 1024 * 1024
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def check_loopback(host: str) -> str:
    """Return ``host`` as an IPv4 literal in 127.0.0.0/8, else raise ``ValueError``.

    ``localhost`` is accepted and means 127.0.0.1 (never ``::1`` or another interface).
    """
    if host == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not a loopback address: {host!r} (use one in 127.0.0.0/8)") from None
    if addr.version != 4 or addr not in _LOOPBACK:
        raise ValueError(f"not a loopback address: {host!r} (use one in 127.0.0.0/8)")
    return str(addr)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  #: the raw request target, e.g. "/api/v1/blocks?x=1"
    path: str  #: percent-decoded path without the query
    query: dict[str, str]
    headers: dict[str, str]  #: lower-cased names
    body: bytes
    version: str = "HTTP/1.1"


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status=status, body=text.encode())

    @classmethod
    def json(cls, obj: object, status: int = 200) -> Response:
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
        return cls(status=status, body=body, content_type="application/json; charset=utf-8")


Handler = Callable[[Request], "Response | Awaitable[Response]"]


class Faults:
    """What a server should get wrong, settable at runtime.

    ``mode``: None (behave), ``"http500"`` (500 with a text body), ``"malformed"`` (200 with
    a body that is not JSON), ``"truncated"`` (the real body cut in half, with a
    Content-Length that matches the cut body), ``"slow"`` (wait ``delay`` seconds, then
    answer normally) or ``"ratelimit"`` (429 with ``Retry-After: retry_after``).
    ``count``: apply to the next N requests only, then go back to None (None = until
    cleared).
    """

    def __init__(self) -> None:
        self._mode: str | None = None
        self.count: int | None = None
        self.delay: float = 5.0
        self.retry_after: int = 30
        self.applied = 0  #: requests that a fault was applied to, in total

    @property
    def mode(self) -> str | None:
        return self._mode

    @mode.setter
    def mode(self, value: str | None) -> None:
        if value is not None and value not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {value!r} (known: {', '.join(FAULT_MODES)})")
        self._mode = value

    def set(
        self,
        mode: str | None,
        *,
        count: int | None = None,
        delay: float | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.mode = mode
        self.count = count
        if count is not None and count <= 0:
            self.clear()
        if delay is not None:
            self.delay = delay
        if retry_after is not None:
            self.retry_after = retry_after

    def clear(self) -> None:
        self._mode = None
        self.count = None

    def take(self) -> str | None:
        """The fault for the request being served now (and count it down)."""
        mode = self._mode
        if mode is None:
            return None
        self.applied += 1
        if self.count is not None:
            self.count -= 1
            if self.count <= 0:
                self.clear()
        return mode

    def __repr__(self) -> str:
        return f"Faults(mode={self._mode!r}, count={self.count!r})"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpServer:
    """Serve ``handler`` on ``host:port`` (loopback only); ``port=0`` picks a free port.

    ``await start()`` binds (re-binding the same port after a ``stop()``), ``await stop()``
    closes the socket and all connections.  ``hits`` counts requests per path.
    """

    def __init__(
        self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0, name: str = "sim"
    ) -> None:
        self.host = check_loopback(host)
        if not 0 <= port <= 65535:
            raise ValueError(f"bad port {port!r}")
        self.handler = handler
        self.name = name
        self.faults = Faults()
        self.hits: Counter[str] = Counter()
        self._port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def requests_served(self) -> int:
        return sum(self.hits.values())

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self._port, reuse_address=True, limit=_MAX_LINE * 2
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        await server.wait_closed()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- connections

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if self._server is None:
            writer.transport.abort()
            return
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            while True:
                try:
                    request = await self._read_request(reader)
                except _BadRequest as e:
                    self._write(writer, Response.text(str(e), e.status), "HTTP/1.1", close=True)
                    await writer.drain()
                    break
                if request is None:
                    break
                keep_alive = _keep_alive(request)
                response = await self._respond(request)
                self._write(writer, response, request.version, close=not keep_alive)
                await writer.drain()
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            if self._server is None:
                writer.transport.abort()
            else:
                writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            line = await reader.readline()
        except (asyncio.LimitOverrunError, ValueError):
            raise _BadRequest(414, "URI Too Long") from None
        if not line:
            return None
        if not line.endswith(b"\n"):
            return None  # the peer went away mid-line
        parts = line.decode("latin-1").strip().split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "Bad Request")
        method, target, version = parts
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            try:
                hline = await reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                raise _BadRequest(431, "Request Header Fields Too Large") from None
            if not hline.endswith(b"\n"):
                return None
            if hline in (b"\r\n", b"\n"):
                break
            name, sep, value = hline.decode("latin-1").partition(":")
            if not sep:
                raise _BadRequest(400, "Bad Request")
            headers[name.strip().lower()] = value.strip()
        else:
            raise _BadRequest(431, "Request Header Fields Too Large")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _BadRequest(411, "Length Required")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _BadRequest(400, "Bad Request") from None
        if length < 0:
            raise _BadRequest(400, "Bad Request")
        if length > _MAX_BODY:
            raise _BadRequest(413, "Payload Too Large")
        body = await reader.readexactly(length) if length else b""
        split = urlsplit(target)
        return Request(
            method=method.upper(),
            target=target,
            path=unquote(split.path) or "/",
            query=dict(parse_qsl(split.query)),
            headers=headers,
            body=body,
            version=version,
        )

    async def _respond(self, request: Request) -> Response:
        self.hits[request.path] += 1
        fault = self.faults.take()
        if fault == "http500":
            return Response.text("Internal Server Error", 500)
        if fault == "ratelimit":
            resp = Response.text("Too Many Requests", 429)
            resp.headers["Retry-After"] = str(self.faults.retry_after)
            return resp
        if fault == "slow":
            await asyncio.sleep(self.faults.delay)
        try:
            result = self.handler(request)
            response = await result if asyncio.iscoroutine(result) else result
        except Exception:  # a handler bug must not kill the server
            log.exception("%s: handler failed for %s %s", self.name, request.method, request.target)
            return Response.text("Internal Server Error", 500)
        assert isinstance(response, Response)
        if fault == "malformed":
            return Response(
                status=200,
                body=b"<html><head><title>502 Bad Gateway</title></head>\r\n<body>",
                content_type=response.content_type,
            )
        if fault == "truncated":
            cut = response.body[: len(response.body) // 2]
            return Response(response.status, cut, response.content_type, dict(response.headers))
        return response

    def _write(
        self, writer: asyncio.StreamWriter, response: Response, version: str, *, close: bool
    ) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [
            f"{version if version == 'HTTP/1.0' else 'HTTP/1.1'} {response.status} {reason}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: minertop-sim",
        ]
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        for name, value in response.headers.items():
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(response.body)}")
        lines.append("Connection: close" if close else "Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer.write(head + response.body)


def _keep_alive(request: Request) -> bool:
    conn = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in conn
    return "close" not in conn
