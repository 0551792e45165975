"""Hashrate, drift, retarget-range and hashprice computation, checked by hand."""

from __future__ import annotations

import math

import pytest

from tests.fakes import DIFF1, WORK1, regular, snap_from
from tui import chain
from tui.dashboard import compute, to_json
from tui.economics import hashprice
from tui.model import HashratePoint, PriceSnapshot, required_heights
from tui.network import (
    drift_view,
    hash_ribbon,
    hashrate_view,
    network_hashps,
    previous_retarget_pct,
    retarget_view,
)
from tui.stats import beta_cdf, gamma_cdf, gamma_quantile, predictive_wait_quantile


def test_block_work_of_difficulty_one() -> None:
    assert chain.block_work(DIFF1) == WORK1


def test_network_hashps_regular_spacing() -> None:
    s = snap_from(regular(1000, 600), 1000)
    # 144 blocks of work WORK1 over 144 * 600 s.
    assert network_hashps(s.by_height, 1000, 144) == pytest.approx(WORK1 / 600)


def test_network_hashps_uses_min_and_max_time_not_endpoints() -> None:
    times = regular(1000, 600)
    times[1000 - 144 + 2] = times[1000 - 144] - 1200  # earliest stamp is not the first block
    s = snap_from(times, 1000)
    span = times[1000] - times[1000 - 144 + 2]
    assert network_hashps(s.by_height, 1000, 144) == pytest.approx(144 * WORK1 / span)


def test_network_hashps_zero_span_and_missing_epoch() -> None:
    times = {h: 5 for h in range(0, 101)}
    s = snap_from(times, 100)
    assert network_hashps(s.by_height, 100, 50) == 0.0
    assert network_hashps(s.by_height, 100, 200) is None  # before genesis


