"""Bitaxe (ESP-Miner / AxeOS) rigs: ``GET http://host[:port]/api/system/info``.

The reply is one JSON object: ``hashRate`` (GH/s), ``power`` (W), ``temp`` (ASIC, deg C),
``vrTemp``, ``fanrpm``, ``hostname``, ``ASICModel`` (the chip, e.g. "BM1370"),
``uptimeSeconds``, ``stratumURL`` + ``stratumPort``, ``version``, ``sharesAccepted`` (the
accepted-shares counter), ``expectedHashrate`` (GH/s, newer firmware), ``macAddr``.  A Bitaxe has no
cgminer API.  The chip names the product line, so the model is reported as e.g.
"Bitaxe Gamma" (BM1370); an unknown chip gives "Bitaxe <ASICModel>".

No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

import httpx

from tui.model import RigReading
from tui.sources.base import ACCEPT_ENCODING, USER_AGENT, decoded_body, one_line
from tui.sources.cgminer import RigError, describe_os_error, timeout_error, within_deadline

__all__ = ["ASIC_FAMILIES", "DEFAULT_PORT", "PATH", "make_client", "parse_info", "read_bitaxe"]

DEFAULT_PORT = 80
PATH = "/api/system/info"
_MAX_BODY = 256 * 1024

#: ESP-Miner ASICModel -> the Bitaxe family built on that chip.
ASIC_FAMILIES: dict[str, str] = {
    "BM1397": "Bitaxe Max",
    "BM1366": "Bitaxe Ultra",
    "BM1368": "Bitaxe Supra",
    "BM1370": "Bitaxe Gamma",
}


def make_client(*, concurrency: int = 256) -> httpx.AsyncClient:
    """A client for many Bitaxes: no proxy from the environment, no redirects."""
    return httpx.AsyncClient(
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None


def _model(info: dict[str, Any]) -> str | None:
    device = _text(info.get("deviceModel"))
    if device is not None:
        return device if device.lower().startswith("bitaxe") else f"Bitaxe {device}"
    asic = _text(info.get("ASICModel"))
    if asic is None:
        return None
    return ASIC_FAMILIES.get(asic.strip().upper(), f"Bitaxe {asic}")


def _pool(info: dict[str, Any]) -> str | None:
    url = _text(info.get("stratumURL"))
    if url is None:
        return None
    port = _num(info.get("stratumPort"))
    if "://" not in url:
        url = f"stratum+tcp://{url}"
    if port is not None and port > 0 and url.count(":") < 2:
        url = f"{url}:{int(port)}"
    return url


def parse_info(info: Any, *, rig_id: str, host: str, port: int, time: float) -> RigReading:
    """``/api/system/info`` JSON -> :class:`RigReading`; RigError "bad reply: ..." if unusable."""
    if not isinstance(info, dict):
        raise RigError("bad reply: not an ESP-Miner system info object", kind="reply")
    ghs = _num(info.get("hashRate"))
    if ghs is None or ghs < 0:
        raise RigError("bad reply: no hashRate", kind="reply")
    avg = _num(info.get("hashRate_1h"))
    power = _num(info.get("power"))
    temps = tuple(t for t in (_num(info.get("temp")),) if t is not None and 0 < t < 200)
    rpm = _num(info.get("fanrpm"))
    uptime = _num(info.get("uptimeSeconds"))
    shares = _num(info.get("sharesAccepted"))
    return RigReading(
        rig_id=rig_id,
        host=host,
        port=port,
        time=time,
        ok=True,
        model=_model(info),
        hashrate_ths=ghs / 1000.0,
        hashrate_avg_ths=avg / 1000.0 if avg is not None and avg >= 0 else None,
        power_w=power if power is not None and power > 0 else None,
        temps_c=temps,
        fans_rpm=(int(rpm),) if rpm is not None and rpm > 0 else (),
        pool=_pool(info),
        uptime_s=int(uptime) if uptime is not None and uptime >= 0 else None,
        firmware="bitaxe",
        hostname=_text(info.get("hostname")),
        protocol="bitaxe",
        accepted=int(shares) if shares is not None and shares >= 0 else None,
        nominal_ths=_nominal(info),
        firmware_version=_text(info.get("version")),
        mac=_text(info.get("macAddr")),
    )


def _nominal(info: dict[str, Any]) -> float | None:
    """ESP-Miner's expected hashrate (GH/s) as TH/s, where it reports one."""
    v = _num(info.get("expectedHashrate"))
    return v / 1000.0 if v is not None and v > 0 else None


def _transport_error(exc: Exception, timeout: float) -> RigError:
    if isinstance(exc, httpx.TimeoutException):
        return timeout_error(timeout)
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    # the innermost socket error says most ("All connection attempts failed" wraps it)
    for c in reversed(chain):
        if isinstance(c, OSError) and (c.errno is not None or isinstance(c, ConnectionError)):
            return describe_os_error(c)
    text = one_line(str(exc), 100)
    if "refused" in text.lower():
        return RigError("connection refused", kind="refused")
    if isinstance(exc, httpx.DecodingError):
        return RigError(f"bad reply: cannot decode ({text or 'corrupt body'})", kind="reply")
    if isinstance(exc, httpx.RemoteProtocolError):
        return RigError(f"bad reply: {text or 'HTTP protocol error'}", kind="reply")
    return RigError(f"cannot connect ({text or type(exc).__name__})", kind="network")


async def read_bitaxe(
    host: str,
    port: int = DEFAULT_PORT,
    *,
    timeout: float = 3.0,
    rig_id: str | None = None,
    clock: Callable[[], float] = time.time,
    client: httpx.AsyncClient | None = None,
) -> RigReading:
    """Read one Bitaxe within ``timeout`` seconds; raises :class:`RigError` on failure.

    Pass a shared ``client`` (see :func:`make_client`) when polling many; without one a
    client is made and closed for this call.
    """
    owns = client is None
    http = client if client is not None else make_client(concurrency=4)
    hostpart = f"[{host}]" if ":" in host else host
    url = f"http://{hostpart}:{port}{PATH}"

    async def read_body() -> bytes:
        # streamed and decompressed in bounded steps: never more than the cap (plus one
        # step) in memory, whatever the rig sends or however well it compresses
        async with http.stream("GET", url, timeout=httpx.Timeout(timeout),
                               headers={"Accept-Encoding": ACCEPT_ENCODING}) as resp:
            if resp.status_code != 200:
                raise RigError(f"bad reply: HTTP {resp.status_code}", kind="reply")
            body = bytearray()
            async with contextlib.aclosing(decoded_body(resp)) as pieces:
                async for piece in pieces:
                    body += piece
                    if len(body) > _MAX_BODY:
                        raise RigError("bad reply: body too large", kind="reply")
            return bytes(body)

    async def get() -> RigReading:
        try:
            body = await read_body()
        except (httpx.HTTPError, OSError) as e:
            raise _transport_error(e, timeout) from None
        try:
            info = json.loads(body.decode("utf-8", errors="replace"), strict=False)
        except (json.JSONDecodeError, RecursionError):
            what = "truncated reply" if body.lstrip()[:1] == b"{" else "not JSON"
            raise RigError(f"bad reply: {what}", kind="reply") from None
        return parse_info(
            info, rig_id=rig_id or f"{host}:{port}", host=host, port=port, time=clock()
        )

    try:
        return await within_deadline(timeout, get())
    except asyncio.TimeoutError:
        raise timeout_error(timeout) from None
    finally:
        if owns:
            await http.aclose()
