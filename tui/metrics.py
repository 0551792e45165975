"""``GET /metrics``: the daemon's last completed cycle in Prometheus's text format.

Made with the official client library (``prometheus_client``): a collector turns one
:class:`~tui.engine.EngineView` into metric families, and the exposition is rendered once
per cycle (the daemon caches the bytes), so a scrape never triggers polling and costs only
the copy of a few hundred kilobytes.

Names are in base units with the ``minertop_`` prefix; every series has a ``site`` label
(the config's ``[site] name``); identity is on ``_info`` series (value 1).  Ages are not
exported as such (they change every second): the timestamps are, and PromQL's
``time() - minertop_source_last_success_timestamp_seconds`` gives the age.

=====================================================  =======================================
metric                                                 labels (besides ``site``)
=====================================================  =======================================
``minertop_rig_up``                                    ``rig``: 1 answering with data (ok,
                                                       stale), 0 offline or in error
``minertop_rig_hashrate_hashes_per_second``            ``rig``
``minertop_rig_power_watts``                           ``rig``, ``source`` = reported|estimated
``minertop_rig_temperature_celsius``                   ``rig`` (the hottest sensor)
``minertop_rig_revenue_usd_per_day``                   ``rig``
``minertop_rig_power_cost_usd_per_day``                ``rig`` (power and overhead)
``minertop_rig_margin_usd_per_day``                    ``rig``
``minertop_rig_margin_after_retarget_usd_per_day``     ``rig``
``minertop_rig_info``                                  ``rig``, ``host``, ``model``,
                                                       ``firmware``, ``status``
``minertop_site_rigs``                                 ``status`` (ok, stale, offline, error)
``minertop_site_hashrate_hashes_per_second``
``minertop_site_power_watts``
``minertop_site_margin_usd_per_day``
``minertop_site_margin_after_retarget_usd_per_day``
``minertop_site_production_cost_usd_per_btc``
``minertop_cycle_timestamp_seconds``                   when the last poll cycle completed
``minertop_network_hashrate_hashes_per_second``        ``window`` = 1d, 3d, 7d
``minertop_network_difficulty``
``minertop_hashprice_usd_per_phs_day``
``minertop_hashprice_after_retarget_usd_per_phs_day``
``minertop_network_revenue_usd_per_day``
``minertop_site_power_price_usd_per_kwh``
``minertop_btc_price_usd``
``minertop_retarget_blocks_remaining``
``minertop_retarget_projected_change_ratio``           −0.139 = a 13.9 % cut
``minertop_retarget_eta_timestamp_seconds``
``minertop_block_time_drift_ratio``                    ``window`` = epoch, 6, 36, 144 (+0.16 =
                                                       blocks 16 % slower than 600 s)
``minertop_build_info``                                ``version``, ``python``
``minertop_source_up``                                 ``source`` = chain, price, rigs
``minertop_source_last_success_timestamp_seconds``     ``source``
``minertop_poll_duration_seconds``                     ``source``: the last poll (rigs: the
                                                       whole cycle)
=====================================================  =======================================

A value that is not known (a rig offline has no hashrate; no price yet) is left out rather
than exported as 0 or NaN.  No Textual here.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from tui import __version__
from tui.engine import EngineView
from tui.model import RIG_STATUSES
from tui.network import pct_vs_target

TH = 1e12
#: The drift windows exported (the engine's DriftView names them by block count).
DRIFT_WINDOWS = (6, 36, 144)


def _gauge(name: str, doc: str, labels: list[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels, unit=unit)


class ViewCollector(Collector):
    """The metric families of one view (a fresh collector per rendered cycle)."""

    def __init__(self, view: EngineView, site: str) -> None:
        self.view = view
        self.site = site

    def collect(self) -> Iterator[Metric]:
        yield from self._daemon()
        yield from self._network()
        yield from self._site()

    # ------------------------------------------------------------------ the daemon
    def _daemon(self) -> Iterator[Metric]:
        s = self.site
        info = _gauge("minertop_build_info", "minertop's version (value 1).",
                      ["site", "version", "python"])
        info.add_metric([s, __version__, platform.python_version()], 1.0)
        yield info
        up = _gauge("minertop_source_up", "1 when the source's last poll succeeded.",
                    ["site", "source"])
        last = _gauge("minertop_source_last_success_timestamp_seconds",
                      "Unix time of the source's last good data.", ["site", "source"])
        dur = _gauge("minertop_poll_duration_seconds",
                     "How long the source's last poll took (rigs: the whole cycle).",
                     ["site", "source"])
        for name, st in sorted(self.view.sources.items()):
            up.add_metric([s, name], 0.0 if st.error else 1.0)
            if st.fetched_at is not None:
                last.add_metric([s, name], st.fetched_at)
            if st.duration_s is not None:
                dur.add_metric([s, name], st.duration_s)
        yield from (up, last, dur)
        cycle = _gauge("minertop_cycle_timestamp_seconds",
                       "Unix time of the last completed poll cycle.", ["site"])
        if self.view.cycle_time is not None:  # not the publish time: a stalled poll shows
            cycle.add_metric([s], self.view.cycle_time)
        yield cycle

    # ------------------------------------------------------------------ the network
    def _network(self) -> Iterator[Metric]:
        d = self.view.dashboard
        if d is None:
            return
        s = self.site
        hr = _gauge("minertop_network_hashrate_hashes_per_second",
                    "Network hashrate estimated over a window of blocks (1d = 144).",
                    ["site", "window"])
        for window, value in d.hashrate.windows.items():
            if value is not None:
                hr.add_metric([s, window], value)
        yield hr
        yield _one("minertop_network_difficulty", "Difficulty of the tip.", s,
                   d.chain.tip.difficulty)
        yield _one("minertop_hashprice_usd_per_phs_day",
                   "Expected revenue of 1 PH/s for one day, USD.", s,
                   d.hashprice.usd_per_ph_day)
        yield _one("minertop_hashprice_after_retarget_usd_per_phs_day",
                   "The hashprice once the projected retarget applies, USD.", s,
                   d.hashprice_after_retarget_usd)
        yield _one("minertop_network_revenue_usd_per_day",
                   "What all miners together earn per day (subsidy + fees of the last 144 "
                   "blocks at their pace), USD.", s,
                   d.revenue.usd_day if d.revenue else None)
        yield _one("minertop_btc_price_usd", "BTC price, USD.", s,
                   d.price.usd if d.price else None)
        rt = d.retarget
        yield _one("minertop_retarget_blocks_remaining", "Blocks to the next retarget.", s,
                   rt.projection.remaining_blocks if rt else None)
        yield _one("minertop_retarget_projected_change_ratio",
                   "Projected difficulty change at the next retarget (-0.14 = a 14% cut).", s,
                   rt.projection.difficulty_change / 100 if rt else None)
        yield _one("minertop_retarget_eta_timestamp_seconds",
                   "Estimated unix time of the next retarget.", s,
                   rt.projection.estimated_retarget_time if rt else None)
        drift = _gauge("minertop_block_time_drift_ratio",
                       "Mean block interval against 600 s, minus 1 (+0.16 = 16% slower).",
                       ["site", "window"])
        if d.drift.epoch_drift_pct is not None:
            drift.add_metric([s, "epoch"], d.drift.epoch_drift_pct / 100)
        for n in DRIFT_WINDOWS:
            pct = pct_vs_target(d.drift.windows.get(n))
            if pct is not None:
                drift.add_metric([s, str(n)], pct / 100)
        yield drift

    # ------------------------------------------------------------------ the site
    def _site(self) -> Iterator[Metric]:
        view = self.view.site
        if view is None:
            return
        s = self.site
        names = {
            "up": ("minertop_rig_up",
                   "1 when the rig answers with data (ok, stale, stuck), else 0."),
            "hashrate": ("minertop_rig_hashrate_hashes_per_second", "The rig's live hashrate."),
            "temp": ("minertop_rig_temperature_celsius", "The rig's hottest sensor."),
            "revenue": ("minertop_rig_revenue_usd_per_day",
                        "Expected revenue after the pool fee, USD per day."),
            "cost": ("minertop_rig_power_cost_usd_per_day",
                     "Power and overhead cost, USD per day."),
            "margin": ("minertop_rig_margin_usd_per_day", "Revenue minus cost, USD per day."),
            "after": ("minertop_rig_margin_after_retarget_usd_per_day",
                      "The margin at the projected next difficulty, USD per day."),
        }
        fam = {k: _gauge(n, doc, ["site", "rig"]) for k, (n, doc) in names.items()}
        power = _gauge("minertop_rig_power_watts",
                       "The rig's power draw: reported by it, or estimated from its model's "
                       "nominal J/TH.", ["site", "rig", "source"])
        info = _gauge("minertop_rig_info", "The rig's identity and status (value 1).",
                      ["site", "rig", "host", "model", "firmware", "status"])
        boards = _gauge("minertop_rig_hashboards", "Hashboards the rig reports.", ["site", "rig"])
        boards_down = _gauge("minertop_rig_hashboards_down",
                             "The rig's hashboards with no hashrate or with chips missing.",
                             ["site", "rig"])
        for r in view.rows:
            key = [s, r.rig_id]
            fam["up"].add_metric(key, 1.0 if r.status in ("ok", "stale", "stuck") else 0.0)
            info.add_metric([s, r.rig_id, r.address, r.model, r.firmware or "", r.status], 1.0)
            if r.boards:
                boards.add_metric(key, float(len(r.boards)))
                boards_down.add_metric(key, float(r.boards_down))
            for k, value in (("hashrate", None if r.hashrate_ths is None
                              else r.hashrate_ths * TH),
                             ("temp", r.temp_max), ("revenue", r.revenue), ("cost", r.cost),
                             ("margin", r.margin), ("after", r.margin_after)):
                if value is not None:
                    fam[k].add_metric(key, value)
            if r.power_w is not None:
                power.add_metric([s, r.rig_id, "estimated" if r.power_estimated
                                  else "reported"], r.power_w)
        yield from fam.values()
        yield power
        yield info
        yield boards
        yield boards_down
        rigs = _gauge("minertop_site_rigs", "Rigs by status.", ["site", "status"])
        for status in RIG_STATUSES:
            rigs.add_metric([s, status], float(view.counts.get(status, 0)))
        yield rigs
        t = view.totals
        yield _one("minertop_site_hashrate_hashes_per_second",
                   "Live hashrate of the site's rigs.", s, view.live_ths * TH)
        yield _one("minertop_site_power_watts", "Power of the site's rigs (reported or "
                   "estimated).", s, view.live_power_w)
        yield _one("minertop_site_margin_usd_per_day", "The site's margin, USD per day.", s,
                   t.margin_usd_day)
        yield _one("minertop_site_margin_after_retarget_usd_per_day",
                   "The site's margin at the projected next difficulty, USD per day.", s,
                   t.margin_after_retarget_usd_day)
        yield _one("minertop_site_production_cost_usd_per_btc",
                   "Total cost per day over BTC earned per day: the cost of one BTC.", s,
                   t.production_cost_usd_per_btc)
        yield _one("minertop_site_power_price_usd_per_kwh",
                   "The site's power price in force now (feed, tariff period or flat).", s,
                   view.power.usd_kwh if view.power else None)


def _one(name: str, doc: str, site: str, value: float | None) -> GaugeMetricFamily:
    g = _gauge(name, doc, ["site"])
    if value is not None:
        g.add_metric([site], float(value))
    return g


def render(view: EngineView, site: str) -> bytes:
    """The text exposition of ``view`` (version 0.0.4, what Prometheus scrapes)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ViewCollector(view, site))
    return generate_latest(registry)


#: The Content-Type of :func:`render`'s output.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
