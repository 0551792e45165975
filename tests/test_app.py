"""The app with scripted sources: panes show the numbers, faults stay in their panes, keys."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fakes import Scripted, down, price, squeeze_snapshot
from tui.app import HelpScreen, MinertopApp
from tui.sources.base import SourceError
from tui.spec import SourceSpec
from widgets.blocks import BlocksPane
from widgets.drift import DriftPane
from widgets.hashrate import HashratePane
from widgets.header import HeaderBar
from widgets.retarget import RetargetPane

SPEC = SourceSpec(kind="mempool", url="http://127.0.0.1:1", chain_interval=30, price_interval=60)


def text_of(app: MinertopApp, widget_type: type) -> str:
    w = app.query_one(widget_type)
    return str(w.render())


def full_text(app: MinertopApp, widget_type: type) -> str:
    w = app.query_one(widget_type)
    return f"{w.border_title} {w.border_subtitle} {w.render()}"


async def until(pilot, cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def make_app(chain_script: list[object], price_script: list[object] | None = None,
             clock=None, min_backoff: float | None = None) -> MinertopApp:  # type: ignore[no-untyped-def]
    now = 1_769_000_000.0
    clk = clock or (lambda: now)
    app = MinertopApp(
        SPEC,
        sources=(Scripted("fake chain", chain_script),
                 Scripted("fake price", price_script or [price()])),
        clock=clk,
    )
    if min_backoff is not None:
        app.backoff_overrides = {"min_delay": min_backoff, "max_delay": min_backoff}
    return app


async def test_panes_show_the_numbers() -> None:
    now = 1_769_000_000.0
    app = make_app([squeeze_snapshot(now)])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.dashboard is not None and app.price is not None)
        await pilot.pause()
        drift = text_of(app, DriftPane)
        assert "epoch   11.6 min +16.0%" in drift
        assert "last block 7m12s ago" in drift
        retarget = text_of(app, RetargetPane)
        assert "416 blocks" in retarget and "79.4%" in retarget
        assert "projected −13.7" in retarget or "projected −13.8" in retarget
        header = text_of(app, HeaderBar)
        assert "$71,000" in header and "block 935,008" in header
        assert "EH/s" in text_of(app, HashratePane)
        assert "Recent blocks" in full_text(app, BlocksPane)


async def test_dead_chain_source_marks_only_its_panes_and_recovers() -> None:
    now = 1_769_000_000.0
    good = squeeze_snapshot(now)
    app = make_app([down()], min_backoff=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.pollers and app.pollers["chain"].error is not None)
        src = app.pollers["chain"].source
        await until(pilot, lambda: src.calls >= 3)  # type: ignore[attr-defined]
        await pilot.pause()
        sub = app.query_one(DriftPane).border_subtitle
        assert "STALE" in sub and "connection refused" in sub
        assert app.query_one(DriftPane).has_class("-error")
        # The price source keeps working meanwhile.
        await until(pilot, lambda: app.price is not None)
        assert "STALE" in app.query_one(DriftPane).border_subtitle
        # Retried with backoff; recovers by itself when the source comes back.
        src.script = [good]  # type: ignore[attr-defined]
        await until(pilot, lambda: app.dashboard is not None)
        await until(pilot, lambda: app.pollers["chain"].error is None)
        await pilot.pause()
        assert "STALE" not in app.query_one(DriftPane).border_subtitle
        assert not app.query_one(DriftPane).has_class("-error")


async def test_error_after_good_data_keeps_the_data_and_shows_age() -> None:
    now = [1_769_000_000.0]
    snap = squeeze_snapshot(now[0])
    app = make_app([snap, SourceError("fake chain: HTTP 503 on /api/blocks/tip/height")],
                   clock=lambda: now[0], min_backoff=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.dashboard is not None)
        now[0] += 95
        await pilot.press("r")
        await until(pilot, lambda: app.pollers["chain"].error is not None)
        app._update_statuses()
        await pilot.pause()
        sub = app.query_one(RetargetPane).border_subtitle
        # the reason comes first, the source's address is left to the help screen
        assert str(sub).startswith("✗ STALE 1m ago · HTTP 503 on /api/blocks/tip/height"), sub
        assert "fake chain" not in str(sub)
        assert "416 blocks" in text_of(app, RetargetPane)  # last good data still shown
        await pilot.press("question_mark")
        await pilot.pause()
        from tui.app import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        assert any("fake chain: HTTP 503 on /api/blocks/tip/height" in line
                   for _, line in app.screen.sources), app.screen.sources


async def test_unexpected_exception_in_a_source_is_shown_not_raised() -> None:
    app = make_app([ValueError("boom")], min_backoff=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.pollers and app.pollers["chain"].error is not None)
        assert "internal error: ValueError: boom" in app.pollers["chain"].error  # type: ignore[operator]
        assert app.is_running


async def test_polls_never_overlap() -> None:
    started = 0
    running = 0
    overlap = False

    class Slow:
        label = "slow"

        async def fetch(self):  # type: ignore[no-untyped-def]
            nonlocal started, running, overlap
            started += 1
            running += 1
            overlap = overlap or running > 1
            await asyncio.sleep(0.2)
            running -= 1
            raise SourceError("slow: timed out")

        async def aclose(self) -> None:
            pass

    app = MinertopApp(SPEC, sources=(Slow(), Scripted("p", [price()])))  # type: ignore[arg-type]
    app.backoff_overrides = {"min_delay": 0.01, "max_delay": 0.01}
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(10):
            await pilot.press("r")
            await pilot.pause(0.03)
        await pilot.pause(0.5)
    assert started >= 2 and not overlap


async def test_keys_help_pause_refresh_panes_rate_quit() -> None:
    now = 1_769_000_000.0
    app = make_app([squeeze_snapshot(now)])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.dashboard is not None)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")

        await pilot.press("p")
        assert app.paused
        await pilot.pause()
        assert "PAUSED" in text_of(app, HeaderBar)
        calls = app.pollers["chain"].source.calls  # type: ignore[union-attr]
        await pilot.press("r")  # refresh while paused: nothing is fetched
        await pilot.pause(0.1)
        assert app.pollers["chain"].source.calls == calls  # type: ignore[union-attr]
        await pilot.press("space")
        assert not app.paused
        await until(pilot, lambda: not app.pollers["chain"].polling)
        calls = app.pollers["chain"].source.calls  # type: ignore[union-attr]
        await pilot.press("r")
        await until(pilot, lambda: app.pollers["chain"].source.calls == calls + 1)  # type: ignore[union-attr]

        for key, pane in (("1", HashratePane), ("2", DriftPane), ("3", RetargetPane),
                          ("4", BlocksPane)):
            await pilot.press(key)
            assert app.focused is app.query_one(pane)
        await pilot.press("tab")
        assert app.focused is app.query_one(HashratePane)
        await pilot.press("shift+tab")
        assert app.focused is app.query_one(BlocksPane)

        await pilot.press("minus")
        assert app.pollers["chain"].interval == 60
        await pilot.press("plus")
        await pilot.press("plus")
        assert app.pollers["chain"].interval == 15
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_fits_small_and_large_terminals(size: tuple[int, int]) -> None:
    now = 1_769_000_000.0
    app = make_app([squeeze_snapshot(now)])
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.dashboard is not None)
        await pilot.pause()
        for pane in (HashratePane, DriftPane, RetargetPane):
            w = app.query_one(pane)
            assert w.region.width > 20 and w.region.height >= 9
            lines = str(w.render()).splitlines()
            assert len(lines) <= w.content_size.height, (pane, lines)
            assert all(len(line) <= w.content_size.width for line in lines), (pane, lines)


async def test_slow_chain_source_does_not_freeze_the_screen() -> None:
    class Hanging:
        label = "hanging chain"

        async def fetch(self):  # type: ignore[no-untyped-def]
            await asyncio.sleep(3600)

        async def aclose(self) -> None:
            pass

    app = MinertopApp(SPEC, sources=(Hanging(), Scripted("p", [price()])))  # type: ignore[arg-type]
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.price is not None)
        assert app.pollers["chain"].polling  # still waiting on the chain...
        await pilot.press("question_mark")  # ...yet keys work
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert "$71,000" in text_of(app, HeaderBar)
        assert "connecting" in app.query_one(DriftPane).border_subtitle


async def test_data_arriving_under_the_help_screen_updates_the_panes() -> None:
    now = 1_769_000_000.0
    app = make_app([squeeze_snapshot(now)])
    app.backoff_overrides = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")  # help opens before any data arrived
        assert isinstance(app.screen, HelpScreen)
        await until(pilot, lambda: app.dashboard is not None and app.price is not None)
        app._tick()
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert "416 blocks" in text_of(app, RetargetPane)
        assert "$71,000" in text_of(app, HeaderBar)


def test_error_reason_drops_only_the_sources_own_address() -> None:
    from widgets.base import error_reason

    where = "mempool 127.0.0.1"
    assert error_reason("mempool http://127.0.0.1:8999: HTTP 500 on /api/v1/blocks",
                        where) == "HTTP 500 on /api/v1/blocks"
    # not the source's prefix: kept whole
    assert error_reason("internal error: KeyError: 'x'", where) == "internal error: KeyError: 'x'"
    assert error_reason("timed out", where) == "timed out"
    assert error_reason(None, where) is None and error_reason("x: y", None) == "x: y"


@pytest.mark.parametrize("width", [160, 120, 100, 80, 72])
async def test_header_keeps_the_fault_state_at_every_width(width: int) -> None:
    """A failing source and the alert badge survive narrowing: the other parts shorten
    first (issue: at 120 columns the header dropped every source state but the clock)."""
    from textual.app import App, ComposeResult

    from widgets.base import SourceStatus

    now = 1_769_000_000.0

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield HeaderBar()

    app = One()
    async with app.run_test(size=(width, 5)) as pilot:
        h = app.query_one(HeaderBar)
        h.set_data(source="mempool http://127.0.0.1:8999", tip=935_008, price=71_000.0,
                   hashprice=41.23)
        h.set_alerts(2, 3)
        h.set_problems(("notify",))
        h.set_statuses({
            "chain": SourceStatus(now - 300, "mempool http://127.0.0.1:8999: HTTP 500", now),
            "price": SourceStatus(now - 20, None, now),
            "rigs": SourceStatus(now - 5, None, now),
        }, now, False)
        await pilot.pause()
        line = str(h.render())
        assert len(line) <= width
        assert "chain ✗" in line, line
        assert "5 alerts" in line and "✗ notify" in line, line
        if width >= 160:
            assert "price" in line and "hashprice" in line  # room for everything


async def test_the_header_tick_sends_only_its_right_part() -> None:
    """Every second the ages and the clock change: only the header's right part is
    repainted (Textual sends a line from the start of the widget that changed, so one
    widget for the whole line resent it all); an age gaining a digit moves no boundary; a
    new price repaints the left part; the screen shows the whole line either way."""
    from textual.app import App, ComposeResult

    from widgets.base import SourceStatus

    now = 1_769_000_000.0

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield HeaderBar()

    def statuses(t: float) -> dict[str, SourceStatus]:
        return {"chain": SourceStatus(now - 5, None, t), "price": SourceStatus(now, None, t)}

    def screen_line(app: App[None]) -> str:
        return "".join(seg.text for seg in app.screen._compositor.render_strips()[0])

    app = One()
    async with app.run_test(size=(120, 5)) as pilot:
        h = app.query_one(HeaderBar)
        left, right = app.query_one("#header-left"), app.query_one("#header-right")
        h.set_data(source="mempool", tip=935_008, price=71_000.0, hashprice=41.2)
        h.set_statuses(statuses(now), now, False)
        await pilot.pause()
        split = right.region.x
        assert screen_line(app).rstrip() == str(h.render()).rstrip()
        for part in (left, right, h):
            part._exchange_repaint_regions()
        h.set_statuses(statuses(now + 5), now + 5, False)  # chain 5s -> 10s: one more digit
        assert not left._exchange_repaint_regions() and not h._exchange_repaint_regions()
        assert right._exchange_repaint_regions()
        await pilot.pause()
        assert right.region.x == split  # the boundary stayed
        assert "chain 10s" in screen_line(app) and screen_line(app).rstrip() == str(
            h.render()).rstrip()
        h.set_data(source="mempool", tip=935_009, price=72_000.0, hashprice=41.2)
        assert left._exchange_repaint_regions()
        await pilot.pause()
        assert "block 935,009" in screen_line(app) and "$72,000" in screen_line(app)


async def test_palette_offers_textuals_own_commands_and_remembers_the_theme(
        tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Textual's commands (theme, keys, maximize, screenshot) are back beside minertop's; a
    theme picked is kept for the next run; ``[ui] theme`` in the config sets it."""
    import dataclasses

    from tui.app import load_theme_choice
    from tui.config import SiteConfig

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.delenv("TEXTUAL_THEME", raising=False)
    app = make_app([squeeze_snapshot(1_769_000_000.0)])
    app.remember_theme = True
    async with app.run_test(size=(120, 40)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Theme" in titles and "Keys" in titles and "Screenshot" in titles, titles
        assert titles.count("Quit") == 1  # minertop's own, not twice
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"theme")
        await pilot.pause(0.3)
        from textual.command import CommandPalette

        palette = app.screen
        assert isinstance(palette, CommandPalette)
        shown = " ".join(str(o.prompt) for o in palette.query("OptionList").first().options)
        assert "Theme" in shown, shown
        await pilot.press("escape")
        app.theme = "nord"
        await pilot.pause()
    assert load_theme_choice() == "nord"
    # the next run starts with it
    again = make_app([squeeze_snapshot(1_769_000_000.0)])
    again.remember_theme = True
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert again.theme == "nord"
    # the config's [ui] theme wins over the remembered one
    site = SiteConfig(name="t", electricity_usd_kwh=0.06, theme="gruvbox")
    third = make_app([squeeze_snapshot(1_769_000_000.0)])
    third.spec = dataclasses.replace(third.spec, site=site)
    third.remember_theme = True
    async with third.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert third.theme == "gruvbox"
