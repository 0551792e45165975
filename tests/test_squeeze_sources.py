"""The squeeze data from the sources: parsing of each endpoint's real shape, malformed
replies, caching (what is not refetched every poll), the pruned-node path, and the
simulator's numbers through the real mempool and bitcoind clients (loopback only)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from tests.test_sources import (  # noqa: F401 - fixtures
    MEMPOOL,
    TIP,
    Chain,
    FakeMempool,
    FakeNode,
    cookie,
    counts_by_route,
    mempool_source,
    node,
    node_source,
)
from tui import wire
from tui.chain import RETARGET_INTERVAL
from tui.dashboard import compute, to_json
from tui.model import BlockWindow, DifficultyAdjustment
from tui.sources.base import SourceError
from tui.sources.bitcoind import ADJUSTMENT_EPOCHS, BitcoindSource
from tui.sources.mempool import (
    ADJUSTMENTS_PATH,
    FEES_PATH,
    MempoolSource,
    parse_adjustments,
    parse_fee_history,
    parse_height_at,
)
from tui.sources.price import MempoolPrice, parse_price_history
from tui.squeeze import DAY, WINDOW_AGO_S

sim_mod = pytest.importorskip("tui.sim")

#: Real rows of mempool.space's /api/v1/mining/difficulty-adjustments (newest first), and
#: its genesis row (ratio 0: not a change).
ADJ_ROWS = [
    [1768381227, 933408, 141668107417558.2, 0.986001],
    [1767164349, 931392, 143681529736867.9, 1.039997],
    [1625296233, 689472, 14363025673659.96, 0.720564],
    [1231006505, 0, 1, 0],
]


# =========================================================================== parsing


def test_parse_adjustments_real_shape() -> None:
    adjs = parse_adjustments(ADJ_ROWS)
    assert [a.height for a in adjs] == [933408, 931392, 689472]  # genesis row skipped
    assert adjs[0] == DifficultyAdjustment(933408, 1768381227, 141668107417558.2,
                                           pytest.approx(-1.3999))  # type: ignore[arg-type]
    assert adjs[2].change_pct == pytest.approx(-27.9436)
    assert adjs[1].change_pct == pytest.approx(3.9997)
    # any order in, newest first out
    assert parse_adjustments(list(reversed(ADJ_ROWS))) == adjs


@pytest.mark.parametrize(
    ("doc", "detail"),
    [
        ({"adjustments": []}, "expected reply to be a list, got an object"),
        ([[1768381227, 933408, 1.4e14]], "an adjustment has 3 fields, expected 4"),
        ([[1768381227, 933408, "141T", 0.98]], "'difficulty' is not a number (a string)"),
        ([[1768381227, 933408, 1.4e14, -1]], "impossible adjustment"),
        ([{"time": 1768381227}], "expected an adjustment to be a list, got an object"),
        ([[1768381227.5, 933408, 1.4e14, 0.98]], "'time' is not an integer"),
    ],
)
async def test_malformed_adjustments_are_one_line_errors(clock, doc, detail) -> None:
    mp = SqueezeMempool()
    mp.override[ADJUSTMENTS_PATH] = httpx.Response(200, json=doc)
    src = mempool_source(mp, clock)
    with pytest.raises(SourceError) as ei:
        await src._fetch_adjustments()
    msg = str(ei.value)
    assert msg.startswith(f"mempool {MEMPOOL}: unexpected reply on {ADJUSTMENTS_PATH}: ")
    assert detail in msg and "\n" not in msg
    # in a poll the part is optional: the chain is fresh, the message is kept, no adjustments
    snap = await src.fetch()
    assert snap.tip_height == TIP and snap.adjustments == ()
    assert src.optional_errors["adjustments"] == msg
    await src.aclose()


def test_parse_fee_history_daily_means() -> None:
    day = 1_768_953_600
    doc = [{"avgHeight": 934990, "timestamp": day + 3600, "avgFees": 3_000_000, "USD": 71000},
           {"avgHeight": 935000, "timestamp": day + 7200 * 5, "avgFees": 5_000_000,
            "USD": 71100},
           {"avgHeight": 934900, "timestamp": day - 600, "avgFees": 2_000_000, "USD": 70000}]
    assert parse_fee_history(doc) == ((day - DAY, 2_000_000.0), (day, 4_000_000.0))
    with pytest.raises(KeyError):
        parse_fee_history([{"timestamp": day}])
    with pytest.raises(ValueError, match="negative avgFees"):
        parse_fee_history([{"timestamp": day, "avgFees": -1}])


def test_parse_height_at_and_price_history() -> None:
    doc = {"height": 930959, "hash": "00" * 32, "timestamp": "2025-12-22T12:30:20.000Z"}
    assert parse_height_at(doc) == 930959
    with pytest.raises(ValueError, match="negative"):
        parse_height_at({"height": -1})
    now = 1_769_000_000
    today = now // DAY * DAY
    doc = {"prices": [{"time": today + 3600, "USD": 71000},
                      {"time": today, "USD": 70000},
                      {"time": today - 3600, "USD": 69000},
                      {"time": today - 200 * DAY, "USD": 50000},  # outside 91 days
                      {"time": 1279497600, "USD": 0}],  # mempool's "no price" placeholder
           "exchangeRates": {"USDEUR": 0.86}}
    assert parse_price_history(doc, now) == ((today - DAY, 69000.0), (today, 70500.0))
    with pytest.raises(ValueError, match="expected reply to be an object, got null"):
        parse_price_history(None, now)


# =========================================================================== a fake mempool


class SqueezeMempool(FakeMempool):
    """FakeMempool plus the mining history endpoints, in mempool's shapes."""

    def __init__(self, chain: Chain | None = None) -> None:
        super().__init__(chain)
        self.adjustment_rows = [list(r) for r in ADJ_ROWS]

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in self.override or not path.startswith(("/api/v1/mining/blocks/",
                                                          ADJUSTMENTS_PATH)):
            return super().handler(request)
        self.paths.append(path)
        if path == ADJUSTMENTS_PATH:
            return httpx.Response(200, json=self.adjustment_rows)
        if path == FEES_PATH:
            c = self.chain
            rows = [{"avgHeight": h, "timestamp": c.time(h), "avgFees": c.fees(h),
                     "USD": 71000} for h in range(c.tip - 12 * 90 * 12, c.tip + 1, 12)]
            return httpx.Response(200, json=rows)
        m = re.fullmatch(r"/api/v1/mining/blocks/timestamp/(\d+)", path)
        if m:
            t = int(m.group(1))
            h = max((h for h in range(self.chain.tip - 6000, self.chain.tip + 1)
                     if self.chain.time(h) <= t), key=self.chain.time)
            iso = datetime.fromtimestamp(self.chain.time(h), tz=timezone.utc).isoformat()
            return httpx.Response(200, json={"height": h, "hash": self.chain.hash(h),
                                             "timestamp": iso})
        return httpx.Response(404, text=f"Cannot GET {path}")


