"""The squeeze figures (``tui.squeeze``) and their JSON/text, checked by hand.

Network revenue per day, the "largest cut/rise since" rule at its edges, hashprice after the
retarget, the 90-day hashprice series and the 30-days-ago window search.  Pure: no sources.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tests.fakes import regular, snap_from
from tui import chain
from tui.dashboard import compute, to_json, to_text
from tui.economics import hashprice
from tui.model import (
    Block,
    BlockWindow,
    DifficultyAdjustment,
    PriceSnapshot,
    required_heights,
)
from tui.squeeze import (
    DAY,
    MTP_SPAN,
    HashpricePoint,
    block_window,
    hashprice_after_retarget,
    hashprice_history,
    largest_since,
    merge_recorded,
    network_revenue,
    revenue_btc_day,
    revenue_usd_day,
    search_window_end,
)

NOW = 1_769_000_000
YEAR = 365 * DAY


def adj(height: int, days_ago: float, change: float, diff: float = 1.4e14) -> DifficultyAdjustment:
    return DifficultyAdjustment(height, int(NOW - days_ago * DAY), diff, change)


# --------------------------------------------------------------------------- revenue


def test_revenue_per_day_at_the_issue_numbers() -> None:
    # 3.125 BTC subsidy + 0.035 BTC fees = 3.16 BTC a block, 11.6-minute blocks, $71,000:
    # 3.16 x 86,400 / 696 x 71,000 = $27,851,586 a day.
    w = BlockWindow(end_height=935_000, end_time=NOW, blocks=144, mean_interval_s=696.0,
                    mean_fees_sat=3_500_000, subsidy_sat=312_500_000)
    assert revenue_btc_day(w) == pytest.approx(3.16 * 86_400 / 696)
    assert revenue_btc_day(w) == pytest.approx(392.2759, abs=1e-4)
    assert revenue_usd_day(w, 71_000.0) == pytest.approx(27_851_586.2, abs=0.1)
    assert revenue_usd_day(w, None) is None
    assert revenue_usd_day(w, 0.0) is None
    assert revenue_usd_day(replace(w, mean_fees_sat=None), 71_000.0) is None  # fees unknown
    assert revenue_usd_day(replace(w, mean_interval_s=None), 71_000.0) is None
    assert revenue_usd_day(None, 71_000.0) is None


def _snap_696(tip: int = 2016 * 463 + 1600, fees: int = 3_500_000):
    t_tip = NOW - 432
    times = {h: t_tip - (tip - h) * 696 for h in required_heights(tip)}
    return snap_from(times, tip, fees=fees)


def test_network_revenue_from_a_snapshot_now_and_30_days_ago() -> None:
    snap = _snap_696()
    day_ago = (NOW - 30 * DAY) // DAY * DAY
    ago = BlockWindow(end_height=snap.tip_height - 4400, end_time=day_ago + 3600, blocks=144,
                      mean_interval_s=600.0, mean_fees_sat=2_500_000, subsidy_sat=312_500_000)
    snap = replace(snap, window_30d_ago=ago)
    history = ((day_ago - DAY, 60_000.0), (day_ago, 65_000.0), (day_ago + DAY, 66_000.0))
    price = PriceSnapshot(71_000.0, NOW, "test", history=history)
    rev = network_revenue(snap, price)
    assert rev.window is not None and rev.window.mean_interval_s == pytest.approx(696.0)
    assert rev.usd_day == pytest.approx(27_851_586.2, abs=0.1)
    # 30 days ago: 3.15 BTC a block every 600 s at that day's $65,000
    assert rev.price_30d_ago == 65_000.0
    assert rev.usd_day_30d_ago == pytest.approx(3.15 * 144 * 65_000)
    assert rev.change_pct == pytest.approx((27_851_586.2 / (3.15 * 144 * 65_000) - 1) * 100,
                                           abs=1e-4)
    # a fixed price has no history: no USD figure 30 days ago (the BTC one stays)
    fixed = network_revenue(snap, PriceSnapshot(71_000.0, NOW, "fixed"))
    assert fixed.usd_day_30d_ago is None and fixed.change_pct is None
    assert fixed.btc_day_30d_ago == pytest.approx(3.15 * 144)
    # no window from the source (pruned node): null, the rest stays
    none = network_revenue(replace(snap, window_30d_ago=None), price)
    assert none.usd_day_30d_ago is None and none.usd_day is not None
    assert network_revenue(snap, None).usd_day is None


def test_price_usd_on_picks_the_day() -> None:
    d0 = 1_768_953_600  # a UTC midnight
    p = PriceSnapshot(1.0, 0, "t", history=((d0 - DAY, 10.0), (d0, 20.0)))
    assert p.usd_on(d0) == 20.0 and p.usd_on(d0 + DAY - 1) == 20.0
    assert p.usd_on(d0 - 1) == 10.0
    assert p.usd_on(d0 + DAY) is None and p.usd_on(d0 - 2 * DAY) is None
    assert PriceSnapshot(1.0, 0, "fixed").usd_on(d0) is None


def test_block_window_facts_and_halving() -> None:
    blocks = {h: Block(h, 1000 + 600 * (h - 839_800), 0x1D00FFFF, 1.0, 1_000_000 + h % 7)
              for h in range(839_800, 840_100)}
    w = block_window(blocks, 840_071)  # 72 blocks at 6.25 BTC, 72 at 3.125 BTC
    assert w is not None
    assert w.mean_interval_s == 600.0
    assert w.subsidy_sat == (72 * 625_000_000 + 72 * 312_500_000) / 144
    assert w.mean_fees_sat == pytest.approx(sum(1_000_000 + h % 7
                                                for h in range(839_928, 840_072)) / 144)
    missing = dict(blocks)
    del missing[840_071 - 144]
    assert block_window(missing, 840_071) is None  # the start of the interval is needed
    no_fees = {h: replace(b, fees_sat=None) for h, b in blocks.items()}
    assert block_window(no_fees, 840_071).mean_fees_sat is None  # type: ignore[union-attr]
    backwards = dict(blocks)
    backwards[840_071] = replace(blocks[840_071], time=blocks[840_071 - 144].time - 1)
    assert block_window(backwards, 840_071).mean_interval_s is None  # type: ignore[union-attr]
    assert block_window(blocks, 100) is None


# --------------------------------------------------------------------------- largest since


def test_largest_since_names_the_most_recent_at_least_as_large() -> None:
    history = [adj(933_408, 14, -1.4), adj(931_392, 28, 3.6), adj(766_080, 3 * 365, -7.32),
               adj(689_472, 4.5 * 365, -27.94), adj(687_456, 4.6 * 365, -15.97)]
    ls = largest_since(-13.92, history, NOW)
    assert ls is not None
    assert (ls.direction, ls.height, ls.time) == ("cut", 689_472, history[3].time)
    assert not ls.beyond_history and ls.change_pct == -27.94
    assert ls.phrase.startswith("largest cut since ")
    # a smaller cut: since the -7.32 % one
    ls = largest_since(-7.0, history, NOW)
    assert ls is not None and ls.height == 766_080
    # the order of the input does not matter (newest first by height)
    assert largest_since(-13.92, list(reversed(history)), NOW).height == 689_472  # type: ignore[union-attr]


def test_largest_since_equal_change_is_not_larger() -> None:
    # an equal cut 200 days ago is "at least as large": the streak is < 1 year: nothing
    history = [adj(930_000, 200, -5.0), adj(800_000, 1500, -20.0)]
    assert largest_since(-5.0, history, NOW) is None
    # the same equal cut 400 days ago: named
    history = [adj(930_000, 400, -5.0), adj(800_000, 1500, -20.0)]
    ls = largest_since(-5.0, history, NOW)
    assert ls is not None and ls.height == 930_000
    # strictly larger than that one: the -20 % one
    assert largest_since(-5.0001, history, NOW).height == 800_000  # type: ignore[union-attr]


def test_largest_since_exactly_one_year_is_not_enough() -> None:
    exactly = [DifficultyAdjustment(900_000, NOW - YEAR, 1e14, -20.0)]
    assert largest_since(-25.0, exactly, NOW) is None  # beyond all, but covers 365 days only
    assert largest_since(-10.0, exactly, NOW) is None  # the -20 % one is exactly a year back
    more = [DifficultyAdjustment(900_000, NOW - YEAR - 1, 1e14, -20.0)]
    ls = largest_since(-25.0, more, NOW)
    assert ls is not None and ls.beyond_history and ls.height == 900_000
    assert "in the history known" in ls.phrase
    assert largest_since(-10.0, more, NOW).height == 900_000  # type: ignore[union-attr]


def test_largest_since_empty_zero_and_unknown() -> None:
    assert largest_since(-14.0, [], NOW) is None
    history = [adj(900_000, 800, -20.0)]
    assert largest_since(0.0, history, NOW) is None
    assert largest_since(None, history, NOW) is None
    assert largest_since(math.nan, history, NOW) is None


def test_largest_since_a_rise_is_symmetric() -> None:
    history = [adj(933_408, 14, -1.4), adj(931_392, 28, 3.6), adj(900_000, 500, 9.0),
               adj(880_000, 800, 12.0), adj(870_000, 900, -20.0)]
    ls = largest_since(10.0, history, NOW)
    assert ls is not None and (ls.direction, ls.height) == ("rise", 880_000)
    assert largest_since(9.0, history, NOW).height == 900_000  # type: ignore[union-attr]
    assert largest_since(3.0, history, NOW) is None  # the +3.6 % one is 28 days back
    ls = largest_since(15.0, history, NOW)  # above every rise: the oldest known
    assert ls is not None and ls.beyond_history and ls.height == 870_000
    assert ls.phrase.startswith("largest rise in the history known")


# --------------------------------------------------------------------------- hashprice


def test_hashprice_after_retarget_is_hashprice_over_one_plus_change() -> None:
    hp = hashprice(1.4e14, 312_500_000, 3_500_000, 71_000.0)
    btc, usd = hashprice_after_retarget(hp, -13.92)  # type: ignore[misc]
    assert btc == pytest.approx(hp.btc_per_ph_day / 0.8608)
    assert usd == pytest.approx(hp.usd_per_ph_day / 0.8608)  # type: ignore[operator]
    # old/new difficulty: new = old x 0.8608
    assert usd == pytest.approx(hashprice(1.4e14 * 0.8608, 312_500_000, 3_500_000,
                                          71_000.0).usd_per_ph_day)
    assert hashprice_after_retarget(hp, 25.0)[0] == pytest.approx(hp.btc_per_ph_day / 1.25)  # type: ignore[index]
    assert hashprice_after_retarget(hp, None) is None
    assert hashprice_after_retarget(hp, -100.0) is None
    assert hashprice_after_retarget(hp, -13.92, locked=True) == (hp.btc_per_ph_day,
                                                                 hp.usd_per_ph_day)
    no_price = hashprice(1.4e14, 312_500_000, 3_500_000, None)
    assert hashprice_after_retarget(no_price, -10.0)[1] is None  # type: ignore[index]


def test_dashboard_hashprice_after_retarget_and_locked_period() -> None:
    snap = _snap_696()
    d = compute(snap, PriceSnapshot(71_000.0, NOW, "fixed"), NOW)
    change = d.retarget.projection.difficulty_change  # type: ignore[union-attr]
    assert d.hashprice_after_retarget_usd == pytest.approx(
        d.hashprice.usd_per_ph_day / (1 + change / 100))  # type: ignore[operator]
    # the tip is the last block of its period: the next block is already at the new
    # difficulty, which the hashprice uses: nothing more to apply
    tip = 2016 * 5 - 1
    times = regular(tip, 1200, start=tip - 2100)
    s = snap_from(times, tip, bits={4: chain.target_to_bits(chain.bits_to_target(0x1D00FFFF)
                                                            // 4)})
    d = compute(s, PriceSnapshot(71_000.0, 0, "fixed"), times[tip] + 60)
    assert d.hashprice_after_retarget_usd == pytest.approx(d.hashprice.usd_per_ph_day)
    # the rigs' "after the retarget" applies what is still ahead of the hashprice: nothing
    assert d.retarget_locked and d.pending_retarget_change_pct == 0.0
    assert d.retarget is not None and d.retarget.projection.difficulty_change != 0.0
    d = compute(snap, PriceSnapshot(71_000.0, NOW, "fixed"), NOW)
    assert not d.retarget_locked and d.pending_retarget_change_pct == change


def test_hashprice_history_by_hand() -> None:
    today = NOW // DAY * DAY
    d_old, d_new = 1.2e14, 1.4e14
    adjs = [DifficultyAdjustment(931_392, today - 40 * DAY, d_old, 3.0),
            DifficultyAdjustment(933_408, today - 10 * DAY + 3600, d_new, 16.67)]
    fees = [(today - 20 * DAY, 5_000_000.0)]
    prices = [(today - 20 * DAY, 80_000.0), (today - 5 * DAY, 70_000.0)]
    current = hashprice(1.4e14, 312_500_000, 3_000_000, 71_000.0)
    pts = hashprice_history(adjustments=adjs, fee_history=fees, price_history=prices, now=NOW,
                            current=current)
    by_day = {p.time: p for p in pts}
    # days before the oldest adjustment have no difficulty: no point; 40 past days + today
    assert [p.time for p in pts] == [today - k * DAY for k in range(40, -1, -1)]
    assert pts[-1].usd_per_ph_day == current.usd_per_ph_day  # today is "now"

    def luxor(diff: float, fees_sat: float, usd: float | None) -> tuple[float, float | None]:
        btc = 1e15 * 86_400 / (diff * 2**32) * (312_500_000 + fees_sat) / 1e8
        return btc, None if usd is None else btc * usd

    p = by_day[today - 20 * DAY]  # old difficulty, that day's fees and price
    assert (p.btc_per_ph_day, p.usd_per_ph_day) == pytest.approx(luxor(d_old, 5e6, 80_000.0))
    p = by_day[today - 5 * DAY]  # new difficulty, current fees, that day's price
    assert (p.btc_per_ph_day, p.usd_per_ph_day) == pytest.approx(luxor(d_new, 3e6, 70_000.0))
    p = by_day[today - 30 * DAY]  # no price that day: BTC only
    assert p.usd_per_ph_day is None
    assert p.btc_per_ph_day == pytest.approx(luxor(d_old, 3e6, None)[0])
    # the day of the retarget (at 01:00) counts at the difficulty in force at its end
    assert by_day[today - 10 * DAY].btc_per_ph_day == pytest.approx(luxor(d_new, 3e6, None)[0])
    assert by_day[today - 11 * DAY].btc_per_ph_day == pytest.approx(luxor(d_old, 3e6, None)[0])
    # no adjustments at all: only today
    assert len(hashprice_history(adjustments=[], fee_history=(), price_history=(), now=NOW,
                                 current=current)) == 1


def test_recorded_days_fill_what_the_source_lacks() -> None:
    """The source's point wins when it has USD; a recorded day fills a day the source has
    no point for, or one it has in BTC only; today and days outside 90 are never taken."""
    today = NOW // DAY * DAY

    def pt(days_ago: int, btc: float, usd: float | None) -> HashpricePoint:
        return HashpricePoint(today - days_ago * DAY, btc, usd)

    source = (pt(5, 5e-4, 40.0), pt(4, 5e-4, None), pt(2, 5e-4, None), pt(0, 4e-4, 30.0))
    recorded = (pt(120, 1e-3, 99.0),  # older than the 90 days
                pt(89, 6e-4, 50.0),  # the oldest day of the window: taken
                pt(90, 6e-4, 50.0),  # one day too old
                pt(5, 7e-4, 45.0),  # the source has USD that day: it wins
                pt(4, 7e-4, 44.0),  # the source has BTC only: the recorded day has both
                pt(3, 7e-4, 43.0),  # the source has no point that day
                pt(2, 7e-4, None),  # neither has USD: the source's stays
                pt(0, 9e-4, 20.0),  # today is the current figure, never a recorded one
                HashpricePoint(today - 6 * DAY + 60, 1.0, 1.0))  # not a day start: ignored
    merged = merge_recorded(source, recorded, NOW)
    assert merged == (pt(89, 6e-4, 50.0), pt(5, 5e-4, 40.0), pt(4, 7e-4, 44.0),
                      pt(3, 7e-4, 43.0), pt(2, 5e-4, None), pt(0, 4e-4, 30.0))
    assert merge_recorded(source, (), NOW) == source


def test_dashboard_with_a_fixed_price_draws_usd_from_the_recorded_days() -> None:
    """A node without a price history (a fixed price): the source gives BTC for each past
    day, the daemon's recorded days give USD; to_json carries the merged series."""
    today = NOW // DAY * DAY
    snap = replace(_snap_696(), adjustments=(adj(933_408, 50, -1.4, 1.36e14),))
    fixed = PriceSnapshot(71_000.0, NOW, "fixed")
    alone = compute(snap, fixed, NOW).hashprice_history
    assert len(alone) == 51 and all(p.usd_per_ph_day is None for p in alone[:-1])
    rec = tuple(HashpricePoint(today - k * DAY, 5e-4, 35.0 + k) for k in (1, 2, 3))
    d = compute(snap, fixed, NOW, rec)
    usd = {p.time: p.usd_per_ph_day for p in d.hashprice_history}
    assert [usd[today - k * DAY] for k in (3, 2, 1)] == [38.0, 37.0, 36.0]
    assert usd[today] == d.hashprice.usd_per_ph_day
    assert len(d.hashprice_history) == 51  # the same days (50 past and today), filled in
    series = to_json(d)["hashprice_history"]
    assert [p["usd_per_ph_day"] for p in series[-4:]] == [38.0, 37.0, 36.0,
                                                          round(usd[today], 2)]


