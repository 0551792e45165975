"""Implicit-TLS SMTP (``tls = "ssl"``, port 465's protocol) against a real aiosmtpd server
on 127.0.0.1 wrapped in TLS, and webhook query-string / URL-password secrets that a real
loopback server echoes back in its error reply."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trustme
from aiohttp import web

from tests.servers import Mailbox, Port0Controller, smtp_server
from tests.test_notify import (  # the fixtures and helpers test_notify.py runs on loopback
    Staller,
    ca,
    client_ssl,
    ev,
    hubs,
    mail_config,
    staller,
    until,
)
from tui.notify import Notifier, NotifyConfig

__all__ = ["ca", "client_ssl", "hubs", "staller"]  # fixtures re-used from test_notify.py
pytestmark = pytest.mark.filterwarnings(
    # the implicit-TLS server's login check (auth_require_tls=False): see smtp_server()
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)


# --------------------------------------------------------------------------- webhook secrets


class Echoer:
    """A webhook endpoint that refuses every request with a 403 whose body repeats the
    query parameters and the Basic credentials it was given (as some real APIs do)."""

    def __init__(self) -> None:
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.seen: list[tuple[dict[str, str], str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        q = dict(request.query)
        auth = request.headers.get("Authorization", "")
        self.seen.append((q, auth))
        creds = ""
        if auth.startswith("Basic "):
            creds = base64.b64decode(auth[6:]).decode()
        text = (
            f"invalid signature {q.get('sig', '')} for token={q.get('token', '')} "
            f"key={q.get('key', '')} raw={request.raw_path} auth={auth} creds={creds}"
        )
        return web.Response(status=403, text=text)

    async def start(self) -> Echoer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.port = self.runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def echoer() -> AsyncIterator[Echoer]:
    e = await Echoer().start()
    yield e
    await e.close()


async def test_query_values_and_url_password_never_reach_logs_or_status(
    echoer: Echoer, hubs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "minertop.notify")
    url = (
        f"http://hookuser:Pa%24%24word-77@127.0.0.1:{echoer.port}/h"
        "?sig=QUERYSECRET999&token=Tok_abcdefgh&key=abc%2Fdef%3D%3Dxyz&v=1"
    )
    hub = await hubs([NotifyConfig("webhook", "hook", url=url)])
    hub.submit([ev()])
    await until(lambda: hub.status()[0]["failures"] == 1)
    await hub.stop(timeout=0.2)
    q, auth = echoer.seen[0]  # the server really got (and echoed) the secrets
    assert q["sig"] == "QUERYSECRET999" and q["key"] == "abc/def==xyz"
    assert base64.b64decode(auth[6:]) == b"hookuser:Pa$$word-77"
    st = hub.status()[0]
    assert st["last_error"].startswith("HTTP 403 Forbidden: invalid signature *** for token=***")
    shown = caplog.text + json.dumps(hub.status())
    assert "invalid signature ***" in caplog.text
    for secret in (
        "QUERYSECRET999",
        "Tok_abcdefgh",
        "abc/def==xyz",  # decoded
        "abc%2Fdef%3D%3Dxyz",  # as written in the URL
        "Pa$$word-77",
        "Pa%24%24word-77",
        auth[6:],  # the Basic credentials httpx made from the URL
    ):
        assert secret not in shown, secret


def test_each_query_value_is_a_secret_but_tiny_ones_are_not() -> None:
    n = Notifier(NotifyConfig("webhook", url="https://h.example/x?a=1&long=abcd&e=&s=a%20b%20c"))
    scrub = n._scrub
    assert scrub("got abcd and a b c") == "got *** and ***"
    assert scrub("v1 ok") == "v1 ok"  # "1" is too short to scrub: messages stay readable


# --------------------------------------------------------------------------- implicit TLS


@pytest.fixture
def smtps(ca: trustme.CA) -> Iterator[tuple[Port0Controller, Mailbox]]:
    """An SMTP server that speaks TLS from the first byte (like port 465), login required."""
    with smtp_server(ca, implicit_tls=True) as server:
        yield server


async def test_email_over_implicit_tls_with_login(
    smtps: tuple[Port0Controller, Mailbox], client_ssl: ssl.SSLContext, hubs: Any
) -> None:
    ctl, box = smtps
    hub = await hubs(
        [mail_config(ctl.port, tls="ssl")],
        environ={"SMTP_PW": box.password.decode()},
        ssl_context=client_ssl,
    )
    hub.submit([ev("a-01", msg="a-01 offline for 5m12s")])
    await until(lambda: len(box.envelopes) == 1, what="the mail")
    mail_from, rcpts, content, over_tls = box.envelopes[0]
    assert over_tls and mail_from == "alerts@example.com"
    assert rcpts == ["ops@example.com", "night@example.org"]
    assert box.logins == [("PLAIN", b"alerts@example.com", box.password, True)]
    assert b"a-01 offline for 5m12s" in content
    await until(lambda: hub.healthy and hub.status()[0]["last_sent"] is not None)


async def test_implicit_tls_with_an_untrusted_certificate_is_a_config_error(
    smtps: tuple[Port0Controller, Mailbox], hubs: Any
) -> None:
    ctl, box = smtps
    hub = await hubs([mail_config(ctl.port, tls="ssl")], environ={"SMTP_PW": "x"})
    hub.submit([ev()])
    await until(lambda: hub.status()[0]["failures"] == 1)
    await asyncio.sleep(0.1)
    st = hub.status()[0]
    assert st["failures"] == 1 and st["pending"] == 0  # not retried
    assert st["last_error"].startswith("TLS certificate not trusted")
    assert box.logins == [] and box.envelopes == []


async def test_starttls_to_a_silent_server_hints_at_implicit_tls(
    staller: Staller, client_ssl: ssl.SSLContext, hubs: Any
) -> None:
    """A port-465 server waits for a TLS ClientHello and never greets a plain client."""
    hub = await hubs(
        [mail_config(staller.port)],
        environ={"SMTP_PW": "x"},
        ssl_context=client_ssl,
        timeout_s=2.0,  # ample for a loopback connect, even on a loaded runner
    )
    hub.submit([ev()])
    await until(lambda: hub.status()[0]["failures"] >= 1)
    err = hub.status()[0]["last_error"]
    assert err.startswith("timed out after 2s") and 'tls = "ssl"' in err, err


def test_tls_mode_defaults_to_implicit_tls_on_port_465_only() -> None:
    assert mail_config(465).tls_mode == "ssl"
    assert mail_config(587).tls_mode == "starttls" and mail_config(587).starttls
    assert mail_config(25, tls="none").tls_mode == "none"
    assert mail_config(465, tls="starttls").tls_mode == "starttls"  # as told
    assert not mail_config(465).starttls
