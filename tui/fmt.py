"""How durations and percentages are written, everywhere (pure: no I/O, no Textual)."""

from __future__ import annotations

__all__ = ["fmt_duration", "fmt_pct", "fmt_usd", "fmt_usd_kwh"]


def fmt_duration(seconds: float, short: bool = False) -> str:
    """``3d 8h35m``, ``8h35m``, ``7m12s``, ``42s``; ``short``: two units at most,
    ``3d08h``.  Negative durations read as ``0s``."""
    s = int(max(0, seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d{h:02d}h" if short else f"{d}d {h}h{m:02d}m"
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


def fmt_usd(x: float | None, nd: int = 0, signed: bool = False) -> str:
    """Dollars: ``$1,234``, ``−$1,234`` (a real minus sign, before the ``$``), ``—`` when
    unknown; ``signed``: ``+$1,234`` too; ``nd`` decimals."""
    if x is None:
        return "—"
    sign = "−" if x < 0 else ("+" if signed else "")
    return f"{sign}${abs(x):,.{nd}f}"


def fmt_usd_kwh(x: float | None, nd: int = 3, unit: bool = True) -> str:
    """A power price: ``$0.060/kWh``, ``−$0.012/kWh`` (a live feed can go below zero: the
    site is paid to draw power), ``—`` when unknown; ``unit=False``: no ``/kWh``."""
    if x is None:
        return "—"
    return f"{'−' if x < 0 else ''}${abs(x):.{nd}f}{'/kWh' if unit else ''}"


def fmt_pct(x: float | None, nd: int = 1) -> str:
    """``+1.2%`` / ``−13.90%`` (a real minus sign), ``—`` when unknown."""
    if x is None:
        return "—"
    return f"{x:+.{nd}f}%".replace("-", "−")
