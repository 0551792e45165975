"""Per-rig and site economics, with every expected number worked out by hand in the comments.

Common inputs unless a test says otherwise: hashprice 0.0004 BTC per PH/s per day
(= 0.0000004 BTC per TH/s per day), BTC at $71,000 (so $28.40/PH/day), electricity $0.06/kWh.
"""

from __future__ import annotations

import math

import pytest

from tui.economics import (
    Hashprice,
    RigEconomics,
    hashprice,
    retarget_factor,
    rig_economics,
    site_totals,
)

PRICE = 71_000.0
HP = Hashprice(
    btc_per_ph_day=0.0004,
    usd_per_ph_day=0.0004 * PRICE,  # 28.40
    subsidy_sat=312_500_000,
    avg_fees_sat=0.0,
    fees_known=True,
)
HP_NO_USD = Hashprice(0.0004, None, 312_500_000, 0.0, True)


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-12)


def s19j(**kw: object) -> RigEconomics:
    args: dict = dict(
        hashrate_ths=104.0,
        power_w=3068.0,
        hashprice=HP,
        price_usd=PRICE,
        electricity_usd_kwh=0.06,
        pool_fee_pct=2.0,
        retarget_change_pct=-14.0,
    )
    args.update(kw)
    return rig_economics(**args)


def test_s19j_pro_worked_example() -> None:
    e = s19j()
    # BTC/day = 104 TH/s x 0.0000004 BTC/TH/day = 0.0000416 gross; x (1 - 0.02) = 0.000040768
    assert e.btc_per_day == approx(0.000040768)
    # revenue = 0.000040768 x 71,000 = $2.894528/day
    assert e.revenue_usd_day == approx(2.894528)
    # energy = 3068 W / 1000 x 24 h = 73.632 kWh/day; cost = 73.632 x 0.06 = $4.41792/day
    assert e.cost_usd_day == approx(4.41792)
    # margin = 2.894528 - 4.41792 = -$1.523392/day
    assert e.margin_usd_day == approx(-1.523392)
    # margin % = -1.523392 / 2.894528 x 100 = -52.630 %
    assert e.margin_pct == pytest.approx(-52.63006611, rel=1e-9)
    # J/TH = 3068 / 104 = 29.5
    assert e.j_per_th == approx(29.5)
    # break-even electricity = 2.894528 / 73.632 kWh = $0.039311/kWh
    assert e.breakeven_usd_kwh == pytest.approx(0.0393107345, rel=1e-9)
    # shutdown price = 4.41792 / 0.000040768 = $108,367.35 per BTC
    assert e.shutdown_price_usd == pytest.approx(108_367.3469388, rel=1e-9)
    # after a -14 % retarget: new/old difficulty = 0.86, revenue x 1/0.86 = 2.894528 / 0.86
    # = $3.365730; margin = 3.365730 - 4.41792 = -$1.052190
    assert e.revenue_after_retarget_usd_day == pytest.approx(3.3657302326, rel=1e-9)
    assert e.margin_after_retarget_usd_day == pytest.approx(-1.0521897674, rel=1e-9)


