"""Immutable snapshots that sources hand to the app (no I/O, no Textual).

Data flows one way: sources -> snapshots -> pure computation -> panes.  A source
returns one of these frozen dataclasses per poll; nothing downstream mutates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from tui.chain import RETARGET_INTERVAL

#: The hashrate windows (in blocks) shown on screen: 1 day, 3 days, 7 days.
HASHRATE_WINDOWS: dict[str, int] = {"1d": 144, "3d": 432, "7d": 1008}
#: Blocks whose fees are averaged for hashprice.
FEE_WINDOW = 144
#: Size of the window mempool.space reaches back into the previous epoch early in an epoch.
QUARTER_EPOCH_BLOCKS = 503


@dataclass(frozen=True, slots=True)
class Block:
    """One block header's facts as a source reports them."""

    height: int
    time: int  #: header timestamp, unix seconds (miners may set it +-2 h: not monotonic)
    bits: int  #: compact target
    difficulty: float
    fees_sat: int | None = None  #: total fees paid in the block (excluding subsidy); None = unknown


@dataclass(frozen=True, slots=True)
class HashratePoint:
    """One day of the network hashrate history."""

    time: int  #: unix seconds (start of the day, or the source's timestamp for that day)
    hashrate: float  #: H/s


@dataclass(frozen=True, slots=True)
class DifficultyAdjustment:
    """One past retarget that changed the difficulty (mempool's ``difficulty-adjustments``).

    ``change_pct`` = (new difficulty / previous difficulty - 1) x 100; mempool reports the
    ratio new/old rounded to 6 decimals, Bitcoin Core's headers give both difficulties.
    """

    height: int  #: the first block at the new difficulty (a multiple of 2016 on mainnet)
    time: int  #: that block's header timestamp, unix seconds
    difficulty: float  #: the new difficulty
    change_pct: float  #: percent change against the previous difficulty


@dataclass(frozen=True, slots=True)
class BlockWindow:
    """Facts of a run of consecutive blocks: ``blocks`` blocks ending at ``end_height``.

    Used for the network revenue 30 days ago (see :func:`tui.squeeze.network_revenue`).
    """

    end_height: int
    end_time: int  #: header timestamp of the last block, unix seconds
    blocks: int  #: number of blocks averaged (144)
    #: (time(end) - time(end - blocks)) / blocks; None when that span is not positive
    mean_interval_s: float | None
    mean_fees_sat: float | None  #: mean total fees per block over the window; None = unknown
    subsidy_sat: float  #: mean block subsidy over the window (exact across a halving)


@dataclass(frozen=True)
class ChainSnapshot:
    """What one poll of a chain source learnt.

    ``blocks`` is sparse, ascending by height, one entry per height.  A source must include
    every height in :func:`required_heights` (``tip_height``) that exists (height >= 0).
    """

    source: str  #: human label, e.g. "mempool.space" or "bitcoind 127.0.0.1:8332"
    fetched_at: float  #: unix seconds when the poll finished
    tip_height: int
    blocks: tuple[Block, ...]
    history: tuple[HashratePoint, ...] = ()  #: daily network hashrate, oldest first, <= 90 days
    #: past difficulty adjustments, NEWEST FIRST (by height), as far back as the source gives
    #: them (mempool: all it has indexed; bitcoind: the last ``ADJUSTMENT_EPOCHS`` retargets);
    #: () when the source has none (yet)
    adjustments: tuple[DifficultyAdjustment, ...] = ()
    #: the 144 blocks ending at the last block whose timestamp is <= fetched_at - 30 days
    #: (see :func:`tui.squeeze.search_window_end`); None when the source can't give them
    #: (a pruned node, an instance without the endpoints, not fetched yet)
    window_30d_ago: BlockWindow | None = None
    #: mean total fees per block per UTC day, ``(day start unix, sats)``, oldest first,
    #: <= 90 days; () when the source has no fee history (bitcoind)
    fee_history: tuple[tuple[int, float], ...] = ()

    @cached_property
    def by_height(self) -> dict[int, Block]:
        return {b.height: b for b in self.blocks}

    def block(self, height: int) -> Block | None:
        return self.by_height.get(height)

    @property
    def tip(self) -> Block:
        return self.by_height[self.tip_height]