def last_at_or_before(chain: Chain, cutoff: int) -> int:
    return max(h for h in range(chain.tip - 6000, chain.tip + 1) if chain.time(h) <= cutoff)


async def test_mempool_window_is_the_last_block_30_days_back(clock) -> None:
    mp = SqueezeMempool()
    src = mempool_source(mp, clock)
    snap = await src.fetch()
    c = mp.chain
    end = last_at_or_before(c, int(clock.now) - WINDOW_AGO_S)
    w = snap.window_30d_ago
    assert w is not None and w.end_height == end and w.end_time == c.time(end)
    assert w.mean_interval_s == (c.time(end) - c.time(end - 144)) / 144
    assert w.mean_fees_sat == sum(c.fees(h) for h in range(end - 143, end + 1)) / 144
    assert w.subsidy_sat == 312_500_000
    assert [a.height for a in snap.adjustments] == [933408, 931392, 689472]
    assert len(snap.fee_history) == 90
    assert src.optional_errors == {}
    routes = counts_by_route(mp.paths)
    assert routes["/api/v1/mining/blocks/timestamp/:height"] == 1
    # the window: 145 blocks and the 11 after its end, 15 a page
    assert routes["/api/v1/blocks/:height"] == 13 + 11
    await src.aclose()


async def test_mempool_squeeze_parts_are_cached(clock) -> None:
    mp = SqueezeMempool()
    src = mempool_source(mp, clock)
    await src.fetch()
    for _ in range(5):  # nothing changed: one request a poll, as before
        mp.reset()
        clock.advance(30)
        await src.fetch()
        assert mp.paths == ["/api/blocks/tip/height"]
    # 3 hours on (no new block in this fake): the hashrate and fee histories are due, the
    # window moved by ~18 blocks: at most 2 more pages, no timestamp look-up; the
    # adjustments list already has the current epoch's: not fetched again
    mp.reset()
    clock.advance(3 * 3600)
    snap = await src.fetch()
    routes = counts_by_route(mp.paths)
    assert ADJUSTMENTS_PATH not in routes
    assert "/api/v1/mining/blocks/timestamp/:height" not in routes
    assert routes[FEES_PATH] == 1 and routes["/api/v1/blocks/:height"] <= 2
    end = last_at_or_before(mp.chain, int(clock.now) - WINDOW_AGO_S)
    assert snap.window_30d_ago is not None and snap.window_30d_ago.end_height == end
    # a day on, the adjustments are refreshed anyway, and the window found again by time
    mp.reset()
    clock.advance(DAY)
    snap = await src.fetch()
    routes = counts_by_route(mp.paths)
    assert routes[ADJUSTMENTS_PATH] == 1
    assert routes["/api/v1/mining/blocks/timestamp/:height"] == 1
    end = last_at_or_before(mp.chain, int(clock.now) - WINDOW_AGO_S)
    assert snap.window_30d_ago.end_height == end  # type: ignore[union-attr]
    await src.aclose()


