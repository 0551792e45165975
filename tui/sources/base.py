"""Shared plumbing for the HTTP data sources: one error type, one-line messages.

Every ``fetch()`` raises :class:`SourceError` (or its subclass :class:`RateLimited`) and
nothing else (``asyncio.CancelledError`` aside).  The helpers here turn every httpx
exception, HTTP status, JSON decode error and malformed reply into such an error whose
``str()`` is one human line naming the source and what went wrong, e.g.
``mempool https://mempool.space: HTTP 503 on /api/v1/blocks``.

No Textual here: ``--once`` imports this module.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import json
import math
import zlib
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import httpx

from tui import __version__

#: 10 s to read a reply, 5 s to connect.  Every client gets an explicit timeout.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = f"minertop/{__version__}"
#: A Retry-After further away than this is capped (a bogus date must not freeze a pane).
MAX_RETRY_AFTER = 3600.0
#: Largest reply body read by :meth:`HttpSource._request` (counted after decompression).
#: The chain clients' largest legitimate replies are a few hundred kB (a batch of ~260
#: block headers, three months of fee buckets): 16 MiB leaves ample headroom.
MAX_REPLY_BYTES = 16 << 20
#: Bytes of an error reply (non-2xx) kept for the message (after decompression); the rest
#: is not read.
ERROR_REPLY_BYTES = 64 << 10
#: The content codings a request asks for: those :class:`BodyDecoder` undoes, a bounded
#: step at a time.  (httpx asks for br and zstd too when their packages are installed, and
#: inflates a whole network read at once: 64 KiB of gzip can be 64 MiB.)
ACCEPT_ENCODING = "gzip, deflate"
#: Most bytes one decompression step yields: a body read up to a cap never holds more than
#: the cap plus this (an unencoded body: plus one network read, 64 KiB).
DECODE_STEP = 64 << 10
#: Most gzip/deflate codings stacked on one reply ("gzip, gzip, …"; each needs a decompressor).
MAX_CODINGS = 4
#: One request (connect, headers, whole body) must finish within this: a server that
#: trickles a byte every few seconds never trips the read timeout, but trips this.
REQUEST_DEADLINE_S = 30.0
#: What a secret is replaced with in any message.
REDACTED = "***"
#: Shorter values are not scrubbed (that would mangle ordinary text).
MIN_SECRET_LEN = 4


class SourceError(Exception):
    """A poll failed.  ``str()`` is one line: "<source>: <what went wrong>"."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class RateLimited(SourceError):
    """HTTP 429.  ``retry_after`` is the server's Retry-After in seconds (None: not sent)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShapeError(ValueError):
    """A reply parsed as JSON but does not have the expected shape."""


# --------------------------------------------------------------------------- text helpers


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace (a message must stay on one line) and cap the length."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def host_label(url: str) -> str:
    """``host[:port]`` of a URL, without any user:password@ part."""
    parts = urlsplit(url)
    host = parts.hostname or url
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def safe_url(url: str) -> str:
    """The URL without credentials and without a trailing slash (for messages)."""
    parts = urlsplit(url.rstrip("/"))
    if parts.username is None and parts.password is None:
        return url.rstrip("/")
    netloc = host_label(url)
    return parts._replace(netloc=netloc).geturl()


def fmt_bytes(n: int) -> str:
    """``16 MiB`` for a whole number of MiB (or KiB), else ``1,234 bytes``."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


