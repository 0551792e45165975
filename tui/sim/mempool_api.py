"""mempool.space's REST API, served from a :class:`~tui.sim.world.SimChain`.

Shapes follow mempool's backend (``bitcoin.routes.ts``, ``mining-routes.ts``,
``difficulty-adjustment.ts``, ``DifficultyAdjustmentsRepository.ts``, ``BlocksRepository.ts``,
``PricesRepository.ts``) and the esplora block it proxies.  The mining history endpoints
serve the simulated chain plus its deep history of retargets
(``/api/v1/mining/difficulty-adjustments[/:interval]``), per-bucket block fees
(``/api/v1/mining/blocks/fees/:interval``), the block at a time
(``/api/v1/mining/blocks/timestamp/:t``) and the hourly prices of the simulated span from its
:class:`~tui.sim.world.PriceWalk` (``/api/v1/historical-price[?currency=&timestamp=]``).
Every request first lets the chain catch up with the clock (:meth:`SimChain.advance`), then
answers from memory; only the fee buckets walk the blocks of their interval (the daily
hashrate history and the hourly prices are cached by the chain).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache

from tui.sim.http import Request, Response
from tui.sim.world import FX_RATES, INTERVALS, SimBlock, SimChain, block_pool, block_stats

__all__ = ["MempoolApi"]

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_BLOCKS_PAGE = 15
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^/api/blocks/tip/height$"), "tip_height"),
    (re.compile(r"^/api/blocks/tip/hash$"), "tip_hash"),
    (re.compile(r"^/api/v1/difficulty-adjustment$"), "difficulty_adjustment"),
    (re.compile(r"^/api/v1/blocks$"), "blocks"),
    (re.compile(r"^/api/v1/blocks/(?P<height>[^/]+)$"), "blocks"),
    (re.compile(r"^/api/v1/block/(?P<hash>[^/]+)$"), "block_extended"),
    (re.compile(r"^/api/block-height/(?P<height>[^/]+)$"), "block_height"),
    (re.compile(r"^/api/block/(?P<hash>[^/]+)$"), "block"),
    (re.compile(r"^/api/block/(?P<hash>[^/]+)/header$"), "block_header"),
    (re.compile(r"^/api/v1/mining/hashrate/(?P<interval>[^/]+)$"), "hashrate"),
    (re.compile(r"^/api/v1/prices$"), "prices"),
    (re.compile(r"^/api/v1/mining/difficulty-adjustments$"), "difficulty_adjustments"),
    (re.compile(r"^/api/v1/mining/difficulty-adjustments/(?P<interval>[^/]+)$"),
     "difficulty_adjustments"),
    (re.compile(r"^/api/v1/mining/blocks/fees/(?P<interval>[^/]+)$"), "block_fees"),
    (re.compile(r"^/api/v1/mining/blocks/timestamp/(?P<timestamp>[^/]+)$"), "height_at"),
    (re.compile(r"^/api/v1/historical-price$"), "historical_price"),
]
_POSITIVE_INT = re.compile(r"^[1-9][0-9]*$")


class MempoolApi:
    """The request handler: ``MempoolApi(chain)(request) -> Response``."""

    def __init__(self, chain: SimChain) -> None:
        self.chain = chain

    def __call__(self, request: Request) -> Response:
        self.chain.advance()
        if request.method != "GET":
            return Response.text(f"Cannot {request.method} {request.path}", 404)
        path = request.path.rstrip("/") or "/"
        for pattern, name in _ROUTES:
            m = pattern.match(path)
            if m:
                handler = getattr(self, "_" + name)
                if name == "historical_price":
                    return handler(request.query)
                return handler(**m.groupdict())
        return Response.text(f"Cannot GET {request.path}", 404)

    # ---------------------------------------------------------------- esplora-style

    def _tip_height(self) -> Response:
        return Response.text(str(self.chain.tip_height))

    def _tip_hash(self) -> Response:
        return Response.text(self.chain.tip.hash)

    def _block_height(self, height: str) -> Response:
        h = _parse_height(height)
        blk = self.chain.block(h) if h is not None else None
        if blk is None:
            return Response.text("Block not found", 404)
        return Response.text(blk.hash)

    def _find(self, block_hash: str) -> SimBlock | Response:
        if not _HEX64.match(block_hash):
            return Response.text("Invalid hex string", 400)
        blk = self.chain.block_by_hash(block_hash)
        if blk is None:
            return Response.text("Block not found", 404)
        return blk

    def _block(self, hash: str) -> Response:  # noqa: A002 - route parameter name
        blk = self._find(hash)
        if isinstance(blk, Response):
            return blk
        return Response.json(esplora_block(blk))

    def _block_header(self, hash: str) -> Response:  # noqa: A002
        blk = self._find(hash)
        if isinstance(blk, Response):
            return blk
        return Response.text(blk.header_hex())

    # ---------------------------------------------------------------- mempool v1

    def _block_extended(self, hash: str) -> Response:  # noqa: A002
        blk = self._find(hash)
        if isinstance(blk, Response):
            return blk
        return Response.json(extended_block(blk))

    def _blocks(self, height: str | None = None) -> Response:
        chain = self.chain
        start = chain.tip_height
        if height is not None:
            h = _parse_height(height)
            if h is None:
                return Response.text("Failed to get blocks", 500)
            start = min(h, start)
        page = chain.blocks(start - _BLOCKS_PAGE + 1, start)
        return Response.json([extended_block(b) for b in reversed(page)])  # cached, read-only

    def _difficulty_adjustment(self) -> Response:
        now = int(self.chain.clock())
        p = self.chain.retarget_projection(now)
        return Response.json(
            {
                "progressPercent": p.progress_percent,
                "difficultyChange": p.difficulty_change,
                "estimatedRetargetDate": round(p.estimated_retarget_time * 1000),
                "remainingBlocks": p.remaining_blocks,
                "remainingTime": round(p.remaining_time * 1000),
                "previousRetarget": p.previous_retarget,
                "previousTime": p.previous_time,
                "nextRetargetHeight": p.next_retarget_height,
                "timeAvg": round(p.time_avg * 1000),
                "adjustedTimeAvg": round(p.adjusted_time_avg * 1000),
                "timeOffset": 0,
                "expectedBlocks": p.expected_blocks,
            }
        )

    def _hashrate(self, interval: str) -> Response:
        if interval not in INTERVALS:
            return Response.text("Invalid interval", 400)
        chain = self.chain
        now = chain.clock()
        hashrates = [
            {"timestamp": ts, "avgHashrate": value}
            for ts, value in chain.daily_hashrates(interval, now)
        ]
        difficulty = [
            {"time": t, "height": h, "difficulty": d, "adjustment": adj}
            for t, h, d, adj in chain.difficulty_adjustments(interval, now)
        ]
        return Response.json(
            {
                "hashrates": hashrates,
                "difficulty": difficulty,
                "currentHashrate": chain.network_hashps(1008),
                "currentDifficulty": chain.tip.difficulty,
            }
        )

    def _prices(self) -> Response:
        return Response.json(self.chain.prices())

    def _difficulty_adjustments(self, interval: str | None = None) -> Response:
        """``[[time, height, difficulty, ratio new/old], ...]`` newest first (mempool's
        ``$getRawAdjustments``; an unknown interval means all, as ``getSqlInterval`` does)."""
        period = interval if interval in INTERVALS else "all"
        rows = self.chain.difficulty_adjustments(period, self.chain.clock())
        return Response.json([[t, h, d, adj] for t, h, d, adj in reversed(rows)])

    def _block_fees(self, interval: str) -> Response:
        # mempool's getSqlInterval maps an unknown interval to "all" (daily buckets)
        period = interval if interval in INTERVALS else "all"
        return Response.json(self.chain.fee_buckets(period, self.chain.clock()))

    def _height_at(self, timestamp: str) -> Response:
        now = self.chain.clock()
        if not _POSITIVE_INT.match(timestamp) or int(timestamp) > now + 86_400:
            return Response.text("Failed to get height from timestamp", 500)
        blk = self.chain.height_at(int(timestamp))
        if blk is None:
            return Response.text("Failed to get height from timestamp", 500)
        iso = datetime.fromtimestamp(blk.time, tz=timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z")
        return Response.json({"height": blk.height, "hash": blk.hash, "timestamp": iso})

    def _historical_price(self, query: dict[str, str]) -> Response:
        """``{"prices": [{"time", "USD", ...}], "exchangeRates": {...}}``: the price nearest at
        or before ``timestamp``, or every stored (hourly) price, newest first."""
        currency = query.get("currency")
        try:
            timestamp = int(query.get("timestamp", "0"))
        except ValueError:
            timestamp = 0
        if currency is not None and currency not in FX_RATES:
            return Response.json(None)
        rows = self.chain.hourly_prices(self.chain.clock())
        if timestamp:
            rows = [r for r in rows if r[0] <= timestamp][:1] or [(1_279_497_600, 0)]

        def entry(t: int, usd: int) -> dict[str, int]:
            if currency is not None:
                return {"time": t, currency: round(usd * FX_RATES[currency]), "USD": usd}
            return {"time": t, **{c: round(usd * r) for c, r in FX_RATES.items()}}

        rates = {f"USD{c}": round(r, 2) for c, r in FX_RATES.items() if c != "USD"}
        return Response.json({"prices": [entry(t, u) for t, u in rows],
                              "exchangeRates": rates})


def _parse_height(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def esplora_block(blk: SimBlock) -> dict[str, object]:
    """``GET /api/block/:hash`` (esplora's block object)."""
    return {
        "id": blk.hash,
        "height": blk.height,
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


@lru_cache(maxsize=512)
def extended_block(blk: SimBlock) -> dict[str, object]:
    """One element of ``GET /api/v1/blocks``: the esplora block plus mempool's ``extras``."""
    stats = block_stats(blk)
    pid, name, slug, tag = block_pool(blk)
    pct = stats["feerate_percentiles"]
    assert isinstance(pct, list)
    n = blk.tx_count - 1
    coinbase_raw = (
        "03" + blk.height.to_bytes(3, "little").hex() + tag.encode().hex() + blk.hash[-16:]
    )
    address = "bc1q" + blk.hash[-38:]
    return {
        "id": blk.hash,
        "height": blk.height,
        "version": blk.version,
        "timestamp": blk.time,
        "bits": blk.bits,
        "nonce": blk.nonce,
        "difficulty": blk.difficulty,
        "merkle_root": blk.merkle_root,
        "tx_count": blk.tx_count,
        "size": blk.size,
        "weight": blk.weight,
        "previousblockhash": blk.prev_hash,
        "mediantime": blk.mediantime,
        "stale": False,
        "extras": {
            "reward": blk.reward,
            "coinbaseRaw": coinbase_raw,
            "orphans": [],
            "medianFee": float(pct[2]),
            "feeRange": [float(stats["minfeerate"]), *map(float, pct), float(stats["maxfeerate"])],
            "totalFees": blk.fees,
            "avgFee": stats["avgfee"],
            "avgFeeRate": stats["avgfeerate"],
            "utxoSetChange": stats["utxo_increase"],
            "avgTxSize": round(stats["total_size"] / n * 100) * 0.01 if n else 0,
            "totalInputs": stats["ins"],
            "totalOutputs": stats["outs"],
            "totalOutputAmt": stats["total_out"],
            "segwitTotalTxs": stats["swtxs"],
            "segwitTotalSize": stats["swtotal_size"],
            "segwitTotalWeight": stats["swtotal_weight"],
            "feePercentiles": None,
            "virtualSize": blk.weight / 4,
            "coinbaseAddress": address,
            "coinbaseAddresses": [address],
            "coinbaseSignature": "OP_0 OP_PUSHBYTES_20 " + blk.hash[-40:],
            "coinbaseSignatureAscii": tag,
            "header": blk.header_hex(),
            "utxoSetSize": None,
            "totalInputAmt": None,
            "pool": {"id": pid, "name": name, "slug": slug, "minerNames": None},
            "matchRate": 100,
            "expectedFees": blk.fees,
            "expectedWeight": blk.weight,
            "similarity": 0.99,
        },
    }
