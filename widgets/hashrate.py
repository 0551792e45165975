"""Network hashrate pane: 1d/3d/7d estimates, change against the peak, history, ribbon."""

from __future__ import annotations

import time

from rich.text import Text

from tui.dashboard import fmt_ehs, fmt_pct
from tui.network import HashrateView
from widgets.base import Pane, resample, sparkline

EH = 1e18


class HashratePane(Pane):
    TITLE = "Hashrate"

    def __init__(self, *, id: str | None = "hashrate") -> None:
        super().__init__(id=id)
        self.view: HashrateView | None = None

    def show(self, view: HashrateView) -> None:
        self.view = view
        self.refresh()

    def body(self, width: int) -> Text:
        v = self.view
        if v is None:
            return Text("waiting for chain data…", style="dim")
        t = Text()
        one = v.windows.get("1d")
        t.append(f"{fmt_ehs(one)} EH/s", style="bold")
        t.append(" 1d ")
        if v.vs_peak_pct is not None:
            t.append(f"{fmt_pct(v.vs_peak_pct)} vs peak", style="red" if v.vs_peak_pct < -5 else "")
        t.append("\n")
        t.append(f"3d {fmt_ehs(v.windows.get('3d'))} · 7d {fmt_ehs(v.windows.get('7d'))} EH/s\n")
        if v.peak is not None and v.peak_time is not None:
            when = time.strftime("%d %b", time.localtime(v.peak_time))
            t.append(f"peak {v.peak / EH:,.0f} EH/s {when}\n", style="dim")
        if v.history:
            days = len(v.history)
            label = f" {days}d"
            spark_w = max(4, width - len(label))
            series = resample([p.hashrate for p in v.history], spark_w)
            t.append(sparkline(series, spark_w), style="cyan")
            t.append(label + "\n", style="dim")
        else:
            t.append("no daily history from this source\n", style="dim")
        if v.ribbon is not None:
            style = "yellow" if v.ribbon.capitulation else "green"
            mark = "▼ " if v.ribbon.capitulation else "▲ "
            t.append(mark + "ribbon " + v.ribbon.label, style=style)
        else:
            t.append("ribbon needs 60 days of history", style="dim")
        return t
