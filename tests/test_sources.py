"""Data sources against recorded-shape replies served by httpx.MockTransport (no network).

The fake servers build every block from the recorded fixtures in ``tests/fixtures`` (a real
``/api/v1/blocks`` entry, a real ``getblockheader`` reply), changing only height, hash,
time and fees, so the parsers see the real field set.  Every request is logged, so the
tests pin down how many requests a poll costs.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import email.utils
import hashlib
import json
import random
import re
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tui.model import FEE_WINDOW, Block, ChainSnapshot, required_heights
from tui.sources.base import (
    DEFAULT_TIMEOUT,
    MAX_RETRY_AFTER,
    RateLimited,
    SourceError,
    host_label,
    parse_retry_after,
)
from tui.sources.bitcoind import ADJUSTMENT_EPOCHS, STATS_CHUNK, BitcoindSource
from tui.sources.mempool import MempoolSource
from tui.sources.poll import Backoff
from tui.sources.price import FixedPrice, MempoolPrice

FIX = Path(__file__).parent / "fixtures"
MEMPOOL = "https://mempool.space"
RPC = "http://127.0.0.1:8332"
TIP = 935_008  # 1600 blocks into the epoch starting at 933,408
BITS = 0x1701EBF2
T0 = 1_768_990_000 - 600 * TIP  # block h is mined around T0 + 600 h


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text(encoding="utf-8"))


BLOCK_TEMPLATE = load("mempool/blocks_page.json")[0]
NO_EXTRAS_TEMPLATE = load("mempool/blocks_page_no_extras.json")[0]
HEADER_TEMPLATE = load("bitcoind/getblockheader.json")["result"]
INFO_TEMPLATE = load("bitcoind/getblockchaininfo.json")["result"]
DIFFICULTY = BLOCK_TEMPLATE["difficulty"]


# =========================================================================== a fake chain


class Chain:
    """A deterministic chain.  ``fork(h, tag)`` replaces every block from height h up."""

    def __init__(self, tip: int = TIP) -> None:
        self.tip = tip
        self.tags: dict[int, str] = {}

    def tag(self, h: int) -> str:
        return self.tags.get(h, "main")

    def hash(self, h: int) -> str:
        # the height is readable in the hash so that the fake node finds blocks fast
        digest = hashlib.sha256(f"{self.tag(h)}:{h}".encode()).hexdigest()
        return "0" * 16 + f"{h & 0xFFFFFFFF:08x}" + digest[24:]

    def time(self, h: int) -> int:
        wobble = (h * 7919) % 1200 - 500  # not monotonic, like real header times
        return T0 + 600 * h + wobble + (31 if self.tag(h) != "main" else 0)

    def fees(self, h: int) -> int:
        return 1_500_000 + (h * 104_729) % 4_000_000 + (777 if self.tag(h) != "main" else 0)

    def block(self, h: int) -> Block:
        return Block(height=h, time=self.time(h), bits=BITS, difficulty=DIFFICULTY,
                     fees_sat=self.fees(h))

    def fork(self, from_height: int, tag: str) -> None:
        for h in range(from_height, self.tip + 1):
            self.tags[h] = tag

    def extend(self, n: int = 1) -> None:
        self.tip += n


def counts_by_route(paths: list[str]) -> Counter[str]:
    return Counter(re.sub(r"/\d+$", "/:height", p) for p in paths)


# =========================================================================== fake mempool


Override = Callable[[httpx.Request], httpx.Response] | httpx.Response


class FakeMempool:
    """Routes like mempool's backend: tip height, /v1/blocks[/:h], hashrate, prices."""

    def __init__(self, chain: Chain | None = None, *, extras: bool = True) -> None:
        self.chain = chain or Chain()
        self.extras = extras
        self.paths: list[str] = []
        self.override: dict[str, Override] = {}
        self.hashrate_status = 200
        self.prices: Any = load("mempool/prices.json")

    def block_json(self, h: int) -> dict[str, Any]:
        c = self.chain
        if self.extras:
            b = copy.deepcopy(BLOCK_TEMPLATE)
            b["extras"]["totalFees"] = c.fees(h)
            b["extras"]["reward"] = 312_500_000 + c.fees(h)
        else:
            b = copy.deepcopy(NO_EXTRAS_TEMPLATE)
        b.update(id=c.hash(h), height=h, timestamp=c.time(h), mediantime=c.time(h) - 3000,
                 previousblockhash=c.hash(h - 1) if h > 0 else None)
        return b

    def page(self, top: int) -> list[dict[str, Any]]:
        top = min(top, self.chain.tip)  # mempool clamps a height above its tip
        return [self.block_json(h) for h in range(top, max(-1, top - 15), -1)]

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        if path in self.override:
            o = self.override[path]
            return o(request) if callable(o) else o
        if path == "/api/blocks/tip/height":
            return httpx.Response(200, text=str(self.chain.tip),
                                  headers={"Content-Type": "text/plain"})
        if path == "/api/v1/blocks":
            return httpx.Response(200, json=self.page(self.chain.tip))
        m = re.fullmatch(r"/api/v1/blocks/(\d+)", path)
        if m:
            return httpx.Response(200, json=self.page(int(m.group(1))))
        if path == "/api/v1/mining/hashrate/3m":
            if self.hashrate_status == 404:
                return httpx.Response(404, text=f"Cannot GET {path}")
            if self.hashrate_status != 200:
                return httpx.Response(self.hashrate_status, text="Database error")
            return httpx.Response(200, json=load("mempool/hashrate_3m.json"))
        if path == "/api/v1/prices":
            return httpx.Response(200, json=self.prices)
        return httpx.Response(404, text=f"Cannot GET {path}")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler),
                                 timeout=DEFAULT_TIMEOUT)

    def reset(self) -> None:
        self.paths.clear()


@pytest.fixture
def mp() -> FakeMempool:
    return FakeMempool()


def mempool_source(server: FakeMempool, clock: Callable[[], float]) -> MempoolSource:
    return MempoolSource(MEMPOOL, client=server.client(), clock=clock)


def assert_complete(snap: ChainSnapshot, chain: Chain, *, fees: bool = True) -> None:
    assert snap.tip_height == chain.tip
    assert [b.height for b in snap.blocks] == required_heights(chain.tip)
    for b in snap.blocks:
        expect = chain.block(b.height)
        assert b.time == expect.time
        assert b.bits == BITS
        assert b.difficulty == DIFFICULTY
        assert b.fees_sat == (expect.fees_sat if fees else None)


