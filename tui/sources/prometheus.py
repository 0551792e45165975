"""Every site at once, from a Prometheus that scrapes each site's ``minertop daemon``.

Each daemon serves ``GET /metrics`` (see :mod:`tui.metrics`: every series has a ``site``
label; scrape it with ``honor_labels: true``).  A :meth:`PrometheusSource.fetch` is a
handful of instant queries on ``/api/v1/query``, run concurrently, each aggregated over the
whole fleet (never one query per rig or per site):

- *last scrapes*: per target and site, the timestamp of the newest ``minertop_build_info``
  sample — tagged ``fleet_live="1"`` when the series is live now, else the newest sample of
  the lookback window (a subquery, so a target that went down still has a last scrape)::

      label_replace(max by (job, instance, site) (timestamp(minertop_build_info)),
                    "fleet_live", "1", "", "")
      or max by (job, instance, site) (max_over_time(timestamp(minertop_build_info)[1h:1s]))

- *sites*: every site, network and cycle series, live (one regex selector on the names)::

      {__name__=~"minertop_(site_.+|cycle_timestamp_seconds|network_.+|...)"}

- *targets* (only with ``job=``): ``up{job="…"}``, so that a target never scraped
  successfully in the lookback still shows (its address as the site's name).

A target that is down has no live series (Prometheus marks them stale), so its site is then
read as of its last successful scrape with the ``@`` modifier (one more query, for all the
down targets together): the site keeps its last numbers, ``daemon_up`` is False and
``scrape_age_s`` grows.  :meth:`PrometheusSource.fetch_site_rigs` is one query for one site's
``minertop_rig_*`` series (joined in Python with ``minertop_rig_info``), plus the same ``@``
query when the site's daemon is down.

Every failure is a one-line :class:`~tui.sources.base.SourceError`, e.g.
``prometheus http://127.0.0.1:9090: query 'sites' failed: bad_data: 1:5: parse error: …``.
No Textual here.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import httpx

from tui.fleet import (
    FleetNetwork,
    FleetRig,
    FleetSite,
    FleetSnapshot,
    freshest_network,
    frozen_map,
)
from tui.sources.base import (
    DEFAULT_TIMEOUT,
    HttpSource,
    ShapeError,
    as_list,
    as_object,
    decode_json,
    one_line,
    only_source_errors,
    reply_shape,
    status_error,
    to_num,
    to_str,
)

QUERY_PATH = "/api/v1/query"
TH = 1e12
#: How far back a site whose daemon is down is still looked for (its last scrape).
DEFAULT_LOOKBACK_S = 3600
#: Resolution of the "last successful scrape" subquery: exact whenever the scrape interval
#: is at least this long (the newest sample before the stale marker is always seen).
SEEN_STEP_S = 1
#: Down targets read back with ``@`` per query (keeps the URL short).
AT_CHUNK = 10
#: The series of one site's totals and of the network it sees (one selector).
SITE_NAMES = ("minertop_(site_.+|cycle_timestamp_seconds|network_.+|hashprice_usd_per_phs_day"
              "|btc_price_usd|retarget_.+|block_time_drift_ratio)")
RIG_NAMES = "minertop_rig_.+"
LIVE_LABEL = "fleet_live"

Key = tuple[str, str, str]  #: (job, instance, site)


# --------------------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant vector."""

    labels: Mapping[str, str]  #: with ``__name__`` when the expression kept it
    value: float | None  #: None for NaN and ±Inf
    time: float  #: evaluation time (unix seconds)

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")

    @property
    def key(self) -> Key:
        g = self.labels.get
        return (g("job", ""), g("instance", ""), g("site", ""))


def _value(raw: object) -> float | None:
    s = to_str(raw, "value")
    try:
        v = float(s)
    except ValueError:
        raise ShapeError(f"sample value {one_line(s, 40)!r} is not a number") from None
    return v if math.isfinite(v) else None


def parse_vector(doc: Any) -> tuple[Sample, ...]:
    """A successful ``/api/v1/query`` reply → its samples (ShapeError/KeyError if malformed)."""
    d = as_object(doc)
    status = d["status"]
    if status != "success":
        raise ShapeError(f"status is {status!r}, not 'success'")
    data = as_object(d["data"], "'data'")
    kind = data["resultType"]
    if kind != "vector":
        raise ShapeError(f"expected a vector result, got {kind!r}")
    out = []
    for item in as_list(data["result"], "'result'"):
        series = as_object(item, "a series")
        metric = as_object(series["metric"], "'metric'")
        labels = {str(k): to_str(v, str(k)) for k, v in metric.items()}
        pair = as_list(series["value"], "'value'")
        if len(pair) != 2:
            raise ShapeError(f"'value' has {len(pair)} elements, not [time, value]")
        out.append(Sample(MappingProxyType(labels), _value(pair[1]), to_num(pair[0], "time")))
    return tuple(out)


