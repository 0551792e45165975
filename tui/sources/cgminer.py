"""The cgminer-style miner API on TCP 4028 (Antminer, Whatsminer, Braiins OS, Avalon, ...).

Framing: one request per connection.  The client sends ``{"command":"summary"}`` (several
report commands may be joined with ``+``: the reply then holds one section per command,
``{"summary":[{...}],"stats":[{...}],"id":1}``), the rig answers with JSON followed by a NUL
byte and closes the connection.

Real firmware gets this wrong in many ways; :func:`parse_reply` survives all of these:

- objects in an array glued as ``}{`` (bmminer ``stats``), a stray ``[,{``, trailing
  ``,}`` / ``,]`` (btminer), a missing comma between two values (``"a""b"``),
- raw newlines and control characters inside strings, invalid UTF-8 (replaced by U+FFFD),
- ``inf`` / ``-inf`` / ``nan`` bare or quoted (read as "no value"),
- replies cut short (-> :class:`CgminerError` "truncated reply") and replies that are not
  JSON at all (-> "not a cgminer reply").

:func:`read_cgminer` polls one rig within one deadline: a multi-command request first and,
when the multi-command reply does not parse (or the firmware refuses it), one command per
connection.  It learns each rig's firmware flavour in a :class:`RigProfile` the caller keeps
between polls, so the next poll asks the right commands at once (e.g. ``tunerstatus`` for
Braiins OS's power estimate, ``devdetails`` for a Whatsminer's model).

Per-hashboard figures (``RigReading.boards``) come from whatever the flavour reports:
Antminer-style ``stats`` (``chain_rateN``/``chain_acnN``/``chain_acsN``/``temp2_N``, slots
numbered as the firmware numbers them, e.g. 6-8 on an S9; also the newer ``"chain":[...]``
list), btminer/BOSminer ``devs`` (+ BOSminer ``devdetails`` chips and ``temps`` by board ID),
and Avalon's ``MGHS[...]``/``MTmax[...]`` MM fields.  A board that hashes exactly 0 keeps
``0.0`` so it reads as down; unusable values (strings, inf/nan, negatives) are ``None``.

Everything the rig sends (model, pool URL, messages) is untrusted and kept verbatim: Rich
markup or terminal escapes in it are *data*.  Escaping is the UI's job.

No Textual here.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import re
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, TypeVar

from tui.catalog import normalise as _model_key
from tui.model import Hashboard, RigReading
from tui.sources.base import SourceError, one_line

__all__ = [
    "COMMANDS",
    "DEFAULT_PORT",
    "MAX_REPLY",
    "CgminerError",
    "RigError",
    "RigProfile",
    "describe_os_error",
    "detect_firmware",
    "extract_model",
    "identify",
    "parse_reply",
    "query",
    "read_cgminer",
    "reading_from_sections",
    "rig_exchange",
    "split_multi",
    "timeout_error",
    "within_deadline",
]

DEFAULT_PORT = 4028
#: A reply larger than this is refused (a bugged btminer can send megabytes of error log).
MAX_REPLY = 1024 * 1024

#: Report commands asked per firmware flavour (``None``: not known yet).  The first one must
#: be ``summary``.  A command a firmware does not know gets an error section, ignored.
COMMANDS: dict[str | None, tuple[str, ...]] = {
    # first contact: Antminer-style plus what names a Whatsminer/Avalon (one connection)
    None: ("summary", "stats", "pools", "devdetails", "version"),
    "antminer": ("summary", "stats", "pools"),
    "vnish": ("summary", "stats", "pools"),
    "luxos": ("summary", "stats", "pools", "power"),
    "cgminer": ("summary", "stats", "pools"),
    # devs: one DEVS item per hashboard (hashrate, chips, temperatures); devs rather than
    # edevs so a board the firmware gave up on ("zombie") is still listed
    "whatsminer": ("summary", "devdetails", "pools", "devs"),
    "braiins": ("summary", "devdetails", "tunerstatus", "temps", "fans", "pools", "devs"),
    "avalon": ("summary", "stats", "version", "pools"),
}


# --------------------------------------------------------------------------- errors


class RigError(SourceError):
    """Reading a rig failed.  ``str()`` is one line, e.g. "connection refused".

    ``kind`` says what failed: ``"refused"``, ``"timeout"`` and ``"network"`` mean the rig
    could not be reached (it is *offline* unless a recent good reading exists);
    ``"reply"`` (garbage, truncated) and ``"status"`` (an error status) mean the rig
    answered but wrongly (*error*).
    """

    OFFLINE_KINDS = frozenset({"refused", "timeout", "network"})

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def offline(self) -> bool:
        return self.kind in self.OFFLINE_KINDS


class CgminerError(RigError):
    """A cgminer API reply that cannot be used (``kind`` "reply" or "status")."""

    def __init__(self, message: str, *, kind: str = "reply") -> None:
        super().__init__(message, kind=kind)


def _bad_reply(what: str) -> CgminerError:
    return CgminerError(f"bad reply: {what}", kind="reply")


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g}"


def timeout_error(timeout: float) -> RigError:
    return RigError(f"timed out after {_fmt_s(timeout)} s", kind="timeout")


def describe_os_error(exc: BaseException) -> RigError:
    """Map a socket error to a one-line :class:`RigError`."""
    if isinstance(exc, ConnectionRefusedError):
        return RigError("connection refused", kind="refused")
    if isinstance(exc, socket.gaierror):
        return RigError(f"cannot resolve host ({one_line(str(exc), 80)})", kind="network")
    if isinstance(exc, ConnectionResetError):
        return RigError("connection reset by the rig", kind="network")
    if isinstance(exc, (BrokenPipeError, ConnectionAbortedError)):
        return RigError("connection closed by the rig", kind="network")
    code = getattr(exc, "errno", None)
    if code == errno.EHOSTUNREACH:
        return RigError("host unreachable", kind="network")
    if code == errno.ENETUNREACH:
        return RigError("network unreachable", kind="network")
    if code == errno.ETIMEDOUT or isinstance(exc, TimeoutError):
        return RigError("connection timed out", kind="timeout")
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return RigError(f"cannot connect ({one_line(text, 80)})", kind="network")


# --------------------------------------------------------------------------- parsing

# One lexical token of (possibly broken) JSON: a string (group 1 is its closing quote,
# None when the string runs to the end of the text), a punctuation mark, a bare word
# (number, literal, inf/nan, garbage) or whitespace.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(")?|[{}\[\],:]|[^\s{}\[\],:"]+|\s+', re.S)
_NON_FINITE = frozenset(
    {"inf", "-inf", "+inf", "infinity", "-infinity", "+infinity", "nan", "-nan", "+nan"}
)
_CLOSER = {"}": "{", "]": "["}


def _repair(text: str) -> str:
    """Rewrite broken cgminer JSON into valid JSON, or raise :class:`CgminerError`.

    Works on tokens, so string contents (model names, URLs) are never touched: glued
    values get the missing comma, stray/trailing commas go, non-finite numbers become
    ``null``.  Anything after the first complete top-level value is ignored.
    """
    out: list[str] = []
    stack: list[str] = []
    prev: str | None = None  # last emitted: "open", "close", "value", "colon", "comma"
    pending_comma = False
    for m in _TOKEN.finditer(text):
        tok = m.group()
        c = tok[0]
        if c.isspace():
            continue
        if prev is None and c != "{":
            raise _bad_reply("not a cgminer reply")
        if c == '"':
            if m.group(1) is None:
                raise _bad_reply("truncated reply")
            kind = "value"
        elif c in "{[":
            kind = "open"
        elif c in "}]":
            if not stack or stack[-1] != _CLOSER[c]:
                raise _bad_reply("malformed JSON (unbalanced brackets)")
            pending_comma = False  # a trailing ",}" or ",]"
            stack.pop()
            out.append(tok)
            prev = "close"
            if not stack:
                return "".join(out)
            continue
        elif c == ",":
            if prev in ("value", "close"):
                pending_comma = True
            # else: "[,{", "{,", ",,", ":," -> drop the stray comma
            continue
        elif c == ":":
            kind = "colon"
        else:
            if tok.lower() in _NON_FINITE:
                tok = "null"
            kind = "value"
        if pending_comma:
            out.append(",")
            pending_comma = False
            prev = "comma"
        elif prev in ("value", "close") and kind in ("value", "open"):
            out.append(",")  # "}{" glued objects, '"a""b"' missing comma
        if kind == "open":
            stack.append(c)
        out.append(tok)
        prev = kind
    if prev is None:
        raise _bad_reply("empty reply")
    raise _bad_reply("truncated reply")


def _valid_shape(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if "STATUS" in obj:
        return True
    # a multi-command reply: {"summary":[{...}], "stats":[{...}], "id":1}
    return any(isinstance(v, list) and v and isinstance(v[0], dict) for v in obj.values())


def parse_reply(raw: bytes) -> dict[str, Any]:
    """Parse one cgminer API reply (trailing NUL optional) into a dict.

    Raises :class:`CgminerError`: "empty reply", "truncated reply", "not a cgminer reply"
    or "bad reply: malformed JSON (...)".
    """
    data = raw.rstrip(b"\x00 \t\r\n")
    if b"\x00" in data:  # NULs inside: padding or concatenated replies
        data = data.replace(b"\x00", b"")
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if not text:
        raise _bad_reply("empty reply")
    if text[0] != "{":
        raise _bad_reply("not a cgminer reply")
    try:
        obj = json.loads(text, strict=False)  # strict=False: raw control chars in strings
    except (json.JSONDecodeError, RecursionError):
        try:
            obj = json.loads(_repair(text), strict=False)
        except (json.JSONDecodeError, RecursionError) as e:
            msg = getattr(e, "msg", type(e).__name__)
            raise _bad_reply(f"malformed JSON ({msg})") from None
    if not _valid_shape(obj):
        raise _bad_reply("not a cgminer reply")
    return obj


def status_of(reply: Mapping[str, Any]) -> tuple[str, str]:
    """``(code, message)`` of a reply's STATUS: code in S/I/W/E/F ("?" when missing).

    Handles both ``"STATUS":[{"STATUS":"S","Msg":...}]`` and the btminer error form
    ``"STATUS":"E","Msg":...`` at the top level.
    """
    st = reply.get("STATUS")
    if isinstance(st, list) and st and isinstance(st[0], dict):
        return str(st[0].get("STATUS", "?")), str(st[0].get("Msg", "") or "")
    if isinstance(st, str):
        return st, str(reply.get("Msg", "") or "")
    return "?", ""


def _check_status(reply: Mapping[str, Any], command: str) -> None:
    code, msg = status_of(reply)
    if code in ("S", "I"):
        return
    if code == "?" and command.upper() in reply:
        return  # no STATUS but the data is there: accept
    detail = msg or f"status {code}"
    raise CgminerError(f"rig reports error: {detail}", kind="status")


def split_multi(reply: Mapping[str, Any], commands: Iterable[str]) -> dict[str, dict] | None:
    """Sections of a multi-command reply, ``{command: reply}``; None if it is not one."""
    sections: dict[str, dict] = {}
    for cmd in commands:
        part = reply.get(cmd)
        if isinstance(part, list) and part and isinstance(part[0], dict):
            sections[cmd] = part[0]
        elif isinstance(part, dict):
            sections[cmd] = part
    return sections or None


# --------------------------------------------------------------------------- values


def _num(value: Any) -> float | None:
    """A finite float from a number or numeric string ("16346.64", " 12 %"), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip().rstrip("%").strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _temp(value: Any) -> float | None:
    """A plausible temperature: "52-75" (Antminer in-out pairs) -> 75; 0 / -273 -> None."""
    if isinstance(value, str) and "-" in value.strip()[1:]:
        parts = [_num(p) for p in re.split(r"(?<=\d)-", value.strip())]
        vals = [p for p in parts if p is not None]
        t = max(vals) if vals else None
    else:
        t = _num(value)
    if t is None or not (0 < t < 200):
        return None
    return t


