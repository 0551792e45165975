"""The fleet view against a REAL Prometheus on loopback scraping two sites' ``/metrics``.

Two small HTTP servers on 127.0.0.1 serve a hand-written exposition each (what a site's
``minertop daemon`` serves: see tui/metrics.py); Prometheus (the ``prometheus`` package:
``prometheus`` and ``promtool`` on PATH; the tests fail, not skip, without them) scrapes
them every second.  The scrape targets are plain URLs (:data:`TARGETS`), so two real daemons
can replace the servers.  Prometheus starts once per module and is killed at the end.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tui.fleet import FleetSnapshot, fleet_json, fleet_text
from tui.sources.base import SourceError
from tui.sources.prometheus import PrometheusSource

NOW = time.time()
ALPHA_CYCLE = round(NOW - 2, 3)
BRAVO_CYCLE = round(NOW - 30, 3)
ETA = float(int(NOW) + 8 * 86400)

# --------------------------------------------------------------------------- expositions

ALPHA = Template("""\
# HELP minertop_build_info minertop's version (value 1).
# TYPE minertop_build_info gauge
minertop_build_info{python="3.12.3",site="alpha",version="0.1.0"} 1.0
# HELP minertop_source_up 1 when the source's last poll succeeded.
# TYPE minertop_source_up gauge
minertop_source_up{site="alpha",source="chain"} 1.0
minertop_source_up{site="alpha",source="price"} 1.0
minertop_source_up{site="alpha",source="rigs"} 1.0
# HELP minertop_source_last_success_timestamp_seconds Unix time of the source's last good data.
# TYPE minertop_source_last_success_timestamp_seconds gauge
minertop_source_last_success_timestamp_seconds{site="alpha",source="chain"} $cycle
minertop_source_last_success_timestamp_seconds{site="alpha",source="price"} $cycle
minertop_source_last_success_timestamp_seconds{site="alpha",source="rigs"} $cycle
# HELP minertop_poll_duration_seconds How long the source's last poll took (rigs: the whole cycle).
# TYPE minertop_poll_duration_seconds gauge
minertop_poll_duration_seconds{site="alpha",source="chain"} 0.412
minertop_poll_duration_seconds{site="alpha",source="price"} 0.088
minertop_poll_duration_seconds{site="alpha",source="rigs"} 1.93
# HELP minertop_cycle_timestamp_seconds Unix time of the last completed poll cycle.
# TYPE minertop_cycle_timestamp_seconds gauge
minertop_cycle_timestamp_seconds{site="alpha"} $cycle
# HELP minertop_network_hashrate_hashes_per_second Network hashrate estimated over a window of blocks (1d = 144).
# TYPE minertop_network_hashrate_hashes_per_second gauge
minertop_network_hashrate_hashes_per_second{site="alpha",window="1d"} 8.123e+20
minertop_network_hashrate_hashes_per_second{site="alpha",window="3d"} 8.05e+20
minertop_network_hashrate_hashes_per_second{site="alpha",window="7d"} 7.98e+20
# HELP minertop_network_difficulty Difficulty of the tip.
# TYPE minertop_network_difficulty gauge
minertop_network_difficulty{site="alpha"} 1.1e+14
# HELP minertop_hashprice_usd_per_phs_day Expected revenue of 1 PH/s for one day, USD.
# TYPE minertop_hashprice_usd_per_phs_day gauge
minertop_hashprice_usd_per_phs_day{site="alpha"} 52.75
# HELP minertop_btc_price_usd BTC price, USD.
# TYPE minertop_btc_price_usd gauge
minertop_btc_price_usd{site="alpha"} 97500.0
# HELP minertop_retarget_blocks_remaining Blocks to the next retarget.
# TYPE minertop_retarget_blocks_remaining gauge
minertop_retarget_blocks_remaining{site="alpha"} 1234.0
# HELP minertop_retarget_projected_change_ratio Projected difficulty change at the next retarget (-0.14 = a 14% cut).
# TYPE minertop_retarget_projected_change_ratio gauge
minertop_retarget_projected_change_ratio{site="alpha"} -0.0139
# HELP minertop_retarget_eta_timestamp_seconds Estimated unix time of the next retarget.
# TYPE minertop_retarget_eta_timestamp_seconds gauge
minertop_retarget_eta_timestamp_seconds{site="alpha"} $eta
# HELP minertop_block_time_drift_ratio Mean block interval against 600 s, minus 1 (+0.16 = 16% slower).
# TYPE minertop_block_time_drift_ratio gauge
minertop_block_time_drift_ratio{site="alpha",window="epoch"} 0.0142
minertop_block_time_drift_ratio{site="alpha",window="6"} -0.2
minertop_block_time_drift_ratio{site="alpha",window="36"} 0.05
minertop_block_time_drift_ratio{site="alpha",window="144"} 0.021
# HELP minertop_rig_up 1 when the rig answers with data (ok, stale), else 0.
# TYPE minertop_rig_up gauge
minertop_rig_up{rig="a-01",site="alpha"} 1.0
minertop_rig_up{rig="a-02",site="alpha"} 1.0
minertop_rig_up{rig="a-03",site="alpha"} 1.0
minertop_rig_up{rig="a-04",site="alpha"} 0.0
# HELP minertop_rig_hashrate_hashes_per_second The rig's live hashrate.
# TYPE minertop_rig_hashrate_hashes_per_second gauge
minertop_rig_hashrate_hashes_per_second{rig="a-01",site="alpha"} 2e+14
minertop_rig_hashrate_hashes_per_second{rig="a-02",site="alpha"} 1.04e+14
minertop_rig_hashrate_hashes_per_second{rig="a-03",site="alpha"} 1.4e+14
# HELP minertop_rig_temperature_celsius The rig's hottest sensor.
# TYPE minertop_rig_temperature_celsius gauge
minertop_rig_temperature_celsius{rig="a-01",site="alpha"} 71.5
minertop_rig_temperature_celsius{rig="a-02",site="alpha"} 68.0
minertop_rig_temperature_celsius{rig="a-03",site="alpha"} 80.25
# HELP minertop_rig_revenue_usd_per_day Expected revenue after the pool fee, USD per day.
# TYPE minertop_rig_revenue_usd_per_day gauge
minertop_rig_revenue_usd_per_day{rig="a-01",site="alpha"} 10.4
minertop_rig_revenue_usd_per_day{rig="a-02",site="alpha"} 5.4
minertop_rig_revenue_usd_per_day{rig="a-03",site="alpha"} 7.28
# HELP minertop_rig_power_cost_usd_per_day Power and overhead cost, USD per day.
# TYPE minertop_rig_power_cost_usd_per_day gauge
minertop_rig_power_cost_usd_per_day{rig="a-01",site="alpha"} 4.2
minertop_rig_power_cost_usd_per_day{rig="a-02",site="alpha"} 3.68
minertop_rig_power_cost_usd_per_day{rig="a-03",site="alpha"} 3.61
# HELP minertop_rig_margin_usd_per_day Revenue minus cost, USD per day.
# TYPE minertop_rig_margin_usd_per_day gauge
minertop_rig_margin_usd_per_day{rig="a-01",site="alpha"} 6.2
minertop_rig_margin_usd_per_day{rig="a-02",site="alpha"} 1.72
minertop_rig_margin_usd_per_day{rig="a-03",site="alpha"} 3.67
# HELP minertop_rig_margin_after_retarget_usd_per_day The margin at the projected next difficulty, USD per day.
# TYPE minertop_rig_margin_after_retarget_usd_per_day gauge
minertop_rig_margin_after_retarget_usd_per_day{rig="a-01",site="alpha"} 5.5
minertop_rig_margin_after_retarget_usd_per_day{rig="a-02",site="alpha"} 1.35
minertop_rig_margin_after_retarget_usd_per_day{rig="a-03",site="alpha"} 3.17
# HELP minertop_rig_power_watts The rig's power draw: reported by it, or estimated from its model's nominal J/TH.
# TYPE minertop_rig_power_watts gauge
minertop_rig_power_watts{rig="a-01",site="alpha",source="reported"} 3500.0
minertop_rig_power_watts{rig="a-02",site="alpha",source="estimated"} 3068.0
minertop_rig_power_watts{rig="a-03",site="alpha",source="reported"} 3010.0
# HELP minertop_rig_info The rig's identity and status (value 1).
# TYPE minertop_rig_info gauge
minertop_rig_info{firmware="Braiins OS 24.09",host="10.1.0.11:4028",model="S21",rig="a-01",site="alpha",status="ok"} 1.0
minertop_rig_info{firmware="",host="10.1.0.12:4028",model="S19j Pro",rig="a-02",site="alpha",status="ok"} 1.0
minertop_rig_info{firmware="Antminer 2024",host="10.1.0.13:4028",model="S19 XP",rig="a-03",site="alpha",status="stale"} 1.0
minertop_rig_info{firmware="",host="10.1.0.14:4028",model="S19j Pro",rig="a-04",site="alpha",status="offline"} 1.0
# HELP minertop_site_rigs Rigs by status.
# TYPE minertop_site_rigs gauge
minertop_site_rigs{site="alpha",status="ok"} 2.0
minertop_site_rigs{site="alpha",status="stale"} 1.0
minertop_site_rigs{site="alpha",status="offline"} 1.0
minertop_site_rigs{site="alpha",status="error"} 0.0
# HELP minertop_site_hashrate_hashes_per_second Live hashrate of the site's rigs.
# TYPE minertop_site_hashrate_hashes_per_second gauge
minertop_site_hashrate_hashes_per_second{site="alpha"} 4.44e+14
# HELP minertop_site_power_watts Power of the site's rigs (reported or estimated).
# TYPE minertop_site_power_watts gauge
minertop_site_power_watts{site="alpha"} 9578.0
# HELP minertop_site_margin_usd_per_day The site's margin, USD per day.
# TYPE minertop_site_margin_usd_per_day gauge
minertop_site_margin_usd_per_day{site="alpha"} 11.59
# HELP minertop_site_margin_after_retarget_usd_per_day The site's margin at the projected next difficulty, USD per day.
# TYPE minertop_site_margin_after_retarget_usd_per_day gauge
minertop_site_margin_after_retarget_usd_per_day{site="alpha"} 10.02
# HELP minertop_site_production_cost_usd_per_btc Total cost per day over BTC earned per day: the cost of one BTC.
# TYPE minertop_site_production_cost_usd_per_btc gauge
minertop_site_production_cost_usd_per_btc{site="alpha"} 61234.56
""").substitute(cycle=repr(ALPHA_CYCLE), eta=repr(ETA))  # noqa: E501 - exposition lines

# bravo: an older cycle (the network block must come from alpha), a rig in error, no
# 36-block drift, and a price of its own.
BRAVO = Template("""\
# HELP minertop_build_info minertop's version (value 1).
# TYPE minertop_build_info gauge
minertop_build_info{python="3.11.2",site="bravo",version="0.1.0"} 1.0
# HELP minertop_source_up 1 when the source's last poll succeeded.
# TYPE minertop_source_up gauge
minertop_source_up{site="bravo",source="chain"} 1.0
minertop_source_up{site="bravo",source="price"} 0.0
minertop_source_up{site="bravo",source="rigs"} 1.0
# HELP minertop_source_last_success_timestamp_seconds Unix time of the source's last good data.
# TYPE minertop_source_last_success_timestamp_seconds gauge
minertop_source_last_success_timestamp_seconds{site="bravo",source="chain"} $cycle
minertop_source_last_success_timestamp_seconds{site="bravo",source="rigs"} $cycle
# HELP minertop_poll_duration_seconds How long the source's last poll took (rigs: the whole cycle).
# TYPE minertop_poll_duration_seconds gauge
minertop_poll_duration_seconds{site="bravo",source="chain"} 0.301
minertop_poll_duration_seconds{site="bravo",source="rigs"} 0.72
# HELP minertop_cycle_timestamp_seconds Unix time of the last completed poll cycle.
# TYPE minertop_cycle_timestamp_seconds gauge
minertop_cycle_timestamp_seconds{site="bravo"} $cycle
# HELP minertop_network_hashrate_hashes_per_second Network hashrate estimated over a window of blocks (1d = 144).
# TYPE minertop_network_hashrate_hashes_per_second gauge
minertop_network_hashrate_hashes_per_second{site="bravo",window="1d"} 8.1e+20
minertop_network_hashrate_hashes_per_second{site="bravo",window="3d"} 8.04e+20
minertop_network_hashrate_hashes_per_second{site="bravo",window="7d"} 7.97e+20
# HELP minertop_network_difficulty Difficulty of the tip.
# TYPE minertop_network_difficulty gauge
minertop_network_difficulty{site="bravo"} 1.1e+14
# HELP minertop_hashprice_usd_per_phs_day Expected revenue of 1 PH/s for one day, USD.
# TYPE minertop_hashprice_usd_per_phs_day gauge
minertop_hashprice_usd_per_phs_day{site="bravo"} 52.7
# HELP minertop_btc_price_usd BTC price, USD.
# TYPE minertop_btc_price_usd gauge
minertop_btc_price_usd{site="bravo"} 97400.0
# HELP minertop_retarget_blocks_remaining Blocks to the next retarget.
# TYPE minertop_retarget_blocks_remaining gauge
minertop_retarget_blocks_remaining{site="bravo"} 1237.0
# HELP minertop_retarget_projected_change_ratio Projected difficulty change at the next retarget (-0.14 = a 14% cut).
# TYPE minertop_retarget_projected_change_ratio gauge
minertop_retarget_projected_change_ratio{site="bravo"} -0.0141
# HELP minertop_retarget_eta_timestamp_seconds Estimated unix time of the next retarget.
# TYPE minertop_retarget_eta_timestamp_seconds gauge
minertop_retarget_eta_timestamp_seconds{site="bravo"} $eta
# HELP minertop_block_time_drift_ratio Mean block interval against 600 s, minus 1 (+0.16 = 16% slower).
# TYPE minertop_block_time_drift_ratio gauge
minertop_block_time_drift_ratio{site="bravo",window="epoch"} 0.0145
minertop_block_time_drift_ratio{site="bravo",window="6"} -0.18
minertop_block_time_drift_ratio{site="bravo",window="144"} 0.02
# HELP minertop_rig_up 1 when the rig answers with data (ok, stale), else 0.
# TYPE minertop_rig_up gauge
minertop_rig_up{rig="b-01",site="bravo"} 1.0
minertop_rig_up{rig="b-02",site="bravo"} 0.0
# HELP minertop_rig_hashrate_hashes_per_second The rig's live hashrate.
# TYPE minertop_rig_hashrate_hashes_per_second gauge
minertop_rig_hashrate_hashes_per_second{rig="b-01",site="bravo"} 2.7e+14
# HELP minertop_rig_temperature_celsius The rig's hottest sensor.
# TYPE minertop_rig_temperature_celsius gauge
minertop_rig_temperature_celsius{rig="b-01",site="bravo"} 65.0
# HELP minertop_rig_revenue_usd_per_day Expected revenue after the pool fee, USD per day.
# TYPE minertop_rig_revenue_usd_per_day gauge
minertop_rig_revenue_usd_per_day{rig="b-01",site="bravo"} 14.04
# HELP minertop_rig_power_cost_usd_per_day Power and overhead cost, USD per day.
# TYPE minertop_rig_power_cost_usd_per_day gauge
minertop_rig_power_cost_usd_per_day{rig="b-01",site="bravo"} 4.37
# HELP minertop_rig_margin_usd_per_day Revenue minus cost, USD per day.
# TYPE minertop_rig_margin_usd_per_day gauge
minertop_rig_margin_usd_per_day{rig="b-01",site="bravo"} 9.67
# HELP minertop_rig_margin_after_retarget_usd_per_day The margin at the projected next difficulty, USD per day.
# TYPE minertop_rig_margin_after_retarget_usd_per_day gauge
minertop_rig_margin_after_retarget_usd_per_day{rig="b-01",site="bravo"} 9.0
# HELP minertop_rig_power_watts The rig's power draw: reported by it, or estimated from its model's nominal J/TH.
# TYPE minertop_rig_power_watts gauge
minertop_rig_power_watts{rig="b-01",site="bravo",source="reported"} 3645.0
# HELP minertop_rig_info The rig's identity and status (value 1).
# TYPE minertop_rig_info gauge
minertop_rig_info{firmware="",host="10.2.0.21:80",model="S21 XP",rig="b-01",site="bravo",status="ok"} 1.0
minertop_rig_info{firmware="",host="10.2.0.22:4028",model="S19",rig="b-02",site="bravo",status="error"} 1.0
# HELP minertop_site_rigs Rigs by status.
# TYPE minertop_site_rigs gauge
minertop_site_rigs{site="bravo",status="ok"} 1.0
minertop_site_rigs{site="bravo",status="stale"} 0.0
minertop_site_rigs{site="bravo",status="offline"} 0.0
minertop_site_rigs{site="bravo",status="error"} 1.0
# HELP minertop_site_hashrate_hashes_per_second Live hashrate of the site's rigs.
# TYPE minertop_site_hashrate_hashes_per_second gauge
minertop_site_hashrate_hashes_per_second{site="bravo"} 2.7e+14
# HELP minertop_site_power_watts Power of the site's rigs (reported or estimated).
# TYPE minertop_site_power_watts gauge
minertop_site_power_watts{site="bravo"} 3645.0
# HELP minertop_site_margin_usd_per_day The site's margin, USD per day.
# TYPE minertop_site_margin_usd_per_day gauge
minertop_site_margin_usd_per_day{site="bravo"} 9.67
# HELP minertop_site_margin_after_retarget_usd_per_day The site's margin at the projected next difficulty, USD per day.
# TYPE minertop_site_margin_after_retarget_usd_per_day gauge
minertop_site_margin_after_retarget_usd_per_day{site="bravo"} 9.0
# HELP minertop_site_production_cost_usd_per_btc Total cost per day over BTC earned per day: the cost of one BTC.
# TYPE minertop_site_production_cost_usd_per_btc gauge
minertop_site_production_cost_usd_per_btc{site="bravo"} 44100.0
""").substitute(cycle=repr(BRAVO_CYCLE), eta=repr(ETA + 1800))  # noqa: E501


# --------------------------------------------------------------------------- plumbing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MetricsServer:
    """A stand-in for one site's daemon: ``GET /metrics`` on 127.0.0.1; stop/start at will."""

    def __init__(self, body: str) -> None:
        self.body = body.encode()
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> None:
        body = self.body

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def prometheus_yml(target_urls: list[str], job: str = "minertop") -> str:
    """A scrape config for ``target_urls`` (same scheme and path), every second."""
    parts = [urlsplit(u) for u in target_urls]
    assert len({(p.scheme, p.path) for p in parts}) == 1, "one scheme and path per job"
    targets = ", ".join(json.dumps(p.netloc) for p in parts)
    return (
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {job}\n"
        "    honor_labels: true\n"
        f"    scheme: {parts[0].scheme}\n"
        f"    metrics_path: {parts[0].path or '/metrics'}\n"
        "    static_configs:\n"
        f"      - targets: [{targets}]\n"
    )