# =========================================================================== mempool: caching


async def test_mempool_first_fetch_fills_required_heights(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)
    snap = await src.fetch()
    assert_complete(snap, mp.chain)
    assert snap.source == "mempool mempool.space" == src.label
    assert snap.fetched_at == clock.now
    assert isinstance(snap.tip.bits, int) and snap.tip.bits == 386_001_906
    # history: the last 90 daily points of the 92 recorded, oldest first, in H/s
    hashrates = load("mempool/hashrate_3m.json")["hashrates"]
    assert len(snap.history) == 90
    assert [p.time for p in snap.history] == [p["timestamp"] for p in hashrates[-90:]]
    assert snap.history[-1].hashrate == hashrates[-1]["avgHashrate"]
    # 1 tip + 1 newest page + 13 height pages + 1 hashrate history, and the optional squeeze
    # endpoints this fake does not serve (404): fee history, adjustments, block at a time
    routes = counts_by_route(mp.paths)
    assert routes == {"/api/blocks/tip/height": 1, "/api/v1/blocks": 1,
                      "/api/v1/blocks/:height": 13, "/api/v1/mining/hashrate/3m": 1,
                      "/api/v1/mining/blocks/fees/3m": 1,
                      "/api/v1/mining/difficulty-adjustments": 1,
                      "/api/v1/mining/blocks/timestamp/:height": 1}
    assert len(mp.paths) == 19
    # only required heights are kept
    assert src.cached_heights == required_heights(TIP)
    await src.aclose()


async def test_mempool_unchanged_tip_costs_one_request(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)
    first = await src.fetch()
    for _ in range(3):
        mp.reset()
        clock.advance(30)
        snap = await src.fetch()
        assert mp.paths == ["/api/blocks/tip/height"]
        assert snap.blocks == first.blocks
        assert snap.fetched_at == clock.now


async def test_mempool_new_block_fetches_only_what_changed(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)
    await src.fetch()
    mp.chain.extend(1)
    mp.reset()
    clock.advance(600)
    snap = await src.fetch()
    assert_complete(snap, mp.chain)
    # tip + newest page + one page for each window edge that moved (432, 503, 1008 back)
    assert mp.paths[:2] == ["/api/blocks/tip/height", "/api/v1/blocks"]
    assert sorted(mp.paths[2:]) == sorted(
        f"/api/v1/blocks/{h}" for h in (TIP + 1 - 422, TIP + 1 - 503, TIP + 1 - 998)
    )
    assert len(mp.paths) == 5
    assert src.cached_heights == required_heights(TIP + 1)


async def test_mempool_several_new_blocks_and_epoch_boundary(clock) -> None:
    chain = Chain(tip=2016 * 464 - 3)  # three blocks before a retarget
    mp = FakeMempool(chain)
    src = mempool_source(mp, clock)
    await src.fetch()
    chain.extend(5)  # crosses the retarget: the epoch start is now within the last 144
    snap = await src.fetch()
    assert_complete(snap, chain)
    assert snap.block(2016 * 464) is not None and snap.block(2016 * 464 - 1) is not None


async def test_mempool_history_refreshed_at_most_hourly(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)
    await src.fetch()
    clock.advance(3599)
    await src.fetch()
    clock.advance(1)
    await src.fetch()
    assert counts_by_route(mp.paths)["/api/v1/mining/hashrate/3m"] == 2


async def test_mempool_short_reorg_overwrites_recent_blocks(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)
    await src.fetch()
    mp.chain.fork(TIP - 2, "alt")  # the last 3 blocks replaced ...
    mp.chain.extend(1)  # ... by a longer branch
    mp.reset()
    snap = await src.fetch()
    assert_complete(snap, mp.chain)
    assert snap.block(TIP - 2).time == mp.chain.time(TIP - 2)  # the alt branch's header
    assert len(mp.paths) == 5  # no full refetch


async def test_mempool_reorg_then_many_blocks(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)
    await src.fetch()
    mp.chain.fork(TIP - 1, "alt")
    mp.chain.extend(20)  # the newest page no longer reaches the old tip
    snap = await src.fetch()
    assert_complete(snap, mp.chain)


async def test_mempool_deep_reorg_drops_the_cache(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)
    await src.fetch()
    mp.chain.fork(TIP - 40, "alt")  # deeper than the 15-block page
    mp.chain.extend(1)
    mp.reset()
    snap = await src.fetch()
    assert_complete(snap, mp.chain)
    assert counts_by_route(mp.paths)["/api/v1/blocks/:height"] == 13  # everything again


async def test_mempool_same_height_is_served_from_cache(mp: FakeMempool, clock) -> None:
    # A documented limitation: a reorg that keeps the tip height is seen with the next block.
    src = mempool_source(mp, clock)
    await src.fetch()
    mp.chain.fork(TIP, "alt")
    mp.reset()
    await src.fetch()
    assert mp.paths == ["/api/blocks/tip/height"]


async def test_mempool_tip_moving_between_requests_uses_the_page(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)

    def tip_then_block(request: httpx.Request) -> httpx.Response:
        # the tip is read, then a block arrives before /api/v1/blocks is served
        reply = httpx.Response(200, text=str(mp.chain.tip))
        mp.chain.extend(1)
        del mp.override["/api/blocks/tip/height"]
        return reply

    mp.override["/api/blocks/tip/height"] = tip_then_block
    snap = await src.fetch()
    assert_complete(snap, mp.chain)
    mp.reset()
    await src.fetch()
    assert mp.paths == ["/api/blocks/tip/height"]


async def test_mempool_short_chain_near_genesis(clock) -> None:
    chain = Chain(tip=20)
    mp = FakeMempool(chain)
    snap = await mempool_source(mp, clock).fetch()
    assert [b.height for b in snap.blocks] == list(range(21))
    assert_complete(snap, chain)


async def test_mempool_without_extras_gives_fees_none(clock) -> None:
    mp = FakeMempool(extras=False)
    snap = await mempool_source(mp, clock).fetch()
    assert_complete(snap, mp.chain, fees=False)


async def test_mempool_history_404_is_optional_and_retried_hourly(mp: FakeMempool, clock) -> None:
    mp.hashrate_status = 404
    src = mempool_source(mp, clock)
    snap = await src.fetch()
    assert snap.history == ()
    assert_complete(snap, mp.chain)
    clock.advance(1800)
    await src.fetch()
    assert counts_by_route(mp.paths)["/api/v1/mining/hashrate/3m"] == 1
    mp.hashrate_status = 200
    clock.advance(1800)
    snap = await src.fetch()
    assert len(snap.history) == 90


