"""The daemon in-process with scripted sources: notifications reach a real HTTP server, a
full disk stops only the history (and it catches up), and the health document says so."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from tests.conftest import FakeClock
from tests.fakes import Scripted, price, squeeze_snapshot
from tests.test_engine import NOW, FakeRigs, a_site
from tui.alerts import AlertRules
from tui.daemon import Daemon, DaemonOptions
from tui.engine import Engine
from tui.model import RigReading
from tui.notify import NotifyConfig
from tui.spec import SourceSpec


async def until(cond, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


class Sink:
    """An HTTP server on loopback that records what it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            self.bodies.append(await request.json())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def make_daemon(tmp: Path, site, readings: list[RigReading],  # type: ignore[no-untyped-def]
                clock: FakeClock | None = None) -> Daemon:
    spec = SourceSpec(kind="mempool", url="http://127.0.0.1:1", site=site)
    clk = clock or FakeClock(NOW)

    def factory(s: SourceSpec) -> Engine:
        return Engine(s, sources=(Scripted("c", [squeeze_snapshot(NOW)]),
                                  Scripted("p", [price()])),
                      rig_source=FakeRigs(s.site, readings), clock=clk)  # type: ignore[arg-type]

    return Daemon(spec, DaemonOptions(port=0, db_path=tmp / "h.db"), clock=clk,
                  engine_factory=factory)


async def test_alerts_reach_a_webhook_as_one_digest_and_the_history(tmp_path: Path) -> None:
    sink = Sink()
    await sink.start()
    site, readings = a_site(5)
    for i in (1, 2, 3):  # three rigs down at once: one message, not three
        readings[i] = RigReading(rig_id=f"r{i}", host=f"127.0.0.{i + 1}", port=4028, time=NOW,
                                 ok=False, error="connection refused")
    site = replace(site, alerts=AlertRules(rig_offline_s=0.0, hold_s=0.0),
                   notify=(NotifyConfig(kind="webhook", name="ops", url=sink.url),))
    d = make_daemon(tmp_path, site, readings)
    await d.start()
    try:
        await until(lambda: sink.bodies, "the webhook got the alerts")
        body = sink.bodies[0]
        offline = [e for e in body["events"] if e["alert_kind"] == "offline"]
        assert {e["subject"] for e in offline} == {"r1", "r2", "r3"}
        assert all(e["kind"] == "fired" and e["severity"] == "critical" for e in offline)
        await until(lambda: d.store is not None and d.store.alerts(0), "events stored")
        async with httpx.AsyncClient() as c:
            r = await c.get(d.api.url + f"/api/v1/alerts?since={NOW - 3600}")
            keys = {e["key"] for e in r.json()["events"]}
            assert {"rig:r1:offline", "rig:r2:offline", "rig:r3:offline"} <= keys
            assert {a["key"] for a in r.json()["active"]} >= keys
            h = (await c.get(d.api.url + "/healthz")).json()
            assert h["notifiers"][0]["name"] == "ops" and h["notifiers"][0]["ok"]
    finally:
        await d.stop()
        await sink.stop()


async def test_a_full_disk_stops_only_the_history_and_it_catches_up(tmp_path: Path) -> None:
    site, readings = a_site(200)
    clock = FakeClock(NOW)
    d = make_daemon(tmp_path, site, readings, clock)
    await d.start()
    try:
        await until(lambda: d.cycles >= 1 and d.store is not None
                    and d.store.status.last_write is not None, "a first cycle written")
        store = d.store
        assert store is not None
        store.set_max_pages(1)  # the disk is full now (clamped to the current size)
        for _ in range(3):
            n = d.cycles
            clock.advance(10)
            d.engine.refresh()  # type: ignore[union-attr]
            await until(lambda n=n: d.cycles > n, "another cycle")
        await until(lambda: not store.status.ok, "the store says it can't write")
        async with httpx.AsyncClient() as c:
            h = (await c.get(d.api.url + "/healthz")).json()
        assert h["store"]["state"] == "error" and "full" in h["store"]["error"]
        assert h["store"]["pending_cycles"] >= 1
        assert h["sources"]["rigs"]["state"] == "ok"  # polling went on
        store.set_max_pages(None)  # space again
        clock.advance(10)
        d.engine.refresh()  # type: ignore[union-attr]
        await until(lambda: store.status.ok and store.status.pending_cycles == 0,
                    "the backlog written")
        rows = store.site_history(NOW - 60, clock() + 1)
        assert len(rows) == d.cycles  # every cycle is there: none lost while the disk was full
    finally:
        await d.stop()