def wait_for(what: str, check: Callable[[], bool], timeout: float = 15.0,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log else ""
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{tail}")


@dataclass
class Stack:
    url: str  #: Prometheus
    sites: dict[str, MetricsServer]
    never_up: str  #: a target of the job where nothing listens
    log: Path
    instance: dict[str, str] = field(default_factory=dict)  #: site → host:port

    def up(self) -> dict[str, float]:
        r = httpx.get(self.url + "/api/v1/query", params={"query": "up"}, timeout=5)
        return {s["metric"]["instance"]: float(s["value"][1]) for s in r.json()["data"]["result"]}

    def wait_up(self, site: str, value: float) -> None:
        wait_for(f"up{{instance={self.instance[site]!r}}} == {value:g}",
                 lambda: self.up().get(self.instance[site]) == value, log=self.log)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    exe = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    missing = [n for n, path in exe.items() if path is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found on PATH: these tests need a real "
                    "Prometheus (Debian/Ubuntu: apt-get install prometheus)", pytrace=False)
    sites = {"alpha": MetricsServer(ALPHA), "bravo": MetricsServer(BRAVO)}
    never_up = f"http://127.0.0.1:{free_port()}/metrics"
    for s in sites.values():
        s.start()
    #: Just URLs: real daemons' http://HOST:PORT/metrics can stand in for the servers.
    targets = [s.url for s in sites.values()] + [never_up]
    home = tmp_path_factory.mktemp("prometheus")
    config = home / "prometheus.yml"
    config.write_text(prometheus_yml(targets))
    check = subprocess.run([str(exe["promtool"]), "check", "config", str(config)],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"promtool check config:\n{check.stdout}{check.stderr}"
    port = free_port()
    log = home / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe["prometheus"]), f"--config.file={config}",
             f"--storage.tsdb.path={home / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    stack = Stack(f"http://127.0.0.1:{port}", sites, urlsplit(never_up).netloc, log,
                  {name: f"127.0.0.1:{s.port}" for name, s in sites.items()})
    try:
        wait_for("Prometheus /-/ready", lambda: proc.poll() is None and httpx.get(
            stack.url + "/-/ready", timeout=2).status_code == 200, log=log)
        for name in sites:
            stack.wait_up(name, 1.0)
        # the dead target is scraped at its own offset: wait for its first failed scrape too
        wait_for(f"up{{instance={stack.never_up!r}}} == 0",
                 lambda: stack.up().get(stack.never_up) == 0.0, log=log)
        yield stack
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for s in sites.values():
            s.stop()


