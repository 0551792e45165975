"""Recent blocks: height, time, interval against 600 s, difficulty, fees."""

from __future__ import annotations

import time

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from tui.fmt import fmt_duration
from tui.model import ChainSnapshot
from widgets.base import Pane, bar


class FillBar:
    """A bar that fills whatever width its table cell gets."""

    def __init__(self, fraction: float, style: str) -> None:
        self.fraction = fraction
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(bar(self.fraction, options.max_width), style=self.style)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(4, options.max_width)


class BlocksPane(Pane):
    TITLE = "Recent blocks"
    DEFAULT_CSS = "BlocksPane { height: 1fr; }"

    def __init__(self, *, id: str | None = "blocks") -> None:
        super().__init__(id=id)
        self.snap: ChainSnapshot | None = None

    def show(self, snap: ChainSnapshot) -> None:
        old = self.snap
        self.snap = snap
        same = old is not None and old.tip_height == snap.tip_height and (
            old.blocks[-60:] == snap.blocks[-60:])
        if not same:
            self.refresh()

    def render(self) -> Table | Text:  # type: ignore[override]
        s = self.snap
        if s is None:
            return Text("waiting for chain data…", style="dim")
        width = self.content_size.width
        rows = max(1, self.content_size.height - 1)
        wide = width >= 90
        table = Table(box=None, expand=True, padding=(0, 1), show_edge=False)
        table.add_column("height", justify="right", no_wrap=True)
        table.add_column("time", no_wrap=True)
        table.add_column("interval", justify="right", no_wrap=True)
        table.add_column("bar: 0–40 min", no_wrap=True, ratio=1)
        if wide:
            table.add_column("difficulty", justify="right", no_wrap=True)
        table.add_column("fees BTC", justify="right", no_wrap=True)
        for h in range(s.tip_height, s.tip_height - rows, -1):
            b, prev = s.block(h), s.block(h - 1)
            if b is None:
                break
            stamp = time.strftime("%H:%M:%S", time.localtime(b.time))
            vis: RenderableType
            if prev is None:
                iv, vis = Text("—"), Text("")
            else:
                d = b.time - prev.time
                if d < 0:
                    iv = Text(f"−{fmt_duration(-d)} ⇅", style="yellow")
                    vis = Text("timestamp earlier than previous", style="dim")
                else:
                    iv = Text(fmt_duration(d), style="bold" if d > 1800 else "")
                    vis = FillBar(min(d, 2400) / 2400, "red" if d > 1200 else "cyan")
            fees = "—" if b.fees_sat is None else f"{b.fees_sat / 1e8:.3f}"
            cells: list[RenderableType] = [f"{h:,}", stamp, iv, vis]
            if wide:
                cells.append(f"{b.difficulty / 1e12:,.2f} T")
            cells.append(fees)
            table.add_row(*cells)
        return table
