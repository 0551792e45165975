"""Polling a site's rigs, and keeping each rig's state between polls.

:class:`RigPoller` reads every :class:`RigTarget` concurrently (cgminer API on 4028 or a
Bitaxe's HTTP API), bounded by a semaphore, each rig within its own deadline; it never
raises: a rig that cannot be read gives ``RigReading(ok=False, error=...)``.

Deadline and retry: each attempt gets ``timeout`` seconds (default 3).  A failed attempt is
retried (``retries``, default 1) unless it timed out: a rig that let the deadline pass has
already cost it, and is tried again next cycle.  So a hanging rig costs one deadline, and
no rig ever takes more than ``timeout * (1 + retries)``.  The deadline starts when the rig
gets a concurrency slot, not when the cycle starts.  Rigs that timed out last cycle are
started first, so their deadlines overlap the bulk of the cycle.

:class:`RigFleet` keeps, per rig, the last reading, the last good one, the consecutive
failures and recent errors, and says its status (see :meth:`RigFleet.status`).

Error messages (``RigReading.error``) are one line; those meaning "unreachable" start with
one of :data:`OFFLINE_PREFIXES`, everything else means the rig answered wrongly.

No Textual here.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx

from tui.model import RigReading
from tui.sources import bitaxe as _bitaxe
from tui.sources import cgminer as _cgminer
from tui.sources.base import one_line
from tui.sources.cgminer import RigError, RigProfile

__all__ = [
    "KINDS",
    "OFFLINE_PREFIXES",
    "STATUSES",
    "CycleStats",
    "RigFleet",
    "RigPoller",
    "RigState",
    "RigTarget",
    "error_class",
]

#: Target kinds: the cgminer-style API (TCP) or a Bitaxe's HTTP API.
KINDS = ("cgminer", "bitaxe")
DEFAULT_PORTS = {"cgminer": _cgminer.DEFAULT_PORT, "bitaxe": _bitaxe.DEFAULT_PORT}
STATUSES = ("ok", "stale", "offline", "error")

#: ``RigReading.error`` prefixes that mean the rig could not be reached at all.
OFFLINE_PREFIXES = (
    "connection refused",
    "timed out",
    "connection timed out",
    "host unreachable",
    "network unreachable",
    "connection reset",
    "connection closed",
    "cannot connect",
    "cannot resolve",
    "no reading yet",
)


def error_class(error: str | None) -> str:
    """ "offline" (the rig could not be reached) or "error" (it answered wrongly)."""
    if error is None:
        return "error"
    return "offline" if error.startswith(OFFLINE_PREFIXES) else "error"


@dataclass(frozen=True, slots=True)
class RigTarget:
    """One rig to poll.  ``port`` None = the kind's default (4028, Bitaxe 80)."""

    rig_id: str
    host: str
    port: int | None = None
    kind: str = "cgminer"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown rig kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.port is None:
            object.__setattr__(self, "port", DEFAULT_PORTS[self.kind])
        elif not 0 < int(self.port) < 65536:
            raise ValueError(f"bad port {self.port!r} for rig {self.rig_id!r}")

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class CycleStats:
    """How one :meth:`RigPoller.poll_all` went."""

    started: float  #: the poller's clock at the start
    duration: float  #: wall seconds (monotonic)
    rigs: int
    ok: int
    failed: int
    timed_out: int
    retried: int
    peak_in_flight: int  #: the most rigs being read at once (<= concurrency)