# --------------------------------------------------------------------------- window search


def test_search_window_end_monotonic_and_needs() -> None:
    times = {h: 1000 + 600 * h for h in range(0, 200)}
    cutoff = 1000 + 600 * 100 + 10  # block 100 is the last one at or before
    assert search_window_end(times, 90, cutoff, 199) == (100, None)
    assert search_window_end(times, 150, cutoff, 199) == (100, None)  # anchor above: down
    partial = {h: t for h, t in times.items() if h <= 105}
    assert search_window_end(partial, 90, cutoff, 199) == (None, 106)  # needs more above
    assert search_window_end(partial, 120, cutoff, 199) == (None, 120)
    assert search_window_end(times, 90, 999, 199) == (None, None)  # nothing that early
    assert search_window_end(times, 90, 10**9, 150) == (150, None)  # the tip bounds it


def test_search_window_end_non_monotonic_timestamps() -> None:
    times = {h: 1000 + 600 * h for h in range(0, 200)}
    cutoff = times[100] + 10
    times[101] = cutoff + 5000  # a miner's clock ahead
    times[104] = cutoff - 1  # a later block stamped before the cutoff: the last one is 104
    assert search_window_end(times, 90, cutoff, 199) == (104, None)
    # after MTP_SPAN blocks stamped later, no block can be stamped earlier: not looked at
    times[104 + MTP_SPAN + 1] = cutoff - 100
    assert search_window_end(times, 90, cutoff, 199) == (104, None)


