"""The simulated site's Whatsminer API v3 rigs, hashboards, share counters, the ``stuck`` and
``dead_board`` behaviours and ``minertop sim --rigs``: over real loopback sockets.

A fake clock (``start_rig_site(clock=...)``) makes the time-dependent figures exact.  Every
site binds its own 127.0.21x.y addresses with ``port=0`` so a running demo never clashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tui.sim import run_sim_cli
from tui.sim.rigs import (
    BEHAVIOURS,
    FLAVOURS,
    RigSite,
    SimRig,
    SimRigSpec,
    demo_site_specs,
    mixed_site_specs,
    start_rig_site,
)

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC

SiteFactory = Callable[..., Awaitable[RigSite]]


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def site_factory() -> AsyncIterator[SiteFactory]:
    sites: list[RigSite] = []

    async def make(specs: Sequence[SimRigSpec], host_base: str, **kw: Any) -> RigSite:
        site = await start_rig_site(specs, host_base=host_base, port=0, seed=11, **kw)
        sites.append(site)
        return site

    yield make
    for s in sites:
        await s.stop()


# --------------------------------------------------------------------------- clients


class V3Client:
    """A tiny Whatsminer API v3 client: 4-byte little-endian length, then JSON, both ways."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, rig: SimRig) -> V3Client:
        reader, writer = await asyncio.open_connection(rig.host, rig.port)
        return cls(reader, writer)

    async def send_raw(self, payload: bytes) -> None:
        self.writer.write(struct.pack("<I", len(payload)) + payload)
        await self.writer.drain()

    async def read(self, timeout: float = 2.0) -> dict[str, Any]:
        (n,) = struct.unpack("<I", await asyncio.wait_for(self.reader.readexactly(4), timeout))
        body = await asyncio.wait_for(self.reader.readexactly(n), timeout)
        reply = json.loads(body)
        assert isinstance(reply, dict)
        return reply

    async def call(self, cmd: str, param: object = None, **extra: object) -> dict[str, Any]:
        req: dict[str, object] = {"cmd": cmd, **extra}
        if param is not None:
            req["param"] = param
        await self.send_raw(json.dumps(req).encode())
        return await self.read()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def v3(rig: SimRig, cmd: str, param: object = None) -> dict[str, Any]:
    c = await V3Client.connect(rig)
    try:
        reply = await c.call(cmd, param)
    finally:
        await c.close()
    assert reply["code"] == 0, reply
    msg = reply["msg"]
    assert isinstance(msg, dict)
    return msg


async def cgminer(rig: SimRig, command: str) -> dict[str, Any]:
    """One cgminer-API request over TCP (read to EOF, NUL stripped)."""
    reader, writer = await asyncio.open_connection(rig.host, rig.port)
    try:
        writer.write(json.dumps({"command": command}).encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 2.0)
    finally:
        writer.close()
    doc = json.loads(raw.rstrip(b"\x00").decode("utf-8", errors="replace"))
    assert isinstance(doc, dict)
    return doc


