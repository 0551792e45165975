"""A simulated mining site on loopback: rigs that speak the real protocols, quirks included.

Each rig listens on its own loopback address (127.0.0.0/8 is all loopback on Linux, so
127.0.1.1:4028, 127.0.1.2:4028, ... need no set-up) and answers the cgminer-style API the
way its firmware does:

- ``antminer`` (stock bmminer/cgminer): ``GHS 5s`` as a JSON *string*, ``GHS av`` a number,
  ``Type`` "Antminer S19j Pro" in ``stats``/``version``, per-board temperatures and fans in
  ``stats`` (S9 on slots 6-8), no power;
- ``whatsminer`` (btminer): ``MHS`` figures, ``Power``, ``Temperature``, ``Fan Speed In/Out``
  in ``summary``, the model in ``devdetails``, errors in btminer's top-level STATUS form;
- ``braiins`` (BOSminer): ``MHS`` figures, ``devdetails`` model, a power estimate in
  ``tunerstatus``, ``temps``, ``fans``;
- ``avalon`` (Canaan cgminer): ``MHS 30s``/``1m``, the "MM ID0" blob in ``stats``
  (``Temp[..] MTmax[..] Fan1[..] WALLPOWER[..]``), ``PROD`` in ``version``;
- ``bitaxe`` (ESP-Miner): HTTP ``GET /api/system/info``.

Behaviours: ``ok``; ``offline`` (nothing listens: connection refused); ``hang`` (accepts,
never answers); ``garbage`` (non-JSON bytes); ``truncated`` (half the reply, then close);
``slow`` (answers after ``slow_delay`` s); ``error_status`` (STATUS "E", access denied).

Quirks (the firmware defects of DESIGN.md, injected on demand): ``glued`` (``}{``),
``leading_comma`` (``[,{``), ``trailing_comma`` (``,}``), ``missing_comma`` (``"a""b"``),
``raw_newline``, ``control_chars``, ``inf_nan``, ``invalid_utf8``, ``no_nul``,
``multi_broken`` (multi-command replies that do not parse), ``multi_unsupported``
(multi-command requests refused with an error status).

Hashrates are noisy around nominal (seeded), temperatures and fans plausible per model.
No Textual import here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from tui.sim.http import HttpServer, Request, Response, check_loopback
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
    "raise_nofile_limit",
    "start_rig_site",
]

FLAVOURS = ("antminer", "whatsminer", "braiins", "avalon", "bitaxe")
BEHAVIOURS = ("ok", "offline", "hang", "garbage", "truncated", "slow", "error_status")
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

_WHATSMINER_SUFFIX = {"M30S++": "V40", "M30S+": "V100", "M30S": "V50", "M60S": "VK30"}
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
    port: int | None = None  #: None: the site's port
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
        if self.flavour == "avalon":
            digits = "".join(ch for ch in m if ch.isdigit())
            return f"AvalonMiner {digits or m}"
        return m  # bitaxe: reported through ASICModel

    @property
    def kind(self) -> str:
        return "bitaxe" if self.flavour == "bitaxe" else "cgminer"


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
        self.boot_time = clock() - self.rng.uniform(3_600, 30 * 86_400)
        self.avg_bias = self.rng.gauss(0.0, 0.01)
        self.chip_base = self.rng.uniform(62.0, 74.0)
        self.fan_base = self.rng.uniform(0.85, 1.1)
        self.pool = spec.pool
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
        return RigTarget(self.spec.name, self.host, self.port, self.spec.kind)

    def live_ths(self) -> float:
        return max(0.0, self.spec.hashrate_ths * (1.0 + self.rng.gauss(0.0, 0.015)))

    def avg_ths(self) -> float:
        return max(0.0, self.spec.hashrate_ths * (1.0 + self.avg_bias))

    def power(self) -> float:
        return self.spec.power_w * (1.0 + self.rng.gauss(0.0, 0.01))

    def elapsed(self) -> int:
        return max(0, int(self.clock() - self.boot_time))

    def _chip_temps(self, n: int) -> list[float]:
        return [round(self.chip_base + self.rng.uniform(-3, 3), 1) for _ in range(n)]

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

    def _pools(self, desc: str) -> tuple[dict, str, list[dict]]:
        user = "site." + self.spec.name.replace("-", "")
        if "control_chars" in self.spec.quirks:
            user += "\x01"
        user += _BAD_UTF8
        pools = []
        for i, url in enumerate((self.pool, POOLS[1] if self.pool != POOLS[1] else POOLS[2])):
            pools.append(
                {"POOL": i, "URL": url, "Status": "Alive", "Priority": i, "Quota": 1,
                 "Long Poll": "N", "Getworks": 10_000 - i * 9_990, "Accepted": 4_000 if i == 0
                 else 0, "Rejected": 3 if i == 0 else 0, "Stale": 0, "User": user,
                 "Last Share Time": int(self.clock()) - 4 if i == 0 else 0,
                 "Diff": "65.5K", "Stratum Active": i == 0,
                 "Stratum URL": url.split("//")[-1].rsplit(":", 1)[0],
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
            acc = int(self.elapsed() / 8)
            return self._status(11, "Summary", desc), "SUMMARY", [
                {"Elapsed": self.elapsed(), "GHS 5s": f"{live:.2f}", "GHS av": round(avg, 2),
                 "GHS 30m": round(avg * 1.001, 2), "Found Blocks": 0, "Getworks": acc // 3,
                 "Accepted": acc, "Rejected": acc // 900, "Hardware Errors": 12,
                 "Utility": 7.5, "Discarded": acc * 2, "Stale": 0, "Get Failures": 0,
                 "Local Work": acc * 40, "Remote Failures": 0, "Network Blocks": 900,
                 "Total MH": round(avg * 1000 * self.elapsed(), 0),
                 "Work Utility": round(avg * 14.0, 2), "Difficulty Accepted": acc * 65536.0,
                 "Difficulty Rejected": 65536.0, "Difficulty Stale": 0.0,
                 "Best Share": 1_234_567_890, "Device Hardware%": 0.0001,
                 "Device Rejected%": 0.05, "Pool Rejected%": 0.05, "Pool Stale%": 0.0,
                 "Last getwork": 0}
            ]
        if cmd == "stats":
            slots = [6, 7, 8] if self.spec.model == "S9" else [1, 2, 3]
            fan_slots = [3, 6] if self.spec.model == "S9" else [1, 2, 3, 4]
            nominal_fan = 5880 if self.spec.model == "S9" else 3600
            chips = self._chip_temps(3)
            data: dict = {"STATS": 0, "ID": "BC50", "Elapsed": self.elapsed(), "Calls": 0,
                          "Wait": 0.0, "Max": 0.0, "Min": 99999999.0, "GHS 5s": f"{live:.2f}",
                          "GHS av": round(avg, 2), "rate_30m": round(avg, 2),
                          "Mode": 2, "miner_count": 3, "frequency": 525,
                          "fan_num": len(fan_slots)}
            for i, rpm in zip(fan_slots, self._fan_rpms(len(fan_slots), nominal_fan), strict=True):
                data[f"fan{i}"] = rpm
            data["temp_num"] = 3
            for i, chip in zip(slots, chips, strict=True):
                data[f"temp{i}"] = int(chip - 14)  # PCB
            for i, chip in zip(slots, chips, strict=True):
                data[f"temp2_{i}"] = int(chip)  # chip
            if self.spec.model != "S9":
                for i, chip in zip(slots, chips, strict=True):
                    pcb = int(chip - 14)
                    data[f"temp_pcb{i}"] = f"{pcb - 3}-{pcb - 5}-{pcb}-{pcb - 1}"
                    c = int(chip)
                    data[f"temp_chip{i}"] = f"{c - 12}-{c - 14}-{c}-{c - 1}"
            for i in slots:
                data[f"chain_acn{i}"] = 126
                data[f"chain_acs{i}"] = "oooooooo " * 15 + "oooooo"
                data[f"chain_rate{i}"] = f"{live / 3:.2f}"
            data["total_rateideal"] = round(self.spec.hashrate_ths * 1000, 2)
            data["rate_unit"] = "GH/s"
            return self._status(70, "CGMiner stats", desc), "STATS", [ver, data]
        if cmd == "version":
            return self._status(22, "CGMiner versions", desc), "VERSION", [
                {"CGMiner": "4.11.1", "API": "3.1", **ver}
            ]
        if cmd == "pools":
            return self._pools(desc)
        return None

    def _whatsminer(self, cmd: str) -> tuple[dict, str | None, list[dict]] | None:
        desc = "btminer"
        if cmd == "summary":
            live, avg = self.live_ths() * 1e6, self.avg_ths() * 1e6
            chips = self._chip_temps(3)
            fin, fout = self._fan_rpms(2, 4500)
            return self._status(11, "Summary", desc), "SUMMARY", [
                {"Elapsed": self.elapsed(), "MHS av": round(avg, 2), "MHS 5s": round(live, 2),
                 "MHS 1m": round(live * 0.999, 2), "MHS 5m": round(avg * 1.001, 2),
                 "MHS 15m": round(avg, 2), "HS RT": round(avg, 2), "Accepted": 8040,
                 "Rejected": 3, "Total MH": round(avg * self.elapsed(), 1),
                 "Temperature": round(min(chips) - 10, 2), "freq_avg": 646,
                 "Fan Speed In": fin, "Fan Speed Out": fout, "Power": int(self.power()),
                 "Power Rate": round(self.power() / max(self.spec.hashrate_ths, 1e-9), 2),
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
        if cmd == "devdetails":
            return self._status(69, "Device Details", desc), "DEVDETAILS", [
                {"DEVDETAILS": i, "Name": "SM", "ID": i, "Driver": "bitmicro", "Kernel": "",
                 "Model": self.spec.reported_model}
                for i in range(3)
            ]
        if cmd == "pools":
            return self._pools(desc)
        return None

    def _braiins(self, cmd: str) -> tuple[dict, str | None, list[dict]] | None:
        desc = "BOSminer+ 0.2.0-ea64aec8e"
        if cmd == "summary":
            live, avg = self.live_ths() * 1e6, self.avg_ths() * 1e6
            return self._status(11, "Summary", desc), "SUMMARY", [
                {"Accepted": 11200, "Best Share": 3_000_000_000, "Device Hardware%": 0.01,
                 "Device Rejected%": 0.02, "Difficulty Accepted": 734_000_000.0,
                 "Difficulty Rejected": 196_608.0, "Difficulty Stale": 0.0,
                 "Elapsed": self.elapsed(), "Found Blocks": 0, "Getworks": 4100,
                 "Hardware Errors": 30, "Last getwork": int(self.clock()), "Local Work": 99_000,
                 "MHS 15m": round(avg, 3), "MHS 1m": round(live * 1.001, 3),
                 "MHS 24h": round(avg, 3), "MHS 5m": round(avg, 3), "MHS 5s": round(live, 3),
                 "MHS av": round(avg, 3), "Network Blocks": 120, "Pool Rejected%": 0.02,
                 "Pool Stale%": 0.0, "Rejected": 3, "Remote Failures": 0, "Stale": 0,
                 "Total MH": round(avg * self.elapsed(), 1), "Utility": 5.9,
                 "Work Utility": round(avg / 1e6 * 14.0, 3)}
            ]
        if cmd == "devdetails":
            return self._status(69, "Device Details", desc), "DEVDETAILS", [
                {"Chips": 63, "Cores": 7182, "DEVDETAILS": i, "Device Path": "", "Driver": "",
                 "Frequency": 650_000_000, "ID": 6 + i, "Kernel": "",
                 "Model": self.spec.reported_model, "Name": f"Hash Chain {6 + i}",
                 "Voltage": 8.4}
                for i in range(3)
            ]
        if cmd == "tunerstatus":
            watts = int(self.power())
            return self._status(203, "Tuner Status", desc), "TUNERSTATUS", [
                {"ApproximateChainPowerConsumption": int(watts * 0.95),
                 "ApproximateMinerPowerConsumption": watts, "DynamicPowerScaling": "Disabled",
                 "PowerLimit": int(self.spec.power_w * 1.02),
                 "TunerChainStatus": [
                     {"ApproximatePowerConsumptionWatt": int(watts * 0.95 / 3),
                      "HashchainIndex": 6 + i, "Iteration": 0, "PowerLimitWatt": int(watts / 3),
                      "Status": "Stable", "TunerRunning": False} for i in range(3)]}
            ]
        if cmd == "temps":
            chips = self._chip_temps(3)
            return self._status(201, "3 Temp(s)", desc), "TEMPS", [
                {"Board": round(c - 18, 3), "Chip": c, "ID": 6 + i, "TEMP": i}
                for i, c in enumerate(chips)
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
            item = {"Elapsed": self.elapsed(), "MHS av": round(avg, 2),
                    "MHS 30s": round(live, 2), "MHS 1m": round(live * 1.002, 2),
                    "MHS 5m": round(avg, 2), "MHS 15m": round(avg, 2), "Found Blocks": 0,
                    "Getworks": 2800, "Accepted": 7311, "Rejected": 4, "Hardware Errors": 77,
                    "Utility": 6.4, "Discarded": 91_000, "Stale": 0, "Get Failures": 0,
                    "Local Work": 940_000, "Remote Failures": 0, "Network Blocks": 122,
                    "Total MH": round(avg * self.elapsed(), 4), "Work Utility": 1_800_000.5,
                    "Difficulty Accepted": 479_133_696.0, "Difficulty Rejected": 262_144.0,
                    "Difficulty Stale": 0.0, "Best Share": 2_217_433_600,
                    "Device Hardware%": 0.0041, "Device Rejected%": 0.0546,
                    "Pool Rejected%": 0.0547, "Pool Stale%": 0.0, "Last getwork": 0}
            if "inf_nan" in self.spec.quirks:
                item["Device Hardware%"] = "nan"
                item["Work Utility"] = _INF
                item["MHS 15m"] = "inf"
            return self._status(11, "Summary", desc), "SUMMARY", [item]
        if cmd in ("stats", "estats"):
            chips = self._chip_temps(3)
            fans = self._fan_rpms(4, 3500)
            watts = int(self.power())
            live = self.live_ths() * 1000
            mm = (
                f"Ver[{digits}-24031401_4ec6bb0_61407fa] DNA[0201000033ac7e5b] "
                f"Elapsed[{self.elapsed()}] MW[2341 2339 2338] LW[{self.elapsed() * 90}] "
                f"MH[0 0 0] HW[77] DH[0.004%] Temp[{int(min(chips) - 40)}] "
                f"TMax[{int(max(chips))}] TAvg[{int(sum(chips) / 3)}] "
                + " ".join(f"Fan{i + 1}[{r}]" for i, r in enumerate(fans))
                + f" FanR[59%] Vi[1215 1213 1214] Vo[1260 1262 1258] "
                f"PS[0 1215 2046 62 1269 2046 {watts}] WALLPOWER[{watts}] "
                f"GHSspd[{live:.2f}] DHspd[0.004%] GHSmm[{live * 1.01:.2f}] "
                f"GHSavg[{self.avg_ths() * 1000:.2f}] WU[1800000.5] Freq[485.0] "
                f"MGHS[{live / 3:.2f} {live / 3:.2f} {live / 3:.2f}] "
                f"MTmax[{' '.join(str(int(c)) for c in chips)}] "
                f"MTavg[{' '.join(str(int(c) - 6) for c in chips)}] TA[3] Core[A3197S] "
                f"PING[17] POWS[0] HASHS[0 0 0] POOLS[0 0 0] SoftOFF[0] ECHU[0 0 0] ECMM[0]"
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
            "hashRate": round(self.live_ths() * 1000, 3),
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
            "sharesAccepted": 18_211,
            "sharesRejected": 12,
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
        self._server = await loop.create_server(
            lambda: _ApiProtocol(self, site), self.host, self.port, reuse_address=True,
            backlog=256,
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
        self.behaviour = behaviour
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
    port: int = 4028,
    seed: int = 2026,
    clock: Callable[[], float] = time.time,
) -> RigSite:
    """Start every rig of ``specs`` on its own loopback address.

    Rigs without an explicit ``host`` get consecutive addresses after ``host_base``.
    ``port`` is shared by all rigs (each has its own address); ``port=0`` picks a free
    port once and uses it for every rig (tests: no clash with a running demo).
    Offline rigs get an address but nothing listens there.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("rig names must be unique")
    if not 0 <= port <= 65535:
        raise ValueError(f"bad port {port!r}")
    auto = iter(assign_hosts(sum(s.host is None for s in specs), host_base))
    hosts = [check_loopback(s.host) if s.host else next(auto) for s in specs]
    raise_nofile_limit(len(specs) * 2 + 1024)
    rigs: list[SimRig] = []
    site = RigSite(rigs)
    shared_port = port
    try:
        for spec, host in zip(specs, hosts, strict=True):
            rig = SimRig(spec, host, spec.port if spec.port is not None else shared_port,
                         seed=seed, clock=clock)
            rigs.append(rig)
            if rig.behaviour != "offline":
                await rig.start(site)
                if shared_port == 0 and spec.port is None:
                    shared_port = rig.port
        if shared_port == 0:  # every rig offline: give them a port nobody listens on
            shared_port = _free_port(hosts[0] if hosts else "127.0.0.1")
        for rig in rigs:
            if rig.port == 0:
                rig.port = shared_port
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
}


def demo_site_specs(seed: int = 2026) -> list[SimRigSpec]:
    """About 48 rigs (a-01 ... a-48): S9, S19j Pro, S19 XP, S21, S21 XP, M30S++, M60S, one
    Avalon, one Bitaxe; one rig offline and one whose API hangs; realistic firmware
    quirks on about a third of them."""
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
    return specs


# --------------------------------------------------------------------------- CLI


def _main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tui.sim.rigs", description="Serve the demo rig site on loopback."
    )
    p.add_argument("--host-base", default="127.0.1.0")
    p.add_argument("--port", type=int, default=4028)
    p.add_argument("--seed", type=int, default=2026)
    args = p.parse_args(list(argv) if argv is not None else None)

    async def serve() -> None:
        site = await start_rig_site(
            demo_site_specs(args.seed), host_base=args.host_base, port=args.port, seed=args.seed
        )
        for t in site.targets():
            print(f"{t.rig_id}\t{t.kind}\t{t.host}:{t.port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await site.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(_main())
