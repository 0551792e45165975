"""Network-level computation for the panes: hashrate, block-time drift, retarget (pure).

Everything here takes snapshots and a ``now`` and returns frozen view-models; no I/O, no
Textual, so ``--once`` and the tests use it without a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tui import chain
from tui.model import (
    FEE_WINDOW,
    HASHRATE_WINDOWS,
    QUARTER_EPOCH_BLOCKS,
    RETARGET_INTERVAL,
    Block,
    ChainSnapshot,
    HashratePoint,
)
from tui.stats import predictive_wait_quantile

TARGET_SPACING = chain.TARGET_SPACING
DRIFT_WINDOWS = (6, 36, 144)
#: Central probability mass of the ranges shown for ETA and change.
RANGE_PROBABILITY = 0.90
RIBBON_SHORT, RIBBON_LONG = 30, 60


# --------------------------------------------------------------------------- hashrate


def network_hashps(blocks: Mapping[int, Block], tip_height: int, n: int) -> float | None:
    """Bitcoin Core's ``getnetworkhashps(n)`` at ``tip_height`` from (possibly sparse) blocks.

    Work is the chainwork difference over the last ``n`` blocks (heights ``tip-n+1 .. tip``),
    summed per epoch from each epoch's compact target; the span is ``max - min`` timestamp among
    the available blocks of ``tip-n .. tip``.  Returns 0.0 when the span is zero (as Core does)
    and None when an epoch of the window has no known block or the window starts before genesis.
    """
    if n <= 0 or tip_height - n < 0:
        return None
    epoch_bits: dict[int, int] = {}
    times: list[int] = []
    lo = tip_height - n
    for h in range(lo, tip_height + 1):
        b = blocks.get(h)
        if b is None:
            continue
        times.append(b.time)
        epoch_bits.setdefault(h // RETARGET_INTERVAL, b.bits)
    if len(times) < 2:
        return None
    work = 0
    first, last = lo + 1, tip_height
    for epoch in range(first // RETARGET_INTERVAL, last // RETARGET_INTERVAL + 1):
        bits = epoch_bits.get(epoch)
        if bits is None:
            return None
        start = max(first, epoch * RETARGET_INTERVAL)
        end = min(last, epoch * RETARGET_INTERVAL + RETARGET_INTERVAL - 1)
        work += (end - start + 1) * chain.block_work(bits)
    span = max(times) - min(times)
    if span == 0:
        return 0.0
    return work / span


@dataclass(frozen=True)
class Ribbon:
    sma_short: float  #: 30-day moving average, H/s
    sma_long: float  #: 60-day moving average, H/s
    capitulation: bool  #: 30d below 60d
    days_since_cross: int | None  #: days since the 30d last crossed the 60d (None: not in view)

    @property
    def spread_pct(self) -> float:
        """How far the 30-day average sits from the 60-day one, percent."""
        return (self.sma_short / self.sma_long - 1.0) * 100.0 if self.sma_long else 0.0

    @property
    def label(self) -> str:
        rel = "<" if self.capitulation else ">="
        state = "capitulation" if self.capitulation else "healthy"
        days = self.days_since_cross
        if not self.capitulation and days is not None and days <= 14:
            state = f"recovery {days}d ago"
        elif self.capitulation and days is not None:
            state = f"capitulation {days}d"
        # The spread says whether a cross is a real move or noise around a flat network.
        spread = f"{self.spread_pct:+.1f}%".replace("-", "−")
        return f"30d {rel} 60d ({spread}) · {state}"

    @property
    def short_label(self) -> str:
        spread = f"{self.spread_pct:+.1f}%".replace("-", "−")
        return f"30d{'<' if self.capitulation else '≥'}60d {spread} " + (
            "capitulation" if self.capitulation else "healthy")


def hash_ribbon(daily: Sequence[float]) -> Ribbon | None:
    """30-day vs 60-day simple moving averages of the daily hashrate (needs >= 60 days)."""
    if len(daily) < RIBBON_LONG:
        return None

    def sma(end: int, width: int) -> float:
        return sum(daily[end - width:end]) / width

    n = len(daily)
    short, long = sma(n, RIBBON_SHORT), sma(n, RIBBON_LONG)
    below = short < long
    days_since: int | None = None
    for back in range(1, n - RIBBON_LONG + 1):
        end = n - back
        if (sma(end, RIBBON_SHORT) < sma(end, RIBBON_LONG)) != below:
            days_since = back
            break
    return Ribbon(short, long, below, days_since)


@dataclass(frozen=True)
class HashrateView:
    windows: dict[str, float | None]  #: "1d"/"3d"/"7d" -> H/s
    peak: float | None  #: highest daily value in the history, H/s
    peak_time: int | None
    vs_peak_pct: float | None  #: 1d estimate against the peak, percent
    history: tuple[HashratePoint, ...]
    ribbon: Ribbon | None


def hashrate_view(snap: ChainSnapshot) -> HashrateView:
    windows = {
        name: network_hashps(snap.by_height, snap.tip_height, n)
        for name, n in HASHRATE_WINDOWS.items()
    }
    history = tuple(p for p in snap.history if p.hashrate > 0)
    peak_point = max(history, key=lambda p: p.hashrate) if history else None
    peak = peak_point.hashrate if peak_point else None
    current = windows.get("1d")
    vs_peak = (current / peak - 1.0) * 100.0 if current and peak else None
    ribbon = hash_ribbon([p.hashrate for p in history])
    return HashrateView(
        windows=windows,
        peak=peak,
        peak_time=peak_point.time if peak_point else None,
        vs_peak_pct=vs_peak,
        history=history,
        ribbon=ribbon,
    )


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class DriftView:
    epoch_blocks: int  #: blocks mined in this epoch after its first block
    epoch_avg_s: float | None  #: mean interval over this epoch (None before the 2nd block)
    windows: dict[int, float | None]  #: last N blocks -> mean interval (None: not meaningful)
    blocks_vs_schedule: float  #: blocks mined minus blocks expected at 600 s; negative = behind
    since_last_block_s: float  #: never negative
    tip_ahead_s: float  #: how far the tip's timestamp lies in the future (0 if not)
    recent_intervals: tuple[int, ...]  #: last <= 144 raw intervals, oldest first (may be < 0)
    out_of_order: int  #: intervals < 0 among the last 144

    @property
    def epoch_drift_pct(self) -> float | None:
        return pct_vs_target(self.epoch_avg_s)


def pct_vs_target(avg_s: float | None) -> float | None:
    return None if avg_s is None else (avg_s / TARGET_SPACING - 1.0) * 100.0


def drift_view(snap: ChainSnapshot, now: float) -> DriftView:
    tip = snap.tip
    h = snap.tip_height
    epoch_start = h - h % RETARGET_INTERVAL
    b = h - epoch_start
    start_block = snap.block(epoch_start)
    epoch_avg: float | None = None
    if start_block is not None and b > 0:
        span = tip.time - start_block.time
        epoch_avg = span / b if span > 0 else None
    windows: dict[int, float | None] = {}
    for n in DRIFT_WINDOWS:
        first = snap.block(h - n)
        if first is None:
            windows[n] = None
            continue
        span = tip.time - first.time
        # Timestamps may run backwards; a non-positive span says nothing about real time.
        windows[n] = span / n if span > 0 else None
    intervals: list[int] = []
    for k in range(h - FEE_WINDOW + 1, h + 1):
        cur, prev = snap.block(k), snap.block(k - 1)
        if cur is not None and prev is not None:
            intervals.append(cur.time - prev.time)
    schedule = 0.0
    if start_block is not None:
        schedule = b - max(0.0, now - start_block.time) / TARGET_SPACING
    since = now - tip.time
    return DriftView(
        epoch_blocks=b,
        epoch_avg_s=epoch_avg,
        windows=windows,
        blocks_vs_schedule=schedule,
        since_last_block_s=max(0.0, since),
        tip_ahead_s=max(0.0, -since),
        recent_intervals=tuple(intervals[-144:]),
        out_of_order=sum(1 for i in intervals if i < 0),
    )


# --------------------------------------------------------------------------- retarget


@dataclass(frozen=True)
class RetargetView:
    projection: chain.RetargetProjection
    previous_change_pct: float | None
    change_low_pct: float  #: 5th percentile of the change
    change_high_pct: float  #: 95th percentile
    eta_low: float  #: 5th percentile of the retarget time, unix s
    eta_high: float  #: 95th percentile
    now: float

    @property
    def countdown_s(self) -> float:
        return max(0.0, self.projection.estimated_retarget_time - self.now)


def previous_retarget_pct(snap: ChainSnapshot) -> float | None:
    """Change of difficulty at the current epoch's start, percent (like mempool's)."""
    start = snap.tip_height - snap.tip_height % RETARGET_INTERVAL
    cur, prev = snap.block(start), snap.block(start - 1)
    if cur is None or prev is None or prev.difficulty <= 0:
        return None
    return (cur.difficulty / prev.difficulty - 1.0) * 100.0


def _consensus_change_pct(timespan: float) -> float:
    span = min(max(timespan, chain.TARGET_TIMESPAN / 4), chain.TARGET_TIMESPAN * 4)
    return (chain.TARGET_TIMESPAN / span - 1.0) * 100.0


def retarget_view(snap: ChainSnapshot, now: float) -> RetargetView | None:
    """mempool.space's projection plus a Poisson range for the ETA and the change."""
    h = snap.tip_height
    epoch_start = h - h % RETARGET_INTERVAL
    start_block = snap.block(epoch_start)
    if start_block is None:
        return None
    b = h - epoch_start
    quarter = snap.block(h - QUARTER_EPOCH_BLOCKS)
    prev_pct = previous_retarget_pct(snap)
    proj = chain.project_retarget(
        epoch_start_time=start_block.time,
        quarter_epoch_time=quarter.time if quarter else None,
        now=int(now),
        tip_height=h,
        previous_retarget=prev_pct or 0.0,
        tip_time=snap.tip.time,
    )
    # Rate observation behind the estimate: this epoch's blocks over the time since its start,
    # or mempool's 503-interval window reaching into the previous epoch early on.
    if b >= QUARTER_EPOCH_BLOCKS or quarter is None:
        obs_blocks, obs_s = float(b), max(0.0, now - start_block.time)
    else:
        obs_blocks = float(QUARTER_EPOCH_BLOCKS)
        obs_s = proj.adjusted_time_avg * QUARTER_EPOCH_BLOCKS
    lo_p, hi_p = (1 - RANGE_PROBABILITY) / 2, 1 - (1 - RANGE_PROBABILITY) / 2
    remaining = proj.remaining_blocks

    def wait(p: float, k: int) -> float:
        return predictive_wait_quantile(p, k, obs_blocks, obs_s, TARGET_SPACING)

    eta_low = now + wait(lo_p, remaining)
    eta_high = now + wait(hi_p, remaining)
    # Consensus: the new target scales with time(last block of the period) - time(first block),
    # and the period's last block is remaining - 1 blocks away.
    to_last = remaining - 1
    if to_last <= 0:
        change_low = change_high = _consensus_change_pct(snap.tip.time - start_block.time)
    else:
        elapsed = max(0.0, now - start_block.time)
        change_low = _consensus_change_pct(elapsed + wait(hi_p, to_last))
        change_high = _consensus_change_pct(elapsed + wait(lo_p, to_last))
    return RetargetView(
        projection=proj,
        previous_change_pct=prev_pct,
        change_low_pct=change_low,
        change_high_pct=change_high,
        eta_low=eta_low,
        eta_high=eta_high,
        now=now,
    )


# --------------------------------------------------------------------------- fees


def average_fees_sat(snap: ChainSnapshot, window: int = FEE_WINDOW) -> float | None:
    """Mean fees per block over the last ``window`` blocks that report fees (None: no data)."""
    fees = [
        b.fees_sat
        for k in range(snap.tip_height - window + 1, snap.tip_height + 1)
        if (b := snap.block(k)) is not None and b.fees_sat is not None
    ]
    return sum(fees) / len(fees) if fees else None
