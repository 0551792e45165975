"""Benchmark: the daemon's history file (tui/store.py) at 1,000 and 5,000 rigs.

    python benchmarks/bench_store.py [--rigs 1000 5000] [--hours 6] [--dir DIR] [--keep]

For each fleet size, simulated time (no waiting): every 10 s one ``record_cycle`` with a
reading per rig plus the site and chain rows (and now and then an alert event), and a
``compact`` every 5 simulated minutes, as the daemon does, for ``--hours`` hours.  Printed:

- time per ``record_cycle`` (mean, p50, p99, max) and per ``compact`` call;
- bytes per day of raw data: file growth (after ``PRAGMA wal_checkpoint(TRUNCATE)``) over the
  simulated days, and the on-disk bytes per row of each table (``dbstat``);
- the same data then rolled up by compaction as if 48 h, then 30 days had passed: time per
  compaction batch (one transaction) and the bytes per 5-minute / hourly row;
- ``rig_history`` for one rig over 24 h of raw data (over the simulated span when shorter,
  with the per-point cost scaled to 24 h), and over the rolled-up tiers;
- the projected steady-state file size under the documented retention (48 h raw, 5-minute
  rows to 30 days, hourly rows to 400 days), from the measured bytes per row;
- the time to open the file (``HistoryStore()`` runs ``PRAGMA quick_check``), scaled to the
  steady-state size.

Readings vary like a real fleet (float values with noise, 1 % offline rigs with missing
values), so the quantised integers have realistic widths.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.store import (  # noqa: E402
    BUCKET_1H_S,
    BUCKET_5M_S,
    KEEP_1H_S,
    KEEP_5M_S,
    RAW_KEEP_S,
    ChainPoint,
    EventRecord,
    HistoryStore,
    RigPoint,
    SitePoint,
)

T0 = 1_769_000_400  # an hour boundary
INTERVAL = 10.0
DAY = 86400


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def ms(x: float) -> str:
    return f"{x * 1000:.2f} ms"


def mib(x: float) -> str:
    return f"{x / 2**20:,.1f} MiB"


def table_stats(path: Path) -> dict[str, tuple[float, int]]:
    """{table: (bytes on disk incl. its indexes, rows)}.  A table of a few pages is mostly
    empty space: then its used bytes are counted, as if its pages were 90 % full."""
    db = sqlite3.connect(path)
    try:
        pages = {name: (size, size - unused, n) for name, size, unused, n in db.execute(
            "SELECT name, sum(pgsize), sum(unused), count(*) FROM dbstat GROUP BY name")}
        out: dict[str, tuple[float, int]] = {}
        for table in ("rig_raw", "cycle_raw", "rig_5m", "cycle_5m", "rig_1h", "cycle_1h",
                      "event", "rig"):
            rows = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            size = 0.0
            for name in (table, "event_t" if table == "event" else None,
                         "sqlite_autoindex_rig_1" if table == "rig" else None):
                total, used, n = pages.get(name, (0, 0, 0)) if name else (0, 0, 0)
                size += total if n >= 50 else used / 0.9
            out[table] = (size, rows)
        return out
    finally:
        db.close()


def checkpoint(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return path.stat().st_size


class Fleet:
    def __init__(self, n: int, seed: int = 1) -> None:
        self.rnd = random.Random(seed)
        self.names = [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}:4028" for i in range(n)]
        self.base_hr = [self.rnd.choice((95.0, 110.0, 140.0, 200.0, 234.0)) for _ in range(n)]
        self.base_w = [hr * self.rnd.uniform(15.0, 30.0) for hr in self.base_hr]

    def cycle(self, i: int) -> list[RigPoint]:
        rnd = self.rnd
        out = []
        for j, name in enumerate(self.names):
            if rnd.random() < 0.01:
                out.append(RigPoint(name, None, None, None, "offline", None))
                continue
            hr = self.base_hr[j] * rnd.uniform(0.93, 1.04)
            w = self.base_w[j] * rnd.uniform(0.98, 1.02)
            out.append(RigPoint(name, hr, w, rnd.uniform(62.0, 84.0),
                                "ok" if rnd.random() > 0.005 else "stale",
                                hr * 0.05 - w * 24 / 1000 * 0.06))
        return out


def site_chain(i: int, rigs: list[RigPoint]) -> tuple[SitePoint, ChainPoint]:
    hr = sum(r.hashrate_ths or 0.0 for r in rigs)
    w = sum(r.power_w or 0.0 for r in rigs)
    ok = sum(r.status == "ok" for r in rigs)
    site = SitePoint(hr, w, hr * 0.05 - w * 0.00144, hr * 0.049 - w * 0.00144, len(rigs), ok,
                     len(rigs) - ok, 41_000.0 + (i % 100))
    chain = ChainPoint(900_000 + i // 60, 1.27e14, 8.6e20 + i * 1e14, 104_000.0 + i % 500,
                       52.1 + (i % 50) / 100, 1.8, -0.4 + (i % 30) / 100)
    return site, chain


def query_times(store: HistoryStore, names: list[str], since: float, until: float,
                n: int = 20) -> tuple[list[float], int]:
    rnd = random.Random(7)
    times, points = [], 0
    for name in rnd.sample(names, min(n, len(names))):
        t = time.perf_counter()
        pts = store.rig_history(name, since, until)
        times.append(time.perf_counter() - t)
        points = len(pts)
    return times, points


def run(n_rigs: int, hours: float, workdir: Path) -> None:
    path = workdir / f"history-{n_rigs}.db"
    store = HistoryStore(path)
    fleet = Fleet(n_rigs)
    cycles = int(hours * 3600 / INTERVAL)
    print(f"\n== {n_rigs:,} rigs, {hours:g} simulated hours ({cycles:,} cycles of {INTERVAL:g} s)")
    rec: list[float] = []
    comp: list[float] = []
    size0 = None
    wal_max = 0
    wall = time.perf_counter()
    for i in range(cycles):
        t = T0 + i * INTERVAL
        rigs = fleet.cycle(i)
        site, chain = site_chain(i, rigs)
        r = rigs[i % n_rigs].rig_id
        events = [EventRecord(t, "fired" if i % 120 else "cleared", f"rig:{r}:hot", r, "hot",
                              "warning", f"{r} is hot: 86.5 °C (limit 85 °C)")
                  ] if i % 60 == 0 else []
        t1 = time.perf_counter()
        assert store.record_cycle(t, rigs=rigs, site=site, chain=chain, events=events)
        rec.append(time.perf_counter() - t1)
        if i == 0:
            size0 = checkpoint(path)
        if i % 30 == 29:
            t1 = time.perf_counter()
            store.compact(t)
            comp.append(time.perf_counter() - t1)
            wal = Path(f"{path}-wal")
            wal_max = max(wal_max, wal.stat().st_size if wal.exists() else 0)
        if i and i % 1080 == 0:
            print(f"   ... {i * INTERVAL / 3600:g} h simulated, {time.perf_counter() - wall:.0f} s",
                  flush=True)
    end = T0 + (cycles - 1) * INTERVAL
    assert size0 is not None
    size = checkpoint(path)
    days = (cycles - 1) * INTERVAL / DAY
    stats = table_stats(path)
    raw_b, raw_n = stats["rig_raw"]
    cyc_b, cyc_n = stats["cycle_raw"]
    print(f"record_cycle: mean {ms(statistics.fmean(rec))}, p50 {ms(pct(rec, 0.5))}, "
          f"p99 {ms(pct(rec, 0.99))}, max {ms(max(rec))}  "
          f"({statistics.fmean(rec) / n_rigs * 1e6:.2f} µs per reading)")
    print(f"compact (nothing old yet): mean {ms(statistics.fmean(comp))}, max {ms(max(comp))}")
    print(f"largest WAL seen: {mib(wal_max)}")
    print(f"raw data: {mib((size - size0) / days)} per day of file growth "
          f"({(size - size0) / (days * DAY / INTERVAL * n_rigs):.1f} B per reading, "
          f"all tables); rig_raw {raw_b / raw_n:.1f} B/row, cycle_raw {cyc_b / cyc_n:.0f} B/row")

    # one-rig queries over raw data
    span = min(24 * 3600.0, end - T0)
    qt, pts = query_times(store, fleet.names, end - span, end)
    scale = (24 * 3600 / INTERVAL) / max(pts, 1)
    print(f"rig_history raw over {span / 3600:g} h ({pts} points): mean {ms(statistics.fmean(qt))}"
          f", p99 {ms(pct(qt, 0.99))}" + (f"; scaled to 24 h: {ms(statistics.fmean(qt) * scale)}"
                                          if scale > 1.01 else ""))
    store.close()

    t1 = time.perf_counter()
    HistoryStore(path).close()
    open_s = time.perf_counter() - t1
    open_size = path.stat().st_size

    # roll everything into 5-minute rows, as if 48 h had passed; one batch per call
    store = HistoryStore(path)
    batches: list[float] = []
    later = end + RAW_KEEP_S + BUCKET_5M_S
    while True:
        before = store.site_history(end - 400, end)[-1]
        t1 = time.perf_counter()
        store.compact(later, max_seconds=0)
        batches.append(time.perf_counter() - t1)
        if "samples" in before:
            break
    store.compact(later)
    checkpoint(path)
    s5 = table_stats(path)
    r5_b, r5_n = s5["rig_5m"]
    c5_b, c5_n = s5["cycle_5m"]
    qt5, pts5 = query_times(store, fleet.names, T0, end)
    print(f"compaction raw -> 5 min: {len(batches) - 1} buckets, per batch mean "
          f"{ms(statistics.fmean(batches[:-1]))}, max {ms(max(batches))}; "
          f"rig_5m {r5_b / r5_n:.1f} B/row, cycle_5m {c5_b / c5_n:.0f} B/row")
    print(f"rig_history 5-min over {(end - T0) / 3600:g} h ({pts5} points): "
          f"mean {ms(statistics.fmean(qt5))}; scaled to 28 days "
          f"({28 * 288} points): {ms(statistics.fmean(qt5) * 28 * 288 / max(pts5, 1))}")

    # and into hourly rows, as if 30 days had passed
    batches = []
    later = end + KEEP_5M_S + 2 * BUCKET_1H_S
    for _ in range(int(hours) + 2):
        t1 = time.perf_counter()
        store.compact(later, max_seconds=0)
        batches.append(time.perf_counter() - t1)
    store.compact(later)
    checkpoint(path)
    s1 = table_stats(path)
    r1_b, r1_n = s1["rig_1h"]
    c1_b, c1_n = s1["cycle_1h"]
    qt1, pts1 = query_times(store, fleet.names, T0 - 3600, end)
    print(f"compaction 5 min -> 1 h: per batch max {ms(max(batches))}; "
          f"rig_1h {r1_b / r1_n:.1f} B/row, cycle_1h {c1_b / c1_n:.0f} B/row")
    print(f"rig_history hourly ({pts1} points): mean {ms(statistics.fmean(qt1))}; scaled to "
          f"370 days: {ms(statistics.fmean(qt1) * 370 * 24 / max(pts1, 1))}")
    store.close()

    # steady state under the retention: 48 h raw, 5-min rows for ages 48 h..30 d, hourly
    # rows for ages 30 d..400 d; events assumed 200 a day at the measured size
    raw_rows = RAW_KEEP_S / INTERVAL
    m5_rows = (KEEP_5M_S - RAW_KEEP_S) / BUCKET_5M_S
    h1_rows = (KEEP_1H_S - KEEP_5M_S) / BUCKET_1H_S
    ev_b, ev_n = stats["event"]
    parts = {
        "raw (48 h)": raw_rows * (n_rigs * raw_b / raw_n + cyc_b / cyc_n),
        "5-min (28 d)": m5_rows * (n_rigs * r5_b / r5_n + c5_b / c5_n),
        "hourly (370 d)": h1_rows * (n_rigs * r1_b / r1_n + c1_b / c1_n),
        "events (200/day, 400 d)": 200 * 400 * (ev_b / max(ev_n, 1)),
        "rig names": stats["rig"][0],
    }
    total = sum(parts.values())
    print("projected steady-state file: " + mib(total) + "  ("
          + ", ".join(f"{k} {mib(v)}" for k, v in parts.items()) + ")")
    print(f"open (quick_check) of the {mib(open_size)} file: {open_s:.2f} s; "
          f"scaled to steady state: {open_s * total / open_size:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rigs", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--hours", type=float, default=6.0, help="simulated hours (default 6)")
    ap.add_argument("--dir", type=Path, help="where to put the files (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    args = ap.parse_args()
    workdir = args.dir or Path(tempfile.mkdtemp(prefix="bench-store-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"SQLite {sqlite3.sqlite_version}, files in {workdir}")
    try:
        for n in args.rigs:
            run(n, args.hours, workdir)
    finally:
        if not args.keep:
            for n in args.rigs:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{workdir}/history-{n}.db{suffix}").unlink(missing_ok=True)
            if args.dir is None:
                shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
