"""The Textual app: wires sources -> snapshots -> computation -> panes.

One worker per source polls it; the next poll is armed only when the previous one finished,
so a source is never polled twice at once, and a slow or dead source only makes its own
panes stale.  Panes are passive: the app hands them view-models.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from rich.table import Table
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.filter import LineFilter
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Static

from tui.alerts import (
    AlertEngine,
    AlertEvent,
    AlertRules,
    NetworkCondition,
    RigCondition,
    format_log_line,
)
from tui.catalog import Catalog
from tui.cli import SourceSpec, demo_spec, make_sources
from tui.commands import COMMANDS, parse_keymap
from tui.config import SiteConfig
from tui.dashboard import Dashboard, compute
from tui.history import RigHistory, Sample
from tui.model import ChainSnapshot, ChainSource, PriceSnapshot, PriceSource, RigReading
from tui.safe import safe
from tui.site import SiteView, compute_site, rig_input
from tui.sources.base import SourceError
from tui.sources.fleet import RigSource, RigsSnapshot
from tui.sources.poll import Backoff
from tui.sources.rigs import RigFleet
from widgets.alerts import AlertsScreen, alerts_table
from widgets.ascii import AsciiFilter
from widgets.base import Pane, SourceStatus
from widgets.blocks import BlocksPane
from widgets.drift import DriftPane
from widgets.hashrate import HashratePane
from widgets.header import HeaderBar
from widgets.retarget import RetargetPane
from widgets.rig_detail import RigDetailScreen
from widgets.rigs import RigsPane, RigTable

#: How often the projection is recomputed between polls (it depends on the clock).
RECOMPUTE_EVERY_S = 30.0
#: Above this many rigs the site's numbers are computed in a thread (the loop stays free).
THREAD_ABOVE_RIGS = 500
#: Rigs handled between two hand-backs to the event loop in the site worker (each step
#: takes a few milliseconds, so a key press waits at most that long).
SITE_STEP = 250
#: More alerts than this firing at once are summed up in one notification.
ALERT_TOASTS = 3
MIN_INTERVAL_S, MAX_INTERVAL_S = 5.0, 3600.0


class ChainUpdated(Message):
    def __init__(self, snap: ChainSnapshot) -> None:
        super().__init__()
        self.snap = snap


class PriceUpdated(Message):
    def __init__(self, snap: PriceSnapshot) -> None:
        super().__init__()
        self.snap = snap


class RigsUpdated(Message):
    def __init__(self, snap: RigsSnapshot) -> None:
        super().__init__()
        self.snap = snap


class SourceFailed(Message):
    def __init__(self, name: str, error: str) -> None:
        super().__init__()
        self.name = name
        self.error = error


@dataclass
class Poller:
    """Scheduling state of one source (owned by the app, touched only on its loop)."""

    name: str
    source: ChainSource | PriceSource
    interval: float
    backoff: Backoff
    fetched_at: float | None = None
    error: str | None = None
    polling: bool = False
    pending: bool = False  #: a poll came due while paused
    timer: Timer | None = field(default=None, repr=False)
    polls: int = 0


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "close")
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; max-width: 95%; height: 80%;
        border: round $accent; padding: 0 1; background: $surface; }
    HelpScreen Static { width: 100%; height: auto; }
    """

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for c in COMMANDS:
            table.add_row(c.shown_keys, c.help)
        table.add_row("esc", "Close this screen")
        with VerticalScroll() as v:
            v.border_title = "Keys"
            v.border_subtitle = "esc to close"
            yield Static(table)


#: Below this size the layout can't be drawn without breaking: the screen says so instead.
MIN_WIDTH, MIN_HEIGHT = 72, 20


