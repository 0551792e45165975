"""The curtailment advice (pure) and its screen (`c`), fed the demo's view."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import FakeClock
from tests.fake_engine import START, demo_engine, demo_view
from tui.app import MinertopApp
from tui.curtail import plan, power_cost
from tui.site import PowerNow, RigRow
from tui.spec import SourceSpec


def row(name: str, revenue: float | None, power_w: float | None, status: str = "ok",
        price: float | None = 0.06, own: bool = False) -> RigRow:
    return RigRow(rig_id=name, name=name, host="10.0.0.1", model="S19j Pro", status=status,
                  reason=None, hashrate_ths=100.0, power_w=power_w, power_estimated=False,
                  j_per_th=None, revenue=revenue, cost=None, margin=None, margin_after=None,
                  breakeven_kwh=None, shutdown_price=None, temp_max=None, age_s=1.0,
                  pool=None, economics=None, electricity_usd_kwh=price, own_price=own)


def test_plan_by_hand() -> None:
    # 3,000 W for a day = 72 kWh: $4.32 at $0.06, $13.68 at $0.19
    assert power_cost(3000, 0.06) == pytest.approx(4.32)
    rows = [row("earns", 6.00, 3000), row("loses", 3.00, 3000),
            row("stuck", 0.0, 2900, status="stuck"), row("down", None, None, status="offline"),
            row("own", 3.00, 3000, price=0.03, own=True)]
    p = plan(rows, usd_kwh_now=0.06, usd_kwh_next=0.19, next_change_unix=1000.0)
    # the offline rig draws nothing we know of: left out; worst operating margin first
    assert [r.name for r in p.rows] == ["stuck", "loses", "own", "earns"]
    by = {r.name: r for r in p.rows}
    assert by["loses"].margin_now == pytest.approx(3.00 - 4.32)
    assert by["loses"].saving_now == pytest.approx(1.32)
    assert by["stuck"].saving_now == pytest.approx(2.9 * 24 * 0.06)  # all its power
    assert by["earns"].saving_now == 0.0
    # at the next price ($0.19) the earner loses too; the rig with its own price keeps it
    assert by["earns"].margin_next == pytest.approx(6.00 - 13.68)
    assert by["own"].usd_kwh_next == 0.03 and by["own"].margin_next == pytest.approx(3 - 2.16)
    assert {r.name for r in p.losing_now} == {"stuck", "loses"}
    assert {r.name for r in p.losing_next} == {"stuck", "loses", "earns"}
    assert p.saving_now == pytest.approx(1.32 + 4.176)
    assert p.power_off_now_kw == pytest.approx(5.9)
    # no next price: no next column
    flat = plan(rows, usd_kwh_now=0.06, usd_kwh_next=None, next_change_unix=None)
    assert flat.saving_next is None and all(r.margin_next is None for r in flat.rows)


def _app(view):  # type: ignore[no-untyped-def]
    spec = SourceSpec(kind="mempool", url="http://127.0.0.1:0", demo=True)
    return MinertopApp(spec, engine=demo_engine() if view is None else _engine(view),
                       clock=FakeClock(START))


def _engine(view):  # type: ignore[no-untyped-def]
    from tests.fake_engine import FakeEngine

    return FakeEngine([view])


async def test_c_opens_the_curtailment_screen_with_the_demo_losers() -> None:
    from widgets.curtail import CurtailScreen

    view = demo_view()
    assert view.site is not None
    power = PowerNow(usd_kwh=0.06, source="tariff", next_change_unix=START + 3600,
                     next_usd_kwh=0.19)
    site = dataclasses.replace(view.site, power=power)
    app = _app(dataclasses.replace(view, site=site))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            if app.site_view is not None:
                break
            await pilot.pause(0.01)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CurtailScreen)
        p = app._curtail_plan()
        # at $0.06 the demo's S9s and S19j Pros lose money; the stuck a-03 only costs
        names = {r.name for r in p.losing_now}
        assert "a-03" in names and "a-05" in names
        assert not any(r.name == "a-35" for r in p.losing_now)  # an S21 XP earns
        # at the $0.19 peak almost everything loses
        assert len(p.losing_next) > len(p.losing_now)
        assert p.usd_kwh_next == 0.19
        await pilot.press("c")
        await pilot.pause()
        assert not isinstance(app.screen, CurtailScreen)
        # in the palette too
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Curtail" in titles


def test_the_curtailment_table_says_it_in_words() -> None:
    import io

    from rich.console import Console

    from widgets.curtail import curtail_table

    rows = [row("earns", 6.00, 3000), row("loses", 3.00, 3000)]
    p = plan(rows, usd_kwh_now=0.06, usd_kwh_next=0.19, next_change_unix=START + 7200)
    console = Console(width=140, record=True, file=io.StringIO(), color_system=None)
    console.print(curtail_table(p, START))
    text = console.export_text()
    assert "1 rig loses money now" in text and "saves $1.32/day (3.0 kW)" in text
    # at $0.19: 6.00 − 13.68 = −7.68 and 3.00 − 13.68 = −10.68
    assert "at the next price: 2 lose money, switching them off saves $18.36/day" in text
    assert "✗ off: saves $1.32/d" in text and "▲ off at the next price" in text
    assert "never switches a machine" in text


def test_a_negative_power_price_loses_no_rig() -> None:
    """Paid to draw power: every running rig, even a stuck one, earns more than running
    costs, so the advice switches nothing off; back at a positive price it does."""
    neg = -0.0125  # the site's price in force, as the rows carry it
    rows = [row("earns", 6.00, 3000, price=neg), row("loses", 3.00, 3000, price=neg),
            row("stuck", 0.0, 2900, status="stuck", price=neg)]
    p = plan(rows, usd_kwh_now=neg, usd_kwh_next=0.19, next_change_unix=1000.0)
    assert p.losing_now == () and p.saving_now == 0.0
    by = {r.name: r for r in p.rows}
    assert by["stuck"].margin_now == pytest.approx(2.9 * 24 * 0.0125)
    assert {r.name for r in p.losing_next} == {"earns", "loses", "stuck"}  # $13.68 of power