async def test_mempool_history_failure_keeps_chain_fresh_and_retries(
    mp: FakeMempool, clock
) -> None:
    # A broken mining endpoint must not make the chain panes stale: the blocks come through,
    # the last history is kept, and the history is retried after 5 minutes (not every poll).
    src = mempool_source(mp, clock)
    first = await src.fetch()
    assert len(first.history) == 90
    clock.advance(3600)
    mp.hashrate_status = 500
    mp.reset()
    snap = await src.fetch()
    assert_complete(snap, mp.chain)
    assert snap.history == first.history
    assert counts_by_route(mp.paths)["/api/v1/mining/hashrate/3m"] == 1
    clock.advance(60)
    mp.reset()
    await src.fetch()
    assert mp.paths == ["/api/blocks/tip/height"]
    clock.advance(300)
    mp.hashrate_status = 200
    mp.reset()
    await src.fetch()
    assert mp.paths == ["/api/blocks/tip/height", "/api/v1/mining/hashrate/3m"]


async def test_mempool_history_rate_limit_propagates(mp: FakeMempool, clock) -> None:
    mp.hashrate_status = 429
    src = mempool_source(mp, clock)
    with pytest.raises(RateLimited):
        await src.fetch()


async def test_mempool_partial_failure_resumes(mp: FakeMempool, clock) -> None:
    src = mempool_source(mp, clock)
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, text="<html>busy</html>")

    page = f"/api/v1/blocks/{TIP - 45}"
    mp.override[page] = flaky
    with pytest.raises(SourceError, match=rf"HTTP 503 on {page}$"):
        await src.fetch()
    del mp.override[page]
    mp.reset()
    snap = await src.fetch()
    assert_complete(snap, mp.chain)
    # the two pages fetched before the failure are not asked again
    assert counts_by_route(mp.paths)["/api/v1/blocks/:height"] == 13 - 2


# =========================================================================== mempool: errors


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and text.strip() == text and text
    return text


async def _fail(mp: FakeMempool, clock, path: str, reply: Override) -> SourceError:
    mp.override[path] = reply
    src = mempool_source(mp, clock)
    with pytest.raises(SourceError) as ei:
        await src.fetch()
    _one_line(ei.value)
    return ei.value


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), (None, None), ("soon", None)],
)
async def test_mempool_429_is_rate_limited(mp: FakeMempool, clock, header, expected) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    err = await _fail(mp, clock, "/api/blocks/tip/height",
                      httpx.Response(429, headers=headers, text="Too Many Requests"))
    assert isinstance(err, RateLimited)
    assert err.retry_after == expected
    assert str(err).startswith(
        "mempool https://mempool.space: rate limited (HTTP 429 on /api/blocks/tip/height)")


async def test_mempool_429_with_http_date(mp: FakeMempool, clock) -> None:
    date = email.utils.formatdate(clock.now + 90, usegmt=True)
    err = await _fail(mp, clock, "/api/v1/blocks",
                      httpx.Response(429, headers={"Retry-After": date}))
    assert isinstance(err, RateLimited)
    assert err.retry_after == pytest.approx(90.0)
    assert str(err).endswith("retry after 90 s")


def test_parse_retry_after_forms() -> None:
    now = 1_769_000_000.0
    assert parse_retry_after("0", now) == 0.0
    assert parse_retry_after(" 30 ", now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 50, usegmt=True), now) == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 86400, usegmt=True), now) == (
        MAX_RETRY_AFTER)
    assert parse_retry_after("-5", now) is None
    assert parse_retry_after("", now) is None


async def test_mempool_http_500(mp: FakeMempool, clock) -> None:
    err = await _fail(mp, clock, "/api/v1/blocks",
                      httpx.Response(500, text="Failed to get blocks\n"))
    assert str(err) == "mempool https://mempool.space: HTTP 500 on /api/v1/blocks: " \
        "Failed to get blocks"


async def test_mempool_http_502_html_body_is_not_echoed(mp: FakeMempool, clock) -> None:
    err = await _fail(mp, clock, "/api/blocks/tip/height",
                      httpx.Response(502, text="<html>\n<h1>502 Bad Gateway</h1>\n</html>"))
    assert str(err) == "mempool https://mempool.space: HTTP 502 on /api/blocks/tip/height"


async def test_mempool_malformed_json(mp: FakeMempool, clock) -> None:
    err = await _fail(mp, clock, "/api/v1/blocks", httpx.Response(200, text="<html>oops"))
    assert str(err) == ("mempool https://mempool.space: malformed JSON on /api/v1/blocks "
                        "(Expecting value: line 1 column 1)")