def _rpm(value: Any) -> int | None:
    f = _num(value)
    if f is None or f <= 0 or f > 100_000:
        return None
    return int(round(f))


def _items(section: Mapping[str, Any] | None, key: str) -> list[dict]:
    if not section:
        return []
    part = section.get(key)
    if isinstance(part, list):
        return [p for p in part if isinstance(p, dict)]
    if isinstance(part, dict):
        return [part]
    return []


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    return None


#: Hashrate keys of a summary, live figures first: (key, factor to TH/s).
_LIVE_KEYS: tuple[tuple[str, float], ...] = tuple(
    (f"{unit}S {window}", factor)
    for window in ("5s", "30s", "1m", "5m", "15m")
    for unit, factor in (("TH", 1.0), ("GH", 1e-3), ("MH", 1e-6))
)
_AVG_KEYS: tuple[tuple[str, float], ...] = (("THS av", 1.0), ("GHS av", 1e-3), ("MHS av", 1e-6))


def _first_rate(obj: Mapping[str, Any], keys: tuple[tuple[str, float], ...]) -> float | None:
    for key, factor in keys:
        if key in obj:
            v = _num(obj[key])
            if v is not None and v >= 0:
                return v * factor
    return None


_MM_FIELD = re.compile(r"([A-Za-z_][\w]*)\[([^\]]*)\]")