def test_network_hashps_sums_work_per_epoch() -> None:
    # Epoch 0 at difficulty 1, epoch 1 at a target half as big (twice the work per block).
    half = chain.target_to_bits(chain.bits_to_target(DIFF1) // 2)
    times = regular(2100, 600, start=1900)
    s = snap_from(times, 2100, bits={0: DIFF1, 1: half})
    work = 115 * WORK1 + 85 * chain.block_work(half)  # 1901..2015 and 2016..2100 (200 blocks)
    assert network_hashps(s.by_height, 2100, 200) == pytest.approx(work / (200 * 600))


def test_required_heights_are_enough_for_every_window() -> None:
    tip = 935_008
    times = {h: 1_700_000_000 + h * 600 for h in required_heights(tip)}
    s = snap_from(times, tip)
    v = hashrate_view(s)
    for name, n in {"1d": 144, "3d": 432, "7d": 1008}.items():
        assert v.windows[name] == pytest.approx(WORK1 / 600), name
        assert tip - n in s.by_height


def test_drift_view_epoch_windows_schedule_and_clock() -> None:
    tip = 2016 * 10 + 1600
    start = tip - 1600
    times = regular(tip, 696, start=tip - 1100 - 1008 + 500)
    times.update({h: times[start] + (h - start) * 696 for h in range(start, tip + 1)})
    s = snap_from(times, tip)
    now = times[tip] + 432  # 7m12s after the tip
    d = drift_view(s, now)
    assert d.epoch_blocks == 1600
    assert d.epoch_avg_s == pytest.approx(696)
    assert d.epoch_drift_pct == pytest.approx(16.0)
    assert d.windows == {6: 696, 36: 696, 144: 696}
    # 1600 blocks mined in 1600*696 + 432 s; 600-s schedule expects (1600*696+432)/600.
    assert d.blocks_vs_schedule == pytest.approx(1600 - (1600 * 696 + 432) / 600)
    assert d.blocks_vs_schedule < -250
    assert d.since_last_block_s == 432
    assert d.out_of_order == 0


def test_drift_never_shows_negative_intervals_as_real() -> None:
    tip = 500
    times = regular(tip, 600)
    times[tip] = times[tip - 6] - 30  # the tip's stamp is earlier than 6 blocks back
    s = snap_from(times, tip)
    d = drift_view(s, now=times[tip - 1] + 60)
    assert d.windows[6] is None  # a non-positive span is no measurement
    assert d.windows[36] is not None and d.windows[36] > 0
    assert d.out_of_order == 1
    assert min(d.recent_intervals) < 0  # kept raw for counting, never drawn as negative
    assert d.since_last_block_s >= 0


def test_tip_stamped_in_future() -> None:
    s = snap_from(regular(300, 600), 300)
    d = drift_view(s, now=s.tip.time - 90)
    assert d.since_last_block_s == 0 and d.tip_ahead_s == 90


def test_previous_retarget_pct() -> None:
    quarter = chain.target_to_bits(chain.bits_to_target(DIFF1) // 4)
    half = chain.target_to_bits(chain.bits_to_target(DIFF1) // 2)
    s = snap_from(regular(2100, 600, start=1900), 2100, bits={0: half, 1: quarter})
    assert previous_retarget_pct(s) == pytest.approx(100.0, rel=1e-4)  # difficulty doubled


def test_retarget_view_matches_projection_and_brackets_it() -> None:
    tip = 2016 * 400 + 1600
    start = tip - 1600
    times = regular(tip, 696, start=tip - 2100)
    s = snap_from(times, tip)
    now = times[tip] + 100
    rv = retarget_view(s, now)
    assert rv is not None
    p = rv.projection
    assert p.remaining_blocks == 416 and p.next_retarget_height == tip + 416
    assert p.progress_percent == pytest.approx(1600 / 2016 * 100)
    assert rv.eta_low < p.estimated_retarget_time < rv.eta_high
    assert rv.change_low_pct < p.difficulty_change < rv.change_high_pct
    # About -14 % for 11.6-minute blocks (600/696 - 1 = -13.8 %).
    assert -15 < p.difficulty_change < -12.5
    # The ETA range is Poisson-wide: sd of 416 blocks ~ sqrt(416) * 696 s ~ 3.9 h.
    width_h = (rv.eta_high - rv.eta_low) / 3600
    assert 10 < width_h < 16
    assert times[start] == s.block(start).time  # type: ignore[union-attr]


def test_retarget_range_collapses_on_last_block_of_epoch() -> None:
    tip = 2016 * 3 + 2015
    times = regular(tip, 700, start=tip - 2100)
    s = snap_from(times, tip)
    rv = retarget_view(s, times[tip] + 50)
    assert rv is not None
    expected = (chain.TARGET_TIMESPAN / (2015 * 700) - 1) * 100
    assert rv.change_low_pct == pytest.approx(expected)
    assert rv.change_high_pct == pytest.approx(expected)


def test_hash_ribbon_capitulation_and_recovery() -> None:
    falling = [100.0] * 60 + [100.0 - i for i in range(1, 31)]
    r = hash_ribbon(falling)
    assert r is not None and r.capitulation and "capitulation" in r.label
    rising = falling + [200.0] * 12
    r2 = hash_ribbon(rising)
    assert r2 is not None and not r2.capitulation
    assert r2.days_since_cross is not None and "recovery" in r2.label
    assert hash_ribbon([1.0] * 59) is None


def test_vs_peak_against_history() -> None:
    tip = 1200
    hist = tuple(HashratePoint(i * 86400, v) for i, v in enumerate([1.0e7, 8.0e6, 9.0e6]))
    s = snap_from(regular(tip, 600), tip, history=hist)
    v = hashrate_view(s)
    assert v.peak == 1.0e7 and v.peak_time == 0
    assert v.vs_peak_pct == pytest.approx((WORK1 / 600 / 1.0e7 - 1) * 100)


def test_hashprice_by_hand() -> None:
    # 1 PH/s for a day at difficulty 1e14 finds 1e15*86400/(1e14*2**32) blocks.
    hp = hashprice(1e14, 312_500_000, 20_000_000, 71_000.0)
    blocks = 8.64e19 / (1e14 * 4294967296)
    assert blocks == pytest.approx(2.01166e-4, rel=1e-5)
    assert hp.btc_per_ph_day == pytest.approx(blocks * 3.325)
    assert hp.usd_per_ph_day == pytest.approx(47.49, abs=0.01)
    assert hashprice(1e14, 312_500_000, None, None).usd_per_ph_day is None


def test_stats_functions_against_closed_forms() -> None:
    assert gamma_cdf(2.0, 1.0) == pytest.approx(1 - math.exp(-2))
    assert gamma_quantile(0.05, 1.0, 600) == pytest.approx(-600 * math.log(0.95), rel=1e-9)
    # I_0.3(2,3) = 6*.09*.49 + 4*.027*.7 + .0081 = 0.3483
    assert beta_cdf(0.3, 2, 3) == pytest.approx(0.3483)
    # With an enormous observation the predictive wait tends to the known-rate Gamma.
    big = predictive_wait_quantile(0.95, 100, 1e8, 1e8 * 600)
    assert big == pytest.approx(gamma_quantile(0.95, 100, 600), rel=1e-3)
    # Rate uncertainty widens the range.
    assert predictive_wait_quantile(0.95, 100, 50, 50 * 600) > big
    assert predictive_wait_quantile(0.5, 0, 10, 6000) == 0.0


def test_dashboard_json_fields() -> None:
    tip = 2016 * 400 + 1600
    times = {h: 1_700_000_000 + h * 696 for h in required_heights(tip)}
    s = snap_from(times, tip)
    d = compute(s, PriceSnapshot(71_000.0, 0, "fixed"), times[tip] + 60)
    doc = to_json(d)
    for key in ("source", "tip_height", "price_usd", "hashprice_usd_per_ph_day",
                "hashrate_vs_peak_pct"):
        assert key in doc
    assert set(doc["hashrate_ehs"]) == {"1d", "3d", "7d"}
    assert set(doc["drift"]) >= {"epoch_avg_min", "epoch_drift_pct", "last_144_avg_min",
                                 "blocks_vs_schedule", "since_last_block_s"}
    assert set(doc["retarget"]) >= {
        "remaining_blocks", "next_height", "progress_pct", "change_pct", "change_pct_low",
        "change_pct_high", "eta_unix", "eta_unix_low", "eta_unix_high", "previous_change_pct"}
    assert doc["drift"]["epoch_avg_min"] == pytest.approx(11.6)
    assert doc["retarget"]["remaining_blocks"] == 416


def test_hashprice_uses_the_new_difficulty_after_the_last_block_of_a_period() -> None:
    from tui.dashboard import next_block_difficulty

    tip = 2016 * 5 - 1  # the last block of period 4: the next block is at the new target
    times = regular(tip, 1200, start=tip - 2100)  # blocks twice as slow: difficulty halves
    s = snap_from(times, tip, bits={4: chain.target_to_bits(chain.bits_to_target(DIFF1) // 4)})
    new = next_block_difficulty(s)
    assert new == pytest.approx(s.tip.difficulty * 1_209_600 / (2015 * 1200), rel=1e-4)
    s2 = snap_from(regular(tip - 1, 600, start=tip - 2100), tip - 1)
    assert next_block_difficulty(s2) == s2.tip.difficulty
