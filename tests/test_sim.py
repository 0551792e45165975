"""The simulated network (tui/sim): consensus, scenario figures, HTTP servers, RPC, faults."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tui.chain import (
    bits_to_target,
    block_subsidy,
    block_work,
    difficulty_from_bits,
    next_work_required,
)
from tui.sim import SimChain, run_sim_cli, start_sim
from tui.sim.http import Faults, HttpServer, Response, check_loopback
from tui.sim.world import DAY, EH, calc_bits_difference

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_769_900_000.0  # 2026-01-31 22:53:20 UTC


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def jan() -> SimChain:
    """A read-only jan2026 chain at a fixed clock (never advanced: the clock never moves)."""
    return SimChain("jan2026", seed=2026, clock=FakeClock())


@pytest.fixture
async def sim(jan: SimChain):
    s = await start_sim(chain=jan)
    yield s
    await s.stop()


def _auth(sim) -> tuple[str, str]:
    user, secret = sim.cookie_path.read_text().split(":", 1)
    return user, secret


async def _rpc(client: httpx.AsyncClient, method: str, *params, id=1) -> httpx.Response:
    return await client.post(
        "/", json={"jsonrpc": "1.0", "id": id, "method": method, "params": list(params)}
    )


# ------------------------------------------------------------------------ the chain


def test_build_is_fast_and_deep_enough():
    best = min(_timed_build() for _ in range(2))
    assert best < 0.6, f"building the jan2026 chain took {best:.3f}s"


def _timed_build() -> float:
    t = time.perf_counter()
    chain = SimChain("jan2026", seed=2026, clock=FakeClock())
    elapsed = time.perf_counter() - t
    assert chain.start_height % 2016 == 0
    assert chain.tip_height == 935_008
    assert len(chain) == 935_008 - chain.start_height + 1 > 15_000
    assert chain.tip.time - chain.block(chain.start_height).time >= 97 * DAY
    return elapsed


def test_retargets_follow_consensus(jan: SimChain):
    retargets = 0
    for h in range(jan.start_height + 1, jan.tip_height + 1):
        blk, prev = jan.block(h), jan.block(h - 1)
        if h % 2016:
            assert blk.bits == prev.bits
        else:
            first = jan.block(h - 2016)
            assert blk.bits == next_work_required(prev.bits, first.time, prev.time)
            retargets += 1
        assert blk.difficulty == difficulty_from_bits(blk.bits)
    assert retargets == 7
    assert len({jan.block(h).bits for h in range(jan.start_height, jan.tip_height + 1, 2016)}) > 3


def test_headers_link_and_obey_median_time_past(jan: SimChain):
    out_of_order = 0
    for h in range(jan.start_height + 1, jan.tip_height + 1):
        blk, prev = jan.block(h), jan.block(h - 1)
        assert blk.prev_hash == prev.hash
        assert blk.chainwork == prev.chainwork + block_work(blk.bits)
        assert int(blk.hash, 16) <= bits_to_target(blk.bits)
        assert blk.hash.startswith("0" * 18) and len(blk.hash) == 64
        assert blk.subsidy == block_subsidy(h) == 312_500_000
        if h - 11 >= jan.start_height:
            last11 = sorted(jan.block(k).time for k in range(h - 11, h))
            assert blk.time > last11[5], f"MTP violated at {h}"
            assert blk.mediantime == sorted(jan.block(k).time for k in range(h - 10, h + 1))[5]
        if blk.time < prev.time:
            out_of_order += 1
        assert abs(blk.time - blk.arrival) < 2 * 3600
    assert out_of_order > 20  # clients must cope with timestamps going backwards


def test_blocks_look_like_mainnet(jan: SimChain):
    blocks = jan.blocks(jan.tip_height - 2015, jan.tip_height)
    fees_btc = statistics.median(b.fees for b in blocks) / 1e8
    assert 0.02 <= fees_btc <= 0.05
    assert max(b.fees for b in blocks) > 5 * fees_btc * 1e8  # occasional spikes
    assert all(b.weight <= 4_000_000 for b in blocks)
    assert statistics.median(b.tx_count for b in blocks) > 2000
    assert len({b.hash for b in blocks}) == len(blocks)


def test_jan2026_figures_at_start(jan: SimChain):
    f = jan.figures()
    assert 940 <= f["hashrate_1d_eh"] <= 1000
    assert -15 <= f["vs_peak_percent"] <= -9
    assert 11.3 <= f["epoch_avg_minutes"] <= 11.9
    assert -16 <= f["projected_change_percent"] <= -12
    assert -3 <= f["previous_retarget_percent"] < 0
    assert f["price_usd"] == pytest.approx(71_000)
    # The pinned values (seed 2026): a change to the generator shows up here first.
    assert f["hashrate_1d_eh"] == pytest.approx(969.5, abs=0.5)
    assert f["epoch_avg_minutes"] == pytest.approx(11.62, abs=0.01)
    assert f["projected_change_percent"] == pytest.approx(-13.92, abs=0.02)


def test_jan2026_vs_peak_stays_in_range_whatever_the_time_of_day():
    values = []
    for hour in range(0, 24, 6):
        chain = SimChain("jan2026", seed=2026, clock=FakeClock(T0 + hour * 3600))
        values.append(chain.figures()["vs_peak_percent"])
    assert all(-15.5 <= v <= -9 for v in values), values


def test_deterministic_from_seed_and_clock():
    a = SimChain("steady", seed=7, clock=FakeClock())
    b = SimChain("steady", seed=7, clock=FakeClock())
    c = SimChain("steady", seed=8, clock=FakeClock())
    assert a.tip == b.tip and a.block(a.start_height + 5000) == b.block(b.start_height + 5000)
    assert a.tip.hash != c.tip.hash
    assert T0 - 7 * 60 <= a.tip.arrival <= T0 - 60  # the tip arrived minutes before clock()


def test_steady_scenario_blocks_every_ten_minutes():
    chain = SimChain("steady", seed=2026, clock=FakeClock())
    first, tip = chain.block(chain.start_height), chain.tip
    mean = (tip.arrival - first.arrival) / (tip.height - first.height)
    assert mean == pytest.approx(600, rel=0.03)
    assert abs(chain.previous_retarget()) < 5
    assert chain.network_hashps(2016) / EH == pytest.approx(1000, rel=0.05)


def test_advance_mines_poisson_blocks():
    clock = FakeClock()
    chain = SimChain("steady", seed=2026, clock=clock)
    tip0 = chain.tip
    assert chain.advance() == []  # nothing due yet
    expected = chain.expected_interval()
    clock.t += 30 * DAY
    new = chain.advance()
    assert chain.tip is new[-1] and new[0].prev_hash == tip0.hash
    assert all(b.arrival <= clock.t for b in new) and chain.next_arrival > clock.t
    intervals = [b.arrival - a.arrival for a, b in zip([tip0, *new], new, strict=False)]
    assert len(intervals) > 3500
    assert statistics.fmean(intervals) == pytest.approx(expected, rel=0.05)
    # exponential: the standard deviation equals the mean, ~37% of gaps exceed the mean
    assert statistics.pstdev(intervals) == pytest.approx(expected, rel=0.1)
    share = sum(i > expected for i in intervals) / len(intervals)
    assert 0.33 < share < 0.41
    # the new blocks obey consensus too
    for b in new:
        prev = chain.block(b.height - 1)
        if b.height % 2016 == 0:
            first = chain.block(b.height - 2016)
            assert b.bits == next_work_required(prev.bits, first.time, prev.time)
        else:
            assert b.bits == prev.bits
        assert b.time > sorted(x.time for x in chain.blocks(b.height - 11, b.height - 1))[5]
    # and the daily history grew
    assert chain.daily_hashrates()[-1][0] == int(clock.t // DAY) * DAY


def test_getnetworkhashps_matches_core_by_hand(jan: SimChain):
    tip = jan.tip_height
    for n, height in ((144, -1), (1008, -1), (120, tip - 1000), (5, tip - 3)):
        top = tip if height == -1 else height
        span = jan.blocks(top - n, top)
        times = [b.time for b in span]
        work = sum(block_work(b.bits) for b in span[1:])
        expected = work / (max(times) - min(times))
        assert jan.network_hashps(n, height) == pytest.approx(expected, rel=1e-12)
        diff_based = sum(b.difficulty * 2**32 for b in span[1:]) / (max(times) - min(times))
        assert jan.network_hashps(n, height) == pytest.approx(diff_based, rel=1e-4)
    since_change = tip % 2016 + 1
    assert jan.network_hashps(-1) == jan.network_hashps(since_change)
    for bad in ((0, -1), (-2, -1), (10, tip + 1), (10, -5)):
        with pytest.raises(ValueError):
            jan.network_hashps(*bad)


def test_daily_hashrate_is_mempools(jan: SimChain):
    daily = jan.daily_hashrates("3m")
    assert 89 <= len(daily) <= 92
    assert all(ts % DAY == 0 for ts, _ in daily)
    assert daily[-1][0] == int(T0 // DAY) * DAY  # the last complete UTC day
    ts, value = daily[-5]
    inside = [b for b in jan.blocks(jan.start_height, jan.tip_height) if ts - DAY <= b.time <= ts]
    last = max(b.height for b in inside)
    assert value == jan.network_hashps(len(inside), last)
    assert len(jan.daily_hashrates("1m")) in (30, 31)
    assert len(jan.daily_hashrates("all")) >= len(daily)


def test_price_walk_is_slow_and_deterministic(jan: SimChain):
    assert jan.price_usd(T0) == pytest.approx(71_000)
    day = [jan.price_usd(T0 + m * 60) for m in range(0, 1440, 10)]
    assert all(60_000 < p < 82_000 for p in day)
    assert len(set(day)) > 100
    again = SimChain("jan2026", seed=2026, clock=FakeClock())
    assert again.price_usd(T0 + 3600) == jan.price_usd(T0 + 3600)
    assert again.price_usd(T0 - 3600) == jan.price_usd(T0 - 3600)
    p = jan.prices(T0 + 125)
    assert p["time"] == int((T0 + 125) // 60) * 60
    assert set(p) == {"time", "USD", "EUR", "GBP", "CAD", "CHF", "AUD", "JPY"}
    assert p["EUR"] == round(jan.price_usd(p["time"]) * 0.855)


# ------------------------------------------------------------------------ mempool REST


async def test_mempool_tip_and_blocks(sim, jan: SimChain):
    async with httpx.AsyncClient(base_url=sim.mempool_url, timeout=5) as c:
        r = await c.get("/api/blocks/tip/height")
        assert r.status_code == 200 and r.text == "935008"
        assert r.headers["content-type"].startswith("text/plain")
        assert (await c.get("/api/blocks/tip/hash")).text == jan.tip.hash

        blocks = (await c.get("/api/v1/blocks")).json()
        assert [b["height"] for b in blocks] == list(range(935_008, 934_993, -1))
        top = blocks[0]
        for key in (
            "id",
            "height",
            "version",
            "timestamp",
            "bits",
            "nonce",
            "difficulty",
            "merkle_root",
            "tx_count",
            "size",
            "weight",
            "previousblockhash",
            "mediantime",
            "extras",
        ):
            assert key in top
        assert top["id"] == jan.tip.hash and top["previousblockhash"] == blocks[1]["id"]
        assert isinstance(top["bits"], int) and top["bits"] == jan.tip.bits
        assert top["difficulty"] == jan.tip.difficulty and top["timestamp"] == jan.tip.time
        ex = top["extras"]
        assert ex["totalFees"] == jan.tip.fees
        assert ex["reward"] == jan.tip.fees + 312_500_000
        assert len(ex["feeRange"]) == 7 and ex["feeRange"] == sorted(ex["feeRange"])
        for key in ("medianFee", "avgFee", "avgFeeRate", "pool", "coinbaseRaw", "header"):
            assert key in ex

        older = (await c.get("/api/v1/blocks/930000")).json()
        assert [b["height"] for b in older] == list(range(930_000, 929_985, -1))
        beyond = (await c.get("/api/v1/blocks/999999")).json()
        assert beyond[0]["height"] == 935_008


async def test_mempool_block_lookups(sim, jan: SimChain):
    blk = jan.block(934_000)
    async with httpx.AsyncClient(base_url=sim.mempool_url, timeout=5) as c:
        r = await c.get("/api/block-height/934000")
        assert r.status_code == 200 and r.text == blk.hash
        r = await c.get("/api/block-height/999999")
        assert r.status_code == 404 and r.text == "Block not found"
        b = (await c.get(f"/api/block/{blk.hash}")).json()
        assert b == {
            "id": blk.hash,
            "height": 934_000,
            "version": blk.version,
            "timestamp": blk.time,
            "tx_count": blk.tx_count,
            "size": blk.size,
            "weight": blk.weight,
            "merkle_root": blk.merkle_root,
            "previousblockhash": blk.prev_hash,
            "mediantime": blk.mediantime,
            "nonce": blk.nonce,
            "bits": blk.bits,
            "difficulty": blk.difficulty,
        }
        r = await c.get("/api/block/" + "ab" * 32)
        assert r.status_code == 404 and r.text == "Block not found"
        assert (await c.get("/api/block/xyz")).status_code == 400
        r = await c.get("/api/nothing/here")
        assert r.status_code == 404 and "Cannot GET" in r.text


async def test_mempool_difficulty_adjustment(sim, jan: SimChain):
    async with httpx.AsyncClient(base_url=sim.mempool_url, timeout=5) as c:
        da = (await c.get("/api/v1/difficulty-adjustment")).json()
    p = jan.retarget_projection(int(T0))
    assert da["progressPercent"] == pytest.approx(1600 / 2016 * 100)
    assert da["remainingBlocks"] == 416 and da["nextRetargetHeight"] == 935_424
    assert da["difficultyChange"] == p.difficulty_change
    assert -16 <= da["difficultyChange"] <= -12
    assert da["timeAvg"] == round(p.time_avg * 1000) and isinstance(da["timeAvg"], int)
    assert da["remainingTime"] == 416 * da["adjustedTimeAvg"]
    assert da["estimatedRetargetDate"] == da["remainingTime"] + int(T0) * 1000
    assert da["previousRetarget"] == calc_bits_difference(
        jan.block(931_392).bits, jan.block(933_408).bits
    )
    assert da["previousTime"] == jan.block(933_408).time


async def test_mempool_hashrate_and_prices(sim, jan: SimChain):
    async with httpx.AsyncClient(base_url=sim.mempool_url, timeout=5) as c:
        hr = (await c.get("/api/v1/mining/hashrate/3m")).json()
        assert set(hr) == {"hashrates", "difficulty", "currentHashrate", "currentDifficulty"}
        assert [(x["timestamp"], x["avgHashrate"]) for x in hr["hashrates"]] == [
            tuple(row) for row in jan.daily_hashrates("3m")
        ]
        assert hr["currentHashrate"] == jan.network_hashps(1008)
        assert hr["currentDifficulty"] == jan.tip.difficulty
        adj = hr["difficulty"][-1]
        assert adj["height"] == 933_408 and adj["time"] == jan.block(933_408).time
        assert adj["adjustment"] == round(
            jan.block(933_408).difficulty / jan.block(933_407).difficulty, 6
        )
        for period in ("1m", "6m", "1y", "all"):
            assert (await c.get(f"/api/v1/mining/hashrate/{period}")).status_code == 200
        assert (await c.get("/api/v1/mining/hashrate/9q")).status_code == 400
        prices = (await c.get("/api/v1/prices")).json()
        assert prices["USD"] == 71_000 and prices["EUR"] == round(71_000 * 0.855)


async def test_servers_follow_the_clock():
    clock = FakeClock()
    async with await start_sim(scenario="steady", clock=clock) as s:
        async with httpx.AsyncClient(base_url=s.mempool_url, timeout=5) as c:
            h0 = int((await c.get("/api/blocks/tip/height")).text)
            clock.t += 6 * 3600
            h1 = int((await c.get("/api/blocks/tip/height")).text)
        assert 15 < h1 - h0 < 60 and s.chain.tip_height == h1


# ------------------------------------------------------------------------ JSON-RPC


async def test_rpc_cookie_auth(sim):
    assert sim.cookie_path.name == ".cookie" and sim.cookie_path.parent == sim.datadir
    user, secret = _auth(sim)
    assert user == "__cookie__" and len(secret) == 64
    assert os.stat(sim.cookie_path).st_mode & 0o777 == 0o600
    async with httpx.AsyncClient(base_url=sim.rpc_url, auth=(user, secret), timeout=5) as c:
        r = await _rpc(c, "getblockcount")
        assert r.status_code == 200 and r.json() == {"result": 935008, "error": None, "id": 1}
    for auth in (("__cookie__", "0" * 64), ("alice", secret)):
        async with httpx.AsyncClient(base_url=sim.rpc_url, auth=auth, timeout=5) as c:
            r = await _rpc(c, "getblockcount")
            assert r.status_code == 401 and r.content == b""
            assert r.headers["www-authenticate"] == 'Basic realm="jsonrpc"'
    async with httpx.AsyncClient(base_url=sim.rpc_url, timeout=5) as c:
        assert (await _rpc(c, "getblockcount")).status_code == 401
        bad = {"Authorization": "Basic " + base64.b64encode(b"nonsense").decode()}
        assert (await c.post("/", content=b"{}", headers=bad)).status_code == 401
        r = await c.get("/", auth=(user, secret))
        assert r.status_code == 405


async def test_rpc_fixed_user_password(jan: SimChain):
    async with await start_sim(chain=jan, rpc_user="alice", rpc_password="s3cret") as s:
        async with httpx.AsyncClient(base_url=s.rpc_url, auth=("alice", "s3cret")) as c:
            assert (await _rpc(c, "getblockcount")).json()["result"] == 935_008
        async with httpx.AsyncClient(base_url=s.rpc_url, auth=_auth(s)) as c:
            assert (await _rpc(c, "getblockcount")).status_code == 200


async def test_rpc_status_codes_and_batches(sim, jan: SimChain):
    async with httpx.AsyncClient(base_url=sim.rpc_url, auth=_auth(sim), timeout=5) as c:
        r = await _rpc(c, "getblockhash", 1)
        assert r.status_code == 500
        assert r.json() == {
            "result": None,
            "error": {"code": -8, "message": "Block height out of range"},
            "id": 1,
        }
        r = await _rpc(c, "frobnicate")
        assert r.status_code == 404 and r.json()["error"]["code"] == -32601
        assert r.json()["error"]["message"] == "Method not found"
        r = await c.post("/", json={"id": 3, "params": []})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32600
        r = await c.post("/", content=b"{not json")
        assert r.status_code == 500 and r.json()["error"]["code"] == -32700

        batch = [
            {"jsonrpc": "1.0", "id": "a", "method": "getblockhash", "params": [934_000]},
            {"jsonrpc": "1.0", "id": "b", "method": "getblockhash", "params": [10**7]},
            {"jsonrpc": "1.0", "id": "c", "method": "nosuchmethod", "params": []},
            {"jsonrpc": "1.0", "id": "d", "method": "getbestblockhash"},
        ]
        r = await c.post("/", json=batch)
        assert r.status_code == 200
        replies = {x["id"]: x for x in r.json()}
        assert replies["a"] == {"result": jan.block(934_000).hash, "error": None, "id": "a"}
        assert replies["b"]["error"]["code"] == -8 and replies["b"]["result"] is None
        assert replies["c"]["error"]["code"] == -32601
        assert replies["d"]["result"] == jan.tip.hash

        r = await c.post(
            "/", json={"jsonrpc": "2.0", "id": 9, "method": "getblockhash", "params": [1]}
        )
        assert r.status_code == 200 and r.json()["error"]["code"] == -8
        r = await c.post(
            "/", json={"id": 1, "method": "getblockhash", "params": {"height": 934_000}}
        )
        assert r.json()["result"] == jan.block(934_000).hash


async def test_rpc_chain_methods(sim, jan: SimChain):
    tip = jan.tip
    async with httpx.AsyncClient(base_url=sim.rpc_url, auth=_auth(sim), timeout=5) as c:
        info = (await _rpc(c, "getblockchaininfo")).json()["result"]
        assert info["chain"] == "main" and info["blocks"] == info["headers"] == 935_008
        assert info["bestblockhash"] == tip.hash and info["difficulty"] == tip.difficulty
        assert info["chainwork"] == f"{tip.chainwork:064x}" and len(info["chainwork"]) == 64
        assert info["mediantime"] == tip.mediantime and info["pruned"] is False
        assert "pruneheight" not in info

        blk = jan.block(934_500)
        hdr = (await _rpc(c, "getblockheader", blk.hash)).json()["result"]
        assert hdr["height"] == 934_500 and hdr["confirmations"] == 935_008 - 934_500 + 1
        assert hdr["bits"] == f"{blk.bits:08x}" and len(hdr["bits"]) == 8
        assert int(hdr["bits"], 16) == blk.bits
        assert hdr["chainwork"] == f"{blk.chainwork:064x}"
        assert hdr["time"] == blk.time and hdr["mediantime"] == blk.mediantime
        assert hdr["difficulty"] == blk.difficulty and hdr["nTx"] == blk.tx_count
        assert hdr["previousblockhash"] == blk.prev_hash
        assert hdr["nextblockhash"] == jan.block(934_501).hash
        top = (await _rpc(c, "getblockheader", tip.hash, True)).json()["result"]
        assert top["confirmations"] == 1 and "nextblockhash" not in top
        raw = (await _rpc(c, "getblockheader", blk.hash, False)).json()["result"]
        assert len(raw) == 160 and bytes.fromhex(raw)[72:76] == blk.bits.to_bytes(4, "little")
        r = await _rpc(c, "getblockheader", "00" * 32)
        assert r.status_code == 500 and r.json()["error"] == {
            "code": -5,
            "message": "Block not found",
        }
        r = await _rpc(c, "getblockheader", "xyz")
        assert r.json()["error"]["code"] == -8

        assert (await _rpc(c, "getdifficulty")).json()["result"] == tip.difficulty
        assert (await _rpc(c, "getbestblockhash")).json()["result"] == tip.hash
        mining = (await _rpc(c, "getmininginfo")).json()["result"]
        assert mining["blocks"] == 935_008 and mining["networkhashps"] == jan.network_hashps()


async def test_rpc_getnetworkhashps(sim, jan: SimChain):
    tip = jan.tip_height
    async with httpx.AsyncClient(base_url=sim.rpc_url, auth=_auth(sim), timeout=5) as c:
        r = (await _rpc(c, "getnetworkhashps")).json()["result"]
        span = jan.blocks(tip - 120, tip)
        times = [b.time for b in span]
        by_hand = (span[-1].chainwork - span[0].chainwork) / (max(times) - min(times))
        assert r == pytest.approx(by_hand, rel=1e-12)
        assert (await _rpc(c, "getnetworkhashps", 144)).json()["result"] == jan.network_hashps(144)
        at = (await _rpc(c, "getnetworkhashps", 144, 930_000)).json()["result"]
        assert at == jan.network_hashps(144, 930_000)
        epoch = (await _rpc(c, "getnetworkhashps", -1)).json()["result"]
        first = jan.block(tip - tip % 2016 - 1)
        times = [b.time for b in jan.blocks(first.height, tip)]
        assert epoch == pytest.approx(
            (jan.tip.chainwork - first.chainwork) / (max(times) - min(times)), rel=1e-12
        )
        r = await _rpc(c, "getnetworkhashps", 0)
        assert r.status_code == 500 and r.json()["error"] == {
            "code": -8,
            "message": "Invalid nblocks. Must be a positive number or -1.",
        }
        r = await _rpc(c, "getnetworkhashps", 10, tip + 5)
        assert r.json()["error"]["message"] == "Block does not exist at specified height"


async def test_rpc_getblockstats_and_pruning(jan: SimChain):
    async with await start_sim(chain=jan, prune_below=934_000) as s:
        async with httpx.AsyncClient(base_url=s.rpc_url, auth=_auth(s), timeout=5) as c:
            blk = jan.block(934_900)
            r = (await _rpc(c, "getblockstats", 934_900, ["totalfee", "subsidy", "time"])).json()
            assert r["result"] == {"totalfee": blk.fees, "subsidy": 312_500_000, "time": blk.time}
            full = (await _rpc(c, "getblockstats", blk.hash)).json()["result"]
            assert full["height"] == 934_900 and full["txs"] == blk.tx_count
            assert len(full["feerate_percentiles"]) == 5 and full["totalfee"] == blk.fees
            r = await _rpc(c, "getblockstats", 933_000, ["totalfee"])
            assert r.status_code == 500
            assert r.json()["error"] == {"code": -1, "message": "Block not available (pruned data)"}
            r = await _rpc(c, "getblockstats", 934_900, ["bogus"])
            assert r.json()["error"] == {
                "code": -8,
                "message": "Invalid selected statistic 'bogus'",
            }
            r = await _rpc(c, "getblockstats", 10**7)
            assert (
                r.json()["error"]["message"]
                == "Target block height 10000000 after current tip 935008"
            )
            info = (await _rpc(c, "getblockchaininfo")).json()["result"]
            assert info["pruned"] is True and info["pruneheight"] == 934_000
            s.rpc_api.prune_below = None  # settable at runtime
            assert (await _rpc(c, "getblockstats", 933_000, ["totalfee"])).status_code == 200


# ------------------------------------------------------------------------ faults, lifecycle


async def test_fault_modes(sim):
    faults = sim.mempool_server.faults
    async with httpx.AsyncClient(base_url=sim.mempool_url, timeout=5) as c:
        faults.set("http500", count=1)
        assert (await c.get("/api/v1/blocks")).status_code == 500
        assert (await c.get("/api/v1/blocks")).status_code == 200  # count ran out
        assert faults.mode is None

        faults.set("malformed", count=1)
        r = await c.get("/api/v1/difficulty-adjustment")
        assert r.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            r.json()

        good = (await c.get("/api/v1/difficulty-adjustment")).content
        faults.set("truncated", count=1)
        r = await c.get("/api/v1/difficulty-adjustment")
        assert r.status_code == 200 and int(r.headers["content-length"]) == len(r.content)
        assert 0 < len(r.content) < len(good) and good.startswith(r.content)
        with pytest.raises(json.JSONDecodeError):
            r.json()

        faults.set("ratelimit", count=2, retry_after=7)
        for _ in range(2):
            r = await c.get("/api/blocks/tip/height")
            assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert (await c.get("/api/blocks/tip/height")).status_code == 200

        faults.set("slow", delay=0.5)
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/api/blocks/tip/height", timeout=0.1)
        faults.clear()
    async with httpx.AsyncClient(base_url=sim.mempool_url, timeout=5) as c:
        faults.set("slow", count=1, delay=0.2)
        t = time.perf_counter()
        assert (await c.get("/api/blocks/tip/height")).text == "935008"
        assert time.perf_counter() - t >= 0.2
    with pytest.raises(ValueError):
        faults.mode = "explode"


async def test_rpc_faults(sim):
    sim.rpc_server.faults.set("truncated", count=1)
    async with httpx.AsyncClient(base_url=sim.rpc_url, auth=_auth(sim), timeout=5) as c:
        r = await _rpc(c, "getblockchaininfo")
        with pytest.raises(json.JSONDecodeError):
            r.json()
        sim.rpc_server.faults.set("http500", count=1)
        assert (await _rpc(c, "getblockcount")).status_code == 500
        assert (await _rpc(c, "getblockcount")).json()["result"] == 935_008


async def test_stop_and_restart_on_the_same_port(sim):
    server = sim.mempool_server
    port = server.port
    async with httpx.AsyncClient(base_url=sim.mempool_url, timeout=2) as c:
        assert (await c.get("/api/blocks/tip/height")).status_code == 200  # keep-alive open
        await server.stop()
        assert not server.running
        with pytest.raises(httpx.ConnectError):
            await c.get("/api/blocks/tip/height")
        await server.start()
        assert server.port == port and server.url == sim.mempool_url
        assert (await c.get("/api/blocks/tip/height")).text == "935008"
    # the RPC side keeps its cookie across a restart unless rotated like a node restart
    secret = _auth(sim)
    await sim.rpc_server.stop()
    await sim.rpc_server.start()
    async with httpx.AsyncClient(base_url=sim.rpc_url, auth=secret, timeout=2) as c:
        assert (await _rpc(c, "getblockcount")).status_code == 200
        sim.rpc_api.write_cookie()
        assert (await _rpc(c, "getblockcount")).status_code == 401


async def test_keep_alive_and_connection_close(sim):
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.mempool_server.port)
    try:
        for _ in range(2):
            writer.write(b"GET /api/blocks/tip/height HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK") and b"keep-alive" in head.lower()
            assert await reader.readexactly(6) == b"935008"
        writer.write(b"GET /api/blocks/tip/hash HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=2)  # server closes: EOF
        assert b"Connection: close" in data and data.endswith(sim.chain.tip.hash.encode())
    finally:
        writer.close()


async def test_loopback_only():
    for host in ("0.0.0.0", "10.0.0.1", "192.168.1.2", "::1", "::", "example.com", ""):
        with pytest.raises(ValueError):
            check_loopback(host)
        with pytest.raises(ValueError):
            HttpServer(lambda r: Response.text("x"), host=host)
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("127.3.2.1") == "127.3.2.1"
    assert check_loopback("localhost") == "127.0.0.1"
    with pytest.raises(ValueError):
        await start_sim(host="0.0.0.0")


def test_faults_object():
    f = Faults()
    assert f.take() is None
    f.set("http500", count=2)
    assert [f.take(), f.take(), f.take()] == ["http500", "http500", None]
    f.mode = "slow"
    assert f.take() == "slow" and f.mode == "slow"  # no count: until cleared
    f.clear()
    assert f.mode is None and f.applied == 3


async def test_temp_datadir_is_removed(jan: SimChain, tmp_path: Path):
    s = await start_sim(chain=jan)
    datadir = s.datadir
    assert (datadir / ".cookie").exists()
    await s.stop()
    assert not datadir.exists()
    s = await start_sim(chain=jan, datadir=tmp_path / "node")
    assert s.cookie_path == tmp_path / "node" / ".cookie" and s.cookie_path.exists()
    await s.stop()
    assert (tmp_path / "node").is_dir() and not s.cookie_path.exists()


# ------------------------------------------------------------------------ CLI


def test_cli_refuses_a_non_loopback_host(capsys):
    assert run_sim_cli(["--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "loopback" in err and "Traceback" not in err
    assert run_sim_cli(["--scenario", "nope"]) == 2


def test_cli_serves_until_sigterm(tmp_path: Path):
    code = (
        "import sys; from tui.sim import run_sim_cli; "
        "rc = run_sim_cli(sys.argv[1:]); "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'textual'], 'textual'; "
        "sys.exit(rc)"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--mempool-port",
            "0",
            "--rpc-port",
            "0",
            "--datadir",
            str(tmp_path),
            "--scenario",
            "steady",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Serving"):
                break
        out = "".join(lines)
        assert "minertop --mempool http://127.0.0.1:" in out
        assert f"--rpc-cookie {tmp_path / '.cookie'}" in out
        url = next(w for w in out.split() if w.startswith("http://127.0.0.1:"))
        assert httpx.get(url + "/api/blocks/tip/height", timeout=5).text == "935008"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, err
    assert "Traceback" not in err
    assert not (tmp_path / ".cookie").exists()


def test_the_simulated_past_price_walks_by_the_hour_toward_its_own_level() -> None:
    """The past is walked one hour per step (the exact 60-minute transition of the minute
    walk): a past minute has the price of the hour step at or before it; the past reverts
    to ``past_level`` (the jan2026 price was falling into the present); the same seed gives
    the same past."""
    import statistics

    from tui.sim.world import PriceWalk

    anchor = 1_769_000_000
    w = PriceWalk(seed=7, anchor=anchor, start=71_000.0, past_level=80_000.0)
    step = anchor // 60 * 60 - 3600  # an hour step of the past
    assert w.usd(step) == w.usd(step + 59 * 60) == w.usd(step + 30)
    assert w.usd(step) != w.usd(step - 60)  # the minute before it is the next step back
    far = [w.usd(anchor - h * 3600) for h in range(24 * 30, 24 * 400, 6)]
    assert statistics.fmean(far) == pytest.approx(80_000, rel=0.04)
    assert PriceWalk(seed=7, anchor=anchor, start=71_000.0, past_level=80_000.0).usd(
        anchor - 86_400 * 45) == w.usd(anchor - 86_400 * 45)
    # one hour of the past moves as much as 60 minutes of the present would, on average
    flat = PriceWalk(seed=3, anchor=anchor, start=71_000.0)
    logs = [math.log(flat.usd(anchor - h * 3600)) for h in range(1, 24 * 365)]
    hourly = statistics.pstdev(b - a for a, b in zip(logs, logs[1:], strict=False))
    assert hourly == pytest.approx(0.0006 * math.sqrt(60), rel=0.05)
