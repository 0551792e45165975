"""Two sites, two real daemons, one real Prometheus: the fleet view's numbers are each
daemon's own (``/api/v1/snapshot``), through ``/metrics``, a scrape and PromQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_daemon import CODE, ROOT, Proc
from tests.test_fleet_prometheus import free_port, prometheus_yml, wait_for

#: A process serving the simulated chain and the demo's 48 rigs on loopback; it prints the
#: addresses as one JSON line and serves until killed.
WORLD = """
import asyncio, json, sys
from tui.demo import start_demo_site
from tui.sim import start_sim

async def main():
    chain = await start_sim(seed=2026, scenario="jan2026", mempool_port=0, rpc_port=0)
    rigs, site = await start_demo_site(2026)
    print(json.dumps({"mempool": chain.mempool_url,
                      "rigs": [[r.name, r.host, r.port, r.kind] for r in site.rigs]}),
          flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def site_config(name: str, rigs: list[list]) -> str:  # type: ignore[type-arg]
    lines = [f'[site]\nname = "{name}"\nelectricity_usd_kwh = 0.06\npool_fee_pct = 2.0\n'
             # one cycle, then none for 10 minutes: the numbers hold still for the comparison
             "[poll]\ninterval_s = 600\ntimeout_s = 1\n"]
    for rig_name, host, port, kind in rigs:
        lines.append(f'[[rigs]]\nname = "{rig_name}"\nhost = "{host}"\nport = {port}\n'
                     f'kind = "{kind}"\n')
    return "\n".join(lines)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:  # type: ignore[type-arg]
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail("prometheus not found: apt-get install prometheus (.ci/run does)",
                    pytrace=False)
    tmp = tmp_path_factory.mktemp("fleet")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    world = subprocess.Popen([sys.executable, "-c", WORLD], stdout=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env, text=True)
    procs: list[Proc] = []
    prom = None
    try:
        info = json.loads(world.stdout.readline())  # type: ignore[union-attr]
        half = len(info["rigs"]) // 2
        daemons = {}
        for name, rigs in (("north", info["rigs"][:half]), ("south", info["rigs"][half:])):
            d = tmp / name
            d.mkdir()
            (d / "config.toml").write_text(site_config(name, rigs))
            p = Proc(d, "--config", str(d / "config.toml"), "--mempool", info["mempool"])
            procs.append(p)
            daemons[name] = p
        for p in procs:  # a cycle with the network's numbers (margins need the hashprice)
            p.wait_for(lambda p=p: p.get("/api/v1/snapshot").status_code == 200 and p.get(
                "/api/v1/snapshot").json()["site"]["margin_usd_day"] is not None,
                what="the daemon's first priced cycle")
        config = tmp / "prometheus.yml"
        config.write_text(prometheus_yml([p.url + "/metrics" for p in procs]))
        port = free_port()
        log = tmp / "prometheus.log"
        with log.open("wb") as out:
            prom = subprocess.Popen(
                [exe, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_for("Prometheus ready", lambda: httpx.get(url + "/-/ready", timeout=2)
                 .status_code == 200, timeout=30, log=log)

        def both_scraped() -> bool:
            r = httpx.get(url + "/api/v1/query", timeout=2,
                          params={"query": "count by (site) (minertop_site_rigs)"})
            return len(r.json()["data"]["result"]) == 2

        wait_for("both sites in Prometheus", both_scraped, timeout=30, log=log)
        yield {"url": url, "daemons": daemons, "tmp": tmp}
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(10)
        for p in procs:
            p.kill()
        world.kill()
        world.wait(5)


def once(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True,
                          timeout=60, cwd=tmp, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_the_fleet_view_has_each_daemons_own_numbers(fleet: dict) -> None:  # type: ignore[type-arg]
    r = once(["--prometheus", fleet["url"], "--once", "--json"], fleet["tmp"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    sites = {s["site"]: s for s in doc["sites"]}
    assert set(sites) == {"north", "south"}
    for name, daemon in fleet["daemons"].items():
        snap = daemon.get("/api/v1/snapshot").json()
        own, seen = snap["site"], sites[name]
        counts = own["rigs_by_status"]
        assert seen["rigs_total"] == own["rigs"] == 24
        assert seen["rigs_up"] == counts.get("ok", 0) + counts.get("stale", 0)
        assert seen["hashrate_ths"] == pytest.approx(own["hashrate_ths"], abs=0.11)
        assert seen["power_w"] == pytest.approx(own["power_w"], abs=1)
        assert seen["margin_usd_day"] == pytest.approx(own["margin_usd_day"], abs=0.011)
        assert seen["margin_after_retarget_usd_day"] == pytest.approx(
            own["margin_after_retarget_usd_day"], abs=0.011)
        assert seen["production_cost_usd_per_btc"] == pytest.approx(
            own["production_cost_usd_per_btc"], abs=1)
        assert seen["daemon_up"] is True and 0 <= seen["scrape_age_s"] < 10
    net = doc["network"]
    assert net["retarget"]["change_pct"] == pytest.approx(snap["retarget"]["change_pct"],
                                                          abs=0.01)
    # the fleet view shows the daemons' own price; the simulator's walk starts at $71,000
    # and moves every minute of wall time, so the value itself is only near it
    assert net["price_usd"] == snap["price_usd"]
    assert snap["price_usd"] == pytest.approx(71_000, rel=0.02)
    text = once(["--prometheus", fleet["url"], "--once"], fleet["tmp"])
    assert text.returncode == 0 and "north" in text.stdout and "south" in text.stdout


def test_prometheus_down_is_one_line_and_exit_1(tmp_path: Path) -> None:
    r = once(["--prometheus", f"http://127.0.0.1:{free_port()}", "--once"], tmp_path)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "connection refused" in r.stderr
    started = time.monotonic()
    r = once(["--prometheus", "http://127.0.0.1:1", "--demo", "--once"], tmp_path)
    assert r.returncode == 2 and "drop --demo" in r.stderr
    assert time.monotonic() - started < 30
