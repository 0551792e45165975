"""The alerts screen (`a`): what is firing now and what fired or cleared when."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.alerts import Alert, AlertEvent
from tui.fmt import fmt_duration
from tui.safe import safe
from widgets.base import SPAN_BINDINGS, SpanKeys

MARK = {"critical": ("✗ CRIT", "bold red"), "warning": ("▲ WARN", "yellow")}


def alerts_table(active: Mapping[str, Alert], history: Iterable[AlertEvent], now: float,
                 log_file: str | None = None,
                 history_title: str = "History (newest first)") -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column()
    grid.add_row(Text("Active", style="bold"), "", "")
    if not active:
        grid.add_row(Text("● none", style="green"), "", "")
    for a in sorted(active.values(), key=lambda a: (a.severity != "critical", a.since)):
        mark, style = MARK.get(a.severity, (a.severity, ""))
        grid.add_row(Text(mark, style=style),
                     Text(f"for {fmt_duration(now - a.since)}", style="dim"),
                     Text(safe(a.message)))
    grid.add_row("", "", "")
    grid.add_row(Text(history_title, style="bold"), "", "")
    events = list(history)[::-1][:200]
    if not events:
        grid.add_row(Text("nothing yet this session", style="dim"), "", "")
    for e in events:
        fired = e.kind == "fired"
        mark, style = MARK.get(e.alert.severity, ("", "")) if fired else ("✓ clear", "green")
        grid.add_row(Text(time.strftime("%d %b %H:%M:%S", time.localtime(e.time))),
                     Text(mark, style=style), Text(safe(e.alert.message)))
    if log_file:
        grid.add_row("", "", "")
        grid.add_row(Text("log file", style="dim"), "", Text(safe(log_file), style="dim"))
    return grid


class AlertsScreen(SpanKeys, ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,a", "dismiss", "close"),
        *SPAN_BINDINGS,
    ]
    DEFAULT_CSS = """
    AlertsScreen { align: center middle; }
    AlertsScreen > VerticalScroll { width: 90%; height: 80%; border: round $accent;
        padding: 0 1; background: $surface; }
    """

    def __init__(self, table: Table) -> None:
        super().__init__()
        self._table = table

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = "Alerts"
            v.border_subtitle = "esc to close"
            yield Static(self._table, id="alerts-body")

    def update_table(self, table: Table) -> None:
        self.query_one("#alerts-body", Static).update(table)
