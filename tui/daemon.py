"""``minertop daemon``: the engine headless, with history, an HTTP API and notifications.

It runs the same :class:`~tui.engine.Engine` as the dashboard, and on every completed poll
cycle:

- records the rigs' readings, the site totals, the chain and price figures and the alert
  events in the SQLite history (:mod:`tui.store`, written in a thread, one transaction per
  cycle; a full disk or a read-only file never stops polling or alerting);
- hands the cycle's alert events to the notifiers (:mod:`tui.notify`: queued, never waited
  for);
- once a UTC day, reads back the daily hashprice it recorded over the last 90 days
  (:meth:`~tui.store.HistoryStore.hashprice_days`) for the hashprice chart, so a source
  without a price history (a Bitcoin Core node with a fixed price) still draws one in USD;
- keeps the ``--once --json`` document of that cycle for ``GET /api/v1/snapshot`` (a request
  never triggers polling), and the view for attached dashboards (``GET /api/v1/view``).

Signals: SIGTERM and SIGINT stop it (exit 0 within a few seconds); SIGHUP re-reads the
config, and a bad new config is reported while the old one keeps running.  No terminal is
needed and nothing here imports Textual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui import __version__
from tui.alerts import AlertEvent
from tui.engine import Engine, EngineView, view_document
from tui.spec import SourceSpec
from tui.squeeze import DAY, HASHPRICE_HISTORY_DAYS, HashpricePoint
from tui.store import (
    ChainPoint,
    EventRecord,
    HistoryStore,
    RigPoint,
    SitePoint,
    StoreError,
)

log = logging.getLogger("minertop")

#: Seconds between two compactions of the history (roll-ups into 5-min and hourly rows).
COMPACT_EVERY_S = 300.0
#: Cycles waiting for the store writer beyond this are dropped (with a log line).
STORE_QUEUE = 64


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", task.get_name(), exc_info=task.exception())


def default_db_path() -> Path:
    """``$XDG_STATE_HOME/minertop/history.db`` (platformdirs' user state dir)."""
    import platformdirs

    return Path(platformdirs.user_state_dir("minertop", appauthor=False)) / "history.db"


@dataclass(frozen=True)
class DaemonOptions:
    host: str = "127.0.0.1"
    port: int = 9184
    token: str | None = None
    db_path: Path | None = None  #: None: the default location


def _event_record(e: AlertEvent) -> EventRecord:
    a = e.alert
    return EventRecord(time=e.time, kind=e.kind, key=a.key, subject=a.subject,
                       alert_kind=a.kind, severity=a.severity, message=a.message)


def cycle_points(view: EngineView) -> tuple[list[RigPoint], SitePoint | None, ChainPoint | None]:
    """What one cycle adds to the history (pure)."""
    rigs: list[RigPoint] = []
    site = None
    if view.site is not None:
        for r in view.site.rows:
            rigs.append(RigPoint(rig_id=r.rig_id, hashrate_ths=r.hashrate_ths,
                                 power_w=r.power_w, temp_max_c=r.temp_max, status=r.status,
                                 margin_usd_day=r.margin))
        t = view.site.totals
        counts = view.site.counts
        site = SitePoint(
            hashrate_ths=view.site.live_ths, power_w=view.site.live_power_w,
            margin_usd_day=t.margin_usd_day, margin_after_usd_day=t.margin_after_retarget_usd_day,
            rigs_total=len(view.site.rows), rigs_ok=counts.get("ok", 0),
            rigs_down=counts.get("offline", 0) + counts.get("error", 0),
            production_cost_usd_btc=t.production_cost_usd_per_btc)
    chain = None
    d = view.dashboard
    if d is not None:
        rt = d.retarget
        chain = ChainPoint(
            tip_height=d.chain.tip_height, difficulty=d.chain.tip.difficulty,
            hashrate_1d_hs=d.hashrate.windows.get("1d"),
            price_usd=d.price.usd if d.price else None,
            hashprice_usd_ph_day=d.hashprice.usd_per_ph_day,
            hashprice_btc_ph_day=d.hashprice.btc_per_ph_day,
            retarget_change_pct=rt.projection.difficulty_change if rt else None,
            epoch_drift_pct=d.drift.epoch_drift_pct)
    return rigs, site, chain


def _notify_setup(spec: SourceSpec) -> tuple[object, ...]:
    """What the notifier hub is built from: equal setups need no new hub."""
    site = spec.site
    return (site.notify, site.name) if site is not None else ()


class Daemon:
    """The running daemon: engine, store, notifiers and API (see the module notes)."""

    def __init__(self, spec: SourceSpec, options: DaemonOptions, *,
                 reload: Callable[[], SourceSpec] | None = None,
                 clock: Callable[[], float] = time.time,
                 engine_factory: Callable[[SourceSpec], Engine] | None = None) -> None:
        self.spec = spec
        self.options = options
        self.reload_spec = reload
        self.clock = clock
        # The daemon's rig history is its database: no second copy in memory.
        self._engine_factory = engine_factory or (
            lambda s: Engine(s, clock=clock, session_history=False))
        self.engine: Engine | None = None
        self.store: HistoryStore | None = None
        self.api: Any = None
        self.notify: Any = None
        self.started_at = clock()
        self._stop = asyncio.Event()
        self._store_q: asyncio.Queue[tuple[float, EngineView, list[AlertEvent]]] = \
            asyncio.Queue(maxsize=STORE_QUEUE)
        self._events: list[AlertEvent] = []  #: events since the last recorded cycle
        self._doc_view: EngineView | None = None
        self._doc: dict[str, Any] | None = None
        self._doc_seq = -1
        self._wire: dict[str, Any] | None = None
        self._wire_seq: object = None  #: the key of the view in _wire
        self._wire_want: object = None
        self._wire_next: tuple[EngineView, dict[str, str], object] | None = None
        self._wire_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        #: /metrics: (view seq, exposition, its gzip), rendered in a thread once per cycle
        self._metrics: tuple[int, bytes, bytes] | None = None
        self._metrics_view: EngineView | None = None
        self._metrics_shown: EngineView | None = None  #: the last view queued to render
        self._metrics_task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._store_dropped = 0
        self.cycles = 0
        self.cycle_s: float | None = None  #: duration of the last rig poll cycle
        #: the daily hashprice read back from the store, and the UTC day it was read on
        self.hashprice_recorded: tuple[HashpricePoint, ...] = ()
        self._hashprice_day: int | None = None
        self._reloading = False
        self._reload_task: asyncio.Task[bool] | None = None

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Open the store, listen, start the engine and the notifiers.  Raises
        :class:`~tui.store.StoreError` or :class:`~tui.api.ListenError` (one line each)."""
        from tui.api import ApiServer

        path = self.options.db_path or default_db_path()
        # The start-up check reads the file; a big history gets 5 s of it, not a long wait.
        self.store = await asyncio.to_thread(HistoryStore, path, clock=self.clock,
                                             check_seconds=5.0)
        log.info("history in %s", path)
        self.api = ApiServer(_Backend(self), self.options.host, self.options.port,
                             token=self.options.token, logger=log, clock=self.clock)
        try:
            await self.api.start()
        except BaseException:
            await asyncio.to_thread(self.store.close)
            raise
        self._start_notify(self.spec)
        await self._load_hashprice()
        self._tasks.append(asyncio.get_running_loop().create_task(self._store_writer(),
                                                                  name="minertop-store"))
        await self._start_engine(self.spec)
        log.info("minertop %s daemon running: %s, API on %s%s", __version__,
                 self.engine.source_label if self.engine else "?", self.api.url,
                 " (token required)" if self.options.token else "")

    async def _start_engine(self, spec: SourceSpec, previous: Engine | None = None) -> None:
        engine = self._engine_factory(spec)
        if previous is not None:  # keep what the old engine knew: alert states, history
            rules = engine.alerts.rules
            engine.alerts = previous.alerts
            engine.alerts.rules = rules
            engine.rig_history = previous.rig_history
            engine._seq = previous._seq  # view numbers go on: caches key on them
        engine.hashprice_recorded = self.hashprice_recorded
        self.engine = engine
        self._unsubscribe = engine.subscribe(self._on_view)
        await engine.start()

    def _start_notify(self, spec: SourceSpec) -> None:
        configs = spec.site.notify if spec.site is not None else ()
        if not configs:
            self.notify = None
            return
        from tui.notify import NotifyHub

        self.notify = NotifyHub(configs, site_name=spec.site.name if spec.site else "site",
                                clock=self.clock)
        task = asyncio.get_running_loop().create_task(self.notify.start(),
                                                      name="minertop-notify-start")
        task.add_done_callback(_log_failure)
        self._tasks.append(task)
        log.info("notifying %s", ", ".join(f"{c.name} ({c.kind})" for c in configs))

    async def run(self) -> int:
        """Until SIGTERM/SIGINT: 0.  Start-up problems raise (the CLI prints one line)."""
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._signalled, sig)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._hup)
        try:
            await self._stop.wait()
        finally:
            await self.stop()
        return 0

    def _signalled(self, sig: signal.Signals) -> None:
        if not self._stop.is_set():
            log.info("%s: stopping", signal.Signals(sig).name)
        self._stop.set()

    def request_stop(self) -> None:
        self._stop.set()

    def _hup(self) -> None:
        if self._reloading or self._stop.is_set():
            return
        self._reloading = True
        self._reload_task = asyncio.get_running_loop().create_task(self.reload(),
                                                                   name="minertop-reload")
        self._reload_task.add_done_callback(self._reload_done)

    def _reload_done(self, task: asyncio.Task[bool]) -> None:
        self._reloading = False
        if not task.cancelled() and task.exception() is not None:
            log.error("config reload failed", exc_info=task.exception())

    async def reload(self) -> bool:
        """SIGHUP: re-read the config; a bad one is reported and the old one keeps running."""
        if self.reload_spec is None:
            log.info("SIGHUP: nothing to reload (no config file)")
            return False
        try:
            spec = self.reload_spec()
        except Exception as e:  # a ConfigError or UsageError: one line, keep running
            log.error("config reload failed, keeping the running config: %s", e)
            return False
        log.info("SIGHUP: config re-read, restarting the polls")
        old = self.engine
        if self._unsubscribe is not None:
            self._unsubscribe()
        if old is not None:
            await old.stop()
        if self._stop.is_set():  # SIGTERM meanwhile: don't start what stop() won't close
            return False
        prev, self.spec = self.spec, spec
        if self.notify is not None and _notify_setup(prev) == _notify_setup(spec):
            # the same destinations: their queues (events still to deliver, retries under
            # way) carry on untouched; restarting them would drop what is queued
            log.info("notifications unchanged")
        else:
            before = self.notify
            if before is not None:
                await before.stop(timeout=2, handing_over=True)
            if self._stop.is_set():
                return False
            self._start_notify(spec)
            if before is not None:  # what it could not deliver goes on where it still can
                if self.notify is not None:
                    self.notify.adopt(before)
                elif any(n.pending for n in before.notifiers):
                    log.warning("notifications removed by the reload: %d events not delivered",
                                sum(n.pending for n in before.notifiers))
        await self._start_engine(spec, previous=old)
        return True

    async def stop(self) -> None:
        """Bounded: stop polling, stop listening, flush the history, stop notifying."""
        self._stop.set()
        if self._reload_task is not None and not self._reload_task.done():
            self._reload_task.cancel()
            await asyncio.gather(self._reload_task, return_exceptions=True)
        for what, part, limit in (("the engine", self.engine, 5), ("the API", self.api, 3)):
            if part is None:
                continue
            try:
                await asyncio.wait_for(part.stop(), limit)
            except Exception:  # keep stopping the rest; the log says what went wrong
                log.warning("stopping %s failed", what, exc_info=True)
        tasks = [*self._tasks, *(t for t in (self._wire_task, self._metrics_task)
                                 if t is not None)]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.notify is not None:
            try:
                await self.notify.stop(timeout=2)  # bounded: one last try, then gone
            except Exception:
                log.exception("stopping the notifiers failed")
        if self.store is not None:
            # What the writer had not written yet (a cycle in the queue) goes in now.
            while not self._store_q.empty():
                when, view, events = self._store_q.get_nowait()
                await asyncio.to_thread(self._record, when, view, events)
            await asyncio.to_thread(self.store.close)
        log.info("stopped")

    # ------------------------------------------------------------------ cycles
    def _on_view(self, view: EngineView) -> None:
        if view.alert_events:
            self._events.extend(view.alert_events)
            if self.notify is not None:
                self.notify.submit(view.alert_events)
        # The documents follow the newest complete picture: a cycle, and also the network
        # numbers (and the margins that depend on them) recomputed between cycles; a
        # cycle that finished before the first chain data is not left without them.
        last = self._doc_view
        if view.dashboard is not None and (view.site is not None or not view.has_site) and (
                last is None or view.cycle or view.dashboard is not last.dashboard
                or view.site is not last.site):
            self._doc_view = view
        if self.api is not None:
            self._want_wire(view)
        shown = self._metrics_shown
        if (shown is None or view.cycle or view.dashboard is not shown.dashboard
                or view.site is not shown.site):
            self._metrics_view = self._metrics_shown = view
            if self._metrics_task is None or self._metrics_task.done():
                self._metrics_task = asyncio.get_running_loop().create_task(
                    self._render_metrics(), name="minertop-metrics")
        if not view.cycle:
            return
        self.cycles += 1
        rigs = view.sources.get("rigs")
        events, self._events = self._events, []
        try:
            self._store_q.put_nowait((view.time, view, events))
        except asyncio.QueueFull:
            self._events = events + self._events  # the alerts go with the next cycle
            self._store_dropped += 1
            log.error("history writer is behind: dropped the cycle of %s", time.strftime(
                "%H:%M:%S", time.localtime(view.time)))
        if rigs is not None:
            self.cycle_s = rigs.duration_s

    async def _store_writer(self) -> None:
        last_compact = 0.0
        was_ok = True
        while True:
            t, view, events = await self._store_q.get()
            ok = await asyncio.to_thread(self._record, t, view, events)
            status = self.store.status if self.store else None
            if not ok and was_ok and status is not None:
                log.error("%s", status.error or "history not written")
            elif ok and not was_ok:
                log.info("history is being written again")
            was_ok = ok
            now = self.clock()
            if int(t // DAY) != self._hashprice_day:
                # the first cycle of a new day is written: the day before is complete
                await self._load_hashprice(int(t // DAY))
            if ok and now - last_compact >= COMPACT_EVERY_S:
                last_compact = now
                try:
                    await asyncio.to_thread(self.store.compact, now)  # type: ignore[union-attr]
                except Exception:
                    log.exception("compacting the history failed")

    async def _load_hashprice(self, today: int | None = None) -> None:
        """The daily hashprice of the last 90 days before ``today`` (a UTC day number;
        default: the clock's; today's is left out: the chart's last point is the current
        figure) from the store, into the engine for its next computation."""
        assert self.store is not None
        if today is None:
            today = int(self.clock() // DAY)
        self._hashprice_day = today  # a failure is retried the next day, not every cycle
        try:
            rows = await asyncio.to_thread(self.store.hashprice_days,
                                           (today - HASHPRICE_HISTORY_DAYS + 1) * DAY,
                                           today * DAY)
        except StoreError as e:
            log.warning("the recorded hashprice is not available: %s", e)
            return
        except Exception:
            log.exception("reading the recorded hashprice failed")
            return
        self.hashprice_recorded = tuple(
            HashpricePoint(t, btc, usd if usd is not None and math.isfinite(usd) else None)
            for t, btc, usd in rows if btc is not None and math.isfinite(btc))
        if self.engine is not None:
            self.engine.hashprice_recorded = self.hashprice_recorded

    def _record(self, t: float, view: EngineView, events: list[AlertEvent]) -> bool:
        assert self.store is not None
        rigs, site, chain = cycle_points(view)
        try:
            return self.store.record_cycle(t, rigs=rigs, site=site, chain=chain,
                                           events=[_event_record(e) for e in events])
        except Exception:
            log.exception("recording the history failed")
            return False

    @property
    def site_name(self) -> str:
        """The ``site`` label of the metrics: the config's ``[site] name`` (or the demo's),
        else this host's name."""
        engine_site = self.engine.site if self.engine is not None else None
        if engine_site is not None:
            return engine_site.name
        import socket

        return socket.gethostname().split(".")[0] or "site"

    async def _render_metrics(self) -> None:
        """Render the exposition of the newest cycle in a thread (5,000 rigs: ~0.3 s of
        CPU, 3.6 MB), gzip it once; scrapes then copy bytes.  Coalescing: a cycle that
        lands meanwhile is rendered next."""
        import gzip

        from tui.metrics import render

        while self._metrics_view is not None:
            view, self._metrics_view = self._metrics_view, None
            site = self.site_name

            def work(view: EngineView = view, site: str = site) -> tuple[bytes, bytes]:
                body = render(view, site)
                return body, gzip.compress(body, compresslevel=5, mtime=0)

            try:
                body, gz = await asyncio.to_thread(work)
            except Exception:
                log.exception("rendering /metrics failed")
                continue
            self._metrics = (view.seq, body, gz)

    def metrics_doc(self) -> tuple[bytes, bytes] | None:
        """The exposition of the last completed cycle and its gzip (None: none yet)."""
        return None if self._metrics is None else self._metrics[1:]

    # ------------------------------------------------------------------ API views
    def snapshot_doc(self) -> dict[str, Any] | None:
        view = self._doc_view
        if view is None:
            return None
        if view.seq != self._doc_seq:  # built once per cycle, shared by every request
            self._doc = view_document(view)
            self._doc_seq = view.seq
        return self._doc

    def problems(self) -> dict[str, str]:
        """What the daemon itself can't do right now (history, notifications), in words."""
        out: dict[str, str] = {}
        if self.store is not None and not self.store.status.ok:
            out["history"] = self.store.status.error or "history not written"
        if self.notify is not None and (p := self.notify.problem()) is not None:
            out["notify"] = p
        return out

    def wire_doc(self) -> dict[str, Any] | None:
        """The engine's latest view for attached dashboards, with the daemon's own
        problems added to its errors.  Built, serialised and gzipped in a thread when the
        view changes (5,000 rigs: ~0.15 s of CPU), so a request finds the bytes ready."""
        view = self.engine.latest if self.engine else None
        if view is None:
            return None
        self._want_wire(view)
        if self._wire is None:  # before the first one is ready: build it here, once
            self._wire, self._wire_seq = self._wire_of(view, self.problems()), None
        return self._wire

    def _wire_of(self, view: EngineView, problems: dict[str, str]) -> dict[str, Any]:
        doc = view.to_wire()
        if problems:
            doc["errors"] = {**doc["errors"], **problems}
        return doc

    def _want_wire(self, view: EngineView) -> None:
        problems = self.problems()
        key = (view.seq, tuple(sorted(problems.items())))
        if key == self._wire_seq or key == self._wire_want:
            return
        self._wire_want = key
        self._wire_next = (view, problems, key)
        if self._wire_task is None or self._wire_task.done():
            self._wire_task = asyncio.get_running_loop().create_task(
                self._render_wire(), name="minertop-view")
            self._wire_task.add_done_callback(_log_failure)

    async def _render_wire(self) -> None:
        from tui.api import VIEW_CACHE

        cache = self.api.app[VIEW_CACHE] if self.api is not None else None
        while self._wire_next is not None:
            view, problems, key = self._wire_next
            self._wire_next = None

            def work(view: EngineView = view, problems: dict[str, str] = problems
                     ) -> dict[str, Any]:
                doc = self._wire_of(view, problems)
                if cache is not None:
                    cache.prime(doc)
                return doc

            self._wire = await asyncio.to_thread(work)
            self._wire_seq = key

    def health(self) -> tuple[bool, dict[str, Any]]:
        now = self.clock()
        view = self.engine.latest if self.engine else None
        sources = {}
        for name, st in (view.sources.items() if view else ()):
            sources[name] = {
                "state": "error" if st.error else ("ok" if st.fetched_at else "waiting"),
                "age_s": None if st.fetched_at is None else round(now - st.fetched_at, 1),
                "error": st.error, "interval_s": st.interval, "label": st.label,
                "poll_s": None if st.duration_s is None else round(st.duration_s, 3)}
        store: dict[str, Any] = {"state": "closed"}
        if self.store is not None:
            s = self.store.status
            store = {"state": "ok" if s.ok else "error", "path": s.path, "error": s.error,
                     "age_s": None if s.last_write is None else round(now - s.last_write, 1),
                     "pending_cycles": s.pending_cycles, "size_bytes": s.size_bytes,
                     "dropped_cycles": self._store_dropped}
        notifiers = self.notify.status() if self.notify is not None else []
        degraded = (store.get("state") != "ok" or any(v["state"] == "error"
                                                      for v in sources.values())
                    or any(not n.get("ok", True) for n in notifiers)
                    or bool(view and view.errors))
        doc = {"service": "minertop", "version": __version__,
               "status": "degraded" if degraded else "ok",
               "uptime_s": round(now - self.started_at, 1),
               "source": view.source_label if view else None, "sources": sources,
               "store": store, "notifiers": notifiers, "cycles": self.cycles,
               "cycle_s": None if self.cycle_s is None else round(self.cycle_s, 3),
               "errors": dict(view.errors) if view else {}}
        return True, doc  # 200 while the process serves: the document says what is wrong


