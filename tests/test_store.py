"""The daemon's history file (tui/store.py): round trips, refusing foreign / corrupt / newer
files without touching them, disk-full backlog, compaction, and kill -9 durability."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import tui.store as store_mod
from tui.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    ChainPoint,
    EventRecord,
    HistoryStore,
    RigPoint,
    SitePoint,
    StoreError,
)

T0 = 1_769_000_400  # a whole hour (and 5-minute bucket) boundary
ROOT = Path(__file__).resolve().parents[1]


def rig(name: str, i: int = 0, status: str = "ok") -> RigPoint:
    return RigPoint(name, 100.0 + i, 3000.0 + i, 60.5, status, 5.25)


def site(i: int = 0) -> SitePoint:
    return SitePoint(500.0 + i, 15000.0, 20.0, 18.5, 5, 4, 1, 41000.0)


def chain(i: int = 0) -> ChainPoint:
    return ChainPoint(900_000 + i, 1.2e14, 8.1e20, 100_000.0, 52.5, 1.25, -0.5)


def event(t: float, kind: str = "fired", key: str = "rig:r1:offline") -> EventRecord:
    return EventRecord(t, kind, key, "r1", "offline", "critical", "r1 is offline")


def file_state(path: Path) -> tuple[str, list[str]]:
    """sha256 of the file and the names beside it (to catch -wal / -shm left behind)."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(os.listdir(path.parent))


# --------------------------------------------------------------------------- round trips


def test_round_trip_of_each_record_kind(tmp_path: Path, clock) -> None:
    s = HistoryStore(tmp_path / "h.db", clock=clock)
    assert s.record_cycle(
        T0 + 0.7,
        rigs=[rig("r1"), rig("r2", 1, "offline")],
        site=site(),
        chain=chain(),
        events=[event(T0 + 0.5)],
    )
    s.close()
    s = HistoryStore(tmp_path / "h.db", clock=clock)  # reopened: read from the file
    assert s.rig_history("r1", T0 - 10, T0 + 10) == [
        {"t": T0, "hashrate_ths": 100.0, "power_w": 3000.0, "temp_max_c": 60.5,
         "status": "ok", "margin_usd_day": 5.25}
    ]
    assert s.rig_history("r2", T0, T0)[0]["status"] == "offline"
    [p] = s.site_history(T0, T0)
    assert p == {"t": T0, **{f: getattr(site(), f) for f in store_mod._SITE_FIELDS},
                 **{f: getattr(chain(), f) for f in store_mod._CHAIN_FIELDS}}
    assert isinstance(p["rigs_total"], int) and isinstance(p["tip_height"], int)
    assert s.alerts(T0) == [
        {"t": T0 + 0.5, "kind": "fired", "key": "rig:r1:offline", "subject": "r1",
         "alert_kind": "offline", "severity": "critical", "message": "r1 is offline"}
    ]
    s.close()


