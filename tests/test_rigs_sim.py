"""The simulated rig site against the real clients: flavours, behaviours, quirks, discovery.

Every rig binds its own 127.0.x.y address (all loopback on Linux); ``port=0`` picks one
free port for the whole site so that a running demo on 4028 never clashes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from tui.catalog import Catalog
from tui.sim.rigs import (
    QUIRKS,
    RigSite,
    SimRigSpec,
    assign_hosts,
    demo_site_specs,
    start_rig_site,
)
from tui.sources.discovery import hosts_of, scan
from tui.sources.rigs import RigFleet, RigPoller

FLAVOUR_SPECS = [
    SimRigSpec("ant", "S19j Pro", "antminer", 104, 3068),
    SimRigSpec("wm", "M30S++", "whatsminer", 112, 3472),
    SimRigSpec("bos", "S9", "braiins", 13.5, 1323),
    SimRigSpec("ava", "Avalon A1366", "avalon", 130, 3250),
    SimRigSpec("bx", "Bitaxe Gamma", "bitaxe", 1.1, 18),
]


@pytest.fixture
async def site_factory() -> AsyncIterator:
    sites: list[RigSite] = []
    pollers: list[RigPoller] = []

    async def make(specs, host_base: str, **kw) -> tuple[RigSite, RigPoller]:
        site = await start_rig_site(specs, host_base=host_base, port=0, seed=7, **kw)
        sites.append(site)
        poller = RigPoller(site.targets(), timeout=1.0)
        pollers.append(poller)
        return site, poller

    yield make
    for p in pollers:
        await p.aclose()
    for s in sites:
        await s.stop()


async def test_each_flavour_is_served_and_read(site_factory) -> None:
    site, poller = await site_factory(FLAVOUR_SPECS, "127.0.201.0")
    assert [t.host for t in site.targets()] == [f"127.0.201.{i}" for i in range(1, 6)]
    assert [t.kind for t in site.targets()] == ["cgminer"] * 4 + ["bitaxe"]
    ant, wm, bos, ava, bx = await poller.poll_all()
    assert all(r.ok for r in (ant, wm, bos, ava, bx))
    assert (ant.firmware, ant.model, ant.power_w) == ("antminer", "Antminer S19j Pro", None)
    assert (wm.firmware, wm.model) == ("whatsminer", "M30S++V40")
    assert (bos.firmware, bos.model) == ("braiins", "Bitmain Antminer S9")
    assert (ava.firmware, ava.model) == ("avalon", "AvalonMiner 1366")
    assert (bx.firmware, bx.model, bx.hostname) == ("bitaxe", "Bitaxe Gamma", "bitaxe-bx")
    for r, spec in zip((ant, wm, bos, ava, bx), FLAVOUR_SPECS, strict=True):
        assert r.hashrate_ths == pytest.approx(spec.hashrate_ths, rel=0.1)
        assert r.hashrate_avg_ths is None or r.hashrate_avg_ths == pytest.approx(
            spec.hashrate_ths, rel=0.05
        )
        if spec.flavour != "antminer":  # stock Antminer firmware reports no power
            assert r.power_w == pytest.approx(spec.power_w, rel=0.05)
        assert r.temps_c and all(20 < t < 110 for t in r.temps_c)
        assert r.fans_rpm and all(1000 < f < 8000 for f in r.fans_rpm)
        assert r.pool and r.pool.startswith("stratum+tcp://")
        assert r.uptime_s and r.uptime_s > 0
    # the Antminer flavour really sends GHS as strings, no power
    raw = site.rig("ant").reply("summary")
    assert b'"GHS 5s":"' in raw and b'"Power"' not in raw and raw.endswith(b"\x00")
    assert b'"Power":' in site.rig("wm").reply("summary")


async def test_noise_is_seeded(site_factory) -> None:
    a, _ = await site_factory(FLAVOUR_SPECS[:1], "127.0.202.0")
    b, _ = await site_factory(FLAVOUR_SPECS[:1], "127.0.203.0")
    assert a.rig("ant").reply("summary") == b.rig("ant").reply("summary")


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("offline", "connection refused"),
        ("hang", "timed out after 0.5 s"),
        ("garbage", "bad reply: not a cgminer reply"),
        ("truncated", "bad reply: truncated reply"),
        ("error_status", "rig reports error: Access denied to 'summary' command"),
    ],
)
@pytest.mark.parametrize("flavour", ["antminer", "whatsminer", "bitaxe"])
async def test_behaviours(site_factory, behaviour: str, error: str, flavour: str) -> None:
    spec = SimRigSpec("r", "S21", flavour, 200, 3500, behaviour=behaviour)
    site, _ = await site_factory([spec], "127.0.204.0")
    poller = RigPoller(site.targets(), timeout=0.5)
    try:
        (r,) = await poller.poll_all()
    finally:
        await poller.aclose()
    assert not r.ok
    if flavour == "bitaxe":
        bitaxe_errors = {
            "garbage": "bad reply: not JSON",
            "error_status": "bad reply: HTTP 500",
        }
        error = bitaxe_errors.get(behaviour, error)
    assert r.error == error


async def test_slow_rig_answers_within_the_deadline(site_factory) -> None:
    spec = SimRigSpec("s", "S21", "antminer", 200, 3500, behaviour="slow", slow_delay=0.2)
    _, poller = await site_factory([spec], "127.0.205.0")
    t0 = time.monotonic()
    (r,) = await poller.poll_all()
    assert r.ok and time.monotonic() - t0 >= 0.2


@pytest.mark.parametrize("quirk", sorted(QUIRKS))
@pytest.mark.parametrize("flavour", ["antminer", "whatsminer", "braiins", "avalon"])
async def test_every_quirk_is_survived(site_factory, quirk: str, flavour: str) -> None:
    spec = SimRigSpec("q", "S19 XP", flavour, 140, 3010, quirks=frozenset({quirk}))
    site, poller = await site_factory([spec], "127.0.206.0")
    (r,) = await poller.poll_all()
    assert r.ok, r.error
    assert r.hashrate_ths == pytest.approx(140, rel=0.1)
    assert r.model
    if quirk in ("multi_broken", "multi_unsupported"):
        (r2,) = await poller.poll_all()  # learnt: one command per connection from now on
        assert r2.ok
        commands = site.rig("q").commands
        assert sum(n for c, n in commands.items() if "+" in c) <= 2
        assert commands["summary"] == 2


async def test_set_behaviour_at_run_time(site_factory) -> None:
    site, poller = await site_factory(FLAVOUR_SPECS[:2], "127.0.207.0")
    fleet = RigFleet(interval=1.0)
    fleet.update(await poller.poll_all())
    await site.set_behaviour("ant", "offline")
    readings = await poller.poll_all()
    assert readings[0].error == "connection refused" and readings[1].ok
    fleet.update(readings)
    assert fleet.status("ant", time.time())[0] == "stale"  # a good reading 0 s ago
    assert fleet.status("ant", time.time() + 10) == ("offline", "connection refused")
    await site.set_behaviour("ant", "ok")
    assert all(r.ok for r in await poller.poll_all())


def test_demo_site_specs() -> None:
    specs = demo_site_specs(2026)
    assert len(specs) == 48
    assert [s.name for s in specs] == [f"a-{i:02d}" for i in range(1, 49)]
    models = {s.model for s in specs}
    assert {"S9", "S19j Pro", "S19 XP", "S21", "S21 XP", "M30S++", "M60S"} <= models
    assert [s.flavour for s in specs].count("bitaxe") == 1
    assert [s.behaviour for s in specs].count("offline") == 1
    assert [s.behaviour for s in specs].count("hang") == 1
    assert specs == demo_site_specs(2026)
    catalog = Catalog.load()
    for s in specs:  # what each rig reports maps back to the catalog (production's lookup)
        reported = s.reported_model if s.flavour != "bitaxe" else s.model
        spec = catalog.lookup(reported)
        assert spec is not None and spec.model == s.model, reported


async def test_demo_site_polls(site_factory) -> None:
    site, _ = await site_factory(demo_site_specs(5), "127.0.208.0")
    poller = RigPoller(site.targets(), timeout=0.5)
    try:
        t0 = time.monotonic()
        readings = await poller.poll_all()
        elapsed = time.monotonic() - t0
    finally:
        await poller.aclose()
    failed = {r.rig_id: r.error for r in readings if not r.ok}
    assert failed == {"a-02": "timed out after 0.5 s", "a-08": "connection refused"}
    assert elapsed < 1.0


def test_assign_hosts_skips_network_and_broadcast() -> None:
    hosts = assign_hosts(300, "127.0.9.250")
    assert hosts[:4] == ["127.0.9.251", "127.0.9.252", "127.0.9.253", "127.0.9.254"]
    assert hosts[4] == "127.0.10.1"
    assert len(set(hosts)) == 300
    with pytest.raises(ValueError):
        assign_hosts(1, "10.0.0.0")


async def test_sim_refuses_non_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await start_rig_site([SimRigSpec("x", "S9", host="192.0.2.1")], port=0)


# ----------------------------------------------------------------------------- discovery


async def test_discovery_finds_rigs_and_models(site_factory) -> None:
    specs = [
        SimRigSpec("ant", "S19j Pro", "antminer", 104, 3068, host="127.0.209.3"),
        SimRigSpec(
            "ant2",
            "S21",
            "antminer",
            200,
            3500,
            host="127.0.209.9",
            quirks=frozenset({"multi_broken"}),
        ),
        SimRigSpec("wm", "M60S", "whatsminer", 186, 3441, host="127.0.209.4"),
        SimRigSpec("bos", "S9", "braiins", 13.5, 1323, host="127.0.209.12"),
        SimRigSpec("ava", "Avalon A1366", "avalon", 130, 3250, host="127.0.209.7"),
        SimRigSpec("bx", "Bitaxe Gamma", "bitaxe", 1.1, 18, host="127.0.209.5"),
        SimRigSpec("off", "S9", "antminer", behaviour="offline", host="127.0.209.6"),
        SimRigSpec("hang", "S9", "antminer", behaviour="hang", host="127.0.209.8"),
        SimRigSpec("junk", "S9", "antminer", behaviour="garbage", host="127.0.209.10"),
        SimRigSpec("deny", "S9", "antminer", behaviour="error_status", host="127.0.209.11"),
    ]
    site, _ = await site_factory(specs, "127.0.209.0")
    port = site.rig("ant").port
    t0 = time.monotonic()
    found = await scan("127.0.209.0/28", port, timeout=0.3, concurrency=64, kind="cgminer")
    assert time.monotonic() - t0 < 1.5
    assert [(f.host, f.model, f.firmware, f.kind) for f in found] == [
        ("127.0.209.3", "Antminer S19j Pro", "antminer", "cgminer"),
        ("127.0.209.4", "M60SVK30", "whatsminer", "cgminer"),
        ("127.0.209.7", "AvalonMiner 1366", "avalon", "cgminer"),
        ("127.0.209.9", "Antminer S21", "antminer", "cgminer"),
        ("127.0.209.11", None, "cgminer", "cgminer"),  # answers, but access denied
        ("127.0.209.12", "Bitmain Antminer S9", "braiins", "cgminer"),
    ]
    assert all(f.port == port for f in found)
    bitaxes = await scan("127.0.209.0/28", port, timeout=0.3, kind="bitaxe")
    assert [(f.host, f.model, f.hostname) for f in bitaxes] == [
        ("127.0.209.5", "Bitaxe Gamma", "bitaxe-bx")
    ]


def test_discovery_ranges() -> None:
    assert len(hosts_of("10.0.0.0/24")) == 254
    assert hosts_of("10.0.0.7") == ["10.0.0.7"]
    assert len(hosts_of("10.0.0.0/16")) == 65534
    for bad in ("10.0.0.0/15", "0.0.0.0/0", "::1/128", "nonsense", "10.0.0.0/33"):
        with pytest.raises(ValueError):
            hosts_of(bad)
