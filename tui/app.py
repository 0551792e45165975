"""The Textual dashboard: a thin face over the engine.

The engine (:mod:`tui.engine`, no Textual) polls the sources, computes and publishes
immutable views; this app subscribes, and hands each view's parts to passive panes.  It
keeps the screens, the key bindings and the view updates, nothing else.  The engine is the
local one (standalone), a daemon's (``--attach``) or, in tests, a fake that posts views.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.filter import LineFilter
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.theme import Theme
from textual.widget import Widget
from textual.widgets import Footer, Static

from tui.alerts import AlertEngine, AlertEvent, AlertRules
from tui.commands import COMMANDS, bindings_for, parse_keymap
from tui.curtail import CurtailPlan
from tui.curtail import plan as curtail_plan
from tui.dashboard import Dashboard
from tui.engine import Engine, EngineView, Poller
from tui.history import RigHistory
from tui.model import ChainSnapshot, ChainSource, PriceSnapshot, PriceSource
from tui.safe import safe
from tui.site import SiteView
from tui.sources.rigs import RigFleet
from tui.spec import SourceSpec
from widgets.alerts import AlertsScreen, alerts_table
from widgets.ascii import AsciiFilter
from widgets.base import Pane, SourceStatus
from widgets.blocks import BlocksPane
from widgets.curtail import CurtailScreen, curtail_table
from widgets.drift import DriftPane
from widgets.hashrate import HashratePane
from widgets.header import HeaderBar
from widgets.retarget import RetargetPane
from widgets.rig_detail import RigDetailScreen
from widgets.rigs import RigsPane, RigTable

log = logging.getLogger("minertop")

#: More alerts than this firing at once are summed up in one notification.
ALERT_TOASTS = 3
#: A part's failure is told again only after it has been healthy this long (s of view time):
#: a source that fails on every other poll is one outage, not a toast per failure.
RETELL_AFTER_S = 60.0


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

    def __init__(self, sources: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.sources = sources or []

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
            if self.sources:
                src = Table(box=None, show_header=False, padding=(0, 2), title="Sources",
                            title_justify="left", title_style="bold")
                src.add_column(style="bold", no_wrap=True)
                src.add_column()
                for name, line in self.sources:
                    src.add_row(name, Text(safe(line, 400)))
                yield Static(src)


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


class ViewUpdated(Message):
    """The engine published a new view (posted on the app's loop)."""

    def __init__(self, view: EngineView) -> None:
        super().__init__()
        self.view = view


class EngineLike(Protocol):
    """What the dashboard needs of an engine: the local :class:`~tui.engine.Engine`, a
    daemon's (attached), or a test's fake that publishes hand-made views."""

    paused: bool

    def subscribe(self, callback: Callable[[EngineView], None]) -> Callable[[], None]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def set_paused(self, paused: bool) -> None: ...

    def refresh(self) -> None: ...

    def scale_intervals(self, factor: float) -> str: ...

    def history_for(self, rig_id: str) -> RigHistory: ...


def _theme_file() -> Path:
    import platformdirs

    return platformdirs.user_state_path("minertop") / "ui.json"


def load_theme_choice() -> str | None:
    """The theme last picked in the palette (None: none, or the file is unreadable)."""
    try:
        data = json.loads(_theme_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    theme = data.get("theme") if isinstance(data, dict) else None
    return theme if isinstance(theme, str) and 0 < len(theme) <= 64 else None


def save_theme_choice(theme: str) -> None:
    path = _theme_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"theme": theme}) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class HangupGuard:
    """Exit cleanly when the terminal goes away (an SSH drop), for any minertop App.

    The App sets ``self._hangup = False`` in its ``__init__`` and calls
    :meth:`_install_hangup_guards` when mounted.
    """

    _hangup: bool

    def _exit_requested(self) -> bool:
        return self._exit or self._hangup  # type: ignore[attr-defined]

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
        # ``kill`` / a service manager stopping us: leave the terminal as it was found (the
        # alternate screen, mouse reporting and raw mode undone) and exit 0, as ``q`` does.
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_terminate)
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

    def _on_terminate(self) -> None:
        if self._exit_requested():
            return
        self.exit(0)  # type: ignore[attr-defined]

    def _on_hangup(self) -> None:
        if self._hangup:
            return
        self._hangup = True
        # Restoring the terminal may block or fail on a dead tty: never let that keep us alive.
        t = threading.Timer(3.0, os._exit, args=(129,))
        t.daemon = True
        t.start()
        self.exit(129)  # type: ignore[attr-defined]



