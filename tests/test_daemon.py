"""``minertop daemon`` as a service manager runs it: a real process, no terminal, signals,
its HTTP API, its SQLite history across kill -9, and dashboards attached to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = "import sys\nfrom tui.cli import main\nsys.exit(main(sys.argv[1:]))\n"
TOKEN = "s3cret-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A ``minertop daemon`` subprocess on a loopback port (stdin closed, no tty)."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None,
                 port: int | None = None, db: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db or tmp / "history.db"
        self.err = tmp / f"daemon-{self.port}-{time.monotonic_ns()}.err"
        e = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
        e.pop("MINERTOP_TOKEN", None) if "MINERTOP_TOKEN" not in (env or {}) else None
        self.p = subprocess.Popen(
            [sys.executable, "-c", CODE, "daemon", "--listen", f"127.0.0.1:{self.port}",
             "--db", str(self.db), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err.open("wb"),
            env=e, cwd=tmp, start_new_session=True)

    def get(self, path: str, token: str | None = None, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(self.url + path, headers=headers, timeout=5, **kw)

    def wait_for(self, cond, timeout: float = 30.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.p.poll() is not None:
                raise AssertionError(f"daemon exited {self.p.returncode}: {self.stderr()}")
            try:
                if cond():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: {self.stderr()}")

    def cycles(self) -> int:
        return int(self.get("/healthz").json()["cycles"])

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 8.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        return self.p.wait(timeout)

    def kill(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(5)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.kill()


def demo_daemon(tmp: Path, procs: list[Proc], *args: str, **kw) -> Proc:  # type: ignore[no-untyped-def]
    p = Proc(tmp, "--demo", *args, **kw)
    procs.append(p)
    p.wait_for(lambda: p.cycles() >= 1, what="the first cycle")
    return p


def test_demo_daemon_serves_the_once_document_and_history_and_stops_on_sigterm(
        tmp_path: Path, procs: list[Proc]) -> None:
    d = demo_daemon(tmp_path, procs)
    health = d.get("/healthz").json()
    assert health["service"] == "minertop" and health["store"]["state"] == "ok"
    assert set(health["sources"]) == {"chain", "price", "rigs"}
    assert all(s["state"] == "ok" and s["age_s"] < 30 for s in health["sources"].values())
    snap = d.get("/api/v1/snapshot").json()
    # the same document as `minertop --once --json` (same keys at every level we check)
    once = subprocess.run([sys.executable, "-c", CODE, "--demo", "--once", "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    doc = json.loads(once.stdout)
    assert set(snap) == set(doc) and set(snap["site"]) == set(doc["site"])
    assert set(snap["rigs"][0]) == set(doc["rigs"][0]) and len(snap["rigs"]) == 48
    assert snap["tip_height"] == doc["tip_height"]
    d.wait_for(lambda: d.get("/healthz").json()["store"]["age_s"] is not None,
               what="the cycle written")
    now = time.time()
    hist = d.get(f"/api/v1/rigs/a-01/history?since={now - 600:.0f}").json()
    assert hist["rig"] == "a-01" and len(hist["points"]) >= 1
    ts = [p["t"] for p in hist["points"]]
    assert ts == sorted(ts) and hist["points"][-1]["status"] == "ok"
    assert set(hist["points"][0]) >= {"t", "hashrate_ths", "power_w", "temp_max_c", "status",
                                      "margin_usd_day"}
    down = d.get(f"/api/v1/rigs/a-08/history?since={now - 600:.0f}").json()
    assert {p["status"] for p in down["points"]} == {"offline"}
    site = d.get(f"/api/v1/site/history?since={now - 600:.0f}").json()["points"]
    assert site and site[-1]["rigs_total"] == 48 and site[-1]["tip_height"] == 935_008
    assert d.get("/api/v1/rigs/nope/history").status_code == 404
    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 5
    err = d.stderr()
    assert "Traceback" not in err and "SIGTERM: stopping" in err and "stopped" in err
    assert all(len(line) < 400 for line in err.splitlines())  # one line per event
    with sqlite3.connect(d.db) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_kill_9_loses_at_most_the_cycle_in_flight_and_a_restart_continues(
        tmp_path: Path, procs: list[Proc]) -> None:
    d = demo_daemon(tmp_path, procs, "--price", "71000")  # one cycle written
    since = time.time() - 600
    before = d.get(f"/api/v1/rigs/a-01/history?since={since:.0f}").json()["points"]
    d.kill()  # SIGKILL: no clean-up at all
    with sqlite3.connect(f"file:{d.db}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    d2 = demo_daemon(tmp_path, procs, "--price", "71000", port=d.port, db=d.db)
    d2.wait_for(lambda: d2.cycles() >= 1, what="a cycle after the restart")
    after = d2.get(f"/api/v1/rigs/a-01/history?since={since:.0f}").json()["points"]
    old_ts = {p["t"] for p in before}
    assert old_ts <= {p["t"] for p in after}  # nothing written before the kill was lost
    assert max(p["t"] for p in after) > max(old_ts)  # and the history goes on
    t0 = time.monotonic()
    assert d2.stop(signal.SIGINT) == 0  # Ctrl-C in a foreground run: the same clean exit
    assert time.monotonic() - t0 < 5 and "Traceback" not in d2.stderr()


def test_a_foreign_or_corrupt_db_is_refused_and_left_untouched(
        tmp_path: Path, procs: list[Proc]) -> None:
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        db.execute("INSERT INTO invoices (amount) VALUES (12.5)")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all\n" * 100)
    for path in (foreign, garbage):
        before = path.read_bytes()
        p = Proc(tmp_path, "--price", "1", "--mempool", "http://127.0.0.1:9", db=path)
        procs.append(p)
        assert p.p.wait(20) == 1
        err = p.stderr()
        assert str(path) in err and "Traceback" not in err and len(err.splitlines()) <= 2
        assert path.read_bytes() == before
        assert not Path(str(path) + "-wal").exists()


def test_token_rules(tmp_path: Path, procs: list[Proc]) -> None:
    # Off loopback without a token: refused before anything listens, in one line.
    r = subprocess.run([sys.executable, "-c", CODE, "daemon", "--listen", "0.0.0.0:9",
                        "--price", "1", "--db", str(tmp_path / "x.db")],
                       capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in dict(os.environ, PYTHONPATH=str(ROOT)).items()
                            if k != "MINERTOP_TOKEN"})
    assert r.returncode == 2 and "needs a token" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "x.db").exists()
    # With a token (here on loopback): every endpoint but /healthz wants it.
    tf = tmp_path / "token"
    tf.write_text(TOKEN + "\n")
    tf.chmod(0o600)
    d = demo_daemon(tmp_path, procs, "--token-file", str(tf), "-v")
    assert d.get("/healthz").status_code == 200
    assert d.get("/api/v1/snapshot").status_code == 401
    assert d.get("/api/v1/snapshot", token="wrong-token-0123456789").status_code == 401
    assert d.get(f"/api/v1/snapshot?token={TOKEN}").status_code == 401
    assert d.get("/api/v1/snapshot", token=TOKEN).status_code == 200
    assert d.get("/metrics").status_code == 401  # Prometheus needs the token too
    m = d.get("/metrics", token=TOKEN)
    assert m.status_code == 200 and m.headers["Content-Type"].startswith("text/plain")
    assert 'minertop_site_rigs{site="Texas-A",status="ok"}' in m.text
    # the dashboard's --once attached with the token from the environment
    r = subprocess.run([sys.executable, "-c", CODE, "--attach", d.url, "--once", "--json"],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), MINERTOP_TOKEN=TOKEN))
    assert r.returncode == 0 and json.loads(r.stdout)["tip_height"] == 935_008
    assert d.stop() == 0
    assert TOKEN not in d.stderr()


def test_sighup_rereads_the_config_and_a_bad_one_keeps_the_old(
        tmp_path: Path, procs: list[Proc]) -> None:
    cfg = tmp_path / "config.toml"
    good = ('[site]\nname = "Hup"\nelectricity_usd_kwh = 0.05\n'
            '[[rigs]]\nname = "r1"\nhost = "127.0.0.1"\nport = 9\n')
    cfg.write_text(good)
    d = Proc(tmp_path, "--config", str(cfg), "--price", "71000",
             "--mempool", "http://127.0.0.1:9")
    procs.append(d)
    d.wait_for(lambda: d.cycles() >= 1 or "rigs" in d.get("/healthz").json()["sources"],
               what="the daemon up")
    cfg.write_text(good.replace("0.05", '"cheap"'))
    d.p.send_signal(signal.SIGHUP)
    d.wait_for(lambda: "config reload failed" in d.stderr(), what="the reload error")
    assert "config.toml:3" in d.stderr()  # file:line of the mistake
    assert d.get("/healthz").status_code == 200  # still running, old config
    cfg.write_text(good.replace('"r1"', '"r2"'))
    d.p.send_signal(signal.SIGHUP)
    d.wait_for(lambda: "config re-read" in d.stderr(), what="the reload")
    d.wait_for(lambda: any(r.get("name") == "r2" for r in
                           (d.get("/api/v1/view").json().get("site") or {}).get("rows", [])),
               what="the new rig polled")
    assert d.stop() == 0
    assert "Traceback" not in d.stderr()


async def test_a_dashboard_attached_to_a_daemon_that_stops_says_so_and_recovers(
        tmp_path: Path, procs: list[Proc]) -> None:
    import asyncio

    from tui.app import MinertopApp
    from tui.remote import RemoteEngine
    from tui.spec import SourceSpec
    from widgets.header import HeaderBar
    from widgets.retarget import RetargetPane
    from widgets.rigs import RigsPane

    d = demo_daemon(tmp_path, procs)
    engine = RemoteEngine(d.url, poll_s=0.2)
    app = MinertopApp(SourceSpec(kind="daemon", url=d.url), engine=engine)

    async def until(cond, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.05)

    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.site_view is not None, "the daemon's rigs on screen")
        await pilot.pause()
        header = str(app.query_one(HeaderBar).render())
        assert f"daemon 127.0.0.1:{d.port}" in header
        assert app.query_one(RigsPane).table.row_count == 48
        assert "416 blocks" in str(app.query_one(RetargetPane).render())
        # the rig detail screen covers the daemon's history
        await pilot.press("4", "enter")
        rid = app.screen.rig_id  # type: ignore[attr-defined]
        assert rid in ("a-02", "a-08")  # the down rigs are listed first
        await until(lambda: engine.history_for(rid).errors, "the rig's history from the daemon")
        assert engine.history_for(rid).errors[0][1] == "offline"  # down since it was first seen
        await pilot.press("d")
        assert engine.history_span == 86400.0
        await pilot.press("escape")
        # the daemon goes away: the last data stays, the header says so with its age
        assert d.stop() == 0
        await until(lambda: "DAEMON DOWN" in str(app.query_one(HeaderBar).render()),
                    "DOWN shown")
        assert app.query_one(RigsPane).table.row_count == 48
        # ... and it comes back by itself when the daemon does
        d2 = demo_daemon(tmp_path, procs, port=d.port, db=d.db)
        await until(lambda: "DOWN" not in str(app.query_one(HeaderBar).render()),
                    "recovered", timeout=30)
        assert d2.stop() == 0


def test_minertop_without_source_flags_attaches_to_a_running_daemon(
        tmp_path: Path, procs: list[Proc]) -> None:
    d = demo_daemon(tmp_path, procs)
    env = dict(os.environ, PYTHONPATH=str(ROOT), MINERTOP_DAEMON=d.url,
               XDG_CONFIG_HOME=str(tmp_path / "nocfg"))
    r = subprocess.run([sys.executable, "-c", CODE, "--once", "--json"], capture_output=True,
                       text=True, timeout=30, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["tip_height"] == 935_008 and doc["site"]["name"] == "Texas-A"
    r = subprocess.run([sys.executable, "-c", CODE, "--once"], capture_output=True,
                       text=True, timeout=30, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "Rigs · Texas-A · 48 rigs" in r.stdout
    assert d.stop() == 0


def test_the_systemd_unit_is_sandboxed_and_runs_the_daemon() -> None:
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "contrib/systemd/minertop.service")
    svc = unit["Service"]
    assert " daemon " in svc["ExecStart"] and "--db ${STATE_DIRECTORY}" in svc["ExecStart"]
    assert svc["DynamicUser"] == "yes" and svc["StateDirectory"] == "minertop"
    assert svc["ProtectSystem"] == "strict" and svc["NoNewPrivileges"] == "yes"
    assert svc["ExecReload"].endswith("-HUP $MAINPID")
    assert "token" not in svc["ExecStart"].lower()  # secrets come from EnvironmentFile


@pytest.mark.parametrize("argv, env, says", [
    (["daemon", "--listen", "127.0.0.1:9", "--price", "1"], {"MINERTOP_TOKEN": "short"},
     "too short"),
    (["--once"], {"MINERTOP_DAEMON": "http://[::1"}, "$MINERTOP_DAEMON"),
    (["--attach", "http://127.0.0.1:9", "--once"], {"MINERTOP_TOKEN": "has space in it!!!!"},
     "whitespace"),
])
def test_bad_tokens_and_daemon_addresses_are_one_line_exit_2(
        tmp_path: Path, argv: list[str], env: dict[str, str], says: str) -> None:
    r = subprocess.run([sys.executable, "-c", CODE, *argv, *(
        ["--db", str(tmp_path / "h.db")] if argv[0] == "daemon" else [])],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **env))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
    assert "short" not in r.stderr.replace("too short", "")  # the token itself is not shown