def test_s21_xp_with_overhead_and_positive_retarget() -> None:
    e = rig_economics(
        hashrate_ths=270.0,
        power_w=3645.0,
        hashprice=HP,
        price_usd=PRICE,
        electricity_usd_kwh=0.06,
        pool_fee_pct=0.0,
        overhead_usd_day=0.5,
        retarget_change_pct=5.0,
    )
    # BTC/day = 270 x 0.0000004 = 0.000108 (no pool fee); revenue = 0.000108 x 71,000 = 7.668
    assert e.btc_per_day == approx(0.000108)
    assert e.revenue_usd_day == approx(7.668)
    # energy = 3.645 kW x 24 = 87.48 kWh/day; cost = 87.48 x 0.06 + 0.50 overhead = 5.7488
    assert e.cost_usd_day == approx(5.7488)
    # margin = 7.668 - 5.7488 = 1.9192; margin % = 1.9192 / 7.668 = 25.029 %
    assert e.margin_usd_day == approx(1.9192)
    assert e.margin_pct == pytest.approx(1.9192 / 7.668 * 100)
    # J/TH = 3645 / 270 = 13.5
    assert e.j_per_th == approx(13.5)
    # break-even: the revenue pays for the power (the overhead is paid either way):
    # 7.668 / 87.48 = 0.0876543
    assert e.breakeven_usd_kwh == pytest.approx(0.0876543210, rel=1e-9)
    # shutdown price = 5.7488 / 0.000108 = $53,229.63
    assert e.shutdown_price_usd == pytest.approx(53_229.6296296, rel=1e-9)
    # +5 % retarget: revenue / 1.05 = 7.302857; margin = 7.302857 - 5.7488 = 1.554057
    assert e.revenue_after_retarget_usd_day == pytest.approx(7.3028571429, rel=1e-9)
    assert e.margin_after_retarget_usd_day == pytest.approx(1.5540571429, rel=1e-9)


def test_breakeven_electricity_zeroes_the_margin_over_power() -> None:
    """At the break-even price the revenue pays exactly for the power: what is left is
    minus the overhead, which is paid whether the machine runs or not."""
    for overhead in (0.0, 0.75):
        e = s19j(overhead_usd_day=overhead)
        assert e.breakeven_usd_kwh is not None
        again = s19j(electricity_usd_kwh=e.breakeven_usd_kwh, overhead_usd_day=overhead)
        assert again.margin_usd_day == pytest.approx(-overhead, abs=1e-12)


def test_shutdown_price_zeroes_the_margin() -> None:
    e = s19j()
    assert e.shutdown_price_usd is not None
    again = s19j(price_usd=e.shutdown_price_usd)
    assert again.margin_usd_day == pytest.approx(0.0, abs=1e-12)


def test_bitaxe_through_real_hashprice() -> None:
    # Difficulty chosen so 1 PH/s finds 0.0001 blocks/day:
    # D = 1e15 x 86,400 / (2^32 x 0.0001) = 201,165,676,116,943.3
    difficulty = 1e15 * 86_400 / (2**32 * 1e-4)
    # reward = 3.125 BTC subsidy + 0.125 BTC average fees = 3.25 BTC
    # hashprice = 0.0001 x 3.25 = 0.000325 BTC/PH/day = $23.075/PH/day at $71,000
    hp = hashprice(difficulty, 312_500_000, 12_500_000, PRICE)
    assert hp.btc_per_ph_day == approx(0.000325)
    assert hp.usd_per_ph_day == pytest.approx(23.075)
    e = rig_economics(
        hashrate_ths=1.1,
        power_w=18.0,
        hashprice=hp,
        price_usd=PRICE,
        electricity_usd_kwh=0.15,
        pool_fee_pct=0.0,
        retarget_change_pct=None,
    )
    # BTC/day = 1.1 TH/s x 0.000000325 = 0.0000003575; revenue = x 71,000 = $0.0253825
    assert e.btc_per_day == approx(3.575e-7)
    assert e.revenue_usd_day == approx(0.0253825)
    # energy = 18 W x 24 h = 0.432 kWh; cost = 0.432 x 0.15 = $0.0648
    assert e.cost_usd_day == approx(0.0648)
    assert e.margin_usd_day == approx(-0.0394175)
    # J/TH = 18 / 1.1 = 16.36
    assert e.j_per_th == pytest.approx(16.363636, rel=1e-6)
    # shutdown = 0.0648 / 0.0000003575 = $181,258.74
    assert e.shutdown_price_usd == pytest.approx(181_258.7412587, rel=1e-9)
    # no retarget projection: nothing "after"
    assert e.revenue_after_retarget_usd_day is None
    assert e.margin_after_retarget_usd_day is None


