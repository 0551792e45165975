"""The squeeze in numbers: network revenue, retarget history, hashprice over time (pure).

No I/O, no Textual: functions of snapshots and a ``now``.  Formulas:

* **Network revenue per day** (:func:`network_revenue`)::

      revenue = (mean subsidy + mean fees per block) x 86,400 / mean interval x price

  over the last 144 blocks (mean interval = (time(tip) - time(tip - 144)) / 144, the same
  span as the drift pane's 144-block figure), and the same over the 144 blocks that end
  30 days earlier (:attr:`~tui.model.ChainSnapshot.window_30d_ago`) at the price of that day.
  At 11.6-minute blocks, 3.16 BTC per block and $71,000: 3.16 x 86,400 / 696 x 71,000
  = $27.85M per day.

* **Largest since** (:func:`largest_since`): the projected change placed against the
  history of past adjustments.

* **Hashprice after the retarget** (:func:`hashprice_after_retarget`): hashprice x old / new
  difficulty = hashprice / (1 + change / 100).

* **90-day hashprice** (:func:`hashprice_history`): one point per UTC day from the
  difficulty in force that day, the fees of that day and the price of that day; where the
  source's history has no USD figure for a day (no price history, e.g. a Bitcoin Core node
  with a fixed price) or no point at all, the day the daemon recorded in its store fills in
  (:func:`merge_recorded`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tui import chain
from tui.economics import Hashprice, hashprice, retarget_factor
from tui.model import (
    FEE_WINDOW,
    Block,
    BlockWindow,
    ChainSnapshot,
    DifficultyAdjustment,
    PriceSnapshot,
)

__all__ = [
    "DAY",
    "HASHPRICE_HISTORY_DAYS",
    "LARGEST_SINCE_MIN_S",
    "MTP_SPAN",
    "WINDOW_AGO_S",
    "HashpricePoint",
    "LargestSince",
    "NetworkRevenue",
    "block_window",
    "difficulty_in_force",
    "hashprice_after_retarget",
    "hashprice_history",
    "largest_since",
    "merge_recorded",
    "network_revenue",
    "revenue_btc_day",
    "revenue_usd_day",
    "search_window_end",
]

DAY = 86_400
#: "30 days earlier": the window of comparison ends at the last block at or before now - 30 d.
WINDOW_AGO_S = 30 * DAY
#: A projected change is only "the largest since ..." when that spans more than a year.
LARGEST_SINCE_MIN_S = 365 * DAY
#: Days in the hashprice chart (today included).
HASHPRICE_HISTORY_DAYS = 90
#: Blocks in the median-time-past: 11 consecutive blocks stamped after a time T put every
#: later block after T too (each block's time must exceed the median of the 11 before it).
MTP_SPAN = 11


# --------------------------------------------------------------------------- block windows


def block_window(blocks: Mapping[int, Block], end_height: int,
                 n: int = FEE_WINDOW) -> BlockWindow | None:
    """The facts of the ``n`` blocks ``end - n + 1 .. end`` (None if a needed time is missing).

    - mean interval = (time(end) - time(end - n)) / n, None when that span is not positive
      (timestamps may run backwards over short spans);
    - mean fees = mean of the blocks of the window that report fees (None if none does);
    - subsidy = mean of Core's ``GetBlockSubsidy`` over the window's heights.
    """
    if n <= 0 or end_height - n < 0:
        return None
    end, first = blocks.get(end_height), blocks.get(end_height - n)
    if end is None or first is None:
        return None
    span = end.time - first.time
    fees = [b.fees_sat for h in range(end_height - n + 1, end_height + 1)
            if (b := blocks.get(h)) is not None and b.fees_sat is not None]
    subsidy = math.fsum(chain.block_subsidy(h) for h in range(end_height - n + 1,
                                                               end_height + 1)) / n
    return BlockWindow(
        end_height=end_height,
        end_time=end.time,
        blocks=n,
        mean_interval_s=span / n if span > 0 else None,
        mean_fees_sat=sum(fees) / len(fees) if fees else None,
        subsidy_sat=subsidy,
    )


def search_window_end(times: Mapping[int, int], anchor: int, cutoff: int,
                      tip: int) -> tuple[int | None, int | None]:
    """The highest height whose header time is <= ``cutoff``, from the known ``times``.

    Returns ``(end, None)`` once it is certain, ``(None, h)`` when the time of block ``h`` is
    needed first (fetch it and call again), and ``(None, None)`` when no block up to ``tip``
    is stamped at or before ``cutoff``.

    ``anchor`` is any height near the answer (a previous answer, or an estimate).  Going down
    from it finds a block stamped <= cutoff; going up, the answer is certain after
    :data:`MTP_SPAN` consecutive blocks stamped after ``cutoff`` (by the median-time-past
    rule no later block can be stamped <= cutoff then), or at ``tip``.
    """
    h = min(anchor, tip)
    while True:  # down to a block stamped <= cutoff
        if h < 0:
            return None, None
        t = times.get(h)
        if t is None:
            return None, h
        if t <= cutoff:
            break
        h -= 1
    best, run, h = h, 0, h + 1
    while run < MTP_SPAN and h <= tip:
        t = times.get(h)
        if t is None:
            return None, h
        if t <= cutoff:
            best, run = h, 0
        else:
            run += 1
        h += 1
    return best, None


# --------------------------------------------------------------------------- revenue


def revenue_btc_day(window: BlockWindow | None) -> float | None:
    """(subsidy + mean fees) x 86,400 / mean interval, BTC per day (None: not computable).

    Unknown fees make the figure unknown (not subsidy-only): a revenue that silently drops
    the fees would compare badly with one that has them.
    """
    if window is None or window.mean_interval_s is None or window.mean_fees_sat is None:
        return None
    if window.mean_interval_s <= 0:
        return None
    per_block = (window.subsidy_sat + window.mean_fees_sat) / 1e8
    return per_block * DAY / window.mean_interval_s


def revenue_usd_day(window: BlockWindow | None, price_usd: float | None) -> float | None:
    """:func:`revenue_btc_day` x price (None without either)."""
    btc = revenue_btc_day(window)
    if btc is None or price_usd is None or not price_usd > 0 or not math.isfinite(price_usd):
        return None
    return btc * price_usd


@dataclass(frozen=True)
class NetworkRevenue:
    """What all miners together earn per day, now and 30 days ago."""

    window: BlockWindow | None  #: the last 144 blocks
    window_30d_ago: BlockWindow | None  #: the 144 blocks ending 30 days earlier
    btc_day: float | None
    usd_day: float | None  #: at the current price
    btc_day_30d_ago: float | None
    usd_day_30d_ago: float | None  #: at the price of that day (None without price history)
    price_30d_ago: float | None

    @property
    def change_pct(self) -> float | None:
        """USD revenue now against 30 days ago, percent."""
        if self.usd_day is None or not self.usd_day_30d_ago:
            return None
        return (self.usd_day / self.usd_day_30d_ago - 1.0) * 100.0


def network_revenue(snap: ChainSnapshot, price: PriceSnapshot | None) -> NetworkRevenue:
    """Network revenue per day now and 30 days ago (see the module docstring).

    Now: the last 144 blocks of ``snap`` at the current price.  30 days ago:
    ``snap.window_30d_ago`` at the price of the UTC day of that window's last block from the
    price's daily history (:meth:`~tui.model.PriceSnapshot.usd_on`).  Without a price for that
    day (a fixed price has no history) the USD figure is None: today's price would mix a
    price change into a figure meant to show the network's, and a wrong number is worse
    than none.  The BTC figures need no price.
    """
    now_w = block_window(snap.by_height, snap.tip_height)
    ago = snap.window_30d_ago
    usd = price.usd if price is not None else None
    price_ago = price.usd_on(ago.end_time) if price is not None and ago is not None else None
    return NetworkRevenue(
        window=now_w,
        window_30d_ago=ago,
        btc_day=revenue_btc_day(now_w),
        usd_day=revenue_usd_day(now_w, usd),
        btc_day_30d_ago=revenue_btc_day(ago),
        usd_day_30d_ago=revenue_usd_day(ago, price_ago),
        price_30d_ago=price_ago,
    )


# --------------------------------------------------------------------------- largest since


@dataclass(frozen=True)
class LargestSince:
    """"largest cut/rise since <time>": the adjustment the projected change is measured
    against (see :func:`largest_since`)."""

    direction: str  #: "cut" or "rise"
    height: int  #: of the reference adjustment
    time: int  #: its block time, unix seconds
    change_pct: float  #: the reference adjustment's own change
    #: True: no adjustment in the known history is as large; the reference is the oldest one
    #: known ("the largest in the history we have")
    beyond_history: bool

    @property
    def date(self) -> str:
        """The reference adjustment's UTC date, e.g. "3 Jul 2021"."""
        return time.strftime("%d %b %Y", time.gmtime(self.time)).lstrip("0")

    @property
    def phrase(self) -> str:
        date = self.date
        if self.beyond_history:
            return f"largest {self.direction} in the history known (since {date})"
        return f"largest {self.direction} since {date}"