@pytest.fixture
def stack(prom: Stack) -> Stack:
    """The module's Prometheus with both sites up (a test may have stopped one)."""
    for name in prom.sites:
        prom.wait_up(name, 1.0)
    return prom


def one_line(msg: str) -> bool:
    return "\n" not in msg and len(msg) <= 300


# --------------------------------------------------------------------------- the fleet


async def test_fetch_has_the_numbers_of_the_expositions(stack: Stack) -> None:
    src = PrometheusSource(stack.url, timeout=httpx.Timeout(2.5, connect=1.0))  # timeout=2.5
    try:
        t0 = time.time()
        snap = await src.fetch()
    finally:
        await src.aclose()
    assert isinstance(snap, FleetSnapshot)
    assert snap.source == f"prometheus {urlsplit(stack.url).netloc}"
    assert t0 <= snap.fetched_at <= time.time()
    # Without job=, only targets that exported minertop series: not the one never up.
    assert [s.site for s in snap.sites] == ["alpha", "bravo"]
    a, b = snap.sites
    assert (a.rigs_up, a.rigs_total) == (3, 4)  # ok + stale of ok, ok, stale, offline
    assert a.hashrate_ths == pytest.approx(444.0)  # 4.44e14 H/s
    assert a.power_w == 9578.0
    assert a.margin_usd_day == pytest.approx(11.59)
    assert a.margin_after_retarget_usd_day == pytest.approx(10.02)
    assert a.production_cost_usd_per_btc == pytest.approx(61234.56)
    assert a.btc_price_usd == 97500.0
    assert a.cycle_unix == pytest.approx(ALPHA_CYCLE)
    assert a.instance == stack.instance["alpha"]
    assert (b.rigs_up, b.rigs_total) == (1, 2)
    assert b.hashrate_ths == pytest.approx(270.0)
    assert (b.power_w, b.margin_usd_day, b.margin_after_retarget_usd_day) == (3645.0, 9.67, 9.0)
    assert b.production_cost_usd_per_btc == 44100.0
    assert b.btc_price_usd == 97400.0
    for s in snap.sites:
        assert s.daemon_up
        assert s.scrape_age_s is not None and 0.0 <= s.scrape_age_s < 3.0  # scraped every 1 s

    net = snap.network
    assert net is not None
    assert net.site == "alpha"  # the freshest cycle
    assert dict(net.hashrate_hs) == {"1d": 8.123e20, "3d": 8.05e20, "7d": 7.98e20}
    assert net.difficulty == 1.1e14
    assert net.hashprice_usd_per_phs_day == 52.75
    assert net.btc_price_usd == 97500.0
    assert net.retarget_blocks_remaining == 1234
    assert net.retarget_change_pct == pytest.approx(-1.39)
    assert net.retarget_eta_unix == ETA
    assert dict(net.drift_pct) == pytest.approx({"epoch": 1.42, "6": -20.0, "36": 5.0,
                                                  "144": 2.1})
    with pytest.raises(AttributeError):
        a.rigs_up = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        net.hashrate_hs["1d"] = 0.0  # type: ignore[index]