async def test_mempool_truncated_json(mp: FakeMempool, clock) -> None:
    body = json.dumps(mp.page(TIP))
    err = await _fail(mp, clock, "/api/v1/blocks",
                      httpx.Response(200, content=body[: len(body) // 2].encode()))
    assert str(err).startswith("mempool https://mempool.space: malformed JSON on /api/v1/blocks (")


async def test_mempool_empty_body(mp: FakeMempool, clock) -> None:
    err = await _fail(mp, clock, "/api/v1/blocks", httpx.Response(200, content=b""))
    assert str(err).endswith("malformed JSON on /api/v1/blocks (empty reply)")


async def test_mempool_missing_field(mp: FakeMempool, clock) -> None:
    page = mp.page(TIP)
    del page[3]["timestamp"]
    err = await _fail(mp, clock, "/api/v1/blocks", httpx.Response(200, json=page))
    assert str(err) == ("mempool https://mempool.space: unexpected reply on /api/v1/blocks: "
                        "missing 'timestamp'")


@pytest.mark.parametrize(
    ("doc", "detail"),
    [
        ({"blocks": []}, "expected reply to be a list, got an object"),
        ([], "no blocks"),
        ([1, 2], "expected a block to be an object, got a number"),
        ([{"height": "935008"}], "'height' is not an integer (a string)"),
        (None, "expected reply to be a list, got null"),
    ],
)
async def test_mempool_wrong_shapes(mp: FakeMempool, clock, doc, detail) -> None:
    body = json.dumps(doc).encode()  # (json=None would send an empty body)
    err = await _fail(mp, clock, "/api/v1/blocks", httpx.Response(200, content=body))
    prefix = "mempool https://mempool.space: unexpected reply on /api/v1/blocks"
    assert str(err) == f"{prefix}: {detail}"


async def test_mempool_bad_field_types(mp: FakeMempool, clock) -> None:
    page = mp.page(TIP)
    page[0]["difficulty"] = "146T"
    err = await _fail(mp, clock, "/api/v1/blocks", httpx.Response(200, json=page))
    assert str(err).endswith("'difficulty' is not a number (a string)")
    page = mp.page(TIP)
    page[0]["extras"] = "n/a"
    err = await _fail(mp, clock, "/api/v1/blocks", httpx.Response(200, json=page))
    assert str(err).endswith("expected 'extras' to be an object, got a string")


@pytest.mark.parametrize("body", ["<!DOCTYPE html>", "-1", "935008.5", "", "12 34", "\u00b2"])
async def test_mempool_bad_tip_height(mp: FakeMempool, clock, body) -> None:
    err = await _fail(mp, clock, "/api/blocks/tip/height", httpx.Response(200, text=body))
    assert "unexpected reply on /api/blocks/tip/height: not a block height" in str(err)


async def test_mempool_page_without_requested_height(mp: FakeMempool, clock) -> None:
    path = f"/api/v1/blocks/{TIP - 15}"
    err = await _fail(mp, clock, path, httpx.Response(200, json=mp.page(TIP - 30)))
    assert str(err) == (f"mempool https://mempool.space: unexpected reply on {path}: "
                        f"page does not contain block {TIP - 15}")


async def test_mempool_short_pages_still_fill_the_cache(mp: FakeMempool, clock) -> None:
    def short_page(request: httpx.Request) -> httpx.Response:  # 10 blocks a page, one gap
        resp = mp.handler(request)
        if not request.url.path.startswith("/api/v1/blocks/"):
            return resp
        page = json.loads(resp.content)[:10]
        del page[4]
        return httpx.Response(200, json=page)

    client = httpx.AsyncClient(transport=httpx.MockTransport(short_page))
    snap = await MempoolSource(MEMPOOL, client=client, clock=clock).fetch()
    assert_complete(snap, mp.chain)
    assert counts_by_route(mp.paths)["/api/v1/blocks/:height"] > 13


async def test_mempool_read_timeout(mp: FakeMempool, clock) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    err = await _fail(mp, clock, "/api/blocks/tip/height", slow)
    assert str(err) == "mempool https://mempool.space: timed out after 10 s"


async def test_mempool_connect_timeout(mp: FakeMempool, clock) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    err = await _fail(mp, clock, "/api/blocks/tip/height", slow)
    assert str(err) == "mempool https://mempool.space: connection timed out after 5 s"


async def test_mempool_connection_refused(mp: FakeMempool, clock) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    err = await _fail(mp, clock, "/api/blocks/tip/height", refused)
    assert str(err) == "mempool https://mempool.space: connection refused"


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (httpx.RemoteProtocolError("Server disconnected without sending a response."),
         "connection closed mid-reply (Server disconnected without sending a response.)"),
        (httpx.ReadError("[Errno 104] Connection reset by peer"),
         "network error ([Errno 104] Connection reset by peer)"),
        (httpx.ConnectError("[Errno -2] Name or service not known"),
         "cannot resolve host ([Errno -2] Name or service not known)"),
        (httpx.TooManyRedirects("Exceeded maximum allowed redirects."), "too many redirects"),
        (httpx.PoolTimeout("pool"), "timed out waiting for a connection after 10 s"),
        (OSError("boom"), "request failed: OSError (boom)"),
    ],
)
async def test_mempool_transport_errors(mp: FakeMempool, clock, exc, text) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    err = await _fail(mp, clock, "/api/v1/blocks", fail)
    assert str(err) == f"mempool https://mempool.space: {text}"


async def test_mempool_bug_in_reply_handling_is_still_a_source_error(mp: FakeMempool, clock):
    def weird(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("handler exploded")

    err = await _fail(mp, clock, "/api/blocks/tip/height", weird)
    assert str(err) == ("mempool https://mempool.space: internal error: RuntimeError: "
                        "handler exploded")


async def test_mempool_garbage_never_escapes_as_another_type(clock) -> None:
    rng = random.Random(7)
    junk: list[Any] = [None, 0, -1, "x", [], {}, [None], [{}], {"hashrates": None},
                       {"hashrates": [{"timestamp": "x"}]}, [[1]], [{"height": -3}],
                       [{"height": 1e400}], "\u00ff" * 3, [{"extras": None}], True]
    for _ in range(60):
        mp = FakeMempool()
        path = rng.choice(["/api/blocks/tip/height", "/api/v1/blocks",
                           f"/api/v1/blocks/{TIP - 15}", "/api/v1/mining/hashrate/3m"])
        doc = rng.choice(junk)
        body = json.dumps(doc).encode() if rng.random() < 0.8 else bytes([rng.randrange(256)
                                                                           for _ in range(9)])
        mp.override[path] = httpx.Response(200, content=body)
        try:  # a junk tip such as "0" is a valid height: success is fine, a crash is not
            await mempool_source(mp, clock).fetch()
        except SourceError as e:
            _one_line(e)


async def test_mempool_own_client_has_explicit_timeout_and_label() -> None:
    src = MempoolSource("http://127.0.0.1:8999/")
    assert src.label == "mempool 127.0.0.1:8999"
    assert src._client.timeout == DEFAULT_TIMEOUT
    assert src._client.headers["User-Agent"].startswith("minertop/")
    await src.aclose()
    assert src._client.is_closed


async def test_injected_client_is_not_closed(mp: FakeMempool, clock) -> None:
    client = mp.client()
    src = MempoolSource(MEMPOOL, client=client, clock=clock)
    await src.aclose()
    assert not client.is_closed
    await client.aclose()


def test_host_label() -> None:
    assert host_label("https://mempool.space") == "mempool.space"
    assert host_label("http://user:secret@node.lan:8332/") == "node.lan:8332"
    assert host_label("http://[::1]:8999") == "[::1]:8999"


async def test_mempool_base_url_with_path_prefix(clock) -> None:
    mp = FakeMempool()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        request.url = request.url.copy_with(path=request.url.path.removeprefix("/mempool"))
        return mp.handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    src = MempoolSource("https://node.lan/mempool/", client=client, clock=clock)
    await src.fetch()
    assert seen[0] == "/mempool/api/blocks/tip/height"
    assert src.label == "mempool node.lan"


# ----------------------------------------------------------------- real sockets on loopback


async def test_real_connection_refused_on_loopback(clock) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    src = MempoolSource(f"http://127.0.0.1:{port}", clock=clock)
    with pytest.raises(SourceError) as ei:
        await src.fetch()
    assert str(ei.value) == f"mempool http://127.0.0.1:{port}: connection refused"
    await src.aclose()


async def test_real_read_timeout_on_loopback(clock) -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)  # read the request, never answer
        await release.wait()
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    src = MempoolPrice(f"http://127.0.0.1:{port}", clock=clock,
                       timeout=httpx.Timeout(0.2, connect=1.0))
    try:
        with pytest.raises(SourceError) as ei:
            await src.fetch()
        assert str(ei.value) == f"mempool http://127.0.0.1:{port}: timed out after 0.2 s"
    finally:
        release.set()
        await src.aclose()
        server.close()
        await server.wait_closed()


# =========================================================================== fake bitcoind


COOKIE_USER = "__cookie__"


def _cookie_secret(n: int) -> str:
    return hashlib.sha256(f"cookie{n}".encode()).hexdigest()


class FakeNode:
    """Bitcoin Core's JSON-RPC over HTTP as httprpc.cpp serves it (legacy 1.0 requests)."""

    def __init__(self, chain: Chain | None = None, *, secret: str | None = None) -> None:
        self.chain = chain or Chain()
        self.creds = (COOKIE_USER, secret or _cookie_secret(1))
        self.http = 0
        self.calls: Counter[str] = Counter()
        self.batches: list[tuple[str, int]] = []
        self.pruned_below: int | None = None
        self.warmup: str | None = None
        self.forbidden = False
        self.fail: dict[str, dict[str, Any]] = {}  #: method -> error object
        self.raw: httpx.Response | None = None
        self.reverse_batches = True

    def by_hash(self, hx: str) -> int | None:
        try:
            h = int(hx[16:24], 16)
        except ValueError:
            return None
        return h if 0 <= h <= self.chain.tip and self.chain.hash(h) == hx else None

    def header(self, h: int) -> dict[str, Any]:
        c = self.chain
        d = copy.deepcopy(HEADER_TEMPLATE)
        d.update(hash=c.hash(h), height=h, time=c.time(h), mediantime=c.time(h) - 3000,
                 confirmations=c.tip - h + 1, previousblockhash=c.hash(h - 1))
        if h == c.tip:
            d.pop("nextblockhash", None)
        else:
            d["nextblockhash"] = c.hash(h + 1)
        return d

    def one(self, req: Any) -> dict[str, Any]:
        method, params, rid = req["method"], req.get("params", []), req.get("id")
        self.calls[method] += 1

        def ok(result: Any) -> dict[str, Any]:
            return {"result": result, "error": None, "id": rid}

        def err(code: int, message: str) -> dict[str, Any]:
            return {"result": None, "error": {"code": code, "message": message}, "id": rid}

        if self.warmup:
            return err(-28, self.warmup)
        if method in self.fail:
            return {"result": None, "error": self.fail[method], "id": rid}
        c = self.chain
        if method == "getblockchaininfo":
            info = copy.deepcopy(INFO_TEMPLATE)
            info.update(blocks=c.tip, headers=c.tip, bestblockhash=c.hash(c.tip))
            return ok(info)
        if method == "getblockhash":
            h = params[0]
            if not 0 <= h <= c.tip:
                return err(-8, "Block height out of range")
            return ok(c.hash(h))
        if method == "getblockheader":
            h = self.by_hash(params[0])
            return err(-5, "Block not found") if h is None else ok(self.header(h))
        if method == "getblockstats":
            h = params[0]
            # the fee window asks for the fees, the 30-days-ago window for time and subsidy too
            assert params[1] in (["totalfee"], ["totalfee", "subsidy", "time"])
            if self.pruned_below is not None and h < self.pruned_below:
                return err(-1, "Block not available (pruned data)")
            stats = {"totalfee": c.fees(h), "subsidy": 312_500_000, "time": c.time(h)}
            return ok({k: stats[k] for k in params[1]})
        if method == "getnetworkhashps":
            n, h = params
            assert n == 144
            return ok(1.0e21 - 1.0e15 * (c.tip - h))
        return err(-32601, "Method not found")

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.http += 1
        assert request.method == "POST"
        if self.raw is not None:
            return self.raw
        auth = request.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(":".join(self.creds).encode()).decode()
        if auth != expected:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
        if self.forbidden:
            return httpx.Response(403)
        body = json.loads(request.content)
        if isinstance(body, list):
            self.batches.append((body[0]["method"] if body else "", len(body)))
            replies = [self.one(r) for r in body]
            if self.reverse_batches:
                replies.reverse()  # Core answers in order; a proxy need not - match by id
            return httpx.Response(200, json=replies)
        reply = self.one(body)
        status = 200
        if reply["error"] is not None:
            status = 404 if reply["error"]["code"] == -32601 else 500
        return httpx.Response(status, json=reply)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler),
                                 timeout=DEFAULT_TIMEOUT)


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def cookie(tmp_path: Path) -> Path:
    p = tmp_path / ".cookie"
    p.write_text(f"{COOKIE_USER}:{_cookie_secret(1)}")
    return p