def basic_token(user: str, password: str) -> str:
    """The ``Authorization: Basic`` token of ``user:password`` (a server may echo it)."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def url_secrets(url: str) -> set[str]:
    """What of ``url`` must never be shown: its password (and the Basic token made of it;
    without a password, the user name, often a token),
    its whole query string and every query value (raw and decoded); values shorter than
    :data:`MIN_SECRET_LEN` are left out."""
    parts = urlsplit(url)
    found: set[str] = set()
    password, user = parts.password, parts.username or ""
    if password:
        found |= {password, unquote(password)}
        found.add(basic_token(unquote(user), unquote(password)))
    elif len(unquote(user)) >= MIN_SECRET_LEN:  # a token as the user name: https://TOKEN@host
        found |= {user, unquote(user), basic_token(unquote(user), "")}
    if parts.query:
        found |= {parts.query, unquote_plus(parts.query)}
        for pair in parts.query.split("&"):
            _key, sep, value = pair.partition("=")
            if sep:
                found |= {value, unquote_plus(value), unquote(value)}
    return {v for v in found if len(v) >= MIN_SECRET_LEN}


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (longest first) replaced by :data:`REDACTED`."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len,
                         reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def drop_split_secret(data: bytes, secrets: Iterable[str]) -> bytes:
    """``data``, a body cut short, without its last bytes if they are the start of a secret.

    :func:`scrub` only recognises whole secrets, and the cut may have split one (a server
    can pad its reply to put the cut anywhere): every secret the cut split ends ``data``
    with a proper prefix of it (UTF-8), so dropping the longest such ending drops them all.
    """
    drop = 0
    for secret in secrets:
        if len(secret) < MIN_SECRET_LEN:
            continue  # never scrubbed, so never hidden
        raw = secret.encode("utf-8", errors="replace")
        for k in range(min(len(raw) - 1, len(data)), drop, -1):
            if data.endswith(raw[:k]):
                drop = k
                break
    return data[: len(data) - drop]


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g}"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date.

    ``now`` (unix seconds) is the reference for the date form.  Returns None when the
    header is missing or unparseable; never negative; capped at :data:`MAX_RETRY_AFTER`.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    seconds: float | None
    if value.isdigit():
        seconds = float(int(value))
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:  # pragma: no cover - older Pythons returned None
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            import datetime as _dt

            when = when.replace(tzinfo=_dt.timezone.utc)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


# --------------------------------------------------------------------------- error mapping


def _cause_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def describe_transport_error(exc: Exception, timeout: httpx.Timeout) -> str:
    """What went wrong, in a few words, for an exception raised while talking HTTP."""
    text = one_line(str(exc), 160)
    if isinstance(exc, httpx.TimeoutException):
        if isinstance(exc, httpx.ConnectTimeout):
            return f"connection timed out after {_fmt_seconds(timeout.connect)} s"
        if isinstance(exc, httpx.WriteTimeout):
            return f"timed out sending the request after {_fmt_seconds(timeout.write)} s"
        if isinstance(exc, httpx.PoolTimeout):
            return f"timed out waiting for a connection after {_fmt_seconds(timeout.pool)} s"
        return f"timed out after {_fmt_seconds(timeout.read)} s"
    if isinstance(exc, httpx.ConnectError):
        import socket
        import ssl

        low = text.lower()
        for c in _cause_chain(exc):
            if isinstance(c, ConnectionRefusedError):
                return "connection refused"
            if isinstance(c, socket.gaierror):
                return f"cannot resolve host ({one_line(str(c), 120)})"
            if isinstance(c, ssl.SSLError):
                return f"TLS error ({one_line(str(c), 160)})"
        if "refused" in low:
            return "connection refused"
        if "name or service not known" in low or "nodename nor servname" in low or (
            "name resolution" in low
        ):
            return f"cannot resolve host ({text})"
        if "ssl" in low or "certificate" in low:
            return f"TLS error ({text})"
        return f"cannot connect ({text or type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection closed mid-reply ({text or 'protocol error'})"
    if isinstance(exc, httpx.ProtocolError):
        return f"HTTP protocol error ({text or type(exc).__name__})"
    if isinstance(exc, httpx.NetworkError):  # ReadError, WriteError, CloseError
        return f"network error ({text or type(exc).__name__})"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return f"bad URL ({text or type(exc).__name__})"
    return f"request failed: {type(exc).__name__}" + (f" ({text})" if text else "")


#: Exceptions a request may raise that mean "the transport failed" (mapped to SourceError).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.StreamError,
    OSError,
)


def body_snippet(
    resp: httpx.Response, limit: int = 120, scrub: Callable[[str], str] | None = None
) -> str:
    """A short, one-line excerpt of an error body (empty for HTML or binary bodies).

    ``scrub`` removes secrets (a server may echo the API key it refused) before the text
    is cut, so that no part of a secret can show."""
    try:
        text = resp.content.decode("utf-8", errors="replace")
    except Exception:  # pragma: no cover - a stream that cannot be read
        return ""
    if scrub is not None:
        text = scrub(text)
    text = one_line(text, limit)
    if not text or text.startswith("<") or "\ufffd" in text:
        return ""
    return text


def status_error(
    prefix: str,
    resp: httpx.Response,
    what: str,
    now: float,
    scrub: Callable[[str], str] | None = None,
) -> SourceError:
    """The error for a non-success HTTP status on ``what`` (a path or a method name).

    ``scrub`` (e.g. :meth:`HttpSource.scrub`) removes secrets from the body excerpt."""
    code = resp.status_code
    if code == 429:
        retry = parse_retry_after(resp.headers.get("Retry-After"), now)
        hint = f", retry after {_fmt_seconds(retry)} s" if retry is not None else ""
        return RateLimited(f"{prefix}: rate limited (HTTP 429 on {what}){hint}", retry)
    snippet = body_snippet(resp, scrub=scrub)
    tail = f": {snippet}" if snippet else ""
    return SourceError(f"{prefix}: HTTP {code} on {what}{tail}")


def decode_json(prefix: str, resp: httpx.Response, what: str) -> Any:
    """Parse a reply body as JSON or raise "malformed JSON on <what> (<reason>)"."""
    try:
        return json.loads(resp.content)
    except json.JSONDecodeError as e:
        reason = f"{e.msg}: line {e.lineno} column {e.colno}"
        if not resp.content.strip():
            reason = "empty reply"
        raise SourceError(f"{prefix}: malformed JSON on {what} ({reason})") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise SourceError(f"{prefix}: malformed JSON on {what} ({one_line(str(e), 80)})") from None


@contextlib.contextmanager
def reply_shape(prefix: str, what: str) -> Iterator[None]:
    """Map shape problems while reading a reply to "unexpected reply on <what>: …"."""
    try:
        yield
    except SourceError:
        raise
    except KeyError as e:
        key = e.args[0] if e.args else "?"
        raise SourceError(f"{prefix}: unexpected reply on {what}: missing {key!r}") from None
    except (ShapeError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
        detail = one_line(str(e), 160) or type(e).__name__
        raise SourceError(f"{prefix}: unexpected reply on {what}: {detail}") from None


# --------------------------------------------------------------------------- reply bodies


class _Inflater:
    """One gzip or deflate coding undone, at most :data:`DECODE_STEP` bytes at a time."""

    def __init__(self, coding: str) -> None:
        gzip = coding == "gzip"
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        #: deflate: a zlib-wrapped stream is tried first; one that fails at once is raw
        #: deflate (some servers send that), as httpx does
        self._may_be_raw = not gzip

    def decode(self, data: bytes) -> Iterator[bytes]:
        """What ``data`` inflates to, in pieces of at most :data:`DECODE_STEP` bytes (the
        input not inflated yet waits in the decompressor until the next piece is asked for).
        Bytes after the end of the stream are ignored, as httpx does."""
        while not self._z.eof:
            try:
                out = self._z.decompress(data, DECODE_STEP)
            except zlib.error as e:
                if self._may_be_raw:
                    self._may_be_raw = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise httpx.DecodingError(str(e)) from None
            self._may_be_raw = False
            data = self._z.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < DECODE_STEP:  # a full piece: there may be more
                return

    def finish(self) -> Iterator[bytes]:
        """The end of the output, once all the input is in (a truncated stream is not an
        error, as with httpx)."""
        yield from self.decode(b"")
        try:
            rest = self._z.flush()  # nothing left to inflate: at most a few bytes
        except zlib.error as e:  # pragma: no cover - zlib does not raise here
            raise httpx.DecodingError(str(e)) from None
        if rest:
            yield rest


class BodyDecoder:
    """Undoes a reply's Content-Encoding in bounded steps, unlike httpx's ``aiter_bytes()``
    (which inflates each network read whole): every piece it yields is at most
    :data:`DECODE_STEP` bytes, or one network read when nothing is to be inflated.

    gzip and deflate (zlib-wrapped or raw) are undone, several stacked ones last-applied
    first; identity and codings it does not know pass through unchanged, as httpx does with
    those it has no decoder for (a request asks only for :data:`ACCEPT_ENCODING`).
    """

    def __init__(self, content_encoding: Iterable[str]) -> None:
        codings = [c.strip().lower() for c in content_encoding]
        self._stages = [_Inflater(c) for c in reversed(codings) if c in ("gzip", "deflate")]
        if len(self._stages) > MAX_CODINGS:
            raise httpx.DecodingError(f"more than {MAX_CODINGS} content codings")

    @classmethod
    def of(cls, resp: httpx.Response) -> BodyDecoder:
        return cls(resp.headers.get_list("Content-Encoding", split_commas=True))

    def decode(self, raw: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``raw``, the next bytes of the body as sent."""
        return self._through(0, raw)

    def finish(self) -> Iterator[bytes]:
        """The last decoded bytes, once the whole body was given to :meth:`decode`."""
        for k, stage in enumerate(self._stages):
            for piece in stage.finish():
                yield from self._through(k + 1, piece)

    def _through(self, k: int, data: bytes) -> Iterator[bytes]:
        """``data`` through stages ``k``… (one piece of each stage in memory at a time)."""
        if k == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[k].decode(data):
            yield from self._through(k + 1, piece)