async def test_mempool_new_epoch_refetches_adjustments_at_most_every_30_min(clock) -> None:
    chain = Chain(tip=2016 * 464 - 2)  # two blocks before a retarget
    mp = SqueezeMempool(chain)
    src = mempool_source(mp, clock)
    await src.fetch()
    chain.extend(3)  # the tip is in a new epoch whose adjustment the list lacks
    mp.reset()
    clock.advance(600)
    await src.fetch()
    assert ADJUSTMENTS_PATH not in mp.paths  # fetched 10 minutes ago
    clock.advance(1200)
    mp.adjustment_rows.insert(0, [chain.time(2016 * 464), 2016 * 464, 1.4e14, 0.9])
    await src.fetch()
    assert mp.paths.count(ADJUSTMENTS_PATH) == 1
    snap = await src.fetch()
    assert snap.adjustments[0].height == 2016 * 464
    clock.advance(3600)
    await src.fetch()
    assert mp.paths.count(ADJUSTMENTS_PATH) == 1  # the list has it now
    await src.aclose()


async def test_mempool_broken_window_keeps_the_chain_and_retries_later(clock) -> None:
    mp = SqueezeMempool()
    mp.override["/api/v1/mining/blocks/timestamp/" + str(int(clock.now) - WINDOW_AGO_S)] = (
        httpx.Response(500, text="Failed to get height from timestamp"))
    src = mempool_source(mp, clock)
    snap = await src.fetch()
    assert snap.window_30d_ago is None and snap.tip_height == TIP
    assert src.optional_errors["window"].endswith(
        "HTTP 500 on /api/v1/mining/blocks/timestamp/"
        f"{int(clock.now) - WINDOW_AGO_S}: Failed to get height from timestamp")
    mp.reset()
    clock.advance(60)
    await src.fetch()
    assert mp.paths == ["/api/blocks/tip/height"]  # not retried every poll
    clock.advance(300)
    snap = await src.fetch()
    assert snap.window_30d_ago is not None and "window" not in src.optional_errors
    await src.aclose()


# =========================================================================== fake bitcoind


