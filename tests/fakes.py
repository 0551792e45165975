"""Hand-made snapshots and scripted sources for tests that need no simulator."""

from __future__ import annotations

from tui import chain
from tui.model import Block, ChainSnapshot, HashratePoint, PriceSnapshot, required_heights
from tui.sources.base import SourceError

DIFF1 = 0x1D00FFFF
WORK1 = 4_295_032_833  # 2**256 // (target(0x1d00ffff) + 1) = 0x100010001


def snap_from(times: dict[int, int], tip: int, bits: dict[int, int] | None = None,
              fees: int | None = 10_000_000, history: tuple[HashratePoint, ...] = (),
              source: str = "test", fetched_at: float = 0.0) -> ChainSnapshot:
    """A snapshot with the given block times; ``bits`` maps an epoch index to its bits."""
    blocks = []
    for h in sorted(times):
        b = (bits or {}).get(h // 2016, DIFF1)
        blocks.append(Block(h, times[h], b, chain.difficulty_from_bits(b), fees))
    return ChainSnapshot(source, fetched_at, tip, tuple(blocks), history)


def regular(tip: int, spacing: int, start: int = 0, t0: int = 1_700_000_000) -> dict[int, int]:
    return {h: t0 + (h - start) * spacing for h in range(start, tip + 1)}


def squeeze_snapshot(now: float, tip: int = 2016 * 463 + 1600) -> ChainSnapshot:
    """This epoch at 696 s per block (11.6 min) ending 432 s before ``now``."""
    t_tip = int(now) - 432
    times = {h: t_tip - (tip - h) * 696 for h in required_heights(tip)}
    hist = tuple(HashratePoint(int(now) - (90 - i) * 86400, 8.0e6 + 1e4 * i) for i in range(90))
    return snap_from(times, tip, history=hist, source="fake chain", fetched_at=now)


class Scripted:
    """A source whose fetches follow a script of results and exceptions (the last repeats)."""

    def __init__(self, label: str, script: list[object]) -> None:
        self.label = label
        self.script = list(script)
        self.calls = 0
        self.closed = False

    async def fetch(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self.closed = True


def price(usd: float = 71_000.0, t: int = 0) -> PriceSnapshot:
    return PriceSnapshot(usd, t, "fake price")


def down(label: str = "fake chain") -> SourceError:
    return SourceError(f"{label}: connection refused")
