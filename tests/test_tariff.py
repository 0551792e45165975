"""Time-of-use tariffs, hand-worked: periods, across midnight, week wrap, DST, the feed."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

import pytest

from tui.tariff import (
    PowerPriceSnapshot,
    PriceNow,
    Tariff,
    TariffPeriod,
    ZoneError,
    feed_is_fresh,
    format_days,
    format_hours,
    load_zone,
    overlap,
    parse_days,
    parse_hours,
    parse_path,
    tariff_now,
)

CHI = "America/Chicago"
ALL = frozenset(range(7))
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def utc(*a: int) -> float:
    """Unix time of a UTC wall-clock time (the expected instants are worked out by hand)."""
    return datetime(*a, tzinfo=timezone.utc).timestamp()


def chi(*a: int) -> float:
    """Unix time of a Chicago wall-clock time outside any DST change (CST = UTC-6, CDT = -5)."""
    return datetime(*a, tzinfo=load_zone(CHI)).timestamp()


def peak() -> Tariff:
    """A weekday peak 14-20 at 0.19 over a flat 0.06, in Chicago."""
    return Tariff((TariffPeriod(parse_days("mon-fri"), 14, 20, 0.19),), 0.06, CHI)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", {MON, TUE, WED, THU, FRI}),
        ("sat,sun", {SAT, SUN}),
        ("mon,wed-fri", {MON, WED, THU, FRI}),
        ("fri-mon", {FRI, SAT, SUN, MON}),  # a range wraps past Sunday
        ("*", set(ALL)),
        ("all", set(ALL)),
        ("Daily", set(ALL)),
        ("weekdays", {MON, TUE, WED, THU, FRI}),
        ("weekends", {SAT, SUN}),
        (" Monday - Wednesday , sun ", {MON, TUE, WED, SUN}),
        ("tue-tue", {TUE}),
    ],
)
def test_parse_days(text: str, days: set[int]) -> None:
    assert parse_days(text) == frozenset(days)


@pytest.mark.parametrize("text", ["", " ", "funday", "mon-", "mon-fri-sat", "mon;tue", "1-5"])
def test_parse_days_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_days(text)


@pytest.mark.parametrize(
    ("text", "hours"),
    [
        ("14-20", (14.0, 20.0)),
        ("22-6", (22.0, 6.0)),  # across midnight
        ("0-24", (0.0, 24.0)),
        ("9:30-17:15", (9.5, 17.25)),
        ("09:30 - 24:00", (9.5, 24.0)),
        ("20-0", (20.0, 24.0)),  # an end of 0 is midnight at the end of the day
        ("23:45–0:15", (23.75, 0.25)),  # an en dash, across midnight
    ],
)
def test_parse_hours(text: str, hours: tuple[float, float]) -> None:
    assert parse_hours(text) == hours


@pytest.mark.parametrize(
    "text", ["25-3", "14-14", "0-0", "24-6", "9:60-10", "10:5-11", "14", "", "a-b", "-1-3",
             "24:30-1", "14-20-22"],
)
def test_parse_hours_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(text)


def test_parse_path() -> None:
    assert parse_path("data.0.price") == ("data", "0", "price")
    assert parse_path(" price ") == ("price",)
    assert parse_path("series.-1.v") == ("series", "-1", "v")
    for bad in ("", "a..b", ".a", "a."):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_formatting() -> None:
    assert format_days(parse_days("mon-fri")) == "mon-fri"
    assert format_days(parse_days("fri-mon")) == "fri-mon"
    assert format_days(parse_days("mon,wed-fri")) == "mon,wed-fri"
    assert format_days(ALL) == "daily"
    assert format_hours(9.5, 17.25) == "09:30–17:15"
    assert format_hours(22, 6) == "22:00–06:00"
    assert peak().periods[0].describe() == "mon-fri 14:00–20:00 $0.19/kWh"


# --------------------------------------------------------------------------- a weekday peak


def test_weekday_peak_prices() -> None:
    t = peak()
    # 2026-02-03 is a Tuesday (CST, UTC-6): 14:00 local is 20:00 UTC
    assert t.price_at(utc(2026, 2, 3, 19, 59, 59)) == 0.06  # Tue 13:59:59
    assert t.price_at(utc(2026, 2, 3, 20, 0, 0)) == 0.19  # Tue 14:00:00
    assert t.price_at(utc(2026, 2, 4, 1, 59, 59)) == 0.19  # Tue 19:59:59
    assert t.price_at(utc(2026, 2, 4, 2, 0, 0)) == 0.06  # Tue 20:00:00
    assert t.price_at(utc(2026, 2, 7, 21, 0, 0)) == 0.06  # Sat 15:00: weekends are off-peak
    assert t.period_at(utc(2026, 2, 3, 20)) is t.periods[0]
    assert t.period_at(utc(2026, 2, 7, 21)) is None


def test_weekday_peak_next_change() -> None:
    t = peak()
    # Fri 2026-02-06 21:00 CST -> Mon 2026-02-09 14:00 CST = 20:00 UTC
    assert t.next_change(utc(2026, 2, 7, 3, 0)) == utc(2026, 2, 9, 20, 0)
    # inside the peak: Tue 15:00 -> Tue 20:00 (= Wed 02:00 UTC)
    assert t.next_change(utc(2026, 2, 3, 21, 0)) == utc(2026, 2, 4, 2, 0)
    # exactly at a change: the *next* one
    assert t.next_change(utc(2026, 2, 3, 20, 0)) == utc(2026, 2, 4, 2, 0)
    # Fri 2026-03-06 21:00 CST -> Mon 2026-03-09 14:00 CDT (DST began Sunday) = 19:00 UTC
    assert t.next_change(utc(2026, 3, 7, 3, 0)) == utc(2026, 3, 9, 19, 0)
    assert t.next_price(utc(2026, 3, 7, 3, 0)) == (utc(2026, 3, 9, 19, 0), 0.19)
    assert t.local(utc(2026, 3, 9, 19, 0)) == datetime(2026, 3, 9, 14, 0)


# --------------------------------------------------------------------------- across midnight


def test_overnight_period_belongs_to_the_day_it_starts_on() -> None:
    # Sunday 22:00 to Monday 06:00 (UTC: no DST), over the end of the week
    t = Tariff((TariffPeriod(frozenset({SUN}), 22, 6, 0.04),), 0.06, "UTC")
    # 2026-02-08 is a Sunday, 2026-02-09 a Monday
    assert t.price_at(utc(2026, 2, 8, 21, 59, 59)) == 0.06
    assert t.price_at(utc(2026, 2, 8, 22, 0)) == 0.04
    assert t.price_at(utc(2026, 2, 9, 0, 0)) == 0.04  # Monday, still Sunday night's period
    assert t.price_at(utc(2026, 2, 9, 5, 59, 59)) == 0.04
    assert t.price_at(utc(2026, 2, 9, 6, 0)) == 0.06
    assert t.price_at(utc(2026, 2, 9, 23, 0)) == 0.06  # Monday night: not in days
    assert t.price_at(utc(2026, 2, 8, 3, 0)) == 0.06  # Sunday early: Saturday isn't in days
    assert t.next_change(utc(2026, 2, 8, 12, 0)) == utc(2026, 2, 8, 22, 0)
    assert t.next_change(utc(2026, 2, 8, 23, 0)) == utc(2026, 2, 9, 6, 0)
    # from Monday 06:00 the next change is a week on
    assert t.next_change(utc(2026, 2, 9, 6, 0)) == utc(2026, 2, 15, 22, 0)


def test_week_boundary_and_equal_prices_across_periods() -> None:
    # Sun 20-24 and Mon 0-8 at one price: a single stretch Sun 20:00 .. Mon 08:00
    t = Tariff(
        (TariffPeriod(frozenset({SUN}), 20, 24, 0.03), TariffPeriod(frozenset({MON}), 0, 8, 0.03)),
        0.06,
        "UTC",
    )
    assert t.price_at(utc(2026, 2, 8, 23, 59, 59)) == 0.03
    assert t.price_at(utc(2026, 2, 9, 0, 0)) == 0.03
    # the price doesn't change at midnight: the next change is Monday 08:00
    assert t.next_change(utc(2026, 2, 8, 21, 0)) == utc(2026, 2, 9, 8, 0)
    # from Saturday: Sunday 20:00
    assert t.next_change(utc(2026, 2, 7, 12, 0)) == utc(2026, 2, 8, 20, 0)


def test_overnight_every_day_and_a_whole_day_period() -> None:
    night = Tariff((TariffPeriod(ALL, 22, 6, 0.04),), 0.06, "UTC")
    assert night.price_at(utc(2026, 2, 11, 3, 0)) == 0.04
    assert night.next_change(utc(2026, 2, 11, 3, 0)) == utc(2026, 2, 11, 6, 0)
    sat = Tariff((TariffPeriod(frozenset({SAT}), 0, 24, 0.02),), 0.06, "UTC")
    assert sat.price_at(utc(2026, 2, 7, 0, 0)) == 0.02
    assert sat.price_at(utc(2026, 2, 7, 23, 59, 59)) == 0.02
    assert sat.next_change(utc(2026, 2, 7, 12, 0)) == utc(2026, 2, 8, 0, 0)


def test_no_change_ever() -> None:
    always = Tariff((TariffPeriod(ALL, 0, 24, 0.09),), 0.06, "UTC")
    assert always.price_at(utc(2026, 2, 7)) == 0.09 and always.next_change(utc(2026, 2, 7)) is None
    same = Tariff((TariffPeriod(ALL, 14, 20, 0.06),), 0.06, "UTC")
    assert same.next_change(utc(2026, 2, 7)) is None
    assert Tariff((), 0.06, "UTC").next_change(utc(2026, 2, 7)) is None


def test_overlapping_periods_built_in_code_use_the_first() -> None:
    t = Tariff(
        (TariffPeriod(ALL, 14, 20, 0.19), TariffPeriod(ALL, 15, 16, 0.5)), 0.06, "UTC"
    )
    assert t.price_at(utc(2026, 2, 3, 15, 30)) == 0.19


def test_overlap() -> None:
    wk = TariffPeriod(parse_days("mon-fri"), 14, 20, 0.19)
    assert overlap(wk, TariffPeriod(frozenset({TUE}), 15, 16, 0.3)) == "tue 15:00–16:00"
    assert overlap(wk, TariffPeriod(frozenset({SAT}), 15, 16, 0.3)) is None
    sun_night = TariffPeriod(frozenset({SUN}), 22, 6, 0.04)
    assert overlap(sun_night, TariffPeriod(frozenset({MON}), 5, 7, 0.1)) == "mon 05:00–06:00"
    assert overlap(sun_night, TariffPeriod(frozenset({MON}), 6, 7, 0.1)) is None
    assert overlap(sun_night, TariffPeriod(frozenset({SUN}), 23, 24, 0.1)) == "sun 23:00–24:00"
    assert overlap(TariffPeriod(ALL, 22, 24, 0.1), TariffPeriod(ALL, 0, 6, 0.1)) is None


# --------------------------------------------------------------------------- DST (Chicago)


def test_spring_forward_period_ends_at_the_jump() -> None:
    # 2026-03-08: 02:00 CST (08:00 UTC) jumps to 03:00 CDT.  "0-2" runs 00:00 CST (06:00 UTC)
    # to the jump: one hour of wall clock, and one real hour.
    t = Tariff((TariffPeriod(ALL, 0, 2, 0.10),), 0.06, CHI)
    assert t.price_at(utc(2026, 3, 8, 5, 59, 59)) == 0.06  # Sat 23:59:59 CST
    assert t.price_at(utc(2026, 3, 8, 6, 30)) == 0.10  # 00:30 CST
    assert t.price_at(utc(2026, 3, 8, 7, 59, 59)) == 0.10  # 01:59:59 CST
    assert t.price_at(utc(2026, 3, 8, 8, 0)) == 0.06  # 03:00 CDT
    assert t.next_change(utc(2026, 3, 8, 6, 30)) == utc(2026, 3, 8, 8, 0)
    # then Monday 00:00 CDT = 05:00 UTC
    assert t.next_change(utc(2026, 3, 8, 8, 0)) == utc(2026, 3, 9, 5, 0)
    assert t.next_change(utc(2026, 3, 8, 5, 0)) == utc(2026, 3, 8, 6, 0)


def test_spring_forward_a_period_in_the_gap() -> None:
    # "2-3" doesn't happen on 2026-03-08 (02:00..03:00 is skipped): from Sunday 00:00 CST the
    # next change is Monday 02:00 CDT = 07:00 UTC
    gap = Tariff((TariffPeriod(ALL, 2, 3, 0.10),), 0.06, CHI)
    assert gap.next_change(utc(2026, 3, 8, 6, 0)) == utc(2026, 3, 9, 7, 0)
    assert gap.price_at(utc(2026, 3, 8, 8, 0)) == 0.06
    # "2:30-4" begins at the jump (the clock reads 03:00 CDT) and ends at 04:00 CDT (09:00 UTC)
    half = Tariff((TariffPeriod(ALL, 2.5, 4, 0.10),), 0.06, CHI)
    assert half.next_change(utc(2026, 3, 8, 6, 0)) == utc(2026, 3, 8, 8, 0)
    assert half.price_at(utc(2026, 3, 8, 8, 0)) == 0.10
    assert half.next_change(utc(2026, 3, 8, 8, 0)) == utc(2026, 3, 8, 9, 0)


def test_afternoon_peak_keeps_wall_clock_hours_across_dst() -> None:
    t = Tariff((TariffPeriod(ALL, 14, 20, 0.19),), 0.06, CHI)
    # Sat 2026-03-07 (CST): 14:00 = 20:00 UTC; Sun 2026-03-08 (CDT): 14:00 = 19:00 UTC
    assert t.next_change(utc(2026, 3, 7, 12, 0)) == utc(2026, 3, 7, 20, 0)
    assert t.next_change(utc(2026, 3, 8, 12, 0)) == utc(2026, 3, 8, 19, 0)
    assert t.next_change(utc(2026, 3, 8, 19, 0)) == utc(2026, 3, 9, 1, 0)  # 20:00 CDT
    # Sat 2026-10-31 (CDT): 14:00 = 19:00 UTC; Sun 2026-11-01 (CST): 14:00 = 20:00 UTC
    assert t.next_change(utc(2026, 10, 31, 12, 0)) == utc(2026, 10, 31, 19, 0)
    assert t.next_change(utc(2026, 11, 1, 12, 0)) == utc(2026, 11, 1, 20, 0)


def test_fall_back_period_lasts_three_hours() -> None:
    # 2026-11-01: 02:00 CDT (07:00 UTC) falls back to 01:00 CST.  "0-2" runs 00:00 CDT
    # (05:00 UTC) to 02:00 CST (08:00 UTC): the repeated hour is inside it both times.
    t = Tariff((TariffPeriod(ALL, 0, 2, 0.10),), 0.06, CHI)
    assert t.next_change(utc(2026, 11, 1, 4, 0)) == utc(2026, 11, 1, 5, 0)
    assert t.price_at(utc(2026, 11, 1, 6, 30)) == 0.10  # 01:30 CDT
    assert t.price_at(utc(2026, 11, 1, 7, 30)) == 0.10  # 01:30 CST, the second time
    assert t.next_change(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 8, 0)
    assert t.price_at(utc(2026, 11, 1, 8, 0)) == 0.06


def test_fall_back_period_inside_the_repeated_hour_happens_twice() -> None:
    # "1:30-2:30" on 2026-11-01: 01:30-02:00 CDT (06:30-07:00 UTC), then the clock goes back
    # to 01:00 CST: out until 01:30 CST (07:30 UTC), in until 02:30 CST (08:30 UTC)
    t = Tariff((TariffPeriod(ALL, 1.5, 2.5, 0.10),), 0.06, CHI)
    changes = []
    at = utc(2026, 11, 1, 5, 0)
    for _ in range(4):
        nxt = t.next_change(at)
        assert nxt is not None
        changes.append((nxt, t.price_at(nxt)))
        at = nxt
    assert changes == [
        (utc(2026, 11, 1, 6, 30), 0.10),
        (utc(2026, 11, 1, 7, 0), 0.06),
        (utc(2026, 11, 1, 7, 30), 0.10),
        (utc(2026, 11, 1, 8, 30), 0.06),
    ]


@pytest.fixture
def chicago_machine():  # type: ignore[no-untyped-def]
    """The machine's local zone is Chicago (the test suite runs in UTC otherwise)."""
    # POSIX (Linux, macOS: the platforms minertop supports) always has tzset
    assert hasattr(time, "tzset"), "time.tzset is needed to change the machine's zone"
    old = os.environ.get("TZ")
    os.environ["TZ"] = CHI
    time.tzset()
    try:
        yield
    finally:
        os.environ["TZ"] = old if old is not None else "UTC"
        time.tzset()


