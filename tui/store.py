"""The daemon's embedded history: one SQLite file (stdlib ``sqlite3``, WAL journal).

What is kept (bounded growth; :meth:`HistoryStore.compact` enforces it):

==================  =====================================  ==============================
data                resolution                             kept
==================  =====================================  ==============================
rig readings        every cycle (raw)                      48 h
site + chain rows   every cycle (raw)                      48 h
both, rolled up     5-minute buckets (min / mean / max)    30 days
both, rolled up     hourly buckets (min / mean / max)      400 days (rows older are deleted)
alert events        as recorded                            400 days
rig names           -                                      400 days after last seen
==================  =====================================  ==============================

The chain figures of each cycle include the hashprice in BTC and USD per PH/day;
:meth:`HistoryStore.hashprice_days` gives their daily means, whatever resolution a day is kept
at, for the 90-day hashprice chart.

A raw row stays until its whole 5-minute bucket is older than 48 h (so up to 48 h 5 min), a
5-minute row until its whole hour is older than 30 days.  Queries merge the resolutions: a
range spanning old and recent time returns hourly points, then 5-minute points, then raw
points, oldest first, without duplicates.  An aggregated point is stamped with the *start* of
its bucket, carries the mean of each value (``tip_height``: the highest), the extra keys
``<value>_min`` / ``<value>_max`` and ``samples``; a rig's aggregated ``status`` is the
*worst* status seen in the bucket (ok < stale < offline < error < any other status string)
and ``uptime`` is the fraction of its samples that were ``"ok"``.

Layout.  Rig names live in a small ``rig`` table; a raw reading is one row of a
``WITHOUT ROWID`` table keyed ``(t, rig)``: integer seconds, integer rig id, and the values
stored as scaled integers (hashrate in GH/s, power in W, temperature in 0.1 °C, margin in
0.001 USD/day; an ``ok`` status costs 0 bytes): about 30 bytes per reading on disk, and 68-75
bytes per 5-minute / hourly rig row (min, mean, max of each value, and the cycles without
it).  Keying by time first
makes each cycle an append at the end of the B-tree (about 40 pages per cycle at 5,000
rigs, instead of one dirty page per rig); a one-rig query walks the cycle index
(``cycle_*`` tables, one row per cycle / bucket, holding the site and chain values) and does
one primary-key lookup per cycle (24 h of raw points: about 45 ms).  Steady-state size under
the retention above (benchmarks/bench_store.py): about 1.65 GB at 1,000 rigs polled every
10 s, 8 GB at 5,000 (about a third each for raw, 5-minute and hourly rows).

Durability.  WAL with ``synchronous=NORMAL``, and each :meth:`HistoryStore.record_cycle` is
one transaction: a ``kill -9`` never corrupts the file and loses at most the cycle in flight;
a power loss never corrupts it either and loses at most the cycles since the last WAL sync
(checkpoint).  When the disk is full, the file turned read-only or an I/O error occurs,
cycles wait in a bounded in-memory backlog (:data:`BACKLOG_CYCLES`, oldest dropped beyond)
and are written, in order, as soon as a later call succeeds; :attr:`HistoryStore.status`
says so.  Opening an existing file checks it first (read-only, leaving it byte-for-byte
untouched when it is refused): not SQLite, another application's database, newer schema,
or ``PRAGMA quick_check`` failing raise :class:`StoreError`.  The check reads the whole file
(about 3-4 s per GB with a warm cache); ``check_seconds`` bounds it.

Threading.  Synchronous and blocking: call it from one worker thread at a time (e.g.
``await asyncio.to_thread(store.record_cycle, ...)``).  Every method takes an internal lock,
so calls from different threads are serialised; :attr:`HistoryStore.status` does not take
the lock and never blocks.  :meth:`HistoryStore.compact` releases the lock between its
batches, so a ``record_cycle`` never waits long behind it.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from operator import itemgetter
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = [
    "APPLICATION_ID",
    "BACKLOG_CYCLES",
    "SCHEMA_VERSION",
    "ChainPoint",
    "EventRecord",
    "HistoryStore",
    "RigPoint",
    "SitePoint",
    "StoreError",
    "StoreStatus",
]

#: ``PRAGMA application_id`` of a minertop history file ("MnTp"): tells ours from another
#: application's SQLite database.
APPLICATION_ID = 0x4D6E5470

RAW_KEEP_S = 48 * 3600  #: raw readings (rigs, site, chain) are kept this long
BUCKET_5M_S = 300
KEEP_5M_S = 30 * 86400  #: 5-minute aggregates are kept this long, then rolled into hours
BUCKET_1H_S = 3600
KEEP_1H_S = 400 * 86400  #: hourly aggregates older than this are deleted
EVENTS_KEEP_S = 400 * 86400  #: alert events older than this are deleted
RIG_NAME_KEEP_S = KEEP_1H_S + 86400  #: a rig name not seen for this long is forgotten
BACKLOG_CYCLES = 360  #: cycles kept in memory while the file can't be written (1 h at 10 s)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_NO_PAGE_LIMIT = 4294967294  # SQLite clamps this to its compile-time maximum


class StoreError(Exception):
    """One human line: the file can't be used (corrupt, not a minertop history file, newer
    schema than this minertop knows, can't create the directory...)."""


@dataclass(frozen=True, slots=True)
class RigPoint:
    rig_id: str
    hashrate_ths: float | None
    power_w: float | None
    temp_max_c: float | None
    status: str  #: "ok" | "stale" | "offline" | "error" (any other string is kept too)
    margin_usd_day: float | None


