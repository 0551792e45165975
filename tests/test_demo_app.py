"""The demo: the real app on the in-process simulator (fake clock) end to end, and the
demo's captured view fed to the app by a fake engine (snapshots, keys, hostile text)."""

from __future__ import annotations

import time
from dataclasses import replace
from types import MappingProxyType

import pytest

from tests.conftest import FakeClock
from tests.fake_engine import FakeEngine, demo_engine, demo_view, with_source
from tui.app import MinertopApp
from tui.spec import SourceSpec
from widgets.drift import DriftPane
from widgets.hashrate import HashratePane
from widgets.header import HeaderBar
from widgets.retarget import RetargetPane

START = 1_769_900_000.0  # the clock the simulator's default figures were tuned at


def demo_app(via: str = "mempool", clock: FakeClock | None = None) -> MinertopApp:
    spec = SourceSpec(kind=via, url="http://127.0.0.1:0", demo=True)
    app = MinertopApp(spec, clock=clock or FakeClock(START))
    app.backoff_overrides = {"min_delay": 0.05, "max_delay": 0.05}
    app.poll_overrides = {"timeout_s": 1.5}  # the demo's hanging rig costs one deadline
    return app


def fed_app(engine: FakeEngine | None = None) -> MinertopApp:
    """The dashboard fed the demo's captured view (no simulator)."""
    spec = SourceSpec(kind="mempool", url="http://127.0.0.1:0", demo=True)
    return MinertopApp(spec, engine=engine or demo_engine(), clock=FakeClock(START))


async def shown(pilot) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        if pilot.app.site_view is not None:
            break
        await pilot.pause(0.01)
    await pilot.pause()


