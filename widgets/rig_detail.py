"""The detail screen of one rig: its readings over the session, pool and recent errors."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.fmt import fmt_duration, fmt_usd
from tui.history import RigHistory
from tui.model import Hashboard
from tui.safe import safe
from tui.site import RigRow
from widgets.base import SPAN_BINDINGS, SpanKeys, resample, set_border, sparkline
from widgets.rigs import STATUS_MARK

CHARTS = (
    ("hashrate_ths", "hashrate", "TH/s", "{:,.1f}"),
    ("power_w", "power", "W", "{:,.0f}"),
    ("temp_c", "temperature", "°C", "{:.0f}"),
    ("fan_rpm", "fans", "rpm", "{:,.0f}"),
    ("margin_usd_day", "margin", "$/day", "{:+,.2f}"),
)


#: How each protocol is named on screen.
PROTOCOL_NAMES = {
    "cgminer": "cgminer API (TCP)",
    "whatsminer-v3": "Whatsminer API v3",
    "bitaxe": "AxeOS HTTP API",
}


def board_line(b: Hashboard) -> Text:
    """One hashboard: ``#1  62.1 TH/s  chips 126/126  chip 71 °C  board 60 °C``, and why it
    is down, in words."""
    line = Text(f"#{b.index:<2} ")
    line.append("  —  TH/s" if b.hashrate_ths is None else f"{b.hashrate_ths:5.1f} TH/s")
    if b.chips is not None:
        chips = f"{b.chips}" + (f"/{b.chips_expected}" if b.chips_expected else "")
        line.append(f"  chips {chips}")
    if b.temp_chip_c is not None:
        line.append(f"  chip {b.temp_chip_c:.0f} °C")
    if b.temp_board_c is not None:
        line.append(f"  board {b.temp_board_c:.0f} °C")
    problem = b.problem
    if problem:
        line.append(f"  ✗ down: {problem}", style="bold red")
        line.stylize("bold")
    return line


def detail_text(row: RigRow, history: RigHistory, width: int, now: float) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    status = Text(STATUS_MARK.get(row.status, row.status))
    if row.reason:
        status.append(f" · {safe(row.reason)}")
    if row.boards_text:
        status.append(f" · ▲ {row.boards_text} ({row.board_problem})", style="bold yellow")
    grid.add_row("status", status)
    where = Text(row.address)
    if row.protocol:
        where.append(f" · {PROTOCOL_NAMES.get(row.protocol, safe(row.protocol, 20))}")
    grid.add_row("host", where)
    model = Text(safe(row.model))
    if row.firmware:
        model.append(f" · firmware {row.firmware}", style="dim")
    grid.add_row("model", model)
    if row.boards:
        for i, b in enumerate(row.boards):
            grid.add_row("boards" if i == 0 else "", board_line(b))
    grid.add_row("pool", Text(safe(row.pool) if row.pool else "—"))
    age = "—" if row.age_s is None else f"{fmt_duration(row.age_s)} ago"
    grid.add_row("last reading", Text(age))
    if row.economics is not None:
        e = row.economics

        def usd(v: float | None, nd: int = 2, signed: bool = False) -> str:
            return fmt_usd(v, nd, signed)

        pct = "" if e.margin_pct is None else f" ({e.margin_pct:+.0f}%)".replace("-", "−")
        grid.add_row("per day", Text(
            f"revenue {usd(e.revenue_usd_day)} · cost {usd(e.cost_usd_day)} · margin "
            f"{usd(e.margin_usd_day, signed=True)}{pct} · after retarget "
            f"{usd(e.margin_after_retarget_usd_day, signed=True)}"))
        power = "—" if row.power_w is None else f"{row.power_w:,.0f} W"
        if row.power_estimated:
            power += " (estimated: nominal J/TH × live hashrate)"
        jth = "—" if e.j_per_th is None else f"{e.j_per_th:.1f} J/TH"
        grid.add_row("power", Text(f"{power} · {jth}"))
        grid.add_row("break-even", Text(
            f"electricity {usd(e.breakeven_usd_kwh, 4)}/kWh · BTC price "
            f"{usd(e.shutdown_price_usd, 0)}"))
    grid.add_row("", "")
    spark_w = max(10, width - 40)
    n = history.count
    span = history.span_s
    for attr, label, unit, fmt in CHARTS:
        values = history.series(attr)
        if not values:
            grid.add_row(label, Text("no data", style="dim"))
            continue
        line = Text(sparkline(resample(values, spark_w), spark_w), style="cyan")
        line.append(f"  now {fmt.format(values[-1])} {unit}  "
                    f"min {fmt.format(min(values))} max {fmt.format(max(values))}", style="dim")
        grid.add_row(label, line)
    grid.add_row("", Text(f"{n} readings over {fmt_duration(span)}", style="dim"))
    grid.add_row("", "")
    if history.errors:
        fmt = "%d %b %H:%M" if span > 86400 else "%H:%M:%S"
        for when, msg in list(history.errors)[-10:]:
            grid.add_row(time.strftime(fmt, time.localtime(when)),
                         Text(safe(msg), style="red"))
    else:
        grid.add_row("errors", Text("none this session", style="dim"))
    return grid


class RigDetailScreen(SpanKeys, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "back"),
        *SPAN_BINDINGS,
    ]
    DEFAULT_CSS = """
    RigDetailScreen > VerticalScroll { border: round $accent; padding: 0 1; }
    """

    def __init__(self, rig_id: str, row: RigRow, history: RigHistory, now: float) -> None:
        super().__init__()
        self.rig_id = rig_id
        self.row = row
        self.history = history
        self.now = now

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            set_border(v, title=f"Rig {safe(self.row.name)}")
            v.border_subtitle = "esc back"
            yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_detail(self.row, self.history, self.now)

    def refresh_detail(self, row: RigRow, history: RigHistory, now: float) -> None:
        self.row, self.history, self.now = row, history, now
        self.query_one("#detail", Static).update(
            detail_text(row, history, self.size.width or 100, now))