@dataclass(frozen=True, slots=True)
class SitePoint:
    hashrate_ths: float
    power_w: float
    margin_usd_day: float | None
    margin_after_usd_day: float | None
    rigs_total: int
    rigs_ok: int
    rigs_down: int
    production_cost_usd_btc: float | None


@dataclass(frozen=True, slots=True)
class ChainPoint:
    tip_height: int | None
    difficulty: float | None
    hashrate_1d_hs: float | None
    price_usd: float | None
    hashprice_usd_ph_day: float | None
    retarget_change_pct: float | None
    epoch_drift_pct: float | None
    #: hashprice in BTC per PH/day (schema v2; None in rows written before it)
    hashprice_btc_ph_day: float | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    time: float
    kind: str  #: "fired" | "cleared"
    key: str
    subject: str
    alert_kind: str
    severity: str
    message: str


@dataclass(frozen=True)
class StoreStatus:
    path: str
    ok: bool  #: False while cycles can't be written (they wait in the backlog)
    error: str | None  #: one line, for the status bar / log
    last_write: float | None  #: clock time of the last successful write
    pending_cycles: int  #: cycles in the in-memory backlog
    size_bytes: int | None  #: database file + WAL
    dropped_cycles: int = 0  #: cycles lost because the backlog overflowed (since opening)


# --------------------------------------------------------------------------- schema

_SITE_FIELDS = tuple(f.name for f in fields(SitePoint))
_CHAIN_FIELDS = tuple(f.name for f in fields(ChainPoint))
_CYCLE_FIELDS = _SITE_FIELDS + _CHAIN_FIELDS
_INT_FIELDS = frozenset({"rigs_total", "rigs_ok", "rigs_down", "tip_height"})

#: Rig values: (key in results, column, scale).  Stored as round(value * scale).
_RIG_VALUES: tuple[tuple[str, str, float], ...] = (
    ("hashrate_ths", "hr", 1000.0),  # GH/s
    ("power_w", "pw", 1.0),  # W
    ("temp_max_c", "tc", 10.0),  # 0.1 °C
    ("margin_usd_day", "mg", 1000.0),  # 0.001 USD/day
)
_BASE_STATUSES = ("ok", "stale", "offline", "error")  # codes 0..3: severity order


#: The cycle columns of schema v1 (later versions add columns by migration).
_CYCLE_FIELDS_V1 = tuple(f for f in _CYCLE_FIELDS if f != "hashprice_btc_ph_day")


def _cycle_agg_columns(names: Sequence[str] = _CYCLE_FIELDS) -> str:
    return ", ".join(f"{f}, {f}_min, {f}_max" for f in names)


def _rig_agg_columns() -> str:
    return ", ".join(f"{c}_min, {c}, {c}_max" for _, c, _ in _RIG_VALUES)


# Schema v3: an aggregated row also counts, per value, the cycles that had none
# (``<value>_missing``; NULL for none, which costs one header byte, and a small count costs
# one more), so that a mean over buckets weights each bucket's mean by the samples behind
# it, not by every cycle (a rig offline for most of a bucket, the chain source down for a
# while).  Rows written before v3 have NULL: weighted by ``n`` as they were.
def _cycle_count_columns() -> str:
    return ", ".join(f"{f}_missing" for f in _CYCLE_FIELDS)


def _rig_count_columns() -> str:
    return ", ".join(f"{c}_missing" for _, c, _ in _RIG_VALUES)


def _weight(col: str, n: str = "n") -> str:
    """SQL: the samples behind an aggregated row's ``col`` (see the v3 note above)."""
    return f"({n} - coalesce({col}_missing, 0))"


def _migrate_to_v1(db: sqlite3.Connection) -> None:
    """Version 1: the initial schema."""
    cycle_cols = ", ".join(
        f"{f} {'INTEGER' if f in _INT_FIELDS else 'REAL'}" for f in _CYCLE_FIELDS_V1
    )
    statements = [
        "CREATE TABLE rig (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
        " last_t INTEGER)",
        "CREATE TABLE status (code INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        # one row per cycle: the cycle index of rig_raw, and the site + chain values
        f"CREATE TABLE cycle_raw (t INTEGER PRIMARY KEY, {cycle_cols})",
        "CREATE TABLE rig_raw (t INTEGER NOT NULL, rig INTEGER NOT NULL, hr INTEGER,"
        " pw INTEGER, tc INTEGER, st INTEGER NOT NULL, mg INTEGER, PRIMARY KEY (t, rig))"
        " WITHOUT ROWID",
        "CREATE TABLE event (id INTEGER PRIMARY KEY, t REAL NOT NULL, kind TEXT NOT NULL,"
        " key TEXT NOT NULL, subject TEXT NOT NULL, alert_kind TEXT NOT NULL,"
        " severity TEXT NOT NULL, message TEXT NOT NULL)",
        "CREATE INDEX event_t ON event (t)",
    ]
    for res in ("5m", "1h"):
        statements += [
            f"CREATE TABLE cycle_{res} (t INTEGER PRIMARY KEY, n INTEGER NOT NULL,"
            f" {_cycle_agg_columns(_CYCLE_FIELDS_V1)})",
            f"CREATE TABLE rig_{res} (t INTEGER NOT NULL, rig INTEGER NOT NULL,"
            f" n INTEGER NOT NULL, nb INTEGER NOT NULL, st INTEGER NOT NULL,"
            f" {_rig_agg_columns()}, PRIMARY KEY (t, rig)) WITHOUT ROWID",
        ]
    for sql in statements:
        db.execute(sql)
    db.executemany(
        "INSERT INTO status (code, name) VALUES (?, ?)", list(enumerate(_BASE_STATUSES))
    )