async def loaded(pilot, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    deadline = time.monotonic() + timeout
    def complete() -> bool:
        fleet = app.fleet
        rigs = app.pollers.get("rigs")
        return (app.dashboard is not None and app.price is not None and fleet is not None
                and len(fleet) == 48 and app.site_view is not None
                and rigs is not None and rigs.polls >= 1
                and app.site_view.totals.margin_usd_day is not None)

    while not complete():
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


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
def test_snapshot(size: tuple[int, int], snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(fed_app(), terminal_size=size, run_before=shown)


def test_snapshot_no_color(snap_compare, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(fed_app(), terminal_size=(80, 24), run_before=shown)


async def test_demo_site_margins_and_rig_keys() -> None:
    from widgets.rig_detail import RigDetailScreen
    from widgets.rigs import RigsPane

    app = fed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot)
        view = app.site_view
        assert view is not None and len(view.rows) == 48
        by_model: dict[str, list] = {}
        for r in view.rows:
            by_model.setdefault(r.model, []).append(r)
        # At $0.06/kWh the old rigs lose money, the S19 XP is near break-even and turns
        # positive after the projected retarget, the S21 generation earns.
        assert all(r.margin < 0 for r in by_model["S9"] if r.margin is not None)
        xp = [r for r in by_model["S19 XP"] if r.margin is not None]
        assert xp and all(abs(r.margin) < 0.5 and r.margin_after > 0 for r in xp)
        assert all(r.margin > 0 for m in ("S21", "S21 XP") for r in by_model[m]
                   if r.margin is not None)
        statuses = {r.name: r.status for r in view.rows}
        assert statuses["a-02"] == "offline" and statuses["a-08"] == "offline"
        # a-03's API answers but it does not mine; a-27 hashes on two of its three boards
        assert statuses["a-03"] == "stuck" and statuses["a-27"] == "ok"
        assert sum(1 for s in statuses.values() if s == "ok") == 45
        rows = {r.name: r for r in view.rows}
        assert rows["a-03"].revenue == 0 and rows["a-03"].margin is not None \
            and rows["a-03"].margin < 0  # no revenue, still its power cost
        assert rows["a-27"].boards_text == "2/3 boards"
        # the Whatsminer API v3 machines read like the others
        v3 = [r for r in view.rows if r.protocol == "whatsminer-v3"]
        assert {r.name for r in v3} == {"a-44", "a-45", "a-46"}
        assert all(r.status == "ok" and r.power_w and not r.power_estimated for r in v3)
        assert {r.model for r in v3} == {"M60S", "M66S"}
        assert any(r.power_estimated for r in view.rows)  # stock Antminers report no power
        bitaxe = [r for r in view.rows if r.model == "Bitaxe Gamma"]
        assert len(bitaxe) == 1 and bitaxe[0].power_estimated is False
        pane = app.query_one(RigsPane)
        assert "48 rigs" in str(pane.border_title) and "2 ✗" in str(pane.border_title)
        assert "1 stuck" in str(pane.border_title)
        # The down rigs are listed first, then the stuck one, then a board down.
        t = pane.table
        assert {str(t.get_row_at(0)[0]), str(t.get_row_at(1)[0])} == {"a-02", "a-08"}
        assert str(t.get_row_at(2)[0]) == "a-03" and "stuck" in str(t.get_row_at(2)[-1])
        assert str(t.get_row_at(3)[0]) == "a-27"
        assert str(t.get_row_at(3)[-1]) == "▲ 2/3 boards"

        await pilot.press("4")
        assert app.focused is pane.table
        await pilot.press("slash")
        for ch in "xp":
            await pilot.press(ch)
        await pilot.press("enter")
        assert pane.filter_text == "xp"
        assert 0 < t.row_count < 48
        assert all("XP" in str(t.get_row_at(i)[1]) for i in range(t.row_count))
        await pilot.press("escape")
        assert pane.filter_text == "" and t.row_count == 48

        sort0 = pane.sort_column
        await pilot.press("s")
        assert pane.sort_column != sort0
        await pilot.press("less_than_sign")
        assert pane.sort_column == sort0
        await pilot.press("i")
        assert pane.sort_reverse

        await pilot.press("4", "enter")
        assert isinstance(app.screen, RigDetailScreen)
        rig_id = app.screen.rig_id
        await pilot.pause()
        assert rig_id in {r.rig_id for r in view.rows}
        await pilot.press("escape")
        assert not isinstance(app.screen, RigDetailScreen)


async def test_hostile_error_text_and_no_price_do_not_crash() -> None:
    """Markup in remote text is shown literally; details open even without a price."""
    from widgets.rig_detail import RigDetailScreen
    from widgets.rigs import RigsPane

    engine = demo_engine()
    app = fed_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot)
        # the price source never answered, the chain source fails with markup in its text
        bad = with_source(demo_view(price=None), "chain",
                          error="mempool x: HTTP 500: [/bogus] [b]bold[/b]")
        engine.publish(bad)
        await pilot.pause()
        assert "[/bogus]" in str(app.query_one(RetargetPane).border_subtitle)
        pane = app.query_one(RigsPane)
        pane.table.focus()
        await pilot.press("slash", "[", "/", "x", "]", "enter")
        assert pane.filter_text == "[/x]"
        await pilot.press("escape", "4", "down", "down", "down", "enter")
        assert isinstance(app.screen, RigDetailScreen)
        await pilot.pause()
        assert app.is_running


async def test_a_failure_computing_the_site_is_shown_in_the_rigs_pane() -> None:
    """An unexpected exception in the engine's site pipeline: the rigs pane says what
    failed (the last rows stay), a toast says it once, the app keeps running."""
    from widgets.rigs import RigsPane

    engine = demo_engine()
    app = fed_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot)
        v = demo_view()
        engine.publish(replace(v, seq=v.seq + 1, errors=MappingProxyType(
            {"site": "internal error computing the site: ZeroDivisionError: [b]x"})))
        await pilot.pause()
        pane = app.query_one(RigsPane)
        shown_text = pane.__dict__["_border_plain"]["subtitle"]  # what set_border drew
        assert "ZeroDivisionError: [b]x" in shown_text
        assert pane.has_class("-error") and pane.table.row_count == 48
        engine.publish(replace(v, seq=v.seq + 2))
        await pilot.pause()
        assert "ZeroDivision" not in str(pane.border_subtitle)
        assert not pane.has_class("-error")


