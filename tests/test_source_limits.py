"""Reply-size caps, whole-request deadlines, field ranges and secret scrubbing of the chain
clients (mempool REST, bitcoind JSON-RPC) and the power feed, against real loopback servers:
hand-made ``asyncio`` servers for misbehaving transports, ``tui.sim.http.HttpServer`` (and the
simulator itself) for replies.  Nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import serve
from tui.sim import start_sim
from tui.sim.http import HttpServer, Request, Response
from tui.sources.base import (
    MAX_REPLY_BYTES,
    REQUEST_DEADLINE_S,
    HttpSource,
    SourceError,
    basic_token,
    scrub,
    url_secrets,
)
from tui.sources.bitcoind import BitcoindSource
from tui.sources.mempool import MempoolSource
from tui.sources.power_feed import PowerFeedSource
from tui.tariff import PowerFeedConfig, parse_path

__all__ = ["serve"]  # the loopback HTTP fixture, from tests/servers.py

#: ``await writer_fn(writer, stop)``: what a raw server sends after reading a request.
RawReply = Callable[[asyncio.StreamWriter, asyncio.Event], Awaitable[None]]


# --------------------------------------------------------------------------- servers


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[RawReply], Awaitable[str]]]:
    """``url = await raw(reply)``: a bare asyncio server on 127.0.0.1 that reads one request
    (headers and body) and then lets ``reply`` write whatever it likes."""
    servers: list[asyncio.AbstractServer] = []
    stop = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    async def start(reply: RawReply) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)  # type: ignore[arg-type]
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                await reply(writer, stop)
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    stop.set()
    for t in list(tasks):
        t.cancel()
    for s in servers:
        s.close()
        await s.wait_closed()


HUGE = 300_000_000  # what the "endless" servers claim or try to send


def streaming(sent: list[int], *, declare: bool) -> RawReply:
    """200 with a JSON body of 300 MB (declared with Content-Length, or not)."""

    async def reply(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
        length = f"Content-Length: {HUGE}\r\n" if declare else "Connection: close\r\n"
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}\r\n"
                     .encode() + b'{"pad": "')
        chunk = b"x" * 65536
        while sent[0] < HUGE and not stop.is_set():
            writer.write(chunk)
            sent[0] += len(chunk)
            await writer.drain()

    return reply


def trickling(every_s: float) -> RawReply:
    """200 whose 100-byte body comes one byte every ``every_s`` seconds (never a read
    timeout: something always arrives within 10 s)."""

    async def reply(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n")
        for _ in range(100):
            writer.write(b"1")
            await writer.drain()
            try:
                await asyncio.wait_for(stop.wait(), every_s)
                return
            except asyncio.TimeoutError:
                pass

    return reply


def one_line_error(e: BaseException) -> str:
    assert isinstance(e, SourceError)
    msg = str(e)
    assert "\n" not in msg and "Traceback" not in msg and "internal error" not in msg
    return msg


async def fail(src: HttpSource, within_s: float = 20.0) -> str:
    """The one-line error of ``src.fetch()`` (which must come within ``within_s``)."""
    try:
        with pytest.raises(SourceError) as ei:
            await asyncio.wait_for(src.fetch(), within_s)  # type: ignore[attr-defined]
    finally:
        await src.aclose()
    return one_line_error(ei.value)


def cookie(tmp_path: Path, secret: str = "cookiesecret0123456789") -> Path:
    p = tmp_path / ".cookie"
    p.write_text(f"__cookie__:{secret}")
    return p


# --------------------------------------------------------------------------- 1. size caps


def test_the_default_limits() -> None:
    assert MAX_REPLY_BYTES == 16 << 20 and REQUEST_DEADLINE_S == 30.0
    m = MempoolSource("http://127.0.0.1:9")
    b = BitcoindSource("http://127.0.0.1:9")
    assert (m.max_bytes, m.deadline_s) == (b.max_bytes, b.deadline_s) == (16 << 20, 30.0)


@pytest.mark.parametrize("declare", [False, True], ids=["streamed", "declared"])
async def test_mempool_300_mb_reply_is_cut_at_the_cap(raw, declare: bool) -> None:
    """A 300 MB tip-height reply ends in "reply too large", reading at most the 16 MiB cap
    (peak memory stays near the cap, not near 300 MB)."""
    sent = [0]
    url = await raw(streaming(sent, declare=declare))
    tracemalloc.start()
    try:
        msg = await fail(MempoolSource(url))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = f" ({HUGE:,} bytes)" if declare else ""
    assert msg == (f"mempool {url}: reply too large{size}: over 16 MiB on "
                   "/api/blocks/tip/height")
    assert peak < 48 << 20, f"peak {peak:,} bytes"
    assert sent[0] < 64 << 20  # the server was stopped long before 300 MB


async def test_bitcoind_300_mb_reply_is_cut_at_the_cap(raw, tmp_path: Path) -> None:
    sent = [0]
    url = await raw(streaming(sent, declare=False))
    tracemalloc.start()
    try:
        msg = await fail(BitcoindSource(url, cookie_path=cookie(tmp_path)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    host = url.removeprefix("http://")
    assert msg == f"bitcoind {host}: reply too large: over 16 MiB on getblockchaininfo"
    assert peak < 48 << 20, f"peak {peak:,} bytes"
    assert sent[0] < 64 << 20


async def test_an_error_body_is_cut_not_refused(raw) -> None:
    """A huge error body is not "too large": it is cut, and the status is reported."""
    async def reply(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy "
                     + b"y" * (1 << 20))
        await writer.drain()

    url = await raw(reply)
    msg = await fail(MempoolSource(url, max_bytes=1 << 20))
    assert msg.startswith(f"mempool {url}: HTTP 503 on /api/blocks/tip/height: busy yyyy")


async def test_the_sim_fits_in_a_sixteenth_of_the_cap(clock) -> None:
    """Headroom: both clients' whole first and second polls of the simulator (largest
    replies: a getblockheader batch ~180 kB, the 3-month fee buckets ~80 kB) pass with a
    1 MiB cap, 1/16 of the default."""
    sim = await start_sim(seed=11, clock=clock)
    try:
        for src in (MempoolSource(sim.mempool_url, clock=clock, max_bytes=MAX_REPLY_BYTES // 16),
                    BitcoindSource(sim.rpc_url, cookie_path=sim.cookie_path, clock=clock,
                                   max_bytes=MAX_REPLY_BYTES // 16)):
            try:
                snap = await src.fetch()  # type: ignore[attr-defined]
                assert snap.tip_height == sim.chain.tip_height
                assert src.optional_errors == {}  # type: ignore[attr-defined]
                clock.now = sim.chain.next_arrival + 0.5
                snap = await src.fetch()  # type: ignore[attr-defined]
                assert snap.tip_height == sim.chain.tip_height
            finally:
                await src.aclose()
    finally:
        await sim.stop()


# --------------------------------------------------------------------------- 1. compression

#: What the gzip bomb inflates to: 1 GiB of zeros (about 1 MiB on the wire).
BOMB_MIB = 1024


@functools.cache
def gzip_zeros(mib: int) -> bytes:
    """``mib`` MiB of zeros, gzip-compressed, made by streaming zlib compression one MiB at
    a time.  After a full flush the compressor starts afresh, so every MiB after the first
    compresses to the same bytes: those are repeated, not recomputed (1 GiB in ~0.3 s)."""
    zeros = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # raw deflate
    first = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip, deflate, no name or time
    trailer = struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)
    return header + first + again * (mib - 1) + deflate.flush() + trailer


def test_gzip_zeros_is_a_real_gzip_stream() -> None:
    assert gzip.decompress(gzip_zeros(5)) == bytes(5 << 20)
    assert len(gzip_zeros(BOMB_MIB)) < 2 << 20  # the bomb: ~1,000 times smaller than 1 GiB


def gzip_bomb(status: str) -> RawReply:
    """A reply of ``status`` whose body is :func:`gzip_zeros` (1 GiB), all written at once
    (the client gets whole 64 KiB reads) and with no Content-Length."""

    async def reply(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                     "Content-Encoding: gzip\r\nConnection: close\r\n\r\n".encode()
                     + gzip_zeros(BOMB_MIB))
        await writer.drain()

    return reply


async def peak_memory_of_failure(src: HttpSource) -> tuple[str, int]:
    """``src.fetch()``'s one-line error and the peak memory allocated meanwhile."""
    tracemalloc.start()
    try:
        msg = await fail(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return msg, peak


async def test_mempool_gzip_bomb_is_refused_within_the_cap(raw) -> None:
    """1 GiB of zeros in 1 MiB of gzip: decompression stops at the 16 MiB cap (a 64 KiB
    chunk of it, inflated at once, would be 64 MiB)."""
    url = await raw(gzip_bomb("200 OK"))
    gzip_zeros(BOMB_MIB)  # made before measuring
    msg, peak = await peak_memory_of_failure(MempoolSource(url))
    assert msg == f"mempool {url}: reply too large: over 16 MiB on /api/blocks/tip/height"
    assert peak < MAX_REPLY_BYTES + (12 << 20), f"peak {peak:,} bytes"  # was ~140 MiB


async def test_mempool_gzip_bomb_in_an_error_reply_is_cut(raw) -> None:
    """An error body is cut at 64 KiB after decompression, so a bomb costs little."""
    url = await raw(gzip_bomb("503 Service Unavailable"))
    gzip_zeros(BOMB_MIB)
    msg, peak = await peak_memory_of_failure(MempoolSource(url))
    assert msg.startswith(f"mempool {url}: HTTP 503 on /api/blocks/tip/height")
    assert peak < 8 << 20, f"peak {peak:,} bytes"


async def test_power_feed_gzip_bomb_is_refused_within_its_cap(raw) -> None:
    url = await raw(gzip_bomb("200 OK"))
    gzip_zeros(BOMB_MIB)
    msg, peak = await peak_memory_of_failure(PowerFeedSource(feed(f"{url}/p")))
    assert msg == f"power feed {url}/p: reply too large: more than 1,048,576 bytes on /p"
    assert peak < 8 << 20, f"peak {peak:,} bytes"


def raw_deflate(body: bytes) -> bytes:
    """Deflate without the zlib wrapper (what some servers send as "deflate")."""
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(body) + c.flush()


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),
        ("deflate, gzip", lambda body: gzip.compress(zlib.compress(body))),  # applied in order
        ("GZIP", gzip.compress),
        ("identity", lambda body: body),
    ],
    ids=["gzip", "deflate-zlib", "deflate-raw", "deflate-then-gzip", "upper-case", "identity"],
)
async def test_compressed_replies_are_decoded(
    clock, coding: str, encode: Callable[[bytes], bytes]
) -> None:
    """A whole mempool poll of the simulator through a proxy that compresses every reply
    (the 3-month fee buckets, ~80 kB, take two decompression steps), and a power feed
    reply that inflates to just under its 1 MiB cap (16 steps).  The requests ask only for
    what the sources decode, even from a client told to ask for more."""
    sim = await start_sim(seed=11, clock=clock)
    api = sim.mempool_server.handler
    seen: list[str] = []

    def compressing(r: Request) -> Response:
        seen.append(r.headers.get("accept-encoding", ""))
        if r.path == "/p":
            doc = {"data": [{"price": 42.1, "pad": "x" * 1_000_000}]}
            resp = Response.json(doc)
        else:
            resp = api(r)  # type: ignore[assignment]
        return Response(resp.status, encode(resp.body), resp.content_type,
                        {**resp.headers, "Content-Encoding": coding})

    proxy = HttpServer(compressing, name="compressing proxy")
    await proxy.start()
    try:
        async with httpx.AsyncClient(headers={"Accept-Encoding": "gzip, deflate, br, zstd"}) \
                as client:
            src = MempoolSource(proxy.url, clock=clock, client=client)
            snap = await src.fetch()
            assert snap.tip_height == sim.chain.tip_height
            assert src.optional_errors == {}
            power = await PowerFeedSource(feed(f"{proxy.url}/p"), client=client).fetch()
            assert power.usd_kwh == pytest.approx(0.0421)
    finally:
        await proxy.stop()
        await sim.stop()
    assert len(seen) > 3 and set(seen) == {"gzip, deflate"}