async def test_fleet_json_and_text(stack: Stack) -> None:
    src = PrometheusSource(stack.url + "/")
    try:
        snap = await src.fetch()
    finally:
        await src.aclose()
    doc = fleet_json(snap)
    json.dumps(doc, allow_nan=False)
    assert list(doc) == ["schema_version", "minertop_version", "source", "time_unix",
                         "network", "sites"]
    assert doc["schema_version"] == 1
    assert doc["source"] == f"prometheus {urlsplit(stack.url).netloc}"
    assert doc["time_unix"] == int(snap.fetched_at)
    assert [s["site"] for s in doc["sites"]] == ["alpha", "bravo"]
    keys = ["site", "rigs_up", "rigs_total", "hashrate_ths", "power_w", "margin_usd_day",
            "margin_after_retarget_usd_day", "production_cost_usd_per_btc", "scrape_age_s",
            "daemon_up"]
    assert all(list(s) == keys for s in doc["sites"])
    alpha = {k: v for k, v in doc["sites"][0].items() if k != "scrape_age_s"}
    assert alpha == {"site": "alpha", "rigs_up": 3, "rigs_total": 4, "hashrate_ths": 444.0,
                     "power_w": 9578.0, "margin_usd_day": 11.59,
                     "margin_after_retarget_usd_day": 10.02,
                     "production_cost_usd_per_btc": 61235.0, "daemon_up": True}
    assert doc["network"] == {
        "site": "alpha",
        "hashrate_ehs": {"1d": 812.3, "3d": 805.0, "7d": 798.0},
        "difficulty": 1.1e14,
        "price_usd": 97500.0,
        "hashprice_usd_per_ph_day": 52.75,
        "retarget": {"remaining_blocks": 1234, "change_pct": -1.39, "eta_unix": int(ETA)},
        "drift": {"epoch_drift_pct": 1.42, "last_6_drift_pct": -20.0, "last_36_drift_pct": 5.0,
                  "last_144_drift_pct": 2.1},
    }
    text = fleet_text(snap)
    lines = text.splitlines()
    assert lines[0].startswith("Fleet · prometheus 127.0.0.1:")
    assert "2 sites · 4/6 rigs up · 0.71 PH/s · 13.2 kW · margin +$21/day" in lines[0]
    assert lines[1].startswith("Network (from alpha): 812.3 EH/s (1d)")
    assert [ln.split()[0] for ln in lines[3:]] == ["alpha", "bravo"]
    assert "3/4" in lines[3] and "$61,235" in lines[3]


