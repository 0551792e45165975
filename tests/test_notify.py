"""Alert notifications delivered to real servers on 127.0.0.1: HTTP (webhook, ntfy, Slack) and
SMTP with STARTTLS and AUTH, plus digests, filters, retries, timeouts and secret hygiene."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiohttp import web

from tests.conftest import FakeClock
from tests.servers import Mailbox, Port0Controller, smtp_server
from tui.alerts import SEVERITY, Alert, AlertEvent
from tui.notify import (
    Notifier,
    NotifyConfig,
    NotifyHub,
    accepts,
    ascii_header,
    build_digest,
)

T0 = 1_769_000_000.0
FAST = {"retry_base_s": 0.01, "retry_max_s": 0.05, "timeout_s": 2.0}


def ev(
    subject: str = "a-01",
    kind: str = "offline",
    *,
    fired: bool = True,
    msg: str | None = None,
    t: float = T0,
) -> AlertEvent:
    a = Alert(
        f"rig:{subject}:{kind}",
        subject,
        kind,  # type: ignore[arg-type]
        SEVERITY.get(kind, "warning"),
        msg or f"{subject} {kind} trouble",
        t - 312,
    )
    return AlertEvent("fired" if fired else "cleared", a, t)


async def until(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- HTTP sink


@dataclass
class Req:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sink:
    """An aiohttp server recording every request; ``script`` holds the first responses
    (status, headers, body) to give, then it answers 200."""

    port: int = 0
    requests: list[Req] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    echo_auth: bool = False
    runner: web.AppRunner | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            Req(request.path, request.query_string, dict(request.headers), body, time.monotonic())
        )
        if self.script:
            status, headers, text = self.script.pop(0)
            if self.echo_auth:
                text += " " + request.headers.get("Authorization", "")
            return web.Response(status=status, headers=headers, text=text)
        return web.Response(text="ok")

    async def start(self, port: int = 0) -> Sink:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def on(self, path: str) -> list[Req]:
        return [r for r in self.requests if r.path == path]


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    s = await Sink().start()
    yield s
    await s.close()


@pytest.fixture
async def hubs() -> AsyncIterator[Callable[..., Awaitable[NotifyHub]]]:
    """Make started hubs (with the test defaults); all are stopped afterwards."""
    made: list[NotifyHub] = []

    async def make(configs: list[NotifyConfig], **kw: Any) -> NotifyHub:
        opts: dict[str, Any] = {"site_name": "Texas-A", "rng": random.Random(7), **FAST}
        opts.update(kw)
        hub = NotifyHub(configs, **opts)
        made.append(hub)
        await hub.start()
        return hub

    yield make
    for hub in made:
        await hub.stop(timeout=0.2)


class Staller:
    """Accepts connections and never answers."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        await asyncio.Event().wait()

    async def start(self) -> Staller:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for w in self.writers:
            w.close()
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def staller() -> AsyncIterator[Staller]:
    s = await Staller().start()
    yield s
    await s.close()


# --------------------------------------------------------------------------- SMTP server


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_ssl(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def smtp(ca: trustme.CA) -> Iterator[tuple[Port0Controller, Mailbox]]:
    """STARTTLS then login (required, over TLS only): port 587's protocol."""
    with smtp_server(ca) as server:
        yield server


def mail_config(port: int, **kw: Any) -> NotifyConfig:
    opts: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "alerts@example.com",
        "password_env": "SMTP_PW",
        "sender": "minertop <alerts@example.com>",
        "to": ("ops@example.com", "Night Shift <night@example.org>"),
        "subject_prefix": "[mine]",
    }
    opts.update(kw)
    return NotifyConfig("email", "mail", **opts)


# --------------------------------------------------------------------------- messages (pure)


