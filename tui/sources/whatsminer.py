"""The Whatsminer API v3 (MicroBT firmware after 2024.11) on TCP 4433: read-only.

Framing: every message, both ways, is a 4-byte little-endian unsigned length followed by
that many bytes of UTF-8 JSON.  A request is ``{"cmd": "get.device.info"}`` or
``{"cmd": "get.miner.status", "param": "summary"}`` (also ``"edevs"``, ``"pools"``).  A
reply is ``{"code": 0, "when": <unix>, "msg": {...}, "desc": "<cmd>"}``; a ``code`` other
than 0 is an error and ``msg`` is then the error text.  The connection stays open, so one
poll sends its requests one after the other on a single connection (request, reply, next).

What is read (field names as the firmware sends them):

- ``get.device.info``: ``msg.miner.type`` ("M60S_VK30": the model is the part before the
  first ``_``), ``msg.system.fwversion``, ``msg.network.hostname``, ``msg.network.mac``;
- ``get.miner.status`` ``summary``: ``msg.summary`` with ``hash-realtime``,
  ``hash-average`` (TH/s), ``factory-hash`` (nominal TH/s), ``power-realtime`` (W),
  ``fan-speed-in`` / ``fan-speed-out`` (rpm), ``elapsed`` (s), ``board-temperature`` (a
  list, one per board), ``chip-temp-min`` / ``-avg`` / ``-max``;
- ``edevs``: ``msg.edevs``, one object per hashboard: ``id``, ``slot``, ``hash-average``,
  ``factory-hash``, ``effective-chips``, ``chip-temp-min`` / ``-avg`` / ``-max``;
- ``pools``: ``msg.pools``: ``id``, ``url``, ``status``, ``account``, ``stratum-active``.

minertop never sends a ``set.*`` command: no login, no token, no writes.  Only the three
reads above (see :data:`READ_COMMANDS`).

Replies are untrusted:

- a length prefix above :data:`MAX_MESSAGE` is refused at once (the bytes are never
  awaited nor allocated): "bad reply: message of N bytes exceeds 1 MiB";
- a reply split across many reads is reassembled (``readexactly``); a length prefix larger
  than what follows before EOF is "bad reply: truncated reply"; a zero length is "bad reply:
  empty message"; garbage is "bad reply: not JSON"; JSON other than an object is "bad
  reply: not a JSON object"; ``code`` != 0 is "rig reports error: <msg>" (kind "status");
- numbers may be strings, null, NaN or negative: non-finite and negative values are "not
  reported" (None), never an exception;
- text (model, pool URL, hostname) is kept verbatim: escaping it is the UI's job;
- a rig that stalls is cut by the caller's deadline; the socket is aborted on cancellation.

No Textual here.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tui.model import Hashboard, RigReading
from tui.sources.cgminer import (
    RigError,
    describe_os_error,
    rig_exchange,
    within_deadline,
)

__all__ = [
    "DEFAULT_PORT",
    "FIRMWARE",
    "INFO_EVERY",
    "MAX_MESSAGE",
    "PROTOCOL",
    "READ_COMMANDS",
    "V3Profile",
    "encode_message",
    "identify_v3",
    "model_from_type",
    "parse_v3",
    "read_message",
    "read_whatsminer_v3",
]

DEFAULT_PORT = 4433
#: Largest message accepted from a rig (a device-info reply is a few KiB).
MAX_MESSAGE = 1024 * 1024
PROTOCOL = "whatsminer-v3"
FIRMWARE = "whatsminer"
#: Device info (model, firmware version, hostname, MAC) is asked again every this many polls.
INFO_EVERY = 60

#: The only requests minertop ever sends: ``(cmd, param)``.
READ_COMMANDS: tuple[tuple[str, str | None], ...] = (
    ("get.device.info", None),
    ("get.miner.status", "summary"),
    ("get.miner.status", "edevs"),
    ("get.miner.status", "pools"),
)

_HEADER = struct.Struct("<I")


@dataclass(slots=True)
class V3Profile:
    """What the poller learns about one rig, kept between polls (updated in place)."""

    model: str | None = None
    firmware_version: str | None = None
    hostname: str | None = None
    mac: str | None = None
    #: polls since device info was last asked; it is asked again at :data:`INFO_EVERY`
    polls_since_info: int = 0


# --------------------------------------------------------------------------- errors


def _bad_reply(what: str) -> RigError:
    return RigError(f"bad reply: {what}", kind="reply")


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


# --------------------------------------------------------------------------- framing


def encode_message(obj: dict) -> bytes:
    """``obj`` as one framed message: 4-byte little-endian length + compact UTF-8 JSON."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader, *, max_bytes: int = MAX_MESSAGE) -> dict:
    """Read one framed message and return the decoded JSON object (the whole reply).

    Raises :class:`RigError`: kind "network" "connection closed by the rig" on a clean EOF
    before any byte; kind "reply" for "truncated reply", "empty message", "message of N
    bytes exceeds ...", "not JSON", "not a JSON object".  The length prefix is checked
    before anything else is read, so a huge prefix fails at once.
    """
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            raise RigError("connection closed by the rig", kind="network") from None
        raise _bad_reply("truncated reply") from None
    (length,) = _HEADER.unpack(header)
    if length == 0:
        raise _bad_reply("empty message")
    if length > max_bytes:
        raise _bad_reply(f"message of {length} bytes exceeds {_size(max_bytes)}")
    try:
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise _bad_reply("truncated reply") from None
    text = body.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text, strict=False)
    except (ValueError, RecursionError):  # JSONDecodeError, int-digit limits, deep nesting
        raise _bad_reply("not JSON") from None
    if not isinstance(obj, dict):
        raise _bad_reply("not a JSON object")
    return obj


