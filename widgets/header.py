"""The one-line header: source, tip, price, hashprice, data ages and the clock."""

from __future__ import annotations

import time

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.widget import Widget

from tui.fmt import fmt_duration
from widgets.base import SourceStatus


class _Part(Widget):
    """One side of the header: a slice of its line."""

    DEFAULT_CSS = """
    _Part { height: 1; width: 1fr; background: $panel; color: $text; }
    """

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.text = Text()
        self._key: tuple[str, tuple[tuple[int, int, str], ...]] = ("", ())

    def show(self, text: Text) -> None:
        key = (text.plain, tuple((sp.start, sp.end, str(sp.style)) for sp in text.spans))
        if key != self._key:
            self._key, self.text = key, text
            self.refresh()

    def render(self) -> Text:
        return self.text


class HeaderBar(Widget):
    """The header line, drawn as two widgets: the numbers on the left, the data ages and
    the clock on the right.  The right part changes every second; being its own widget, only
    it is sent to the terminal then (Textual sends a line from the start of the widget that
    changed).  :meth:`render` gives the whole line (what the two parts show together)."""

    DEFAULT_CSS = """
    HeaderBar { dock: top; height: 1; layout: horizontal; background: $panel; color: $text; }
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
        self._split: int | None = None  #: the cell where the right part starts
        self._parts: tuple[_Part, ...] = ()  #: left and right, once composed

    def compose(self) -> ComposeResult:
        self._parts = (_Part(id="header-left"), _Part(id="header-right"))
        yield from self._parts

    def on_mount(self) -> None:
        self._paint()

    def on_resize(self) -> None:
        self._split = None
        self._paint()

    def _paint(self) -> None:
        """Split the line between the parts.  The split stays where it is while it falls in
        the gap between the two sides, so an age that gains a digit moves no boundary."""
        parts = self._parts
        width = self.size.width
        if not parts or not self.is_mounted or width <= 0:
            return
        left_end, right_start, text = self._line()
        split = self._split
        if split is None or not left_end <= split <= right_start:
            split = max(left_end, right_start - 4)
        left_part, right_part = parts[0], parts[1]
        if split != self._split:
            self._split = split
            right_part.styles.width = width - split
        pos = _char_index(text, split)
        head, tail = text.divide([pos]) if 0 < pos < len(text) else (
            (text, Text()) if pos >= len(text) else (Text(), text))
        left_part.show(head)
        right_part.show(tail)

    def _line(self) -> tuple[int, int, Text]:
        """Where the left side (the numbers) ends and the right side (ages, clock: it moves
        every second) starts, in cells, and the whole line; spaces fill between the two."""
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
        return min(left.cell_len, width), min(left.cell_len + gap, width), out

    def render(self) -> Text:
        return self._line()[2]

    def set_data(self, *, source: str, tip: int | None, price: float | None,
                 hashprice: float | None) -> None:
        data = (source, tip, price, hashprice)
        if data != (self.source, self.tip, self.price, self.hashprice):
            self.source, self.tip, self.price, self.hashprice = data
            self._paint()

    def set_statuses(self, statuses: dict[str, SourceStatus], now: float, paused: bool) -> None:
        """Called every second (the ages and the clock tick)."""
        self.statuses, self.now, self.paused = statuses, now, paused
        self._paint()

    def set_problems(self, names: tuple[str, ...]) -> None:
        """Parts of minertop that fail now (notifications, the history): named in red."""
        if names != self.problems:
            self.problems = names
            self._paint()

    def set_link(self, label: str | None, down_s: float | None) -> None:
        """Attached to a daemon (``label``); ``down_s``: it stopped answering that long ago."""
        if (label, down_s) != (self.link, self.link_down_s):
            self.link, self.link_down_s = label, down_s
            self._paint()

    def set_alerts(self, critical: int, warning: int) -> None:
        if (critical, warning) != self.alerts:
            self.alerts = (critical, warning)
            self._paint()

    def _ages(self, short: bool, faults_only: bool = False) -> Text:
        """The data ages; neighbours in one style are one run (each run costs its colour
        codes again on the terminal, every second)."""
        runs: list[tuple[str, str]] = []

        def add(text: str, style: str) -> None:
            if runs and runs[-1][1] == style:
                runs[-1] = (runs[-1][0] + text, style)
            else:
                runs.append((text, style))

        for name, st in self.statuses.items():
            age = st.age_s
            if st.error:
                add(f" {name} ✗", "bold red")
                if not short:
                    add(" " + ("—" if age is None else fmt_duration(age)), "red")
            elif not faults_only:
                add(f" {name} {'…' if age is None else fmt_duration(age)}", "dim")
        return Text.assemble(*runs)

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





def _char_index(text: Text, cells: int) -> int:
    """The index of the character at cell ``cells`` of ``text``."""
    n = 0
    for i, ch in enumerate(text.plain):
        if n >= cells:
            return i
        n += cell_len(ch)
    return len(text.plain)
