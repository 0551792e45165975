"""Network hashrate pane: 1d/3d/7d estimates, change against the peak, history, ribbon."""

from __future__ import annotations

import time

from rich.text import Text

from tui.dashboard import Dashboard, fmt_ehs
from tui.fmt import fmt_pct
from tui.network import HashrateView
from tui.squeeze import HashpricePoint, NetworkRevenue
from widgets.base import Pane, block_chart, resample, sparkline

EH = 1e18
WIDE = 34


def _hp_chart(values: list[float], width: int, rows: int) -> Text:
    t = Text()
    side_w = len(f" ${max(values):,.1f}") + 1
    chart_w = max(4, width - side_w)
    series = resample(values, chart_w)
    lo, hi = min(series), max(series)
    for i, line in enumerate(block_chart(series, chart_w, rows)):
        t.append(line, style="magenta")
        side = (f" ${hi:,.1f}" if i == 0 else f" ${lo:,.1f}" if i == rows - 1 else "")
        t.append(side + "\n", style="dim")
    return t


class HashratePane(Pane):
    TITLE = "Hashrate"

    def __init__(self, *, id: str | None = "hashrate") -> None:
        super().__init__(id=id)
        self.view: HashrateView | None = None
        self.revenue: NetworkRevenue | None = None
        self.hashprice: tuple[HashpricePoint, ...] = ()

    def show(self, view: HashrateView, d: Dashboard | None = None) -> None:
        self.view = view
        if d is not None:
            self.revenue = d.revenue
            self.hashprice = d.hashprice_history
        self.redraw()

    def _hashprice_chart(self, values: list[float], width: int, rows: int) -> Text:
        t = _hp_chart(values, width, rows)
        t.append(f"{len(values)} days of hashprice, USD per PH/s per day\n", style="dim")
        return t

    def _revenue_line(self, width: int) -> Text | None:
        """``network $27.9M/day −38% vs 30d``: what all miners together earn now."""
        r = self.revenue
        if r is None or r.usd_day is None:
            return None
        t = Text()
        t.append(f"{'network ' if width >= 30 else 'net '}${r.usd_day / 1e6:,.1f}M/day")
        change = r.change_pct
        if change is not None:
            vs = f" {fmt_pct(change, 0)} vs 30d"
            if t.cell_len + len(vs) <= width:
                t.append(vs, style="bold red" if change < -5 else "")
        return t

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
        revenue = self._revenue_line(width)
        spare = self.content_size.height - 5
        if revenue is not None and spare >= 1:
            t.append(revenue)
            t.append("\n")
            spare -= 1
        hp = [p.usd_per_ph_day for p in self.hashprice if p.usd_per_ph_day is not None]
        hp_rows = 0
        if spare >= 9 and len(hp) >= 2:  # zoomed: the hashprice chart below the hashrate's
            hp_rows = (spare - 2) // 2
            spare -= hp_rows + 1
        if v.history:
            label = f" {len(v.history)}d"
            spark_w = max(4, width - len(label))
            series = resample([p.hashrate for p in v.history], spark_w)
            rows = spare  # room to spare (zoomed, tall terminal): a chart
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
                if hp_rows:
                    t.append(self._hashprice_chart(hp, width, hp_rows))
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