async def test_a_corrupt_gzip_reply_is_a_decoding_error(serve) -> None:
    url = await serve(lambda r: Response(200, b"840000", "text/plain",
                                         {"Content-Encoding": "gzip"}))
    msg = await fail(MempoolSource(url))
    assert msg == (f"mempool {url}: request failed: DecodingError (Error -3 while "
                   "decompressing data: incorrect header check)")


def gzipped(body: bytes, times: int) -> Response:
    for _ in range(times):
        body = gzip.compress(body)
    return Response(200, body, "text/plain", {"Content-Encoding": ", ".join(["gzip"] * times)})


async def test_at_most_four_stacked_codings(serve) -> None:
    """Each stacked coding costs a decompressor: four are undone, five refused."""
    doc = b'{"data": [{"price": 42.1}]}'
    url = await serve(lambda r: gzipped(doc, 4))
    src = PowerFeedSource(feed(f"{url}/p"))
    try:
        assert (await src.fetch()).usd_kwh == pytest.approx(0.0421)
    finally:
        await src.aclose()
    url = await serve(lambda r: gzipped(doc, 5))
    msg = await fail(PowerFeedSource(feed(f"{url}/p")))
    assert msg == (f"power feed {url}/p: request failed: DecodingError (more than 4 content "
                   "codings)")