def node_source(node: FakeNode, cookie: Path | None, clock, **kw: Any) -> BitcoindSource:
    return BitcoindSource(RPC, cookie_path=cookie, client=node.client(), clock=clock, **kw)


def expected_history_heights(tip: int) -> list[int]:
    return sorted(h for h in (tip - 144 * i for i in range(90)) if h >= 144)


async def test_bitcoind_first_fetch(node: FakeNode, cookie: Path, clock) -> None:
    src = node_source(node, cookie, clock)
    snap = await src.fetch()
    assert_complete_bitcoind(snap, node.chain)
    assert snap.source == "bitcoind 127.0.0.1:8332" == src.label
    assert snap.fetched_at == clock.now
    assert snap.tip.bits == int(HEADER_TEMPLATE["bits"], 16)
    hist = expected_history_heights(TIP)
    assert len(snap.history) == 90
    assert [p.time for p in snap.history] == [node.chain.time(h) for h in hist]
    assert snap.history[-1].hashrate == 1.0e21
    # getblockchaininfo + hash batch + header batch + hashps batch + 6 getblockstats chunks,
    # then the retarget headers (hash + header batch) and the 30-days-ago window's
    # getblockstats (a grid of 17, the search and the 145 blocks: 8 chunks)
    assert node.http == 4 + FEE_WINDOW // STATS_CHUNK + 2 + 8 == 20
    n_req = len(required_heights(TIP))
    extra = len(set(hist) - set(required_heights(TIP)))
    retargets = 2 * (ADJUSTMENT_EPOCHS - 1)
    assert node.calls["getblockhash"] == node.calls["getblockheader"] == (
        n_req + extra + retargets)
    assert FEE_WINDOW + 145 <= node.calls["getblockstats"] <= FEE_WINDOW + 145 + 17 + 24
    assert src.cached_heights == required_heights(TIP)
    await src.aclose()