async def test_attached_dashboard_shows_the_daemons_problems_and_its_alert_history(
        tmp_path: Path) -> None:
    from tui.app import MinertopApp
    from tui.remote import RemoteEngine
    from widgets.alerts import AlertsScreen
    from widgets.header import HeaderBar

    site, readings = a_site(4)
    readings[2] = RigReading(rig_id="r2", host="127.0.0.3", port=4028, time=NOW, ok=False,
                             error="connection refused")
    # a webhook nobody listens on: the notifier fails, and says so
    site = replace(site, alerts=AlertRules(rig_offline_s=0.0, hold_s=0.0),
                   notify=(NotifyConfig(kind="webhook", name="ops",
                                        url="http://127.0.0.1:9/hook"),))
    clock = FakeClock(NOW)
    d = make_daemon(tmp_path, site, readings, clock)
    await d.start()
    engine = RemoteEngine(d.api.url, poll_s=0.1, clock=clock)
    app = MinertopApp(SourceSpec(kind="daemon", url=d.api.url), engine=engine, clock=clock)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.site_view is not None, "the daemon's view")
            await until(lambda: d.notify is not None and not d.notify.healthy, "notify fails")
            header = app.query_one(HeaderBar)
            await until(lambda: "✗ notify" in str(header.render()), "✗ notify in the header")
            assert d.store is not None
            d.store.set_max_pages(1)
            for _ in range(50):  # until a cycle no longer fits in the file's free pages
                if not d.store.status.ok:
                    break
                n = d.cycles
                clock.advance(10)
                d.engine.refresh()  # type: ignore[union-attr]
                await until(lambda n=n: d.cycles > n, "a cycle")
            await until(lambda: "✗ history" in str(header.render()), "✗ history in the header",
                        timeout=15)
            await pilot.press("a")
            assert isinstance(app.screen, AlertsScreen)
            await pilot.press("w")
            await until(lambda: app._span_events is not None, "the week's events")
            assert any(e.alert.key == "rig:r2:offline" for e in app._span_events or [])
            from tests.test_keys import plain

            text = plain(app.screen.query_one("#alerts-body"))
            assert "History of the last week" in text
    finally:
        await d.stop()


