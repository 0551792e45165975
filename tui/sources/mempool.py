"""Chain facts from a mempool.space REST API (the public site or a self-hosted instance).

Public instances rate-limit, so a poll fetches only what changed:

- every poll: ``GET /api/blocks/tip/height`` (plain text).  If the tip is unchanged and the
  cache holds every height of :func:`~tui.model.required_heights`, that is the only request;
- when the tip moved: ``GET /api/v1/blocks`` (the newest 15 blocks, newest first) overwrites
  the recent heights (short reorgs); if the lowest block's ``previousblockhash`` disagrees
  with the cached hash below it, the reorg is deeper and the whole cache is dropped;
- then ``GET /api/v1/blocks/:height`` pages (that height and the 14 below it), greedily from
  the highest missing required height, until every required height is cached;
- ``GET /api/v1/mining/hashrate/3m`` for the daily hashrate history on the first poll and
  then at most hourly.  It is optional: a 404 (a self-hosted instance without mining
  indexing) leaves the history empty until the next hourly try.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tui.model import Block, ChainSnapshot, HashratePoint, required_heights
from tui.sources.base import (
    DEFAULT_TIMEOUT,
    HttpSource,
    RateLimited,
    ShapeError,
    SourceError,
    as_list,
    as_object,
    decode_json,
    get_int,
    get_num,
    get_positive,
    get_str,
    get_time,
    only_source_errors,
    reply_shape,
    to_int,
)

TIP_PATH = "/api/blocks/tip/height"
BLOCKS_PATH = "/api/v1/blocks"
HASHRATE_PATH = "/api/v1/mining/hashrate/3m"
#: Blocks per /api/v1/blocks page.
PAGE_SIZE = 15
#: Seconds between two fetches of the hashrate history.
HISTORY_REFRESH_S = 3600.0
#: Seconds before retrying a failed (non-404) history fetch.
HISTORY_RETRY_S = 300.0
#: Days of history kept (the model's contract: <= 90).
HISTORY_DAYS = 90


@dataclass(frozen=True, slots=True)
class _Cached:
    block: Block
    hash: str
    prev_hash: str | None


def parse_block(item: Any) -> _Cached:
    """One entry of an ``/api/v1/blocks`` page (shape errors raise ShapeError/KeyError)."""
    d = as_object(item, "a block")
    height = get_int(d, "height")
    if height < 0:
        raise ShapeError(f"negative block height {height}")
    prev = d.get("previousblockhash")
    fees: int | None = None
    extras = d.get("extras")
    if extras is not None:
        extras = as_object(extras, "'extras'")
        if extras.get("totalFees") is not None:
            fees = to_int(extras["totalFees"], "totalFees")
    block = Block(
        height=height,
        time=get_time(d, "timestamp"),
        bits=get_int(d, "bits"),
        difficulty=get_positive(d, "difficulty"),
        fees_sat=fees,
    )
    return _Cached(block, get_str(d, "id"), prev if isinstance(prev, str) else None)


def parse_history(doc: Any) -> tuple[HashratePoint, ...]:
    """``/api/v1/mining/hashrate/:period`` → daily points, oldest first, at most 90."""
    d = as_object(doc)
    points = []
    for item in as_list(d["hashrates"], "'hashrates'"):
        p = as_object(item, "a hashrate point")
        points.append(
            HashratePoint(time=get_time(p, "timestamp"), hashrate=get_num(p, "avgHashrate"))
        )
    points.sort(key=lambda p: p.time)
    return tuple(points[-HISTORY_DAYS:])


class MempoolSource(HttpSource):
    """A :class:`~tui.model.ChainSource` reading a mempool.space REST API."""

    def __init__(
        self,
        base_url: str = "https://mempool.space",
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(base_url, kind="mempool", client=client, timeout=timeout, clock=clock)
        self._cache: dict[int, _Cached] = {}
        self._tip: int | None = None  #: tip of the last complete poll
        self._history: tuple[HashratePoint, ...] = ()
        self._history_at: float | None = None  #: when the history was last fetched (or 404)

    # ------------------------------------------------------------------ requests
    async def _tip_height(self) -> int:
        resp = await self._get(TIP_PATH)
        text = resp.content.decode("utf-8", errors="replace").strip()
        if not (text.isascii() and text.isdigit()):
            shown = text[:40] if text else "an empty reply"
            raise self.error(f"unexpected reply on {TIP_PATH}: not a block height: {shown!r}")
        return int(text)

    async def _page(self, height: int | None) -> list[_Cached]:
        path = BLOCKS_PATH if height is None else f"{BLOCKS_PATH}/{height}"
        doc = await self._get_json(path)
        with reply_shape(self.prefix, path):
            page = [parse_block(item) for item in as_list(doc)]
            if not page:
                raise ShapeError("no blocks")
            if height is not None:
                # Only the requested height is demanded (so every page makes progress); an
                # instance that serves fewer than 15 blocks a page just costs more pages.
                if height not in {c.block.height for c in page}:
                    raise ShapeError(f"page does not contain block {height}")
                page = [c for c in page if c.block.height <= height]
        return page

    async def _fetch_history(self) -> None:
        resp = await self._get(HASHRATE_PATH, allow=(404,))
        now = self._now()
        if resp.status_code == 404:
            # Self-hosted without mining indexing: no history, try again in an hour.
            self._history = ()
            self._history_at = now
            return
        doc = decode_json(self.prefix, resp, HASHRATE_PATH)
        with reply_shape(self.prefix, HASHRATE_PATH):
            self._history = parse_history(doc)
        self._history_at = now

    # ------------------------------------------------------------------ cache
    def _store(self, page: list[_Cached]) -> None:
        for c in page:
            self._cache[c.block.height] = c

    def _missing(self, tip: int) -> list[int]:
        return [h for h in required_heights(tip) if h not in self._cache]

    # ------------------------------------------------------------------ poll
    async def fetch(self) -> ChainSnapshot:
        with only_source_errors(self.prefix):
            return await self._fetch()

    async def _fetch(self) -> ChainSnapshot:
        tip = await self._tip_height()
        if tip != self._tip or self._missing(tip):
            if tip != self._tip:
                tip = await self._refresh_recent(tip)
            missing = self._missing(tip)
            while missing:
                h = missing[-1]
                self._store(await self._page(h))
                missing = self._missing(tip)
            self._evict(tip)
            self._tip = tip
        if self._history_at is None or self._now() - self._history_at >= HISTORY_REFRESH_S:
            try:
                await self._fetch_history()
            except RateLimited:
                raise
            except SourceError:
                # The history is optional: a broken mining endpoint must not make the chain
                # panes stale.  Keep the last history and try again in a few minutes.
                self._history_at = self._now() - HISTORY_REFRESH_S + HISTORY_RETRY_S
        blocks = tuple(self._cache[h].block for h in required_heights(tip))
        return ChainSnapshot(
            source=self.label,
            fetched_at=self._now(),
            tip_height=tip,
            blocks=blocks,
            history=self._history,
        )

    async def _refresh_recent(self, tip: int) -> int:
        """Fetch the newest page; returns the tip it shows (the tip as of that page)."""
        page = await self._page(None)
        lowest = min(page, key=lambda c: c.block.height)
        below = self._cache.get(lowest.block.height - 1)
        if below is not None and lowest.prev_hash is not None and below.hash != lowest.prev_hash:
            # The chain changed below this page: a deep reorg.  Start over.
            self._cache.clear()
        newest = max(c.block.height for c in page)
        # The page is authoritative: the tip may have moved between the two requests, or a
        # load-balanced instance may answer from a backend a block behind.
        for h in [h for h in self._cache if h > newest]:
            del self._cache[h]
        self._store(page)
        return newest

    def _evict(self, tip: int) -> None:
        keep = set(required_heights(tip))
        for h in [h for h in self._cache if h not in keep]:
            del self._cache[h]

    # ------------------------------------------------------------------ introspection
    @property
    def cached_heights(self) -> list[int]:
        return sorted(self._cache)