async def test_bitcoind_blocks_outside_fee_window_have_no_fees(node: FakeNode, cookie, clock):
    snap = await node_source(node, cookie, clock).fetch()
    for b in snap.blocks:
        if b.height > TIP - FEE_WINDOW:
            assert b.fees_sat == node.chain.fees(b.height)
        else:
            assert b.fees_sat is None


async def test_bitcoind_unchanged_tip_costs_one_request(node: FakeNode, cookie, clock) -> None:
    src = node_source(node, cookie, clock)
    first = await src.fetch()
    node.http = 0
    node.calls.clear()
    clock.advance(30)
    snap = await src.fetch()
    assert node.http == 1 and node.calls == {"getblockchaininfo": 1}
    assert snap.blocks == first.blocks and snap.history == first.history


async def test_bitcoind_new_block(node: FakeNode, cookie, clock) -> None:
    src = node_source(node, cookie, clock)
    await src.fetch()
    node.chain.extend(1)
    node.http = 0
    node.calls.clear()
    clock.advance(600)
    snap = await src.fetch()
    assert_complete_bitcoind(snap, node.chain)
    # info + hashes (4 new heights + 6 re-checked) + 4 headers + 1 getblockstats
    assert node.http == 4
    assert node.calls == {"getblockchaininfo": 1, "getblockhash": 10, "getblockheader": 4,
                          "getblockstats": 1}


def assert_complete_bitcoind(snap: ChainSnapshot, chain: Chain) -> None:
    assert snap.tip_height == chain.tip
    assert [b.height for b in snap.blocks] == required_heights(chain.tip)
    for b in snap.blocks:
        assert b.time == chain.time(b.height)
        if b.height > chain.tip - FEE_WINDOW:
            assert b.fees_sat == chain.fees(b.height), b.height
        else:  # older blocks keep the fees learnt while they were recent
            assert b.fees_sat in (None, chain.fees(b.height)), b.height


async def test_bitcoind_history_refresh(node: FakeNode, cookie, clock) -> None:
    src = node_source(node, cookie, clock)
    await src.fetch()
    clock.advance(3600)
    await src.fetch()
    assert node.calls["getnetworkhashps"] == 180
    node.chain.extend(144)
    clock.advance(60)
    snap = await src.fetch()
    assert node.calls["getnetworkhashps"] == 270
    assert [p.time for p in snap.history] == [
        node.chain.time(h) for h in expected_history_heights(node.chain.tip)]


async def test_bitcoind_short_reorg(node: FakeNode, cookie, clock) -> None:
    src = node_source(node, cookie, clock)
    await src.fetch()
    node.chain.fork(TIP - 2, "alt")  # same height, new best hash
    node.calls.clear()
    snap = await src.fetch()
    assert_complete_bitcoind(snap, node.chain)
    assert node.calls["getblockhash"] == 6
    assert node.calls["getblockheader"] == 3
    assert node.calls["getblockstats"] == 3  # fees of replaced blocks are fetched again


async def test_bitcoind_reorg_below_old_tip_while_blocks_arrived(node: FakeNode, cookie, clock):
    src = node_source(node, cookie, clock)
    await src.fetch()
    node.chain.fork(TIP - 1, "alt")  # the old tip and the block below it were replaced ...
    node.chain.extend(8)  # ... and 8 more blocks came on the new branch
    snap = await src.fetch()
    assert_complete_bitcoind(snap, node.chain)


async def test_bitcoind_deep_reorg_starts_over(node: FakeNode, cookie, clock) -> None:
    src = node_source(node, cookie, clock)
    await src.fetch()
    node.chain.fork(TIP - 30, "alt")
    node.chain.extend(1)
    node.calls.clear()
    snap = await src.fetch()
    assert_complete_bitcoind(snap, node.chain)
    assert node.calls["getblockheader"] == len(required_heights(TIP + 1))


async def test_bitcoind_batch_order_does_not_matter(node: FakeNode, cookie, clock) -> None:
    node.reverse_batches = False
    in_order = await node_source(node, cookie, clock).fetch()
    node.reverse_batches = True
    shuffled = await node_source(node, cookie, clock).fetch()
    assert in_order.blocks == shuffled.blocks and in_order.history == shuffled.history


async def test_bitcoind_cookie_is_read_lazily(node: FakeNode, tmp_path: Path, clock) -> None:
    path = tmp_path / ".cookie"
    src = node_source(node, path, clock)  # the node has not written it yet: no error now
    path.write_text(f"{COOKIE_USER}:{_cookie_secret(1)}\n")
    await src.fetch()


async def test_bitcoind_cookie_reread_after_node_restart(node: FakeNode, cookie, clock) -> None:
    src = node_source(node, cookie, clock)
    await src.fetch()
    node.creds = (COOKIE_USER, _cookie_secret(2))  # restart: new cookie
    cookie.write_text(f"{COOKIE_USER}:{_cookie_secret(2)}")
    node.http = 0
    await src.fetch()
    assert node.http == 2  # one 401, one retry with the new cookie


async def test_bitcoind_cookie_unchanged_on_401(node: FakeNode, cookie, clock) -> None:
    node.creds = (COOKIE_USER, "someone-else")
    src = node_source(node, cookie, clock)
    with pytest.raises(SourceError) as ei:
        await src.fetch()
    assert str(ei.value) == ("bitcoind 127.0.0.1:8332: authentication failed "
                             "(check --rpc-cookie or the RPC user/password)")
    assert node.http == 1  # the same cookie is not sent twice


async def test_bitcoind_missing_cookie(node: FakeNode, tmp_path: Path, clock) -> None:
    path = tmp_path / "nope" / ".cookie"
    with pytest.raises(SourceError) as ei:
        await node_source(node, path, clock).fetch()
    assert str(ei.value) == (f"bitcoind 127.0.0.1:8332: cookie file {path} not found "
                             "(is the node running, and is this its <datadir>/.cookie?)")
    assert node.http == 0