async def decoded_body(resp: httpx.Response) -> AsyncGenerator[bytes, None]:
    """``resp``'s body (streamed, not yet read) decoded, in pieces of at most
    :data:`DECODE_STEP` bytes (see :class:`BodyDecoder`).

    A reply a transport gave already read (``httpx.MockTransport`` does) is in memory and
    decoded by httpx: it is only cut into pieces."""
    if resp.is_stream_consumed:
        content = resp.content  # httpx.ResponseNotRead (a StreamError) if it was not kept
        for start in range(0, len(content), DECODE_STEP):
            yield content[start : start + DECODE_STEP]
        return
    decoder = BodyDecoder.of(resp)
    async for raw in resp.aiter_raw():
        for piece in decoder.decode(raw):
            yield piece
    for piece in decoder.finish():
        yield piece


def plain_response(resp: httpx.Response, body: bytes) -> httpx.Response:
    """A reply read: ``resp``'s status and headers (less those about the transfer) with
    ``body``, already decoded."""
    keep = {k: v for k, v in resp.headers.items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")}
    return httpx.Response(resp.status_code, headers=keep, content=body, request=resp.request)


# --------------------------------------------------------------------------- shape checks


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def as_object(value: object, what: str = "reply") -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"expected {what} to be an object, got {_kind(value)}")
    return value


