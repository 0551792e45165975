"""The site's rigs as rows of numbers (pure: no I/O, no Textual).

Combines each rig's configuration, its last good reading and its poll status with the
network's hashprice and the projected retarget into the rows of the rigs pane and the site
totals.  ``--once --json`` and the app both use :func:`compute_site`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui.catalog import Catalog, resolve_power
from tui.config import RigConfig, SiteConfig
from tui.economics import Hashprice, RigEconomics, SiteTotals, rig_economics, site_totals
from tui.fmt import fmt_usd, fmt_usd_kwh
from tui.model import Hashboard, RigReading
from tui.safe import safe

if TYPE_CHECKING:  # types only: this module does no I/O and imports no client
    from tui.sources.rigs import RigFleet, RigTarget


@dataclass(frozen=True)
class RigInput:
    """What the app knows about one rig at this moment."""

    rig_id: str
    host: str
    port: int | None  #: None: not known yet (an ``auto`` rig not identified)
    config: RigConfig | None  #: None for a rig found by a scan
    reading: RigReading | None  #: last good reading (None: never read)
    status: str  #: "ok" | "stuck" | "stale" | "offline" | "error"
    reason: str | None
    age_s: float | None  #: age of ``reading``


def inputs_from_fleet(targets: Sequence[RigTarget], fleet: RigFleet, site: SiteConfig,
                      now: float) -> list[RigInput]:
    """What is known of each polled rig now: its config, last good reading and status."""
    configured = {r.name: r for r in site.rigs}
    return [rig_input(t, fleet, configured, now) for t in targets]


def rig_input(target: RigTarget, fleet: RigFleet, configured: Mapping[str, RigConfig],
              now: float) -> RigInput:
    """One rig's :class:`RigInput` (``configured``: the site's rigs by name)."""
    status, reason = fleet.status(target.rig_id, now)
    state = fleet.state(target.rig_id)
    last = state.last if state is not None else None
    port = target.port
    if port is None and last is not None and last.port:
        port = last.port  # an ``auto`` rig: the port its protocol was found on
    return RigInput(
        rig_id=target.rig_id, host=target.host, port=port,
        config=configured.get(target.rig_id), reading=fleet.last_good(target.rig_id),
        status=status, reason=reason, age_s=fleet.age(target.rig_id, now))


@dataclass(frozen=True)
class RigRow:
    rig_id: str
    name: str
    host: str  #: the address as configured or found (no port: see ``port``)
    model: str  #: display name (catalog name if known, else what the rig reports)
    status: str
    reason: str | None
    hashrate_ths: float | None
    power_w: float | None
    power_estimated: bool
    j_per_th: float | None
    revenue: float | None
    cost: float | None
    margin: float | None
    margin_after: float | None
    breakeven_kwh: float | None
    shutdown_price: float | None
    temp_max: float | None
    age_s: float | None = field(compare=False)  #: moves every second: not a change of the rig
    pool: str | None
    economics: RigEconomics | None
    nominal_ths: float | None = None  #: the model's (or the config's) nominal hashrate
    firmware: str | None = None  #: as the rig reports it (e.g. "antminer", "braiins")
    port: int | None = None  #: the port it is read on (None: not identified yet)
    protocol: str | None = None  #: "cgminer", "whatsminer-v3" or "bitaxe" (None: not known)
    boards: tuple[Hashboard, ...] = ()  #: per-board figures, where the firmware reports them
    boards_down: int = 0  #: boards with no hashrate or chips missing
    #: the power price this rig's numbers use ($/kWh): its own, or the site's in force now
    electricity_usd_kwh: float | None = None
    own_price: bool = False  #: the rig has its own ``electricity_usd_kwh`` (ignores tariffs)

    @property
    def address(self) -> str:
        """``host:port`` (``[v6]:port``), or the host alone while the port is not known."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def boards_text(self) -> str | None:
        """``"2/3 boards"`` when a board is down, else None."""
        if not self.boards_down:
            return None
        n = len(self.boards)
        return f"{n - self.boards_down}/{n} boards"

    @property
    def board_problem(self) -> str | None:
        """The first down board in words: "board 2: no hashrate"."""
        for b in self.boards:
            if b.down:
                return f"board {b.index}: {b.problem}"
        return None


