"""Finding what a rig speaks: ``auto`` rigs in the poller, re-identification after a
firmware change, and the network scan (tui.sources.rigs, tui.sources.discovery,
tui.sources.fleet).

Every fake rig is a real TCP server on a loopback address (127.0.0.0/8 is all loopback on
Linux, so each fake host gets its own address: 127.0.5.x, 127.0.6.x, 127.0.7.x).  A fake
speaks one protocol (cgminer API, Whatsminer API v3, AxeOS HTTP), records every request
it gets in whatever protocol the client spoke, and counts its connections, including the
"silent" ones that carry no byte (the poller's connect probes).  Nothing connects outside
127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tui.config import PollConfig, RigConfig, ScanRange, SiteConfig
from tui.sources.discovery import Found, scan
from tui.sources.fleet import RigSource
from tui.sources.rigs import RigFleet, RigPoller, RigTarget

PROTOCOLS = ("cgminer", "whatsminer-v3", "bitaxe")

# ----------------------------------------------------------------------------- replies

# cgminer API (bmminer): raw JSON + NUL, one request per connection
ANT_SUMMARY = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":11,"Msg":"Summary",'
    b'"Description":"cgminer 4.11.1"}],"SUMMARY":[{"Elapsed":86400,"GHS 5s":"104213.55",'
    b'"GHS av":103987.10,"GHS 30m":104001.22,"Found Blocks":0,"Accepted":10800,'
    b'"Rejected":12,"Hardware Errors":7}],"id":1}\x00'
)
ANT_STATS = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":70,"Msg":"CGMiner stats",'
    b'"Description":"cgminer 4.11.1"}],"STATS":[{"BMMiner":"1.0.0","Miner":"uart_trans.1.3",'
    b'"CompileTime":"Thu Aug 8 15:43:34 CST 2024","Type":"Antminer S19j Pro"},'
    b'{"STATS":0,"ID":"BC50","Elapsed":86400,"GHS 5s":"104213.55","GHS av":103987.10,'
    b'"miner_count":3,"fan_num":2,"fan1":3480,"fan2":3540,"temp_num":3,"temp1":54,'
    b'"temp2":56,"temp3":55,"temp2_1":68,"temp2_2":71,"temp2_3":70,'
    b'"chain_rate1":"34700.12","chain_rate2":"34811.40","chain_rate3":"34702.03"}],'
    b'"id":1}\x00'
)
ANT_POOLS = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":7,"Msg":"1 Pool(s)",'
    b'"Description":"cgminer 4.11.1"}],"POOLS":[{"POOL":0,'
    b'"URL":"stratum+tcp://btc.f2pool.com:1314","Status":"Alive","Priority":0,'
    b'"Stratum Active":true,"User":"site.a01"}],"id":1}\x00'
)
ANT_VERSION = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":22,"Msg":"BMMiner versions",'
    b'"Description":"cgminer 4.11.1"}],"VERSION":[{"BMMiner":"1.0.0","API":"3.1",'
    b'"Miner":"uart_trans.1.3","CompileTime":"Thu Aug 8 15:43:34 CST 2024",'
    b'"Type":"Antminer S19j Pro"}],"id":1}\x00'
)
CG_INVALID = (
    b'{"STATUS":[{"STATUS":"E","When":1769000000,"Code":14,"Msg":"Invalid command",'
    b'"Description":"cgminer 4.11.1"}],"id":1}\x00'
)
CG_REPLIES = {"summary": ANT_SUMMARY, "stats": ANT_STATS, "pools": ANT_POOLS,
              "version": ANT_VERSION}
CG_MODEL = "Antminer S19j Pro"

# Whatsminer API v3: 4-byte little-endian length + JSON, both ways
V3_SUMMARY: dict[str, Any] = {
    "summary": {
        "elapsed": 1074,
        "factory-hash": 186.0,
        "hash-average": 181.5,
        "hash-realtime": 183.25,
        "power-realtime": 3451,
        "board-temperature": [60.5, 61.0, 62.75],
        "chip-temp-max": 82.5,
        "fan-speed-in": 4980,
        "fan-speed-out": 5070,
    }
}
V3_EDEVS: dict[str, Any] = {
    "edevs": [{"id": i, "slot": i, "hash-average": 61.0, "factory-hash": 62.0,
               "effective-chips": 156, "chip-temp-max": 80.0} for i in range(3)]
}
V3_POOLS: dict[str, Any] = {
    "pools": [{"id": 1, "url": "stratum+tcp://main.example:3333", "status": "alive",
               "stratum-active": True, "accepted": 1200}]
}
V3_MODEL = "M60S"

# AxeOS (ESP-Miner): GET /api/system/info
BITAXE_INFO: dict[str, Any] = {
    "power": 17.78,
    "temp": 57.25,
    "hashRate": 1104.52,
    "hostname": "bitaxe-garage",
    "uptimeSeconds": 1772842,
    "ASICModel": "BM1370",
    "stratumURL": "public-pool.io",
    "stratumPort": 21496,
    "version": "v2.4.2",
    "fanrpm": 4150,
}
BITAXE_MODEL = "Bitaxe Gamma"

GARBAGE = b"\x15\x03\x01\x00\x02\x02\x50 not what you asked for"

#: what each protocol's fake names itself by default
MODELS = {"cgminer": CG_MODEL, "whatsminer-v3": V3_MODEL, "bitaxe": BITAXE_MODEL}

#: the read commands the poller and the scan may send, per protocol
CG_READS = {"summary", "stats", "pools", "devdetails", "version", "edevs", "devs",
            "tunerstatus", "temps", "fans", "power"}
V3_READS = {("get.device.info", None), ("get.miner.status", "summary"),
            ("get.miner.status", "edevs"), ("get.miner.status", "pools")}


def v3_frame(obj: Any) -> bytes:
    body = json.dumps(obj).encode()
    return struct.pack("<I", len(body)) + body


def cg_section(command: str, model: str) -> bytes:
    body = CG_REPLIES.get(command, CG_INVALID).rstrip(b"\x00")
    return body.replace(CG_MODEL.encode(), model.encode())


def cg_reply(command: Any, model: str) -> bytes:
    """A cgminer reply: one section, or the multi-command shape ``{"cmd":[{...}],...}``."""
    if not isinstance(command, str) or not command:
        return CG_INVALID
    cmds = command.split("+")
    if len(cmds) == 1:
        return cg_section(cmds[0], model) + b"\x00"
    parts = [b'"' + c.encode() + b'":[' + cg_section(c, model) + b"]" for c in cmds]
    return b"{" + b",".join(parts) + b',"id":1}\x00'


def v3_reply(req: Any, model: str) -> bytes:
    cmd = req.get("cmd") if isinstance(req, dict) else None
    param = req.get("param") if isinstance(req, dict) else None
    msg: Any = None
    if cmd == "get.device.info":
        msg = {"miner": {"type": f"{model}_VK30"}, "system": {"fwversion": "20250214.16.REL"},
               "network": {"hostname": "WhatsMiner", "mac": "CA:01:14:00:04:EB"}}
    elif cmd == "get.miner.status":
        msg = {"summary": V3_SUMMARY, "edevs": V3_EDEVS, "pools": V3_POOLS}.get(str(param))
    if msg is None:
        return v3_frame({"code": -2, "when": 1769000000, "msg": "invalid command",
                         "desc": str(cmd)})
    return v3_frame({"code": 0, "when": 1769000000, "msg": msg, "desc": cmd})


def http_reply(status: int, body: bytes, ctype: str = "application/json") -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


# ----------------------------------------------------------------------------- fake rigs


@dataclass(frozen=True)
class Seen:
    """One request a fake got, in the protocol the client spoke."""

    speaks: str  #: "cgminer", "whatsminer-v3", "http" or "unknown"
    request: Any  #: the JSON object; ("GET", "/path") for http; the raw bytes if unknown


class Busy:
    """Requests being served at once across fakes: from a request's arrival (a connection's
    accept, for its first) to the moment its answer starts being written.  Such a window
    lies inside the client's own (it only gets the answer after the window closes)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        self.now -= 1