def _avalon_mm(stats_items: list[dict]) -> dict[str, list[str]]:
    """The ``Key[v1 v2]`` fields of Avalon's "MM ID0" blob(s), merged."""
    fields: dict[str, list[str]] = {}
    for item in stats_items:
        for key, value in item.items():
            if key.startswith("MM ID") and isinstance(value, str):
                for name, vals in _MM_FIELD.findall(value):
                    fields.setdefault(name, vals.split())
    return fields


# --------------------------------------------------------------------------- extraction

_TEMP_KEY = re.compile(r"temp_chip(\d+)|temp2_(\d+)|temp(\d+)")
_FAN_KEY = re.compile(r"fan(\d+)")
_CHAIN_POWER_KEY = re.compile(r"chain_consumption\d+")


def _merged_stats(stats: Mapping[str, Any] | None) -> dict[str, Any]:
    """All STATS items merged (Antminer: item 0 holds Type, item 1 the figures)."""
    merged: dict[str, Any] = {}
    for item in _items(stats, "STATS"):
        for k, v in item.items():
            merged.setdefault(k, v)
    return merged


def _first_item(section: Mapping[str, Any] | None, key: str) -> dict:
    items = _items(section, key)
    return items[0] if items else {}


def detect_firmware(
    sections: Mapping[str, Mapping[str, Any]], *, stats: Mapping[str, Any] | None = None
) -> str:
    """The firmware flavour: antminer, vnish, luxos, braiins, whatsminer, avalon, cgminer.

    ``stats``: the merged STATS items if already computed.
    """
    descs: list[str] = []
    for sec in sections.values():
        st = sec.get("STATUS")
        if isinstance(st, list) and st and isinstance(st[0], dict):
            descs.append(str(st[0].get("Description", "")))
    desc = " ".join(descs).lower()
    summary = _first_item(sections.get("summary"), "SUMMARY")
    if stats is None:
        stats = _merged_stats(sections.get("stats"))
    version = _first_item(sections.get("version"), "VERSION")
    type_ = str(stats.get("Type") or version.get("Type") or "")
    if "bosminer" in desc or "BOSminer" in version or "BOSer" in version:
        return "braiins"
    if "TUNERSTATUS" in sections.get("tunerstatus", {}):
        return "braiins"
    if "btminer" in desc or "Fan Speed In" in summary or "Power" in summary:
        return "whatsminer"
    if "PROD" in version or any(k.startswith("MM ID") for k in stats):
        return "avalon"
    if "LUXminer" in version or "LUXminer" in stats or "luxminer" in desc:
        return "luxos"
    if "vnish" in type_.lower() or "vnish" in desc:
        return "vnish"
    if type_.startswith("Antminer") or "bmminer" in desc or "BMMiner" in stats:
        return "antminer"
    return "cgminer"


def extract_model(
    sections: Mapping[str, Mapping[str, Any]], *, stats: Mapping[str, Any] | None = None
) -> str | None:
    """The model as the rig names it: stats/version ``Type``, version ``PROD``/``Model``,
    devdetails ``Model``."""
    if stats is None:
        stats = _merged_stats(sections.get("stats"))
    version = _first_item(sections.get("version"), "VERSION")
    candidates = [stats.get("Type"), version.get("Type"), version.get("PROD")]
    candidates += [d.get("Model") for d in _items(sections.get("devdetails"), "DEVDETAILS")]
    candidates += [version.get("Model"), version.get("MODEL")]
    for c in candidates:
        t = _text(c)
        if t is not None:
            return t
    return None


def _antminer_temps(stats: Mapping[str, Any]) -> list[float]:
    """Per-board temperature: chip (temp_chipN / temp2_N) if known, else PCB (tempN)."""
    chip: dict[int, float] = {}
    pcb: dict[int, float] = {}
    for key, value in stats.items():
        if not key.startswith("temp"):
            continue
        m = _TEMP_KEY.fullmatch(key)
        if m is None:
            continue
        t = _temp(value)
        if t is None:
            continue
        if m.group(1) or m.group(2):
            slot = int(m.group(1) or m.group(2))
            chip[slot] = max(chip.get(slot, t), t)
        else:
            pcb[int(m.group(3))] = t
    slots = sorted(set(chip) | set(pcb))
    return [chip.get(s, pcb.get(s, 0.0)) for s in slots]


def _antminer_fans(stats: Mapping[str, Any]) -> list[int]:
    fans: list[tuple[int, int]] = []
    for key, value in stats.items():
        m = _FAN_KEY.fullmatch(key) if key.startswith("fan") else None
        if m:
            rpm = _rpm(value)
            if rpm is not None:
                fans.append((int(m.group(1)), rpm))
    return [rpm for _, rpm in sorted(fans)]


def _active_pool(pools: Mapping[str, Any] | None) -> str | None:
    items = _items(pools, "POOLS")
    if not items:
        return None

    def prio(p: dict) -> float:
        v = _num(p.get("Priority"))
        return v if v is not None else 1e9

    active = [p for p in items if p.get("Stratum Active") is True and _text(p.get("URL"))]
    alive = [
        p for p in items if str(p.get("Status", "")).lower() == "alive" and _text(p.get("URL"))
    ]
    anyurl = [p for p in items if _text(p.get("URL"))]
    for group in (active, alive, anyurl):
        if group:
            return str(sorted(group, key=prio)[0]["URL"])
    return None