class RigPoller:
    """Poll many rigs concurrently; :meth:`poll_all` never raises.

    Keeps per-rig knowledge between cycles (firmware flavour, whether multi-command
    replies work) and one shared HTTP client for Bitaxes: create one poller per site and
    reuse it, and ``await aclose()`` at the end.
    """

    def __init__(
        self,
        targets: Iterable[RigTarget],
        *,
        timeout: float = 3.0,
        concurrency: int = 256,
        retries: int = 1,
        clock: Callable[[], float] = time.time,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries!r}")
        self.timeout = float(timeout)
        self.concurrency = int(concurrency)
        self.retries = int(retries)
        self.clock = clock
        self._targets: tuple[RigTarget, ...] = ()
        self.targets = tuple(targets)
        self._profiles: dict[str, RigProfile] = {}
        self._slow: set[str] = set()
        self._http = http_client
        self._owns_http = http_client is None
        self._in_flight = 0
        self._peak = 0
        self._retried = 0
        self.last_cycle: CycleStats | None = None

    @property
    def targets(self) -> tuple[RigTarget, ...]:
        return self._targets

    @targets.setter
    def targets(self, targets: Iterable[RigTarget]) -> None:
        targets = tuple(targets)
        ids = [t.rig_id for t in targets]
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"duplicate rig ids: {', '.join(dupes[:5])}")
        self._targets = targets

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = _bitaxe.make_client(concurrency=self.concurrency)
        return self._http

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> RigPoller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ reading

    async def _attempt(self, target: RigTarget) -> RigReading:
        assert target.port is not None
        if target.kind == "bitaxe":
            return await _bitaxe.read_bitaxe(
                target.host,
                target.port,
                timeout=self.timeout,
                rig_id=target.rig_id,
                clock=self.clock,
                client=self._client(),
            )
        profile = self._profiles.get(target.rig_id)
        if profile is None:
            profile = self._profiles[target.rig_id] = RigProfile()
        return await _cgminer.read_cgminer(
            target.host,
            target.port,
            timeout=self.timeout,
            rig_id=target.rig_id,
            clock=self.clock,
            profile=profile,
        )

    def _failed(self, target: RigTarget, message: str) -> RigReading:
        assert target.port is not None
        return RigReading(
            rig_id=target.rig_id,
            host=target.host,
            port=target.port,
            time=self.clock(),
            ok=False,
            error=one_line(message, 200),
        )

    async def _guarded(self, target: RigTarget) -> RigReading:
        """One attempt mapped to a reading; never raises.  The readers enforce the
        deadline themselves (``timeout`` for the whole exchange)."""
        try:
            return await self._attempt(target)
        except RigError as e:
            return self._failed(target, str(e))
        except asyncio.TimeoutError:
            return self._failed(target, str(_cgminer.timeout_error(self.timeout)))
        except OSError as e:
            return self._failed(target, str(_cgminer.describe_os_error(e)))
        except Exception as e:  # a bug must not take the whole cycle down
            return self._failed(target, f"internal error: {type(e).__name__}: {e}")

    async def poll_one(self, target: RigTarget) -> RigReading:
        """Read one rig (with its retries); never raises."""
        reading = await self._guarded(target)
        tries = 0
        while not reading.ok and tries < self.retries and not _timed_out(reading):
            tries += 1
            self._retried += 1
            await asyncio.sleep(0.05)
            reading = await self._guarded(target)
        if _timed_out(reading):
            self._slow.add(target.rig_id)
        else:
            self._slow.discard(target.rig_id)
        return reading

    async def _slot(self, sem: asyncio.Semaphore, target: RigTarget,
                    on_reading: Callable[[RigReading], None] | None) -> RigReading:
        async with sem:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            try:
                reading = await self.poll_one(target)
            finally:
                self._in_flight -= 1
        if on_reading is not None:
            on_reading(reading)
        return reading

    async def poll_all(
        self, on_reading: Callable[[RigReading], None] | None = None
    ) -> tuple[RigReading, ...]:
        """Read every target once; the readings come back in target order.

        ``on_reading`` is called with each reading as soon as it is in, so a caller can show
        the healthy rigs without waiting for the deadline of a hanging one.
        """
        targets = self._targets
        started = self.clock()
        t0 = time.monotonic()
        self._peak = 0
        self._retried = 0
        if not targets:
            self.last_cycle = CycleStats(started, 0.0, 0, 0, 0, 0, 0, 0)
            return ()
        sem = asyncio.Semaphore(self.concurrency)
        # rigs that timed out last time go first: their deadlines overlap the bulk
        order = sorted(range(len(targets)), key=lambda i: targets[i].rig_id not in self._slow)
        tasks = {i: asyncio.ensure_future(self._slot(sem, targets[i], on_reading))
                 for i in order}
        try:
            await asyncio.gather(*tasks.values())
        except BaseException:
            for task in tasks.values():
                task.cancel()
            raise
        readings = tuple(tasks[i].result() for i in range(len(targets)))
        ok = sum(r.ok for r in readings)
        self.last_cycle = CycleStats(
            started=started,
            duration=time.monotonic() - t0,
            rigs=len(readings),
            ok=ok,
            failed=len(readings) - ok,
            timed_out=sum(_timed_out(r) for r in readings),
            retried=self._retried,
            peak_in_flight=self._peak,
        )
        return readings

    def forget(self, rig_id: str) -> None:
        """Drop what was learnt about a rig (e.g. after its firmware was changed)."""
        self._profiles.pop(rig_id, None)
        self._slow.discard(rig_id)