def test_default_zone_is_the_machines(chicago_machine: None) -> None:
    t = Tariff((TariffPeriod(parse_days("mon-fri"), 14, 20, 0.19),), 0.06, None)
    assert t.price_at(utc(2026, 2, 3, 20, 0)) == 0.19  # Tue 14:00 CST
    assert t.next_change(utc(2026, 3, 7, 3, 0)) == utc(2026, 3, 9, 19, 0)
    spring = Tariff((TariffPeriod(ALL, 0, 2, 0.10),), 0.06, None)
    assert spring.next_change(utc(2026, 3, 8, 6, 30)) == utc(2026, 3, 8, 8, 0)
    fall = Tariff((TariffPeriod(ALL, 0, 2, 0.10),), 0.06, None)
    assert fall.next_change(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 8, 0)


# --------------------------------------------------------------------------- validation


def test_unknown_zone() -> None:
    with pytest.raises(ZoneError) as ei:
        Tariff((), 0.06, "America/Chicgo")
    assert ei.value.suggestion == "America/Chicago" and not ei.value.no_database
    with pytest.raises(ZoneError) as ei:
        load_zone("utc")
    assert ei.value.suggestion == "UTC"
    with pytest.raises(ZoneError):
        load_zone("../etc/passwd")


@pytest.mark.parametrize(
    "args",
    [
        (frozenset(), 14, 20, 0.1),
        (frozenset({7}), 14, 20, 0.1),
        (ALL, 24, 6, 0.1),
        (ALL, 14, 14, 0.1),
        (ALL, 14, 0, 0.1),
        (ALL, 14, 20, -0.1),
        (ALL, 14, 20, 11.0),
        (ALL, 14, 20, float("nan")),
    ],
)
def test_bad_periods(args: tuple) -> None:
    with pytest.raises(ValueError):
        TariffPeriod(*args)