_W = TypeVar("_W", bound=Widget)


class MinertopApp(HangupGuard, App[int]):
    CSS_PATH = "minertop.tcss"
    TITLE = "minertop"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = bindings_for(COMMANDS)

    def __init__(
        self,
        spec: SourceSpec,
        *,
        sources: tuple[ChainSource, PriceSource] | None = None,
        engine: EngineLike | None = None,
        clock: Callable[[], float] = time.time,
        tick_s: float = 1.0,
        notify_alerts: bool = False,
        remember_theme: bool = False,
    ) -> None:
        # NO_COLOR: no colour at all (the terminal's own foreground and background), not
        # Textual's default greyscale, where red or green text on a dark panel comes out
        # grey on grey.  Meaning never rests on colour alone here: signs, words and symbols.
        super().__init__(ansi_color=True if "NO_COLOR" in os.environ else None)
        self.spec = spec
        #: a theme picked in the palette is kept for the next run (the CLI turns this on)
        self.remember_theme = remember_theme
        self.clock = clock
        self.tick_s = tick_s
        self.engine: EngineLike = engine if engine is not None else Engine(
            spec, sources=sources, clock=clock)
        self.view: EngineView | None = None
        self._held: EngineView | None = None  #: the newest view while paused
        self._unshown: EngineView | None = None  #: arrived before the panes were there
        self.paused = False
        self._hangup = False
        self._unsubscribe: Callable[[], None] | None = None
        self.freeze_gc_after_start = False  #: run_app: see tune_gc()
        self._gc_frozen = False
        self._ascii_filter = AsciiFilter()
        self.zoomed: Widget | None = None
        rules = spec.site.alerts if spec.site is not None else AlertRules()
        self.alert_rules = rules
        #: alert events seen this session (from the views), oldest first
        self.alert_history: deque[AlertEvent] = deque(maxlen=500)
        self.notify_alerts = notify_alerts  #: --notify: send [[notify]] from this dashboard
        self._span_name = "day"
        self._span_events: list[AlertEvent] | None = None  #: attached: a chosen span
        self.notifier: Any = None
        #: per failing part, the errors already shown as a toast since it last recovered
        #: (so an error that comes back after a recovery is shown again, and the set is
        #: bounded by what one outage produces)
        self._notified_errors: dict[str, set[str]] = {}
        #: per part in ``_notified_errors`` that is healthy now: since when (view time)
        self._healthy_since: dict[str, float] = {}

    # ------------------------------------------------------------------ engine access
    @property
    def local_engine(self) -> Engine | None:
        return self.engine if isinstance(self.engine, Engine) else None

    @property
    def pollers(self) -> dict[str, Poller]:
        eng = self.local_engine
        return eng.pollers if eng is not None else {}

    @property
    def backoff_overrides(self) -> dict[str, float]:
        eng = self.local_engine
        return eng.backoff_overrides if eng is not None else {}

    @backoff_overrides.setter
    def backoff_overrides(self, value: dict[str, float]) -> None:
        if (eng := self.local_engine) is not None:
            eng.backoff_overrides = dict(value)

    @property
    def poll_overrides(self) -> dict[str, float]:
        eng = self.local_engine
        return eng.poll_overrides if eng is not None else {}

    @poll_overrides.setter
    def poll_overrides(self, value: dict[str, float]) -> None:
        if (eng := self.local_engine) is not None:
            eng.poll_overrides = dict(value)

    @property
    def alerts(self) -> AlertEngine | None:
        eng = self.local_engine
        return eng.alerts if eng is not None else None

    @property
    def fleet(self) -> RigFleet | None:
        eng = self.local_engine
        return eng.fleet if eng is not None else None

    @property
    def sim(self) -> Any:
        eng = self.local_engine
        return eng.demo.chain_sim if eng is not None and eng.demo is not None else None

    @property
    def dashboard(self) -> Dashboard | None:
        return self.view.dashboard if self.view else None

    @property
    def price(self) -> PriceSnapshot | None:
        return self.view.price if self.view else None

    @property
    def chain(self) -> ChainSnapshot | None:
        return self.view.chain if self.view else None

    @property
    def site_view(self) -> SiteView | None:
        return self.view.site if self.view else None

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
        """minertop's commands, then Textual's own (theme, keys, maximize, screenshot) that
        minertop doesn't already have."""
        cmds = [SystemCommand(c.label.capitalize(), c.help, self._runner(c.action))
                for c in COMMANDS]
        ours = {c.title.lower() for c in cmds}
        cmds += [c for c in super().get_system_commands(screen) if c.title.lower() not in ours]
        return cmds

    # ------------------------------------------------------------------ theme
    def _apply_theme(self) -> None:
        """``$TEXTUAL_THEME`` for this run, else the config's ``[ui] theme``, else the one
        last picked in the palette (remembered), else Textual's default."""
        if os.environ.get("TEXTUAL_THEME"):
            return  # Textual applied it already
        configured = self.spec.site.theme if self.spec.site is not None else None
        wanted = configured or (load_theme_choice() if self.remember_theme else None)
        if wanted is None:
            return
        if wanted not in self.available_themes:
            where = "[ui] theme" if configured else "the remembered theme"
            self.notify(f"{where}: no theme {wanted!r}; known: "
                        f"{', '.join(sorted(self.available_themes))}",
                        severity="warning", timeout=15, markup=False)
            return
        self.theme = wanted

    def _remember_theme(self, theme: Theme) -> None:
        if not self.remember_theme:
            return
        try:
            save_theme_choice(theme.name)
        except OSError as e:
            log.warning("could not remember the theme: %s", e)

    def _runner(self, action: str) -> Callable[[], object]:
        return lambda: self.run_action(action)

    @property
    def main(self) -> Screen:
        """The dashboard screen, even while a help or detail screen is on top of it."""
        return self.screen_stack[0]

    def _main_one(self, cls: type[_W]) -> _W:
        """The dashboard screen's widget of this type (remembered: the once-a-second tick
        asks for the header and panes, and a DOM query each time is most of its cost)."""
        cache: dict[type, Widget] = self.__dict__.setdefault("_widget_cache", {})
        w = cache.get(cls)
        if w is None or not w.is_attached or w.screen is not self.main:
            w = cache[cls] = self.main.query_one(cls)
        return w  # type: ignore[return-value]

    @property
    def has_site(self) -> bool:
        eng = self.local_engine
        if eng is not None:
            return eng.has_site
        return bool(getattr(self.engine, "has_site", False)) or self.spec.site is not None

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
        self._apply_theme()
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.set_interval(self.tick_s, self._tick)
        self._unsubscribe = self.engine.subscribe(self._on_engine_view)
        configs = self.spec.site.notify if self.spec.site is not None else ()
        if self.notify_alerts and configs:
            from tui.notify import NotifyHub

            self.notifier = NotifyHub(configs, site_name=self.spec.site.name)  # type: ignore[union-attr]
            await self.notifier.start()
        self.run_worker(self._start_engine(), name="start", exit_on_error=False)

    async def _start_engine(self) -> None:
        try:
            await self.engine.start()
        except Exception as e:  # never silent: say it on screen, in the log, and go on
            log.exception("the engine failed to start")
            self.notify(f"minertop could not start: {type(e).__name__}: {e}",
                        severity="error", timeout=30, markup=False)

    def _on_engine_view(self, view: EngineView) -> None:
        """Called by the engine (on this loop): hand the view to the message queue."""
        if not self._exit_requested():
            self.post_message(ViewUpdated(view))

    @property
    def _startup_error(self) -> str | None:
        return self.view.errors.get("startup") if self.view else None

    # ------------------------------------------------------------------ views
    def _views_ready(self) -> bool:
        """False while the app is starting up or shutting down (no panes to draw on)."""
        if self._exit_requested() or not self.screen_stack:
            return False
        try:
            self._main_one(HeaderBar)
        except NoMatches:
            return False
        return True

    @on(ViewUpdated)
    def _on_view(self, msg: ViewUpdated) -> None:
        try:
            self._take_view(msg.view)
        except Exception as e:  # a drawing bug must not take the dashboard down: say it
            log.exception("showing a view failed")
            self.notify(f"display error: {type(e).__name__}: {e} (see --log)",
                        severity="error", timeout=15, markup=False)

    def _take_view(self, view: EngineView) -> None:
        # Alerts are announced as they come, even while paused (a pause is not a mute).
        if view.alert_events:
            self._publish_alerts(list(view.alert_events), view)
        if self.paused:
            self._held = view
            self._update_statuses()
            return
        self._show(view)

    def _show(self, view: EngineView) -> None:
        if not self._views_ready():
            # Not drawn: kept for the next view (it compares with what was last *shown*).
            self._unshown = view
            return
        prev = self.view
        self.view = view
        if self._ensure_layout(view):  # the new pane is composed first, then shown
            self.view = prev
            self.call_after_refresh(self._show, view)
            return
        for part in list(self._notified_errors):
            if part in view.errors:
                self._healthy_since.pop(part, None)
            elif view.time - self._healthy_since.setdefault(part, view.time) >= RETELL_AFTER_S:
                del self._notified_errors[part]  # recovered: the next failure is told
                del self._healthy_since[part]
        for part, err in view.errors.items():
            seen = self._notified_errors.setdefault(part, set())
            if err not in seen:
                if len(seen) >= 64:  # an error text that changes every time: start again
                    seen.clear()
                seen.add(err)
                self.notify(safe(err), title=f"{part} failed", severity="error", timeout=15,
                            markup=False)
        with self.batch_update():
            d = view.dashboard
            header = self._main_one(HeaderBar)
            header.set_data(source=self._source_label(view),
                            tip=view.chain.tip_height if view.chain else None,
                            price=view.price.usd if view.price else None,
                            hashprice=d.hashprice.usd_per_ph_day if d else None)
            if d is not None and (prev is None or prev.dashboard is not d):
                self.main.query_one(HashratePane).show(d.hashrate, d)
                self._main_one(DriftPane).show(d.drift)
                self._main_one(RetargetPane).show(d.retarget, d)
                blocks = self.main.query(BlocksPane)
                if blocks and view.chain is not None:
                    blocks.first().show(view.chain)
            self._show_site(view, prev)
            self._update_alert_count(view)
            self._update_statuses()
            if isinstance(self.screen, CurtailScreen) and view.site is not None \
                    and (prev is None or prev.site is not view.site):
                self.screen.update_table(curtail_table(self._curtail_plan(), self.clock()))
        if view.cycle and self.freeze_gc_after_start and not self._gc_frozen:
            self._gc_frozen = True
            gc.collect()
            gc.freeze()  # see tune_gc()

    def _ensure_layout(self, view: EngineView) -> bool:
        """An attached dashboard learns from the daemon whether there is a site: swap the
        blocks pane for the rigs pane (or back).  True when it did."""
        has_rigs = self.rigs_pane is not None
        if view.has_site == has_rigs or (not view.has_site and view.seq == 0):
            return False
        footer = self.main.query_one(Footer)
        if view.has_site:
            self.main.query(BlocksPane).remove()
            self.main.mount(RigsPane(), before=footer)
        else:
            self.main.query(RigsPane).remove()
            self.main.mount(BlocksPane(), before=footer)
        return True

    def _source_label(self, view: EngineView) -> str:
        return view.source_label

    def _show_site(self, view: EngineView, prev: EngineView | None) -> None:
        pane = self.rigs_pane
        site = view.site
        if pane is not None:
            pane.set_error(view.errors.get("site"))
        if site is None or (prev is not None and prev.site is site and not view.cycle):
            return
        top = self.screen
        if isinstance(top, RigDetailScreen):
            row = next((r for r in site.rows if r.rig_id == top.rig_id), None)
            if row is not None:
                top.refresh_detail(row, self.engine.history_for(row.rig_id), self.clock())
        if pane is not None:
            pane.show(site.rows, site.title(self.size.width), complete=view.cycle)

    # ------------------------------------------------------------------ alerts
    def _publish_alerts(self, events: list[AlertEvent], view: EngineView) -> None:
        self.alert_history.extend(events)
        if self.notifier is not None:
            self.notifier.submit(events)
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
        if self._views_ready():
            self._update_alert_count(view)
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

    def _update_alert_count(self, view: EngineView | None = None) -> None:
        view = view or self.view
        active = view.alerts_active if view else ()
        crit = sum(1 for a in active if a.severity == "critical")
        self._main_one(HeaderBar).set_alerts(crit, len(active) - crit)

    def _alerts_table(self) -> Table:
        log_file = self.alert_rules.log_file
        latest = self._held or self.view
        active = {a.key: a for a in latest.alerts_active} if latest else {}
        if self._span_events is not None:
            title = f"History of the last {self._span_name} (the daemon's, newest first)"
            return alerts_table(active, self._span_events, self.clock(),
                                str(log_file) if log_file else None, title)
        return alerts_table(active, self.alert_history, self.clock(),
                            str(log_file) if log_file else None)

    def _curtail_plan(self) -> CurtailPlan:
        """The curtailment advice from the latest view: the site's price in force now and
        the next period's (from the engine's power price, else the config's flat price)."""
        view = self._held or self.view
        rows = view.site.rows if view is not None and view.site is not None else ()
        pw = view.site.power if view is not None and view.site is not None else None
        if pw is not None:
            return curtail_plan(rows, usd_kwh_now=pw.usd_kwh, usd_kwh_next=pw.next_usd_kwh,
                                next_change_unix=pw.next_change_unix,
                                next_label=pw.next_label)
        flat = self.spec.site.electricity_usd_kwh if self.spec.site is not None else None
        return curtail_plan(rows, usd_kwh_now=flat, usd_kwh_next=None, next_change_unix=None)

    def action_curtail(self) -> None:
        if isinstance(self.screen, CurtailScreen):
            self.pop_screen()
        elif not self.has_site:
            self.notify("curtailment needs a site: list your rigs in the config "
                        "(minertop init-config)", timeout=6)
        else:
            self.push_screen(CurtailScreen(curtail_table(self._curtail_plan(), self.clock())))

    def action_alerts(self) -> None:
        if isinstance(self.screen, AlertsScreen):
            self.pop_screen()
        else:
            self.push_screen(AlertsScreen(self._alerts_table()))

    def _source_lines(self) -> list[tuple[str, str]]:
        """Each source for the help screen: its full address and its last error, whole."""
        view = self._held or self.view
        lines: list[tuple[str, str]] = []
        for name, st in (view.sources.items() if view else ()):
            state = "ok" if st.error is None else f"✗ {st.error}"
            lines.append((name, f"{st.label} · every {st.interval:.0f}s · {state}"))
        return lines

    def _status(self, name: str, now: float, view: EngineView | None) -> SourceStatus:
        st = view.sources.get(name) if view else None
        if st is None:
            return SourceStatus(None, view.errors.get("startup") if view else None, now)
        return SourceStatus(st.fetched_at, st.error, now, polling=st.polling, paused=self.paused,
                            where=st.label)

    def _update_statuses(self) -> None:
        if not self._views_ready():
            return
        now = self.clock()
        view = self._held or self.view
        chain = self._status("chain", now, view)
        statuses = {"chain": chain, "price": self._status("price", now, view)}
        if view is not None and "rigs" in view.sources:
            statuses["rigs"] = self._status("rigs", now, view)
        header = self._main_one(HeaderBar)
        header.set_statuses(statuses, now, self.paused)
        link = getattr(self.engine, "link_status", None)
        if link is not None:
            header.set_link(*link())
        header.set_problems(self._problems(view))
        net_err = view.errors.get("network") if view else None
        pane_status = chain if net_err is None else SourceStatus(
            chain.fetched_at, net_err, now, paused=self.paused, where=chain.where)
        for pane in self.panes:
            pane.set_status(pane_status)

    #: Errors of a view that name a part of minertop rather than a pane (header: "notify ✗").
    HEADER_PROBLEMS = ("notify", "history", "alert log", "engine")

    def _problems(self, view: EngineView | None) -> tuple[str, ...]:
        errors = dict(view.errors) if view else {}
        if self.notifier is not None and (p := self.notifier.problem()) is not None:
            errors["notify"] = p
        return tuple(k for k in self.HEADER_PROBLEMS if k in errors)

    def _tick(self) -> None:
        if self.paused or not self._views_ready():
            return
        if self._unshown is not None:  # a view that came during start-up: draw it now
            view, self._unshown = self._unshown, None
            if self.view is None or view.seq >= self.view.seq:
                self._show(view)
        now = self.clock()
        with self.batch_update():
            d = self.dashboard
            if d is not None:
                self._main_one(DriftPane).tick(now - d.now)
                self._main_one(RetargetPane).tick(now)
            self._update_statuses()

    # ------------------------------------------------------------------ actions
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self._source_lines()))

    def action_refresh(self) -> None:
        self.engine.refresh()
        self.notify("refreshing…", timeout=2)

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.engine.set_paused(self.paused)
        if not self.paused and self._held is not None:
            held, self._held = self._held, None
            self._show(held)
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
        boxes: list[Widget] = [t.parent if isinstance(t.parent, Widget) and isinstance(t, RigTable)
                               else t for t in targets]
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

    async def action_back(self) -> None:
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
            rig_id, row, self.engine.history_for(rig_id), self.clock()))

    def set_history_span(self, name: str) -> None:
        """The detail screen's h/d/w/m keys: how far back a rig's history goes (attached:
        the daemon's store; standalone: this session only)."""
        setter = getattr(self.engine, "set_history_span", None)
        if setter is None:
            self.notify("history covers this session only: run 'minertop daemon' to keep "
                        "it, then attach", timeout=5)
            return
        setter(name)
        self._span_name = name
        self.notify(f"history: last {name}", timeout=3)
        top = self.screen
        if isinstance(top, RigDetailScreen):
            top.refresh_detail(top.row, self.engine.history_for(top.rig_id), self.clock())
        elif isinstance(top, AlertsScreen):
            self.run_worker(self._load_alert_span(), name="alert-span", group="alert-span",
                            exclusive=True, exit_on_error=False)

    async def _load_alert_span(self) -> None:
        """The daemon's alert events over the chosen span, into the alerts screen."""
        fetch = getattr(self.engine, "alert_events", None)
        if fetch is None:
            return
        try:
            self._span_events = await fetch()
        except Exception as e:  # the daemon went away meanwhile: say so, keep the screen
            self.notify(f"alerts history: {e}", severity="warning", timeout=8, markup=False)
            return
        if isinstance(self.screen, AlertsScreen):
            self.screen.update_table(self._alerts_table())

    def _scale_intervals(self, factor: float) -> None:
        shown = self.engine.scale_intervals(factor)
        self.notify(f"poll every {shown}", timeout=3)

    def action_faster(self) -> None:
        self._scale_intervals(0.5)

    def action_slower(self) -> None:
        self._scale_intervals(2.0)

    async def action_quit(self) -> None:
        self.exit(0)

    # ------------------------------------------------------------------ shutdown
    async def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.notifier is not None:
            try:
                await self.notifier.stop(timeout=2)
            except Exception:
                log.exception("stopping the notifiers failed")
        try:
            await asyncio.wait_for(self.engine.stop(), 8)
        except Exception:
            log.exception("stopping the engine failed")


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


def run_app(spec: SourceSpec, *, attach: str | None = None, token: str | None = None,
            notify: bool = False) -> int:
    tune_gc()
    engine = None
    if attach is not None:
        from tui.remote import RemoteEngine

        engine = RemoteEngine(attach, token)
    app = MinertopApp(spec, engine=engine, notify_alerts=notify and attach is None,
                      remember_theme=True)
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
