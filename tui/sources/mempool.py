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

The squeeze figures (:mod:`tui.squeeze`) add, all optional like the hashrate history (a 404
or a broken reply leaves the part empty or at its last value, a one-line message goes to
:attr:`MempoolSource.optional_errors`, and it is retried later; only a 429 fails the poll):

- ``GET /api/v1/mining/difficulty-adjustments`` (every adjustment mempool has indexed,
  ``[[time, height, difficulty, ratio new/old], ...]`` newest first, ~30 kB) on the first
  poll, then only when the tip entered an epoch whose adjustment is not in the list yet (at
  most every 30 minutes) or once a day;
- ``GET /api/v1/mining/blocks/fees/3m`` (mean fees per block in 2-hour buckets) with the
  hashrate history, at most hourly, reduced to one mean per UTC day;
- the 30-days-ago window: the 144 blocks ending at the last block (highest height) whose
  timestamp is <= now - 30 days (time-based: mempool can find that block cheaply).  The first
  poll asks ``GET /api/v1/mining/blocks/timestamp/:t`` for a block near it, then fetches the
  ``/api/v1/blocks/:height`` pages around it; those blocks never change, so they are cached by
  height and later polls only fetch the next page when the window has moved past the cache
  (one page per ~15 blocks, i.e. every ~2.5 hours).