@dataclass(frozen=True)
class PowerNow:
    """The site's power price in force now, and when and to what it changes next."""

    usd_kwh: float
    source: str  #: "feed" (a live price), "tariff" (a time-of-use period) or "flat"
    next_change_unix: float | None = None  #: None: no change known ahead
    next_usd_kwh: float | None = None
    next_label: str | None = None  #: the next change in the site's local time, "Mon 14:00"


@dataclass(frozen=True)
class SiteView:
    name: str
    rows: tuple[RigRow, ...]
    totals: SiteTotals
    price_usd: float | None
    counts: dict[str, int]  #: rigs per status
    live_ths: float = 0.0  #: hashrate of the rigs hashing now (known before any price)
    live_power_w: float = 0.0  #: their power, reported or estimated
    power: PowerNow | None = None  #: the power price the numbers use (None: the flat one)

    def title(self, width: int = 120) -> str:
        t = self.totals
        n = len(self.rows)
        down = self.counts.get("offline", 0) + self.counts.get("error", 0)
        stuck = self.counts.get("stuck", 0)
        parts = [f"Rigs · {safe(self.name, 24)}", f"{n} rigs"]
        if down:
            parts.append(f"{down} ✗")
        if stuck:
            parts.append(f"{stuck} stuck")
        parts.append(f"{self.live_ths / 1000:,.2f} PH/s")
        parts.append(f"{self.live_power_w / 1000:,.1f} kW")
        parts.append(f"margin {_usd(t.margin_usd_day)}/day")
        if t.margin_after_retarget_usd_day is not None:
            parts.append(f"after RT {_usd(t.margin_after_retarget_usd_day)}")
        price_full = price_short = None
        if self.power is not None and self.power.source != "flat":
            p = self.power
            price_short = fmt_usd_kwh(p.usd_kwh)
            price_full = price_short
            if p.next_change_unix is not None and p.next_usd_kwh is not None:
                when = p.next_label or time.strftime("%a %H:%M",
                                                     time.localtime(p.next_change_unix))
                price_full += f" → {fmt_usd_kwh(p.next_usd_kwh, unit=False)} {when}"
            parts.append(price_full)
        if t.production_cost_usd_per_btc is not None:
            cost = f"cost/BTC {fmt_usd(t.production_cost_usd_per_btc)}"
            if self.price_usd:
                cost += f" vs {fmt_usd(self.price_usd)}"
            parts.append(cost)
        # Shorten until the title fits its border, least telling first: the margin after the
        # retarget, the production cost against the price, the power price's next change,
        # the power price in force (the margins depend on it).
        def fits() -> bool:
            return len(" · ".join(parts)) <= width - 6

        for part in [x for x in parts if x.startswith(("after RT", "cost/BTC"))]:
            if not fits():
                parts.remove(part)
        if not fits() and price_full is not None and price_full != price_short:
            parts[parts.index(price_full)] = price_short or ""
        if not fits() and price_short is not None and price_short in parts:
            parts.remove(price_short)
        return " · ".join(parts)


def _usd(v: float | None) -> str:
    return fmt_usd(v, signed=True)


