"""The Whatsminer API v3 client (tui.sources.whatsminer) against fake rigs on 127.0.0.1.

Every fake rig is a real TCP server (``asyncio.start_server`` on port 0) speaking the v3
framing: a 4-byte little-endian length, then UTF-8 JSON.  Nothing connects anywhere else.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tui.model import Hashboard
from tui.sources.cgminer import RigError
from tui.sources.whatsminer import (
    DEFAULT_PORT,
    INFO_EVERY,
    MAX_MESSAGE,
    PROTOCOL,
    V3Profile,
    encode_message,
    identify_v3,
    model_from_type,
    parse_v3,
    read_message,
    read_whatsminer_v3,
)

# --------------------------------------------------------------------------- replies
# Shapes as the firmware sends them (Whatsminer API v3 documentation; pyasic's BTMinerV3).

DEVICE: dict[str, Any] = {
    "network": {
        "ip": "192.168.2.98",
        "proto": "dhcp",
        "netmask": "255.255.255.0",
        "mac": "CA:01:14:00:04:EB",
        "gateway": "192.168.2.1",
        "hostname": "WhatsMiner",
    },
    "miner": {
        "working": "true",
        "type": "M60S_VK30",
        "board-num": "3",
        "miner-sn": "xxxx",
        "power-limit-set": "3600",
    },
    "system": {"api": "3.0.0", "platform": "H616", "fwversion": "20250214.16.REL"},
    "power": {"type": "P221C", "pin": 3264, "fanspeed": 6112},
    "salt": "px5hoXa9",
}

SUMMARY: dict[str, Any] = {
    "summary": {
        "elapsed": 1074,
        "bootup-time": 1175,
        "freq-avg": 788,
        "factory-hash": 186.0,
        "hash-average": 181.5,
        "hash-1min": 182.0,
        "hash-15min": 181.9,
        "hash-realtime": 183.25,
        "power-rate": 18.9,
        "power-5min": 3440.6,
        "power-realtime": 3451,
        "environment-temperature": 24.8,
        "board-temperature": [60.5, 61.0, 62.75],
        "chip-temp-min": 70.2,
        "chip-temp-avg": 75.9,
        "chip-temp-max": 82.5,
        "power-limit": 3600,
        "up-freq-finish": 1,
        "fan-speed-in": 4980,
        "fan-speed-out": 5070,
    }
}

EDEVS: dict[str, Any] = {
    "edevs": [
        {
            "id": 0,
            "slot": 0,
            "hash-average": 61.1,
            "factory-hash": 62.0,
            "freq": 600,
            "effective-chips": 156,
            "chip-temp-min": 70.2,
            "chip-temp-avg": 75.0,
            "chip-temp-max": 80.1,
        },
        {
            "id": 1,
            "slot": 1,
            "hash-average": 60.4,
            "factory-hash": 62.0,
            "freq": 600,
            "effective-chips": 156,
            "chip-temp-min": 71.0,
            "chip-temp-avg": 76.0,
            "chip-temp-max": 82.5,
        },
        {
            "id": 2,
            "slot": 2,
            "hash-average": 0,
            "factory-hash": 62.0,
            "freq": 0,
            "effective-chips": 0,
            "chip-temp-min": 0,
            "chip-temp-avg": 0,
            "chip-temp-max": 0,
        },
    ]
}

POOLS: dict[str, Any] = {
    "pools": [
        {
            "id": 1,
            "url": "stratum+tcp://backup.example:3333",
            "status": "alive",
            "account": "acct.w1",
            "stratum-active": False,
            "reject-rate": 0.0,
            "last-share-time": 0,
            "accepted": 30,
        },
        {
            "id": 2,
            "url": "stratum+tcp://main.example:3333",
            "status": "alive",
            "account": "acct.w1",
            "stratum-active": True,
            "reject-rate": 0.01,
            "last-share-time": 1769000000,
            "accepted": 1200,
        },
    ]
}

READS = {"get.device.info", "get.miner.status"}
PARAMS = {None, "summary", "edevs", "pools"}


def ok(cmd: str, msg: Any) -> dict[str, Any]:
    return {"code": 0, "when": 1769000000, "msg": msg, "desc": cmd}


def error(cmd: str, text: str, code: int = -2) -> dict[str, Any]:
    return {"code": code, "when": 1769000000, "msg": text, "desc": cmd}


def frame(body: bytes) -> bytes:
    return struct.pack("<I", len(body)) + body


# --------------------------------------------------------------------------- fake rig


@dataclass
class Act:
    """What the fake rig does with one request."""

    data: bytes = b""  #: bytes to write (already framed, or deliberately broken)
    chunk: int | None = None  #: write this many bytes at a time (draining in between)
    close: bool = False  #: close the connection after writing


def standard(req: dict[str, Any]) -> Act | dict[str, Any]:
    cmd, param = req.get("cmd"), req.get("param")
    if cmd == "get.device.info":
        return ok(cmd, DEVICE)
    if cmd == "get.miner.status":
        section = {"summary": SUMMARY, "edevs": EDEVS, "pools": POOLS}.get(str(param))
        if section is not None:
            return ok(cmd, section)
    return error(str(cmd), "invalid command")


Handler = Callable[[dict[str, Any]], "Act | dict[str, Any]"]


class LocalServer:
    """A TCP server on 127.0.0.1 (port 0) that, on exit, drops and awaits every connection
    it handled, so no socket outlives the test."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self.ended = asyncio.Event()  #: a connection ended (client closed or aborted it)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Any:
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for w in list(self._writers):
            w.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            await self.serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.ended.set()
            writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class FakeV3Rig(LocalServer):
    """A Whatsminer API v3: answers requests one after the other, records them."""

    def __init__(self, handler: Handler = standard) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[dict[str, Any]] = []

    @property
    def commands(self) -> list[tuple[Any, Any]]:
        return [(r.get("cmd"), r.get("param")) for r in self.requests]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(4)
            body = await reader.readexactly(struct.unpack("<I", header)[0])
            req = json.loads(body)
            self.requests.append(req)
            act = self.handler(req)
            if isinstance(act, dict):
                act = Act(encode_message(act))
            step = act.chunk or len(act.data) or 1
            for i in range(0, len(act.data), step):
                writer.write(act.data[i : i + step])
                await writer.drain()
            if act.close:
                return


