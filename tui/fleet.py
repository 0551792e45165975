"""Many sites at once: what a Prometheus scraping every site's daemon knows (pure: no I/O).

:class:`~tui.sources.prometheus.PrometheusSource` fills these immutable records from
Prometheus; :func:`fleet_json` and :func:`fleet_text` print them for ``--once``.

Units follow the rest of minertop (TH/s for rigs and sites, W, US$ per day); Prometheus's
base units (H/s, ratios) are converted by the source.  A site whose daemon stopped answering
keeps the numbers of its last successful scrape (``daemon_up`` False, ``scrape_age_s``
growing); a number the daemon does not know is None, never 0.  No Textual here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tui.fmt import fmt_usd
from tui.safe import safe

EH = 1e18
#: The network hashrate windows and drift windows, in display order.
HASHRATE_WINDOWS = ("1d", "3d", "7d")
DRIFT_WINDOWS = ("epoch", "6", "36", "144")


def frozen_map(items: Mapping[str, float] | None = None) -> Mapping[str, float]:
    """A read-only copy of ``items`` (the records are immutable all the way down)."""
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True)
class FleetNetwork:
    """The network as the freshest site's daemon last saw it."""

    hashrate_hs: Mapping[str, float] = field(default_factory=frozen_map)  #: "1d"/"3d"/"7d"
    difficulty: float | None = None
    hashprice_usd_per_phs_day: float | None = None
    btc_price_usd: float | None = None
    retarget_blocks_remaining: int | None = None
    retarget_change_pct: float | None = None  #: projected difficulty change, % (−13.9 = cut)
    retarget_eta_unix: float | None = None
    #: mean block interval against 600 s, % (+16 = slower): "epoch", "6", "36", "144"
    drift_pct: Mapping[str, float] = field(default_factory=frozen_map)
    site: str = ""  #: the site whose daemon these numbers come from


@dataclass(frozen=True)
class FleetSite:
    """One site's totals, as last scraped from its daemon."""

    site: str
    rigs_up: int  #: rigs answering with data (ok or stale)
    rigs_total: int
    hashrate_ths: float | None
    power_w: float | None
    margin_usd_day: float | None
    margin_after_retarget_usd_day: float | None
    production_cost_usd_per_btc: float | None
    btc_price_usd: float | None
    scrape_age_s: float | None  #: seconds since the last successful scrape (None: never)
    daemon_up: bool  #: Prometheus's last scrape of the daemon succeeded
    instance: str = ""  #: the scrape target (host:port), for messages
    cycle_unix: float | None = None  #: when the daemon's last poll cycle completed


@dataclass(frozen=True)
class FleetRig:
    """One rig of one site, from its daemon's ``minertop_rig_*`` series."""

    site: str
    rig: str
    up: bool  #: answering with data (ok or stale)
    status: str  #: "ok" | "stale" | "offline" | "error" ("" if the daemon gave none)
    host: str
    model: str
    firmware: str
    hashrate_ths: float | None
    power_w: float | None
    power_estimated: bool  #: power is the model's nominal J/TH × hashrate, not reported
    temp_c: float | None
    revenue_usd_day: float | None
    cost_usd_day: float | None  #: power and overhead
    margin_usd_day: float | None
    margin_after_retarget_usd_day: float | None


@dataclass(frozen=True)
class FleetSnapshot:
    fetched_at: float
    sites: tuple[FleetSite, ...]
    network: FleetNetwork | None
    source: str = "prometheus"  #: e.g. "prometheus 127.0.0.1:9090"

    def site(self, name: str) -> FleetSite | None:
        return next((s for s in self.sites if s.site == name), None)


def freshest_network(candidates: list[tuple[float, FleetNetwork]]) -> FleetNetwork | None:
    """The network block of the freshest site: ``candidates`` are (freshness, network)."""
    if not candidates:
        return None
    return max(candidates, key=lambda c: c[0])[1]


# --------------------------------------------------------------------------- output


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _network_json(n: FleetNetwork) -> dict[str, Any]:
    return {
        "site": n.site,
        "hashrate_ehs": {w: _r(n.hashrate_hs[w] / EH) for w in HASHRATE_WINDOWS
                         if w in n.hashrate_hs},
        "difficulty": n.difficulty,
        "price_usd": n.btc_price_usd,
        "hashprice_usd_per_ph_day": _r(n.hashprice_usd_per_phs_day),
        "retarget": {
            "remaining_blocks": n.retarget_blocks_remaining,
            "change_pct": _r(n.retarget_change_pct),
            "eta_unix": None if n.retarget_eta_unix is None else int(n.retarget_eta_unix),
        },
        "drift": {
            ("epoch_drift_pct" if w == "epoch" else f"last_{w}_drift_pct"): _r(n.drift_pct.get(w))
            for w in DRIFT_WINDOWS
        },
    }


#: The fleet document's format (``--prometheus URL --once --json``), major version.
FLEET_SCHEMA_VERSION = 1