def test_digest_summary_for_one_and_many_events() -> None:
    one = build_digest([ev(msg="a-01 offline for 5m12s")], site="Texas-A")
    assert one.summary == "minertop Texas-A: critical offline alert: a-01 offline for 5m12s"
    assert one.critical
    assert one.lines == ("FIRED critical offline: a-01 offline for 5m12s (2026-01-21 12:53:20Z)",)
    cleared = build_digest([ev(fired=False, msg="a-01 back online after 7m03s")], site="S")
    assert cleared.summary == "minertop S: offline alert cleared: a-01 back online after 7m03s"
    assert not cleared.critical
    events = [ev(f"a-{i:02d}") for i in range(10)] + [ev("b-1", "temp"), ev("b-2", "temp")]
    events.append(ev("c-1", "margin", fired=False))
    many = build_digest(events, site="Texas-A")
    assert many.summary == "minertop Texas-A: 12 alerts fired (10 offline, 2 temp), 1 cleared"
    assert len(many.lines) == 13
    only_cleared = build_digest([ev(fired=False), ev("b", "temp", fired=False)], site="S")
    assert only_cleared.summary == "minertop S: 2 alerts cleared (1 offline, 1 temp)"
    capped = build_digest([ev(f"r{i}") for i in range(60)], site="S", dropped=3)
    assert len(capped.lines) == 51 and capped.lines[-1] == "… and 10 more"
    assert capped.text.endswith(capped.dropped_note) and "3 older events were dropped" in (
        capped.text
    )
    assert len(capped.payload(T0)["events"]) == 60


def test_control_characters_and_header_values_are_made_safe() -> None:
    d = build_digest([ev("evil\x1b[2J\nrig", msg="evil\x1b[2J\nrig at 90 °C (limit 85)")], site="S")
    assert "\x1b" not in d.text and "\nrig" not in d.text
    assert ascii_header("a-03 at −2.5 °C — margin −$1.20/day…") == (
        "a-03 at -2.5 C - margin -$1.20/day..."
    )
    assert ascii_header("Zürich ☃ site") == "Zurich ? site"
    assert ascii_header("x" * 400).endswith("...") and len(ascii_header("x" * 400)) == 250


def test_filters() -> None:
    warn, crit = ev("a", "margin"), ev("a", "temp")
    cleared = ev("a", "temp", fired=False)
    c = NotifyConfig("ntfy", url="http://x/t")
    assert all(accepts(c, e) for e in (warn, crit, cleared))
    c = NotifyConfig("ntfy", url="http://x/t", min_severity="critical")
    assert [accepts(c, e) for e in (warn, crit, cleared)] == [False, True, True]
    c = NotifyConfig("ntfy", url="http://x/t", kinds=("margin", "future"))
    assert [accepts(c, e) for e in (warn, crit, cleared)] == [True, False, False]
    c = NotifyConfig("ntfy", url="http://x/t", events=("fired",))
    assert [accepts(c, e) for e in (warn, crit, cleared)] == [True, True, False]


def test_backoff_doubles_to_the_cap_with_seeded_jitter() -> None:
    n = Notifier(
        NotifyConfig("webhook", url="http://127.0.0.1:9/x"),
        retry_base_s=1.0,
        retry_max_s=8.0,
        rng=random.Random(1),
    )
    delays = []
    for attempts in range(1, 7):
        n._attempts = attempts
        delays.append(n.next_delay())
    for d, nominal in zip(delays, (1, 2, 4, 8, 8, 8), strict=True):
        assert nominal * 0.5 <= d < nominal
    again = Notifier(
        NotifyConfig("webhook", url="http://127.0.0.1:9/x"),
        retry_base_s=1.0,
        retry_max_s=8.0,
        rng=random.Random(1),
    )
    again_delays = []
    for attempts in range(1, 7):
        again._attempts = attempts
        again_delays.append(again.next_delay())
    assert again_delays == delays  # deterministic with an injected Random


def test_missing_secret_at_run_time_is_a_status_error_not_a_crash() -> None:
    hub = NotifyHub(
        [NotifyConfig("slack", "s", url_env="NOPE"), NotifyConfig("ntfy", url="http://h/t")],
        environ={},
    )
    st = hub.status()
    assert st[0]["ok"] is False and st[0]["last_error"] == "environment variable NOPE is not set"
    assert st[1]["ok"] is True and st[1]["name"] == "ntfy[1]"
    assert not hub.healthy