Safety: every request has a timeout and a whole-request deadline (``deadline_s``,
:data:`~tui.sources.base.REQUEST_DEADLINE_S`), and its reply body is capped (``max_bytes``,
:data:`~tui.sources.base.MAX_REPLY_BYTES`, counted after decompression); the fields are
range-checked when parsed (``bits`` is a uint32).  Messages never show the URL's
credentials, query string or query values.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tui.chain import RETARGET_INTERVAL
from tui.model import (
    Block,
    BlockWindow,
    ChainSnapshot,
    DifficultyAdjustment,
    HashratePoint,
    required_heights,
)
from tui.sources.base import (
    DEFAULT_TIMEOUT,
    MAX_REPLY_BYTES,
    REQUEST_DEADLINE_S,
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
    to_num,
    to_time,
)
from tui.squeeze import DAY, WINDOW_AGO_S, block_window, search_window_end

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
ADJUSTMENTS_PATH = "/api/v1/mining/difficulty-adjustments"
FEES_PATH = "/api/v1/mining/blocks/fees/3m"
TIMESTAMP_PATH = "/api/v1/mining/blocks/timestamp"
#: While the newest adjustment listed is older than the current epoch: refetch this often.
ADJUSTMENTS_REFRESH_S = 1800.0
#: Refetch the adjustments at least this often anyway.
ADJUSTMENTS_MAX_AGE_S = 86_400.0
#: When the cutoff is this far past the cached window, find it again by timestamp.
WINDOW_REANCHOR_S = 6 * 3600.0
#: Pages a poll may fetch for the 30-days-ago window (the first poll needs ~11).
WINDOW_MAX_PAGES = 20
#: Digits of a plausible tip height (a uint32 has 10); more is a broken reply.
MAX_HEIGHT_DIGITS = 10
#: ``bits`` is the header's uint32 compact target.
MAX_BITS = 0xFFFF_FFFF


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
    bits = get_int(d, "bits")
    if not 0 <= bits <= MAX_BITS:
        shown = str(bits) if abs(bits) < 10**20 else f"a {len(str(abs(bits)))}-digit number"
        raise ShapeError(f"'bits' is not an unsigned 32-bit value ({shown})")
    block = Block(
        height=height,
        time=get_time(d, "timestamp"),
        bits=bits,
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


def parse_adjustments(doc: Any) -> tuple[DifficultyAdjustment, ...]:
    """``/api/v1/mining/difficulty-adjustments`` → adjustments, newest first.

    Each entry is ``[time, height, difficulty, adjustment]`` where ``adjustment`` is the
    ratio new difficulty / previous difficulty, rounded to 6 decimals (mempool's
    ``$indexDifficultyAdjustments``).  The genesis row (ratio 0) is not a change: skipped.
    """
    out: dict[int, DifficultyAdjustment] = {}
    for item in as_list(doc):
        row = as_list(item, "an adjustment")
        if len(row) < 4:
            raise ShapeError(f"an adjustment has {len(row)} fields, expected 4")
        t = to_time(row[0], "time")
        height = to_int(row[1], "height")
        diff = to_num(row[2], "difficulty")
        ratio = to_num(row[3], "adjustment")
        if height < 0 or diff <= 0 or ratio < 0:
            raise ShapeError(f"impossible adjustment {row[:4]!r}")
        if ratio == 0:
            continue
        out[height] = DifficultyAdjustment(height, t, diff, (ratio - 1.0) * 100.0)
    return tuple(out[h] for h in sorted(out, reverse=True))


def parse_fee_history(doc: Any) -> tuple[tuple[int, float], ...]:
    """``/api/v1/mining/blocks/fees/:interval`` → ``(UTC day start, mean fees)``, oldest first.

    mempool answers ``[{"avgHeight", "timestamp", "avgFees", "USD"}, ...]``, one entry per
    bucket (2 hours for ``3m``) with the bucket's mean fees per block in sats; a day's value
    is the mean of its buckets.  At most 90 days are kept.
    """
    days: dict[int, list[float]] = {}
    for item in as_list(doc):
        d = as_object(item, "a fee bucket")
        t = get_time(d, "timestamp")
        fees = get_num(d, "avgFees")
        if fees < 0:
            raise ShapeError(f"negative avgFees {fees!r}")
        days.setdefault(t // DAY * DAY, []).append(fees)
    points = [(day, sum(v) / len(v)) for day, v in sorted(days.items())]
    return tuple(points[-HISTORY_DAYS:])


def parse_height_at(doc: Any) -> int:
    """``/api/v1/mining/blocks/timestamp/:t`` → the height of ``{"height", "hash", "timestamp"}``
    (the block with the latest timestamp <= t)."""
    height = get_int(as_object(doc), "height")
    if height < 0:
        raise ShapeError(f"negative block height {height}")
    return height


class MempoolSource(HttpSource):
    """A :class:`~tui.model.ChainSource` reading a mempool.space REST API."""

    def __init__(
        self,
        base_url: str = "https://mempool.space",
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_bytes: int = MAX_REPLY_BYTES,
        deadline_s: float = REQUEST_DEADLINE_S,
    ) -> None:
        super().__init__(base_url, kind="mempool", client=client, timeout=timeout, clock=clock,
                         max_bytes=max_bytes, deadline_s=deadline_s)
        self._cache: dict[int, _Cached] = {}
        self._tip: int | None = None  #: tip of the last complete poll
        self._history: tuple[HashratePoint, ...] = ()
        self._history_at: float | None = None  #: when the history was last fetched (or 404)
        #: the last failure of each optional part ("adjustments", "fees", "window")
        self.optional_errors: dict[str, str] = {}
        self._adjustments: tuple[DifficultyAdjustment, ...] = ()
        self._adj_at: float | None = None  #: last fetch (or 404)
        self._adj_retry_at: float | None = None  #: after a failure: not before this
        self._fee_history: tuple[tuple[int, float], ...] = ()
        self._fees_at: float | None = None
        self._wblocks: dict[int, Block] = {}  #: blocks around the 30-days-ago window
        self._wend: int | None = None  #: the window's last block as last found
        self._window: BlockWindow | None = None
        self._window_retry_at = 0.0

    # ------------------------------------------------------------------ requests
    async def _tip_height(self) -> int:
        resp = await self._get(TIP_PATH)
        text = resp.content.decode("utf-8", errors="replace").strip()
        if not (text.isascii() and text.isdigit()):
            shown = text[:40] if text else "an empty reply"
            raise self.error(f"unexpected reply on {TIP_PATH}: not a block height: {shown!r}")
        if len(text) > MAX_HEIGHT_DIGITS:  # and int() would refuse over 4300 digits
            shown = text[:20] + "…" if len(text) > 20 else text
            raise self.error(f"unexpected reply on {TIP_PATH}: not a block height: "
                             f"{shown!r} ({len(text):,} digits)")
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

    async def _fetch_adjustments(self) -> None:
        resp = await self._get(ADJUSTMENTS_PATH, allow=(404,))
        now = self._now()
        if resp.status_code == 404:  # an instance without mining indexing
            self._adjustments = ()
        else:
            doc = decode_json(self.prefix, resp, ADJUSTMENTS_PATH)
            with reply_shape(self.prefix, ADJUSTMENTS_PATH):
                self._adjustments = parse_adjustments(doc)
        self._adj_at = now
        self._adj_retry_at = None

    def _adjustments_due(self, tip: int) -> bool:
        now = self._now()
        if self._adj_retry_at is not None:
            return now >= self._adj_retry_at
        if self._adj_at is None:
            return True
        age = now - self._adj_at
        if age >= ADJUSTMENTS_MAX_AGE_S:
            return True
        newest = self._adjustments[0].height if self._adjustments else -1
        return newest < tip - tip % RETARGET_INTERVAL and age >= ADJUSTMENTS_REFRESH_S

    async def _fetch_fee_history(self) -> None:
        resp = await self._get(FEES_PATH, allow=(404,))
        now = self._now()
        if resp.status_code == 404:
            self._fee_history = ()
        else:
            doc = decode_json(self.prefix, resp, FEES_PATH)
            with reply_shape(self.prefix, FEES_PATH):
                self._fee_history = parse_fee_history(doc)
        self._fees_at = now

    async def _height_at(self, t: int) -> int | None:
        """mempool's block with the latest timestamp <= t (None: 404, not available)."""
        path = f"{TIMESTAMP_PATH}/{t}"
        resp = await self._get(path, allow=(404,))
        if resp.status_code == 404:
            return None
        doc = decode_json(self.prefix, resp, path)
        with reply_shape(self.prefix, path):
            return parse_height_at(doc)

    async def _update_window(self, tip: int) -> None:
        """Find the 30-days-ago window in the cache, fetching only the pages it lacks."""
        now = self._now()
        if now < self._window_retry_at:
            return
        cutoff = int(now) - WINDOW_AGO_S
        anchor = self._wend
        last = self._wblocks.get(anchor) if anchor is not None else None
        if anchor is None or last is None or cutoff - last.time > WINDOW_REANCHOR_S:
            # First poll, or the clock jumped (a suspended laptop): ask where the time is.
            anchor = await self._height_at(cutoff)
            if anchor is None:  # not served by this instance: try again in an hour
                self._window = None
                self._window_retry_at = now + HISTORY_REFRESH_S
                return
        pages = 0
        times = {h: b.time for h, b in self._wblocks.items()}
        while True:
            end, need = search_window_end(times, anchor, cutoff, tip)
            if need is None:
                break
            if pages >= WINDOW_MAX_PAGES:
                return  # keep what we have; the next poll goes on from the cache
            top = need if need <= anchor else min(need + PAGE_SIZE - 1, tip)
            for c in await self._page(top):
                self._wblocks[c.block.height] = c.block
                times[c.block.height] = c.block.time
            pages += 1
        if end is None:
            self._window = None
            return
        while missing := [h for h in range(end - 144, end + 1) if h not in self._wblocks]:
            if pages >= WINDOW_MAX_PAGES:
                return
            for c in await self._page(missing[-1]):
                self._wblocks[c.block.height] = c.block
            pages += 1
        self._wend = end
        self._window = block_window(self._wblocks, end)
        for h in [h for h in self._wblocks if h < end - 144 or h > tip]:
            del self._wblocks[h]

    async def _history_step(self) -> None:
        try:
            await self._fetch_history()
        except RateLimited:
            raise
        except SourceError:
            # The history is optional: a broken mining endpoint must not make the chain
            # panes stale.  Keep the last history and try again in a few minutes.
            self._history_at = self._now() - HISTORY_REFRESH_S + HISTORY_RETRY_S

    async def _optional(
        self, part: str, step: Awaitable[None], on_error: Callable[[float], None]
    ) -> None:
        """Run an optional step: a 429 fails the poll, any other SourceError is recorded."""
        try:
            await step
        except RateLimited:
            raise
        except SourceError as e:
            self.optional_errors[part] = self.scrub(str(e))
            on_error(self._now())
        else:
            self.optional_errors.pop(part, None)

    # ------------------------------------------------------------------ cache
    def _store(self, page: list[_Cached]) -> None:
        for c in page:
            self._cache[c.block.height] = c

    def _missing(self, tip: int) -> list[int]:
        return [h for h in required_heights(tip) if h not in self._cache]

    # ------------------------------------------------------------------ poll
    async def fetch(self) -> ChainSnapshot:
        with only_source_errors(self.prefix, self.scrub):
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
        # The optional parts (hashrate history, fee history, adjustments, the window 30 days
        # back) are independent: asked at once, so a first poll over a slow link waits for
        # the longest of them, not for their sum.
        steps: list[Awaitable[None]] = []
        if self._history_at is None or self._now() - self._history_at >= HISTORY_REFRESH_S:
            steps.append(self._history_step())
        now = self._now()
        if self._fees_at is None or now - self._fees_at >= HISTORY_REFRESH_S:
            def fees_failed(t: float) -> None:
                self._fees_at = t - HISTORY_REFRESH_S + HISTORY_RETRY_S

            steps.append(self._optional("fees", self._fetch_fee_history(), fees_failed))
        if self._adjustments_due(tip):
            def adj_failed(t: float) -> None:
                self._adj_retry_at = t + HISTORY_RETRY_S

            steps.append(self._optional("adjustments", self._fetch_adjustments(), adj_failed))

        def window_failed(t: float) -> None:
            self._window_retry_at = t + HISTORY_RETRY_S

        steps.append(self._optional("window", self._update_window(tip), window_failed))
        results = await asyncio.gather(*steps, return_exceptions=True)
        for r in results:  # a 429 fails the poll (the others have finished by now)
            if isinstance(r, BaseException):
                raise r
        blocks = tuple(self._cache[h].block for h in required_heights(tip))
        return ChainSnapshot(
            source=self.label,
            fetched_at=self._now(),
            tip_height=tip,
            blocks=blocks,
            history=self._history,
            adjustments=self._adjustments,
            window_30d_ago=self._window,
            fee_history=self._fee_history,
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