def _migrate_to_v2(db: sqlite3.Connection) -> None:
    """Version 2: the hashprice in BTC per PH/day, beside the USD one (the daily hashprice
    series, :meth:`HistoryStore.hashprice_days`)."""
    db.execute("ALTER TABLE cycle_raw ADD COLUMN hashprice_btc_ph_day REAL")
    for res in ("5m", "1h"):
        for suffix in ("", "_min", "_max"):
            db.execute(f"ALTER TABLE cycle_{res} ADD COLUMN hashprice_btc_ph_day{suffix} REAL")


def _migrate_to_v3(db: sqlite3.Connection) -> None:
    """Version 3: per value, the cycles of an aggregated row without one
    (``<value>_missing``): its mean's weight is ``n`` less those."""
    for res in ("5m", "1h"):
        for f in _CYCLE_FIELDS:
            db.execute(f"ALTER TABLE cycle_{res} ADD COLUMN {f}_missing INTEGER")
        for _, c, _ in _RIG_VALUES:
            db.execute(f"ALTER TABLE rig_{res} ADD COLUMN {c}_missing INTEGER")


#: _MIGRATIONS[v] upgrades a file from user_version v to v + 1, inside one transaction.
#: To change the schema, append a function; SCHEMA_VERSION follows.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migrate_to_v1, _migrate_to_v2, _migrate_to_v3]
SCHEMA_VERSION: int = len(_MIGRATIONS)


# --------------------------------------------------------------------------- helpers

# Primary SQLite result codes that mean "the storage can't take it right now" (as opposed to
# a bug): BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB.
_STORAGE_CODES = frozenset({5, 6, 7, 8, 10, 11, 13, 14, 15, 26})
_STORAGE_MESSAGES = (
    "disk is full", "readonly", "read-only", "disk i/o", "locked", "malformed",
    "unable to open", "not a database", "out of memory", "database is busy",
)


def _is_storage_error(e: BaseException) -> bool:
    """True for the sqlite errors a full disk, read-only file or I/O failure produce."""
    if type(e) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
        return False
    code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return (code & 0xFF) in _STORAGE_CODES
    msg = str(e).lower()
    return any(m in msg for m in _STORAGE_MESSAGES)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


_Q_LIMIT = 2**62


def _q(value: float | None, scale: float) -> int | None:
    """A value as a scaled integer (None for missing, NaN or infinite; clamped to ±2**62).
    Numbers only: anything else raises TypeError."""
    if value is None:
        return None
    try:
        r = round(value * scale)
    except (ValueError, OverflowError):  # NaN, ±inf
        return None
    if -_Q_LIMIT <= r <= _Q_LIMIT:
        return r
    return _Q_LIMIT if r > 0 else -_Q_LIMIT


def _unq(value: int | float | None, scale: float) -> float | None:
    return None if value is None else value / scale


@dataclass(frozen=True, slots=True)
class _Cycle:
    t: float
    rigs: tuple[RigPoint, ...]
    site: SitePoint | None
    chain: ChainPoint | None
    events: tuple[EventRecord, ...]


# --------------------------------------------------------------------------- the store


