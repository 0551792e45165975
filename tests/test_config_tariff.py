"""``[site] timezone``, ``[[site.tariff]]`` and ``[site.power_feed]``: parsing and errors."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from tui import tariff as tariff_mod
from tui.config import (
    EXAMPLE_CONFIG,
    ConfigError,
    RigConfig,
    load_config,
    parse_config,
)
from tui.tariff import PowerFeedConfig, PowerPriceSnapshot, PriceNow, Tariff, TariffPeriod

SITE = '[site]\nname = "T"\nelectricity_usd_kwh = 0.06\n'


def utc(*a: int) -> float:
    return datetime(*a, tzinfo=timezone.utc).timestamp()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def one_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, text), environ=environ or {})
    assert len(ei.value.issues) == 1, str(ei.value)
    return str(ei.value)


def lineno(text: str, needle: str, nth: int = 1) -> int:
    return [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln][nth - 1]


FULL = SITE + """timezone = "America/Chicago"

[[site.tariff]]
name = "peak"
days = "mon-fri"
hours = "14-20"
usd_kwh = 0.19

[[site.tariff]]
days = ["sat", "sun"]
hours = "22-6"
usd_kwh = 0.045

[site.power_feed]
url = "http://127.0.0.1:8997/api/v1/power-price"
path = "data.0.price"
unit = "usd_mwh"
interval_s = 60

[[rigs]]
name = "own-price"
host = "10.0.0.1"
electricity_usd_kwh = 0.05

