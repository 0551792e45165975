"""The fleet view (``minertop --prometheus``) driven by a fake source: hand-made snapshots of
three sites (one whose daemon is down), keys pressed with Textual's pilot.

No Prometheus, no sleeps: the fake answers at once, the poll interval and the backoff are
an hour (``r`` drives every fetch) except where a test is about the schedule.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import DataTable

from tests.conftest import FakeClock
from tui.fleet import FleetNetwork, FleetRig, FleetSite, FleetSnapshot, frozen_map
from tui.fleet_app import FLEET_COMMANDS, FleetApp, FleetHelpScreen
from tui.sources.base import RateLimited, SourceError
from tui.sources.poll import Backoff
from widgets.rigs import RigsPane
from widgets.sites import FleetHeader, NetworkPane, SiteRigsScreen, SitesPane, rig_row

START = 1_769_900_000.0
PREFIX = "prometheus http://127.0.0.1:9090"
HOUR = 3600.0


def site(name: str, **kw: Any) -> FleetSite:
    base: dict[str, Any] = dict(
        site=name, rigs_up=10, rigs_total=10, hashrate_ths=1000.0, power_w=30_000.0,
        margin_usd_day=100.0, margin_after_retarget_usd_day=90.0,
        production_cost_usd_per_btc=60_000.0, btc_price_usd=98_765.0, scrape_age_s=5.0,
        daemon_up=True, instance=f"{name}.example:9100")
    base.update(kw)
    return FleetSite(**base)


NETWORK = FleetNetwork(
    hashrate_hs=frozen_map({"1d": 812.4e18, "3d": 805.1e18, "7d": 799.0e18}),
    difficulty=113.76e12, hashprice_usd_per_phs_day=52.31, btc_price_usd=98_765.0,
    retarget_blocks_remaining=1234, retarget_change_pct=-3.21,
    retarget_eta_unix=START + 8.5 * 86400,
    drift_pct=frozen_map({"epoch": 2.1, "6": -12.0, "36": 3.3, "144": 1.0}), site="alpha")

SITES = (
    site("alpha", rigs_up=120, rigs_total=122, hashrate_ths=14_000.0, power_w=420_000.0,
         margin_usd_day=5432.1, margin_after_retarget_usd_day=4321.0,
         production_cost_usd_per_btc=61_234.0),
    site("bravo", rigs_up=40, rigs_total=40, hashrate_ths=800.0, power_w=24_000.0,
         margin_usd_day=-123.4, margin_after_retarget_usd_day=-300.0,
         production_cost_usd_per_btc=105_000.0, scrape_age_s=3.0),
    site("charlie", rigs_up=10, rigs_total=30, hashrate_ths=300.0, power_w=9_000.0,
         margin_usd_day=50.0, margin_after_retarget_usd_day=20.0,
         production_cost_usd_per_btc=80_000.0, scrape_age_s=840.0, daemon_up=False),
)
SNAPSHOT = FleetSnapshot(fetched_at=START, sites=SITES, network=NETWORK,
                         source="prometheus 127.0.0.1:9090")


def rig(site_name: str, name: str, **kw: Any) -> FleetRig:
    base: dict[str, Any] = dict(
        site=site_name, rig=name, up=True, status="ok", host="10.0.0.1:4028", model="S21",
        firmware="braiins", hashrate_ths=200.0, power_w=3500.0, power_estimated=False,
        temp_c=70.0, revenue_usd_day=10.0, cost_usd_day=6.0, margin_usd_day=4.0,
        margin_after_retarget_usd_day=3.5)
    base.update(kw)
    return FleetRig(**base)


RIGS = {
    "alpha": (rig("alpha", "a-01"),
              rig("alpha", "a-02", up=False, status="offline", hashrate_ths=None,
                  power_w=None, margin_usd_day=None, margin_after_retarget_usd_day=None),
              rig("alpha", "a-03", power_w=3000.0, power_estimated=True, hashrate_ths=150.0)),
    "charlie": (rig("charlie", "c-01"),),
}


class FakeFleetSource:
    """The source the app polls: answers from ``queue`` (a snapshot or an exception to
    raise), then ``snapshot`` for ever; counts the calls and the overlap."""

    label = "prometheus 127.0.0.1:9090"
    prefix = PREFIX

    def __init__(self, snapshot: FleetSnapshot = SNAPSHOT,
                 rigs: dict[str, tuple[FleetRig, ...]] | None = None) -> None:
        self.snapshot = snapshot
        self.rigs = dict(RIGS if rigs is None else rigs)
        self.queue: list[FleetSnapshot | BaseException] = []
        self.fetches = 0
        self.rig_fetches: list[str] = []
        self.active = self.max_active = 0
        self.gate: asyncio.Event | None = None  #: set: fetch() waits for it
        self.closed = False

    async def _enter(self) -> None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.gate is not None:
                await self.gate.wait()
        except BaseException:
            self.active -= 1
            raise

    async def fetch(self) -> FleetSnapshot:
        self.fetches += 1
        await self._enter()
        self.active -= 1
        item = self.queue.pop(0) if self.queue else self.snapshot
        if isinstance(item, BaseException):
            raise item
        return item

    async def fetch_site_rigs(self, site: str) -> tuple[FleetRig, ...]:
        self.rig_fetches.append(site)
        await self._enter()
        self.active -= 1
        if site not in self.rigs:
            raise SourceError(f"{PREFIX}: no site {site!r} scraped in the last 60 min")
        return self.rigs[site]

    async def aclose(self) -> None:
        self.closed = True


def make(source: FakeFleetSource | None = None, *, interval: float = HOUR,
         min_delay: float = HOUR, ascii: bool = False) -> tuple[FleetApp, FakeFleetSource]:
    src = source or FakeFleetSource()
    backoff = Backoff(interval, min_delay=min_delay, max_delay=max(min_delay, HOUR), jitter=0)
    return FleetApp(src, clock=FakeClock(START), interval=interval, backoff=backoff,
                    ascii=ascii), src


async def until(pilot: Any, cond: Callable[[], bool], what: str = "") -> None:
    for _ in range(300):
        if cond():
            await pilot.pause()
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what or cond}")


async def loaded(pilot: Any) -> SitesPane:
    app: FleetApp = pilot.app
    await until(pilot, lambda: app.snapshot is not None and len(app.sites_pane.order) == 3,
                "the first snapshot")
    return app.sites_pane


def table_lines(table: Any) -> list[str]:
    """What a table draws on screen, line by line (the header first)."""
    return [table.render_line(y).text for y in range(table.size.height)]


def text_of(renderable: Any, width: int = 200) -> str:
    import io

    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def header_text(app: FleetApp) -> str:
    return str(app.screen.query_one(FleetHeader).render())


# --------------------------------------------------------------------------- what it shows


async def test_rows_numbers_network_and_the_down_site_in_words() -> None:
    app, src = make()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await loaded(pilot)
        assert src.fetches == 1
        # Down sites first (the default sort), then by name.
        assert pane.order == ["charlie", "alpha", "bravo"]
        assert pane.cells_of("alpha") == ["alpha", "● up", "120/122", "14.00 PH/s", "420.0",
                                          "+$5,432", "+$4,321", "$61,234 62%", "<1m ago"]
        assert pane.cells_of("bravo")[3:8] == ["800.0 TH/s", "24.0", "−$123", "−$300",
                                               "$105,000 106%!"]
        assert pane.cells_of("charlie")[1] == "✗ DOWN 14m"
        lines = table_lines(pane.table)
        assert "✗ DOWN 14m" in lines[1] and "charlie" in lines[1]  # on screen, in words
        assert "14m ago" in lines[1]
        title = str(pane.border_title)
        assert title.startswith("Sites · 3 (1 ✗ DOWN) · 170/192 rigs up · 15.10 PH/s")
        assert "453.0 kW" in title and "margin +$5,359/day" in title
        assert "after RT +$4,041" in title
        assert "<1m ago" in str(pane.border_subtitle) and "sort daemon ▲" in str(
            pane.border_subtitle)

        net = app.query_one(NetworkPane)
        body = net.body(116).plain
        assert "Network · from alpha" == str(net.border_title)
        for part in ("812.4 EH/s 1d · 805.1 3d · 799.0 7d", "difficulty 113.76 T",
                     "hashprice $52.31/PH/day · BTC $98,765", "1,234 blocks",
                     "projected −3.21%", "ETA Mon 09 Feb 10:53", "in 8d 12h00m",
                     "epoch +2.1% · 6 blk −12% · 36 blk +3% · 144 blk +1%"):
            assert part in body, (part, body)
        head = header_text(app)
        assert "prometheus 127.0.0.1:9090" in head and "BTC $98,765" in head
        assert "hashprice $52.3/PH/d" in head and "updated 0s ago" in head


async def test_small_terminal_keeps_the_essentials() -> None:
    app, _ = make()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await loaded(pilot)
        keys = [c.key for c in pane.columns]
        assert keys[:3] == ["site", "daemon", "rigs"] and "margin" in keys
        assert "scraped" not in keys  # dropped first when narrow
        lines = table_lines(pane.table)
        assert len(lines[0]) <= 78
        assert any("✗ DOWN 14m" in ln for ln in lines)
        body = app.query_one(NetworkPane).body(76).plain.split("\n")
        assert len(body) == 4 and "812.4 EH/s" in body[0] and "−3.21%" in body[2]
        head = header_text(app)
        assert len(head) <= 80 and "BTC $98,765" in head


# --------------------------------------------------------------------------- sort & filter


async def test_sort_keys_change_the_order() -> None:
    app, _ = make()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await loaded(pilot)
        await pilot.press("s")  # rigs up, worst share first
        assert pane.sort_column == "rigs" and pane.order == ["charlie", "alpha", "bravo"]
        await pilot.press("greater_than_sign")  # hashrate, smallest first
        assert pane.sort_column == "hashrate" and pane.order == ["charlie", "bravo", "alpha"]
        await pilot.press("i")
        assert pane.order == ["alpha", "bravo", "charlie"]
        assert "sort hashrate ▼" in str(pane.border_subtitle)
        await pilot.press("less_than_sign", "less_than_sign", "less_than_sign")
        assert pane.sort_column == "site" and pane.order == ["charlie", "bravo", "alpha"]
        await pilot.press("i")
        assert pane.order == ["alpha", "bravo", "charlie"]
        assert [ln.split()[0] for ln in table_lines(pane.table)[1:4]] == pane.order


async def test_filter_narrows_and_escape_clears() -> None:
    app, _ = make()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await loaded(pilot)
        await pilot.press("slash", "b", "r", "enter")
        assert pane.order == ["bravo"] and pane.table.row_count == 1
        assert "filter “br” 1/3" in str(pane.border_subtitle)
        await pilot.press("escape")
        assert pane.filter_text == "" and len(pane.order) == 3
        await pilot.press("slash", *"down", "enter")  # the word matches the down sites
        assert pane.order == ["charlie"]
        await pilot.press("escape")
        assert app.focused is pane.table and len(pane.order) == 3


# --------------------------------------------------------------------------- a site's rigs


async def test_enter_opens_the_sites_rigs_and_escape_goes_back() -> None:
    app, src = make()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await loaded(pilot)
        await pilot.press("down", "enter")  # the cursor on alpha
        assert isinstance(app.screen, SiteRigsScreen) and app.screen.site == "alpha"
        rigs = app.screen.query_one(RigsPane)
        await until(pilot, lambda: rigs.table.row_count == 3, "alpha's rigs")
        assert src.rig_fetches == ["alpha"]
        assert sorted(rigs.table.order) == ["a-01", "a-02", "a-03"]
        assert rigs.table.order[0] == "a-02"  # offline first (the rigs pane's default)
        title = str(rigs.border_title)
        assert title.startswith("Rigs · alpha · 3 rigs · 1 ✗ · 350.0 TH/s · 6.5 kW")
        assert "be" not in {c.key for c in rigs.columns}  # not exported: not shown
        assert "prometheus 127.0.0.1:9090" in header_text(app)

        # Each poll refreshes the open site's rigs.
        src.rigs["alpha"] = (*RIGS["alpha"], rig("alpha", "a-04"))
        await pilot.press("r")
        await until(pilot, lambda: rigs.table.row_count == 4, "the refreshed rigs")
        assert src.fetches == 2 and src.rig_fetches == ["alpha", "alpha"]

        # Sort and filter act on the rigs here; esc clears the filter, then goes back.
        await pilot.press("slash", "a", "-", "0", "4", "enter")
        assert rigs.table.order == ["a-04"]
        await pilot.press("escape")
        assert isinstance(app.screen, SiteRigsScreen) and rigs.table.row_count == 4
        await pilot.press("escape")
        assert app.screen is app.main and app.focused is pane.table
        await pilot.press("r")
        await until(pilot, lambda: src.fetches == 3)
        assert src.rig_fetches == ["alpha", "alpha"]  # closed: no more rig fetches


async def test_a_down_sites_rigs_say_so_and_a_failed_rig_fetch_keeps_them() -> None:
    app, src = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("enter")  # charlie: first row (down)
        screen = app.screen
        assert isinstance(screen, SiteRigsScreen) and screen.site == "charlie"
        rigs = screen.pane
        await until(pilot, lambda: rigs.table.row_count == 1)
        assert "(✗ DOWN · last scrape 14m ago)" in str(rigs.border_title)
        del src.rigs["charlie"]
        await pilot.press("r")
        await until(pilot, lambda: screen.error is not None)
        assert rigs.table.row_count == 1  # the last rigs stay
        sub = str(rigs.border_subtitle)
        assert sub.startswith("✗ STALE <1m ago · no site 'charlie'"), sub


def test_rig_rows_from_prometheus() -> None:
    row = rig_row(RIGS["alpha"][2])
    assert (row.rig_id, row.name, row.host, row.model, row.status) == (
        "a-03", "a-03", "10.0.0.1:4028", "S21", "ok")
    assert row.j_per_th == 20.0 and row.power_estimated and row.firmware == "braiins"
    assert row.breakeven_kwh is None and row.economics is None and row.age_s is None
    down = rig_row(RIGS["alpha"][1])
    assert down.status == "offline" and down.j_per_th is None
    assert rig_row(rig("x", "y", status="", up=False)).status == "offline"


# --------------------------------------------------------------------------- failures


async def test_failure_keeps_the_data_says_why_and_recovery_clears_it() -> None:
    app, src = make()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await loaded(pilot)
        src.queue.append(SourceError(f"{PREFIX}: connection refused"))
        await pilot.press("r")
        await until(pilot, lambda: app.error is not None, "the failure")
        assert pane.order == ["charlie", "alpha", "bravo"]  # last good data stays
        assert pane.cells_of("alpha")[3] == "14.00 PH/s"
        sub = str(pane.border_subtitle)
        assert sub.startswith(f"✗ STALE <1m ago · {PREFIX}: connection refused"), sub
        assert pane.has_class("-error")
        assert str(app.query_one(NetworkPane).border_subtitle).startswith("✗ STALE")
        head = header_text(app)
        assert "✗ STALE 0s · connection refused" in head  # the reason, without the prefix
        assert app.backoff.failures == 1

        src.queue.append(RuntimeError("boom"))  # a bug in a source: said, not fatal
        await pilot.press("r")
        await until(pilot, lambda: app.error is not None and "internal error" in app.error)
        assert "RuntimeError: boom" in str(pane.border_subtitle)

        await pilot.press("r")  # recovered
        await until(pilot, lambda: app.error is None, "the recovery")
        assert "✗" not in str(pane.border_subtitle) and not pane.has_class("-error")
        assert "✗" not in header_text(app) and "updated 0s ago" in header_text(app)
        assert app.backoff.failures == 0

        def refused() -> int:
            return sum(1 for n in app._notifications
                       if n.title == "prometheus failed" and "connection refused" in n.message)

        assert refused() == 1
        src.queue.append(SourceError(f"{PREFIX}: connection refused"))  # the same, again
        await pilot.press("r")
        await until(pilot, lambda: app.error is not None, "the second failure")
        await pilot.pause()
        assert refused() == 2  # told again: it came back after a recovery


async def test_a_first_fetch_that_fails_says_so_and_names_the_source() -> None:
    src = FakeFleetSource()
    src.queue.append(SourceError(f"{PREFIX}: timed out after 10s"))
    app, _ = make(src)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.error is not None)
        head = header_text(app)
        assert "prometheus 127.0.0.1:9090" in head and "✗ STALE no data · timed out" in head
        assert str(app.sites_pane.border_subtitle).startswith("✗ STALE no data · ")
        await pilot.press("r")
        await loaded(pilot)
        assert app.error is None


async def test_retry_after_is_honoured() -> None:
    app, src = make(min_delay=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        src.queue.append(RateLimited(f"{PREFIX}: rate limited (HTTP 429)", retry_after=120))
        await pilot.press("r")
        await until(pilot, lambda: app.error is not None)
        assert app._due_at is not None and app._due_at - time.monotonic() > 60
        await pilot.press("r")  # not before the server said
        await pilot.pause(0.05)
        assert src.fetches == 2


# --------------------------------------------------------------------------- controls


async def test_r_fetches_and_polls_never_overlap() -> None:
    app, src = make()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("r")
        await until(pilot, lambda: src.fetches == 2, "the refresh")
        src.gate = asyncio.Event()
        await pilot.press("r")
        await until(pilot, lambda: src.active == 1)
        await pilot.press("r", "r", "enter")  # asked while busy: after it, one at a time
        await pilot.pause(0.05)
        assert src.max_active == 1 and src.fetches == 3
        src.gate.set()
        # the poll (then the open site's rigs), then the one poll asked for meanwhile
        await until(pilot, lambda: src.fetches == 4 and src.active == 0
                    and src.rig_fetches == ["charlie", "charlie"] and not app._busy)
        assert src.max_active == 1


async def test_p_pauses_fetching_and_resumes() -> None:
    app, src = make(interval=0.05, min_delay=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await until(pilot, lambda: src.fetches >= 2, "a scheduled poll")
        await pilot.press("p")
        await until(pilot, lambda: not app._busy)
        assert app.paused and "⏸ PAUSED" in header_text(app)
        assert "⏸ paused" in str(app.sites_pane.border_subtitle)
        n = src.fetches
        await pilot.press("r")
        await pilot.pause(0.3)  # six intervals
        assert src.fetches == n
        await pilot.press("space")
        await until(pilot, lambda: src.fetches > n, "a poll after resuming")
        assert not app.paused and "PAUSED" not in header_text(app)


async def test_opening_a_site_while_paused_fetches_its_rigs_only() -> None:
    app, src = make(interval=0.05, min_delay=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("p")
        await until(pilot, lambda: not app._busy)
        n = src.fetches
        src.gate = asyncio.Event()
        await pilot.press("enter")  # asked for: fetched even while paused
        await until(pilot, lambda: src.rig_fetches == ["charlie"])
        await pilot.press("p")  # resumed while that fetch is in flight
        src.gate.set()
        await until(pilot, lambda: src.fetches > n, "the schedule going on")
        assert src.max_active == 1


async def test_faster_and_slower_and_help_and_quit() -> None:
    app, src = make(interval=40.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("plus")
        assert app.interval == 20.0 and app.backoff.interval == 20.0
        await pilot.press("minus", "minus")
        assert app.interval == 80.0
        for _ in range(5):
            await pilot.press("plus")
        assert app.interval == 5.0  # the floor
        await pilot.press("question_mark")
        assert isinstance(app.screen, FleetHelpScreen)
        text = text_of(app.screen.query_one("Static").content)
        for c in FLEET_COMMANDS:
            assert c.help in text
        await pilot.press("escape")
        assert app.screen is app.main
        await pilot.press("tab")
        assert app.focused is app.query_one(NetworkPane)
        await pilot.press("tab")
        assert isinstance(app.focused, DataTable)
        await pilot.press("q")
    assert app.return_code == 0 and src.closed


async def test_no_color_as_the_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app, _ = make()
    assert app.ansi_color and app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await loaded(pilot)
        # no colours: the cursor row still shows, the down site says so in words
        assert "reverse" in str(pane.table.get_component_rich_style("datatable--cursor"))
        assert pane.cells_of("charlie")[1] == "✗ DOWN 14m"
    assert os.environ["NO_COLOR"] == "1"


async def test_ascii_mode_draws_only_ascii() -> None:
    import re

    app, _ = make(ascii=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        svg = app.export_screenshot()
    text = re.sub(r"<[^>]+>", "", svg)
    text = re.sub(r"&#?\w+;", "", text)
    body = text[text.find("minertop"):]
    assert "DOWN" in body and "EH/s" in body
    assert all(c.isascii() for c in body), {c for c in body if not c.isascii()}


def test_run_fleet_app_builds_a_prometheus_source(monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.fleet_app as fa
    from tui.sources.prometheus import PrometheusSource

    seen: dict[str, Any] = {}

    def fake_run(self: FleetApp, *, mouse: bool = True) -> int:
        seen.update(app=self, mouse=mouse)
        return 0

    monkeypatch.setattr(fa.FleetApp, "run", fake_run)
    monkeypatch.setattr(fa, "tune_gc", lambda: seen.setdefault("gc", True))
    assert fa.run_fleet_app("http://127.0.0.1:9", "tok", ascii=True, mouse=False) == 0
    app = seen["app"]
    assert isinstance(app.source, PrometheusSource) and seen["gc"] and seen["mouse"] is False
    assert app.source.label == "prometheus 127.0.0.1:9" and app.ascii
    assert app.source._headers == {"Authorization": "Bearer tok"}
    asyncio.run(app.source.aclose())


# --------------------------------------------------------------------------- hang-up

_FLEET_SHIM = """
import sys
from tests.test_fleet_app import FakeFleetSource
from tui.fleet_app import FleetApp
sys.exit(FleetApp(FakeFleetSource()).run())
"""


def test_lost_terminal_exits_cleanly() -> None:
    """The dashboard's hang-up guard, in the fleet view: the pty goes away without a
    SIGHUP (not the controlling terminal), the app must exit 129 without spinning."""
    import struct
    import subprocess
    import sys

    from tests import test_hangup as th  # skips itself off Linux

    master, slave = os.openpty()
    th.fcntl.ioctl(slave, th.termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEXTUAL", "PYTEST", "COLUMNS", "LINES"))}
    env["TERM"] = "xterm-256color"
    env["PYTHONPATH"] = str(th.ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.Popen([sys.executable, "-c", _FLEET_SHIM], stdin=slave,
                                stdout=slave, stderr=slave, cwd=th.ROOT, env=env,
                                start_new_session=True, close_fds=True)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    child = th.Child(proc, master)
    try:
        child.wait_for_data()
        assert "✗ DOWN" in child.output.decode("utf-8", "replace")
        cpu_before = child.cpu_now()
        child.close_master()
        th.assert_clean_exit(child, cpu_before)
    finally:
        child.kill()
