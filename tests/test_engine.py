"""The engine alone (no Textual): schedule, controls, views, and errors that are never silent."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import FrozenInstanceError

import pytest

from tests.conftest import FakeClock
from tests.fakes import Scripted, down, price, squeeze_snapshot
from tui.config import RigConfig, SiteConfig
from tui.engine import Engine, EngineView, view_document
from tui.model import RigReading
from tui.sources.base import RateLimited
from tui.sources.fleet import RigsSnapshot
from tui.spec import SourceSpec

NOW = 1_769_000_000.0
SPEC = SourceSpec(kind="mempool", url="http://127.0.0.1:1", chain_interval=30, price_interval=60)


async def until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def engine_with(chain: list[object], prices: list[object] | None = None, **kw) -> Engine:  # type: ignore[no-untyped-def]
    return Engine(SPEC, sources=(Scripted("fake chain", chain),
                                 Scripted("fake price", prices or [price()])),
                  clock=kw.pop("clock", lambda: NOW),
                  backoff_overrides=kw.pop("backoff", {"min_delay": 0.02, "max_delay": 0.02}),
                  **kw)


class FakeRigs:
    """A rig source (one fetch = one cycle) over a fixed list of readings."""

    label = "rigs"

    def __init__(self, site: SiteConfig, readings: list[RigReading]) -> None:
        from tui.sources.rigs import RigTarget

        self.site = site
        self.readings = readings
        self.on_partial = None
        self.calls = 0
        self.poller = type("P", (), {"targets": [RigTarget(r.rig_id, r.host, r.port, "cgminer")
                                                 for r in readings]})()

    async def fetch(self) -> RigsSnapshot:
        self.calls += 1
        return RigsSnapshot(tuple(self.readings), NOW)

    async def aclose(self) -> None:
        pass


def a_site(n: int = 3) -> tuple[SiteConfig, list[RigReading]]:
    rigs = tuple(RigConfig(name=f"r{i}", host=f"127.0.0.{i + 1}", model="S19j Pro")
                 for i in range(n))
    readings = [RigReading(rig_id=r.name, host=r.host, port=4028, time=NOW, ok=True,
                           model="Antminer S19j Pro", hashrate_ths=100.0 + i)
                for i, r in enumerate(rigs)]
    return SiteConfig(name="t", electricity_usd_kwh=0.06, rigs=rigs), readings


async def test_views_are_published_immutable_and_in_order() -> None:
    eng = engine_with([squeeze_snapshot(NOW)])
    views: list[EngineView] = []
    eng.subscribe(views.append)
    await eng.start()
    try:
        await until(lambda: views and views[-1].dashboard is not None
                    and views[-1].price is not None)
    finally:
        await eng.stop()
    v = views[-1]
    assert [x.seq for x in views] == sorted(x.seq for x in views)
    assert v.dashboard is not None and v.dashboard.retarget is not None
    assert v.sources["chain"].error is None and v.sources["chain"].fetched_at == NOW
    with pytest.raises(FrozenInstanceError):
        v.paused = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        v.sources["x"] = v.sources["chain"]  # type: ignore[index]


async def test_a_failing_source_backs_off_and_recovers() -> None:
    chain = Scripted("fake chain", [down(), down(), squeeze_snapshot(NOW)])
    eng = Engine(SPEC, sources=(chain, Scripted("p", [price()])), clock=lambda: NOW,
                 backoff_overrides={"min_delay": 0.02, "max_delay": 0.02})
    errors: list[str] = []
    eng.subscribe(lambda v: errors.append(v.sources["chain"].error or "")
                  if "chain" in v.sources else None)
    await eng.start()
    try:
        await until(lambda: eng.dashboard is not None)
    finally:
        await eng.stop()
    assert any("connection refused" in e for e in errors)
    assert eng.pollers["chain"].error is None and chain.calls == 3


async def test_rate_limited_source_waits_for_retry_after_even_on_refresh() -> None:
    chain = Scripted("c", [RateLimited("c: rate limited", retry_after=30), squeeze_snapshot(NOW)])
    eng = Engine(SPEC, sources=(chain, Scripted("p", [price()])), clock=lambda: NOW,
                 backoff_overrides={"min_delay": 0.02, "max_delay": 0.02})
    await eng.start()
    try:
        await until(lambda: eng.pollers["chain"].error is not None)
        eng.refresh()  # a refresh must not hammer a server that asked us to wait
        await asyncio.sleep(0.1)
        assert chain.calls == 1
    finally:
        await eng.stop()


async def test_refresh_polls_now_and_polls_never_overlap() -> None:
    running = 0
    overlap = False
    calls = 0

    class Slow:
        label = "slow"

        async def fetch(self):  # type: ignore[no-untyped-def]
            nonlocal running, overlap, calls
            calls += 1
            running += 1
            overlap = overlap or running > 1
            await asyncio.sleep(0.05)
            running -= 1
            return squeeze_snapshot(NOW)

        async def aclose(self) -> None:
            pass

    eng = Engine(SPEC, sources=(Slow(), Scripted("p", [price()])), clock=lambda: NOW)  # type: ignore[arg-type]
    await eng.start()
    try:
        await until(lambda: calls == 1 and running == 0)
        for _ in range(10):
            eng.refresh()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
    finally:
        await eng.stop()
    assert calls >= 2 and not overlap  # the interval is 30 s: these came from refresh


async def test_pause_defers_polls_and_resume_polls_once() -> None:
    chain = Scripted("c", [squeeze_snapshot(NOW)])
    eng = Engine(SPEC, sources=(chain, Scripted("p", [price()])), clock=lambda: NOW)
    await eng.start()
    try:
        await until(lambda: chain.calls == 1 and not eng.pollers["chain"].polling)
        eng.set_paused(True)
        eng.refresh()
        await asyncio.sleep(0.1)
        assert chain.calls == 1
        seen: list[EngineView] = []
        eng.subscribe(seen.append)
        eng.set_paused(False)
        await until(lambda: chain.calls == 2)
        assert seen and not seen[-1].paused
    finally:
        await eng.stop()


async def test_faster_and_slower_stay_within_bounds() -> None:
    eng = engine_with([squeeze_snapshot(NOW)])
    await eng.start()
    try:
        assert "chain 15s" in eng.scale_intervals(0.5)
        for _ in range(5):
            eng.scale_intervals(0.5)
        assert eng.pollers["chain"].interval == 5.0
        for _ in range(20):
            eng.scale_intervals(2.0)
        assert eng.pollers["chain"].interval == 3600.0
        assert eng.pollers["chain"].backoff.interval == 3600.0
    finally:
        await eng.stop()


async def test_an_exception_in_the_site_computation_is_logged_shown_and_survived(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import tui.engine as engine_mod

    site, readings = a_site()
    rigs = FakeRigs(site, readings)
    calls = {"n": 0}
    real = engine_mod.compute_site

    def flaky(*a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ZeroDivisionError("float division by zero")
        return real(*a, **kw)

    monkeypatch.setattr(engine_mod, "compute_site", flaky)
    eng = Engine(SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site),
                 sources=(Scripted("c", [squeeze_snapshot(NOW)]), Scripted("p", [price()])),
                 rig_source=rigs, clock=lambda: NOW)  # type: ignore[arg-type]
    errors: list[str] = []
    eng.subscribe(lambda v: errors.append(v.errors.get("site", "")))
    with caplog.at_level(logging.ERROR, logger="minertop"):
        await eng.start()
        try:
            await until(lambda: any("ZeroDivisionError" in e for e in errors))
            eng.request_site(record=True)  # the next cycle works again
            await until(lambda: eng.site_view is not None and "site" not in eng.errors)
        finally:
            await eng.stop()
    assert any("internal error computing the site: ZeroDivisionError" in e for e in errors)
    tb = [r for r in caplog.records if r.exc_info and "computing the site" in r.getMessage()]
    assert tb and tb[0].exc_info[0] is ZeroDivisionError  # the traceback reaches the log
    assert eng.latest is not None and eng.latest.errors.get("site") is None


@pytest.mark.parametrize("last_block", [False, True])
async def test_the_rigs_after_the_retarget_count_the_change_once(last_block: bool) -> None:
    """At a period's last block the hashprice already uses the new difficulty (consensus
    fixed it): a rig's revenue after the retarget is its revenue now, not the projected
    change applied a second time.  Before that, it is revenue x old/new difficulty."""
    tip = 2016 * 463 + (2015 if last_block else 1600)
    site, readings = a_site()
    eng = Engine(SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site),
                 sources=(Scripted("c", [squeeze_snapshot(NOW, tip=tip)]),
                          Scripted("p", [price()])),
                 rig_source=FakeRigs(site, readings), clock=lambda: NOW)  # type: ignore[arg-type]
    await eng.start()
    try:
        await until(lambda: eng.site_view is not None and eng.dashboard is not None
                    and eng.site_view.rows[0].economics is not None
                    and eng.site_view.rows[0].economics.revenue_usd_day is not None)
    finally:
        await eng.stop()
    d = eng.dashboard
    assert d is not None and d.retarget is not None and d.retarget_locked is last_block
    change = d.retarget.projection.difficulty_change
    assert abs(change) > 5  # 696-s blocks: a cut of about 14 %
    for row in eng.site_view.rows:  # type: ignore[union-attr]
        e = row.economics
        assert e is not None and e.revenue_usd_day is not None
        factor = 1.0 if last_block else 1 / (1 + change / 100)
        assert e.revenue_after_retarget_usd_day == pytest.approx(e.revenue_usd_day * factor)
        assert e.margin_after_retarget_usd_day == pytest.approx(
            e.revenue_usd_day * factor - e.cost_usd_day)  # type: ignore[operator]


async def test_an_unexpected_exception_in_a_source_is_logged_with_its_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    eng = engine_with([ValueError("boom")])
    with caplog.at_level(logging.ERROR, logger="minertop"):
        await eng.start()
        try:
            await until(lambda: eng.pollers["chain"].error is not None)
        finally:
            await eng.stop()
    assert "internal error: ValueError: boom" in (eng.pollers["chain"].error or "")
    assert any(r.exc_info and r.exc_info[0] is ValueError for r in caplog.records)


async def test_a_subscriber_that_raises_is_logged_and_the_others_still_get_views(
        caplog: pytest.LogCaptureFixture) -> None:
    eng = engine_with([squeeze_snapshot(NOW)])
    good: list[EngineView] = []

    def bad(v: EngineView) -> None:
        raise RuntimeError("face bug")

    eng.subscribe(bad)
    eng.subscribe(good.append)
    with caplog.at_level(logging.ERROR, logger="minertop"):
        await eng.start()
        try:
            await until(lambda: good and good[-1].dashboard is not None)
        finally:
            await eng.stop()
    assert any("subscriber failed" in r.getMessage() for r in caplog.records)


async def test_site_cycle_records_history_and_alerts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from tui.alerts import AlertRules

    site, readings = a_site()
    readings[1] = RigReading(rig_id="r1", host="127.0.0.2", port=4028, time=NOW, ok=False,
                             error="connection refused")
    log_file = tmp_path / "alerts.log"
    site = replace(site, alerts=AlertRules(rig_offline_s=0.0, hold_s=0.0, log_file=log_file))
    clock = FakeClock(NOW)
    eng = Engine(SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site),
                 sources=(Scripted("c", [squeeze_snapshot(NOW)]), Scripted("p", [price()])),
                 rig_source=FakeRigs(site, readings), clock=clock)  # type: ignore[arg-type]
    cycles: list[EngineView] = []
    eng.on_cycle = cycles.append
    await eng.start()
    try:
        await until(lambda: any(c.site is not None and c.site.totals.margin_usd_day is not None
                                for c in cycles))
        clock.advance(10)
        eng.refresh()
        await until(lambda: len(eng.rig_history["r0"]) >= 1 and any(
            e.alert.key == "rig:r1:offline" for c in cycles for e in c.alert_events))
    finally:
        await eng.stop()
    assert "rig:r1:offline" in log_file.read_text()
    assert eng.rig_history["r1"].errors[-1][1] == "connection refused"


def test_the_engine_and_once_import_no_textual() -> None:
    import subprocess

    code = ("import sys, tui.engine, tui.cli, tui.demo, tui.logs\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'aiohttp')]\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def reset_logging() -> None:
    """Undo setup_logging (tests share the process's loggers; caplog needs propagation)."""
    for name in ("minertop", "asyncio", "aiohttp"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            lg.removeHandler(h)
            h.close()
        lg.propagate = True
        lg.setLevel(logging.NOTSET)


def test_log_file_gets_tracebacks_and_the_dashboard_terminal_gets_nothing(
        tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from tui.logs import setup_logging

    log_file = tmp_path / "minertop.log"
    logger = setup_logging("dashboard", log_file)
    try:
        try:
            raise ZeroDivisionError("float division by zero")
        except ZeroDivisionError:
            logger.exception("computing the site failed")
        logger.warning("chain: connection refused")
    finally:
        reset_logging()
    text = log_file.read_text()
    assert "computing the site failed" in text and "Traceback" in text
    assert "ZeroDivisionError: float division by zero" in text
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""  # Textual owns the terminal


def test_daemon_log_lines_are_one_line_each_with_journald_priorities(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from tui.logs import setup_logging

    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    buf = io.StringIO()
    logger = setup_logging("daemon", stream=buf)
    try:
        try:
            raise ValueError("bad\nreply")
        except ValueError:
            logger.exception("polling rigs failed")
        logger.info("stopped")
    finally:
        reset_logging()
    lines = buf.getvalue().splitlines()
    assert lines == ["<3>polling rigs failed (ValueError: bad reply)", "<6>stopped"]


async def test_a_bug_handling_a_snapshot_does_not_stop_polling(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import tui.engine as engine_mod

    calls = {"n": 0}
    real = engine_mod.compute

    def flaky(*a, **kw):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise KeyError("tip")
        return real(*a, **kw)

    monkeypatch.setattr(engine_mod, "compute", flaky)
    eng = engine_with([squeeze_snapshot(NOW)])
    seen: list[str] = []
    eng.subscribe(lambda v: seen.append(v.errors.get("network", "")))
    with caplog.at_level(logging.ERROR, logger="minertop"):
        await eng.start()
        try:
            await until(lambda: any("KeyError" in e for e in seen))
            eng.refresh()
            await until(lambda: eng.dashboard is not None)
        finally:
            await eng.stop()
    assert "network" not in eng.errors
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


async def test_many_alerts_at_once_log_twenty_lines_and_a_summary(
        caplog: pytest.LogCaptureFixture) -> None:
    from dataclasses import replace

    from tui.alerts import AlertRules

    site, readings = a_site(30)
    readings = [RigReading(rig_id=r.rig_id, host=r.host, port=4028, time=NOW, ok=False,
                           error="connection refused") for r in readings]
    site = replace(site, alerts=AlertRules(rig_offline_s=0.0, hold_s=0.0))
    eng = Engine(SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site),
                 sources=(Scripted("c", [squeeze_snapshot(NOW)]), Scripted("p", [price()])),
                 rig_source=FakeRigs(site, readings), clock=lambda: NOW,  # type: ignore[arg-type]
                 session_history=False)
    with caplog.at_level(logging.INFO, logger="minertop"):
        await eng.start()
        try:
            await until(lambda: len(eng.alerts.active) >= 30)
        finally:
            await eng.stop()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("alert")]
    singles = [m for m in lines if m.startswith("alert fired")]
    assert len(singles) == 20
    assert any(m.startswith("alert: and ") and "offline fired" in m for m in lines)
    assert eng.rig_history == {}  # the daemon keeps no second copy of the history


async def test_a_cycle_is_recorded_with_all_its_readings_even_when_they_land_mid_compute(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The last readings of a cycle arriving while an early batch is being computed: the
    view published as the cycle has them all (not the early batch's half)."""
    import tui.engine as engine_mod

    site, readings = a_site(40)
    real = engine_mod.compute_site

    def slow(*a, **kw):  # type: ignore[no-untyped-def]
        time.sleep(0.05)  # in the worker thread: the final snapshot lands meanwhile
        return real(*a, **kw)

    monkeypatch.setattr(engine_mod, "compute_site", slow)
    monkeypatch.setattr(engine_mod, "THREAD_ABOVE_RIGS", 0)

    class Split(FakeRigs):
        async def fetch(self) -> RigsSnapshot:
            self.calls += 1
            if self.on_partial is not None:
                self.on_partial(RigsSnapshot(tuple(self.readings[:20]), NOW, complete=False))
            await asyncio.sleep(0.01)
            return RigsSnapshot(tuple(self.readings[20:]), NOW)

    eng = Engine(SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site),
                 sources=(Scripted("c", [squeeze_snapshot(NOW)]), Scripted("p", [price()])),
                 rig_source=Split(site, readings), clock=lambda: NOW)  # type: ignore[arg-type]
    cycles: list[EngineView] = []
    eng.subscribe(lambda v: cycles.append(v) if v.cycle and v.site is not None else None)
    await eng.start()
    try:
        await until(lambda: cycles)
    finally:
        await eng.stop()
    assert cycles[0].site is not None and cycles[0].site.counts == {"ok": 40}


async def test_rig_cycles_start_every_interval_however_long_a_cycle_takes() -> None:
    """Start to start: a cycle that takes 0.3 s of a 0.5 s interval is followed by the next
    one 0.2 s later (before, the interval was waited after the cycle: 0.8 s apart), and the
    source's budget is the interval."""
    import dataclasses

    from tui.config import PollConfig

    site, readings = a_site()
    site = dataclasses.replace(site, poll=PollConfig(interval_s=0.5))
    starts: list[float] = []
    budgets: list[float | None] = []

    class Slow(FakeRigs):
        budget_s: float | None = None

        async def fetch(self) -> RigsSnapshot:
            starts.append(time.monotonic())
            budgets.append(self.budget_s)
            await asyncio.sleep(0.3)
            return await super().fetch()

    eng = Engine(SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site),
                 sources=(Scripted("c", [squeeze_snapshot(NOW)]), Scripted("p", [price()])),
                 rig_source=Slow(site, readings), clock=lambda: NOW)  # type: ignore[arg-type]
    await eng.start()
    try:
        await until(lambda: len(starts) >= 4, timeout=5)
    finally:
        await eng.stop()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(0.4 < g < 0.7 for g in gaps), gaps
    assert budgets[0] == 0.5


async def test_the_site_uses_the_power_price_in_force_and_follows_the_tariff() -> None:
    """A time-of-use tariff: the margins use the period's price, the view says when it
    changes, and the engine recomputes at the boundary (not at the next poll)."""
    import dataclasses

    from tui.tariff import Tariff, TariffPeriod

    clock = FakeClock(1_769_000_000.0)  # Wed 21 Jan 2026 12:53:20 UTC
    site, readings = a_site()
    peak = TariffPeriod(frozenset(range(7)), 13.0, 14.0, 0.19, "peak")
    site = dataclasses.replace(site, tariff=Tariff((peak,), 0.06, "UTC"), timezone="UTC")
    eng = Engine(SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site),
                 sources=(Scripted("c", [squeeze_snapshot(NOW)]), Scripted("p", [price()])),
                 rig_source=FakeRigs(site, readings), clock=clock)  # type: ignore[arg-type]
    await eng.start()
    try:
        await until(lambda: eng.site_view is not None and eng.site_view.totals.margin_usd_day
                    is not None)
        v = eng.site_view
        assert v is not None and v.power is not None
        assert (v.power.usd_kwh, v.power.source) == (0.06, "tariff")
        assert v.power.next_change_unix == 1_769_000_400.0  # 13:00 UTC
        assert (v.power.next_usd_kwh, v.power.next_label) == (0.19, "Wed 13:00")
        row = v.rows[0]
        assert row.electricity_usd_kwh == 0.06
        cost_before = row.cost
        # the peak begins: the recompute loop notices within a second
        clock.advance(401)
        await until(lambda: eng.site_view is not None and eng.site_view.power is not None
                    and eng.site_view.power.usd_kwh == 0.19, timeout=5)
        row = eng.site_view.rows[0]  # type: ignore[union-attr]
        assert row.electricity_usd_kwh == 0.19 and row.cost is not None
        assert cost_before is not None and row.cost > cost_before
        assert eng.site_view.power.next_usd_kwh == 0.06  # type: ignore[union-attr]
        doc = view_document(eng.publish())
        assert doc is not None
        assert doc["site"]["electricity_usd_kwh_now"] == 0.19
        assert doc["site"]["electricity_source"] == "tariff"
        assert doc["site"]["electricity_next_change_unix"] == 1_769_004_000.0  # 14:00
    finally:
        await eng.stop()


async def test_a_fresh_power_feed_wins_and_a_stale_one_falls_back_to_the_tariff() -> None:
    import dataclasses

    from tui.tariff import PowerFeedConfig, PowerPriceSnapshot, Tariff, TariffPeriod

    clock = FakeClock(1_769_000_000.0)
    site, readings = a_site()
    peak = TariffPeriod(frozenset(range(7)), 0.0, 24.0, 0.08, "all day")
    feed = PowerFeedConfig("http://127.0.0.1:1/p", ("data", "0", "price"), "usd_mwh", 60)
    site = dataclasses.replace(site, tariff=Tariff((peak,), 0.06, "UTC"), timezone="UTC",
                               power_feed=feed)
    eng = Engine(SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site),
                 sources=(Scripted("c", [squeeze_snapshot(NOW)]), Scripted("p", [price()])),
                 rig_source=FakeRigs(site, readings), clock=clock)  # type: ignore[arg-type]
    eng.site = site
    eng.power_feed = PowerPriceSnapshot(0.0421, clock.now, "sim")
    now = clock.now
    p = eng.power_now(now)
    assert p is not None and (p.usd_kwh, p.source, p.next_change_unix) == (0.0421, "feed", None)
    # three missed polls (3 × 60 s) later the feed is stale: the tariff's price applies
    p = eng.power_now(now + 181)
    assert p is not None and (p.usd_kwh, p.source) == (0.08, "tariff")
    await eng.start()
    try:
        assert "power" in eng.pollers  # the feed is polled like every source
        assert eng.pollers["power"].interval == 60
    finally:
        await eng.stop()