_HTTP_START = re.compile(rb"[A-Z]{3,7}( |$)")


class _Conn:
    def __init__(self, rig: FakeRig, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.rig = rig
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.busy = False
        self.requests = 0

    def set_busy(self, busy: bool) -> None:
        if busy != self.busy:
            self.busy = busy
            if busy:
                self.rig.busy.enter()
            else:
                self.rig.busy.leave()

    async def more(self) -> bool:
        chunk = await self.reader.read(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    async def fill(self, n: int) -> bool:
        while len(self.buf) < n:
            if not await self.more():
                return False
        return True

    def take(self, n: int) -> bytes:
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    async def next_request(self) -> Seen | None:
        """The next request, whatever protocol it is in; None: closed without one."""
        if not self.buf and not await self.more():
            return None
        self.set_busy(True)
        if not await self.fill(4):
            return Seen("unknown", self.take(len(self.buf)))
        if self.buf[:1] == b"{":  # cgminer: bare JSON, then the client waits
            while True:
                try:
                    obj = json.loads(self.buf.decode("utf-8", "replace"))
                except ValueError:
                    if not await self.more():
                        return Seen("unknown", self.take(len(self.buf)))
                    continue
                self.buf.clear()
                return Seen("cgminer", obj)
        if _HTTP_START.match(bytes(self.buf[:8])):
            while b"\r\n\r\n" not in self.buf:
                if not await self.more():
                    return Seen("unknown", self.take(len(self.buf)))
            head = self.take(self.buf.index(b"\r\n\r\n") + 4)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            return Seen("http", (method, path))
        (length,) = struct.unpack("<I", bytes(self.buf[:4]))
        if length > 1 << 20 or not await self.fill(4 + length):
            return Seen("unknown", self.take(len(self.buf)))
        body = self.take(4 + length)[4:]
        try:
            return Seen("whatsminer-v3", json.loads(body))
        except ValueError:
            return Seen("unknown", body)


class FakeRig:
    """One rig API on ``host:port`` speaking ``proto``.

    ``mode``: "ok" answers as the firmware would; "hang" takes requests and never answers;
    "garbage" answers bytes no protocol can read.  What it does with a request in another
    protocol: the cgminer API answers "Invalid command", the v3 API drops the connection,
    the HTTP server answers 400.
    """

    def __init__(self, proto: str, host: str, port: int = 0, *, model: str | None = None,
                 mode: str = "ok", delay: float = 0.0, busy: Busy | None = None,
                 serial: bool = False) -> None:
        assert proto in PROTOCOLS
        self.proto = proto
        self.host = host
        self.port = port
        self.model = model or MODELS[proto]
        self.mode = mode
        self.delay = delay
        self.busy = busy if busy is not None else Busy()
        #: one connection at a time, in the order accepted (bmminer's API thread)
        self.serial = asyncio.Lock() if serial else None
        self.seen: list[Seen] = []
        self.connections = 0  #: connections accepted
        self.silent = 0  #: connections that ended without a byte (connect probes)
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def __repr__(self) -> str:
        return f"FakeRig({self.proto}, {self.host}:{self.port})"

    async def start(self) -> FakeRig:
        self.server = await asyncio.start_server(self._on, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening (the port refuses from now on) and drop every connection."""
        if self.server is not None:
            self.server.close()
        for w in list(self._writers):
            w.transport.abort()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            await asyncio.wait_for(self.server.wait_closed(), 2)
            self.server = None

    def mark(self) -> tuple[int, int, int]:
        """(connections, silent connections, requests) so far: see :meth:`since`."""
        return self.connections, self.silent, len(self.seen)

    def since(self, mark: tuple[int, int, int]) -> tuple[int, int, list[Seen]]:
        """Connections, silent connections and requests since ``mark``."""
        return self.connections - mark[0], self.silent - mark[1], self.seen[mark[2]:]

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        conn = _Conn(self, reader, writer)
        try:
            if self.serial is not None:
                async with self.serial:
                    await self._serve(conn)
            else:
                await self._serve(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if conn.requests == 0 and not conn.buf:
                self.silent += 1
            conn.set_busy(False)
            self._writers.discard(writer)
            writer.close()
            self.tasks.discard(task)

    async def _serve(self, conn: _Conn) -> None:
        while True:
            seen = await conn.next_request()
            if seen is None:
                return
            conn.requests += 1
            self.seen.append(seen)
            if self.mode == "hang":
                while await conn.more():  # until the client gives up
                    conn.buf.clear()
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            reply, keep = self._answer(seen)
            conn.set_busy(False)
            conn.writer.write(reply)
            await conn.writer.drain()
            if not keep:
                return

    def _answer(self, seen: Seen) -> tuple[bytes, bool]:
        """(bytes to send, keep the connection open for another request)."""
        if self.mode == "garbage":
            return GARBAGE, False
        if self.proto == "cgminer":
            if seen.speaks == "cgminer" and isinstance(seen.request, dict):
                return cg_reply(seen.request.get("command"), self.model), False
            return CG_INVALID, False
        if self.proto == "whatsminer-v3":
            if seen.speaks == "whatsminer-v3":
                return v3_reply(seen.request, self.model), True
            return b"", False
        if seen.speaks == "http":
            if seen.request == ("GET", "/api/system/info"):
                info = dict(BITAXE_INFO)
                if self.model != BITAXE_MODEL:
                    info["deviceModel"] = self.model
                return http_reply(200, json.dumps(info).encode()), False
            return http_reply(404, b"not found", "text/plain"), False
        return http_reply(400, b"bad request", "text/plain"), False


def _bindable(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` (as asyncio's would: SO_REUSEADDR,
    so connections of earlier tests in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def common_free_ports(hosts: Sequence[str], n: int) -> list[int]:
    """``n`` distinct ports that nothing uses on any of ``hosts`` (so they refuse until a
    fake listens there)."""
    ports: list[int] = []
    for _ in range(200):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        if port not in ports and all(_bindable(h, port) for h in hosts[1:]):
            ports.append(port)
            if len(ports) == n:
                return ports
    raise RuntimeError(f"no {n} ports free on all of {hosts}")


class Lab:
    """Fake hosts on loopback addresses, with one port per protocol for ``auto`` rigs."""

    def __init__(self) -> None:
        self.rigs: list[FakeRig] = []
        self.busy = Busy()
        self.hosts: list[str] = []
        self.ports: dict[str, int] = {}

    def network(self, prefix: str, count: int) -> list[str]:
        """Hosts ``prefix.1`` .. ``prefix.count`` and protocol ports free on all of them."""
        self.hosts = [f"{prefix}.{i}" for i in range(1, count + 1)]
        self.ports = dict(zip(PROTOCOLS, common_free_ports(self.hosts, 3), strict=True))
        return self.hosts

    async def serve(self, proto: str, host: str, port: int | None = None,
                    **kw: Any) -> FakeRig:
        """A fake speaking ``proto`` on ``host``, on the lab's port for it (or ``port``:
        0 = any free one)."""
        kw.setdefault("busy", self.busy)
        rig = FakeRig(proto, host, self.ports[proto] if port is None else port, **kw)
        await rig.start()
        self.rigs.append(rig)
        return rig

    async def settle(self) -> int:
        """Let the fakes see the end of every connection the client has dropped; the
        number of connections still open after a short wait (the client holds them)."""
        await asyncio.sleep(0.02)
        tasks = {t for r in self.rigs for t in r.tasks}
        if tasks:
            await asyncio.wait(tasks, timeout=0.2)
        return sum(1 for r in self.rigs for t in r.tasks if not t.done())

    async def aclose(self) -> None:
        for rig in self.rigs:
            await rig.stop()


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    made = Lab()
    try:
        yield made
    finally:
        await made.aclose()


def poller_for(lab: Lab, *targets: RigTarget, **kw: Any) -> RigPoller:
    kw.setdefault("timeout", 1.0)
    kw.setdefault("retries", 0)
    return RigPoller(targets, auto_ports=lab.ports, **kw)


async def poll(poller: RigPoller) -> Any:
    (reading,) = await poller.poll_all()
    return reading


#: what a poller sends, per protocol, on first contact and once it knows the rig
FIRST_READ = {
    "cgminer": [Seen("cgminer", {"command": "summary+stats+pools+devdetails+version"})],
    "whatsminer-v3": [
        Seen("whatsminer-v3", {"cmd": "get.device.info"}),
        Seen("whatsminer-v3", {"cmd": "get.miner.status", "param": "summary"}),
        Seen("whatsminer-v3", {"cmd": "get.miner.status", "param": "edevs"}),
        Seen("whatsminer-v3", {"cmd": "get.miner.status", "param": "pools"}),
    ],
    "bitaxe": [Seen("http", ("GET", "/api/system/info"))],
}
NEXT_READ = {
    "cgminer": [Seen("cgminer", {"command": "summary+stats+pools"})],
    "whatsminer-v3": FIRST_READ["whatsminer-v3"][1:],
    "bitaxe": FIRST_READ["bitaxe"],
}


# ----------------------------------------------------------------------------- 1. auto


@pytest.mark.parametrize("proto", PROTOCOLS)
async def test_auto_rig_is_read_with_the_protocol_that_answers(lab: Lab, proto: str) -> None:
    """Only one protocol's port takes connections (the others refuse): the rig is read
    with it, and the second poll reads it straight away (no connect probe: identifying
    always probes every port, this one included)."""
    (host,) = lab.network("127.0.5", 1)
    rig = await lab.serve(proto, host)
    port = lab.ports[proto]
    async with poller_for(lab, RigTarget("r1", host)) as poller:
        assert poller.protocol_of("r1") is None
        r = await poll(poller)
        await lab.settle()
        assert r.ok, r.error
        assert (r.rig_id, r.host, r.port, r.model) == ("r1", host, port, MODELS[proto])
        assert poller.protocol_of("r1") == (proto, port)
        # identified: one connect probe (no byte sent), then the read
        assert rig.since((0, 0, 0)) == (2, 1, FIRST_READ[proto])

        mark = rig.mark()
        r2 = await poll(poller)
        await lab.settle()
        assert r2.ok and r2.port == port and r2.model == MODELS[proto]
        assert poller.protocol_of("r1") == (proto, port)
        assert rig.since(mark) == (1, 0, NEXT_READ[proto])  # the read, nothing else


@pytest.mark.parametrize("proto", PROTOCOLS)
async def test_auto_reading_names_its_protocol(lab: Lab, proto: str) -> None:
    """``RigReading.protocol`` says how an ``auto`` rig was read."""
    (host,) = lab.network("127.0.5", 1)
    await lab.serve(proto, host)
    async with poller_for(lab, RigTarget("r1", host)) as poller:
        r = await poll(poller)
    assert r.ok, r.error
    assert r.protocol == proto


async def test_whatsminer_v3_figures_through_auto(lab: Lab) -> None:
    (host,) = lab.network("127.0.5", 1)
    await lab.serve("whatsminer-v3", host)
    async with poller_for(lab, RigTarget("wm", host)) as poller:
        r = await poll(poller)
    assert r.ok, r.error
    assert (r.model, r.firmware, r.firmware_version) == ("M60S", "whatsminer", "20250214.16.REL")
    assert (r.hostname, r.mac) == ("WhatsMiner", "CA:01:14:00:04:EB")
    assert (r.hashrate_ths, r.power_w, r.fans_rpm) == (183.25, 3451, (4980, 5070))
    assert len(r.boards) == 3 and r.pool == "stratum+tcp://main.example:3333"


# ----------------------------------------------------------------------------- 2. nothing


async def test_host_with_no_api_is_one_refused_reading(lab: Lab) -> None:
    (host,) = lab.network("127.0.5", 1)
    poller = poller_for(lab, RigTarget("dark", host), retries=1, clock=lambda: 500.0)
    t0 = time.monotonic()
    async with poller:
        readings = await poller.poll_all()
    assert time.monotonic() - t0 < 0.5  # refused ports cost nothing
    assert len(readings) == 1
    (r,) = readings
    assert not r.ok and r.failure == "refused" and r.offline
    assert r.error is not None and "\n" not in r.error
    assert "connection refused" in r.error
    for port in lab.ports.values():
        assert str(port) in r.error
    assert r.protocol is None and poller.protocol_of("dark") is None
    fleet = RigFleet(interval=10)
    fleet.record(r)
    assert fleet.status("dark", 500.0) == ("offline", r.error)


# ----------------------------------------------------------------------------- 3. upgrades


@pytest.mark.parametrize(
    ("old", "new", "how"),
    [
        ("cgminer", "whatsminer-v3", "stopped"),
        ("cgminer", "whatsminer-v3", "garbage"),
        ("whatsminer-v3", "cgminer", "stopped"),
        ("bitaxe", "whatsminer-v3", "stopped"),
        ("whatsminer-v3", "bitaxe", "garbage"),
    ],
)
async def test_firmware_upgrade_is_followed_without_a_failed_poll(
    lab: Lab, old: str, new: str, how: str
) -> None:
    """The remembered protocol stops answering (its port refuses, or it answers
    garbage) while another one answers: the very next poll reads the rig with the new
    one, and remembers it."""
    (host,) = lab.network("127.0.5", 1)
    before = await lab.serve(old, host)
    async with poller_for(lab, RigTarget("r", host), retries=1) as poller:
        r1 = await poll(poller)
        assert r1.ok and poller.protocol_of("r") == (old, lab.ports[old])

        if how == "stopped":
            await before.stop()
        else:
            before.mode = "garbage"
        after = await lab.serve(new, host)
        r2 = await poll(poller)
        assert r2.ok, r2.error
        assert (r2.port, r2.model) == (lab.ports[new], MODELS[new])
        assert poller.protocol_of("r") == (new, lab.ports[new])
        assert poller.last_cycle is not None and poller.last_cycle.retried == 0

        await lab.settle()
        mark = after.mark()
        r3 = await poll(poller)
        await lab.settle()
        assert r3.ok and r3.port == lab.ports[new]
        assert after.since(mark) == (1, 0, NEXT_READ[new])  # not identified again


@pytest.mark.parametrize("old", PROTOCOLS)
async def test_rig_gone_silent_keeps_its_protocol_and_says_why(lab: Lab, old: str) -> None:
    """The remembered protocol's port refuses and nothing else answers: the reading is
    that protocol's own error ("connection refused", not a list of ports), and the
    protocol is still remembered; when the rig comes back, it is read again."""
    (host,) = lab.network("127.0.5", 1)
    rig = await lab.serve(old, host)
    port = lab.ports[old]
    async with poller_for(lab, RigTarget("r", host), retries=1) as poller:
        assert (await poll(poller)).ok
        await rig.stop()
        for _ in range(2):
            r = await poll(poller)
            assert not r.ok
            assert (r.error, r.failure, r.offline) == ("connection refused", "refused", True)
            assert (r.protocol, r.port) == (old, port)
            assert poller.protocol_of("r") == (old, port)
        await lab.serve(old, host)
        back = await poll(poller)
        assert back.ok and back.port == port and poller.protocol_of("r") == (old, port)


async def test_rig_answering_garbage_alone_is_in_error_not_reidentified(lab: Lab) -> None:
    (host,) = lab.network("127.0.5", 1)
    rig = await lab.serve("cgminer", host)
    async with poller_for(lab, RigTarget("r", host)) as poller:
        assert (await poll(poller)).ok
        rig.mode = "garbage"
        r = await poll(poller)
    assert not r.ok and r.failure == "reply" and not r.offline
    assert r.error is not None and r.error.startswith("bad reply")
    assert poller.protocol_of("r") == ("cgminer", lab.ports["cgminer"])
    fleet = RigFleet(interval=10)
    fleet.record(r)
    assert fleet.status("r", r.time)[0] == "error"


# ----------------------------------------------------------------------------- 4. timeouts


@pytest.mark.parametrize(("proto", "other"),
                         [("cgminer", "whatsminer-v3"), ("whatsminer-v3", "bitaxe")])
async def test_remembered_protocol_timing_out_is_not_reidentified(
    lab: Lab, proto: str, other: str
) -> None:
    """A rig that takes the connection and never answers has not changed its firmware:
    the reading is a timeout after one deadline (no retry, no identification, the other
    API on the host is not asked), and the protocol stays remembered."""
    (host,) = lab.network("127.0.5", 1)
    rig = await lab.serve(proto, host)
    second = await lab.serve(other, host)
    timeout = 0.4
    async with poller_for(lab, RigTarget("r", host), timeout=timeout, retries=1) as poller:
        assert (await poll(poller)).ok
        assert poller.protocol_of("r") == (proto, lab.ports[proto])
        await lab.settle()
        mark = second.mark()
        rig.mode = "hang"
        t0 = time.monotonic()
        r = await poll(poller)
        elapsed = time.monotonic() - t0
        await lab.settle()
        assert not r.ok and r.failure == "timeout" and r.offline
        assert r.error == f"timed out after {timeout:g} s"
        assert (r.protocol, r.port) == (proto, lab.ports[proto])
        assert poller.protocol_of("r") == (proto, lab.ports[proto])
        assert timeout * 0.9 <= elapsed < timeout * 1.5, elapsed  # one deadline
        assert poller.last_cycle is not None
        assert (poller.last_cycle.timed_out, poller.last_cycle.retried) == (1, 0)
        assert second.since(mark) == (0, 0, [])

        rig.mode = "ok"
        assert (await poll(poller)).ok


# ----------------------------------------------------------------------------- 5. with a port


@pytest.mark.parametrize("proto", PROTOCOLS)
async def test_auto_with_a_port_finds_the_protocol_on_it(lab: Lab, proto: str) -> None:
    host = "127.0.5.5"
    rig = await lab.serve(proto, host, port=0)  # any free port
    timeout = 2.0
    async with poller_for(lab, RigTarget("x", host, rig.port), timeout=timeout) as poller:
        t0 = time.monotonic()
        r = await poll(poller)
        elapsed = time.monotonic() - t0
        assert r.ok, r.error
        assert (r.port, r.model, poller.protocol_of("x")) == (
            rig.port, MODELS[proto], (proto, rig.port))
        # the other protocols' questions were turned down at once: nobody waited for them
        assert elapsed < timeout / 4, elapsed
        await lab.settle()
        mark = rig.mark()
        assert (await poll(poller)).ok
        left_open = await lab.settle()
        assert rig.since(mark) == (1, 0, NEXT_READ[proto])  # no second sniffing
        # the questions of the protocols that lost were not left hanging on the rig's port
        assert left_open == 0, f"{left_open} connection(s) to the rig left open"


@pytest.mark.parametrize("with_port", [False, True], ids=["own-ports", "one-port"])
async def test_auto_finds_a_cgminer_api_that_serves_one_connection_at_a_time(
    lab: Lab, with_port: bool
) -> None:
    """cgminer's API is one thread: accept, a blocking recv, reply, close, next.  A
    connection opened and never written to holds it up for every client after it, so
    identifying must not leave one open."""
    (host,) = lab.network("127.0.5", 1)
    rig = await lab.serve("cgminer", host, port=0 if with_port else None, serial=True)
    target = RigTarget("s", host, rig.port) if with_port else RigTarget("s", host)
    async with poller_for(lab, target, timeout=0.6) as poller:
        r = await poll(poller)
        assert r.ok, r.error
        assert poller.protocol_of("s") == ("cgminer", rig.port)
        assert (await poll(poller)).ok


async def test_auto_with_a_port_on_a_hanging_rig_costs_one_deadline(lab: Lab) -> None:
    host = "127.0.5.5"
    rig = await lab.serve("cgminer", host, port=0, mode="hang")
    timeout = 0.5
    async with poller_for(lab, RigTarget("x", host, rig.port), timeout=timeout,
                          retries=1) as poller:
        t0 = time.monotonic()
        r = await poll(poller)
        elapsed = time.monotonic() - t0
    assert not r.ok and r.failure == "timeout"
    assert r.error == f"timed out after {timeout:g} s"
    assert r.port == rig.port and poller.protocol_of("x") is None
    assert elapsed < timeout * 1.5 + 0.3, elapsed  # identifying and reading share it
    assert rig.connections >= 1  # it was asked, and never answered


# ----------------------------------------------------------------------------- 6. forced


@pytest.mark.parametrize("forced", PROTOCOLS)
async def test_forced_kind_never_tries_another_protocol(lab: Lab, forced: str) -> None:
    (host,) = lab.network("127.0.5", 1)
    others = [await lab.serve(p, host) for p in PROTOCOLS if p != forced]
    port = lab.ports[forced]
    async with poller_for(lab, RigTarget("f", host, port, kind=forced), retries=1) as poller:
        for _ in range(2):
            r = await poll(poller)
            assert not r.ok
            assert (r.error, r.failure) == ("connection refused", "refused")
            assert (r.protocol, r.port) == (forced, port)
    await lab.settle()
    assert poller.protocol_of("f") is None
    for rig in others:
        assert rig.connections == 0, rig


#: the wire protocol of each kind, as the fakes record requests
WIRE = {"cgminer": "cgminer", "whatsminer-v3": "whatsminer-v3", "bitaxe": "http"}


@pytest.mark.parametrize(("forced", "actual"), [("cgminer", "whatsminer-v3"),
                                                ("whatsminer-v3", "cgminer"),
                                                ("bitaxe", "cgminer")])
async def test_forced_kind_on_a_port_speaking_another_protocol(
    lab: Lab, forced: str, actual: str
) -> None:
    """A forced kind asks only in its own protocol, even where another one would answer:
    the rig is in error (it answered, wrongly), not quietly read another way."""
    rig = await lab.serve(actual, "127.0.5.5", port=0)
    async with poller_for(lab, RigTarget("f", rig.host, rig.port, kind=forced)) as poller:
        r = await poll(poller)
    assert not r.ok and r.failure == "reply" and not r.offline, (r.error, r.failure)
    assert (r.protocol, r.port) == (forced, rig.port)
    assert poller.protocol_of("f") is None
    assert rig.seen and all(s.speaks == WIRE[forced] for s in rig.seen), rig.seen


# ----------------------------------------------------------------------------- 7. read-only


def assert_only_reads(seen: Seen) -> None:
    if seen.speaks == "cgminer":
        assert isinstance(seen.request, dict) and set(seen.request) == {"command"}, seen
        assert set(str(seen.request["command"]).split("+")) <= CG_READS, seen
    elif seen.speaks == "whatsminer-v3":
        assert isinstance(seen.request, dict) and set(seen.request) <= {"cmd", "param"}, seen
        assert (seen.request.get("cmd"), seen.request.get("param")) in V3_READS, seen
    elif seen.speaks == "http":
        assert seen.request == ("GET", "/api/system/info"), seen
    else:
        raise AssertionError(f"a request in no known protocol: {seen!r}")


async def test_nothing_but_read_commands_is_ever_sent(lab: Lab) -> None:
    """Every way of finding and reading rigs (auto with and without a port, forced
    kinds, a firmware change, the scan) sends only read requests, to every fake."""
    hosts = lab.network("127.0.5", 6)
    cg, v3, bx, trio, ported, upgraded = hosts
    for proto, host in zip(PROTOCOLS, (cg, v3, bx), strict=True):
        await lab.serve(proto, host)
    for proto in PROTOCOLS:
        await lab.serve(proto, trio)
    on_port = {p: await lab.serve(p, ported, port=0) for p in PROTOCOLS}
    old = await lab.serve("cgminer", upgraded)
    targets = [
        RigTarget("cg", cg), RigTarget("v3", v3), RigTarget("bx", bx), RigTarget("trio", trio),
        *(RigTarget(f"port-{p}", ported, rig.port) for p, rig in on_port.items()),
        RigTarget("f-cg", cg, lab.ports["cgminer"], kind="cgminer"),
        RigTarget("f-v3", v3, lab.ports["whatsminer-v3"], kind="whatsminer-v3"),
        RigTarget("f-bx", bx, lab.ports["bitaxe"], kind="bitaxe"),
        RigTarget("up", upgraded),
    ]
    async with poller_for(lab, *targets) as poller:
        first = await poller.poll_all()
        assert all(r.ok for r in first), [r.error for r in first if not r.ok]
        await old.stop()
        await lab.serve("whatsminer-v3", upgraded)
        for _ in range(2):
            assert all(r.ok for r in await poller.poll_all())
    found = await scan(f"{cg}/29", ports=lab.ports, timeout=1.0)
    assert [f.host for f in found] == [cg, v3, bx, trio, upgraded]  # not ``ported``
    await lab.settle()

    every = [s for rig in lab.rigs for s in rig.seen]
    assert {s.speaks for s in every} == {"cgminer", "whatsminer-v3", "http"}
    for rig in lab.rigs:
        assert rig.seen, rig
    for s in every:
        assert_only_reads(s)


# ----------------------------------------------------------------------------- 8. scan


async def test_scan_finds_every_protocol_once_per_host(lab: Lab) -> None:
    hosts = lab.network("127.0.6", 14)  # 127.0.6.0/28
    delay = 0.05
    await lab.serve("cgminer", hosts[0], delay=delay)
    await lab.serve("cgminer", hosts[1], model="Antminer S21", delay=delay)
    await lab.serve("whatsminer-v3", hosts[2], delay=delay)
    await lab.serve("whatsminer-v3", hosts[3], model="M50S", delay=delay)
    await lab.serve("bitaxe", hosts[4], delay=delay)
    await lab.serve("cgminer", hosts[5], model="Antminer S19 XP", delay=delay)
    await lab.serve("whatsminer-v3", hosts[5], model="M66S", delay=delay)
    ports = lab.ports
    cg, wm, bx = ports["cgminer"], ports["whatsminer-v3"], ports["bitaxe"]

    found = await scan("127.0.6.0/28", kind="auto", ports=ports, concurrency=2)
    assert found == [
        Found(hosts[0], cg, "cgminer", "Antminer S19j Pro", None, "antminer"),
        Found(hosts[1], cg, "cgminer", "Antminer S21", None, "antminer"),
        Found(hosts[2], wm, "whatsminer-v3", "M60S", None, "whatsminer"),
        Found(hosts[3], wm, "whatsminer-v3", "M50S", None, "whatsminer"),
        Found(hosts[4], bx, "bitaxe", "Bitaxe Gamma", "bitaxe-garage", "bitaxe"),
        Found(hosts[5], cg, "cgminer", "Antminer S19 XP", None, "antminer"),
    ]
    assert lab.busy.peak <= 2, lab.busy.peak

    only_v3 = await scan("127.0.6.0/28", kind="whatsminer-v3", ports=ports, concurrency=2)
    assert [(f.host, f.port, f.kind, f.model) for f in only_v3] == [
        (hosts[2], wm, "whatsminer-v3", "M60S"),
        (hosts[3], wm, "whatsminer-v3", "M50S"),
        (hosts[5], wm, "whatsminer-v3", "M66S"),
    ]
    assert lab.busy.peak <= 2, lab.busy.peak

    # the measure does see overlapping probes when they are allowed
    await lab.settle()
    wide = await scan("127.0.6.0/28", kind="auto", ports=ports, concurrency=64)
    assert wide == found
    assert lab.busy.peak > 2


# ----------------------------------------------------------------------------- 9. RigSource


def _free_block(count: int) -> str:
    """A ``127.0.N`` prefix whose hosts ``.1``..``.count`` have the default ports 4028 and
    4433 free (the scan of a site config uses those)."""
    for third in (7, 17, 27, 37, 47, 57):
        prefix = f"127.0.{third}"
        if all(_bindable(f"{prefix}.{i}", p) for i in range(1, count + 1)
               for p in (4028, 4433)):
            return prefix
    raise RuntimeError("ports 4028/4433 are taken on every candidate block")


async def test_rig_source_adds_scanned_rigs_as_auto_targets(lab: Lab) -> None:
    """The site's scan finds rigs by protocol on the default ports; each becomes an
    ``auto`` target without a port (so a firmware change is followed), and a host already
    configured (auto, or on the port it was found on) is not added twice.  (No Bitaxe
    here: its default port 80 needs root.)"""
    prefix = _free_block(6)
    h = [f"{prefix}.{i}" for i in range(1, 7)]
    lab.ports = {"cgminer": 4028, "whatsminer-v3": 4433}
    await lab.serve("cgminer", h[0])
    await lab.serve("whatsminer-v3", h[1])  # configured as an auto rig
    await lab.serve("cgminer", h[2])  # configured as a cgminer rig on 4028
    await lab.serve("whatsminer-v3", h[3])
    await lab.serve("cgminer", h[4], model="Antminer S21")
    await lab.serve("whatsminer-v3", h[4], model="M66S")  # both: found once
    site = SiteConfig(
        name="lab",
        electricity_usd_kwh=0.05,
        rigs=(RigConfig("known-v3", h[1]), RigConfig("known-cg", h[2], 4028, "cgminer")),
        scans=(ScanRange(f"{prefix}.0/29"),),
        poll=PollConfig(timeout_s=1.0, concurrency=16, retries=0),
    )
    source = RigSource(site)
    try:
        first = await source.fetch()
        await source.wait_for_scan()
        assert source.scan_error is None
        assert [r.rig_id for r in first.readings] == ["known-v3", "known-cg"]
        assert source.discovered == [
            RigTarget(h[0], h[0], None, "auto"),
            RigTarget(h[3], h[3], None, "auto"),
            RigTarget(h[4], h[4], None, "auto"),
        ]
        assert [t.rig_id for t in source.poller.targets] == [
            "known-v3", "known-cg", h[0], h[3], h[4]]

        snap = await source.fetch()  # no new scan: RESCAN_S has not passed
        got = {r.rig_id: (r.ok, r.protocol, r.port, r.model) for r in snap.readings}
        assert got == {
            "known-v3": (True, "whatsminer-v3", 4433, "M60S"),
            "known-cg": (True, "cgminer", 4028, CG_MODEL),
            h[0]: (True, "cgminer", 4028, CG_MODEL),
            h[3]: (True, "whatsminer-v3", 4433, "M60S"),
            h[4]: (True, "cgminer", 4028, "Antminer S21"),
        }
    finally:
        await source.aclose()