async def test_fetch_site_rigs_joins_the_info(stack: Stack) -> None:
    src = PrometheusSource(stack.url)
    try:
        alpha = await src.fetch_site_rigs("alpha")
        bravo = await src.fetch_site_rigs("bravo")
    finally:
        await src.aclose()
    assert [r.rig for r in alpha] == ["a-01", "a-02", "a-03", "a-04"]
    a1, a2, a3, a4 = alpha
    assert (a1.site, a1.up, a1.status, a1.host, a1.model, a1.firmware) == (
        "alpha", True, "ok", "10.1.0.11:4028", "S21", "Braiins OS 24.09")
    assert a1.hashrate_ths == pytest.approx(200.0)
    assert (a1.power_w, a1.power_estimated, a1.temp_c) == (3500.0, False, 71.5)
    assert (a1.revenue_usd_day, a1.cost_usd_day, a1.margin_usd_day,
            a1.margin_after_retarget_usd_day) == (10.4, 4.2, 6.2, 5.5)
    assert (a2.model, a2.power_w, a2.power_estimated) == ("S19j Pro", 3068.0, True)
    assert (a3.status, a3.up, a3.temp_c) == ("stale", True, 80.25)
    assert (a4.status, a4.up, a4.hashrate_ths, a4.power_w, a4.margin_usd_day) == (
        "offline", False, None, None, None)
    assert [(r.rig, r.status, r.up) for r in bravo] == [("b-01", "ok", True),
                                                         ("b-02", "error", False)]
    assert bravo[0].hashrate_ths == pytest.approx(270.0) and bravo[0].host == "10.2.0.21:80"


