"""The ASCII fallback keeps widths and leaves nothing non-ASCII."""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color

from tui.glyphs import locale_is_utf8, to_ascii
from widgets.ascii import AsciiFilter


def test_to_ascii_is_one_cell_for_one_cell() -> None:
    s = "╭─ Rigs · 48 ─╮│▁▂▃▄▅▆▇█░│ ● ok ◐ stale ✗ offline ▲▼ ⏸ −12.1% … ⇅ 85°C"
    a = to_ascii(s)
    assert a.isascii() and len(a) == len(s)
    assert a.startswith("+- Rigs . 48 -+|_.:-=+*#.| * ok o stale x offline ^v | -12.1% .")
    assert to_ascii("日本") == "??"


def test_filter_handles_wide_characters() -> None:
    segs = AsciiFilter().apply([Segment("日x█")], Color(0, 0, 0))
    assert segs[0].text == "??x#"


def test_locale_detection() -> None:
    assert locale_is_utf8({"LANG": "en_US.UTF-8"})
    assert locale_is_utf8({"LC_ALL": "C.utf8", "LANG": "C"})
    assert not locale_is_utf8({"LC_ALL": "C", "LANG": "en_US.UTF-8"})
    assert not locale_is_utf8({"LANG": "en_US.ISO-8859-1"})
    assert not locale_is_utf8({})
    assert locale_is_utf8({"LC_CTYPE": "de_DE.UTF-8"})
    # Python coerces a C locale to LC_CTYPE=C.UTF-8 (PEP 538); LANG=C still means ASCII.
    assert not locale_is_utf8({"LC_CTYPE": "C.UTF-8", "LANG": "C"})
    assert locale_is_utf8({"LC_CTYPE": "C.UTF-8"})