def api_error(resp: httpx.Response) -> str | None:
    """``"errorType: error"`` of a Prometheus error reply, None for any other body."""
    try:
        doc = json.loads(resp.content)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("status") != "error":
        return None
    kind, text = doc.get("errorType"), doc.get("error")
    kind = kind if isinstance(kind, str) and kind else "error"
    return f"{kind}: {text}" if isinstance(text, str) and text else kind


# --------------------------------------------------------------------------- PromQL


def promql_str(value: str) -> str:
    """A PromQL string literal (double-quoted, Go escapes)."""
    return json.dumps(value, ensure_ascii=False)


def selector(name: str | None = None, name_re: str | None = None,
             **labels: str | None) -> str:
    """``name{label="v",…}``; ``name_re`` selects on ``__name__`` by regex instead."""
    m = [f"__name__=~{promql_str(name_re)}"] if name_re else []
    m += [f"{k}={promql_str(v)}" for k, v in labels.items() if v is not None]
    return f"{name or ''}{{{','.join(m)}}}"


def seen_expr(lookback_s: int, **labels: str | None) -> str:
    """The "last scrapes" query (see the module docstring)."""
    sel = selector("minertop_build_info", **labels)
    by = "max by (job, instance, site)"
    return (f'label_replace({by} (timestamp({sel})), "{LIVE_LABEL}", "1", "", "") or '
            f"{by} (max_over_time(timestamp({sel})[{lookback_s}s:{SEEN_STEP_S}s]))")


def at_expr(sel: str, at: float) -> str:
    return f"{sel} @ {at!r}"


# --------------------------------------------------------------------------- assembling


@dataclass(frozen=True, slots=True)
class _Seen:
    key: Key
    last: float  #: timestamp of the last successful scrape
    at: float  #: evaluation time of the query
    live: bool


def _seen_by_key(samples: Iterable[Sample]) -> dict[Key, _Seen]:
    out: dict[Key, _Seen] = {}
    for s in samples:
        if s.value is None:
            continue
        live = s.labels.get(LIVE_LABEL) == "1"
        old = out.get(s.key)
        if old is None or (live, s.value) > (old.live, old.last):
            out[s.key] = _Seen(s.key, s.value, s.time, live)
    return out


def _group(samples: Iterable[Sample]) -> dict[Key, list[Sample]]:
    out: dict[Key, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.key, []).append(s)
    return out


def _one(samples: Sequence[Sample], name: str) -> float | None:
    return next((s.value for s in samples if s.name == name and s.value is not None), None)


def _by(samples: Sequence[Sample], name: str, label: str) -> dict[str, float]:
    return {s.labels.get(label, ""): s.value for s in samples
            if s.name == name and s.value is not None}


def _div(v: float | None, by: float) -> float | None:
    return None if v is None else v / by


def _pct(v: float | None) -> float | None:
    return None if v is None else v * 100


def _network(samples: Sequence[Sample], site: str) -> FleetNetwork | None:
    hr = _by(samples, "minertop_network_hashrate_hashes_per_second", "window")
    drift = _by(samples, "minertop_block_time_drift_ratio", "window")
    remaining = _one(samples, "minertop_retarget_blocks_remaining")
    net = FleetNetwork(
        hashrate_hs=frozen_map(hr),
        difficulty=_one(samples, "minertop_network_difficulty"),
        hashprice_usd_per_phs_day=_one(samples, "minertop_hashprice_usd_per_phs_day"),
        btc_price_usd=_one(samples, "minertop_btc_price_usd"),
        retarget_blocks_remaining=None if remaining is None else int(round(remaining)),
        retarget_change_pct=_pct(_one(samples, "minertop_retarget_projected_change_ratio")),
        retarget_eta_unix=_one(samples, "minertop_retarget_eta_timestamp_seconds"),
        drift_pct=frozen_map({w: v * 100 for w, v in drift.items()}),
        site=site,
    )
    if net == FleetNetwork(site=site):
        return None
    return net