def test_no_power_leaves_power_figures_empty() -> None:
    e = s19j(power_w=None)
    assert e.revenue_usd_day == approx(2.894528)
    assert e.btc_per_day == approx(0.000040768)
    assert e.revenue_after_retarget_usd_day == pytest.approx(3.3657302326)
    for f in (
        e.cost_usd_day,
        e.margin_usd_day,
        e.margin_pct,
        e.j_per_th,
        e.breakeven_usd_kwh,
        e.shutdown_price_usd,
        e.margin_after_retarget_usd_day,
    ):
        assert f is None


def test_no_price_anywhere_keeps_btc_and_cost() -> None:
    e = s19j(hashprice=HP_NO_USD, price_usd=None)
    assert e.btc_per_day == approx(0.000040768)
    assert e.cost_usd_day == approx(4.41792)
    # the shutdown price needs no price: 4.41792 / 0.000040768
    assert e.shutdown_price_usd == pytest.approx(108_367.3469388, rel=1e-9)
    assert e.j_per_th == approx(29.5)
    for f in (
        e.revenue_usd_day,
        e.margin_usd_day,
        e.margin_pct,
        e.breakeven_usd_kwh,
        e.revenue_after_retarget_usd_day,
        e.margin_after_retarget_usd_day,
    ):
        assert f is None


def test_price_implied_by_hashprice_when_not_given() -> None:
    # hashprice carries $28.40/PH/day for 0.0004 BTC: an implied price of $71,000
    assert s19j(price_usd=None).revenue_usd_day == approx(2.894528)
    # a zero / NaN price is no price
    assert s19j(price_usd=0.0).revenue_usd_day == approx(2.894528)
    assert s19j(price_usd=math.nan).revenue_usd_day == approx(2.894528)


def test_explicit_price_wins_over_hashprice_usd() -> None:
    # 0.000040768 BTC x $50,000 = $2.0384
    assert s19j(price_usd=50_000.0).revenue_usd_day == approx(2.0384)


def test_zero_hashrate_never_divides_by_zero() -> None:
    e = s19j(hashrate_ths=0.0)
    assert e.btc_per_day == 0.0
    assert e.revenue_usd_day == 0.0
    assert e.cost_usd_day == approx(4.41792)
    assert e.margin_usd_day == approx(-4.41792)
    assert e.margin_pct is None  # % of a zero revenue is not defined
    assert e.j_per_th is None
    assert e.shutdown_price_usd is None  # no BTC earned: no price makes it pay
    assert e.breakeven_usd_kwh == 0.0  # 0 revenue / 73.632 kWh
    assert e.revenue_after_retarget_usd_day == 0.0
    assert e.margin_after_retarget_usd_day == approx(-4.41792)


def test_zero_power_and_zero_everything() -> None:
    e = s19j(power_w=0.0)
    assert e.cost_usd_day == 0.0
    assert e.j_per_th == 0.0
    assert e.breakeven_usd_kwh is None  # no kWh to price
    assert e.shutdown_price_usd == 0.0
    e = s19j(hashrate_ths=0.0, power_w=0.0, price_usd=None, hashprice=HP_NO_USD)
    assert e.margin_pct is None and e.j_per_th is None and e.breakeven_usd_kwh is None


def test_overhead_does_not_move_the_breakeven_electricity_price() -> None:
    """An overhead larger than the revenue leaves the margin negative at any power price,
    but running the rig still pays for its power below 2.894528 / 73.632 = $0.039311/kWh
    (the curtailment view's advice agrees: the overhead is paid either way)."""
    e = s19j(overhead_usd_day=3.0)
    assert e.breakeven_usd_kwh == pytest.approx(2.894528 / 73.632)
    assert e.breakeven_usd_kwh == s19j().breakeven_usd_kwh


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_garbage_hashrate_or_power_counts_as_unknown(bad: float) -> None:
    e = s19j(hashrate_ths=bad)
    assert e.btc_per_day is None and e.revenue_usd_day is None and e.j_per_th is None
    assert e.cost_usd_day == approx(4.41792)
    e = s19j(power_w=bad)
    assert e.cost_usd_day is None and e.revenue_usd_day == approx(2.894528)


