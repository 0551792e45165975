"""The site's power contract: a flat price, time-of-use periods, a live price feed.

Pure computation (no I/O, no Textual): the config builds these objects, the engine asks them
for the price in force at an instant.

**Periods** (``[[site.tariff]]``) are given in the site's local wall-clock time
(``[site] timezone``, an IANA name; default: the machine's local zone):

* ``days``: ``"mon-fri"``, ``"sat,sun"``, ``"mon,wed-fri"``, ``"fri-mon"`` (a range may wrap
  past Sunday), ``"weekdays"``, ``"weekends"``, ``"*"``/``"all"``/``"daily"``; full day names
  work too (``"monday"``), in any case.
* ``hours``: ``"start-end"``, ``[start, end)`` in local hours 0–24, whole hours or
  ``H:MM`` (any minute: ``"9:30-17:15"``).  ``"0-24"`` is the whole day; an end at or before
  the start runs across midnight: ``"22-6"`` is 22:00 to 06:00 the next morning and belongs to
  the day it *starts* on (``days = "fri"``, ``hours = "22-6"`` is Friday 22:00 to Saturday
  06:00).  ``"20-0"`` means ``"20-24"``.  Start and end can't be equal.
* A period applies while the local wall clock is inside it, so ``"14-20"`` is 14:00–20:00
  on the clock on both sides of a DST change.  On the spring-forward night the skipped hour
  never happens: ``"0-2"`` ends at the jump (02:00 standard time = 03:00 daylight time), and a
  period inside the gap (``"2-3"``) doesn't apply that night; on the fall-back night the
  repeated hour is inside (or outside) a period both times round, so ``"0-2"`` lasts 3 hours.
* Outside every period the flat ``electricity_usd_kwh`` (``base_usd_kwh``) is in force.
  Overlapping periods are rejected by the config (:func:`overlap`), so a price is never
  ambiguous; a :class:`Tariff` built in code with overlaps uses the first listed period.

**Feed** (``[site.power_feed]``, :class:`PowerFeedConfig`): polled by
:mod:`tui.sources.power_feed`; while its last price is fresh (:func:`feed_is_fresh`: at most
:attr:`PowerFeedConfig.stale_after_s` old) it wins over the tariff, else the tariff (or the
flat price) is the fallback: :func:`tariff_now`.

A rig with its own ``electricity_usd_kwh`` ignores all of this (see
``SiteConfig.electricity_for``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Literal, NamedTuple

__all__ = [
    "DAY_NAMES",
    "MAX_USD_KWH",
    "PowerFeedConfig",
    "PowerPriceSnapshot",
    "PriceNow",
    "Tariff",
    "TariffPeriod",
    "ZoneError",
    "feed_is_fresh",
    "format_days",
    "format_hours",
    "load_zone",
    "overlap",
    "parse_days",
    "parse_hours",
    "parse_path",
    "tariff_now",
]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: The highest power price accepted anywhere (config, feed), US$ per kWh.
MAX_USD_KWH = 10.0
#: How far :meth:`Tariff.next_change` looks ahead.
SEARCH_S = 8 * 86_400
_DAY_MIN = 1440
_WEEK_MIN = 7 * _DAY_MIN
_EPOCH = datetime(1970, 1, 1)

PriceSource = Literal["feed", "tariff", "flat"]
PowerUnit = Literal["usd_kwh", "usd_mwh"]
POWER_UNITS: tuple[str, ...] = ("usd_kwh", "usd_mwh")


# --------------------------------------------------------------------------- time zones


class ZoneError(ValueError):
    """An unknown time zone name (or no time zone database on this machine)."""

    def __init__(
        self, message: str, *, suggestion: str | None = None, no_database: bool = False
    ) -> None:
        super().__init__(message)
        self.suggestion = suggestion  #: a known name close to the one given
        self.no_database = no_database  #: no zone works here: tzdata is missing


@lru_cache(maxsize=64)
def load_zone(name: str) -> tzinfo:
    """The IANA zone ``name`` (``ZoneError`` with a one-line reason if it can't be used)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeError):
        pass
    try:
        ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ZoneError(
            "this machine has no time zone database, so no time zone can be used: install "
            "the tzdata package (pip install tzdata) or your system's tzdata",
            no_database=True,
        ) from None
    known = sorted(available_timezones())
    folded = {k.lower(): k for k in known}
    close = [folded[name.lower()]] if name.lower() in folded else difflib.get_close_matches(
        name, known, n=1, cutoff=0.75)
    hint = f' (did you mean "{close[0]}"?)' if close else ""
    raise ZoneError(
        f'unknown time zone {name!r}; expected an IANA name like "America/Chicago"{hint}',
        suggestion=close[0] if close else None,
    )


class _Zone:
    """Local wall-clock time of an instant and back: an IANA zone, or the machine's zone."""

    def __init__(self, tz: tzinfo | None) -> None:
        self.tz = tz

    def local(self, t: float) -> datetime:
        """The naive local wall-clock time at unix ``t`` (``fold`` set in a repeated hour)."""
        if self.tz is None:
            return datetime.fromtimestamp(t)
        return datetime.fromtimestamp(t, self.tz).replace(tzinfo=None)

    def unix(self, wall: datetime, fold: int) -> float:
        """The instant of a naive wall-clock time (either side of a repeated hour: ``fold``).

        A wall time that doesn't exist (skipped by a DST jump) gives some instant near the
        jump; callers treat it as a candidate only (see :meth:`Tariff.next_change`).
        """
        if self.tz is None:
            return wall.replace(fold=fold).timestamp()
        return wall.replace(tzinfo=self.tz, fold=fold).timestamp()

    def offset(self, t: float) -> float:
        """Seconds local time is ahead of UTC at ``t``."""
        return (self.local(t) - _EPOCH).total_seconds() - math.floor(t)

    def transitions(self, lo: float, hi: float) -> list[float]:
        """Instants (whole seconds) in ``(lo, hi]`` where the UTC offset changes."""
        out: list[float] = []
        step = 3600
        a = math.floor(lo)
        off_a = self.offset(a)
        while a < hi:
            b = min(a + step, math.ceil(hi))
            off_b = self.offset(b)
            if off_b != off_a:
                x, y = a, b  # offset(x) == off_a != offset(y)
                while y - x > 1:
                    m = (x + y) // 2
                    if self.offset(m) == off_a:
                        x = m
                    else:
                        y = m
                out.append(float(y))
            a, off_a = b, off_b
        return out


# --------------------------------------------------------------------------- parsing

_DAY_TOKEN = {n: i for names in (DAY_NAMES, _FULL_NAMES) for i, n in enumerate(names)}
_DAY_SETS = {
    "*": frozenset(range(7)),
    "all": frozenset(range(7)),
    "daily": frozenset(range(7)),
    "every day": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
    "weekend": frozenset({5, 6}),
}
_DASHES = re.compile(r"\s*[-–—]\s*")


def parse_days(text: str) -> frozenset[int]:
    """``"mon-fri"`` → ``{0, 1, 2, 3, 4}`` (0 = Monday .. 6 = Sunday); ``ValueError`` if bad.

    A comma list of days and ranges (``"mon,wed-fri"``); a range may wrap (``"fri-mon"``);
    ``"*"``, ``"all"``, ``"daily"``, ``"weekdays"``, ``"weekends"``; case-insensitive.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("no days given")
    out: set[int] = set()
    for token in text.lower().split(","):
        token = token.strip()
        if token in _DAY_SETS:
            out |= _DAY_SETS[token]
            continue
        ends = _DASHES.split(token)
        if len(ends) == 1 and ends[0] in _DAY_TOKEN:
            out.add(_DAY_TOKEN[ends[0]])
        elif len(ends) == 2 and ends[0] in _DAY_TOKEN and ends[1] in _DAY_TOKEN:
            a, b = _DAY_TOKEN[ends[0]], _DAY_TOKEN[ends[1]]
            out.update((a + k) % 7 for k in range((b - a) % 7 + 1))
        else:
            raise ValueError(f"not a day or a range of days: {token!r}")
    return frozenset(out)


_CLOCK = r"(\d{1,2})(?::(\d{2}))?"
_HOURS = re.compile(rf"\s*{_CLOCK}\s*[-–—]\s*{_CLOCK}\s*")


def parse_hours(text: str) -> tuple[float, float]:
    """``"14-20"`` → ``(14.0, 20.0)``; ``"9:30-17:15"`` → ``(9.5, 17.25)``; ``ValueError``.

    Local hours 0–24, ``[start, end)``.  The end may be 24 (or ``24:00``), the start may not;
    an end of 0 means midnight at the end of the day (24).  An end before the start runs
    across midnight (``"22-6"``); start == end is rejected (empty, or did you mean 0-24?).
    """
    m = _HOURS.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError("not hours like 14-20")
    h1, m1, h2, m2 = m.groups()
    start = _clock(h1, m1)
    end = _clock(h2, m2)
    if start is None or end is None:
        raise ValueError("an hour outside 0–24 or a minute outside 00–59")
    if start >= _DAY_MIN:
        raise ValueError("a period can't start at 24")
    if end == start:
        raise ValueError("start and end are the same (use 0-24 for the whole day)")
    if end == 0:
        end = _DAY_MIN
    return start / 60, end / 60


def _clock(h: str, m: str | None) -> int | None:
    hour, minute = int(h), int(m) if m is not None else 0
    if not 0 <= minute <= 59 or not 0 <= hour <= 24 or (hour == 24 and minute):
        return None
    return hour * 60 + minute


def format_days(days: Iterable[int]) -> str:
    """``{0, 1, 2, 3, 4}`` → ``"mon-fri"``; ``{5, 6}`` → ``"sat-sun"``; all → ``"daily"``."""
    ds = sorted(set(days))
    if len(ds) == 7:
        return "daily"
    runs: list[list[int]] = []
    for d in ds:
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 6:  # wraps past Sunday
        runs[0] = runs.pop() + runs[0]
    parts = [DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}"
             for r in runs]
    return ",".join(parts)


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_hours(start_h: float, end_h: float) -> str:
    """``(14.0, 20.0)`` → ``"14:00–20:00"``."""
    return f"{_hm(round(start_h * 60))}–{_hm(round(end_h * 60))}"


def parse_path(text: str) -> tuple[str, ...]:
    """A dotted path into a JSON reply: ``"data.0.price"`` → ``("data", "0", "price")``.

    A segment of digits (optionally ``-``: ``-1`` is the last item) indexes a list, any
    segment names an object key; ``ValueError`` for an empty path or an empty segment.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty path")
    parts = tuple(p.strip() for p in text.strip().split("."))
    if any(not p for p in parts):
        raise ValueError("an empty segment: two dots in a row, or a dot at an end")
    return parts


# --------------------------------------------------------------------------- the tariff


@dataclass(frozen=True)
class TariffPeriod:
    """One time-of-use period: ``days`` (0 = Monday .. 6 = Sunday), ``[start_h, end_h)``
    in local hours (``end_h <= start_h``: across midnight, owned by the starting day)."""

    days: frozenset[int]
    start_h: float
    end_h: float
    usd_kwh: float
    name: str | None = None  #: a label for the dashboard ("peak"); optional

    def __post_init__(self) -> None:
        if not self.days or not set(self.days) <= set(range(7)):
            raise ValueError(f"days must be a non-empty subset of 0..6, got {set(self.days)}")
        if not (0 <= self.start_h < 24 and 0 < self.end_h <= 24 and self.start_h != self.end_h):
            raise ValueError(f"bad hours {self.start_h!r}-{self.end_h!r}")
        if not (math.isfinite(self.usd_kwh) and 0 <= self.usd_kwh <= MAX_USD_KWH):
            raise ValueError(f"usd_kwh must be 0–{MAX_USD_KWH:g}, got {self.usd_kwh!r}")
        object.__setattr__(self, "days", frozenset(self.days))

    @property
    def start_min(self) -> int:
        return round(self.start_h * 60)

    @property
    def end_min(self) -> int:
        return round(self.end_h * 60)

    @property
    def overnight(self) -> bool:
        """Runs across midnight into the next day."""
        return self.end_min <= self.start_min

    def matches(self, weekday: int, minute: float) -> bool:
        """In force at local ``weekday`` (0 = Monday) and ``minute`` of the day (0–1440)."""
        s, e = self.start_min, self.end_min
        if not self.overnight:
            return weekday in self.days and s <= minute < e
        return (weekday in self.days and minute >= s) or (
            (weekday - 1) % 7 in self.days and minute < e)

    def week_spans(self) -> list[tuple[int, int]]:
        """``[a, b)`` minute-of-week spans (0 = Monday 00:00) it covers, wrapping at the end."""
        out: list[tuple[int, int]] = []
        s, e = self.start_min, self.end_min
        for d in sorted(self.days):
            a = d * _DAY_MIN + s
            b = d * _DAY_MIN + (e if not self.overnight else _DAY_MIN + e)
            if b <= _WEEK_MIN:
                out.append((a, b))
            else:  # Sunday night into Monday
                out += [(a, _WEEK_MIN), (0, b - _WEEK_MIN)]
        return out

    def describe(self) -> str:
        """``"mon-fri 14:00–20:00 $0.19/kWh"``."""
        return f"{format_days(self.days)} {format_hours(self.start_h, self.end_h)} " \
               f"${self.usd_kwh:g}/kWh"


def overlap(a: TariffPeriod, b: TariffPeriod) -> str | None:
    """Where two periods overlap in the week, e.g. ``"tue 14:00–16:00"``; None if nowhere."""
    best: tuple[int, int] | None = None
    for a0, a1 in a.week_spans():
        for b0, b1 in b.week_spans():
            lo, hi = max(a0, b0), min(a1, b1)
            if lo < hi and (best is None or lo < best[0]):
                best = (lo, hi)
    if best is None:
        return None
    lo, hi = best
    day = DAY_NAMES[lo // _DAY_MIN]
    end = hi - (lo // _DAY_MIN) * _DAY_MIN
    return f"{day} {_hm(lo % _DAY_MIN)}–{_hm(end) if end <= _DAY_MIN else _hm(end - _DAY_MIN)}"


@dataclass(frozen=True)
class Tariff:
    """Time-of-use periods over a flat base price, in a time zone (None: the machine's)."""

    periods: tuple[TariffPeriod, ...]
    base_usd_kwh: float
    tz: str | None = None
    _zone: _Zone = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "periods", tuple(self.periods))
        if not (math.isfinite(self.base_usd_kwh) and 0 <= self.base_usd_kwh <= MAX_USD_KWH):
            raise ValueError(f"base_usd_kwh must be 0–{MAX_USD_KWH:g}, got {self.base_usd_kwh!r}")
        zone = load_zone(self.tz) if self.tz is not None else None  # ZoneError if unknown
        object.__setattr__(self, "_zone", _Zone(zone))

    def local(self, unix: float) -> datetime:
        """The site's local wall-clock time at ``unix`` (naive)."""
        return self._zone.local(unix)

    def period_at(self, unix: float) -> TariffPeriod | None:
        """The (first) period in force at ``unix``, or None (the base price applies)."""
        wall = self._zone.local(unix)
        minute = wall.hour * 60 + wall.minute + (wall.second + wall.microsecond / 1e6) / 60
        wd = wall.weekday()
        for p in self.periods:
            if p.matches(wd, minute):
                return p
        return None

    def price_at(self, unix: float) -> float:
        """US$/kWh in force at ``unix``: the matching period's, else the base price."""
        p = self.period_at(unix)
        return self.base_usd_kwh if p is None else p.usd_kwh

    def next_change(self, unix: float) -> float | None:
        """The next instant after ``unix`` at which the price in force changes (up to 8 days
        ahead), or None.  Always a real instant: a boundary skipped by a DST jump changes
        the price at the jump itself."""
        if not self.periods:
            return None
        now_price = self.price_at(unix)
        if all(p.usd_kwh == now_price for p in self.periods) and now_price == self.base_usd_kwh:
            return None
        horizon = unix + SEARCH_S
        for t in self._candidates(unix, horizon):
            if self.price_at(t) != now_price:
                return t
        return None

    def next_price(self, unix: float) -> tuple[float, float] | None:
        """``(when, usd_kwh)`` of the next change after ``unix`` (see :meth:`next_change`)."""
        when = self.next_change(unix)
        return None if when is None else (when, self.price_at(when))

    def _candidates(self, lo: float, hi: float) -> list[float]:
        """Every instant in ``(lo, hi]`` where the price may change (a superset, sorted)."""
        marks = {0, _DAY_MIN}
        for p in self.periods:
            marks.update((p.start_min, p.end_min))
        first = self._zone.local(lo).date() - timedelta(days=1)
        out: set[float] = set()
        for k in range(int((hi - lo) // 86_400) + 4):
            day = datetime.combine(first + timedelta(days=k), datetime.min.time())
            for mark in marks:
                wall = day + timedelta(minutes=mark)
                for fold in (0, 1):
                    t = self._zone.unix(wall, fold)
                    if lo < t <= hi:
                        out.add(t)
        out.update(t for t in self._zone.transitions(lo, hi) if t <= hi)
        return sorted(out)

    def describe(self) -> str:
        zone = self.tz or "local time"
        parts = [p.describe() for p in self.periods]
        return f"{'; '.join(parts)}; else ${self.base_usd_kwh:g}/kWh ({zone})"


# --------------------------------------------------------------------------- the feed


@dataclass(frozen=True)
class PowerFeedConfig:
    """``[site.power_feed]``: a live power price read from ``path`` of the JSON at ``url``."""

    url: str
    path: tuple[str, ...]  #: parsed dotted path (see :func:`parse_path`)
    unit: PowerUnit = "usd_kwh"
    interval_s: float = 300.0
    #: name of an environment variable holding a bearer token (sent as Authorization)
    token_env: str | None = None

    @property
    def path_text(self) -> str:
        return ".".join(self.path)

    @property
    def stale_after_s(self) -> float:
        """A price older than this (three missed polls) is stale: the tariff takes over."""
        return 3 * self.interval_s


@dataclass(frozen=True)
class PowerPriceSnapshot:
    """One good reading of the power price feed."""

    usd_kwh: float
    fetched_at: float  #: unix s
    source: str  #: the feed's label, e.g. "power feed 127.0.0.1:8997"
    value: float | None = None  #: the number read, in ``unit``
    unit: str = "usd_kwh"


def feed_is_fresh(snap: PowerPriceSnapshot | None, now: float, stale_after_s: float) -> bool:
    """A reading no older than ``stale_after_s`` (and not from the future by over a minute)."""
    if snap is None:
        return False
    age = now - snap.fetched_at
    return -60.0 <= age <= stale_after_s


class PriceNow(NamedTuple):
    """The power price in force: US$/kWh, where it comes from, when it next changes."""

    usd_kwh: float
    source: PriceSource  #: "feed", "tariff" (a period or its base price) or "flat"
    next_change_unix: float | None  #: None: unknown (a feed) or never (flat, 8 days)


def tariff_now(
    tariff: Tariff | float,
    feed_price: float | None,
    feed_fresh: bool,
    now: float,
) -> PriceNow:
    """The price in force at ``now``: a fresh feed's, else the tariff's, else the flat one.

    ``tariff``: a :class:`Tariff`, or a flat price (a float: no ``[[site.tariff]]``).  A
    tariff without periods counts as flat.  With the feed in force the next change is
    unknown (None).
    """
    if (feed_fresh and feed_price is not None and math.isfinite(feed_price)
            and abs(feed_price) <= MAX_USD_KWH):  # below 0 too: paid to draw power
        return PriceNow(float(feed_price), "feed", None)
    if isinstance(tariff, Tariff):
        if not tariff.periods:
            return PriceNow(tariff.base_usd_kwh, "flat", None)
        return PriceNow(tariff.price_at(now), "tariff", tariff.next_change(now))
    return PriceNow(float(tariff), "flat", None)


def periods_overlaps(periods: Sequence[TariffPeriod]) -> list[tuple[int, int, str]]:
    """``(i, j, where)`` for each pair of overlapping periods (i < j)."""
    out = []
    for j, b in enumerate(periods):
        for i in range(j):
            where = overlap(periods[i], b)
            if where is not None:
                out.append((i, j, where))
    return out

