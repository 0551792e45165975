"""Shared pieces of the panes: the pane base class, glyphs and small formatters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Region
from textual.widget import Widget

SPARK = "▁▂▃▄▅▆▇█"
BAR_FULL, BAR_EMPTY = "█", "░"


@dataclass(frozen=True)
class SourceStatus:
    """How fresh a pane's data is: shown in its border, in words as well as colour."""

    fetched_at: float | None  #: last good data (None: never)
    error: str | None  #: the last poll's error (None: last poll succeeded)
    now: float
    polling: bool = False
    paused: bool = False
    where: str | None = None  #: the source's label, e.g. "mempool 127.0.0.1" (help: the URL)

    @property
    def age_s(self) -> float | None:
        return None if self.fetched_at is None else max(0.0, self.now - self.fetched_at)

    @property
    def reason(self) -> str | None:
        """The error without the source's address in front: a border has room for the
        reason ("HTTP 500 on /api/v1/blocks", "timed out"); the address is in the help."""
        return error_reason(self.error, self.where)

    def label(self) -> str:
        age = self.age_s
        age_txt = "no data" if age is None else fmt_age(age)
        if self.error:
            return f"✗ STALE {age_txt} · {self.reason}"
        if self.paused:
            return f"⏸ paused · {age_txt}"
        if age is None:
            return "connecting…" if self.polling else "waiting…"
        return age_txt


def error_reason(error: str | None, where: str | None) -> str | None:
    """``"mempool http://10.0.0.5:8999: HTTP 500 on …"`` -> ``"HTTP 500 on …"`` when the
    text starts with the source's kind (the first word of ``where``); otherwise as it is."""
    if not error or not where:
        return error
    kind = where.split(" ", 1)[0]
    if error.startswith(kind + " ") and ": " in error:
        return error.split(": ", 1)[1] or error
    return error


def set_border(widget: Widget, *, title: str | None = None,
               subtitle: str | None = None) -> None:
    """Set a border title/subtitle as plain text (never markup: it may quote remote text),
    and only when it changed.

    Assigning ``border_title`` makes Textual repaint the whole widget, and with it every
    child in it: a new total in the rigs pane's title would send the whole table to the
    terminal again.  Once the widget is on screen only its top (title) or bottom (subtitle)
    line is repainted instead."""
    shown: dict[str, str] = widget.__dict__.setdefault("_border_plain", {})
    for which, text in (("title", title), ("subtitle", subtitle)):
        if text is None or shown.get(which) == text:
            continue
        first = which not in shown
        shown[which] = text
        if first or not _set_border_line(widget, which, Content(text)):
            setattr(widget, f"border_{which}", Content(text))


def _set_border_line(widget: Widget, which: str, content: Content) -> bool:
    """Set the title or subtitle and mark only its line for repainting; False when that
    can't be done (not laid out yet, or no such private field in this Textual): the caller
    then assigns it the public way."""
    internal = f"_border_{which}"
    height = widget.outer_size.height
    if not widget.is_mounted or height < 2 or getattr(widget, internal, None) is None:
        return False
    setattr(widget, internal, widget.render_str(content).expand_tabs(4).split()[0])
    off = widget.content_offset
    y = 0 if which == "title" else height - 1
    # refresh() takes content coordinates; the border lies outside the content
    widget.refresh(Region(-off.x, y - off.y, widget.outer_size.width, 1))
    return True