def largest_since(change_pct: float | None, adjustments: Iterable[DifficultyAdjustment],
                  now: float) -> LargestSince | None:
    """The projected ``change_pct`` against the history of past adjustments.

    A negative change is a *cut*, a positive one a *rise* (0 or unknown: None).  For a cut,
    the reference A is the most recent past adjustment (by height) whose change was at least
    as large a cut (``change_pct(A) <= change_pct``: an equal one is not beaten, so it is A);
    if none in the whole history is, A is the oldest adjustment known (``beyond_history``).
    Rises are symmetric (``change_pct(A) >= change_pct``).

    The projected change is "the largest cut since <A's date>" only when that means more
    than a year: ``now - time(A) > 365 days`` (strictly); otherwise, and for an empty
    history, None.  In other words every cut after A is smaller, and those smaller ones
    span more than a year of adjustments.
    """
    if change_pct is None or not math.isfinite(change_pct) or change_pct == 0:
        return None
    cut = change_pct < 0
    history = sorted(adjustments, key=lambda a: a.height, reverse=True)
    if not history:
        return None
    ref: DifficultyAdjustment | None = None
    for a in history:
        if (a.change_pct <= change_pct) if cut else (a.change_pct >= change_pct):
            ref = a
            break
    beyond = ref is None
    if ref is None:
        ref = history[-1]
    if not now - ref.time > LARGEST_SINCE_MIN_S:
        return None
    return LargestSince("cut" if cut else "rise", ref.height, ref.time, ref.change_pct, beyond)


