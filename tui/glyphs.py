"""ASCII fallback for terminals or locales that can't show Unicode (no Textual import).

Rather than every pane knowing two sets of symbols, the app runs its finished frame through a
1:1 character map (see ``widgets.ascii.AsciiFilter``): borders, bars, sparklines, status
symbols and punctuation become ASCII of the same width, so nothing shifts.
"""

from __future__ import annotations

from collections.abc import Mapping

_PAIRS = {
    # box drawing (Textual's round/solid/heavy/double borders, tables, scrollbars)
    "─━═╌╍┄┅┈┉╴╶╸╺": "-",
    "│┃║╎╏┆┇┊┋╵╷╹╻▏▎▍▌▋▊▉▐▕": "|",
    "╭╮╰╯┌┐└┘├┤┬┴┼┏┓┗┛┣┫┳┻╋╔╗╚╝╠╣╦╩╬╒╓╕╖╘╙╛╜╞╟╡╢╤╥╧╨╪╫": "+",
    # sparkline levels, lowest to highest, then bar cells
    "▁": "_", "▂": ".", "▃": ":", "▄": "-", "▅": "=", "▆": "+", "▇": "*", "█": "#",
    "░▒▓": ".",
    # status and punctuation
    "●": "*", "■": "#", "◐": "o", "○": "o", "✗": "x", "✓": "v", "▲": "^", "▼": "v",
    "◀": "<", "▶": ">",
    "⏸": "|", "·": ".", "•": "*", "…": ".", "−": "-", "–": "-", "—": "-", "⇅": "!",
    "°": "o", "≥": ">", "≤": "<", "×": "x", "→": ">", "←": "<", "↑": "^", "↓": "v",
    "“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " ", "▔": "-",
}

ASCII_TABLE: dict[int, str] = {
    ord(ch): rep for chars, rep in _PAIRS.items() for ch in chars
}


def to_ascii(text: str) -> str:
    """Map to ASCII one character for one cell; anything unknown becomes ``?``."""
    out = text.translate(ASCII_TABLE)
    if out.isascii():
        return out
    return "".join(c if c.isascii() else "?" for c in out)


#: What Python itself puts in LC_CTYPE when it starts in the C locale (PEP 538 coercion).
_COERCED = {"C.UTF-8", "C.utf8", "UTF-8"}


def _utf8(value: str) -> bool:
    return "utf8" in value.lower().replace("-", "")


def locale_is_utf8(environ: Mapping[str, str]) -> bool:
    """What the C library would pick: LC_ALL, else LC_CTYPE, else LANG (unset = "C").

    Python started in the C locale sets LC_CTYPE=C.UTF-8 itself (PEP 538), so that value only
    counts when LANG doesn't say otherwise (``LANG=C minertop`` means ASCII).
    """
    if value := environ.get("LC_ALL"):
        return _utf8(value)
    ctype = environ.get("LC_CTYPE")
    lang = environ.get("LANG")
    if ctype and not (ctype in _COERCED and lang):
        return _utf8(ctype)
    if lang:
        return _utf8(lang)
    return ctype is not None and bool(ctype) and _utf8(ctype)