def fmt_age(age_s: float) -> str:
    """Minute resolution, so a border that shows it is repainted at most once a minute."""
    if age_s < 60:
        return "<1m ago"
    m = int(age_s // 60)
    if m < 60:
        return f"{m}m ago"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m ago"
    return f"{h // 24}d {h % 24}h ago"


def sparkline(values: list[float], width: int) -> str:
    """Unicode block sparkline of the last ``width`` values, scaled to their min..max."""
    if width <= 0 or not values:
        return ""
    vals = values[-width:]
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        return SPARK[len(SPARK) // 2] * len(vals)
    top = len(SPARK) - 1
    return "".join(SPARK[round((v - lo) / (hi - lo) * top)] for v in vals)


def block_chart(values: list[float], width: int, height: int) -> list[str]:
    """A ``height``-row bar chart of the last ``width`` values (8 steps per row), top first."""
    if height <= 1:
        return [sparkline(values, width)]
    vals = values[-width:]
    if not vals:
        return [""] * height
    lo, hi = min(vals), max(vals)
    # Leave a floor so the smallest value still shows a sliver.
    base = lo - (hi - lo) * 0.1 if hi > lo else lo - 1.0
    steps = height * 8
    levels = [max(1, round((v - base) / (hi - base) * steps)) if hi > base else 1 for v in vals]
    rows = []
    for r in range(height - 1, -1, -1):
        line = []
        for lv in levels:
            fill = lv - r * 8
            line.append(" " if fill <= 0 else SPARK[min(8, fill) - 1])
        rows.append("".join(line))
    return rows


def resample(values: list[float], width: int) -> list[float]:
    """Average ``values`` into at most ``width`` buckets (keeps the shape of long series)."""
    n = len(values)
    if n <= width or width <= 0:
        return list(values)
    out = []
    for i in range(width):
        a, b = i * n // width, (i + 1) * n // width
        chunk = values[a:max(b, a + 1)]
        out.append(sum(chunk) / len(chunk))
    return out


def bar(fraction: float, width: int) -> str:
    fraction = min(1.0, max(0.0, fraction))
    full = round(fraction * width)
    return BAR_FULL * full + BAR_EMPTY * (width - full)


def signed(text: str) -> str:
    return text.replace("-", "−")


class Pane(Widget):
    """A bordered, focusable, passive view: it is given data and draws it; it never fetches."""

    can_focus = True
    DEFAULT_CSS = """
    Pane { border: round $panel-lighten-2; padding: 0 1; height: auto; }
    Pane:focus { border: round $accent; }
    Pane.-error { border: round $error; }
    """

    TITLE = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = self.TITLE
        self._status: SourceStatus | None = None
        self._body: Text | None = None
        self._body_width = -1
        self.lines_repainted = 0  #: for tests: how many content lines were redrawn

    def set_status(self, status: SourceStatus) -> None:
        self._status = status
        # Assign only on change: each assignment repaints the pane (and class changes restyle
        # the whole screen), which on a slow SSH link costs kilobytes per second.
        set_border(self, subtitle=status.label())
        if bool(status.error) != self.has_class("-error"):
            self.set_class(bool(status.error), "-error")

    def body(self, width: int) -> Text:  # pragma: no cover - overridden
        return Text("")

    def redraw(self) -> None:
        """Re-render the body and repaint only the lines that changed (bytes on a slow link)."""
        width = self.content_size.width
        old = self._body
        if width <= 0 or old is None or self._body_width != width:
            self._body = None
            self.refresh()
            return
        new = self.body(width)
        self._body = new
        old_lines, new_lines = old.split("\n"), new.split("\n")
        if len(old_lines) != len(new_lines):
            self.lines_repainted += len(new_lines)
            self.refresh()
            return
        for y, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)):
            if a != b:
                self.lines_repainted += 1
                self.refresh(Region(0, y, width, 1))

    def render(self) -> Text:
        width = max(1, self.content_size.width)
        if self._body is None or self._body_width != width:
            self._body = self.body(width)
            self._body_width = width
        return self._body


#: The history screens' keys: how far back (attached to a daemon: its store).
SPAN_BINDINGS = [Binding("h", "span('hour')", "hour"), Binding("d", "span('day')", "day"),
                 Binding("w", "span('week')", "week"), Binding("m", "span('month')", "month")]


class SpanKeys:
    """``h`` ``d`` ``w`` ``m`` on a history screen: the app decides what a span means."""

    app: Any

    def action_span(self, name: str) -> None:
        setter = getattr(self.app, "set_history_span", None)
        if setter is not None:
            setter(name)

class SortFilter:
    """Sorting and filtering keys of a table pane (the rigs, the sites).

    The pane has ``columns`` (each with a ``key``), ``sort_column``, ``sort_reverse`` and
    ``filter_text``, an ``Input`` for the filter, and two methods: ``_resort()`` applies a
    new order now, ``_refilter()`` shows the rows matching ``filter_text``.
    """

    columns: Any
    sort_column: str
    sort_reverse: bool
    filter_text: str
    _resort: Callable[[], None]
    _refilter: Callable[[], None]

    def cycle_sort(self, step: int) -> None:
        keys = [c.key for c in self.columns]
        i = keys.index(self.sort_column) if self.sort_column in keys else 0
        self.sort_column = keys[(i + step) % len(keys)]
        self._resort()

    def reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._resort()

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        if column not in {c.key for c in self.columns}:
            raise ValueError(column)
        if reverse is None:
            reverse = not self.sort_reverse if column == self.sort_column else False
        self.sort_column, self.sort_reverse = column, reverse
        self._resort()

    def start_filter(self) -> None:
        from textual.widgets import Input

        self.add_class("-filtering")  # type: ignore[attr-defined]
        box = self.query_one(Input)  # type: ignore[attr-defined]
        box.value = self.filter_text
        box.focus()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self._refilter()


#: Cells of padding each side of a table column.
CELL_PADDING = 1


def fit_columns(columns: Sequence[Any], width: int) -> tuple[Any, ...]:
    """The columns (each with ``key``, ``width``, ``priority``; priority 0 always shows)
    that fit ``width`` cells, most important first, kept in table order."""
    chosen: set[str] = set()
    used = 0
    for c in sorted(columns, key=lambda c: c.priority):
        need = c.width + 2 * CELL_PADDING
        if c.priority == 0 or used + need <= width:
            chosen.add(c.key)
            used += need
    return tuple(c for c in columns if c.key in chosen)
