"""Benchmark ``minertop daemon`` polling a simulated site of 1,000 and 5,000 rigs.

    python benchmarks/bench_daemon.py [--rigs 1000 5000] [--seconds 120] [--quick]

For each fleet size, every part runs in its own process, on loopback only:

- the simulated rigs (``bench_rigs.py --serve poll``: the same mixed fleet as the rig
  benchmark, one 127.0.20.x address per rig);
- ``minertop sim`` (the chain and the price, mempool REST on a free port);
- ``minertop daemon --config CFG --mempool SIM --db TMP/history.db --listen 127.0.0.1:PORT``
  (no terminal), with ``[poll] interval_s = 10, timeout_s = 3, concurrency = 256``.

Once ``/healthz`` reports two cycles, it measures over a window (default 120 s, ``--quick``
40 s): the daemon's CPU (% of one core, /proc utime+stime), its memory (VmRSS through the
window, VmHWM at the end), the history's growth (the files, db + WAL, and the pages SQLite
uses, read through a read-only connection: WAL checkpoints make the raw file sizes jumpy) and
the cycles completed.  Then:

- ``GET /api/v1/snapshot`` under load: 50 clients (one ``httpx.AsyncClient`` each) doing 20
  sequential GETs each, while the daemon keeps polling: p50 / p99 / max latency, body size;
- ``minertop --attach URL`` in a pseudo-terminal at 120x40: time to the first output, to a
  network figure (``EH/s``) and to the site's rig count (``5000 rigs``) on screen;
- ``minertop --attach URL --once --json`` (and ``--once``) wall time;
- SIGTERM: the daemon must exit 0 within a few seconds; the history's final size.

Nothing here edits the daemon: a failure is reported with the command and its stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import bench_rigs  # noqa: E402  (the simulated site in its own process)
from bench_demo import ANSI  # noqa: E402  (escape sequences, stripped from the pty output)

from tui.sim.rigs import raise_nofile_limit  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
INTERVAL_S = 10
TIMEOUT_S = 3
CONCURRENCY = 256


# ----------------------------------------------------------------------------- helpers


def minertop_argv() -> list[str]:
    """How to run the ``minertop`` command of this environment."""
    exe = Path(sys.executable).parent / "minertop"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("minertop")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def proc_status(pid: int, key: str) -> float:
    """A ``kB`` line of /proc/<pid>/status, in MB (NaN when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def db_files(db: Path) -> dict[str, int]:
    return {"db": file_size(db), "wal": file_size(Path(f"{db}-wal")),
            "shm": file_size(Path(f"{db}-shm"))}


def db_pages(db: Path) -> dict[str, int] | None:
    """Bytes SQLite uses (page_count - freelist) as a reader sees it, WAL included."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            page = con.execute("PRAGMA page_size").fetchone()[0]
            count = con.execute("PRAGMA page_count").fetchone()[0]
            free = con.execute("PRAGMA freelist_count").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return {"used": (count - free) * page, "pages": count, "free": free, "page": page}


def mb(n: float) -> str:
    """Bytes, readable (kB below 1 MB)."""
    if n != n:
        return "? MB"
    if abs(n) < 1e6:
        return f"{n / 1e3:,.1f} kB"
    return f"{n / 1e6:,.2f} MB"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("      | " + x for x in text[-lines:])


_HTTP: Any = None


def http() -> Any:
    """One kept-alive synchronous httpx client (a new client per call costs ~30 ms)."""
    global _HTTP
    if _HTTP is None:
        import httpx

        _HTTP = httpx.Client()
    return _HTTP


def get_json(url: str, timeout: float = 5.0) -> tuple[float, Any]:
    """(seconds, document) of one GET."""
    t0 = time.perf_counter()
    r = http().get(url, timeout=timeout)
    return time.perf_counter() - t0, r.json()


def line(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<38} {value:>22}   {note}".rstrip())


# ----------------------------------------------------------------------------- processes


class Proc:
    """A child process with its stdout/stderr in files."""

    def __init__(self, name: str, argv: list[str], tmp: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.out = tmp / f"{name}.stdout"
        self.err = tmp / f"{name}.stderr"
        with self.out.open("wb") as o, self.err.open("wb") as e:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                         env=env, cwd=ROOT)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> tuple[int | None, float]:
        """SIGTERM; (exit code or None if it had to be killed, seconds to exit)."""
        if not self.alive():
            return self.proc.returncode, 0.0
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None, time.perf_counter() - t0
        return rc, time.perf_counter() - t0

    def command(self) -> str:
        return " ".join(self.argv)


def start_sim(cmd: list[str], tmp: Path, env: dict[str, str]) -> tuple[Proc, str]:
    port = free_port()
    sim = Proc("sim", [*cmd, "sim", "--mempool-port", str(port), "--rpc-port", "0"], tmp, env)
    deadline = time.time() + 30
    while True:
        if "Serving" in sim.out.read_text(errors="replace"):
            return sim, f"http://127.0.0.1:{port}"
        if not sim.alive() or time.time() > deadline:
            raise SystemExit(f"minertop sim did not start: {sim.command()}\n{tail(sim.err)}")
        time.sleep(0.1)


def write_config(path: Path, targets: list[Any]) -> None:
    parts = [
        "[site]",
        'name = "bench"',
        "electricity_usd_kwh = 0.06",
        "pool_fee_pct = 2.0",
        "",
        "[poll]",
        f"interval_s = {INTERVAL_S}",
        f"timeout_s = {TIMEOUT_S}",
        f"concurrency = {CONCURRENCY}",
        "",
    ]
    for t in targets:
        parts += ["[[rigs]]", f'name = "{t.rig_id}"', f'host = "{t.host}"', f"port = {t.port}",
                  f'kind = "{t.kind}"', ""]
    path.write_text("\n".join(parts), encoding="utf-8")


# ----------------------------------------------------------------------------- the pty


def pty_run(argv: list[str], env: dict[str, str], cols: int, rows: int,
            patterns: dict[str, re.Pattern[bytes]], timeout: float) -> dict[str, Any]:
    """Run ``argv`` in a pseudo-terminal until every pattern was on screen (or timeout);
    then 'q'.  Returns seconds to the first output and to each pattern, the peak memory,
    the quit time and, when something never showed, the end of the screen text."""
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # child: the dashboard on the slave side
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGWINCH)
    found: dict[str, float] = {}
    first: float | None = None
    buf = b""
    text = b""
    scanned = 0
    total = 0
    exited_early = False
    try:
        deadline = t0 + timeout
        while len(found) < len(patterns) and time.perf_counter() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                exited_early = True
                break
            now = time.perf_counter() - t0
            total += len(chunk)
            if first is None:
                first = now
            buf += chunk
            # strip what is complete (a sequence may be cut at the chunk's end: keep 64 bytes)
            cut = max(scanned, len(buf) - 64)
            text += ANSI.sub(b"", buf[scanned:cut])
            scanned = cut
            probe = text + ANSI.sub(b"", buf[scanned:])
            for name, pat in patterns.items():
                if name not in found and pat.search(probe):
                    found[name] = now
        hwm = proc_status(pid, "VmHWM")
        cpu = cpu_seconds(pid) if not exited_early else float("nan")
        quit_s = float("nan")
        if not exited_early:
            q0 = time.perf_counter()
            with contextlib.suppress(OSError):
                os.write(fd, b"q")
            end = q0 + 5
            while time.perf_counter() < end:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    quit_s = time.perf_counter() - q0
                    pid = 0
                    break
                if select.select([fd], [], [], 0.05)[0]:
                    with contextlib.suppress(OSError):
                        os.read(fd, 65536)
    finally:
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os.close(fd)
    screen = ANSI.sub(b"", buf).decode("utf-8", "replace")
    return {"first": first, "found": found, "hwm_mb": hwm, "cpu_s": cpu, "quit_s": quit_s,
            "bytes": total, "exited_early": exited_early,
            "screen_tail": screen[-600:] if len(found) < len(patterns) else ""}


# ----------------------------------------------------------------------------- load


async def snapshot_load(url: str, clients: int, requests: int) -> dict[str, Any]:
    import httpx

    lat: list[float] = []
    sizes: set[int] = set()
    etags: set[str] = set()
    statuses: dict[int, int] = {}
    errors: list[str] = []
    encodings: set[str] = set()

    # the clients are made before the clock starts (an AsyncClient builds an SSL context:
    # ~10-30 ms of the benchmark's own CPU each); their first GET includes the connect
    pool = [httpx.AsyncClient(timeout=httpx.Timeout(60.0)) for _ in range(clients)]

    async def one_client(c: httpx.AsyncClient) -> None:
        async with c:
            for _ in range(requests):
                t0 = time.perf_counter()
                try:
                    r = await c.get(url)
                    body = r.content
                except httpx.HTTPError as e:
                    errors.append(f"{type(e).__name__}: {e}")
                    continue
                lat.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                sizes.add(len(body))
                etags.add(r.headers.get("etag", ""))
                encodings.add(r.headers.get("content-encoding", "identity"))

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in pool))
    wall = time.perf_counter() - t0
    return {"lat": lat, "wall": wall, "sizes": sizes, "etags": etags, "statuses": statuses,
            "errors": errors, "encodings": encodings}


# ----------------------------------------------------------------------------- one size


def bench_size(n: int, args: argparse.Namespace, cmd: list[str]) -> dict[str, Any]:
    print(f"\n== {n:,} simulated rigs · poll every {INTERVAL_S} s, deadline {TIMEOUT_S} s, "
          f"concurrency {CONCURRENCY} ==")
    tmp = Path(tempfile.mkdtemp(prefix=f"minertop-bench-daemon-{n}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINERTOP_")}
    for d in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env[d] = str(tmp / d.lower())
    env["TERM"] = os.environ.get("TERM", "xterm-256color")
    env.setdefault("COLORTERM", "truecolor")
    env["PYTHONUNBUFFERED"] = "1"
    out: dict[str, Any] = {"rigs": n, "problems": []}
    problems: list[str] = out["problems"]
    site = sim = daemon = None
    try:
        t0 = time.perf_counter()
        site = bench_rigs.Site("poll", n, args.seed)
        mix: dict[str, int] = {}
        for s in bench_rigs.fleet_specs(n, args.seed):
            mix[s.behaviour] = mix.get(s.behaviour, 0) + 1
        print(f"  rig site up in {time.perf_counter() - t0:.1f} s (pid {site.proc.pid}); "
              f"mix {mix}")
        sim, sim_url = start_sim(cmd, tmp, env)
        print(f"  minertop sim on {sim_url} (pid {sim.pid})")
        cfg = tmp / "config.toml"
        write_config(cfg, site.targets)
        db = tmp / "history.db"
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        daemon = Proc("daemon", [*cmd, "daemon", "--config", str(cfg), "--mempool", sim_url,
                                 "--db", str(db), "--listen", f"127.0.0.1:{port}"], tmp, env)
        print(f"  daemon pid {daemon.pid}: {' '.join(daemon.argv[1:])}")
        out["daemon_cmd"] = daemon.command()

        # ---- start-up: listening, first cycle, second cycle
        t_start = time.perf_counter()
        t_listen = t_cycle1 = None
        health: dict[str, Any] = {}
        deadline = t_start + args.startup_timeout
        while True:
            if not daemon.alive():
                problems.append(f"daemon exited {daemon.proc.returncode} during start-up")
                print(f"  !! the daemon exited with {daemon.proc.returncode}:\n"
                      f"     {daemon.command()}\n{tail(daemon.err, 30)}")
                return out
            with contextlib.suppress(Exception):
                _, health = get_json(api + "/healthz", 2)
                if t_listen is None:
                    t_listen = time.perf_counter() - t_start
                cyc = health.get("cycles", 0)
                if cyc >= 1 and t_cycle1 is None:
                    t_cycle1 = time.perf_counter() - t_start
                if cyc >= 2:
                    break
            if time.perf_counter() > deadline:
                problems.append(f"no 2 cycles within {args.startup_timeout:.0f} s")
                print(f"  !! no 2 cycles within {args.startup_timeout:.0f} s; healthz: "
                      f"{json.dumps(health)[:600]}\n{tail(daemon.err, 30)}")
                return out
            time.sleep(0.25)
        t_cycle2 = time.perf_counter() - t_start
        print(f"  start-up: API answers after {t_listen:.2f} s, cycle 1 at {t_cycle1:.1f} s, "
              f"cycle 2 at {t_cycle2:.1f} s; RSS {proc_status(daemon.pid, 'VmRSS'):.0f} MB")
        out.update(listen_s=t_listen, cycle1_s=t_cycle1, cycle2_s=t_cycle2)

        # ---- the window: CPU, memory, history growth, cycles
        window = args.seconds
        files0, pages0 = db_files(db), db_pages(db)
        c0, s0, cyc0 = cpu_seconds(daemon.pid), site.cpu(), health["cycles"]
        w0 = time.perf_counter()
        rss: list[tuple[float, float]] = []
        rig_fetches: list[float] = []  # when the rigs source last completed (daemon clock)
        healthz_ms: list[float] = []
        last_fetch = None
        hz: dict[str, Any] = health
        while (now := time.perf_counter()) - w0 < window:
            if not daemon.alive():
                problems.append(f"daemon exited {daemon.proc.returncode} in the window")
                print(f"  !! the daemon exited with {daemon.proc.returncode}:\n"
                      f"{tail(daemon.err, 30)}")
                return out
            try:
                dt, hz = get_json(api + "/healthz", 5)
                healthz_ms.append(dt * 1000)
                age = (hz.get("sources", {}).get("rigs") or {}).get("age_s")
                if age is not None:
                    fetched = round(time.time() - age)
                    if last_fetch is None or abs(fetched - last_fetch) > 2:
                        rig_fetches.append(time.time() - age)
                        last_fetch = fetched
            except Exception as e:  # noqa: BLE001 - counted, the window goes on
                problems.append(f"/healthz failed: {type(e).__name__}: {e}")
            rss.append((now - w0, proc_status(daemon.pid, "VmRSS")))
            time.sleep(max(0.0, min(args.sample, window - (time.perf_counter() - w0))))
        with contextlib.suppress(Exception):  # the cycles up to the end of the window
            hz = get_json(api + "/healthz", 5)[1]
        elapsed = time.perf_counter() - w0
        c1, s1, cyc1 = cpu_seconds(daemon.pid), site.cpu(), hz.get("cycles", cyc0)
        files1, pages1 = db_files(db), db_pages(db)
        hwm = proc_status(daemon.pid, "VmHWM")
        cpu_pct = (c1 - c0) / elapsed * 100
        cycles = cyc1 - cyc0
        periods = [b - a for a, b in zip(rig_fetches, rig_fetches[1:], strict=False)]
        raw0, raw1 = files0["db"] + files0["wal"], files1["db"] + files1["wal"]
        used_growth = (pages1["used"] - pages0["used"]) if pages0 and pages1 else None
        print(f"  -- window {elapsed:.0f} s (healthz + RSS sampled every {args.sample:g} s) --")
        line("daemon CPU", f"{cpu_pct:.1f} % of a core", f"({c1 - c0:.1f} s CPU)")
        line("rig site CPU (other process)", f"{(s1 - s0) / elapsed * 100:.1f} % of a core")
        line("cycles in the window", f"{cycles}",
             f"{elapsed / cycles:.1f} s per cycle" if cycles else "NONE")
        if periods:
            mean_p = statistics.fmean(periods)
            line("rig poll period (healthz age_s)", f"{mean_p:.1f} s",
                 f"(interval {INTERVAL_S} s + the cycle itself)")
        if hz.get("cycle_s") is not None:
            line("rig poll cycle (healthz cycle_s)", f"{hz['cycle_s']:.2f} s")
            out["cycle_s"] = hz["cycle_s"]
        r_first, r_mid, r_last = rss[0][1], rss[len(rss) // 2][1], rss[-1][1]
        r_max = max(r for _, r in rss)
        line("RSS start / mid / end / max of window",
             f"{r_first:.0f} / {r_mid:.0f} / {r_last:.0f} / {r_max:.0f} MB",
             f"(2nd half: {(r_last - r_mid) / (elapsed / 2) * 3600:+.0f} MB/h)")
        line("peak RSS (VmHWM)", f"{hwm:.0f} MB")
        line("history files db+wal before", mb(raw0),
             f"(db {mb(files0['db'])}, wal {mb(files0['wal'])})")
        line("history files db+wal after", mb(raw1),
             f"(db {mb(files1['db'])}, wal {mb(files1['wal'])})")
        growth_raw = raw1 - raw0
        line("  raw file growth", mb(growth_raw),
             f"=> {mb(growth_raw / elapsed * 86400)}/day (WAL not checkpointed: jumpy)")
        if used_growth is not None:
            per_day = used_growth / elapsed * 86400
            line("  pages in use (db+wal, ro reader)",
                 f"{mb(pages0['used'])} -> {mb(pages1['used'])}")  # type: ignore[index]
            line("  used growth", mb(used_growth),
                 f"=> {mb(per_day)}/day; {mb(per_day * 2)} for the 48 h of raw rows kept")
            if cycles:
                line("  per cycle / per rig reading", f"{used_growth / cycles / 1e3:,.1f} kB",
                     f"{used_growth / cycles / n:.1f} B per rig reading")
            out["db_per_day"] = per_day
        else:
            problems.append("could not read the history's page counts")
        st = hz.get("store", {})
        if st.get("pending_cycles") or st.get("dropped_cycles"):
            problems.append(f"store pending {st.get('pending_cycles')}, dropped "
                            f"{st.get('dropped_cycles')}")
        line("healthz latency p50 / max", f"{pct(healthz_ms, 50):.1f} / "
             f"{max(healthz_ms, default=float('nan')):.1f} ms")
        print(f"  healthz at the end: status {hz.get('status')}, store {st.get('state')} "
              f"(age {st.get('age_s')} s), sources "
              + ", ".join(f"{k} {v.get('state')}" for k, v in hz.get("sources", {}).items())
              + (f", errors {hz.get('errors')}" if hz.get("errors") else ""))
        out.update(cpu_pct=cpu_pct, hwm_mb=hwm, rss=(r_first, r_last), cycles=cycles,
                   raw_growth=growth_raw, window=elapsed)

        # ---- /api/v1/snapshot under load (the daemon keeps polling)
        snap_url = api + "/api/v1/snapshot"
        t0 = time.perf_counter()
        r = http().get(snap_url, timeout=30)
        t200 = time.perf_counter() - t0
        body = r.content
        doc = r.json()
        etag = r.headers.get("etag")
        t0 = time.perf_counter()
        r304 = http().get(snap_url, headers={"If-None-Match": etag or "*"}, timeout=30)
        t304 = time.perf_counter() - t0
        n_rigs_doc = (doc.get("site") or {}).get("rigs")
        tip = doc.get("tip_height")
        print(f"  -- GET /api/v1/snapshot: {len(body):,} bytes, site.rigs {n_rigs_doc}, "
              f"tip {tip}; one GET {t200 * 1000:.1f} ms, If-None-Match -> "
              f"{r304.status_code} in {t304 * 1000:.1f} ms --")
        # a single client first: the client's own cost, no queueing
        c0, b0 = cpu_seconds(daemon.pid), time.process_time()
        single = asyncio.run(snapshot_load(snap_url, 1, args.requests))
        c1, b1 = cpu_seconds(daemon.pid), time.process_time()
        load = asyncio.run(snapshot_load(snap_url, args.clients, args.requests))
        c2, b2 = cpu_seconds(daemon.pid), time.process_time()
        for label, res, cpu, client_cpu in (("1 client", single, c1 - c0, b1 - b0),
                                            (f"{args.clients} clients", load, c2 - c1, b2 - b1)):
            lat = [x * 1000 for x in res["lat"]]
            rate = len(lat) / res["wall"]
            line(f"{label} x {args.requests} GETs",
                 f"p50 {pct(lat, 50):.1f} p99 {pct(lat, 99):.1f} max {max(lat, default=0):.1f} ms",
                 f"{rate:.0f} req/s, {rate * len(body) / 1e6:.0f} MB/s; "
                 f"CPU daemon {cpu / res['wall'] * 100:.0f} %, "
                 f"bench client {client_cpu / res['wall'] * 100:.0f} %")
            if res["errors"] or set(res["statuses"]) != {200}:
                problems.append(f"snapshot load ({label}): statuses {res['statuses']}, "
                                f"{len(res['errors'])} errors {res['errors'][:3]}")
        print(f"    bodies {sorted(load['sizes'])[:4]} bytes, {len(load['etags'])} ETag(s), "
              f"content-encoding {sorted(load['encodings'])} (the client asks gzip)")
        lat = [x * 1000 for x in load["lat"]]
        out["snapshot"] = {"p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat, default=0),
                           "bytes": len(body)}

        # ---- /metrics as Prometheus scrapes it (gzip), one scraper at a time
        met_url = api + "/metrics"
        scrape: list[float] = []
        sizes = (0, 0)
        for _ in range(20):
            t0 = time.perf_counter()
            with http().stream("GET", met_url, headers={"Accept-Encoding": "gzip"},
                               timeout=30) as mr:
                raw = b"".join(mr.iter_raw())
            scrape.append((time.perf_counter() - t0) * 1000)
            plain = http().get(met_url, headers={"Accept-Encoding": "identity"}, timeout=30)
            sizes = (len(plain.content), len(raw))
        series = sum(1 for ln in plain.text.splitlines() if ln and not ln.startswith("#"))
        line("GET /metrics (gzip, as Prometheus asks)",
             f"p50 {pct(scrape, 50):.1f} p99 {pct(scrape, 99):.1f} ms",
             f"{sizes[0]:,} bytes ({sizes[1]:,} gzipped), {series:,} series")
        out["metrics"] = {"p50": pct(scrape, 50), "p99": pct(scrape, 99), "bytes": sizes[0],
                          "gzip_bytes": sizes[1], "series": series}

        # ---- attach: the dashboard in a pty, and --once
        print(f"  -- minertop --attach {api} ({args.cols}x{args.rows} pty) --")
        patterns = {"network (EH/s)": re.compile(rb"\d EH/s"),
                    f"site ('{n} rigs')": re.compile(rb"\b%d rigs" % n)}
        if isinstance(tip, int):  # the tip may move on meanwhile (a block every ~10 min)
            alts = [f"{h:,}|{h}" for h in range(tip - 1, tip + 3)]
            patterns[f"tip height ({tip:,})"] = re.compile(
                ("(?<![\\d,])(?:" + "|".join(alts) + ")(?![\\d,])").encode())
        res = pty_run([*cmd, "--attach", api], env, args.cols, args.rows, patterns,
                      args.attach_timeout)
        if res["first"] is not None:
            line("first output", f"{res['first']:.2f} s")
        for name in patterns:
            t = res["found"].get(name)
            line(f"first frame with {name}", f"{t:.2f} s" if t is not None else "NEVER")
            if t is None:
                problems.append(f"attached dashboard: {name} not on screen within "
                                f"{args.attach_timeout:.0f} s")
        if res["found"]:
            out["attach_s"] = max(res["found"].values())
        line("attached dashboard VmHWM / CPU", f"{res['hwm_mb']:.0f} MB / {res['cpu_s']:.1f} s",
             f"quit ('q') in {res['quit_s']:.2f} s")
        if res["exited_early"]:
            problems.append("attached dashboard exited early")
        if res["screen_tail"]:
            print("    screen text at the end:\n      " +
                  res["screen_tail"].replace("\n", "\n      "))
        for label, extra in (("--once --json", ["--once", "--json"]), ("--once", ["--once"])):
            walls, sizes, rcs = [], [], []
            for _ in range(3):
                t0 = time.perf_counter()
                p = subprocess.run([*cmd, "--attach", api, *extra], env=env, cwd=ROOT,
                                   capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
                walls.append(time.perf_counter() - t0)
                sizes.append(len(p.stdout))
                rcs.append(p.returncode)
                if p.returncode:
                    problems.append(f"minertop --attach {api} {' '.join(extra)}: exit "
                                    f"{p.returncode}: {p.stderr.decode(errors='replace')[-400:]}")
            line(f"minertop --attach URL {label}",
                 f"{min(walls):.2f} s min, {statistics.median(walls):.2f} s med",
                 f"exit {rcs}, {sizes[-1]:,} bytes of stdout")
            out[f"once_{'json' if 'json' in label else 'text'}_s"] = statistics.median(walls)

        # ---- stop
        before_stop = db_files(db)
        rc, exit_s = daemon.stop(timeout=args.stop_timeout)
        after = db_files(db)
        print("  -- stop --")
        line("SIGTERM -> exit", f"{exit_s:.2f} s", f"exit code {rc}"
             + ("" if rc == 0 else "  << expected 0"))
        if rc != 0:
            problems.append(f"daemon exit code {rc} after SIGTERM (in {exit_s:.2f} s)")
        line("history db+wal just before stop", mb(before_stop["db"] + before_stop["wal"]),
             f"(wal {mb(before_stop['wal'])})")
        line("history after stop (final)", mb(after["db"] + after["wal"]),
             f"(db {mb(after['db'])}, wal {mb(after['wal'])}, shm {mb(after['shm'])})")
        out.update(exit_s=exit_s, exit_rc=rc, final_db=after["db"] + after["wal"])
        return out
    finally:
        if daemon is not None and daemon.alive():
            daemon.stop(timeout=args.stop_timeout)
        if daemon is not None:
            err = daemon.err.read_text(errors="replace").splitlines()
            # "2026-01-05T10:00:00 warning message": the level is the second word
            def level(x: str) -> str:
                parts = x.split(None, 2)
                return parts[1].lower() if len(parts) > 1 else ""

            bad = [x for x in err if level(x) in ("error", "critical")
                   or x.startswith("Traceback")]
            warn = [x for x in err if level(x) == "warning"]
            kinds: dict[str, int] = {}
            for x in warn:  # "alert fired (warning) r00012: ..." -> "alert fired (warning)"
                msg = x.split(None, 2)[2] if len(x.split(None, 2)) > 2 else x
                key = re.sub(r"r\d{5}", "*", msg)
                key = re.sub(r"[-\u2212+$]*\d.*", "", key).strip()[:70]
                kinds[key] = kinds.get(key, 0) + 1
            print(f"  daemon stderr: {len(err)} lines, {len(bad)} error lines, "
                  f"{len(warn)} warnings ({daemon.err})")
            for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:6]:
                print(f"      {v:5d} x warning: {k}")
            for x in (bad or warn)[:6]:
                print(f"      | {x[:200]}")
            if bad:
                problems.append(f"{len(bad)} error lines in the daemon's stderr")
        if sim is not None:
            rc, _ = sim.stop()
            if rc not in (0, None) and rc != -signal.SIGTERM:
                problems.append(f"minertop sim exit {rc}")
        if site is not None:
            site.stop()
        if problems:
            print("  problems: " + "; ".join(problems))
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"  kept {tmp}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rigs", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--seconds", type=float, default=None,
                    help="measurement window per fleet size (default 120, --quick 40)")
    ap.add_argument("--quick", action="store_true", help="a 40 s window")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=20, help="sequential GETs per client")
    ap.add_argument("--sample", type=float, default=2.0, help="healthz / RSS sampling (s)")
    ap.add_argument("--cols", type=int, default=120)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--startup-timeout", type=float, default=180.0)
    ap.add_argument("--attach-timeout", type=float, default=60.0)
    ap.add_argument("--stop-timeout", type=float, default=15.0)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = ap.parse_args(argv)
    if args.seconds is None:
        args.seconds = 40.0 if args.quick else 120.0
    limit = raise_nofile_limit(4 * max(args.rigs) + 2048)  # inherited by the children
    cmd = minertop_argv()
    print(f"minertop daemon benchmark · {os.cpu_count()} CPUs · Python "
          f"{sys.version.split()[0]} · open files {limit} · window {args.seconds:g} s · "
          f"{' '.join(cmd)}")
    results = []
    t0 = time.perf_counter()
    for n in args.rigs:
        results.append(bench_size(n, args, cmd))
    print(f"\nsummary ({time.perf_counter() - t0:.0f} s in all)")
    for r in results:
        if "cpu_pct" not in r:
            print(f"  {r['rigs']:>6,} rigs: FAILED ({'; '.join(r['problems'])})")
            continue
        snap = r.get("snapshot", {})
        print(f"  {r['rigs']:>6,} rigs: CPU {r['cpu_pct']:.1f} %, VmHWM {r['hwm_mb']:.0f} MB, "
              f"history {mb(r.get('db_per_day', float('nan')))}/day, "
              f"snapshot p50/p99 {snap.get('p50', float('nan')):.0f}/"
              f"{snap.get('p99', float('nan')):.0f} ms ({snap.get('bytes', 0) / 1e3:,.0f} kB), "
              f"/metrics p50 {r.get('metrics', {}).get('p50', float('nan')):.1f} ms "
              f"({r.get('metrics', {}).get('bytes', 0) / 1e3:,.0f} kB), "
              f"attach {r.get('attach_s', float('nan')):.2f} s, --once --json "
              f"{r.get('once_json_s', float('nan')):.2f} s, SIGTERM exit "
              f"{r.get('exit_s', float('nan')):.2f} s (rc {r.get('exit_rc')})"
              + (f"  [{len(r['problems'])} problem(s)]" if r["problems"] else ""))
    return 0 if all(not r["problems"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
