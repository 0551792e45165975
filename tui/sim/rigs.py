"""A simulated mining site on loopback: rigs that speak the real protocols, quirks included.

Each rig listens on its own loopback address (127.0.0.0/8 is all loopback on Linux, so
127.0.1.1:4028, 127.0.1.2:4028, ... need no set-up) and answers the way its firmware does:

- ``antminer`` (stock bmminer/cgminer): ``GHS 5s`` as a JSON *string*, ``GHS av`` a number,
  ``Type`` "Antminer S19j Pro" in ``stats``/``version``, per-board temperatures and fans in
  ``stats`` (S9 on slots 6-8), the hashboards there too (``chain_rateN`` GH/s as a string,
  ``chain_acnN`` chips found, ``chain_acsN`` chip status, ``total_rateideal``), no power;
- ``whatsminer`` (btminer, API v2 on 4028): ``MHS`` figures, ``Power``, ``Temperature``,
  ``Fan Speed In/Out`` in ``summary``, the model in ``devdetails``, the hashboards in
  ``devs``/``edevs`` (``ASC``/``Slot``, ``MHS av``, ``Effective Chips``, ...), errors in
  btminer's top-level STATUS form;
- ``braiins`` (BOSminer): ``MHS`` figures, ``devdetails`` model and ``Chips``, per-chain
  ``devs``, a power estimate in ``tunerstatus``, ``temps``, ``fans``;
- ``avalon`` (Canaan cgminer): ``MHS 30s``/``1m``, the "MM ID0" blob in ``stats``
  (``Temp[..] MTmax[..] Fan1[..] WALLPOWER[..] MGHS[..]``), ``PROD`` in ``version``;
- ``bitaxe`` (ESP-Miner): HTTP ``GET /api/system/info``;
- ``whatsminer-v3`` (btminer 2025 firmware, Whatsminer API v3): TCP on 4433 only (nothing on
  4028); every message both ways is a 4-byte little-endian length then that many bytes of
  JSON, several requests per connection.  ``get.device.info`` and ``get.miner.status``
  (``summary``, ``edevs``, ``pools``, or several joined by ``+``) answer
  ``{"code":0,"when":..,"msg":{..},"desc":..}``; ``set.*`` is refused (code -4, "no
  permission": write access is off by default), unknown commands get code -2, requests
  that are not a JSON object with a ``cmd`` code -3.

Behaviours: ``ok``; ``offline`` (nothing listens: connection refused); ``hang`` (accepts,
never answers); ``garbage`` (non-JSON bytes); ``truncated`` (half the reply, then close; v3:
a length prefix larger than what follows); ``slow`` (answers after ``slow_delay`` s);
``error_status`` (STATUS "E", access denied; v3: code -1); ``stuck`` (answers normally but
hashes nothing: the live/realtime hashrate is 0, the average decays from nominal as
``exp(-t/3600)`` since it got stuck, the accepted-shares counter stops, power a bit lower);
``dead_board`` (one hashboard reports 0 hashrate and 0 chips, the rig's hashrate is the sum
of the others, power drops in proportion).

Quirks (firmware defects seen in the field, injected on demand; cgminer-style text only):
``glued`` (``}{``), ``leading_comma`` (``[,{``), ``trailing_comma`` (``,}``),
``missing_comma`` (``"a""b"``), ``raw_newline``, ``control_chars``, ``inf_nan``,
``invalid_utf8``, ``no_nul``, ``multi_broken`` (multi-command replies that do not parse),
``multi_unsupported`` (multi-command requests refused with an error status).

Hashrates are noisy around nominal (seeded), split over 3 hashboards that sum to the rig's
figure; chips per board are pyasic's ``expected_chips`` for the variant reported;
temperatures and fans plausible per model.  Every flavour counts accepted shares: the
counter grows with the clock at the rate the hashrate earns at the pool's difficulty
(deterministic from the seed and the clock).  No Textual import here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import random
import resource
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tui.sim.http import HttpServer, Request, Response, check_loopback

if TYPE_CHECKING:
    from tui.sources.rigs import RigTarget

__all__ = [
    "BEHAVIOURS",
    "FLAVOURS",
    "QUIRKS",
    "RigSite",
    "SimRig",
    "SimRigSpec",
    "assign_hosts",
    "demo_site_specs",
    "mixed_site_specs",
    "raise_nofile_limit",
    "start_rig_site",
]

FLAVOURS = ("antminer", "whatsminer", "braiins", "avalon", "bitaxe", "whatsminer-v3")
BEHAVIOURS = (
    "ok",
    "offline",
    "hang",
    "garbage",
    "truncated",
    "slow",
    "error_status",
    "stuck",
    "dead_board",
)
#: The usual ports: the cgminer-style API (also what the simulated Bitaxes serve HTTP on,
#: since 80 needs root) and Whatsminer API v3.
API_PORT = 4028
V3_PORT = 4433
QUIRKS = frozenset(
    {
        "glued",
        "leading_comma",
        "trailing_comma",
        "missing_comma",
        "raw_newline",
        "control_chars",
        "inf_nan",
        "invalid_utf8",
        "no_nul",
        "multi_broken",
        "multi_unsupported",
    }
)

#: Realistic pool URLs (data only: nothing connects to them).
POOLS = (
    "stratum+tcp://btc.f2pool.com:1314",
    "stratum+tcp://ss.antpool.com:3333",
    "stratum+tcp://stratum.braiins.com:3333",
    "stratum+tcp://btc.viabtc.io:3333",
    "stratum+tcp://sha256.poolbinance.com:8888",
)

_GARBAGE = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    b"\x15\x03\x01\x00\x02\x02\x50",
    b"<html><body>Login required</body></html>\n",
    b"STATUS=E,When=0,Code=14,Msg=Invalid command,Description=cgminer|",
)

_WHATSMINER_SUFFIX = {
    "M30S++": "V40",
    "M30S+": "V100",
    "M30S": "V50",
    "M60S": "VK30",
    "M66S": "VK30",
}
#: Chips per hashboard: pyasic's ``expected_chips`` (pyasic/miners/device/models/...) for the
#: variant each flavour reports (M30S++: pyasic has no V40, its V10/V20 count is used).
_BOARD_CHIPS = {
    "S9": 63,
    "S19": 76,
    "S19 Pro": 114,
    "S19j Pro": 126,
    "S19k Pro": 77,
    "S19 XP": 110,
    "S21": 108,
    "S21 Pro": 65,
    "S21 XP": 91,
    "M30S": 156,  # M30SV50
    "M30S+": 215,  # M30SPlusV100
    "M30S++": 255,  # M30SPlusPlusV10/V20
    "M60S": 245,  # M60SVK30
    "M66S": 384,  # M66SVK30
}
_BOARDS = 3
#: The pools' share difficulty: accepted shares come at hashrate / (diff * 2^32) a second.
_SHARE_DIFF = 65536
#: How much a stuck rig still draws (fans and control board on, chips idle but powered).
_STUCK_POWER = 0.85
#: How long a rig that starts ``stuck`` has been stuck when the site starts (seconds).
_STUCK_FOR = 600.0
_BITAXE_ASIC = {
    "Bitaxe Gamma": "BM1370",
    "Bitaxe Supra": "BM1368",
    "Bitaxe Ultra": "BM1366",
    "Bitaxe Max": "BM1397",
}


@dataclass(frozen=True)
class SimRigSpec:
    """One simulated rig.  ``model`` is the catalog name ("S19j Pro", "M30S++",
    "Avalon A1366", "Bitaxe Gamma"); each flavour reports it the way its firmware does."""

    name: str
    model: str
    flavour: str = "antminer"
    hashrate_ths: float = 100.0  #: nominal
    power_w: float = 3000.0  #: nominal (reported only by firmware that reports power)
    behaviour: str = "ok"
    quirks: frozenset[str] = frozenset()
    host: str | None = None  #: None: assigned from the site's host_base
    port: int | None = None  #: None: the site's port (whatsminer-v3: its v3 port)
    slow_delay: float = 1.5  #: seconds, for behaviour "slow"
    pool: str = POOLS[0]

    def __post_init__(self) -> None:
        if self.flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {self.flavour!r} (known: {', '.join(FLAVOURS)})")
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.behaviour!r}")
        unknown = set(self.quirks) - QUIRKS
        if unknown:
            raise ValueError(f"unknown quirks {sorted(unknown)}")
        if self.flavour == "whatsminer-v3" and self.quirks:
            raise ValueError("the quirks are cgminer-text defects: none apply to whatsminer-v3")
        if self.flavour == "bitaxe" and self.behaviour == "dead_board":
            raise ValueError("a Bitaxe has no hashboards: dead_board does not apply")
        object.__setattr__(self, "quirks", frozenset(self.quirks))

    @property
    def reported_model(self) -> str:
        m = self.model
        if self.flavour == "antminer":
            return m if m.startswith("Antminer") else f"Antminer {m}"
        if self.flavour == "braiins":
            return f"Bitmain Antminer {m.removeprefix('Antminer ')}"
        if self.flavour == "whatsminer":
            return m + _WHATSMINER_SUFFIX.get(m, "V10")
        if self.flavour == "whatsminer-v3":  # miner.type in get.device.info: "M60S_VK30"
            return f"{m}_{_WHATSMINER_SUFFIX.get(m, 'VK30')}"
        if self.flavour == "avalon":
            digits = "".join(ch for ch in m if ch.isdigit())
            return f"AvalonMiner {digits or m}"
        return m  # bitaxe: reported through ASICModel

    @property
    def kind(self) -> str:
        """How the rig is read (a ``RigTarget`` kind)."""
        if self.flavour in ("bitaxe", "whatsminer-v3"):
            return self.flavour
        return "cgminer"

    @property
    def board_slots(self) -> tuple[int, ...]:
        """How the firmware numbers the hashboards (none for a Bitaxe)."""
        if self.flavour == "bitaxe":
            return ()
        if self.flavour in ("antminer", "braiins"):
            return (6, 7, 8) if self.model == "S9" else (1, 2, 3)
        return tuple(range(_BOARDS))

    @property
    def chips_per_board(self) -> int:
        return 1 if self.flavour == "bitaxe" else _BOARD_CHIPS.get(self.model, 100)


# --------------------------------------------------------------------------- rendering

_INF = "__SIM_INF__"
_BAD_UTF8 = "__SIM_BAD_UTF8__"


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _render_items(items: list[dict], quirks: frozenset[str]) -> str:
    parts = [_dumps(i) for i in items]
    if "trailing_comma" in quirks:
        parts = [p[:-1] + ",}" if p.endswith("}") and len(p) > 2 else p for p in parts]
    body = ("" if "glued" in quirks else ",").join(parts)
    if "leading_comma" in quirks and parts:
        body = "," + body
    return "[" + body + "]"


def _render_section(
    status: dict, key: str | None, items: list[dict], quirks: frozenset[str]
) -> str:
    text = "{" + '"STATUS":' + _render_items([status], frozenset())
    if key is not None:
        text += f',"{key}":' + _render_items(items, quirks)
    text += ',"id":1}'
    if "missing_comma" in quirks:
        # the btminer 2023 defect: two string values with no comma between them
        i = text.find('","', text.find(f'"{key}"') if key else 0)
        if i > 0:
            text = text[:i] + '""' + text[i + 3 :]
    if "raw_newline" in quirks:
        text = text.replace("\\n", "\n")
    if "control_chars" in quirks:
        text = text.replace("\\u0001", "\x01").replace("\\u001b", "\x1b")
    return text.replace(f'"{_INF}"', "inf")


def _finish(text: str, quirks: frozenset[str]) -> bytes:
    data = text.encode("utf-8")
    data = data.replace(_BAD_UTF8.encode(), b"\xff\xfe" if "invalid_utf8" in quirks else b"")
    return data if "no_nul" in quirks else data + b"\x00"


# --------------------------------------------------------------------------- one rig


class SimRig:
    """A running simulated rig: its spec, address and the figures it reports."""

    def __init__(
        self,
        spec: SimRigSpec,
        host: str,
        port: int,
        *,
        seed: int,
        clock: Callable[[], float],
    ) -> None:
        self.spec = spec
        self.host = host
        self.port = port
        self.behaviour = spec.behaviour
        self.clock = clock
        self.rng = random.Random(f"{seed}:{spec.name}")
        now = clock()
        self.boot_time = now - self.rng.uniform(3_600, 30 * 86_400)
        self.avg_bias = self.rng.gauss(0.0, 0.01)
        self.chip_base = self.rng.uniform(62.0, 74.0)
        self.fan_base = self.rng.uniform(0.85, 1.1)
        # the boards draw from their own stream: the figures above stay what they were
        brng = random.Random(f"{seed}:{spec.name}:boards")
        slots = spec.board_slots
        raw = [1.0 + brng.gauss(0.0, 0.02) for _ in slots]
        self.board_weights = [w / sum(raw) for w in raw]  #: each board's share of the rig
        self.dead_index = brng.randrange(len(slots)) if slots else 0  #: for ``dead_board``
        self.salt = "".join(brng.choice("abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                            for _ in range(8))
        self.pool = spec.pool
        #: when the rig got stuck (``stuck`` only)
        self.stuck_since: float | None = (
            max(self.boot_time, now - _STUCK_FOR) if self.behaviour == "stuck" else None
        )
        # the accepted-shares counter: base + rate * (t - t0), frozen while stuck
        self._acc_base = 0.0
        self._acc_t0 = self.boot_time
        self._acc_rate = self._share_rate()
        self.commands: Counter[str] = Counter()  #: requests served, by command string
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._http: HttpServer | None = None

    # ---------------------------------------------------------------- figures

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def target(self) -> RigTarget:
        from tui.sources.rigs import RigTarget

        return RigTarget(self.spec.name, self.host, self.port, self.spec.kind)

    @property
    def listing(self) -> str:
        """``name<TAB>kind<TAB>host:port``: how ``minertop sim`` lists the rig."""
        return f"{self.spec.name}\t{self.spec.kind}\t{self.host}:{self.port}"

    @property
    def stuck(self) -> bool:
        return self.behaviour == "stuck"

    def alive_share(self) -> float:
        """The share of the rig's nominal hashrate its working boards make (1.0 unless a
        board is dead)."""
        if self.behaviour == "dead_board" and self.board_weights:
            return 1.0 - self.board_weights[self.dead_index]
        return 1.0

    @property
    def share_diff(self) -> int:
        """The pool's share difficulty (fixed: the accepted count grows with the hashrate)."""
        return _SHARE_DIFF

    def _share_rate(self) -> float:
        """Accepted shares per second at the current behaviour (before any stall)."""
        ths = self.spec.hashrate_ths * (1.0 + self.avg_bias) * self.alive_share()
        return ths * 1e12 / (self.share_diff * 2**32)

    def _accepted_at(self, now: float) -> float:
        end = now if self.stuck_since is None else min(now, self.stuck_since)
        return self._acc_base + max(0.0, end - self._acc_t0) * self._acc_rate

    def accepted(self) -> int:
        """Accepted shares since boot: grows with the clock, stops while stuck."""
        return int(self._accepted_at(self.clock()))

    def last_share_time(self) -> int:
        now = self.clock()
        return int(min(now, self.stuck_since) if self.stuck_since is not None else now - 4)

    def _set_figures_behaviour(self, behaviour: str) -> None:
        """Switch behaviour keeping the counter continuous (and starting a stall now)."""
        now = self.clock()
        self._acc_base = self._accepted_at(now)
        self._acc_t0 = now
        was_stuck = self.stuck
        self.behaviour = behaviour
        if behaviour == "stuck":
            if not was_stuck:
                self.stuck_since = now
        else:
            self.stuck_since = None
        self._acc_rate = self._share_rate()

    def live_ths(self) -> float:
        """The live (5 s / realtime) hashrate: 0 when stuck."""
        noisy = self.spec.hashrate_ths * (1.0 + self.rng.gauss(0.0, 0.015))
        if self.stuck:
            return 0.0
        return max(0.0, noisy * self.alive_share())

    def avg_ths(self) -> float:
        """The average since boot: decays as exp(-t/3600) once stuck."""
        avg = max(0.0, self.spec.hashrate_ths * (1.0 + self.avg_bias)) * self.alive_share()
        if self.stuck and self.stuck_since is not None:
            avg *= math.exp(-max(0.0, self.clock() - self.stuck_since) / 3600.0)
        return avg

    def window_ths(self, seconds: float, ok_value: float) -> float:
        """A windowed average (1 m, 5 m, 15 m, ...): ``ok_value`` unless stuck, then the
        part of the window from before the stall."""
        if not self.stuck or self.stuck_since is None:
            return ok_value
        before = max(0.0, 1.0 - (self.clock() - self.stuck_since) / seconds)
        return self.spec.hashrate_ths * (1.0 + self.avg_bias) * before

    def power(self) -> float:
        watts = self.spec.power_w * (1.0 + self.rng.gauss(0.0, 0.01))
        if self.stuck:
            return watts * _STUCK_POWER
        return watts * self.alive_share()

    def elapsed(self) -> int:
        return max(0, int(self.clock() - self.boot_time))

    def board_dead(self, i: int) -> bool:
        return self.behaviour == "dead_board" and i == self.dead_index

    def board_split(self, total: float) -> list[float]:
        """``total`` (the rig's figure) split over its boards; a dead board gets 0 and the
        others sum to ``total``."""
        alive = self.alive_share()
        return [0.0 if self.board_dead(i) else total * w / alive
                for i, w in enumerate(self.board_weights)]

    def board_chips(self) -> list[int]:
        return [0 if self.board_dead(i) else self.spec.chips_per_board
                for i in range(len(self.board_weights))]

    def chip_status(self, i: int) -> str:
        """Antminer's ``chain_acsN``: an 'o' per chip found, in groups of 8 ('' if none)."""
        n = self.board_chips()[i]
        return " ".join("o" * min(8, n - k) for k in range(0, n, 8))

    def _chip_temps(self, n: int) -> list[float]:
        return [round(self.chip_base + self.rng.uniform(-3, 3), 1) for _ in range(n)]

    def _board_temps(self) -> list[float]:
        """Hottest chip per board (0 for a dead one: no sensor read)."""
        temps = self._chip_temps(len(self.board_weights))
        return [0.0 if self.board_dead(i) else t for i, t in enumerate(temps)]

    def _fan_rpms(self, n: int, nominal: int) -> list[int]:
        return [int(nominal * self.fan_base + self.rng.randint(-90, 90)) for _ in range(n)]

    def _status(self, code: int, msg: str, desc: str) -> dict:
        return {"STATUS": "S", "When": int(self.clock()), "Code": code, "Msg": msg,
                "Description": desc}

    def _error(self, command: str, desc: str) -> dict:
        if self.behaviour == "error_status":
            return {"STATUS": "E", "When": int(self.clock()), "Code": 45,
                    "Msg": f"Access denied to '{command}' command", "Description": desc}
        return {"STATUS": "E", "When": int(self.clock()), "Code": 14, "Msg": "Invalid command",
                "Description": desc}

    def _diff_text(self) -> str:
        d = self.share_diff
        return f"{d / 1e6:.2f}M" if d >= 1_000_000 else f"{d / 1000:.1f}K" if d >= 1000 else str(d)

    def _pool_user(self) -> str:
        return "site." + self.spec.name.replace("-", "")

    def _pools(self, desc: str) -> tuple[dict, str, list[dict]]:
        user = self._pool_user()
        if "control_chars" in self.spec.quirks:
            user += "\x01"
        user += _BAD_UTF8
        acc = self.accepted()
        pools = []
        for i, url in enumerate((self.pool, POOLS[1] if self.pool != POOLS[1] else POOLS[2])):
            pools.append(
                {"POOL": i, "URL": url, "Status": "Alive", "Priority": i, "Quota": 1,
                 "Long Poll": "N", "Getworks": 10_000 - i * 9_990, "Accepted": acc if i == 0
                 else 0, "Rejected": acc // 1500 if i == 0 else 0, "Stale": 0, "User": user,
                 "Last Share Time": self.last_share_time() if i == 0 else 0,
                 "Diff": self._diff_text(), "Stratum Active": i == 0,
                 "Stratum URL": url.split("//")[-1].rsplit(":", 1)[0],
                 "Difficulty Accepted": float(acc * self.share_diff) if i == 0 else 0.0,
                 "Pool Rejected%": 0.07, "Pool Stale%": 0.0}
            )
        return self._status(7, f"{len(pools)} Pool(s)", desc), "POOLS", pools

    # ---------------------------------------------------------------- per flavour

    def _antminer(self, cmd: str) -> tuple[dict, str | None, list[dict]] | None:
        desc = "cgminer 4.11.1" if self.spec.model != "S9" else "bmminer 1.0.0"
        model = self.spec.reported_model
        live, avg = self.live_ths() * 1000, self.avg_ths() * 1000
        ver = {"BMMiner": "1.0.0", "Miner": "uart_trans.1.3", "CompileTime":
               "Thu Aug 8 15:43:34 CST 2024", "Type": model}
        if cmd == "summary":
            acc = self.accepted()
            avg30 = self.window_ths(1800, avg / 1000 * 1.001) * 1000
            return self._status(11, "Summary", desc), "SUMMARY", [
                {"Elapsed": self.elapsed(), "GHS 5s": f"{live:.2f}", "GHS av": round(avg, 2),
                 "GHS 30m": round(avg30, 2), "Found Blocks": 0, "Getworks": acc // 3,
                 "Accepted": acc, "Rejected": acc // 1500, "Hardware Errors": 12,
                 "Utility": 7.5, "Discarded": acc * 2, "Stale": 0, "Get Failures": 0,
                 "Local Work": acc * 40, "Remote Failures": 0, "Network Blocks": 900,
                 "Total MH": round(avg * 1000 * self.elapsed(), 0),
                 "Work Utility": round(avg * 14.0, 2),
                 "Difficulty Accepted": float(acc * self.share_diff),
                 "Difficulty Rejected": float(self.share_diff), "Difficulty Stale": 0.0,
                 "Best Share": 1_234_567_890, "Device Hardware%": 0.0001,
                 "Device Rejected%": 0.05, "Pool Rejected%": 0.05, "Pool Stale%": 0.0,
                 "Last getwork": 0}
            ]
        if cmd == "stats":
            slots = self.spec.board_slots
            fan_slots = [3, 6] if self.spec.model == "S9" else [1, 2, 3, 4]
            nominal_fan = 5880 if self.spec.model == "S9" else 3600
            chips = self._board_temps()
            rates = self.board_split(live)
            found = self.board_chips()
            nominal = self.spec.hashrate_ths * 1000
            data: dict = {"STATS": 0, "ID": "BC50", "Elapsed": self.elapsed(), "Calls": 0,
                          "Wait": 0.0, "Max": 0.0, "Min": 99999999.0, "GHS 5s": f"{live:.2f}",
                          "GHS av": round(avg, 2),
                          "rate_30m": round(self.window_ths(1800, avg / 1000) * 1000, 2),
                          "Mode": 2, "miner_count": len(slots), "frequency": 525,
                          "fan_num": len(fan_slots)}
            for i, rpm in zip(fan_slots, self._fan_rpms(len(fan_slots), nominal_fan), strict=True):
                data[f"fan{i}"] = rpm
            data["temp_num"] = len(slots)
            for i, chip in zip(slots, chips, strict=True):
                data[f"temp{i}"] = int(chip - 14) if chip else 0  # PCB
            for i, chip in zip(slots, chips, strict=True):
                data[f"temp2_{i}"] = int(chip)  # chip
            if self.spec.model != "S9":
                for i, chip in zip(slots, chips, strict=True):
                    pcb = int(chip - 14) if chip else 0
                    c = int(chip)
                    if chip:
                        data[f"temp_pcb{i}"] = f"{pcb - 3}-{pcb - 5}-{pcb}-{pcb - 1}"
                        data[f"temp_chip{i}"] = f"{c - 12}-{c - 14}-{c}-{c - 1}"
                    else:  # a board that is not found reads no sensor
                        data[f"temp_pcb{i}"] = data[f"temp_chip{i}"] = "0-0-0-0"
            data["total_rateideal"] = round(nominal, 2)
            data["total_freqavg"] = 525.0
            data["total_acn"] = sum(found)
            data["total_rate"] = round(live, 2)
            for n, i in enumerate(slots):
                w = self.board_weights[n]
                data[f"chain_rateideal{i}"] = round(nominal * w, 2)
                data[f"chain_rate{i}"] = f"{rates[n]:.2f}"  # GH/s, a string on stock firmware
                data[f"chain_acn{i}"] = found[n]
                data[f"chain_acs{i}"] = self.chip_status(n)
                data[f"chain_hw{i}"] = 0 if self.board_dead(n) else 4 + n
            data["rate_unit"] = "GH/s"
            return self._status(70, "CGMiner stats", desc), "STATS", [ver, data]
        if cmd == "version":
            return self._status(22, "CGMiner versions", desc), "VERSION", [
                {"CGMiner": "4.11.1", "API": "3.1", **ver}
            ]
        if cmd == "pools":
            return self._pools(desc)
        return None

    def _whatsminer_devs(self) -> list[dict]:
        """btminer's ``devs``/``edevs``: one DEVS entry per hashboard (MH/s)."""
        live, avg = self.live_ths() * 1e6, self.avg_ths() * 1e6
        temps = self._board_temps()
        split = self.board_split
        lives, avgs = split(live), split(avg)
        m1 = split(self.window_ths(60, live / 1e6 * 0.999) * 1e6)
        m5 = split(self.window_ths(300, avg / 1e6 * 1.001) * 1e6)
        m15 = split(self.window_ths(900, avg / 1e6) * 1e6)
        chips = self.board_chips()
        mac_tail = self.host.rsplit(".", 1)[-1]
        out = []
        for i, t in enumerate(temps):
            dead = self.board_dead(i)
            out.append(
                {"ASC": i, "Slot": i, "Name": "SM", "ID": i, "Enabled": "Y",
                 "Status": "Dead" if dead else "Alive",
                 "Temperature": 0.0 if dead else round(t - 10, 2),
                 "Chip Frequency": 0 if dead else 587, "MHS av": round(avgs[i], 2),
                 "MHS 5s": round(lives[i], 2), "MHS 1m": round(m1[i], 2),
                 "MHS 5m": round(m5[i], 2), "MHS 15m": round(m15[i], 2),
                 "Factory GHS": round(self.spec.hashrate_ths * 1000 * self.board_weights[i]),
                 "Upfreq Complete": 0 if dead else 1, "Effective Chips": chips[i],
                 "PCB SN": f"HEM1EK{int(mac_tail):03d}22{i}16K{self.dead_index}", "Chip Data":
                 "K40A07-24010801 BINV01-195601C", "Chip Temp Min": 0.0 if dead else t - 6,
                 "Chip Temp Max": 0.0 if dead else t,
                 "Chip Temp Avg": 0.0 if dead else round(t - 3, 2), "chip_vol_diff": 6}
            )
        return out

    def _whatsminer(self, cmd: str) -> tuple[dict, str | None, list[dict]] | None:
        desc = "btminer"
        if cmd == "summary":
            live, avg = self.live_ths() * 1e6, self.avg_ths() * 1e6
            chips = self._chip_temps(3)
            fin, fout = self._fan_rpms(2, 4500)
            watts = self.power()
            return self._status(11, "Summary", desc), "SUMMARY", [
                {"Elapsed": self.elapsed(), "MHS av": round(avg, 2), "MHS 5s": round(live, 2),
                 "MHS 1m": round(self.window_ths(60, live / 1e6 * 0.999) * 1e6, 2),
                 "MHS 5m": round(self.window_ths(300, avg / 1e6 * 1.001) * 1e6, 2),
                 "MHS 15m": round(self.window_ths(900, avg / 1e6) * 1e6, 2),
                 "HS RT": round(live, 2), "Accepted": self.accepted(),
                 "Rejected": self.accepted() // 2000, "Total MH": round(avg * self.elapsed(), 1),
                 "Temperature": round(min(chips) - 10, 2), "freq_avg": 646,
                 "Fan Speed In": fin, "Fan Speed Out": fout, "Power": int(watts),
                 "Power Rate": round(watts / max(self.spec.hashrate_ths, 1e-9), 2),
                 "Pool Rejected%": 0.04, "Pool Stale%": 0.0, "Last getwork": 0,
                 "Uptime": self.elapsed() + 95, "Security Mode": 0, "Hash Stable": True,
                 "Hash Stable Cost Seconds": 1756, "Hash Deviation%": 0.14,
                 "Target Freq": 574, "Target MHS": round(self.spec.hashrate_ths * 1e6 * 0.9),
                 "Env Temp": 32.0, "Power Mode": "Normal",
                 "Factory GHS": round(self.spec.hashrate_ths * 1000),
                 "Power Limit": int(self.spec.power_w * 1.05), "Chip Temp Min": min(chips) - 6,
                 "Chip Temp Max": max(chips), "Chip Temp Avg": round(sum(chips) / 3, 2),
                 "Debug": "-0.0_100.0_354", "Btminer Fast Boot": "disable"}
            ]
        if cmd in ("devs", "edevs"):
            devs = self._whatsminer_devs()
            return self._status(9, f"{len(devs)} ASC(s)", desc), "DEVS", devs
        if cmd == "devdetails":
            return self._status(69, "Device Details", desc), "DEVDETAILS", [
                {"DEVDETAILS": i, "Name": "SM", "ID": i, "Driver": "bitmicro", "Kernel": "",
                 "Model": self.spec.reported_model}
                for i in range(len(self.board_weights))
            ]
        if cmd == "pools":
            return self._pools(desc)
        return None

    def _braiins(self, cmd: str) -> tuple[dict, str | None, list[dict]] | None:
        desc = "BOSminer+ 0.2.0-ea64aec8e"
        slots = self.spec.board_slots
        if cmd == "summary":
            live, avg = self.live_ths() * 1e6, self.avg_ths() * 1e6
            acc = self.accepted()
            return self._status(11, "Summary", desc), "SUMMARY", [
                {"Accepted": acc, "Best Share": 3_000_000_000, "Device Hardware%": 0.01,
                 "Device Rejected%": 0.02, "Difficulty Accepted": float(acc * self.share_diff),
                 "Difficulty Rejected": 196_608.0, "Difficulty Stale": 0.0,
                 "Elapsed": self.elapsed(), "Found Blocks": 0, "Getworks": 4100,
                 "Hardware Errors": 30, "Last getwork": int(self.clock()), "Local Work": 99_000,
                 "MHS 15m": round(self.window_ths(900, avg / 1e6) * 1e6, 3),
                 "MHS 1m": round(self.window_ths(60, live / 1e6 * 1.001) * 1e6, 3),
                 "MHS 24h": round(self.window_ths(86400, avg / 1e6) * 1e6, 3),
                 "MHS 5m": round(self.window_ths(300, avg / 1e6) * 1e6, 3),
                 "MHS 5s": round(live, 3), "MHS av": round(avg, 3), "Network Blocks": 120,
                 "Pool Rejected%": 0.02, "Pool Stale%": 0.0, "Rejected": 3,
                 "Remote Failures": 0, "Stale": 0, "Total MH": round(avg * self.elapsed(), 1),
                 "Utility": 5.9, "Work Utility": round(avg / 1e6 * 14.0, 3)}
            ]
        if cmd == "devdetails":
            chips = self.board_chips()
            return self._status(69, "Device Details", desc), "DEVDETAILS", [
                {"Chips": chips[n], "Cores": chips[n] * 114, "DEVDETAILS": n, "Device Path": "",
                 "Driver": "", "Frequency": 650_000_000, "ID": i, "Kernel": "",
                 "Model": self.spec.reported_model, "Name": f"Hash Chain {i}",
                 "Voltage": 8.4}
                for n, i in enumerate(slots)
            ]
        if cmd in ("devs", "edevs"):
            live, avg = self.live_ths() * 1e6, self.avg_ths() * 1e6
            split = self.board_split
            lives, avgs = split(live), split(avg)
            m1 = split(self.window_ths(60, live / 1e6 * 1.001) * 1e6)
            m5 = split(self.window_ths(300, avg / 1e6) * 1e6)
            m15 = split(self.window_ths(900, avg / 1e6) * 1e6)
            temps = self._board_temps()
            acc = self.accepted()
            devs = [
                {"ASC": n, "Name": "BC5", "ID": i, "Enabled": "Y",
                 "Status": "Dead" if self.board_dead(n) else "Alive",
                 "Temperature": round(temps[n] - 18, 3) if temps[n] else 0.0,
                 "MHS av": round(avgs[n], 3), "MHS 5s": round(lives[n], 3),
                 "MHS 1m": round(m1[n], 3), "MHS 5m": round(m5[n], 3),
                 "MHS 15m": round(m15[n], 3),
                 "Nominal MHS": round(self.spec.hashrate_ths * 1e6 * self.board_weights[n], 3),
                 "Accepted": 0 if self.board_dead(n) else int(acc * self.board_weights[n]),
                 "Rejected": 0, "Hardware Errors": 0 if self.board_dead(n) else 10,
                 "Utility": 0.0, "Last Share Pool": 0, "Last Share Time": self.last_share_time(),
                 "Total MH": round(avgs[n] * self.elapsed(), 1), "Diff1 Work": 0,
                 "Difficulty Accepted": 0.0, "Difficulty Rejected": 0.0,
                 "Last Share Difficulty": float(self.share_diff), "Last Valid Work": 0,
                 "Device Hardware%": 0.01, "Device Rejected%": 0.0, "Device Elapsed":
                 self.elapsed()}
                for n, i in enumerate(slots)
            ]
            return self._status(9, f"{len(devs)} ASC(s)", desc), "DEVS", devs
        if cmd == "tunerstatus":
            watts = int(self.power())
            alive = [not self.board_dead(n) for n in range(len(slots))]
            per_chain = watts * 0.95 / max(1, sum(alive))
            return self._status(203, "Tuner Status", desc), "TUNERSTATUS", [
                {"ApproximateChainPowerConsumption": int(watts * 0.95),
                 "ApproximateMinerPowerConsumption": watts, "DynamicPowerScaling": "Disabled",
                 "PowerLimit": int(self.spec.power_w * 1.02),
                 "TunerChainStatus": [
                     {"ApproximatePowerConsumptionWatt": int(per_chain) if alive[n] else 0,
                      "HashchainIndex": i, "Iteration": 0,
                      "PowerLimitWatt": int(self.spec.power_w / len(slots)),
                      "Status": "Stable" if alive[n] else "Failed", "TunerRunning": False}
                     for n, i in enumerate(slots)]}
            ]
        if cmd == "temps":
            hot = self._board_temps()
            return self._status(201, f"{len(hot)} Temp(s)", desc), "TEMPS", [
                {"Board": round(c - 18, 3) if c else 0.0, "Chip": c, "ID": i, "TEMP": n}
                for n, (i, c) in enumerate(zip(slots, hot, strict=True))
            ]
        if cmd == "fans":
            rpms = self._fan_rpms(2, 4800) + [0, 0]
            return self._status(202, "4 Fan(s)", desc), "FANS", [
                {"FAN": i, "ID": i, "RPM": r, "Speed": 70} for i, r in enumerate(rpms)
            ]
        if cmd == "stats":
            return self._status(70, "CGMiner stats", desc), "STATS", [
                {"STATS": 0, "ID": "BOS0", "Elapsed": self.elapsed(), "Calls": 0}
            ]
        if cmd == "version":
            return self._status(22, "BOSminer versions", desc), "VERSION", [
                {"API": "3.7", "BOSminer": "0.2.0-ea64aec8e"}
            ]
        if cmd == "pools":
            return self._pools(desc)
        return None

    def _avalon(self, cmd: str) -> tuple[dict, str | None, list[dict]] | None:
        desc = "cgminer 4.11.1"
        digits = "".join(ch for ch in self.spec.model if ch.isdigit()) or "1366"
        if cmd == "summary":
            live, avg = self.live_ths() * 1e6, self.avg_ths() * 1e6
            acc = self.accepted()
            item: dict[str, object] = {"Elapsed": self.elapsed(), "MHS av": round(avg, 2),
                    "MHS 30s": round(live, 2),
                    "MHS 1m": round(self.window_ths(60, live / 1e6 * 1.002) * 1e6, 2),
                    "MHS 5m": round(self.window_ths(300, avg / 1e6) * 1e6, 2),
                    "MHS 15m": round(self.window_ths(900, avg / 1e6) * 1e6, 2),
                    "Found Blocks": 0, "Getworks": 2800, "Accepted": acc,
                    "Rejected": acc // 1800, "Hardware Errors": 77,
                    "Utility": 6.4, "Discarded": 91_000, "Stale": 0, "Get Failures": 0,
                    "Local Work": 940_000, "Remote Failures": 0, "Network Blocks": 122,
                    "Total MH": round(avg * self.elapsed(), 4), "Work Utility": 1_800_000.5,
                    "Difficulty Accepted": float(acc * self.share_diff),
                    "Difficulty Rejected": 262_144.0,
                    "Difficulty Stale": 0.0, "Best Share": 2_217_433_600,
                    "Device Hardware%": 0.0041, "Device Rejected%": 0.0546,
                    "Pool Rejected%": 0.0547, "Pool Stale%": 0.0, "Last getwork": 0}
            if "inf_nan" in self.spec.quirks:
                item["Device Hardware%"] = "nan"
                item["Work Utility"] = _INF
                item["MHS 15m"] = "inf"
            return self._status(11, "Summary", desc), "SUMMARY", [item]
        if cmd in ("stats", "estats"):
            chips = self._board_temps()
            alive_temps = [c for c in chips if c] or [0.0]
            fans = self._fan_rpms(4, 3500)
            watts = int(self.power())
            live = self.live_ths() * 1000
            mghs = self.board_split(live)
            mm = (
                f"Ver[{digits}-24031401_4ec6bb0_61407fa] DNA[0201000033ac7e5b] "
                f"Elapsed[{self.elapsed()}] MW[2341 2339 2338] LW[{self.elapsed() * 90}] "
                f"MH[0 0 0] HW[77] DH[0.004%] Temp[{int(min(alive_temps) - 40)}] "
                f"TMax[{int(max(alive_temps))}] TAvg[{int(sum(alive_temps) / len(alive_temps))}] "
                + " ".join(f"Fan{i + 1}[{r}]" for i, r in enumerate(fans))
                + f" FanR[59%] Vi[1215 1213 1214] Vo[1260 1262 1258] "
                f"PS[0 1215 2046 62 1269 2046 {watts}] WALLPOWER[{watts}] "
                f"GHSspd[{live:.2f}] DHspd[0.004%] GHSmm[{live * 1.01:.2f}] "
                f"GHSavg[{self.avg_ths() * 1000:.2f}] WU[1800000.5] Freq[485.0] "
                f"MGHS[{' '.join(f'{g:.2f}' for g in mghs)}] "
                f"MTmax[{' '.join(str(int(c)) for c in chips)}] "
                f"MTavg[{' '.join(str(max(0, int(c) - 6)) for c in chips)}] TA[3] "
                f"Core[A3197S] PING[17] POWS[0] HASHS[0 0 0] POOLS[0 0 0] SoftOFF[0] "
                f"ECHU[0 0 0] ECMM[0]"
            )
            return self._status(70, "CGMiner stats", desc), "STATS", [
                {"STATS": 0, "ID": "AVA100", "Elapsed": self.elapsed(), "Calls": 0,
                 "Wait": 0.0, "Max": 0.0, "Min": 99999999.0, "MM ID0": mm, "MM Count": 1,
                 "Smart Speed": 1, "Nonce Mask": 25},
                {"STATS": 1, "ID": "POOL0", "Elapsed": self.elapsed(), "Calls": 0, "Wait": 0.0,
                 "Max": 0.41, "Min": 0.02, "Pool Calls": 0, "Pool Attempts": 0,
                 "Pool Wait": 0.0, "Pool Max": 0.0, "Pool Min": 99999999.0,
                 "Pool Av": 0.0, "Work Had Roll Time": False, "Work Can Roll": False,
                 "Work Had Expire": False, "Work Roll Time": 0, "Work Diff": 65536.0,
                 "Min Diff": 65536.0, "Max Diff": 65536.0, "Min Diff Count": 1,
                 "Max Diff Count": 1, "Times Sent": 2900, "Bytes Sent": 390_000,
                 "Times Recv": 3300, "Bytes Recv": 1_200_000, "Net Bytes Sent": 390_000,
                 "Net Bytes Recv": 1_200_000}
            ]
        if cmd == "version":
            return self._status(22, "CGMiner versions", desc), "VERSION", [
                {"CGMiner": "4.11.1", "API": "3.7", "PROD": self.spec.reported_model,
                 "MODEL": digits, "HWTYPE": "MM4v2_X3", "SWTYPE": "MM319",
                 "LVERSION": "24031401_4ec6bb0_61407fa", "BVERSION": "24031401_4ec6bb0_61407fa",
                 "CVERSION": "24031401_4ec6bb0_61407fa", "DNA": "0201000033ac7e5b",
                 "MAC": "b4a2eb3fa0c1", "UPAPI": "2"}
            ]
        if cmd == "pools":
            return self._pools(desc)
        return None

    # ---------------------------------------------------------------- replies

    def _section(self, cmd: str) -> str:
        """One command's reply text (no NUL), flavour-specific, quirks applied."""
        flavour = self.spec.flavour
        if flavour in ("bitaxe", "whatsminer-v3"):
            raise ValueError(f"a {flavour} rig does not speak the cgminer API")
        desc = {"whatsminer": "btminer", "braiins": "BOSminer+ 0.2.0-ea64aec8e"}.get(
            flavour, "cgminer 4.11.1"
        )
        if "raw_newline" in self.spec.quirks:
            desc += "\n"
        quirks = self.spec.quirks
        if self.behaviour == "error_status":
            return _render_section(self._error(cmd, desc), None, [], quirks)
        builder = {
            "antminer": self._antminer,
            "whatsminer": self._whatsminer,
            "braiins": self._braiins,
            "avalon": self._avalon,
        }[flavour]
        part = builder(cmd)
        if part is None:
            if flavour == "whatsminer":  # btminer's top-level error form
                return _dumps({"STATUS": "E", "When": int(self.clock()), "Code": 14,
                               "Msg": "invalid cmd", "Description": ""})
            return _render_section(self._error(cmd, desc), None, [], quirks)
        status, key, items = part
        status["Description"] = desc
        return _render_section(status, key, items, quirks)

    def reply(self, command: str) -> bytes:
        """The bytes this rig sends for a request ``command`` (``a+b`` = multi-command)."""
        self.commands[command] += 1
        cmds = [c for c in command.split("+") if c]
        quirks = self.spec.quirks
        if len(cmds) <= 1:
            return _finish(self._section(cmds[0] if cmds else ""), quirks)
        if "multi_unsupported" in quirks:
            if self.spec.flavour == "whatsminer":
                text = _dumps({"STATUS": "E", "When": int(self.clock()), "Code": 14,
                               "Msg": "invalid cmd", "Description": ""})
            else:
                err = self._error(command, "cgminer 4.11.1")
                err["Msg"] = "Invalid command"
                text = _render_section(err, None, [], frozenset())
            return _finish(text, quirks)
        parts = [f'"{c}":[{self._section(c)}]' for c in dict.fromkeys(cmds)]
        if "multi_broken" in quirks:
            # what some S19 firmware sends: sections that do not nest
            parts[0] = parts[0] + "]"
        return _finish("{" + ",".join(parts) + ',"id":1}', quirks)

    def bitaxe_info(self) -> dict:
        chips = self._chip_temps(1)
        host_id = self.host.rsplit(".", 1)[-1]
        url = self.pool.split("//")[-1]
        host, _, port = url.rpartition(":")
        return {
            "power": round(self.power(), 2),
            "voltage": 5120.0,
            "current": round(self.power() / 5.12 * 1000, 1),
            "temp": chips[0] - 8,
            "vrTemp": int(chips[0] - 3),
            "maxPower": 25,
            "nominalVoltage": 5,
            "hashRate": round(self.live_ths() * 1000, 3),  # GH/s; 0 when stuck
            "expectedHashrate": round(self.spec.hashrate_ths * 1000),
            "bestDiff": "4.29G",
            "bestSessionDiff": "112M",
            "freeHeap": 8_369_220,
            "coreVoltage": 1150,
            "coreVoltageActual": 1143,
            "frequency": 525,
            "ssid": "site-iot",
            "macAddr": f"24:58:7C:CD:{int(host_id) % 256:02X}:10",
            "hostname": f"bitaxe-{self.spec.name}",
            "wifiStatus": "Connected!",
            "sharesAccepted": self.accepted(),
            "sharesRejected": self.accepted() // 1500,
            "uptimeSeconds": self.elapsed(),
            "asicCount": 1,
            "smallCoreCount": 2040,
            "ASICModel": _BITAXE_ASIC.get(self.spec.model, "BM1370"),
            "stratumURL": host or url,
            "stratumPort": int(port) if port.isdigit() else 3333,
            "stratumUser": "bc1qexampleaddress.bitaxe",
            "version": "v2.4.2",
            "boardVersion": "601",
            "fanspeed": 48,
            "fanrpm": self._fan_rpms(1, 4100)[0],
        }

    # ---------------------------------------------------------------- Whatsminer API v3

    def _v3_device_info(self) -> dict[str, Any]:
        octets = [int(x) for x in self.host.split(".")]
        mac = "C8:0B:14:{:02X}:{:02X}:{:02X}".format(*octets[1:])
        t = int(self.clock())
        errors: list[dict[str, str]] = []
        if self.behaviour == "dead_board":  # as the firmware lists a hashboard it lost
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t - 3_600))
            errors.append({str(530 + self.dead_index): stamp,
                           "reason": f"Slot{self.dead_index} not found."})
        miner: dict[str, Any] = {
            "working": "true",
            "type": self.spec.reported_model,
            "hash-board": _WHATSMINER_SUFFIX.get(self.spec.model, "VK30")[1:],
            "detect-hash-rate": ":".join(
                str(int(self.spec.hashrate_ths * 1000 * w)) for w in self.board_weights
            ),
            "cointype": "BTC",
            "pool-strategy": "FAILOVER",
            "heatmode": "",
            "hash-percent": "",
            "fast-boot": "disable",
            "board-num": str(len(self.board_weights)),
        }
        for i in range(len(self.board_weights)):
            miner[f"pcbsn{i}"] = f"HEM1EK{octets[3]:03d}22{i}16K{octets[2]:03d}"
        miner["miner-sn"] = f"HTM60K{octets[2]:03d}{octets[3]:03d}S{self.dead_index}"
        miner["power-limit-set"] = str(int(self.spec.power_w * 1.05))
        miner["web-pool"] = 1
        return {
            "network": {"ip": self.host, "proto": "dhcp", "netmask": "255.255.255.0",
                        "dns": "127.0.1.254", "mac": mac, "gateway": "127.0.1.254",
                        "hostname": f"WhatsMiner-{self.spec.name}"},
            "miner": miner,
            "system": {"api": "3.0.1", "platform": "H616", "fwversion": "20250214.16.REL",
                       "control-board-version": "CB6V10", "btrom": "1", "apiswitch": "1",
                       "ledstatus": "auto"},
            "power": {"type": "P521C", "mode": "1", "hwversion": "R00033",
                      "swversion": "20240108_P00031.20240514_S00051",
                      "model": "P52-12-3600-C", "iin": round(self.power() / 220.0, 1),
                      "vin": 220.5, "vout": 1450, "pin": int(self.power()),
                      "fanspeed": self._fan_rpms(1, 6100)[0], "temp0": 41.3,
                      "sn": f"1355A2{octets[3]:03d}{octets[2]:05d}", "vendor": "1"},
            "salt": self.salt,
            "error-code": errors,
        }

    def _v3_summary(self) -> dict[str, Any]:
        live, avg = self.live_ths(), self.avg_ths()
        watts = self.power()
        temps = self._board_temps()
        alive = [t for t in temps if t] or [0.0]
        fin, fout = self._fan_rpms(2, 4500)
        return {
            "elapsed": self.elapsed(),
            "bootup-time": self.elapsed() + 101,
            "freq-avg": 0 if self.stuck else 588,
            "target-freq": 0,
            "factory-hash": round(float(self.spec.hashrate_ths), 3),
            "hash-average": round(avg, 3),
            "hash-1min": round(self.window_ths(60, live * 1.001), 3),
            "hash-15min": round(self.window_ths(900, avg), 3),
            "hash-realtime": round(live, 3),
            "power-rate": round(watts / max(self.spec.hashrate_ths, 1e-9), 3),
            "power-5min": round(watts * 0.998, 3),
            "power-realtime": int(watts),
            "environment-temperature": 32.5,
            "board-temperature": [round(t - 22, 1) if t else 0.0 for t in temps],
            "chip-temp-min": round(min(alive) - 9, 1),
            "chip-temp-avg": round(sum(alive) / len(alive) - 3, 1),
            "chip-temp-max": round(max(alive), 1),
            "power-limit": int(self.spec.power_w * 1.05),
            "up-freq-finish": 1,
            "fan-speed-in": fin,
            "fan-speed-out": fout,
        }

    def _v3_edevs(self) -> list[dict[str, Any]]:
        avgs = self.board_split(self.avg_ths())
        temps = self._board_temps()
        chips = self.board_chips()
        out = []
        for i, t in enumerate(temps):
            dead = self.board_dead(i)
            out.append({
                "id": i,
                "slot": i,
                "hash-average": round(avgs[i], 3),
                "factory-hash": round(self.spec.hashrate_ths * self.board_weights[i], 3),
                "freq": 0 if dead or self.stuck else 588,
                "effective-chips": chips[i],
                "chip-temp-min": 0.0 if dead else round(t - 9, 1),
                "chip-temp-avg": 0.0 if dead else round(t - 3, 1),
                "chip-temp-max": 0.0 if dead else round(t, 1),
                "upfreq-complete": 0 if dead else 1,
            })
        return out

    def _v3_pools(self) -> list[dict[str, Any]]:
        acc = self.accepted()
        second = POOLS[1] if self.pool != POOLS[1] else POOLS[2]
        return [
            {"id": i + 1, "url": url, "status": "alive", "account": self._pool_user(),
             "stratum-active": i == 0, "reject-rate": 0.04 if i == 0 else 0.0,
             "last-share-time": self.last_share_time() if i == 0 else 0,
             "stratum-difficulty": self.share_diff if i == 0 else 0,
             "pool-prio": i, "accepted": acc if i == 0 else 0,
             "rejected": acc // 2000 if i == 0 else 0, "stale": 0}
            for i, url in enumerate((self.pool, second))
        ]

    def v3_reply(self, request: object) -> dict[str, Any]:
        """The JSON object a Whatsminer API v3 rig answers ``request`` (the decoded request;
        anything but an object with a string ``cmd`` is an invalid JSON item)."""
        now = int(self.clock())
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            self.commands["<invalid>"] += 1
            return {"code": -3, "when": now, "msg": "invalid json item", "desc": ""}
        cmd: str = request["cmd"]
        param = request.get("param")
        self.commands[cmd if param is None else f"{cmd}:{param}"] += 1
        if cmd.startswith("set."):
            if not all(k in request for k in ("ts", "token", "account")):
                return {"code": -3, "when": now, "msg": "invalid json item", "desc": cmd}
            # the API's write access is off unless enabled in WhatsminerTool
            return {"code": -4, "when": now, "msg": "no permission", "desc": cmd}
        if self.behaviour == "error_status" and cmd.startswith("get."):
            return {"code": -1, "when": now, "msg": "btminer process is down err", "desc": cmd}
        if cmd == "get.device.info":
            info = self._v3_device_info()
            if isinstance(param, str) and param in info:
                info = {param: info[param]}
            return {"code": 0, "when": now, "msg": info, "desc": cmd}
        if cmd == "get.miner.status":
            msg: dict[str, Any] = {}
            parts = param.split("+") if isinstance(param, str) else []
            builders: dict[str, Callable[[], Any]] = {
                "summary": self._v3_summary, "edevs": self._v3_edevs, "pools": self._v3_pools
            }
            for part in parts:
                if part in builders:
                    msg[part] = builders[part]()
            if parts and not msg:
                return {"code": -3, "when": now, "msg": "invalid json item", "desc": cmd}
            return {"code": 0, "when": now, "msg": msg, "desc": cmd}
        return {"code": -2, "when": now, "msg": "invalid command", "desc": cmd}

    def v3_frame(self, request: object) -> bytes:
        """:meth:`v3_reply` framed as the firmware sends it: 4-byte LE length, then JSON."""
        return _v3_pack(_dumps(self.v3_reply(request)).encode("utf-8"))

    # ---------------------------------------------------------------- serving

    @property
    def running(self) -> bool:
        return self._server is not None or self._http is not None

    async def start(self, site: RigSite) -> None:
        if self.running or self.behaviour == "offline":
            return
        if self.spec.flavour == "bitaxe":
            http = HttpServer(self._bitaxe_handler, host=self.host, port=self.port,
                              name=f"bitaxe {self.name}")
            self._apply_http_faults(http)
            await http.start()
            self.port = http.port
            self._http = http
            return
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.Protocol]
        if self.spec.flavour == "whatsminer-v3":
            factory = lambda: _V3Protocol(self, site)  # noqa: E731
        else:
            factory = lambda: _ApiProtocol(self, site)  # noqa: E731
        self._server = await loop.create_server(
            factory, self.host, self.port, reuse_address=True, backlog=256
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _apply_http_faults(self, http: HttpServer) -> None:
        mode = {"hang": "slow", "garbage": "malformed", "truncated": "truncated",
                "slow": "slow", "error_status": "http500"}.get(self.behaviour)
        delay = 3600.0 if self.behaviour == "hang" else self.spec.slow_delay
        http.faults.set(mode, delay=delay)

    async def _bitaxe_handler(self, request: Request) -> Response:
        self.commands[request.path] += 1
        if request.method != "GET" or request.path != "/api/system/info":
            return Response.text("Not Found", 404)
        return Response.json(self.bitaxe_info())

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        http, self._http = self._http, None
        if http is not None:
            await http.stop()

    async def set_behaviour(self, behaviour: str, site: RigSite) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        if behaviour == "dead_board" and not self.board_weights:
            raise ValueError(f"{self.name} has no hashboards: dead_board does not apply")
        self._set_figures_behaviour(behaviour)
        if behaviour == "offline":
            await self.stop()
            site._drop_connections(self)
            return
        if self._http is not None:
            self._apply_http_faults(self._http)
        if not self.running:
            await self.start(site)


class _ApiProtocol(asyncio.Protocol):
    """One connection to a simulated cgminer API: read one request, answer, close."""

    def __init__(self, rig: SimRig, site: RigSite) -> None:
        self.rig = rig
        self.site = site
        self.buf = b""
        self.done = False
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.rig.connections += 1
        self.site._conns.setdefault(self.rig.name, set()).add(transport)

    def data_received(self, data: bytes) -> None:
        if self.done:
            return
        self.buf += data
        command = _parse_request(self.buf, eof=False)
        if command is None:
            if len(self.buf) > 65536:
                self._close()
            return
        self._answer(command)

    def eof_received(self) -> bool:
        if not self.done:
            command = _parse_request(self.buf, eof=True)
            if command is not None:
                self._answer(command)
                return True  # keep the write side open until the reply is sent
        self._close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        conns = self.site._conns.get(self.rig.name)
        if conns is not None and self.transport is not None:
            conns.discard(self.transport)

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _answer(self, command: str) -> None:
        self.done = True
        behaviour = self.rig.behaviour
        if behaviour == "hang":
            return
        if behaviour == "slow":
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.rig.spec.slow_delay, self._send, command)
            return
        self._send(command)

    def _send(self, command: str) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        behaviour = self.rig.behaviour
        if behaviour == "garbage":
            t.write(self.rig.rng.choice(_GARBAGE))
        elif behaviour == "truncated":
            payload = self.rig.reply(command)
            t.write(payload[: max(1, len(payload) // 2)])
        else:
            t.write(self.rig.reply(command))
        t.close()


def _v3_pack(payload: bytes) -> bytes:
    return struct.pack("<I", len(payload)) + payload


class _V3Protocol(asyncio.Protocol):
    """One connection to a simulated Whatsminer API v3: length-prefixed JSON both ways, as
    many requests as the client sends (a zero length is the API's heartbeat: no answer)."""

    MAX_FRAME = 1 << 20

    def __init__(self, rig: SimRig, site: RigSite) -> None:
        self.rig = rig
        self.site = site
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.pending = 0  #: slow answers not sent yet
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.rig.connections += 1
        self.site._conns.setdefault(self.rig.name, set()).add(transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 4:
            (n,) = struct.unpack_from("<I", self.buf)
            if n > self.MAX_FRAME:  # not this protocol (e.g. a cgminer request): hang up
                self.buf.clear()
                self._close()
                return
            if len(self.buf) < 4 + n:
                return
            body = bytes(self.buf[4 : 4 + n])
            del self.buf[: 4 + n]
            if n:
                self._request(body)

    def eof_received(self) -> bool:
        self.eof = True
        return self.pending > 0  # keep the write side open for a slow answer in flight

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in self.timers:
            timer.cancel()
        conns = self.site._conns.get(self.rig.name)
        if conns is not None and self.transport is not None:
            conns.discard(self.transport)

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _request(self, body: bytes) -> None:
        behaviour = self.rig.behaviour
        if behaviour == "hang":
            return
        if behaviour == "slow":
            self.pending += 1
            loop = asyncio.get_running_loop()
            self.timers.append(loop.call_later(self.rig.spec.slow_delay, self._later, body))
            return
        self._send(body)

    def _later(self, body: bytes) -> None:
        self.pending -= 1
        self._send(body)
        if self.eof and not self.pending:
            self._close()

    def _send(self, body: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            return
        behaviour = self.rig.behaviour
        if behaviour == "garbage":  # something else answers on the port
            self.rig.commands["<garbage>"] += 1
            t.write(self.rig.rng.choice(_GARBAGE))
            t.close()
            return
        try:
            request: object = json.loads(body.decode("utf-8"))
        except ValueError:
            request = None
        payload = _dumps(self.rig.v3_reply(request)).encode("utf-8")
        if behaviour == "truncated":  # the length promises more than follows
            t.write(_v3_pack(payload)[: 4 + max(1, len(payload) // 2)])
            t.close()
            return
        t.write(_v3_pack(payload))


def _parse_request(buf: bytes, *, eof: bool) -> str | None:
    """The command of a complete request in ``buf`` (JSON, or cgminer's plain "cmd|param")."""
    text = buf.decode("utf-8", errors="replace").strip().rstrip("\x00").strip()
    if not text:
        return None
    if text.startswith("{"):
        if not text.endswith("}"):
            return "" if eof else None
        try:
            obj = json.loads(text)
        except ValueError:
            return "" if eof else None
        if isinstance(obj, dict):
            return str(obj.get("command", ""))
        return ""
    if eof or buf.endswith(b"\n"):
        return text.split("|", 1)[0]
    return None


# --------------------------------------------------------------------------- the site


def raise_nofile_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (capped at the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def assign_hosts(count: int, host_base: str = "127.0.1.0") -> list[str]:
    """``count`` loopback addresses after ``host_base``, skipping ``.0`` and ``.255``."""
    base = int(ipaddress.IPv4Address(check_loopback(host_base)))
    hosts: list[str] = []
    n = base
    while len(hosts) < count:
        n += 1
        if n & 0xFF in (0, 255):
            continue
        hosts.append(check_loopback(str(ipaddress.IPv4Address(n))))
    return hosts


class RigSite:
    """A running simulated site: :meth:`targets` for a poller, :meth:`stop` at the end."""

    def __init__(self, rigs: list[SimRig]) -> None:
        self.rigs = rigs
        self._by_name = {r.name: r for r in rigs}
        self._conns: dict[str, set[asyncio.Transport]] = {}
        self.stopped = False

    def targets(self) -> list[RigTarget]:
        return [r.target for r in self.rigs]

    def rig(self, name: str) -> SimRig:
        return self._by_name[name]

    def __len__(self) -> int:
        return len(self.rigs)

    def _drop_connections(self, rig: SimRig) -> None:
        for t in list(self._conns.pop(rig.name, ())):
            t.abort()

    async def set_behaviour(self, name: str, behaviour: str) -> None:
        """Change a rig's behaviour at run time ("offline" unbinds, leaving it rebinds)."""
        await self.rig(name).set_behaviour(behaviour, self)

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await asyncio.gather(*(r.stop() for r in self.rigs), return_exceptions=True)
        for rig in self.rigs:
            self._drop_connections(rig)
        await asyncio.sleep(0)

    async def __aenter__(self) -> RigSite:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_rig_site(
    specs: Sequence[SimRigSpec],
    *,
    host_base: str = "127.0.1.0",
    port: int = API_PORT,
    v3_port: int | None = None,
    seed: int = 2026,
    clock: Callable[[], float] = time.time,
) -> RigSite:
    """Start every rig of ``specs`` on its own loopback address.

    Rigs without an explicit ``host`` get consecutive addresses after ``host_base``.
    ``port`` is shared by all rigs (each has its own address) but the Whatsminer API v3
    ones, which listen on ``v3_port`` only (default 4433, or 0 when ``port`` is 0).  Port 0
    picks a free port once and uses it for every rig of that kind (tests: no clash with a
    running demo).  Offline rigs get an address but nothing listens there.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("rig names must be unique")
    if v3_port is None:
        v3_port = V3_PORT if port else 0
    for p in (port, v3_port):
        if not 0 <= p <= 65535:
            raise ValueError(f"bad port {p!r}")
    auto = iter(assign_hosts(sum(s.host is None for s in specs), host_base))
    hosts = [check_loopback(s.host) if s.host else next(auto) for s in specs]
    raise_nofile_limit(len(specs) * 2 + 1024)
    rigs: list[SimRig] = []
    site = RigSite(rigs)
    shared = {"api": port, "v3": v3_port}

    def port_class(spec: SimRigSpec) -> str:
        return "v3" if spec.flavour == "whatsminer-v3" else "api"

    try:
        for spec, host in zip(specs, hosts, strict=True):
            cls = port_class(spec)
            rig = SimRig(spec, host, spec.port if spec.port is not None else shared[cls],
                         seed=seed, clock=clock)
            rigs.append(rig)
            if rig.behaviour != "offline":
                await rig.start(site)
                if shared[cls] == 0 and spec.port is None:
                    shared[cls] = rig.port
        for cls, p in shared.items():
            if p == 0:  # every such rig offline: give them a port nobody listens on
                shared[cls] = _free_port(hosts[0] if hosts else "127.0.0.1")
        for rig in rigs:
            if rig.port == 0:
                rig.port = shared[port_class(rig.spec)]
    except BaseException:
        await site.stop()
        raise
    site._by_name = {r.name: r for r in rigs}
    return site


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- demo site

#: (catalog model, flavour, nominal TH/s, nominal W, count) of the demo site.
_DEMO_MIX: tuple[tuple[str, str, float, float, int], ...] = (
    ("S9", "antminer", 13.5, 1323, 3),
    ("S9", "braiins", 13.5, 1323, 2),
    ("S19j Pro", "antminer", 104, 3068, 8),
    ("S19j Pro", "braiins", 104, 3068, 2),
    ("S19 XP", "antminer", 140, 3010, 8),
    ("S21", "antminer", 200, 3500, 8),
    ("S21 XP", "antminer", 270, 3645, 6),
    ("M30S++", "whatsminer", 112, 3472, 5),
    ("M60S", "whatsminer", 186, 3441, 4),
    ("Avalon A1366", "avalon", 130, 3250, 1),
    ("Bitaxe Gamma", "bitaxe", 1.1, 18, 1),
)

#: Realistic defects per flavour for the demo (bmminer glues stats objects; S19 stock
#: firmware breaks multi-command replies; btminer leaves trailing commas and raw newlines;
#: Avalon reports inf/nan).
_DEMO_QUIRKS: dict[str, tuple[frozenset[str], ...]] = {
    "antminer": (frozenset({"glued"}), frozenset({"multi_broken"}), frozenset({"leading_comma"})),
    "whatsminer": (
        frozenset({"trailing_comma", "raw_newline"}),
        frozenset({"missing_comma"}),
        frozenset({"multi_unsupported"}),
    ),
    "braiins": (frozenset({"no_nul"}),),
    "avalon": (frozenset({"inf_nan"}),),
    "bitaxe": (frozenset(),),
    "whatsminer-v3": (frozenset(),),
}

#: Catalog nominals of the models the simulated sites use beyond ``_DEMO_MIX``.
_M66S = (298.0, 5513.0)


def demo_site_specs(seed: int = 2026) -> list[SimRigSpec]:
    """48 rigs (a-01 ... a-48): S9, S19j Pro, S19 XP, S21, S21 XP, M30S++, M60S, M66S, one
    Avalon, one Bitaxe; realistic firmware quirks on about a third of them.

    Special rigs: a-02 (an S9) hangs, a-08 (an S19j Pro) is offline, a-03 (an S9) is
    stuck, a-27 (an S21) has a dead hashboard, and a-44 (M60S), a-45 and a-46 (M66S) run
    2025 Whatsminer firmware: API v3 on 4433, nothing on 4028.
    """
    rng = random.Random(f"demo:{seed}")
    specs: list[SimRigSpec] = []
    for model, flavour, ths, watts, count in _DEMO_MIX:
        for _ in range(count):
            quirks = rng.choice(_DEMO_QUIRKS[flavour]) if rng.random() < 0.35 else frozenset()
            specs.append(
                SimRigSpec(
                    name="",
                    model=model,
                    flavour=flavour,
                    hashrate_ths=round(ths * rng.uniform(0.96, 1.02), 2),
                    power_w=round(watts * rng.uniform(0.98, 1.03)),
                    quirks=quirks,
                    pool=rng.choice(POOLS),
                )
            )
    specs = [replace(s, name=f"a-{i + 1:02d}") for i, s in enumerate(specs)]
    # one rig down (an S19j Pro), one whose API hangs (an S9)
    specs[7] = replace(specs[7], behaviour="offline")
    specs[1] = replace(specs[1], behaviour="hang")
    # one hashing nothing behind a healthy API (an S9), one with a dead board (an S21)
    specs[2] = replace(specs[2], behaviour="stuck")
    specs[26] = replace(specs[26], behaviour="dead_board")
    # three Whatsminers on the 2025 firmware (API v3 only): an M60S and two M66S
    specs[43] = replace(specs[43], flavour="whatsminer-v3", quirks=frozenset())
    for i in (44, 45):
        s = specs[i]
        specs[i] = replace(
            s, model="M66S", flavour="whatsminer-v3", quirks=frozenset(),
            hashrate_ths=round(_M66S[0] * s.hashrate_ths / 186, 2),
            power_w=round(_M66S[1] * s.power_w / 3441),
        )
    return specs


#: The fleet of ``mixed_site_specs``, in a 20-rig cycle: (model, flavour, TH/s, W).  A
#: fifth are Whatsminer API v3 machines.
_MIXED_CYCLE: tuple[tuple[str, str, float, float], ...] = (
    ("S19j Pro", "antminer", 104, 3068),
    ("M60S", "whatsminer-v3", 186, 3441),
    ("S19 XP", "antminer", 140, 3010),
    ("M30S++", "whatsminer", 112, 3472),
    ("S21", "antminer", 200, 3500),
    ("M66S", "whatsminer-v3", *_M66S),
    ("S19j Pro", "braiins", 104, 3068),
    ("S21 XP", "antminer", 270, 3645),
    ("M60S", "whatsminer-v3", 186, 3441),
    ("S19j Pro", "antminer", 104, 3068),
    ("M60S", "whatsminer", 186, 3441),
    ("S21", "antminer", 200, 3500),
    ("M60S", "whatsminer-v3", 186, 3441),
    ("Avalon A1366", "avalon", 130, 3250),
    ("S19 XP", "antminer", 140, 3010),
    ("S9", "braiins", 13.5, 1323),
    ("S21 XP", "antminer", 270, 3645),
    ("M30S++", "whatsminer", 112, 3472),
    ("Bitaxe Gamma", "bitaxe", 1.1, 18),
    ("S21", "antminer", 200, 3500),
)


def mixed_site_specs(count: int, seed: int = 2026, prefix: str = "r") -> list[SimRigSpec]:
    """``count`` rigs named ``r-001`` ... of a realistic fleet mix (Antminers on stock and
    Braiins firmware, Whatsminers on API v2 and a fifth on API v3, an Avalon and a Bitaxe
    now and then), all ``ok`` but, once the fleet has 20 or more, about one in 50 offline,
    one in 50 stuck and one in 50 with a dead hashboard."""
    if count < 0:
        raise ValueError(f"bad rig count {count!r}")
    rng = random.Random(f"mixed:{seed}")
    width = max(3, len(str(count)))
    specs: list[SimRigSpec] = []
    for i in range(count):
        model, flavour, ths, watts = _MIXED_CYCLE[i % len(_MIXED_CYCLE)]
        behaviour = "ok"
        if count >= 20:
            behaviour = {17: "offline", 29: "stuck", 41: "dead_board"}.get(i % 50, "ok")
            if behaviour == "dead_board" and flavour == "bitaxe":
                behaviour = "ok"
        specs.append(
            SimRigSpec(
                name=f"{prefix}-{i + 1:0{width}d}",
                model=model,
                flavour=flavour,
                hashrate_ths=round(ths * rng.uniform(0.96, 1.02), 2),
                power_w=round(watts * rng.uniform(0.98, 1.03)),
                behaviour=behaviour,
                pool=rng.choice(POOLS),
            )
        )
    return specs


# --------------------------------------------------------------------------- CLI


def _main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tui.sim.rigs", description="Serve the demo rig site on loopback."
    )
    p.add_argument("--host-base", default="127.0.1.0")
    p.add_argument("--port", type=int, default=API_PORT)
    p.add_argument("--v3-port", type=int, default=V3_PORT)
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(list(argv) if argv is not None else None)

    async def serve() -> None:
        site = await start_rig_site(
            demo_site_specs(args.seed), host_base=args.host_base, port=args.port,
            v3_port=args.v3_port, seed=args.seed,
        )
        for rig in site.rigs:
            print(rig.listing, flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await site.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(_main())