def fleet_json(snapshot: FleetSnapshot) -> dict[str, Any]:
    """The fleet ``--once --json`` document: every site's totals and the network.  Like the
    site document it carries its format's major version (fields are only added within it)."""
    from tui import __version__

    return {
        "schema_version": FLEET_SCHEMA_VERSION,
        "minertop_version": __version__,
        "source": snapshot.source,
        "time_unix": int(snapshot.fetched_at),
        "network": None if snapshot.network is None else _network_json(snapshot.network),
        "sites": [
            {
                "site": s.site,
                "rigs_up": s.rigs_up,
                "rigs_total": s.rigs_total,
                "hashrate_ths": _r(s.hashrate_ths, 1),
                "power_w": _r(s.power_w, 0),
                "margin_usd_day": _r(s.margin_usd_day),
                "margin_after_retarget_usd_day": _r(s.margin_after_retarget_usd_day),
                "production_cost_usd_per_btc": _r(s.production_cost_usd_per_btc, 0),
                "scrape_age_s": _r(s.scrape_age_s, 1),
                "daemon_up": s.daemon_up,
            }
            for s in sorted(snapshot.sites, key=lambda s: s.site)
        ],
    }


def _usd(v: float | None) -> str:
    return fmt_usd(v, signed=True)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:+.1f} %"


def _age(s: float | None) -> str:
    if s is None:
        return "never"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.0f} h"


def _network_line(n: FleetNetwork) -> str:
    parts = []
    hr = n.hashrate_hs.get("1d")
    if hr is not None:
        parts.append(f"{hr / EH:,.1f} EH/s (1d)")
    if n.difficulty is not None:
        parts.append(f"difficulty {n.difficulty / 1e12:,.2f} T")
    if n.hashprice_usd_per_phs_day is not None:
        parts.append(f"hashprice ${n.hashprice_usd_per_phs_day:,.2f}/PH/day")
    if n.btc_price_usd is not None:
        parts.append(f"BTC ${n.btc_price_usd:,.0f}")
    if n.retarget_blocks_remaining is not None:
        rt = f"retarget in {n.retarget_blocks_remaining:,} blocks"
        if n.retarget_change_pct is not None:
            rt += f", {_pct(n.retarget_change_pct)}"
        if n.retarget_eta_unix is not None:
            rt += time.strftime(", ~%Y-%m-%d %H:%M", time.localtime(n.retarget_eta_unix))
        parts.append(rt)
    if "epoch" in n.drift_pct:
        parts.append(f"drift {_pct(n.drift_pct['epoch'])} this epoch")
    return f"Network (from {safe(n.site, 24)}): " + (" · ".join(parts) or "—")


def fleet_text(snapshot: FleetSnapshot) -> str:
    """Plain lines for ``--once``: fleet totals, the network, then one line per site."""
    sites = sorted(snapshot.sites, key=lambda s: s.site)
    down = sum(1 for s in sites if not s.daemon_up)
    head = [f"Fleet · {safe(snapshot.source, 60)}",
            f"{len(sites)} site{'' if len(sites) == 1 else 's'}"]
    if down:
        head[-1] += f" ({down} ✗ down)"
    head.append(f"{sum(s.rigs_up for s in sites)}/{sum(s.rigs_total for s in sites)} rigs up")
    ths = _sum([s.hashrate_ths for s in sites])
    if ths is not None:
        head.append(f"{ths / 1000:,.2f} PH/s")
    watts = _sum([s.power_w for s in sites])
    if watts is not None:
        head.append(f"{watts / 1000:,.1f} kW")
    head.append(f"margin {_usd(_sum([s.margin_usd_day for s in sites]))}/day")
    after = _sum([s.margin_after_retarget_usd_day for s in sites])
    if after is not None:
        head.append(f"after RT {_usd(after)}")
    lines = [" · ".join(head)]
    if snapshot.network is not None:
        lines.append(_network_line(snapshot.network))
    lines.append(f"  {'site':16s} {'daemon':6s} {'rigs':>7s} {'TH/s':>9s} {'kW':>7s} "
                 f"{'margin/d':>9s} {'after RT':>9s} {'cost/BTC':>9s} {'scraped':>8s}")
    for s in sites:
        ths_s = "—" if s.hashrate_ths is None else f"{s.hashrate_ths:,.1f}"
        kw = "—" if s.power_w is None else f"{s.power_w / 1000:,.1f}"
        cost = ("—" if s.production_cost_usd_per_btc is None
                else f"${s.production_cost_usd_per_btc:,.0f}")
        age = _age(s.scrape_age_s) + ("" if s.scrape_age_s is None else " ago")
        lines.append(
            f"  {safe(s.site, 16):16s} {'up' if s.daemon_up else '✗ DOWN':6s} "
            f"{s.rigs_up:>3d}/{s.rigs_total:<3d} {ths_s:>9s} {kw:>7s} "
            f"{_usd(s.margin_usd_day):>9s} {_usd(s.margin_after_retarget_usd_day):>9s} "
            f"{cost:>9s} {age:>8s}")
    return "\n".join(lines)