def compute_site(
    inputs: Sequence[RigInput],
    *,
    site: SiteConfig,
    catalog: Catalog,
    hashprice: Hashprice | None,
    price_usd: float | None,
    retarget_change_pct: float | None,
    power: PowerNow | None = None,
) -> SiteView:
    """The rows and totals.  ``power``: the site's power price in force now (a time-of-use
    period or a live feed); None: the flat ``electricity_usd_kwh``.  A rig with its own
    ``electricity_usd_kwh`` keeps it."""
    rows: list[RigRow] = []
    site_power = power  # (each rig's watts are rig_w below)
    site_price = site.electricity_usd_kwh if power is None else power.usd_kwh
    econ_items = []
    counts: dict[str, int] = {}
    live_ths = live_w = 0.0
    for inp in inputs:
        cfg = inp.config
        rd = inp.reading
        reported_model = rd.model if rd else None
        spec = catalog.spec_for_rig(cfg, reported_model)
        model = spec.model if spec else (safe(reported_model) if reported_model else "?")
        ths = rd.hashrate_ths if rd else None
        status, reason = inp.status, inp.reason
        if status in ("ok", "stale") and ths is not None and ths <= 0:
            status, reason = "stuck", "not hashing (0 TH/s)"
        stuck = status == "stuck"
        if stuck:
            # Answering but not mining: it earns nothing and still draws power.  Without a
            # power reading, estimate it from what it hashed (its average, else nominal).
            ths = 0.0
        # A rig that is offline or erroring earns nothing now: no live numbers for it.
        live = rd is not None and status in ("ok", "stuck", "stale") and ths is not None
        rig_w, estimated = (None, False)
        econ = None
        own_price = cfg is not None and cfg.electricity_usd_kwh is not None
        usd_kwh = site.electricity_for(cfg) if own_price else site_price
        if live and rd is not None and ths is not None:
            basis = ths
            if stuck:
                basis = next((v for v in (rd.hashrate_avg_ths, rd.nominal_ths,
                                          spec.hashrate_ths if spec else None)
                              if v is not None and v > 0), 0.0)
            rig_w, estimated = resolve_power(rd.power_w, basis, cfg, spec)
            if hashprice is not None:
                econ = rig_economics(
                    hashrate_ths=ths,
                    power_w=rig_w,
                    hashprice=hashprice,
                    price_usd=price_usd,
                    electricity_usd_kwh=usd_kwh,
                    pool_fee_pct=site.pool_fee_pct,
                    overhead_usd_day=site.overhead_for(cfg),
                    retarget_change_pct=retarget_change_pct,
                )
                econ_items.append((ths, rig_w, econ))
            live_ths += ths
            live_w += rig_w or 0.0
        counts[status] = counts.get(status, 0) + 1
        temps = rd.temps_c if rd else ()
        boards = rd.boards if rd is not None and live else ()
        rows.append(RigRow(
            rig_id=inp.rig_id,
            name=cfg.name if cfg else inp.rig_id,
            host=inp.host,
            model=model,
            status=status,
            reason=reason,
            hashrate_ths=ths if live else None,
            power_w=rig_w,
            power_estimated=estimated,
            j_per_th=econ.j_per_th if econ else None,
            revenue=econ.revenue_usd_day if econ else None,
            cost=econ.cost_usd_day if econ else None,
            margin=econ.margin_usd_day if econ else None,
            margin_after=econ.margin_after_retarget_usd_day if econ else None,
            # a stuck rig breaks even at no power price: not a number to act on
            breakeven_kwh=econ.breakeven_usd_kwh if econ and not stuck else None,
            shutdown_price=econ.shutdown_price_usd if econ else None,
            temp_max=max(temps) if temps else None,
            age_s=inp.age_s,
            pool=rd.pool if rd else None,
            economics=econ,
            nominal_ths=spec.hashrate_ths if spec else (rd.nominal_ths if rd else None),
            firmware=safe(rd.firmware, 40) if rd and rd.firmware else None,
            port=inp.port,
            protocol=rd.protocol if rd else None,
            boards=boards,
            boards_down=sum(1 for b in boards if b.down),
            electricity_usd_kwh=usd_kwh,
            own_price=own_price,
        ))
    totals = site_totals(econ_items, price_usd)
    return SiteView(site.name, tuple(rows), totals, price_usd, counts, live_ths, live_w,
                    site_power)


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def site_json(view: SiteView) -> tuple[dict[str, object], list[dict[str, object]]]:
    """The ``site`` and ``rigs`` members of ``--once --json`` (documented in README.md)."""
    t = view.totals
    site = {
        "name": view.name,
        "rigs": len(view.rows),
        "rigs_by_status": dict(sorted(view.counts.items())),
        "rigs_without_power": t.rigs_without_power,
        "hashrate_ths": _r(t.hashrate_ths, 1),
        "power_w": _r(t.power_w, 0),
        "btc_per_day": _r(t.btc_per_day, 8),
        "revenue_usd_day": _r(t.revenue_usd_day),
        "cost_usd_day": _r(t.cost_usd_day),
        "margin_usd_day": _r(t.margin_usd_day),
        "margin_after_retarget_usd_day": _r(t.margin_after_retarget_usd_day),
        "production_cost_usd_per_btc": _r(t.production_cost_usd_per_btc, 0),
        "price_usd": t.price_usd,
        "electricity_usd_kwh_now": view.power.usd_kwh if view.power else None,
        "electricity_source": view.power.source if view.power else None,
        "electricity_next_change_unix": view.power.next_change_unix if view.power else None,
        "electricity_next_usd_kwh": view.power.next_usd_kwh if view.power else None,
    }
    rigs: list[dict[str, object]] = [
        {
            "name": r.name,
            "host": r.host,
            "port": r.port,
            "protocol": r.protocol,
            "model": r.model,
            "status": r.status,
            "reason": r.reason,
            "boards": [_board_json(b) for b in r.boards],
            "boards_down": r.boards_down,
            "hashrate_ths": _r(r.hashrate_ths, 3),
            "power_w": _r(r.power_w, 0),
            "power_estimated": r.power_estimated,
            "j_per_th": _r(r.j_per_th, 2),
            "temp_max_c": _r(r.temp_max, 1),
            "revenue_usd_day": _r(r.revenue),
            "cost_usd_day": _r(r.cost),
            "margin_usd_day": _r(r.margin),
            "margin_pct": _r(r.economics.margin_pct if r.economics else None, 1),
            "margin_after_retarget_usd_day": _r(r.margin_after),
            "breakeven_usd_kwh": _r(r.breakeven_kwh, 4),
            "shutdown_price_usd": _r(r.shutdown_price, 0),
        }
        for r in view.rows
    ]
    return site, rigs