# --------------------------------------------------------------------------- hashprice


def hashprice_after_retarget(hp: Hashprice, change_pct: float | None,
                             locked: bool = False) -> tuple[float, float | None] | None:
    """``(BTC, USD)`` per PH/day once the projected retarget applies: hashprice x old/new
    difficulty = hashprice / (1 + change / 100).

    ``locked``: the next block is already mined at the new difficulty (the tip is the last
    block of its period) and ``hp`` already uses it, so the value is ``hp``'s.  None when the
    change is unknown or <= -100 %.
    """
    if locked:
        return hp.btc_per_ph_day, hp.usd_per_ph_day
    factor = retarget_factor(change_pct)
    if factor is None:
        return None
    usd = hp.usd_per_ph_day * factor if hp.usd_per_ph_day is not None else None
    return hp.btc_per_ph_day * factor, usd


@dataclass(frozen=True, slots=True)
class HashpricePoint:
    time: int  #: UTC day start, unix seconds
    btc_per_ph_day: float
    usd_per_ph_day: float | None  #: None without a price for that day


def difficulty_in_force(adjustments: Sequence[DifficultyAdjustment],
                        t: float) -> DifficultyAdjustment | None:
    """The last adjustment (by height) whose block is stamped before ``t`` (None: none is)."""
    best: DifficultyAdjustment | None = None
    for a in adjustments:
        if a.time < t and (best is None or a.height > best.height):
            best = a
    return best


