"""The rigs pane: one row per rig, keyed by rig id, in a table that renders only what is on
screen.

A site can have thousands of rigs and every poll moves nearly all of their numbers, so the
table is virtual: rows are kept as data (:class:`~tui.site.RigRow`), sorting and filtering
work on their values, and cells are built only for the rows in view.  A refresh compares the
visible rows' cells with what is on screen and repaints just the lines where a cell changed,
in one batch; the other rows cost nothing until they are scrolled to.

Everything a rig sends (names, model, pool) is untrusted: it is turned into plain ``Text``
with control characters made visible, so Rich markup and terminal escapes in it are shown
literally, never interpreted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from tui.safe import safe
from tui.site import RigRow
from widgets.base import CELL_PADDING, SortFilter, fit_columns, set_border

STATUS_MARK = {"ok": "● ok", "stale": "◐ stale", "stuck": "■ stuck", "offline": "✗ offline",
               "error": "✗ error"}
STATUS_STYLE = {"ok": "green", "stale": "yellow", "stuck": "bold magenta",
                "offline": "bold red", "error": "bold red"}
#: Down rigs first, then stuck ones (answering, not mining), then a hashboard down, then
#: stale: what an operator looks at first.
STATUS_ORDER = {"error": 0, "offline": 1, "stuck": 2, "boards": 3, "stale": 4, "ok": 5}
HOT_C = 85.0


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    cell: Callable[[RigRow], Text]
    #: The value the column sorts by, as shown (rounded like the cell), so noise below the
    #: last digit never reshuffles the table; None sorts last either way.
    value: Callable[[RigRow], Any]
    priority: int = 0  #: 0 = always shown; higher numbers are dropped first when narrow


def _rounded(v: float | None, digits: int) -> float | None:
    return None if v is None else round(v, digits)


def _num(value: float | None, fmt: str, style: str = "") -> Text:
    return Text("—" if value is None else fmt.format(value), style=style, justify="right")


def _money(value: float | None) -> Text:
    if value is None:
        return Text("—", justify="right")
    text = f"{value:+,.2f}".replace("-", "−")
    return Text(text, style="red" if value < 0 else "green", justify="right")


def _power(r: RigRow) -> Text:
    if r.power_w is None:
        return Text("—", justify="right")
    return Text(f"{r.power_w:,.0f}{'~' if r.power_estimated else ''}", justify="right")


def _status(r: RigRow) -> Text:
    if r.status in ("ok", "stale") and r.boards_text:
        # mining, with a board down: in words, not only colour
        return Text(f"▲ {r.boards_text}", style="bold yellow")
    return Text(STATUS_MARK.get(r.status, r.status), style=STATUS_STYLE.get(r.status, ""))


def _status_value(r: RigRow) -> tuple[int, float]:
    margin = round(r.margin, 2) if r.margin is not None else float("inf")
    key = "boards" if r.status in ("ok", "stale") and r.boards_down else r.status
    return (STATUS_ORDER.get(key, 9), margin)


def _margin_cell(r: RigRow) -> Text:
    cell = _money(r.margin)
    if r.margin is not None and r.margin < 0:
        cell.append(" LOSS", style="bold red")
    return cell


def _temp(r: RigRow) -> Text:
    hot = (r.temp_max or 0) >= HOT_C
    return _num(r.temp_max, "{:.0f}!" if hot else "{:.0f}", "bold red" if hot else "")


def _numeric(key: str, label: str, width: int, get: Callable[[RigRow], float | None],
             digits: int, priority: int) -> Column:
    fmt = f"{{:,.{digits}f}}"
    return Column(key, label, width, lambda r: _num(get(r), fmt),
                  lambda r: _rounded(get(r), digits), priority)


COLUMNS: tuple[Column, ...] = (
    Column("name", "rig", 8, lambda r: Text(safe(r.name), style="bold"),
           lambda r: r.name.lower(), 0),
    Column("model", "model", 13, lambda r: Text(safe(r.model)), lambda r: r.model.lower(), 1),
    _numeric("ths", "TH/s", 6, lambda r: r.hashrate_ths, 1, 0),
    Column("power", "W", 6, _power, lambda r: _rounded(r.power_w, 0), 2),
    _numeric("jth", "J/TH", 5, lambda r: r.j_per_th, 1, 4),
    _numeric("revenue", "rev $/d", 7, lambda r: r.revenue, 2, 3),
    _numeric("cost", "cost", 6, lambda r: r.cost, 2, 3),
    Column("margin", "margin $/d", 11, _margin_cell, lambda r: _rounded(r.margin, 2), 0),
    Column("after", "after RT", 8, lambda r: _money(r.margin_after),
           lambda r: _rounded(r.margin_after, 2), 1),
    _numeric("be", "BE $/kWh", 8, lambda r: r.breakeven_kwh, 3, 2),
    _numeric("shutdown", "stop $/BTC", 10, lambda r: r.shutdown_price, 0, 5),
    Column("temp", "°C", 4, _temp, lambda r: _rounded(r.temp_max, 0), 4),
    Column("status", "status", 12, _status, _status_value, 0),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}




def columns_for(width: int) -> tuple[Column, ...]:
    """The columns that fit ``width`` cells, most important first, in table order."""
    return fit_columns(COLUMNS, width)


def matches(row: RigRow, needle: str) -> bool:
    """The filter: a case-insensitive substring of name, model, host or status."""
    if not needle:
        return True
    n = needle.lower()
    words = (row.name, row.model, row.address, row.status, row.boards_text or "")
    return any(n in s.lower() for s in words)


def sort_ids(rows: Mapping[str, RigRow], ids: Iterable[str], column: Column,
             reverse: bool = False) -> list[str]:
    """``ids`` in ``column``'s order; ties by name; rigs without a value last either way."""
    present: list[tuple[Any, str]] = []
    missing: list[str] = []
    for rid in ids:
        v = column.value(rows[rid])
        if v is None:
            missing.append(rid)
        else:
            present.append((v, rid))

    def name(rid: str) -> str:
        return rows[rid].name.lower()

    present.sort(key=lambda p: name(p[1]))
    present.sort(key=lambda p: p[0], reverse=reverse)  # stable: ties stay in name order
    missing.sort(key=name)
    return [rid for _, rid in present] + missing


