"""Find rigs on a network range: probe every address of a CIDR block concurrently.

``kind="auto"`` (the default) looks for all three protocols at every address: the cgminer
API on 4028, Whatsminer API v3 on 4433 and AxeOS (ESP-Miner) HTTP on 80; a host that answers
more than one is found once, by the first in that order.  A forced kind looks for one:
``cgminer`` asks ``version+devdetails`` (and ``stats`` if that names no model),
``whatsminer-v3`` asks ``get.device.info``, ``bitaxe`` asks ``/api/system/info``.  Hosts
that refuse, time out or answer something else are left out.  Every probe only reads.

Meant for real site networks: any IPv4 range up to a /16 (65,534 hosts) is accepted.  With
the defaults (512 probes at once, 1 s each) a /16 of silent addresses takes about two
minutes, a /24 about a second.  No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from tui.sources import bitaxe as _bitaxe
from tui.sources import cgminer as _cgminer
from tui.sources import whatsminer as _whatsminer
from tui.sources.cgminer import RigError

__all__ = ["MAX_PREFIX", "Found", "hosts_of", "probe", "scan"]

#: The largest range :func:`scan` accepts (a /16).
MAX_PREFIX = 16


@dataclass(frozen=True, slots=True)
class Found:
    """A rig that answered.  Text fields come from the rig: untrusted, shown literally."""

    host: str
    port: int
    kind: str  #: "cgminer", "whatsminer-v3" or "bitaxe": the protocol it answered
    model: str | None  #: as the rig names it
    hostname: str | None = None  #: Bitaxe only (the cgminer API does not tell)
    firmware: str | None = None  #: antminer, whatsminer, braiins, avalon, bitaxe, ...

    def sort_key(self) -> tuple[int, int]:
        return int(ipaddress.ip_address(self.host)), self.port


def hosts_of(cidr: str) -> list[str]:
    """The host addresses of an IPv4 range ("10.1.0.0/22", "10.1.0.7", "10.1.0.7/32").

    Raises ``ValueError`` for a bad range, IPv6, or anything larger than a /16.
    """
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError as e:
        raise ValueError(f"not an address range: {cidr!r} ({e})") from None
    if net.version != 4:
        raise ValueError(f"only IPv4 ranges can be scanned, got {cidr!r}")
    if net.prefixlen < MAX_PREFIX:
        raise ValueError(
            f"range {net} is too large to scan ({net.num_addresses:,} addresses); "
            f"split it into /{MAX_PREFIX} blocks or smaller"
        )
    if net.prefixlen >= 31:
        return [str(a) for a in net]
    return [str(a) for a in net.hosts()]


async def probe(
    host: str,
    port: int,
    *,
    kind: str = "cgminer",
    timeout: float = 1.0,
    client: httpx.AsyncClient | None = None,
) -> Found | None:
    """One host and one protocol (``kind``): a :class:`Found` if a rig answers, else None."""
    if kind == "whatsminer-v3":
        v3 = await _whatsminer.identify_v3(host, port, timeout=timeout)
        if v3 is None:
            return None
        return Found(host, port, "whatsminer-v3", v3[0], None, v3[1])
    if kind == "bitaxe":
        try:
            r = await _bitaxe.read_bitaxe(host, port, timeout=timeout, client=client)
        except RigError:
            return None
        return Found(host, port, "bitaxe", r.model, r.hostname, "bitaxe")
    result = await _cgminer.identify(host, port, timeout=timeout)
    if result is None:
        return None
    model, firmware = result
    return Found(host, port, "cgminer", model, None, firmware)


#: The protocols an ``auto`` scan looks for, in order, with their usual ports.
AUTO_PORTS: dict[str, int] = {"cgminer": 4028, "whatsminer-v3": 4433, "bitaxe": 80}
KINDS = ("auto", *AUTO_PORTS)


async def scan(
    cidr: str,
    port: int | None = None,
    *,
    concurrency: int = 512,
    timeout: float = 1.0,
    kind: str = "auto",
    ports: Mapping[str, int] | None = None,
) -> list[Found]:
    """Probe every host of ``cidr``; the rigs found, sorted by address.

    ``kind`` "auto" looks for every protocol, each on its port (``ports`` overrides
    :data:`AUTO_PORTS`), or on ``port`` when one is given; a forced kind looks on ``port``
    (default: its usual port).  At most ``concurrency`` probes are in flight at once.

    ``ValueError`` for a bad or too large range (see :func:`hosts_of`) or a bad kind.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} ({', '.join(KINDS)})")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"bad port {port!r}")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    where = dict(AUTO_PORTS)
    where.update(ports or {})
    protocols = list(AUTO_PORTS) if kind == "auto" else [kind]
    plan = [(p, port if port is not None else where[p]) for p in protocols]
    hosts = hosts_of(cidr)
    sem = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:
        client = None
        if "bitaxe" in protocols:
            client = await stack.enter_async_context(_bitaxe.make_client(concurrency=concurrency))

        async def ask(host: str, protocol: str, p: int) -> Found | None:
            async with sem:
                try:
                    return await probe(host, p, kind=protocol, timeout=timeout, client=client)
                except Exception:  # a probe must never sink the scan
                    return None

        async def one(host: str) -> Found | None:
            answers = await asyncio.gather(*(ask(host, proto, p) for proto, p in plan))
            return next((f for f in answers if f is not None), None)

        results = await asyncio.gather(*(one(h) for h in hosts))
    return sorted((f for f in results if f is not None), key=Found.sort_key)