# --------------------------------------------------------------------------- feed vs tariff


def test_tariff_now_fresh_feed_wins() -> None:
    now = utc(2026, 2, 3, 20, 30)  # Tue 14:30 CST: the peak
    assert tariff_now(peak(), 0.0421, True, now) == PriceNow(0.0421, "feed", None)
    usd, source, nxt = tariff_now(0.06, 0.0421, True, now)  # a plain tuple, too
    assert (usd, source, nxt) == (0.0421, "feed", None)


def test_tariff_now_stale_feed_falls_back_to_the_tariff() -> None:
    now = utc(2026, 2, 3, 20, 30)
    assert tariff_now(peak(), 0.0421, False, now) == PriceNow(
        0.19, "tariff", utc(2026, 2, 4, 2, 0))
    assert tariff_now(peak(), None, True, now) == PriceNow(0.19, "tariff", utc(2026, 2, 4, 2, 0))
    off = utc(2026, 2, 7, 21, 0)  # Saturday: the tariff's base price, until Monday 14:00
    assert tariff_now(peak(), None, False, off) == PriceNow(0.06, "tariff", utc(2026, 2, 9, 20))


def test_tariff_now_without_a_tariff_is_flat() -> None:
    now = utc(2026, 2, 3, 20, 30)
    assert tariff_now(0.06, None, False, now) == PriceNow(0.06, "flat", None)
    assert tariff_now(0.06, 0.0421, False, now) == PriceNow(0.06, "flat", None)
    assert tariff_now(Tariff((), 0.05, None), None, False, now) == PriceNow(0.05, "flat", None)
    # a nonsense feed price is never used
    assert tariff_now(0.06, float("nan"), True, now) == PriceNow(0.06, "flat", None)


def test_feed_is_fresh() -> None:
    snap = PowerPriceSnapshot(usd_kwh=0.04, fetched_at=1000.0, source="power feed x")
    assert feed_is_fresh(snap, 1000.0, 900.0)
    assert feed_is_fresh(snap, 1900.0, 900.0)
    assert not feed_is_fresh(snap, 1900.5, 900.0)
    assert not feed_is_fresh(snap, 900.0, 900.0)  # from the future (a clock jump)
    assert not feed_is_fresh(None, 1000.0, 900.0)
