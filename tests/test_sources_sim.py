"""End to end: the real source clients against the simulator's servers on loopback.

The simulator (``tui.sim``) serves mempool-style REST and bitcoind-style JSON-RPC from
memory on 127.0.0.1; its chain mines when its clock passes the next arrival, and its
servers carry switchable faults.  No internet is touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tui.model import FEE_WINDOW, ChainSnapshot, required_heights
from tui.sources.base import RateLimited, SourceError
from tui.sources.bitcoind import BitcoindSource
from tui.sources.mempool import MempoolSource
from tui.sources.price import MempoolPrice

sim_mod = pytest.importorskip("tui.sim")


@pytest.fixture
async def sim(clock) -> AsyncIterator[object]:
    s = await sim_mod.start_sim(seed=11, clock=clock)
    try:
        yield s
    finally:
        await s.stop()


def mine_one(sim, clock) -> int:
    """Move the clock to the next block's arrival; returns the height it will have."""
    clock.now = sim.chain.next_arrival + 0.5
    return sim.chain.tip_height + 1


def check_against_chain(snap: ChainSnapshot, sim, *, fees_window_only: bool) -> None:
    chain = sim.chain
    assert snap.tip_height == chain.tip_height
    assert [b.height for b in snap.blocks] == required_heights(chain.tip_height)
    for b in snap.blocks:
        blk = chain.block(b.height)
        assert (b.time, b.bits, b.difficulty) == (blk.time, blk.bits, blk.difficulty)
        if not fees_window_only or b.height > snap.tip_height - FEE_WINDOW:
            assert b.fees_sat == blk.fees
    assert len(snap.history) == 90
    times = [p.time for p in snap.history]
    assert all(p.hashrate > 0 for p in snap.history)
    if not fees_window_only:
        assert times == sorted(times)


async def test_mempool_against_sim(sim, clock) -> None:
    src = MempoolSource(sim.mempool_url, clock=clock)
    server = sim.mempool_server
    try:
        snap = await src.fetch()
        check_against_chain(snap, sim, fees_window_only=False)
        # 16 for the panes, then fee history + adjustments + block at a time + 11 pages of
        # the 30-days-ago window (145 blocks and 11 after its end)
        assert server.requests_served == 16 + 3 + 11
        before = server.requests_served
        await src.fetch()
        assert server.requests_served - before == 1
        new_height = mine_one(sim, clock)
        before = server.requests_served
        snap = await src.fetch()
        assert snap.tip_height == new_height
        check_against_chain(snap, sim, fees_window_only=False)
        assert server.requests_served - before <= 5
    finally:
        await src.aclose()


async def test_bitcoind_against_sim(sim, clock) -> None:
    src = BitcoindSource(sim.rpc_url, cookie_path=sim.cookie_path, clock=clock)
    server = sim.rpc_server
    try:
        snap = await src.fetch()
        check_against_chain(snap, sim, fees_window_only=True)
        # 10 for the panes, then 2 batches of retarget headers and 8 getblockstats chunks for
        # the 30-days-ago window
        assert server.requests_served == 10 + 2 + 8
        before = server.requests_served
        await src.fetch()
        assert server.requests_served - before == 1
        mine_one(sim, clock)
        before = server.requests_served
        snap = await src.fetch()
        check_against_chain(snap, sim, fees_window_only=True)
        assert server.requests_served - before == 4
    finally:
        await src.aclose()


async def test_both_protocols_agree(sim, clock) -> None:
    m = MempoolSource(sim.mempool_url, clock=clock)
    b = BitcoindSource(sim.rpc_url, cookie_path=sim.cookie_path, clock=clock)
    try:
        sm, sb = await m.fetch(), await b.fetch()
        assert sm.tip_height == sb.tip_height
        recent = sm.tip_height - FEE_WINDOW
        assert [x for x in sm.blocks if x.height > recent] == [
            x for x in sb.blocks if x.height > recent]
    finally:
        await m.aclose()
        await b.aclose()


async def test_bitcoind_cookie_rewritten_by_restart(sim, clock) -> None:
    src = BitcoindSource(sim.rpc_url, cookie_path=sim.cookie_path, clock=clock)
    try:
        await src.fetch()
        sim.rpc_api.write_cookie()  # a node restart writes a new cookie
        before = sim.rpc_server.requests_served
        await src.fetch()
        assert sim.rpc_server.requests_served - before == 2  # 401, then the new cookie
    finally:
        await src.aclose()


async def test_bitcoind_pruned_sim(sim, clock) -> None:
    sim.rpc_api.prune_below = sim.chain.tip_height - 20
    src = BitcoindSource(sim.rpc_url, cookie_path=sim.cookie_path, clock=clock)
    try:
        snap = await src.fetch()
        cut = sim.chain.tip_height - 20
        for blk in snap.blocks:
            if blk.height > snap.tip_height - FEE_WINDOW:
                assert (blk.fees_sat is None) == (blk.height < cut)
    finally:
        await src.aclose()


@pytest.mark.parametrize(
    ("mode", "pattern"),
    [
        ("http500", r"HTTP 500 on /api/blocks/tip/height: Internal Server Error$"),
        ("malformed", r"not a block height"),
        ("ratelimit", r"rate limited \(HTTP 429 on /api/blocks/tip/height\), retry after 30 s$"),
    ],
)
async def test_mempool_sim_faults(sim, clock, mode, pattern) -> None:
    src = MempoolSource(sim.mempool_url, clock=clock)
    try:
        sim.mempool_server.faults.set(mode, count=1)
        with pytest.raises(SourceError, match=pattern) as ei:
            await src.fetch()
        if mode == "ratelimit":
            assert isinstance(ei.value, RateLimited) and ei.value.retry_after == 30
        check_against_chain(await src.fetch(), sim, fees_window_only=False)  # recovers
    finally:
        await src.aclose()


async def test_mempool_sim_truncated_json(sim, clock) -> None:
    src = MempoolSource(sim.mempool_url, clock=clock)
    try:
        await src.fetch()
        mine_one(sim, clock)
        # A truncated tip height ("935009" -> "935") still parses; the newest page is
        # authoritative for the tip, so the snapshot is right anyway.
        sim.mempool_server.faults.set("truncated", count=1)
        check_against_chain(await src.fetch(), sim, fees_window_only=False)
        mine_one(sim, clock)
        sim.mempool_server.faults.set("truncated", count=2)  # the tip height, then the page
        with pytest.raises(SourceError, match=r"malformed JSON on /api/v1/blocks \("):
            await src.fetch()
        check_against_chain(await src.fetch(), sim, fees_window_only=False)
    finally:
        await src.aclose()


async def test_price_and_timeout_against_sim(sim, clock) -> None:
    src = MempoolPrice(sim.mempool_url, clock=clock, timeout=httpx.Timeout(0.2, connect=1.0))
    try:
        p = await src.fetch()
        assert p.usd > 0 and p.source.startswith("mempool 127.0.0.1:")
        sim.mempool_server.faults.set("slow", count=1, delay=1.0)
        with pytest.raises(SourceError, match=r"timed out after 0.2 s$"):
            await src.fetch()
    finally:
        await src.aclose()
        await asyncio.sleep(0)


async def test_stopped_sim_is_connection_refused(clock) -> None:
    s = await sim_mod.start_sim(seed=3, clock=clock)
    url = s.mempool_url
    await s.stop()
    src = MempoolSource(url, clock=clock)
    try:
        with pytest.raises(SourceError, match=r": connection refused$"):
            await src.fetch()
    finally:
        await src.aclose()