async def refused(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


# --------------------------------------------------------------------------- Whatsminer API v3

M60S = SimRigSpec("v3", "M60S", "whatsminer-v3", 186, 3441)


def test_v3_flavour_and_behaviours_are_registered() -> None:
    assert FLAVOURS[-1] == "whatsminer-v3" and FLAVOURS[:5] == (
        "antminer",
        "whatsminer",
        "braiins",
        "avalon",
        "bitaxe",
    )
    assert BEHAVIOURS[-2:] == ("stuck", "dead_board")
    assert (M60S.kind, M60S.reported_model) == ("whatsminer-v3", "M60S_VK30")
    assert SimRigSpec("x", "M66S", "whatsminer-v3").reported_model == "M66S_VK30"
    with pytest.raises(ValueError, match="quirks"):
        SimRigSpec("x", "M60S", "whatsminer-v3", quirks=frozenset({"glued"}))
    with pytest.raises(ValueError, match="hashboards"):
        SimRigSpec("x", "Bitaxe Gamma", "bitaxe", behaviour="dead_board")


async def test_v3_answers_framed_requests_on_one_connection(site_factory) -> None:
    site = await site_factory([M60S], "127.0.210.0")
    rig = site.rig("v3")
    c = await V3Client.connect(rig)
    try:
        info = await c.call("get.device.info")
        assert (info["code"], info["desc"]) == (0, "get.device.info")
        assert isinstance(info["when"], int)
        msg = info["msg"]
        assert msg["miner"]["type"] == "M60S_VK30"
        assert msg["system"]["fwversion"] and msg["system"]["api"].startswith("3.")
        assert msg["network"]["hostname"] == "WhatsMiner-v3"
        assert len(msg["network"]["mac"].split(":")) == 6
        assert msg["error-code"] == []
        salt = await c.call("get.device.info", "salt")
        assert salt["msg"] == {"salt": msg["salt"]}

        summary = (await c.call("get.miner.status", "summary"))["msg"]["summary"]
        for key in (
            "hash-realtime",
            "hash-average",
            "factory-hash",
            "power-realtime",
            "power-limit",
            "fan-speed-in",
            "fan-speed-out",
            "elapsed",
            "chip-temp-min",
            "chip-temp-avg",
            "chip-temp-max",
            "board-temperature",
            "environment-temperature",
            "hash-1min",
            "hash-15min",
            "power-rate",
        ):
            assert key in summary, key
        assert summary["hash-realtime"] == pytest.approx(186, rel=0.08)  # TH/s
        assert summary["hash-average"] == pytest.approx(186, rel=0.05)
        assert summary["power-realtime"] == pytest.approx(3441, rel=0.05)  # W
        assert summary["factory-hash"] == 186.0 and summary["elapsed"] > 3600

        await c.send_raw(b"")  # the API's heartbeat: no answer, the connection stays up
        edevs = (await c.call("get.miner.status", "edevs"))["msg"]["edevs"]
        assert [b["slot"] for b in edevs] == [0, 1, 2]
        assert [b["effective-chips"] for b in edevs] == [245] * 3  # pyasic M60SVK30
        assert sum(b["hash-average"] for b in edevs) == pytest.approx(
            summary["hash-average"], abs=0.01
        )
        assert all(50 < b["chip-temp-max"] < 100 for b in edevs)

        pools = (await c.call("get.miner.status", "pools"))["msg"]["pools"]
        assert pools[0]["url"].startswith("stratum+tcp://") and pools[0]["status"] == "alive"
        assert pools[0]["account"] == "site.v3" and pools[0]["stratum-active"] is True
        assert pools[0]["accepted"] > 0

        both = (await c.call("get.miner.status", "summary+pools"))["msg"]
        assert set(both) == {"summary", "pools"}
    finally:
        await c.close()
    assert rig.connections == 1  # six requests, one connection


async def test_v3_listens_on_its_port_only_and_refuses_writes(site_factory) -> None:
    ant = SimRigSpec("ant", "S19j Pro", "antminer", 104, 3068)
    site = await site_factory([M60S, ant], "127.0.211.0")
    rig, other = site.rig("v3"), site.rig("ant")
    assert rig.port != other.port
    assert await refused(rig.host, 4028)
    assert await refused(rig.host, other.port)  # the cgminer-API port, at its address
    c = await V3Client.connect(rig)
    try:
        no = await c.call("set.system.reboot", ts=1767225600, account="super", token="Y0Ijoro/")
        assert (no["code"], no["msg"], no["desc"]) == (-4, "no permission", "set.system.reboot")
        bare = await c.call("set.miner.power_limit", 3000)  # no token at all
        assert bare["code"] == -3
        unknown = await c.call("get.nonsense")
        assert (unknown["code"], unknown["msg"]) == (-2, "invalid command")
        await c.send_raw(b"not json")
        assert (await c.read())["code"] == -3
        assert (await c.call("get.device.info"))["code"] == 0  # still serving
    finally:
        await c.close()
    # a cgminer-style request is not a frame of this protocol: the rig hangs up at once
    reader, writer = await asyncio.open_connection(rig.host, rig.port)
    writer.write(b'{"command":"summary"}')
    assert await asyncio.wait_for(reader.read(), 2.0) == b""
    writer.close()


@pytest.mark.parametrize(
    "behaviour", ["offline", "hang", "garbage", "truncated", "slow", "error_status"]
)
async def test_v3_behaviours(site_factory, behaviour: str) -> None:
    spec = SimRigSpec("r", "M60S", "whatsminer-v3", 186, 3441, behaviour=behaviour, slow_delay=0.2)
    site = await site_factory([spec], "127.0.212.0")
    rig = site.rig("r")
    if behaviour == "offline":
        assert await refused(rig.host, rig.port)
        return
    c = await V3Client.connect(rig)
    try:
        t0 = asyncio.get_running_loop().time()
        await c.send_raw(json.dumps({"cmd": "get.miner.status", "param": "summary"}).encode())
        if behaviour == "hang":
            with pytest.raises(asyncio.TimeoutError):
                await c.read(timeout=0.3)
        elif behaviour == "garbage":
            raw = await asyncio.wait_for(c.reader.read(), 2.0)  # then the rig hangs up
            assert raw and not raw[4:].startswith(b"{")
        elif behaviour == "truncated":
            raw = await asyncio.wait_for(c.reader.read(), 2.0)
            (n,) = struct.unpack_from("<I", raw)
            assert 0 < len(raw) - 4 < n  # the prefix promises more than follows
        elif behaviour == "slow":
            reply = await c.read()
            assert reply["code"] == 0
            assert asyncio.get_running_loop().time() - t0 >= 0.2
        else:
            reply = await c.read()
            assert reply["code"] == -1 and isinstance(reply["msg"], str)
    finally:
        await c.close()


# --------------------------------------------------------------------------- hashboards


async def test_antminer_stats_carry_the_hashboards(site_factory) -> None:
    specs = [
        SimRigSpec("s9", "S9", "antminer", 13.5, 1323),
        SimRigSpec("j", "S19j Pro", "antminer", 104, 3068),
    ]
    site = await site_factory(specs, "127.0.213.0")
    for name, slots, chips in (("s9", (6, 7, 8), 63), ("j", (1, 2, 3), 126)):
        stats = (await cgminer(site.rig(name), "stats"))["STATS"][1]
        rates = [stats[f"chain_rate{i}"] for i in slots]
        assert all(isinstance(r, str) for r in rates)  # GH/s as strings on stock firmware
        assert sum(float(r) for r in rates) == pytest.approx(float(stats["GHS 5s"]), abs=0.05)
        for i in slots:
            assert stats[f"chain_acn{i}"] == chips  # pyasic expected_chips
            acs = stats[f"chain_acs{i}"]
            assert acs.count("o") == chips and set(acs) == {"o", " "}
            assert all(len(g) == 8 for g in acs.split(" ")[:-1])
            assert 40 < stats[f"temp2_{i}"] < 100
        assert stats["total_rateideal"] == pytest.approx(site.rig(name).spec.hashrate_ths * 1000)
        assert f"chain_rate{slots[0] - 1}" not in stats  # boards only on their slots
    j = (await cgminer(site.rig("j"), "stats"))["STATS"][1]
    assert all(len(j[f"temp_pcb{i}"].split("-")) == 4 for i in (1, 2, 3))
    assert all(len(j[f"temp_chip{i}"].split("-")) == 4 for i in (1, 2, 3))


async def test_whatsminer_v2_and_braiins_boards(site_factory) -> None:
    specs = [
        SimRigSpec("wm", "M30S++", "whatsminer", 112, 3472),
        SimRigSpec("bos", "S9", "braiins", 13.5, 1323),
        SimRigSpec("bos19", "S19j Pro", "braiins", 104, 3068),
    ]
    site = await site_factory(specs, "127.0.214.0")
    for cmd in ("devs", "edevs"):
        devs = (await cgminer(site.rig("wm"), cmd))["DEVS"]
        assert [(d["ASC"], d["Slot"]) for d in devs] == [(0, 0), (1, 1), (2, 2)]
        assert all(d["Effective Chips"] == 255 for d in devs)
        for key in (
            "MHS av",
            "MHS 5s",
            "MHS 1m",
            "Temperature",
            "Chip Temp Max",
            "Chip Temp Avg",
            "PCB SN",
        ):
            assert all(key in d for d in devs), key
    summary = (await cgminer(site.rig("wm"), "summary"))["SUMMARY"][0]
    devs = (await cgminer(site.rig("wm"), "devs"))["DEVS"]
    assert sum(d["MHS av"] for d in devs) == pytest.approx(summary["MHS av"], rel=1e-6)
    for name, ids, chips in (("bos", [6, 7, 8], 63), ("bos19", [1, 2, 3], 126)):
        devs = (await cgminer(site.rig(name), "devs"))["DEVS"]
        details = (await cgminer(site.rig(name), "devdetails"))["DEVDETAILS"]
        assert [d["ID"] for d in devs] == ids == [d["ID"] for d in details]
        assert [d["Chips"] for d in details] == [chips] * 3
        assert all(d["MHS 5s"] > 0 and d["Nominal MHS"] > 0 for d in devs)


# --------------------------------------------------------------------------- shares


async def test_accepted_grows_with_the_clock_in_proportion_to_hashrate(site_factory) -> None:
    clock = FakeClock()
    specs = [
        SimRigSpec("small", "S9", "antminer", 13.5, 1323),
        SimRigSpec("big", "S21", "antminer", 200, 3500),
        SimRigSpec("wm", "M30S++", "whatsminer", 112, 3472),
        SimRigSpec("bos", "S19j Pro", "braiins", 104, 3068),
        SimRigSpec("ava", "Avalon A1366", "avalon", 130, 3250),
        M60S,
    ]
    site = await site_factory(specs, "127.0.215.0", clock=clock)

    async def accepted() -> dict[str, int]:
        out = {}
        for name in ("small", "big", "wm", "bos", "ava"):
            out[name] = (await cgminer(site.rig(name), "summary"))["SUMMARY"][0]["Accepted"]
        pools = (await v3(site.rig("v3"), "get.miner.status", "pools"))["pools"]
        out["v3"] = pools[0]["accepted"]
        return out

    before = await accepted()
    assert before == await accepted()  # the same instant: the same count
    clock.t += 3600
    after = await accepted()
    grew = {k: after[k] - before[k] for k in before}
    assert all(n > 0 for n in grew.values()), grew
    # 65536-difficulty shares: hashrate / (65536 * 2^32) a second
    assert grew["big"] == pytest.approx(200e12 * 3600 / (65536 * 2**32), rel=0.03)
    assert grew["big"] / grew["small"] == pytest.approx(200 / 13.5, rel=0.05)
    assert grew["v3"] / grew["wm"] == pytest.approx(186 / 112, rel=0.05)


# --------------------------------------------------------------------------- stuck


@pytest.mark.parametrize(
    "flavour", ["antminer", "whatsminer", "braiins", "avalon", "whatsminer-v3"]
)
async def test_stuck_rig_answers_but_hashes_nothing(site_factory, flavour: str) -> None:
    clock = FakeClock()
    model = {"whatsminer": "M30S++", "whatsminer-v3": "M60S", "avalon": "Avalon A1366"}.get(
        flavour, "S19 XP"
    )
    spec = SimRigSpec("st", model, flavour, 140, 3010, behaviour="stuck")
    site = await site_factory([spec], "127.0.216.0", clock=clock)
    rig = site.rig("st")

    async def read() -> tuple[float, float, int, float | None]:
        """(live TH/s, average TH/s, accepted, power W or None)"""
        if flavour == "whatsminer-v3":
            msg = await v3(rig, "get.miner.status", "summary+pools")
            s = msg["summary"]
            return (
                s["hash-realtime"],
                s["hash-average"],
                msg["pools"][0]["accepted"],
                s["power-realtime"],
            )
        s = (await cgminer(rig, "summary"))["SUMMARY"][0]
        if flavour == "antminer":
            return float(s["GHS 5s"]) / 1000, s["GHS av"] / 1000, s["Accepted"], None
        live = s["MHS 30s"] if flavour == "avalon" else s["MHS 5s"]
        return live / 1e6, s["MHS av"] / 1e6, s["Accepted"], s.get("Power")

    live, avg, acc, watts = await read()
    assert live == 0.0
    assert 0.75 * 140 < avg < 0.9 * 140  # stuck 10 min ago: exp(-600/3600) of nominal
    if watts is not None:
        assert 0.7 * 3010 < watts < 0.95 * 3010  # still drawing, a bit less
    clock.t += 120
    live2, avg2, acc2, _ = await read()
    assert (live2, acc2) == (0.0, acc)  # the accepted counter no longer moves
    assert 0 < avg2 < avg
    assert avg2 / avg == pytest.approx(2.718281828 ** (-120 / 3600), rel=1e-3)


async def test_stuck_boards_and_windows(site_factory) -> None:
    clock = FakeClock()
    specs = [
        SimRigSpec("ant", "S21", "antminer", 200, 3500, behaviour="stuck"),
        SimRigSpec("v3", "M66S", "whatsminer-v3", 298, 5513, behaviour="stuck"),
    ]
    site = await site_factory(specs, "127.0.217.0", clock=clock)
    stats = (await cgminer(site.rig("ant"), "stats"))["STATS"][1]
    assert [stats[f"chain_rate{i}"] for i in (1, 2, 3)] == ["0.00"] * 3
    assert [stats[f"chain_acn{i}"] for i in (1, 2, 3)] == [108] * 3  # chips there, idle
    msg = await v3(site.rig("v3"), "get.miner.status", "summary+edevs")
    assert msg["summary"]["hash-1min"] == 0.0 and msg["summary"]["hash-15min"] > 0
    assert [b["effective-chips"] for b in msg["edevs"]] == [384] * 3  # pyasic M66SVK30


async def test_behaviour_changes_keep_the_counter_continuous(site_factory) -> None:
    clock = FakeClock()
    site = await site_factory(
        [SimRigSpec("r", "S21", "antminer", 200, 3500)], "127.0.218.0", clock=clock
    )
    rig = site.rig("r")
    a0 = rig.accepted()
    clock.t += 600
    a1 = rig.accepted()
    assert a1 > a0
    await site.set_behaviour("r", "stuck")
    assert rig.accepted() == a1 and rig.avg_ths() == pytest.approx(rig.spec.hashrate_ths, rel=0.05)
    clock.t += 3600
    assert rig.accepted() == a1 and rig.live_ths() == 0.0
    assert rig.avg_ths() / rig.spec.hashrate_ths == pytest.approx(0.368, abs=0.02)
    await site.set_behaviour("r", "ok")
    assert rig.accepted() == a1
    clock.t += 600
    assert rig.accepted() - a1 == pytest.approx(a1 - a0, abs=2)
    await site.set_behaviour("r", "dead_board")
    stats = (await cgminer(rig, "stats"))["STATS"][1]
    assert sorted(stats[f"chain_acn{i}"] for i in (1, 2, 3)) == [0, 108, 108]


# --------------------------------------------------------------------------- dead board


@pytest.mark.parametrize(
    "flavour", ["antminer", "whatsminer", "braiins", "avalon", "whatsminer-v3"]
)
async def test_dead_board(site_factory, flavour: str) -> None:
    clock = FakeClock()
    model = {
        "whatsminer": "M30S++",
        "whatsminer-v3": "M60S",
        "avalon": "Avalon A1366",
        "braiins": "S19j Pro",
    }.get(flavour, "S21")
    spec = SimRigSpec("d", model, flavour, 200, 3500, behaviour="dead_board")
    site = await site_factory([spec], "127.0.219.0", clock=clock)
    rig = site.rig("d")
    expected_chips = {"antminer": 108, "whatsminer": 255, "braiins": 126, "whatsminer-v3": 245}.get(
        flavour
    )
    power: float | None = None
    if flavour == "antminer":
        stats = (await cgminer(rig, "stats"))["STATS"][1]
        boards = [(float(stats[f"chain_rate{i}"]), stats[f"chain_acn{i}"]) for i in (1, 2, 3)]
        total = float(stats["GHS 5s"])
    elif flavour == "whatsminer":
        devs = (await cgminer(rig, "edevs"))["DEVS"]
        boards = [(d["MHS av"], d["Effective Chips"]) for d in devs]
        summary = (await cgminer(rig, "summary"))["SUMMARY"][0]
        total, power = summary["MHS av"], summary["Power"]
    elif flavour == "braiins":
        devs = (await cgminer(rig, "devs"))["DEVS"]
        details = (await cgminer(rig, "devdetails"))["DEVDETAILS"]
        boards = [(d["MHS av"], dd["Chips"]) for d, dd in zip(devs, details, strict=True)]
        total = (await cgminer(rig, "summary"))["SUMMARY"][0]["MHS av"]
    elif flavour == "avalon":
        mm = (await cgminer(rig, "stats"))["STATS"][0]["MM ID0"]
        mghs = mm.split("MGHS[")[1].split("]")[0].split()
        boards = [(float(g), None) for g in mghs]
        total = float(mm.split("GHSspd[")[1].split("]")[0])
    else:
        msg = await v3(rig, "get.miner.status", "summary+edevs")
        boards = [(b["hash-average"], b["effective-chips"]) for b in msg["edevs"]]
        total, power = msg["summary"]["hash-average"], msg["summary"]["power-realtime"]
        info = await v3(rig, "get.device.info")
        assert len(info["error-code"]) == 1  # the firmware lists the board it lost
    dead = [b for b in boards if b[0] == 0]
    alive = [b for b in boards if b[0] > 0]
    assert len(dead) == 1 and len(alive) == 2
    if expected_chips is not None:
        assert dead[0][1] == 0 and all(c == expected_chips for _, c in alive)
    assert sum(h for h, _ in boards) == pytest.approx(total, rel=1e-4, abs=0.05)
    scale = {"antminer": 1e3, "avalon": 1e3, "whatsminer-v3": 1.0}.get(flavour, 1e6)  # ->TH/s
    assert total / scale == pytest.approx(200 * 2 / 3, rel=0.1)
    if power is not None:
        assert power == pytest.approx(3500 * 2 / 3, rel=0.1)


# --------------------------------------------------------------------------- sites


def test_demo_site_has_v3_stuck_and_dead_board_rigs() -> None:
    specs = demo_site_specs(2026)
    by = {s.name: s for s in specs}
    assert len(specs) == 48 and [s.name for s in specs] == [f"a-{i:02d}" for i in range(1, 49)]
    assert (by["a-02"].behaviour, by["a-08"].behaviour) == ("hang", "offline")
    v3s = [s for s in specs if s.flavour == "whatsminer-v3"]
    assert [(s.name, s.model) for s in v3s] == [
        ("a-44", "M60S"),
        ("a-45", "M66S"),
        ("a-46", "M66S"),
    ]
    assert all(s.kind == "whatsminer-v3" and not s.quirks for s in v3s)
    assert [s.name for s in specs if s.behaviour == "stuck"] == ["a-03"]
    assert [s.name for s in specs if s.behaviour == "dead_board"] == ["a-27"]
    special = {"offline", "hang", "stuck", "dead_board"}
    assert sorted(s.behaviour for s in specs if s.behaviour in special) == [
        "dead_board",
        "hang",
        "offline",
        "stuck",
    ]
    assert by["a-45"].hashrate_ths == pytest.approx(298, rel=0.05)


async def test_demo_site_serves_v3_rigs_apart(site_factory) -> None:
    site = await site_factory(demo_site_specs(2026), "127.0.220.0")
    api_port = site.rig("a-01").port
    for name in ("a-44", "a-45", "a-46"):
        rig = site.rig(name)
        assert rig.port != api_port and await refused(rig.host, api_port)
        msg = await v3(rig, "get.device.info", "miner")
        assert msg["miner"]["type"] == rig.spec.reported_model
    assert await refused(site.rig("a-08").host, api_port)


def test_mixed_site_specs() -> None:
    five = mixed_site_specs(5)
    assert [s.name for s in five] == ["r-001", "r-002", "r-003", "r-004", "r-005"]
    assert [s.flavour for s in five].count("whatsminer-v3") == 1
    hundred = mixed_site_specs(100, seed=3)
    assert [s.flavour for s in hundred].count("whatsminer-v3") == 20
    assert {s.behaviour for s in hundred} == {"ok", "offline", "stuck", "dead_board"}
    assert hundred == mixed_site_specs(100, seed=3)
    assert len({s.name for s in mixed_site_specs(1000)}) == 1000


# --------------------------------------------------------------------------- minertop sim


def test_sim_cli_rigs_usage_errors(capsys) -> None:
    assert run_sim_cli(["--no-chain"]) == 2
    assert "--no-chain needs --rigs" in capsys.readouterr().err
    assert run_sim_cli(["--rigs", "5", "--rig-host-base", "10.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "loopback" in err and err.count("\n") == 1
    assert run_sim_cli(["--rigs", "zero"]) == 2
    assert run_sim_cli(["--rigs", "0"]) == 2
    assert run_sim_cli(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--rigs" in out and "--no-chain" in out and "Whatsminer API v3" in out


def test_minertop_sim_serves_rigs_only_until_sigterm(tmp_path: Path) -> None:
    code = "import sys; from tui.cli import main; sys.exit(main(['sim', *sys.argv[1:]]))"
    conf = tmp_path / "rigs.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--rigs",
            "5",
            "--no-chain",
            "--rig-port",
            "0",
            "--v3-port",
            "0",
            "--rig-host-base",
            "127.0.221.0",
            "--rigs-config",
            str(conf),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Serving"):
                break
        rigs = [ln.split("\t") for ln in lines if ln.count("\t") == 2]
        assert [r[0] for r in rigs] == ["r-001", "r-002", "r-003", "r-004", "r-005"]
        assert [r[2].rsplit(":", 1)[0] for r in rigs] == [f"127.0.221.{i}" for i in range(1, 6)]
        kinds = [r[1] for r in rigs]
        assert kinds.count("whatsminer-v3") == 1 and set(kinds) <= {
            "cgminer",
            "bitaxe",
            "whatsminer-v3",
        }
        name, _, address = next(r for r in rigs if r[1] == "whatsminer-v3")
        host, port = address.rsplit(":", 1)

        async def ask() -> dict[str, Any]:
            reader, writer = await asyncio.open_connection(host, int(port))
            body = b'{"cmd":"get.device.info","param":"network"}'
            writer.write(struct.pack("<I", len(body)) + body)
            (n,) = struct.unpack("<I", await asyncio.wait_for(reader.readexactly(4), 5))
            reply = json.loads(await reader.readexactly(n))
            writer.close()
            return reply

        assert asyncio.run(ask())["msg"]["network"]["hostname"] == f"WhatsMiner-{name}"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, err
    assert "Traceback" not in err
    # the written config is one minertop accepts, listing the same rigs
    from tui.config import parse_config

    cfg = parse_config(conf.read_text(encoding="utf-8"))
    assert [(r.name, r.kind, f"{r.host}:{r.port}") for r in cfg.rigs] == [
        (r[0], r[1], r[2]) for r in rigs
    ]
