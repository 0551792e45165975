"""The curtailment screen (`c`): which machines lose money at the power price in force now,
what switching them off would save, and the same at the next tariff period.  Advice only:
minertop never switches a machine.

The per-rig table is laid out for the width it is drawn at (so again on every resize): when
all its columns do not fit, the least needed ones go first (revenue, watts, model, the next
period's margin, the price), so that every figure left is shown in full, never cut to
``…``.  The rig, its margin now and the advice always stay."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

from rich.console import Console, ConsoleOptions, JustifyMethod, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.curtail import CurtailPlan
from tui.fmt import fmt_duration, fmt_usd_kwh
from tui.safe import safe

#: Rows drawn at most (the worst first); the rest are counted.
MAX_ROWS = 300
#: The table's columns dropped when they do not all fit, least needed first.  The rig, its
#: margin at the price now and the advice are never dropped: they are the decision.
DROP_ORDER = ("rev", "watts", "model", "next", "price")
#: Cells of padding around each column (one either side).
PAD = 2
#: A text column (the rig's name, the advice) is cut with ``…`` no narrower than this, and
#: only when the table does not fit with every droppable column gone.
MIN_TEXT = 8


def _usd(v: float | None, signed: bool = True) -> Text:
    if v is None:
        return Text("—", justify="right")
    text = f"{v:+,.2f}" if signed else f"{v:,.2f}"
    return Text(text.replace("-", "−"), style="red" if v < 0 else "", justify="right")


def _price(v: float | None) -> str:
    return fmt_usd_kwh(v, 4)


@dataclass(frozen=True)
class _Column:
    key: str  #: the name in DROP_ORDER
    header: str
    label: str  #: what the "not shown" note calls it
    justify: JustifyMethod
    cells: tuple[Text, ...]

    @cached_property
    def width(self) -> int:
        """The widest of its header and cells (without padding)."""
        return max([Text(self.header).cell_len, *(c.cell_len for c in self.cells)])


def layout(columns: list[_Column], width: int) -> list[tuple[_Column, int]]:
    """The columns shown in ``width`` cells and each one's width: every column when they all
    fit, else without the droppable ones (in :data:`DROP_ORDER`) until the rest fit; if even
    those do not, the rig's name and then the advice are cut, never a figure."""
    kept = list(columns)

    def total() -> int:
        return sum(c.width + PAD for c in kept)

    for key in DROP_ORDER:
        if total() <= width:
            break
        kept = [c for c in kept if c.key != key]
    widths = {c.key: c.width for c in kept}
    excess = total() - width
    for key in ("rig", "advice"):
        if excess <= 0 or key not in widths:
            continue
        cut = min(excess, max(0, widths[key] - MIN_TEXT))
        widths[key] -= cut
        excess -= cut
    return [(c, widths[c.key]) for c in kept]