async def test_bitcoind_pruned_node_gives_no_window_and_no_error(node, cookie, clock) -> None:  # noqa: F811
    node.pruned_below = TIP - 20  # getblockstats fails (-1) below; getblockchaininfo says
    src = node_source(node, cookie, clock)  # "pruned": false, so the node is asked
    snap = await src.fetch()
    assert snap.window_30d_ago is None and src.optional_errors == {}
    assert snap.tip_height == TIP and len(snap.history) == 90  # the rest works
    before = node.calls["getblockstats"]
    clock.advance(1800)
    await src.fetch()
    assert node.calls["getblockstats"] == before  # not asked again within the hour
    node.pruned_below = None
    clock.advance(1800)
    snap = await src.fetch()
    assert snap.window_30d_ago is not None
    await src.aclose()


async def test_bitcoind_window_and_caching_on_the_fake_node(node, cookie, clock) -> None:  # noqa: F811
    src = node_source(node, cookie, clock)
    snap = await src.fetch()
    c = node.chain
    end = last_at_or_before(c, int(clock.now) - WINDOW_AGO_S)
    w = snap.window_30d_ago
    assert w is not None and w.end_height == end
    assert w.mean_fees_sat == sum(c.fees(h) for h in range(end - 143, end + 1)) / 144
    assert snap.adjustments == ()  # the fake's bits never change: no adjustment
    assert node.calls["getblockhash"] >= 2 * (ADJUSTMENT_EPOCHS - 1)
    http = node.http
    clock.advance(60)
    await src.fetch()
    assert node.http == http + 1  # getblockchaininfo only: the retarget headers are cached
    await src.aclose()


# =========================================================================== the simulator


@pytest.fixture
async def sim(clock) -> AsyncIterator[Any]:
    s = await sim_mod.start_sim(seed=2026, clock=clock)
    try:
        yield s
    finally:
        await s.stop()


async def test_sim_serves_the_mining_history_endpoints(sim, clock) -> None:
    chain = sim.chain
    async with httpx.AsyncClient(base_url=sim.mempool_url, timeout=5) as c:
        rows = (await c.get("/api/v1/mining/difficulty-adjustments")).json()
        assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
        assert len(rows) > 26 and clock.now - rows[-1][0] > 4 * 365 * DAY
        top = rows[0]
        blk, prev = chain.block(top[1]), chain.block(top[1] - 1)
        assert top == [blk.time, blk.height, blk.difficulty,
                       round(blk.difficulty / prev.difficulty, 6)]
        one_year = (await c.get("/api/v1/mining/difficulty-adjustments/1y")).json()
        assert 25 <= len(one_year) <= 28 and one_year == rows[:len(one_year)]
        hr = (await c.get("/api/v1/mining/hashrate/1y")).json()
        assert [d["height"] for d in hr["difficulty"]] == [r[1] for r in reversed(one_year)]
        fees = (await c.get("/api/v1/mining/blocks/fees/3m")).json()
        assert set(fees[0]) == {"avgHeight", "timestamp", "avgFees", "USD"}
        assert 90 * 12 <= len(fees) <= 93 * 12  # 2-hour buckets over 3 months
        cutoff = int(clock.now) - WINDOW_AGO_S
        at = (await c.get(f"/api/v1/mining/blocks/timestamp/{cutoff}")).json()
        assert chain.block(at["height"]).time <= cutoff and at["timestamp"].endswith("Z")
        bad = await c.get("/api/v1/mining/blocks/timestamp/1.5")
        assert bad.status_code == 500
        hp = (await c.get("/api/v1/historical-price", params={"currency": "USD"})).json()
        assert set(hp) == {"prices", "exchangeRates"}
        assert hp["prices"][0]["time"] > hp["prices"][-1]["time"]  # newest first
        assert set(hp["prices"][0]) == {"time", "USD"}
        one = (await c.get("/api/v1/historical-price",
                           params={"currency": "USD", "timestamp": cutoff})).json()
        assert len(one["prices"]) == 1 and cutoff - 3600 < one["prices"][0]["time"] <= cutoff
        assert one["prices"][0]["USD"] == round(chain.price_usd(one["prices"][0]["time"]))


