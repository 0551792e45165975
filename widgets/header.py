"""The one-line header: source, tip, price, hashprice, data ages and the clock."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widget import Widget

from tui.fmt import fmt_duration
from widgets.base import SourceStatus


class HeaderBar(Widget):
    DEFAULT_CSS = """
    HeaderBar { dock: top; height: 1; background: $panel; color: $text; }
    """

    def __init__(self, *, id: str | None = "header") -> None:
        super().__init__(id=id)
        self.source = "—"
        self.tip: int | None = None
        self.price: float | None = None
        self.hashprice: float | None = None
        self.statuses: dict[str, SourceStatus] = {}
        self.now = time.time()
        self.paused = False
        self.alerts = (0, 0)  #: (critical, warning) active
        self.problems: tuple[str, ...] = ()  #: parts that fail now, e.g. ("notify",)
        self.link: str | None = None  #: attached to a daemon: its label (e.g. its host)
        self.link_down_s: float | None = None  #: seconds since the daemon last answered

    def set_data(self, *, source: str, tip: int | None, price: float | None,
                 hashprice: float | None) -> None:
        data = (source, tip, price, hashprice)
        if data != (self.source, self.tip, self.price, self.hashprice):
            self.source, self.tip, self.price, self.hashprice = data
            self.refresh()

    def set_statuses(self, statuses: dict[str, SourceStatus], now: float, paused: bool) -> None:
        self.statuses, self.now, self.paused = statuses, now, paused
        self.refresh()

    def set_problems(self, names: tuple[str, ...]) -> None:
        """Parts of minertop that fail now (notifications, the history): named in red."""
        if names != self.problems:
            self.problems = names
            self.refresh()

    def set_link(self, label: str | None, down_s: float | None) -> None:
        """Attached to a daemon (``label``); ``down_s``: it stopped answering that long ago."""
        if (label, down_s) != (self.link, self.link_down_s):
            self.link, self.link_down_s = label, down_s
            self.refresh()

    def set_alerts(self, critical: int, warning: int) -> None:
        if (critical, warning) != self.alerts:
            self.alerts = (critical, warning)
            self.refresh()

    def _ages(self, short: bool, faults_only: bool = False) -> Text:
        t = Text()
        for name, st in self.statuses.items():
            age = st.age_s
            if st.error:
                t.append(f" {name} ✗", style="bold red")
                if not short:
                    t.append(" " + ("—" if age is None else fmt_duration(age)), style="red")
            elif not faults_only:
                txt = "…" if age is None else fmt_duration(age)
                t.append(f" {name} {txt}", style="dim")
        return t

    def _left(self, width: int, drop: int) -> Text:
        """The left part; ``drop`` numbers taken away to make room (source, hashprice,
        price), never the faults: a daemon gone, a failing part, pause, alerts."""
        left = Text(" minertop" if width >= 100 and not drop else "", style="bold")
        parts = [
            self.source,
            "block " + ("—" if self.tip is None else f"{self.tip:,}"),
            "BTC " + ("—" if self.price is None else f"${self.price:,.0f}"),
            ("hashprice " if width >= 130 else "hp ")
            + ("—" if self.hashprice is None else f"${self.hashprice:,.1f}/PH/d"),
        ]
        if width < 90 or drop >= 1:
            parts = parts[1:]
        if drop >= 2:
            parts = parts[:-1]
        if drop >= 3:
            parts = parts[:1]
        if self.link is not None:
            # Attached: say so first, in words, at every width; a daemon that went away
            # outranks everything else on the line.
            if self.link_down_s is not None:
                left.append(f" ✗ DAEMON DOWN {fmt_duration(self.link_down_s)} ",
                            style="bold reverse red")
            else:
                left.append(" ⇄ " + (self.link if width >= 120 else "daemon"), style="bold")
        for name in self.problems:  # a part that fails (notify, history): before the numbers
            left.append(f" ✗ {name}", style="bold red")
        for i, p in enumerate(parts):
            left.append(" · " if i or (width >= 100 and not drop) else " ")
            left.append(p)
        if self.paused:
            left.append(" ⏸ PAUSED", style="bold reverse")
        crit, warn = self.alerts
        if crit or warn:
            left.append(" ")
            left.append(f" ✗ {crit + warn} alert{'s' if crit + warn > 1 else ''} ",
                        style="bold reverse red" if crit else "bold reverse yellow")
        return left

    def render(self) -> Text:
        width = self.size.width
        clock = time.strftime("%H:%M:%S", time.localtime(self.now))
        full = self._ages(short=width < 110)
        full.append(f"  {clock} ")
        faults = self._ages(short=True, faults_only=True)
        with_clock = faults.copy()
        with_clock.append(f"  {clock} ")
        # Shorten the least telling parts first; a failing source ("chain ✗") stays to the
        # last, at every width (only a truncation at the very end can cut it).
        attempts = [(0, full), (0, with_clock), (1, with_clock), (2, with_clock),
                    (2, faults + Text(" ")), (3, faults + Text(" "))]
        left, right = self._left(width, 0), full
        for drop, r in attempts:
            left, right = self._left(width, drop), r
            if left.cell_len + right.cell_len + 1 <= width:
                break
        gap = max(1, width - left.cell_len - right.cell_len)
        out = left + Text(" " * gap) + right
        out.truncate(width)
        return out
