"""Network hashrate pane: 1d/3d/7d estimates, change against the peak, history, ribbon."""

from __future__ import annotations

import time

from rich.text import Text

from tui.dashboard import fmt_ehs
from tui.fmt import fmt_pct
from tui.network import HashrateView
from widgets.base import Pane, block_chart, resample, sparkline

EH = 1e18
WIDE = 34


class HashratePane(Pane):
    TITLE = "Hashrate"

    def __init__(self, *, id: str | None = "hashrate") -> None:
        super().__init__(id=id)
        self.view: HashrateView | None = None

    def show(self, view: HashrateView) -> None:
        self.view = view
        self.redraw()

    def body(self, width: int) -> Text:
        v = self.view
        if v is None:
            return Text("waiting for chain data…", style="dim")
        wide = width >= WIDE
        t = Text()
        t.append(f"{fmt_ehs(v.windows.get('1d'))} EH/s", style="bold")
        t.append(" 1d")
        vs = v.vs_peak_pct
        vs_style = "bold red" if vs is not None and vs < -5 else ""
        d3, d7 = fmt_ehs(v.windows.get("3d")), fmt_ehs(v.windows.get("7d"))
        peak = "—" if v.peak is None else f"{v.peak / EH:,.0f}"
        if wide:
            t.append("  ")
            t.append(f"{fmt_pct(vs)} vs peak", style=vs_style)
            t.append("\n")
            t.append(f"3d {d3} · 7d {d7} EH/s\n")
            when = "" if v.peak_time is None else time.strftime(
                " on %d %b", time.localtime(v.peak_time))
            t.append(f"peak {peak} EH/s{when}\n", style="dim")
        else:
            t.append("\n")
            t.append(f"{fmt_pct(vs)}", style=vs_style)
            t.append(f" vs peak {peak}\n")
            t.append(f"3d {d3} · 7d {d7}\n")
        if v.history:
            label = f" {len(v.history)}d"
            spark_w = max(4, width - len(label))
            series = resample([p.hashrate for p in v.history], spark_w)
            rows = self.content_size.height - 5  # room to spare (zoomed, tall terminal): a chart
            if rows >= 3:
                lo, hi = min(series), max(series)
                side_w = len(f" {hi / EH:,.0f}") + 1
                chart_w = max(4, width - side_w)
                series = resample([p.hashrate for p in v.history], chart_w)
                lo, hi = min(series), max(series)
                chart = block_chart(series, chart_w, rows)
                for i, line in enumerate(chart):
                    t.append(line, style="cyan")
                    side = (f" {hi / EH:,.0f}" if i == 0 else
                            f" {lo / EH:,.0f}" if i == rows - 1 else "")
                    t.append(side + "\n", style="dim")
                t.append(f"{len(v.history)} days of daily hashrate, EH/s\n", style="dim")
            else:
                t.append(sparkline(series, spark_w), style="cyan")
                t.append(label + "\n", style="dim")
        else:
            t.append("no daily history\n", style="dim")
        r = v.ribbon
        if r is None:
            t.append("ribbon: < 60 days of data", style="dim")
        else:
            mark = "▼ " if r.capitulation else "▲ "
            state = "capitulation" if r.capitulation else "healthy"
            for text in (("ribbon " if wide else "") + r.label, r.short_label,
                         f"30d{'<' if r.capitulation else '≥'}60d {state}"):
                if len(mark + text) <= width:
                    break
            t.append(mark + text, style="yellow" if r.capitulation else "green")
        return t
