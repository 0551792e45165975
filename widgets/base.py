"""Shared pieces of the panes: the pane base class, glyphs and small formatters."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from tui.dashboard import fmt_duration

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

    @property
    def age_s(self) -> float | None:
        return None if self.fetched_at is None else max(0.0, self.now - self.fetched_at)

    def label(self) -> str:
        age = self.age_s
        age_txt = "no data" if age is None else f"{fmt_duration(age)} ago"
        if self.error:
            return f"✗ STALE {age_txt} · {self.error}"
        if self.paused:
            return f"⏸ paused · {age_txt}"
        if age is None:
            return "connecting…" if self.polling else "waiting…"
        return age_txt


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

    def set_status(self, status: SourceStatus) -> None:
        self._status = status
        self.border_subtitle = status.label()
        self.set_class(bool(status.error), "-error")

    def body(self, width: int) -> Text:  # pragma: no cover - overridden
        return Text("")

    def render(self) -> Text:
        return self.body(max(1, self.content_size.width))
