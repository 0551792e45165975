"""Loopback servers more than one test module runs (everything listens on 127.0.0.1 only).

* HTTP: the :func:`serve` fixture (``url = await serve(handler)``), on
  :func:`http_servers`, which starts ``tui.sim.http.HttpServer``\\ s answering a handler.
* SMTP: :func:`smtp_server`, a real aiosmtpd server with a ``trustme`` certificate that
  requires a login, speaking STARTTLS (port 587's protocol) or TLS from the first byte
  (``implicit_tls``, port 465's), delivering into a :class:`Mailbox`.

A module that takes the ``serve`` fixture imports it and lists it in its ``__all__`` (so
that the import counts as used).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tui.sim.http import HttpServer, Request, Response

__all__ = [
    "ImplicitTLSController",
    "Mailbox",
    "Port0Controller",
    "Reply",
    "Serve",
    "http_servers",
    "serve",
    "smtp_server",
]

# --------------------------------------------------------------------------- HTTP

#: What a hand-made HTTP server answers a request with.
Reply = Callable[[Request], Response]
#: ``url = await serve(handler)``
Serve = Callable[[Reply], Awaitable[str]]


@contextlib.asynccontextmanager
async def http_servers() -> AsyncIterator[Serve]:
    """``async with http_servers() as serve: url = await serve(handler)``: each call starts
    an ``HttpServer`` on loopback answering ``handler``; all are stopped on exit."""
    servers: list[HttpServer] = []

    async def start(handler: Reply) -> str:
        s = HttpServer(handler, name="hand-made")
        await s.start()
        servers.append(s)
        return s.url

    try:
        yield start
    finally:
        for s in servers:
            await s.stop()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``url = await serve(handler)``: a hand-made loopback server answering ``handler``."""
    async with http_servers() as start:
        yield start


# --------------------------------------------------------------------------- SMTP


@dataclass
class Mailbox:
    """What an SMTP server received: each mail and each login, with whether it came over
    TLS.  ``password`` is the only one the server accepts."""

    envelopes: list[tuple[str, list[str], bytes, bool]] = field(default_factory=list)
    logins: list[tuple[str, bytes, bytes, bool]] = field(default_factory=list)
    password: bytes = b"s3cret-pass-word"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        assert envelope.mail_from is not None and envelope.content is not None
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        self.envelopes.append(
            (envelope.mail_from, list(envelope.rcpt_tos), content, session.ssl is not None)
        )
        return "250 OK"

    def authenticate(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append(
            (mechanism, auth_data.login, auth_data.password, session.ssl is not None)
        )
        return AuthResult(success=auth_data.password == self.password, handled=False)


class Port0Controller(Controller):
    """aiosmtpd's Controller on an ephemeral port (it wants to know the port up front)."""

    def _trigger_server(self) -> None:
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _ImplicitTLSServer(SMTPServer):
    """aiosmtpd's server, with ``session.ssl`` also set for a connection that is TLS from
    the start (aiosmtpd sets it after STARTTLS only), so :class:`Mailbox` records whether
    the mail and the login really came over TLS."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.session is not None  # made by connection_made
        self.session.ssl = transport.get_extra_info("ssl_object")


class ImplicitTLSController(Port0Controller):
    def factory(self) -> SMTPServer:
        return _ImplicitTLSServer(self.handler, **self.SMTP_kwargs)


@contextlib.contextmanager
def smtp_server(
    ca: trustme.CA, *, implicit_tls: bool = False, port: int = 0, auth_required: bool = True
) -> Iterator[tuple[Port0Controller, Mailbox]]:
    """A started SMTP server on 127.0.0.1 (``port`` 0: an ephemeral one, read it from the
    controller) with ``ca``'s certificate for 127.0.0.1, delivering to a new Mailbox.

    By default STARTTLS comes first and a login only over TLS; with ``implicit_tls`` the
    listening socket itself is TLS (then aiosmtpd warns that AUTH does not require TLS: it
    only counts STARTTLS as TLS).  ``auth_required``: no mail without a login.
    """
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    box = Mailbox()
    common: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": port,
        "authenticator": box.authenticate,
        "auth_required": auth_required,
    }
    ctl: Port0Controller
    if implicit_tls:
        ctl = ImplicitTLSController(box, ssl_context=server_ctx, auth_require_tls=False, **common)
    else:
        ctl = Port0Controller(
            box, tls_context=server_ctx, require_starttls=True, auth_require_tls=True, **common
        )
    ctl.start()
    try:
        yield ctl, box
    finally:
        ctl.stop()
