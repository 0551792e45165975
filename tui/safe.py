"""Showing untrusted text (anything a rig or a remote API sends) safely.

Rich markup is never parsed from such text (it always goes into ``Text(...)`` as plain text),
and control characters (ESC, CSI, BEL, newlines, ...) are made visible here so a rig can't
move the cursor, retitle the terminal or hide itself.
"""

from __future__ import annotations

_MAX = 200


def safe(text: object, limit: int = _MAX) -> str:
    """``text`` as one printable line: C0/C1 controls and DEL become ``\\xNN`` escapes."""
    s = "" if text is None else str(text)
    out = []
    for ch in s[: limit * 4]:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0:
            out.append(f"\\x{o:02x}")
        elif ch in "\u2028\u2029\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069":
            out.append(f"\\u{o:04x}")  # line separators and bidi overrides
        else:
            out.append(ch)
    result = "".join(out)
    return result if len(result) <= limit else result[: limit - 1] + "…"