@pytest.mark.parametrize("content", ["", "no-colon-here", ":secret", "user:"])
async def test_bitcoind_malformed_cookie(node: FakeNode, tmp_path: Path, clock, content) -> None:
    path = tmp_path / ".cookie"
    path.write_text(content)
    with pytest.raises(SourceError, match="is malformed"):
        await node_source(node, path, clock).fetch()


async def test_bitcoind_cookie_is_a_directory(node: FakeNode, tmp_path: Path, clock) -> None:
    with pytest.raises(SourceError, match=r"cookie file .* is a directory$"):
        await node_source(node, tmp_path, clock).fetch()


async def test_bitcoind_user_password(node: FakeNode, clock) -> None:
    node.creds = ("alice", "hunter2")
    src = node_source(node, None, clock, user="alice", password="hunter2")
    await src.fetch()
    src = node_source(node, None, clock, user="alice", password="wrong")
    node.http = 0
    with pytest.raises(SourceError, match="authentication failed"):
        await src.fetch()
    assert node.http == 1


async def test_bitcoind_forbidden(node: FakeNode, cookie, clock) -> None:
    node.forbidden = True
    with pytest.raises(SourceError) as ei:
        await node_source(node, cookie, clock).fetch()
    assert str(ei.value) == ("bitcoind 127.0.0.1:8332: access denied (HTTP 403): "
                             "is this host allowed by rpcallowip?")


async def test_bitcoind_warmup(node: FakeNode, cookie, clock) -> None:
    node.warmup = load("bitcoind/error_warmup.json")["error"]["message"]
    with pytest.raises(SourceError) as ei:
        await node_source(node, cookie, clock).fetch()
    assert str(ei.value) == "bitcoind 127.0.0.1:8332: node is starting: Loading block index…"


async def test_bitcoind_rpc_error_in_batch(node: FakeNode, cookie, clock) -> None:
    node.fail["getblockheader"] = load("bitcoind/error_block_not_found.json")["error"]
    with pytest.raises(SourceError) as ei:
        await node_source(node, cookie, clock).fetch()
    assert str(ei.value) == ("bitcoind 127.0.0.1:8332: getblockheader failed: "
                             "Block not found (code -5)")


async def test_bitcoind_method_not_found_single(node: FakeNode, cookie, clock) -> None:
    node.fail["getblockchaininfo"] = load("bitcoind/error_method_not_found.json")["error"]
    with pytest.raises(SourceError) as ei:
        await node_source(node, cookie, clock).fetch()
    assert str(ei.value) == ("bitcoind 127.0.0.1:8332: getblockchaininfo failed: "
                             "Method not found (code -32601)")


async def test_bitcoind_pruned_blocks_have_no_fees_and_are_not_retried(
    node: FakeNode, cookie, clock
) -> None:
    node.pruned_below = TIP - 50
    src = node_source(node, cookie, clock)
    snap = await src.fetch()
    for b in snap.blocks:
        if TIP - FEE_WINDOW < b.height < TIP - 50:
            assert b.fees_sat is None
        elif b.height >= TIP - 50:
            assert b.fees_sat == node.chain.fees(b.height)
    node.calls.clear()
    await src.fetch()
    assert node.calls == {"getblockchaininfo": 1}


async def test_bitcoind_getblockstats_unsupported(node: FakeNode, cookie, clock) -> None:
    node.fail["getblockstats"] = {"code": -32601, "message": "Method not found"}
    src = node_source(node, cookie, clock)
    snap = await src.fetch()
    assert all(b.fees_sat is None for b in snap.blocks)
    assert node.calls["getblockstats"] == STATS_CHUNK  # one chunk, then it gives up
    node.calls.clear()
    await src.fetch()
    assert node.calls == {"getblockchaininfo": 1}


async def test_bitcoind_other_getblockstats_error(node: FakeNode, cookie, clock) -> None:
    node.fail["getblockstats"] = {"code": -8, "message": "Invalid selected statistic 'x'"}
    with pytest.raises(SourceError, match=r"getblockstats failed: Invalid selected statistic"):
        await node_source(node, cookie, clock).fetch()


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (httpx.Response(503, text="Work queue depth exceeded"),
         "HTTP 503 on getblockchaininfo: Work queue depth exceeded"),
        (httpx.Response(200, text="{\"result\": {\"blocks\": 1"),
         "malformed JSON on getblockchaininfo (Expecting ',' delimiter: line 1 column 24)"),
        (httpx.Response(500, text="internal"), "HTTP 500 on getblockchaininfo: internal"),
        (httpx.Response(200, json={"result": {"blocks": 5}, "error": None, "id": 1}),
         "unexpected reply on getblockchaininfo: missing 'bestblockhash'"),
        (httpx.Response(200, json=[]),
         "unexpected reply on getblockchaininfo: expected reply to be an object, got a list"),
        (httpx.Response(429, headers={"Retry-After": "7"}),
         "rate limited (HTTP 429 on getblockchaininfo), retry after 7 s"),
    ],
)
async def test_bitcoind_bad_replies(node: FakeNode, cookie, clock, reply, text) -> None:
    node.raw = reply
    with pytest.raises(SourceError) as ei:
        await node_source(node, cookie, clock).fetch()
    assert str(ei.value) == f"bitcoind 127.0.0.1:8332: {text}"


async def test_bitcoind_batch_missing_reply(node: FakeNode, cookie, clock) -> None:
    inner = node.handler

    def drop_one(request: httpx.Request) -> httpx.Response:
        resp = inner(request)
        doc = json.loads(resp.content)
        if isinstance(doc, list):
            doc = doc[1:]
        return httpx.Response(resp.status_code, json=doc)

    client = httpx.AsyncClient(transport=httpx.MockTransport(drop_one))
    src = BitcoindSource(RPC, cookie_path=cookie, client=client, clock=clock)
    with pytest.raises(SourceError, match=r"unexpected reply on getblockhash batch: no reply "):
        await src.fetch()


