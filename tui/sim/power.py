"""A simulated wholesale power price feed: ``GET /api/v1/power-price`` on loopback.

Day-ahead style, ERCOT-like, in US$/MWh, hourly, in the market's local time
(America/Chicago): cheap at night (~20), a morning ramp, a shoulder at midday, an evening
peak 14:00–20:00 (~70–140, highest around 17:00, lower at weekends), then back down; each
hour gets seeded noise (and, rarely, a scarcity spike in the peak).  The price is a pure
function of (seed, hour), so every request in the same hour agrees and tests can pin it.
The reply::

    {"market": "SIM-ERCOT HB_NORTH (simulated)", "timezone": "America/Chicago",
     "unit": "USD/MWh", "generated": 1769900000,
     "data": [{"time": 1769896800, "end": 1769900400, "local": "2026-01-31T16:00:00-06:00",
               "price": 42.1, "price_kwh": 0.0421, "unit": "USD/MWh"}, ...]}

``data[0]`` is the hour in progress, then the next 23 hours: minertop reads it with
``path = "data.0.price"``, ``unit = "usd_mwh"`` (or ``data.0.price_kwh``, ``usd_kwh``).
No Textual here.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo

from tui.sim.http import Request, Response
from tui.tariff import ZoneError, load_zone

__all__ = ["POWER_PATH", "SIM_MARKET", "SIM_POWER_TZ", "PowerApi", "price_usd_mwh"]

POWER_PATH = "/api/v1/power-price"
SIM_POWER_TZ = "America/Chicago"
SIM_MARKET = "SIM-ERCOT HB_NORTH (simulated)"
HOURS_SERVED = 24

#: The weekday shape by local hour, US$/MWh (before noise).
_SHAPE = (
    22.0, 20.5, 19.5, 19.0, 19.5, 21.0,  # 00-06: night, the cheapest
    26.0, 32.0, 36.0, 38.0, 40.0, 42.0,  # 06-12: morning ramp
    44.0, 48.0, 70.0, 88.0, 112.0, 138.0,  # 12-18: into the peak (14-20)
    121.0, 92.0, 56.0, 44.0, 34.0, 27.0,  # 18-24
)


def _zone() -> tzinfo:
    try:
        return load_zone(SIM_POWER_TZ)
    except ZoneError:  # no tz database: Central Standard Time all year
        return timezone(timedelta(hours=-6), "CST")


def price_usd_mwh(hour_start: int, *, seed: int, tz: tzinfo | None = None) -> float:
    """The simulated price of the hour starting at unix ``hour_start`` (US$/MWh, >= 1)."""
    local = datetime.fromtimestamp(hour_start, tz or _zone())
    base = _SHAPE[local.hour]
    weekend = local.weekday() >= 5
    peak = 14 <= local.hour < 20
    if weekend:
        base *= 0.6 if peak else 0.85
    rng = random.Random(f"minertop-sim-power:{seed}:{hour_start // 3600}")
    price = base * math.exp(rng.gauss(0.0, 0.12))
    if peak and rng.random() < 0.02:  # a scarcity spike
        price *= rng.uniform(3.0, 8.0)
    return round(max(1.0, price), 2)


class PowerApi:
    """The request handler: ``PowerApi(clock, seed)(request) -> Response``."""

    def __init__(self, clock: Callable[[], float] = time.time, *, seed: int = 2026) -> None:
        self.clock = clock
        self.seed = seed
        self.tz = _zone()

    def document(self, now: float | None = None) -> dict[str, object]:
        now = self.clock() if now is None else now
        first = int(now // 3600) * 3600
        data = []
        for k in range(HOURS_SERVED):
            t = first + 3600 * k
            usd_mwh = price_usd_mwh(t, seed=self.seed, tz=self.tz)
            data.append({
                "time": t,
                "end": t + 3600,
                "local": datetime.fromtimestamp(t, self.tz).isoformat(),
                "price": usd_mwh,
                "price_kwh": round(usd_mwh / 1000, 5),
                "unit": "USD/MWh",
            })
        return {"market": SIM_MARKET, "timezone": SIM_POWER_TZ, "unit": "USD/MWh",
                "generated": int(now), "data": data}

    def __call__(self, request: Request) -> Response:
        if request.method != "GET" or (request.path.rstrip("/") or "/") != POWER_PATH:
            return Response.text(f"Cannot {request.method} {request.path}", 404)
        return Response.json(self.document())
