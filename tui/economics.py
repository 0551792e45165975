"""Mining economics (pure: no I/O, no Textual).

Hashprice follows Luxor's definition: the expected revenue of 1 PH/s over one day,
``1e15 * 86400 / (difficulty * 2**32) * (subsidy + average fees per block)``.
"""

from __future__ import annotations

from dataclasses import dataclass

SATS_PER_BTC = 100_000_000
SECONDS_PER_DAY = 86_400
HASHES_PER_DIFFICULTY = 2**32
PH = 1e15


@dataclass(frozen=True)
class Hashprice:
    btc_per_ph_day: float
    usd_per_ph_day: float | None  #: None without a price
    subsidy_sat: int
    avg_fees_sat: float  #: the fee average used (0 when unknown)
    fees_known: bool

    @property
    def btc_per_th_day(self) -> float:
        return self.btc_per_ph_day / 1000.0

    @property
    def usd_per_th_day(self) -> float | None:
        return None if self.usd_per_ph_day is None else self.usd_per_ph_day / 1000.0


def blocks_per_day_for(hashrate_hs: float, difficulty: float) -> float:
    """Expected blocks per day found by ``hashrate_hs`` at ``difficulty``."""
    return hashrate_hs * SECONDS_PER_DAY / (difficulty * HASHES_PER_DIFFICULTY)


def hashprice(
    difficulty: float, subsidy_sat: int, avg_fees_sat: float | None, price_usd: float | None
) -> Hashprice:
    """Hashprice per PH/s per day; ``avg_fees_sat`` None counts fees as 0 (flagged)."""
    if difficulty <= 0:
        raise ValueError("difficulty must be positive")
    fees = avg_fees_sat if avg_fees_sat is not None else 0.0
    btc = blocks_per_day_for(PH, difficulty) * (subsidy_sat + fees) / SATS_PER_BTC
    usd = btc * price_usd if price_usd is not None and price_usd > 0 else None
    return Hashprice(btc, usd, subsidy_sat, fees, avg_fees_sat is not None)
