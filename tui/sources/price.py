"""BTC price: mempool's ``/api/v1/prices`` or a fixed number from the command line."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tui.model import PriceSnapshot
from tui.sources.base import (
    DEFAULT_TIMEOUT,
    HttpSource,
    SourceError,
    as_object,
    get_int,
    only_source_errors,
    reply_shape,
    to_num,
)

PRICES_PATH = "/api/v1/prices"


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

    async def fetch(self) -> PriceSnapshot:
        with only_source_errors(self.prefix):
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