def as_list(value: object, what: str = "reply") -> list[Any]:
    if not isinstance(value, list):
        raise ShapeError(f"expected {what} to be a list, got {_kind(value)}")
    return value


def to_int(value: object, name: str) -> int:
    """A JSON integer (an integral float is accepted; booleans are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ShapeError(f"{name!r} is not an integer ({_kind(value)})")
    if isinstance(value, float):
        if not value.is_integer():
            raise ShapeError(f"{name!r} is not an integer ({value!r})")
        return int(value)
    return value


def to_num(value: object, name: str) -> float:
    """A finite JSON number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ShapeError(f"{name!r} is not a number ({_kind(value)})")
    f = float(value)
    if not math.isfinite(f):
        raise ShapeError(f"{name!r} is not a finite number ({value!r})")
    return f


def to_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ShapeError(f"{name!r} is not a string ({_kind(value)})")
    return value


def get_int(obj: Mapping[str, Any], key: str) -> int:
    return to_int(obj[key], key)


def get_num(obj: Mapping[str, Any], key: str) -> float:
    return to_num(obj[key], key)


#: Block and history timestamps outside this range are a broken reply, not a date to draw
#: (the header field is a uint32; the upper bound keeps every date printable).
MIN_TIME, MAX_TIME = 0, 7_258_118_400  # 1970 .. 2200