# --------------------------------------------------------------------------- 1. deadlines


async def test_mempool_trickle_ends_at_the_deadline(raw) -> None:
    """One byte every 5 s never trips the 10 s read timeout; the deadline stops it."""
    url = await raw(trickling(5.0))
    t0 = time.monotonic()
    msg = await fail(MempoolSource(url, deadline_s=1.0), within_s=8.0)
    elapsed = time.monotonic() - t0
    assert msg == (f"mempool {url}: timed out: no complete reply on /api/blocks/tip/height "
                   "within 1 s")
    assert 0.9 <= elapsed < 10.0  # a loaded runner may be slow to wake


async def test_bitcoind_trickle_ends_at_the_deadline(raw, tmp_path: Path) -> None:
    url = await raw(trickling(5.0))
    t0 = time.monotonic()
    msg = await fail(BitcoindSource(url, cookie_path=cookie(tmp_path), deadline_s=1.0),
                     within_s=8.0)
    elapsed = time.monotonic() - t0
    host = url.removeprefix("http://")
    assert msg == f"bitcoind {host}: timed out: no complete reply on getblockchaininfo within 1 s"
    assert 0.9 <= elapsed < 10.0  # a loaded runner may be slow to wake


# --------------------------------------------------------------------------- 1. tip digits


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("1" * 5000, "'11111111111111111111…' (5,000 digits)"),
        ("99999999999", "'99999999999' (11 digits)"),
    ],
    ids=["5000-digits", "11-digits"],
)
async def test_mempool_tip_height_with_too_many_digits(serve, body: str, shown: str) -> None:
    url = await serve(lambda r: Response.text(body))
    msg = await fail(MempoolSource(url))
    assert msg == f"mempool {url}: unexpected reply on /api/blocks/tip/height: not a block " \
                  f"height: {shown}"


