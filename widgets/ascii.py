"""The frame filter behind ``--ascii`` (and non-UTF-8 locales)."""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from tui.glyphs import ASCII_TABLE


class AsciiFilter(LineFilter):
    """Replaces every non-ASCII character of a frame by ASCII of the same width."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        out = []
        for seg in segments:
            text = seg.text
            if not text.isascii():
                text = text.translate(ASCII_TABLE)
                if not text.isascii():
                    text = "".join(c if c.isascii() else "?" * cell_len(c) for c in text)
                seg = Segment(text, seg.style, seg.control)
            out.append(seg)
        return out