# --------------------------------------------------------------------------- HTTP bodies


async def test_webhook_posts_the_documented_json_with_custom_headers(
    sink: Sink, hubs: Any, clock: FakeClock
) -> None:
    cfg = NotifyConfig(
        "webhook",
        "ops",
        url=sink.url("/hook") + "?site=tx",
        headers=(("X-Site", "texas"),),
        headers_env=(("Authorization", "HOOK_AUTH"),),
    )
    hub = await hubs([cfg], environ={"HOOK_AUTH": "Bearer hook-secret"}, clock=clock)
    e1 = ev("a-01", msg="a-01 offline for 5m12s")
    e2 = ev("a-03", "temp", fired=False, msg="a-03 at 82 °C (limit 85)", t=T0 + 1)
    hub.submit([e1, e2])
    await until(lambda: len(sink.requests) == 1)
    req = sink.requests[0]
    assert req.path == "/hook" and req.query == "site=tx"
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-Site"] == "texas"
    assert req.headers["Authorization"] == "Bearer hook-secret"
    assert req.headers["User-Agent"].startswith("minertop/")
    assert req.json() == {
        "source": "minertop",
        "site": "Texas-A",
        "sent_at": clock.now,
        "summary": "minertop Texas-A: 1 alert fired (1 offline), 1 cleared",
        "dropped": 0,
        "events": [
            {
                "kind": "fired",
                "time": T0,
                "key": "rig:a-01:offline",
                "subject": "a-01",
                "alert_kind": "offline",
                "severity": "critical",
                "message": "a-01 offline for 5m12s",
                "since": T0 - 312,
            },
            {
                "kind": "cleared",
                "time": T0 + 1,
                "key": "rig:a-03:temp",
                "subject": "a-03",
                "alert_kind": "temp",
                "severity": "critical",
                "message": "a-03 at 82 °C (limit 85)",
                "since": T0 + 1 - 312,
            },
        ],
    }
    await until(lambda: hub.status()[0]["last_sent"] is not None)
    st = hub.status()[0]
    assert st == {
        "name": "ops",
        "kind": "webhook",
        "ok": True,
        "last_error": None,
        "last_sent": clock.now,
        "pending": 0,
        "failures": 0,
        "dropped": 0,
    }
    assert hub.healthy


async def test_ntfy_headers_body_and_priority(sink: Sink, hubs: Any) -> None:
    auto = NotifyConfig("ntfy", "phones", url=sink.url("/alerts-topic"), token_env="NTFY_TOKEN")
    fixed = NotifyConfig(
        "ntfy",
        "fixed",
        url=sink.url("/other"),
        title="Texas-A — rigs",
        priority=2,
        tags=("pick", "fire"),
    )
    hub = await hubs([auto, fixed], environ={"NTFY_TOKEN": "tk_ntfy_secret"})
    hub.submit([ev("a-03", "temp", msg="a-03 at 90 °C (limit 85)")])
    await until(lambda: len(sink.requests) == 2)
    a = sink.on("/alerts-topic")[0]
    assert a.headers["Title"] == "minertop Texas-A: critical temp alert: a-03 at 90 C (limit 85)"
    assert a.headers["Priority"] == "5"
    assert a.headers["Tags"] == "rotating_light"
    assert a.headers["Authorization"] == "Bearer tk_ntfy_secret"
    assert a.headers["Content-Type"] == "text/plain; charset=utf-8"
    body = a.body.decode()
    assert body.startswith("minertop Texas-A: critical temp alert: a-03 at 90 °C (limit 85)\n")
    assert "FIRED critical temp: a-03 at 90 °C (limit 85)" in body
    f = sink.on("/other")[0]
    assert f.headers["Title"] == "Texas-A - rigs"
    assert f.headers["Priority"] == "2" and f.headers["Tags"] == "pick,fire"
    assert "Authorization" not in f.headers
    # warnings only: default priority and a warning tag; cleared only: a check mark
    hub.submit([ev("a-04", "margin")])
    await until(lambda: len(sink.on("/alerts-topic")) == 2)
    assert sink.on("/alerts-topic")[1].headers["Priority"] == "3"
    assert sink.on("/alerts-topic")[1].headers["Tags"] == "warning"
    hub.submit([ev("a-03", "temp", fired=False)])
    await until(lambda: len(sink.on("/alerts-topic")) == 3)
    assert sink.on("/alerts-topic")[2].headers["Priority"] == "3"
    assert sink.on("/alerts-topic")[2].headers["Tags"] == "white_check_mark"


