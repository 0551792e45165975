"""The site's rigs as one polled source (no Textual, no simulator)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from tui.config import PollConfig, SiteConfig
from tui.model import RigReading
from tui.sources.rigs import RigPoller, RigTarget

T = TypeVar("T")

#: A poll cycle still running after this many seconds hands over what it has read so far.
PARTIAL_AFTER_S = 1.0
#: Seconds between two scans of the config's address ranges.
RESCAN_S = 600.0


@dataclass(frozen=True)
class RigsSnapshot:
    readings: tuple[RigReading, ...]
    fetched_at: float
    complete: bool = True  #: False: an early batch of a cycle still running


def targets_for(site: SiteConfig) -> list[RigTarget]:
    return [RigTarget(r.name, r.host, r.port, r.kind) for r in site.rigs]


class RigSource:
    """All the site's rigs as one source: one ``fetch`` = one poll cycle (never raises)."""

    label = "rigs"

    def __init__(self, site: SiteConfig, *, clock: Callable[[], float] = time.time,
                 extra_targets: list[RigTarget] | None = None, threaded: bool = False) -> None:
        """``threaded``: poll on an event loop of its own in a background thread, so that
        reading thousands of replies never holds up the caller's loop (the UI's)."""
        self.site = site
        self.clock = clock
        poll: PollConfig = site.poll
        self._configured = targets_for(site) + list(extra_targets or ())
        self._scanned_at: float | None = None
        #: called with early batches of readings while a cycle runs (None: one batch)
        self.on_partial: Callable[[RigsSnapshot], None] | None = None
        self._thread = _LoopThread() if threaded else None
        self.discovered: list[RigTarget] = []
        self._scan_task: asyncio.Future[None] | None = None
        self.scan_error: str | None = None
        #: a cycle returns after this long at most (the poll interval: see ``poll_all``);
        #: the engine keeps it equal to the rigs' current interval
        self.budget_s: float | None = poll.interval_s
        self.poller = RigPoller(self._configured,
                                timeout=poll.timeout_s, concurrency=poll.concurrency,
                                retries=poll.retries, clock=clock)

    async def fetch(self) -> RigsSnapshot:
        # Scans run beside the polls (a /16 takes minutes); what they find joins the targets
        # when they finish.
        if self.site.scans and self._scan_task is None and (
                self._scanned_at is None or self.clock() - self._scanned_at >= RESCAN_S):
            self._scanned_at = self.clock()
            self._scan_task = asyncio.ensure_future(self._scan())
            self._scan_task.add_done_callback(self._scan_done)
        if self.on_partial is None and self._thread is None:
            return RigsSnapshot(await self.poller.poll_all(budget=self.budget_s), self.clock())
        # If the cycle is still running after PARTIAL_AFTER_S (a hanging rig costs a whole
        # deadline), hand over what is in once, so the screen isn't held back; the final
        # snapshot has the rest.  Once per cycle: every hand-over recomputes the whole site.
        pending: list[RigReading] = []
        if self._thread is not None:
            cycle = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
                self.poller.poll_all(on_reading=pending.append, budget=self.budget_s),
                self._thread.loop))
        else:
            cycle = asyncio.ensure_future(
                self.poller.poll_all(on_reading=pending.append, budget=self.budget_s))
        try:
            done, _ = await asyncio.wait({cycle}, timeout=PARTIAL_AFTER_S)
            if not done and pending:
                batch = tuple(pending)  # the poll thread may append meanwhile: keep those
                del pending[:len(batch)]
                if self.on_partial is not None:
                    self.on_partial(RigsSnapshot(batch, self.clock(), complete=False))
            await asyncio.wait({cycle})
        finally:
            if not cycle.done():
                cycle.cancel()
        cycle.result()
        return RigsSnapshot(tuple(pending), self.clock())

    def _scan_done(self, task: asyncio.Future[None]) -> None:
        self._scan_task = None
        if not task.cancelled() and task.exception() is not None:
            self.scan_error = f"scan failed: {task.exception()}"

    async def _scan(self) -> None:
        """Add the rigs that answer in the config's scan ranges (configured rigs win).

        Rigs found once stay on the list: one that stops answering shows as offline rather
        than vanishing from the table.
        """
        from tui.sources.discovery import scan

        poll = self.site.poll
        current = self._configured + self.discovered
        known = {(t.host, t.port) for t in current}
        # an ``auto`` rig without a port is that host, whatever protocol it speaks
        whole = {t.host for t in current if t.port is None}
        ids = {t.rig_id for t in current}
        found: list[RigTarget] = list(self.discovered)
        for rng in self.site.scans:
            for f in await scan(rng.cidr, rng.port, kind=rng.kind,
                                concurrency=max(poll.concurrency, 64),
                                timeout=min(1.0, poll.timeout_s)):
                if f.host in whole or (f.host, f.port) in known:
                    continue
                rig_id = f.host if rng.port is None or f.port == rng.port \
                    else f"{f.host}:{f.port}"
                if rig_id in ids:
                    continue
                ids.add(rig_id)
                known.add((f.host, f.port))
                if rng.kind == "auto" and rng.port is None:
                    # found by its protocol; polled as ``auto`` so that a firmware upgrade
                    # that changes the protocol is followed
                    whole.add(f.host)
                    found.append(RigTarget(rig_id, f.host, None, "auto"))
                else:
                    found.append(RigTarget(rig_id, f.host, f.port, f.kind))
        self.discovered = found
        self.poller.targets = [*self._configured, *found]

    async def aclose(self) -> None:
        if self._scan_task is not None:
            self._scan_task.cancel()
        if self._thread is not None:
            try:
                await self._thread.run(self.poller.aclose())
            finally:
                await self._thread.stop()
                self._thread = None
        else:
            await self.poller.aclose()

    async def wait_for_scan(self) -> None:
        """For ``--once`` and tests: let a running scan finish."""
        if self._scan_task is not None:
            await asyncio.wait({self._scan_task})


class _LoopThread:
    """An asyncio loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="minertop-rigs",
                                       daemon=True)
        self.thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self) -> None:
        """Cancel what still runs there (a poll waiting on a hung rig), then end the loop:
        a task left to the garbage collector would try to close its socket on a dead loop."""

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.run(cancel_all()), 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()
