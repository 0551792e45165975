"""The site configuration: a TOML file, validated completely before anything starts.

Location: ``$XDG_CONFIG_HOME/minertop/config.toml`` (default ``~/.config/minertop/config.toml``)
or an explicit path.  :func:`load_config` either returns a fully valid :class:`SiteConfig` or
raises :class:`ConfigError`, whose message names the file, the line, the key and what was
expected, e.g.::

    ~/.config/minertop/config.toml:14: rigs[2].port: expected an integer 1–65535, got "abc"

``rigs[N]`` / ``scans[N]`` / ``site.tariff[N]`` count from 0 in file order.  All problems
found are reported (one a line), not just the first.  The power price (``[site] timezone``,
``[[site.tariff]]``, ``[site.power_feed]``) is described in :mod:`tui.tariff`.  No Textual
here.
"""

from __future__ import annotations

import bisect
import difflib
import ipaddress
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from tui.alerts import AlertRules
from tui.catalog import Catalog, ModelSpec, normalise
from tui.notify import (
    DEFAULT_SMTP_PORT,
    EVENT_KINDS,
    IMPLICIT_TLS_PORT,
    NOTIFY_KINDS,
    NTFY_PRIORITIES,
    SEVERITIES,
    TLS_MODES,
    NotifyConfig,
    NotifyKind,
)
from tui.tariff import (
    POWER_UNITS,
    PowerFeedConfig,
    PowerPriceSnapshot,
    PriceNow,
    Tariff,
    TariffPeriod,
    ZoneError,
    feed_is_fresh,
    format_hours,
    load_zone,
    parse_days,
    parse_hours,
    parse_path,
    periods_overlaps,
    tariff_now,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

RigKind = Literal["auto", "cgminer", "whatsminer-v3", "bitaxe"]
#: How a rig is read: ``auto`` identifies the protocol (the cgminer-style API on 4028, else
#: Whatsminer API v3 on 4433, else AxeOS HTTP on 80); the others force one.
KINDS: tuple[str, ...] = ("auto", "cgminer", "whatsminer-v3", "bitaxe")
#: Default port per forced kind: cgminer-style API on TCP 4028, Whatsminer API v3 on TCP 4433,
#: ESP-Miner's (AxeOS) HTTP API on 80.  ``auto`` without a port looks on each of these.
DEFAULT_PORTS: dict[str, int] = {"cgminer": 4028, "whatsminer-v3": 4433, "bitaxe": 80}
#: Largest scan range accepted (a /16 of IPv4): a typo must not scan someone else's network.
MAX_SCAN_ADDRESSES = 2**16
#: Top-level tables kept raw: ``[keys]`` (key bindings), checked by ``parse_keymap``.
EXTRA_TABLES = ("keys",)
MAX_ERRORS = 20


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class RigConfig:
    name: str
    host: str
    port: int | None = None  #: None: the kind's port (auto: each protocol's own port)
    kind: RigKind = "auto"
    model: str | None = None  #: overrides the model the rig reports (for the spec lookup)
    power_w: float | None = None  #: configured power; used when the rig reports none
    electricity_usd_kwh: float | None = None  #: None: the site's price
    overhead_usd_day: float | None = None  #: None: the site's per-rig overhead
    hashrate_ths: float | None = None  #: nominal hashrate override


@dataclass(frozen=True)
class ScanRange:
    cidr: str  #: canonical network, e.g. "10.0.2.0/24"
    port: int | None = None  #: None: the kind's port (auto: 4028, 4433 and 80)
    kind: RigKind = "auto"

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr)


@dataclass(frozen=True)
class PollConfig:
    interval_s: float = 10.0
    timeout_s: float = 3.0
    concurrency: int = 256
    retries: int = 1
    #: a rig whose accepted shares (or every figure) have not moved this long is "stuck"
    stuck_after_s: float = 600.0


@dataclass(frozen=True)
class SiteConfig:
    name: str
    electricity_usd_kwh: float
    pool_fee_pct: float = 0.0
    overhead_usd_day: float = 0.0  #: per rig, $/day (hosting / opex)
    rigs: tuple[RigConfig, ...] = ()
    scans: tuple[ScanRange, ...] = ()
    models: dict[str, ModelSpec] = field(default_factory=dict, hash=False)
    poll: PollConfig = field(default_factory=PollConfig)
    path: Path | None = None
    #: Raw ``[keys]`` table: the key bindings, validated at load (``tui.commands.parse_keymap``).
    extra: dict[str, Any] = field(default_factory=dict, hash=False)
    alerts: AlertRules = field(default_factory=AlertRules)
    #: ``[[notify]]``: where alert events are sent (see :mod:`tui.notify`).
    notify: tuple[NotifyConfig, ...] = ()
    #: ``[ui] theme``: the dashboard's Textual theme (None: the remembered one, or default)
    theme: str | None = None
    #: ``[site] timezone``: the IANA zone the tariff's hours are in (None: the machine's)
    timezone: str | None = None
    #: ``[[site.tariff]]``: time-of-use periods over ``electricity_usd_kwh`` (None: flat)
    tariff: Tariff | None = None
    #: ``[site.power_feed]``: a live power price (None: none)
    power_feed: PowerFeedConfig | None = None

    def electricity_for(self, rig: RigConfig | None, site_now: float | None = None) -> float:
        """The rig's $/kWh: its own ``electricity_usd_kwh`` if set (it ignores the tariff
        and the feed), else ``site_now`` (the site's price in force, :meth:`price_now`), else
        the flat site price."""
        if rig is not None and rig.electricity_usd_kwh is not None:
            return rig.electricity_usd_kwh
        return self.electricity_usd_kwh if site_now is None else site_now

    def price_now(self, now: float, feed: PowerPriceSnapshot | None = None) -> PriceNow:
        """The site's power price in force at ``now``: the feed's last price while fresh
        (no older than ``power_feed.stale_after_s``), else the tariff's, else the flat one."""
        fresh = self.power_feed is not None and feed_is_fresh(
            feed, now, self.power_feed.stale_after_s)
        return tariff_now(
            self.tariff if self.tariff is not None else self.electricity_usd_kwh,
            feed.usd_kwh if feed is not None else None,
            fresh,
            now,
        )

    def overhead_for(self, rig: RigConfig | None) -> float:
        if rig is not None and rig.overhead_usd_day is not None:
            return rig.overhead_usd_day
        return self.overhead_usd_day

    def catalog(self) -> Catalog:
        """The shipped model table with this config's ``[models]`` overrides."""
        return Catalog.load(self.models)


# --------------------------------------------------------------------------- errors

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigIssue:
    file: str  #: display form of the path ("~/..." under the home directory)
    line: int | None
    col: int | None
    key: str  #: e.g. "rigs[2].port"; "" for file-level problems
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config file that can't be used.  ``str()`` lists every problem, one a line."""

    def __init__(self, issues: list[ConfigIssue], path: Path | None = None) -> None:
        self.issues = issues
        self.path = path
        super().__init__("\n".join(str(i) for i in issues))

    @property
    def line(self) -> int | None:
        return self.issues[0].line

    @property
    def key(self) -> str:
        return self.issues[0].key


def display_path(path: Path, environ: Mapping[str, str] = os.environ) -> str:
    home = environ.get("HOME") or str(Path.home())
    if home in ("", "/"):
        return str(path)
    try:
        return str(Path("~") / path.relative_to(home))
    except ValueError:
        return str(path)