async def test_ntfy_body_fits_its_message_limit(sink: Sink, hubs: Any) -> None:
    hub = await hubs([NotifyConfig("ntfy", url=sink.url("/t"))], max_lines=200)
    hub.submit([ev(f"rig-{i:03d}", msg=f"rig-{i:03d} " + "x" * 80) for i in range(150)])
    await until(lambda: len(sink.requests) == 1)
    body = sink.requests[0].body
    assert len(body) <= 4000
    assert body.decode().splitlines()[-1].startswith("… and ")


async def test_slack_posts_text_with_mentions_escaped(sink: Sink, hubs: Any) -> None:
    hub = await hubs([NotifyConfig("slack", url=sink.url("/services/T/B/C"))])
    hub.submit([ev("<!channel>", msg="<!channel> & co offline for 5m")])
    await until(lambda: len(sink.requests) == 1)
    req = sink.requests[0]
    assert req.headers["Content-Type"] == "application/json"
    body = req.json()
    assert list(body) == ["text"]
    assert body["text"].startswith("minertop Texas-A: critical offline alert: ")
    assert "&lt;!channel&gt; &amp; co offline for 5m" in body["text"]
    assert "<!channel>" not in body["text"]


# --------------------------------------------------------------------------- digests, filters


async def test_twenty_events_in_one_submit_make_one_request_per_destination(
    sink: Sink, hubs: Any
) -> None:
    cfgs = [
        NotifyConfig("webhook", url=sink.url("/w")),
        NotifyConfig("ntfy", url=sink.url("/n")),
        NotifyConfig("slack", url=sink.url("/s")),
    ]
    hub = await hubs(cfgs)
    events = [ev(f"a-{i:02d}") for i in range(18)] + [ev("b-1", "temp"), ev("b-2", "temp")]
    hub.submit(events)
    await until(lambda: len(sink.requests) == 3)
    await asyncio.sleep(0.05)
    assert sorted(r.path for r in sink.requests) == ["/n", "/s", "/w"]
    summary = "minertop Texas-A: 20 alerts fired (18 offline, 2 temp)"
    w = sink.on("/w")[0].json()
    assert w["summary"] == summary
    assert [e["subject"] for e in w["events"]] == [e.alert.subject for e in events]
    for path, text in (
        ("/n", sink.on("/n")[0].body.decode()),
        ("/s", sink.on("/s")[0].json()["text"]),
    ):
        assert text.startswith(summary), path
        assert sum(1 for ln in text.splitlines() if ln.startswith("FIRED ")) == 20, path
    assert sink.on("/n")[0].headers["Title"] == summary