@dataclass(frozen=True, slots=True)
class PriceSnapshot:
    usd: float  #: BTC price in US dollars
    time: int  #: unix seconds the price is for (the feed's own timestamp)
    source: str  #: e.g. "mempool.space" or "fixed"
    fetched_at: float = field(default=0.0)
    #: daily BTC/USD, ``(UTC day start unix, mean USD of the day)``, oldest first, <= 91 days;
    #: () for a fixed price or before the history was fetched
    history: tuple[tuple[int, float], ...] = ()

    def usd_on(self, t: float) -> float | None:
        """The daily price of the UTC day containing ``t`` from :attr:`history`, or None."""
        day = int(t // 86_400) * 86_400
        for d, usd in reversed(self.history):
            if d == day:
                return usd
            if d < day:
                break
        return None


def required_heights(tip_height: int) -> list[int]:
    """Heights a chain source must fetch so the panes can be computed for ``tip_height``.

    - the last 145 blocks (``tip-144 .. tip``): 1-day hashrate, drift windows, fee average;
    - the current epoch's first block and the block before it (previous retarget);
    - ``tip-503`` (mempool.space's early-epoch window);
    - for each hashrate window n, the 11 blocks ``tip-n .. tip-n+10``: by the median-time-past
      rule the earliest timestamp among ``tip-n .. tip`` lies among them, and the latest
      lies among the last 145 blocks in every realistic chain, so ``max - min`` over these
      equals Bitcoin Core's ``getnetworkhashps`` span.
    """
    hs: set[int] = set(range(tip_height - 144, tip_height + 1))
    epoch_start = tip_height - tip_height % RETARGET_INTERVAL
    hs.update((epoch_start, epoch_start - 1, tip_height - QUARTER_EPOCH_BLOCKS))
    for n in HASHRATE_WINDOWS.values():
        hs.update(range(tip_height - n, tip_height - n + 11))
    return sorted(h for h in hs if 0 <= h <= tip_height)


class ChainSource(Protocol):
    """A chain source: one ``fetch()`` per poll, raising ``SourceError`` on any failure."""

    label: str

    async def fetch(self) -> ChainSnapshot: ...

    async def aclose(self) -> None: ...


class PriceSource(Protocol):
    label: str

    async def fetch(self) -> PriceSnapshot: ...

    async def aclose(self) -> None: ...


#: A rig's status, best first: ``stuck`` answers but does not mine (see ``RigFleet.status``).
RIG_STATUSES = ("ok", "stale", "stuck", "offline", "error")

#: The protocols a rig can be read with (``RigReading.protocol``).
RIG_PROTOCOLS = ("cgminer", "whatsminer-v3", "bitaxe")

#: ``RigReading.failure`` values that mean the rig could not be reached at all (its status is
#: ``offline``); the others (``reply``: garbage or cut short, ``status``: an error status,
#: ``internal``: a bug of ours) mean it answered wrongly (``error``).
OFFLINE_FAILURES = frozenset({"refused", "timeout", "network", "never"})


@dataclass(frozen=True, slots=True)
class Hashboard:
    """One hashboard (chain) as the firmware reports it; ``None`` = not reported.

    A board is *down* when it hashes nothing, or when chips are missing (fewer found than
    the board should have): either way the machine earns less than it draws power for.
    """

    index: int  #: the slot as the firmware numbers it (shown as given)
    hashrate_ths: float | None = None  #: this board's live (or average) hashrate, TH/s
    chips: int | None = None  #: chips found / working
    chips_expected: int | None = None  #: chips the board should have (None: unknown)
    temp_board_c: float | None = None  #: PCB / inlet-outlet board temperature, max
    temp_chip_c: float | None = None  #: hottest chip
    nominal_ths: float | None = None  #: the board's ideal / factory hashrate, TH/s

    @property
    def missing_chips(self) -> int:
        if self.chips is None or self.chips_expected is None:
            return 0
        return max(0, self.chips_expected - self.chips)

    @property
    def down(self) -> bool:
        """No hashrate (reported as 0) or chips missing."""
        if self.hashrate_ths is not None and self.hashrate_ths <= 0:
            return True
        if self.chips == 0:
            return True
        return self.missing_chips > 0

    @property
    def problem(self) -> str | None:
        """Why the board is down, in words ("no hashrate", "chips 61/126"), None if up."""
        if self.chips == 0:
            return "no chips found"
        if self.hashrate_ths is not None and self.hashrate_ths <= 0:
            return "no hashrate"
        if self.missing_chips:
            return f"chips {self.chips}/{self.chips_expected}"
        return None


@dataclass(frozen=True, slots=True)
class RigReading:
    """One poll of one rig.  Every text field came from the rig: untrusted, show it literally."""

    rig_id: str  #: the configured (or discovered) name, unique on the site
    host: str
    port: int
    time: float  #: when the reading was taken (unix seconds, the poller's clock)
    ok: bool  #: False: the rig could not be read; ``error`` says why
    error: str | None = None  #: one line, e.g. "connection refused", "timed out after 3 s"
    model: str | None = None  #: as the rig reports it (stats/version "Type", Bitaxe ASICModel)
    hashrate_ths: float | None = None  #: live hashrate (5 s / 1 m figure), TH/s
    hashrate_avg_ths: float | None = None  #: average since boot, TH/s
    power_w: float | None = None  #: as reported by the rig; None when the firmware has none
    temps_c: tuple[float, ...] = ()  #: board/chip temperatures
    fans_rpm: tuple[int, ...] = ()
    pool: str | None = None  #: active pool URL
    uptime_s: int | None = None
    firmware: str | None = None  #: e.g. "antminer", "whatsminer", "braiins", "bitaxe"
    hostname: str | None = None
    #: what failed when ``ok`` is False: "refused", "timeout", "network" (unreachable:
    #: offline), "reply", "status", "internal" (answered wrongly: error); set where the
    #: failure is caught, never guessed from the text
    failure: str | None = None
    protocol: str | None = None  #: how it was read: one of :data:`RIG_PROTOCOLS`
    boards: tuple[Hashboard, ...] = ()  #: per-board figures where the firmware reports them
    accepted: int | None = None  #: accepted-shares counter (since boot)
    nominal_ths: float | None = None  #: the rig's own factory/ideal hashrate, TH/s
    firmware_version: str | None = None  #: as reported, e.g. "20250214.16.REL"
    mac: str | None = None

    @property
    def offline(self) -> bool:
        """A failed reading because the rig could not be reached (not: it answered wrongly)."""
        return not self.ok and self.failure in OFFLINE_FAILURES

    @property
    def boards_down(self) -> int:
        return sum(1 for b in self.boards if b.down)
