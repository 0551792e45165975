"""The rigs pane: one row per rig, keyed by rig id; only changed cells are repainted.

Everything a rig sends (names, model, pool) is untrusted: it is turned into plain ``Text``
with control characters made visible, so Rich markup and terminal escapes in it are shown
literally, never interpreted.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Region
from textual.message import Message
from textual.widgets import DataTable, Input

from tui.safe import safe
from tui.site import RigRow
from widgets.base import set_border

STATUS_MARK = {"ok": "● ok", "stale": "◐ stale", "offline": "✗ offline", "error": "✗ error"}
STATUS_STYLE = {"ok": "green", "stale": "yellow", "offline": "bold red", "error": "bold red"}


class Cell(Text):
    """A table cell that remembers the raw value it sorts by."""

    sort_key: tuple[int, Any]

    @classmethod
    def of(cls, text: str, value: Any, style: str = "", justify: str = "left") -> Cell:
        cell = cls(text, style=style, justify=justify)  # type: ignore[arg-type]
        cell.sort_key = (1, 0) if value is None else (0, value)
        return cell


_DECIMALS = re.compile(r"\.(\d)f")


def _num(value: float | None, fmt: str, style: str = "") -> Cell:
    # Sort by the value as shown: noise below the last digit must not reshuffle the table.
    m = _DECIMALS.search(fmt)
    key = None if value is None else round(value, int(m.group(1)) if m else 0)
    return Cell.of("—" if value is None else fmt.format(value), key, style, "right")


def _money(value: float | None) -> Cell:
    if value is None:
        return Cell.of("—", None, "", "right")
    text = f"{value:+,.2f}".replace("-", "−")
    return Cell.of(text, round(value, 2), "red" if value < 0 else "green", "right")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    cell: Callable[[RigRow], Cell]
    priority: int = 0  #: 0 = always shown; higher numbers are dropped first when narrow


def _power(r: RigRow) -> Cell:
    if r.power_w is None:
        return Cell.of("—", None, "", "right")
    return Cell.of(f"{r.power_w:,.0f}{'~' if r.power_estimated else ''}", r.power_w, "", "right")


def _status(r: RigRow) -> Cell:
    # Down rigs first, then the worst margins: what an operator looks at first.
    order = {"error": 0, "offline": 1, "stale": 2, "ok": 3}
    key = (order.get(r.status, 9), round(r.margin, 2) if r.margin is not None else float("inf"))
    return Cell.of(STATUS_MARK.get(r.status, r.status), key, STATUS_STYLE.get(r.status, ""))


def _margin_cell(r: RigRow) -> Cell:
    cell = _money(r.margin)
    if r.margin is not None and r.margin < 0:
        cell.append(" LOSS", style="bold red")
    return cell


COLUMNS: tuple[Column, ...] = (
    Column("name", "rig", 8, lambda r: Cell.of(safe(r.name), r.name.lower(), "bold"), 0),
    Column("model", "model", 13, lambda r: Cell.of(safe(r.model), r.model.lower()), 1),
    Column("ths", "TH/s", 6, lambda r: _num(r.hashrate_ths, "{:,.1f}"), 0),
    Column("power", "W", 6, _power, 2),
    Column("jth", "J/TH", 5, lambda r: _num(r.j_per_th, "{:.1f}"), 4),
    Column("revenue", "rev $/d", 7, lambda r: _num(r.revenue, "{:,.2f}"), 3),
    Column("cost", "cost", 6, lambda r: _num(r.cost, "{:,.2f}"), 3),
    Column("margin", "margin $/d", 11, _margin_cell, 0),
    Column("after", "after RT", 8, lambda r: _money(r.margin_after), 1),
    Column("be", "BE $/kWh", 8, lambda r: _num(r.breakeven_kwh, "{:.3f}"), 2),
    Column("shutdown", "stop $/BTC", 10, lambda r: _num(r.shutdown_price, "{:,.0f}"), 5),
    Column("temp", "°C", 4, lambda r: _num(r.temp_max, "{:.0f}!" if (r.temp_max or 0) >= 85
                                           else "{:.0f}", "bold red" if (r.temp_max or 0) >= 85
                                           else ""), 4),
    Column("status", "status", 9, _status, 0),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


CELL_PADDING = 1


def columns_for(width: int) -> tuple[Column, ...]:
    """The columns that fit ``width`` cells, most important first, in table order."""
    chosen: set[str] = set()
    used = 0
    for c in sorted(COLUMNS, key=lambda c: c.priority):
        need = c.width + 2 * CELL_PADDING
        if c.priority == 0 or used + need <= width:
            chosen.add(c.key)
            used += need
    return tuple(c for c in COLUMNS if c.key in chosen)


def matches(row: RigRow, needle: str) -> bool:
    """The filter: a case-insensitive substring of name, model, host or status."""
    if not needle:
        return True
    n = needle.lower()
    return any(n in s.lower() for s in (row.name, row.model, row.host, row.status))


class RigTable(DataTable[Any]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "details", show=False),
    ]

    class Open(Message):
        def __init__(self, rig_id: str) -> None:
            super().__init__()
            self.rig_id = rig_id

    def update_cell(self, row_key: Any, column_key: Any, value: Any, *,
                    update_width: bool = False) -> None:
        """Like DataTable's, but repaint only that row: a poll that changes a few cells must
        not resend the whole table over a slow SSH link.  (Row by row beats cell by cell:
        every cell region costs its own cursor moves and styles.)"""
        if update_width:
            super().update_cell(row_key, column_key, value, update_width=True)
            return
        self._data[row_key][column_key] = value
        self._update_count += 1
        # Every row is one line, so its place is its index: no walk over all rows (which
        # DataTable.refresh_row does, and which costs seconds with thousands of rigs).
        index = self._row_locations.get(row_key)
        if index is None:
            return
        y = index + (self.header_height if self.show_header else 0)
        self._refresh_region(Region(0, y, self.virtual_size.width, 1))

    def action_open(self) -> None:
        if self.row_count:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
            if key.value is not None:
                self.post_message(self.Open(key.value))


class RigsPane(Vertical):
    """Sortable, filterable rig table with the site totals in its title."""

    can_focus = False
    DEFAULT_CSS = """
    RigsPane { border: round $panel-lighten-2; height: 1fr; padding: 0 0; }
    RigsPane:focus-within { border: round $accent; }
    RigsPane.-error { border: round $error; }
    RigsPane > RigTable { height: 1fr; }
    RigsPane > Input { display: none; height: 1; border: none; padding: 0 1; }
    RigsPane.-filtering > Input { display: block; }
    """

    def __init__(self, *, id: str | None = "rigs") -> None:
        super().__init__(id=id)
        self.border_title = "Rigs"
        self.sort_column = "status"
        self.sort_reverse = False
        self.filter_text = ""
        self._rows: dict[str, RigRow] = {}
        self._title = "Rigs"
        self._title_statuses: tuple[tuple[str, str], ...] = ()
        self._title_at: float | None = None
        self._sorted_at: float | None = None
        self._last_rows: dict[str, RigRow] = {}
        self._title_partial = False
        self._sort_partial = False
        self.columns: tuple[Column, ...] = columns_for(200)
        self._shown: dict[str, tuple[str, ...]] = {}  #: rig id -> rendered cell texts
        self.repaints = 0  #: cells updated (for tests and benchmarks)

    def compose(self) -> ComposeResult:
        table = RigTable(cursor_type="row", zebra_stripes=False, cell_padding=CELL_PADDING)
        for c in self.columns:
            table.add_column(c.label, key=c.key, width=c.width)
        yield table
        yield Input(placeholder="filter: name, model, host or status (esc clears)",
                    id="rig-filter")

    @property
    def table(self) -> RigTable:
        return self.query_one(RigTable)

    # ---------------------------------------------------------------- data
    #: Seconds between title updates when only the totals moved (see :meth:`show`).
    TITLE_EVERY_S = 60.0
    #: Seconds between re-sorts when only values in the sort column drifted.
    RESORT_EVERY_S = 60.0

    def show(self, rows: Sequence[RigRow], title: str, complete: bool = True) -> None:
        """``complete``: these rows close a poll cycle (False: an early batch of one).

        A new border title repaints the whole pane (most of the screen); the totals in it
        move a little with every poll, so they are refreshed once a minute, and at once when
        a rig changes status or a cycle completes after early batches.
        """
        self._retitle(rows, title, complete)
        self._rows = {r.rig_id: r for r in rows}
        self._sync(force_sort=complete and self._sort_partial)
        self._sort_partial = not complete

    def _retitle(self, rows: Sequence[RigRow], title: str, complete: bool) -> bool:
        statuses = tuple(sorted((r.rig_id, r.status) for r in rows))
        now = time.monotonic()
        if (statuses != self._title_statuses or self._title_at is None
                or (complete and self._title_partial)
                or now - self._title_at >= self.TITLE_EVERY_S):
            set_border(self, title=title)  # plain text: the site name comes from the config
            self._title_statuses = statuses
            self._title_at = now
            self._title_partial = not complete
            return True
        return False

    def on_resize(self) -> None:
        cols = columns_for(self.size.width - 2)
        if cols != self.columns:
            self.columns = cols
            self._rebuild()

    def _rebuild(self) -> None:
        table = self.table
        table.clear(columns=True)
        for c in self.columns:
            table.add_column(c.label, key=c.key, width=c.width)
        self._shown.clear()
        self._last_rows.clear()
        self._sync(force_sort=True)

    def _visible(self) -> list[RigRow]:
        return [r for r in self._rows.values() if matches(r, self.filter_text)]

    def _sync(self, force_sort: bool = False) -> None:
        for _ in self._sync_steps(force_sort):
            pass

    #: Rows handled between two yields of :meth:`show_async` (the loop answers keys between).
    CHUNK = 250

    async def show_async(self, rows: Sequence[RigRow], title: str,
                         complete: bool = True) -> None:
        """:meth:`show`, handing the event loop back every ``CHUNK`` rows: with thousands
        of rigs a refresh must not hold key presses up."""
        self._retitle(rows, title, complete)
        self._rows = {r.rig_id: r for r in rows}
        for _ in self._sync_steps(force_sort=complete and self._sort_partial):
            await asyncio.sleep(0)
        self._sort_partial = not complete

    def _sync_steps(self, force_sort: bool = False) -> Iterator[None]:
        table = self.table
        visible = {r.rig_id: r for r in self._visible()}
        resort = force_sort
        for rig_id in [k for k in self._shown if k not in visible]:
            table.remove_row(rig_id)
            del self._shown[rig_id]
            self._last_rows.pop(rig_id, None)
        keys = [c.key for c in self.columns]
        sort_idx = keys.index(self.sort_column) if self.sort_column in keys else -1
        moved = False  #: a value in the sort column changed
        for n, (rig_id, row) in enumerate(visible.items()):
            if n and n % self.CHUNK == 0:
                yield
            if rig_id in self._shown and self._last_rows.get(rig_id) == row:
                continue  # nothing about this rig changed: no cells to build
            self._last_rows[rig_id] = row
            cells = [c.cell(row) for c in self.columns]
            texts = tuple(cell.plain + str(cell.style) for cell in cells)
            old = self._shown.get(rig_id)
            if old is None:
                table.add_row(*cells, key=rig_id)
                resort = True
            else:
                for i, (new_t, old_t) in enumerate(zip(texts, old, strict=True)):
                    if new_t != old_t:
                        table.update_cell(rig_id, keys[i], cells[i])
                        self.repaints += 1
                        moved = moved or i == sort_idx
                        # A rig going down (or coming back) moves at once.
                        resort = resort or keys[i] == "status"
            self._shown[rig_id] = texts
        # Re-sorting repaints the whole table: values that merely drift (margins move by
        # cents every poll) re-sort once a minute, like the totals in the title.
        now = time.monotonic()
        if moved and (self._sorted_at is None or now - self._sorted_at >= self.RESORT_EVERY_S):
            resort = True
        if resort:
            self._sorted_at = now
            self._sort()
        set_border(self, subtitle=self._subtitle())

    def _sort(self) -> None:
        if self.sort_column not in {c.key for c in self.columns}:
            self.sort_column = "status"  # a hidden column can't order the table
        table = self.table
        col = self.sort_column
        # Sorting repaints the whole table: skip it when the order would not change.
        current = [r.key for r in table.ordered_rows]
        wanted = sorted(current, key=lambda k: table.get_cell(k, col).sort_key,
                        reverse=self.sort_reverse)
        if wanted != current:
            table.sort(col, key=lambda cell: cell.sort_key, reverse=self.sort_reverse)

    def _subtitle(self) -> str:
        arrow = "▼" if self.sort_reverse else "▲"
        label = next(c.label for c in COLUMNS if c.key == self.sort_column)
        shown, total = len(self._shown), len(self._rows)
        filt = (f" · filter “{safe(self.filter_text, 40)}” {shown}/{total}"
                if self.filter_text else "")
        return f"sort {label} {arrow}{filt}"

    # ---------------------------------------------------------------- sort & filter
    def cycle_sort(self, step: int) -> None:
        keys = [c.key for c in self.columns]
        i = keys.index(self.sort_column) if self.sort_column in keys else 0
        self.sort_column = keys[(i + step) % len(keys)]
        self._sort()
        set_border(self, subtitle=self._subtitle())

    def reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._sort()
        set_border(self, subtitle=self._subtitle())

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in {c.key for c in self.columns}:
            raise ValueError(column)
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._sort()
        set_border(self, subtitle=self._subtitle())

    def start_filter(self) -> None:
        self.add_class("-filtering")
        box = self.query_one(Input)
        box.value = self.filter_text
        box.focus()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._sync(force_sort=True)

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

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key is not None:
            self.sort_by(key)