# --------------------------------------------------------------------------- hashboards

#: Chips per hashboard by model: firmware reports the chips it found, not how many the board
#: should have (Antminer ``chain_acn``/``chain_acs``, Braiins OS devdetails).  From pyasic's
#: model definitions (``expected_chips`` in pyasic/miners/device/models/antminer/X9/S9.py,
#: X17/S17.py, X19/S19.py, X19/T19.py, X21/S21.py, X21/T21.py).  Models whose name is shared
#: by a variant with another count (S19 / S19 No PIC, S19j / S19j No PIC) are left out: no
#: count beats a wrong one (it would show a healthy board as missing chips).
_EXPECTED_CHIPS: dict[str, int] = {
    _model_key(name): chips
    for name, chips in {
        "S9": 63, "S9i": 63, "S9j": 63,
        "S17": 48, "S17 Pro": 48, "S17+": 65, "S17e": 135,
        "S19 Pro": 114, "S19j Pro": 126, "S19j Pro+": 120, "S19 Pro+": 120,
        "S19 XP": 110, "S19j XP": 110, "S19k Pro": 77, "S19a Pro": 100, "T19": 76,
        "S21": 108, "S21+": 55, "S21 Pro": 65, "S21 XP": 91, "T21": 108,
    }.items()
}  # fmt: skip

#: Antminer-style per-chain stats keys: ``chain_acn6``, ``chain_rate_real1``, ``chain_rateideal2``
_CHAIN_KEY = re.compile(r"chain_(acn|acs|rate_real|rate_ideal|rateideal|rate)(\d{1,2})")
_BOARD_TEMP_KEY = re.compile(r"temp(?:_pcb)?(\d{1,2})")
_CHIP_TEMP_KEY = re.compile(r"temp(?:_chip|2_)(\d{1,2})")
#: ``rate_unit`` (Antminer stats) -> factor to TH/s; absent means GH/s
_RATE_UNITS = {"th": 1.0, "gh": 1e-3, "mh": 1e-6}
#: Per-board hashrate keys of a DEVS item (btminer, BOSminer), steadiest first.
_DEV_RATE_KEYS: tuple[tuple[str, float], ...] = (
    ("MHS 1m", 1e-6), ("MHS 5s", 1e-6), ("MHS av", 1e-6), ("MHS 5m", 1e-6),
    ("MHS 15m", 1e-6), ("GHS 5s", 1e-3), ("GHS av", 1e-3),
)  # fmt: skip


def _count(value: Any) -> int | None:
    """A non-negative whole count ("126", 126.0) or None."""
    f = _num(value)
    if f is None or f < 0 or f >= 2**53 or f != int(f):
        return None
    return int(f)


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _rate_factor(unit: Any) -> float | None:
    """TH/s per unit of a ``rate_unit`` ("GH/s", "GH", "MH/s"); GH/s when absent, None when
    the unit is not one we know (the figures are then not used)."""
    if unit is None:
        return 1e-3
    if not isinstance(unit, str):
        return None
    key = unit.strip().lower().removesuffix("/s")
    return _RATE_UNITS.get(key) if key else 1e-3


def _chip_marks(acs: Any) -> tuple[int, int] | None:
    """``(good, total)`` marks of a ``chain_acs`` string (" oooooooo oxoooooo": o good,
    anything else - x, - - bad)."""
    if not isinstance(acs, str):
        return None
    marks = "".join(acs.split()).lower()
    if not marks or len(marks) > 1024:
        return None
    return marks.count("o"), len(marks)


def _chain_chips(found: Any, acs: Any, model: str | None) -> tuple[int | None, int | None]:
    """``(working, expected)`` chips of one Antminer chain.

    bmminer writes one ``chain_acs`` mark per chip it *found* (``chain_acn`` of them), 'x'
    for a found chip that returns too few nonces: so the string shows bad chips but not
    missing ones.  Working = found minus the bad marks; expected = the model's count when
    known, else the string's length when it marks bad chips (those should work too).
    """
    acn = _count(found)
    marks = _chip_marks(acs)
    expected = _expected_chips(model)
    if marks is None:
        return acn, expected
    good, total = marks
    working = good if acn is None else min(acn, good)
    if good < total:
        expected = max(expected or 0, total)
    return working, expected


def _status_description(reply: Mapping[str, Any] | None) -> str | None:
    st = reply.get("STATUS") if reply else None
    if isinstance(st, list) and st and isinstance(st[0], dict):
        return _text(st[0].get("Description"))
    return None


@lru_cache(maxsize=512)
def _expected_chips(model: str | None) -> int | None:
    return _EXPECTED_CHIPS.get(_model_key(model)) if model else None


def _max_temp(*values: Any) -> float | None:
    temps = [t for t in (_temp(v) for v in values) if t is not None]
    return max(temps) if temps else None


def _temp_list_max(values: Any) -> float | None:
    return _max_temp(*values) if isinstance(values, list) else None


def _board(
    index: int,
    *,
    rate: float | None,
    chips: int | None,
    expected: int | None,
    board_c: float | None,
    chip_c: float | None,
    nominal: float | None,
) -> Hashboard:
    if expected is not None and expected <= 0:
        expected = None
    if expected is not None and chips is not None and chips > expected:
        expected = chips  # more chips than the table says: the table is not this board's
    return Hashboard(
        index=index,
        hashrate_ths=rate,
        chips=chips,
        chips_expected=expected,
        temp_board_c=board_c,
        temp_chip_c=chip_c,
        nominal_ths=_positive(nominal),
    )


