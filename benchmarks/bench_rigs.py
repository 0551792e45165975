"""Benchmark: poll 5,000 simulated rigs, scan a /22, and compare with pyasic's RPC client.

    python benchmarks/bench_rigs.py [--rigs 5000] [--scan-rigs 1000] [--no-pyasic]

The simulated site runs in a *separate process* (this file with ``--serve``), so the CPU
figures measure the client alone.  Every rig has its own loopback address (127.0.20.1 ...
for the poll, 127.1.0.0/22 for the scan) on port 4028 (Whatsminer API v3 machines on 4433):
nothing leaves 127.0.0.0/8.

The fleet mixes firmware flavours (Antminer 50 %, Whatsminer API v3 20 %, Whatsminer on the
old API 10 %, Braiins 10 %, Avalon 9 %, Bitaxe 1 %), about 5 % with firmware quirks, 2 %
slow (0.3-1.5 s), 1 % offline, 1 % hanging, and a few garbage / truncated / error-status
rigs; every flavour reports its hashboards.

Targets: one full poll cycle under 5 s wall and under one core on average; a /22 scan that
looks for all three protocols (4028, 4433, AxeOS HTTP) with 1,000 mixed rigs well under
20 s.  pyasic (a benchmark-only dependency, ``pip install pyasic``) polls the same rigs
under the same 3 s deadline and 256-way concurrency: the cgminer-API ones with
``multicommand`` of the same commands, the v3 ones with its ``BTMinerV3RPCAPI`` (summary,
edevs, pools: one connection each, as pyasic does); the ratio is reported (pyasic has no
Bitaxe RPC, so Bitaxes are left out of that comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tui.sim.rigs import SimRigSpec, raise_nofile_limit, start_rig_site  # noqa: E402
from tui.sources.discovery import hosts_of, scan  # noqa: E402
from tui.sources.rigs import RigPoller, RigTarget  # noqa: E402

POLL_BASE = "127.0.20.0"
SCAN_RANGE = "127.1.0.0/22"
PORT = 4028
V3_PORT = 4433
TIMEOUT = 3.0
CONCURRENCY = 256

_MODELS = {
    "antminer": [
        ("S9", 13.5, 1323),
        ("S19j Pro", 104, 3068),
        ("S19 XP", 140, 3010),
        ("S21", 200, 3500),
        ("S21 XP", 270, 3645),
    ],
    "whatsminer": [("M30S++", 112, 3472), ("M60S", 186, 3441)],
    "whatsminer-v3": [("M60S", 186, 3441), ("M66S", 298, 5513)],
    "braiins": [("S9", 13.5, 1323), ("S19j Pro", 104, 3068)],
    "avalon": [("Avalon A1366", 130, 3250)],
    "bitaxe": [("Bitaxe Gamma", 1.1, 18)],
}
_FLAVOURS = (
    ("antminer", 0.50),
    ("whatsminer-v3", 0.20),
    ("whatsminer", 0.10),
    ("braiins", 0.10),
    ("avalon", 0.09),
    ("bitaxe", 0.01),
)
_QUIRKS = {
    "antminer": ["glued", "leading_comma", "multi_broken", "invalid_utf8", "control_chars"],
    "whatsminer": ["trailing_comma", "raw_newline", "missing_comma", "multi_unsupported"],
    "braiins": ["no_nul", "trailing_comma"],
    "avalon": ["inf_nan", "glued"],
    "whatsminer-v3": [],
    "bitaxe": [],
}


def fleet_specs(count: int, seed: int, hosts: list[str] | None = None) -> list[SimRigSpec]:
    """A deterministic mixed fleet (see the module docstring)."""
    rng = random.Random(f"bench:{seed}:{count}")
    flavours = [f for f, _ in _FLAVOURS]
    weights = [w for _, w in _FLAVOURS]
    specs: list[SimRigSpec] = []
    for i in range(count):
        flavour = rng.choices(flavours, weights)[0]
        model, ths, watts = rng.choice(_MODELS[flavour])
        x = rng.random()
        behaviour = (
            "offline"
            if x < 0.01
            else "hang"
            if x < 0.02
            else "slow"
            if x < 0.04
            else "garbage"
            if x < 0.042
            else "truncated"
            if x < 0.044
            else "error_status"
            if x < 0.046
            else "ok"
        )
        quirks: frozenset[str] = frozenset()
        if _QUIRKS[flavour] and rng.random() < 0.05:
            quirks = frozenset({rng.choice(_QUIRKS[flavour])})
        specs.append(
            SimRigSpec(
                name=f"r{i:05d}",
                model=model,
                flavour=flavour,
                hashrate_ths=ths,
                power_w=watts,
                behaviour=behaviour,
                quirks=quirks,
                slow_delay=round(rng.uniform(0.3, 1.5), 2),
                host=hosts[i] if hosts else None,
            )
        )
    return specs


def scan_specs(count: int, seed: int) -> list[SimRigSpec]:
    rng = random.Random(f"scan:{seed}")
    hosts = sorted(
        rng.sample(hosts_of(SCAN_RANGE), count), key=lambda h: tuple(map(int, h.split(".")))
    )
    return fleet_specs(count, seed + 1, hosts)


# ----------------------------------------------------------------------------- server side


async def _serve(kind: str, count: int, seed: int) -> None:
    specs = fleet_specs(count, seed) if kind == "poll" else scan_specs(count, seed)
    t0 = time.monotonic()
    site = await start_rig_site(specs, host_base=POLL_BASE, port=PORT, v3_port=V3_PORT,
                                seed=seed)
    targets = [[t.rig_id, t.host, t.port, t.kind] for t in site.targets()]
    print(
        json.dumps({"ready": True, "start_s": time.monotonic() - t0, "targets": targets}),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), stop.set)  # parent gone or done: stdin closes
    await stop.wait()
    await site.stop()


# ----------------------------------------------------------------------------- client side


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Site:
    """The simulated site in a child process."""

    def __init__(self, kind: str, count: int, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--rigs", str(count), "--seed", str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"simulated site failed to start (exit {self.proc.wait()})")
        info = json.loads(line)
        self.start_s = info["start_s"]
        self.targets = [RigTarget(i, h, p, k) for i, h, p, k in info["targets"]]

    def cpu(self) -> float:
        return _proc_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _measure(coro_factory, site: Site) -> tuple[object, float, float, float]:
    """(result, wall s, client CPU s, server CPU s) of one awaited call."""
    s0, c0, w0 = site.cpu(), time.process_time(), time.perf_counter()
    result = await coro_factory()
    wall = time.perf_counter() - w0
    return result, wall, time.process_time() - c0, site.cpu() - s0


def _line(label: str, wall: float, cpu: float, server: float, extra: str) -> None:
    print(
        f"  {label:<28} wall {wall:6.2f} s   client CPU {cpu:5.2f} s "
        f"({cpu / wall:4.2f} core)   site CPU {server:5.2f} s   {extra}"
    )


#: pyasic's RPC class and the commands minertop asks (steady state), per flavour.
_PYASIC = {
    "antminer": ("bmminer", "BMMinerRPCAPI", ("summary", "stats", "pools")),
    "whatsminer": ("btminer", "BTMinerRPCAPI", ("summary", "devdetails", "pools")),
    "braiins": (
        "bosminer",
        "BOSMinerRPCAPI",
        ("summary", "devdetails", "tunerstatus", "temps", "fans", "pools"),
    ),
    "avalon": ("avalonminer", "AvalonMinerRPCAPI", ("summary", "stats", "version", "pools")),
}


async def _pyasic_v3_cycle(targets: list[RigTarget]) -> int:
    """One cycle of pyasic's Whatsminer API v3 client on the v3 rigs: summary, edevs and
    pools (pyasic opens a connection per command), 256 rigs at once, same deadline."""
    from pyasic.rpc.btminer import BTMinerV3RPCAPI

    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(t: RigTarget) -> bool:
        async with sem:
            api = BTMinerV3RPCAPI(t.host, port=t.port or 4433)

            async def read() -> dict:
                out = {}
                for param in ("summary", "edevs", "pools"):
                    out[param] = await api.send_command("get.miner.status", param)
                return out

            try:
                data = await asyncio.wait_for(read(), TIMEOUT)
            except Exception:
                return False
            summary = data.get("summary")
            return isinstance(summary, dict) and summary.get("code") == 0

    return sum(await asyncio.gather(*(one(t) for t in targets)))


async def _pyasic_cycle(targets: list[RigTarget], flavours: dict[str, str]) -> int:
    """One cycle with pyasic's RPC clients: per firmware the class pyasic would pick and
    the same commands as minertop, 256 at once, each within the same deadline."""
    import importlib

    classes = {
        f: (getattr(importlib.import_module(f"pyasic.rpc.{mod}"), cls), cmds)
        for f, (mod, cls, cmds) in _PYASIC.items()
    }
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(t: RigTarget) -> bool:
        cls, cmds = classes[flavours[t.rig_id]]
        async with sem:
            api = cls(t.host, port=t.port)
            try:
                data = await asyncio.wait_for(api.multicommand(*cmds, allow_warning=False), TIMEOUT)
            except Exception:
                return False
            try:
                summary = data["summary"][0]
                return summary["STATUS"][0]["STATUS"] in ("S", "I")
            except (KeyError, IndexError, TypeError):
                return False

    results = await asyncio.gather(*(one(t) for t in targets))
    return sum(results)


async def bench_poll(count: int, seed: int, with_pyasic: bool) -> dict:
    print(
        f"\n== poll: {count} simulated rigs on {POLL_BASE[:-1]}x:{PORT} "
        f"(deadline {TIMEOUT:g} s, concurrency {CONCURRENCY}) =="
    )
    site = Site("poll", count, seed)
    out: dict = {}
    try:
        print(f"  site started in {site.start_s:.1f} s (separate process)")
        specs = fleet_specs(count, seed)
        behaviours: dict[str, int] = {}
        for s in specs:
            behaviours[s.behaviour] = behaviours.get(s.behaviour, 0) + 1
        quirky = sum(bool(s.quirks) for s in specs)
        print(f"  mix: {behaviours}, {quirky} with quirks")
        poller = RigPoller(site.targets, timeout=TIMEOUT, concurrency=CONCURRENCY)
        for label in ("cycle 1 (cold: first contact)", "cycle 2 (warm)", "cycle 3 (warm)"):
            readings, wall, cpu, server = await _measure(poller.poll_all, site)
            st = poller.last_cycle
            assert st is not None
            _line(
                label,
                wall,
                cpu,
                server,
                f"ok {st.ok}, failed {st.failed} (timeouts {st.timed_out}), "
                f"retried {st.retried}, peak {st.peak_in_flight}",
            )
            out.setdefault("cycles", []).append({"wall": wall, "cpu": cpu, "ok": st.ok})
        await poller.aclose()

        if with_pyasic:
            try:
                import pyasic  # noqa: F401
            except ImportError:
                print("  pyasic: not installed (pip install pyasic): comparison skipped")
                return out
            logging.getLogger("pyasic").setLevel(logging.CRITICAL)
            logging.getLogger().setLevel(logging.CRITICAL)
            cg = [t for t in site.targets if t.kind == "cgminer"]
            v3 = [t for t in site.targets if t.kind == "whatsminer-v3"]
            print(f"  -- the same {len(v3)} Whatsminer API v3 rigs, ours vs pyasic --")
            ours_v3 = RigPoller(v3, timeout=TIMEOUT, concurrency=CONCURRENCY)
            _, w3c, c3c, s3c = await _measure(ours_v3.poll_all, site)
            st = ours_v3.last_cycle
            assert st is not None
            _line("minertop v3 cold", w3c, c3c, s3c, f"ok {st.ok}")
            _, w3w, c3w, s3w = await _measure(ours_v3.poll_all, site)
            st = ours_v3.last_cycle
            assert st is not None
            _line("minertop v3 warm", w3w, c3w, s3w, f"ok {st.ok}")
            await ours_v3.aclose()
            ok3, w3p, c3p, s3p = await _measure(lambda: _pyasic_v3_cycle(v3), site)
            _line("pyasic BTMinerV3RPCAPI", w3p, c3p, s3p, f"ok {ok3}")
            print(
                f"  ratio pyasic / minertop (v3): wall {w3p / w3w:.2f}x (warm); "
                f"client CPU {c3p / c3w:.2f}x (warm)"
            )
            out["pyasic_v3"] = {"wall": w3p, "cpu": c3p, "ok": ok3, "ours_wall": w3w,
                                "ours_cpu": c3w}
            print(f"  -- same {len(cg)} cgminer-API rigs (Bitaxes left out), ours vs pyasic --")
            ours = RigPoller(cg, timeout=TIMEOUT, concurrency=CONCURRENCY)
            _, w_cold, c_cold, s_cold = await _measure(ours.poll_all, site)
            st = ours.last_cycle
            assert st is not None
            _line("minertop cold", w_cold, c_cold, s_cold, f"ok {st.ok}")
            _, w_warm, c_warm, s_warm = await _measure(ours.poll_all, site)
            st = ours.last_cycle
            assert st is not None
            _line("minertop warm", w_warm, c_warm, s_warm, f"ok {st.ok}")
            await ours.aclose()
            flavours = {sp.name: sp.flavour for sp in specs}
            ok, w_py, c_py, s_py = await _measure(lambda: _pyasic_cycle(cg, flavours), site)
            _line("pyasic RPC multicommand", w_py, c_py, s_py, f"ok {ok}")
            print(
                f"  ratio pyasic / minertop: wall {w_py / w_cold:.2f}x (cold) "
                f"{w_py / w_warm:.2f}x (warm); client CPU {c_py / c_cold:.2f}x (cold) "
                f"{c_py / c_warm:.2f}x (warm)"
            )
            out["pyasic"] = {"wall": w_py, "cpu": c_py, "ok": ok}
    finally:
        site.stop()
    return out


async def bench_scan(count: int, seed: int) -> dict:
    print(
        f"\n== scan: {SCAN_RANGE} ({len(hosts_of(SCAN_RANGE))} hosts) with {count} rigs "
        f"on port {PORT} (concurrency 512, 1 s per probe) =="
    )
    site = Site("scan", count, seed)
    try:
        specs = scan_specs(count, seed)
        # a probe waits 1 s: rigs slower than that, dead, hanging or talking garbage are
        # not found (a rig denying API access is found, without a model)
        answering = sum(
            s.behaviour not in ("offline", "hang", "garbage", "truncated")
            and not (s.behaviour == "slow" and s.slow_delay >= 0.95)
            for s in specs
        )
        # every protocol on its own port; the simulated Bitaxes serve HTTP on PORT (80 needs
        # root), so that is where the scan looks for AxeOS
        ports = {"cgminer": PORT, "whatsminer-v3": V3_PORT, "bitaxe": PORT}
        found, wall, cpu, server = await _measure(
            lambda: scan(SCAN_RANGE, kind="auto", ports=ports), site)
        assert isinstance(found, list)
        models = sum(f.model is not None for f in found)
        kinds: dict[str, int] = {}
        for f in found:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        _line(
            "scan (auto: 3 protocols)",
            wall,
            cpu,
            server,
            f"found {len(found)} of {answering} answering rigs, {models} with a model, "
            f"{kinds}",
        )
        return {"wall": wall, "found": len(found)}
    finally:
        site.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rigs", type=int, default=5000)
    p.add_argument("--scan-rigs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-pyasic", action="store_true")
    p.add_argument("--serve", choices=("poll", "scan"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    raise_nofile_limit(4 * max(args.rigs, args.scan_rigs) + 1024)
    if args.serve:
        asyncio.run(_serve(args.serve, args.rigs, args.seed))
        return 0
    print(f"minertop rig benchmark · {os.cpu_count()} CPUs · Python {sys.version.split()[0]}")
    poll = asyncio.run(bench_poll(args.rigs, args.seed, not args.no_pyasic))
    sc = asyncio.run(bench_scan(args.scan_rigs, args.seed))
    cycles = poll.get("cycles", [])
    if cycles:
        worst = max(c["wall"] for c in cycles)
        cores = max(c["cpu"] / c["wall"] for c in cycles)
        print(
            f"\nsummary: poll cycle {worst:.2f} s worst (target < 5 s), "
            f"{cores:.2f} core worst (target < 1); /22 scan {sc['wall']:.2f} s "
            f"(target < 20 s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
