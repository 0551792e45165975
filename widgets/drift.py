"""Block-time drift pane: mean intervals against the 600 s target, schedule, last block."""

from __future__ import annotations

from rich.text import Text

from tui.fmt import fmt_duration, fmt_pct
from tui.network import DriftView, pct_vs_target
from widgets.base import Pane, block_chart, sparkline

WIDE = 30


class DriftPane(Pane):
    TITLE = "Block-time drift"

    def __init__(self, *, id: str | None = "drift") -> None:
        super().__init__(id=id)
        self.view: DriftView | None = None
        self.since_s: float = 0.0

    def show(self, view: DriftView) -> None:
        self.view = view
        self.since_s = view.since_last_block_s
        self.redraw()

    def tick(self, elapsed_since_view: float) -> None:
        """Advance the 'last block' clock without recomputing anything."""
        if self.view is not None:
            self.since_s = self.view.since_last_block_s + elapsed_since_view
            self.redraw()

    def body(self, width: int) -> Text:
        v = self.view
        if v is None:
            return Text("waiting for chain data…", style="dim")
        wide = width >= WIDE
        unit = " min" if wide else "m"

        def avg(a: float | None) -> str:
            return "—" if a is None else f"{a / 60:.1f}{unit}"

        t = Text()
        pct = v.epoch_drift_pct
        t.append(f"{'epoch':7s} {avg(v.epoch_avg_s):>8s} ", style="bold")
        t.append(f"{fmt_pct(pct):>6s}", style="bold red" if pct is not None and pct > 5 else "bold")
        if wide:
            t.append(f"  {v.epoch_blocks:,} blk", style="dim")
        t.append("\n")
        for n, a in v.windows.items():
            p = pct_vs_target(a)
            t.append(f"{n:>3d} blk {avg(a):>8s} {fmt_pct(p, 0):>6s}\n",
                     style="red" if p is not None and p > 25 else "")
        sched = v.blocks_vs_schedule
        if wide:
            word = "behind" if sched < 0 else "ahead of"
            t.append(f"{abs(sched):,.0f} blocks {word} schedule\n",
                     style="yellow" if sched < -10 else "")
        else:
            t.append(f"{sched:+,.0f} blk vs schedule\n".replace("-", "−"),
                     style="yellow" if sched < -10 else "")
        t.append(f"last block {fmt_duration(self.since_s)} ago")
        if v.tip_ahead_s > 0 and wide:
            t.append(f" (stamp +{fmt_duration(v.tip_ahead_s)})", style="dim")
        t.append("\n")
        ivs = [float(max(0, i)) for i in v.recent_intervals]
        if ivs:
            tail = f" {v.out_of_order}⇅" if v.out_of_order else ""
            spark_w = max(4, width - len(tail))
            rows = self.content_size.height - 6
            if rows >= 3:
                t.append(f"last {len(ivs)} intervals (max {max(ivs) / 60:.0f} min)"
                         f"{tail}\n", style="dim")
                chart = block_chart(ivs, spark_w, rows - 1)
                t.append("\n".join(chart), style="cyan")
            else:
                t.append(sparkline(ivs, spark_w), style="cyan")
                t.append(tail, style="yellow")
        return t