class TooSmallScreen(Screen[None]):
    """Shown instead of a broken layout while the terminal is below the minimum size."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "app.quit", "quit")]
    DEFAULT_CSS = """
    TooSmallScreen { align: center middle; }
    TooSmallScreen > Static { width: auto; height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def show_size(self, width: int, height: int) -> None:
        self.query_one("#too-small", Static).update(
            f"minertop needs at least {MIN_WIDTH}×{MIN_HEIGHT};\n"
            f"this terminal is {width}×{height}.\nEnlarge it, or press q to quit.")

    def on_mount(self) -> None:
        self.show_size(self.app.size.width, self.app.size.height)


class MinertopApp(App[int]):
    CSS_PATH = "minertop.tcss"
    TITLE = "minertop"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(c.keys, c.action, c.label, show=c.footer, id=c.id,
                key_display=c.display.split()[0] if c.display else None)
        for c in COMMANDS
    ]

    def __init__(
        self,
        spec: SourceSpec,
        *,
        sources: tuple[ChainSource, PriceSource] | None = None,
        clock: Callable[[], float] = time.time,
        tick_s: float = 1.0,
    ) -> None:
        # NO_COLOR: no colour at all (the terminal's own foreground and background), not
        # Textual's default greyscale, where red or green text on a dark panel comes out
        # grey on grey.  Meaning never rests on colour alone here: signs, words and symbols.
        super().__init__(ansi_color=True if "NO_COLOR" in os.environ else None)
        self.spec = spec
        self.clock = clock
        self.tick_s = tick_s
        self._given_sources = sources
        self.pollers: dict[str, Poller] = {}
        self.chain: ChainSnapshot | None = None
        self.price: PriceSnapshot | None = None
        self.dashboard: Dashboard | None = None
        self.paused = False
        self.sim: Any = None
        self._computed_at = 0.0
        self._startup_error: str | None = None
        self._hangup = False
        self.source_label = "—"
        self.site: SiteConfig | None = spec.site
        self.rig_sim: Any = None
        self.fleet: RigFleet | None = None
        self.rig_history: dict[str, RigHistory] = {}
        self.site_view: SiteView | None = None
        self._catalog: Catalog | None = None
        self._site_record = False
        self._site_again = False
        self._site_running = False
        self.freeze_gc_after_start = False  #: run_app: see tune_gc()
        self._gc_frozen = False
        self._alerts_due = False
        self._rig_updates: deque[Sequence[RigReading]] = deque()
        #: keyword arguments for each source's Backoff (tests shorten the delays)
        self.backoff_overrides: dict[str, float] = {}
        #: PollConfig fields to override for the rigs (tests shorten the deadline)
        self.poll_overrides: dict[str, float] = {}
        self._ascii_filter = AsciiFilter()
        self.zoomed: Widget | None = None
        rules = spec.site.alerts if spec.site is not None else AlertRules()
        self.alert_rules = rules
        self.alerts = AlertEngine(rules)
        self._alert_log_error = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield HeaderBar()
        with Horizontal(id="top"):
            yield HashratePane()
            yield DriftPane()
            yield RetargetPane()
        if self.has_site:
            yield RigsPane()
        else:
            yield BlocksPane()
        yield Footer()

    def get_line_filters(self) -> Sequence[LineFilter]:
        filters = list(super().get_line_filters())
        if self.spec.ascii:
            filters.append(self._ascii_filter)
        return filters

    def get_system_commands(self, screen: Screen) -> list[SystemCommand]:  # type: ignore[override]
        cmds = [SystemCommand(c.label.capitalize(), c.help, self._runner(c.action))
                for c in COMMANDS]
        return cmds

    def _runner(self, action: str) -> Callable[[], object]:
        return lambda: self.run_action(action)

    @property
    def main(self) -> Screen:
        """The dashboard screen, even while a help or detail screen is on top of it."""
        return self.screen_stack[0]

    @property
    def has_site(self) -> bool:
        return self.spec.demo or self.spec.site is not None

    @property
    def panes(self) -> list[Pane]:
        return list(self.main.query(Pane))

    @property
    def rigs_pane(self) -> RigsPane | None:
        found = self.main.query(RigsPane)
        return found.first() if found else None

    def on_resize(self, event: events.Resize) -> None:
        w, h = event.size
        small = w < MIN_WIDTH or h < MIN_HEIGHT
        if small:
            if isinstance(self.screen, TooSmallScreen):
                self.screen.show_size(w, h)
            elif not any(isinstance(s, TooSmallScreen) for s in self.screen_stack):
                self.push_screen(TooSmallScreen())
        else:
            while isinstance(self.screen, TooSmallScreen):
                self.pop_screen()
        # Tall terminals give the network panes more rows (their charts grow with them).
        top = self.main.query("#top")
        if top and self.zoomed is None:
            h = self.size.height
            top.first().styles.height = 9 if h < 45 else min(18, 9 + (h - 40) // 2)

    async def on_mount(self) -> None:
        self._install_hangup_guards()
        keys = self.spec.site.extra.get("keys") if self.spec.site else None
        if keys:
            self.set_keymap(parse_keymap(keys))
        self.set_interval(self.tick_s, self._tick)
        self.run_worker(self._start(), name="start", exit_on_error=False)

    async def _start(self) -> None:
        spec = self.spec
        if self._given_sources is not None:
            chain_src, price_src = self._given_sources
        else:
            if spec.demo:
                from tui.sim import start_sim

                try:
                    self.sim = await start_sim(seed=spec.demo_seed, scenario=spec.demo_scenario,
                                               clock=self.clock)
                except Exception as e:  # a bad scenario name or a port problem: say so
                    self._startup_error = f"demo simulator failed to start: {e}"
                    self.notify(self._startup_error, severity="error", timeout=30, markup=False)
                    return
                sim = self.sim
                spec = demo_spec(spec, sim.mempool_url, sim.rpc_url, sim.cookie_path)
            chain_src, price_src = make_sources(spec, clock=self.clock)
        self.pollers = {
            "chain": Poller("chain", chain_src, spec.chain_interval,
                            Backoff(spec.chain_interval, **self.backoff_overrides)),
            "price": Poller("price", price_src, spec.price_interval,
                            Backoff(spec.price_interval, **self.backoff_overrides)),
        }
        self.source_label = f"demo ({spec.kind} sim)" if spec.demo else chain_src.label
        self.main.query_one(HeaderBar).set_data(source=self.source_label, tip=None, price=None,
                                           hashprice=None)
        if self.has_site and self._given_sources is None:
            await self._start_rigs()
        for p in self.pollers.values():
            self._start_poll(p)
        self._tick()

    async def _start_rigs(self) -> None:
        site = self.site
        if self.spec.demo:
            from tui.sources.fleet import start_demo_site

            try:
                self.rig_sim, site = await start_demo_site(self.spec.demo_seed, self.clock)
            except Exception as e:
                self.notify(f"demo rigs failed to start: {e}", severity="error", timeout=30,
                            markup=False)
                return
            self.site = site
        if site is None:
            return
        if self.poll_overrides:
            site = replace(site, poll=replace(site.poll, **self.poll_overrides))
            self.site = site
        self._catalog = site.catalog()
        self.fleet = RigFleet(site.poll.interval_s)
        source = RigSource(site, clock=self.clock, threaded=True)
        source.on_partial = lambda snap: self.post_message(RigsUpdated(snap))
        self.pollers["rigs"] = Poller("rigs", source,
                                      site.poll.interval_s,
                                      Backoff(site.poll.interval_s, **self.backoff_overrides))

    # ------------------------------------------------------------------ polling
    def _start_poll(self, p: Poller) -> None:
        p.timer = None
        if self.paused:
            p.pending = True
            return
        if p.polling:
            return
        p.polling = True
        self.run_worker(self._poll(p), name=f"poll-{p.name}", group=p.name, exit_on_error=False)

    async def _poll(self, p: Poller) -> None:
        delay = p.interval
        try:
            snap = await p.source.fetch()
        except SourceError as e:
            delay = p.backoff.failure(e)
            self.post_message(SourceFailed(p.name, str(e)))
        except asyncio.CancelledError:
            p.polling = False
            raise
        except Exception as e:  # a bug must not take the dashboard down: show it, keep going
            err = SourceError(f"{p.source.label}: internal error: {type(e).__name__}: {e}")
            delay = p.backoff.failure(err)
            self.post_message(SourceFailed(p.name, str(err)))
        else:
            delay = p.backoff.success()
            p.fetched_at = self.clock()
            if isinstance(snap, ChainSnapshot):
                self.post_message(ChainUpdated(snap))
            elif isinstance(snap, RigsSnapshot):
                self.post_message(RigsUpdated(snap))
            else:
                self.post_message(PriceUpdated(snap))
        p.polls += 1
        p.polling = False
        if not self._exit_requested():
            p.timer = self.set_timer(delay, lambda: self._start_poll(p), name=f"next-{p.name}")

    def _exit_requested(self) -> bool:
        return self._exit or self._hangup  # type: ignore[attr-defined]

    @on(ChainUpdated)
    def _on_chain(self, msg: ChainUpdated) -> None:
        self.pollers["chain"].error = None
        self.chain = msg.snap
        self._recompute()

    @on(PriceUpdated)
    def _on_price(self, msg: PriceUpdated) -> None:
        self.pollers["price"].error = None
        self.price = msg.snap
        self._recompute()

    @on(RigsUpdated)
    def _on_rigs(self, msg: RigsUpdated) -> None:
        if self.fleet is None:
            return
        # The site worker applies them, in steps (thousands of readings at once must not
        # hold key presses up), in order with everything else that reads the fleet.
        self._rig_updates.append(msg.snap.readings)
        self._recompute_site(record=msg.snap.complete)
        self._update_statuses()

    @on(SourceFailed)
    def _on_failed(self, msg: SourceFailed) -> None:
        p = self.pollers[msg.name]
        first = p.error is None
        p.error = msg.error
        if first:
            self.notify(safe(msg.error), title=f"{msg.name} source", severity="warning",
                        timeout=8, markup=False)
        self._update_statuses()

    # ------------------------------------------------------------------ views
    def _views_ready(self) -> bool:
        """False while the app is starting up or shutting down (no panes to draw on)."""
        return (not self._exit_requested() and bool(self.screen_stack)
                and bool(self.main.query(HeaderBar)))

    def _recompute(self) -> None:
        if not self._views_ready() or self.paused:
            return  # paused: data that was in flight is kept and shown on resume
        if self.chain is None:
            # No chain yet (slow or down): what the other sources know is still shown.
            self.main.query_one(HeaderBar).set_data(
                source=self.source_label, tip=None,
                price=self.price.usd if self.price else None, hashprice=None)
            self._update_statuses()
            return
        now = self.clock()
        self._computed_at = now
        d = compute(self.chain, self.price, now)
        self.dashboard = d
        with self.batch_update():
            self.main.query_one(HeaderBar).set_data(
                source=self.source_label,
                tip=self.chain.tip_height,
                price=self.price.usd if self.price else None,
                hashprice=d.hashprice.usd_per_ph_day,
            )
            self.main.query_one(HashratePane).show(d.hashrate)
            self.main.query_one(DriftPane).show(d.drift)
            self.main.query_one(RetargetPane).show(d.retarget)
            blocks = self.main.query(BlocksPane)
            if blocks:
                blocks.first().show(self.chain)
            self._recompute_site()
            self._update_statuses()
        self._evaluate_alerts()

    def _recompute_site(self, record: bool = False) -> None:
        """Rig rows and site totals from the fleet and the network's numbers.

        ``record``: a poll cycle completed (history samples and alerts are taken then).  One
        worker does all the per-rig work in order: it applies new readings, gathers the
        inputs, computes the site (in a thread above ``THREAD_ABOVE_RIGS``), records history
        and evaluates alerts, handing the event loop back every ``SITE_STEP`` rigs, so with
        thousands of rigs a refresh never holds a key press up for long.  A request while it
        runs makes it go round once more (a pending ``record`` carries over).
        """
        if self.fleet is None or self.site is None or self._catalog is None:
            return
        if not self._views_ready():
            return
        self._site_record = self._site_record or record
        self._site_again = True
        if not self._site_running:
            self._site_running = True
            self.run_worker(self._site_loop, name="site", group="site", exit_on_error=False)

    async def _site_loop(self) -> None:
        try:
            while self._site_again:
                self._site_again = False
                await self._refresh_site()
        finally:
            self._site_running = False  # (no await since the loop's test: nothing is lost)

    async def _refresh_site(self) -> None:
        fleet, site, catalog = self.fleet, self.site, self._catalog
        assert fleet is not None and site is not None and catalog is not None
        step = SITE_STEP
        n = 0
        while self._rig_updates:
            for r in self._rig_updates.popleft():
                fleet.record(r)
                if not r.ok:
                    self.rig_history.setdefault(r.rig_id, RigHistory()).error(
                        r.time, r.error or "unknown error")
                n += 1
                if n % step == 0:
                    await asyncio.sleep(0)
        now = self.clock()
        poller = self.pollers.get("rigs")
        targets = poller.source.poller.targets if poller else ()  # type: ignore[union-attr]
        configured = {r.name: r for r in site.rigs}
        inputs = []
        for i, t in enumerate(targets):
            if i and i % step == 0:
                await asyncio.sleep(0)
            inputs.append(rig_input(t, fleet, configured, now))
        d = self.dashboard
        kwargs = dict(site=site, catalog=catalog, hashprice=d.hashprice if d else None,
                      price_usd=self.price.usd if self.price else None,
                      retarget_change_pct=(d.retarget.projection.difficulty_change
                                           if d and d.retarget else None))
        if len(inputs) > THREAD_ABOVE_RIGS:
            view = await asyncio.to_thread(compute_site, inputs, **kwargs)  # type: ignore[arg-type]
        else:
            view = compute_site(inputs, **kwargs)  # type: ignore[arg-type]
        if not self._views_ready():
            return
        record, self._site_record = self._site_record, False
        alerts_due, self._alerts_due = self._alerts_due, False
        self.site_view = view
        if record:
            for i, row in enumerate(view.rows):
                if i and i % step == 0:
                    await asyncio.sleep(0)
                rd = fleet.last_good(row.rig_id)
                if rd is None or row.status != "ok":
                    continue
                fans = rd.fans_rpm
                self.rig_history.setdefault(row.rig_id, RigHistory()).add(Sample(
                    time=rd.time, hashrate_ths=row.hashrate_ths, power_w=row.power_w,
                    temp_c=row.temp_max, fan_rpm=sum(fans) / len(fans) if fans else None,
                    margin_usd_day=row.margin))
        if record or alerts_due:
            await self._evaluate_alerts_steps(view)
        if record and self.freeze_gc_after_start and not self._gc_frozen:
            self._gc_frozen = True
            gc.collect()
            gc.freeze()  # see tune_gc()
        top = self.screen
        if isinstance(top, RigDetailScreen):
            row = next((r for r in view.rows if r.rig_id == top.rig_id), None)
            if row is not None:
                top.refresh_detail(row, self.rig_history.setdefault(row.rig_id, RigHistory()),
                                   now)
        pane = self.rigs_pane
        if pane is not None and not self.paused:
            pane.show(view.rows, view.title(self.size.width), complete=record)

    # ------------------------------------------------------------------ alerts
    def _evaluate_alerts(self) -> None:
        """Feed the alert engine; it reports each condition once when it starts and ends.

        With rigs, the site worker evaluates (after it has the rigs' numbers, in steps, one
        evaluation at a time); without, the network's conditions are evaluated here."""
        if self.fleet is not None and self.site is not None:
            self._alerts_due = True
            self._recompute_site()
            return
        self._publish_alerts(self.alerts.evaluate(self.clock(), network=self._network_condition()))

    async def _evaluate_alerts_steps(self, view: SiteView) -> None:
        now = self.clock()
        rigs: list[RigCondition] = []
        if self.alerts.rules.enabled:
            for i, r in enumerate(view.rows):
                if i and i % SITE_STEP == 0:
                    await asyncio.sleep(0)
                rigs.append(RigCondition(rig_id=r.rig_id, status=r.status, reason=r.reason,
                                         margin_usd_day=r.margin, temp_max_c=r.temp_max,
                                         hashrate_ths=r.hashrate_ths, nominal_ths=r.nominal_ths))
        steps = self.alerts.evaluate_steps(now, rigs=rigs, network=self._network_condition(),
                                           chunk=SITE_STEP)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                events: list[AlertEvent] = done.value
                break
            await asyncio.sleep(0)
        self._publish_alerts(events)

    def _network_condition(self) -> NetworkCondition | None:
        d = self.dashboard
        if d is None:
            return None
        rt = d.retarget
        return NetworkCondition(
            epoch_drift_pct=d.drift.epoch_drift_pct,
            retarget_eta_unix=rt.projection.estimated_retarget_time if rt else None,
            retarget_change_pct=rt.projection.difficulty_change if rt else None)

    def _publish_alerts(self, events: list[AlertEvent]) -> None:
        fired = [e for e in events if e.kind == "fired"]
        if len(fired) > ALERT_TOASTS:
            # Many at once (start-up, a site-wide outage): one summary, not a wall of toasts.
            kinds: dict[str, int] = {}
            for e in fired:
                kinds[e.alert.kind] = kinds.get(e.alert.kind, 0) + 1
            summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
            crit = any(e.alert.severity == "critical" for e in fired)
            self.notify(f"{len(fired)} alerts: {summary} — press a for the list",
                        title="alerts", severity="error" if crit else "warning", timeout=10,
                        markup=False)
            if self.alert_rules.bell:
                self.bell()
        for e in events:
            self._announce(e, toast=len(events) <= ALERT_TOASTS)
        if events:
            self._update_alert_count()
            if isinstance(self.screen, AlertsScreen):
                self.screen.update_table(self._alerts_table())

    def _announce(self, e: AlertEvent, toast: bool = True) -> None:
        a = e.alert
        if toast and e.kind == "fired":
            self.notify(safe(a.message), title=f"alert · {a.severity}", markup=False,
                        severity="error" if a.severity == "critical" else "warning", timeout=10)
            if self.alert_rules.bell:
                self.bell()
        elif toast:
            self.notify(safe(a.message), title="alert cleared", timeout=5, markup=False)
        log = self.alert_rules.log_file
        if log is not None:
            try:
                with open(log, "a", encoding="utf-8") as f:
                    f.write(format_log_line(e) + "\n")
            except OSError as err:
                if not self._alert_log_error:  # say it once, keep alerting on screen
                    self._alert_log_error = True
                    self.notify(f"can't write the alert log {log}: {err.strerror or err}",
                                severity="error", timeout=15, markup=False)

    def _update_alert_count(self) -> None:
        active = list(self.alerts.active.values())
        crit = sum(1 for a in active if a.severity == "critical")
        self.main.query_one(HeaderBar).set_alerts(crit, len(active) - crit)

    def _alerts_table(self) -> Table:
        log = self.alert_rules.log_file
        return alerts_table(self.alerts.active, self.alerts.history, self.clock(),
                            str(log) if log else None)

    def action_alerts(self) -> None:
        if isinstance(self.screen, AlertsScreen):
            self.pop_screen()
        else:
            self.push_screen(AlertsScreen(self._alerts_table()))

    def _status(self, name: str, now: float) -> SourceStatus:
        p = self.pollers.get(name)
        if p is None:
            return SourceStatus(None, self._startup_error, now)
        return SourceStatus(p.fetched_at, p.error, now, polling=p.polling, paused=self.paused)

    def _update_statuses(self) -> None:
        if not self._views_ready():
            return
        now = self.clock()
        chain = self._status("chain", now)
        statuses = {"chain": chain, "price": self._status("price", now)}
        if "rigs" in self.pollers:
            statuses["rigs"] = self._status("rigs", now)
        self.main.query_one(HeaderBar).set_statuses(statuses, now, self.paused)
        for pane in self.panes:
            pane.set_status(chain)

    def _tick(self) -> None:
        if self.paused or not self._views_ready():
            return
        now = self.clock()
        if self.chain is not None and now - self._computed_at >= RECOMPUTE_EVERY_S:
            self._recompute()
            return
        with self.batch_update():
            if self.dashboard is not None:
                self.main.query_one(DriftPane).tick(now - self._computed_at)
                self.main.query_one(RetargetPane).tick(now)
            self._update_statuses()

    # ------------------------------------------------------------------ actions
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_refresh(self) -> None:
        for p in self.pollers.values():
            if p.polling:
                continue
            if p.timer is not None:
                p.timer.stop()
            self._start_poll(p)
        self.notify("refreshing…", timeout=2)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            for p in self.pollers.values():
                if p.pending:
                    p.pending = False
                    self._start_poll(p)
            self._recompute()
        self._update_statuses()

    def _focus_targets(self) -> list[Widget]:
        targets: list[Widget] = [self.main.query_one(t) for t in
                                 (HashratePane, DriftPane, RetargetPane)]
        rigs = self.rigs_pane
        targets.append(rigs.table if rigs is not None else self.main.query_one(BlocksPane))
        return targets

    def action_pane(self, n: int) -> None:
        targets = self._focus_targets()
        if 1 <= n <= len(targets):
            targets[n - 1].focus()

    def action_zoom(self) -> None:
        """Toggle the focused pane (or the first) to fill the screen."""
        targets = self._focus_targets()
        boxes = [t.parent if isinstance(t, RigTable) else t for t in targets]
        top = self.main.query_one("#top")
        if self.zoomed is not None:
            self.zoomed = None
            for box in boxes:
                box.display = True
            top.display = True
            top.styles.height = None
            self.main.remove_class("-zoom")
            return
        focused = self.focused
        pick = 0
        for i, t in enumerate(targets):
            if focused is t or (focused is not None and t in focused.ancestors_with_self):
                pick = i
        target = boxes[pick]
        self.zoomed = target  # type: ignore[assignment]
        self.main.add_class("-zoom")
        in_top = pick < 3
        top.display = in_top
        if in_top:
            top.styles.height = "1fr"
        for box in boxes:
            box.display = box is target
        targets[pick].focus()

    def action_filter(self) -> None:
        pane = self.rigs_pane
        if pane is None:
            self.notify("no rigs configured: see 'minertop init-config'", timeout=4)
            return
        pane.start_filter()

    def action_sort_next(self) -> None:
        if (pane := self.rigs_pane) is not None:
            pane.cycle_sort(+1)

    def action_sort_prev(self) -> None:
        if (pane := self.rigs_pane) is not None:
            pane.cycle_sort(-1)

    def action_sort_invert(self) -> None:
        if (pane := self.rigs_pane) is not None:
            pane.reverse_sort()

    def action_details(self) -> None:
        pane = self.rigs_pane
        rig_id = pane.table.cursor_rig_id if pane is not None else None
        if rig_id is not None:
            self.open_rig(rig_id)

    def action_back(self) -> None:
        pane = self.rigs_pane
        if pane is not None and (pane.filter_text or pane.has_class("-filtering")):
            pane.clear_filter()

    @on(RigTable.Open)
    def _open_from_table(self, msg: RigTable.Open) -> None:
        self.open_rig(msg.rig_id)

    def open_rig(self, rig_id: str) -> None:
        view = self.site_view
        row = next((r for r in view.rows if r.rig_id == rig_id), None) if view else None
        if row is None:
            return
        self.push_screen(RigDetailScreen(
            rig_id, row, self.rig_history.setdefault(rig_id, RigHistory()), self.clock()))

    def _scale_intervals(self, factor: float) -> None:
        for p in self.pollers.values():
            p.interval = min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, p.interval * factor))
            p.backoff.interval = p.interval
            if p.name == "rigs" and self.fleet is not None:
                # A rig is stale after three missed polls, at whatever pace we poll.
                self.fleet.interval = p.interval
                self.fleet.stale_after = 3 * p.interval
        shown = ", ".join(f"{p.name} {p.interval:.0f}s" for p in self.pollers.values())
        self.notify(f"poll every {shown}", timeout=3)

    def action_faster(self) -> None:
        self._scale_intervals(0.5)

    def action_slower(self) -> None:
        self._scale_intervals(2.0)

    async def action_quit(self) -> None:
        self.exit(0)

    # ------------------------------------------------------------------ shutdown
    def _install_hangup_guards(self) -> None:
        """Exit cleanly when the terminal goes away (SSH drop): SIGHUP, or a dead tty.

        SIGHUP is not always delivered (masked by a supervisor, or the pty is not our
        controlling terminal), and meanwhile Textual's input thread busy-loops on the dead
        stdin, so a thread also waits for the tty's hang-up and ends the app at once.
        """
        import select

        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
        fd = _tty_fd()
        if fd is None:
            return

        def guard() -> None:
            # poll() reports POLLHUP/POLLERR/POLLNVAL even with no events asked for, so this
            # sleeps until the hang-up; the 1 s timeout re-checks the tty (and our exit) anyway.
            poller = select.poll() if hasattr(select, "poll") else None
            if poller is not None:
                poller.register(fd, 0)
            while not (self._exit_requested() or loop.is_closed()):
                flagged = False
                if poller is None:
                    time.sleep(1.0)
                else:
                    try:
                        flagged = bool(poller.poll(1000))
                    except OSError:
                        flagged = True
                if self._exit_requested() or loop.is_closed():
                    return
                if not _tty_alive(fd):
                    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                        loop.call_soon_threadsafe(self._on_hangup)
                    return
                if flagged:
                    time.sleep(1.0)  # flagged, yet the tty still answers: don't busy-loop

        threading.Thread(target=guard, name="minertop-tty-guard", daemon=True).start()

    def _on_hangup(self) -> None:
        if self._hangup:
            return
        self._hangup = True
        # Restoring the terminal may block or fail on a dead tty: never let that keep us alive.
        t = threading.Timer(3.0, os._exit, args=(129,))
        t.daemon = True
        t.start()
        self.exit(129)

    async def on_unmount(self) -> None:
        await self._close_sources()

    async def _close_sources(self) -> None:
        for p in self.pollers.values():
            with contextlib.suppress(Exception):
                await p.source.aclose()
        for attr in ("sim", "rig_sim"):
            sim = getattr(self, attr)
            if sim is not None:
                with contextlib.suppress(Exception):
                    await sim.stop()
                setattr(self, attr, None)