class CgminerApi(LocalServer):
    """A cgminer-style API: reads a request, answers raw JSON + NUL (no length prefix)."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b'{"STATUS":[{"STATUS":"E","Msg":"Invalid command"}],"id":1}\x00')
        await writer.drain()
        await reader.read()  # keep the line open until the client drops it


async def read(rig: FakeV3Rig, **kw: Any) -> Any:
    kw.setdefault("timeout", 2.0)
    return await read_whatsminer_v3("127.0.0.1", rig.port, rig_id="wm1", clock=lambda: 42.0, **kw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def only_reads(rig: FakeV3Rig) -> None:
    """minertop is read-only: nothing but the three reads, no token, no login."""
    assert rig.requests
    for req in rig.requests:
        assert set(req) <= {"cmd", "param"}, req
        assert req["cmd"] in READS, req
        assert req.get("param") in PARAMS, req
        assert not str(req["cmd"]).startswith("set.")


# --------------------------------------------------------------------------- full reads


async def test_full_read_maps_every_field() -> None:
    async with FakeV3Rig() as rig:
        rd = await read(rig)
    assert rd.ok and rd.error is None and rd.failure is None
    assert (rd.rig_id, rd.host, rd.port, rd.time) == ("wm1", "127.0.0.1", rig.port, 42.0)
    assert rd.protocol == PROTOCOL == "whatsminer-v3"
    assert rd.firmware == "whatsminer"
    assert rd.model == "M60S"
    assert rd.firmware_version == "20250214.16.REL"
    assert rd.hostname == "WhatsMiner"
    assert rd.mac == "CA:01:14:00:04:EB"
    assert rd.hashrate_ths == 183.25
    assert rd.hashrate_avg_ths == 181.5
    assert rd.nominal_ths == 186.0
    assert rd.power_w == 3451
    assert rd.temps_c == (60.5, 61.0, 62.75, 82.5)  # board temperatures, then the chip max
    assert rd.fans_rpm == (4980, 5070)
    assert rd.uptime_s == 1074
    assert rd.pool == "stratum+tcp://main.example:3333"  # the stratum-active one
    assert rd.accepted == 1230  # summed over the pools
    assert rd.boards == (
        Hashboard(0, 61.1, 156, None, 60.5, 80.1, 62.0),
        Hashboard(1, 60.4, 156, None, 61.0, 82.5, 62.0),
        Hashboard(2, 0.0, 0, None, 62.75, None, 62.0),
    )
    assert rd.boards_down == 1 and rd.boards[2].problem == "no chips found"


async def test_requests_are_the_three_reads_on_one_connection() -> None:
    async with FakeV3Rig() as rig:
        await read(rig)
    assert rig.connections == 1
    assert rig.commands == [
        ("get.device.info", None),
        ("get.miner.status", "summary"),
        ("get.miner.status", "edevs"),
        ("get.miner.status", "pools"),
    ]
    only_reads(rig)


async def test_device_info_asked_once_then_cached_and_refreshed() -> None:
    profile = V3Profile()
    async with FakeV3Rig() as rig:
        first = await read(rig, profile=profile)
        second = await read(rig, profile=profile)
        third = await read(rig, profile=profile)
        infos = [c for c, _ in rig.commands].count("get.device.info")
        assert infos == 1
        assert rig.connections == 3
        assert profile.model == "M60S" and profile.mac == "CA:01:14:00:04:EB"
        assert profile.firmware_version == "20250214.16.REL"
        assert profile.hostname == "WhatsMiner"
        for rd in (first, second, third):  # the cached facts are in every reading
            assert (rd.model, rd.hostname, rd.mac) == ("M60S", "WhatsMiner", "CA:01:14:00:04:EB")
            assert rd.firmware_version == "20250214.16.REL"
        profile.polls_since_info = INFO_EVERY - 1  # the next poll is the INFO_EVERY-th
        await read(rig, profile=profile)
        assert [c for c, _ in rig.commands].count("get.device.info") == 2
        assert profile.polls_since_info == 0
        only_reads(rig)


async def test_reply_split_byte_by_byte() -> None:
    def handler(req: dict[str, Any]) -> Act | dict[str, Any]:
        reply = standard(req)
        assert isinstance(reply, dict)
        return Act(encode_message(reply), chunk=1)

    async with FakeV3Rig(handler) as rig:
        rd = await read(rig)
    assert rd.model == "M60S" and rd.hashrate_ths == 183.25 and len(rd.boards) == 3


async def test_model_keeps_plus_signs() -> None:
    device = {**DEVICE, "miner": {"type": "M30S++_VH70"}}

    def handler(req: dict[str, Any]) -> Act | dict[str, Any]:
        if req["cmd"] == "get.device.info":
            return ok("get.device.info", device)
        return standard(req)

    async with FakeV3Rig(handler) as rig:
        rd = await read(rig)
    assert rd.model == "M30S++"


# --------------------------------------------------------------------------- broken replies


def breaking(summary_act: Act) -> Handler:
    """The standard rig, except that the summary request gets ``summary_act``."""

    def handler(req: dict[str, Any]) -> Act | dict[str, Any]:
        if req.get("param") == "summary":
            return summary_act
        return standard(req)

    return handler


@pytest.mark.parametrize(
    ("act", "message"),
    [
        (Act(struct.pack("<I", 100) + b'{"code":0,', close=True), "bad reply: truncated reply"),
        (Act(b"\x05\x00", close=True), "bad reply: truncated reply"),
        (Act(struct.pack("<I", 0)), "bad reply: empty message"),
        (Act(frame(b"\xff\xfe{nope]")), "bad reply: not JSON"),
        (Act(frame(b"[1, 2, 3]")), "bad reply: not a JSON object"),
        (Act(frame(b'{"code":0,"msg":"ok"}')), "bad reply: no msg object in the reply"),
        (Act(frame(b'{"hello":"world"}')), "bad reply: not a Whatsminer v3 reply (no code)"),
        (Act(close=True), "connection closed by the rig"),
    ],
)
async def test_broken_summary_reply(act: Act, message: str) -> None:
    async with FakeV3Rig(breaking(act)) as rig:
        with pytest.raises(RigError) as info:
            await read(rig)
    assert str(info.value) == message
    assert info.value.kind == ("network" if message.startswith("connection") else "reply")


async def test_huge_length_prefix_fails_at_once() -> None:
    act = Act(struct.pack("<I", 0xFFFFFFFF))  # then nothing: the rig keeps the line open
    async with FakeV3Rig(breaking(act)) as rig:
        start = time.monotonic()
        with pytest.raises(RigError) as info:
            await read(rig, timeout=2.0)
        assert time.monotonic() - start < 0.5  # did not wait for 4 GiB (nor the deadline)
    assert str(info.value) == "bad reply: message of 4294967295 bytes exceeds 1 MiB"
    assert info.value.kind == "reply"


async def test_error_code_on_summary_is_a_status_error() -> None:
    act = Act(encode_message(error("get.miner.status", "Invalid command")))
    async with FakeV3Rig(breaking(act)) as rig:
        with pytest.raises(RigError) as info:
            await read(rig)
    assert str(info.value) == "rig reports error: Invalid command"
    assert info.value.kind == "status" and not info.value.offline


async def test_error_code_on_edevs_and_pools_is_ignored() -> None:
    def handler(req: dict[str, Any]) -> Act | dict[str, Any]:
        if req.get("param") in ("edevs", "pools"):
            return error("get.miner.status", "no permission", code=-4)
        return standard(req)

    async with FakeV3Rig(handler) as rig:
        rd = await read(rig)
    assert rd.ok and rd.hashrate_ths == 183.25
    assert rd.boards == () and rd.pool is None and rd.accepted is None
    assert len(rig.requests) == 4  # pools still asked after the edevs error


async def test_garbage_on_edevs_keeps_the_summary_and_stops_asking() -> None:
    def handler(req: dict[str, Any]) -> Act | dict[str, Any]:
        if req.get("param") == "edevs":
            return Act(frame(b"garbage"))
        return standard(req)

    async with FakeV3Rig(handler) as rig:
        rd = await read(rig)
    assert rd.ok and rd.boards == () and rd.pool is None
    assert rig.commands[-1] == ("get.miner.status", "edevs")  # the stream is out of step


async def test_error_code_on_device_info_is_ignored() -> None:
    def handler(req: dict[str, Any]) -> Act | dict[str, Any]:
        if req["cmd"] == "get.device.info":
            return error("get.device.info", "no permission", code=-4)
        return standard(req)

    async with FakeV3Rig(handler) as rig:
        rd = await read(rig)
    assert rd.ok and rd.model is None and rd.hashrate_ths == 183.25


# --------------------------------------------------------------------------- network failures


async def test_stall_times_out_and_the_socket_is_closed() -> None:
    async with FakeV3Rig(lambda req: Act()) as rig:  # reads requests, never answers
        start = time.monotonic()
        with pytest.raises(RigError) as info:
            await read(rig, timeout=0.2)
        elapsed = time.monotonic() - start
        await asyncio.wait_for(rig.ended.wait(), 1.0)  # the rig sees the connection go
    assert 0.15 <= elapsed < 1.0
    assert str(info.value) == "timed out after 0.2 s"
    assert info.value.kind == "timeout" and info.value.offline


async def test_connection_refused() -> None:
    with pytest.raises(RigError) as info:
        await read_whatsminer_v3("127.0.0.1", closed_port(), timeout=1.0)
    assert info.value.kind == "refused"
    assert str(info.value) == "connection refused"


# --------------------------------------------------------------------------- identify


async def test_identify_v3_rig() -> None:
    async with FakeV3Rig() as rig:
        assert await identify_v3("127.0.0.1", rig.port) == ("M60S", "whatsminer")
    assert rig.commands == [("get.device.info", None)]
    only_reads(rig)


async def test_identify_v3_rig_answering_an_error_code() -> None:
    async with FakeV3Rig(lambda req: error(req["cmd"], "no permission", code=-4)) as rig:
        assert await identify_v3("127.0.0.1", rig.port) == (None, "whatsminer")


async def test_identify_cgminer_api_is_not_v3() -> None:
    async with CgminerApi() as api:
        start = time.monotonic()
        assert await identify_v3("127.0.0.1", api.port, timeout=2.0) is None
        assert time.monotonic() - start < 0.5  # the first bytes read as a length over 1 MiB


async def test_identify_garbage_and_closed_port() -> None:
    async with FakeV3Rig(lambda req: Act(frame(b"not json"))) as rig:
        assert await identify_v3("127.0.0.1", rig.port) is None
    assert await identify_v3("127.0.0.1", closed_port(), timeout=0.5) is None


async def test_identify_silent_port_times_out() -> None:
    async with FakeV3Rig(lambda req: Act()) as rig:
        start = time.monotonic()
        assert await identify_v3("127.0.0.1", rig.port, timeout=0.2) is None
        assert time.monotonic() - start < 1.0


# --------------------------------------------------------------------------- framing units


async def test_encode_message_frames_compact_json() -> None:
    raw = encode_message({"cmd": "get.miner.status", "param": "summary"})
    body = b'{"cmd":"get.miner.status","param":"summary"}'
    assert raw == struct.pack("<I", len(body)) + body
    assert DEFAULT_PORT == 4433 and MAX_MESSAGE == 1024 * 1024


def stream(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_read_message_units() -> None:
    assert await read_message(stream(encode_message({"a": [1, 2]}))) == {"a": [1, 2]}
    with pytest.raises(RigError, match="^connection closed by the rig$") as info:
        await read_message(stream(b""))
    assert info.value.kind == "network"
    with pytest.raises(RigError, match="truncated reply"):
        await read_message(stream(b"\x10\x00\x00"))
    # over the limit: fails without waiting for the body (no EOF fed)
    with pytest.raises(RigError, match="message of 17 bytes exceeds 16 bytes"):
        await asyncio.wait_for(
            read_message(stream(b"\x11\x00\x00\x00", eof=False), max_bytes=16), 1
        )
    with pytest.raises(RigError, match="exceeds 1 MiB"):
        await asyncio.wait_for(
            read_message(stream(struct.pack("<I", MAX_MESSAGE + 1), eof=False)), 1
        )
    # exactly the limit is fine
    body = b'{"x":"' + b"y" * (MAX_MESSAGE - 8) + b'"}'
    assert len(body) == MAX_MESSAGE
    assert (await read_message(stream(frame(body))))["x"][:3] == "yyy"
    # nested too deep for the parser: not JSON, no crash
    with pytest.raises(RigError, match="not JSON"):
        await read_message(stream(frame(b"[" * 100_000)))
    # invalid UTF-8 inside a string is replaced, not fatal
    assert await read_message(stream(frame(b'{"t":"\xff"}'))) == {"t": "\ufffd"}


async def test_several_messages_on_one_stream() -> None:
    reader = stream(encode_message({"n": 1}) + encode_message({"n": 2}))
    assert await read_message(reader) == {"n": 1}
    assert await read_message(reader) == {"n": 2}
    with pytest.raises(RigError, match="connection closed"):
        await read_message(reader)


# --------------------------------------------------------------------------- parse_v3 units


def parse(**kw: Any) -> Any:
    args: dict[str, Any] = {
        "device": None,
        "summary": SUMMARY,
        "edevs": None,
        "pools": None,
        "rig_id": "r",
        "host": "h",
        "port": DEFAULT_PORT,
        "time": 1.0,
    }
    args.update(kw)
    return parse_v3(**args)


def test_model_from_type() -> None:
    assert model_from_type("M60S_VK30") == "M60S"
    assert model_from_type("M30S++_VH70") == "M30S++"
    assert model_from_type(" M50 ") == "M50"
    assert model_from_type("_VK30") is None
    assert model_from_type("") is None
    assert model_from_type(None) is None
    assert model_from_type(123) is None


def test_parse_numbers_as_strings_null_nan_negative() -> None:
    summary = {
        "summary": {
            "hash-realtime": "101.5",
            "hash-average": "NaN",
            "factory-hash": -0.003,  # the firmware's "unknown"
            "power-realtime": None,
            "power-5min": "Infinity",
            "elapsed": "-5",
            "board-temperature": ["60.5", None, "nan", -1],
            "chip-temp-max": float("nan"),
            "fan-speed-in": "4980",
            "fan-speed-out": -1,
        }
    }
    rd = parse(summary=summary)
    assert rd.hashrate_ths == 101.5
    assert rd.hashrate_avg_ths is None
    assert rd.nominal_ths is None
    assert rd.power_w is None
    assert rd.uptime_s is None
    assert rd.temps_c == (60.5,)
    assert rd.fans_rpm == (4980,)
    assert rd.accepted is None and rd.pool is None and rd.boards == ()
    assert all(math.isfinite(t) for t in rd.temps_c)


def test_parse_no_hashrate_is_a_reply_error() -> None:
    for summary in ({"summary": {"hash-realtime": None}}, {"summary": "x"}, {}, {"summary": {}}):
        with pytest.raises(RigError) as info:
            parse(summary=summary)
        assert str(info.value) == "bad reply: no hashrate in summary"
        assert info.value.kind == "reply"
    # the average alone is enough
    assert parse(summary={"summary": {"hash-average": 90}}).hashrate_ths == 90.0


def test_parse_is_lenient_about_missing_and_odd_fields() -> None:
    odd_device: dict[str, Any] = {"miner": "M60S", "network": None, "system": {"fwversion": 5}}
    rd = parse(device=odd_device, edevs={"edevs": [{"slot": "2"}, 7, None]}, pools={"pools": 3})
    assert rd.model is None and rd.hostname is None and rd.firmware_version is None
    assert rd.boards == (Hashboard(index=2),)
    # edevs without slot/id: numbered by position; board temperature count mismatch: none
    rd = parse(edevs={"edevs": [{"hash-average": 1}, {"hash-average": 2}]})
    assert [b.index for b in rd.boards] == [0, 1]
    assert [b.temp_board_c for b in rd.boards] == [None, None]


def test_parse_profile_fills_what_device_info_did_not_give() -> None:
    profile = V3Profile(model="M60S", firmware_version="fw", hostname="h1", mac="AA")
    rd = parse(profile=profile)
    assert (rd.model, rd.firmware_version, rd.hostname, rd.mac) == ("M60S", "fw", "h1", "AA")
    rd = parse(device=DEVICE, profile=V3Profile(model="OLD"))
    assert rd.model == "M60S"  # fresh device info wins


def test_parse_pools_without_active_flag_and_accepted() -> None:
    pools = {
        "pools": [
            {"id": 1, "url": "stratum+tcp://dead.example:3333", "status": "dead"},
            {"id": 2, "url": "stratum+tcp://alive.example:3333", "status": "alive"},
        ]
    }
    rd = parse(pools=pools)
    assert rd.pool == "stratum+tcp://alive.example:3333"
    assert rd.accepted is None  # the v3 pools reply has no accepted counter
    # a counter in the summary itself wins over the pools
    summary = {"summary": {**SUMMARY["summary"], "accepted": "77"}}
    assert parse(summary=summary, pools=POOLS).accepted == 77


def test_parse_keeps_untrusted_text_verbatim() -> None:
    evil = "[red]x[/red]\x1b[2J"
    device = {"miner": {"type": f"{evil}_VK30"}, "network": {"hostname": evil}}
    pools = {"pools": [{"url": evil, "stratum-active": "true"}]}
    rd = parse(device=device, pools=pools)
    assert rd.model == evil and rd.hostname == evil and rd.pool == evil
