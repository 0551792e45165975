"""The squeeze on screen: network revenue in the hashrate pane, the retarget against its
history, hashprice after the retarget, the zoomed charts (fed the demo's captured view)."""

from __future__ import annotations

from tests.conftest import FakeClock
from tests.fake_engine import START, demo_engine, demo_view
from tui.app import MinertopApp
from tui.spec import SourceSpec
from widgets.hashrate import HashratePane
from widgets.retarget import RetargetPane


def fed() -> MinertopApp:
    spec = SourceSpec(kind="mempool", url="http://127.0.0.1:0", demo=True)
    return MinertopApp(spec, engine=demo_engine(), clock=FakeClock(START))


async def _shown(pilot, app: MinertopApp) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        if app.dashboard is not None:
            break
        await pilot.pause(0.01)
    await pilot.pause()


def test_the_demo_view_has_the_squeeze_figures() -> None:
    d = demo_view().dashboard
    assert d is not None
    assert d.revenue is not None and d.revenue.usd_day is not None
    assert 20e6 < d.revenue.usd_day < 40e6  # about $28M/day at the seed's numbers
    assert d.largest_since is not None and d.largest_since.direction == "cut"
    assert d.hashprice_after_retarget_usd is not None
    assert d.hashprice.usd_per_ph_day is not None
    assert d.hashprice_after_retarget_usd > d.hashprice.usd_per_ph_day  # a cut pays more
    assert len(d.retarget_history) >= 12 and len(d.hashprice_history) >= 30


async def test_panes_show_revenue_largest_cut_and_hashprice_after() -> None:
    app = fed()
    async with app.run_test(size=(120, 40)) as pilot:
        await _shown(pilot, app)
        d = app.dashboard
        assert d is not None and d.revenue is not None and d.largest_since is not None
        hr = str(app.query_one(HashratePane).render())
        assert f"network ${d.revenue.usd_day / 1e6:,.1f}M/day" in hr
        assert "vs 30d" in hr
        rt = str(app.query_one(RetargetPane).render())
        assert f"largest cut since {d.largest_since.date}" in rt
        assert "hashprice $" in rt and "→" in rt
        # zoomed: the past adjustments are listed, newest first, and the hashprice chart
        await pilot.press("3")
        await pilot.press("z")
        await pilot.pause()
        rt = str(app.query_one(RetargetPane).render())
        assert "past adjustments (newest first)" in rt
        newest = d.retarget_history[0]
        assert f"{newest.height:>9,}" in rt
        await pilot.press("z")
        await pilot.press("1")
        await pilot.press("z")
        await pilot.pause()
        assert "days of hashprice, USD per PH/s per day" in str(
            app.query_one(HashratePane).render())


async def test_at_80x24_the_retarget_pane_keeps_the_essentials() -> None:
    app = fed()
    async with app.run_test(size=(80, 24)) as pilot:
        await _shown(pilot, app)
        rt = str(app.query_one(RetargetPane).render())
        lines = rt.splitlines()
        pane = app.query_one(RetargetPane)
        assert len(lines) <= pane.content_size.height
        assert "projected" in rt and "ETA" in rt and "largest cut" in rt