async def test_job_filter_lists_a_target_never_up(stack: Stack) -> None:
    src = PrometheusSource(stack.url, job="minertop")
    other = PrometheusSource(stack.url, job="not-minertop")
    try:
        snap = await src.fetch()
        empty = await other.fetch()
        with pytest.raises(SourceError) as e:
            await other.fetch_site_rigs("alpha")
    finally:
        await src.aclose()
        await other.aclose()
    by_name = {s.site: s for s in snap.sites}
    assert set(by_name) == {"alpha", "bravo", stack.never_up}
    ghost = by_name[stack.never_up]
    assert not ghost.daemon_up and ghost.scrape_age_s is None
    assert (ghost.rigs_total, ghost.hashrate_ths, ghost.margin_usd_day) == (0, None, None)
    assert by_name["alpha"].rigs_total == 4 and by_name["alpha"].daemon_up
    assert empty.sites == () and empty.network is None
    assert fleet_json(empty)["sites"] == [] and fleet_json(empty)["network"] is None
    assert "no site 'alpha'" in str(e.value) and one_line(str(e.value))


async def test_unknown_site(stack: Stack) -> None:
    src = PrometheusSource(stack.url)
    try:
        with pytest.raises(SourceError) as e:
            await src.fetch_site_rigs('no"such\nsite')
    finally:
        await src.aclose()
    msg = str(e.value)
    assert msg.startswith(f"prometheus {stack.url}: no site") and one_line(msg)


