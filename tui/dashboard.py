"""The whole computed picture from the latest snapshots (pure) and its JSON/text forms.

The app, ``--once`` and ``--once --json`` all go through :func:`compute`, so they can't
disagree.  No Textual import here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tui import chain
from tui.economics import Hashprice, hashprice
from tui.fmt import fmt_duration, fmt_pct
from tui.model import ChainSnapshot, DifficultyAdjustment, PriceSnapshot
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
from tui.squeeze import (
    HashpricePoint,
    LargestSince,
    NetworkRevenue,
    hashprice_after_retarget,
    hashprice_history,
    largest_since,
    merge_recorded,
    network_revenue,
)

EH = 1e18
#: Past adjustments listed in ``retarget.history`` (about a year).
RETARGET_HISTORY_SHOWN = 26


@dataclass(frozen=True)
class Dashboard:
    now: float
    chain: ChainSnapshot
    price: PriceSnapshot | None
    hashrate: HashrateView
    drift: DriftView
    retarget: RetargetView | None
    hashprice: Hashprice
    #: network revenue per day now and 30 days ago (:func:`tui.squeeze.network_revenue`)
    revenue: NetworkRevenue | None = None
    #: past adjustments, newest first (all the source gave; JSON lists the last 26)
    retarget_history: tuple[DifficultyAdjustment, ...] = ()
    #: the projected change against that history ("largest cut since ..."), or None
    largest_since: LargestSince | None = None
    #: hashprice once the projected retarget applies: BTC and USD per PH/day (None: unknown)
    hashprice_after_retarget_btc: float | None = None
    hashprice_after_retarget_usd: float | None = None
    #: daily hashprice over 90 days, oldest first, the last point is now
    hashprice_history: tuple[HashpricePoint, ...] = ()
    #: the tip is its period's last block: the retarget is fixed by consensus and
    #: ``hashprice`` already uses the new difficulty (:func:`next_block_difficulty`)
    retarget_locked: bool = False

    @property
    def pending_retarget_change_pct(self) -> float | None:
        """The difficulty change still ahead of ``hashprice``, in %: the projected one, or 0
        once the retarget is locked (applying it again would count it twice).  None when
        there is no projection."""
        if self.retarget is None:
            return None
        return 0.0 if self.retarget_locked else self.retarget.projection.difficulty_change


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


def compute(snap: ChainSnapshot, price: PriceSnapshot | None, now: float,
            recorded: Sequence[HashpricePoint] = ()) -> Dashboard:
    """Everything the network panes show, at ``now``.  ``recorded``: the daily hashprice a
    daemon kept in its store, filling the days the source's history lacks
    (:func:`tui.squeeze.merge_recorded`)."""
    hp = hashprice(
        next_block_difficulty(snap),
        chain.block_subsidy(snap.tip_height + 1),
        average_fees_sat(snap),
        price.usd if price else None,
    )
    rt = retarget_view(snap, now)
    change = rt.projection.difficulty_change if rt is not None else None
    nxt = snap.tip_height + 1
    # At a period's last block the next block's difficulty (used by ``hp``) is the new one.
    locked = nxt % chain.RETARGET_INTERVAL == 0 and snap.block(
        nxt - chain.RETARGET_INTERVAL) is not None
    after = hashprice_after_retarget(hp, change, locked) if rt is not None else None
    history = tuple(sorted(snap.adjustments, key=lambda a: a.height, reverse=True))
    hp_history = hashprice_history(
        adjustments=history,
        fee_history=snap.fee_history,
        price_history=price.history if price is not None else (),
        now=now,
        current=hp,
    )
    if recorded:
        hp_history = merge_recorded(hp_history, recorded, now)
    return Dashboard(
        now=now,
        chain=snap,
        price=price,
        hashrate=hashrate_view(snap),
        drift=drift_view(snap, now),
        retarget=rt,
        hashprice=hp,
        revenue=network_revenue(snap, price),
        retarget_history=history,
        largest_since=largest_since(change, history, now),
        hashprice_after_retarget_btc=after[0] if after else None,
        hashprice_after_retarget_usd=after[1] if after else None,
        hashprice_history=hp_history,
        retarget_locked=locked,
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
    rev = d.revenue
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
        "hashprice_after_retarget_usd_per_ph_day": _r(d.hashprice_after_retarget_usd),
        "hashprice_history": [
            {"time": p.time, "btc_per_ph_day": round(p.btc_per_ph_day, 8),
             "usd_per_ph_day": _r(p.usd_per_ph_day)}
            for p in d.hashprice_history
        ],
        "network_revenue_usd_day": _r(rev.usd_day, 0) if rev else None,
        "network_revenue_usd_day_30d_ago": _r(rev.usd_day_30d_ago, 0) if rev else None,
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
            "history": [
                {"height": a.height, "time": a.time, "difficulty": a.difficulty,
                 "change_pct": _r(a.change_pct)}
                for a in d.retarget_history[:RETARGET_HISTORY_SHOWN]
            ],
            "largest_since": None
            if d.largest_since is None
            else {"direction": d.largest_since.direction, "height": d.largest_since.height,
                  "time": d.largest_since.time},
        }
    return out


def fmt_ehs(x: float | None) -> str:
    return "—" if x is None else f"{x / EH:,.0f}"


def fmt_usd_m(x: float) -> str:
    """Dollars in millions: ``$27.85M``."""
    return f"${x / 1e6:,.2f}M"


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
    rev = d.revenue
    if rev is not None and (rev.usd_day is not None or rev.btc_day is not None):
        if rev.usd_day is not None:
            now_s = fmt_usd_m(rev.usd_day)
            ago = rev.usd_day_30d_ago
            ago_s = "—" if ago is None else fmt_usd_m(ago)
        else:
            now_s = f"{rev.btc_day:,.1f} BTC"
            ago_b = rev.btc_day_30d_ago
            ago_s = "—" if ago_b is None else f"{ago_b:,.1f} BTC"
        lines.append(f"revenue     network {now_s}/day   30 days ago {ago_s} "
                     f"({fmt_pct(rev.change_pct)})")
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
        if d.largest_since is not None:
            lines.append(f"            {d.largest_since.phrase}")
        if d.hashprice_after_retarget_btc is not None:
            usd = d.hashprice_after_retarget_usd
            usd_s = "—" if usd is None else f"${usd:,.2f}"
            lines.append(f"            hashprice after retarget {usd_s}/PH/day "
                         f"({d.hashprice_after_retarget_btc:.8f} BTC)")
    return "\n".join(lines)
