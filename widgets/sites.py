"""The fleet view's panes: the network as the sites see it, one row per site, a site's rigs.

Passive like every pane: :class:`~tui.fleet_app.FleetApp` fetches from Prometheus and hands
them :mod:`tui.fleet` records (no I/O here, no source imported).  A fleet has tens of sites,
so the sites table is Textual's ``DataTable`` keyed by site name; a site's rigs are shown
with the dashboard's own :class:`~widgets.rigs.RigsPane`.

Site names, instances, models and hosts come from remote metrics: they are shown as plain
``Text`` through :func:`~tui.safe.safe`, never as markup.  A site whose daemon Prometheus
can't scrape says ``✗ DOWN <age>`` in words, not in colour only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input

from tui.dashboard import fmt_local
from tui.fleet import EH, FleetNetwork, FleetRig, FleetSite
from tui.fmt import fmt_duration, fmt_pct, fmt_usd
from tui.safe import safe
from tui.site import RigRow
from widgets.base import Pane, SortFilter, SourceStatus, fit_columns, fmt_age, set_border
from widgets.header import HeaderBar
from widgets.rigs import COLUMNS as RIG_COLUMNS
from widgets.rigs import Column, RigsPane, RigTable

# --------------------------------------------------------------------------- formatting


def usd(v: float | None) -> str:
    """Whole dollars with a sign: ``+$1,234``, ``−$56``, ``—``."""
    return fmt_usd(v, signed=True)


def fmt_hashrate(ths: float | None) -> str:
    """``12.34 PH/s`` from 1,000 TH/s up, else ``812.3 TH/s``."""
    if ths is None:
        return "—"
    if abs(ths) >= 1000:
        return f"{ths / 1000:,.2f} PH/s"
    return f"{ths:,.1f} TH/s"


def _sum(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def site_age(site: FleetSite, elapsed_s: float) -> float | None:
    """Seconds since the site's last successful scrape, ``elapsed_s`` after the fetch."""
    if site.scrape_age_s is None:
        return None
    return site.scrape_age_s + max(0.0, elapsed_s)


def _short_age(age_s: float | None) -> str:
    """``fmt_age`` without "ago" (minute resolution: the cell changes once a minute)."""
    return "never" if age_s is None else fmt_age(age_s).removesuffix(" ago")


def daemon_text(site: FleetSite, elapsed_s: float) -> Text:
    if site.daemon_up:
        return Text("● up", style="green")
    return Text(f"✗ DOWN {_short_age(site_age(site, elapsed_s))}", style="bold red")


def _money_cell(v: float | None) -> Text:
    if v is None:
        return Text("—", justify="right")
    return Text(usd(v), style="red" if v < 0 else "green", justify="right")


def _cost_cell(site: FleetSite, price: float | None) -> Text:
    cost = site.production_cost_usd_per_btc
    if cost is None:
        return Text("—", justify="right")
    price = site.btc_price_usd or price
    if not price:
        return Text(fmt_usd(cost), justify="right")
    pct = cost / price * 100
    over = pct >= 100
    # Above the price ("!" as well as red): every coin costs more to mine than it fetches.
    return Text(f"{fmt_usd(cost)} {pct:.0f}%{'!' if over else ''}",
                style="bold red" if over else "", justify="right")


def _rigs_cell(site: FleetSite) -> Text:
    short = site.rigs_up < site.rigs_total
    return Text(f"{site.rigs_up}/{site.rigs_total}", style="yellow" if short else "",
                justify="right")


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class SiteColumn:
    key: str
    label: str
    width: int
    #: the cell of a site, given the price (for cost/BTC) and seconds since the fetch
    cell: Callable[[FleetSite, float | None, float], Text]
    #: the value it sorts by, rounded like the cell; None sorts last either way
    value: Callable[[FleetSite, float], Any]
    priority: int = 0  #: 0 = always shown; higher numbers are dropped first when narrow
    ticks: bool = False  #: the cell moves with time (redrawn by :meth:`SitesPane.tick`)


def _rounded(v: float | None, nd: int) -> float | None:
    return None if v is None else round(v, nd)


