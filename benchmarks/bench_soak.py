"""Soak benchmark: the memory of the dashboard and of the daemon over a long run.

    python benchmarks/bench_soak.py [--rigs 300] [--interval 5] [--duration 7200]
                                    [--every 300] [--face daemon|dashboard|both]
                                    [--quirky 0.2] [--quick] [--noise MB] [--keep]
                                    [--cmd "WRAPPER ..."]

    python benchmarks/bench_soak.py --quick      # smoke run: --interval 1 --duration 900
                                                 # --every 60 (the caps after 12 minutes)

Every part runs in its own process, on loopback only (127.0.0.0/8), so that only the faces'
own memory is measured:

- a simulated site of ``--rigs`` rigs (this file with ``--serve``: ``tui.sim.rigs``, one
  loopback address per rig from 127.0.60.1, ephemeral ports).  The fleet is
  ``mixed_site_specs`` (Antminer stock and Braiins, Whatsminer API v2 and v3, Avalon, Bitaxe;
  2 % offline, 2 % stuck, 2 % with a dead hashboard) plus 2 % hanging, 2 % slow, 1 % garbage,
  1 % truncated, 1 % error status, and firmware quirks (glued objects, stray commas, raw
  newlines, inf/nan, broken multi-command replies ...) on ``--quirky`` of the rigs (default
  0.2; only rigs that speak the cgminer text API can have one);
- ``minertop sim`` (the chain and the price: mempool REST on an ephemeral port; not
  ``--demo``, whose simulator would run inside the measured process);
- the daemon: ``python -m tui.cli daemon --config CFG --mempool SIM --db TMP/history.db
  --listen 127.0.0.1:PORT`` (XDG dirs in a temporary directory);
- the dashboard: ``python -m tui.cli --standalone --config CFG --mempool SIM`` in a
  pseudo-terminal (120x40), its output read and thrown away as a terminal would.

With ``--face both`` (the default) the two run side by side against the same site, each
polling every rig every ``--interval`` s (``[poll] timeout_s = 3, concurrency = 256``,
alerts on).  Each face's config swaps the fleet's first rig for a probe rig of its own (the
same model), which only that face polls: the site counts the polls of each probe, i.e. the
poll cycles each face ran (the daemon's ``/healthz`` also says how many cycles it recorded).

Every ``--every`` s it prints one line per sample: the elapsed time and, for each face, VmRSS
(MB), its change since the previous sample and since the sample at which its cap was reached
(below), RssAnon (the heap: VmRSS less mapped files and shared memory), VmHWM (the peak), the
poll cycles so far and the CPU used since the previous sample (the daemon: also ``db``, the
MiB its history file uses); then the machine's load.

The caps.  The dashboard keeps each rig's session history in memory, ``MAX_SAMPLES`` = 720
points (``tui/history.py``), one per completed poll cycle; after that the older half is
thinned, so the history stops growing after 720 cycles, i.e. about 720 x ``--interval`` s
(60 min at 5 s, 12 min at 1 s), later when cycles run long (the cycles column says).  The
daemon keeps no rig history in memory (``session_history=False``: it is in SQLite), but its
SQLite connection caches up to ``PRAGMA cache_size`` of pages (16,000 KiB in
``tui/store.py``), and the pages of a growing file fill it: its cap is the first sample at
which the history file uses that much (the ``db`` column: MiB of pages in use, WAL included,
as a read-only reader sees them; about 30 bytes per rig reading, so some 1,800 cycles at 300
rigs: 2.5 h at 5 s, 30 min at 1 s).  A face's cap sample is marked ``*`` and ``<- cap``.

At the end (or on Ctrl-C): for each face, RSS at the first sample, at the cap and at the
end, the peak, and the growth per hour after the cap: the least-squares slope of VmRSS (and
of RssAnon) over the samples from the cap on, with its standard error; "flat" when zero is
within two standard errors, or when all it adds up to over that stretch is under ``--noise``
MB (default 1: samples five minutes apart move by up to about a megabyte at 300 rigs, from
render caches and objects in flight in a cycle).  Then every process is stopped (the
dashboard with ``q``, the daemon, the chain and the site with SIGTERM; SIGKILL after a grace
period) and the temporary directory removed (``--keep`` keeps it: configs, logs, the
daemon's history).

``--cmd`` runs the faces with another command instead of ``python -m tui.cli`` (the same
arguments follow it), e.g. a wrapper that calls ``tui.cli.main`` under ``tracemalloc`` and
dumps snapshots, to find where memory goes; it must be the Python process itself (its pid is
the one measured).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import math
import os
import pty
import random
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench_daemon import db_pages  # noqa: E402  (the history file's pages in use)

from tui.history import MAX_SAMPLES  # noqa: E402
from tui.sim.rigs import (  # noqa: E402
    SimRigSpec,
    mixed_site_specs,
    raise_nofile_limit,
    start_rig_site,
)

HOST_BASE = "127.0.60.0"  #: bench_rigs uses 127.0.20.x, bench_keys 127.0.40.x, sim 127.0.1.x
TIMEOUT_S = 3
CONCURRENCY = 256
CLK_TCK = os.sysconf("SC_CLK_TCK")
FACES = ("dashboard", "daemon")
PROBES = {"dashboard": "probe-dashboard", "daemon": "probe-daemon"}


def _store_cache_kib() -> int:
    """The daemon's SQLite page cache, KiB: ``PRAGMA cache_size=-N`` in tui/store.py (a
    per-connection setting, so it is read from the source; 16,000 when not found)."""
    with contextlib.suppress(OSError):
        m = re.search(r"cache_size\s*=\s*-(\d+)", (ROOT / "tui" / "store.py").read_text())
        if m:
            return int(m.group(1))
    return 16000


STORE_CACHE_MB = _store_cache_kib() / 1024  #: MiB of pages the daemon's writer keeps cached
ANSI = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[PX^_].*?\x1b\\|\x1b\][^\x07]*(\x07|\x1b\\)|\x1b."
)

#: firmware quirks as they come in the field (the demo's, and a few more), per flavour
_QUIRK_SETS: dict[str, tuple[frozenset[str], ...]] = {
    "antminer": (frozenset({"glued"}), frozenset({"multi_broken"}),
                 frozenset({"leading_comma"}), frozenset({"invalid_utf8"}),
                 frozenset({"control_chars"})),
    "whatsminer": (frozenset({"trailing_comma", "raw_newline"}), frozenset({"missing_comma"}),
                   frozenset({"multi_unsupported"})),
    "braiins": (frozenset({"no_nul"}), frozenset({"trailing_comma"})),
    "avalon": (frozenset({"inf_nan"}), frozenset({"glued"})),
}
#: faults beyond mixed_site_specs' (offline, stuck, dead board at i % 50 = 17, 29, 41), by
#: the rig's place in each hundred
_FAULTS = {5: "hang", 55: "hang", 11: "slow", 61: "slow", 23: "garbage", 73: "truncated",
           87: "error_status"}


def fleet_specs(count: int, seed: int, quirky: float) -> list[SimRigSpec]:
    """The soak fleet (see the module docstring); the first rig (an S19j Pro, never faulty
    nor quirky) is the one each face swaps for its probe."""
    rng = random.Random(f"soak:{seed}:{count}")
    specs = mixed_site_specs(count, seed)
    out: list[SimRigSpec] = []
    for i, s in enumerate(specs):
        fault = _FAULTS.get(i % 100) if count >= 20 and i else None
        if s.behaviour == "ok" and fault is not None:
            with contextlib.suppress(ValueError):
                s = replace(s, behaviour=fault, slow_delay=round(rng.uniform(0.3, 1.5), 2))
        out.append(s)
    eligible = [i for i, s in enumerate(out) if i and s.flavour in _QUIRK_SETS]
    for i in rng.sample(eligible, min(len(eligible), round(quirky * count))):
        out[i] = replace(out[i], quirks=rng.choice(_QUIRK_SETS[out[i].flavour]))
    return out


def probe_spec(name: str) -> SimRigSpec:
    return SimRigSpec(name=name, model="S19j Pro", flavour="antminer", hashrate_ths=104,
                      power_w=3068)


# ----------------------------------------------------------------------------- site process


async def _serve(args: argparse.Namespace) -> None:
    """The simulated site; prints its rigs, then every second the polls of each probe (a
    burst of connections to a probe, apart from the last by more than 0.4 intervals, is one
    poll)."""
    import asyncio

    import tui.sim.rigs as simrigs

    gap = max(0.2, 0.4 * args.interval)
    polls = {name: 0 for name in PROBES.values()}
    conns = dict.fromkeys(polls, 0)
    last = dict.fromkeys(polls, -math.inf)
    made = simrigs._ApiProtocol.connection_made

    def connection_made(self: Any, transport: Any) -> None:
        name = self.rig.name
        if name in polls:
            now = time.monotonic()
            if now - last[name] > gap:
                polls[name] += 1
            last[name] = now
            conns[name] += 1
        made(self, transport)

    simrigs._ApiProtocol.connection_made = connection_made  # type: ignore[method-assign]
    fleet = fleet_specs(args.rigs, args.seed, args.quirky)
    specs = fleet[1:] + [probe_spec(n) for n in PROBES.values()]
    t0 = time.monotonic()
    site = await start_rig_site(specs, host_base=HOST_BASE, port=0, v3_port=0, seed=args.seed)
    targets = [[t.rig_id, t.host, t.port, t.kind] for t in site.targets()]
    mix = Counter(s.behaviour for s in fleet)
    print(json.dumps({"ready": True, "start_s": time.monotonic() - t0, "targets": targets,
                      "mix": dict(mix), "quirky": sum(bool(s.quirks) for s in fleet),
                      "flavours": dict(Counter(s.flavour for s in fleet))}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the benchmark gone or done: stdin closes

    async def report() -> None:
        sent: dict[str, int] = {}
        while True:
            await asyncio.sleep(1.0)
            if polls != sent:
                sent = dict(polls)
                print(json.dumps({"polls": sent, "conns": conns}), flush=True)

    task = asyncio.ensure_future(report())
    await stop.wait()
    task.cancel()
    await site.stop()


# ----------------------------------------------------------------------------- helpers


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM when the benchmark dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def proc_status(pid: int) -> dict[str, float]:
    """The kB lines of /proc/<pid>/status, in MB ({} once the process is gone)."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    out[key] = int(parts[0]) / 1024
    except OSError:
        pass
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; NaN once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def db_used_mb(db: Path) -> float:
    """MiB of pages the history file uses (page_count - freelist, WAL included) as a
    read-only reader sees them (bench_daemon's ``db_pages``); NaN if it can't be read."""
    pages = db_pages(db)
    return math.nan if pages is None else pages["used"] / 2**20