class _Backend:
    """What the HTTP API asks of the daemon (see :class:`tui.api.ApiBackend`)."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    @staticmethod
    async def _read(fn: Callable[..., Any], *args: Any) -> Any:
        """A history query in a thread; a file that can't be read is a 503, not a bug."""
        from tui.api import BackendUnavailable

        try:
            return await asyncio.to_thread(fn, *args)
        except StoreError as e:
            raise BackendUnavailable(str(e)) from None

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.d.health()

    def snapshot_doc(self) -> dict[str, Any] | None:
        return self.d.snapshot_doc()

    def view_doc(self) -> dict[str, Any] | None:
        return self.d.wire_doc()

    def metrics_doc(self) -> tuple[bytes, bytes] | None:
        return self.d.metrics_doc()

    async def rig_history(self, rig: str, since: float, until: float) -> dict[str, Any] | None:
        store = self.d.store
        if store is None:
            return None
        if not await self._read(store.rig_known, rig):
            return None
        points = await self._read(store.rig_history, rig, since, until)
        return {"rig": rig, "since": since, "until": until, "points": points}

    async def site_history(self, since: float, until: float) -> dict[str, Any]:
        store = self.d.store
        points = await self._read(store.site_history, since, until) if store else []
        return {"since": since, "until": until, "points": points}

    async def alerts(self, since: float, until: float | None) -> dict[str, Any]:
        store = self.d.store
        events = await self._read(store.alerts, since, until) if store else []
        view = self.d.engine.latest if self.d.engine else None
        active = [{"key": a.key, "subject": a.subject, "alert_kind": a.kind,
                   "severity": a.severity, "message": a.message, "since": a.since}
                  for a in (view.alerts_active if view else ())]
        return {"since": since, "until": until, "events": events, "active": active}


async def run_daemon(spec: SourceSpec, options: DaemonOptions,
                     reload: Callable[[], SourceSpec] | None = None) -> int:
    """The CLI's entry: one line on stderr (through the log) and exit 1 when it can't start."""
    from tui.api import ListenError

    daemon = Daemon(spec, options, reload=reload)
    try:
        return await daemon.run()
    except (StoreError, ListenError) as e:
        log.error("%s", e)
        return 1