def _site(key: Key, seen: _Seen | None, samples: Sequence[Sample]) -> FleetSite:
    rigs = _by(samples, "minertop_site_rigs", "status")
    return FleetSite(
        site=key[2] or key[1],
        rigs_up=int(round(rigs.get("ok", 0.0) + rigs.get("stale", 0.0))),
        rigs_total=int(round(sum(rigs.values()))),
        hashrate_ths=_div(_one(samples, "minertop_site_hashrate_hashes_per_second"), TH),
        power_w=_one(samples, "minertop_site_power_watts"),
        margin_usd_day=_one(samples, "minertop_site_margin_usd_per_day"),
        margin_after_retarget_usd_day=_one(samples,
                                           "minertop_site_margin_after_retarget_usd_per_day"),
        production_cost_usd_per_btc=_one(samples, "minertop_site_production_cost_usd_per_btc"),
        btc_price_usd=_one(samples, "minertop_btc_price_usd"),
        scrape_age_s=None if seen is None else max(0.0, seen.at - seen.last),
        daemon_up=bool(seen and seen.live),
        instance=key[1],
        cycle_unix=_one(samples, "minertop_cycle_timestamp_seconds"),
    )


def _rigs(site: str, samples: Sequence[Sample]) -> tuple[FleetRig, ...]:
    by_rig: dict[str, list[Sample]] = {}
    for s in samples:
        by_rig.setdefault(s.labels.get("rig", ""), []).append(s)
    out = []
    for rig, ss in by_rig.items():
        if not rig:
            continue
        info = next((s.labels for s in ss if s.name == "minertop_rig_info"), {})
        power = _by(ss, "minertop_rig_power_watts", "source")
        reported = power.get("reported")
        temps = [s.value for s in ss
                 if s.name == "minertop_rig_temperature_celsius" and s.value is not None]
        up = _one(ss, "minertop_rig_up")
        status = info.get("status", "")
        out.append(FleetRig(
            site=site,
            rig=rig,
            up=(up == 1.0) if up is not None else status in ("ok", "stale"),
            status=status,
            host=info.get("host", ""),
            model=info.get("model", ""),
            firmware=info.get("firmware", ""),
            hashrate_ths=_div(_one(ss, "minertop_rig_hashrate_hashes_per_second"), TH),
            power_w=reported if reported is not None else power.get("estimated"),
            power_estimated=reported is None and "estimated" in power,
            temp_c=max(temps) if temps else None,
            revenue_usd_day=_one(ss, "minertop_rig_revenue_usd_per_day"),
            cost_usd_day=_one(ss, "minertop_rig_power_cost_usd_per_day"),
            margin_usd_day=_one(ss, "minertop_rig_margin_usd_per_day"),
            margin_after_retarget_usd_day=_one(
                ss, "minertop_rig_margin_after_retarget_usd_per_day"),
        ))
    return tuple(sorted(out, key=lambda r: r.rig))