def format_key(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            s = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
            out += f".{s}" if out else s
    return out


def _show(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        return s if len(s) <= 60 else s[:57] + '..."'
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "a table"
    if isinstance(v, list):
        return "an array"
    return f"a {type(v).__name__}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


# --------------------------------------------------------------------------- locating keys


class _Locator:
    """Maps key paths to 1-based source lines by scanning (already valid) TOML text.

    Handles comments, quoted and dotted keys, ``[table]`` / ``[[array]]`` headers (with the
    array index), multi-line strings and arrays, and inline tables.  If anything surprises it,
    it stops and keeps what it found; :meth:`line` falls back to the nearest enclosing key or
    table header.
    """

    def __init__(self, text: str) -> None:
        self.t = text
        self.n = len(text)
        self.pos = 0
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self.locs: dict[KeyPath, int] = {}
        self.aot: dict[KeyPath, int] = {}
        try:
            self._document()
        except Exception:  # noqa: BLE001 - best effort; tomllib already accepted the text
            pass

    def line(self, path: KeyPath) -> int | None:
        for i in range(len(path), 0, -1):
            ln = self.locs.get(tuple(path[:i]))
            if ln is not None:
                return ln
        return None

    # -- scanning helpers
    def _lineno(self) -> int:
        return bisect.bisect_right(self.line_starts, self.pos)

    def _ws(self, newlines: bool = False) -> None:
        t, n = self.t, self.n
        while self.pos < n:
            c = t[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.pos += 1
            elif c == "#":
                while self.pos < n and t[self.pos] != "\n":
                    self.pos += 1
            else:
                break

    def _expect(self, s: str) -> None:
        if not self.t.startswith(s, self.pos):
            raise ValueError(f"expected {s!r} at {self.pos}")
        self.pos += len(s)

    def _record(self, path: KeyPath, line: int) -> None:
        self.locs.setdefault(path, line)

    def _document(self) -> None:
        table: KeyPath = ()
        while True:
            self._ws(newlines=True)
            if self.pos >= self.n:
                return
            line = self._lineno()
            if self.t.startswith("[[", self.pos):
                self.pos += 2
                self._ws()
                names = self._key()
                self._ws()
                self._expect("]]")
                parent = self._resolve(names[:-1]) + (names[-1],)
                idx = self.aot.get(parent, -1) + 1
                self.aot[parent] = idx
                table = parent + (idx,)
                self._record(parent, line)
                self._record(table, line)
            elif self.t[self.pos] == "[":
                self.pos += 1
                self._ws()
                names = self._key()
                self._ws()
                self._expect("]")
                table = self._resolve(names)
                self._record(table, line)
            else:
                self._keyval(table)

    def _resolve(self, names: tuple[str, ...]) -> KeyPath:
        out: KeyPath = ()
        for name in names:
            out += (name,)
            if out in self.aot:
                out += (self.aot[out],)
        return out

    def _key(self) -> tuple[str, ...]:
        names: list[str] = []
        t = self.t
        while True:
            self._ws()
            c = t[self.pos]
            if c == '"':
                names.append(self._basic_string_value())
            elif c == "'":
                end = t.index("'", self.pos + 1)
                names.append(t[self.pos + 1 : end])
                self.pos = end + 1
            else:
                m = re.compile(r"[A-Za-z0-9_-]+").match(t, self.pos)
                if not m:
                    raise ValueError(f"bad key at {self.pos}")
                names.append(m.group())
                self.pos = m.end()
            self._ws()
            if self.pos < self.n and t[self.pos] == ".":
                self.pos += 1
                continue
            return tuple(names)

    def _basic_string_value(self) -> str:
        t = self.t
        i = self.pos + 1
        out: list[str] = []
        simple = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", "e": "\x1b"}
        while t[i] != '"':
            if t[i] == "\\":
                e = t[i + 1]
                if e in simple:
                    out.append(simple[e])
                    i += 2
                elif e in "uUx":
                    width = {"u": 4, "U": 8, "x": 2}[e]
                    out.append(chr(int(t[i + 2 : i + 2 + width], 16)))
                    i += 2 + width
                else:
                    out.append(e)
                    i += 2
            else:
                out.append(t[i])
                i += 1
        self.pos = i + 1
        return "".join(out)

    def _keyval(self, prefix: KeyPath) -> None:
        line = self._lineno()
        names = self._key()
        self._expect("=")
        self._ws()
        path = prefix + names
        for i in range(len(prefix) + 1, len(path) + 1):
            self._record(path[:i], line)
        self._value(path)

    def _value(self, path: KeyPath) -> None:
        t = self.t
        if t.startswith('"""', self.pos) or t.startswith("'''", self.pos):
            q = t[self.pos]
            i = self.pos + 3
            while True:
                if q == '"' and t[i] == "\\":
                    i += 2
                elif t.startswith(q * 3, i):
                    j = i + 3
                    while j < self.n and t[j] == q and j - i < 5:
                        j += 1
                    self.pos = j
                    return
                else:
                    i += 1
        c = t[self.pos]
        if c == '"':
            self._basic_string_value()
        elif c == "'":
            self.pos = t.index("'", self.pos + 1) + 1
        elif c == "[":
            self.pos += 1
            i = 0
            while True:
                self._ws(newlines=True)
                if t[self.pos] == "]":
                    self.pos += 1
                    return
                self._record(path + (i,), self._lineno())
                self._value(path + (i,))
                self._ws(newlines=True)
                if t[self.pos] == ",":
                    self.pos += 1
                i += 1
        elif c == "{":
            self.pos += 1
            while True:
                self._ws(newlines=True)
                if t[self.pos] == "}":
                    self.pos += 1
                    return
                self._keyval(path)
                self._ws(newlines=True)
                if t[self.pos] == ",":
                    self.pos += 1
        else:
            m = re.compile(r"[^,\]}\n#]+").match(t, self.pos)
            if not m:
                raise ValueError(f"bad value at {self.pos}")
            self.pos = m.end()


# --------------------------------------------------------------------------- validation


class _Missing:
    pass


MISSING = _Missing()


class _Checker:
    def __init__(self, file: str, locator: _Locator) -> None:
        self.file = file
        self.loc = locator
        self.issues: list[ConfigIssue] = []

    def err(self, path: KeyPath, message: str) -> None:
        self.issues.append(
            ConfigIssue(self.file, self.loc.line(path), None, format_key(path), message)
        )

    def line(self, path: KeyPath) -> int | None:
        return self.loc.line(path)

    def also(self, path: KeyPath) -> str:
        """ " (also at line N)" for the first occurrence of a duplicate, or its key path."""
        line = self.loc.line(path)
        return f" (also at line {line})" if line is not None else f" (also {format_key(path)})"

    # -- shape
    def table(self, path: KeyPath, v: object) -> dict[str, Any] | None:
        if isinstance(v, dict):
            return v
        self.err(path, f"expected a table, got {_show(v)}")
        return None

    def keys(
        self,
        path: KeyPath,
        tbl: dict[str, Any],
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
    ) -> None:
        for k in tbl:
            if k not in allowed:
                close = difflib.get_close_matches(k, allowed, n=1, cutoff=0.6)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                self.err(path + (k,), f"unknown key{hint}; expected one of: {', '.join(allowed)}")
        for k in required:
            if k not in tbl:
                self.err(path + (k,), "missing (required)")

    # -- scalars
    def number(
        self,
        path: KeyPath,
        v: object,
        lo: float,
        hi: float,
        *,
        lo_open: bool = False,
        unit: str = "",
    ) -> float | None:
        rng = f"{'>' + _num(lo) + ' and ≤' + _num(hi) if lo_open else _num(lo) + '–' + _num(hi)}"
        what = f"a number {rng}" + (f" ({unit})" if unit else "")
        ok = (
            not isinstance(v, bool)
            and isinstance(v, (int, float))
            and math.isfinite(v)
            and (v > lo if lo_open else v >= lo)
            and v <= hi
        )
        if not ok:
            self.err(path, f"expected {what}, got {_show(v)}")
            return None
        return float(v)  # type: ignore[arg-type]

    def integer(self, path: KeyPath, v: object, lo: int, hi: int) -> int | None:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.err(path, f"expected an integer {lo}–{hi}, got {_show(v)}")
            return None
        return v

    def string(self, path: KeyPath, v: object, *, max_len: int = 200) -> str | None:
        if not isinstance(v, str) or not v.strip():
            self.err(path, f"expected a non-empty string, got {_show(v)}")
            return None
        if len(v) > max_len or any(ord(c) < 32 or ord(c) == 127 for c in v):
            self.err(
                path, f"expected a string of at most {max_len} printable characters, got {_show(v)}"
            )
            return None
        return v.strip()

    def choice(self, path: KeyPath, v: object, choices: tuple[str, ...]) -> str | None:
        if not isinstance(v, str) or v not in choices:
            opts = ", ".join(f'"{c}"' for c in choices)
            self.err(path, f"expected one of {opts}, got {_show(v)}")
            return None
        return v


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def canonical_host(host: str) -> str | None:
    """The canonical form of an IP address or host name, or None if it's neither."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host.rstrip(".")
    if not name or len(name) > 253:
        return None
    labels = name.split(".")
    if not all(_HOST_LABEL.fullmatch(lb) for lb in labels):
        return None
    if labels[-1].isdigit():  # "10.0.0.256" is a bad address, not a host name
        return None
    return name.lower()


def _host_problem(v: str) -> str:
    base = f"expected an IP address or host name, got {_show(v)}"
    if "://" in v or "/" in v:
        return base + " (no URL or path: just the address; the port goes in port)"
    if re.fullmatch(r"[^:]+:\d+", v) or re.fullmatch(r"\[.*\]:?\d*", v):
        return base + " (put the port in the port key)"
    return base


_SITE_KEYS = ("name", "electricity_usd_kwh", "pool_fee_pct", "overhead_usd_day", "timezone",
              "tariff", "power_feed")
_TARIFF_KEYS = ("days", "hours", "usd_kwh", "name")
_POWER_FEED_KEYS = ("url", "path", "unit", "interval_s", "token_env")
MAX_TARIFF_PERIODS = 100
_POLL_KEYS = ("interval_s", "timeout_s", "concurrency", "retries", "stuck_after_s")
_RIG_KEYS = (
    "name",
    "host",
    "port",
    "kind",
    "model",
    "power_w",
    "electricity_usd_kwh",
    "overhead_usd_day",
    "hashrate_ths",
)
_SCAN_KEYS = ("cidr", "port", "kind")
_MODEL_KEYS = ("hashrate_ths", "power_w", "source")
_TOP_KEYS = ("site", "poll", "rigs", "scans", "models", "alerts", "notify", "ui",
             *EXTRA_TABLES)
_UI_KEYS = ("theme",)
#: A theme name as Textual spells them ("textual-dark", "nord", "catppuccin-mocha"); whether
#: it exists is checked by the dashboard, which knows the themes installed.
_THEME_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

MAX_POWER_W = 100_000.0
MAX_HASHRATE_THS = 100_000.0
MAX_ELECTRICITY = 10.0
MAX_OVERHEAD = 10_000.0


def _get(
    c: _Checker,
    path: KeyPath,
    tbl: dict[str, Any],
    key: str,
    check: Callable[[KeyPath, object], Any],
    default: Any,
) -> Any:
    """``check`` the value if present (None if invalid), else ``default``."""
    if key not in tbl:
        return default
    return check(path + (key,), tbl[key])


def _array_of_tables(c: _Checker, data: dict[str, Any], key: str) -> list[tuple[int, dict]]:
    """``(index, table)`` for each well-formed entry of ``[[key]]``; reports the others."""
    v = data.get(key, [])
    if not isinstance(v, list):
        c.err((key,), f"expected an array of tables ([[{key}]] sections), got {_show(v)}")
        return []
    out = []
    for i, item in enumerate(v):
        if isinstance(item, dict):
            out.append((i, item))
        else:
            c.err((key, i), f"expected a table ([[{key}]]), got {_show(item)}")
    return out


def _validate(
    data: dict[str, Any],
    c: _Checker,
    path: Path | None,
    environ: Mapping[str, str] = os.environ,
) -> SiteConfig | None:
    c.keys((), data, _TOP_KEYS, required=("site",))

    # [site]
    site_tbl = c.table(("site",), data["site"]) if "site" in data else None
    site = site_tbl or {}
    sp: KeyPath = ("site",)
    if site_tbl is not None:
        c.keys(sp, site, _SITE_KEYS, required=("electricity_usd_kwh",))
    name = _get(c, sp, site, "name", lambda p, v: c.string(p, v, max_len=64), "site")
    elec = _get(
        c,
        sp,
        site,
        "electricity_usd_kwh",
        lambda p, v: c.number(p, v, 0, MAX_ELECTRICITY, unit="$/kWh"),
        None,
    )
    fee = _get(c, sp, site, "pool_fee_pct", lambda p, v: c.number(p, v, 0, 100, unit="%"), 0.0)
    overhead = _get(
        c,
        sp,
        site,
        "overhead_usd_day",
        lambda p, v: c.number(p, v, 0, MAX_OVERHEAD, unit="$/day per rig"),
        0.0,
    )
    tz = _get(c, sp, site, "timezone", lambda p, v: _check_timezone(c, p, v), None)
    periods = _tariff_periods(c, sp + ("tariff",), site["tariff"]) if "tariff" in site else ()
    power_feed = _get(
        c, sp, site, "power_feed", lambda p, v: _check_power_feed(c, p, v, environ), None
    )

    # [poll]
    poll = PollConfig()
    if "poll" in data:
        pt = c.table(("poll",), data["poll"])
        if pt is not None:
            pp: KeyPath = ("poll",)
            c.keys(pp, pt, _POLL_KEYS)
            d = PollConfig()
            poll = PollConfig(
                interval_s=_get(
                    c,
                    pp,
                    pt,
                    "interval_s",
                    lambda p, v: c.number(p, v, 0, 3600, lo_open=True, unit="s"),
                    d.interval_s,
                ),
                timeout_s=_get(
                    c,
                    pp,
                    pt,
                    "timeout_s",
                    lambda p, v: c.number(p, v, 0, 300, lo_open=True, unit="s"),
                    d.timeout_s,
                ),
                concurrency=_get(
                    c, pp, pt, "concurrency", lambda p, v: c.integer(p, v, 1, 10_000), d.concurrency
                ),
                retries=_get(c, pp, pt, "retries", lambda p, v: c.integer(p, v, 0, 10), d.retries),
                stuck_after_s=_get(
                    c,
                    pp,
                    pt,
                    "stuck_after_s",
                    lambda p, v: c.number(p, v, 10, 7 * 86400, unit="s"),
                    d.stuck_after_s,
                ),
            )

    # [models."..."]
    models: dict[str, ModelSpec] = {}
    shipped = Catalog.load()
    mt = c.table(("models",), data["models"]) if "models" in data else None
    for mname, mv in (mt or {}).items():
        mp: KeyPath = ("models", mname)
        before = len(c.issues)
        m = c.table(mp, mv)
        if m is None:
            continue
        if not normalise(mname):
            c.err(mp, "expected a model name with letters or digits")
            continue
        c.keys(mp, m, _MODEL_KEYS)
        base = shipped.get(mname)  # exact model only: "S21 Hydro" must not borrow from S21
        hr = _get(
            c,
            mp,
            m,
            "hashrate_ths",
            lambda p, v: c.number(p, v, 0, MAX_HASHRATE_THS, lo_open=True, unit="TH/s"),
            MISSING,
        )
        pw = _get(
            c,
            mp,
            m,
            "power_w",
            lambda p, v: c.number(p, v, 0, MAX_POWER_W, lo_open=True, unit="W"),
            MISSING,
        )
        src = _get(c, mp, m, "source", c.string, "config")
        if base is None:
            for key, val in (("hashrate_ths", hr), ("power_w", pw)):
                if val is MISSING:
                    c.err(
                        mp + (key,),
                        f"missing; {json.dumps(mname)} is not in the shipped "
                        "catalog, so both hashrate_ths and power_w are required",
                    )
        if len(c.issues) > before:
            continue
        if base is not None:
            hr = base.hashrate_ths if hr is MISSING else hr
            pw = base.power_w if pw is MISSING else pw
        models[mname] = ModelSpec(mname, hr, pw, src)
    catalog = Catalog.load(models)

    # [[rigs]]
    rigs: list[RigConfig] = []
    names_seen: dict[str, KeyPath] = {}
    endpoints_seen: dict[tuple[str, int | None], KeyPath] = {}
    for i, r in _array_of_tables(c, data, "rigs"):
        rp: KeyPath = ("rigs", i)
        c.keys(rp, r, _RIG_KEYS, required=("host",))
        host = _get(c, rp, r, "host", lambda p, v: c.string(p, v, max_len=253), None)
        canon = None
        if host is not None:
            canon = canonical_host(host)
            if canon is None:
                c.err(rp + ("host",), _host_problem(host))
        kind = _get(c, rp, r, "kind", lambda p, v: c.choice(p, v, KINDS), "auto")
        port = _get(
            c,
            rp,
            r,
            "port",
            lambda p, v: c.integer(p, v, 1, 65535),
            DEFAULT_PORTS.get(kind or "auto"),
        )
        rname = _get(c, rp, r, "name", lambda p, v: c.string(p, v, max_len=64), MISSING)
        if rname is MISSING:
            rname = (
                None
                if host is None
                else (host if port is None or port == DEFAULT_PORTS.get(kind or "")
                      else f"{host}:{port}")
            )
        model = _get(c, rp, r, "model", c.string, None)
        power = _get(
            c,
            rp,
            r,
            "power_w",
            lambda p, v: c.number(p, v, 0, MAX_POWER_W, lo_open=True, unit="W"),
            None,
        )
        relec = _get(
            c,
            rp,
            r,
            "electricity_usd_kwh",
            lambda p, v: c.number(p, v, 0, MAX_ELECTRICITY, unit="$/kWh"),
            None,
        )
        rover = _get(
            c,
            rp,
            r,
            "overhead_usd_day",
            lambda p, v: c.number(p, v, 0, MAX_OVERHEAD, unit="$/day"),
            None,
        )
        rhr = _get(
            c,
            rp,
            r,
            "hashrate_ths",
            lambda p, v: c.number(p, v, 0, MAX_HASHRATE_THS, lo_open=True, unit="TH/s"),
            None,
        )
        if model is not None and catalog.lookup(model) is None and (power is None or rhr is None):
            known = ", ".join(s.model for s in catalog)
            c.err(
                rp + ("model",),
                f"unknown model {_show(model)}; expected one of: {known} (or add a "
                f"[models.{json.dumps(model)}] table with hashrate_ths and power_w)",
            )
        if rname is not None:
            if rname in names_seen:
                c.err(
                    rp + ("name",),
                    f"duplicate rig name {_show(rname)}{c.also(names_seen[rname])}",
                )
            else:
                names_seen[rname] = rp + ("name",) if "name" in r else rp
        if canon is not None and (port is not None or "port" not in r):
            ep = (canon, port)
            if ep in endpoints_seen:
                where = host if port is None else f"{host}:{port}"
                c.err(
                    rp + ("host",),
                    f"duplicate rig address {where}{c.also(endpoints_seen[ep])}",
                )
            else:
                endpoints_seen[ep] = rp + ("host",)
        if c.issues:
            continue  # nothing is built from a config with problems; keep collecting them
        rigs.append(RigConfig(rname, host, port, kind, model, power, relec, rover, rhr))

    # [[scans]]
    scans: list[ScanRange] = []
    scans_seen: dict[tuple[str, int | None], KeyPath] = {}
    for i, s in _array_of_tables(c, data, "scans"):
        scp: KeyPath = ("scans", i)
        c.keys(scp, s, _SCAN_KEYS, required=("cidr",))
        kind = _get(c, scp, s, "kind", lambda p, v: c.choice(p, v, KINDS), "auto")
        port = _get(
            c,
            scp,
            s,
            "port",
            lambda p, v: c.integer(p, v, 1, 65535),
            DEFAULT_PORTS.get(kind or "auto"),
        )
        cidr = _get(c, scp, s, "cidr", lambda p, v: _check_cidr(c, p, v), None)
        if kind is None or cidr is None or (port is None and "port" in s):
            continue
        skey = (cidr, port)
        if skey in scans_seen:
            c.err(
                scp + ("cidr",),
                f"duplicate scan range {cidr}"
                f"{'' if port is None else f' port {port}'}{c.also(scans_seen[skey])}",
            )
            continue
        scans_seen[skey] = scp + ("cidr",)
        scans.append(ScanRange(cidr, port, kind))

    alerts = _alerts(c, data, path)
    notify = _notify(c, data, environ)
    theme: str | None = None
    if "ui" in data:
        ut = c.table(("ui",), data["ui"])
        if ut is not None:
            c.keys(("ui",), ut, _UI_KEYS)
            if "theme" in ut:
                v = ut["theme"]
                if isinstance(v, str) and _THEME_NAME.fullmatch(v):
                    theme = v
                else:
                    c.err(("ui", "theme"), 'expected a theme name like "nord" or '
                          f'"textual-dark" (the palette\'s "Theme" lists them), got {_show(v)}')
    extra = {k: data[k] for k in EXTRA_TABLES if k in data}
    if "keys" in data:
        from tui.commands import parse_keymap

        keys = data["keys"]
        try:
            parse_keymap(keys)
        except ValueError as e:
            # The message starts with the key path ("keys.quit: ..."): point at that line.
            head, _, why = str(e).partition(": ")
            parts = tuple(head.split(".", 1)) if head.startswith("keys.") else ("keys",)
            c.err(parts, why or str(e))
    if c.issues or elec is None or None in (name, fee, overhead):
        return None
    tariff = Tariff(periods, elec, tz) if periods else None
    return SiteConfig(
        name=name,
        electricity_usd_kwh=elec,
        pool_fee_pct=fee,
        overhead_usd_day=overhead,
        rigs=tuple(rigs),
        scans=tuple(scans),
        models=models,
        poll=poll,
        path=path,
        extra=extra,
        alerts=alerts,
        notify=notify,
        theme=theme,
        timezone=tz,
        tariff=tariff,
        power_feed=power_feed,
    )


# --------------------------------------------------------------------------- the power price

_DAYS_EXPECTED = 'expected days like "mon-fri", "sat,sun", "mon,wed-fri" or "all"'
_HOURS_EXPECTED = 'expected "start-end" local hours like "14-20", "22-6" or "9:30-17:15" (0–24)'


def _check_timezone(c: _Checker, path: KeyPath, v: object) -> str | None:
    name = c.string(path, v, max_len=64)
    if name is None:
        return None
    try:
        load_zone(name)
    except ZoneError as e:
        if e.no_database:
            c.err(path, str(e))
        else:
            hint = f' (did you mean "{e.suggestion}"?)' if e.suggestion else ""
            c.err(path, f'expected an IANA time zone name like "America/Chicago", '
                        f"got {_show(v)}{hint}")
        return None
    return name


def _check_days(c: _Checker, path: KeyPath, v: object) -> frozenset[int] | None:
    text = ",".join(v) if isinstance(v, list) and v and all(
        isinstance(x, str) for x in v) else v
    if not isinstance(text, str):
        c.err(path, f"{_DAYS_EXPECTED}, got {_show(v)}")
        return None
    try:
        return parse_days(text)
    except ValueError:
        c.err(path, f"{_DAYS_EXPECTED}, got {_show(v)}")
        return None


def _check_hours(c: _Checker, path: KeyPath, v: object) -> tuple[float, float] | None:
    if not isinstance(v, str):
        c.err(path, f"{_HOURS_EXPECTED}, got {_show(v)}")
        return None
    try:
        return parse_hours(v)
    except ValueError as e:
        why = "" if str(e) == "not hours like 14-20" else f": {e}"
        c.err(path, f"{_HOURS_EXPECTED}, got {_show(v)}{why}")
        return None


def _tariff_periods(c: _Checker, tp: KeyPath, v: object) -> tuple[TariffPeriod, ...]:
    """``[[site.tariff]]``: the periods (overlaps are errors: a price is never ambiguous)."""
    if not isinstance(v, list):
        hint = " (write [[site.tariff]], with double brackets)" if isinstance(v, dict) else ""
        c.err(tp, f"expected an array of tables ([[site.tariff]] sections), got {_show(v)}"
                  f"{hint}")
        return ()
    if len(v) > MAX_TARIFF_PERIODS:
        c.err(tp, f"expected at most {MAX_TARIFF_PERIODS} periods, got {len(v)}")
        return ()
    found: list[tuple[int, TariffPeriod]] = []
    for i, item in enumerate(v):
        ip = tp + (i,)
        if not isinstance(item, dict):
            c.err(ip, f"expected a table ([[site.tariff]]), got {_show(item)}")
            continue
        c.keys(ip, item, _TARIFF_KEYS, required=("hours", "usd_kwh"))
        days = _get(c, ip, item, "days", lambda p, x: _check_days(c, p, x), frozenset(range(7)))
        hours = _get(c, ip, item, "hours", lambda p, x: _check_hours(c, p, x), None)
        price = _get(
            c, ip, item, "usd_kwh",
            lambda p, x: c.number(p, x, 0, MAX_ELECTRICITY, unit="$/kWh"), None,
        )
        pname = _get(c, ip, item, "name", lambda p, x: c.string(p, x, max_len=32), None)
        if days is None or hours is None or price is None or ("name" in item and pname is None):
            continue
        found.append((i, TariffPeriod(days, hours[0], hours[1], price, pname)))
    for a, b, where in periods_overlaps([p for _i, p in found]):
        i, j = found[a][0], found[b][0]
        line = c.line(tp + (i,))
        other = f"site.tariff[{i}]" + (f" (line {line})" if line is not None else "")
        c.err(
            tp + (j,),
            f"{format_hours(found[b][1].start_h, found[b][1].end_h)} overlaps {other} on "
            f"{where}: periods must not overlap (a price would be ambiguous)",
        )
    return tuple(p for _i, p in found)


def _check_feed_url(c: _Checker, path: KeyPath, v: object) -> str | None:
    expected = 'expected an http:// or https:// URL like "https://prices.example.com/now"'
    if not isinstance(v, str) or not v.strip():
        c.err(path, f"{expected}, got {_show(v) if not isinstance(v, str) else 'nothing'}")
        return None
    problem = _url_problem(v.strip(), "power_feed")
    if problem:
        c.err(path, f"{expected}, but {problem} {_NOT_SHOWN}")
        return None
    return v.strip()


def _check_json_path(c: _Checker, path: KeyPath, v: object) -> tuple[str, ...] | None:
    expected = ('expected a dotted path into the JSON reply like "data.0.price" (keys, and '
                "list indexes counting from 0; -1 is the last item)")
    if not isinstance(v, str) or len(v) > 200 or any(ord(ch) < 32 for ch in v):
        c.err(path, f"{expected}, got {_show(v)}")
        return None
    try:
        return parse_path(v)
    except ValueError as e:
        c.err(path, f"{expected}, got {_show(v)}: {e}")
        return None


def _check_power_feed(
    c: _Checker, fp: KeyPath, v: object, environ: Mapping[str, str]
) -> PowerFeedConfig | None:
    t = c.table(fp, v)
    if t is None:
        return None
    before = len(c.issues)
    c.keys(fp, t, _POWER_FEED_KEYS, required=("url", "path", "unit"))
    url = _get(c, fp, t, "url", lambda p, x: _check_feed_url(c, p, x), None)
    jpath = _get(c, fp, t, "path", lambda p, x: _check_json_path(c, p, x), None)
    unit = _get(c, fp, t, "unit", lambda p, x: c.choice(p, x, POWER_UNITS), None)
    interval = _get(
        c, fp, t, "interval_s", lambda p, x: c.number(p, x, 10, 86_400, unit="s"), 300.0
    )
    token_env = _get(c, fp, t, "token_env", lambda p, x: _check_env(c, p, x, environ), None)
    if len(c.issues) > before or None in (url, jpath, unit, interval):
        return None
    return PowerFeedConfig(url, jpath, unit, interval, token_env)


def _check_cidr(c: _Checker, path: KeyPath, v: object) -> str | None:
    expected = 'expected a CIDR range like "10.0.2.0/24"'
    if not isinstance(v, str):
        c.err(path, f"{expected}, got {_show(v)}")
        return None
    try:
        net = ipaddress.ip_network(v.strip(), strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(v.strip(), strict=False)
        except ValueError:
            c.err(path, f"{expected}, got {_show(v)}")
        else:
            c.err(
                path,
                f'{expected} with the host bits clear (did you mean "{loose}"?), got {_show(v)}',
            )
        return None
    if net.num_addresses > MAX_SCAN_ADDRESSES:
        c.err(
            path,
            f"expected a range of at most {MAX_SCAN_ADDRESSES:,} addresses (a /16), "
            f"got {_show(v)} with {net.num_addresses:,}: split it, or check for a typo",
        )
        return None
    return str(net)


# [alerts]: key -> (low, high, low bound open, unit) of each threshold; ``false`` turns it off.
_ALERT_THRESHOLDS: dict[str, tuple[float, float, bool, str]] = {
    "rig_offline_s": (0, 7 * 86400, False, "s"),
    "rig_stuck_s": (0, 7 * 86400, False, "s"),
    "rig_margin_below_usd_day": (-MAX_OVERHEAD, MAX_OVERHEAD, False, "$/day"),
    "rig_temp_above_c": (0, 150, True, "°C"),
    "rig_hashrate_below_nominal_pct": (0, 99, True, "% under nominal"),
    "drift_beyond_pct": (0, 1000, True, "% off 600 s"),
    "retarget_within_h": (0, 720, True, "hours"),
}
_ALERT_KEYS = ("enabled", *_ALERT_THRESHOLDS, "rig_board_down", "hold_s", "bell", "log_file")


def _alerts(c: _Checker, data: dict[str, Any], path: Path | None) -> AlertRules:
    """The ``[alerts]`` table (all keys optional; absent: :class:`AlertRules` defaults)."""
    d = AlertRules()
    if "alerts" not in data:
        return d
    ap: KeyPath = ("alerts",)
    t = c.table(ap, data["alerts"])
    if t is None:
        return d
    c.keys(ap, t, _ALERT_KEYS)
    values: dict[str, Any] = {}
    for key, (lo, hi, lo_open, unit) in _ALERT_THRESHOLDS.items():
        if key in t:
            values[key] = _alert_threshold(c, ap + (key,), t[key], lo, hi, lo_open, unit)
    for key in ("enabled", "bell", "rig_board_down"):
        if key in t:
            values[key] = _check_bool(c, ap + (key,), t[key])
    if "hold_s" in t:
        hold = t["hold_s"]
        if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not (
                math.isfinite(hold) and 0 <= hold <= 3600):
            c.err(ap + ("hold_s",), f"expected a number 0–3600 (s), got {_show(hold)}")
        else:
            values["hold_s"] = float(hold)
    if "log_file" in t:
        values["log_file"] = _check_log_file(c, ap + ("log_file",), t["log_file"], path)
    # None is "off" for a threshold; for the rest it means invalid (reported): keep the default
    keep = {k: v for k, v in values.items() if v is not None or k in _ALERT_THRESHOLDS}
    return replace(d, **keep)


def _alert_threshold(
    c: _Checker, path: KeyPath, v: object, lo: float, hi: float, lo_open: bool, unit: str
) -> float | None:
    """A number in range, or ``false`` (None: the alert is off; also None when invalid, which
    is reported, and nothing is built from a config with problems)."""
    if v is False:
        return None
    ok = (
        not isinstance(v, bool)
        and isinstance(v, (int, float))
        and math.isfinite(v)
        and (v > lo if lo_open else v >= lo)
        and v <= hi
    )
    if not ok:
        rng = f">{_num(lo)} and ≤{_num(hi)}" if lo_open else f"{_num(lo)}–{_num(hi)}"
        c.err(path, f"expected a number {rng} ({unit}) or false to turn it off, got {_show(v)}")
        return None
    return float(v)  # type: ignore[arg-type]


def _check_bool(c: _Checker, path: KeyPath, v: object) -> bool | None:
    if isinstance(v, bool):
        return v
    c.err(path, f"expected true or false, got {_show(v)}")
    return None


def _check_log_file(c: _Checker, path: KeyPath, v: object, config: Path | None) -> Path | None:
    """A file path (``~`` expanded; relative to the config file's directory), or ``false``."""
    if v is False:
        return None
    expected = 'expected a file path like "~/minertop-alerts.log" or false'
    if not isinstance(v, str) or not v.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in v):
        c.err(path, f"{expected}, got {_show(v)}")
        return None
    try:
        p = Path(v.strip()).expanduser()
    except RuntimeError:  # "~user" with no such user, or no home directory
        c.err(path, f"{expected}; can't expand ~ in {_show(v)}")
        return None
    if not p.is_absolute() and config is not None:
        p = config.parent / p
    try:
        is_dir = p.is_dir()
    except OSError:
        is_dir = False
    if is_dir:
        c.err(path, f"{expected}, got {_show(v)}, which is a directory")
        return None
    return p


# --------------------------------------------------------------------------- [[notify]]

#: Keys every ``[[notify]]`` table takes, then each kind's own.
_NOTIFY_COMMON = ("kind", "name", "min_severity", "kinds", "events")
_NOTIFY_KEYS: dict[str, tuple[str, ...]] = {
    "webhook": ("url", "headers", "headers_env"),
    "ntfy": ("url", "title", "priority", "tags", "token_env"),
    "slack": ("url", "url_env"),
    "email": (
        "host",
        "port",
        "tls",
        "starttls",
        "username",
        "password_env",
        "from",
        "to",
        "subject_prefix",
    ),
}
_URL_EXAMPLES = {
    "webhook": "https://ops.example.com/minertop",
    "ntfy": "https://ntfy.sh/my-site-alerts",
    "slack": "https://hooks.slack.com/services/...",
}
_NOT_SHOWN = "(the value is not repeated here: it may be a secret)"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_RESERVED_HEADERS = ("host", "content-length", "transfer-encoding", "connection")
_EMAIL_ADDR = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+")
MAX_RECIPIENTS = 50


def _notify(
    c: _Checker, data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[NotifyConfig, ...]:
    """The ``[[notify]]`` destinations (see :mod:`tui.notify` for what each key does)."""
    out: list[NotifyConfig] = []
    names_seen: dict[str, KeyPath] = {}
    for i, t in _array_of_tables(c, data, "notify"):
        np: KeyPath = ("notify", i)
        before = len(c.issues)
        if "password" in t:
            c.err(
                np + ("password",),
                "a password doesn't belong in the config file: put it in an environment "
                "variable and give that variable's name in password_env",
            )
        if "kind" not in t:
            c.err(np + ("kind",), "missing (required): one of " + ", ".join(NOTIFY_KINDS))
            continue
        kind = c.choice(np + ("kind",), t["kind"], NOTIFY_KINDS)
        if kind is None:
            continue
        allowed = (*_NOTIFY_COMMON, *_NOTIFY_KEYS[kind])
        c.keys(np, {k: v for k, v in t.items() if k != "password"}, allowed)
        name = _get(c, np, t, "name", lambda p, v: c.string(p, v, max_len=64), f"{kind}[{i}]")
        min_sev = _get(
            c, np, t, "min_severity", lambda p, v: c.choice(p, v, SEVERITIES), "warning"
        )
        kinds = _get(c, np, t, "kinds", lambda p, v: _check_alert_kinds(c, p, v), None)
        events = _get(c, np, t, "events", lambda p, v: _check_events(c, p, v), EVENT_KINDS)
        fields: dict[str, Any] = {}
        if kind in ("webhook", "ntfy"):
            if "url" not in t:
                c.err(np + ("url",), "missing (required)")
            else:
                fields["url"] = _check_url(c, np + ("url",), t["url"], kind)
        if kind == "webhook":
            headers = _get(c, np, t, "headers", lambda p, v: _check_headers(c, p, v), ())
            fields["headers"] = headers
            fields["headers_env"] = (
                _check_headers_env(c, np + ("headers_env",), t["headers_env"], environ,
                                   headers or ())
                if "headers_env" in t
                else ()
            )
        elif kind == "ntfy":
            fields["title"] = _get(c, np, t, "title", lambda p, v: c.string(p, v), None)
            fields["priority"] = _get(
                c, np, t, "priority", lambda p, v: _check_priority(c, p, v), None
            )
            fields["tags"] = _get(c, np, t, "tags", lambda p, v: _check_tags(c, p, v), ())
            fields["token_env"] = _get(
                c, np, t, "token_env", lambda p, v: _check_env(c, p, v, environ), None
            )
        elif kind == "slack":
            if "url" in t and "url_env" in t:
                c.err(np + ("url_env",), "give url or url_env, not both")
            elif "url" in t:
                fields["url"] = _check_url(c, np + ("url",), t["url"], kind)
            elif "url_env" in t:
                var = _check_env(c, np + ("url_env",), t["url_env"], environ)
                fields["url_env"] = var
                if var is not None and var in environ:
                    problem = _url_problem(environ[var], kind)
                    if problem:
                        c.err(
                            np + ("url_env",),
                            f"environment variable {var} should hold the webhook URL, "
                            f"but {problem} {_NOT_SHOWN}",
                        )
            else:
                c.err(
                    np + ("url",),
                    "missing (required): the incoming-webhook URL, or url_env naming the "
                    "environment variable that holds it (it is a secret)",
                )
        elif kind == "email":
            fields.update(_notify_email(c, np, t, environ))
        if name is not None and name in names_seen:
            c.err(
                np + ("name",) if "name" in t else np,
                f"duplicate notify name {_show(name)}{c.also(names_seen[name])}",
            )
        elif name is not None:
            names_seen[name] = np + ("name",) if "name" in t else np
        if len(c.issues) > before:
            continue  # every invalid value was reported; nothing is built from it
        out.append(
            NotifyConfig(
                kind=cast(NotifyKind, kind),
                name=name,
                min_severity=min_sev,
                kinds=kinds,
                events=events,
                **fields,
            )
        )
    return tuple(out)


def _notify_email(
    c: _Checker, np: KeyPath, t: dict[str, Any], environ: Mapping[str, str]
) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if "host" not in t:
        c.err(np + ("host",), "missing (required): the SMTP server's host name")
    else:
        host = c.string(np + ("host",), t["host"], max_len=253)
        if host is not None and canonical_host(host) is None:
            c.err(np + ("host",), _host_problem(host))
            host = None
        f["host"] = host
    f["port"] = _get(
        c, np, t, "port", lambda p, v: c.integer(p, v, 1, 65535), DEFAULT_SMTP_PORT
    )
    tls_key, tls = _notify_tls(c, np, t, f["port"])
    if tls is not None:
        f["tls"] = tls  # not given: by port (NotifyConfig.tls_mode)
    user = _get(c, np, t, "username", lambda p, v: c.string(p, v, max_len=254), MISSING)
    pw_env = _get(
        c, np, t, "password_env", lambda p, v: _check_env(c, p, v, environ), MISSING
    )
    if user is not MISSING and pw_env is MISSING:
        c.err(
            np + ("password_env",),
            "missing: username is set, so password_env (the name of the environment "
            "variable holding the password) is required",
        )
    if pw_env is not MISSING and user is MISSING:
        c.err(np + ("username",), "missing: password_env is set, so username is required")
    if user is not MISSING and tls == "none":
        was = "false" if tls_key == "starttls" else '"none"'
        c.err(
            np + (tls_key,),
            f"{was} with a username would send the password unencrypted: use "
            + ("starttls = true" if tls_key == "starttls" else 'tls = "starttls"')
            + ' or tls = "ssl" (or no username, for a relay that needs no login)',
        )
    if user is not MISSING:
        f["username"] = user
    if pw_env is not MISSING:
        f["password_env"] = pw_env
    if "from" not in t:
        c.err(np + ("from",), 'missing (required): the sender, e.g. "alerts@example.com"')
    else:
        f["sender"] = _check_address(c, np + ("from",), t["from"])
    if "to" not in t:
        c.err(np + ("to",), 'missing (required): a recipient or a list of them')
    else:
        f["to"] = _check_recipients(c, np + ("to",), t["to"])
    if "subject_prefix" in t:
        f["subject_prefix"] = c.string(np + ("subject_prefix",), t["subject_prefix"], max_len=64)
    return f


def _notify_tls(
    c: _Checker, np: KeyPath, t: dict[str, Any], port: int | None
) -> tuple[str, str | None]:
    """``(key, mode)``: the email ``tls`` mode and the key it came from (``tls``, or the
    older ``starttls = true/false``).  None: not given (implicit TLS on port 465, else
    STARTTLS), or invalid (reported)."""
    if "tls" in t and "starttls" in t:
        c.err(
            np + ("starttls",),
            'give tls or starttls, not both (starttls = true is tls = "starttls", '
            'starttls = false is tls = "none")',
        )
        return "tls", None
    if "starttls" in t:
        on = _check_bool(c, np + ("starttls",), t["starttls"])
        key, mode = "starttls", None if on is None else ("starttls" if on else "none")
    elif "tls" in t:
        key, mode = "tls", c.choice(np + ("tls",), t["tls"], TLS_MODES)
    else:
        return "tls", None
    if mode == "starttls" and port == IMPLICIT_TLS_PORT:
        given = "starttls = true" if key == "starttls" else 'tls = "starttls"'
        c.err(
            np + (key,),
            f"{given} doesn't work on port {IMPLICIT_TLS_PORT}: that port expects implicit "
            f'TLS from the first byte (the server never greets a plain connection): use tls = '
            f'"ssl" (the default on port {IMPLICIT_TLS_PORT}), or port 587 for STARTTLS',
        )
    return key, mode


def _url_problem(v: str, kind: str) -> str | None:
    """Why ``v`` is no good as ``kind``'s URL (never quoting it: it may hold a secret)."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in v):
        return "it contains spaces or control characters"
    try:
        u = urlsplit(v)
        host = u.hostname
        u.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "it is not a valid URL"
    if u.scheme not in ("http", "https"):
        return "it doesn't start with http:// or https://"
    if not host:
        return "it has no host name"
    if kind == "ntfy" and not u.path.strip("/"):
        return "it has no topic after the host"
    return None


def _check_url(c: _Checker, path: KeyPath, v: object, kind: str) -> str | None:
    expected = f'expected an http:// or https:// URL like "{_URL_EXAMPLES[kind]}"'
    if not isinstance(v, str) or not v.strip():
        c.err(path, f"{expected}, got {_show(v) if not isinstance(v, str) else 'nothing'}")
        return None
    problem = _url_problem(v.strip(), kind)
    if problem:
        c.err(path, f"{expected}, but {problem} {_NOT_SHOWN}")
        return None
    return v.strip()


def _check_env(
    c: _Checker, path: KeyPath, v: object, environ: Mapping[str, str]
) -> str | None:
    """The name of an environment variable that is set (its value is never shown)."""
    if not isinstance(v, str) or not _ENV_NAME.fullmatch(v):
        c.err(
            path,
            "expected the name of an environment variable (letters, digits and _, e.g. "
            f"MINERTOP_SMTP_PASSWORD), not the secret itself {_NOT_SHOWN}",
        )
        return None
    if v not in environ:
        c.err(path, f"environment variable {v} is not set")
        return None
    if not environ[v]:
        c.err(path, f"environment variable {v} is empty")
        return None
    return v


def _header_value_ok(v: object) -> bool:
    return (
        isinstance(v, str)
        and bool(v.strip())
        and len(v) <= 4096
        and all(32 <= ord(ch) < 127 or 0xA0 <= ord(ch) <= 0xFF or ch == "\t" for ch in v)
    )


def _check_header_name(c: _Checker, path: KeyPath, k: str) -> bool:
    if not _HEADER_NAME.fullmatch(k):
        c.err(path, f"expected an HTTP header name like X-Api-Key, got {_show(k)}")
        return False
    if k.lower() in _RESERVED_HEADERS:
        c.err(path, f"the {k} header is set by minertop, not by the config")
        return False
    return True


def _check_headers(c: _Checker, path: KeyPath, v: object) -> tuple[tuple[str, str], ...] | None:
    t = c.table(path, v)
    if t is None:
        return None
    out: list[tuple[str, str]] = []
    ok = True
    for k, hv in t.items():
        if not _check_header_name(c, path + (k,), k):
            ok = False
        elif not _header_value_ok(hv):
            c.err(
                path + (k,),
                "expected a header value: a string of printable characters on one line"
                + (f" {_NOT_SHOWN}" if isinstance(hv, str) else f", got {_show(hv)}"),
            )
            ok = False
        else:
            out.append((k, hv))
    return tuple(out) if ok else None


def _check_headers_env(
    c: _Checker,
    path: KeyPath,
    v: object,
    environ: Mapping[str, str],
    plain: tuple[tuple[str, str], ...],
) -> tuple[tuple[str, str], ...] | None:
    t = c.table(path, v)
    if t is None:
        return None
    taken = {k.lower() for k, _v in plain}
    out: list[tuple[str, str]] = []
    ok = True
    for k, var in t.items():
        hp = path + (k,)
        if not _check_header_name(c, hp, k):
            ok = False
            continue
        if k.lower() in taken:
            c.err(hp, f"the {k} header is also given in headers: keep one")
            ok = False
            continue
        name = _check_env(c, hp, var, environ)
        if name is None:
            ok = False
        elif not _header_value_ok(environ[name]):
            c.err(
                hp,
                f"environment variable {name} should hold a header value (printable "
                f"characters on one line), but it doesn't {_NOT_SHOWN}",
            )
            ok = False
        else:
            out.append((k, name))
    return tuple(out) if ok else None


def _check_priority(c: _Checker, path: KeyPath, v: object) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5:
        return v
    if isinstance(v, str) and v.strip().lower() in NTFY_PRIORITIES:
        return NTFY_PRIORITIES[v.strip().lower()]
    names = ", ".join(f'"{n}"' for n in NTFY_PRIORITIES if n != "max")
    c.err(path, f"expected 1–5 or one of {names}, got {_show(v)}")
    return None


def _check_string_list(
    c: _Checker, path: KeyPath, v: object, what: str, max_items: int = 50
) -> list[tuple[KeyPath, str]] | None:
    """The items of a non-empty array of strings (shape only)."""
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or len(v) > max_items:
        c.err(path, f"expected an array of 1–{max_items} {what}, got {_show(v)}")
        return None
    out = []
    for j, item in enumerate(v):
        if not isinstance(item, str):
            c.err(path + (j,), f"expected a string ({what}), got {_show(item)}")
            return None
        out.append((path + (j,), item))
    return out


def _check_tags(c: _Checker, path: KeyPath, v: object) -> tuple[str, ...] | None:
    items = _check_string_list(c, path, v, "tags", 20)
    if items is None:
        return None
    out = []
    for p, tag in items:
        tag = tag.strip()
        if not tag or len(tag) > 64 or "," in tag or not all(32 <= ord(ch) < 127 for ch in tag):
            c.err(p, f"expected a tag of 1–64 ASCII characters without commas, got {_show(tag)}")
            return None
        out.append(tag)
    return tuple(out)


def _check_alert_kinds(c: _Checker, path: KeyPath, v: object) -> tuple[str, ...] | None:
    items = _check_string_list(c, path, v, 'alert kinds like "offline", "temp"')
    if items is None:
        return None
    out: list[str] = []
    for p, raw in items:
        k = c.string(p, raw, max_len=32)
        if k is None:
            return None
        if k not in out:
            out.append(k)
    return tuple(out)


def _check_events(c: _Checker, path: KeyPath, v: object) -> tuple[str, ...] | None:
    items = _check_string_list(c, path, v, 'events ("fired", "cleared")', 2)
    if items is None:
        return None
    out: list[str] = []
    for p, e in items:
        if c.choice(p, e, EVENT_KINDS) is None:
            return None
        if e not in out:
            out.append(e)
    return tuple(out)


def _check_address(c: _Checker, path: KeyPath, v: object) -> str | None:
    expected = 'expected an email address like "alerts@example.com" or "minertop <a@example.com>"'
    if not isinstance(v, str) or any(ord(ch) < 32 or ord(ch) == 127 for ch in v) or len(v) > 320:
        c.err(path, f"{expected}, got {_show(v)}")
        return None
    _name, addr = parseaddr(v.strip())
    if not _EMAIL_ADDR.fullmatch(addr):
        c.err(path, f"{expected}, got {_show(v)}")
        return None
    return v.strip()


def _check_recipients(c: _Checker, path: KeyPath, v: object) -> tuple[str, ...] | None:
    items = _check_string_list(c, path, v, "email addresses", MAX_RECIPIENTS)
    if items is None:
        return None
    out = []
    for p, item in items:
        a = _check_address(c, p if isinstance(v, list) else path, item)
        if a is None:
            return None
        out.append(a)
    return tuple(out)


# --------------------------------------------------------------------------- loading

_SYNTAX_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_SYNTAX_END = re.compile(r"\s*\(at end of document\)\s*$")


def default_config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CONFIG_HOME/minertop/config.toml``; ``~/.config/...`` when unset or relative."""
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):
        base = Path(xdg)
    else:
        home = environ.get("HOME") or str(Path.home())
        base = Path(home) / ".config"
    return base / "minertop" / "config.toml"


def load_config(
    path: Path | str | None = None, *, environ: Mapping[str, str] = os.environ
) -> SiteConfig | None:
    """Load and validate the config; None when ``path`` is None and the default file is absent.

    Raises :class:`ConfigError` for anything else that is wrong (missing explicit file,
    unreadable, not UTF-8, TOML syntax, any invalid value).
    """
    explicit = path is not None
    p = Path(path).expanduser() if path is not None else default_config_path(environ)
    shown = display_path(p, environ)
    if not explicit and not p.exists():
        return None
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(shown, None, None, "", "no such file")], p) from None
    except IsADirectoryError:
        raise ConfigError(
            [ConfigIssue(shown, None, None, "", "is a directory, expected a TOML file")], p
        ) from None
    except OSError as e:
        raise ConfigError(
            [ConfigIssue(shown, None, None, "", f"can't read: {e.strerror or e}")], p
        ) from None
    return parse_config(raw, path=p, shown=shown, environ=environ)


def parse_config(
    source: bytes | str,
    *,
    path: Path | None = None,
    shown: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> SiteConfig:
    """Validate config text (``path`` is recorded in the result and used in messages).

    ``environ`` is where the secrets named by ``[[notify]]``'s ``*_env`` keys must be set.
    """
    shown = shown or (display_path(path) if path is not None else "<config>")
    if isinstance(source, bytes):
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError as e:
            line = source[: e.start].count(b"\n") + 1
            raise ConfigError(
                [ConfigIssue(shown, line, None, "", "not valid UTF-8 text")], path
            ) from None
    else:
        text = source
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([_syntax_issue(shown, text, e)], path) from None
    checker = _Checker(shown, _Locator(text))
    cfg = _validate(data, checker, path, environ)
    if checker.issues or cfg is None:
        issues = checker.issues or [ConfigIssue(shown, None, None, "", "invalid configuration")]
        issues.sort(key=lambda i: i.line or 0)
        if len(issues) > MAX_ERRORS:
            more = len(issues) - MAX_ERRORS
            issues = issues[:MAX_ERRORS] + [
                ConfigIssue(shown, None, None, "", f"... and {more} more problems")
            ]
        raise ConfigError(issues, path)
    return cfg


def _syntax_issue(shown: str, text: str, e: Exception) -> ConfigIssue:
    msg = str(e.args[0]) if e.args and isinstance(e.args[0], str) else str(e)
    line = getattr(e, "lineno", None)
    col = getattr(e, "colno", None)
    m = _SYNTAX_POS.search(msg)
    if m:
        line, col = line or int(m.group(1)), col or int(m.group(2))
        msg = msg[: m.start()]
    elif _SYNTAX_END.search(msg):
        msg = _SYNTAX_END.sub("", msg)
        line = line or text.count("\n") + 1
        col = col or len(text) - (text.rfind("\n") + 1) + 1
    msg = msg.strip() or "invalid TOML"
    return ConfigIssue(shown, line, col, "", f"TOML syntax error: {msg[0].lower()}{msg[1:]}")


# --------------------------------------------------------------------------- example


EXAMPLE_CONFIG = """\
# minertop configuration (written by `minertop init-config`).
#
# Read from $XDG_CONFIG_HOME/minertop/config.toml (default ~/.config/minertop/config.toml)
# or from --config PATH.  Everything is checked at start-up: a typo or a bad value is an
# error that names the line and the key, never silently ignored.

[site]
name = "Texas-A"
electricity_usd_kwh = 0.06   # what you pay for power, US$ per kWh (0–10)
pool_fee_pct = 2.0           # pool fee, % of gross revenue (0–100; default 0)
overhead_usd_day = 0.0       # optional hosting/opex per rig, US$ per day (default 0)

# Time-of-use pricing and a live price feed (both optional).  [[site.tariff]] periods are in
# the site's local wall-clock time (timezone: an IANA name; default this machine's zone), so
# "14-20" is 14:00-20:00 on the clock on both sides of a DST change; outside every period
# electricity_usd_kwh applies.  days: "mon-fri", "sat,sun", "mon,wed-fri", "fri-mon", "all".
# hours: [start, end) in local hours 0-24, "14-20" or "9:30-17:15"; "22-6" runs across
# midnight and belongs to the day it starts on (days = "fri" is Friday 22:00 to Saturday
# 06:00).  Periods must not overlap.  A [site.power_feed] is polled every interval_s: while
# its last price is fresh (at most 3 intervals old) it wins over the tariff; when it is
# stale or failing, the tariff (or the flat price) applies.  The price in force now drives
# margins and break-even.  A rig with its own electricity_usd_kwh always pays that price: it
# ignores the tariff and the feed.
# timezone = "America/Chicago"
#
# [[site.tariff]]
# name = "peak"                       # optional label for the dashboard
# days = "mon-fri"
# hours = "14-20"
# usd_kwh = 0.19
#
# [[site.tariff]]
# name = "night"
# days = "all"
# hours = "22-6"
# usd_kwh = 0.045
#
# [site.power_feed]
# url = "https://prices.example.com/ercot/hb_north"  # http(s); `minertop sim` serves one
# path = "data.0.price"               # dotted path into the JSON reply: keys, list indexes
# unit = "usd_mwh"                    # "usd_mwh" ($/MWh, divided by 1000) or "usd_kwh"
# interval_s = 300                    # seconds between polls (10-86400; default 300)
# # token_env = "MINERTOP_POWER_TOKEN"  # sent as "Authorization: Bearer <its value>"

# How rigs are polled (these are the defaults; the whole table is optional).
[poll]
interval_s = 10              # seconds between polls
timeout_s = 3                # per-rig deadline; a hung rig never delays the cycle
concurrency = 256            # rigs polled at once (1–10000)
retries = 1                  # extra attempts after a failure (0–10)
stuck_after_s = 600          # a rig answering whose accepted shares (or every figure) have
                             # not moved this long is "stuck": it earns nothing (10 s–7 days)

# Alerts (these are the defaults; the whole table is optional).  Each alert fires once when
# its condition starts and clears once when it ends: a notification, the alerts screen (a),
# optionally the terminal bell and a log file.  Set a threshold to false to turn it off.
[alerts]
enabled = true
rig_offline_s = 300                  # a rig offline or in error for longer than this (s)
rig_stuck_s = 300                    # a rig stuck (answers, does not mine) longer than this (s)
rig_board_down = true                # a rig with a hashboard down (no hashrate, chips missing)
rig_margin_below_usd_day = 0.0       # a rig's margin below this, US$ per day (0: losing money)
rig_temp_above_c = 85                # a rig's hottest sensor above this (°C)
rig_hashrate_below_nominal_pct = 20  # live hashrate more than this % under its model's nominal
drift_beyond_pct = 10                # this epoch's mean block interval this % off 600 s
retarget_within_h = 24               # the next retarget less than this many hours away
hold_s = 60                          # a condition must last this long to fire, and be gone
                                     # this long to clear: noisy readings don't flap
bell = false                         # ring the terminal bell when an alert fires
# log_file = "~/.local/state/minertop/alerts.log"  # append a line per alert (default: none)

# The dashboard's look (optional).  A theme picked in the command palette (ctrl+p, "Theme")
# is remembered for the next run; this setting wins over it, and $TEXTUAL_THEME over both.
# [ui]
# theme = "nord"                     # textual-dark, textual-light, nord, gruvbox, ...

# Notifications (none by default): each [[notify]] gets one message per poll cycle with that
# cycle's alerts (a digest when there are several).  A destination that is down is retried
# with backoff and never delays polling.  Secrets stay out of this file: name environment
# variables instead (password_env, token_env, url_env, headers_env); one that isn't set is
# an error at start-up.  Every destination also takes: name (a label for logs and status),
# min_severity = "warning" (default) or "critical", kinds = ["offline", "temp", ...] (default
# all: offline, margin, temp, hashrate, drift, retarget), events = ["fired", "cleared"].
#
# [[notify]]
# kind = "ntfy"                        # phone push via https://ntfy.sh or your own server
# url = "https://ntfy.sh/texas-a-7f3kq9"  # the topic URL: pick a hard-to-guess topic
# min_severity = "critical"
# # title = "Texas-A"                  # default: the summary line
# # priority = "high"                  # 1-5 or min/low/default/high/urgent (default: urgent
# #                                    # when a critical alert fired, else default)
# # tags = ["pick"]                    # default: rotating_light / warning / white_check_mark
# # token_env = "MINERTOP_NTFY_TOKEN"  # access token for a protected topic
#
# [[notify]]
# kind = "slack"                       # Slack, Mattermost or Discord (".../slack") webhook
# url_env = "MINERTOP_SLACK_URL"       # the webhook URL is a secret (or: url = "https://...")
# kinds = ["offline", "temp"]
#
# [[notify]]
# kind = "webhook"                     # POST JSON to your own endpoint (see the README)
# url = "https://ops.example.com/minertop"
# headers = { X-Site = "texas-a" }
# headers_env = { Authorization = "MINERTOP_WEBHOOK_AUTH" }  # header = variable holding it
#
# [[notify]]
# kind = "email"
# host = "smtp.example.com"
# port = 587                           # default 587 with STARTTLS; 465: implicit TLS
# username = "alerts@example.com"
# password_env = "MINERTOP_SMTP_PASSWORD"  # never the password itself
# from = "minertop <alerts@example.com>"
# to = ["ops@example.com", "oncall@example.com"]
# subject_prefix = "[mine]"

# Rigs listed one by one.  A host alone is enough: minertop finds the protocol it speaks.
#   kind = "auto" (default): the cgminer-style API on 4028, else Whatsminer API v3 on 4433,
#                     else ESP-Miner's HTTP API on 80 (with a port: each of them on it).
#   kind = "cgminer": the miner API on TCP 4028 (Antminer, Whatsminer before 2024.11,
#                     Avalon, Braiins OS, LuxOS, Vnish); port defaults to 4028.
#   kind = "whatsminer-v3": Whatsminer API v3 (firmware after 2024.11); port 4433.
#   kind = "bitaxe":  ESP-Miner's (AxeOS) HTTP API; port defaults to 80.
# Optional per rig: model (overrides the model the rig reports), power_w (e.g. measured at
# the PDU; used when the rig reports no power), hashrate_ths (nominal), electricity_usd_kwh
# and overhead_usd_day (override the site's).

[[rigs]]
name = "a-01"
host = "10.0.1.11"
model = "Antminer S19j Pro"  # stock Antminer firmware reports no power: estimated from J/TH
power_w = 3150               # ...unless you know it: then this is used, not an estimate

[[rigs]]
name = "b-07"
host = "10.0.1.57"
kind = "whatsminer-v3"       # a Whatsminer M60S on 2025 firmware: it reports its own power
electricity_usd_kwh = 0.055  # this container is on a cheaper tariff

[[rigs]]
name = "garage-bitaxe"
host = "192.168.1.50"
kind = "bitaxe"

# Address ranges scanned for rigs not listed above (each at most a /16).
[[scans]]
cidr = "10.0.2.0/24"         # finds cgminer-API rigs, Whatsminer v3 and Bitaxes (kind = "auto")

# Nominal specs: minertop ships a table (S9 … S21 XP Hydro, M30S++ … M66S, Avalon A1366,
# Bitaxe Gamma).  Override a model (either figure alone is fine) or add one of your own;
# the nominal J/TH is used to estimate power when a rig doesn't report it.
[models."S19j Pro"]
hashrate_ths = 100
power_w = 3050
source = "our PDU readings, Jan 2026"
"""


def write_example_config(path: Path | str, *, force: bool = False) -> Path:
    """Write :data:`EXAMPLE_CONFIG` to ``path`` (creating parent directories).

    Refuses to overwrite an existing file unless ``force``: raises FileExistsError.
    """
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    if force:
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(EXAMPLE_CONFIG, encoding="utf-8")
        os.replace(tmp, p)
    else:
        try:
            with p.open("x", encoding="utf-8") as f:
                f.write(EXAMPLE_CONFIG)
        except FileExistsError:
            raise FileExistsError(
                f"{display_path(p)} already exists; not overwriting it (use --force to replace it)"
            ) from None
    return p
