"""Retarget pane: epoch progress, ETA with a 90% range, projected change (mempool's math)."""

from __future__ import annotations

from rich.text import Text

from tui.dashboard import fmt_duration, fmt_local, fmt_pct
from tui.network import RetargetView
from widgets.base import Pane, bar


class RetargetPane(Pane):
    TITLE = "Retarget"

    def __init__(self, *, id: str | None = "retarget") -> None:
        super().__init__(id=id)
        self.view: RetargetView | None = None
        self.now: float = 0.0

    def show(self, view: RetargetView | None) -> None:
        self.view = view
        if view is not None:
            self.now = view.now
        self.refresh()

    def tick(self, now: float) -> None:
        self.now = now
        self.refresh()

    def body(self, width: int) -> Text:
        v = self.view
        if v is None:
            return Text("waiting for chain data…", style="dim")
        p = v.projection
        t = Text()
        t.append(f"{p.remaining_blocks:,} blocks", style="bold")
        t.append(f" to {p.next_retarget_height:,}\n")
        pct = f" {p.progress_percent:.1f}%"
        t.append(bar(p.progress_percent / 100, max(4, width - len(pct))), style="cyan")
        t.append(pct + "\n")
        countdown = fmt_duration(max(0.0, p.estimated_retarget_time - self.now))
        t.append(f"ETA {fmt_local(p.estimated_retarget_time)}", style="bold")
        t.append(f" in {countdown}\n" if width >= 30 else "\n")
        t.append(f"90% {fmt_local(v.eta_low, '%a %H:%M')} … {fmt_local(v.eta_high, '%a %H:%M')}\n",
                 style="dim")
        change = p.difficulty_change
        t.append("projected ")
        t.append(fmt_pct(change, 2), style="bold " + ("green" if change < 0 else "red"))
        t.append("\n" if width < 38 else " ")
        t.append(f"(90% {fmt_pct(v.change_low_pct)}…{fmt_pct(v.change_high_pct)})\n", style="dim")
        t.append(f"previous {fmt_pct(v.previous_change_pct, 2)}", style="dim")
        return t