_Signature = tuple[tuple[str, str, tuple[Any, ...]], ...]


def _signature(cells: Sequence[Text]) -> _Signature:
    return tuple((c.plain, str(c.style), tuple(c.spans)) for c in cells)


class RigTable(ScrollView, can_focus=True):
    """A virtual table of rigs: a fixed header line, then one line per rig in ``order``.

    Only the lines in view are rendered (Textual's line API); :meth:`set_data` repaints the
    visible lines whose cells changed and nothing else.  The cursor is a row index.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "details", show=False),
        Binding("up", "cursor_up", "up", show=False),
        Binding("down", "cursor_down", "down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
        Binding("home,ctrl+home", "first", "first", show=False),
        Binding("end,ctrl+end", "last", "last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "rigtable--header", "rigtable--sorted", "rigtable--cursor",
    }
    DEFAULT_CSS = """
    RigTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        &:focus { background-tint: $foreground 5%; }
        & > .rigtable--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .rigtable--header { background: ansi_bright_blue; color: ansi_default; }
        & > .rigtable--sorted { text-style: bold underline; }
        & > .rigtable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .rigtable--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    class Open(Message):
        """``enter`` (or a click on the cursor row): open this rig's details."""

        def __init__(self, rig_id: str) -> None:
            super().__init__()
            self.rig_id = rig_id

    class HeaderSelected(Message):
        """A click on a column's header."""

        def __init__(self, column_key: str) -> None:
            super().__init__()
            self.column_key = column_key

    def __init__(self, columns: Sequence[Column] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns: tuple[Column, ...] = tuple(columns)
        self.sort_column: str | None = None
        self._rows: Mapping[str, RigRow] = {}
        self._order: list[str] = []
        self.cursor_row = 0
        #: rig id -> (the row, its cells, their signature), for rows that were in view
        self._cells: dict[str, tuple[RigRow, list[Text], _Signature]] = {}
        self._strips: dict[Any, Strip] = {}
        self._styles: tuple[Style, Style, Style, Style] | None = None
        self._update_width()

    # ------------------------------------------------------------------ data
    @property
    def order(self) -> list[str]:
        """The rig ids shown, top to bottom."""
        return self._order

    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def cursor_rig_id(self) -> str | None:
        return self._order[self.cursor_row] if self._order else None

    def get_row_at(self, index: int) -> list[Text]:
        """The cells of the row at ``index`` (top is 0)."""
        return [c.cell(self._rows[self._order[index]]) for c in self.columns]

    def set_columns(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self._cells.clear()
        self._strips.clear()
        self._update_width()
        self.refresh()

    def set_sort_column(self, key: str | None) -> None:
        if key != self.sort_column:
            self.sort_column = key
            self.refresh(Region(0, 0, self.size.width, 1))

    def set_data(self, rows: Mapping[str, RigRow], order: list[str]) -> int:
        """Show ``rows`` in ``order``; returns how many cells changed on screen.

        When the order is the same, only visible lines with a changed cell are repainted;
        a new order repaints the view (it is one screenful, whatever the number of rigs).
        """
        same = order == self._order
        self._rows, self._order = rows, order
        if len(order) + 1 != self.virtual_size.height:
            self._update_width()
        if self.cursor_row >= len(order):
            self.cursor_row = max(0, len(order) - 1)
        top, height = self._view()
        live = set(order[top:top + height])
        for rid in [k for k in self._cells if k not in live]:
            del self._cells[rid]  # keep only what is in view: memory stays one screenful
        if len(self._strips) > 4 * max(height, 16):
            self._strips.clear()
        changed = 0
        for y, rid in enumerate(order[top:top + height], start=1):
            row = rows[rid]
            cached = self._cells.get(rid)
            if cached is not None and cached[0] is row:
                continue
            cells = [c.cell(row) for c in self.columns]
            sig = _signature(cells)
            self._cells[rid] = (row, cells, sig)
            if cached is None:
                if same:
                    self.refresh(Region(0, y, self.size.width, 1))
                continue
            diff = [i for i, (a, b) in enumerate(zip(sig, cached[2], strict=True)) if a != b]
            if diff and same:
                changed += len(diff)
                self.refresh(*self._cell_regions(diff, y))
        if not same:
            self.refresh()
        return changed

    def _cell_regions(self, indexes: Sequence[int], y: int) -> list[Region]:
        """The spans of these cells on line ``y``, neighbours merged.  Textual sends a
        changed line from the widget's left edge to the end of the last dirty span, so the
        cells after the last changed one stay off the wire."""
        regions: list[Region] = []
        starts = self._cell_starts()
        for i in indexes:
            x, w = starts[i], self.columns[i].width + 2 * CELL_PADDING
            if regions and regions[-1].right == x:
                last = regions.pop()
                x, w = last.x, last.width + w
            regions.append(Region(x, y, w, 1))
        return regions

    def _cell_starts(self) -> list[int]:
        starts, x = [], 0
        for c in self.columns:
            starts.append(x)
            x += c.width + 2 * CELL_PADDING
        return starts

    def _update_width(self) -> None:
        width = sum(c.width + 2 * CELL_PADDING for c in self.columns)
        self.virtual_size = Size(width, len(self._order) + 1)

    def _view(self) -> tuple[int, int]:
        """(index of the first row in view, how many rows fit under the header)."""
        height = max(0, self.scrollable_content_region.height - 1)
        return int(self.scroll_y), height

    # ------------------------------------------------------------------ rendering
    def render_lines(self, crop: Region) -> list[Strip]:
        base = self.rich_style
        cursor = self.get_component_rich_style("rigtable--cursor")
        if self.app.no_color:
            cursor += Style(reverse=True)  # no colours: the cursor row still shows
        self._styles = (base, self.get_component_rich_style("rigtable--header"),
                        self.get_component_rich_style("rigtable--sorted", partial=True),
                        cursor)
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        styles = self._styles or (self.rich_style, Style(), Style(), Style())
        base, header, sorted_, cursor = styles
        if y == 0:
            return self._header_strip(width, base + header, sorted_)
        index = int(self.scroll_y) + y - 1
        if index >= len(self._order):
            return Strip.blank(width, base)
        rid = self._order[index]
        row = self._rows[rid]
        cached = self._cells.get(rid)
        if cached is None or cached[0] is not row:
            cells = [c.cell(row) for c in self.columns]
            cached = (row, cells, _signature(cells))
            self._cells[rid] = cached
        is_cursor = index == self.cursor_row
        style = base + cursor if is_cursor else base
        key = (rid, cached[2], width, style)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._line(cached[1], width, style)
            self._strips[key] = strip
        return strip

    def _line(self, cells: Sequence[Text], width: int, style: Style,
              cell_style: Callable[[int], Style | None] | None = None) -> Strip:
        line = Text(no_wrap=True, end="")
        pad = " " * CELL_PADDING
        for i, (col, cell) in enumerate(zip(self.columns, cells, strict=True)):
            cell = cell.copy()
            cell.truncate(col.width, overflow="ellipsis")
            cell.align(cell.justify or "left", col.width)  # type: ignore[arg-type]
            extra = cell_style(i) if cell_style else None
            if extra:
                cell.stylize(extra)
            line.append(pad)
            line.append_text(cell)
            line.append(pad)
        segments = list(line.render(self.app.console))
        return Strip(Segment.apply_style(segments, style), line.cell_len) \
            .crop_extend(0, width, style).simplify()

    def _header_strip(self, width: int, style: Style, sorted_style: Style) -> Strip:
        cells = [Text(c.label, justify="left" if c.key in ("name", "model", "status")
                      else "right") for c in self.columns]
        return self._line(cells, width, style, lambda i: (
            sorted_style if self.columns[i].key == self.sort_column else None))

    # ------------------------------------------------------------------ cursor
    def _move_to(self, index: int) -> None:
        if not self._order:
            return
        index = max(0, min(len(self._order) - 1, index))
        old, self.cursor_row = self.cursor_row, index
        top, height = self._view()
        for i in {old, index}:
            if top <= i < top + height:
                self.refresh(Region(0, i - top + 1, self.size.width, 1))
        if index < top:
            self.scroll_to(y=index, animate=False, force=True)
        elif height and index >= top + height:
            self.scroll_to(y=index - height + 1, animate=False, force=True)

    def action_cursor_up(self) -> None:
        self._move_to(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._move_to(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self._move_to(self.cursor_row - max(1, self._view()[1]))

    def action_page_down(self) -> None:
        self._move_to(self.cursor_row + max(1, self._view()[1]))

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self._move_to(len(self._order) - 1)

    def action_open(self) -> None:
        rid = self.cursor_rig_id
        if rid is not None:
            self.post_message(self.Open(rid))

    def on_focus(self) -> None:
        self.refresh()  # the cursor's colours follow focus

    def on_blur(self) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x + int(self.scroll_x)
            for col in self.columns:
                x -= col.width + 2 * CELL_PADDING
                if x < 0:
                    self.post_message(self.HeaderSelected(col.key))
                    break
            return
        index = int(self.scroll_y) + offset.y - 1
        if index < len(self._order):
            if index == self.cursor_row:
                self.action_open()
            else:
                self._move_to(index)
            event.stop()


class RigsPane(SortFilter, Vertical):
    """Sortable, filterable rig table with the site totals in its title."""

    can_focus = False
    DEFAULT_CSS = """
    RigsPane { border: round $panel-lighten-2; height: 1fr; padding: 0 0; }
    RigsPane:focus-within { border: round $accent; }
    RigsPane.-error { border: round $error; }
    RigsPane > RigTable { height: 1fr; }
    RigsPane > Input, RigsPane > Input:focus {
        display: none; height: 1; border: none; padding: 0 1;
    }
    RigsPane.-filtering > Input { display: block; }
    """

    #: Seconds between re-sorts when only values in the sort column drifted.
    RESORT_EVERY_S = 60.0

    def __init__(self, *, id: str | None = "rigs") -> None:
        super().__init__(id=id)
        self.border_title = "Rigs"
        self.sort_column = "status"
        self.sort_reverse = False
        self.filter_text = ""
        self._rows: dict[str, RigRow] = {}
        self._title_statuses: dict[str, str] = {}
        self._title_at: float | None = None
        self._sorted_at: float | None = None
        self._title_partial = False
        #: the rows shown are an early batch of a cycle (not its complete end)
        self._rows_partial = False
        #: the order was last computed from an early batch: the cycle's end sorts again
        self._sorted_on_partial = False
        self.columns: tuple[Column, ...] = columns_for(200)
        self.repaints = 0  #: cells repainted on screen (for tests and benchmarks)
        self.error: str | None = None  #: what failed computing the rows (shown in the border)

    def compose(self) -> ComposeResult:
        table = RigTable(self.columns)
        table.set_sort_column(self.sort_column)
        yield table
        yield Input(placeholder="filter: name, model, host or status (esc clears)",
                    id="rig-filter")

    @property
    def table(self) -> RigTable:
        return self.query_one(RigTable)

    # ---------------------------------------------------------------- data
    def show(self, rows: Sequence[RigRow], title: str, complete: bool = True) -> None:
        """Show a refresh of the rigs.  ``complete``: these rows close a poll cycle (False:
        an early batch of one).

        The order changes at once when rigs come, go or change status; values that merely
        drift (margins move by cents every poll) re-sort at most once a minute, so rows don't
        jump under the cursor and only the lines whose figures changed are sent to the
        terminal (a new order repaints the whole table).  An order made from an early batch
        is made again at the cycle's end.  The site totals in the border title are those of the last
        completed poll cycle (an early batch changes them only when a rig changes status):
        a new title repaints the pane's border, once per cycle.
        """
        old = self._rows
        self._rows = {r.rig_id: r for r in rows}
        self._retitle(title, complete)
        self._rows_partial = not complete
        self._sync(old, force_sort=complete and self._sorted_on_partial)

    def _retitle(self, title: str, complete: bool) -> None:
        statuses = {k: r.status for k, r in self._rows.items()}
        now = time.monotonic()
        if (statuses != self._title_statuses or self._title_at is None
                or complete):
            set_border(self, title=title)  # plain text: the site name comes from the config
            self._title_statuses = statuses
            self._title_at = now
            self._title_partial = not complete

    def on_resize(self, event: events.Resize | None = None) -> None:
        cols = columns_for(self.size.width - 2)
        if cols != self.columns:
            self.columns = cols
            if self.sort_column not in {c.key for c in cols}:
                self.sort_column = "status"  # a hidden column can't order the table
            self.table.set_columns(cols)
            self._sync(self._rows, force_sort=True)

    def _sync(self, old: Mapping[str, RigRow], force_sort: bool = False) -> None:
        """Show the rows in the table (sorted again when they must be)."""
        rows, table = self._rows, self.table
        filt = self.filter_text
        ids = [k for k, r in rows.items() if matches(r, filt)] if filt else list(rows)
        current = table.order
        now = time.monotonic()
        resort = force_sort or len(ids) != len(current) or set(ids) != set(current)
        if not resort:
            # A rig going down (or coming back) moves at once.
            resort = any(old[k].status != rows[k].status for k in ids)
        if not resort and (self._sorted_at is None
                           or now - self._sorted_at >= self.RESORT_EVERY_S):
            value = COLUMN_BY_KEY[self.sort_column].value
            resort = any(value(old[k]) != value(rows[k]) for k in ids)
        if resort:
            self._sorted_at = now
            self._sorted_on_partial = self._rows_partial
            current = sort_ids(rows, ids, COLUMN_BY_KEY[self.sort_column], self.sort_reverse)
        self.repaints += table.set_data(rows, current)
        set_border(self, subtitle=self._subtitle())

    def _resort(self) -> None:
        """The user changed the order: apply it now."""
        table = self.table
        table.set_sort_column(self.sort_column)
        self._sorted_at = time.monotonic()
        self._sorted_on_partial = self._rows_partial
        order = sort_ids(self._rows, table.order, COLUMN_BY_KEY[self.sort_column],
                         self.sort_reverse)
        self.repaints += table.set_data(self._rows, order)
        set_border(self, subtitle=self._subtitle())

    def set_error(self, error: str | None) -> None:
        """Say in the border that the rows could not be computed (the last ones stay)."""
        if error == self.error:
            return
        self.error = error
        self.set_class(error is not None, "-error")
        set_border(self, subtitle=self._subtitle())

    def _subtitle(self) -> str:
        if self.error:
            return f"✗ {safe(self.error, 160)}"
        arrow = "▼" if self.sort_reverse else "▲"
        label = COLUMN_BY_KEY[self.sort_column].label
        shown, total = self.table.row_count, len(self._rows)
        filt = (f" · filter “{safe(self.filter_text, 40)}” {shown}/{total}"
                if self.filter_text else "")
        return f"sort {label} {arrow}{filt}"

    # ---------------------------------------------------------------- sort & filter
    def _refilter(self) -> None:
        self._sync(self._rows, force_sort=True)

    @on(Input.Changed, "#rig-filter")
    def _typed(self, event: Input.Changed) -> None:
        self.set_filter(event.value)

    @on(Input.Submitted, "#rig-filter")
    def _done(self, event: Input.Submitted) -> None:
        self.remove_class("-filtering")
        self.table.focus()

    def clear_filter(self) -> None:
        self.query_one(Input).value = ""
        self.remove_class("-filtering")
        self.set_filter("")
        self.table.focus()

    @on(RigTable.HeaderSelected)
    def _header(self, event: RigTable.HeaderSelected) -> None:
        self.sort_by(event.column_key)