class CurtailView:
    """The screen's body (a Rich renderable): the summary, then the per-rig table laid out
    for the width it is rendered at."""

    def __init__(self, p: CurtailPlan, now: float) -> None:
        self.plan = p
        self.head = self._head(p, now)
        self.columns = self._columns(p)

    @staticmethod
    def _head(p: CurtailPlan, now: float) -> list[Text]:
        lines: list[Text] = []
        head = Text()
        head.append("Power price now ", style="bold")
        head.append(_price(p.usd_kwh_now))
        if p.usd_kwh_next is not None and p.next_change_unix is not None:
            when = p.next_label or time.strftime("%a %H:%M",
                                                 time.localtime(p.next_change_unix))
            head.append(f" · from {when} (in "
                        f"{fmt_duration(p.next_change_unix - now, short=True)})"
                        f" {_price(p.usd_kwh_next)}")
        lines.append(head)
        losing = p.losing_now
        line = Text()
        if losing:
            n = len(losing)
            line.append(f"✗ {n} rig{'s lose' if n > 1 else ' loses'} money now",
                        style="bold red")
            line.append(f" · switching them off saves ${p.saving_now:,.2f}/day "
                        f"({p.power_off_now_kw:,.1f} kW)")
        else:
            line.append("● every running rig earns more than its power costs now",
                        style="green")
        lines.append(line)
        if p.usd_kwh_next is not None:
            nxt = p.losing_next
            saving = p.saving_next or 0.0
            lines.append(Text(f"at the next price: {len(nxt)} lose money, switching them "
                              f"off saves ${saving:,.2f}/day"))
        lines.append(Text("Margins are revenue − power cost (the per-rig overhead is paid "
                          "either way). Advice only: minertop never switches a machine.",
                          style="dim"))
        return lines

    @staticmethod
    def _columns(p: CurtailPlan) -> list[_Column]:
        rows = p.rows[:MAX_ROWS]
        advice: list[Text] = []
        for r in rows:
            if r.margin_now < 0:
                a = Text(f"✗ off: saves ${r.saving_now:,.2f}/d", style="bold red")
            elif r.margin_next is not None and r.margin_next < 0:
                a = Text("▲ off at the next price", style="yellow")
            else:
                a = Text("● run", style="green")
            if r.status == "stuck":
                a.append(" (stuck)", style="bold magenta")
            advice.append(a)
        return [
            _Column("rig", "rig", "rig", "left",
                    tuple(Text(safe(r.name, 24), style="bold") for r in rows)),
            _Column("model", "model", "model", "left",
                    tuple(Text(safe(r.model, 20)) for r in rows)),
            _Column("rev", "rev $/d", "revenue", "right",
                    tuple(_usd(r.revenue_usd_day, signed=False) for r in rows)),
            _Column("watts", "W", "watts", "right",
                    tuple(Text(f"{r.power_w:,.0f}{'~' if r.power_estimated else ''}",
                               justify="right") for r in rows)),
            _Column("price", "$/kWh", "price", "right",
                    tuple(Text(f"{r.usd_kwh_now:.4f}".replace("-", "−"), justify="right")
                          for r in rows)),
            _Column("now", "now $/d", "margin now", "right",
                    tuple(_usd(r.margin_now) for r in rows)),
            _Column("next", "next $/d", "next price's margin", "right",
                    tuple(_usd(r.margin_next) for r in rows)),
            _Column("advice", "advice", "advice", "left", tuple(advice)),
        ]

    def table(self, width: int) -> Table:
        """The per-rig table for ``width`` cells."""
        t = Table(box=None, padding=(0, 1), header_style="bold", expand=False)
        shown = layout(self.columns, width)
        for c, w in shown:
            t.add_column(c.header, justify=c.justify, width=w, no_wrap=True,
                         overflow="ellipsis")
        for i in range(len(self.plan.rows[:MAX_ROWS])):
            t.add_row(*(c.cells[i] for c, _ in shown))
        return t

    def hidden(self, width: int) -> list[str]:
        """What the table at ``width`` leaves out, in the table's order."""
        shown = {c.key for c, _ in layout(self.columns, width)}
        return [c.label for c in self.columns if c.key not in shown]

    def grid(self, width: int) -> Table:
        p = self.plan
        grid = Table.grid(padding=(0, 1))
        grid.add_column()
        for line in self.head:
            grid.add_row(line)
        grid.add_row("")
        grid.add_row(self.table(width))
        if len(p.rows) > MAX_ROWS:
            grid.add_row(Text(f"… and {len(p.rows) - MAX_ROWS:,} more that earn more",
                              style="dim"))
        if not p.rows:
            grid.add_row(Text("no rig draws power now (or no price is known yet)",
                              style="dim"))
        elif hidden := self.hidden(width):
            grid.add_row(Text(f"not shown at this width: {', '.join(hidden)}", style="dim"))
        return grid

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.grid(options.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.grid(options.max_width))


def curtail_table(p: CurtailPlan, now: float) -> CurtailView:
    return CurtailView(p, now)


class CurtailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,c", "dismiss", "close")]
    DEFAULT_CSS = """
    CurtailScreen { align: center middle; }
    CurtailScreen > VerticalScroll { width: 95%; height: 90%; border: round $accent;
        padding: 0 1; background: $surface; }
    """

    def __init__(self, table: CurtailView) -> None:
        super().__init__()
        self._table = table

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = "Curtailment · which machines pay for their power"
            v.border_subtitle = "esc to close"
            yield Static(self._table, id="curtail-body")

    def update_table(self, table: CurtailView) -> None:
        self.query_one("#curtail-body", Static).update(table)