# --------------------------------------------------------------------------- 2. bits


def mempool_block(h: int, bits: object) -> dict[str, Any]:
    return {"id": f"{h:064x}", "height": h, "timestamp": 1_769_000_000 - (100 - h) * 600,
            "bits": bits, "difficulty": 1.0, "previousblockhash": f"{h - 1:064x}"}


@pytest.mark.parametrize(
    ("bits", "shown"),
    [
        (2**40, "1099511627776"),
        (-1, "-1"),
        (2**32, "4294967296"),
        (10**30, "a 31-digit number"),
    ],
)
async def test_mempool_bits_must_be_a_uint32(serve, bits: int, shown: str) -> None:
    def handler(r: Request) -> Response:
        if r.path == "/api/blocks/tip/height":
            return Response.text("100")
        return Response.json([mempool_block(h, bits if h == 97 else 0x1D00FFFF)
                              for h in range(100, 85, -1)])

    url = await serve(handler)
    msg = await fail(MempoolSource(url))
    assert msg == (f"mempool {url}: unexpected reply on /api/v1/blocks: 'bits' is not an "
                   f"unsigned 32-bit value ({shown})")


async def test_mempool_bits_limits_are_accepted(serve) -> None:
    """0 and 0xFFFFFFFF are in range (the parser checks the type's range, nothing more)."""
    from tui.sources.mempool import parse_block

    assert parse_block(mempool_block(5, 0)).block.bits == 0
    assert parse_block(mempool_block(5, 0xFFFFFFFF)).block.bits == 0xFFFFFFFF


