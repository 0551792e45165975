"""Retarget pane: epoch progress, ETA with a 90% range, projected change (mempool's math)."""

from __future__ import annotations

import time

from rich.text import Text

from tui.dashboard import fmt_local
from tui.fmt import fmt_duration, fmt_pct
from tui.network import RetargetView
from widgets.base import Pane, bar

WIDE = 34


def _short_range(lo: float, hi: float) -> str:
    a = time.localtime(lo)
    b = time.localtime(hi)
    left = time.strftime("%a %H:%M", a)
    same_day = a.tm_yday == b.tm_yday and a.tm_year == b.tm_year
    right = time.strftime("%H:%M" if same_day else "%a %H:%M", b)
    return f"{left}…{right}"


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
        self.redraw()

    def tick(self, now: float) -> None:
        self.now = now
        self.redraw()

    def body(self, width: int) -> Text:
        v = self.view
        if v is None:
            return Text("waiting for chain data…", style="dim")
        wide = width >= WIDE
        p = v.projection
        t = Text()
        t.append(f"{p.remaining_blocks:,} {'blocks' if wide else 'blk'}", style="bold")
        t.append(f" to {p.next_retarget_height:,}\n")
        pct = f" {p.progress_percent:.1f}%"
        t.append(bar(p.progress_percent / 100, max(4, width - len(pct))), style="cyan")
        t.append(pct + "\n")
        left = max(0.0, p.estimated_retarget_time - self.now)
        far = left > 6 * 86400
        if wide:
            t.append(f"ETA {fmt_local(p.estimated_retarget_time)}", style="bold")
            t.append(f" in {fmt_duration(left)}\n")
        else:
            stamp = fmt_local(p.estimated_retarget_time, "%d %b %H:%M" if far else "%a %H:%M")
            t.append(f"ETA {stamp}", style="bold")
            t.append(f" {fmt_duration(left, short=True)}\n")
        rng = _short_range(v.eta_low, v.eta_high)
        t.append(("90% " if len(rng) + 4 <= width else "") + rng + "\n", style="dim")
        change = p.difficulty_change
        t.append("projected ")
        t.append(fmt_pct(change, 2), style="bold green" if change < 0 else "bold red")
        rng = f"90% {fmt_pct(v.change_low_pct)}…{fmt_pct(v.change_high_pct)}"
        if wide and width >= 18 + len(rng) + 2:
            t.append(f" ({rng})\n", style="dim")
        else:
            t.append("\n")
            t.append(rng + "\n", style="dim")
        t.append(f"previous {fmt_pct(v.previous_change_pct, 2)}", style="dim")
        return t
