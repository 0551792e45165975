"""Polling a site's rigs, and keeping each rig's state between polls.

:class:`RigPoller` reads every :class:`RigTarget` concurrently (cgminer API, Whatsminer
API v3 or a Bitaxe's HTTP API), bounded by a semaphore, each rig within its own deadline; it never
raises: a rig that cannot be read gives ``RigReading(ok=False, error=...)``.

Deadline and retry: each attempt gets ``timeout`` seconds (default 3).  A failed attempt is
retried (``retries``, default 1) unless it timed out: a rig that let the deadline pass has
already cost it, and is tried again next cycle.  So a hanging rig costs one deadline, and
no rig ever takes more than ``timeout * (1 + retries)``.  The deadline starts when the rig
gets a concurrency slot, not when the cycle starts.  Rigs that timed out last cycle are
started first, so their deadlines overlap the bulk of the cycle.

:class:`RigFleet` keeps, per rig, the last reading, the last good one, the consecutive
failures and recent errors, and says its status (see :meth:`RigFleet.status`).

Error messages (``RigReading.error``) are one line; ``RigReading.failure`` says, where the
failure was caught, whether the rig could not be reached (offline) or answered wrongly.

Protocols: a target's ``kind`` forces one (``cgminer``: the cgminer-style API on TCP 4028;
``whatsminer-v3``: Whatsminer API v3 on TCP 4433; ``bitaxe``: AxeOS HTTP on 80), or
``auto`` (the default) identifies it: the cgminer API, else Whatsminer v3, else AxeOS.  What
was found is remembered per rig; when it stops answering while another protocol answers
(a firmware upgrade), the rig is identified again.

No Textual here.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from tui.model import RIG_STATUSES, RigReading
from tui.sources import bitaxe as _bitaxe
from tui.sources import cgminer as _cgminer
from tui.sources import whatsminer as _whatsminer
from tui.sources.base import one_line
from tui.sources.cgminer import RigError, RigProfile

log = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "STATUSES",
    "CycleStats",
    "RigFleet",
    "RigPoller",
    "RigState",
    "RigTarget",
]

#: Target kinds: ``auto`` (identify the protocol: the cgminer-style API on 4028, else
#: Whatsminer API v3 on 4433, else AxeOS over HTTP on 80), or one protocol forced.
KINDS = ("auto", "cgminer", "whatsminer-v3", "bitaxe")
#: The protocols, in the order ``auto`` tries them, with their usual ports.
PROTOCOLS = ("cgminer", "whatsminer-v3", "bitaxe")
DEFAULT_PORTS = {"cgminer": 4028, "whatsminer-v3": 4433, "bitaxe": 80}
STATUSES = RIG_STATUSES


@dataclass(frozen=True, slots=True)
class RigTarget:
    """One rig to poll.

    ``kind`` one of :data:`KINDS`.  ``port`` None = the protocol's usual port
    (:data:`DEFAULT_PORTS`); for ``auto`` with a port, every protocol is tried on that port.
    """

    rig_id: str
    host: str
    port: int | None = None
    kind: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown rig kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.port is None:
            if self.kind != "auto":
                object.__setattr__(self, "port", DEFAULT_PORTS[self.kind])
        elif not 0 < int(self.port) < 65536:
            raise ValueError(f"bad port {self.port!r} for rig {self.rig_id!r}")

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


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

    Keeps per-rig knowledge between cycles (the protocol found for an ``auto`` rig, firmware
    flavour, whether multi-command replies work) and one shared HTTP client for Bitaxes:
    create one poller per site and reuse it, and ``await aclose()`` at the end.

    ``auto_ports``: the port each protocol is looked for on, for ``auto`` targets without a
    port (default :data:`DEFAULT_PORTS`).
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
        auto_ports: Mapping[str, int] | None = None,
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
        self.auto_ports = dict(DEFAULT_PORTS)
        if auto_ports:
            unknown = set(auto_ports) - set(PROTOCOLS)
            if unknown:
                raise ValueError(f"unknown protocols in auto_ports: {sorted(unknown)}")
            self.auto_ports.update(auto_ports)
        self._targets: tuple[RigTarget, ...] = ()
        self.targets = tuple(targets)
        self._profiles: dict[str, RigProfile] = {}
        self._v3: dict[str, _whatsminer.V3Profile] = {}
        #: rig id -> (protocol, port) found for an ``auto`` target
        self._found: dict[str, tuple[str, int]] = {}
        self._slow: set[str] = set()
        self._http = http_client
        self._owns_http = http_client is None
        self._in_flight = 0
        self._peak = 0
        self._retried = 0
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        #: reads that outlived their call's budget, by rig id
        self._running: dict[str, asyncio.Task[RigReading]] = {}
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

    def protocol_of(self, rig_id: str) -> tuple[str, int] | None:
        """``(protocol, port)`` found for an ``auto`` rig (None: not identified yet)."""
        return self._found.get(rig_id)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = _bitaxe.make_client(concurrency=self.concurrency)
        return self._http

    async def aclose(self) -> None:
        await self.aclose_reads()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> RigPoller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ reading

    async def _read_with(self, target: RigTarget, protocol: str, port: int) -> RigReading:
        """One read of ``target`` with one protocol; raises RigError on failure."""
        rid = target.rig_id
        if protocol == "bitaxe":
            return await _bitaxe.read_bitaxe(
                target.host, port, timeout=self.timeout, rig_id=rid, clock=self.clock,
                client=self._client())
        if protocol == "whatsminer-v3":
            v3 = self._v3.get(rid)
            if v3 is None:
                v3 = self._v3[rid] = _whatsminer.V3Profile()
            return await _whatsminer.read_whatsminer_v3(
                target.host, port, timeout=self.timeout, rig_id=rid, clock=self.clock,
                profile=v3)
        profile = self._profiles.get(rid)
        if profile is None:
            profile = self._profiles[rid] = RigProfile()
        return await _cgminer.read_cgminer(
            target.host, port, timeout=self.timeout, rig_id=rid, clock=self.clock,
            profile=profile)

    def _candidates(self, target: RigTarget) -> list[tuple[str, int]]:
        if target.port is not None:
            return [(p, target.port) for p in PROTOCOLS]
        return [(p, self.auto_ports[p]) for p in PROTOCOLS]

    async def _identify(self, target: RigTarget) -> RigReading:
        """Find the protocol an ``auto`` rig speaks and read it; raises RigError when none
        answers.  The ports are first tried for a connection, all at once (a refused port
        costs nothing, a silent one costs one short wait, not one per protocol); then each
        protocol whose port took the connection is asked, in order, until one reads."""
        candidates = self._candidates(target)
        ports = sorted({port for _, port in candidates})
        wait = min(self.timeout / 2, CONNECT_PROBE_S)
        results = await asyncio.gather(*(_can_connect(target.host, p, wait) for p in ports))
        open_ports = {p for p, err in zip(ports, results, strict=True) if err is None}
        if not open_ports:
            errors = [e for e in results if e is not None]
            raise _no_api_error(errors, ports)
        if len(ports) == 1 and len(candidates) > 1:
            # one port for every protocol (``auto`` with a port): ask each protocol's short
            # identifying question, so a protocol's request never waits on another's server
            candidates = await self._sniff(target, ports[0], wait) or candidates[:1]
        first: RigError | None = None
        for protocol, port in candidates:
            if port not in open_ports:
                continue
            try:
                reading = await self._read_with(target, protocol, port)
            except RigError as e:
                first = first or e
                if e.kind == "timeout":
                    raise  # it took the connection and then let the deadline pass
                continue
            self._found[target.rig_id] = (protocol, port)
            return reading
        assert first is not None
        raise first

    async def _sniff(self, target: RigTarget, port: int, wait: float) -> list[tuple[str, int]]:
        """The first protocol, in :data:`PROTOCOLS` order, that answers its identifying
        question on ``port`` (all asked at once, each within ``wait``); [] if none does."""
        host = target.host

        async def bitaxe() -> object | None:
            try:
                # a client of its own, closed even when cancelled: a connection left idle in
                # the shared pool would block an API that serves one connection at a time
                # (cgminer's) for as long as the pool keeps it
                return await _bitaxe.read_bitaxe(host, port, timeout=wait)
            except RigError:
                return None

        tasks = [asyncio.ensure_future(c) for c in (
            _cgminer.identify(host, port, timeout=wait),
            _whatsminer.identify_v3(host, port, timeout=wait),
            bitaxe(),
        )]
        try:
            for protocol, task in zip(PROTOCOLS, tasks, strict=True):
                if await task is not None:
                    return [(protocol, port)]
            return []
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _attempt(self, target: RigTarget) -> RigReading:
        if target.kind != "auto":
            assert target.port is not None
            return await self._read_with(target, target.kind, target.port)
        found = self._found.get(target.rig_id)
        if found is None:
            # identifying and reading share one deadline: a silent rig costs one timeout
            return await _cgminer.within_deadline(self.timeout, self._identify(target))
        try:
            return await self._read_with(target, *found)
        except RigError as e:
            if e.kind == "timeout":
                raise
            # the protocol it spoke stopped answering (refused, or answers something else):
            # after a firmware upgrade another one may answer now
            del self._found[target.rig_id]
            try:
                return await _cgminer.within_deadline(self.timeout, self._identify(target))
            except (RigError, asyncio.TimeoutError):
                self._found.setdefault(target.rig_id, found)
                raise e from None

    def _failed(self, target: RigTarget, message: str, failure: str) -> RigReading:
        found = self._found.get(target.rig_id)
        port = target.port if target.port is not None else (found[1] if found else 0)
        return RigReading(
            rig_id=target.rig_id,
            host=target.host,
            port=port,
            time=self.clock(),
            ok=False,
            error=one_line(message, 200),
            failure=failure,
            protocol=found[0] if found else (None if target.kind == "auto" else target.kind),
        )

    async def _guarded(self, target: RigTarget) -> RigReading:
        """One attempt mapped to a reading; never raises.  The readers enforce the
        deadline themselves (``timeout`` for the whole exchange)."""
        try:
            return await self._attempt(target)
        except RigError as e:
            return self._failed(target, str(e), e.kind)
        except asyncio.TimeoutError:
            return self._failed(target, str(_cgminer.timeout_error(self.timeout)), "timeout")
        except OSError as e:
            err = _cgminer.describe_os_error(e)
            return self._failed(target, str(err), err.kind)
        except Exception as e:  # a bug must not take the whole cycle down; say so loudly
            log.exception("reading rig %s failed", one_line(target.rig_id, 64))
            return self._failed(target, f"internal error: {type(e).__name__}: {e}", "internal")

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

    async def _slot(self, target: RigTarget) -> RigReading:
        assert self._sem is not None
        async with self._sem:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            try:
                return await self.poll_one(target)
            finally:
                self._in_flight -= 1

    async def poll_all(
        self,
        on_reading: Callable[[RigReading], None] | None = None,
        *,
        budget: float | None = None,
    ) -> tuple[RigReading, ...]:
        """Read every target once; the readings come back in target order.

        ``on_reading`` is called with each reading as soon as it is in, so a caller can show
        the healthy rigs without waiting for the deadline of a hanging one.

        ``budget``: return after this many seconds at most, with the readings that are in,
        so that a caller polling every ``budget`` seconds reads every rig at that pace
        whatever the slowest does.  A read still running then goes on in the background; its
        reading comes with the next call, and that rig is not asked again meanwhile (one
        read per rig at a time).  None: wait for every rig.
        """
        targets = self._targets
        started = self.clock()
        t0 = time.monotonic()
        self._peak = self._in_flight
        self._retried = 0
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop = asyncio.Semaphore(self.concurrency), loop
            self._running = {}
        wanted = {t.rig_id for t in targets}
        # reads left running by the last call: finished ones hand over their readings now
        carried: dict[str, RigReading] = {}
        for rid, task in list(self._running.items()):
            if task.done():
                del self._running[rid]
                if rid in wanted and not task.cancelled() and task.exception() is None:
                    carried[rid] = task.result()
                    if on_reading is not None:
                        on_reading(carried[rid])
            elif rid not in wanted:
                task.cancel()  # a rig taken off the list
                del self._running[rid]
        if not targets:
            self.last_cycle = CycleStats(started, 0.0, 0, 0, 0, 0, 0, 0)
            return ()
        # rigs that timed out last time go first: their deadlines overlap the bulk
        order = sorted(range(len(targets)), key=lambda i: targets[i].rig_id not in self._slow)
        tasks: dict[str, asyncio.Task[RigReading]] = {}
        delivered: set[str] = set()
        active = True

        def deliver(rid: str, task: asyncio.Task[RigReading]) -> None:
            # each reading reaches ``on_reading`` once, from the call that returns it
            if active and on_reading is not None and rid not in delivered \
                    and not task.cancelled() and task.exception() is None:
                delivered.add(rid)
                on_reading(task.result())

        for i in order:
            t = targets[i]
            if t.rig_id in self._running or t.rig_id in carried:
                continue  # still being read (or its reading just came in)
            task = asyncio.ensure_future(self._slot(t))
            task.add_done_callback(functools.partial(_deliver_to, deliver, t.rig_id))
            tasks[t.rig_id] = task
        try:
            if tasks:
                await asyncio.wait(set(tasks.values()), timeout=budget)
            still = [task for task in self._running.values() if not task.done()]
            if still and budget is None:
                await asyncio.wait(still)
        except BaseException:
            for task in tasks.values():
                task.cancel()
            raise
        got: dict[str, RigReading] = dict(carried)
        for rid, task in tasks.items():
            if task.done():
                got[rid] = task.result()  # _slot never raises
                deliver(rid, task)
            else:
                self._running[rid] = task  # goes on; reported by a later call
        active = False
        for rid, task in list(self._running.items()):
            if task.done() and rid not in got and not task.cancelled() \
                    and task.exception() is None:
                # an earlier call's read that ended during this one
                got[rid] = task.result()
                del self._running[rid]
                if on_reading is not None:
                    on_reading(got[rid])
        readings = tuple(got[t.rig_id] for t in targets if t.rig_id in got)
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

    @property
    def running(self) -> int:
        """Reads still going on from earlier calls (see ``budget``)."""
        return sum(1 for t in self._running.values() if not t.done())

    async def aclose_reads(self) -> None:
        """Cancel the reads still running (at shutdown)."""
        tasks = list(self._running.values())
        self._running = {}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def forget(self, rig_id: str) -> None:
        """Drop what was learnt about a rig (e.g. after its firmware was changed)."""
        self._profiles.pop(rig_id, None)
        self._v3.pop(rig_id, None)
        self._found.pop(rig_id, None)
        self._slow.discard(rig_id)


#: How long :meth:`RigPoller._identify` waits for a port to take a connection.
CONNECT_PROBE_S = 1.0


async def _can_connect(host: str, port: int, timeout: float) -> RigError | None:
    """None if ``host:port`` takes a TCP connection within ``timeout`` (closed at once, no
    byte sent), else why not."""
    try:
        _, writer = await _cgminer.within_deadline(timeout, asyncio.open_connection(host, port))
    except asyncio.TimeoutError:
        return RigError(f"timed out after {timeout:g} s", kind="timeout")
    except OSError as e:
        return _cgminer.describe_os_error(e)
    writer.transport.abort()
    return None


def _no_api_error(errors: list[RigError], ports: list[int]) -> RigError:
    """One error for "no port took a connection": the common reason, and the ports."""
    texts = {str(e) for e in errors}
    kinds = {e.kind for e in errors}
    kind = "refused" if kinds == {"refused"} else ("timeout" if "timeout" in kinds else
                                                   errors[0].kind)
    reason = texts.pop() if len(texts) == 1 else "no miner API answers"
    if len(ports) == 1:
        return RigError(reason, kind=kind)
    where = ", ".join(str(p) for p in ports[:-1]) + f" or {ports[-1]}"
    return RigError(f"{reason} on {where}", kind=kind)


def _deliver_to(deliver: Callable[[str, asyncio.Task[RigReading]], None], rid: str,
                task: asyncio.Task[RigReading]) -> None:
    deliver(rid, task)


def _timed_out(reading: RigReading) -> bool:
    return not reading.ok and reading.failure == "timeout"


# --------------------------------------------------------------------------- fleet state


@dataclass(slots=True)
class RigState:
    """What is known about one rig across polls."""

    last: RigReading | None = None  #: the latest reading, good or not
    last_good: RigReading | None = None  #: the latest ok=True reading
    failures: int = 0  #: consecutive failed polls (0 after a good one)
    errors: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=20))
    #: the accepted-shares counter and when it last moved (None: not reported)
    accepted: int | None = None
    accepted_since: float = 0.0
    #: the figures of the good readings and since when they have been identical
    same: tuple[object, ...] | None = None
    same_since: float = 0.0


def _figures(r: RigReading) -> tuple[object, ...]:
    """What a frozen API repeats: every figure of a reading, not its time."""
    return (r.hashrate_ths, r.hashrate_avg_ths, r.power_w, r.temps_c, r.fans_rpm, r.accepted,
            r.uptime_s, tuple((b.hashrate_ths, b.temp_chip_c) for b in r.boards))


class RigFleet:
    """Per-rig bookkeeping and status.

    Status rules, for ``status(rig_id, now)`` (``stale_after`` defaults to 3 poll
    intervals, i.e. two missed polls are tolerated):

    - ``ok``: the last poll succeeded and is younger than ``stale_after``;
    - ``stuck``: the last poll succeeded, but the rig does not mine: its live (5 s) hashrate
      is 0 (while its average still shows hashrate, or since boot), or its accepted-shares
      counter has not moved for ``stuck_after`` seconds, or every figure it reports has been
      identical for that long (a frozen API).  It earns nothing and still draws power;
    - ``stale``: the last good reading is younger than ``stale_after`` but the polls since
      failed (reason: the last error), or the last poll succeeded but too long ago (the
      poller stopped: reason "no reading for N s").  A stale rig's last good reading is
      still the one to price (:meth:`current`);
    - ``error``: no recent good reading and the rig *answered*, wrongly: garbage, a cut-short
      reply, an error status (reason: e.g. "bad reply: truncated reply");
    - ``offline``: no recent good reading and the rig could not be reached: refused,
      timed out, unreachable, or never polled (reason: e.g. "connection refused").

    Offline against error comes from ``RigReading.failure``, set where the failure was
    caught, never from the wording of the error.
    """

    def __init__(self, interval: float = 10.0, *, stale_after: float | None = None,
                 stuck_after: float | None = 600.0) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        if stuck_after is not None and not stuck_after > 0:
            raise ValueError(f"stuck_after must be positive, got {stuck_after!r}")
        self.interval = float(interval)
        self.stale_after = float(stale_after) if stale_after is not None else 3.0 * interval
        #: None: only a live hashrate of 0 makes a rig stuck (no counter/frozen rules)
        self.stuck_after = stuck_after
        self._states: dict[str, RigState] = {}

    def record(self, reading: RigReading) -> RigState:
        state = self._states.get(reading.rig_id)
        if state is None:
            state = self._states[reading.rig_id] = RigState()
        state.last = reading
        if reading.ok:
            state.last_good = reading
            state.failures = 0
            acc = reading.accepted
            if acc is None or acc != state.accepted:
                state.accepted, state.accepted_since = acc, reading.time
            figures = _figures(reading)
            if figures != state.same:
                state.same, state.same_since = figures, reading.time
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

    def stuck_reason(self, state: RigState) -> str | None:
        """Why the rig's last good reading shows it answering but not mining (None: it
        mines, or nothing says otherwise)."""
        r = state.last_good
        if r is None:
            return None
        live, avg = r.hashrate_ths, r.hashrate_avg_ths
        if live is not None and live <= 0:
            if avg is not None and avg > 0:
                return f"5 s hashrate 0, average still {_fmt_ths(avg)} TH/s"
            return "not hashing (0 TH/s)"
        after = self.stuck_after
        if after is None:
            return None
        if state.accepted is not None and r.time - state.accepted_since >= after:
            return f"no accepted share for {_fmt_age(r.time - state.accepted_since)}"
        if state.same is not None and r.time - state.same_since >= after:
            return f"readings unchanged for {_fmt_age(r.time - state.same_since)}"
        return None

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
            stuck = self.stuck_reason(s)
            if stuck is not None:
                return "stuck", stuck
            return "ok", None
        error = last.error or "unknown error"
        good = s.last_good
        if good is not None and now - good.time <= self.stale_after:
            return "stale", f"{error} (last good {_fmt_age(now - good.time)} ago)"
        return ("offline" if last.offline else "error"), error

    def current(self, rig_id: str, now: float) -> RigReading | None:
        """The reading to show figures and price from: the last good one while the rig is
        ok, stuck or stale, None when it is offline or in error."""
        st, _ = self.status(rig_id, now)
        return self.last_good(rig_id) if st in ("ok", "stuck", "stale") else None

    def counts(self, now: float) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for rig_id in self._states:
            out[self.status(rig_id, now)[0]] += 1
        return out


def _fmt_ths(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _fmt_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"