@pytest.mark.parametrize(
    "kw",
    [
        {"electricity_usd_kwh": math.nan},
        {"pool_fee_pct": 101.0},
        {"pool_fee_pct": -1.0},
        {"overhead_usd_day": -1.0},
    ],
)
def test_invalid_config_values_raise(kw: dict) -> None:
    with pytest.raises(ValueError):
        s19j(**kw)


def test_retarget_factor() -> None:
    assert retarget_factor(-14.0) == approx(1 / 0.86)  # 1.16279
    assert retarget_factor(0.0) == 1.0
    assert retarget_factor(300.0) == approx(0.25)
    assert retarget_factor(None) is None
    assert retarget_factor(-100.0) is None
    assert retarget_factor(math.nan) is None
    assert s19j(retarget_change_pct=-100.0).margin_after_retarget_usd_day is None


def test_hundred_percent_pool_fee() -> None:
    e = s19j(pool_fee_pct=100.0)
    assert e.btc_per_day == 0.0 and e.revenue_usd_day == 0.0
    assert e.shutdown_price_usd is None and e.margin_pct is None


def _site() -> list[tuple[float, float | None, RigEconomics]]:
    common = dict(
        hashprice=HP,
        price_usd=PRICE,
        electricity_usd_kwh=0.06,
        pool_fee_pct=2.0,
        retarget_change_pct=-14.0,
    )
    s19 = rig_economics(hashrate_ths=104.0, power_w=3068.0, **common)
    s21 = rig_economics(
        hashrate_ths=270.0,
        power_w=3645.0,
        **{**common, "pool_fee_pct": 0.0, "overhead_usd_day": 0.5},
    )
    unknown = rig_economics(hashrate_ths=100.0, power_w=None, **common)
    return [(104.0, 3068.0, s19), (270.0, 3645.0, s21), (100.0, None, unknown)]


def test_site_totals_worked_example() -> None:
    t = site_totals(_site(), PRICE)
    # rigs: S19j Pro (as above), S21 XP (no fee, $0.50 overhead), a 100 TH/s rig without power
    assert t.rigs == 3 and t.rigs_without_power == 1
    # hashrate = 104 + 270 + 100 = 474 TH/s; power = 3068 + 3645 = 6713 W (known only)
    assert t.hashrate_ths == approx(474.0)
    assert t.power_w == approx(6713.0)
    # BTC/day = 0.000040768 + 0.000108 + 100 x 0.0000004 x 0.98 (= 0.0000392) = 0.000187968
    assert t.btc_per_day == approx(0.000187968)
    # revenue = 2.894528 + 7.668 + 2.7832 = 13.345728
    assert t.revenue_usd_day == approx(13.345728)
    # cost (known) = 4.41792 + 5.7488 = 10.16672
    assert t.cost_usd_day == approx(10.16672)
    # margin (rigs with a known margin) = -1.523392 + 1.9192 = 0.395808
    assert t.margin_usd_day == approx(0.395808)
    # margin % = 0.395808 / (2.894528 + 7.668) = 3.7473 %
    assert t.margin_pct == pytest.approx(3.7472847409, rel=1e-9)
    # after -14 %: revenue 13.345728 / 0.86 = 15.518288; margin -1.052190 + (7.668 / 0.86
    # - 5.7488 = 3.167479) = 2.115289
    assert t.revenue_after_retarget_usd_day == pytest.approx(15.5182883721, rel=1e-9)
    assert t.margin_after_retarget_usd_day == pytest.approx(2.1152893023, rel=1e-9)
    # production cost = known cost / BTC of the same rigs = 10.16672 / (0.000040768 + 0.000108)
    # = 10.16672 / 0.000148768 = $68,339.43 per BTC, against a $71,000 price
    assert t.production_cost_usd_per_btc == pytest.approx(68_339.4278339, rel=1e-9)
    assert t.price_usd == PRICE