def _timed_out(reading: RigReading) -> bool:
    return not reading.ok and (reading.error or "").startswith("timed out")


# --------------------------------------------------------------------------- fleet state


@dataclass(slots=True)
class RigState:
    """What is known about one rig across polls."""

    last: RigReading | None = None  #: the latest reading, good or not
    last_good: RigReading | None = None  #: the latest ok=True reading
    failures: int = 0  #: consecutive failed polls (0 after a good one)
    errors: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=20))


class RigFleet:
    """Per-rig bookkeeping and status.

    Status rules, for ``status(rig_id, now)`` (``stale_after`` defaults to 3 poll
    intervals, i.e. two missed polls are tolerated):

    - ``ok``: the last poll succeeded and is younger than ``stale_after``;
    - ``stale``: the last good reading is younger than ``stale_after`` but the polls since
      failed (reason: the last error), or the last poll succeeded but too long ago (the
      poller stopped: reason "no reading for N s").  A stale rig's last good reading is
      still the one to price (:meth:`current`);
    - ``error``: no recent good reading and the rig *answered*, wrongly: garbage, a cut-short
      reply, an error status (reason: e.g. "bad reply: truncated reply");
    - ``offline``: no recent good reading and the rig could not be reached: refused,
      timed out, unreachable, or never polled (reason: e.g. "connection refused").
    """

    def __init__(self, interval: float = 10.0, *, stale_after: float | None = None) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.interval = float(interval)
        self.stale_after = float(stale_after) if stale_after is not None else 3.0 * interval
        self._states: dict[str, RigState] = {}

    def record(self, reading: RigReading) -> RigState:
        state = self._states.get(reading.rig_id)
        if state is None:
            state = self._states[reading.rig_id] = RigState()
        state.last = reading
        if reading.ok:
            state.last_good = reading
            state.failures = 0
        else:
            state.failures += 1
            state.errors.append((reading.time, reading.error or "unknown error"))
        return state

    def update(self, readings: Iterable[RigReading]) -> None:
        for r in readings:
            self.record(r)

    def forget(self, rig_id: str) -> None:
        self._states.pop(rig_id, None)

    def __contains__(self, rig_id: object) -> bool:
        return rig_id in self._states

    def __len__(self) -> int:
        return len(self._states)

    def ids(self) -> list[str]:
        return list(self._states)

    def state(self, rig_id: str) -> RigState | None:
        return self._states.get(rig_id)

    def last_good(self, rig_id: str) -> RigReading | None:
        s = self._states.get(rig_id)
        return s.last_good if s else None

    def failures(self, rig_id: str) -> int:
        s = self._states.get(rig_id)
        return s.failures if s else 0

    def age(self, rig_id: str, now: float) -> float | None:
        """Seconds since the last good reading (None: never read)."""
        good = self.last_good(rig_id)
        return None if good is None else max(0.0, now - good.time)

    def status(self, rig_id: str, now: float) -> tuple[str, str | None]:
        """``(status, reason)``: status in :data:`STATUSES`, reason None only for "ok"."""
        s = self._states.get(rig_id)
        if s is None or s.last is None:
            return "offline", "no reading yet"
        last = s.last
        if last.ok:
            age = now - last.time
            if age > self.stale_after:
                return "stale", f"no reading for {_fmt_age(age)}"
            return "ok", None
        error = last.error or "unknown error"
        good = s.last_good
        if good is not None and now - good.time <= self.stale_after:
            return "stale", f"{error} (last good {_fmt_age(now - good.time)} ago)"
        return error_class(error), error

    def current(self, rig_id: str, now: float) -> RigReading | None:
        """The reading to show figures and price from: the last good one while the rig is
        ok or stale, None when it is offline or in error."""
        st, _ = self.status(rig_id, now)
        return self.last_good(rig_id) if st in ("ok", "stale") else None

    def counts(self, now: float) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for rig_id in self._states:
            out[self.status(rig_id, now)[0]] += 1
        return out


def _fmt_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"