async def test_the_daemons_recorded_hashprice_fills_the_chart(tmp_path: Path) -> None:
    """A chain source without a price history and a fixed price (a Bitcoin Core node): the
    90-day hashprice has USD only where the daemon recorded it.  Days recorded earlier come
    back in the snapshot and in the view an attached dashboard reads; the day the daemon
    itself records joins the series once that day is over."""
    from tui.engine import view_from_wire
    from tui.squeeze import DAY
    from tui.store import ChainPoint, HistoryStore

    today = int(NOW // DAY) * DAY
    with HistoryStore(tmp_path / "h.db") as s:  # an earlier run of the daemon
        for k, usds in ((3, (40.0, 44.0)), (2, (39.0,)), (120, (99.0,))):
            for j, usd in enumerate(usds):
                s.record_cycle(today - k * DAY + 3600 * (j + 1), chain=ChainPoint(
                    900_000, 1.4e14, 8e20, 70_000.0, usd, None, None, usd / 70_000.0))
    site, readings = a_site(3)
    clock = FakeClock(NOW)
    d = make_daemon(tmp_path, site, readings, clock)
    await d.start()
    try:
        await until(lambda: d._doc_view is not None and d.cycles >= 1, "a first cycle")
        async with httpx.AsyncClient() as c:
            snap = (await c.get(d.api.url + "/api/v1/snapshot")).json()
            wire_doc = (await c.get(d.api.url + "/api/v1/view")).json()
        series = {p["time"]: p["usd_per_ph_day"] for p in snap["hashprice_history"]}
        # the source alone gives today only (no adjustments, no price history)
        assert series == {today - 3 * DAY: 42.0, today - 2 * DAY: 39.0,
                          today: snap["hashprice_usd_per_ph_day"]}
        view = view_from_wire(wire_doc, clock())
        assert view.dashboard is not None
        assert [(p.time, p.usd_per_ph_day) for p in view.dashboard.hashprice_history[:2]] == [
            (today - 3 * DAY, 42.0), (today - 2 * DAY, 39.0)]
        assert view.dashboard.hashprice_history[0].btc_per_ph_day == pytest.approx(
            42.0 / 70_000.0)
        usd_now = snap["hashprice_usd_per_ph_day"]

        # the next day: today's cycles are a recorded day now
        clock.advance(DAY)
        n = d.cycles
        d.engine.refresh()  # type: ignore[union-attr]
        await until(lambda: d.cycles > n and d._hashprice_day == today // DAY + 1,
                    "a cycle on the next day, and the series read again")
        assert [p.time for p in d.engine.hashprice_recorded] == [  # type: ignore[union-attr]
            today - 3 * DAY, today - 2 * DAY, today]
        d.engine.recompute()  # type: ignore[union-attr]
        hist = d.engine.dashboard.hashprice_history  # type: ignore[union-attr]
        assert (hist[-2].time, hist[-2].usd_per_ph_day) == (today, pytest.approx(usd_now,
                                                                                 abs=0.01))
    finally:
        await d.stop()


@pytest.mark.parametrize("changed", [False, True])
async def test_a_reload_keeps_the_events_still_to_deliver(tmp_path: Path, changed: bool) -> None:
    """SIGHUP re-reads the config: the events a failing destination still holds are not
    dropped.  With the same destinations the notifier carries on as it was; when the
    destinations change, a destination configured as before takes over its events.  They
    are delivered when the destination comes back."""
    failing = {"on": True}
    bodies: list[tuple[str, dict]] = []

    async def hook(request: web.Request) -> web.Response:
        if failing["on"]:
            return web.Response(status=500, text="down")
        bodies.append((request.path, await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/audit", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    base = f"http://127.0.0.1:{tcp._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    site, readings = a_site(3)
    readings[1] = RigReading(rig_id="r1", host="127.0.0.2", port=4028, time=NOW, ok=False,
                             error="connection refused")
    ops = NotifyConfig(kind="webhook", name="ops", url=base + "/hook")
    site = replace(site, alerts=AlertRules(rig_offline_s=0.0, hold_s=0.0), notify=(ops,))
    new_site = replace(site, electricity_usd_kwh=0.07)
    if changed:  # a destination added before the one that was there
        new_site = replace(new_site, notify=(
            NotifyConfig(kind="webhook", name="audit", url=base + "/audit"), ops))
    d = make_daemon(tmp_path, site, readings)
    d.reload_spec = lambda: replace(d.spec, site=new_site)
    await d.start()
    try:
        await until(lambda: d.notify is not None and d.notify.status()[0]["failures"] >= 1,
                    "the webhook failed once")
        hub = d.notify
        assert hub is not None and hub.status()[0]["pending"] >= 1
        assert await d.reload()
        assert d.spec.site is not None and d.spec.site.electricity_usd_kwh == 0.07
        assert (d.notify is not hub) is changed
        held = {st["name"]: st["pending"] for st in d.notify.status()}
        assert held["ops"] >= 1 and held.get("audit", 0) == 0
        failing["on"] = False  # the next retry (5 s backoff at first) delivers it
        await until(lambda: any(path == "/hook" for path, _ in bodies),
                    "the queued alert was delivered after the reload", timeout=30)
        assert any(e["subject"] == "r1" and e["kind"] == "fired"
                   for path, b in bodies if path == "/hook" for e in b["events"])
    finally:
        await d.stop()
        await runner.cleanup()