async def test_filters_decide_who_hears_what(sink: Sink, hubs: Any) -> None:
    cfgs = [
        NotifyConfig("webhook", "crit", url=sink.url("/crit"), min_severity="critical"),
        NotifyConfig("webhook", "temps", url=sink.url("/temps"), kinds=("temp",)),
        NotifyConfig("webhook", "fired", url=sink.url("/fired"), events=("fired",)),
        NotifyConfig("webhook", "drift", url=sink.url("/drift"), kinds=("drift",)),
    ]
    hub = await hubs(cfgs)
    hub.submit([ev("a", "margin"), ev("b", "temp"), ev("c", "offline", fired=False)])
    await until(lambda: len(sink.requests) == 3)
    await asyncio.sleep(0.05)

    def keys(path: str) -> list[str]:
        (req,) = sink.on(path)
        return [f"{e['kind']}:{e['key']}" for e in req.json()["events"]]

    assert keys("/crit") == ["fired:rig:b:temp", "cleared:rig:c:offline"]
    assert keys("/temps") == ["fired:rig:b:temp"]
    assert keys("/fired") == ["fired:rig:a:margin", "fired:rig:b:temp"]
    assert sink.on("/drift") == []
    assert hub.status()[3]["last_sent"] is None and hub.status()[3]["ok"] is True


async def test_queue_overflow_drops_the_oldest_and_says_so(
    sink: Sink, hubs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "minertop.notify")
    hub = await hubs([NotifyConfig("webhook", url=sink.url("/w"))], queue_size=5)
    for cycle in range(3):  # no await in between: the sender hasn't run yet
        hub.submit([ev(f"c{cycle}-{i}") for i in range(3)])
    assert hub.status()[0]["pending"] == 5 and hub.status()[0]["dropped"] == 4
    await until(lambda: len(sink.requests) == 1)
    body = sink.requests[0].json()
    assert [e["subject"] for e in body["events"]] == ["c1-1", "c1-2", "c2-0", "c2-1", "c2-2"]
    assert body["dropped"] == 4
    assert "queue full" in caplog.text
    hub.submit([ev("later")])
    await until(lambda: len(sink.requests) == 2)
    assert sink.requests[1].json()["dropped"] == 0
    assert hub.status()[0]["dropped"] == 4


# --------------------------------------------------------------------------- failures


async def test_events_dropped_while_their_message_is_in_flight_count_only_if_it_fails(
    staller: Staller, hubs: Any
) -> None:
    cfg = NotifyConfig("webhook", url=f"http://127.0.0.1:{staller.port}/w")
    hub = await hubs([cfg], queue_size=3, timeout_s=0.3, retry_base_s=5.0)
    hub.submit([ev("first")])
    await until(lambda: staller.connections == 1)
    hub.submit([ev(f"n{i}") for i in range(5)])
    # "first" left the queue but is in the message being sent: not lost yet
    assert hub.status()[0]["dropped"] == 2 and hub.status()[0]["pending"] == 3
    await until(lambda: hub.status()[0]["failures"] == 1)
    assert hub.status()[0]["dropped"] == 3  # that attempt failed: it is lost now


async def test_connection_refused_then_the_server_comes_up(
    hubs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "minertop.notify")
    port = free_port()
    hub = await hubs([NotifyConfig("webhook", "late", url=f"http://127.0.0.1:{port}/w")])
    hub.submit([ev("a-01"), ev("a-02")])
    await until(lambda: hub.status()[0]["failures"] >= 2, what="two failed attempts")
    st = hub.status()[0]
    assert st["ok"] is False and st["pending"] == 2 and "ConnectError" in st["last_error"]
    assert not hub.healthy
    hub.submit([ev("a-03")])  # joins the message being retried
    sink = await Sink().start(port)
    try:
        await until(lambda: len(sink.requests) == 1)
        await asyncio.sleep(0.1)
        assert len(sink.requests) == 1
        subjects = [e["subject"] for e in sink.requests[0].json()["events"]]
        assert subjects == ["a-01", "a-02", "a-03"]
        await until(lambda: hub.healthy)
        st = hub.status()[0]
        assert st["ok"] and st["pending"] == 0 and st["last_error"] is None
        assert st["last_sent"] is not None and st["failures"] >= 2
        assert f"notify late (127.0.0.1:{port}): attempt 1 failed: ConnectError" in caplog.text
        assert "delivered 3 events after" in caplog.text
    finally:
        await sink.close()