def hashprice_history(
    *,
    adjustments: Sequence[DifficultyAdjustment],
    fee_history: Iterable[tuple[int, float]],
    price_history: Iterable[tuple[int, float]],
    now: float,
    current: Hashprice,
    days: int = HASHPRICE_HISTORY_DAYS,
) -> tuple[HashpricePoint, ...]:
    """Daily hashprice over the last ``days`` UTC days, oldest first; today is ``current``.

    For each past day D (start of the UTC day):

    - difficulty: the one in force at the end of D (:func:`difficulty_in_force`); a day before
      the oldest known adjustment gets no point;
    - subsidy: Core's subsidy at the height estimated for the end of D (the adjustment's
      height plus one block per 600 s since, kept inside that period);
    - fees: the mean fees per block of D from ``fee_history`` (``(day start, sats)``), else
      the current average (``current.avg_fees_sat``; 0 when that is unknown too);
    - price: D's price from ``price_history`` (``(day start, USD)``); without one the point
      has BTC only.

    hashprice = 1e15 x 86,400 / (difficulty x 2^32) x (subsidy + fees) BTC per PH/day.
    """
    today = int(now // DAY) * DAY
    fees = dict(fee_history)
    prices = dict(price_history)
    by_height = sorted(adjustments, key=lambda a: a.height)
    cur_fees = current.avg_fees_sat if current.fees_known else None
    points: list[HashpricePoint] = []
    for back in range(days - 1, 0, -1):
        day = today - back * DAY
        end = day + DAY
        adj = difficulty_in_force(by_height, end)
        if adj is None or not adj.difficulty > 0:
            continue
        nxt = [a.height for a in by_height if a.height > adj.height]
        height = adj.height + int(max(0, end - adj.time) // chain.TARGET_SPACING)
        if nxt:
            height = min(height, nxt[0] - 1)
        hp = hashprice(adj.difficulty, chain.block_subsidy(height), fees.get(day, cur_fees),
                       prices.get(day))
        points.append(HashpricePoint(day, hp.btc_per_ph_day, hp.usd_per_ph_day))
    points.append(HashpricePoint(today, current.btc_per_ph_day, current.usd_per_ph_day))
    return tuple(points)


def merge_recorded(points: Sequence[HashpricePoint], recorded: Iterable[HashpricePoint],
                   now: float, days: int = HASHPRICE_HISTORY_DAYS) -> tuple[HashpricePoint, ...]:
    """The source's daily ``points`` with the days a daemon recorded (its store's daily
    means, :meth:`tui.store.HistoryStore.hashprice_days`) filling the gaps, oldest first.

    For each past UTC day in the last ``days``: the source's point when it has a USD figure
    (that day's difficulty, fees and price: one definition for every day); else the recorded
    one when it has a USD figure or the source has no point that day; else the source's.
    Today is always the source's (the current hashprice).  Recorded days outside the window
    are left out."""
    today = int(now // DAY) * DAY
    first = today - (days - 1) * DAY
    by_day = {p.time: p for p in points}
    for r in recorded:
        if not first <= r.time < today or r.time % DAY:
            continue
        mine = by_day.get(r.time)
        if mine is None or (mine.usd_per_ph_day is None and r.usd_per_ph_day is not None):
            by_day[r.time] = r
    return tuple(by_day[d] for d in sorted(by_day))
