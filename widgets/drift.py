"""Block-time drift pane: mean intervals against the 600 s target, schedule, last block."""

from __future__ import annotations

from rich.text import Text

from tui.dashboard import fmt_duration, fmt_pct
from tui.network import DriftView, pct_vs_target
from widgets.base import Pane, sparkline


def _avg(v: float | None) -> str:
    return "—" if v is None else f"{v / 60:.1f} min"


class DriftPane(Pane):
    TITLE = "Block-time drift"

    def __init__(self, *, id: str | None = "drift") -> None:
        super().__init__(id=id)
        self.view: DriftView | None = None
        self.since_s: float = 0.0

    def show(self, view: DriftView) -> None:
        self.view = view
        self.since_s = view.since_last_block_s
        self.refresh()

    def tick(self, elapsed_since_view: float) -> None:
        """Advance the 'last block' clock without recomputing anything."""
        if self.view is not None:
            self.since_s = self.view.since_last_block_s + elapsed_since_view
            self.refresh()

    def body(self, width: int) -> Text:
        v = self.view
        if v is None:
            return Text("waiting for chain data…", style="dim")
        t = Text()
        pct = v.epoch_drift_pct
        t.append(f"epoch {_avg(v.epoch_avg_s)} ", style="bold")
        t.append(fmt_pct(pct), style="red" if pct is not None and pct > 5 else "")
        t.append(f" ({v.epoch_blocks} blk)\n" if width >= 34 else "\n", style="dim")
        parts = [f"{n} {_avg(a)} {fmt_pct(pct_vs_target(a), 0)}" for n, a in v.windows.items()]
        if width >= 40:
            t.append(" · ".join(parts[:2]) + "\n")
            t.append(parts[2] + "\n")
        else:
            t.append("\n".join(parts) + "\n")
        sched = v.blocks_vs_schedule
        word = "behind" if sched < 0 else "ahead of"
        t.append(f"{abs(sched):,.0f} blocks {word} schedule\n",
                 style="yellow" if sched < -10 else "")
        t.append(f"last block {fmt_duration(self.since_s)} ago")
        if v.tip_ahead_s > 0:
            t.append(f" (stamp +{fmt_duration(v.tip_ahead_s)})", style="dim")
        t.append("\n")
        ivs = [max(0, i) for i in v.recent_intervals]
        if ivs:
            spark_w = max(4, width - 6)
            t.append(sparkline([float(i) for i in ivs], spark_w), style="cyan")
            ooo = f" {v.out_of_order}⇅" if v.out_of_order else ""
            t.append(ooo, style="dim")
        return t
