"""The daemon's HTTP API (tui.api): a real ApiServer on 127.0.0.1:0, talked to with httpx."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FakeClock
from tui import api
from tui.api import (
    DEFAULT_LISTEN,
    SNAPSHOT_CACHE,
    ApiServer,
    ListenError,
    check_listen,
    is_loopback,
    load_token,
    parse_listen,
    token_file_too_open,
)

TOKEN = "s3cret-Token-0123456789abcdef"


class FakeBackend:
    """Canned answers; records what the API asked for."""

    def __init__(self) -> None:
        self.healthy = True
        self.doc: dict[str, Any] | None = None
        self.rigs = {"rig-1", "bay 3:s19.7", "a/b", "émile"}
        self.calls: list[tuple[Any, ...]] = []
        self.fail = False

    def _maybe_fail(self) -> None:
        if self.fail:
            raise RuntimeError("backend exploded")

    def health(self) -> tuple[bool, dict[str, Any]]:
        self._maybe_fail()
        return self.healthy, {"healthy": self.healthy, "last_cycle_age_s": 4.5}

    def snapshot_doc(self) -> dict[str, Any] | None:
        self._maybe_fail()
        return self.doc

    async def rig_history(self, rig: str, since: float, until: float) -> dict[str, Any] | None:
        self._maybe_fail()
        self.calls.append(("rig", rig, since, until))
        if rig not in self.rigs:
            return None
        return {"rig": rig, "since": since, "until": until, "points": [[since, 100.0]]}

    async def site_history(self, since: float, until: float) -> dict[str, Any]:
        self._maybe_fail()
        self.calls.append(("site", since, until))
        return {"since": since, "until": until, "points": []}

    async def alerts(self, since: float, until: float | None) -> dict[str, Any]:
        self._maybe_fail()
        self.calls.append(("alerts", since, until))
        return {"since": since, "until": until, "alerts": [{"rig": "rig-1", "kind": "hot"}]}


Serve = Callable[..., Awaitable[tuple[ApiServer, httpx.AsyncClient]]]


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def serve(clock: FakeClock) -> AsyncIterator[Serve]:
    """Start a real server on loopback (port 0) and a client for it; both closed afterwards."""
    servers: list[ApiServer] = []
    clients: list[httpx.AsyncClient] = []

    async def start(
        backend: FakeBackend, *, token: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[ApiServer, httpx.AsyncClient]:
        server = ApiServer(backend, "127.0.0.1", 0, token=token, clock=clock)
        await server.start()
        servers.append(server)
        client = httpx.AsyncClient(base_url=server.url, headers=headers, trust_env=False)
        clients.append(client)
        return server, client

    yield start
    for client in clients:
        await client.aclose()
    for server in servers:
        await server.stop()


def big_doc(n: int = 5_000) -> dict[str, Any]:
    return {
        "cycle": 42,
        "rigs": [
            {
                "name": f"rig-{i:05d}",
                "model": "Antminer S19j Pro",
                "hashrate_ths": 100.0 + i / 7,
                "watts": 3_050.0,
                "temp_c": 61.5,
                "pool": "stratum+tcp://pool.example:3333",
                "margin_usd_day": 1.25 - i / 10_000,
                "status": "ok",
            }
            for i in range(n)
        ],
    }


def assert_json(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["server"] == "minertop"
    return json.loads(response.content.decode("utf-8"))


# ------------------------------------------------------------------------- endpoints


async def test_healthz_200_when_healthy_503_when_not(backend: FakeBackend, serve: Serve) -> None:
    _, client = await serve(backend)
    assert assert_json(await client.get("/healthz"), 200) == {
        "healthy": True,
        "last_cycle_age_s": 4.5,
    }
    backend.healthy = False
    assert assert_json(await client.get("/healthz"), 503)["healthy"] is False


async def test_snapshot_503_before_first_cycle_then_the_document(
    backend: FakeBackend, serve: Serve
) -> None:
    _, client = await serve(backend)
    response = await client.get("/api/v1/snapshot")
    assert assert_json(response, 503) == {"error": "no poll cycle completed yet"}
    backend.doc = {"cycle": 1, "rigs": [{"name": "émile", "hashrate_ths": float("nan")}]}
    response = await client.get("/api/v1/snapshot")
    # Valid UTF-8, and strict JSON: NaN becomes null.
    assert json.loads(response.content.decode("utf-8"), parse_constant=pytest.fail) == {
        "cycle": 1,
        "rigs": [{"name": "émile", "hashrate_ths": None}],
    }
    assert assert_json(response, 200)["cycle"] == 1
    assert response.headers["cache-control"] == "no-cache"


async def test_snapshot_etag_and_if_none_match(backend: FakeBackend, serve: Serve) -> None:
    _, client = await serve(backend)
    backend.doc = {"cycle": 1}
    first = await client.get("/api/v1/snapshot")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')

    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = await client.get("/api/v1/snapshot", headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"] == "no-cache"

    stale = await client.get("/api/v1/snapshot", headers={"If-None-Match": '"nope"'})
    assert stale.status_code == 200 and stale.content == first.content

    backend.doc = {"cycle": 2}
    changed = await client.get("/api/v1/snapshot", headers={"If-None-Match": etag})
    assert assert_json(changed, 200) == {"cycle": 2}
    assert changed.headers["etag"] != etag
    # An equal document in a new object has the same validator.
    backend.doc = {"cycle": 2}
    again = await client.get("/api/v1/snapshot", headers={"If-None-Match": changed.headers["etag"]})
    assert again.status_code == 304


async def test_rig_history_defaults_to_the_last_hour(
    backend: FakeBackend, serve: Serve, clock: FakeClock
) -> None:
    _, client = await serve(backend)
    doc = assert_json(await client.get("/api/v1/rigs/rig-1/history"), 200)
    assert doc["rig"] == "rig-1"
    assert backend.calls[-1] == ("rig", "rig-1", clock.now - 3600, clock.now)

    since = clock.now - 1000.5
    response = await client.get("/api/v1/rigs/rig-1/history", params={"since": str(since)})
    assert assert_json(response, 200)["since"] == since
    assert backend.calls[-1] == ("rig", "rig-1", since, clock.now)

    response = await client.get(
        "/api/v1/rigs/rig-1/history", params={"since": "100", "until": "200"}
    )
    assert assert_json(response, 200)["until"] == 200
    assert backend.calls[-1] == ("rig", "rig-1", 100.0, 200.0)
    # until alone: the hour before it.
    await client.get("/api/v1/rigs/rig-1/history", params={"until": "7200"})
    assert backend.calls[-1] == ("rig", "rig-1", 3600.0, 7200.0)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/rigs/bay%203%3As19.7/history", "bay 3:s19.7"),
        ("/api/v1/rigs/bay 3:s19.7/history", "bay 3:s19.7"),
        ("/api/v1/rigs/a%2Fb/history", "a/b"),
        ("/api/v1/rigs/%C3%A9mile/history", "émile"),
    ],
)
async def test_rig_names_are_url_decoded(
    backend: FakeBackend, serve: Serve, path: str, name: str
) -> None:
    _, client = await serve(backend)
    assert assert_json(await client.get(path), 200)["rig"] == name


async def test_unknown_rig_404(backend: FakeBackend, serve: Serve) -> None:
    _, client = await serve(backend)
    response = await client.get("/api/v1/rigs/ghost.7/history")
    assert assert_json(response, 404) == {"error": "unknown rig 'ghost.7'"}


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"since": "abc"}, "since"),
        ({"since": ""}, "since"),
        ({"until": "nan"}, "until"),
        ({"since": "inf"}, "since"),
        ({"until": "-Infinity"}, "until"),
        ({"since": "1e400"}, "since"),
        ({"since": "200", "until": "100"}, "since"),
        ({"since": "0", "until": str(401 * 86_400)}, "since"),
        ({"since": "1"}, "since"),  # a window of ~56 years up to now
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/rigs/rig-1/history", "/api/v1/site/history"])
async def test_history_params_are_validated(
    backend: FakeBackend, serve: Serve, path: str, params: dict[str, str], names: str
) -> None:
    _, client = await serve(backend)
    error = assert_json(await client.get(path, params=params), 400)["error"]
    assert error.startswith(names + ":")
    assert "\n" not in error
    assert backend.calls == []


async def test_history_span_limit_is_inclusive(backend: FakeBackend, serve: Serve) -> None:
    _, client = await serve(backend)
    params = {"since": "0", "until": str(400 * 86_400)}
    assert_json(await client.get("/api/v1/site/history", params=params), 200)
    equal = {"since": "5", "until": "5"}
    assert_json(await client.get("/api/v1/site/history", params=equal), 200)


async def test_site_history(backend: FakeBackend, serve: Serve, clock: FakeClock) -> None:
    _, client = await serve(backend)
    doc = assert_json(await client.get("/api/v1/site/history"), 200)
    assert doc == {"since": clock.now - 3600, "until": clock.now, "points": []}
    await client.get("/api/v1/site/history", params={"since": "10", "until": "20"})
    assert backend.calls[-1] == ("site", 10.0, 20.0)


async def test_alerts(backend: FakeBackend, serve: Serve, clock: FakeClock) -> None:
    _, client = await serve(backend)
    doc = assert_json(await client.get("/api/v1/alerts"), 200)
    assert doc["alerts"] == [{"rig": "rig-1", "kind": "hot"}]
    assert backend.calls[-1] == ("alerts", clock.now - 86_400, None)
    await client.get("/api/v1/alerts", params={"since": str(clock.now - 60)})
    assert backend.calls[-1] == ("alerts", clock.now - 60, None)
    await client.get("/api/v1/alerts", params={"since": "10", "until": "20"})
    assert backend.calls[-1] == ("alerts", 10.0, 20.0)
    response = await client.get("/api/v1/alerts", params={"since": "30", "until": "20"})
    assert assert_json(response, 400)["error"].startswith("since:")


async def test_unknown_path_and_wrong_method_are_json(backend: FakeBackend, serve: Serve) -> None:
    _, client = await serve(backend)
    assert assert_json(await client.get("/nope"), 404) == {"error": "not found"}
    assert assert_json(await client.get("/api/v1/rigs//history"), 404) == {"error": "not found"}
    response = await client.post("/api/v1/snapshot", content=b"{}")
    assert assert_json(response, 405) == {"error": "method not allowed"}
    assert "GET" in response.headers["allow"]
    assert (await client.head("/healthz")).status_code == 200


async def test_backend_exception_is_500_logged_and_the_server_keeps_serving(
    backend: FakeBackend, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _, client = await serve(backend)
    backend.doc = {"cycle": 1}
    for path in ("/api/v1/snapshot", "/api/v1/rigs/rig-1/history", "/healthz"):
        backend.fail = True
        assert assert_json(await client.get(path), 500) == {"error": "internal error"}
        backend.fail = False
        assert (await client.get(path)).status_code == 200
    logged = [r for r in caplog.records if r.name == "tui.api" and r.levelno == logging.ERROR]
    assert len(logged) == 3
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in logged)
    assert "backend exploded" in caplog.text and "Traceback" in caplog.text


async def test_unserialisable_document_is_500_not_a_crash(
    backend: FakeBackend, serve: Serve
) -> None:
    _, client = await serve(backend)
    backend.doc = {"when": object()}
    assert_json(await client.get("/api/v1/snapshot"), 500)
    backend.doc = {"cycle": 3}
    assert assert_json(await client.get("/api/v1/snapshot"), 200) == {"cycle": 3}


# ------------------------------------------------------------------------------ caching


async def test_50_concurrent_clients_share_one_serialisation(
    backend: FakeBackend, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[int] = []
    real_encode = api.encode_json

    def counting_encode(obj: Any) -> bytes:
        body = real_encode(obj)
        if isinstance(obj, dict) and "rigs" in obj:
            encoded.append(len(body))
        return body

    monkeypatch.setattr(api, "encode_json", counting_encode)
    server, _ = await serve(backend)
    backend.doc = big_doc()

    async def fetch() -> bytes:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            response = await client.get("/api/v1/snapshot")
            assert response.status_code == 200
            return response.content

    bodies = await asyncio.gather(*(fetch() for _ in range(50)))
    assert len(set(bodies)) == 1
    assert len(json.loads(bodies[0])["rigs"]) == 5_000
    assert encoded == [len(bodies[0])]
    assert server.app[SNAPSHOT_CACHE].serialisations == 1

    backend.doc = big_doc(10)  # the next cycle: serialised once more
    bodies = await asyncio.gather(*(fetch() for _ in range(5)))
    assert len(set(bodies)) == 1 and len(json.loads(bodies[0])["rigs"]) == 10
    assert len(encoded) == 2
    assert server.app[SNAPSHOT_CACHE].serialisations == 2


# --------------------------------------------------------------------------------- auth


async def test_loopback_without_token_needs_no_authorization(
    backend: FakeBackend, serve: Serve
) -> None:
    _, client = await serve(backend)
    backend.doc = {"cycle": 1}
    for path in ("/api/v1/snapshot", "/api/v1/site/history", "/api/v1/alerts"):
        assert (await client.get(path)).status_code == 200
    # A stray Authorization header is harmless.
    response = await client.get("/api/v1/snapshot", headers={"Authorization": "Bearer whatever"})
    assert response.status_code == 200


REBOUND_HOSTS = ["evil.example", "evil.example:9184", "127.0.0.1.nip.io:9184",
                 "localhost.evil.example", "[2001:db8::1]:9184", "10.0.0.5:9184"]


async def test_without_a_token_only_requests_addressed_to_this_machine_are_answered(
    backend: FakeBackend, serve: Serve
) -> None:
    # DNS rebinding: a web page whose name comes to resolve to 127.0.0.1 reaches the
    # tokenless API, but its requests carry the page's own name as the Host.
    server, client = await serve(backend)
    backend.doc = {"cycle": 1}
    for host in REBOUND_HOSTS:
        for path in ("/healthz", "/api/v1/snapshot", "/metrics", "/api/v1/view"):
            response = await client.get(path, headers={"Host": host})
            body = assert_json(response, 403)
            assert "answers only requests addressed to this machine" in body["error"], host
            assert "token" in body["error"]
    own = socket.gethostname()
    for host in (f"127.0.0.1:{server.port}", "127.0.0.1", "localhost", f"LOCALHOST:{server.port}",
                 f"[::1]:{server.port}", "[::1]", "dash.localhost:8080", "127.0.1.1:9184",
                 own, f"{own}:{server.port}"):
        response = await client.get("/api/v1/snapshot", headers={"Host": host})
        assert response.status_code == 200, host
    assert (await client.get("/api/v1/snapshot")).status_code == 200  # httpx's own Host


async def test_with_a_token_any_host_is_answered(backend: FakeBackend, serve: Serve) -> None:
    # behind a proxy that passes the public name: the token is what guards it
    _, client = await serve(backend, token=TOKEN)
    backend.doc = {"cycle": 1}
    good = {"Authorization": f"Bearer {TOKEN}"}
    for host in REBOUND_HOSTS:
        response = await client.get("/api/v1/snapshot", headers={**good, "Host": host})
        assert response.status_code == 200, host
        assert (await client.get("/api/v1/snapshot", headers={"Host": host})).status_code == 401


@pytest.mark.parametrize(("header", "local"), [
    ("", True), ("127.0.0.1:9184", True), ("127.9.9.9", True), ("[::1]:80", True),
    ("[::ffff:127.0.0.1]:80", True), ("localhost.", True), ("a.b.localhost:1", True),
    ("0.0.0.0:9184", False), ("[::]:9184", False), ("192.168.1.10:9184", False),
    ("example.com", False), ("localhost.example.com", False), ("[::1", False),
])
def test_host_is_local(header: str, local: bool) -> None:
    assert api.host_is_local(header) is local


AUTHED_PATHS = [
    "/api/v1/snapshot",
    "/api/v1/rigs/rig-1/history",
    "/api/v1/site/history",
    "/api/v1/alerts",
    "/nope",
]


async def test_token_guards_everything_but_healthz(backend: FakeBackend, serve: Serve) -> None:
    _, client = await serve(backend, token=TOKEN)
    backend.doc = {"cycle": 1}
    # without the token, /healthz is a summary: its details (source errors and addresses,
    # the history file, notifier errors: a server may echo a secret in one) need the token
    assert assert_json(await client.get("/healthz"), 200) == {
        "healthy": True, "details": "send the token for the details"}
    assert assert_json(await client.get("/healthz", headers={"Authorization": "Bearer x"}),
                       200) == {"healthy": True, "details": "send the token for the details"}
    assert assert_json(await client.get(
        "/healthz", headers={"Authorization": f"Bearer {TOKEN}"}), 200) == {
        "healthy": True, "last_cycle_age_s": 4.5}

    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer"},
        {"X-Token": TOKEN},
    ]
    for path in AUTHED_PATHS:
        for headers in bad_headers:
            response = await client.get(path, headers=headers)
            assert assert_json(response, 401) == {"error": "unauthorized"}, (path, headers)
            assert response.headers["www-authenticate"] == 'Bearer realm="minertop"'
        # The token in the query string is never accepted.
        response = await client.get(path, params={"token": TOKEN})
        assert response.status_code == 401
        response = await client.get(path, params={"access_token": TOKEN})
        assert response.status_code == 401

    good = {"Authorization": f"Bearer {TOKEN}"}
    for path in AUTHED_PATHS[:-1]:
        assert (await client.get(path, headers=good)).status_code == 200, path
    assert (await client.get("/nope", headers=good)).status_code == 404
    lower = {"Authorization": f"bearer {TOKEN}"}
    assert (await client.get("/api/v1/snapshot", headers=lower)).status_code == 200


async def test_token_never_reaches_the_log(
    backend: FakeBackend, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server, client = await serve(backend, token=TOKEN)
    backend.doc = {"cycle": 1}
    good = {"Authorization": f"Bearer {TOKEN}"}
    await client.get("/api/v1/snapshot", headers=good)
    await client.get("/api/v1/snapshot", params={"token": TOKEN})
    await client.get("/api/v1/alerts", params={"token": TOKEN}, headers=good)
    await client.get(f"/api/v1/rigs/rig-1/history?since=1&until=2&token={TOKEN}", headers=good)
    await client.get("/api/v1/snapshot", headers={"Authorization": f"Bearer {TOKEN}-wrong"})
    await client.get("/api/v1/snapshot", headers={"Authorization": f"Basic {TOKEN}"})
    await client.post("/api/v1/snapshot", headers=good)
    backend.fail = True
    await client.get("/api/v1/snapshot", headers=good)
    backend.fail = False
    # A malformed request carrying the token: aiohttp's parser rejects it and logs the error.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    bad_header = f"Authorization: Bearer {TOKEN}\x01\r\n"
    writer.write(f"GET /api/v1/snapshot HTTP/1.1\r\nHost: x\r\n{bad_header}\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert raw.startswith(b"HTTP/1.")

    # The client's own (httpx) request logs show URLs; only the server side matters here.
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    access_lines = [r.getMessage() for r in server_records if r.name == "tui.api"]
    assert any(line.startswith("GET /api/v1/snapshot 200") for line in access_lines)
    assert any(line.startswith("GET /api/v1/snapshot 401") for line in access_lines)
    assert any(line.startswith("GET /api/v1/rigs/rig-1/history 200") for line in access_lines)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    for record in server_records:
        text = handler.format(record)
        assert TOKEN not in text, text
        assert TOKEN[:12] not in text, text


async def test_custom_logger_gets_the_access_lines(
    backend: FakeBackend, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logger = logging.getLogger("minertop.test.api")
    server = ApiServer(backend, "127.0.0.1", 0, token=None, logger=logger, clock=clock)
    async with server:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            await client.get("/api/v1/site/history?since=5&until=6")
    lines = [r.getMessage() for r in caplog.records if r.name == "minertop.test.api"]
    assert any(line.startswith("GET /api/v1/site/history 200 ") for line in lines)
    assert any(line == f"API listening on {server.url}" for line in lines)


# ---------------------------------------------------------------------- listen rules


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("localhost.", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("miner-host", False),
        ("localhost.example.com", False),
        ("128.0.0.1", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_listen() -> None:
    check_listen("127.0.0.1", None)
    check_listen("::1", None)
    check_listen("0.0.0.0", TOKEN)
    with pytest.raises(ListenError) as info:
        check_listen("0.0.0.0", None)
    assert str(info.value) == (
        "listening on 0.0.0.0 needs a token: --token-file PATH or $MINERTOP_TOKEN"
    )
    with pytest.raises(ListenError):
        check_listen("192.168.1.5", "")


def test_api_server_refuses_wildcard_without_token_before_binding(
    backend: FakeBackend,
) -> None:
    with pytest.raises(ListenError, match="needs a token"):
        ApiServer(backend, "0.0.0.0", 0, token=None)
    with pytest.raises(ListenError, match="needs a token"):
        ApiServer(backend, "::", 0, token=None)
    # With a token it's accepted (not started: tests never listen off loopback).
    server = ApiServer(backend, "0.0.0.0", 9184, token=TOKEN)
    assert server.url == "http://0.0.0.0:9184"
    assert ApiServer(backend, "::1", 9184, token=None).url == "http://[::1]:9184"


async def test_port_in_use_is_a_listen_error(backend: FakeBackend, serve: Serve) -> None:
    server, _ = await serve(backend)
    other = ApiServer(backend, "127.0.0.1", server.port, token=None)
    with pytest.raises(ListenError) as info:
        await other.start()
    assert str(info.value) == f"can't listen on 127.0.0.1:{server.port}: address already in use"
    await other.stop()  # harmless after a failed start


async def test_start_stop(backend: FakeBackend) -> None:
    server = ApiServer(backend, "127.0.0.1", 0, token=None)
    assert server.port == 0
    await server.start()
    port = server.port
    assert port > 0 and server.url == f"http://127.0.0.1:{port}"
    with pytest.raises(RuntimeError):
        await server.start()
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
        assert (await client.get("/healthz")).status_code == 200
        await server.stop()
        await server.stop()
        with pytest.raises(httpx.ConnectError):
            await client.get("/healthz")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9184", ("127.0.0.1", 9184)),
        (" 0.0.0.0:9184 ", ("0.0.0.0", 9184)),
        ("[::1]:9184", ("::1", 9184)),
        ("[::]:80", ("::", 80)),
        ("localhost:0", ("localhost", 0)),
        ("miner-box.lan:65535", ("miner-box.lan", 65535)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        (":9184", "missing host"),
        ("127.0.0.1", "missing port"),
        ("127.0.0.1:", "missing port"),
        ("127.0.0.1:http", "bad port"),
        ("127.0.0.1:-1", "bad port"),
        ("127.0.0.1:65536", "bad port"),
        ("127.0.0.1:９１", "bad port"),
        ("::1:9184", "brackets"),
        ("[::1]9184", "missing port"),
        ("[::1:9184", "missing ']'"),
        ("[nonsense]:1", "bad IPv6"),
        ("300.1.1.1:1", "bad IPv4"),
        ("bad host:1", "bad host"),
        ("http://x:1", "bad host"),
    ],
)
def test_parse_listen_rejects_junk(text: str, fragment: str) -> None:
    with pytest.raises(ListenError) as info:
        parse_listen(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_default_listen_is_loopback() -> None:
    assert is_loopback(DEFAULT_LISTEN[0])


# -------------------------------------------------------------------------------- tokens


def test_load_token_sources(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n\n")
    env_token = "from-the-environment-42"
    assert load_token(token_file, {}) == TOKEN
    assert load_token(None, {"MINERTOP_TOKEN": f"{env_token}\n"}) == env_token
    assert load_token(token_file, {"MINERTOP_TOKEN": env_token}) == TOKEN  # the file wins
    assert load_token(None, {}) is None
    assert load_token(None, {"MINERTOP_TOKEN": "  "}) is None


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "is empty"),
        ("\n  \n", "is empty"),
        ("short-token\n", "too short"),
        ("has a space in the middle of it", "whitespace"),
    ],
)
def test_load_token_rejects_bad_files(tmp_path: Path, content: str, fragment: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(content)
    with pytest.raises(ListenError) as info:
        load_token(token_file, {"MINERTOP_TOKEN": TOKEN})
    assert fragment in str(info.value)
    if content.strip():
        assert content.strip() not in str(info.value)


def test_load_token_rejects_short_env_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ListenError, match="too short") as info:
        load_token(None, {"MINERTOP_TOKEN": "abc123"})
    assert "abc123" not in str(info.value)
    with pytest.raises(ListenError, match="can't read token file"):
        load_token(tmp_path / "missing", {})
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" * 20)
    with pytest.raises(ListenError, match="not UTF-8"):
        load_token(binary, {})


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_token_file_too_open(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    assert not token_file_too_open(token_file)
    token_file.chmod(0o640)
    assert token_file_too_open(token_file)
    token_file.chmod(0o604)
    assert token_file_too_open(token_file)
    assert not token_file_too_open(tmp_path / "missing")


async def test_a_backend_that_cannot_answer_is_a_503_with_its_reason(
    backend: FakeBackend, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    from tui.api import BackendUnavailable

    async def unreadable(since: float, until: float) -> dict[str, Any]:
        raise BackendUnavailable("history not readable: disk I/O error (/x/history.db)")

    backend.site_history = unreadable  # type: ignore[method-assign]
    _, client = await serve(backend)
    with caplog.at_level(logging.DEBUG):
        r = await client.get("/api/v1/site/history")
    assert r.status_code == 503
    assert r.json() == {"error": "history not readable: disk I/O error (/x/history.db)"}
    assert "Traceback" not in caplog.text  # a known condition, not a bug


async def test_snapshot_is_gzipped_once_for_clients_that_accept_it(
    backend: FakeBackend, serve: Serve
) -> None:
    import gzip as gz

    backend.doc = big_doc(2_000)
    _, client = await serve(backend)
    r = await client.get("/api/v1/snapshot", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip" and r.json() == json.loads(
        json.dumps(backend.doc))  # httpx decodes it: the same document
    raw = await client.get("/api/v1/snapshot", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in raw.headers
    assert int(r.headers["Content-Length"]) < len(raw.content) / 4
    assert gz.decompress(await _raw_body(client)) == raw.content


async def _raw_body(client: httpx.AsyncClient) -> bytes:
    """The bytes on the wire (httpx's streaming API without decoding)."""
    async with client.stream("GET", "/api/v1/snapshot",
                             headers={"Accept-Encoding": "gzip"}) as r:
        return b"".join([chunk async for chunk in r.aiter_raw()])
