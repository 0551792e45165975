"""The curtailment screen (`c`): which machines lose money at the power price in force now,
what switching them off would save, and the same at the next tariff period.  Advice only:
minertop never switches a machine."""

from __future__ import annotations

import time
from typing import ClassVar

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


def _usd(v: float | None, signed: bool = True) -> Text:
    if v is None:
        return Text("—", justify="right")
    text = f"{v:+,.2f}" if signed else f"{v:,.2f}"
    return Text(text.replace("-", "−"), style="red" if v < 0 else "", justify="right")


def _price(v: float | None) -> str:
    return fmt_usd_kwh(v, 4)


def curtail_table(p: CurtailPlan, now: float) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column()
    head = Text()
    head.append("Power price now ", style="bold")
    head.append(_price(p.usd_kwh_now))
    if p.usd_kwh_next is not None and p.next_change_unix is not None:
        when = p.next_label or time.strftime("%a %H:%M", time.localtime(p.next_change_unix))
        head.append(f" · from {when} (in {fmt_duration(p.next_change_unix - now, short=True)})"
                    f" {_price(p.usd_kwh_next)}")
    grid.add_row(head)
    losing = p.losing_now
    line = Text()
    if losing:
        n = len(losing)
        line.append(f"✗ {n} rig{'s lose' if n > 1 else ' loses'} money now", style="bold red")
        line.append(f" · switching them off saves ${p.saving_now:,.2f}/day "
                    f"({p.power_off_now_kw:,.1f} kW)")
    else:
        line.append("● every running rig earns more than its power costs now", style="green")
    grid.add_row(line)
    if p.usd_kwh_next is not None:
        nxt = p.losing_next
        saving = p.saving_next or 0.0
        grid.add_row(Text(f"at the next price: {len(nxt)} lose money, switching them off "
                          f"saves ${saving:,.2f}/day"))
    grid.add_row(Text("Margins are revenue − power cost (the per-rig overhead is paid either "
                      "way). Advice only: minertop never switches a machine.", style="dim"))
    grid.add_row("")

    t = Table(box=None, padding=(0, 1), header_style="bold", expand=False)
    t.add_column("rig", no_wrap=True)
    t.add_column("model", no_wrap=True)
    t.add_column("rev $/d", justify="right")
    t.add_column("W", justify="right")
    t.add_column("$/kWh", justify="right")
    t.add_column("now $/d", justify="right")
    t.add_column("next $/d", justify="right")
    t.add_column("advice", no_wrap=True)
    for r in p.rows[:MAX_ROWS]:
        if r.margin_now < 0:
            advice = Text(f"✗ off: saves ${r.saving_now:,.2f}/d", style="bold red")
        elif r.margin_next is not None and r.margin_next < 0:
            advice = Text("▲ off at the next price", style="yellow")
        else:
            advice = Text("● run", style="green")
        if r.status == "stuck":
            advice.append(" (stuck)", style="bold magenta")
        power = f"{r.power_w:,.0f}{'~' if r.power_estimated else ''}"
        t.add_row(Text(safe(r.name, 24), style="bold"), Text(safe(r.model, 20)),
                  _usd(r.revenue_usd_day, signed=False), power,
                  f"{r.usd_kwh_now:.4f}".replace("-", "−"),
                  _usd(r.margin_now), _usd(r.margin_next), advice)
    grid.add_row(t)
    if len(p.rows) > MAX_ROWS:
        grid.add_row(Text(f"… and {len(p.rows) - MAX_ROWS:,} more that earn more",
                          style="dim"))
    if not p.rows:
        grid.add_row(Text("no rig draws power now (or no price is known yet)", style="dim"))
    return grid


class CurtailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,c", "dismiss", "close")]
    DEFAULT_CSS = """
    CurtailScreen { align: center middle; }
    CurtailScreen > VerticalScroll { width: 95%; height: 90%; border: round $accent;
        padding: 0 1; background: $surface; }
    """

    def __init__(self, table: Table) -> None:
        super().__init__()
        self._table = table

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = "Curtailment · which machines pay for their power"
            v.border_subtitle = "esc to close"
            yield Static(self._table, id="curtail-body")

    def update_table(self, table: Table) -> None:
        self.query_one("#curtail-body", Static).update(table)