async def test_a_stalled_server_times_out_and_never_blocks_submit(
    staller: Staller, sink: Sink, hubs: Any
) -> None:
    cfgs = [
        NotifyConfig("webhook", "stuck", url=f"http://127.0.0.1:{staller.port}/w"),
        NotifyConfig("webhook", "fine", url=sink.url("/fine")),
    ]
    hub = await hubs(cfgs, timeout_s=0.5)
    t = time.perf_counter()
    hub.submit([ev("a-01")])
    assert time.perf_counter() - t < 0.05
    await until(lambda: staller.connections == 1)
    # the stuck destination doesn't hold up the other one, nor the caller
    await until(lambda: len(sink.on("/fine")) == 1, what="the healthy destination")
    assert hub.status()[0]["failures"] == 0  # ...while the stuck one is still in its attempt
    for i in range(20):
        t = time.perf_counter()
        hub.submit([ev(f"b-{i}")])
        assert time.perf_counter() - t < 0.05
    await until(lambda: hub.status()[0]["failures"] >= 1, what="a timeout")
    st = hub.status()[0]
    assert st["ok"] is False and "timed out" in st["last_error"]
    assert st["pending"] == 21
    await until(lambda: staller.connections >= 2, what="a retry")
    assert len(sink.on("/fine")) >= 2 and hub.status()[1]["ok"]


async def test_500_twice_then_200_delivers_once_with_the_digest_intact(
    sink: Sink, hubs: Any
) -> None:
    sink.script = [(500, {}, "oops"), (503, {}, "busy")]
    hub = await hubs([NotifyConfig("webhook", url=sink.url("/w"))])
    events = [ev("a-01"), ev("a-02", "temp"), ev("a-03", fired=False)]
    hub.submit(events)
    await until(lambda: len(sink.requests) == 3)
    await asyncio.sleep(0.1)
    assert len(sink.requests) == 3
    bodies = [r.json() for r in sink.requests]
    assert bodies[0]["events"] == bodies[1]["events"] == bodies[2]["events"]
    assert len(bodies[2]["events"]) == 3
    st = hub.status()[0]
    assert st["ok"] and st["failures"] == 2 and st["pending"] == 0


async def test_400_is_not_retried_and_shows_in_status(
    sink: Sink, hubs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "minertop.notify")
    sink.script = [(400, {}, "invalid_payload")]
    hub = await hubs([NotifyConfig("slack", "chat", url=sink.url("/s"))])
    hub.submit([ev("a-01")])
    await until(lambda: hub.status()[0]["failures"] == 1)
    await asyncio.sleep(0.15)  # many retry periods
    assert len(sink.requests) == 1
    st = hub.status()[0]
    assert st["ok"] is False and st["pending"] == 0
    assert st["last_error"] == "HTTP 400 Bad Request: invalid_payload"
    assert "not retried (check this destination's config)" in caplog.text
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    # the next cycle's events still go out, and the destination is healthy again
    hub.submit([ev("a-02")])
    await until(lambda: len(sink.requests) == 2)
    await until(lambda: hub.healthy)
    assert [e for e in sink.requests[1].json()["text"].splitlines() if e.startswith("FIRED")] == [
        "FIRED critical offline: a-02 offline trouble (2026-01-21 12:53:20Z)"
    ]


async def test_429_retry_after_is_honoured(sink: Sink, hubs: Any) -> None:
    sink.script = [(429, {"Retry-After": "1"}, "slow down")]
    hub = await hubs([NotifyConfig("webhook", url=sink.url("/w"))], retry_max_s=5.0)
    hub.submit([ev("a-01")])
    await until(lambda: len(sink.requests) == 2, timeout=5)
    gap = sink.requests[1].at - sink.requests[0].at
    assert 0.9 <= gap < 2.0  # not the 10 ms base backoff
    await until(lambda: hub.healthy)  # (the sink records a request before answering it)