@pytest.mark.parametrize(
    ("bits", "why"),
    [
        ("-1d00ffff", "'bits' is not hex ('-1d00ffff')"),
        ("+1d00ffff", "'bits' is not hex ('+1d00ffff')"),
        ("0x1d00ffff", "'bits' is not hex ('0x1d00ffff')"),
        (" 1d00ffff", "'bits' is not hex (' 1d00ffff')"),
        ("1d_00fff", "'bits' is not hex ('1d_00fff')"),
        ("", "'bits' is not hex ('')"),
        ("ff1d00ffff", "'bits' is not an unsigned 32-bit value ('ff1d00ffff': 10 hex digits)"),
        ("01d00ffff", "'bits' is not an unsigned 32-bit value ('01d00ffff': 9 hex digits)"),
    ],
)
async def test_bitcoind_bits_must_be_8_hex_digits(clock, bits: str, why: str) -> None:
    """The simulator's node, with every getblockheader reply's bits replaced."""
    sim = await start_sim(seed=11, clock=clock)

    def tamper(r: Request) -> Response:
        resp = sim.rpc_api(r)
        doc = json.loads(resp.body) if resp.body else None
        if isinstance(doc, list):
            for item in doc:
                res = item.get("result")
                if isinstance(res, dict) and "bits" in res:
                    res["bits"] = bits
            return Response.json(doc)
        return resp

    proxy = HttpServer(tamper, name="tampering node")
    await proxy.start()
    try:
        msg = await fail(BitcoindSource(proxy.url, cookie_path=sim.cookie_path, clock=clock))
    finally:
        await proxy.stop()
        await sim.stop()
    host = proxy.url.removeprefix("http://")
    assert msg == f"bitcoind {host}: unexpected reply on getblockheader batch: {why}"


def test_bitcoind_good_bits_parse() -> None:
    from tui.sources.bitcoind import parse_header

    hdr = {"hash": "ab" * 32, "height": 1, "time": 1_700_000_000, "difficulty": 1.0}
    assert parse_header({**hdr, "bits": "1d00ffff"}).bits == 0x1D00FFFF
    assert parse_header({**hdr, "bits": "FFFFFFFF"}).bits == 0xFFFFFFFF
    assert parse_header({**hdr, "bits": "0"}).bits == 0


# --------------------------------------------------------------------------- 3. secrets


def feed(url: str, **kw: Any) -> PowerFeedConfig:
    return PowerFeedConfig(url, parse_path("data.0.price"), "usd_mwh", **kw)


@pytest.mark.parametrize(
    ("query", "echo", "shown"),
    [
        ("apikey=SECRET", "invalid api key GET /p?apikey=SECRET",
         "invalid api key GET /p?***"),  # the value is the whole query string too
        ("apikey=SECRET&v=1", "invalid api key GET /p?apikey=SECRET",
         "invalid api key GET /p?apikey=***"),
        ("apikey=SUPERSECRETQUERY123&v=1", "invalid api key GET /p?apikey=SUPERSECRETQUERY123",
         "invalid api key GET /p?apikey=***"),
        ("apikey=SUPERSECRETQUERY123&v=1", "bad request: apikey=SUPERSECRETQUERY123&v=1",
         "bad request: ***"),  # the whole query string
        ("k=a%2Fb%3Dc%20d", "key 'a/b=c d' refused", "key '***' refused"),  # decoded
        ("k=a%2Fb%3Dc%20d", "key a%2Fb%3Dc%20d refused", "key *** refused"),  # raw
        ("v=1", "v=1 is fine", "v=1 is fine"),  # under 4 characters: left alone
    ],
)
async def test_power_feed_key_echoed_in_a_401_body_is_scrubbed(
    serve, query: str, echo: str, shown: str
) -> None:
    seen: list[Request] = []

    def handler(r: Request) -> Response:
        seen.append(r)
        return Response.text(echo, 401)

    base = await serve(handler)
    msg = await fail(PowerFeedSource(feed(f"{base}/p?{query}")))
    assert msg == f"power feed {base}/p?…: HTTP 401 on /p: {shown}"
    assert seen[0].target == f"/p?{query}"  # the key itself was sent


