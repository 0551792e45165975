"""The site as one source: configured rigs plus rigs found by scanning a range."""

from __future__ import annotations

from tui.config import RigConfig, ScanRange, SiteConfig
from tui.sim.rigs import SimRigSpec, start_rig_site
from tui.sources.fleet import RigSource


async def test_scan_adds_rigs_and_keeps_the_ones_that_die() -> None:
    specs = [SimRigSpec(name=f"s{i}", model="S19j Pro", host=f"127.0.3.{i}") for i in (1, 2, 3)]
    site_sim = await start_rig_site(specs, port=0)
    try:
        port = site_sim.targets()[0].port
        assert port is not None
        # a-1 is configured by hand (by its own name); the range finds the other two.
        site = SiteConfig(
            name="t", electricity_usd_kwh=0.05,
            rigs=(RigConfig(name="by-hand", host="127.0.3.1", port=port),),
            scans=(ScanRange(cidr="127.0.3.0/29", port=port),))
        src = RigSource(site)
        first = await src.fetch()
        assert [r.rig_id for r in first.readings] == ["by-hand"]  # the scan runs beside
        await src.wait_for_scan()
        second = await src.fetch()
        ids = sorted(r.rig_id for r in second.readings)
        assert ids == ["127.0.3.2", "127.0.3.3", "by-hand"]
        assert all(r.ok for r in second.readings)
        # s3 dies; a rescan doesn't find it, but it stays on the list, offline.
        await site_sim.set_behaviour("s3", "offline")
        src._scanned_at = -1e9
        await src.fetch()
        await src.wait_for_scan()
        third = await src.fetch()
        by_id = {r.rig_id: r for r in third.readings}
        assert set(by_id) == {"127.0.3.2", "127.0.3.3", "by-hand"}
        assert not by_id["127.0.3.3"].ok and by_id["127.0.3.2"].ok
        await src.aclose()
    finally:
        await site_sim.stop()


async def test_threaded_polling_reads_the_same_and_closes() -> None:
    specs = [SimRigSpec(name=f"t{i}", model="S21", host=f"127.0.4.{i}") for i in (1, 2)]
    site_sim = await start_rig_site(specs, port=0)
    try:
        port = site_sim.targets()[0].port
        site = SiteConfig(name="t", electricity_usd_kwh=0.05, rigs=tuple(
            RigConfig(name=f"t{i}", host=f"127.0.4.{i}", port=port) for i in (1, 2)))
        src = RigSource(site, threaded=True)
        got = []
        src.on_partial = got.append
        snap = await src.fetch()
        readings = [*snap.readings, *(r for g in got for r in g.readings)]
        assert sorted(r.rig_id for r in readings) == ["t1", "t2"]
        assert all(r.ok and r.hashrate_ths for r in readings)
        thread = src._thread
        await src.aclose()
        assert thread is not None and not thread.thread.is_alive()
    finally:
        await site_sim.stop()