[[rigs]]
name = "site-price"
host = "10.0.0.2"
"""


# --------------------------------------------------------------------------- valid


def test_tariff_feed_and_timezone_parse(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL), environ={})
    assert cfg is not None
    assert cfg.timezone == "America/Chicago"
    assert cfg.tariff == Tariff(
        (
            TariffPeriod(frozenset(range(5)), 14.0, 20.0, 0.19, "peak"),
            TariffPeriod(frozenset({5, 6}), 22.0, 6.0, 0.045),
        ),
        0.06,
        "America/Chicago",
    )
    assert cfg.power_feed == PowerFeedConfig(
        "http://127.0.0.1:8997/api/v1/power-price", ("data", "0", "price"), "usd_mwh", 60.0
    )
    assert cfg.power_feed.stale_after_s == 180.0
    assert cfg.power_feed.path_text == "data.0.price"


def test_price_now_and_rig_overrides(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, FULL), environ={})
    assert cfg is not None
    own, site_rig = cfg.rigs
    peak = utc(2026, 2, 3, 20, 30)  # Tuesday 14:30 CST
    now = cfg.price_now(peak)
    assert now == PriceNow(0.19, "tariff", utc(2026, 2, 4, 2, 0))
    # a rig with its own price ignores the tariff; the others pay the price in force
    assert cfg.electricity_for(own, now.usd_kwh) == 0.05
    assert cfg.electricity_for(site_rig, now.usd_kwh) == 0.19
    assert cfg.electricity_for(site_rig) == 0.06  # no price given: the flat one
    # a fresh feed wins; a stale one (older than 3 intervals) gives way to the tariff
    feed = PowerPriceSnapshot(usd_kwh=0.0421, fetched_at=peak - 100, source="power feed x")
    assert cfg.price_now(peak, feed) == PriceNow(0.0421, "feed", None)
    old = PowerPriceSnapshot(usd_kwh=0.0421, fetched_at=peak - 181, source="power feed x")
    assert cfg.price_now(peak, old).source == "tariff"
    # Saturday 23:00 CST: the weekend night rate until Sunday 06:00 CST (12:00 UTC)
    assert cfg.price_now(utc(2026, 2, 8, 5, 0)) == PriceNow(0.045, "tariff", utc(2026, 2, 8, 12))


def test_no_tariff_no_feed_is_flat(tmp_path: Path) -> None:
    cfg = parse_config(SITE)
    assert cfg.tariff is None and cfg.power_feed is None and cfg.timezone is None
    feed = PowerPriceSnapshot(usd_kwh=0.0421, fetched_at=1000.0, source="power feed x")
    # a feed snapshot without a configured feed is ignored
    assert cfg.price_now(1000.0, feed) == PriceNow(0.06, "flat", None)
    assert cfg.electricity_for(RigConfig("a", "10.0.0.1")) == 0.06


def test_feed_without_tariff_falls_back_to_the_flat_price() -> None:
    cfg = parse_config(SITE + '[site.power_feed]\nurl = "https://p.example.com/x"\n'
                       'path = "price"\nunit = "usd_kwh"\n')
    assert cfg.power_feed is not None and cfg.power_feed.interval_s == 300.0
    feed = PowerPriceSnapshot(usd_kwh=0.03, fetched_at=1000.0, source="power feed x")
    assert cfg.price_now(1000.0 + 900, feed) == PriceNow(0.03, "feed", None)
    assert cfg.price_now(1000.0 + 901, feed) == PriceNow(0.06, "flat", None)


def test_token_env_is_checked_against_the_environment() -> None:
    text = SITE + ('[site.power_feed]\nurl = "https://p.example.com/x"\npath = "price"\n'
                   'unit = "usd_kwh"\ntoken_env = "POWER_TOKEN"\n')
    cfg = parse_config(text, environ={"POWER_TOKEN": "t"})
    assert cfg.power_feed is not None and cfg.power_feed.token_env == "POWER_TOKEN"
    with pytest.raises(ConfigError) as ei:
        parse_config(text, environ={})
    assert str(ei.value) == ("<config>:8: site.power_feed.token_env: environment variable "
                             "POWER_TOKEN is not set")


def test_the_commented_example_parses_when_uncommented(tmp_path: Path) -> None:
    lines = EXAMPLE_CONFIG.splitlines()
    start = lines.index('# timezone = "America/Chicago"')
    end = next(i for i, ln in enumerate(lines) if ln.startswith("# # token_env"))
    block = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines[start: end + 1]]
    text = "\n".join(lines[:start] + block + lines[end + 1:]) + "\n"
    cfg = load_config(write(tmp_path, text), environ={})
    assert cfg is not None
    assert cfg.timezone == "America/Chicago"
    assert cfg.tariff is not None and [p.name for p in cfg.tariff.periods] == ["peak", "night"]
    assert cfg.power_feed is not None and cfg.power_feed.unit == "usd_mwh"
    # commented out, the example has a flat price
    cfg = load_config(write(tmp_path, EXAMPLE_CONFIG), environ={})
    assert cfg is not None and cfg.tariff is None and cfg.power_feed is None


# --------------------------------------------------------------------------- errors


def period(body: str) -> str:
    return SITE + "\n[[site.tariff]]\n" + body


@pytest.mark.parametrize(
    ("text", "needle", "key", "message"),
    [
        (
            SITE + 'timezone = "America/Chicgo"\n', "timezone", "site.timezone",
            'expected an IANA time zone name like "America/Chicago", got "America/Chicgo" '
            '(did you mean "America/Chicago"?)',
        ),
        (
            SITE + "timezone = 5\n", "timezone", "site.timezone",
            "expected a non-empty string, got 5",
        ),
        (
            SITE + 'timezone = "../etc/passwd"\n', "timezone", "site.timezone",
            'expected an IANA time zone name like "America/Chicago", got "../etc/passwd"',
        ),
        (
            SITE + "tariff = 3\n", "tariff", "site.tariff",
            "expected an array of tables ([[site.tariff]] sections), got 3",
        ),
        (
            SITE + '[site.tariff]\nhours = "14-20"\nusd_kwh = 0.1\n', "[site.tariff]",
            "site.tariff",
            "expected an array of tables ([[site.tariff]] sections), got a table (write "
            "[[site.tariff]], with double brackets)",
        ),
        (
            SITE + "tariff = [1]\n", "tariff", "site.tariff[0]",
            "expected a table ([[site.tariff]]), got 1",
        ),
        (
            period('days = "mon-fri"\nusd_kwh = 0.19\n'), "[[site.tariff]]",
            "site.tariff[0].hours", "missing (required)",
        ),
        (
            period('hours = "14-20"\n'), "[[site.tariff]]", "site.tariff[0].usd_kwh",
            "missing (required)",
        ),
        (
            period('days = "funday"\nhours = "14-20"\nusd_kwh = 0.19\n'), "days",
            "site.tariff[0].days",
            'expected days like "mon-fri", "sat,sun", "mon,wed-fri" or "all", got "funday"',
        ),
        (
            period('days = 5\nhours = "14-20"\nusd_kwh = 0.19\n'), "days",
            "site.tariff[0].days",
            'expected days like "mon-fri", "sat,sun", "mon,wed-fri" or "all", got 5',
        ),
        (
            period('days = []\nhours = "14-20"\nusd_kwh = 0.19\n'), "days",
            "site.tariff[0].days",
            'expected days like "mon-fri", "sat,sun", "mon,wed-fri" or "all", got an array',
        ),
        (
            period('hours = "25-3"\nusd_kwh = 0.19\n'), "hours", "site.tariff[0].hours",
            'expected "start-end" local hours like "14-20", "22-6" or "9:30-17:15" (0–24), '
            'got "25-3": an hour outside 0–24 or a minute outside 00–59',
        ),
        (
            period('hours = "14"\nusd_kwh = 0.19\n'), "hours", "site.tariff[0].hours",
            'expected "start-end" local hours like "14-20", "22-6" or "9:30-17:15" (0–24), '
            'got "14"',
        ),
        (
            period('hours = "14-14"\nusd_kwh = 0.19\n'), "hours", "site.tariff[0].hours",
            'expected "start-end" local hours like "14-20", "22-6" or "9:30-17:15" (0–24), '
            'got "14-14": start and end are the same (use 0-24 for the whole day)',
        ),
        (
            period('hours = "24-6"\nusd_kwh = 0.19\n'), "hours", "site.tariff[0].hours",
            'expected "start-end" local hours like "14-20", "22-6" or "9:30-17:15" (0–24), '
            'got "24-6": a period can\'t start at 24',
        ),
        (
            period("hours = 14\nusd_kwh = 0.19\n"), "hours", "site.tariff[0].hours",
            'expected "start-end" local hours like "14-20", "22-6" or "9:30-17:15" (0–24), '
            "got 14",
        ),
        (
            period('hours = "14-20"\nusd_kwh = 11\n'), "usd_kwh = 11", "site.tariff[0].usd_kwh",
            "expected a number 0–10 ($/kWh), got 11",
        ),
        (
            period('hours = "14-20"\nusd_kwh = -0.01\n'), "usd_kwh = -", "site.tariff[0].usd_kwh",
            "expected a number 0–10 ($/kWh), got -0.01",
        ),
        (
            period('hours = "14-20"\nusd_kwh = "0.19"\n'), 'usd_kwh = "', "site.tariff[0].usd_kwh",
            'expected a number 0–10 ($/kWh), got "0.19"',
        ),
        (
            period('hours = "14-20"\nusd_kwh = 0.19\nprice = 1\n'), "price",
            "site.tariff[0].price",
            "unknown key; expected one of: days, hours, usd_kwh, name",
        ),
        (
            period('hours = "14-20"\nusd_kwh = 0.19\nname = ""\n'), 'name = ""',
            "site.tariff[0].name", 'expected a non-empty string, got ""',
        ),
        (
            SITE + "power_feed = 1\n", "power_feed", "site.power_feed",
            "expected a table, got 1",
        ),
        (
            SITE + '[site.power_feed]\npath = "p"\nunit = "usd_kwh"\n', "[site.power_feed]",
            "site.power_feed.url", "missing (required)",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\nunit = "usd_kwh"\n',
            "[site.power_feed]", "site.power_feed.path", "missing (required)",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\npath = "p"\n',
            "[site.power_feed]", "site.power_feed.unit", "missing (required)",
        ),
        (
            SITE + '[site.power_feed]\nurl = "ftp://x.example/p?key=SECRET"\npath = "p"\n'
            'unit = "usd_kwh"\n', "url", "site.power_feed.url",
            'expected an http:// or https:// URL like "https://prices.example.com/now", but '
            "it doesn't start with http:// or https:// (the value is not repeated here: it "
            "may be a secret)",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/a b"\npath = "p"\n'
            'unit = "usd_kwh"\n', "url", "site.power_feed.url",
            'expected an http:// or https:// URL like "https://prices.example.com/now", but '
            "it contains spaces or control characters (the value is not repeated here: it "
            "may be a secret)",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\npath = "data..price"\n'
            'unit = "usd_kwh"\n', "path", "site.power_feed.path",
            'expected a dotted path into the JSON reply like "data.0.price" (keys, and list '
            'indexes counting from 0; -1 is the last item), got "data..price": an empty '
            "segment: two dots in a row, or a dot at an end",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\npath = 0\n'
            'unit = "usd_kwh"\n', "path", "site.power_feed.path",
            'expected a dotted path into the JSON reply like "data.0.price" (keys, and list '
            "indexes counting from 0; -1 is the last item), got 0",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\npath = "p"\n'
            'unit = "usd_gwh"\n', "unit", "site.power_feed.unit",
            'expected one of "usd_kwh", "usd_mwh", got "usd_gwh"',
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\npath = "p"\n'
            'unit = "usd_kwh"\ninterval_s = 5\n', "interval_s", "site.power_feed.interval_s",
            "expected a number 10–86400 (s), got 5",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\npath = "p"\n'
            'unit = "usd_kwh"\ninterval_s = true\n', "interval_s", "site.power_feed.interval_s",
            "expected a number 10–86400 (s), got true",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\npath = "p"\n'
            'unit = "usd_kwh"\ntoken_env = "sk-abc def"\n', "token_env",
            "site.power_feed.token_env",
            "expected the name of an environment variable (letters, digits and _, e.g. "
            "MINERTOP_SMTP_PASSWORD), not the secret itself (the value is not repeated here: "
            "it may be a secret)",
        ),
        (
            SITE + '[site.power_feed]\nurl = "https://x.example/p"\npath = "p"\n'
            'unit = "usd_kwh"\nintervals = 60\n', "intervals", "site.power_feed.intervals",
            'unknown key (did you mean "interval_s"?); expected one of: url, path, unit, '
            "interval_s, token_env",
        ),
    ],
)
def test_errors_name_file_line_and_key(
    tmp_path: Path, text: str, needle: str, key: str, message: str
) -> None:
    msg = one_error(tmp_path, text)
    assert msg == f"{tmp_path / 'config.toml'}:{lineno(text, needle)}: {key}: {message}"


def test_overlapping_periods_are_rejected_naming_both(tmp_path: Path) -> None:
    text = SITE + (
        '\n[[site.tariff]]\ndays = "mon-fri"\nhours = "14-20"\nusd_kwh = 0.19\n'
        '\n[[site.tariff]]\ndays = "sat,sun"\nhours = "22-6"\nusd_kwh = 0.04\n'
        '\n[[site.tariff]]\ndays = "mon"\nhours = "5-15"\nusd_kwh = 0.3\n'
    )
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, text))
    first, second = lineno(text, "[[site.tariff]]", 1), lineno(text, "[[site.tariff]]", 2)
    third = lineno(text, "[[site.tariff]]", 3)
    shown = tmp_path / "config.toml"
    # Sunday 22:00 to Monday 06:00 (period 1) and Monday 14:00-20:00 (period 0) both overlap
    assert str(ei.value).splitlines() == [
        f"{shown}:{third}: site.tariff[2]: 05:00–15:00 overlaps site.tariff[0] (line {first}) "
        "on mon 14:00–15:00: periods must not overlap (a price would be ambiguous)",
        f"{shown}:{third}: site.tariff[2]: 05:00–15:00 overlaps site.tariff[1] (line {second}) "
        "on mon 05:00–06:00: periods must not overlap (a price would be ambiguous)",
    ]


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = SITE + (
        'timezone = "Mars/Olympus"\n'
        '[[site.tariff]]\ndays = "mon-fry"\nhours = "14-26"\nusd_kwh = 20\n'
        '[site.power_feed]\nurl = "gopher://x"\npath = "."\nunit = "kwh"\ninterval_s = 1\n'
    )
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, text))
    assert [(i.line, i.key) for i in ei.value.issues] == [
        (4, "site.timezone"),
        (6, "site.tariff[0].days"),
        (7, "site.tariff[0].hours"),
        (8, "site.tariff[0].usd_kwh"),
        (10, "site.power_feed.url"),
        (11, "site.power_feed.path"),
        (12, "site.power_feed.unit"),
        (13, "site.power_feed.interval_s"),
    ]
    assert "gopher" not in str(ei.value)  # a URL may hold a key: never echoed


def test_inline_tariff_array_points_at_its_line(tmp_path: Path) -> None:
    text = SITE + 'tariff = [\n  { hours = "14-20", usd_kwh = 0.19 },\n' \
                  '  { hours = "25-1", usd_kwh = 0.1 },\n]\n'
    msg = one_error(tmp_path, text)
    assert msg.startswith(f"{tmp_path / 'config.toml'}:{lineno(text, '25-1')}: "
                          "site.tariff[1].hours: ")


def test_no_time_zone_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zoneinfo

    def missing(key: str) -> None:
        raise zoneinfo.ZoneInfoNotFoundError(f"No time zone found with key {key}")

    tariff_mod.load_zone.cache_clear()
    monkeypatch.setattr(zoneinfo, "ZoneInfo", missing)
    try:
        msg = one_error(tmp_path, SITE + 'timezone = "America/Chicago"\n')
    finally:
        tariff_mod.load_zone.cache_clear()
    assert msg == (
        f"{tmp_path / 'config.toml'}:4: site.timezone: this machine has no time zone "
        "database, so no time zone can be used: install the tzdata package (pip install "
        "tzdata) or your system's tzdata"
    )