class HistoryStore:
    """The history file; see the module docstring for what is kept and how.

    ``max_pages`` caps the file at that many pages (``PRAGMA max_page_count``, 4 KiB each):
    a capacity limit, and the way tests produce a real "database or disk is full".
    ``backlog_cycles`` bounds the in-memory backlog kept while writes fail.
    ``check_seconds`` bounds the ``PRAGMA quick_check`` done when opening an existing file
    (it reads the whole file, about 3-4 s per GB warm; None: no bound).  When the bound is hit
    the rest of the file is not checked, and :attr:`check_complete` is False.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        max_pages: int | None = None,
        backlog_cycles: int = BACKLOG_CYCLES,
        check_seconds: float | None = None,
    ) -> None:
        self._path = Path(path).expanduser().absolute()
        self._clock = clock
        self._lock = threading.RLock()
        self._backlog: deque[_Cycle] = deque()
        self._backlog_max = max(1, backlog_cycles)
        self._dropped = 0
        # (ok, error, last_write): replaced as a whole, so `status` needs no lock
        self._state: tuple[bool, str | None, float | None] = (True, None, None)
        self._rig_ids: dict[str, int] = {}
        self._status_codes: dict[str, int] = {}
        self._status_names: dict[int, str] = {}
        self._closed = False
        self._check_seconds = check_seconds
        self.check_complete = True  #: False when the opening quick_check was cut short
        self._inspect_existing()
        self._db = self._open()
        try:
            self.set_max_pages(max_pages)
            self._migrate()
            self._load_statuses()
        except BaseException:
            self._db.close()
            raise

    # ----------------------------------------------------------------- opening

    def _inspect_existing(self) -> None:
        """Refuse a file that is not ours / corrupt / too new, without changing a byte."""
        path = self._path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"can't create the history directory {path.parent}: {e.strerror or e}"
            ) from e
        if not path.exists():
            return
        if not path.is_file():
            raise StoreError(f"{path} is not a regular file")
        try:
            with path.open("rb") as f:
                header = f.read(100)
        except OSError as e:
            raise StoreError(f"can't read the history file {path}: {e.strerror or e}") from e
        if not header:
            return  # empty file: initialised below
        if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
            raise StoreError(f"{path} is not a minertop history file (not an SQLite database)")
        app_id = int.from_bytes(header[68:72], "big")
        if app_id not in (0, APPLICATION_ID):
            raise StoreError(
                f"{path} is another application's SQLite database (application_id "
                f"{app_id:#010x}), not a minertop history file"
            )
        # Read-only look inside.  Without a WAL beside the file, open it immutable: nothing is
        # locked or created (a plain read-only open of a WAL-mode file leaves -wal/-shm).
        wal = Path(f"{path}-wal")
        uri = f"file:{quote(str(path))}?mode=ro" + ("" if wal.exists() else "&immutable=1")
        try:
            ro = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"can't open the history file {path}: {_one_line(e)}") from e
        try:
            app_id, version, objects = self._identity(ro)
            self._check_identity(app_id, version, objects)
            problems = self._quick_check(ro)
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"{path} is corrupt or not a minertop history file ({_one_line(e)}); "
                "move it aside to start a new history"
            ) from e
        finally:
            ro.close()
        if problems != ["ok"]:
            raise StoreError(
                f"{path} is corrupt ({_one_line(problems[0])}); "
                "move it aside to start a new history"
            )

    def _quick_check(self, ro: sqlite3.Connection) -> list[str]:
        if self._check_seconds is None:
            return [r[0] for r in ro.execute("PRAGMA quick_check(5)").fetchall()]
        deadline = time.monotonic() + self._check_seconds
        cut: list[bool] = []

        def progress() -> int:
            if time.monotonic() > deadline:
                cut.append(True)
                return 1  # interrupts the statement
            return 0

        ro.set_progress_handler(progress, 1000)
        try:
            return [r[0] for r in ro.execute("PRAGMA quick_check(5)").fetchall()]
        except sqlite3.OperationalError:
            if not cut:
                raise
            self.check_complete = False
            return ["ok"]
        finally:
            ro.set_progress_handler(None, 0)

    @staticmethod
    def _identity(db: sqlite3.Connection) -> tuple[int, int, int]:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        objects = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return app_id, version, objects

    def _check_identity(self, app_id: int, version: int, objects: int) -> None:
        if app_id != APPLICATION_ID:
            if app_id != 0 or objects or version:
                raise StoreError(
                    f"{self._path} is another application's SQLite database, "
                    "not a minertop history file"
                )
            return  # an empty database: ours to initialise
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self._path} was written by a newer minertop (history schema v{version}; "
                f"this minertop knows up to v{SCHEMA_VERSION})"
            )

    def _open(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(
                str(self._path), timeout=2.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StoreError(f"can't open the history file {self._path}: {_one_line(e)}") from e
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            # WAL + NORMAL: a crash can lose the last transactions, never corrupt the file.
            db.execute("PRAGMA synchronous=" + ("NORMAL" if mode == "wal" else "FULL"))
            db.execute("PRAGMA secure_delete=OFF")  # history is not secret; halves delete I/O
            db.execute("PRAGMA journal_size_limit=67108864")  # trim the WAL after big batches
            db.execute("PRAGMA cache_size=-16000")  # 16 MB
            db.execute("PRAGMA temp_store=MEMORY")
        except sqlite3.Error as e:
            db.close()
            raise StoreError(f"can't use the history file {self._path}: {_one_line(e)}") from e
        return db

    def _migrate(self) -> None:
        db = self._db
        try:
            self._check_identity(*self._identity(db))
            version = db.execute("PRAGMA user_version").fetchone()[0]
            while version < SCHEMA_VERSION:
                with self._tx():
                    # re-read under the write lock: another process may have migrated it
                    app_id, version, objects = self._identity(db)
                    self._check_identity(app_id, version, objects)
                    if version >= SCHEMA_VERSION:
                        break
                    _MIGRATIONS[version](db)
                    version += 1
                    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version={version}")
        except sqlite3.Error as e:
            if not _is_storage_error(e):
                raise
            raise StoreError(
                f"can't initialise the history file {self._path}: {_one_line(e)}"
            ) from e

    def _load_statuses(self) -> None:
        for code, name in self._db.execute("SELECT code, name FROM status"):
            self._status_codes[name] = code
            self._status_names[code] = name

    @contextmanager
    def _tx(self) -> Iterator[None]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the history store {self._path} is closed")

    # ----------------------------------------------------------------- writing

    def record_cycle(
        self,
        t: float,
        *,
        rigs: Sequence[RigPoint] = (),
        site: SitePoint | None = None,
        chain: ChainPoint | None = None,
        events: Sequence[EventRecord] = (),
    ) -> bool:
        """Write one poll cycle (one transaction).  True when written; False when it waits in
        the backlog because the file can't be written (see :attr:`status`).  Earlier backlog
        cycles are written first.  Programming errors (bad values) raise."""
        cycle = _Cycle(float(t), tuple(rigs), site, chain, tuple(events))
        with self._lock:
            self._check_open()
            if len(self._backlog) >= self._backlog_max:
                self._backlog.popleft()
                self._dropped += 1
            self._backlog.append(cycle)
            return self._flush_locked()

    def flush(self) -> bool:
        """Try to write the backlog now; True when it is empty."""
        with self._lock:
            self._check_open()
            return self._flush_locked()

    def _flush_locked(self) -> bool:
        while self._backlog:
            cycle = self._backlog[0]
            try:
                new_rigs, new_statuses = self._write_cycle(cycle)
            except Exception as e:
                if not _is_storage_error(e):
                    self._backlog.popleft()  # a bad cycle would fail forever: drop it
                    raise
                msg = f"history not written: {_one_line(e)} ({self._path})"
                if self._dropped:
                    msg += f"; {self._dropped} cycles dropped"
                self._state = (False, msg, self._state[2])
                return False
            self._backlog.popleft()
            self._rig_ids.update(new_rigs)
            for name, code in new_statuses.items():
                self._status_codes[name] = code
                self._status_names[code] = name
            self._state = (True, None, self._clock())
        return True

    def _write_cycle(self, cycle: _Cycle) -> tuple[dict[str, int], dict[str, int]]:
        db = self._db
        t = math.floor(cycle.t)
        with self._tx():
            new_rigs = self._resolve_rigs({p.rig_id for p in cycle.rigs}, t)
            new_statuses = self._resolve_statuses({p.status for p in cycle.rigs})
            ids = self._rig_ids
            codes = self._status_codes
            if new_rigs:
                ids = {**ids, **new_rigs}
            if new_statuses:
                codes = {**codes, **new_statuses}
            q = _q
            rows = [
                (
                    t,
                    ids[p.rig_id],
                    None if p.hashrate_ths is None else q(p.hashrate_ths, 1000.0),
                    None if p.power_w is None else q(p.power_w, 1.0),
                    None if p.temp_max_c is None else q(p.temp_max_c, 10.0),
                    codes[p.status],
                    None if p.margin_usd_day is None else q(p.margin_usd_day, 1000.0),
                )
                for p in cycle.rigs
            ]
            rows.sort(key=itemgetter(1))  # appends in key order: pages fill densely
            site, chain = cycle.site, cycle.chain
            values: list[Any] = [t]
            values += [None if site is None else getattr(site, f) for f in _SITE_FIELDS]
            values += [None if chain is None else getattr(chain, f) for f in _CHAIN_FIELDS]
            db.execute(
                f"INSERT OR REPLACE INTO cycle_raw (t, {', '.join(_CYCLE_FIELDS)}) "
                f"VALUES ({', '.join('?' * len(values))})",
                values,
            )
            if rows:
                db.executemany("INSERT OR REPLACE INTO rig_raw VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            if cycle.events:
                db.executemany(
                    "INSERT INTO event (t, kind, key, subject, alert_kind, severity, message)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (float(e.time), e.kind, e.key, e.subject, e.alert_kind, e.severity,
                         e.message)
                        for e in cycle.events
                    ],
                )
        return new_rigs, new_statuses

    def _resolve_rigs(self, names: set[str], t: int) -> dict[str, int]:
        """Ids of rigs not in the cache (created if new), inside the current transaction."""
        missing = [n for n in names if n not in self._rig_ids]
        if not missing:
            return {}
        db = self._db
        # first use in this session also refreshes last_t (see _prune_rigs)
        db.executemany(
            "INSERT INTO rig (name, last_t) VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
            " SET last_t = max(coalesce(last_t, 0), excluded.last_t)",
            [(n, t) for n in missing],
        )
        found: dict[str, int] = {}
        for i in range(0, len(missing), 500):
            chunk = missing[i : i + 500]
            found.update(
                (name, rid)
                for rid, name in db.execute(
                    f"SELECT id, name FROM rig WHERE name IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
            )
        return found

    def _resolve_statuses(self, names: set[str]) -> dict[str, int]:
        new: dict[str, int] = {}
        for name in names:
            if name in self._status_codes:
                continue
            if not isinstance(name, str):
                raise TypeError(f"rig status must be a str, not {type(name).__name__}")
            db = self._db
            db.execute(
                "INSERT OR IGNORE INTO status (code, name)"
                " SELECT coalesce(max(code), 3) + 1, ? FROM status",
                (name,),
            )
            new[name] = db.execute("SELECT code FROM status WHERE name = ?", (name,)).fetchone()[0]
        return new

    def set_max_pages(self, pages: int | None) -> None:
        """Cap the file at ``pages`` pages (None: no cap).  For tests and capacity limits."""
        with self._lock:
            self._check_open()
            limit = _NO_PAGE_LIMIT if pages is None else max(1, int(pages))
            self._db.execute(f"PRAGMA max_page_count={limit}")

    # ----------------------------------------------------------------- reading

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The lock and the connection; storage failures become a one-line StoreError."""
        with self._lock:
            self._check_open()
            try:
                yield self._db
            except sqlite3.Error as e:
                if not _is_storage_error(e):
                    raise
                raise StoreError(
                    f"history not readable: {_one_line(e)} ({self._path})"
                ) from e

    def rig_known(self, rig_id: str) -> bool:
        """True when the file has (or recently had) data for this rig."""
        with self._reading():
            return self._rig_id(rig_id) is not None

    def _rig_id(self, rig_id: str) -> int | None:
        rid = self._rig_ids.get(rig_id)
        if rid is not None:
            return rid
        row = self._db.execute("SELECT id FROM rig WHERE name = ?", (rig_id,)).fetchone()
        return None if row is None else int(row[0])

    def rig_history(self, rig_id: str, since: float, until: float) -> list[dict[str, Any]]:
        """One rig's points with ``since <= t <= until`` (aggregated buckets: those overlapping
        the range), oldest first: ``{"t", "hashrate_ths", "power_w", "temp_max_c", "status",
        "margin_usd_day"}``; aggregated points also have ``<value>_min`` / ``<value>_max``,
        ``samples`` and ``uptime``; their ``status`` is the worst in the bucket.  Raises
        StoreError when the file can't be read."""
        with self._reading() as db:
            rid = self._rig_id(rig_id)
            if rid is None:
                return []
            names = self._status_names
            out: list[dict[str, Any]] = []
            agg_cols = _rig_agg_columns()
            for res, width in (("1h", BUCKET_1H_S), ("5m", BUCKET_5M_S)):
                cur = db.execute(
                    f"SELECT r.t, r.n, r.nb, r.st, {agg_cols} FROM cycle_{res} c"
                    f" CROSS JOIN rig_{res} r ON r.t = c.t AND r.rig = ?"
                    " WHERE c.t > ? AND c.t <= ? ORDER BY c.t",
                    (rid, since - width, until),
                )
                for row in cur:
                    point: dict[str, Any] = {"t": row[0]}
                    for i, (key, _, scale) in enumerate(_RIG_VALUES):
                        point[key] = _unq(row[5 + 3 * i], scale)
                    point["status"] = names.get(row[3], "?")
                    for i, (key, _, scale) in enumerate(_RIG_VALUES):
                        point[f"{key}_min"] = _unq(row[4 + 3 * i], scale)
                        point[f"{key}_max"] = _unq(row[6 + 3 * i], scale)
                    point["samples"] = row[1]
                    point["uptime"] = (row[1] - row[2]) / row[1] if row[1] else None
                    out.append(point)
            cur = db.execute(
                "SELECT r.t, r.hr, r.pw, r.tc, r.st, r.mg FROM cycle_raw c"
                " CROSS JOIN rig_raw r ON r.t = c.t AND r.rig = ?"
                " WHERE c.t >= ? AND c.t <= ? ORDER BY c.t",
                (rid, since, until),
            )
            out.extend(
                {
                    "t": t,
                    "hashrate_ths": None if hr is None else hr / 1000.0,
                    "power_w": None if pw is None else float(pw),
                    "temp_max_c": None if tc is None else tc / 10.0,
                    "status": names.get(st, "?"),
                    "margin_usd_day": None if mg is None else mg / 1000.0,
                }
                for t, hr, pw, tc, st, mg in cur
            )
        out.sort(key=lambda p: p["t"])  # already sorted but for clock jumps; O(n) then
        return out

    def site_history(self, since: float, until: float) -> list[dict[str, Any]]:
        """Site + chain points, oldest first: ``"t"`` and every :class:`SitePoint` and
        :class:`ChainPoint` field (None when not recorded); aggregated points also have
        ``<field>_min`` / ``<field>_max`` and ``samples``."""
        out: list[dict[str, Any]] = []
        with self._reading() as db:
            for res, width in (("1h", BUCKET_1H_S), ("5m", BUCKET_5M_S)):
                cur = db.execute(
                    f"SELECT t, n, {_cycle_agg_columns()} FROM cycle_{res}"
                    " WHERE t > ? AND t <= ? ORDER BY t",
                    (since - width, until),
                )
                for row in cur:
                    point: dict[str, Any] = {"t": row[0]}
                    for i, f in enumerate(_CYCLE_FIELDS):
                        mean, lo, hi = row[2 + 3 * i : 5 + 3 * i]
                        point[f] = hi if f == "tip_height" else mean
                    for i, f in enumerate(_CYCLE_FIELDS):
                        point[f"{f}_min"] = row[3 + 3 * i]
                        point[f"{f}_max"] = row[4 + 3 * i]
                    point["samples"] = row[1]
                    out.append(point)
            cur = db.execute(
                f"SELECT t, {', '.join(_CYCLE_FIELDS)} FROM cycle_raw"
                " WHERE t >= ? AND t <= ? ORDER BY t",
                (since, until),
            )
            keys = ("t", *_CYCLE_FIELDS)
            out.extend(dict(zip(keys, row, strict=True)) for row in cur)
        out.sort(key=lambda p: p["t"])
        return out

    def hashprice_days(self, since: float, until: float) -> list[tuple[int, float | None,
                                                                      float | None]]:
        """The hashprice the daemon saw, one ``(day start, BTC, USD per PH/day)`` per UTC
        day with ``since <= day start < until`` and a recorded value, oldest first.

        Each is the mean of every cycle recorded that day with a value, whatever resolution
        it is kept at now (raw, 5-minute or hourly rows, weighted by the samples behind each:
        schema v3); no cycle is in two tables, so nothing counts twice.  BTC: the recorded
        BTC hashprice; rows written before schema v2 have none, and give the USD one over
        that row's mean price instead.
        """
        lo = math.floor(since / 86400) * 86400
        parts = []
        usd, btc = "hashprice_usd_ph_day", "hashprice_btc_ph_day"
        for table in ("cycle_1h", "cycle_5m", "cycle_raw"):
            agg = table != "cycle_raw"
            nu = _weight(usd) if agg else "1"
            nb = (f"CASE WHEN {btc} IS NOT NULL THEN {_weight(btc)} ELSE {_weight(usd)} END"
                  if agg else "1")
            parts.append(
                f"SELECT t / 86400 * 86400 AS day, {nu} AS nu, {nb} AS nb, {usd} AS usd,"
                f" coalesce({btc}, {usd} / nullif(price_usd, 0))"
                f" AS btc FROM {table} WHERE t >= ? AND t < ?"
            )
        sql = (
            "SELECT day, total(btc * nb) / sum(CASE WHEN btc IS NOT NULL THEN nb END),"
            " total(usd * nu) / sum(CASE WHEN usd IS NOT NULL THEN nu END)"
            f" FROM ({' UNION ALL '.join(parts)}) GROUP BY day"
            " HAVING count(btc) + count(usd) > 0 ORDER BY day"
        )
        with self._reading() as db:
            rows = db.execute(sql, (lo, until) * 3).fetchall()
        return [(int(day), btc, usd) for day, btc, usd in rows if day >= since]

    def alerts(self, since: float, until: float | None = None) -> list[dict[str, Any]]:
        """Alert events with ``since <= t <= until``, oldest first."""
        with self._reading() as db:
            cur = db.execute(
                "SELECT t, kind, key, subject, alert_kind, severity, message FROM event"
                " WHERE t >= ? AND t <= ? ORDER BY t, id",
                (since, math.inf if until is None else until),
            )
            keys = ("t", "kind", "key", "subject", "alert_kind", "severity", "message")
            return [dict(zip(keys, row, strict=True)) for row in cur]

    # ----------------------------------------------------------------- compaction

    def compact(self, now: float | None = None, *, max_seconds: float | None = None) -> None:
        """Roll up and expire old rows (retention in the module docstring).  Idempotent and
        cheap when there is nothing to do.  Works in batches (one 5-minute bucket, one hour,
        one day or 5,000 events per transaction) and releases the lock between them; with
        ``max_seconds`` it stops after the batch that exceeds that budget (the next call
        carries on).  Storage errors are reported in :attr:`status`, not raised."""
        now = self._clock() if now is None else float(now)
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        steps: tuple[Callable[[float], bool], ...] = (
            self._roll_raw, self._roll_5m, self._expire_1h, self._expire_events,
        )
        for step in steps:
            while True:
                with self._lock:
                    self._check_open()
                    try:
                        more = step(now)
                    except sqlite3.Error as e:
                        if not _is_storage_error(e):
                            raise
                        self._state = (
                            False,
                            f"history compaction failed: {_one_line(e)} ({self._path})",
                            self._state[2],
                        )
                        return
                if not more:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    return
        with self._lock:
            self._check_open()
            try:
                self._prune_rigs(now)
            except sqlite3.Error as e:
                if not _is_storage_error(e):
                    raise

    def _oldest(self, table: str) -> int | None:
        return self._db.execute(f"SELECT min(t) FROM {table}").fetchone()[0]

    def _roll_raw(self, now: float) -> bool:
        """Roll the oldest complete raw 5-minute bucket older than 48 h.  True if one was."""
        cutoff = math.floor((now - RAW_KEEP_S) / BUCKET_5M_S) * BUCKET_5M_S
        oldest = self._oldest("cycle_raw")
        if oldest is None or oldest >= cutoff:
            return False
        b = oldest // BUCKET_5M_S * BUCKET_5M_S
        db = self._db
        rng = (b, b + BUCKET_5M_S)
        cyc_sel = ", ".join(f"avg({f}), min({f}), max({f})" for f in _CYCLE_FIELDS)
        cyc_n = ", ".join(f"nullif(count(*) - count({f}), 0)" for f in _CYCLE_FIELDS)
        rig_sel = ", ".join(
            f"min({c}), CAST(round(avg({c})) AS INTEGER), max({c})" for _, c, _ in _RIG_VALUES
        )
        rig_n = ", ".join(f"nullif(count(*) - count({c}), 0)" for _, c, _ in _RIG_VALUES)
        with self._tx():
            db.execute(
                f"INSERT INTO cycle_5m (t, n, {_cycle_agg_columns()}, {_cycle_count_columns()})"
                f" SELECT ?, count(*), {cyc_sel}, {cyc_n} FROM cycle_raw WHERE t >= ? AND t < ?"
                f" ON CONFLICT (t) DO UPDATE SET {_cycle_merge_sql()}",
                (b, *rng),
            )
            db.execute(
                f"INSERT INTO rig_5m (t, rig, n, nb, st, {_rig_agg_columns()},"
                f" {_rig_count_columns()})"
                f" SELECT ?, rig, count(*), sum(st != 0), max(st), {rig_sel}, {rig_n}"
                f" FROM rig_raw WHERE t >= ? AND t < ? GROUP BY rig"
                f" ON CONFLICT (t, rig) DO UPDATE SET {_rig_merge_sql()}",
                (b, *rng),
            )
            db.execute("DELETE FROM rig_raw WHERE t >= ? AND t < ?", rng)
            db.execute("DELETE FROM cycle_raw WHERE t >= ? AND t < ?", rng)
        return True

    def _roll_5m(self, now: float) -> bool:
        """Roll the oldest complete hour of 5-minute rows older than 30 days."""
        cutoff = math.floor((now - KEEP_5M_S) / BUCKET_1H_S) * BUCKET_1H_S
        oldest = self._oldest("cycle_5m")
        if oldest is None or oldest >= cutoff:
            return False
        h = oldest // BUCKET_1H_S * BUCKET_1H_S
        db = self._db
        rng = (h, h + BUCKET_1H_S)
        def known(col: str) -> str:  # the samples behind the bucket's known means
            return f"sum(CASE WHEN {col} IS NOT NULL THEN {_weight(col)} END)"

        cyc_sel = ", ".join(
            f"total({f} * 1.0 * {_weight(f)}) / {known(f)}, min({f}_min), max({f}_max)"
            for f in _CYCLE_FIELDS
        )
        cyc_n = ", ".join(f"nullif(sum(n) - coalesce({known(f)}, 0), 0)" for f in _CYCLE_FIELDS)
        rig_sel = ", ".join(
            f"min({c}_min), CAST(round(total({c} * 1.0 * {_weight(c)}) / {known(c)})"
            f" AS INTEGER), max({c}_max)"
            for _, c, _ in _RIG_VALUES
        )
        rig_n = ", ".join(
            f"nullif(sum(n) - coalesce({known(c)}, 0), 0)" for _, c, _ in _RIG_VALUES)
        with self._tx():
            db.execute(
                f"INSERT INTO cycle_1h (t, n, {_cycle_agg_columns()}, {_cycle_count_columns()})"
                f" SELECT ?, sum(n), {cyc_sel}, {cyc_n} FROM cycle_5m WHERE t >= ? AND t < ?"
                f" ON CONFLICT (t) DO UPDATE SET {_cycle_merge_sql()}",
                (h, *rng),
            )
            db.execute(
                f"INSERT INTO rig_1h (t, rig, n, nb, st, {_rig_agg_columns()},"
                f" {_rig_count_columns()})"
                f" SELECT ?, rig, sum(n), sum(nb), max(st), {rig_sel}, {rig_n} FROM rig_5m"
                f" WHERE t >= ? AND t < ? GROUP BY rig"
                f" ON CONFLICT (t, rig) DO UPDATE SET {_rig_merge_sql()}",
                (h, *rng),
            )
            # rigs seen in this hour are alive at least until then (see _prune_rigs)
            db.execute(
                "UPDATE rig SET last_t = max(coalesce(last_t, 0), ?) WHERE id IN"
                " (SELECT DISTINCT rig FROM rig_5m WHERE t >= ? AND t < ?)",
                (h, *rng),
            )
            db.execute("DELETE FROM rig_5m WHERE t >= ? AND t < ?", rng)
            db.execute("DELETE FROM cycle_5m WHERE t >= ? AND t < ?", rng)
        return True

    def _expire_1h(self, now: float) -> bool:
        """Delete up to one day of hourly rows older than 400 days."""
        cutoff = now - KEEP_1H_S
        oldest = self._oldest("cycle_1h")
        if oldest is None or oldest >= cutoff:
            return False
        end = min(cutoff, oldest + 86400)
        with self._tx():
            self._db.execute("DELETE FROM rig_1h WHERE t < ?", (end,))
            self._db.execute("DELETE FROM cycle_1h WHERE t < ?", (end,))
        return True

    def _expire_events(self, now: float) -> bool:
        """Delete up to 5,000 events older than 400 days."""
        cutoff = now - EVENTS_KEEP_S
        oldest = self._db.execute("SELECT min(t) FROM event").fetchone()[0]
        if oldest is None or oldest >= cutoff:
            return False
        batch = 5000
        with self._tx():
            n = self._db.execute(
                "DELETE FROM event WHERE id IN"
                " (SELECT id FROM event WHERE t < ? ORDER BY t LIMIT ?)",
                (cutoff, batch),
            ).rowcount
        return n >= batch

    def _prune_rigs(self, now: float) -> None:
        """Forget rig names not seen for 401 days.  ``last_t`` is refreshed when a rig is
        first written in a session and when its 5-minute rows roll into hours (at most ~30
        days after the data), so a name still referenced by kept rows is never dropped."""
        cutoff = now - RIG_NAME_KEEP_S
        if self._db.execute("SELECT 1 FROM rig WHERE last_t < ? LIMIT 1", (cutoff,)).fetchone():
            with self._tx():
                self._db.execute("DELETE FROM rig WHERE last_t < ?", (cutoff,))
            self._rig_ids.clear()

    # ----------------------------------------------------------------- housekeeping

    @property
    def status(self) -> StoreStatus:
        """Health of the store; never blocks (safe from the event-loop thread)."""
        ok, error, last_write = self._state
        size: int | None
        try:
            size = os.stat(self._path).st_size
        except OSError:
            size = None
        else:
            with suppress(OSError):
                size += os.stat(f"{self._path}-wal").st_size
        return StoreStatus(
            path=str(self._path),
            ok=ok,
            error=error,
            last_write=last_write,
            pending_cycles=len(self._backlog),
            size_bytes=size,
            dropped_cycles=self._dropped,
        )

    @property
    def path(self) -> Path:
        return self._path

    def integrity_check(self) -> str:
        """``"ok"`` or the problems found (full ``PRAGMA integrity_check``: reads the whole
        file, seconds per GB)."""
        with self._lock:
            self._check_open()
            try:
                rows = [r[0] for r in self._db.execute("PRAGMA integrity_check(20)")]
            except sqlite3.DatabaseError as e:
                return _one_line(e)
        return "ok" if rows == ["ok"] else "; ".join(_one_line(r) for r in rows)

    def close(self) -> None:
        """Write what the backlog holds if possible, then close.  Idempotent."""
        with self._lock:
            if self._closed:
                return
            with suppress(sqlite3.Error):
                self._flush_locked()
            with suppress(sqlite3.Error):
                self._db.execute("PRAGMA optimize")
            self._db.close()
            self._closed = True

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _merged_mean(col: str, rounded: bool) -> list[str]:
    """SET items merging an aggregated value, its count, min and max into an existing row:
    the mean weighted by the samples behind each side (``n`` and ``excluded.n`` are the old
    rows' cycle counts: SQLite evaluates every SET expression on the row as it was)."""
    w_old, w_new = _weight(col), _weight(f"excluded.{col}", "excluded.n")
    mean = f"({col} * {w_old} + excluded.{col} * {w_new}) * 1.0 / ({w_old} + {w_new})"
    if rounded:
        mean = f"CAST(round({mean}) AS INTEGER)"
    return [
        f"{col} = CASE WHEN {col} IS NULL THEN excluded.{col} WHEN excluded.{col} IS NULL"
        f" THEN {col} ELSE {mean} END",
        f"{col}_missing = nullif(n + excluded.n - (CASE WHEN {col} IS NULL THEN 0 ELSE"
        f" {w_old} END) - (CASE WHEN excluded.{col} IS NULL THEN 0 ELSE {w_new} END), 0)",
        f"{col}_min = coalesce(min({col}_min, excluded.{col}_min), {col}_min,"
        f" excluded.{col}_min)",
        f"{col}_max = coalesce(max({col}_max, excluded.{col}_max), {col}_max,"
        f" excluded.{col}_max)",
    ]


def _cycle_merge_sql() -> str:
    """ON CONFLICT SET clause merging an aggregate row into an existing one (rare: only
    when late rows arrive for a bucket already rolled up, e.g. after a clock step)."""
    parts = ["n = n + excluded.n"]
    for f in _CYCLE_FIELDS:
        parts += _merged_mean(f, rounded=False)
    return ", ".join(parts)


def _rig_merge_sql() -> str:
    parts = ["n = n + excluded.n", "nb = nb + excluded.nb", "st = max(st, excluded.st)"]
    for _, c, _ in _RIG_VALUES:
        parts += _merged_mean(c, rounded=True)
    return ", ".join(parts)
