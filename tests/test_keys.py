"""Every command in the one table, pressed by its key on the demo, does what it says.

The dashboard is fed the demo's captured view by a fake engine (no simulator per test);
what the engine does with refresh, pause and faster/slower is tested in test_engine.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.conftest import FakeClock
from tests.fake_engine import START, FakeEngine, demo_engine
from tui.app import HelpScreen, MinertopApp, TooSmallScreen
from tui.commands import COMMAND_IDS, COMMANDS, key_name, parse_keymap
from tui.spec import SourceSpec
from widgets.blocks import BlocksPane
from widgets.drift import DriftPane
from widgets.hashrate import HashratePane
from widgets.retarget import RetargetPane
from widgets.rig_detail import RigDetailScreen
from widgets.rigs import RigsPane


def plain(widget: object) -> str:
    """The text a Static shows (its content rendered without a terminal)."""
    import io

    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(widget.content)  # type: ignore[attr-defined]
    return console.export_text()


def demo(**spec_kw: object) -> MinertopApp:
    spec = SourceSpec(kind="mempool", url="http://127.0.0.1:0", demo=True, **spec_kw)  # type: ignore[arg-type]
    return MinertopApp(spec, engine=demo_engine(), clock=FakeClock(START))


def fake(app: MinertopApp) -> FakeEngine:
    assert isinstance(app.engine, FakeEngine)
    return app.engine


async def loaded(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    for _ in range(100):
        if app.site_view is not None:
            break
        await pilot.pause(0.01)
    await pilot.pause()
    assert app.site_view is not None and app.query_one(RigsPane).table.row_count == 48


Check = Callable[[MinertopApp, object], Awaitable[None]]


async def _quit(app: MinertopApp, pilot: object) -> None:
    await pilot.press("q")  # type: ignore[attr-defined]
    assert app.return_code == 0


async def _help(app: MinertopApp, pilot: object) -> None:
    for key in ("question_mark", "f1"):
        await pilot.press(key)  # type: ignore[attr-defined]
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()  # type: ignore[attr-defined]
        body = app.screen.query_one("Static")
        assert body.region.height >= len(COMMANDS) and body.region.width > 40  # not collapsed
        text = plain(body)
        for c in COMMANDS:  # the help screen is generated from the same table
            assert c.help in text
        await pilot.press("escape")  # type: ignore[attr-defined]
        assert not isinstance(app.screen, HelpScreen)


async def _refresh(app: MinertopApp, pilot: object) -> None:
    await pilot.press("r")  # type: ignore[attr-defined]
    assert fake(app).refreshes == 1


async def _pause(app: MinertopApp, pilot: object) -> None:
    for key in ("p", "space"):
        await pilot.press(key)  # type: ignore[attr-defined]
        assert app.paused and fake(app).paused
        await pilot.pause()  # type: ignore[attr-defined]
        assert "PAUSED" in str(app.main.query_one("HeaderBar").render())
        await pilot.press(key)  # type: ignore[attr-defined]
        assert not app.paused and not fake(app).paused


async def _focus_next(app: MinertopApp, pilot: object) -> None:
    await pilot.press("1", "tab")  # type: ignore[attr-defined]
    assert app.focused is app.query_one(DriftPane)


async def _focus_previous(app: MinertopApp, pilot: object) -> None:
    await pilot.press("2", "shift+tab")  # type: ignore[attr-defined]
    assert app.focused is app.query_one(HashratePane)


def _pane(n: int, target: type) -> Check:
    async def check(app: MinertopApp, pilot: object) -> None:
        await pilot.press(str(n))  # type: ignore[attr-defined]
        want = app.query_one(target)
        if isinstance(want, RigsPane):
            want = want.table
        assert app.focused is want

    return check


async def _filter(app: MinertopApp, pilot: object) -> None:
    pane = app.query_one(RigsPane)
    await pilot.press("slash", "s", "2", "1", "enter")  # type: ignore[attr-defined]
    assert pane.filter_text == "s21"
    assert all("S21" in str(pane.table.get_row_at(i)[1]) for i in range(pane.table.row_count))


async def _sort_next(app: MinertopApp, pilot: object) -> None:
    pane = app.query_one(RigsPane)
    keys = [c.key for c in pane.columns]
    start = pane.sort_column
    await pilot.press("s")  # type: ignore[attr-defined]
    assert pane.sort_column == keys[(keys.index(start) + 1) % len(keys)]
    await pilot.press("greater_than_sign")  # type: ignore[attr-defined]
    assert pane.sort_column == keys[(keys.index(start) + 2) % len(keys)]


async def _sort_prev(app: MinertopApp, pilot: object) -> None:
    pane = app.query_one(RigsPane)
    keys = [c.key for c in pane.columns]
    start = pane.sort_column
    await pilot.press("less_than_sign")  # type: ignore[attr-defined]
    assert pane.sort_column == keys[(keys.index(start) - 1) % len(keys)]


async def _sort_invert(app: MinertopApp, pilot: object) -> None:
    pane = app.query_one(RigsPane)
    await pilot.press("i")  # type: ignore[attr-defined]
    assert pane.sort_reverse and "▼" in str(pane.border_subtitle)


async def _details(app: MinertopApp, pilot: object) -> None:
    await pilot.press("4", "enter")  # type: ignore[attr-defined]
    assert isinstance(app.screen, RigDetailScreen)
    await pilot.pause()  # type: ignore[attr-defined]
    text = plain(app.screen.query_one("#detail"))
    assert "status" in text and "pool" in text and "hashrate" in text
    await pilot.press("escape")  # type: ignore[attr-defined]
    assert not isinstance(app.screen, RigDetailScreen)


async def _back(app: MinertopApp, pilot: object) -> None:
    pane = app.query_one(RigsPane)
    await pilot.press("slash", "x", "p", "enter")  # type: ignore[attr-defined]
    assert pane.filter_text == "xp"
    await pilot.press("escape")  # type: ignore[attr-defined]
    assert pane.filter_text == "" and pane.table.row_count == 48


async def _zoom(app: MinertopApp, pilot: object) -> None:
    await pilot.press("3", "z")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    ret = app.query_one(RetargetPane)
    assert ret.display and not app.query_one(HashratePane).display
    assert not app.query_one(RigsPane).display
    assert ret.region.height > 20  # it fills the screen
    await pilot.press("z")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    assert app.query_one(HashratePane).display and app.query_one(RigsPane).display
    await pilot.press("4", "z")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    assert app.query_one(RigsPane).region.height > 30
    await pilot.press("z")  # type: ignore[attr-defined]


async def _alerts(app: MinertopApp, pilot: object) -> None:
    from widgets.alerts import AlertsScreen

    await pilot.press("a")  # type: ignore[attr-defined]
    assert isinstance(app.screen, AlertsScreen)
    await pilot.press("escape")  # type: ignore[attr-defined]
    assert not isinstance(app.screen, AlertsScreen)


async def _curtail(app: MinertopApp, pilot: object) -> None:
    from widgets.curtail import CurtailScreen

    await pilot.press("c")  # type: ignore[attr-defined]
    assert isinstance(app.screen, CurtailScreen)
    await pilot.press("escape")  # type: ignore[attr-defined]
    assert not isinstance(app.screen, CurtailScreen)


async def _faster(app: MinertopApp, pilot: object) -> None:
    await pilot.press("plus")  # type: ignore[attr-defined]
    assert fake(app).scales == [0.5]


async def _slower(app: MinertopApp, pilot: object) -> None:
    await pilot.press("minus")  # type: ignore[attr-defined]
    assert fake(app).scales == [2.0]


CHECKS: dict[str, Check] = {
    "quit": _quit, "help": _help, "refresh": _refresh, "pause": _pause,
    "focus_next": _focus_next, "focus_previous": _focus_previous,
    "pane1": _pane(1, HashratePane), "pane2": _pane(2, DriftPane),
    "pane3": _pane(3, RetargetPane), "pane4": _pane(4, RigsPane),
    "filter": _filter, "sort_next": _sort_next, "sort_prev": _sort_prev,
    "sort_invert": _sort_invert, "details": _details, "back": _back, "zoom": _zoom,
    "alerts": _alerts, "curtail": _curtail, "faster": _faster, "slower": _slower,
}


def test_every_command_has_a_key_test() -> None:
    assert set(CHECKS) == set(COMMAND_IDS)


@pytest.mark.parametrize("command", sorted(CHECKS))
async def test_command_by_key(command: str) -> None:
    app = demo()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await CHECKS[command](app, pilot)


async def test_palette_lists_every_command() -> None:
    app = demo()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {c.label.capitalize() for c in COMMANDS} <= titles


async def test_keys_remapped_from_the_config() -> None:
    from tui.config import parse_config

    site = parse_config(
        '[site]\nelectricity_usd_kwh = 0.05\n[keys]\nquit = "x"\nfilter = "f"\n',
        path=Path("t.toml"))
    app = MinertopApp(SourceSpec(kind="mempool", url="http://127.0.0.1:0", demo=True, site=site),
                      engine=demo_engine(), clock=FakeClock(START))
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f", "x", "p", "enter")
        assert app.query_one(RigsPane).filter_text == "xp"
        await pilot.press("escape", "q")  # q no longer quits
        assert app.is_running
        await pilot.press("x")
    assert app.return_code == 0


def test_keymap_parsing() -> None:
    assert parse_keymap({"quit": "Q, ctrl+q", "help": "?", "pane1": "F2"}) == {
        "quit": "Q,ctrl+q", "help": "question_mark", "pane1": "f2"}
    assert key_name("/") == "slash" and key_name("<") == "less_than_sign"
    for bad, why in (({"nope": "x"}, "unknown command"), ({"quit": ""}, "expected keys"),
                     ({"quit": "hello world"}, "not a key name"), ([], "table")):
        with pytest.raises(ValueError, match=why):
            parse_keymap(bad)


async def test_too_small_terminal_says_what_it_needs() -> None:
    app = demo()
    async with app.run_test(size=(60, 15)) as pilot:
        await pilot.pause(0.2)
        assert isinstance(app.screen, TooSmallScreen)
        assert "at least 72×20" in plain(app.screen.query_one("#too-small"))
        assert "60×15" in plain(app.screen.query_one("#too-small"))


async def test_ascii_mode_draws_only_ascii() -> None:
    app = demo(ascii=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        svg = app.export_screenshot()
    import re

    text = re.sub(r"<[^>]+>", "", svg)
    text = re.sub(r"&#?\w+;", "", text)
    body = text[text.find("minertop"):]
    assert "Rigs" in body and "EH/s" in body
    assert all(c.isascii() for c in body), {c for c in body if not c.isascii()}


async def test_blocks_pane_without_site() -> None:
    from tests.fakes import Scripted, price, squeeze_snapshot

    app = MinertopApp(SourceSpec(kind="mempool", url="http://127.0.0.1:1"),
                      sources=(Scripted("c", [squeeze_snapshot(START)]),
                               Scripted("p", [price()])), clock=FakeClock(START))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("4")
        assert app.focused is app.query_one(BlocksPane)
        await pilot.press("slash")  # no rigs: says so instead of failing
        await pilot.pause()
        assert app.is_running


async def test_term_and_colorterm_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("TERM", "xterm-16color")
    monkeypatch.setenv("COLORTERM", "")
    app = demo()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
    assert os.environ["TERM"] == "xterm-16color" and os.environ["COLORTERM"] == ""