async def test_sim_rpc_serves_the_deep_retarget_headers(sim) -> None:
    chain = sim.chain
    deep = chain.start_height - 50 * RETARGET_INTERVAL
    src = BitcoindSource(sim.rpc_url, cookie_path=sim.cookie_path)
    try:
        hashes = await src._hashes([deep, deep - 1, chain.start_height - 1])
        headers = await src._headers(hashes)
        assert headers[deep].difficulty == chain.deep_header(deep).difficulty
        assert headers[deep].time > headers[deep - 1].time
        # the first simulated block links to the deep header below it
        assert chain.block(chain.start_height).prev_hash == hashes[chain.start_height - 1]
        with pytest.raises(SourceError, match="Block height out of range"):
            await src._hashes([deep - 2])
    finally:
        await src.aclose()


async def test_sim_figures_through_both_clients(sim, clock) -> None:
    chain = sim.chain
    m = MempoolSource(sim.mempool_url, clock=clock)
    b = BitcoindSource(sim.rpc_url, cookie_path=sim.cookie_path, clock=clock)
    p = MempoolPrice(sim.mempool_url, clock=clock)
    try:
        sm, sb, price = await m.fetch(), await b.fetch(), await p.fetch()
    finally:
        await m.aclose()
        await b.aclose()
        await p.aclose()
    assert m.optional_errors == b.optional_errors == p.optional_errors == {}
    # the 30-days-ago window: the same from both, and right against the chain
    assert sm.window_30d_ago == sb.window_30d_ago
    w = sm.window_30d_ago
    assert w is not None
    cutoff = int(clock.now) - WINDOW_AGO_S
    assert chain.block(w.end_height).time <= cutoff
    assert all(chain.block(h).time > cutoff for h in range(w.end_height + 1,
                                                           w.end_height + 12))
    e = w.end_height
    assert w.mean_fees_sat == sum(chain.block(h).fees for h in range(e - 143, e + 1)) / 144
    assert w.mean_interval_s == (chain.block(e).time - chain.block(e - 144).time) / 144
    # adjustments: mempool has all it indexed, bitcoind the last ADJUSTMENT_EPOCHS retargets
    assert len(sb.adjustments) == ADJUSTMENT_EPOCHS
    for a, x in zip(sm.adjustments, sb.adjustments, strict=False):
        assert (a.height, a.time, a.difficulty) == (x.height, x.time, x.difficulty)
        assert a.change_pct == pytest.approx(x.change_pct, abs=1e-4)  # 6-decimal ratio
    newest = sb.adjustments[0]
    blk, prev = chain.block(newest.height), chain.block(newest.height - 1)
    assert newest.change_pct == pytest.approx((blk.difficulty / prev.difficulty - 1) * 100)
    # the price history: 91 days of daily means of the hourly prices
    assert len(price.history) == 91
    day, usd = price.history[-2]
    hours = [round(chain.price_usd(t)) for t in range(day, day + DAY, 3600)]
    assert usd == pytest.approx(sum(hours) / 24)
    # the dashboard: jan2026's projected ~-14 % is the largest cut since the 2021 one
    for snap in (sm, sb):
        d = compute(snap, price, clock.now)
        doc = to_json(d)
        assert doc["retarget"]["largest_since"]["direction"] == "cut"
        assert doc["retarget"]["largest_since"]["height"] == 689_472
        assert datetime.fromtimestamp(doc["retarget"]["largest_since"]["time"],
                                      tz=timezone.utc).year == 2021
        assert len(doc["retarget"]["history"]) == 26
        assert len(doc["hashprice_history"]) == 90
        # revenue by hand from the chain: last 144 blocks, seed 2026, $71,000
        tip = chain.tip_height
        fees = sum(chain.block(h).fees for h in range(tip - 143, tip + 1)) / 144
        interval = (chain.block(tip).time - chain.block(tip - 144).time) / 144
        expect = (3.125 + fees / 1e8) * 86_400 / interval * price.usd
        assert doc["network_revenue_usd_day"] == pytest.approx(expect, abs=1)
        ago_price = price.usd_on(w.end_time)
        assert ago_price is not None
        expect_ago = (3.125 + w.mean_fees_sat / 1e8) * 86_400 / w.mean_interval_s * ago_price
        assert doc["network_revenue_usd_day_30d_ago"] == pytest.approx(expect_ago, abs=1)
        assert 20e6 < doc["network_revenue_usd_day"] < 40e6