async def _all(aws: Sequence[Awaitable[tuple[Sample, ...]]]) -> list[tuple[Sample, ...]]:
    """Await every query; raise the first failure only once all of them are done."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return [r for r in results if not isinstance(r, BaseException)]


# --------------------------------------------------------------------------- the source

#: The largest query reply read: a query returns a few hundred bytes of JSON per series,
#: and the fleet's queries ask for at most ``AT_CHUNK`` targets' series at a time (a site
#: of 5,000 rigs exports about 44,000 series: some 10 MB).
MAX_QUERY_BYTES = 128 << 20



class PrometheusSource(HttpSource):
    """The fleet as Prometheus last scraped it: ``fetch()`` → :class:`FleetSnapshot`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
        job: str | None = None,
        lookback_s: int = DEFAULT_LOOKBACK_S,
    ) -> None:
        """``token``: sent as ``Authorization: Bearer`` (a proxy in front of Prometheus).
        ``job``: only that scrape job's targets (and list its targets never scraped
        successfully); None: every target exporting minertop series.  ``lookback_s``: how
        long a site whose daemon is down stays listed with its last numbers."""
        super().__init__(base_url, kind="prometheus", client=client, timeout=timeout,
                         clock=clock, max_bytes=MAX_QUERY_BYTES)
        self.job = job
        self.lookback_s = int(lookback_s)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.add_secret(token)  # a proxy may echo it in an error reply

    # ------------------------------------------------------------------ requests
    async def query(self, expr: str, *, name: str = "query") -> tuple[Sample, ...]:
        """One instant query; every failure is a one-line SourceError naming ``name``."""
        params = {"query": expr}
        if self._timeout.read is not None:  # let Prometheus give up before we do
            params["timeout"] = f"{self._timeout.read:g}"  # seconds (a float is fine)
        what = f"{QUERY_PATH} (query {name!r})"
        # capped (MAX_QUERY_BYTES, decompressed in bounded steps) and within a deadline
        resp = await self._request("GET", self.base_url + QUERY_PATH, what=what,
                                   params=params, headers=self._headers)
        if not resp.is_success:
            err = api_error(resp)
            if err is not None:
                raise self.error(f"query {name!r} failed: {err} (HTTP {resp.status_code})")
            if resp.status_code in (401, 403):
                raise self.error(f"unauthorized (HTTP {resp.status_code} on {QUERY_PATH}): "
                                 "check the token")
            raise status_error(self.prefix, resp, what, self._now(), self.scrub)
        doc = decode_json(self.prefix, resp, what)
        err = api_error(resp) if isinstance(doc, dict) and doc.get("status") == "error" else None
        if err is not None:
            raise self.error(f"query {name!r} failed: {err}")
        with reply_shape(self.prefix, what):
            return parse_vector(doc)

    async def _at(self, names: str, seen: Sequence[_Seen], what: str) -> list[Sample]:
        """The ``names`` series of each target as of its last successful scrape."""
        exprs = [at_expr(selector(name_re=names, job=s.key[0], instance=s.key[1],
                                  site=s.key[2]), s.last) for s in seen]
        chunks = [exprs[i:i + AT_CHUNK] for i in range(0, len(exprs), AT_CHUNK)]
        results = await _all([self.query(" or ".join(c), name=what) for c in chunks])
        return [s for r in results for s in r]

    # ------------------------------------------------------------------ fetches
    async def fetch(self) -> FleetSnapshot:
        with only_source_errors(self.prefix, self.scrub):
            return await self._fetch()

    async def _fetch(self) -> FleetSnapshot:
        job = self.job
        queries = [self.query(seen_expr(self.lookback_s, job=job), name="last scrapes"),
                   self.query(selector(name_re=SITE_NAMES, job=job), name="sites")]
        if job is not None:
            queries.append(self.query(selector("up", job=job), name="targets"))
        results = await _all(queries)
        seen = _seen_by_key(results[0])
        data = _group(results[1])
        down = [s for k, s in sorted(seen.items()) if not s.live and k not in data]
        if down:
            data.update(_group(await self._at(SITE_NAMES, down, "down sites")))

        best: dict[str, tuple[tuple[bool, float], FleetSite, Key]] = {}
        for key, sn in seen.items():
            site = _site(key, sn, data.get(key, ()))
            rank = (site.daemon_up, sn.last)
            if site.site not in best or rank > best[site.site][0]:
                best[site.site] = (rank, site, key)
        # A target of the job never scraped successfully in the lookback: its address.
        known = {(k[0], k[1]) for k in seen}
        for s in (results[2] if job is not None else ()):
            target = (s.labels.get("job", ""), s.labels.get("instance", ""))
            if target not in known and target[1] and target[1] not in best:
                site = _site((target[0], target[1], ""), None, ())
                best[site.site] = ((False, -math.inf), site, (target[0], target[1], ""))

        networks = []
        for _, site, key in best.values():
            net = _network(data.get(key, ()), site.site)
            if net is not None:
                fresh = site.cycle_unix if site.cycle_unix is not None else seen[key].last
                networks.append((fresh, net))
        sites = tuple(sorted((b[1] for b in best.values()), key=lambda s: s.site))
        return FleetSnapshot(fetched_at=self._now(), sites=sites,
                             network=freshest_network(networks), source=self.label)

    async def fetch_site_rigs(self, site: str) -> tuple[FleetRig, ...]:
        """One site's rigs, sorted by name (as of its last scrape if its daemon is down)."""
        with only_source_errors(self.prefix, self.scrub):
            job = self.job
            seen_r, rigs_r = await _all([
                self.query(seen_expr(self.lookback_s, job=job, site=site), name="last scrapes"),
                self.query(selector(name_re=RIG_NAMES, job=job, site=site), name="rigs"),
            ])
            seen = _seen_by_key(seen_r)
            if not seen:
                raise self.error(f"no site {one_line(site, 60)!r} scraped in the last "
                                 f"{self.lookback_s / 60:g} min")
            best = max(seen.values(), key=lambda s: (s.live, s.last))
            samples = [s for s in rigs_r if s.key == best.key]
            if not best.live and not samples:
                samples = await self._at(RIG_NAMES, [best], "rigs")
            return _rigs(site, samples)