async def test_stop_flushes_a_waiting_retry_and_never_hangs(staller: Staller) -> None:
    port = free_port()
    hub = NotifyHub(
        [
            NotifyConfig("webhook", "later", url=f"http://127.0.0.1:{port}/w"),
            NotifyConfig("webhook", "stuck", url=f"http://127.0.0.1:{staller.port}/w"),
        ],
        retry_base_s=60.0,
        timeout_s=30.0,
    )
    await hub.start()
    hub.submit([ev("a-01")])
    await until(lambda: hub.status()[0]["failures"] == 1 and staller.connections == 1)
    sink = await Sink().start(port)
    try:
        t = time.perf_counter()
        await hub.stop(timeout=0.5)
        assert time.perf_counter() - t < 2.0
        # the retry that was 30-60 s away was tried at once; the stuck one was abandoned
        assert len(sink.requests) == 1
        assert hub.status()[0]["pending"] == 0 and hub.status()[1]["pending"] == 1
        hub.submit([ev("after-stop")])  # ignored, no error
        await hub.stop()  # twice is fine
    finally:
        await sink.close()


async def test_cancelling_stop_still_cancels_the_senders(staller: Staller) -> None:
    hub = NotifyHub([NotifyConfig("webhook", url=f"http://127.0.0.1:{staller.port}/w")])
    await hub.start()
    tasks = list(hub._tasks)
    hub.submit([ev()])
    await until(lambda: staller.connections == 1)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(hub.stop(timeout=10), 0.1)
    await asyncio.sleep(0.01)
    assert all(t.done() for t in tasks)


# --------------------------------------------------------------------------- email


async def test_email_over_starttls_with_login(
    smtp: tuple[Port0Controller, Mailbox], client_ssl: ssl.SSLContext, hubs: Any, clock: FakeClock
) -> None:
    ctl, box = smtp
    hub = await hubs(
        [mail_config(ctl.port)],
        environ={"SMTP_PW": box.password.decode()},
        ssl_context=client_ssl,
        clock=clock,
    )
    hub.submit([ev("a-01", msg="a-01 offline for 5m12s"), ev("a-02", "temp")])
    await until(lambda: len(box.envelopes) == 1)
    mail_from, rcpts, content, over_tls = box.envelopes[0]
    assert over_tls
    assert box.logins == [("PLAIN", b"alerts@example.com", box.password, True)]
    assert mail_from == "alerts@example.com"
    assert rcpts == ["ops@example.com", "night@example.org"]
    msg = email.message_from_bytes(content, policy=email.policy.default)
    assert msg["Subject"] == "[mine] minertop Texas-A: 2 alerts fired (1 offline, 1 temp)"
    assert msg["From"] == "minertop <alerts@example.com>"
    assert msg["To"] == "ops@example.com, Night Shift <night@example.org>"
    assert email.utils.parsedate_to_datetime(msg["Date"]).timestamp() == clock.now
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_content()
    assert "FIRED critical offline: a-01 offline for 5m12s (2026-01-21 12:53:20Z)" in body
    assert "FIRED critical temp: a-02 temp trouble" in body
    await until(lambda: hub.healthy and hub.status()[0]["last_sent"] == clock.now)


async def test_email_wrong_password_is_not_retried_and_never_logged(
    smtp: tuple[Port0Controller, Mailbox],
    client_ssl: ssl.SSLContext,
    hubs: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "minertop.notify")
    ctl, box = smtp
    hub = await hubs(
        [mail_config(ctl.port)], environ={"SMTP_PW": "WRONG-pw-1234"}, ssl_context=client_ssl
    )
    hub.submit([ev()])
    await until(lambda: hub.status()[0]["failures"] == 1)
    await asyncio.sleep(0.1)
    # one attempt (smtplib tries each mechanism the server offers), never retried
    assert [login[0] for login in box.logins] == ["PLAIN", "LOGIN"] and box.envelopes == []
    assert hub.status()[0]["failures"] == 1
    st = hub.status()[0]
    assert st["ok"] is False and st["pending"] == 0
    assert st["last_error"].startswith("SMTPAuthenticationError: 535")
    assert "WRONG-pw-1234" not in caplog.text and "WRONG-pw-1234" not in json.dumps(hub.status())


