"""The demo, wired in one place: start the simulated world and point a spec at it.

``--demo`` (the dashboard, the daemon and ``--once``) all come through :func:`start_demo`:
it starts the simulated chain (mempool REST and bitcoind JSON-RPC on loopback) and the
simulated site (48 rigs with real firmware flavours on 127.0.1.x), and returns the spec and
the site config that read them through the real client code.  This is the only module of
the product that imports the simulator.  No Textual here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from tui.config import RigConfig, SiteConfig
from tui.spec import SourceSpec

#: The demo site: a Texas container at $0.06/kWh, 2% pool fee, $0.30/day/rig opex.
DEMO_SITE_NAME = "Texas-A"
DEMO_ELECTRICITY = 0.06
DEMO_POOL_FEE = 2.0
DEMO_OVERHEAD = 0.30
#: The demo site's power contract: an ERCOT-style time-of-use tariff in Texas time over
#: the flat $0.06/kWh: a weekday afternoon peak and cheap nights.
DEMO_TIMEZONE = "America/Chicago"
DEMO_TARIFF = ((frozenset(range(5)), 14.0, 20.0, 0.11, "peak"),
               (frozenset(range(7)), 0.0, 6.0, 0.045, "night"))


def demo_tariff() -> Any:
    """The demo's :class:`~tui.tariff.Tariff` (the machine's zone if it has no tz data)."""
    from tui.tariff import Tariff, TariffPeriod, ZoneError

    periods = tuple(TariffPeriod(d, a, b, p, n) for d, a, b, p, n in DEMO_TARIFF)
    try:
        return Tariff(periods, DEMO_ELECTRICITY, DEMO_TIMEZONE)
    except ZoneError:
        return Tariff(periods, DEMO_ELECTRICITY, None)


@dataclass
class DemoWorld:
    """A running demo: the spec and site that read it, and the simulators to stop."""

    spec: SourceSpec
    site: SiteConfig | None
    chain_sim: Any
    rig_sim: Any

    async def stop(self) -> None:
        for sim in (self.rig_sim, self.chain_sim):
            if sim is not None:
                try:
                    await sim.stop()
                except Exception:  # stop the other one anyway; the log says what failed
                    logging.getLogger("minertop").warning("stopping the demo simulator failed",
                                                          exc_info=True)
        self.rig_sim = self.chain_sim = None


def point_spec_at(spec: SourceSpec, mempool_url: str, rpc_url: str, cookie: Any) -> SourceSpec:
    """A demo spec pointed at a running chain simulator (mempool REST or bitcoind RPC)."""
    if spec.kind == "bitcoind":
        return replace(spec, url=rpc_url, rpc_cookie=cookie,
                       price_url=None if spec.fixed_price else mempool_url)
    return replace(spec, url=mempool_url, price_url=None if spec.fixed_price else mempool_url)


async def start_demo_site(seed: int = 2026, clock: Callable[[], float] = time.time
                          ) -> tuple[Any, SiteConfig]:
    """Start the simulated rigs on loopback and the site config that lists them."""
    from tui.sim.rigs import demo_site_specs, start_rig_site

    specs = demo_site_specs(seed)
    sim = await start_rig_site(specs, port=0, seed=seed, clock=clock)
    rigs = []
    for t in sim.targets():
        bitaxe = t.kind == "bitaxe"
        rigs.append(RigConfig(name=t.rig_id, host=t.host, port=t.port,
                              kind=t.kind,  # type: ignore[arg-type]
                              overhead_usd_day=0.0 if bitaxe else None))
    tariff = demo_tariff()
    site = SiteConfig(name=DEMO_SITE_NAME, electricity_usd_kwh=DEMO_ELECTRICITY,
                      pool_fee_pct=DEMO_POOL_FEE, overhead_usd_day=DEMO_OVERHEAD,
                      tariff=tariff, timezone=tariff.tz,
                      rigs=tuple(rigs), scans=())
    return sim, site


async def start_demo(spec: SourceSpec, clock: Callable[[], float] = time.time, *,
                     rigs: bool = True) -> DemoWorld:
    """Start the simulated chain (and, with ``rigs``, the simulated site)."""
    from tui.sim import start_sim

    chain_sim = await start_sim(seed=spec.demo_seed, scenario=spec.demo_scenario, clock=clock)
    world = DemoWorld(point_spec_at(spec, chain_sim.mempool_url, chain_sim.rpc_url,
                                    chain_sim.cookie_path), None, chain_sim, None)
    if rigs:
        try:
            world.rig_sim, world.site = await start_demo_site(spec.demo_seed, clock)
        except BaseException:
            await world.stop()
            raise
        world.spec = replace(world.spec, site=world.site)
    return world