def healthz(url: str) -> dict[str, Any] | None:
    """The daemon's /healthz (a 503 when degraded still has the document)."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        with contextlib.suppress(Exception):
            return json.loads(e.read())
    except (OSError, ValueError):
        pass
    return None


def write_config(path: Path, targets: list[list[Any]], interval: float, name: str) -> None:
    out = [
        f"# written by benchmarks/bench_soak.py for the {name}",
        "[site]",
        f'name = "soak-{name}"',
        "electricity_usd_kwh = 0.06",
        "pool_fee_pct = 2.0",
        "",
        "[poll]",
        f"interval_s = {interval:g}",
        f"timeout_s = {TIMEOUT_S}",
        f"concurrency = {CONCURRENCY}",
        "retries = 1",
        "",
    ]
    for rig_id, host, port, kind in targets:
        out += ["[[rigs]]", f"name = {json.dumps(rig_id)}", f"host = {json.dumps(host)}",
                f"port = {int(port)}", f"kind = {json.dumps(kind)}", ""]
    path.write_text("\n".join(out), encoding="utf-8")


def hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def slope_per_hour(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope (per hour) of (seconds, value) points and its standard error
    (NaN with fewer than 3 points)."""
    n = len(points)
    if n < 2:
        return math.nan, math.nan
    xs = [t / 3600 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return math.nan, math.nan
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    if n < 3:
        return b, math.nan
    a = my - b * mx
    resid = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return b, math.sqrt(resid / (n - 2) / sxx)


# ----------------------------------------------------------------------------- processes


class Child:
    """A child process in its own session, its stdout/stderr in files."""

    def __init__(self, name: str, argv: list[str], tmp: Path, env: dict[str, str],
                 stdin: int = subprocess.DEVNULL) -> None:
        self.name = name
        self.argv = argv
        self.out = tmp / f"{name}.stdout"
        self.err = tmp / f"{name}.stderr"
        with self.out.open("wb") as o, self.err.open("wb") as e:
            self.proc = subprocess.Popen(argv, stdin=stdin, stdout=o, stderr=e, env=env,
                                         cwd=ROOT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM (the process group), SIGKILL after ``grace``: (exit code, seconds); the
        code is None when it had to be killed."""
        t0 = time.monotonic()
        if not self.alive():
            return self.proc.returncode, 0.0
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            rc: int | None = self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(5)
            rc = None
        return rc, time.monotonic() - t0

    def tail(self, lines: int = 12) -> str:
        try:
            text = self.err.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("      | " + x for x in text[-lines:])


class Dashboard:
    """``minertop`` in a pseudo-terminal; :meth:`drain` reads (and drops) its output."""

    def __init__(self, argv: list[str], env: dict[str, str], cols: int, rows: int) -> None:
        self.argv = argv
        winsz = struct.pack("HHHH", rows, cols, 0, 0)
        pid, fd = pty.fork()
        if pid == 0:  # the child: on the slave side, in its own session
            try:
                _die_with_parent()
                fcntl.ioctl(0, termios.TIOCSWINSZ, winsz)
                os.chdir(ROOT)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, winsz)
        self.pid: int | None = pid
        self.fd: int | None = fd
        self.status: int | None = None
        self.bytes = 0
        self.tail = b""

    def drain(self) -> bool:
        """Read what is there; False once the dashboard is gone (EOF on the terminal)."""
        if self.fd is None:
            return False
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            self.reap(block=True)
            return False
        self.bytes += len(chunk)
        self.tail = (self.tail + chunk)[-16384:]
        return True

    def shows(self, pattern: re.Pattern[bytes]) -> bool:
        return bool(pattern.search(ANSI.sub(b"", self.tail)))

    def screen_text(self) -> str:
        text = ANSI.sub(b"", self.tail).decode("utf-8", "replace")
        return " ".join(text.split())[-600:]

    def reap(self, block: bool = False) -> bool:
        """True once it has exited (its wait status in ``status``)."""
        if self.pid is None:
            return True
        with contextlib.suppress(ChildProcessError):
            done, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if not done:
                return False
            self.status = status
        self.pid = None
        return True

    def stop(self, grace: float = 10.0) -> tuple[str, float]:
        """``q``, then SIGTERM, then SIGKILL: (how it went, seconds)."""
        t0 = time.monotonic()
        how = "exited before"
        if self.pid is not None:
            how = "q"
            steps: list[tuple[str, float]] = [("q", grace), ("SIGTERM", 5.0), ("SIGKILL", 5.0)]
            for how, wait in steps:
                if how == "q" and self.fd is not None:
                    with contextlib.suppress(OSError):
                        os.write(self.fd, b"q")
                elif how != "q":
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.pid, signal.SIGTERM if how == "SIGTERM" else
                                  signal.SIGKILL)
                end = time.monotonic() + wait
                while time.monotonic() < end and not self.reap():
                    if self.fd is not None and select.select([self.fd], [], [], 0.05)[0]:
                        with contextlib.suppress(OSError):
                            os.read(self.fd, 1 << 16)
                if self.pid is None:
                    break
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.status is not None and os.WIFEXITED(self.status):
            how += f", exit {os.WEXITSTATUS(self.status)}"
        elif self.status is not None and os.WIFSIGNALED(self.status):
            how += f", killed by signal {os.WTERMSIG(self.status)}"
        return how, time.monotonic() - t0


# ----------------------------------------------------------------------------- the run


@dataclass
class Sample:
    t: float  #: seconds since the faces were started
    rss: float
    anon: float
    hwm: float
    cycles: int | None
    cpu_pct: float
    db: float = math.nan  #: the daemon: MiB of pages in its history file


@dataclass
class Face:
    name: str
    pid: int
    samples: list[Sample] = field(default_factory=list)
    cap_index: int | None = None  #: the first sample at which the face's cap was reached
    cpu_last: float = math.nan
    t_last: float = 0.0
    first_cycle_s: float | None = None
    ready_s: float | None = None  #: the dashboard: the rig count on screen


class Interrupted(Exception):
    pass


def _on_signal(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def run(args: argparse.Namespace) -> int:
    faces_wanted = FACES if args.face == "both" else (args.face,)
    tmp = Path(tempfile.mkdtemp(prefix="bench_soak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINERTOP_")}
    for d in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env[d] = str(tmp / d.lower())
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONTRACEMALLOC", None)
    cmd = [sys.executable, "-m", "tui.cli"]
    face_cmd = shlex.split(args.cmd) if args.cmd else cmd
    site: subprocess.Popen[bytes] | None = None
    chain: Child | None = None
    daemon: Child | None = None
    dash: Dashboard | None = None
    faces: dict[str, Face] = {}
    interrupted: str | None = None
    problems: list[str] = []
    # SIGINT too: a shell that starts this in the background has it ignored
    old = {s: signal.signal(s, _on_signal)
           for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    t_start = time.monotonic()
    try:
        # -- the simulated site, in its own process
        print(f"starting {args.rigs} simulated rigs on {HOST_BASE[:-1]}1+ ...", flush=True)
        site = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--rigs", str(args.rigs), "--seed",
             str(args.seed), "--quirky", str(args.quirky), "--interval", str(args.interval)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, start_new_session=True,
            preexec_fn=_die_with_parent)
        assert site.stdout is not None
        site_fd = site.stdout.fileno()
        os.set_blocking(site_fd, False)
        site_buf = b""
        info: dict[str, Any] | None = None
        deadline = time.monotonic() + 300
        while info is None:
            if time.monotonic() > deadline or site.poll() is not None:
                raise SystemExit(f"the simulated site did not start (exit {site.poll()})")
            if select.select([site_fd], [], [], 0.5)[0]:
                site_buf += os.read(site_fd, 1 << 20)
                if b"\n" in site_buf:
                    line, _, site_buf = site_buf.partition(b"\n")
                    info = json.loads(line)
        targets = info["targets"]
        probes = {t[0]: t for t in targets if t[0] in PROBES.values()}
        fleet = [t for t in targets if t[0] not in PROBES.values()]
        print(f"  site up in {info['start_s']:.1f} s (pid {site.pid}): flavours "
              f"{info['flavours']}; behaviours {info['mix']}; firmware quirks on "
              f"{info['quirky']} rigs", flush=True)

        # -- the chain (and the price): minertop sim, mempool REST on a free port
        chain = Child("chain", [*cmd, "sim", "--mempool-port", "0", "--rpc-port", "0",
                                "--datadir", str(tmp / "chain")], tmp, env)
        mempool = None
        deadline = time.monotonic() + 60
        while mempool is None:
            m = re.search(r"mempool REST\s+(http://\S+)", chain.out.read_text(errors="replace"))
            if m:
                mempool = m.group(1)
            elif not chain.alive() or time.monotonic() > deadline:
                raise SystemExit(f"minertop sim did not start\n{chain.tail()}")
            else:
                time.sleep(0.1)
        print(f"  minertop sim (chain, price) at {mempool} (pid {chain.pid})", flush=True)

        # -- the faces
        api = None
        for name in faces_wanted:
            cfg = tmp / f"{name}.toml"
            write_config(cfg, [probes[PROBES[name]], *fleet], args.interval, name)
        t0 = time.monotonic()
        if "daemon" in faces_wanted:
            port = free_port()
            api = f"http://127.0.0.1:{port}"
            daemon = Child("daemon", [*face_cmd, "daemon", "--config", str(tmp / "daemon.toml"),
                                      "--mempool", mempool, "--db", str(tmp / "history.db"),
                                      "--listen", f"127.0.0.1:{port}"], tmp, env)
            faces["daemon"] = Face("daemon", daemon.pid)
            print(f"  daemon pid {daemon.pid}: {' '.join(face_cmd)} daemon --config "
                  f"{tmp / 'daemon.toml'} --mempool {mempool} --db {tmp / 'history.db'} "
                  f"--listen 127.0.0.1:{port}", flush=True)
        if "dashboard" in faces_wanted:
            denv = {**env, "TERM": os.environ.get("TERM", "xterm-256color")}
            if denv["TERM"] in ("", "dumb"):
                denv["TERM"] = "xterm-256color"
            denv.setdefault("COLORTERM", "truecolor")
            denv.pop("NO_COLOR", None)
            argv = [*face_cmd, "--standalone", "--config", str(tmp / "dashboard.toml"), "--mempool",
                    mempool, "--log", str(tmp / "dashboard.log")]
            dash = Dashboard(argv, denv, args.cols, args.rows)
            assert dash.pid is not None
            faces["dashboard"] = Face("dashboard", dash.pid)
            print(f"  dashboard pid {dash.pid} in a {args.cols}x{args.rows} pty: "
                  f"{' '.join(argv)}", flush=True)
        faces = {n: faces[n] for n in FACES if n in faces}  # the dashboard first
        for f in faces.values():
            f.cpu_last, f.t_last = proc_cpu(f.pid), 0.0

        cap_s = MAX_SAMPLES * args.interval
        print(f"\n{args.rigs} rigs (each face: its probe + {len(fleet)} of the fleet) polled "
              f"every {args.interval:g} s for {hms(args.duration)}, a sample every "
              f"{args.every:g} s; MB are MiB; cycles: polls of the face's probe rig.", flush=True)
        if "dashboard" in faces:
            print(f"dashboard cap: the session history, {MAX_SAMPLES} points per rig, one per "
                  f"completed cycle: full after {MAX_SAMPLES} cycles (~{hms(cap_s)} at "
                  f"{args.interval:g} s).", flush=True)
        if "daemon" in faces:
            print(f"daemon cap: no rig history in memory (it is in SQLite); what grows is "
                  f"SQLite's page cache (tui/store.py: PRAGMA cache_size={STORE_CACHE_MB:.1f} "
                  f"MiB), full once the history file uses that much (the db column).",
                  flush=True)
        heads = {n: COLS + (DB_COL if n == "daemon" else "") for n in faces}
        print("\n" + " " * 8 + "".join(f" | {n:^{len(h) - 1}s}" for n, h in heads.items())
              + " | machine")
        print(" elapsed" + " |".join(["", *heads.values()]) + " | load1")

        polls: dict[str, int] = {}
        rig_pat = re.compile(rb"\b%d rigs\b" % args.rigs)
        next_sample = args.every
        while True:
            now = time.monotonic() - t0
            if now >= next_sample or now >= args.duration:
                sample_all(faces, now, polls, api, tmp / "history.db")
                if now >= args.duration:
                    break
                next_sample += args.every
                continue
            fds = [site_fd] + ([dash.fd] if dash is not None and dash.fd is not None else [])
            wait = max(0.0, min(next_sample, args.duration) - now)
            ready = select.select(fds, [], [], min(wait, 1.0))[0]
            if site_fd in ready:
                data = os.read(site_fd, 1 << 16)
                if not data:
                    raise SystemExit(f"the simulated site exited (status {site.wait()})")
                site_buf += data
                while b"\n" in site_buf:
                    line, _, site_buf = site_buf.partition(b"\n")
                    polls = json.loads(line).get("polls", polls)
                for name, f in faces.items():
                    if f.first_cycle_s is None and polls.get(PROBES[name], 0) >= 1:
                        f.first_cycle_s = time.monotonic() - t0
                        print(f"  ({hms(f.first_cycle_s)} the {name} polls its probe rig: "
                              "its first cycle)", flush=True)
            if dash is not None and dash.fd is not None and dash.fd in ready:
                if not dash.drain():
                    problems.append("the dashboard exited during the run")
                    print(f"  !! the dashboard exited (wait status {dash.status}); last "
                          f"output: {dash.screen_text()}", flush=True)
                    break
                f = faces["dashboard"]
                if f.ready_s is None and dash.shows(rig_pat):
                    f.ready_s = time.monotonic() - t0
                    print(f"  ({hms(f.ready_s)} the dashboard's rig pane lists {args.rigs} rigs)",
                          flush=True)
            if daemon is not None and not daemon.alive():
                problems.append(f"the daemon exited during the run (exit {daemon.proc.returncode})")
                print(f"  !! the daemon exited (exit {daemon.proc.returncode}):\n"
                      f"{daemon.tail()}", flush=True)
                break
    except (KeyboardInterrupt, Interrupted) as e:
        interrupted = str(e) or "Ctrl-C"
        print(f"\ninterrupted ({interrupted}) after {hms(time.monotonic() - t_start)}; "
              "stopping everything", flush=True)
    finally:
        # no second Ctrl-C halfway through the clean-up
        for s in old:
            signal.signal(s, signal.SIG_IGN)
        print("\n== shutdown ==", flush=True)
        if daemon is not None:
            rc, secs = daemon.stop()
            print(f"  daemon: SIGTERM -> exit {rc} in {secs:.2f} s", flush=True)
            if rc != 0:
                problems.append(f"daemon exit {rc} after SIGTERM")
            report_log("daemon stderr", daemon.err, problems)
        if dash is not None:
            how, secs = dash.stop()
            print(f"  dashboard: {how} in {secs:.2f} s; {dash.bytes / 1e6:.1f} MB of terminal "
                  "output read", flush=True)
            report_log("dashboard --log", tmp / "dashboard.log", problems)
        if chain is not None:
            rc, secs = chain.stop()
            print(f"  minertop sim: SIGTERM -> exit {rc} in {secs:.2f} s", flush=True)
        if site is not None:
            if site.stdin is not None:
                with contextlib.suppress(OSError):
                    site.stdin.close()
            try:
                site.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(site.pid, signal.SIGKILL)
                site.wait(5)
            print(f"  simulated site: exit {site.returncode}", flush=True)
        if args.keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        for s, h in old.items():
            signal.signal(s, signal.SIG_DFL if h is None else h)
    summary(faces, args, interrupted)
    if problems:
        print("\nproblems: " + "; ".join(problems))
    return 1 if problems else (130 if interrupted else 0)


def report_log(label: str, path: Path, problems: list[str]) -> None:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        lines = []

    def level(x: str) -> str:  # "2026-01-05T10:00:00 warning message"
        parts = x.split(None, 2)
        return parts[1].lower() if len(parts) > 1 else ""

    bad = [x for x in lines if level(x) in ("error", "critical") or x.startswith("Traceback")]
    kinds: Counter[str] = Counter()
    for x in lines:
        parts = x.split(None, 2)
        msg = parts[2] if len(parts) > 2 else x
        kinds[re.sub(r"\d[\d.,:]*", "#", msg)[:60]] += 1
    print(f"    {label}: {len(lines)} lines, {len(bad)} error lines"
          + "".join(f"\n      {n:5d} x {k}" for k, n in kinds.most_common(4)), flush=True)
    for x in bad[:5]:
        print(f"      | {x[:200]}")
    if bad:
        problems.append(f"{len(bad)} error lines in the {label}")


COLS = "   RSS   Δprev    Δcap   anon    HWM cycles  CPU"
DB_COL = "     db"


def sample_all(faces: dict[str, Face], t: float, polls: dict[str, int], api: str | None,
               db_path: Path) -> None:
    cells = []
    for name, f in faces.items():
        st = proc_status(f.pid)
        cpu = proc_cpu(f.pid)
        cpu_pct = (cpu - f.cpu_last) / (t - f.t_last) * 100 if t > f.t_last else math.nan
        f.cpu_last, f.t_last = cpu, t
        cycles: int | None = polls.get(PROBES[name])
        db = math.nan
        if name == "daemon":
            hz = healthz(api) if api is not None else None
            if hz is not None and isinstance(hz.get("cycles"), int):
                # the cycles it recorded (a poll whose round was merged into the next counts
                # once here, twice at the probe): the smaller, to be on the safe side
                cycles = hz["cycles"] if cycles is None else min(cycles, hz["cycles"])
            db = db_used_mb(db_path)
        s = Sample(t, st.get("VmRSS", math.nan), st.get("RssAnon", math.nan),
                   st.get("VmHWM", math.nan), cycles, cpu_pct, db)
        f.samples.append(s)
        capped = (db >= STORE_CACHE_MB if name == "daemon"
                  else cycles is not None and cycles >= MAX_SAMPLES)
        if f.cap_index is None and capped:
            f.cap_index = len(f.samples) - 1
        prev = f.samples[-2].rss if len(f.samples) > 1 else math.nan
        dcap = (s.rss - f.samples[f.cap_index].rss) if f.cap_index is not None else math.nan
        mark = "*" if f.cap_index == len(f.samples) - 1 else " "
        cells.append(f"{s.rss:6.1f} {_d(s.rss - prev)} {_d(dcap)} {s.anon:6.1f} {s.hwm:6.1f}"
                     f" {'?' if cycles is None else cycles:>6}{mark}{cpu_pct:3.0f}%"
                     + (f" {db:6.1f}" if name == "daemon" else ""))
    load = os.getloadavg()[0]
    capped_now = [CAP_WHAT[n] for n, f in faces.items() if f.cap_index == len(f.samples) - 1]
    note = f"  <- cap: {'; '.join(capped_now)}" if capped_now else ""
    print(f"{hms(t):>8} | " + " | ".join(cells) + f" | {load:5.2f}{note}", flush=True)


CAP_WHAT = {"dashboard": f"dashboard, {MAX_SAMPLES} cycles",
            "daemon": f"daemon, history file {STORE_CACHE_MB:.1f} MiB"}


def _d(v: float) -> str:
    return "      —" if math.isnan(v) else f"{v:+7.1f}"


def summary(faces: dict[str, Face], args: argparse.Namespace, interrupted: str | None) -> None:
    print(f"\n== summary: {args.rigs} rigs every {args.interval:g} s, "
          f"{'interrupted after' if interrupted else 'ran for'} "
          f"{hms(max((f.samples[-1].t for f in faces.values() if f.samples), default=0))} ==")
    if not any(f.samples for f in faces.values()):
        print("  no samples")
        return
    w = 26
    print(f"  {'':34s}" + "".join(f"{n:>{w}s}" for n in faces))

    def row(label: str, cell: Any) -> None:
        print(f"  {label:34s}" + "".join(f"{cell(f):>{w}s}" for f in faces.values()))

    def at(f: Face, i: int | None) -> str:
        if i is None or not f.samples:
            return "—"
        s = f.samples[i]
        return f"{s.rss:.1f} MB at {hms(s.t)}"

    row("RSS at the first sample", lambda f: at(f, 0))
    row("the cap", lambda f: f"{MAX_SAMPLES} cycles" if f.name == "dashboard"
        else f"history file {STORE_CACHE_MB:.1f} MiB")
    row("RSS at the cap",
        lambda f: at(f, f.cap_index) if f.cap_index is not None else "not reached")
    row("RSS at the end", lambda f: at(f, len(f.samples) - 1))
    row("peak (VmHWM)", lambda f: f"{f.samples[-1].hwm:.1f} MB" if f.samples else "—")
    row("cycles at the end", lambda f: str(f.samples[-1].cycles) if f.samples else "—")
    if "daemon" in faces:
        row("history file at the end", lambda f: f"{f.samples[-1].db:.1f} MiB"
            if f.name == "daemon" and f.samples else "")

    def growth(f: Face, key: str, before: bool = False) -> str:
        if f.cap_index is None:
            return "— (cap not reached)"
        pts = [(s.t, getattr(s, key)) for s in
               (f.samples[: f.cap_index + 1] if before else f.samples[f.cap_index:])]
        b, se = slope_per_hour(pts)
        if math.isnan(b):
            return f"— ({len(pts)} sample)"
        return f"{b:+.1f} ± {se:.1f} MB/h" if not math.isnan(se) else f"{b:+.1f} MB/h"

    row("growth to the cap (LSQ, VmRSS)", lambda f: growth(f, "rss", before=True))
    row("growth after the cap (LSQ, VmRSS)", lambda f: growth(f, "rss"))
    row("growth after the cap (LSQ, RssAnon)", lambda f: growth(f, "anon"))
    row("samples after the cap", lambda f: str(len(f.samples) - f.cap_index)
        if f.cap_index is not None else "0")
    print("  (± one standard error of the slope; with a busy machine expect a few MB of noise)")
    for name, f in faces.items():
        if f.cap_index is None:
            not_capped(f)
            continue
        pts = [(s.t, s.rss) for s in f.samples[f.cap_index:]]
        b, se = slope_per_hour(pts)
        if math.isnan(se):
            print(f"  {name}: too few samples after the cap for a verdict")
            continue
        span = pts[-1][0] - pts[0][0]
        fitted = b * span / 3600  # what the slope adds up to over the stretch
        if abs(b) <= 2 * se:
            verdict = "flat: no growth within noise (0 is within two standard errors)"
        elif abs(fitted) < args.noise:
            verdict = (f"flat within noise: the slope ({b:+.1f} ± {se:.1f} MB/h) adds up to "
                       f"{fitted:+.1f} MB over {hms(span)}, under the {args.noise:g} MB noise "
                       "floor (--noise; samples move by about that at 300 rigs): a "
                       "longer run tells")
        else:
            verdict = (f"{'GROWING' if b > 0 else 'shrinking'} after the cap: {b:+.1f} MB/h "
                       f"(± {se:.1f}), {fitted:+.1f} MB over {hms(span)}")
        print(f"  {name}: {verdict}; the samples: {pts[-1][1] - pts[0][1]:+.1f} MB from the "
              f"cap to the end")
    if "daemon" in faces:
        print(f"  note: the daemon keeps no rig history in memory (it writes it to SQLite); "
              f"until its SQLite page cache ({STORE_CACHE_MB:.1f} MiB) is full its RSS grows "
              "with the history file")


def not_capped(f: Face) -> None:
    """What a face whose cap was not reached did, and when it would reach it."""
    last = f.samples[-1] if f.samples else None
    half = f.samples[len(f.samples) // 2:]
    b, se = slope_per_hour([(s.t, s.rss) for s in half])
    trend = (f"; over the second half of the run its RSS grew {b:+.1f} ± {se:.1f} MB/h"
             if not math.isnan(se) else "")
    if last is None:
        print(f"  {f.name}: no samples")
    elif f.name == "dashboard":
        eta = ""
        if last.cycles and last.t > 0:
            eta = f", at this pace after {hms(MAX_SAMPLES / last.cycles * last.t)}"
        print(f"  {f.name}: the cap was not reached ({last.cycles} of {MAX_SAMPLES} cycles"
              f"{eta}): run longer{trend}")
    else:
        rate, _ = slope_per_hour([(s.t, s.db) for s in f.samples if not math.isnan(s.db)])
        eta = ""
        if rate > 0 and not math.isnan(last.db):
            at = last.t + (STORE_CACHE_MB - last.db) / rate * 3600
            eta = (f"; it grows {rate:.1f} MiB/h, so the cache is full at about {hms(at)} "
                   f"into the run")
        print(f"  {f.name}: the cap was not reached (history file {last.db:.1f} of "
              f"{STORE_CACHE_MB:.1f} MiB{eta}): run longer{trend}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rigs", type=int, default=300)
    p.add_argument("--interval", type=float, default=None,
                   help="the rigs' poll interval, s (default 5; --quick 1)")
    p.add_argument("--duration", type=float, default=None,
                   help="length of the run, s (default 7200; --quick 900)")
    p.add_argument("--every", type=float, default=None,
                   help="seconds between RSS samples (default 300; --quick 60)")
    p.add_argument("--face", choices=("daemon", "dashboard", "both"), default="both")
    p.add_argument("--quirky", type=float, default=0.2,
                   help="share of the rigs with a firmware quirk (default 0.2; cgminer-text "
                   "rigs only, about two thirds of the fleet); offline, hanging, slow, stuck, "
                   "dead-board and garbage rigs come on top")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: --interval 1 --duration 900 --every 60 (caps at ~12 min)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cols", type=int, default=120)
    p.add_argument("--rows", type=int, default=40)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--noise", type=float, default=1.0, metavar="MB",
                   help="growth after the cap that counts as noise (default 1 MB over the "
                   "stretch after the cap)")
    p.add_argument("--cmd", help="the faces' command, split like a shell would (default: "
                   "this Python -m tui.cli), e.g. a wrapper that runs tui.cli.main under "
                   "tracemalloc; it must exec Python itself (its pid is the one measured)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick
    for name, normal, fast in (("interval", 5.0, 1.0), ("duration", 7200.0, 900.0),
                               ("every", 300.0, 60.0)):
        if getattr(args, name) is None:
            setattr(args, name, fast if quick else normal)
    if args.interval <= 0 or args.every <= 0 or args.duration <= 0 or args.rigs < 1:
        p.error("--rigs, --interval, --duration and --every must be positive")
    if not 0 <= args.quirky <= 1:
        p.error("--quirky is a fraction (0..1)")
    raise_nofile_limit(4 * args.rigs + 2048)  # the children inherit it
    if args.serve:
        import asyncio

        asyncio.run(_serve(args))
        return 0
    print(f"minertop soak benchmark · {os.cpu_count()} CPUs · Python {sys.version.split()[0]}"
          f" · faces: {args.face}", flush=True)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