def to_time(value: Any, what: str) -> int:
    t = to_int(value, what)
    if not MIN_TIME <= t <= MAX_TIME:
        raise ShapeError(f"{what} {t} is not a plausible unix time")
    return t


def get_time(obj: Mapping[str, Any], key: str) -> int:
    return to_time(obj[key], key)


def get_positive(obj: Mapping[str, Any], key: str) -> float:
    v = to_num(obj[key], key)
    if not v > 0 or v == float("inf"):
        raise ShapeError(f"{key} must be a positive number, got {v!r}")
    return v


def get_str(obj: Mapping[str, Any], key: str) -> str:
    return to_str(obj[key], key)


# --------------------------------------------------------------------------- HTTP source base


class HttpSource:
    """One httpx client, a label and an error prefix; GET with every failure mapped.

    Every request made through :meth:`_request` (so :meth:`_get`) reads at most
    ``max_bytes`` of reply (after decompression, which never runs more than
    :data:`DECODE_STEP` bytes past it) and must finish within ``deadline_s``; every message
    made by :meth:`error` or :meth:`scrub` has the URL's secrets (password, query string and
    query values) replaced by ``***``, and an error body cut short does not end in part of
    one.
    """

    def __init__(
        self,
        base_url: str,
        *,
        kind: str,
        client: httpx.AsyncClient | None,
        timeout: httpx.Timeout,
        clock: Callable[[], float],
        prefix: str | None = None,
        follow_redirects: bool = True,
        max_bytes: int = MAX_REPLY_BYTES,
        deadline_s: float = REQUEST_DEADLINE_S,
    ) -> None:
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.host = host_label(self.base_url)
        self.label = f"{kind} {self.host}"
        #: what every error message starts with
        self.prefix = prefix if prefix is not None else f"{kind} {safe_url(self.base_url)}"
        self.max_bytes = int(max_bytes)
        self.deadline_s = float(deadline_s)
        #: values never shown in a message (see :meth:`add_secret`)
        self._secrets: set[str] = url_secrets(base_url)
        self._timeout = timeout
        self._follow = follow_redirects
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=follow_redirects,
            headers={"User-Agent": USER_AGENT},
        )

    def _now(self) -> float:
        return float(self.clock())

    def add_secret(self, value: str | None) -> None:
        """Never show ``value`` (a token, a password) in a message (if long enough)."""
        if value is not None and len(value) >= MIN_SECRET_LEN:
            self._secrets.add(value)

    def scrub(self, text: str) -> str:
        """``text`` without this source's secrets."""
        return scrub(text, self._secrets)

    def error(self, text: str) -> SourceError:
        return SourceError(self.scrub(f"{self.prefix}: {text}"))

    def _stream(
        self, method: str, url: str, **kw: Any
    ) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
        """``self._client.stream(…)``, asking only for the codings :class:`BodyDecoder`
        undoes (whatever the client's own headers say)."""
        headers = httpx.Headers(kw.pop("headers", None))
        headers["Accept-Encoding"] = ACCEPT_ENCODING
        return self._client.stream(method, url, headers=headers, **kw)

    async def _read_body(self, resp: httpx.Response, limit: int, *, cut: bool) -> bytes | None:
        """``resp``'s body decoded, or None if it is longer than ``limit`` bytes; with
        ``cut``, its first ``limit`` bytes instead, which do not end in part of a secret
        (see :func:`drop_split_secret`).  Reading stops at the limit either way."""
        buf = bytearray()
        async with contextlib.aclosing(decoded_body(resp)) as pieces:
            async for piece in pieces:
                if len(buf) + len(piece) > limit:
                    if not cut:
                        return None
                    buf += piece[: limit - len(buf)]
                    return drop_split_secret(bytes(buf), self._secrets)
                buf += piece
        return bytes(buf)

    def _reply_too_large(self, what: str, declared: int | None) -> SourceError:
        size = f" ({declared:,} bytes)" if declared is not None else ""
        return self.error(f"reply too large{size}: over {fmt_bytes(self.max_bytes)} on {what}")

    async def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        deadline_s: float | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """One request, its body read into a plain response; failures are SourceErrors.

        A success body over ``max_bytes`` (declared or counted after decompression) fails
        with "reply too large"; an error body is cut at :data:`ERROR_REPLY_BYTES`.  The
        whole exchange must finish within ``deadline_s`` (default: ``self.deadline_s``).
        The request asks for :data:`ACCEPT_ENCODING` only.
        """
        deadline = self.deadline_s if deadline_s is None else deadline_s
        kw.setdefault("timeout", self._timeout)
        kw.setdefault("follow_redirects", self._follow)
        try:
            return await asyncio.wait_for(self._read(method, url, what, kw), deadline)
        except asyncio.TimeoutError:
            raise self.error(
                f"timed out: no complete reply on {what} within {deadline:g} s"
            ) from None

    async def _read(
        self, method: str, url: str, what: str, kw: dict[str, Any]
    ) -> httpx.Response:
        try:
            async with self._stream(method, url, **kw) as resp:
                ok = resp.is_success
                limit = self.max_bytes if ok else min(self.max_bytes, ERROR_REPLY_BYTES)
                declared = resp.headers.get("Content-Length", "").strip()
                if ok and declared.isascii() and declared.isdigit() and len(declared) < 30 \
                        and int(declared) > limit:
                    raise self._reply_too_large(what, int(declared))
                body = await self._read_body(resp, limit, cut=not ok)  # an error: cut
                if body is None:
                    raise self._reply_too_large(what, None)
                return plain_response(resp, body)
        except SourceError:
            raise
        except TRANSPORT_ERRORS as e:
            raise self.error(describe_transport_error(e, self._timeout)) from None

    async def _get(self, path: str, *, allow: tuple[int, ...] = ()) -> httpx.Response:
        """GET ``base_url + path``; any failure or non-2xx status raises SourceError.

        Statuses in ``allow`` are returned to the caller instead of raising.
        """
        resp = await self._request("GET", self.base_url + path, what=path)
        if not resp.is_success and resp.status_code not in allow:
            raise status_error(self.prefix, resp, path, self._now(), self.scrub)
        return resp

    async def _get_json(self, path: str) -> Any:
        resp = await self._get(path)
        return decode_json(self.prefix, resp, path)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


@contextlib.contextmanager
def only_source_errors(
    prefix: str, scrub: Callable[[str], str] | None = None
) -> Iterator[None]:
    """Last line of defence around a ``fetch()``: nothing but SourceError escapes.

    Known failures are mapped precisely before they get here; this turns a bug into a
    readable pane error instead of a crashed worker.  CancelledError passes through.
    ``scrub`` (e.g. :meth:`HttpSource.scrub`) is applied to every message that leaves.
    """
    clean = scrub if scrub is not None else (lambda text: text)
    try:
        yield
    except SourceError as e:
        text = str(e)
        cleaned = clean(text)
        if cleaned != text:
            e.args = (cleaned,)
        raise
    except TRANSPORT_ERRORS as e:
        raise SourceError(
            clean(f"{prefix}: {describe_transport_error(e, DEFAULT_TIMEOUT)}")) from e
    except Exception as e:
        raise SourceError(clean(f"{prefix}: internal error: {type(e).__name__}: {e}")) from e
