"""``minertop --prometheus URL``: every site at once, in the terminal.

One worker polls the source (:class:`~tui.sources.prometheus.PrometheusSource` in
production, a fake in tests): it fetches the fleet, then the rigs of the site open on
screen, posts what it got to the app and arms the next poll when it is done, so requests
never overlap.  A failed fetch backs off (:class:`~tui.sources.poll.Backoff`, Retry-After
honoured) and the last good data stays on screen, its border saying ``✗ STALE <age> ·
<reason>``.  The panes (:mod:`widgets.sites`) are passive.

Keys (the help screen lists them): ``q`` quit, ``?`` help, ``r`` refresh now, ``p``/space
pause, ``+``/``-`` poll faster/slower, ``tab`` between panes, ``s`` ``<`` ``>`` ``i`` sort,
``/`` filter, ``enter`` a site's rigs, ``esc`` back (or clear the filter).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, Protocol

from rich.table import Table
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.filter import LineFilter
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Static

from tui.app import (
    MIN_HEIGHT,
    MIN_WIDTH,
    HangupGuard,
    HelpScreen,
    TooSmallScreen,
    tune_gc,
)
from tui.commands import Command, bindings_for
from tui.fleet import FleetRig, FleetSnapshot
from tui.sources.base import RateLimited, SourceError
from tui.sources.poll import Backoff
from widgets.ascii import AsciiFilter
from widgets.base import SourceStatus, fmt_age
from widgets.rigs import RigsPane
from widgets.sites import FleetHeader, NetworkPane, SiteRigsScreen, SitesPane

log = logging.getLogger("minertop")

DEFAULT_INTERVAL_S = 15.0
#: ``+``/``-`` keep the interval within these (or down to a shorter one given at start).
MIN_INTERVAL_S, MAX_INTERVAL_S = 5.0, 3600.0

FLEET_COMMANDS: tuple[Command, ...] = (
    Command("quit", "q", "quit", "Quit minertop"),
    Command("help", "question_mark,f1", "help", "Show the keys and what they do", display="? F1"),
    Command("refresh", "r", "refresh", "Fetch from Prometheus now"),
    Command("pause", "p,space", "pause", "Pause or resume fetching and updates",
            display="p space"),
    Command("focus_next", "tab", "next pane", "Move to the next pane", footer=False),
    Command("focus_previous", "shift+tab", "prev pane", "Move to the previous pane",
            footer=False, display="shift+tab"),
    Command("filter", "slash", "filter",
            "Filter the sites (name, target, 'down'), or a site's rigs", display="/"),
    Command("sort_next", "s,greater_than_sign", "sort", "Sort by the next column",
            display="s >"),
    Command("sort_prev", "less_than_sign", "sort ←", "Sort by the previous column",
            footer=False, display="<"),
    Command("sort_invert", "i", "invert", "Reverse the sort order", footer=False),
    Command("details", "enter", "rigs", "Open the selected site's rigs (esc: back)",
            footer=False),
    Command("back", "escape", "back", "Back: close a site's rigs, clear the filter",
            display="esc"),
    Command("faster", "plus,equals_sign", "faster", "Fetch more often (halve the interval)",
            footer=False, display="+"),
    Command("slower", "minus", "slower", "Fetch less often (double the interval)",
            footer=False, display="-"),
)


class FleetSource(Protocol):
    """What the fleet view needs of a source (PrometheusSource, or a test's fake)."""

    label: str

    async def fetch(self) -> FleetSnapshot: ...

    async def fetch_site_rigs(self, site: str) -> tuple[FleetRig, ...]: ...

    async def aclose(self) -> None: ...


class FleetHelpScreen(HelpScreen):
    """The keys of the fleet view (the dashboard's help screen, with this table)."""

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for c in FLEET_COMMANDS:
            table.add_row(c.shown_keys, c.help)
        with VerticalScroll() as v:
            v.border_title = "Keys · fleet"
            v.border_subtitle = "esc to close"
            yield Static(table)


# --------------------------------------------------------------------------- messages


class FleetFetched(Message):
    def __init__(self, snapshot: FleetSnapshot, fetched_at: float) -> None:
        super().__init__()
        self.snapshot, self.fetched_at = snapshot, fetched_at


class FleetFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class RigsFetched(Message):
    def __init__(self, site: str, rigs: tuple[FleetRig, ...], fetched_at: float) -> None:
        super().__init__()
        self.site, self.rigs, self.fetched_at = site, rigs, fetched_at


class RigsFailed(Message):
    def __init__(self, site: str, error: str) -> None:
        super().__init__()
        self.site, self.error = site, error


# --------------------------------------------------------------------------- the app


class FleetApp(HangupGuard, App[int]):
    TITLE = "minertop fleet"
    ENABLE_COMMAND_PALETTE = True
    CSS = "Screen { layout: vertical; }"
    BINDINGS: ClassVar[list[BindingType]] = bindings_for(FLEET_COMMANDS)

    def __init__(
        self,
        source: FleetSource,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = DEFAULT_INTERVAL_S,
        backoff: Backoff | None = None,
        tick_s: float = 1.0,
        ascii: bool = False,
    ) -> None:
        """``interval``: seconds between fetches (``+``/``-`` change it).  ``backoff``: the
        retry schedule after a failure (default ``Backoff(interval)``: 2 s doubling to
        120 s); its interval is set to ``interval``.  ``clock``: unix time for the ages on
        screen (the schedule itself runs on Textual's timers)."""
        # NO_COLOR as MinertopApp: no colour at all, not greyscale (meaning is in words).
        super().__init__(ansi_color=True if "NO_COLOR" in os.environ else None)
        self.source = source
        self.clock = clock
        self.interval = float(interval)
        self.backoff = backoff if backoff is not None else Backoff(self.interval)
        self.backoff.interval = self.interval
        self._min_interval = min(MIN_INTERVAL_S, self.interval)
        self.tick_s = tick_s
        self.ascii = ascii
        self.snapshot: FleetSnapshot | None = None  #: the snapshot on screen
        self.fetched_at: float | None = None  #: clock() of the last good fetch
        self.error: str | None = None  #: the last fetch's error (None: it succeeded)
        self.paused = False
        self.polls = 0  #: fleet fetches finished (ok or not)
        self.freeze_gc_after_start = False  #: run_fleet_app: see tui.app.tune_gc()
        self._gc_frozen = False
        self._held: tuple[FleetSnapshot, float] | None = None  #: newest fetch while paused
        self._busy = False  #: a request to the source is in flight
        self._poll_due = False  #: a poll was asked for while busy
        self._rigs_due = False  #: the open site's rigs were asked for while busy
        self._timer: Timer | None = None
        self._due_at: float | None = None  #: monotonic time of the next poll
        self._retry_at: float | None = None  #: monotonic: a Retry-After not over yet
        self._last_done: float | None = None  #: monotonic end of the last poll
        #: the errors shown as a toast since the source last answered (shown again when
        #: they come back after a recovery)
        self._notified: set[str] = set()
        self._told_no_sites = False
        self._hangup = False
        self._ascii_filter = AsciiFilter()

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield FleetHeader()
        yield NetworkPane()
        yield SitesPane()
        yield Footer()

    def get_line_filters(self) -> Sequence[LineFilter]:
        filters = list(super().get_line_filters())
        if self.ascii:
            filters.append(self._ascii_filter)
        return filters

    def get_system_commands(self, screen: Screen) -> list[SystemCommand]:  # type: ignore[override]
        return [SystemCommand(c.label.capitalize(), c.help, self._runner(c.action))
                for c in FLEET_COMMANDS]

    def _runner(self, action: str) -> Callable[[], Awaitable[object]]:
        return lambda: self.run_action(action)

    @property
    def main(self) -> Screen:
        """The fleet screen, even while a site's rigs or the help are on top of it."""
        return self.screen_stack[0]

    @property
    def sites_pane(self) -> SitesPane:
        return self.main.query_one(SitesPane)

    @property
    def network_pane(self) -> NetworkPane:
        return self.main.query_one(NetworkPane)

    @property
    def site_screen(self) -> SiteRigsScreen | None:
        """The open site's rigs screen (on top or under the help)."""
        return next((s for s in reversed(self.screen_stack)
                     if isinstance(s, SiteRigsScreen)), None)

    def _headers(self) -> list[FleetHeader]:
        return [h for s in self.screen_stack for h in s.query(FleetHeader)]

    def _views_ready(self) -> bool:
        return (not self._exit_requested() and bool(self.screen_stack)
                and bool(self.main.query(SitesPane)))

    def on_resize(self, event: events.Resize) -> None:
        w, h = event.size
        if w < MIN_WIDTH or h < MIN_HEIGHT:
            if isinstance(self.screen, TooSmallScreen):
                self.screen.show_size(w, h)
            elif not any(isinstance(s, TooSmallScreen) for s in self.screen_stack):
                self.push_screen(TooSmallScreen())
        else:
            while isinstance(self.screen, TooSmallScreen):
                self.pop_screen()

    async def on_mount(self) -> None:
        self._install_hangup_guards()
        self.set_interval(self.tick_s, self._tick)
        self.sites_pane.table.focus()
        self._header_data(self.main.query_one(FleetHeader))
        self._update_statuses()
        self._start_poll()

    async def on_unmount(self) -> None:
        self._cancel_timer()
        try:
            await asyncio.wait_for(self.source.aclose(), 5)
        except Exception:
            log.exception("closing the source failed")

    # ------------------------------------------------------------------ polling
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _arm(self, delay: float) -> None:
        """The next poll in ``delay`` seconds (not while paused: resuming arms it)."""
        self._cancel_timer()
        self._due_at = time.monotonic() + delay
        if not self.paused and not self._exit_requested():
            # (Textual's timers divide by their delay: never 0)
            self._timer = self.set_timer(max(delay, 0.001), self._start_poll, name="fleet-poll")

    def _start_poll(self) -> None:
        """Poll now; if a request is in flight, right after it (never two at once)."""
        self._cancel_timer()
        if self._exit_requested():
            return
        if self._busy:
            self._poll_due = True
            return
        self._busy, self._poll_due = True, False
        # the coroutine function, not a coroutine: a worker the app never starts (it is
        # quitting) then leaves no "never awaited" coroutine behind
        # (Textual's annotation wants a Coroutine[None, None, ...]; ours is Any-sent)
        self.run_worker(self._poll, name="fleet-poll", group="fleet",  # type: ignore[arg-type]
                        exit_on_error=False)

    def _start_rigs(self, site: str) -> None:
        if self._busy:
            self._rigs_due = True
            return
        self._busy, self._rigs_due = True, False
        self.run_worker(functools.partial(self._rigs_job, site),  # type: ignore[arg-type]
                        name="fleet-rigs", group="fleet", exit_on_error=False)

    def _next_job(self) -> None:
        """A request finished: run what was asked for meanwhile."""
        if self._exit_requested():
            return
        if self._poll_due and not self.paused:
            self._start_poll()
        elif self._rigs_due:
            self._rigs_due = False
            screen = self.site_screen
            if screen is not None:
                self._start_rigs(screen.site)
        elif not self.paused and self._timer is None and not self._busy:
            # resumed while a site's rigs were being fetched: the schedule goes on
            due = self._due_at if self._due_at is not None else time.monotonic()
            self._arm(max(0.0, due - time.monotonic()))

    async def _poll(self) -> None:
        delay: float | None = None
        try:
            ok, delay = await self._fetch_fleet()
            screen = self.site_screen
            if ok and screen is not None:
                self._rigs_due = False
                await self._fetch_rigs(screen.site)
        finally:
            self._busy = False
            self._last_done = time.monotonic()
            if delay is not None:  # None: cancelled (the app is closing)
                self._arm(delay)
            self._next_job()

    async def _rigs_job(self, site: str) -> None:
        try:
            await self._fetch_rigs(site)
        finally:
            self._busy = False
            self._next_job()

    async def _fetch_fleet(self) -> tuple[bool, float]:
        """One fetch of the fleet, posted to the app; (ok, seconds to the next poll)."""
        try:
            snapshot = await self.source.fetch()
        except SourceError as e:
            delay = self.backoff.failure(e)
            limited = isinstance(e, RateLimited) and e.retry_after is not None
            self._retry_at = time.monotonic() + delay if limited else None
            self._post(FleetFailed(str(e)))
            return False, delay
        except Exception as e:  # a bug must not stop polling: log it, show it, go on
            log.exception("fetching the fleet failed unexpectedly")
            err = SourceError(f"{self.source.label}: internal error: {type(e).__name__}: {e}")
            self._retry_at = None
            self._post(FleetFailed(str(err)))
            return False, self.backoff.failure(err)
        finally:
            self.polls += 1
        self._retry_at = None
        self._post(FleetFetched(snapshot, self.clock()))
        return True, self.backoff.success()

    async def _fetch_rigs(self, site: str) -> None:
        try:
            rigs = await self.source.fetch_site_rigs(site)
        except SourceError as e:
            self._post(RigsFailed(site, str(e)))
        except Exception as e:
            log.exception("fetching the rigs of %s failed unexpectedly", site)
            self._post(RigsFailed(site, f"internal error: {type(e).__name__}: {e}"))
        else:
            self._post(RigsFetched(site, tuple(rigs), self.clock()))

    def _post(self, message: Message) -> None:
        if not self._exit_requested():
            self.post_message(message)

    # ------------------------------------------------------------------ showing
    @on(FleetFetched)
    def _on_fetched(self, msg: FleetFetched) -> None:
        self.fetched_at, self.error = msg.fetched_at, None
        self._notified.clear()
        if self.paused:
            self._held = (msg.snapshot, msg.fetched_at)
            self._update_statuses()
            return
        self._show(msg.snapshot, msg.fetched_at)

    @on(FleetFailed)
    def _on_failed(self, msg: FleetFailed) -> None:
        self.error = msg.error
        if msg.error not in self._notified:
            if len(self._notified) >= 64:  # an error text that changes every time
                self._notified.clear()
            self._notified.add(msg.error)
            self.notify(msg.error, title="prometheus failed", severity="error", timeout=8,
                        markup=False)
        self._update_statuses()

    def _show(self, snapshot: FleetSnapshot, fetched_at: float) -> None:
        self.snapshot = snapshot
        if not self._views_ready():
            return
        try:
            self._draw(snapshot, fetched_at)
        except Exception as e:  # a drawing bug must not take the view down: say it
            log.exception("showing the fleet failed")
            self.notify(f"display error: {type(e).__name__}: {e}", severity="error",
                        timeout=15, markup=False)
        if self.freeze_gc_after_start and not self._gc_frozen:
            self._gc_frozen = True
            gc.collect()
            gc.freeze()  # see tui.app.tune_gc()

    def _price(self, snapshot: FleetSnapshot) -> float | None:
        net = snapshot.network
        if net is not None and net.btc_price_usd is not None:
            return net.btc_price_usd
        return next((s.btc_price_usd for s in snapshot.sites if s.btc_price_usd), None)

    def _draw(self, snapshot: FleetSnapshot, fetched_at: float) -> None:
        now = self.clock()
        price = self._price(snapshot)
        if not snapshot.sites and not self._told_no_sites:
            self._told_no_sites = True
            self.notify("Prometheus has no minertop series: is it scraping the sites' "
                        "daemons (GET /metrics, honor_labels: true)?", severity="warning",
                        timeout=15)
        with self.batch_update():
            for header in self._headers():
                self._header_data(header)
            self.network_pane.show(snapshot.network, now)
            self.sites_pane.show(snapshot.sites, price=price, fetched_at=fetched_at, now=now)
            self._update_statuses()

    def _header_data(self, header: FleetHeader) -> None:
        snap = self.snapshot
        net = snap.network if snap is not None else None
        header.set_data(source=self.source.label, tip=None,
                        price=self._price(snap) if snap is not None else None,
                        hashprice=net.hashprice_usd_per_phs_day if net is not None else None)

    def _short_error(self, error: str | None) -> str | None:
        """The error without the source's prefix (the header names the source already)."""
        prefix = getattr(self.source, "prefix", None)
        if error and isinstance(prefix, str) and error.startswith(prefix + ": "):
            return error[len(prefix) + 2:]
        return error

    def _update_statuses(self) -> None:
        if not self._views_ready():
            return
        now = self.clock()
        status = SourceStatus(self.fetched_at, self.error, now, polling=self._busy,
                              paused=self.paused)
        short = SourceStatus(self.fetched_at, self._short_error(self.error), now,
                             polling=self._busy, paused=self.paused)
        for header in self._headers():
            header.set_statuses({"prometheus": short}, now, self.paused)
        self.network_pane.set_status(status)
        self.sites_pane.set_status(status)

    def _tick(self) -> None:
        if not self._views_ready():
            return
        now = self.clock()
        with self.batch_update():
            if not self.paused:
                self.network_pane.tick(now)
                self.sites_pane.tick(now)
                screen = self.site_screen
                if screen is not None:
                    screen.tick(now)
            self._update_statuses()

    # ------------------------------------------------------------------ a site's rigs
    @on(SitesPane.Open)
    async def _open_from_table(self, msg: SitesPane.Open) -> None:
        await self.open_site(msg.site)

    async def open_site(self, site: str) -> None:
        """Push the site's rigs screen and fetch its rigs (then at every poll while open).
        An explicit open fetches even while paused; nothing else does."""
        if not self._views_ready() or self.screen is not self.main:
            return
        screen = SiteRigsScreen(site)
        await self.push_screen(screen)
        self._header_data(screen.header)
        self._update_statuses()
        self._start_rigs(site)

    def _site_note(self, site: str) -> str:
        s = self.snapshot.site(site) if self.snapshot is not None else None
        if s is None or s.daemon_up:
            return ""
        age = ("never scraped" if s.scrape_age_s is None
               else f"last scrape {fmt_age(s.scrape_age_s)}")
        return f"✗ DOWN · {age}"

    @on(RigsFetched)
    def _on_rigs(self, msg: RigsFetched) -> None:
        screen = self.site_screen
        if screen is None or screen.site != msg.site or self._exit_requested():
            return
        screen.show_rigs(msg.rigs, msg.fetched_at, note=self._site_note(msg.site))

    @on(RigsFailed)
    def _on_rigs_failed(self, msg: RigsFailed) -> None:
        screen = self.site_screen
        if screen is None or screen.site != msg.site or self._exit_requested():
            return
        screen.show_error(self._short_error(msg.error) or msg.error, self.clock())

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``esc back`` is in the footer only where it does something."""
        if action == "back" and self.screen is self.main and self._views_ready():
            return self.sites_pane.filtering
        return True

    def _active_pane(self) -> SitesPane | RigsPane | None:
        screen = self.screen
        if isinstance(screen, SiteRigsScreen):
            return screen.pane
        if screen is self.main:
            return self.sites_pane
        return None

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(FleetHelpScreen())

    def action_refresh(self) -> None:
        if self.paused:
            self.notify("paused: p resumes fetching", timeout=3)
            return
        if self._retry_at is not None and time.monotonic() < self._retry_at:
            left = self._retry_at - time.monotonic()
            self.notify(f"rate limited: next try in {left:.0f}s", timeout=3)
            return
        self._start_poll()
        self.notify("refreshing…", timeout=2)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self._cancel_timer()
        else:
            if self._held is not None:
                (snapshot, fetched_at), self._held = self._held, None
                self._show(snapshot, fetched_at)
            if self._poll_due or self._due_at is None:
                self._start_poll()
            elif not self._busy:
                self._arm(max(0.0, self._due_at - time.monotonic()))
        self._update_statuses()

    def _scale(self, factor: float) -> None:
        self.interval = min(MAX_INTERVAL_S, max(self._min_interval, self.interval * factor))
        self.backoff.interval = self.interval
        if (self._timer is not None and self.backoff.failures == 0
                and self._last_done is not None):
            self._arm(max(0.0, self._last_done + self.interval - time.monotonic()))
        self.notify(f"fetch every {self.interval:g}s", timeout=3)

    def action_faster(self) -> None:
        self._scale(0.5)

    def action_slower(self) -> None:
        self._scale(2.0)

    def action_filter(self) -> None:
        if (pane := self._active_pane()) is not None:
            pane.start_filter()

    def action_sort_next(self) -> None:
        if (pane := self._active_pane()) is not None:
            pane.cycle_sort(+1)

    def action_sort_prev(self) -> None:
        if (pane := self._active_pane()) is not None:
            pane.cycle_sort(-1)

    def action_sort_invert(self) -> None:
        if (pane := self._active_pane()) is not None:
            pane.reverse_sort()

    async def action_details(self) -> None:
        if self.screen is self.main and (site := self.sites_pane.cursor_site) is not None:
            await self.open_site(site)

    async def action_back(self) -> None:
        screen = self.screen
        if isinstance(screen, SiteRigsScreen):
            pane = screen.pane
            if pane.filter_text or pane.has_class("-filtering"):
                pane.clear_filter()
            else:
                self.pop_screen()
        elif screen is self.main and self.sites_pane.filtering:
            self.sites_pane.clear_filter()

    async def action_quit(self) -> None:
        self.exit(0)


def run_fleet_app(url: str, token: str | None, *, ascii: bool = False,
                  mouse: bool = True) -> int:
    """``minertop --prometheus URL``: the fleet view until ``q`` (129 on a hang-up)."""
    from tui.sources.prometheus import PrometheusSource

    tune_gc()
    app = FleetApp(PrometheusSource(url, token=token), ascii=ascii)
    app.freeze_gc_after_start = True
    code = app.run(mouse=mouse)
    return code if isinstance(code, int) else 0


__all__ = ["FLEET_COMMANDS", "FleetApp", "FleetHelpScreen", "FleetSource", "run_fleet_app"]