def _chain_rates(chain: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(measured, ideal)`` rate of one chain, in the stats' ``rate_unit``."""
    rate = _num(chain.get("rate"))
    if rate is None:
        rate = _num(chain.get("rate_real"))
    ideal = _num(chain.get("rateideal"))
    if ideal is None:
        ideal = _num(chain.get("rate_ideal"))
    return rate, ideal


def _antminer_chains(stats: Mapping[str, Any], model: str | None) -> list[Hashboard]:
    """Boards from bmminer/cgminer ``stats`` (stock Antminer, Vnish, LuxOS).

    The firmware prints a fixed set of slots (1-4 on an S19, 1-16 on an S9 whose boards are
    6, 7, 8) and leaves the ones without a detected chain empty (``chain_acn`` 0, ``""``
    rate and chip string).  A slot is a board when it has chips, a chip string, a nominal
    rate or a measured rate; one with nothing but a measured rate of 0 counts only while
    ``miner_count`` (the chains the firmware detected) leaves room for it.
    """
    chains: dict[int, dict[str, Any]] = {}
    temps_board: dict[int, list[Any]] = {}
    temps_chip: dict[int, list[Any]] = {}
    for key, value in stats.items():
        if key.startswith("chain_"):
            m = _CHAIN_KEY.fullmatch(key)
            if m:
                chains.setdefault(int(m.group(2)), {})[m.group(1)] = value
        elif key.startswith("temp"):
            m = _CHIP_TEMP_KEY.fullmatch(key)
            if m:
                temps_chip.setdefault(int(m.group(1)), []).append(value)
                continue
            m = _BOARD_TEMP_KEY.fullmatch(key)
            if m:
                temps_board.setdefault(int(m.group(1)), []).append(value)
    if not chains:
        return []
    factor = _rate_factor(stats.get("rate_unit"))
    strong: list[int] = []
    weak: list[int] = []
    for slot in sorted(chains):
        c = chains[slot]
        acn = _count(c.get("acn"))
        rate, ideal = _chain_rates(c)
        if (acn or 0) > 0 or _chip_marks(c.get("acs")) or (rate or 0) > 0 or (ideal or 0) > 0:
            strong.append(slot)
        elif rate == 0:
            weak.append(slot)
    detected = _count(stats.get("miner_count"))
    if detected is not None:
        weak = weak[: max(0, detected - len(strong))]
    slots = sorted(strong + weak)
    if not slots:
        return []
    per_board_ideal: float | None = None
    total_ideal = _num(stats.get("total_rateideal"))
    if total_ideal is not None and factor is not None and detected:
        per_board_ideal = total_ideal * factor / detected
    boards: list[Hashboard] = []
    for slot in slots:
        c = chains[slot]
        rate, ideal = _chain_rates(c)
        chips, expected = _chain_chips(c.get("acn"), c.get("acs"), model)
        boards.append(
            _board(
                slot,
                rate=rate * factor if rate is not None and rate >= 0 and factor else None,
                chips=chips,
                expected=expected,
                board_c=_max_temp(*temps_board.get(slot, ())),
                chip_c=_max_temp(*temps_chip.get(slot, ())),
                nominal=ideal * factor if ideal is not None and factor else per_board_ideal,
            )
        )
    return boards


def _antminer_chain_list(items: list[dict], model: str | None) -> list[Hashboard]:
    """Boards from the newer Antminer stats shape: ``"chain":[{"index":0,"rate_real":...,
    "asic_num":...,"asic":" ooo ooo",...}]`` with ``rate_unit`` beside it."""
    for item in items:
        chain = item.get("chain")
        if not isinstance(chain, list):
            continue
        factor = _rate_factor(item.get("rate_unit"))
        boards: dict[int, Hashboard] = {}
        for pos, c in enumerate(chain):
            if not isinstance(c, dict):
                continue
            index = _count(c.get("index"))
            index = pos if index is None else index
            rate = _num(c.get("rate_real"))
            chips, expected = _chain_chips(c.get("asic_num"), c.get("asic"), model)
            ideal = _num(c.get("rate_ideal"))
            boards.setdefault(
                index,
                _board(
                    index,
                    rate=rate * factor if rate is not None and rate >= 0 and factor else None,
                    chips=chips,
                    expected=expected,
                    board_c=_temp_list_max(c.get("temp_pcb")),
                    chip_c=_temp_list_max(c.get("temp_chip")),
                    nominal=ideal * factor if ideal is not None and factor else None,
                ),
            )
        if boards:
            return [boards[i] for i in sorted(boards)]
    return []


def _dev_index(item: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        i = _count(item.get(key))
        if i is not None and i < 1000:
            return i
    return None


def _devs_boards(
    sections: Mapping[str, Mapping[str, Any]], fw: str, model: str | None
) -> list[Hashboard]:
    """Boards from ``devs``/``edevs`` (one DEVS item per board), ``devdetails`` (chips) and
    ``temps`` (Braiins), matched by the firmware's own board number."""
    devs = _items(sections.get("devs"), "DEVS") or _items(sections.get("edevs"), "DEVS")
    details = _items(sections.get("devdetails"), "DEVDETAILS") if fw == "braiins" else []
    temps = _items(sections.get("temps"), "TEMPS") if fw == "braiins" else []
    if fw == "whatsminer":
        order: tuple[str, ...] = ("Slot", "ASC", "ID")  # the physical slot first
    else:
        order = ("ID", "ASC")  # BOSminer: "Hash Chain 6" is ID 6 in devs, devdetails, temps
    fields: dict[int, dict[str, Any]] = {}
    for item in devs:
        i = _dev_index(item, order)
        if i is not None and i not in fields:
            nominal = _num(item.get("Nominal MHS", item.get("nominal MHS")))  # BOSminer
            if nominal is not None:
                nominal *= 1e-6
            else:
                nominal = _num(item.get("Factory GHS"))  # btminer
                nominal = nominal * 1e-3 if nominal is not None else None
            fields[i] = {
                "rate": _first_rate(item, _DEV_RATE_KEYS),
                "chips": _count(item.get("Effective Chips")),
                "board_c": _temp(item.get("Temperature")),
                "chip_c": _temp(item.get("Chip Temp Max")) or _temp(item.get("Chip Temp Avg")),
                "nominal": nominal,
            }
    for item in details:
        i = _dev_index(item, ("ID", "DEVDETAILS"))
        chips = _count(item.get("Chips"))
        if i is not None and chips is not None:
            f = fields.setdefault(i, {})
            if f.get("chips") is None:
                f["chips"] = chips
    for item in temps:
        i = _dev_index(item, ("ID", "TEMP"))
        if i is not None:
            f = fields.setdefault(i, {})
            for key, name in (("board_c", "Board"), ("chip_c", "Chip")):
                if f.get(key) is None:
                    f[key] = _temp(item.get(name))
    expected = _expected_chips(model) if fw == "braiins" else None
    return [
        _board(
            i,
            rate=f.get("rate"),
            chips=f.get("chips"),
            expected=expected,
            board_c=f.get("board_c"),
            chip_c=f.get("chip_c"),
            nominal=f.get("nominal"),
        )
        for i, f in sorted(fields.items())
    ]


def _avalon_boards(mm: Mapping[str, list[str]]) -> list[Hashboard]:
    """Boards from Avalon's MM blob: ``MGHS[a b c]`` GH/s per board, ``MTmax`` hottest chip
    per board, ``PVT_T<n>`` one temperature per chip of board n (0: no reading)."""
    rates = mm.get("MGHS") or []
    hottest = mm.get("MTmax") or []
    boards: list[Hashboard] = []
    for i, raw in enumerate(rates[:16]):
        rate = _num(raw)
        chip_temps = [_num(v) for v in mm.get(f"PVT_T{i}") or []]
        read = sum(1 for t in chip_temps if t is not None and t > 0)
        boards.append(
            _board(
                i,
                rate=rate * 1e-3 if rate is not None and rate >= 0 else None,
                chips=read or None,  # a chip without a reading is not proof of a missing chip
                expected=None,
                board_c=None,
                chip_c=_temp(hottest[i]) if i < len(hottest) else None,
                nominal=None,
            )
        )
    return boards


def _fit_units(boards: list[Hashboard], rig_ths: float | None) -> list[Hashboard]:
    """Rescale per-board hashrates sent in the wrong unit.

    Some firmware labels TH/s figures "MHS" (btminer DEVS on newer Whatsminer firmware) or
    sends chain rates in another unit than its ``rate_unit``: the boards then add up to a
    thousandth (or a thousand times) of the rig's own total.  When a power of 1000 brings
    the sum within a factor of 2 of the total, apply it; otherwise keep the figures.
    """
    rates = [b.hashrate_ths for b in boards if b.hashrate_ths is not None]
    total = sum(rates)
    if not rates or total <= 0 or not rig_ths or rig_ths <= 0:
        return boards
    ratio = total / rig_ths
    if 0.2 <= ratio <= 5:
        return boards
    for k in (1e3, 1e-3, 1e6, 1e-6):
        if 0.5 <= ratio * k <= 2:
            return [
                replace(b, hashrate_ths=b.hashrate_ths * k) if b.hashrate_ths is not None else b
                for b in boards
            ]
    return boards


def _boards(
    sections: Mapping[str, Mapping[str, Any]],
    fw: str,
    stats: Mapping[str, Any],
    mm: Mapping[str, list[str]],
    model: str | None,
) -> list[Hashboard]:
    stats_reply = sections.get("stats") or {}
    info = stats_reply.get("INFO")  # the newer Antminer stats: {"INFO":{"type":...},...}
    if model is None and isinstance(info, dict):
        model = _text(info.get("type")) or _text(info.get("Type"))
    boards = _antminer_chain_list(_items(stats_reply, "STATS"), model)
    if not boards:
        boards = _antminer_chains(stats, model)
    if not boards and fw in ("whatsminer", "braiins"):
        boards = _devs_boards(sections, fw, model)
    if not boards and mm:
        boards = _avalon_boards(mm)
    return boards


def _nominal(
    summary: Mapping[str, Any],
    stats: Mapping[str, Any],
    mm: Mapping[str, list[str]],
    boards: list[Hashboard],
) -> float | None:
    """The rig's own ideal / factory hashrate, TH/s."""
    factor = _rate_factor(stats.get("rate_unit"))
    ideal = _num(stats.get("total_rateideal", stats.get("rate_ideal")))
    if ideal is not None and factor is not None:
        return _positive(ideal * factor)
    factory = _num(summary.get("Factory GHS"))  # btminer
    if factory is not None:
        return _positive(factory * 1e-3)
    if mm.get("GHSmm"):  # Avalon
        ghs = _num(mm["GHSmm"][0])
        return _positive(ghs * 1e-3) if ghs is not None else None
    per_board = [b.nominal_ths for b in boards]
    if per_board and all(n is not None for n in per_board):
        return _positive(sum(n for n in per_board if n is not None))
    return None


def _firmware_version(
    fw: str,
    sections: Mapping[str, Mapping[str, Any]],
    summary: Mapping[str, Any],
    stats: Mapping[str, Any],
    mm: Mapping[str, list[str]],
) -> str | None:
    """The firmware's version as it reports it (best effort, verbatim)."""
    version = _first_item(sections.get("version"), "VERSION")
    candidates: list[Any] = []
    if fw == "luxos":
        candidates += [version.get("LUXminer"), stats.get("LUXminer"), version.get("Miner")]
    elif fw == "braiins":
        candidates += [version.get("BOSminer+"), version.get("BOSminer"), version.get("BOSer")]
        desc = _status_description(sections.get("summary"))
        if desc and desc.lower().startswith(("bosminer", "boser")):
            candidates.append(desc)  # "BOSminer+ 0.2.0-ea64aec8e"
    elif fw == "vnish":
        candidates += [stats.get("build_version")]
    elif fw == "whatsminer":
        fv = _text(summary.get("Firmware Version"))
        candidates.append(fv.strip("'") if fv else None)
    elif fw == "avalon":
        candidates += [version.get("VERSION"), version.get("LVERSION")]
        candidates += [(mm.get("Ver") or [""])[0] or None]
    info = (sections.get("stats") or {}).get("INFO")
    candidates += [version.get("CompileTime"), stats.get("CompileTime")]
    if isinstance(info, dict):
        candidates.append(info.get("CompileTime"))
    for c in candidates:
        t = _text(c)
        if t is not None:
            return t.strip()
    return None


_MAC_SEPARATORS = re.compile(r"[:\-.]")
_MAC_HEX = re.compile(r"[0-9a-fA-F]{12}")


def _mac(value: Any) -> str | None:
    """``AA:BB:CC:DD:EE:FF`` from "b4a2eb3fa0c1" / "b4:a2:..." ; None for anything else."""
    t = _text(value)
    if t is None or len(t) > 32:
        return None
    digits = _MAC_SEPARATORS.sub("", t.strip())
    if not _MAC_HEX.fullmatch(digits) or int(digits, 16) == 0:
        return None
    digits = digits.upper()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def reading_from_sections(
    sections: Mapping[str, Mapping[str, Any]],
    *,
    rig_id: str,
    host: str,
    port: int,
    time: float,
    firmware: str | None = None,
) -> RigReading:
    """Build a :class:`RigReading` from the parsed replies, keyed by command.

    ``summary`` is required and must carry a success status; the other sections are used
    when present (an error status in them is ignored).
    """
    summary_reply = sections.get("summary")
    if summary_reply is None:
        raise _bad_reply("no summary section")
    _check_status(summary_reply, "summary")
    ok = {
        cmd: sec
        for cmd, sec in sections.items()
        if cmd == "summary" or status_of(sec)[0] in ("S", "I", "?")
    }
    stats = _merged_stats(ok.get("stats"))
    fw = firmware or detect_firmware(ok, stats=stats)
    summary = _first_item(summary_reply, "SUMMARY")
    mm = _avalon_mm(_items(ok.get("stats"), "STATS"))

    live = _first_rate(summary, _LIVE_KEYS)
    avg = _first_rate(summary, _AVG_KEYS)
    if live is None:
        live = _first_rate(stats, _LIVE_KEYS)
    if avg is None:
        avg = _first_rate(stats, _AVG_KEYS)
    if live is None and mm.get("GHSspd"):
        live = _num(mm["GHSspd"][0])
        live = live * 1e-3 if live is not None else None
    if live is None and avg is None:
        raise _bad_reply("no hashrate in summary")

    # power: reported or firmware estimate; stock Antminer has none
    power: float | None = _num(summary.get("Power"))
    if power is None:
        tuner = _first_item(ok.get("tunerstatus"), "TUNERSTATUS")
        power = _num(tuner.get("ApproximateMinerPowerConsumption"))
    if power is None:
        pw = _first_item(ok.get("power"), "POWER")
        power = _num(pw.get("Watts"))
    if power is None and mm.get("WALLPOWER"):
        power = _num(mm["WALLPOWER"][0])
    if power is None:
        chains = [
            _num(v)
            for k, v in stats.items()
            if k.startswith("chain_consumption") and _CHAIN_POWER_KEY.fullmatch(k)
        ]
        total = sum(c for c in chains if c)
        power = total if total > 0 else None
    if power is not None and power <= 0:
        power = None

    temps: list[float] = []
    fans: list[int] = []
    if fw == "whatsminer" or "Fan Speed In" in summary:
        for key in ("Temperature", "Chip Temp Max"):
            t = _temp(summary.get(key))
            if t is not None:
                temps.append(t)
        for key in ("Fan Speed In", "Fan Speed Out"):
            r = _rpm(summary.get(key))
            if r is not None:
                fans.append(r)
    for t_item in _items(ok.get("temps"), "TEMPS"):  # Braiins
        t = _temp(t_item.get("Chip")) or _temp(t_item.get("Board"))
        if t is not None:
            temps.append(t)
    for f_item in _items(ok.get("fans"), "FANS"):
        r = _rpm(f_item.get("RPM"))
        if r is not None:
            fans.append(r)
    if mm:  # Avalon
        for mt in mm.get("MTmax") or mm.get("TMax") or []:
            tv = _temp(mt)
            if tv is not None:
                temps.append(tv)
        for i in range(1, 9):
            r = _rpm((mm.get(f"Fan{i}") or [""])[0] or None)
            if r is not None:
                fans.append(r)
    if not temps:
        temps = _antminer_temps(stats)
    if not fans:
        fans = _antminer_fans(stats)

    uptime = _num(summary.get("Elapsed"))
    if uptime is None:
        uptime = _num(stats.get("Elapsed"))

    model = extract_model(ok, stats=stats)
    boards = _fit_units(_boards(ok, fw, stats, mm, model), live if live is not None else avg)
    version = _first_item(ok.get("version"), "VERSION")

    return RigReading(
        rig_id=rig_id,
        host=host,
        port=port,
        time=time,
        ok=True,
        model=model,
        hashrate_ths=live if live is not None else avg,
        hashrate_avg_ths=avg,
        power_w=power,
        temps_c=tuple(temps),
        fans_rpm=tuple(fans),
        pool=_active_pool(ok.get("pools")),
        uptime_s=int(uptime) if uptime is not None and uptime >= 0 else None,
        firmware=fw,
        hostname=None,
        protocol="cgminer",
        boards=tuple(boards),
        accepted=_count(summary.get("Accepted")),
        nominal_ths=_nominal(summary, stats, mm, boards),
        firmware_version=_firmware_version(fw, ok, summary, stats, mm),
        mac=_mac(summary.get("MAC")) or _mac(version.get("MAC")),
    )


# --------------------------------------------------------------------------- transport


class _QueryProtocol(asyncio.Protocol):
    """Send one request, collect the reply until the NUL or EOF into ``done``."""

    def __init__(self, request: bytes, done: asyncio.Future[bytes], max_bytes: int) -> None:
        self.request = request
        self.done = done
        self.max_bytes = max_bytes
        self.chunks: list[bytes] = []
        self.size = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.size > self.max_bytes:
            self.done.set_exception(_bad_reply(f"reply larger than {self.max_bytes // 1024} KiB"))
            assert self.transport is not None
            self.transport.abort()
        elif data.endswith(b"\x00"):
            self._finish()  # the reply is complete; do not wait for the close

    def eof_received(self) -> bool:
        self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if exc is not None:
            self.done.set_exception(exc)
        else:
            self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(b"".join(self.chunks))


async def query(host: str, port: int, command: str, *, max_bytes: int = MAX_REPLY) -> bytes:
    """Send one request and read the reply to EOF (or to its closing NUL).

    No timeout here: callers bound the whole exchange (see :func:`read_cgminer`).
    Raises :class:`RigError` on a socket error or a reply over ``max_bytes``.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    request = json.dumps({"command": command}, separators=(",", ":")).encode()
    try:
        transport, _ = await loop.create_connection(
            lambda: _QueryProtocol(request, done, max_bytes), host, port
        )
    except OSError as e:
        raise describe_os_error(e) from None
    try:
        return await done
    except OSError as e:
        raise describe_os_error(e) from None
    finally:
        if done.done():
            transport.close()
        else:  # cancelled (deadline): drop the connection at once
            transport.abort()


@dataclass(slots=True)
class RigProfile:
    """What a poller has learnt about one rig; :func:`read_cgminer` updates it in place."""

    firmware: str | None = None  #: detected flavour (selects the commands asked)
    multi: bool = True  #: False once its multi-command replies proved unusable


async def _fetch_single(host: str, port: int, command: str) -> dict[str, Any]:
    return parse_reply(await query(host, port, command))


async def _fetch(
    host: str,
    port: int,
    commands: tuple[str, ...],
    profile: RigProfile,
    *,
    required: str | None = "summary",
) -> dict[str, dict]:
    """Replies for ``commands`` keyed by command: one multi-command request, or (when that
    does not parse or is refused) one request per command.

    A failure of the ``required`` command raises; the others are best effort.
    """
    if profile.multi and len(commands) > 1:
        try:
            reply: dict[str, Any] | None = parse_reply(await query(host, port, "+".join(commands)))
        except CgminerError:
            reply = None  # garbage or cut short: try one command at a time
        if reply is not None:
            sections = split_multi(reply, commands)
            if sections and (required is None or required in sections):
                return sections
        result = await _fetch_split(host, port, commands, required)
        profile.multi = False  # the split worked where the multi did not: stop trying it
        return result
    return await _fetch_split(host, port, commands, required)


async def _fetch_split(
    host: str, port: int, commands: tuple[str, ...], required: str | None
) -> dict[str, dict]:
    sections: dict[str, dict] = {}
    for cmd in commands:
        try:
            sections[cmd] = await _fetch_single(host, port, cmd)
        except RigError as e:
            if cmd == required or e.kind == "timeout":
                raise
            # an optional command that fails (or a rig that drops the connection on an
            # unknown command): keep what we have
            continue
        if cmd == required:
            _check_status(sections[cmd], cmd)  # an error status: no point asking the rest
    return sections


async def _read(
    host: str,
    port: int,
    rig_id: str,
    clock: Callable[[], float],
    profile: RigProfile,
) -> RigReading:
    commands = COMMANDS.get(profile.firmware, COMMANDS[None])
    sections = await _fetch(host, port, commands, profile)
    summary = sections.get("summary")
    if summary is not None:
        _check_status(summary, "summary")
    detected = detect_firmware(sections)
    wanted = COMMANDS.get(detected, COMMANDS[None])
    missing = tuple(c for c in wanted if c not in sections)
    if detected != profile.firmware and missing:
        # first contact with a non-Antminer firmware: ask what it needs (model, power)
        try:
            more = await _fetch(host, port, missing, profile, required=None)
        except CgminerError:
            more = {}
        for cmd, sec in more.items():
            sections.setdefault(cmd, sec)
    profile.firmware = detected
    return reading_from_sections(
        sections, rig_id=rig_id, host=host, port=port, time=clock(), firmware=detected
    )


_T = TypeVar("_T")


async def within_deadline(timeout: float, coro: Coroutine[Any, Any, _T]) -> _T:
    """Await ``coro`` within ``timeout`` s (asyncio.TimeoutError after).  Python 3.11+ has
    ``asyncio.timeout``, cheaper than ``wait_for`` (no extra task per rig)."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await coro
    return await asyncio.wait_for(coro, timeout)  # pragma: no cover - Python 3.10


async def read_cgminer(
    host: str,
    port: int = DEFAULT_PORT,
    *,
    timeout: float = 3.0,
    rig_id: str | None = None,
    clock: Callable[[], float] = time.time,
    profile: RigProfile | None = None,
) -> RigReading:
    """Read one rig over the cgminer API, the whole exchange within ``timeout`` seconds.

    Returns an ``ok=True`` :class:`RigReading`; raises :class:`RigError` otherwise
    ("connection refused", "timed out after 3 s", "bad reply: truncated reply",
    "rig reports error: ...").  Pass the same ``profile`` on every poll of a rig.
    """
    prof = profile if profile is not None else RigProfile()
    return await rig_exchange(timeout, _read(host, port, rig_id or f"{host}:{port}", clock,
                                             prof))


async def rig_exchange(timeout: float, coro: Coroutine[Any, Any, _T]) -> _T:
    """One exchange with a rig within ``timeout`` s: a timeout or a socket error becomes
    the one-line :class:`RigError` every rig reader raises ("timed out after 3 s",
    "connection refused"...)."""
    try:
        return await within_deadline(timeout, coro)
    except asyncio.TimeoutError:
        raise timeout_error(timeout) from None
    except RigError:
        raise
    except OSError as e:
        raise describe_os_error(e) from None


async def identify(
    host: str, port: int = DEFAULT_PORT, *, timeout: float = 1.0
) -> tuple[str | None, str] | None:
    """``(model, firmware)`` of whatever answers the cgminer API at host:port.

    None when nothing listens, nothing answers in time, or the answer is not a cgminer
    reply; a rig that answers with an error status (API access denied) is found with
    model None.  Asks ``version+devdetails`` (one connection), then ``stats`` if unnamed.
    """

    async def probe() -> tuple[str | None, str] | None:
        profile = RigProfile()
        try:
            answered = await _fetch(host, port, ("version", "devdetails"), profile, required=None)
        except RigError:
            return None
        if not answered:
            return None  # nothing that parses as a cgminer reply
        sections = {c: s for c, s in answered.items() if status_of(s)[0] in ("S", "I", "?")}
        model = extract_model(sections)
        if model is None:
            try:
                stats = await _fetch_single(host, port, "stats")
            except RigError:
                pass
            else:
                if status_of(stats)[0] in ("S", "I", "?"):
                    sections["stats"] = stats
                    model = extract_model(sections)
        return model, detect_firmware(sections or answered)

    try:
        return await within_deadline(timeout, probe())
    except (asyncio.TimeoutError, OSError):
        return None