def test_site_totals_empty_and_without_price() -> None:
    t = site_totals([], None)
    assert t.rigs == 0 and t.hashrate_ths == 0.0 and t.power_w == 0.0
    assert t.revenue_usd_day is None and t.margin_usd_day is None
    assert t.production_cost_usd_per_btc is None and t.margin_pct is None
    no_price = [
        (104.0, 3068.0, s19j(price_usd=None, hashprice=HP_NO_USD)),
    ]
    t = site_totals(no_price, None)
    assert t.revenue_usd_day is None and t.margin_usd_day is None
    assert t.cost_usd_day == approx(4.41792)
    # production cost needs no price: 4.41792 / 0.000040768
    assert t.production_cost_usd_per_btc == pytest.approx(108_367.3469388, rel=1e-9)
    assert t.price_usd is None


def test_site_totals_accepts_a_generator_and_zero_hashrate_rigs() -> None:
    rows = ((h, w, s19j(hashrate_ths=h, power_w=w)) for h, w in [(104.0, 3068.0), (0.0, 3068.0)])
    t = site_totals(rows, PRICE)
    assert t.rigs == 2 and t.hashrate_ths == approx(104.0)
    # the idle rig costs 4.41792 and earns nothing: production cost = 2 x 4.41792 / 0.000040768
    assert t.production_cost_usd_per_btc == pytest.approx(2 * 108_367.3469388, rel=1e-9)


def test_a_negative_power_price_pays_the_rig_to_run() -> None:
    """A real-time price below zero (the site is paid to draw power): the power cost is a
    credit, the margin exceeds the revenue, the rig earns at any BTC price (shutdown price
    0), and the break-even price does not move."""
    e = s19j(electricity_usd_kwh=-0.01, overhead_usd_day=0.5)
    # 73.632 kWh/day x -0.01 = -0.73632, + 0.50 overhead = -0.23632
    assert e.cost_usd_day == approx(-0.23632)
    assert e.margin_usd_day == approx(2.894528 + 0.23632)
    assert e.shutdown_price_usd == 0.0
    assert e.breakeven_usd_kwh == s19j().breakeven_usd_kwh
    with pytest.raises(ValueError, match="must be a number"):
        s19j(electricity_usd_kwh=math.nan)


def test_power_prices_read_with_a_real_minus_sign() -> None:
    from tui.fmt import fmt_usd_kwh

    assert fmt_usd_kwh(0.06) == "$0.060/kWh"
    assert fmt_usd_kwh(-0.0125) == "−$0.013/kWh"  # rounds half to even on the binary value
    assert fmt_usd_kwh(-0.0125, 4, unit=False) == "−$0.0125"
    assert fmt_usd_kwh(None) == "—"


def test_dollars_read_with_a_real_minus_sign_before_the_dollar() -> None:
    from tui.fmt import fmt_usd

    assert fmt_usd(1234.4) == "$1,234"
    assert fmt_usd(-1234.4) == "−$1,234"
    assert fmt_usd(-0.5, 2) == "−$0.50"
    assert fmt_usd(0.0, signed=True) == "+$0"
    assert fmt_usd(12.345, 2, signed=True) == "+$12.35"
    assert fmt_usd(-12.345, 2, signed=True) == "−$12.35"
    assert fmt_usd(None) == "—"


def test_a_negative_production_cost_reads_minus_dollars_in_the_rigs_title() -> None:
    # Only a negative power price (the site paid to draw power) makes the cost per BTC
    # negative; it read "$-1,234".
    from tui.economics import SiteTotals
    from tui.site import SiteView

    totals = SiteTotals(
        rigs=1, rigs_without_power=0, hashrate_ths=200.0, power_w=3000.0, btc_per_day=0.0002,
        revenue_usd_day=14.2, cost_usd_day=-0.25, margin_usd_day=14.45, margin_pct=101.8,
        revenue_after_retarget_usd_day=None, margin_after_retarget_usd_day=None,
        production_cost_usd_per_btc=-1234.0, price_usd=71_000.0,
    )
    view = SiteView(name="A", rows=(), totals=totals, price_usd=71_000.0, counts={})
    title = view.title(200)
    assert "cost/BTC −$1,234 vs $71,000" in title
    assert "$-" not in title
