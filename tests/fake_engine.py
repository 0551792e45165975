"""A fake engine for UI tests: it publishes the views a test gives it, and records the
controls the dashboard used (refresh, pause, faster/slower).  No source, no simulator.

:func:`demo_view` is the demo site's first complete view, captured once per test session
by running the real engine (no Textual) against the in-process simulator on a fake clock;
every key and screen test then shows that view at once instead of booting the world.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from tests.conftest import FakeClock
from tui.engine import Engine, EngineView, SourceState
from tui.history import RigHistory
from tui.spec import SourceSpec

START = 1_769_900_000.0  # the clock the simulator's default figures were tuned at


class FakeEngine:
    """Implements what the dashboard asks of an engine (``tui.app.EngineLike``)."""

    def __init__(self, views: Sequence[EngineView] = (), *, has_site: bool | None = None,
                 histories: dict[str, RigHistory] | None = None) -> None:
        self.initial = list(views)
        self.has_site = (bool(views and views[-1].has_site) if has_site is None else has_site)
        self.latest: EngineView | None = None
        self.paused = False
        self.refreshes = 0
        self.scales: list[float] = []
        self.started = self.stopped = False
        self.histories = dict(histories or {})
        self._subs: list[Callable[[EngineView], None]] = []

    def subscribe(self, callback: Callable[[EngineView], None]) -> Callable[[], None]:
        self._subs.append(callback)
        return lambda: self._subs.remove(callback)

    async def start(self) -> None:
        self.started = True
        for v in self.initial:
            self.publish(v)

    async def stop(self) -> None:
        self.stopped = True

    def publish(self, view: EngineView) -> None:
        self.latest = view
        for cb in list(self._subs):
            cb(view)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    def refresh(self) -> None:
        self.refreshes += 1

    def scale_intervals(self, factor: float) -> str:
        self.scales.append(factor)
        return f"x{factor}"

    def history_for(self, rig_id: str) -> RigHistory:
        return self.histories.setdefault(rig_id, RigHistory())


@dataclass(frozen=True)
class Captured:
    view: EngineView
    histories: dict[str, RigHistory]


_captured: dict[str, Captured] = {}
_lock = threading.Lock()


def _capture(via: str) -> Captured:
    async def run() -> Captured:
        clock = FakeClock(START)
        spec = SourceSpec(kind=via, url="http://127.0.0.1:0", demo=True)
        engine = Engine(spec, clock=clock, backoff_overrides={"min_delay": 0.05,
                                                              "max_delay": 0.05},
                        poll_overrides={"timeout_s": 1.5})
        done = asyncio.Event()
        got: list[EngineView] = []

        def on_view(v: EngineView) -> None:
            if (v.cycle and v.site is not None and v.dashboard is not None
                    and v.price is not None and v.site.totals.margin_usd_day is not None):
                got.append(v)
                done.set()

        engine.subscribe(on_view)
        await engine.start()
        try:
            await asyncio.wait_for(done.wait(), 30)
        finally:
            await engine.stop()
        return Captured(got[0], dict(engine.rig_history))

    out: list[Captured] = []
    err: list[BaseException] = []

    def thread() -> None:
        try:
            out.append(asyncio.run(run()))
        except BaseException as e:  # re-raised in the caller
            err.append(e)

    t = threading.Thread(target=thread)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def demo_capture(via: str = "mempool") -> Captured:
    """The demo's first complete view (captured once per session)."""
    with _lock:
        if via not in _captured:
            _captured[via] = _capture(via)
        return _captured[via]


def demo_view(via: str = "mempool", **changes: object) -> EngineView:
    return replace(demo_capture(via).view, **changes)  # type: ignore[arg-type]


def with_source(view: EngineView, name: str, **changes: object) -> EngineView:
    """``view`` with one source's state changed (e.g. ``error="..."``)."""
    sources = dict(view.sources)
    sources[name] = replace(sources[name], **changes)  # type: ignore[arg-type]
    return replace(view, sources=MappingProxyType(sources), seq=view.seq + 1)


def demo_engine(via: str = "mempool") -> FakeEngine:
    cap = demo_capture(via)
    return FakeEngine([cap.view], histories={k: v for k, v in cap.histories.items()})


__all__ = ["START", "FakeEngine", "SourceState", "demo_engine", "demo_view", "with_source"]
