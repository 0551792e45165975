"""Mining economics (pure: no I/O, no Textual).

Hashprice follows Luxor's definition: the expected revenue of 1 PH/s over one day,
``1e15 * 86400 / (difficulty * 2**32) * (subsidy + average fees per block)``.

Per rig (:func:`rig_economics`): revenue, power cost, margin, J/TH, break-even electricity
price, shutdown BTC price and the margin after the projected retarget; per site
(:func:`site_totals`): the sums and the production cost per BTC.  Formulas are in the
docstrings; every figure that can't be computed is None, never a ZeroDivisionError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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


# --------------------------------------------------------------------------- per-rig economics

HOURS_PER_DAY = 24.0


def _finite(x: float | None) -> float | None:
    """``x`` as a float if it is a finite number, else None (NaN, inf, None, non-numbers)."""
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class RigEconomics:
    """What one rig earns, costs and keeps per day.  A field is None when it can't be computed
    (no power figure, no price, zero hashrate); nothing here ever divides by zero.
    """

    btc_per_day: float | None  #: expected BTC/day after the pool fee
    revenue_usd_day: float | None  #: None without a price
    cost_usd_day: float | None  #: power + overhead; None without a power figure
    margin_usd_day: float | None  #: revenue - cost
    margin_pct: float | None  #: margin as % of revenue; None when revenue is 0 (or unknown)
    j_per_th: float | None  #: W / (TH/s); None without power or at zero hashrate
    #: Electricity price at which the rig's revenue just pays for its power: revenue / kWh
    #: per day.  Above it, running the rig loses money (the overhead is paid whether it runs
    #: or not, so it does not move this price; see :mod:`tui.curtail`).
    breakeven_usd_kwh: float | None
    #: BTC price at which margin = 0: cost / BTC per day (pool fee and overhead included);
    #: 0 when the cost is below zero (a negative power price: it earns at any BTC price).
    shutdown_price_usd: float | None
    revenue_after_retarget_usd_day: float | None  #: revenue x old/new difficulty
    margin_after_retarget_usd_day: float | None


def retarget_factor(change_pct: float | None) -> float | None:
    """old difficulty / new difficulty for a retarget of ``change_pct`` percent.

    new / old = 1 + change/100, so a -14 % retarget multiplies revenue by 1/0.86.
    None when unknown or meaningless (change <= -100 %).
    """
    c = _finite(change_pct)
    if c is None or c <= -100.0:
        return None
    return 1.0 / (1.0 + c / 100.0)


def rig_economics(
    *,
    hashrate_ths: float,
    power_w: float | None,
    hashprice: Hashprice,
    price_usd: float | None,
    electricity_usd_kwh: float,
    pool_fee_pct: float,
    overhead_usd_day: float = 0.0,
    retarget_change_pct: float | None,
) -> RigEconomics:
    """Per-rig daily economics.

    - BTC/day = TH/s x hashprice (BTC per TH per day) x (1 - pool fee)
    - revenue = BTC/day x price.  ``price_usd`` is used when given (> 0); otherwise the price
      implied by ``hashprice.usd_per_ph_day``, if any.
    - cost = W / 1000 x 24 x $/kWh + overhead $/day
    - margin = revenue - cost; margin % = margin / revenue x 100 (None at revenue 0)
    - J/TH = W / TH/s
    - break-even $/kWh = revenue / kWh per day: the power price at which running the rig
      just pays for its power (overhead is paid whether it runs or not)
    - shutdown price = cost / BTC per day (0 when the cost is below zero)
    - after the retarget: revenue x old/new difficulty (new/old = 1 + change/100) - cost

    A non-finite or negative ``hashrate_ths`` or ``power_w`` counts as unknown.  Electricity,
    pool fee and overhead come from the validated config: invalid values raise ValueError.
    """
    elec = _finite(electricity_usd_kwh)
    fee = _finite(pool_fee_pct)
    overhead = _finite(overhead_usd_day)
    if elec is None:  # below 0 is real (a live price in a market paying for demand)
        raise ValueError(f"electricity_usd_kwh must be a number, got {electricity_usd_kwh!r}")
    if fee is None or not 0.0 <= fee <= 100.0:
        raise ValueError(f"pool_fee_pct must be 0-100, got {pool_fee_pct!r}")
    if overhead is None or overhead < 0:
        raise ValueError(f"overhead_usd_day must be >= 0, got {overhead_usd_day!r}")

    hr = _finite(hashrate_ths)
    if hr is not None and hr < 0:
        hr = None
    watts = _finite(power_w)
    if watts is not None and watts < 0:
        watts = None

    price = _finite(price_usd)
    if price is None or price <= 0:
        implied = _finite(hashprice.usd_per_ph_day)
        price = (
            implied / hashprice.btc_per_ph_day
            if implied is not None and implied > 0 and hashprice.btc_per_ph_day > 0
            else None
        )

    btc = hr * hashprice.btc_per_th_day * (1.0 - fee / 100.0) if hr is not None else None
    revenue = btc * price if btc is not None and price is not None else None

    kwh_day = watts / 1000.0 * HOURS_PER_DAY if watts is not None else None
    cost = kwh_day * elec + overhead if kwh_day is not None else None

    margin = revenue - cost if revenue is not None and cost is not None else None
    margin_pct = margin / revenue * 100.0 if margin is not None and revenue else None
    j_per_th = watts / hr if watts is not None and hr else None
    breakeven = revenue / kwh_day if revenue is not None and kwh_day else None
    shutdown = max(0.0, cost / btc) if cost is not None and btc else None

    factor = retarget_factor(retarget_change_pct)
    revenue_rt = revenue * factor if revenue is not None and factor is not None else None
    margin_rt = revenue_rt - cost if revenue_rt is not None and cost is not None else None

    return RigEconomics(
        btc_per_day=btc,
        revenue_usd_day=revenue,
        cost_usd_day=cost,
        margin_usd_day=margin,
        margin_pct=margin_pct,
        j_per_th=j_per_th,
        breakeven_usd_kwh=breakeven,
        shutdown_price_usd=shutdown,
        revenue_after_retarget_usd_day=revenue_rt,
        margin_after_retarget_usd_day=margin_rt,
    )


@dataclass(frozen=True)
class SiteTotals:
    """Sums over the site's rigs.

    Hashrate, BTC/day and revenue count every rig.  Power and cost count the rigs whose power
    is known (``rigs_without_power`` counts the others); margins sum the rigs whose margin is
    known, and the production cost per BTC divides the known costs by the BTC/day of those
    same rigs, so a rig without a power figure never makes the site look cheaper.
    """

    rigs: int
    rigs_without_power: int
    hashrate_ths: float
    power_w: float
    btc_per_day: float
    revenue_usd_day: float | None  #: None without a price
    cost_usd_day: float
    margin_usd_day: float | None
    margin_pct: float | None
    revenue_after_retarget_usd_day: float | None
    margin_after_retarget_usd_day: float | None
    #: all-in cost of one BTC: sum(cost) / sum(BTC/day) over rigs with a known cost
    production_cost_usd_per_btc: float | None
    price_usd: float | None  #: for comparison with the production cost


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return math.fsum(known) if known else None


def site_totals(
    items: Iterable[tuple[float, float | None, RigEconomics]], price_usd: float | None
) -> SiteTotals:
    """Totals over ``(hashrate_ths, power_w, economics)`` per rig (see :class:`SiteTotals`)."""
    rows = list(items)
    hashrate = math.fsum(h for h, _, _ in rows if _finite(h) is not None and h > 0)
    powers = [_finite(w) for _, w, _ in rows]
    power = math.fsum(w for w in powers if w is not None and w >= 0)
    without_power = sum(1 for w in powers if w is None or w < 0)
    econ = [e for _, _, e in rows]
    btc = math.fsum(e.btc_per_day for e in econ if e.btc_per_day is not None)
    revenue = _sum([e.revenue_usd_day for e in econ])
    cost = math.fsum(e.cost_usd_day for e in econ if e.cost_usd_day is not None)
    margin = _sum([e.margin_usd_day for e in econ])
    # margin % over the rigs whose margin is known
    rev_of_known = math.fsum(
        e.revenue_usd_day for e in econ if e.margin_usd_day is not None and e.revenue_usd_day
    )
    margin_pct = margin / rev_of_known * 100.0 if margin is not None and rev_of_known else None
    revenue_rt = _sum([e.revenue_after_retarget_usd_day for e in econ])
    margin_rt = _sum([e.margin_after_retarget_usd_day for e in econ])
    btc_costed = math.fsum(
        e.btc_per_day for e in econ if e.cost_usd_day is not None and e.btc_per_day is not None
    )
    cost_costed = math.fsum(
        e.cost_usd_day for e in econ if e.cost_usd_day is not None and e.btc_per_day is not None
    )
    production = cost_costed / btc_costed if btc_costed > 0 else None
    price = _finite(price_usd)
    return SiteTotals(
        rigs=len(rows),
        rigs_without_power=without_power,
        hashrate_ths=hashrate,
        power_w=power,
        btc_per_day=btc,
        revenue_usd_day=revenue,
        cost_usd_day=cost,
        margin_usd_day=margin,
        margin_pct=margin_pct,
        revenue_after_retarget_usd_day=revenue_rt,
        margin_after_retarget_usd_day=margin_rt,
        production_cost_usd_per_btc=production,
        price_usd=price if price is not None and price > 0 else None,
    )