async def test_a_failing_part_is_told_once_per_outage() -> None:
    """A part's error is a toast once while it lasts, whatever the cycles repeat, and a part
    that flaps (fails, recovers for a poll, fails again) is one outage; once the part has
    been healthy for a minute, the same error coming back is told again; an error whose
    text changes every cycle keeps the remembered texts bounded."""
    from tui.app import RETELL_AFTER_S

    engine = demo_engine()
    app = fed_app(engine)
    v = demo_view()

    def toasts() -> list[str]:
        return [n.message for n in app._notifications if n.title == "chain failed"]

    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot)
        seq, t = v.seq, v.time

        async def publish(errors: dict[str, str], after_s: float = 5.0) -> None:
            nonlocal seq, t
            seq, t = seq + 1, t + after_s
            engine.publish(replace(v, seq=seq, time=t, errors=MappingProxyType(errors)))
            await pilot.pause()

        for errors in ({"chain": "HTTP 500"}, {"chain": "HTTP 500"}, {}, {"chain": "HTTP 500"},
                       {}, {"chain": "HTTP 500"}):
            await publish(errors)
        assert toasts() == ["HTTP 500"]  # flapping: one outage
        await publish({})
        await publish({}, after_s=RETELL_AFTER_S - 1)
        await publish({"chain": "HTTP 500"})
        assert toasts() == ["HTTP 500"]  # healthy for less than a minute
        await publish({})
        await publish({}, after_s=RETELL_AFTER_S)
        assert app._notified_errors == {}
        await publish({"chain": "HTTP 500"})
        assert toasts() == ["HTTP 500", "HTTP 500"]  # a new outage: told again
        for i in range(200):
            await publish({"chain": f"timed out after {i} s"})
        assert len(app._notified_errors["chain"]) <= 64
        await publish({})
        await publish({}, after_s=RETELL_AFTER_S)
        assert app._notified_errors == {} and app._healthy_since == {}


def test_a_rig_hashing_nothing_is_stuck_not_ok() -> None:
    from tui.catalog import Catalog
    from tui.config import RigConfig, SiteConfig
    from tui.economics import hashprice
    from tui.model import RigReading
    from tui.site import RigInput, compute_site

    cfg = RigConfig(name="dead", host="127.0.0.1", model="S19j Pro")
    rd = RigReading(rig_id="dead", host="127.0.0.1", port=4028, time=0.0, ok=True,
                    model="Antminer S19j Pro", hashrate_ths=0.0)
    view = compute_site(
        [RigInput("dead", "127.0.0.1", 4028, cfg, rd, "ok", None, 1.0)],
        site=SiteConfig(name="t", electricity_usd_kwh=0.06, rigs=(cfg,)),
        catalog=Catalog.load(), hashprice=hashprice(1.4e14, 312_500_000, 0, 71_000.0),
        price_usd=71_000.0, retarget_change_pct=-10.0)
    row = view.rows[0]
    assert row.status == "stuck" and "not hashing" in (row.reason or "")
    # it earns nothing and still draws power: the model's nominal 3,068 W, estimated
    assert row.revenue == 0 and row.power_w == pytest.approx(3068) and row.power_estimated
    assert row.margin == pytest.approx(-3.068 * 24 * 0.06)
    assert view.counts == {"stuck": 1}


async def test_alerts_fire_once_into_the_log_and_the_screen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tui.alerts import AlertEngine, AlertRules
    from widgets.alerts import AlertsScreen

    log = tmp_path / "alerts.log"
    app = demo_app()
    rules = AlertRules(log_file=log, rig_temp_above_c=None, hold_s=0.0)
    app.alert_rules = rules
    engine = app.local_engine
    assert engine is not None
    engine.alerts = AlertEngine(rules)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        lines = log.read_text().splitlines()
        fired = [ln for ln in lines if "\tFIRED\t" in ln]
        # The demo's losing rigs and its 16% slow epoch fire once each...
        assert any("network:drift" in ln for ln in fired)
        assert any("rig:a-05:margin" in ln for ln in fired)
        n = len(lines)
        # ...and re-evaluating the same conditions adds nothing.
        for _ in range(2):
            engine.recompute()
            await engine.idle()
        assert len(log.read_text().splitlines()) == n
        await pilot.pause()
        assert "alerts" in str(app.query_one("HeaderBar").render())
        await pilot.press("a")
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("escape")
        # A rig that comes back above the threshold clears once.
        engine.alerts.rules = replace(rules, rig_margin_below_usd_day=-100.0)
        engine.recompute()
        await engine.idle()
        cleared = [ln for ln in log.read_text().splitlines()[n:] if "\tCLEARED\t" in ln]
        assert any("rig:a-05:margin" in ln for ln in cleared)
        assert not any(k.endswith(":margin") for k in engine.alerts.active)