async def test_sim_price_history_is_fetched_about_daily(sim, clock) -> None:
    src = MempoolPrice(sim.mempool_url, clock=clock)
    server = sim.mempool_server
    try:
        await src.fetch()
        assert server.hits["/api/v1/historical-price"] == 1
        clock.advance(3 * 3600)
        p = await src.fetch()
        assert len(p.history) == 91
        # past days don't change: not fetched again the same UTC day
        next_day = (clock.now // DAY + 1) * DAY
        assert server.hits["/api/v1/historical-price"] == (1 if clock.now < next_day else 2)
        clock.now = next_day + 3700
        await src.fetch()
        assert server.hits["/api/v1/historical-price"] >= 2
    finally:
        await src.aclose()


async def test_sim_pruned_node_skips_the_window_without_asking(clock) -> None:
    s = await sim_mod.start_sim(seed=11, clock=clock)
    s.rpc_api.prune_below = s.chain.tip_height - 200
    src = BitcoindSource(s.rpc_url, cookie_path=s.cookie_path, clock=clock)
    calls: list[str] = []
    orig = src._batch

    async def spy(method: str, params: Any) -> Any:
        calls.append(method)
        return await orig(method, params)

    src._batch = spy  # type: ignore[method-assign]
    try:
        snap = await src.fetch()
        assert snap.window_30d_ago is None and src.optional_errors == {}
        assert len(snap.adjustments) == ADJUSTMENT_EPOCHS
        # pruneheight is above the window: only the fee window's 6 chunks ask for stats
        assert calls.count("getblockstats") == 6
    finally:
        await src.aclose()
        await s.stop()


# =========================================================================== wire, CLI


def test_snapshot_with_the_squeeze_data_crosses_the_wire(monkeypatch) -> None:
    """What tui/wire.py needs: DifficultyAdjustment and BlockWindow in its allow-list."""
    from tests.fakes import squeeze_snapshot
    from tui.model import PriceSnapshot

    now = 1_769_000_000.0
    snap = dataclasses.replace(
        squeeze_snapshot(now),
        adjustments=(DifficultyAdjustment(933408, 1768381227, 1.4e14, -1.4),),
        window_30d_ago=BlockWindow(930959, 1766406620, 144, 581.35, 3690710.6, 3.125e8),
        fee_history=((1768953600, 3.5e6),),
    )
    price = PriceSnapshot(71_000.0, 0, "mempool", history=((1768953600, 70_500.0),))
    for cls in (DifficultyAdjustment, BlockWindow):
        monkeypatch.setitem(wire.TYPES, cls.__name__, cls)
    back = wire.decode(json.loads(json.dumps(wire.encode({"chain": snap, "price": price}))))
    assert back["chain"] == snap and back["price"] == price


@pytest.mark.parametrize("via", ["mempool", "bitcoind"])
def test_once_json_on_demo_has_the_squeeze_figures(via: str) -> None:
    from tests.test_cli import _run

    r = _run("--once", "--json", "--demo", "--demo-via", via)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert 20e6 < doc["network_revenue_usd_day"] < 40e6
    assert 20e6 < doc["network_revenue_usd_day_30d_ago"] < 40e6
    assert doc["hashprice_after_retarget_usd_per_ph_day"] > doc["hashprice_usd_per_ph_day"]
    assert doc["retarget"]["largest_since"]["height"] == 689_472
    assert len(doc["retarget"]["history"]) == 26
    assert len(doc["hashprice_history"]) == 90