def _tty_fd() -> int | None:
    for stream in (sys.__stdin__, sys.__stdout__):
        try:
            if stream is not None and stream.isatty():
                return stream.fileno()
        except (ValueError, OSError):
            continue
    return None


def _tty_alive(fd: int) -> bool:
    """False once the terminal behind ``fd`` is hung up (its ioctls fail with EIO)."""
    import termios

    try:
        termios.tcgetattr(fd)
    except (termios.error, OSError):
        return False
    return True


def run_app(spec: SourceSpec) -> int:
    tune_gc()
    app = MinertopApp(spec)
    app.freeze_gc_after_start = True
    code = app.run(mouse=spec.mouse)
    if app._startup_error:
        print(f"minertop: {app._startup_error}", file=sys.stderr)
        return 1
    return code if isinstance(code, int) else 0


def tune_gc() -> None:
    """Fewer, not longer, garbage-collector pauses.

    With thousands of rigs the heap holds a few hundred thousand objects, and each poll
    cycle allocates tens of thousands more; at CPython's default thresholds a full
    collection (40-60 ms with 5,000 rigs, measured) ran every 3-5 s and now and then held a
    key press up.  A larger first threshold makes young collections rarer (each stays a few
    ms) and full ones a few minutes apart.  After start-up the
    long-lived objects (Textual, the panes, the first readings) are frozen out of the
    collector's scans (:meth:`MinertopApp._refresh_site`); freed ones are still freed by
    reference counting.
    """
    gc.set_threshold(10_000, 20, 20)


__all__ = ["MinertopApp", "run_app"]