async def test_bitcoind_bad_header_bits(node: FakeNode, cookie, clock) -> None:
    inner = node.one

    def bad(req: Any) -> dict[str, Any]:
        r = inner(req)
        if req["method"] == "getblockheader":
            r["result"]["bits"] = "zz"
        return r

    node.one = bad  # type: ignore[method-assign]
    with pytest.raises(SourceError) as ei:
        await node_source(node, cookie, clock).fetch()
    assert str(ei.value) == ("bitcoind 127.0.0.1:8332: unexpected reply on getblockheader batch: "
                             "'bits' is not hex ('zz')")


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("[Errno 111] Connection refused"), httpx.ReadTimeout("timed out")],
)
async def test_bitcoind_transport(cookie, clock, exc) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    client = httpx.AsyncClient(transport=httpx.MockTransport(fail))
    src = BitcoindSource(RPC, cookie_path=cookie, client=client, clock=clock)
    with pytest.raises(SourceError) as ei:
        await src.fetch()
    assert str(ei.value) in ("bitcoind 127.0.0.1:8332: connection refused",
                             "bitcoind 127.0.0.1:8332: timed out after 10 s")


async def test_bitcoind_request_shape(node: FakeNode, cookie, clock) -> None:
    seen: list[Any] = []

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["Content-Type"], json.loads(request.content)))
        return node.handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(spy))
    await BitcoindSource(RPC, cookie_path=cookie, client=client, clock=clock).fetch()
    ctype, first = seen[0]
    assert ctype == "application/json"
    assert first == {"jsonrpc": "1.0", "id": first["id"], "method": "getblockchaininfo",
                     "params": []}
    _, batch = seen[1]
    assert isinstance(batch, list) and {r["method"] for r in batch} == {"getblockhash"}
    assert len({r["id"] for r in batch}) == len(batch)
    stats = [b for _, b in seen if isinstance(b, list) and b[0]["method"] == "getblockstats"]
    assert stats[0][0]["params"] == [TIP - FEE_WINDOW + 1, ["totalfee"]]
    assert max(len(b) for b in stats) == STATS_CHUNK


async def test_bitcoind_own_client() -> None:
    src = BitcoindSource("http://user:pw@node.lan:18332/", user="u", password="p")
    assert src.label == "bitcoind node.lan:18332"
    assert src._client.timeout == DEFAULT_TIMEOUT
    await src.aclose()


# =========================================================================== price


async def test_price_from_mempool(mp: FakeMempool, clock) -> None:
    src = MempoolPrice(MEMPOOL, client=mp.client(), clock=clock)
    p = await src.fetch()
    assert (p.usd, p.time, p.source, p.fetched_at) == (
        71020.0, 1768989901, "mempool mempool.space", clock.now)
    # and the daily history (not served by this fake: 404, no history)
    assert mp.paths == ["/api/v1/prices", "/api/v1/historical-price"]
    assert p.history == ()


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        (load("mempool/prices_unavailable.json"),
         "no USD price (the instance reports USD=-1)"),
        ({"time": 1768989901, "USD": 0}, "no USD price (the instance reports USD=0)"),
        ({"time": 1768989901, "EUR": 65000}, "no USD price in the reply to /api/v1/prices"),
        ({"time": 1768989901, "USD": "71020"},
         "unexpected reply on /api/v1/prices: 'USD' is not a number (a string)"),
        ({"USD": 71020}, "unexpected reply on /api/v1/prices: missing 'time'"),
        ([], "unexpected reply on /api/v1/prices: expected reply to be an object, got a list"),
    ],
)
async def test_price_invalid(mp: FakeMempool, clock, doc, text) -> None:
    mp.prices = doc
    with pytest.raises(SourceError) as ei:
        await MempoolPrice(MEMPOOL, client=mp.client(), clock=clock).fetch()
    assert str(ei.value) == f"mempool https://mempool.space: {text}"


async def test_price_malformed_and_rate_limited(mp: FakeMempool, clock) -> None:
    mp.override["/api/v1/prices"] = httpx.Response(200, text="")
    with pytest.raises(SourceError, match=r"malformed JSON on /api/v1/prices \(empty reply\)$"):
        await MempoolPrice(MEMPOOL, client=mp.client(), clock=clock).fetch()
    mp.override["/api/v1/prices"] = httpx.Response(429, headers={"Retry-After": "60"})
    with pytest.raises(RateLimited) as ei:
        await MempoolPrice(MEMPOOL, client=mp.client(), clock=clock).fetch()
    assert ei.value.retry_after == 60


async def test_fixed_price(clock) -> None:
    p = await FixedPrice(71_020.0, clock=clock).fetch()
    assert (p.usd, p.source, p.time, p.fetched_at) == (71_020.0, "fixed", int(clock.now),
                                                       clock.now)
    with pytest.raises(SourceError, match="no USD price"):
        await FixedPrice(0.0).fetch()
    await FixedPrice(1.0).aclose()


# =========================================================================== backoff


def test_backoff_sequence_is_deterministic() -> None:
    b = Backoff(30.0, rng=random.Random(42), jitter=0.1)
    err = SourceError("x: HTTP 500 on /")
    delays = [b.failure(err) for _ in range(9)]
    assert b.failures == 9
    bases = [2, 4, 8, 16, 32, 64, 120, 120, 120]
    for d, base in zip(delays, bases, strict=True):
        assert 0.9 * base <= d <= min(120.0, 1.1 * base)
        assert d >= 2.0
    again = Backoff(30.0, rng=random.Random(42), jitter=0.1)
    assert [again.failure(err) for _ in range(9)] == delays
    assert b.success() == 30.0 and b.failures == 0
    assert 1.8 <= b.failure(err) <= 2.2


def test_backoff_without_jitter() -> None:
    b = Backoff(10.0, min_delay=1.0, max_delay=5.0, jitter=0.0, rng=random.Random(1))
    assert [b.failure() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert b.success() == 10.0


def test_backoff_honours_retry_after() -> None:
    b = Backoff(30.0, jitter=0.0, rng=random.Random(1))
    assert b.failure(RateLimited("x: rate limited", retry_after=90.0)) == 90.0
    assert b.failure(RateLimited("x: rate limited", retry_after=1.0)) == 4.0
    assert b.failure(RateLimited("x: rate limited", retry_after=None)) == 8.0
    assert b.failures == 3


def test_backoff_validates() -> None:
    with pytest.raises(ValueError):
        Backoff(0)
    with pytest.raises(ValueError):
        Backoff(1, min_delay=10, max_delay=5)


def test_implausible_timestamps_and_difficulty_are_reply_errors() -> None:
    from tui.sources.base import ShapeError, get_positive, get_time

    assert get_time({"t": 1_769_000_000}, "t") == 1_769_000_000
    for bad in (10**17, -5):
        with pytest.raises(ShapeError, match="plausible"):
            get_time({"t": bad}, "t")
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ShapeError, match="positive|finite"):
            get_positive({"d": bad}, "d")
