"""The engine: minertop's one runtime, behind every face (no Textual here).

It runs the sources on their schedules (one asyncio task per source, never overlapping
itself, backoff with Retry-After, pause, refresh now, faster/slower), turns their snapshots
into computed views (the network's numbers, the site's rigs: stepped, so that thousands of
rigs never hold the event loop), evaluates the alerts, keeps each rig's session history and
publishes each new state as an immutable :class:`EngineView` to its subscribers.

The dashboard (Textual), the daemon (HTTP API, SQLite history, notifications) and
``--once`` are faces over it; they never poll a source themselves.

Errors: a source failure is a :class:`~tui.sources.base.SourceError`, shown in its panes.
An *unexpected* exception anywhere (a source's bug, the site computation, a subscriber) is
logged with its traceback on the ``minertop`` logger, named in the view (``errors``) so the
affected pane says what failed, and the engine keeps going.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from tui import wire
from tui.alerts import (
    Alert,
    AlertEngine,
    AlertEvent,
    AlertRules,
    NetworkCondition,
    RigCondition,
    format_log_line,
)
from tui.catalog import Catalog
from tui.config import SiteConfig
from tui.dashboard import Dashboard, compute
from tui.history import RigHistory, Sample
from tui.model import ChainSnapshot, ChainSource, PriceSnapshot, PriceSource, RigReading
from tui.site import PowerNow, SiteView, compute_site, rig_input
from tui.sources.base import SourceError
from tui.sources.fleet import RigSource, RigsSnapshot
from tui.sources.poll import Backoff
from tui.sources.rigs import RigFleet
from tui.spec import SourceSpec, make_sources
from tui.squeeze import HashpricePoint
from tui.tariff import PowerPriceSnapshot
from tui.wire import WIRE_VERSION

log = logging.getLogger("minertop")

#: How often the network view is recomputed between polls (the projection moves with time).
RECOMPUTE_EVERY_S = 30.0
#: Above this many rigs the site's numbers are computed in a thread (the loop stays free).
THREAD_ABOVE_RIGS = 500
#: Rigs handled between two hand-backs to the event loop (each step takes a few ms).
SITE_STEP = 250
MIN_INTERVAL_S, MAX_INTERVAL_S = 5.0, 3600.0
#: Alert events logged one line each when they come at once; the rest are summed up.
LOG_EVENTS_AT_ONCE = 20


@dataclass
class Poller:
    """Scheduling state of one source (touched only on the engine's loop)."""

    name: str
    source: Any  #: ChainSource | PriceSource | RigSource
    interval: float
    backoff: Backoff
    fetched_at: float | None = None
    error: str | None = None
    polling: bool = False
    polls: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    next_at: float | None = None  #: monotonic time of the next poll
    duration_s: float | None = None  #: how long the last poll took (a rig cycle: all rigs)
    task: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SourceState:
    """One source as a face shows it."""

    name: str
    label: str
    fetched_at: float | None  #: last good data, unix s (None: never)
    error: str | None  #: the last poll's error (None: it succeeded)
    polling: bool
    interval: float
    polls: int
    duration_s: float | None = None  #: how long the last poll took


@dataclass(frozen=True)
class EngineView:
    """Everything the faces show, at one moment.  Immutable: faces may keep it."""

    seq: int
    time: float  #: unix s when it was published
    source_label: str
    paused: bool
    chain: ChainSnapshot | None
    price: PriceSnapshot | None
    dashboard: Dashboard | None
    site: SiteView | None
    #: a rig poll cycle completed with this view (history and alerts were taken)
    cycle: bool
    sources: Mapping[str, SourceState]
    alerts_active: tuple[Alert, ...]
    #: alert events new since the previous view (fired/cleared)
    alert_events: tuple[AlertEvent, ...]
    #: pipeline failures by part ("network", "site", "startup"): what failed, in one line
    errors: Mapping[str, str]
    has_site: bool
    #: when the last poll cycle completed (None: none yet); ``time`` is the publish time
    cycle_time: float | None = None
    #: the daily hashprice a daemon recorded in its store (oldest first; () elsewhere): it
    #: fills the days the source's history lacks (:func:`tui.squeeze.merge_recorded`)
    hashprice_recorded: tuple[HashpricePoint, ...] = ()

    def error_for(self, part: str) -> str | None:
        return self.errors.get(part)

    def to_wire(self) -> dict[str, Any]:
        """This view as JSON-ready data (see :mod:`tui.wire`); the dashboard is left out:
        the receiving side recomputes it (:func:`view_from_wire`)."""
        return {
            "wire": WIRE_VERSION, "seq": self.seq, "time": self.time,
            "source_label": self.source_label, "paused": self.paused,
            "chain": wire.encode(self.chain), "price": wire.encode(self.price),
            "site": wire.encode(self.site), "cycle": self.cycle,
            "sources": {k: {f: getattr(st, f) for f in SourceState.__slots__}
                        for k, st in self.sources.items()},
            "alerts_active": wire.encode(self.alerts_active),
            "alert_events": wire.encode(self.alert_events),
            "errors": dict(self.errors), "has_site": self.has_site,
            "cycle_time": self.cycle_time,
            "hashprice_recorded": [[p.time, p.btc_per_ph_day, p.usd_per_ph_day]
                                   for p in self.hashprice_recorded],
        }


def view_from_wire(doc: Any, now: float) -> EngineView:
    """An :class:`EngineView` from :meth:`EngineView.to_wire` data (raises
    :class:`~tui.wire.WireError` on anything else); the dashboard is recomputed at ``now``."""
    if not isinstance(doc, dict):
        raise wire.WireError("expected an object")
    if doc.get("wire") != WIRE_VERSION:
        raise wire.WireError(f"view format {doc.get('wire')!r}, this minertop reads "
                             f"{WIRE_VERSION} (upgrade the older side)")
    try:
        chain = wire.decode(doc["chain"])
        price = wire.decode(doc["price"])
        site = wire.decode(doc["site"])
        if chain is not None and not isinstance(chain, ChainSnapshot):
            raise wire.WireError("chain: not a chain snapshot")
        if price is not None and not isinstance(price, PriceSnapshot):
            raise wire.WireError("price: not a price snapshot")
        if site is not None and not isinstance(site, SiteView):
            raise wire.WireError("site: not a site view")
        if site is not None:
            site = replace(site, counts=dict(site.counts))
        sources = {}
        for k, st in wire.read_only(doc["sources"]).items():
            sources[str(k)] = SourceState(**{f: st[f] for f in SourceState.__slots__
                                             if f in st or f != "duration_s"})
        errors = {str(k): str(v) for k, v in wire.read_only(doc["errors"]).items()}
        # added within wire v3: an older daemon sends none
        recorded = _recorded_points(doc.get("hashprice_recorded"))
        dashboard = compute(chain, price, now, recorded) if chain is not None else None
        return EngineView(
            seq=int(doc["seq"]), time=float(doc["time"]),
            source_label=str(doc["source_label"]), paused=bool(doc["paused"]), chain=chain,
            price=price, dashboard=dashboard, site=site, cycle=bool(doc["cycle"]),
            sources=MappingProxyType(sources),
            alerts_active=tuple(wire.decode(doc["alerts_active"])),
            alert_events=tuple(wire.decode(doc["alert_events"])),
            errors=MappingProxyType(errors), has_site=bool(doc["has_site"]),
            cycle_time=None if doc.get("cycle_time") is None else float(doc["cycle_time"]),
            hashprice_recorded=recorded)
    except wire.WireError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise wire.WireError(f"malformed view: {type(e).__name__}: {e}") from None


def _recorded_points(raw: Any) -> tuple[HashpricePoint, ...]:
    """A view's ``hashprice_recorded`` (``[[day, btc, usd], ...]``).  Not a list: the view is
    malformed (:class:`~tui.wire.WireError`).  A point that is not a day start with a finite
    BTC figure (and a finite or null USD one) is left out with a warning: one bad day must
    not cost the attached dashboard the whole view."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise wire.WireError("hashprice_recorded: not a list")
    out: list[HashpricePoint] = []
    bad = 0
    for p in raw:
        try:
            t, btc, usd = p
            ok = (isinstance(t, int) and not isinstance(t, bool) and t % 86400 == 0
                  and isinstance(btc, int | float) and not isinstance(btc, bool)
                  and math.isfinite(btc) and (usd is None or (
                      isinstance(usd, int | float) and not isinstance(usd, bool)
                      and math.isfinite(usd))))
        except (TypeError, ValueError):
            ok = False
        if ok:
            out.append(HashpricePoint(t, float(btc), None if usd is None else float(usd)))
        else:
            bad += 1
    if bad:
        log.warning("the daemon's recorded hashprice: %d malformed day(s) left out", bad)
    return tuple(out)


Subscriber = Callable[[EngineView], None]


class Engine:
    """Sources -> snapshots -> computed views, on a schedule.  See the module notes."""

    def __init__(
        self,
        spec: SourceSpec,
        *,
        sources: tuple[ChainSource, PriceSource] | None = None,
        rig_source: RigSource | None = None,
        clock: Callable[[], float] = time.time,
        backoff_overrides: Mapping[str, float] | None = None,
        poll_overrides: Mapping[str, float] | None = None,
        threaded_rigs: bool = True,
        session_history: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        """``session_history``: keep each rig's readings in memory for the detail screen
        (the dashboard); the daemon keeps them in its database instead."""
        self.spec = spec
        self.clock = clock
        self.log = logger or log
        self._given_sources = sources
        self._given_rig_source = rig_source
        self._threaded_rigs = threaded_rigs
        self.backoff_overrides = dict(backoff_overrides or {})
        self.poll_overrides = dict(poll_overrides or {})
        self.pollers: dict[str, Poller] = {}
        self.site: SiteConfig | None = spec.site
        self.has_site = spec.demo or spec.site is not None or rig_source is not None
        self.source_label = "—"
        self.chain: ChainSnapshot | None = None
        self.price: PriceSnapshot | None = None
        #: the site's live power price (``[site.power_feed]``), None: none read yet
        self.power_feed: PowerPriceSnapshot | None = None
        self._power_next: float | None = None  #: when the tariff's price changes next
        self.dashboard: Dashboard | None = None
        #: the daily hashprice the daemon's store holds (set by the daemon; see EngineView)
        self.hashprice_recorded: tuple[HashpricePoint, ...] = ()
        self.site_view: SiteView | None = None
        self.fleet: RigFleet | None = None
        self.rig_history: dict[str, RigHistory] = {}
        self.session_history = session_history
        self._catalog: Catalog | None = None
        rules = spec.site.alerts if spec.site is not None else AlertRules()
        self.alerts = AlertEngine(rules)
        self.paused = False
        self.errors: dict[str, str] = {}
        self.demo: Any = None  #: the running DemoWorld (--demo)
        self._subscribers: list[Subscriber] = []
        self._seq = 0
        self._computed_at = 0.0
        self._pending_events: list[AlertEvent] = []
        #: rig readings not yet applied, each with "this closes a poll cycle"
        self._rig_updates: deque[tuple[Sequence[RigReading], bool]] = deque()
        self._last_cycle_time: float | None = None
        self._site_record = False
        self._site_again = False
        self._site_task: asyncio.Task[None] | None = None
        self._alerts_due = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._resume = asyncio.Event()
        self._resume.set()
        self._stopping = False
        self._started = False
        self.latest: EngineView | None = None
        #: called after each completed rig cycle (or network-only evaluation) with the view
        #: and that cycle's alert events: the daemon records history and notifies from here
        self.on_cycle: Callable[[EngineView], Any] | None = None

    # ------------------------------------------------------------------ subscribers
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every new view (on the engine's loop).  Returns an
        unsubscribe function.  A subscriber that raises is logged and kept."""
        self._subscribers.append(callback)
        if self.latest is not None:
            self._deliver(callback, self.latest)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _deliver(self, callback: Subscriber, view: EngineView) -> None:
        try:
            callback(view)
        except Exception:
            self.log.exception("a view subscriber failed (%s)", getattr(callback, "__qualname__",
                                                                        callback))

    def source_states(self) -> dict[str, SourceState]:
        return {p.name: SourceState(p.name, getattr(p.source, "label", p.name), p.fetched_at,
                                    p.error, p.polling, p.interval, p.polls, p.duration_s)
                for p in self.pollers.values()}

    def publish(self, *, cycle: bool = False) -> EngineView:
        self._seq += 1
        if cycle:
            self._last_cycle_time = self.clock()
        events, self._pending_events = tuple(self._pending_events), []
        if events:
            self._log_alerts(events)
        view = EngineView(
            seq=self._seq, time=self.clock(), source_label=self.source_label,
            paused=self.paused, chain=self.chain, price=self.price, dashboard=self.dashboard,
            site=self.site_view, cycle=cycle, sources=MappingProxyType(self.source_states()),
            alerts_active=tuple(self.alerts.active.values()), alert_events=events,
            errors=MappingProxyType(dict(self.errors)), has_site=self.has_site,
            cycle_time=self._last_cycle_time, hashprice_recorded=self.hashprice_recorded)
        self.latest = view
        for cb in list(self._subscribers):
            self._deliver(cb, view)
        if cycle and self.on_cycle is not None:
            try:
                self.on_cycle(view)
            except Exception:
                self.log.exception("the cycle hook failed")
        return view

    def _log_alerts(self, events: Sequence[AlertEvent]) -> None:
        """One line per event in the log (past :data:`LOG_EVENTS_AT_ONCE` in one go, the
        rest summed up in one line: a site-wide start-up must not flood the journal), and
        every event in ``[alerts] log_file`` when configured."""
        for e in events[:LOG_EVENTS_AT_ONCE]:
            a = e.alert
            self.log.log(logging.WARNING if e.kind == "fired" else logging.INFO,
                         "alert %s (%s) %s: %s", e.kind, a.severity, a.key,
                         " ".join(a.message.split()))
        rest = events[LOG_EVENTS_AT_ONCE:]
        if rest:
            kinds: dict[str, int] = {}
            for e in rest:
                k = f"{e.alert.kind} {e.kind}"
                kinds[k] = kinds.get(k, 0) + 1
            self.log.warning("alert: and %d more at once (%s)", len(rest), ", ".join(
                f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])))
        path = self.alerts.rules.log_file
        if path is None:
            return
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.writelines(format_log_line(e) + "\n" for e in events)
        except OSError as err:
            msg = f"can't write the alert log {path}: {err.strerror or err}"
            if self.errors.get("alert log") != msg:  # say it once, keep alerting
                self.log.error("%s", msg)
            self.errors["alert log"] = msg
        else:
            self.errors.pop("alert log", None)

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Start the sources (and the demo's simulators) and the poll tasks."""
        if self._started:
            return
        self._started = True
        spec = self.spec
        if self._given_sources is not None:
            chain_src, price_src = self._given_sources
        else:
            if spec.demo:
                from tui.demo import start_demo

                try:
                    self.demo = await start_demo(spec, self.clock, rigs=self.has_site and
                                                 self._given_rig_source is None)
                except Exception as e:  # a port problem: say so, don't crash the face
                    self.errors["startup"] = f"demo simulator failed to start: {e}"
                    self.log.error("%s", self.errors["startup"])
                    self.publish()
                    return
                spec = self.demo.spec
                if self.demo.site is not None:
                    self.site = self.demo.site
            chain_src, price_src = make_sources(spec, clock=self.clock)
        self.pollers["chain"] = self._poller("chain", chain_src, spec.chain_interval)
        self.pollers["price"] = self._poller("price", price_src, spec.price_interval)
        self.source_label = (f"demo ({spec.kind} sim)" if spec.demo
                             else getattr(chain_src, "label", "chain"))
        self._start_rigs()
        self.publish()
        for p in self.pollers.values():
            p.task = self._spawn(self._poll_loop(p), f"poll-{p.name}")
        self._spawn(self._recompute_loop(), "recompute")

    async def start_sources_only(self) -> None:
        """Set the sources up without starting the poll tasks (``--once``)."""
        self._started = True
        spec = self.spec
        if spec.demo:
            from tui.demo import start_demo

            self.demo = await start_demo(spec, self.clock, rigs=True)
            spec = self.demo.spec
            self.site = self.demo.site
            self.has_site = True
        chain_src, price_src = make_sources(spec, clock=self.clock)
        self.pollers["chain"] = self._poller("chain", chain_src, spec.chain_interval)
        self.pollers["price"] = self._poller("price", price_src, spec.price_interval)
        self.source_label = f"demo ({spec.kind} sim)" if spec.demo else chain_src.label
        self._start_rigs()
        if "rigs" in self.pollers:
            self.pollers["rigs"].source.on_partial = None

    def _poller(self, name: str, source: Any, interval: float) -> Poller:
        return Poller(name, source, interval,
                      Backoff(interval, **self.backoff_overrides))  # type: ignore[arg-type]

    def _start_rigs(self) -> None:
        site = self.site
        source = self._given_rig_source
        if site is None and source is not None:
            site = source.site
            self.site = site
        if site is None:
            return
        if self.poll_overrides:
            site = replace(site, poll=replace(site.poll, **self.poll_overrides))  # type: ignore[arg-type]
            self.site = site
        self.has_site = True
        self._catalog = site.catalog()
        self.alerts.rules = site.alerts if self.spec.site is not None else self.alerts.rules
        self.fleet = RigFleet(site.poll.interval_s, stuck_after=site.poll.stuck_after_s)
        if source is None:
            source = RigSource(site, clock=self.clock, threaded=self._threaded_rigs)
        source.on_partial = self._on_partial
        self.pollers["rigs"] = self._poller("rigs", source, site.poll.interval_s)
        if site.power_feed is not None and "power" not in self.pollers:
            from tui.sources.power_feed import PowerFeedSource

            feed = PowerFeedSource(site.power_feed, clock=self.clock)
            self.pollers["power"] = self._poller("power", feed, site.power_feed.interval_s)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"minertop-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved even while stopping (no asyncio warning)
        if self._stopping:
            if exc is not None:
                self.log.debug("engine task %s ended at stop: %r", task.get_name(), exc)
            return
        if exc is not None:  # never silent: the loops catch everything, so this is a bug
            self.log.error("engine task %s died", task.get_name(), exc_info=exc)
            self.errors["engine"] = f"{task.get_name()} stopped: {type(exc).__name__}: {exc}"

    async def stop(self) -> None:
        """Stop polling, close the sources and the demo (bounded: never hangs)."""
        self._stopping = True
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for p in self.pollers.values():
            try:
                await asyncio.wait_for(p.source.aclose(), 5)
            except Exception as e:
                self.log.warning("closing %s: %s", p.name, e)
        if self.demo is not None:
            await self.demo.stop()
            self.demo = None

    # ------------------------------------------------------------------ controls
    def set_paused(self, paused: bool) -> None:
        """Paused: polls that come due wait for the resume (one each), views stay put."""
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            self._resume.clear()
        else:
            self._resume.set()
            self.recompute()

    def refresh(self) -> None:
        """Poll every source now (a source in the middle of a poll finishes that one; a
        pending Retry-After is honoured: a rate-limited source is not asked early)."""
        for p in self.pollers.values():
            if not p.polling and not self._rate_limited(p):
                p.wake.set()

    @staticmethod
    def _rate_limited(p: Poller) -> bool:
        return p.error is not None and "rate limited" in p.error and p.next_at is not None \
            and p.next_at > time.monotonic()

    def scale_intervals(self, factor: float) -> str:
        """Poll faster (factor < 1) or slower; returns what the intervals are now."""
        for p in self.pollers.values():
            p.interval = min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, p.interval * factor))
            p.backoff.interval = p.interval
            if p.name == "rigs" and self.fleet is not None:
                # A rig is stale after three missed polls, at whatever pace we poll.
                self.fleet.interval = p.interval
                self.fleet.stale_after = 3 * p.interval
        self.publish()
        return ", ".join(f"{p.name} {p.interval:.0f}s" for p in self.pollers.values())

    async def idle(self) -> None:
        """Wait until the site worker has nothing left to do (tests, ``--once``)."""
        while self._site_task is not None and not self._site_task.done():
            await asyncio.wait({self._site_task})

    def history_for(self, rig_id: str) -> RigHistory:
        return self.rig_history.setdefault(rig_id, RigHistory())

    # ------------------------------------------------------------------ polling
    async def _poll_loop(self, p: Poller) -> None:
        while not self._stopping:
            await self._resume.wait()
            try:
                delay = await self._poll_once(p)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # applying the snapshot failed: a bug; keep polling
                self.log.exception("handling %s's data failed", p.name)
                self.errors[p.name] = f"internal error handling {p.name}: " \
                    f"{type(e).__name__}: {e}"
                delay = p.backoff.failure()
                self.publish()
            p.next_at = time.monotonic() + delay
            p.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(p.wake.wait(), delay)

    async def _poll_once(self, p: Poller) -> float:
        p.polling = True
        started = time.monotonic()
        if hasattr(p.source, "budget_s"):
            p.source.budget_s = p.interval  # a rig cycle never outlasts the interval
        try:
            snap = await p.source.fetch()
        except SourceError as e:
            delay = p.backoff.failure(e)
            self._failed(p, str(e))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must not stop polling: log it whole, show it, go on
            self.log.exception("polling %s failed unexpectedly", p.name)
            err = SourceError(f"{getattr(p.source, 'label', p.name)}: internal error: "
                              f"{type(e).__name__}: {e}")
            delay = p.backoff.failure(err)
            self._failed(p, str(err))
        else:
            delay = p.backoff.success()
            p.fetched_at = self.clock()
            if p.error is not None:
                self.log.info("%s: recovered", p.name)
            p.error = None
            self.errors.pop(p.name, None)
            self._apply(snap)
        finally:
            p.polling = False
            p.polls += 1
            p.duration_s = time.monotonic() - started
        if p.name == "rigs" and p.error is None:
            # start to start: each rig is read every interval, however long a cycle took
            delay = max(0.0, delay - p.duration_s)
        return delay

    def _failed(self, p: Poller, error: str) -> None:
        if p.error != error:
            self.log.warning("%s: %s", p.name, error)
        p.error = error
        self.publish()

    def _apply(self, snap: object) -> None:
        if isinstance(snap, ChainSnapshot):
            self.chain = snap
            self.recompute()
        elif isinstance(snap, RigsSnapshot):
            self._on_rigs(snap)
        elif isinstance(snap, PriceSnapshot):
            self.price = snap
            self.recompute()
        elif isinstance(snap, PowerPriceSnapshot):
            self.power_feed = snap
            if self.fleet is not None and self.site is not None:
                self.request_site()
        else:
            self.log.error("a source returned %s, not a snapshot", type(snap).__name__)

    def _on_partial(self, snap: RigsSnapshot) -> None:
        self._on_rigs(snap)

    def _on_rigs(self, snap: RigsSnapshot) -> None:
        if self.fleet is None:
            return
        self._rig_updates.append((snap.readings, snap.complete))
        self.request_site()

    async def _recompute_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(1.0)
            if not self.paused and self.chain is not None and \
                    self.clock() - self._computed_at >= RECOMPUTE_EVERY_S:
                self.recompute()
            elif not self.paused and self._power_next is not None \
                    and self.clock() >= self._power_next:
                # a tariff period began: the margins change now, not at the next poll
                self._power_next = None
                if self.fleet is not None and self.site is not None:
                    self.request_site()

    # ------------------------------------------------------------------ computing
    def recompute(self) -> None:
        """The network's numbers from the latest chain and price snapshots, then the site."""
        if self.paused or self._stopping:
            return
        if self.chain is not None:
            now = self.clock()
            self._computed_at = now
            try:
                self.dashboard = compute(self.chain, self.price, now,
                                         self.hashprice_recorded)
            except Exception as e:
                self.log.exception("computing the network view failed")
                self.errors["network"] = f"internal error computing the network view: " \
                    f"{type(e).__name__}: {e}"
            else:
                self.errors.pop("network", None)
        if self.fleet is not None and self.site is not None:
            self._alerts_due = True
            self.request_site()
            self.publish()
            return
        if self.chain is not None:
            events = self.alerts.evaluate(self.clock(), network=self._network_condition())
            self._pending_events.extend(events)
            self.publish(cycle=True)
        else:
            self.publish()

    def request_site(self, record: bool = False) -> None:
        """Recompute the rigs' rows and the site totals (one worker, coalescing).

        ``record``: a poll cycle completed (history samples and alerts are taken then).  A
        request while the worker runs makes it go round once more."""
        if self.fleet is None or self.site is None or self._stopping:
            return
        self._site_record = self._site_record or record
        self._site_again = True
        if self._site_task is None or self._site_task.done():
            self._site_task = self._spawn(self._site_loop(), "site")

    async def _site_loop(self) -> None:
        while self._site_again and not self._stopping:
            self._site_again = False
            try:
                await self._refresh_site()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # Never silent: the log has the traceback, the rigs pane says what failed,
                # and the next cycle tries again.
                self.log.exception("computing the site failed")
                self.errors["site"] = f"internal error computing the site: " \
                    f"{type(e).__name__}: {e}"
                self._site_record = False
                self.publish()
            else:
                self.errors.pop("site", None)

    def power_now(self, now: float) -> PowerNow | None:
        """The site's power price in force at ``now`` (a fresh feed, else the tariff's
        period, else the flat price) and, for a tariff, its next change."""
        site = self.site
        if site is None:
            return None
        pn = site.price_now(now, self.power_feed)
        next_at = next_usd = None
        label = None
        if pn.source == "tariff" and site.tariff is not None:
            nxt = site.tariff.next_price(now)
            if nxt is not None:
                next_at, next_usd = nxt
                label = site.tariff.local(next_at).strftime("%a %H:%M")
        return PowerNow(pn.usd_kwh, pn.source, next_at, next_usd, label)

    async def _refresh_site(self) -> None:
        fleet, site, catalog = self.fleet, self.site, self._catalog
        assert fleet is not None and site is not None and catalog is not None
        step = SITE_STEP
        n = 0
        # A cycle is recorded by the round that applied its last readings: readings that
        # land while this round computes wait for the next round, with their own flag.
        record = False
        while self._rig_updates:
            readings, complete = self._rig_updates.popleft()
            record = record or complete
            for r in readings:
                fleet.record(r)
                if not r.ok and self.session_history:
                    self.history_for(r.rig_id).error(r.time, r.error or "unknown error")
                n += 1
                if n % step == 0:
                    await asyncio.sleep(0)
        now = self.clock()
        poller = self.pollers.get("rigs")
        targets = poller.source.poller.targets if poller else ()
        configured = {r.name: r for r in site.rigs}
        inputs = []
        for i, t in enumerate(targets):
            if i and i % step == 0:
                await asyncio.sleep(0)
            inputs.append(rig_input(t, fleet, configured, now))
        d = self.dashboard
        power = self.power_now(now)
        self._power_next = power.next_change_unix if power is not None else None
        kwargs: dict[str, Any] = dict(
            site=site, catalog=catalog, hashprice=d.hashprice if d else None,
            price_usd=self.price.usd if self.price else None,
            # the change still ahead of the hashprice (0 once the retarget is locked in)
            retarget_change_pct=d.pending_retarget_change_pct if d else None,
            power=power)
        if len(inputs) > THREAD_ABOVE_RIGS:
            view = await asyncio.to_thread(compute_site, inputs, **kwargs)
        else:
            view = compute_site(inputs, **kwargs)
        explicit, self._site_record = self._site_record, False
        record = record or explicit
        alerts_due, self._alerts_due = self._alerts_due, False
        self.site_view = view
        if record and self.session_history:
            for i, row in enumerate(view.rows):
                if i and i % step == 0:
                    await asyncio.sleep(0)
                rd = fleet.last_good(row.rig_id)
                if rd is None or row.status != "ok":
                    continue
                fans = rd.fans_rpm
                self.history_for(row.rig_id).add(Sample(
                    time=rd.time, hashrate_ths=row.hashrate_ths, power_w=row.power_w,
                    temp_c=row.temp_max, fan_rpm=sum(fans) / len(fans) if fans else None,
                    margin_usd_day=row.margin))
        if record or alerts_due:
            await self._evaluate_alerts_steps(view)
        self.errors.pop("site", None)
        self.publish(cycle=record)

    async def _evaluate_alerts_steps(self, view: SiteView) -> None:
        now = self.clock()
        rigs: list[RigCondition] = []
        if self.alerts.rules.enabled:
            for i, r in enumerate(view.rows):
                if i and i % SITE_STEP == 0:
                    await asyncio.sleep(0)
                rigs.append(RigCondition(rig_id=r.rig_id, status=r.status, reason=r.reason,
                                         margin_usd_day=r.margin, temp_max_c=r.temp_max,
                                         hashrate_ths=r.hashrate_ths, nominal_ths=r.nominal_ths,
                                         boards=len(r.boards), boards_down=r.boards_down,
                                         board_problem=r.board_problem))
        steps = self.alerts.evaluate_steps(now, rigs=rigs, network=self._network_condition(),
                                           chunk=SITE_STEP)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                events: list[AlertEvent] = done.value
                break
            await asyncio.sleep(0)
        self._pending_events.extend(events)

    def _network_condition(self) -> NetworkCondition | None:
        d = self.dashboard
        if d is None:
            return None
        rt = d.retarget
        return NetworkCondition(
            epoch_drift_pct=d.drift.epoch_drift_pct,
            retarget_eta_unix=rt.projection.estimated_retarget_time if rt else None,
            retarget_change_pct=rt.projection.difficulty_change if rt else None)