async def test_power_feed_token_and_url_password_echoed_are_scrubbed(serve) -> None:
    def handler(r: Request) -> Response:
        return Response.text(f"denied: {r.headers.get('authorization')} pw=hunter22", 403)

    base = await serve(handler)
    host = base.removeprefix("http://")
    src = PowerFeedSource(feed(f"{base}/p", token_env="TOK"), environ={"TOK": "TOKEN-0123456"})
    msg = await fail(src)
    assert msg == f"power feed {base}/p: HTTP 403 on /p: denied: Bearer *** pw=hunter22"
    # credentials in the URL: httpx sends them as Basic auth; the echoed token is scrubbed too
    msg = await fail(PowerFeedSource(feed(f"http://me:hunter22@{host}/p")))
    assert msg == f"power feed {base}/p: HTTP 403 on /p: denied: Basic *** pw=***"


async def test_power_feed_secret_in_a_malformed_reply_is_scrubbed(serve) -> None:
    """Any message, not only error bodies: a 200 whose number is the key."""
    base = await serve(lambda r: Response.json({"data": [{"price": "SECRETKEY99"}]}))
    msg = await fail(PowerFeedSource(feed(f"{base}/p?apikey=SECRETKEY99")))
    assert "SECRETKEY99" not in msg
    assert msg == f'power feed {base}/p?…: data.0.price is "***", expected a number'


@pytest.mark.parametrize("kept", [1, 3, 4, 12, 18])
async def test_power_feed_error_body_cut_inside_the_key_shows_none_of_it(
    serve, kept: int
) -> None:
    """The feed keeps 4,096 bytes of an error body.  A server that pads its echo so that
    the cut falls inside the key (``kept`` of its 19 characters before the cut) must not
    get the key's first characters shown: the scrubber only knows whole keys."""
    key = "SUPERSECRETQUERY123"
    body = "refused " + " " * (4096 - len("refused ") - kept) + key + " on /p"
    base = await serve(lambda r: Response.text(body, 401))
    msg = await fail(PowerFeedSource(feed(f"{base}/p?apikey={key}")))
    assert msg == f"power feed {base}/p?…: HTTP 401 on /p: refused"


@pytest.mark.parametrize("kept", [1, 5, 14])
async def test_mempool_error_body_cut_inside_the_password_shows_none_of_it(
    serve, kept: int
) -> None:
    """The same at the 64 KiB cut of every other source's error body (and after gzip)."""
    password = "s3cr3tpass-0123"
    text = "denied " + " " * ((64 << 10) - len("denied ") - kept) + password + " (user me)"
    base = await serve(lambda r: Response(500, gzip.compress(text.encode()), "text/plain",
                                          {"Content-Encoding": "gzip"}))
    host = base.removeprefix("http://")
    msg = await fail(MempoolSource(f"http://me:{password}@{host}"))
    assert msg == f"mempool {base}: HTTP 500 on /api/blocks/tip/height: denied"


async def test_mempool_url_password_echoed_is_scrubbed(serve) -> None:
    base = await serve(lambda r: Response.text("user me with password s3cr3tpass denied", 500))
    host = base.removeprefix("http://")
    msg = await fail(MempoolSource(f"http://me:s3cr3tpass@{host}"))
    assert msg == (f"mempool {base}: HTTP 500 on /api/blocks/tip/height: user me with "
                   "password *** denied")


