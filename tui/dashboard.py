"""The whole computed picture from the latest snapshots (pure) and its JSON/text forms.

The app, ``--once`` and ``--once --json`` all go through :func:`compute`, so they can't
disagree.  No Textual import here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tui import chain
from tui.economics import Hashprice, hashprice
from tui.fmt import fmt_duration, fmt_pct
from tui.model import ChainSnapshot, PriceSnapshot
from tui.network import (
    DriftView,
    HashrateView,
    RetargetView,
    average_fees_sat,
    drift_view,
    hashrate_view,
    pct_vs_target,
    retarget_view,
)

EH = 1e18


@dataclass(frozen=True)
class Dashboard:
    now: float
    chain: ChainSnapshot
    price: PriceSnapshot | None
    hashrate: HashrateView
    drift: DriftView
    retarget: RetargetView | None
    hashprice: Hashprice


def next_block_difficulty(snap: ChainSnapshot) -> float:
    """The difficulty the next block is mined at: the tip's, or at a retarget boundary the
    new one, which consensus already fixes once the period's last block is in."""
    tip = snap.tip
    nxt = snap.tip_height + 1
    if nxt % chain.RETARGET_INTERVAL == 0:
        first = snap.block(nxt - chain.RETARGET_INTERVAL)
        if first is not None:
            bits = chain.next_work_required(tip.bits, first.time, tip.time)
            return chain.difficulty_from_bits(bits)
    return tip.difficulty


def compute(snap: ChainSnapshot, price: PriceSnapshot | None, now: float) -> Dashboard:
    hp = hashprice(
        next_block_difficulty(snap),
        chain.block_subsidy(snap.tip_height + 1),
        average_fees_sat(snap),
        price.usd if price else None,
    )
    return Dashboard(
        now=now,
        chain=snap,
        price=price,
        hashrate=hashrate_view(snap),
        drift=drift_view(snap, now),
        retarget=retarget_view(snap, now),
        hashprice=hp,
    )


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _ehs(x: float | None) -> float | None:
    return None if x is None else round(x / EH, 2)


def to_json(d: Dashboard) -> dict[str, Any]:
    """The ``--once --json`` document (fields documented in README.md)."""
    hr = d.hashrate
    dr = d.drift
    rt = d.retarget
    out: dict[str, Any] = {
        "source": d.chain.source,
        "time_unix": int(d.now),
        "tip_height": d.chain.tip_height,
        "tip_time_unix": d.chain.tip.time,
        "difficulty": d.chain.tip.difficulty,
        "price_usd": d.price.usd if d.price else None,
        "price_source": d.price.source if d.price else None,
        "hashprice_btc_per_ph_day": round(d.hashprice.btc_per_ph_day, 8),
        "hashprice_usd_per_ph_day": _r(d.hashprice.usd_per_ph_day),
        "avg_fees_btc_per_block": round(d.hashprice.avg_fees_sat / 1e8, 8)
        if d.hashprice.fees_known
        else None,
        "hashrate_ehs": {k: _ehs(v) for k, v in hr.windows.items()},
        "hashrate_peak_ehs": _ehs(hr.peak),
        "hashrate_vs_peak_pct": _r(hr.vs_peak_pct),
        "hash_ribbon": None
        if hr.ribbon is None
        else {
            "sma30_ehs": _ehs(hr.ribbon.sma_short),
            "sma60_ehs": _ehs(hr.ribbon.sma_long),
            "capitulation": hr.ribbon.capitulation,
            "spread_pct": _r(hr.ribbon.spread_pct),
        },
        "drift": {
            "epoch_blocks": dr.epoch_blocks,
            "epoch_avg_min": _r(None if dr.epoch_avg_s is None else dr.epoch_avg_s / 60, 3),
            "epoch_drift_pct": _r(dr.epoch_drift_pct),
            **{
                f"last_{n}_avg_min": _r(None if v is None else v / 60, 3)
                for n, v in dr.windows.items()
            },
            **{f"last_{n}_drift_pct": _r(pct_vs_target(v)) for n, v in dr.windows.items()},
            "blocks_vs_schedule": _r(dr.blocks_vs_schedule, 1),
            "since_last_block_s": int(dr.since_last_block_s),
            "out_of_order_intervals_144": dr.out_of_order,
        },
        "retarget": None,
    }
    if rt is not None:
        p = rt.projection
        out["retarget"] = {
            "remaining_blocks": p.remaining_blocks,
            "next_height": p.next_retarget_height,
            "progress_pct": _r(p.progress_percent),
            "change_pct": _r(p.difficulty_change),
            "change_pct_low": _r(rt.change_low_pct),
            "change_pct_high": _r(rt.change_high_pct),
            "eta_unix": int(p.estimated_retarget_time),
            "eta_unix_low": int(rt.eta_low),
            "eta_unix_high": int(rt.eta_high),
            "time_avg_s": _r(p.time_avg, 1),
            "adjusted_time_avg_s": _r(p.adjusted_time_avg, 1),
            "previous_change_pct": _r(rt.previous_change_pct),
        }
    return out


def fmt_ehs(x: float | None) -> str:
    return "—" if x is None else f"{x / EH:,.0f}"


def fmt_local(ts: float, fmt: str = "%a %d %b %H:%M") -> str:
    return time.strftime(fmt, time.localtime(ts))


def to_text(d: Dashboard) -> str:
    """Plain lines for ``--once`` without ``--json``."""
    hr, dr, rt, hp = d.hashrate, d.drift, d.retarget, d.hashprice
    price = f"${d.price.usd:,.0f}" if d.price else "—"
    hp_usd = "—" if hp.usd_per_ph_day is None else f"${hp.usd_per_ph_day:,.2f}"
    lines = [
        f"source      {d.chain.source}",
        f"tip         {d.chain.tip_height:,}   price {price}   "
        f"hashprice {hp_usd}/PH/day ({hp.btc_per_ph_day:.8f} BTC)",
        "hashrate    "
        + "  ".join(f"{k} {fmt_ehs(v)} EH/s" for k, v in hr.windows.items())
        + f"   vs peak {fmt_pct(hr.vs_peak_pct)}",
    ]
    if hr.ribbon:
        lines.append(f"ribbon      {hr.ribbon.label}")
    win = "  ".join(
        f"{n} blk {'—' if v is None else f'{v / 60:.1f}'} min" for n, v in dr.windows.items()
    )
    epoch = "—" if dr.epoch_avg_s is None else f"{dr.epoch_avg_s / 60:.2f} min"
    lines += [
        f"drift       epoch {epoch} ({fmt_pct(dr.epoch_drift_pct)})   {win}",
        f"            {abs(dr.blocks_vs_schedule):.0f} blocks "
        f"{'behind' if dr.blocks_vs_schedule < 0 else 'ahead of'} schedule   "
        f"last block {fmt_duration(dr.since_last_block_s)} ago",
    ]
    if rt:
        p = rt.projection
        lines += [
            f"retarget    {p.remaining_blocks} blocks to {p.next_retarget_height:,} "
            f"({p.progress_percent:.1f}%)   ETA {fmt_local(p.estimated_retarget_time)} "
            f"(90%: {fmt_local(rt.eta_low)} … {fmt_local(rt.eta_high)})",
            f"            projected {fmt_pct(p.difficulty_change, 2)} "
            f"(90%: {fmt_pct(rt.change_low_pct)} … {fmt_pct(rt.change_high_pct)})   "
            f"previous {fmt_pct(rt.previous_change_pct, 2)}",
        ]
    return "\n".join(lines)