async def test_a_target_that_stops(stack: Stack) -> None:
    """Its daemon is down, its last numbers stay, and the age of its last scrape grows."""
    bravo = stack.sites["bravo"]
    src = PrometheusSource(stack.url)
    bravo.stop()
    try:
        stack.wait_up("bravo", 0.0)
        first = await src.fetch()
        b = first.site("bravo")
        assert b is not None and not b.daemon_up
        assert (b.rigs_up, b.rigs_total, b.power_w, b.margin_usd_day) == (1, 2, 3645.0, 9.67)
        assert b.hashrate_ths == pytest.approx(270.0)
        a = first.site("alpha")
        assert a is not None and a.daemon_up and a.scrape_age_s is not None
        assert first.network is not None and first.network.site == "alpha"
        assert b.scrape_age_s is not None and b.scrape_age_s > a.scrape_age_s
        rigs = await src.fetch_site_rigs("bravo")  # as of its last scrape
        assert [r.rig for r in rigs] == ["b-01", "b-02"]
        await asyncio.sleep(1.5)
        second = await src.fetch()
        b2 = second.site("bravo")
        assert b2 is not None and not b2.daemon_up and b2.scrape_age_s is not None
        assert b2.scrape_age_s - b.scrape_age_s == pytest.approx(1.5, abs=0.5)
        assert "✗ DOWN" in fleet_text(second).splitlines()[-1]
    finally:
        await src.aclose()
        bravo.start()
    stack.wait_up("bravo", 1.0)


# --------------------------------------------------------------------------- failures