def _daemon_value(s: FleetSite, elapsed: float) -> tuple[int, float]:
    if s.daemon_up:
        return (1, 0.0)
    age = site_age(s, elapsed)
    return (0, -(age // 60) if age is not None else float("-inf"))  # longest down first


def _rigs_value(s: FleetSite, elapsed: float) -> float | None:
    return None if not s.rigs_total else round(s.rigs_up / s.rigs_total, 4)


SITE_COLUMNS: tuple[SiteColumn, ...] = (
    SiteColumn("site", "site", 14, lambda s, p, e: Text(safe(s.site, 40), style="bold"),
               lambda s, e: s.site.lower()),
    SiteColumn("daemon", "daemon", 12, lambda s, p, e: daemon_text(s, e), _daemon_value,
               ticks=True),
    SiteColumn("rigs", "rigs up", 9, lambda s, p, e: _rigs_cell(s), _rigs_value),
    SiteColumn("hashrate", "hashrate", 11,
               lambda s, p, e: Text(fmt_hashrate(s.hashrate_ths), justify="right"),
               lambda s, e: _rounded(s.hashrate_ths, 1)),
    SiteColumn("power", "kW", 8,
               lambda s, p, e: Text("—" if s.power_w is None else f"{s.power_w / 1000:,.1f}",
                                    justify="right"),
               lambda s, e: _rounded(None if s.power_w is None else s.power_w / 1000, 1), 3),
    SiteColumn("margin", "margin/d", 9, lambda s, p, e: _money_cell(s.margin_usd_day),
               lambda s, e: _rounded(s.margin_usd_day, 0)),
    SiteColumn("after", "after RT", 9,
               lambda s, p, e: _money_cell(s.margin_after_retarget_usd_day),
               lambda s, e: _rounded(s.margin_after_retarget_usd_day, 0), 2),
    SiteColumn("cost", "cost/BTC", 13, lambda s, p, e: _cost_cell(s, p),
               lambda s, e: _rounded(s.production_cost_usd_per_btc, 0), 1),
    SiteColumn("scraped", "scraped", 9,
               lambda s, p, e: Text(_short_age(site_age(s, e)) + (
                   "" if s.scrape_age_s is None else " ago"), style="dim", justify="right"),
               lambda s, e: _rounded(site_age(s, e), -1), 4, ticks=True),
)
SITE_COLUMN_BY_KEY = {c.key: c for c in SITE_COLUMNS}


def site_columns_for(width: int) -> tuple[SiteColumn, ...]:
    """The columns that fit ``width`` cells, most important first, in table order."""
    return fit_columns(SITE_COLUMNS, width)


def site_matches(site: FleetSite, needle: str) -> bool:
    """The filter: a case-insensitive substring of the name or the scrape target, or the
    word ``down`` / ``up``."""
    if not needle:
        return True
    n = needle.lower()
    words = (site.site, site.instance, "up" if site.daemon_up else "down")
    return any(n in w.lower() for w in words)


def sort_sites(sites: Mapping[str, FleetSite], names: Sequence[str], column: SiteColumn,
               reverse: bool, elapsed: float) -> list[str]:
    """``names`` in ``column``'s order; ties by name; sites without a value last."""
    present: list[tuple[Any, str]] = []
    missing: list[str] = []
    for name in names:
        v = column.value(sites[name], elapsed)
        if v is None:
            missing.append(name)
        else:
            present.append((v, name))
    present.sort(key=lambda p: p[1].lower())
    present.sort(key=lambda p: p[0], reverse=reverse)
    missing.sort(key=str.lower)
    return [n for _, n in present] + missing


def fleet_title(sites: Sequence[FleetSite], width: int = 200) -> str:
    """The sites pane's title: the fleet's totals, trimmed to fit its border."""
    n = len(sites)
    down = sum(1 for s in sites if not s.daemon_up)
    parts = [f"Sites · {n}" + (f" ({down} ✗ DOWN)" if down else ""),
             f"{sum(s.rigs_up for s in sites):,}/{sum(s.rigs_total for s in sites):,} rigs up",
             fmt_hashrate(_sum([s.hashrate_ths for s in sites]))]
    watts = _sum([s.power_w for s in sites])
    parts.append("— kW" if watts is None else f"{watts / 1000:,.1f} kW")
    parts.append(f"margin {usd(_sum([s.margin_usd_day for s in sites]))}/day")
    after = _sum([s.margin_after_retarget_usd_day for s in sites])
    if after is not None:
        parts.append(f"after RT {usd(after)}")
    while len(" · ".join(parts)) > width - 6 and len(parts) > 4:
        parts.pop()
    return " · ".join(parts)


# --------------------------------------------------------------------------- sites pane


class SiteTable(DataTable[Text]):
    """The sites table: ``enter`` is named in the footer (it opens the site's rigs)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "rigs", show=True),
    ]


class SitesPane(SortFilter, Vertical):
    """One row per site, sortable (``s`` ``<`` ``>`` ``i``) and filterable (``/``), with the
    fleet's totals in its title and the data's freshness in its subtitle."""

    can_focus = False
    DEFAULT_CSS = """
    SitesPane { border: round $panel-lighten-2; height: 1fr; padding: 0 0; }
    SitesPane:focus-within { border: round $accent; }
    SitesPane.-error { border: round $error; }
    SitesPane > DataTable { height: 1fr; background: $surface; }
    SitesPane > DataTable:nocolor > .datatable--cursor { text-style: bold reverse; }
    SitesPane > Input, SitesPane > Input:focus {
        display: none; height: 1; border: none; padding: 0 1;
    }
    SitesPane.-filtering > Input { display: block; }
    """

    #: Seconds between re-sorts when only values in the sort column drifted.
    RESORT_EVERY_S = 60.0

    class Open(Message):
        """``enter`` (or a click on the cursor row): open this site's rigs."""

        def __init__(self, site: str) -> None:
            super().__init__()
            self.site = site

    def __init__(self, *, id: str | None = "sites") -> None:
        super().__init__(id=id)
        self.border_title = "Sites"
        self.sort_column = "daemon"
        self.sort_reverse = False
        self.filter_text = ""
        self.price: float | None = None
        self.fetched_at: float | None = None  #: when the shown sites were fetched
        self.now = 0.0
        self.status: SourceStatus | None = None
        self._sites: dict[str, FleetSite] = {}
        self._order: list[str] = []
        self._cells: dict[str, list[Text]] = {}
        self._sorted_at: float | None = None
        self.columns: tuple[SiteColumn, ...] = site_columns_for(200)

    def compose(self) -> ComposeResult:
        yield SiteTable(cursor_type="row", zebra_stripes=False)
        yield Input(placeholder="filter: site name, target, 'down' (esc clears)",
                    id="site-filter")

    def on_mount(self) -> None:
        self._set_columns(self.columns)
        set_border(self, subtitle=self._subtitle())

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one(DataTable)

    @property
    def order(self) -> list[str]:
        """The site names shown, top to bottom."""
        return list(self._order)

    @property
    def sites(self) -> dict[str, FleetSite]:
        return dict(self._sites)

    @property
    def cursor_site(self) -> str | None:
        if not self._order:
            return None
        row = self.table.cursor_row
        return self._order[row] if 0 <= row < len(self._order) else None

    def cells_of(self, name: str) -> list[str]:
        """The plain text of a shown site's cells (tests, ``--once``-like checks)."""
        return [c.plain for c in self._cells.get(name, [])]

    @property
    def elapsed(self) -> float:
        return 0.0 if self.fetched_at is None else max(0.0, self.now - self.fetched_at)

    # ---------------------------------------------------------------- data
    def show(self, sites: Sequence[FleetSite], *, price: float | None, fetched_at: float,
             now: float) -> None:
        """A new fetch: re-sort at once when sites come, go or go down (or up); values that
        merely drift re-sort at most once a minute, so rows don't jump under the cursor."""
        old = self._sites
        self._sites = {s.site: s for s in sites}
        self.price, self.fetched_at, self.now = price, fetched_at, now
        set_border(self, title=fleet_title(sites, self.size.width or 200))
        changed = set(old) != set(self._sites) or any(
            old[k].daemon_up != s.daemon_up for k, s in self._sites.items() if k in old)
        if not changed and (self._sorted_at is None
                            or time.monotonic() - self._sorted_at >= self.RESORT_EVERY_S):
            value = SITE_COLUMN_BY_KEY[self.sort_column].value
            e = self.elapsed
            changed = any(value(old[k], e) != value(s, e) for k, s in self._sites.items())
        self._sync(resort=changed)

    def tick(self, now: float) -> None:
        """Time passed: the ages move (minute resolution, so a cell changes once a minute)."""
        self.now = now
        if self._sites:
            self._sync(resort=False, only_ticking=True)

    def set_status(self, status: SourceStatus) -> None:
        """The freshness of the data (``✗ STALE 2m ago · reason`` while fetches fail; the
        last sites stay on screen)."""
        self.status = status
        if bool(status.error) != self.has_class("-error"):
            self.set_class(bool(status.error), "-error")
        set_border(self, subtitle=self._subtitle())

    def _subtitle(self) -> str:
        arrow = "▼" if self.sort_reverse else "▲"
        parts = [] if self.status is None else [self.status.label()]
        parts.append(f"sort {SITE_COLUMN_BY_KEY[self.sort_column].label} {arrow}")
        if self.filter_text:
            parts.append(f"filter “{safe(self.filter_text, 40)}” "
                         f"{len(self._order)}/{len(self._sites)}")
        return " · ".join(parts)

    def _sync(self, *, resort: bool, only_ticking: bool = False) -> None:
        names = [k for k, s in self._sites.items() if site_matches(s, self.filter_text)]
        if resort or set(names) != set(self._order):
            self._sorted_at = time.monotonic()
            order = sort_sites(self._sites, names, SITE_COLUMN_BY_KEY[self.sort_column],
                               self.sort_reverse, self.elapsed)
        else:
            order = self._order
        self._draw(order, only_ticking=only_ticking)
        set_border(self, subtitle=self._subtitle())

    def _row(self, name: str) -> list[Text]:
        site, e = self._sites[name], self.elapsed
        return [c.cell(site, self.price, e) for c in self.columns]

    def _draw(self, order: list[str], only_ticking: bool = False) -> None:
        table = self.table
        if order != self._order or table.row_count != len(order):
            keep = self.cursor_site
            table.clear()
            self._cells = {}
            for name in order:
                cells = self._row(name)
                self._cells[name] = cells
                table.add_row(*cells, key=name)
            self._order = list(order)
            if keep in order:
                table.move_cursor(row=order.index(keep), animate=False)
            return
        cols = [(i, c) for i, c in enumerate(self.columns) if c.ticks or not only_ticking]
        e = self.elapsed
        for name in order:
            old = self._cells.get(name)
            site = self._sites[name]
            new = list(old) if old is not None else self._row(name)
            for i, c in cols:
                cell = c.cell(site, self.price, e)
                if old is None or (cell.plain, str(cell.style)) != (old[i].plain,
                                                                    str(old[i].style)):
                    new[i] = cell
                    table.update_cell(name, c.key, cell)
            self._cells[name] = new

    def _set_columns(self, columns: Sequence[SiteColumn]) -> None:
        self.columns = tuple(columns)
        table = self.table
        keep = self.cursor_site
        table.clear(columns=True)
        for c in self.columns:
            label = Text(c.label, justify="left" if c.key in ("site", "daemon") else "right")
            table.add_column(label, width=c.width, key=c.key)
        self._order = []
        self._cells = {}
        if self.sort_column not in {c.key for c in self.columns}:
            self.sort_column = "daemon"  # a hidden column can't order the table
        self._sync(resort=True)
        if keep in self._order:
            table.move_cursor(row=self._order.index(keep), animate=False)

    def on_resize(self) -> None:
        cols = site_columns_for(self.size.width - 2)
        if cols != self.columns:
            self._set_columns(cols)
        if self._sites:
            set_border(self, title=fleet_title(list(self._sites.values()), self.size.width))

    # ---------------------------------------------------------------- sort & filter
    def _resort(self) -> None:
        self._sync(resort=True)

    def _refilter(self) -> None:
        self._sync(resort=True)

    @property
    def filtering(self) -> bool:
        return bool(self.filter_text) or self.has_class("-filtering")

    def clear_filter(self) -> None:
        self.query_one(Input).value = ""
        self.remove_class("-filtering")
        self.set_filter("")
        self.table.focus()

    @on(Input.Changed, "#site-filter")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_filter(event.value)

    @on(Input.Submitted, "#site-filter")
    def _done(self, event: Input.Submitted) -> None:
        event.stop()
        self.remove_class("-filtering")
        self.table.focus()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Open(str(event.row_key.value)))


# --------------------------------------------------------------------------- network pane


class NetworkPane(Pane):
    """The network as the freshest site's daemon sees it (from the metrics only)."""

    TITLE = "Network"
    DEFAULT_CSS = """
    NetworkPane { height: 6; }
    """

    def __init__(self, *, id: str | None = "network") -> None:
        super().__init__(id=id)
        self.network: FleetNetwork | None = None
        self.now = 0.0

    def show(self, network: FleetNetwork | None, now: float) -> None:
        self.network, self.now = network, now
        title = "Network" if network is None else f"Network · from {safe(network.site, 30)}"
        set_border(self, title=title)
        self.redraw()

    def tick(self, now: float) -> None:
        """The retarget countdown moves."""
        self.now = now
        if self.network is not None and self.network.retarget_eta_unix is not None:
            self.redraw()

    def body(self, width: int) -> Text:
        n = self.network
        t = Text(no_wrap=True, overflow="ellipsis")
        if n is None:
            t.append("no network data from any site yet", style="dim")
            return t
        wide = width >= 90
        label_w = 10 if wide else 4

        def label(full: str, short: str) -> None:
            t.append(f"{full if wide else short:<{label_w}}", style="bold")

        def ehs(w: str) -> str:
            v = n.hashrate_hs.get(w)
            return "—" if v is None else f"{v / EH:,.1f}"

        label("hashrate", "hr")
        t.append(f"{ehs('1d')} EH/s", style="bold")
        t.append(f" 1d · {ehs('3d')} 3d · {ehs('7d')} 7d")
        diff = "—" if n.difficulty is None else f"{n.difficulty / 1e12:,.2f} T"
        t.append(f"   difficulty {diff}" if wide else f" · diff {diff}")
        t.append("\n")

        label("price", "$")
        hp = n.hashprice_usd_per_phs_day
        t.append("hashprice " + ("—" if hp is None else f"${hp:,.2f}/PH/day"), style="bold")
        t.append(" · BTC " + ("—" if n.btc_price_usd is None else f"${n.btc_price_usd:,.0f}"))
        t.append("\n")

        label("retarget", "rt")
        left = n.retarget_blocks_remaining
        t.append("—" if left is None else f"{left:,} blocks", style="bold")
        change = n.retarget_change_pct
        t.append(" · projected " if wide else " · ")
        t.append(fmt_pct(change, 2), style="" if change is None else
                 ("bold green" if change < 0 else "bold red"))
        if n.retarget_eta_unix is not None:
            eta = n.retarget_eta_unix
            t.append(f" · ETA {fmt_local(eta) if wide else fmt_local(eta, '%a %H:%M')}")
            remaining = eta - self.now
            t.append(f" · in {fmt_duration(remaining, short=not wide)}" if remaining > 0
                     else " · due now")
        t.append("\n")

        label("drift", "dr")
        epoch = n.drift_pct.get("epoch")
        t.append(f"epoch {fmt_pct(epoch)}",
                 style="bold red" if epoch is not None and epoch > 5 else "bold")
        for w in ("6", "36", "144"):
            v = n.drift_pct.get(w)
            t.append(f" · {w} blk {fmt_pct(v, 0)}",
                     style="red" if v is not None and v > 25 else "")
        if wide:
            t.append("  (+ = slower than 10 min)", style="dim")
        return t


# --------------------------------------------------------------------------- header


class FleetHeader(HeaderBar):
    """The header of the fleet view: Prometheus, BTC price, hashprice, freshness, clock.

    ``statuses`` holds one entry (the fleet fetch); its error is spelt out (shortened to
    what fits), not just a ``✗``."""

    def _left(self, width: int, level: int) -> Text:
        """The source, price and hashprice; ``level`` 1 and 2 make room for an error's
        reason (shorter words, then no source: the reason names it)."""
        wide = width >= 100 and level == 0
        left = Text(" minertop fleet" if wide else "", style="bold")
        parts = [
            self.source,
            "BTC " + ("—" if self.price is None else f"${self.price:,.0f}"),
            ("hashprice " if width >= 110 and level == 0 else "hp ")
            + ("—" if self.hashprice is None else f"${self.hashprice:,.1f}/PH/d"),
        ]
        if level >= 2:
            parts = parts[1:]
        for i, p in enumerate(parts):
            left.append(" · " if i or wide else " ")
            left.append(p)
        if self.paused:
            left.append(" ⏸ PAUSED", style="bold reverse")
        return left

    def _right(self, room: int) -> Text:
        """The freshness: ``updated 12s ago``, or ``✗ STALE 2m · <reason>`` in ``room``."""
        right = Text()
        for st in self.statuses.values():
            age = st.age_s
            if st.error:
                right.append(" ✗ STALE " + ("no data" if age is None else fmt_duration(age)),
                             style="bold red")
                left = room - right.cell_len - 3
                if left >= 12:
                    right.append(" · " + safe(st.error, left), style="red")
            elif age is None:
                right.append(" connecting…", style="dim")
            else:
                right.append(f" updated {fmt_duration(age)} ago", style="dim")
        return right

    def _line(self) -> tuple[int, int, Text]:
        width = self.size.width
        clock = Text(f"  {time.strftime('%H:%M:%S', time.localtime(self.now))} ")
        error = next((st.error for st in self.statuses.values() if st.error), None)
        # A failure's reason outranks the decorations: make room for (most of) it.
        want = 0 if error is None else min(len(safe(error)), 30) + 20
        for level in (0, 1, 2):
            left = self._left(width, level)
            if width - left.cell_len - clock.cell_len - 1 >= want:
                break
        right = self._right(width - left.cell_len - clock.cell_len - 1)
        right.append_text(clock)
        gap = width - left.cell_len - right.cell_len
        if gap < 1:
            right = self._right(width - left.cell_len - 1)
            gap = max(1, width - left.cell_len - right.cell_len)
        out = left + Text(" " * gap) + right
        out.truncate(width)
        return min(left.cell_len, width), min(left.cell_len + gap, width), out


# --------------------------------------------------------------------------- a site's rigs


def rig_row(r: FleetRig) -> RigRow:
    """A rig as Prometheus has it, as a row of the rigs pane (what is not exported is None)."""
    jth = (r.power_w / r.hashrate_ths
           if r.power_w is not None and r.hashrate_ths else None)
    return RigRow(
        rig_id=r.rig, name=r.rig, host=r.host, model=r.model, status=r.status or (
            "ok" if r.up else "offline"), reason=None,
        hashrate_ths=r.hashrate_ths, power_w=r.power_w, power_estimated=r.power_estimated,
        j_per_th=jth, revenue=r.revenue_usd_day, cost=r.cost_usd_day,
        margin=r.margin_usd_day, margin_after=r.margin_after_retarget_usd_day,
        breakeven_kwh=None, shutdown_price=None, temp_max=r.temp_c, age_s=None, pool=None,
        economics=None, firmware=r.firmware or None)


def rigs_title(site: str, rigs: Sequence[FleetRig], width: int = 200, note: str = "") -> str:
    """The title of a site's rigs: its totals over the rigs that answer.  ``note``: said
    right after the name (e.g. that the daemon is down and these are its last numbers)."""
    up = [r for r in rigs if r.up]
    down = len(rigs) - len(up)
    parts = [f"Rigs · {safe(site, 24)}" + (f" ({note})" if note else ""), f"{len(rigs)} rigs"]
    if down:
        parts.append(f"{down} ✗")
    parts.append(fmt_hashrate(_sum([r.hashrate_ths for r in up]) or 0.0))
    watts = _sum([r.power_w for r in up])
    parts.append("— kW" if watts is None else f"{watts / 1000:,.1f} kW")
    parts.append(f"margin {usd(_sum([r.margin_usd_day for r in rigs]))}/day")
    after = _sum([r.margin_after_retarget_usd_day for r in rigs])
    if after is not None:
        parts.append(f"after RT {usd(after)}")
    while len(" · ".join(parts)) > width - 6 and len(parts) > 3:
        parts.pop()
    return " · ".join(parts)


#: Rig columns Prometheus has no series for (they would be "—" on every row).
UNEXPORTED = frozenset({"be", "shutdown"})


def fleet_rig_columns(width: int) -> tuple[Column, ...]:
    """The rigs pane's columns that fit ``width``, without the ones not exported."""
    return fit_columns([c for c in RIG_COLUMNS if c.key not in UNEXPORTED], width)


class FleetRigsPane(RigsPane):
    """The dashboard's rigs pane, minus the columns Prometheus does not carry."""

    def __init__(self, *, id: str | None = "site-rigs") -> None:
        super().__init__(id=id)
        self.columns = fleet_rig_columns(200)

    def on_resize(self, event: events.Resize | None = None) -> None:
        if event is not None:
            event.prevent_default()  # instead of RigsPane's (which would bring them back)
        cols = fleet_rig_columns(self.size.width - 2)
        if cols != self.columns:
            self.columns = cols
            if self.sort_column not in {c.key for c in cols}:
                self.sort_column = "status"
            self.table.set_columns(cols)
            self._sync(self._rows, force_sort=True)


class SiteRigsScreen(Screen[None]):
    """One site's rigs, as Prometheus last scraped them (the app fetches, this shows)."""

    DEFAULT_CSS = """
    SiteRigsScreen { layout: vertical; }
    """

    def __init__(self, site: str) -> None:
        super().__init__()
        self.site = site
        self.rigs: tuple[FleetRig, ...] | None = None  #: None: not fetched yet
        self.fetched_at: float | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield FleetHeader(id="site-header")
        yield FleetRigsPane()
        yield Footer()

    def on_mount(self) -> None:
        pane = self.pane
        set_border(pane, title=f"Rigs · {safe(self.site, 40)} · loading…")
        pane.table.focus()

    @property
    def pane(self) -> RigsPane:
        return self.query_one(RigsPane)

    @property
    def header(self) -> FleetHeader:
        return self.query_one(FleetHeader)

    def show_rigs(self, rigs: Sequence[FleetRig], fetched_at: float, note: str = "") -> None:
        """A fetch of the site's rigs; ``note`` goes in the title after the site's name."""
        self.rigs, self.fetched_at, self.error = tuple(rigs), fetched_at, None
        pane = self.pane
        pane.set_error(None)
        pane.show([rig_row(r) for r in rigs],
                  rigs_title(self.site, rigs, self.size.width or 200, note))

    def show_error(self, error: str, now: float) -> None:
        """The rigs could not be fetched: the last ones stay, the border says why."""
        self.error = error
        if self.rigs is None:  # nothing shown yet: not "loading…" any more
            set_border(self.pane, title=f"Rigs · {safe(self.site, 40)}")
        self.tick(now)

    def tick(self, now: float) -> None:
        if self.error is None:
            return
        label = SourceStatus(self.fetched_at, self.error, now).label()
        self.pane.set_error(label.removeprefix("✗ "))

    @on(RigTable.Open)
    def _open(self, event: RigTable.Open) -> None:
        event.stop()
        self.notify("a rig's history and details are on its site's own dashboard "
                    "(minertop --attach the site's daemon)", timeout=5)


__all__ = ["FleetHeader", "FleetRigsPane", "NetworkPane", "SiteRigsScreen", "SitesPane",
           "fleet_title", "rig_row", "rigs_title"]