def view_document(view: EngineView) -> dict[str, Any] | None:
    """The ``--once --json`` document of a view; None when it has nothing to show (no chain
    data and no site).  The daemon's ``/api/v1/snapshot`` serves exactly this.

    Described by ``tui/data/minertop-once.schema.json``: ``schema_version`` is the major
    version of the format (within one, fields are only ever added).  ``errors`` has one
    ``{"source", "error"}`` per source (``chain``, ``price``, ``rigs``) or part of the
    computation that failed.  Without chain data (a site server without internet) the
    document still has the rigs: the network's fields are null, and so is every figure
    that needs the chain (hashprice, hence revenue and margins)."""
    from tui import __version__
    from tui.dashboard import to_json

    if view.dashboard is None and view.site is None:
        return None
    doc: dict[str, Any] = {"schema_version": 1, "minertop_version": __version__}
    if view.dashboard is not None:
        doc.update(to_json(view.dashboard))
    else:  # to_json's members (a test keeps the lists equal), null: they need the chain
        price = view.price
        doc.update({"source": view.source_label, "time_unix": int(view.time)})
        doc.update(dict.fromkeys(("tip_height", "tip_time_unix", "difficulty")))
        doc.update({"price_usd": price.usd if price else None,
                    "price_source": price.source if price else None})
        doc.update(dict.fromkeys((
            "hashprice_btc_per_ph_day", "hashprice_usd_per_ph_day",
            "hashprice_after_retarget_usd_per_ph_day")))
        doc["hashprice_history"] = []
        doc.update(dict.fromkeys((
            "network_revenue_usd_day", "network_revenue_usd_day_30d_ago",
            "avg_fees_btc_per_block", "hashrate_ehs", "hashrate_peak_ehs",
            "hashrate_vs_peak_pct", "hash_ribbon", "drift", "retarget")))
    price_state = view.sources.get("price")
    if price_state is not None and price_state.error:
        doc["price_error"] = price_state.error
    if view.site is not None:
        from tui.site import site_json

        doc["site"], doc["rigs"] = site_json(view.site)
        if view.dashboard is None:  # the totals sum the rigs' economics: none without chain
            live = [r for r in view.site.rows if r.hashrate_ths is not None]
            doc["site"].update(
                hashrate_ths=round(view.site.live_ths, 1),
                power_w=round(view.site.live_power_w, 0),
                rigs_without_power=sum(1 for r in live if r.power_w is None),
                **dict.fromkeys(("btc_per_day", "revenue_usd_day", "cost_usd_day",
                                 "margin_usd_day", "margin_after_retarget_usd_day",
                                 "production_cost_usd_per_btc")))
    errors = [{"source": name, "error": st.error} for name, st in view.sources.items()
              if st.error]
    seen = {(e["source"], e["error"]) for e in errors}
    errors += [{"source": part, "error": msg} for part, msg in view.errors.items()
               if (part, msg) not in seen]
    doc["errors"] = errors
    return doc


async def run_once(spec: SourceSpec, *, clock: Callable[[], float] = time.time,
                   logger: logging.Logger | None = None) -> EngineView:
    """``--once``: poll every source once (rigs after their scan ranges), compute, return
    the view.  The same engine as the dashboard and the daemon, without the schedule."""
    engine = Engine(spec, clock=clock, threaded_rigs=False, logger=logger)
    try:
        await engine.start_sources_only()
        chain, price = engine.pollers["chain"], engine.pollers["price"]
        await asyncio.gather(engine._poll_once(chain), engine._poll_once(price))
        power = engine.pollers.get("power")
        if power is not None:
            await engine._poll_once(power)
        rigs = engine.pollers.get("rigs")
        if rigs is not None:
            src: RigSource = rigs.source
            if src.site.scans:  # find the rigs of the ranges first, then poll everything
                await src.fetch()
                await src.wait_for_scan()
            await engine._poll_once(rigs)
            await engine.idle()
        return engine.latest or engine.publish()
    finally:
        await engine.stop()