def _board_json(b: Hashboard) -> dict[str, object]:
    return {
        "index": b.index,
        "hashrate_ths": _r(b.hashrate_ths, 3),
        "chips": b.chips,
        "chips_expected": b.chips_expected,
        "temp_board_c": _r(b.temp_board_c, 1),
        "temp_chip_c": _r(b.temp_chip_c, 1),
        "down": b.down,
        "problem": b.problem,
    }


def site_text(view: SiteView) -> str:
    """Plain lines for ``--once``: the totals, then one line per rig (worst margin first)."""
    lines = [view.title(200)]
    order = {"error": 0, "offline": 1, "stuck": 2, "stale": 3, "ok": 4}
    rows = sorted(view.rows, key=lambda r: (order.get(r.status, 9),
                                            r.margin if r.margin is not None else 1e18))
    for r in rows:
        margin = "—" if r.margin is None else f"{r.margin:+.2f}"
        after = "—" if r.margin_after is None else f"{r.margin_after:+.2f}"
        ths = "—" if r.hashrate_ths is None else f"{r.hashrate_ths:.1f}"
        power = "—" if r.power_w is None else f"{r.power_w:.0f}{'~' if r.power_estimated else ''}"
        status = r.status + (f" ({safe(r.reason, 40)})" if r.reason else "")
        if r.boards_text:
            status += f", {r.boards_text} ({r.board_problem})"
        lines.append(f"  {safe(r.name, 12):12s} {safe(r.model, 16):16s} {ths:>7s} TH/s "
                     f"{power:>6s} W  margin {margin:>6s} $/d  after RT {after:>6s}  {status}")
    return "\n".join(lines)