async def test_email_untrusted_certificate_is_a_config_error(
    smtp: tuple[Port0Controller, Mailbox], hubs: Any
) -> None:
    ctl, box = smtp
    hub = await hubs([mail_config(ctl.port)], environ={"SMTP_PW": "x"})  # system CAs only
    hub.submit([ev()])
    await until(lambda: hub.status()[0]["failures"] == 1)
    await asyncio.sleep(0.1)
    st = hub.status()[0]
    assert st["failures"] == 1 and st["pending"] == 0
    assert st["last_error"].startswith("TLS certificate not trusted")
    assert box.logins == []


async def test_email_connection_refused_is_retried_until_the_server_is_up(
    ca: trustme.CA, client_ssl: ssl.SSLContext, hubs: Any
) -> None:
    port = free_port()
    hub = await hubs(
        [mail_config(port)], environ={"SMTP_PW": Mailbox.password.decode()}, ssl_context=client_ssl
    )
    hub.submit([ev()])
    await until(lambda: hub.status()[0]["failures"] >= 2)
    assert "ConnectionRefusedError" in hub.status()[0]["last_error"]
    with smtp_server(ca, port=port, auth_required=False) as (_ctl, box):
        await until(lambda: len(box.envelopes) == 1)
        await until(lambda: hub.healthy)


# --------------------------------------------------------------------------- secrets


async def test_secrets_never_reach_logs_or_status(
    sink: Sink,
    smtp: tuple[Port0Controller, Mailbox],
    client_ssl: ssl.SSLContext,
    hubs: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "minertop.notify")
    ctl, box = smtp
    refused = free_port()
    slack_path = "/services/T0SLACKSECRET/B0SLACKSECRET/slacktokenSECRET99"
    secrets = {
        "slack": "slacktokenSECRET99",
        "slack_team": "T0SLACKSECRET",
        "bearer": "tk_bearer_SECRET_42",
        "password": "pw-SECRET-smtp-777",
        "query": "qtokenSECRET55",
        "header": "hdr-SECRET-value",
    }
    environ = {
        "SLACK_URL": f"http://127.0.0.1:{refused}{slack_path}",
        "NTFY_TOKEN": secrets["bearer"],
        "SMTP_PW": secrets["password"],
        "HOOK_KEY": secrets["header"],
    }
    sink.echo_auth = True  # a server that echoes the Authorization header in its error body
    sink.script = [(401, {}, "unauthorized:"), (500, {}, "err"), (500, {}, "err")]
    cfgs = [
        NotifyConfig("slack", "chat", url_env="SLACK_URL"),
        NotifyConfig("ntfy", "phones", url=sink.url("/topic"), token_env="NTFY_TOKEN"),
        NotifyConfig(
            "webhook",
            "hook",
            url=f"http://127.0.0.1:{refused}/hook?token={secrets['query']}",
            headers_env=(("X-Key", "HOOK_KEY"),),
        ),
        mail_config(ctl.port),  # the server expects another password: 535
    ]
    hub = await hubs(cfgs, environ=environ, ssl_context=client_ssl)
    hub.submit([ev("a-01"), ev("a-02", "temp")])
    await until(lambda: all(s["failures"] >= 1 for s in hub.status()), what="failures")
    await until(lambda: hub.status()[0]["failures"] >= 3 and hub.status()[2]["failures"] >= 3)
    await hub.stop(timeout=0.2)
    assert sink.requests and sink.requests[0].headers["Authorization"].endswith(secrets["bearer"])
    shown = caplog.text + json.dumps(hub.status()) + repr(cfgs)
    for what, secret in secrets.items():
        assert secret not in shown, what
    assert "notify chat (127.0.0.1:" in caplog.text  # the host is named, nothing more
    assert "HTTP 401 Unauthorized" in caplog.text