async def test_bitcoind_password_and_cookie_echoed_are_scrubbed(serve, tmp_path: Path) -> None:
    def handler(r: Request) -> Response:
        return Response.text(f"nope {r.headers.get('authorization')} rpcpassword=pa55word "
                             "cookie=cookiesecret0123456789", 502)

    base = await serve(handler)
    host = base.removeprefix("http://")
    msg = await fail(BitcoindSource(base, user="me", password="pa55word"))
    assert "pa55word" not in msg
    assert msg == (f"bitcoind {host}: HTTP 502 on getblockchaininfo: nope Basic *** "
                   "rpcpassword=*** cookie=cookiesecret0123456789")  # not this source's

    def rpc_error(r: Request) -> Response:
        return Response.json({"result": None, "id": 1, "error": {
            "code": -1, "message": "cookie cookiesecret0123456789 is stale"}}, 500)

    base = await serve(rpc_error)
    host = base.removeprefix("http://")
    msg = await fail(BitcoindSource(base, cookie_path=cookie(tmp_path)))
    assert msg == f"bitcoind {host}: getblockchaininfo failed: cookie *** is stale (code -1)"


async def test_mempool_optional_errors_are_scrubbed(clock) -> None:
    """An optional part's failure (kept in ``optional_errors``, shown in the UI) is scrubbed
    too: the simulator behind a proxy whose fee endpoint echoes the URL's password."""
    sim = await start_sim(seed=11, clock=clock)
    api = sim.mempool_server.handler

    def proxy_handler(r: Request) -> Response:
        if r.path.startswith("/api/v1/mining/blocks/fees/"):
            return Response.text(f"{r.headers.get('authorization')} with s3cr3tpass: no", 500)
        return api(r)  # type: ignore[return-value]

    proxy = HttpServer(proxy_handler, name="proxy")
    await proxy.start()
    host = proxy.url.removeprefix("http://")
    src = MempoolSource(f"http://me:s3cr3tpass@{host}", clock=clock)
    try:
        snap = await src.fetch()
    finally:
        await src.aclose()
        await proxy.stop()
        await sim.stop()
    assert snap.tip_height == sim.chain.tip_height
    assert src.optional_errors == {"fees": f"mempool {proxy.url}: HTTP 500 on "
                                           "/api/v1/mining/blocks/fees/3m: Basic *** with ***: no"}


def test_url_secrets_and_scrub() -> None:
    # "pw" is too short to scrub, but the Basic token it makes ("u:pw") is not
    assert url_secrets("https://u:pw@h/p") == {basic_token("u", "pw")} == {"dTpwdw=="}
    assert url_secrets("https://u:long%20pass@h/p?a=1&key=abcd&e=&f") == {
        "long%20pass", "long pass", basic_token("u", "long pass"), "a=1&key=abcd&e=&f", "abcd"}
    assert scrub("key abcd and abcdef", {"abcd", "abcdef"}) == "key *** and ***"
    assert scrub("a b", {"a", ""}) == "a b"


async def test_prometheus_token_echoed_by_a_proxy_is_scrubbed(serve) -> None:  # type: ignore[no-untyped-def]
    """A proxy in front of Prometheus that repeats the request's Authorization header in
    its error reply: the fleet view's message (and log) shows *** instead of the token."""
    from tui.sources.prometheus import PrometheusSource

    token = "promtoken-SECRET-123"

    def handler(r: Request) -> Response:
        return Response.text(f"bad gateway: upstream refused Authorization: "
                             f"{r.headers.get('authorization')}", 502)

    base = await serve(handler)
    msg = await fail(PrometheusSource(base, token=token))
    assert token not in msg and "Bearer ***" in msg and "HTTP 502" in msg, msg


def test_drop_split_secret() -> None:
    from tui.sources.base import drop_split_secret

    assert drop_split_secret(b"key SEC", {"SECRET"}) == b"key "
    assert drop_split_secret(b"key S", {"SECRET", "other"}) == b"key "
    assert drop_split_secret(b"key SECRET", {"SECRET"}) == b"key SECRET"  # whole: scrubbed
    assert drop_split_secret(b"abABAB", {"ABABC"}) == b"ab"  # the longest start that fits
    assert drop_split_secret(b"ab AB", {"ABC"}) == b"ab AB"  # too short to be a secret
    assert drop_split_secret("id café-".encode(), {"café-key"}) == b"id "
    assert drop_split_secret(b"id caf\xc3", {"café-key"}) == b"id "  # cut inside a character
    assert drop_split_secret(b"", {"SECRET"}) == b""


