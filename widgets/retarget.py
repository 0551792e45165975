"""Retarget pane: epoch progress, ETA with a 90% range, projected change (mempool's math)."""

from __future__ import annotations

import time

from rich.text import Text

from tui.dashboard import Dashboard, fmt_local
from tui.fmt import fmt_duration, fmt_pct
from tui.model import DifficultyAdjustment
from tui.network import RetargetView
from tui.squeeze import LargestSince
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
        self.largest: LargestSince | None = None
        self.history: tuple[DifficultyAdjustment, ...] = ()
        self.hp_now: float | None = None
        self.hp_after: float | None = None

    def show(self, view: RetargetView | None, d: Dashboard | None = None) -> None:
        self.view = view
        if view is not None:
            self.now = view.now
        if d is not None:
            self.largest = d.largest_since
            self.history = d.retarget_history
            self.hp_now = d.hashprice.usd_per_ph_day
            self.hp_after = d.hashprice_after_retarget_usd
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
        # (priority, line): when the pane is short the lowest priorities go first; the
        # lines keep their order on screen
        lines: list[tuple[int, Text]] = []

        def add(prio: int, *parts: tuple[str, str]) -> None:
            line = Text()
            for text, style in parts:
                line.append(text, style=style)
            lines.append((prio, line))

        add(0, (f"{p.remaining_blocks:,} {'blocks' if wide else 'blk'}", "bold"),
            (f" to {p.next_retarget_height:,}", ""))
        pct = f" {p.progress_percent:.1f}%"
        add(1, (bar(p.progress_percent / 100, max(4, width - len(pct))), "cyan"), (pct, ""))
        left = max(0.0, p.estimated_retarget_time - self.now)
        far = left > 6 * 86400
        if wide:
            add(0, (f"ETA {fmt_local(p.estimated_retarget_time)}", "bold"),
                (f" in {fmt_duration(left)}", ""))
        else:
            stamp = fmt_local(p.estimated_retarget_time, "%d %b %H:%M" if far else "%a %H:%M")
            add(0, (f"ETA {stamp}", "bold"), (f" {fmt_duration(left, short=True)}", ""))
        rng = _short_range(v.eta_low, v.eta_high)
        add(5, (("90% " if len(rng) + 4 <= width else "") + rng, "dim"))
        change = p.difficulty_change
        rng = f"90% {fmt_pct(v.change_low_pct)}…{fmt_pct(v.change_high_pct)}"
        same_line = wide and width >= 18 + len(rng) + 2
        add(0, ("projected ", ""),
            (fmt_pct(change, 2), "bold green" if change < 0 else "bold red"),
            (f" ({rng})" if same_line else "", "dim"))
        if not same_line:
            add(4, (rng, "dim"))
        if self.largest is not None:
            ls = self.largest
            what = f"largest {ls.direction}"
            phrase = (f"{what} in the history known (since {ls.date})" if ls.beyond_history
                      else f"{what} since {ls.date}")
            for fmt in ("%b %Y", "%Y"):
                if len(phrase) <= width:
                    break
                phrase = f"{what} since {time.strftime(fmt, time.gmtime(ls.time))}"
            add(2, (phrase, "bold yellow"))
        if self.hp_now is not None and self.hp_after is not None:
            hp = f"hashprice ${self.hp_now:,.1f} → ${self.hp_after:,.1f}"
            if len(hp) > width:
                hp = f"hp ${self.hp_now:,.1f} → ${self.hp_after:,.1f}"
            add(3, (hp + (" after" if len(hp) + 6 <= width else ""), ""))
        add(6, (f"previous {fmt_pct(v.previous_change_pct, 2)}", "dim"))
        room = max(1, self.content_size.height or len(lines))
        if room < len(lines):
            keep = sorted(range(len(lines)), key=lambda i: (lines[i][0], i))[:room]
            shown = [lines[i][1] for i in sorted(keep)]
        else:
            shown = [line for _, line in lines]
        for line in shown:
            line.truncate(width, overflow="ellipsis")
        t = Text("\n").join(shown)
        rows = room - len(shown) - 2
        if rows >= 3 and self.history:
            t.append("\n\n")
            t.append(self._history(width, rows))
        return t

    def _history(self, width: int, rows: int) -> Text:
        """The past adjustments, newest first, each with a bar of its change (zoomed)."""
        t = Text()
        t.append("past adjustments (newest first)\n", style="bold")
        shown = self.history[: max(1, rows - 1)]
        biggest = max((abs(a.change_pct) for a in shown), default=1.0) or 1.0
        label_w = len("1,000,000 12 Jun 2026 ") + 8
        bar_w = max(0, width - label_w - 1)
        for a in shown:
            day = time.strftime("%d %b %Y", time.gmtime(a.time))
            t.append(f"{a.height:>9,} {day} ")
            t.append(f"{fmt_pct(a.change_pct, 2):>7}",
                     style="green" if a.change_pct < 0 else "red")
            if bar_w >= 4:
                n = max(1, round(abs(a.change_pct) / biggest * bar_w))
                t.append(" " + ("▇" * n), style="green" if a.change_pct < 0 else "red")
            t.append("\n")
        lines = t.split("\n")
        for line in lines:
            line.truncate(width, overflow="ellipsis")
        return Text("\n").join(lines)