# --------------------------------------------------------------------------- JSON and text


def _squeeze_dashboard():
    snap = _snap_696()
    today = NOW // DAY * DAY
    ago_end = NOW - 30 * DAY - 300
    ago = BlockWindow(snap.tip_height - 4400, ago_end, 144, 600.0, 2_500_000, 312_500_000)
    adjs = (adj(933_408, 14, -1.4, 1.36e14), adj(931_392, 28, 3.64, 1.38e14),
            adj(689_472, 4.6 * 365, -27.94, 1.4e13))
    snap = replace(snap, window_30d_ago=ago, adjustments=adjs,
                   fee_history=((today - 3 * DAY, 4_000_000.0),))
    hist = tuple((today - k * DAY, 70_000.0 + k) for k in range(90, -1, -1))
    price = PriceSnapshot(71_000.0, NOW, "mempool", history=hist)
    return compute(snap, price, NOW)


def test_json_paths_of_the_squeeze_figures() -> None:
    d = _squeeze_dashboard()
    doc = to_json(d)
    assert doc["network_revenue_usd_day"] == pytest.approx(27_851_586, abs=1)
    ago_price = 70_000.0 + 30
    assert doc["network_revenue_usd_day_30d_ago"] == pytest.approx(3.15 * 144 * ago_price,
                                                                    abs=1)
    change = doc["retarget"]["change_pct"]
    exact = d.retarget.projection.difficulty_change  # type: ignore[union-attr]
    assert doc["hashprice_after_retarget_usd_per_ph_day"] == pytest.approx(
        doc["hashprice_usd_per_ph_day"] / (1 + exact / 100))
    hist = doc["retarget"]["history"]
    assert [h["height"] for h in hist] == [933_408, 931_392, 689_472]  # newest first
    assert set(hist[0]) == {"height", "time", "difficulty", "change_pct"}
    assert hist[0]["change_pct"] == -1.4 and hist[0]["difficulty"] == 1.36e14
    assert change < -13.0
    assert doc["retarget"]["largest_since"] == {"direction": "cut", "height": 689_472,
                                                "time": d.retarget_history[2].time}
    series = doc["hashprice_history"]
    assert len(series) == 90  # 89 past days (the 2021 adjustment covers them) and today
    assert set(series[0]) == {"time", "btc_per_ph_day", "usd_per_ph_day"}
    assert series[-1]["usd_per_ph_day"] == doc["hashprice_usd_per_ph_day"]
    assert [p["time"] for p in series] == sorted(p["time"] for p in series)


def test_json_without_the_squeeze_data_is_null_not_missing() -> None:
    doc = to_json(compute(_snap_696(), None, NOW))
    assert doc["network_revenue_usd_day"] is None
    assert doc["network_revenue_usd_day_30d_ago"] is None
    assert doc["hashprice_after_retarget_usd_per_ph_day"] is None  # no price
    assert doc["retarget"]["history"] == [] and doc["retarget"]["largest_since"] is None
    assert len(doc["hashprice_history"]) == 1 and doc["hashprice_history"][0][
        "usd_per_ph_day"] is None


def test_text_lines() -> None:
    text = to_text(_squeeze_dashboard())
    rev = [line for line in text.splitlines() if line.startswith("revenue")]
    assert len(rev) == 1
    assert "network $27.85M/day" in rev[0] and "30 days ago $3" in rev[0]
    assert "largest cut since " in text
    assert "hashprice after retarget $" in text
    plain = to_text(compute(_snap_696(), None, NOW))
    assert "largest" not in plain
    assert "network 392.3 BTC/day" in plain