async def test_prometheus_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    src = PrometheusSource(url)
    try:
        with pytest.raises(SourceError) as e:
            await src.fetch()
        with pytest.raises(SourceError) as e2:
            await src.fetch_site_rigs("alpha")
    finally:
        await src.aclose()
    assert str(e.value) == f"prometheus {url}: connection refused"
    assert str(e2.value) == str(e.value)


async def test_prometheus_timeout() -> None:
    with socket.socket() as sock:  # accepts connections (backlog), never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        src = PrometheusSource(url, timeout=httpx.Timeout(0.3, connect=1.0))
        try:
            with pytest.raises(SourceError) as e:
                await src.fetch()
        finally:
            await src.aclose()
    assert str(e.value) == f"prometheus {url}: timed out after 0.3 s"


@pytest.mark.parametrize(("expr", "expected"), [
    ("sum(", "failed: bad_data: "),  # HTTP 400
    ("minertop_site_rigs * on (site) minertop_site_rigs", "failed: execution: "),  # 422
    ("time()", "unexpected reply on /api/v1/query (query 'x'): expected a vector result, "
               "got 'scalar'"),
    ("up[1m]", "expected a vector result, got 'matrix'"),
])
async def test_prometheus_errors(stack: Stack, expr: str, expected: str) -> None:
    src = PrometheusSource(stack.url)
    try:
        with pytest.raises(SourceError) as e:
            await src.query(expr, name="x")
    finally:
        await src.aclose()
    msg = str(e.value)
    assert msg.startswith(f"prometheus {stack.url}: ") and expected in msg and one_line(msg)


async def test_not_prometheus(stack: Stack) -> None:
    """A daemon's address instead of Prometheus's: an HTTP error naming the query."""
    url = f"http://{stack.instance['alpha']}"
    src = PrometheusSource(url)
    try:
        with pytest.raises(SourceError) as e:
            await src.fetch()
    finally:
        await src.aclose()
    assert str(e.value).startswith(f"prometheus {url}: HTTP 404 on /api/v1/query (query '")


# What no healthy Prometheus answers (a broken proxy, a different server): the reply
# mapping, through httpx.MockTransport.  The Prometheus behaviour is tested above.
@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, b"<html>hi</html>", "malformed JSON on /api/v1/query (query 'x') (Expecting value"),
    (200, b"", "malformed JSON on /api/v1/query (query 'x') (empty reply)"),
    (200, b'{"status":"error","errorType":"timeout","error":"query timed out"}',
     "query 'x' failed: timeout: query timed out"),
    (200, b'{"status":"success"}', "unexpected reply on /api/v1/query (query 'x'): "
                                   "missing 'data'"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":{}}}',
     "expected 'result' to be a list, got an object"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
          b'"value":[1]}]}}', "'value' has 1 elements, not [time, value]"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},'
          b'"value":[1,"x1"]}]}}', "sample value 'x1' is not a number"),
    (200, b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":1},'
          b'"value":[1,"1"]}]}}', "'a' is not a string (a number)"),
    (503, b"<html>Service Unavailable</html>", "HTTP 503 on /api/v1/query (query 'x')"),
    (401, b"nope", "unauthorized (HTTP 401 on /api/v1/query): check the token"),
])
async def test_reply_mapping(status: int, body: bytes, expected: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    src = PrometheusSource("http://prom.example:9090", token="s3cret-token", client=client)
    try:
        with pytest.raises(SourceError) as e:
            await src.query("up", name="x")
    finally:
        await src.aclose()
        await client.aclose()
    msg = str(e.value)
    assert msg.startswith("prometheus http://prom.example:9090: ") and expected in msg
    assert one_line(msg) and "s3cret" not in msg
    assert seen[0].headers["Authorization"] == "Bearer s3cret-token"
    assert seen[0].url.params["query"] == "up" and seen[0].url.params["timeout"] == "10"


async def test_nan_and_inf_are_unknown() -> None:
    doc = (b'{"status":"success","data":{"resultType":"vector","result":['
           b'{"metric":{"__name__":"minertop_site_power_watts","site":"s","job":"j",'
           b'"instance":"i"},"value":[1769000000.5,"NaN"]},'
           b'{"metric":{"__name__":"minertop_site_margin_usd_per_day","site":"s","job":"j",'
           b'"instance":"i"},"value":[1769000000.5,"-Inf"]}]}}')
    client = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda r: httpx.Response(200, content=doc)))
    src = PrometheusSource("http://prom.example:9090", client=client)
    try:
        samples = await src.query("x")
    finally:
        await client.aclose()
    assert [(s.name, s.value, s.time) for s in samples] == [
        ("minertop_site_power_watts", None, 1769000000.5),
        ("minertop_site_margin_usd_per_day", None, 1769000000.5)]
