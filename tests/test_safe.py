"""Untrusted text is shown literally."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from tui.safe import safe


def test_escapes_and_markup_are_shown_literally() -> None:
    evil = "[bold red]pwn[/]\x1b[2J\x1b]0;title\x07\r\n\u202eabc\x9b"
    s = safe(evil)
    assert "\x1b" not in s and "\x07" not in s and "\n" not in s and "\x9b" not in s
    assert s.startswith("[bold red]pwn[/]\\x1b[2J\\x1b]0;title\\x07\\x0d\\x0a\\u202eabc\\x9b")
    console = Console(record=True, width=200, color_system=None)
    console.print(Text(s))
    assert "[bold red]pwn[/]" in console.export_text()


def test_none_and_long_text() -> None:
    assert safe(None) == ""
    assert safe("x" * 500, limit=10) == "x" * 9 + "…"
    assert safe("Antminer S19j Pro") == "Antminer S19j Pro"
