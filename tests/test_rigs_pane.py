"""The rigs pane on its own: keyed rows, changed cells only, sort, filter, untrusted text."""

from __future__ import annotations

from dataclasses import replace

from textual.app import App, ComposeResult
from textual.geometry import Region

from tui.site import RigRow
from widgets.rigs import COLUMNS, RigsPane, RigTable, columns_for, matches


def row(rig_id: str, margin: float | None, status: str = "ok", model: str = "S19j Pro",
        ths: float | None = 100.0) -> RigRow:
    return RigRow(
        rig_id=rig_id, name=rig_id, host="127.0.1.1:4028", model=model, status=status,
        reason=None if status == "ok" else "connection refused", hashrate_ths=ths,
        power_w=3000.0, power_estimated=False, j_per_th=30.0, revenue=3.0, cost=4.0,
        margin=margin, margin_after=None if margin is None else margin + 0.5,
        breakeven_kwh=0.04, shutdown_price=90_000.0, temp_max=70.0, age_s=1.0, pool=None,
        economics=None)


class PaneApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RigsPane()


class OpenApp(PaneApp):
    """Records the rigs the table asks to open."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    def on_rig_table_open(self, msg: RigTable.Open) -> None:
        self.opened.append(msg.rig_id)


def order(pane: RigsPane) -> list[str]:
    t = pane.table
    return [str(t.get_row_at(i)[0]) for i in range(t.row_count)]


async def test_rows_keyed_by_rig_and_only_changed_cells_repainted() -> None:
    app = PaneApp()
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        rows = [row("a-01", -1.0), row("a-02", 2.0), row("a-03", None, "offline", ths=None)]
        pane.show(rows, "Rigs · test")
        await pilot.pause()
        assert pane.table.row_count == 3
        assert pane.repaints == 0
        # One rig's margin changes: exactly its margin and after-RT cells are repainted.
        rows[1] = replace(rows[1], margin=2.5, margin_after=3.0)
        pane.show(rows, "Rigs · test")
        assert pane.repaints == 2
        pane.show(rows, "Rigs · test")
        assert pane.repaints == 2  # nothing changed, nothing repainted
        # A rig disappears, another appears.
        pane.show([rows[0], row("a-04", 0.1)], "Rigs · test")
        await pilot.pause()
        assert sorted(order(pane)) == ["a-01", "a-04"]


async def test_default_order_puts_down_rigs_first_then_worst_margin() -> None:
    app = PaneApp()
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show([row("ok-good", 3.0), row("ok-bad", -2.0), row("dead", None, "offline"),
                   row("weird", None, "error")], "t")
        await pilot.pause()
        assert order(pane) == ["weird", "dead", "ok-bad", "ok-good"]


async def test_sort_cycle_reverse_and_header_click() -> None:
    app = PaneApp()
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show([row("b", 1.0), row("a", 3.0), row("c", -1.0)], "t")
        await pilot.pause()
        pane.sort_by("name")
        assert order(pane) == ["a", "b", "c"]
        pane.reverse_sort()
        assert order(pane) == ["c", "b", "a"]
        assert "▼" in str(pane.border_subtitle)
        pane.sort_by("margin", reverse=False)
        assert order(pane) == ["c", "b", "a"]
        keys = [c.key for c in pane.columns]
        pane.cycle_sort(+1)
        assert pane.sort_column == keys[keys.index("margin") + 1]
        pane.cycle_sort(-1)
        assert pane.sort_column == "margin"
        # A value that drifts in the sort column re-sorts at most once a minute (a full
        # repaint on a slow link); a rig changing status moves at once.
        pane.show([row("b", 1.0), row("a", -5.0), row("c", -1.0)], "t")
        assert order(pane) == ["c", "b", "a"]
        pane.RESORT_EVERY_S = 0.0
        pane.show([row("b", 1.0), row("a", -6.0), row("c", -1.0)], "t")
        assert order(pane) == ["a", "c", "b"]
        pane.RESORT_EVERY_S = 3600.0
        pane.sort_by("status", reverse=False)
        pane.show([row("b", 1.0), row("a", -6.0), row("c", None, "offline")], "t")
        assert order(pane)[0] == "c"


async def test_filter_by_name_model_status() -> None:
    app = PaneApp()
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show([row("a-01", 1.0, model="S21"), row("a-02", 1.0, model="S9"),
                   row("b-01", None, "offline")], "t")
        await pilot.pause()
        pane.set_filter("s21")
        assert order(pane) == ["a-01"]
        pane.set_filter("OFFLINE")
        assert order(pane) == ["b-01"]
        pane.set_filter("a-")
        assert sorted(order(pane)) == ["a-01", "a-02"]
        assert "2/3" in str(pane.border_subtitle)
        pane.clear_filter()
        assert pane.table.row_count == 3
        assert matches(row("x", 1.0), "") and not matches(row("x", 1.0), "zzz")


async def test_untrusted_rig_text_is_shown_literally() -> None:
    app = PaneApp()
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        evil = "[bold red]x[/]\x1b[2J"
        pane.show([replace(row("r1", 1.0), name=evil, model=evil)], "t")
        await pilot.pause()
        cells = pane.table.get_row_at(0)
        assert str(cells[0]).startswith("[bold red]x[/]\\x1b[2J")
        assert "\x1b" not in str(cells[1])


def test_columns_fit_the_width() -> None:
    for width in (76, 118, 198):
        cols = columns_for(width)
        used = sum(c.width + 2 for c in cols)
        assert used <= width or all(c.priority == 0 for c in cols), width
        assert {"name", "ths", "margin", "status"} <= {c.key for c in cols}
    assert len(columns_for(400)) == len(COLUMNS)
    assert len(columns_for(76)) < len(columns_for(118)) < len(COLUMNS)


async def test_enter_posts_open_for_the_cursor_row() -> None:
    app = OpenApp()
    opened = app.opened
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show([row("a", 1.0), row("b", 2.0)], "t")
        await pilot.pause()
        pane.table.focus()
        await pilot.press("down", "enter")
        assert opened == [order(pane)[1]]


def many(n: int) -> list[RigRow]:
    return [replace(row(f"r-{i:05d}", margin=(i % 97) / 10 - 4.0), hashrate_ths=100 + i % 7)
            for i in range(n)]


async def test_thousands_of_rows_cost_one_screenful() -> None:
    """A refresh that moves every rig's numbers builds and repaints only the rows in view."""
    app = PaneApp()
    async with app.run_test(size=(120, 30)) as pilot:
        pane = app.query_one(RigsPane)
        rows = many(5000)
        pane.show(rows, "t")
        await pilot.pause()
        table = pane.table
        assert table.row_count == 5000
        in_view = table.scrollable_content_region.height - 1
        assert 0 < len(table._cells) <= in_view
        before = pane.repaints
        # Every rig's hashrate moves (shown with one decimal): only visible cells repaint.
        pane.show([replace(r, hashrate_ths=(r.hashrate_ths or 0) + 0.5) for r in rows], "t")
        assert pane.repaints - before == in_view
        assert len(table._cells) <= in_view