def test_a_token_given_as_the_url_user_is_a_secret() -> None:
    from tui.sources.base import basic_token, url_secrets

    found = url_secrets("https://tok3n-abcdef@prom.example:9090/")
    assert {"tok3n-abcdef", basic_token("tok3n-abcdef", "")} <= found
    assert url_secrets("https://ab@h/") == set()  # too short to scrub safely


# --------------------------------------------------------------------------- Prometheus


async def test_prometheus_huge_reply_is_cut_at_its_cap(raw) -> None:
    """The fleet view's Prometheus queries are capped too (MAX_QUERY_BYTES; 1 MiB here):
    a huge or never-ending reply is a one-line error, not all of it in memory."""
    from tui.sources.prometheus import MAX_QUERY_BYTES, PrometheusSource

    assert MAX_QUERY_BYTES == 128 << 20
    sent = [0]
    url = await raw(streaming(sent, declare=False))
    src = PrometheusSource(url)
    src.max_bytes = 1 << 20
    msg = await fail(src)
    assert msg.startswith(f"prometheus {url}: reply too large: "
                          "over 1 MiB on /api/v1/query"), msg
    assert sent[0] < 64 << 20


async def test_prometheus_trickle_ends_at_the_deadline(raw) -> None:
    from tui.sources.prometheus import PrometheusSource

    url = await raw(trickling(5.0))
    src = PrometheusSource(url)
    src.deadline_s = 1.0
    msg = await fail(src, within_s=8.0)
    assert "timed out: no complete reply on /api/v1/query" in msg, msg


# --------------------------------------------------------------------------- Bitaxe (AxeOS)


def _port(url: str) -> int:
    return int(url.rpartition(":")[2])


async def test_bitaxe_gzip_bomb_is_refused_within_its_cap(raw) -> None:
    """A rig's AxeOS reply is capped at 256 KiB after decompression, in bounded steps: a
    gzip bomb is "body too large" without inflating it (httpx would inflate each 64 KiB
    read whole: 64 MiB)."""
    from tui.sources.bitaxe import read_bitaxe
    from tui.sources.cgminer import RigError

    url = await raw(gzip_bomb("200 OK"))
    gzip_zeros(BOMB_MIB)
    tracemalloc.start()
    try:
        with pytest.raises(RigError, match=r"^bad reply: body too large$"):
            await read_bitaxe("127.0.0.1", _port(url), timeout=10.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"peak {peak:,} bytes"


async def test_bitaxe_huge_plain_reply_stops_at_the_cap(raw) -> None:
    from tui.sources.bitaxe import read_bitaxe
    from tui.sources.cgminer import RigError

    sent = [0]
    url = await raw(streaming(sent, declare=False))
    with pytest.raises(RigError, match=r"^bad reply: body too large$"):
        await read_bitaxe("127.0.0.1", _port(url), timeout=10.0)
    assert sent[0] < 64 << 20


async def test_bitaxe_corrupt_gzip_is_a_bad_reply(serve) -> None:
    from tui.sources.bitaxe import read_bitaxe
    from tui.sources.cgminer import RigError

    url = await serve(lambda req: Response(200, b"\x1f\x8b\x08\x00 not gzip at all",
                                           headers={"Content-Encoding": "gzip"}))
    with pytest.raises(RigError, match=r"^bad reply: cannot decode") as ei:
        await read_bitaxe("127.0.0.1", _port(url), timeout=5.0)
    assert ei.value.kind == "reply"


async def test_bitaxe_gzip_reply_is_read(serve) -> None:
    from tui.sources.bitaxe import read_bitaxe

    info = {"hashRate": 1200.5, "power": 17.2, "ASICModel": "BM1370", "temp": 55}
    body = gzip.compress(json.dumps(info).encode())
    url = await serve(lambda req: Response(200, body, "application/json",
                                           headers={"Content-Encoding": "gzip"}))
    r = await read_bitaxe("127.0.0.1", _port(url), timeout=5.0)
    assert r.hashrate_ths == pytest.approx(1.2005)
    assert r.power_w == pytest.approx(17.2)