def _code(reply: Mapping[str, Any]) -> int | None:
    """The reply's ``code`` as an int (a numeric string is accepted), None if absent/bad."""
    code = reply.get("code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, float) and math.isfinite(code) and code.is_integer():
        return int(code)
    if isinstance(code, str):
        try:
            return int(code.strip())
        except ValueError:
            return None
    return None


def _unwrap(reply: Mapping[str, Any]) -> dict:
    """The ``msg`` object of a successful reply; RigError otherwise."""
    code = _code(reply)
    if code is None:
        raise _bad_reply("not a Whatsminer v3 reply (no code)")
    msg = reply.get("msg")
    if code != 0:
        text = msg.strip() if isinstance(msg, str) else ""
        raise RigError(f"rig reports error: {text or f'code {code}'}", kind="status")
    if not isinstance(msg, dict):
        raise _bad_reply("no msg object in the reply")
    return msg


# --------------------------------------------------------------------------- values


def _num(value: Any) -> float | None:
    """A finite, non-negative float from a number or numeric string, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            f = float(value)
        except OverflowError:  # an int too large for a float
            return None
    elif isinstance(value, str):
        try:
            f = float(value.strip().rstrip("%").strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(f) or f < 0:
        return None
    return f


def _int(value: Any) -> int | None:
    f = _num(value)
    return int(f) if f is not None else None


def _temp(value: Any) -> float | None:
    """A plausible temperature in deg C: 0 (no sensor) and absurd values are None."""
    t = _num(value)
    if t is None or not (0 < t < 200):
        return None
    return t


def _rpm(value: Any) -> int | None:
    f = _num(value)
    if f is None or f <= 0 or f > 100_000:
        return None
    return int(round(f))


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None


def _obj(parent: Any, key: str) -> dict:
    if isinstance(parent, Mapping):
        child = parent.get(key)
        if isinstance(child, dict):
            return child
    return {}


def _objects(value: Any) -> list[dict]:
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    if isinstance(value, dict):
        return [value]
    return []


def _first(obj: Mapping[str, Any], keys: tuple[str, ...], conv: Callable[[Any], Any]) -> Any:
    for key in keys:
        if key in obj:
            v = conv(obj[key])
            if v is not None:
                return v
    return None


# --------------------------------------------------------------------------- parsing


def model_from_type(value: Any) -> str | None:
    """The catalog model from a Whatsminer type code: "M60S_VK30" -> "M60S",
    "M30S++_VH70" -> "M30S++" (``+`` kept); None when there is none."""
    text = _text(value)
    if text is None:
        return None
    model = text.strip().split("_", 1)[0].strip()
    return model or None


def _device_facts(
    device: Mapping[str, Any] | None,
) -> tuple[str | None, str | None, str | None, str | None]:
    """``(model, firmware_version, hostname, mac)`` from a ``get.device.info`` msg."""
    if not isinstance(device, Mapping):
        return None, None, None, None
    miner = _obj(device, "miner")
    system = _obj(device, "system")
    network = _obj(device, "network")
    model = model_from_type(miner.get("type"))
    if model is None:
        model = model_from_type(device.get("type"))
    fw = _text(system.get("fwversion")) or _text(device.get("fwversion"))
    hostname = _text(network.get("hostname")) or _text(system.get("hostname"))
    mac = _text(network.get("mac")) or _text(device.get("mac"))
    return model, fw, hostname, mac


def _section(msg: Any, key: str, markers: tuple[str, ...]) -> dict:
    """``msg[key]`` when it is an object; ``msg`` itself when it already is the section
    (it holds one of ``markers``); else {}."""
    if not isinstance(msg, dict):
        return {}
    inner = msg.get(key)
    if isinstance(inner, dict):
        return inner
    if isinstance(inner, list):  # some firmwares wrap single objects in a list
        items = _objects(inner)
        return items[0] if items else {}
    return msg if any(m in msg for m in markers) else {}


def _list_section(msg: Any, key: str) -> list[dict]:
    if isinstance(msg, list):
        return _objects(msg)
    if isinstance(msg, dict):
        return _objects(msg.get(key))
    return []


def _board_temps(summary: Mapping[str, Any]) -> list[float | None]:
    raw = summary.get("board-temperature", summary.get("board-tempurature"))
    if isinstance(raw, list):
        return [_temp(v) for v in raw]
    if isinstance(raw, str) and "," in raw:
        return [_temp(v) for v in raw.split(",")]
    t = _temp(raw)
    return [t] if t is not None else []


def _boards(edevs: list[dict], board_temps: list[float | None]) -> tuple[Hashboard, ...]:
    boards: list[Hashboard] = []
    # board-temperature lists one value per board, in the order of the edevs entries
    temps_by_position = len(board_temps) == len(edevs)
    for pos, dev in enumerate(edevs):
        index = _first(dev, ("slot", "id"), _int)
        board_temp = _first(dev, ("board-temperature", "temperature"), _temp)
        if board_temp is None and temps_by_position:
            board_temp = board_temps[pos]
        boards.append(
            Hashboard(
                index=index if index is not None else pos,
                hashrate_ths=_first(dev, ("hash-realtime", "hash-average", "hash-1min"), _num),
                chips=_int(dev.get("effective-chips")),
                chips_expected=None,  # v3 edevs do not report how many chips a board has
                temp_board_c=board_temp,
                temp_chip_c=_temp(dev.get("chip-temp-max")),
                nominal_ths=_num(dev.get("factory-hash")),
            )
        )
    return tuple(boards)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return False


def _active_pool(pools: list[dict]) -> str | None:
    with_url = [p for p in pools if _text(p.get("url")) is not None]
    active = [p for p in with_url if _truthy(p.get("stratum-active"))]
    alive = [p for p in with_url if str(p.get("status", "")).strip().lower() == "alive"]
    for group in (active, alive, with_url):
        if group:
            return str(group[0]["url"])
    return None


_ACCEPTED_KEYS = ("accepted", "accepted-shares", "accept", "Accepted")


def _accepted(summary: Mapping[str, Any], pools: list[dict]) -> int | None:
    """The accepted-shares counter: the summary's own, else the sum over the pools that
    report one; None when nothing reports it (the v3 replies documented so far do not)."""
    total = _first(summary, _ACCEPTED_KEYS, _int)
    if total is not None:
        return total
    counts = [c for c in (_first(p, _ACCEPTED_KEYS, _int) for p in pools) if c is not None]
    return sum(counts) if counts else None


def parse_v3(
    *,
    device: dict | None,
    summary: dict,
    edevs: dict | None,
    pools: dict | None,
    rig_id: str,
    host: str,
    port: int,
    time: float,
    profile: V3Profile | None = None,
) -> RigReading:
    """Build a reading from the ``msg`` objects of the replies (``device``, ``edevs``,
    ``pools`` optional).  Facts missing from ``device`` come from ``profile``.

    Raises RigError "bad reply: no hashrate in summary" (kind "reply") when the summary has
    no usable hashrate.  Does not modify ``profile``.
    """
    summ = _section(summary, "summary", ("hash-realtime", "hash-average", "hash-1min"))
    live = _first(summ, ("hash-realtime", "hash-1min", "hash-average"), _num)
    avg = _num(summ.get("hash-average"))
    if live is None:
        raise _bad_reply("no hashrate in summary")

    model, fw_version, hostname, mac = _device_facts(device)
    if profile is not None:
        model = model or profile.model
        fw_version = fw_version or profile.firmware_version
        hostname = hostname or profile.hostname
        mac = mac or profile.mac

    power = _first(summ, ("power-realtime", "power-5min"), _num)
    if power is not None and power <= 0:
        power = None

    dev_items = _list_section(edevs, "edevs")
    board_temps = _board_temps(summ)
    boards = _boards(dev_items, board_temps)

    temps = [t for t in board_temps if t is not None]
    chip_max = _temp(summ.get("chip-temp-max"))
    if chip_max is None:
        chip_temps = [b.temp_chip_c for b in boards if b.temp_chip_c is not None]
        chip_max = max(chip_temps) if chip_temps else None
    if chip_max is not None:
        temps.append(chip_max)

    fans = [r for r in (_rpm(summ.get(k)) for k in ("fan-speed-in", "fan-speed-out")) if r]

    pool_items = _list_section(pools, "pools")
    if not pool_items:  # a combined "summary+pools" reply carries them in the summary msg
        pool_items = _list_section(summary, "pools")

    uptime = _num(summ.get("elapsed"))
    return RigReading(
        rig_id=rig_id,
        host=host,
        port=port,
        time=time,
        ok=True,
        model=model,
        hashrate_ths=live,
        hashrate_avg_ths=avg,
        power_w=power,
        temps_c=tuple(temps),
        fans_rpm=tuple(fans),
        pool=_active_pool(pool_items),
        uptime_s=int(uptime) if uptime is not None else None,
        firmware=FIRMWARE,
        hostname=hostname,
        protocol=PROTOCOL,
        boards=boards,
        accepted=_accepted(summ, pool_items),
        nominal_ths=_num(summ.get("factory-hash")),
        firmware_version=fw_version,
        mac=mac,
    )


# --------------------------------------------------------------------------- transport


class _Connection:
    """One TCP connection to the rig: requests are sent one after the other."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as e:
            raise describe_os_error(e) from None
        return cls(reader, writer)

    async def exchange(self, cmd: str, param: str | None = None) -> dict:
        """Send one read request and return the whole reply (not yet checked)."""
        if (cmd, param) not in READ_COMMANDS:  # read-only, by construction
            raise ValueError(f"not a read command: {cmd} {param}")
        request: dict[str, Any] = {"cmd": cmd}
        if param is not None:
            request["param"] = param
        try:
            self.writer.write(encode_message(request))
            await self.writer.drain()
            return await read_message(self.reader)
        except OSError as e:
            raise describe_os_error(e) from None

    async def ask(self, cmd: str, param: str | None = None) -> dict:
        """Send one read request and return the ``msg`` of a successful reply."""
        return _unwrap(await self.exchange(cmd, param))

    def close(self, *, clean: bool) -> None:
        """Close after a complete exchange; abort (drop at once) otherwise."""
        if clean:
            self.writer.close()
        else:
            self.writer.transport.abort()


async def _optional(conn: _Connection, param: str) -> tuple[dict | None, bool]:
    """``(msg, usable)`` for a best-effort status section.  An error reply is ignored
    (the connection stays usable); a broken reply leaves the stream out of step, so
    nothing more is asked on this connection."""
    try:
        return await conn.ask("get.miner.status", param), True
    except RigError as e:
        return None, e.kind == "status"


async def _read(
    host: str, port: int, rig_id: str, clock: Callable[[], float], profile: V3Profile
) -> RigReading:
    conn = await _Connection.open(host, port)
    clean = False  # True once the exchange ended in step: close politely, else abort
    try:
        try:
            device = await _device_info(conn, profile)
            summary = await conn.ask("get.miner.status", "summary")
            edevs, in_step = await _optional(conn, "edevs")
            pools: dict | None = None
            if in_step:
                pools, in_step = await _optional(conn, "pools")
            clean = in_step
        except RigError as e:
            clean = e.kind == "status"  # a well-formed error reply: the stream is in step
            raise
        return parse_v3(
            device=device,
            summary=summary,
            edevs=edevs,
            pools=pools,
            rig_id=rig_id,
            host=host,
            port=port,
            time=clock(),
            profile=profile,
        )
    finally:
        conn.close(clean=clean)  # cancelled (deadline) or broken: aborted


async def _device_info(conn: _Connection, profile: V3Profile) -> dict | None:
    """Ask ``get.device.info`` when the profile needs it and learn from it; None when not
    asked or refused with an error reply."""
    profile.polls_since_info += 1
    if profile.model is not None and profile.polls_since_info < INFO_EVERY:
        return None
    device: dict | None = None
    try:
        device = await conn.ask("get.device.info")
    except RigError as e:
        if e.kind != "status":
            raise
    profile.polls_since_info = 0
    model, fw_version, hostname, mac = _device_facts(device)
    profile.model = model or profile.model
    profile.firmware_version = fw_version or profile.firmware_version
    profile.hostname = hostname or profile.hostname
    profile.mac = mac or profile.mac
    return device


async def read_whatsminer_v3(
    host: str,
    port: int = DEFAULT_PORT,
    *,
    timeout: float = 3.0,
    rig_id: str | None = None,
    clock: Callable[[], float] = time.time,
    profile: V3Profile | None = None,
) -> RigReading:
    """Read one rig over the Whatsminer API v3, the whole exchange within ``timeout`` s.

    One connection: ``get.device.info`` (only when ``profile`` has no model yet, or every
    :data:`INFO_EVERY` polls), then ``get.miner.status`` ``summary`` (required), ``edevs``
    and ``pools`` (best effort).  Returns an ``ok=True`` reading; raises :class:`RigError`
    ("connection refused", "timed out after 3 s", "bad reply: ...", "rig reports error:
    ...").  Pass the same ``profile`` on every poll of a rig.
    """
    prof = profile if profile is not None else V3Profile()
    return await rig_exchange(timeout, _read(host, port, rig_id or f"{host}:{port}", clock,
                                             prof))


async def identify_v3(
    host: str, port: int = DEFAULT_PORT, *, timeout: float = 1.0
) -> tuple[str | None, str] | None:
    """``(model, "whatsminer")`` when a Whatsminer API v3 answers at host:port.

    Any well-formed v3 reply counts, even an error code (model None then).  None when
    nothing listens, nothing answers in time, or the answer is not v3 framing / JSON (a
    cgminer API answers raw JSON, whose first bytes read as a length far over the limit).
    """

    async def probe() -> tuple[str | None, str] | None:
        conn = await _Connection.open(host, port)
        clean = False
        try:
            reply = await conn.exchange("get.device.info")
            clean = True
        finally:
            conn.close(clean=clean)
        code = _code(reply)
        if code is None or not ("msg" in reply or "desc" in reply):
            return None
        msg = reply.get("msg")
        model = _device_facts(msg)[0] if code == 0 and isinstance(msg, dict) else None
        return model, FIRMWARE

    try:
        return await within_deadline(timeout, probe())
    except (asyncio.TimeoutError, OSError, RigError):
        return None