async def test_cursor_keys_scroll_to_keep_the_cursor_in_view() -> None:
    app = PaneApp()
    async with app.run_test(size=(120, 20)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show(many(300), "t")
        await pilot.pause()
        table = pane.table
        table.focus()
        in_view = table.scrollable_content_region.height - 1

        def visible() -> bool:
            top = int(table.scroll_y)
            return top <= table.cursor_row < top + in_view

        await pilot.press("down", "down")
        assert table.cursor_row == 2 and table.scroll_y == 0
        await pilot.press("pagedown")
        assert table.cursor_row == 2 + in_view and visible() and table.scroll_y > 0
        await pilot.press("end")
        assert table.cursor_row == 299 and visible()
        await pilot.press("up")
        assert table.cursor_row == 298 and visible()
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_y == 0
        await pilot.press("up")
        assert table.cursor_row == 0
        # The rows shown are the ones at the scroll position.
        await pilot.press("end")
        await pilot.pause()
        table.render_lines(table.size.region)
        assert table.order[-1] in table.render_line(in_view).text  # the bottom line
        assert table.order[0] not in "".join(table.render_line(y).text
                                              for y in range(1, in_view + 1))


async def test_clicks_sort_by_header_and_open_the_cursor_row() -> None:
    app = OpenApp()
    opened = app.opened
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show([row("b", 1.0), row("a", 3.0), row("c", -1.0)], "t")
        await pilot.pause()
        table = pane.table
        # Header "rig" is the first column (x 0..9 inside the table).
        await pilot.click(RigTable, offset=(2, 0))
        await pilot.pause()
        assert pane.sort_column == "name" and order(pane) == ["a", "b", "c"]
        await pilot.click(RigTable, offset=(2, 2))  # second row: moves the cursor
        assert table.cursor_row == 1 and opened == []
        await pilot.click(RigTable, offset=(2, 2))  # again: opens it
        await pilot.pause()
        assert opened == ["b"]


async def test_rigs_without_a_value_sort_last_both_ways() -> None:
    app = PaneApp()
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show([row("b", 1.0), row("z", None, "offline", ths=None), row("a", 3.0)], "t")
        await pilot.pause()
        pane.sort_by("ths", reverse=False)
        assert order(pane)[-1] == "z"
        pane.sort_by("ths", reverse=True)
        assert order(pane)[-1] == "z"
        pane.sort_by("margin", reverse=True)
        assert order(pane) == ["a", "b", "z"]


async def test_no_color_cursor_row_is_reversed(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Without colours the cursor row must still show: it is drawn in reverse video."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = PaneApp()
    async with app.run_test(size=(120, 20)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show([row("a", 1.0), row("b", 2.0)], "t")
        await pilot.pause()
        table = pane.table
        table.render_lines(table.size.region)  # the styles of this frame
        cursor_line = table.render_line(1 + table.cursor_row)
        other = table.render_line(2 + table.cursor_row)
        assert all(s.style is not None and s.style.reverse for s in cursor_line if s.text.strip())
        assert not any(s.style is not None and s.style.reverse for s in other)


async def test_site_totals_in_the_title_follow_every_completed_cycle() -> None:
    """The totals are one line: each completed cycle shows its own (before, a 180 TH/s swing
    could stay invisible for up to a minute); an early batch only when a status changes."""
    app = PaneApp()
    async with app.run_test(size=(200, 30)) as pilot:
        pane = app.query_one(RigsPane)
        rows = [row("a-01", 1.0), row("a-02", 2.0)]
        pane.show(rows, "Rigs · test · 6.84 PH/s")
        await pilot.pause()
        pane.show(rows, "Rigs · test · 6.66 PH/s")  # the next cycle: a 180 TH/s swing
        assert "6.66 PH/s" in str(pane.border_title)
        pane.show(rows, "Rigs · test · 6.70 PH/s", complete=False)  # an early batch
        assert "6.66 PH/s" in str(pane.border_title)
        rows[1] = replace(rows[1], status="offline", margin=None)
        pane.show(rows, "Rigs · test · 6.50 PH/s · 1 ✗", complete=False)
        assert "1 ✗" in str(pane.border_title)  # a status change shows at once


async def test_a_cycle_of_drifting_figures_repaints_only_the_changed_lines() -> None:
    """Every cycle ends with a complete batch after early ones; figures that drift must not
    re-sort (a new order sends the whole table to the terminal) before the minute is up, and
    new totals in the title repaint the title line, not the pane."""
    app = PaneApp()
    async with app.run_test(size=(120, 20)) as pilot:
        pane = app.query_one(RigsPane)
        pane.sort_by("margin", reverse=True)
        pane.show([row("a", 3.0), row("b", 2.0), row("c", 1.0)], "Rigs · 300 TH/s")
        await pilot.pause()
        assert order(pane) == ["a", "b", "c"]
        table = pane.table
        table._exchange_repaint_regions()
        pane._exchange_repaint_regions()
        # the next cycle: an early batch, then the complete one; c now earns the most
        pane.show([row("a", 3.0), row("b", 2.0), row("c", 4.0)], "Rigs · 301 TH/s",
                  complete=False)
        pane.show([row("a", 3.1), row("b", 2.0), row("c", 4.0)], "Rigs · 302 TH/s")
        assert order(pane) == ["a", "b", "c"]  # drift: the order holds for now
        dirty = table._exchange_repaint_regions()
        assert {r.y for r in dirty} == {1, 3}  # a's and c's lines, b's not
        # on them, the margin cells (and "after retarget", which follows the margin)
        keys = [c.key for c in table.columns]
        x = sum(c.width + 2 for c in table.columns[:keys.index("margin")])
        assert all(r.x == x and r.height == 1 and r.right < table.size.width for r in dirty)
        assert "302 TH/s" in str(pane.border_title)
        assert set(pane._exchange_repaint_regions()) == {Region(0, 0, pane.outer_size.width, 1)}
        await pilot.pause()
        assert "302 TH/s" in _screen_line(app, pane.region.y)  # and the screen shows it
        # a rig that goes down moves at once, even in an early batch, and the cycle's end
        # sorts again what that batch ordered
        pane.show([row("a", 3.1), row("b", None, "offline"), row("c", 4.0)], "t2",
                  complete=False)
        assert order(pane) == ["c", "a", "b"]
        pane.show([row("a", 5.0), row("b", None, "offline"), row("c", 4.0)], "t3")
        assert order(pane) == ["a", "c", "b"]


async def test_a_subtitle_change_repaints_the_bottom_line_only() -> None:
    from widgets.base import set_border

    app = PaneApp()
    async with app.run_test(size=(120, 20)) as pilot:
        pane = app.query_one(RigsPane)
        pane.show([row("a", 3.0)], "t")
        await pilot.pause()
        pane._exchange_repaint_regions()
        set_border(pane, subtitle="sort margin ▼")
        h, w = pane.outer_size.height, pane.outer_size.width
        assert set(pane._exchange_repaint_regions()) == {Region(0, h - 1, w, 1)}
        assert str(pane.border_subtitle) == "sort margin ▼"
        await pilot.pause()
        y = pane.region.y + h - 1  # the pane's bottom line on screen shows it
        assert "sort margin ▼" in _screen_line(app, y)


def _screen_line(app: App[None], y: int) -> str:
    """The text of screen line ``y`` as the terminal gets it."""
    strips = app.screen._compositor.render_strips()
    return "".join(seg.text for seg in strips[y])
