"""The power price feed against real loopback HTTP servers (the simulator's and hand-made)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from tests.servers import serve
from tui.sim import SimChain, start_sim
from tui.sim.http import HttpServer, Request, Response
from tui.sim.power import POWER_PATH, SIM_POWER_TZ, PowerApi, price_usd_mwh
from tui.sources.base import RateLimited, SourceError
from tui.sources.poll import Backoff
from tui.sources.power_feed import PowerFeedSource, display_url, read_path, to_usd_kwh
from tui.tariff import (
    PowerFeedConfig,
    PowerPriceSnapshot,
    PriceNow,
    Tariff,
    TariffPeriod,
    feed_is_fresh,
    load_zone,
    parse_path,
    tariff_now,
)

__all__ = ["serve"]  # the loopback HTTP fixture, from tests/servers.py

T0 = 1_769_900_000.0  # 2026-01-31 22:53:20 UTC: Saturday 16:53 in Chicago


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def feed(
    url: str, path: str = "data.0.price", unit: str = "usd_mwh", **kw: object
) -> PowerFeedConfig:
    return PowerFeedConfig(url, parse_path(path), unit, **kw)  # type: ignore[arg-type]


def price_doc(value: object) -> Response:
    return Response.json({"data": [{"price": value, "unit": "USD/MWh", "time": int(T0)}]})


async def fetch(cfg: PowerFeedConfig, **kw: object) -> PowerPriceSnapshot:
    src = PowerFeedSource(cfg, clock=Clock(), **kw)  # type: ignore[arg-type]
    try:
        return await src.fetch()
    finally:
        await src.aclose()


async def failure(cfg: PowerFeedConfig, **kw: object) -> SourceError:
    with pytest.raises(SourceError) as ei:
        await fetch(cfg, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and "Traceback" not in msg
    return ei.value


# --------------------------------------------------------------------------- good replies


async def test_mwh_is_converted_to_kwh(serve) -> None:  # type: ignore[no-untyped-def]
    url = await serve(lambda r: price_doc(42.1)) + "/prices"
    snap = await fetch(feed(url))
    assert snap.usd_kwh == pytest.approx(0.0421, abs=1e-12)
    assert snap.value == pytest.approx(42.1) and snap.unit == "usd_mwh"
    assert snap.fetched_at == T0
    assert snap.source == f"power feed {url.split('//')[1].split('/')[0]}"


async def test_kwh_feed_and_number_strings(serve) -> None:  # type: ignore[no-untyped-def]
    url = await serve(lambda r: Response.json({"now": {"usd_kwh": " 0.0421 "}, "list": [1, 2, 3]}))
    snap = await fetch(feed(url, "now.usd_kwh", "usd_kwh"))
    assert snap.usd_kwh == pytest.approx(0.0421)
    last = await fetch(feed(url, "list.-1", "usd_mwh"))  # -1: the last item
    assert last.usd_kwh == pytest.approx(0.003)


async def test_zero_is_a_price(serve) -> None:  # type: ignore[no-untyped-def]
    url = await serve(lambda r: price_doc(0))
    assert (await fetch(feed(url))).usd_kwh == 0.0


async def test_a_negative_price_is_used(serve) -> None:  # type: ignore[no-untyped-def]
    """Real-time markets go below zero (the site is paid to draw power): the price is
    used as it is, and wins over the tariff while fresh."""
    from tui.tariff import tariff_now

    url = await serve(lambda r: price_doc(-12.5))
    snap = await fetch(feed(url))
    assert snap.usd_kwh == pytest.approx(-0.0125)
    now = tariff_now(0.06, snap.usd_kwh, True, 0.0)
    assert (now.usd_kwh, now.source) == (pytest.approx(-0.0125), "feed")


# --------------------------------------------------------------------------- bad replies


@pytest.mark.parametrize(
    ("doc", "path", "unit", "why"),
    [
        ({"data": [{"price": "n/a"}]}, "data.0.price", "usd_mwh",
         'data.0.price is "n/a", expected a number'),
        ({"data": [{"price": None}]}, "data.0.price", "usd_mwh",
         "data.0.price is null, expected a number"),
        ({"data": [{"price": True}]}, "data.0.price", "usd_mwh",
         "data.0.price is true, expected a number"),
        ({"data": [{"price": {"v": 1}}]}, "data.0.price", "usd_mwh",
         "data.0.price is an object, expected a number"),
        ({"data": [{"cost": 1, "time": 2}]}, "data.0.price", "usd_mwh",
         'data.0.price not found: the object at data.0 has no key "price" (it has "cost", '
         '"time")'),
        ({"data": []}, "data.0.price", "usd_mwh",
         "data.0.price not found: the list at data has 0 items"),
        ({"data": {"price": 1}}, "data.0.price", "usd_mwh",
         'data.0.price not found: the object at data has no key "0" (it has "price")'),
        ({"data": [1]}, "data.first.price", "usd_mwh",
         "data.first.price not found: data is a list, so 'first' must be an index like 0 (or "
         "-1 for the last item)"),
        ({"data": 5}, "data.0.price", "usd_mwh",
         "data.0.price not found: data is a number (5), not an object or a list"),
        ([1, 2], "data.0.price", "usd_mwh",
         "data.0.price not found: the top of the reply is a list, so 'data' must be an index "
         "like 0 (or -1 for the last item)"),
        ({"data": [{"price": -12500}]}, "data.0.price", "usd_mwh",
         "data.0.price is -12500 $/MWh (-12.5 $/kWh), under the −10 $/kWh limit"),
        ({"data": [{"price": 20000}]}, "data.0.price", "usd_mwh",
         "data.0.price is 20000 $/MWh (20 $/kWh), over the 10 $/kWh limit"),
        ({"data": [{"price": 42.1}]}, "data.0.price", "usd_kwh",
         'data.0.price is 42.1 $/kWh, over the 10 $/kWh limit; is the feed in $/MWh? (then '
         'set unit = "usd_mwh")'),
    ],
)
async def test_bad_values_name_the_path(  # type: ignore[no-untyped-def]
    serve, doc: object, path: str, unit: str, why: str
) -> None:
    base = await serve(lambda r: Response.json(doc))
    e = await failure(feed(base + "/prices", path, unit))
    assert str(e) == f"power feed {base}/prices: {why}"
    assert not isinstance(e, RateLimited)


async def test_http_500(serve) -> None:  # type: ignore[no-untyped-def]
    base = await serve(lambda r: Response.text("upstream down", 500))
    e = await failure(feed(base + "/prices"))
    assert str(e) == f"power feed {base}/prices: HTTP 500 on /prices: upstream down"


async def test_429_with_retry_after_is_rate_limited(serve) -> None:  # type: ignore[no-untyped-def]
    def limited(r: Request) -> Response:
        resp = Response.text("slow down", 429)
        resp.headers["Retry-After"] = "120"
        return resp

    base = await serve(limited)
    e = await failure(feed(base + "/prices"))
    assert isinstance(e, RateLimited) and e.retry_after == 120.0
    assert str(e) == f"power feed {base}/prices: rate limited (HTTP 429 on /prices), retry " \
                     "after 120 s"
    # the shared backoff waits at least that long
    assert Backoff(300, rng=random.Random(1)).failure(e) >= 120.0


async def test_malformed_json(serve) -> None:  # type: ignore[no-untyped-def]
    base = await serve(lambda r: Response(200, b"<html>oops", "text/html"))
    e = await failure(feed(base + "/p"))
    assert str(e).startswith(f"power feed {base}/p: malformed JSON on /p (")


async def test_huge_body_with_a_length_is_refused(serve) -> None:  # type: ignore[no-untyped-def]
    big = json.dumps({"data": [{"price": 1.0, "pad": "x" * (2 << 20)}]}).encode()
    base = await serve(lambda r: Response(200, big, "application/json"))
    e = await failure(feed(base + "/p"))
    assert str(e) == (f"power feed {base}/p: reply too large ({len(big):,} bytes): more than "
                      "1,048,576 bytes on /p")


async def test_huge_body_without_a_length_is_cut_off() -> None:
    """A server that streams until it closes (no Content-Length) is stopped at the cap."""
    sent = 0

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\n\r\n" + b'{"pad": "')
        try:
            for _ in range(400):  # up to 4 MB
                writer.write(b"x" * 10_000)
                sent += 10_000
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        e = await failure(feed(f"http://127.0.0.1:{port}/p", "pad"), max_bytes=100_000)
    finally:
        server.close()
        await server.wait_closed()
    assert str(e) == f"power feed http://127.0.0.1:{port}/p: reply too large: more than " \
                     "100,000 bytes on /p"


async def test_redirects_only_within_the_same_host(serve) -> None:  # type: ignore[no-untyped-def]
    def handler(r: Request) -> Response:
        if r.path == "/old":
            return Response(301, b"", None, {"Location": "/new"})
        if r.path == "/away":
            return Response(302, b"", None, {"Location": "http://127.0.0.2:9/x?key=SECRET"})
        if r.path == "/loop":
            return Response(302, b"", None, {"Location": "/loop"})
        return price_doc(50)

    base = await serve(handler)
    assert (await fetch(feed(base + "/old"))).usd_kwh == pytest.approx(0.05)
    e = await failure(feed(base + "/away"))
    assert str(e) == (f"power feed {base}/away: HTTP 302 redirect to another host or scheme "
                      "(http://127.0.0.2:9): not followed; put the final URL in the config")
    e = await failure(feed(base + "/loop"))
    assert str(e) == f"power feed {base}/loop: more than 3 redirects"


async def test_the_query_string_and_token_are_never_shown(serve) -> None:  # type: ignore[no-untyped-def]
    seen: list[Request] = []

    def handler(r: Request) -> Response:
        seen.append(r)
        return Response.text("nope", 503)

    base = await serve(handler)
    cfg = feed(base + "/p?api_key=SECRET", token_env="POWER_TOKEN")
    e = await failure(cfg, environ={"POWER_TOKEN": "TOKEN123"})
    assert str(e) == f"power feed {base}/p?…: HTTP 503 on /p: nope"
    assert seen[0].query == {"api_key": "SECRET"}
    assert seen[0].headers["authorization"] == "Bearer TOKEN123"
    assert seen[0].headers["accept"] == "application/json"
    e = await failure(cfg, environ={})
    assert str(e) == f"power feed {base}/p?…: environment variable POWER_TOKEN (token_env) " \
                     "is not set"
    assert display_url("https://u:pw@h.example:8443/a/?k=1") == "https://h.example:8443/a?…"


async def test_connection_refused_and_deadline(serve) -> None:  # type: ignore[no-untyped-def]
    s = HttpServer(lambda r: price_doc(1))
    await s.start()
    url = s.url + "/p"
    await s.stop()
    e = await failure(feed(url))
    assert str(e) == f"power feed {url}: connection refused"

    slow = HttpServer(lambda r: price_doc(1))
    slow.faults.set("slow", delay=5.0)
    await slow.start()
    try:
        e = await failure(feed(slow.url + "/p"), deadline_s=0.3)
    finally:
        await slow.stop()
    assert str(e) == f"power feed {slow.url}/p: no complete reply within 0.3 s"


async def test_a_shared_client_is_not_closed(serve) -> None:  # type: ignore[no-untyped-def]
    base = await serve(lambda r: price_doc(30))
    async with httpx.AsyncClient() as client:
        src = PowerFeedSource(feed(base + "/p"), client=client, clock=Clock())
        assert (await src.fetch()).usd_kwh == pytest.approx(0.03)
        await src.aclose()
        assert not client.is_closed


def test_read_path_and_to_usd_kwh_directly() -> None:
    doc = {"a": [{"b": 1}, {"b": 2}]}
    assert read_path(doc, ("a", "1", "b")) == 2
    assert to_usd_kwh(42.1, "x", "usd_mwh") == pytest.approx(0.0421)
    assert to_usd_kwh(10, "x", "usd_kwh") == 10.0


# --------------------------------------------------------------------------- the simulator


async def test_sim_serves_a_power_price_read_by_the_source() -> None:
    clock = Clock()
    chain = SimChain("steady", seed=5, clock=clock)
    sim = await start_sim(chain=chain)
    try:
        assert sim.power_url is not None
        assert sim.power_url == f"{sim.power_server.url}{POWER_PATH}"  # type: ignore[union-attr]
        hour = int(T0 // 3600) * 3600
        expected = price_usd_mwh(hour, seed=5)
        snap = await fetch(feed(sim.power_url, "data.0.price", "usd_mwh"))
        assert snap.usd_kwh == pytest.approx(expected / 1000)
        kwh = await fetch(feed(sim.power_url, "data.0.price_kwh", "usd_kwh"))
        assert kwh.usd_kwh == pytest.approx(expected / 1000, abs=1e-5)
        async with httpx.AsyncClient(timeout=5) as client:
            doc = (await client.get(sim.power_url)).json()
        assert doc["timezone"] == SIM_POWER_TZ and doc["unit"] == "USD/MWh"
        assert [d["time"] for d in doc["data"]] == [hour + 3600 * k for k in range(24)]
        assert doc["data"][0]["price"] == expected
        # the sim's faults work on it like on every sim server
        sim.power_server.faults.set("ratelimit", count=1, retry_after=7)  # type: ignore[union-attr]
        e = await failure(feed(sim.power_url))
        assert isinstance(e, RateLimited) and e.retry_after == 7.0
        # the price follows the simulated clock
        clock.t += 6 * 3600
        later = await fetch(feed(sim.power_url))
        assert later.usd_kwh == pytest.approx(price_usd_mwh(hour + 6 * 3600, seed=5) / 1000)
        port = sim.power_server.port  # type: ignore[union-attr]
    finally:
        await sim.stop()
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}{POWER_PATH}")


def test_sim_price_curve_is_realistic_and_seeded() -> None:
    tz = load_zone(SIM_POWER_TZ)
    start = int(T0 // 86400) * 86400
    hours = [start + 3600 * k for k in range(28 * 24)]
    prices = {t: price_usd_mwh(t, seed=2026) for t in hours}
    assert all(1.0 <= p < 5000 for p in prices.values())

    def mean(sel: Callable[[datetime], bool]) -> float:
        xs = [p for t, p in prices.items() if sel(datetime.fromtimestamp(t, tz))]
        return sorted(xs)[len(xs) // 2]  # the median: spikes don't move it

    night = mean(lambda d: d.hour < 6)
    weekday_peak = mean(lambda d: 14 <= d.hour < 20 and d.weekday() < 5)
    weekend_peak = mean(lambda d: 14 <= d.hour < 20 and d.weekday() >= 5)
    assert 15 < night < 25
    assert weekday_peak > 3 * night
    assert night < weekend_peak < weekday_peak
    # deterministic per seed; another seed differs
    assert [price_usd_mwh(t, seed=2026) for t in hours[:48]] == [prices[t] for t in hours[:48]]
    assert [price_usd_mwh(t, seed=7) for t in hours[:48]] != [prices[t] for t in hours[:48]]
    api = PowerApi(Clock(), seed=2026)
    assert api.document()["data"][0]["price"] == prices[int(T0 // 3600) * 3600]


async def test_sim_power_api_routes() -> None:
    async with HttpServer(PowerApi(Clock()), name="power") as s:
        async with httpx.AsyncClient(base_url=s.url, timeout=5) as client:
            assert (await client.get(POWER_PATH)).status_code == 200
            assert (await client.get(POWER_PATH + "/")).status_code == 200
            assert (await client.get("/nope")).status_code == 404
            assert (await client.post(POWER_PATH)).status_code == 404


# --------------------------------------------------------------------------- feed + tariff


async def test_feed_then_stale_then_tariff(serve) -> None:  # type: ignore[no-untyped-def]
    """End to end: a fresh feed price is in force; once stale, the tariff takes over."""
    base = await serve(lambda r: price_doc(42.1))
    cfg = feed(base + "/p", interval_s=60.0)
    clock = Clock(T0)
    src = PowerFeedSource(cfg, clock=clock)
    try:
        snap = await src.fetch()
    finally:
        await src.aclose()
    tariff = Tariff((TariffPeriod(frozenset(range(7)), 14, 20, 0.19),), 0.06, "America/Chicago")
    now = T0 + 30  # Saturday 16:53 CST: in the 14-20 period
    fresh = feed_is_fresh(snap, now, cfg.stale_after_s)
    assert tariff_now(tariff, snap.usd_kwh, fresh, now) == PriceNow(
        pytest.approx(0.0421), "feed", None)  # type: ignore[arg-type]
    later = T0 + 181
    assert not feed_is_fresh(snap, later, cfg.stale_after_s)
    usd, source, nxt = tariff_now(tariff, snap.usd_kwh, False, later)
    assert (usd, source) == (0.19, "tariff")
    assert nxt == 1_769_911_200.0  # 20:00 CST = 02:00 UTC, 2026-02-01