def test_missing_values_quantisation_and_unknown_status(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as s:
        s.record_cycle(T0, rigs=[
            RigPoint("a", None, None, None, "error", None),
            RigPoint("b", math.nan, math.inf, 71.234, "rebooting", -1.23456),
            RigPoint("c", 0.0123456, 15.4, -5.0, "rebooting", 0.0),
        ], site=None, chain=None)
        assert s.rig_history("a", T0, T0)[0] == {
            "t": T0, "hashrate_ths": None, "power_w": None, "temp_max_c": None,
            "status": "error", "margin_usd_day": None}
        b = s.rig_history("b", T0, T0)[0]
        assert (b["hashrate_ths"], b["power_w"], b["status"]) == (None, None, "rebooting")
        assert b["temp_max_c"] == 71.2 and b["margin_usd_day"] == -1.235  # 0.1 °C, $0.001
        c = s.rig_history("c", T0, T0)[0]
        assert (c["hashrate_ths"], c["power_w"], c["temp_max_c"]) == (0.012, 15.0, -5.0)
        # a cycle with neither site nor chain still exists, all None
        assert s.site_history(T0, T0) == [
            {"t": T0, **dict.fromkeys(store_mod._CYCLE_FIELDS)}]
    with HistoryStore(tmp_path / "h.db") as s:  # status names survive a reopen
        assert s.rig_history("c", T0, T0)[0]["status"] == "rebooting"


def test_query_ranges_order_and_rig_known(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as s:
        assert not s.rig_known("r1")
        assert s.rig_history("r1", 0, 2e9) == [] and s.site_history(0, 2e9) == []
        for i in range(10):
            s.record_cycle(T0 + 10 * i, rigs=[rig("r1", i)] if i % 2 == 0 else [rig("r2", i)],
                           site=site(i), events=[event(T0 + 10 * i + 1, key=f"k{i}")])
        assert s.rig_known("r1") and s.rig_known("r2") and not s.rig_known("r3")
        r1 = s.rig_history("r1", T0 + 20, T0 + 60)  # bounds inclusive
        assert [p["t"] for p in r1] == [T0 + 20, T0 + 40, T0 + 60]
        assert [p["hashrate_ths"] for p in r1] == [102.0, 104.0, 106.0]
        assert [p["t"] for p in s.site_history(T0 + 15, T0 + 45)] == [T0 + 20, T0 + 30, T0 + 40]
        assert [a["key"] for a in s.alerts(T0 + 31)] == [f"k{i}" for i in range(3, 10)]
        assert [a["key"] for a in s.alerts(T0, T0 + 21)] == ["k0", "k1", "k2"]
        assert s.rig_history("r1", T0 + 100, T0 + 200) == []


def test_status_size_and_last_write(tmp_path: Path, clock) -> None:
    s = HistoryStore(tmp_path / "h.db", clock=clock)
    st = s.status
    assert (st.ok, st.error, st.last_write, st.pending_cycles) == (True, None, None, 0)
    assert st.path == str(tmp_path / "h.db") and st.size_bytes and st.size_bytes > 0
    clock.advance(5)
    s.record_cycle(T0, rigs=[rig("r1")])
    assert s.status.last_write == clock.now
    assert s.integrity_check() == "ok"
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.record_cycle(T0 + 10)


def test_creates_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "history.db"
    HistoryStore(path).close()
    assert path.is_file()
    assert (path.parent.stat().st_mode & 0o777) == 0o700


def test_unusable_directory_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="can't create the history directory"):
        HistoryStore(tmp_path / "file" / "h.db")
    with pytest.raises(StoreError, match="not a regular file"):
        HistoryStore(tmp_path)


def test_concurrent_calls_from_threads_are_serialised(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.db")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                s.record_cycle(T0 + 1000 * n + i, rigs=[rig(f"t{n}"), rig("shared")])
                s.rig_history("shared", T0, T0 + 10_000)
                s.compact(T0)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(s.rig_history("shared", T0, T0 + 10_000)) == 120
    s.close()


# --------------------------------------------------------------------------- refusing files


def test_foreign_sqlite_files_are_refused_untouched(tmp_path: Path) -> None:
    plain = tmp_path / "plain" / "other.db"
    plain.parent.mkdir()
    db = sqlite3.connect(plain)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.execute("INSERT INTO notes VALUES ('hello')")
    db.commit()
    db.close()

    wal = tmp_path / "wal" / "other.db"  # a WAL-mode database: a careless open leaves -shm
    wal.parent.mkdir()
    db = sqlite3.connect(wal)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()

    tagged = tmp_path / "tagged" / "other.db"  # another application's application_id
    tagged.parent.mkdir()
    db = sqlite3.connect(tagged)
    db.execute("PRAGMA application_id = 0x12345678")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()

    for path, match in ((plain, "another application"), (wal, "another application"),
                        (tagged, "application_id 0x12345678")):
        before = file_state(path)
        with pytest.raises(StoreError, match=match) as e:
            HistoryStore(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)
        assert file_state(path) == before


def test_garbage_files_are_refused_untouched(tmp_path: Path) -> None:
    for name, content in (("text.db", b"host = 10.0.0.1\n" * 100), ("short.db", b"SQLite"),
                          ("zeros.db", bytes(8192))):
        path = tmp_path / name
        path.write_bytes(content)
        before = file_state(path)
        with pytest.raises(StoreError, match="not an SQLite database"):
            HistoryStore(path)
        assert file_state(path) == before


def test_corrupt_history_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with HistoryStore(path) as s:
        for i in range(200):
            s.record_cycle(T0 + 10 * i, rigs=[rig(f"r{j}", j) for j in range(20)],
                           site=site(i), chain=chain(i))
    data = bytearray(path.read_bytes())
    assert len(data) > 20 * 4096
    for page in range(5, len(data) // 4096, 3):  # clobber b-tree page headers mid-file
        data[page * 4096 : page * 4096 + 24] = b"\xa5" * 24
    path.write_bytes(bytes(data))
    before = file_state(path)
    with pytest.raises(StoreError, match="corrupt") as e:
        HistoryStore(path)
    assert "move it aside" in str(e.value) and "\n" not in str(e.value)
    assert file_state(path) == before


def test_newer_schema_is_refused_naming_the_versions(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with HistoryStore(path) as s:
        s.record_cycle(T0, rigs=[rig("r1")])
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = file_state(path)
    with pytest.raises(StoreError, match=f"schema v{SCHEMA_VERSION + 1}.*up to v{SCHEMA_VERSION}"):
        HistoryStore(path)
    assert file_state(path) == before


def test_empty_file_is_initialised(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.touch()
    with HistoryStore(path) as s:
        s.record_cycle(T0, rigs=[rig("r1")])
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


# --------------------------------------------------------------------------- migrations


def test_v0_file_with_our_id_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    db = sqlite3.connect(path)  # "v0": our application_id, no tables yet
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.close()
    assert path.stat().st_size > 0
    with HistoryStore(path) as s:
        assert s.record_cycle(T0, rigs=[rig("r1")])
        assert s.rig_known("r1")


def test_adding_a_migration_upgrades_in_place(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "h.db"
    with HistoryStore(path) as s:
        s.record_cycle(T0, rigs=[rig("r1")], site=site())

    def broken_v2(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE extra (x)")
        raise RuntimeError("bug in migration")

    monkeypatch.setattr(store_mod, "_MIGRATIONS", [*store_mod._MIGRATIONS, broken_v2])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="bug in migration"):
        HistoryStore(path)
    db = sqlite3.connect(path)  # rolled back: still v1, no half-made table
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='extra'").fetchone()[0] == 0
    db.close()

    def v2(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE rig ADD COLUMN model TEXT")

    monkeypatch.setattr(store_mod, "_MIGRATIONS", [*store_mod._MIGRATIONS[:SCHEMA_VERSION], v2])
    with HistoryStore(path) as s:
        assert s.rig_history("r1", T0, T0)[0]["hashrate_ths"] == 100.0
        assert s.record_cycle(T0 + 10, rigs=[rig("r1")])
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert "model" in [r[1] for r in db.execute("PRAGMA table_info(rig)")]
    db.close()


def test_v1_file_is_migrated_to_v2_and_its_rows_still_give_a_hashprice(tmp_path: Path) -> None:
    """A history written by a v1 minertop (no BTC hashprice column) opens, gains the column
    in every cycle table, keeps its rows, and its days give BTC as USD over the price."""
    path = tmp_path / "h.db"
    db = sqlite3.connect(path)
    store_mod._migrate_to_v1(db)
    cols = ", ".join(store_mod._CYCLE_FIELDS_V1)
    marks = ", ".join("?" * (1 + len(store_mod._CYCLE_FIELDS_V1)))
    day = (T0 // 86400 + 1) * 86400
    for k, usd in enumerate((50.0, 54.0)):  # two raw cycles, a price of 100,000 USD
        row = {f: None for f in store_mod._CYCLE_FIELDS_V1}
        row.update(price_usd=100_000.0, hashprice_usd_ph_day=usd, rigs_total=1)
        db.execute(f"INSERT INTO cycle_raw (t, {cols}) VALUES ({marks})",
                   [day + 60 * k, *row.values()])
    agg = {f"{f}{x}": None for f in store_mod._CYCLE_FIELDS_V1 for x in ("", "_min", "_max")}
    agg.update(price_usd=80_000.0, hashprice_usd_ph_day=40.0)  # an old hourly row, 12 cycles
    db.execute(f"INSERT INTO cycle_1h (t, n, {', '.join(agg)}) VALUES"
               f" (?, 12, {', '.join('?' * len(agg))})", [day - 86400, *agg.values()])
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with HistoryStore(path) as s:
        days = s.hashprice_days(day - 86400, day + 86400)
        assert days == [(day - 86400, pytest.approx(40.0 / 80_000), 40.0),
                        (day, pytest.approx(52.0 / 100_000), 52.0)]
        assert s.record_cycle(day + 120, chain=replace(chain(), hashprice_btc_ph_day=0.0006,
                                                       hashprice_usd_ph_day=60.0))
        # the new row's own BTC figure, averaged with the two older rows' derived ones
        assert s.hashprice_days(day, day + 86400)[0][1] == pytest.approx(
            (0.0005 + 0.00054 + 0.0006) / 3)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    for table in ("cycle_raw", "cycle_5m", "cycle_1h"):
        names = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        assert "hashprice_btc_ph_day" in names, table
        if table != "cycle_raw":
            assert {"hashprice_btc_ph_day_min", "hashprice_btc_ph_day_max",
                    "hashprice_btc_ph_day_missing", "price_usd_missing"} <= set(names)
    for table in ("rig_5m", "rig_1h"):  # v3: the cycles without each value
        names = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        assert {"hr_missing", "pw_missing", "tc_missing", "mg_missing"} <= set(names), table
    db.close()


def test_means_over_buckets_weight_the_samples_behind_each(tmp_path: Path) -> None:
    """A bucket where a value was missing in most cycles (a rig offline, the chain source
    down) weighs by the samples it has, not by all its cycles: the hourly mean, the daily
    hashprice and a late row merged into a rolled bucket all equal the plain mean of the
    recorded values, as the raw rows give it."""
    d0 = (T0 // 86400 + 1) * 86400
    hr: list[float] = []
    usd: list[float] = []
    path = tmp_path / "h.db"
    with HistoryStore(path) as s:
        for i in range(60):  # 10 minutes, every 10 s: two 5-minute buckets
            first = i < 30
            h = (100.0 if i == 0 else None) if first else 50.0
            u = (100.0 if i == 0 else None) if first else 40.0
            s.record_cycle(d0 + 10 * i,
                           rigs=[RigPoint("r", h, None, None, "ok" if h else "offline", None)],
                           chain=replace(chain(), price_usd=100.0 if u else None,
                                         hashprice_usd_ph_day=u,
                                         hashprice_btc_ph_day=None if u is None else u / 100))
            hr += [h] if h is not None else []
            usd += [u] if u is not None else []
        want_hr, want_usd = sum(hr) / len(hr), sum(usd) / len(usd)  # 51.6, 41.0
        assert s.hashprice_days(d0, d0 + 86400) == [
            (d0, pytest.approx(want_usd / 100), pytest.approx(want_usd))]
        s.compact(d0 + 3 * 86400)  # 5-minute rows
        assert s.hashprice_days(d0, d0 + 86400)[0][2] == pytest.approx(want_usd)
        # a late reading (the clock stepped back) merges into the rolled first bucket
        s.record_cycle(d0 + 5, rigs=[RigPoint("r", 10.0, None, None, "ok", None)],
                       chain=replace(chain(), price_usd=100.0, hashprice_usd_ph_day=10.0,
                                     hashprice_btc_ph_day=0.1))
        hr.append(10.0)
        usd.append(10.0)
        want_hr, want_usd = sum(hr) / len(hr), sum(usd) / len(usd)
        s.compact(d0 + 3 * 86400)
        first = s.rig_history("r", d0, d0 + 1)[0]
        assert first["samples"] == 31 and first["hashrate_ths"] == pytest.approx(55.0)
        assert s.hashprice_days(d0, d0 + 86400)[0][2] == pytest.approx(want_usd)
        s.compact(d0 + 32 * 86400)  # hourly rows
        [p] = s.rig_history("r", d0, d0 + 3600)
        assert p["samples"] == 61
        assert p["hashrate_ths"] == pytest.approx(want_hr, abs=1e-3)  # stored in GH/s
        [(day, btc, u)] = s.hashprice_days(d0, d0 + 86400)
        assert u == pytest.approx(want_usd) and btc == pytest.approx(want_usd / 100)
        assert s.site_history(d0, d0 + 3600)[0]["hashprice_usd_ph_day"] == pytest.approx(
            want_usd)


# --------------------------------------------------------------------------- disk full


def test_disk_full_keeps_a_backlog_and_recovers(tmp_path: Path, clock) -> None:
    path = tmp_path / "h.db"
    s = HistoryStore(path, clock=clock)
    s.record_cycle(T0, rigs=[rig(f"r{j}") for j in range(200)], site=site())
    written_at = clock.now
    s.set_max_pages(1)  # clamps to the current size: the next new page fails
    clock.advance(10)
    for i in range(1, 6):
        assert not s.record_cycle(T0 + 10 * i, rigs=[rig(f"r{j}", i) for j in range(200)],
                                  site=site(i), events=[event(T0 + 10 * i)])
    st = s.status
    assert not st.ok and st.pending_cycles == 5 and st.last_write == written_at
    assert st.error == f"history not written: database or disk is full ({path})"
    assert [p["t"] for p in s.site_history(T0, T0 + 100)] == [T0]  # nothing half-written
    assert s.alerts(T0) == []

    s.set_max_pages(None)
    assert s.record_cycle(T0 + 60, rigs=[rig(f"r{j}", 6) for j in range(200)], site=site(6))
    st = s.status
    assert (st.ok, st.error, st.pending_cycles, st.dropped_cycles) == (True, None, 0, 0)
    assert [p["t"] for p in s.site_history(T0, T0 + 100)] == [T0 + 10 * i for i in range(7)]
    assert [p["hashrate_ths"] for p in s.rig_history("r7", T0, T0 + 100)] == [
        100.0 + i for i in range(7)]
    assert len(s.alerts(T0)) == 5
    assert s.integrity_check() == "ok"
    s.close()


def test_full_backlog_drops_the_oldest_cycles(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.db", backlog_cycles=3)
    s.record_cycle(T0, rigs=[rig(f"r{j}") for j in range(200)])
    s.set_max_pages(1)
    for i in range(1, 6):
        s.record_cycle(T0 + 10 * i, rigs=[rig(f"r{j}", i) for j in range(200)])
    st = s.status
    assert (st.pending_cycles, st.dropped_cycles) == (3, 2)
    assert st.error and st.error.endswith("; 2 cycles dropped")
    s.set_max_pages(None)
    assert s.flush()
    assert [p["t"] for p in s.rig_history("r0", 0, 2e9)] == [T0, T0 + 30, T0 + 40, T0 + 50]
    s.close()


def test_close_writes_the_backlog_when_it_can(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.db")
    s.set_max_pages(1)
    assert not s.record_cycle(T0, rigs=[rig(f"r{j}") for j in range(200)])
    s.set_max_pages(None)
    s.close()
    with HistoryStore(tmp_path / "h.db") as s:
        assert len(s.rig_history("r5", 0, 2e9)) == 1


def test_programming_errors_propagate_and_are_not_retried(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as s:
        bad = RigPoint("r1", "fast", None, None, "ok", None)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            s.record_cycle(T0, rigs=[bad])
        assert s.status.pending_cycles == 0 and s.status.ok
        assert s.record_cycle(T0 + 10, rigs=[rig("r1")])
        assert [p["t"] for p in s.rig_history("r1", 0, 2e9)] == [T0 + 10]


# --------------------------------------------------------------------------- compaction

DAYS = 3
STEP = 60  # seconds between simulated cycles
N_RIGS = 5


def sim_rig(i: int, j: int) -> RigPoint:
    status = "offline" if (j == 2 and i % 50 == 3) else "ok"
    return RigPoint(f"r{j}", 100.0 + j + i % 7, 3000.0 + (i % 11) * 10, 60.0 + (i % 13) * 0.5,
                    status, 5.0 + (i % 5) * 0.1)


@pytest.fixture(scope="module")
def three_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compact") / "template.db"
    with HistoryStore(path) as s:
        for i in range(DAYS * 86400 // STEP):
            t = T0 + i * STEP
            s.record_cycle(t, rigs=[sim_rig(i, j) for j in range(N_RIGS)],
                           site=site(i), chain=chain(i),
                           events=[event(t + 1, key=f"k{i}")] if i % 100 == 0 else ())
    return path


def copy_of(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "h.db"
    shutil.copy(template, path)
    return path


def dump(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_compaction_rolls_raw_into_5_minute_buckets(three_days: Path, tmp_path: Path) -> None:
    path = copy_of(three_days, tmp_path)
    end = T0 + DAYS * 86400
    n_cycles = DAYS * 86400 // STEP
    with HistoryStore(path) as s:
        s.compact(end)
        db = sqlite3.connect(path)
        raw_min = db.execute("SELECT min(t) FROM cycle_raw").fetchone()[0]
        assert end - 48 * 3600 - 300 < raw_min <= end - 48 * 3600
        assert db.execute("SELECT min(t) FROM rig_raw").fetchone()[0] == raw_min
        assert db.execute("SELECT count(*) FROM cycle_1h").fetchone()[0] == 0
        db.close()

        points = s.site_history(T0, end)
        ts = [p["t"] for p in points]
        assert ts == sorted(set(ts)) and ts[0] == T0
        agg = [p for p in points if "samples" in p]
        raw = [p for p in points if "samples" not in p]
        assert points == agg + raw  # aggregated first, then raw: no interleaving
        assert {b["t"] - a["t"] for a, b in zip(agg, agg[1:], strict=False)} == {300}
        assert raw[0]["t"] == agg[-1]["t"] + 300  # seamless
        assert {b["t"] - a["t"] for a, b in zip(raw, raw[1:], strict=False)} == {STEP}
        assert sum(p["samples"] for p in agg) + len(raw) == n_cycles

        # hand-check one bucket of rig r2: cycles 100..104 (T0 + 6000 .. + 6300)
        bucket = [sim_rig(i, 2) for i in range(100, 105)]
        [p] = s.rig_history("r2", T0 + 6000, T0 + 6000)
        hr = [r.hashrate_ths for r in bucket]
        assert p["t"] == T0 + 6000 and p["samples"] == 5
        assert p["hashrate_ths_min"] == min(hr) and p["hashrate_ths_max"] == max(hr)
        assert p["hashrate_ths"] == pytest.approx(sum(hr) / 5, abs=0.001)
        tc = [r.temp_max_c for r in bucket]
        assert (p["temp_max_c_min"], p["temp_max_c_max"]) == (min(tc), max(tc))
        assert p["temp_max_c"] == pytest.approx(sum(tc) / 5, abs=0.05)
        mg = [r.margin_usd_day for r in bucket]
        assert p["margin_usd_day"] == pytest.approx(sum(mg) / 5, abs=0.001)
        assert p["status"] == "offline" and p["uptime"] == pytest.approx(4 / 5)  # i = 103
        # the site bucket too
        [sp] = [q for q in agg if q["t"] == T0 + 6000]
        assert sp["hashrate_ths"] == pytest.approx(sum(500.0 + i for i in range(100, 105)) / 5)
        assert (sp["tip_height"], sp["tip_height_min"]) == (900_104, 900_100)

        whole = s.rig_history("r2", T0, end)
        assert [q["t"] for q in whole] == sorted({q["t"] for q in whole})
        assert sum(q.get("samples", 1) for q in whole) == n_cycles
        assert len(s.alerts(T0)) == len(range(0, n_cycles, 100))  # events are not rolled up

    before = dump(path)
    with HistoryStore(path) as s:
        s.compact(end)  # a second time: nothing to do, nothing changes
    assert dump(path) == before


def test_compaction_in_small_batches_equals_one_pass(three_days: Path, tmp_path: Path) -> None:
    end = T0 + DAYS * 86400
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one = copy_of(three_days, tmp_path / "one")
    many = copy_of(three_days, tmp_path / "many")
    with HistoryStore(one) as s:
        s.compact(end)
    with HistoryStore(many) as s:
        db = sqlite3.connect(many)
        raw = db.execute("SELECT count(*) FROM cycle_raw").fetchone()[0]
        while True:
            s.compact(end, max_seconds=0)  # stops after its first batch: one bucket
            now_raw = db.execute("SELECT count(*) FROM cycle_raw").fetchone()[0]
            if now_raw == raw:
                break
            assert raw - now_raw == 300 // STEP
            raw = now_raw
        db.close()
    assert dump(one) == dump(many)


def test_compaction_hourly_rollup_and_expiry(three_days: Path, tmp_path: Path) -> None:
    path = copy_of(three_days, tmp_path)
    now = T0 + 31 * 86400 + 43200  # 5-minute rows older than T0 + 1.5 d become hourly
    with HistoryStore(path) as s:
        s.compact(now)
        points = s.rig_history("r2", T0, now)
        hourly = [p for p in points if p["t"] < T0 + 36 * 3600]
        five = [p for p in points if p["t"] >= T0 + 36 * 3600]
        assert {b["t"] - a["t"] for a, b in zip(hourly, hourly[1:], strict=False)} == {3600}
        assert {b["t"] - a["t"] for a, b in zip(five, five[1:], strict=False)} == {300}
        assert five[0]["t"] == hourly[-1]["t"] + 3600
        assert [p["samples"] for p in hourly] == [60] * 36
        assert sum(p["samples"] for p in points) == DAYS * 86400 // STEP
        # hand-check hour 1 (cycles 60..119) against the raw values
        h = hourly[1]
        hr = [sim_rig(i, 2).hashrate_ths for i in range(60, 120)]
        assert (h["hashrate_ths_min"], h["hashrate_ths_max"]) == (min(hr), max(hr))
        assert h["hashrate_ths"] == pytest.approx(sum(hr) / 60, abs=0.002)
        assert h["status"] == "offline" and h["uptime"] == pytest.approx(59 / 60)  # i = 103
        site_pts = s.site_history(T0, now)
        assert [p["t"] for p in site_pts] == [p["t"] for p in points]

        s.compact(T0 + 400 * 86400 + 36 * 3600)  # the first 36 hours are now 400 days old
        left = s.rig_history("r2", T0, now)
        assert left[0]["t"] == T0 + 36 * 3600
        assert s.alerts(T0)[0]["t"] == T0 + 2200 * STEP + 1  # the first one after 36 h
        assert s.rig_known("r2")

        s.compact(T0 + 420 * 86400)  # everything expired, rig names forgotten
        assert s.rig_history("r2", T0, now) == [] and s.site_history(0, 2e9) == []
        assert s.alerts(0) == [] and not s.rig_known("r2")
        assert s.record_cycle(T0 + 420 * 86400, rigs=[rig("r2")])  # and life goes on
        assert s.rig_known("r2") and s.integrity_check() == "ok"


def test_late_rows_merge_into_a_rolled_bucket(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as s:
        for i in range(3):
            s.record_cycle(T0 + 10 * i, rigs=[RigPoint("r1", 10.0, 1.0, 1.0, "ok", 1.0)],
                           site=site())
        s.compact(T0 + 3 * 86400)
        # the clock stepped back: a reading lands in the already rolled bucket
        s.record_cycle(T0 + 100, rigs=[RigPoint("r1", 40.0, None, 9.0, "stale", None)])
        s.compact(T0 + 3 * 86400)
        [p] = s.rig_history("r1", T0, T0 + 300)
        assert p["samples"] == 4 and p["hashrate_ths"] == pytest.approx(17.5)
        assert (p["hashrate_ths_min"], p["hashrate_ths_max"]) == (10.0, 40.0)
        assert p["power_w"] == 1.0 and p["status"] == "stale"
        assert p["uptime"] == pytest.approx(0.75)


def test_opening_check_can_be_bounded(three_days: Path, tmp_path: Path) -> None:
    path = copy_of(three_days, tmp_path)
    with HistoryStore(path) as s:
        assert s.check_complete
    with HistoryStore(path, check_seconds=0) as s:  # cut short at once: opens all the same
        assert not s.check_complete
        assert s.record_cycle(T0 + DAYS * 86400, rigs=[rig("r1")])


def test_absurd_readings_do_not_break_compaction(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as s:
        for i in range(40):
            s.record_cycle(T0 + 10 * i, rigs=[RigPoint("r1", 1e300, -1e300, 1e20, "ok", 9e18)],
                           site=SitePoint(1e300, 1.0, None, None, 2**62, 1, 1, None))
        s.compact(T0 + 40 * 86400)
        [p] = s.rig_history("r1", T0, T0 + 400)
        assert p["samples"] == 40 and p["hashrate_ths"] > 1e15 and p["power_w"] < -1e18
        assert s.site_history(T0, T0 + 400)[0]["hashrate_ths"] == pytest.approx(1e300)


def test_compaction_is_cheap_when_there_is_nothing_to_do(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    with HistoryStore(path) as s:
        s.record_cycle(T0, rigs=[rig("r1")], events=[event(T0)])
        wal = Path(f"{path}-wal")
        size = wal.stat().st_size
        for _ in range(20):
            s.compact(T0 + 60)
        assert wal.stat().st_size == size  # no write transaction at all


# --------------------------------------------------------------------------- kill -9

WRITER = textwrap.dedent(
    """
    import sys
    from tui.store import ChainPoint, EventRecord, HistoryStore, RigPoint, SitePoint
    path, start, compact = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
    T0 = 1_769_000_400
    s = HistoryStore(path)
    i = start
    while True:
        t = T0 + 10 * i
        rigs = [RigPoint(f"r{j}", 100.0 + j, 3000.0, 70.0, "ok", 5.0)
                for j in range(1 + (i * 37) % 300)]
        s.record_cycle(
            t, rigs=rigs,
            site=SitePoint(1.0 * i, 2.0, 3.0, 4.0, len(rigs), len(rigs), 0, None),
            chain=ChainPoint(i, 1e14, 8e20, 1e5, 50.0, 1.0, 0.5),
            events=[EventRecord(t + 0.5, "fired", f"k{i}", "s", "offline", "critical", "m")
                    for _ in range(1 + (i * 11) % 150)],
        )
        if compact:
            s.compact(t + 48 * 3600)
        print(i, flush=True)
        i += 1
    """
)


def rigs_in(i: int) -> int:
    return 1 + (i * 37) % 300


def events_in(i: int) -> int:
    return 1 + (i * 11) % 150


def run_and_kill(path: Path, start: int, cycles: int, spin_s: float, compact: bool) -> int:
    """Start a writer at cycle ``start``, SIGKILL it once it reported ``cycles`` written (plus
    a short spin, to land at different moments).  Returns the last cycle it reported."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(start), "1" if compact else "0"],
        stdout=subprocess.PIPE, env=env, text=True,
    )
    assert proc.stdout is not None
    last = start - 1
    try:
        for _ in range(cycles):
            line = proc.stdout.readline()
            assert line, "writer died"
            last = int(line)
        deadline = time.perf_counter() + spin_s
        while time.perf_counter() < deadline:
            pass
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return last


def check_after_kill(path: Path, reported: int, compacted: bool) -> int:
    """Every cycle fully there or fully absent, a contiguous prefix including everything
    the writer reported.  Returns the number of cycles present."""
    with HistoryStore(path) as s:
        assert s.integrity_check() == "ok"
    db = sqlite3.connect(path)
    try:
        raw = {t: n for t, n in db.execute("SELECT t, count(*) FROM rig_raw GROUP BY t")}
        cycles = [t for (t,) in db.execute("SELECT t FROM cycle_raw ORDER BY t")]
        events = dict(db.execute("SELECT round(t - 0.5), count(*) FROM event GROUP BY t"))
        rolled = dict(db.execute("SELECT t, n FROM cycle_5m"))
        rolled_rigs = dict(db.execute("SELECT t, sum(n) FROM rig_5m GROUP BY t"))
    finally:
        db.close()
    idx = [(t - 1_769_000_400) // 10 for t in cycles]
    first = sum(rolled.values())
    assert idx == list(range(first, first + len(idx)))
    for t, i in zip(cycles, idx, strict=True):
        assert raw[t] == rigs_in(i)
    assert set(raw) == set(cycles)
    present = first + len(idx)
    assert events == {1_769_000_400 + 10 * i: events_in(i) for i in range(present)}
    if compacted:
        for b, n in rolled.items():
            first_i = (b - 1_769_000_400) // 10
            assert n == 30
            assert rolled_rigs[b] == sum(rigs_in(i) for i in range(first_i, first_i + 30))
    else:
        assert not rolled
    assert present >= reported + 1  # nothing the writer saw committed is lost
    return present


@pytest.mark.parametrize("compact", [False, True], ids=["write", "write+compact"])
def test_kill_9_never_corrupts_and_history_continues(tmp_path: Path, compact: bool) -> None:
    path = tmp_path / "h.db"
    present = 0
    # kill after n reported cycles plus a spin of 0-2.6 ms: lands anywhere in a cycle
    plan = [(1 + (k * 7) % 23, (k * 0.37) % 2.6 / 1000) for k in range(14)]
    if compact:
        plan = [(20 + (k * 13) % 50, (k * 0.41) % 2.6 / 1000) for k in range(6)]
    for cycles, spin in plan:
        reported = run_and_kill(path, present, cycles, spin, compact)
        assert reported == present + cycles - 1
        present = check_after_kill(path, reported, compact)
    with HistoryStore(path) as s:  # and this process appends after the crashes
        t = 1_769_000_400 + 10 * present
        assert s.record_cycle(t, rigs=[RigPoint("r0", 1.0, 1.0, 1.0, "ok", 1.0)])
        assert s.rig_history("r0", t, t)[0]["hashrate_ths"] == 1.0


# --------------------------------------------------------------------------- daily hashprice


def test_hashprice_days_are_the_mean_of_each_day_at_every_resolution(tmp_path: Path) -> None:
    """Three days every 10 minutes, compacted so that the first two are hourly and the third
    half hourly, half 5-minute; a fourth, recent, still raw.  Each day's
    figure is the plain mean of the cycles recorded that day, however they are kept now."""
    d0 = (T0 // 86400 + 1) * 86400  # a UTC midnight
    step = 600
    recorded: dict[int, list[tuple[float, float | None]]] = {}

    def hp(i: int) -> tuple[float, float | None, float | None]:
        """(BTC, USD, price) of cycle i: the third day has no price (BTC only)."""
        btc = 0.0004 + (i % 7) * 0.00001
        price = None if 288 <= i < 432 else 100_000.0 + (i % 5) * 1000
        return btc, None if price is None else btc * price, price

    path = tmp_path / "h.db"
    now = d0 + 31 * 86400 + 36 * 3600  # hours before d0 + 2.5 d are rolled into hours
    with HistoryStore(path) as s:
        for i in range(3 * 144):
            t = d0 + i * step
            btc, usd, price = hp(i)
            s.record_cycle(t, chain=replace(chain(i), price_usd=price, hashprice_usd_ph_day=usd,
                                            hashprice_btc_ph_day=btc))
            recorded.setdefault(t // 86400 * 86400, []).append((btc, usd))
        recent = d0 + 31 * 86400
        for k, btc in enumerate((0.0003, 0.0005)):
            s.record_cycle(recent + 7200 + 60 * k,
                           chain=replace(chain(), price_usd=None, hashprice_usd_ph_day=None,
                                         hashprice_btc_ph_day=btc))
        s.record_cycle(d0 - 86400 + 10, chain=chain())  # a day before the range asked
        s.compact(now)
        db = sqlite3.connect(path)
        counts = {t: db.execute(f"SELECT count(*) FROM {t} WHERE t >= ?", (d0,)).fetchone()[0]
                  for t in ("cycle_raw", "cycle_5m", "cycle_1h")}
        db.close()
        # days 0 and 1 and the first 12 h of day 2 hourly; the rest of day 2 in 5-minute
        # rows (one cycle each); the two recent cycles raw
        assert counts == {"cycle_raw": 2, "cycle_5m": 72, "cycle_1h": 60}
        days = s.hashprice_days(d0, recent + 86400)
        assert [d for d, _, _ in days] == [d0, d0 + 86400, d0 + 2 * 86400, recent]
        for d, btc, usd in days[:3]:
            vals = recorded[d]
            assert btc == pytest.approx(sum(b for b, _ in vals) / len(vals), rel=1e-9)
            usds = [u for _, u in vals if u is not None]
            if usds:
                assert usd == pytest.approx(sum(usds) / len(usds), rel=1e-9)
            else:
                assert d == d0 + 2 * 86400 and usd is None  # the day without a price
        assert days[3] == (recent, pytest.approx(0.0004), None)
        assert s.hashprice_days(d0 + 1, d0 + 86400) == []  # day starts in [since, until)


def test_rows_rolled_up_before_v3_keep_their_weight_by_cycles(tmp_path: Path) -> None:
    """5-minute rows written before schema v3 have no missing counts (NULL): rolled into an
    hour beside v3 rows, each weighs by its cycles, as it always did, and the v3 rows by
    the samples behind them."""
    d0 = (T0 // 86400 + 1) * 86400
    path = tmp_path / "h.db"
    with HistoryStore(path) as s:
        # a v3 bucket: 30 cycles, the rig's hashrate known in 10 of them (50 TH/s)
        for i in range(30):
            s.record_cycle(d0 + 300 + 10 * i, rigs=[RigPoint(
                "r", 50.0 if i < 10 else None, None, None, "ok" if i < 10 else "offline",
                None)], chain=replace(chain(), hashprice_usd_ph_day=40.0 if i < 10 else None))
        s.compact(d0 + 3 * 86400)
    db = sqlite3.connect(path)
    rid = db.execute("SELECT id FROM rig WHERE name = 'r'").fetchone()[0]
    assert db.execute("SELECT hr_missing FROM rig_5m").fetchone()[0] == 20
    # a bucket as an older minertop rolled it: 30 cycles at 110 TH/s, no missing counts
    db.execute("INSERT INTO cycle_5m (t, n, hashprice_usd_ph_day) VALUES (?, 30, 60.0)", (d0,))
    db.execute("INSERT INTO rig_5m (t, rig, n, nb, st, hr_min, hr, hr_max)"
               " VALUES (?, ?, 30, 0, 0, 110000, 110000, 110000)", (d0, rid))
    db.commit()
    db.close()
    with HistoryStore(path) as s:
        s.compact(d0 + 32 * 86400)
        [p] = s.rig_history("r", d0, d0 + 3600)
        # (110 x 30 + 50 x 10) / 40 = 95
        assert p["samples"] == 60 and p["hashrate_ths"] == pytest.approx(95.0)
        [(_day, _btc, usd)] = s.hashprice_days(d0, d0 + 86400)
        assert usd == pytest.approx((60.0 * 30 + 40.0 * 10) / 40)
    db = sqlite3.connect(path)
    assert db.execute("SELECT n, hr_missing FROM rig_1h").fetchone() == (60, 20)
    db.close()
