"""BTC price: mempool's ``/api/v1/prices`` or a fixed number from the command line.

:class:`MempoolPrice` also keeps the daily price history the squeeze figures need (the
network revenue 30 days ago, the 90-day hashprice): ``GET /api/v1/historical-price?currency=USD``
answers every price mempool has stored, ``{"prices": [{"time", "USD"}, ...] (newest first),
"exchangeRates": {...}}``, which is reduced to one mean per UTC day for the last
:data:`PRICE_HISTORY_DAYS` days.  Past days never change, so it is fetched on the first poll
and then at most hourly and only once a new UTC day has begun (about daily).  It is optional:
a failure keeps the last history (a one-line message in ``optional_errors``) and is retried
after 5 minutes; a 404 leaves it empty until the next day's try; only a 429 fails the
poll.  A fixed price has no history.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tui.model import PriceSnapshot
from tui.sources.base import (
    DEFAULT_TIMEOUT,
    HttpSource,
    RateLimited,
    SourceError,
    as_list,
    as_object,
    decode_json,
    get_int,
    get_time,
    only_source_errors,
    reply_shape,
    to_num,
)

PRICES_PATH = "/api/v1/prices"
HISTORICAL_PATH = "/api/v1/historical-price?currency=USD"
#: Days of daily prices kept: the 90-day chart (today included) plus one.
PRICE_HISTORY_DAYS = 91
PRICE_HISTORY_REFRESH_S = 3600.0
PRICE_HISTORY_RETRY_S = 300.0
DAY = 86_400


def parse_price_history(doc: Any, now: float,
                        days: int = PRICE_HISTORY_DAYS) -> tuple[tuple[int, float], ...]:
    """``historical-price`` → ``(UTC day start, mean USD of the day)``, oldest first.

    Only days within ``days`` of ``now`` are kept; prices <= 0 (mempool's placeholder for
    "no price", e.g. before 2010-07-19) are skipped.
    """
    d = as_object(doc)
    first_day = int(now // DAY) * DAY - (days - 1) * DAY
    by_day: dict[int, list[float]] = {}
    for item in as_list(d["prices"], "'prices'"):
        p = as_object(item, "a price")
        t = get_time(p, "time")
        if p.get("USD") is None:
            continue
        usd = to_num(p["USD"], "USD")
        day = t // DAY * DAY
        if usd > 0 and day >= first_day:
            by_day.setdefault(day, []).append(usd)
    return tuple((day, sum(v) / len(v)) for day, v in sorted(by_day.items()))


class MempoolPrice(HttpSource):
    """A :class:`~tui.model.PriceSource` reading ``GET /api/v1/prices`` (``{"time", "USD", …}``).

    mempool answers ``-1`` (or 0) for a currency it has no price for: that is a SourceError.
    """

    def __init__(
        self,
        base_url: str = "https://mempool.space",
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(base_url, kind="mempool", client=client, timeout=timeout, clock=clock)
        self._history: tuple[tuple[int, float], ...] = ()
        self._history_at: float | None = None  #: last successful fetch (or 404)
        self._history_retry_at: float | None = None  #: after a failure: not before this
        #: the last failure of the optional history ("history"), one line
        self.optional_errors: dict[str, str] = {}

    def _history_due(self, now: float) -> bool:
        if self._history_retry_at is not None:
            return now >= self._history_retry_at
        if self._history_at is None:
            return True
        return (now - self._history_at >= PRICE_HISTORY_REFRESH_S
                and now // DAY != self._history_at // DAY)

    async def _fetch_history(self) -> None:
        now = self._now()
        resp = await self._get(HISTORICAL_PATH, allow=(404,))
        if resp.status_code == 404:
            self._history = ()
        else:
            doc = decode_json(self.prefix, resp, HISTORICAL_PATH)
            with reply_shape(self.prefix, HISTORICAL_PATH):
                self._history = parse_price_history(doc, now)
        self._history_at = now
        self._history_retry_at = None

    async def fetch(self) -> PriceSnapshot:
        with only_source_errors(self.prefix):
            snap = await self._fetch_price()
            if self._history_due(self._now()):
                try:
                    await self._fetch_history()
                except RateLimited:
                    raise
                except SourceError as e:
                    self.optional_errors["history"] = str(e)
                    self._history_retry_at = self._now() + PRICE_HISTORY_RETRY_S
                else:
                    self.optional_errors.pop("history", None)
            return PriceSnapshot(usd=snap.usd, time=snap.time, source=snap.source,
                                 fetched_at=snap.fetched_at, history=self._history)

    async def _fetch_price(self) -> PriceSnapshot:
        doc = await self._get_json(PRICES_PATH)
        with reply_shape(self.prefix, PRICES_PATH):
            d = as_object(doc)
            if d.get("USD") is None:
                raise self.error(f"no USD price in the reply to {PRICES_PATH}")
            usd = to_num(d["USD"], "USD")
            stamp = get_int(d, "time")
        if usd <= 0:
            raise self.error(f"no USD price (the instance reports USD={d['USD']!r})")
        return PriceSnapshot(usd=usd, time=stamp, source=self.label, fetched_at=self._now())


class FixedPrice:
    """A price given on the command line (``--price``); never fails once valid."""

    label = "fixed"

    def __init__(self, usd: float, *, clock: Callable[[], float] = time.time) -> None:
        self.usd = float(usd)
        self.clock = clock

    async def fetch(self) -> PriceSnapshot:
        if not (self.usd > 0 and self.usd != float("inf")):
            raise SourceError(f"fixed price: no USD price (got {self.usd:g})")
        now = self.clock()
        return PriceSnapshot(usd=self.usd, time=int(now), source="fixed", fetched_at=now)

    async def aclose(self) -> None:
        return None
