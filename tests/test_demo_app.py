"""The real app on the in-process simulator (fake clock): numbers, faults, snapshots."""

from __future__ import annotations

import time

import pytest

from tests.conftest import FakeClock
from tui.app import MinertopApp
from tui.cli import SourceSpec
from widgets.drift import DriftPane
from widgets.hashrate import HashratePane
from widgets.header import HeaderBar
from widgets.retarget import RetargetPane

START = 1_769_900_000.0  # the clock the simulator's default figures were tuned at


def demo_app(via: str = "mempool", clock: FakeClock | None = None) -> MinertopApp:
    spec = SourceSpec(kind=via, url="http://127.0.0.1:0", demo=True)
    app = MinertopApp(spec, clock=clock or FakeClock(START))
    app.backoff_overrides = {"min_delay": 0.05, "max_delay": 0.05}
    return app


async def loaded(pilot, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    deadline = time.monotonic() + timeout
    while app.dashboard is None or app.price is None:
        if time.monotonic() > deadline:
            raise AssertionError("demo never showed data")
        await pilot.pause(0.02)
    await pilot.pause()


def rendered(app: MinertopApp, pane: type) -> str:
    return str(app.query_one(pane).render())


@pytest.mark.parametrize("via", ["mempool", "bitcoind"])
async def test_demo_shows_the_january_2026_squeeze(via: str) -> None:
    app = demo_app(via)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        d = app.dashboard
        assert d is not None
        one_day = d.hashrate.windows["1d"]
        assert one_day is not None and 940e18 < one_day < 1000e18
        assert d.hashrate.vs_peak_pct is not None and -15 < d.hashrate.vs_peak_pct < -9
        assert d.drift.epoch_avg_s is not None and 11.3 < d.drift.epoch_avg_s / 60 < 11.9
        assert d.retarget is not None and -16 < d.retarget.projection.difficulty_change < -12
        assert d.price is not None and d.price.usd == pytest.approx(71_000, rel=0.01)
        # ... and the panes show exactly those numbers.
        assert f"{one_day / 1e18:,.0f} EH/s" in rendered(app, HashratePane)
        assert f"{d.drift.epoch_avg_s / 60:.1f} min" in rendered(app, DriftPane)
        change = f"{d.retarget.projection.difficulty_change:+.2f}%".replace("-", "−")
        assert f"projected {change}" in rendered(app, RetargetPane)
        assert "block 935,008" in rendered(app, HeaderBar)
        assert "$71,0" in rendered(app, HeaderBar)


async def test_demo_source_down_then_back() -> None:
    clock = FakeClock(START)
    app = demo_app(clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        sim = app.sim
        assert sim is not None
        await sim.mempool_server.stop()  # type: ignore[attr-defined]
        clock.advance(45)
        await pilot.press("r")
        deadline = time.monotonic() + 10
        while app.pollers["chain"].error is None:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        await pilot.pause()
        sub = app.query_one(RetargetPane).border_subtitle
        assert "STALE <1m ago" in sub and "connection refused" in sub
        assert "416 blocks" in rendered(app, RetargetPane)  # the last good data stays
        # Faults on the wire: malformed and truncated JSON are errors, not crashes.
        await sim.mempool_server.start()  # type: ignore[attr-defined]
        sim.mempool_server.faults.set("truncated", count=1)  # type: ignore[attr-defined]
        while app.pollers["chain"].error is not None:
            assert time.monotonic() < deadline + 10
            await pilot.pause(0.02)
        await pilot.pause()
        assert "STALE" not in app.query_one(RetargetPane).border_subtitle


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot(size: tuple[int, int], snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(demo_app(), terminal_size=size, run_before=loaded)


def test_snapshot_no_color(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=loaded)
