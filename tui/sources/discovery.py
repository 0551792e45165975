"""Find rigs on a network range: probe every address of a CIDR block concurrently.

For the cgminer API (default, port 4028) each host is asked ``version+devdetails`` (and
``stats`` if that names no model); hosts that refuse, time out or answer something that is
not a cgminer reply are left out.  ``kind="bitaxe"`` probes ESP-Miner's HTTP API instead
(``/api/system/info``, usually port 80).

Meant for real site networks: any IPv4 range up to a /16 (65,534 hosts) is accepted.  With
the defaults (512 probes at once, 1 s each) a /16 of silent addresses takes about two
minutes, a /24 about a second.  No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass

import httpx

from tui.sources import bitaxe as _bitaxe
from tui.sources import cgminer as _cgminer
from tui.sources.cgminer import RigError

__all__ = ["MAX_PREFIX", "Found", "hosts_of", "probe", "scan"]

#: The largest range :func:`scan` accepts (a /16).
MAX_PREFIX = 16


@dataclass(frozen=True, slots=True)
class Found:
    """A rig that answered.  Text fields come from the rig: untrusted, shown literally."""

    host: str
    port: int
    kind: str  #: "cgminer" or "bitaxe" (the RigTarget kind to poll it with)
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
    """One host: a :class:`Found` if a rig answers there, else None."""
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


async def scan(
    cidr: str,
    port: int = _cgminer.DEFAULT_PORT,
    *,
    concurrency: int = 512,
    timeout: float = 1.0,
    kind: str = "cgminer",
) -> list[Found]:
    """Probe every host of ``cidr`` on ``port``; the rigs found, sorted by address.

    ``ValueError`` for a bad or too large range (see :func:`hosts_of`) or a bad kind.
    """
    if kind not in ("cgminer", "bitaxe"):
        raise ValueError(f"unknown kind {kind!r} (cgminer or bitaxe)")
    if not 0 < port < 65536:
        raise ValueError(f"bad port {port!r}")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    hosts = hosts_of(cidr)
    sem = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:
        client = None
        if kind == "bitaxe":
            client = await stack.enter_async_context(_bitaxe.make_client(concurrency=concurrency))

        async def one(host: str) -> Found | None:
            async with sem:
                try:
                    return await probe(host, port, kind=kind, timeout=timeout, client=client)
                except Exception:  # a probe must never sink the scan
                    return None

        results = await asyncio.gather(*(one(h) for h in hosts))
    return sorted((f for f in results if f is not None), key=Found.sort_key)
