"""Sending alert events to people: webhooks, ntfy, Slack-style webhooks and email.

The daemon hands each poll cycle's :class:`~tui.alerts.AlertEvent` list to
:meth:`NotifyHub.submit` (synchronous, never blocks: it only filters and enqueues).  Each
configured destination (a ``[[notify]]`` table, :class:`NotifyConfig`) has its own
:class:`Notifier` with its own background task, queue, timeout and retry schedule, so a
destination that is down or slow never delays polling or the other destinations.

Messages
--------

All events of one ``submit`` call that pass a destination's filters (``min_severity``,
``kinds``, ``events``) become **one** message to it: one event gives a message about that
alert, several give a digest whose first line counts them, e.g.::

    minertop Texas-A: 12 alerts fired (10 offline, 2 temp), 1 cleared

followed by one line per event (at most ``max_lines``, then "… and N more").  While a
destination is being retried, newly submitted events join the message being retried (one
digest when it comes back, not one message per missed cycle).  The queue is bounded
(``queue_size`` events, default 1,000): on overflow the oldest events are dropped, counted in
``status()["dropped"]``, logged once, and the next message says how many were lost.

Retries: connection errors, timeouts, HTTP 408/429/5xx and SMTP 4xx replies are retried with
exponential backoff (``retry_base_s`` doubling up to ``retry_max_s``, each delay scaled by a
random factor in [0.5, 1) from an injectable :class:`random.Random`); a ``Retry-After``
header (seconds or an HTTP date, on 429/503) is honoured, capped at ``retry_max_s`` and never
below ``retry_base_s``.  Any other HTTP 3xx/4xx reply, an SMTP 5xx reply, a TLS certificate
that doesn't verify or a missing secret is a configuration problem: logged as an error, shown
in :meth:`NotifyHub.status`, and that message is dropped (not retried).

Bodies
------

``webhook``: ``POST`` ``Content-Type: application/json``, UTF-8, plus the configured headers.
This body is an API; fields are only ever added::

    {
      "source": "minertop",
      "site": "Texas-A",                 # [site] name
      "sent_at": 1769000000.0,           # unix seconds when this attempt was made
      "summary": "minertop Texas-A: 2 alerts fired (1 offline, 1 temp)",
      "dropped": 0,                      # older events lost to a full queue before these
      "events": [                        # oldest first, every event (the text cap doesn't apply)
        {
          "kind": "fired",               # "fired" | "cleared"
          "time": 1769000000.0,          # unix s of the event
          "key": "rig:a-01:offline",     # stable id of the alert ("network:drift", ...)
          "subject": "a-01",             # rig id, or "network"
          "alert_kind": "offline",       # offline, margin, temp, hashrate, drift, retarget, ...
          "severity": "critical",        # "warning" | "critical"
          "message": "a-01 offline for 5m12s",
          "since": 1768999688.0          # unix s when the condition started
        }
      ]
    }

``ntfy``: ``POST`` the digest text (``text/plain; charset=utf-8``, cut to fit ntfy's 4 KB
message limit) to the topic URL with the headers ``Title`` (the configured title, else the
summary line; made ASCII), ``Priority`` (the configured one, else **5/urgent when a critical
alert fired in this message, otherwise 3/default**), ``Tags`` (the configured tags, else
``rotating_light`` / ``warning`` / ``white_check_mark`` for critical fired / fired / only
cleared) and ``Authorization: Bearer <token>`` with ``token_env``.

``slack``: ``POST {"text": "<digest text>"}`` (``&``, ``<`` and ``>`` escaped, so a rig name
can't mention ``@channel``).  Mattermost and Discord's ``/slack`` endpoints accept it too.

``email``: a text/plain message with ``Subject`` (``subject_prefix`` + the summary line),
``From``, ``To``, ``Date``, ``Message-ID`` and ``Auto-Submitted: auto-generated``, sent with
:mod:`smtplib` in a worker thread.  ``tls`` picks how the connection is protected:
``"starttls"`` (the default, except on port 465): ``EHLO``, ``STARTTLS``, ``EHLO``;
``"ssl"`` (implicit TLS, the default on port 465, "SMTPS"): TLS from the first byte, then
``EHLO``; ``"none"``: plain ``EHLO`` (a local relay without login).  Certificates are verified
against the system CAs, or the ``ssl_context`` given to the hub.  ``AUTH`` follows when a
username is set.

Secrets (``*_env`` values, the Slack/webhook URL path and query and each query parameter's
value, the URL's password, header values, passwords, tokens) never appear in log lines or in
:meth:`NotifyHub.status`: those name the destination and its host only, and exception texts
and error replies are scrubbed (URLs and known secrets replaced by ``***``).

Logging goes to ``minertop.notify``: a warning per failed attempt, an info line for a delivery
after failures, an error for a message given up; steady-state deliveries are debug.

No Textual and no :mod:`tui.config` here (the config module imports this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import os
import random
import re
import smtplib
import socket
import ssl
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from tui import __version__
from tui.alerts import AlertEvent
from tui.safe import safe
from tui.sources.base import url_secrets

NotifyKind = Literal["webhook", "ntfy", "slack", "email"]
TlsMode = Literal["starttls", "ssl", "none"]
#: ``tls`` of an email destination: STARTTLS, implicit TLS ("SMTPS") or none.
TLS_MODES: tuple[str, ...] = ("starttls", "ssl", "none")
NOTIFY_KINDS: tuple[str, ...] = ("webhook", "ntfy", "slack", "email")
SEVERITIES: tuple[str, ...] = ("warning", "critical")
EVENT_KINDS: tuple[str, ...] = ("fired", "cleared")
#: ntfy's priority names (``max`` is ntfy's alias of ``urgent``).
NTFY_PRIORITIES: dict[str, int] = {
    "min": 1,
    "low": 2,
    "default": 3,
    "high": 4,
    "urgent": 5,
    "max": 5,
}
DEFAULT_SMTP_PORT = 587
#: The submission port with implicit TLS (RFC 8314): the server waits for a TLS handshake and
#: never greets a plain client, so STARTTLS can't work there.
IMPLICIT_TLS_PORT = 465
DEFAULT_QUEUE_SIZE = 1000
DEFAULT_MAX_LINES = 50
#: ntfy turns longer bodies into attachments (or rejects them).
NTFY_MAX_BODY_BYTES = 4000
TITLE_MAX = 250

log = logging.getLogger("minertop.notify")

_SEVERITY_RANK = {"warning": 0, "critical": 1}
_USER_AGENT = f"minertop/{__version__} (notify)"
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
#: Characters that NFKD can't turn into ASCII but that have a good ASCII spelling.
_ASCII_MAP = str.maketrans(
    {
        "−": "-",
        "–": "-",
        "—": "-",
        "…": "...",
        "°": "",
        "·": "-",
        "“": '"',
        "”": '"',
        "‘": "'",
        "’": "'",
        "→": "->",
    }
)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class NotifyConfig:
    """One ``[[notify]]`` table (validated by :mod:`tui.config`).

    Secrets are not stored here, only the names of the environment variables holding them
    (``*_env``); the hub reads those when it is built.  ``url`` and ``headers`` may hold
    secrets themselves (a Slack webhook URL is one): they are left out of ``repr``.
    """

    kind: NotifyKind
    name: str = ""  #: label in logs and status; the loader defaults it to "<kind>[<index>]"
    min_severity: Literal["warning", "critical"] = "warning"
    kinds: tuple[str, ...] | None = None  #: alert kinds to send; None: all
    events: tuple[str, ...] = EVENT_KINDS  #: "fired" and/or "cleared"
    # webhook / ntfy / slack
    url: str | None = field(default=None, repr=False)
    url_env: str | None = None  #: slack: the variable holding the webhook URL
    # webhook
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    headers_env: tuple[tuple[str, str], ...] = ()  #: (header, variable holding its value)
    # ntfy
    title: str | None = None
    priority: int | None = None  #: 1–5; None: 5 when a critical alert fired, else 3
    tags: tuple[str, ...] = ()
    token_env: str | None = None  #: variable holding an access token (Bearer)
    # email
    host: str | None = None
    port: int = DEFAULT_SMTP_PORT
    tls: TlsMode | None = None  #: None: "ssl" on port 465, else "starttls" (see tls_mode)
    username: str | None = None
    password_env: str | None = None
    sender: str | None = None  #: the ``from`` key
    to: tuple[str, ...] = ()
    subject_prefix: str | None = None

    @property
    def tls_mode(self) -> TlsMode:
        """How an email connection is protected: ``tls``, else implicit TLS on port 465 and
        STARTTLS on any other port."""
        if self.tls is not None:
            return self.tls
        return "ssl" if self.port == IMPLICIT_TLS_PORT else "starttls"

    @property
    def starttls(self) -> bool:
        """Whether STARTTLS is used (the meaning of the older ``starttls`` key)."""
        return self.tls_mode == "starttls"


def accepts(config: NotifyConfig, event: AlertEvent) -> bool:
    """Whether ``event`` passes ``config``'s filters."""
    a = event.alert
    return (
        event.kind in config.events
        and _SEVERITY_RANK.get(a.severity, 1) >= _SEVERITY_RANK.get(config.min_severity, 0)
        and (config.kinds is None or a.kind in config.kinds)
    )


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Digest:
    """What one message says, in every form a destination needs."""

    site: str
    summary: str  #: one line: "minertop Texas-A: 12 alerts fired (10 offline, 2 temp), 1 cleared"
    lines: tuple[str, ...]  #: one per event, capped, then "… and N more"
    events: tuple[AlertEvent, ...]
    dropped: int  #: events lost to a full queue before these
    critical: bool  #: a critical alert fired in this message

    @property
    def text(self) -> str:
        return "\n".join(self.text_lines())

    def text_lines(self) -> list[str]:
        out = [self.summary, ""] + list(self.lines)
        if self.dropped:
            out += ["", self.dropped_note]
        return out

    @property
    def dropped_note(self) -> str:
        n = self.dropped
        return (
            f"({n} older event{'s were' if n != 1 else ' was'} dropped: the notification "
            "queue was full while this destination was unreachable)"
        )

    def payload(self, sent_at: float) -> dict[str, Any]:
        """The webhook JSON body (see the module notes)."""
        return {
            "source": "minertop",
            "site": self.site,
            "sent_at": sent_at,
            "summary": self.summary,
            "dropped": self.dropped,
            "events": [
                {
                    "kind": e.kind,
                    "time": e.time,
                    "key": e.alert.key,
                    "subject": e.alert.subject,
                    "alert_kind": e.alert.kind,
                    "severity": e.alert.severity,
                    "message": e.alert.message,
                    "since": e.alert.since,
                }
                for e in self.events
            ],
        }


def _when(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "?"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _breakdown(events: list[AlertEvent]) -> str:
    counts: dict[str, int] = {}
    for e in events:
        counts[e.alert.kind] = counts.get(e.alert.kind, 0) + 1
    order = sorted(counts.items(), key=lambda kv: -kv[1])  # stable: ties keep first-seen order
    return ", ".join(f"{n} {safe(k, 32)}" for k, n in order)


def event_line(e: AlertEvent) -> str:
    """``FIRED critical offline: a-01 offline for 5m12s (2026-01-21 12:53:20Z)``."""
    a = e.alert
    return (
        f"{e.kind.upper()} {safe(a.severity, 16)} {safe(a.kind, 32)}: "
        f"{safe(a.message, 300)} ({_when(e.time)})"
    )


def build_digest(
    events: Sequence[AlertEvent],
    *,
    site: str,
    dropped: int = 0,
    max_lines: int = DEFAULT_MAX_LINES,
) -> Digest:
    """The message for ``events`` (one or more; in order)."""
    site = safe(site, 64)
    evs = list(events)
    fired = [e for e in evs if e.kind == "fired"]
    cleared = [e for e in evs if e.kind != "fired"]
    head = f"minertop {site}"
    if len(evs) == 1:
        e = evs[0]
        a = e.alert
        if e.kind == "fired":
            summary = f"{head}: {safe(a.severity, 16)} {safe(a.kind, 32)} alert: "
        else:
            summary = f"{head}: {safe(a.kind, 32)} alert cleared: "
        summary += safe(a.message, 200)
    elif not evs:
        summary = f"{head}: no alerts"
    else:
        parts = []
        if fired:
            parts.append(f"{_plural(len(fired), 'alert')} fired ({_breakdown(fired)})")
        if cleared:
            if fired:
                parts.append(f"{len(cleared)} cleared")
            else:
                parts.append(f"{_plural(len(cleared), 'alert')} cleared ({_breakdown(cleared)})")
        summary = f"{head}: " + ", ".join(parts)
    cap = max(1, max_lines)
    lines = [event_line(e) for e in evs[:cap]]
    if len(evs) > cap:
        lines.append(f"… and {len(evs) - cap} more")
    crit = any(e.alert.severity == "critical" for e in fired)
    return Digest(site, summary, tuple(lines), tuple(evs), dropped, crit)


def ascii_header(text: str, limit: int = TITLE_MAX) -> str:
    """``text`` as a printable-ASCII header value (HTTP header values must be latin-1)."""
    s = unicodedata.normalize("NFKD", safe(text, limit * 2).translate(_ASCII_MAP))
    out = "".join(
        ch if 32 <= ord(ch) < 127 else ("" if unicodedata.combining(ch) else "?") for ch in s
    )
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _fit_bytes(lines: list[str], max_bytes: int) -> str:
    """Join ``lines`` with newlines, dropping trailing lines (noted) to stay under max_bytes."""
    text = "\n".join(lines)
    if len(text.encode()) <= max_bytes:
        return text
    kept: list[str] = []
    size = 0
    for i, ln in enumerate(lines):
        note = f"… and {len(lines) - i} more lines"
        n = len(ln.encode()) + 1
        if size + n + len(note.encode()) + 1 > max_bytes:
            kept.append(note)
            break
        kept.append(ln)
        size += n
    return "\n".join(kept)


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------- delivery


class _Permanent(Exception):
    """Not worth retrying: a configuration problem.  ``str()`` is safe to log."""


class _Transient(Exception):
    """Retry later.  ``str()`` is safe to log."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    v = value.strip()
    try:
        secs = float(v)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(v)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        secs = when.timestamp() - now
    if secs != secs:  # NaN
        return None
    return max(0.0, secs)


class Notifier:
    """One destination: its queue, its sender task body (:meth:`run`) and its status."""

    def __init__(
        self,
        config: NotifyConfig,
        index: int = 0,
        *,
        environ: Mapping[str, str] = os.environ,
        site_name: str = "site",
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        retry_base_s: float = 5.0,
        retry_max_s: float = 600.0,
        timeout_s: float = 10.0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_lines: int = DEFAULT_MAX_LINES,
        rng: random.Random | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.kind: str = config.kind
        self.name = safe(config.name or f"{config.kind}[{index}]", 64)
        self._site = site_name
        self._clock = clock
        self._log = logger if logger is not None else log
        self._base = max(0.0, retry_base_s)
        self._max = max(self._base, retry_max_s)
        self._timeout = timeout_s
        self._queue_size = max(1, queue_size)
        self._max_lines = max_lines
        self._rng = rng if rng is not None else random.Random()
        self._ssl = ssl_context
        self._client: httpx.AsyncClient | None = None

        self._buf: deque[tuple[int, AlertEvent]] = deque()
        self._seq = 0
        self._inflight = 0  #: highest seq in the message being sent (0: none)
        self._dropped_inflight = 0  #: dropped from the queue but part of the message in flight
        self._dropped_unreported = 0
        self._overflow_logged = False
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._attempts = 0  #: consecutive failed attempts
        self._retry_after: float | None = None  #: from the last failure's Retry-After

        self.ok = True
        self.last_error: str | None = None
        self.last_sent: float | None = None
        self.failures = 0
        self.dropped = 0

        self._secrets: list[str] = []
        self._setup_error: str | None = None
        self._url: str | None = None
        self._headers: dict[str, str] = {}
        self._password: str | None = None
        self.where = "?"
        try:
            self._resolve(environ)
        except _Permanent as e:
            self._setup_error = str(e)
            self.ok = False
            self.last_error = self._setup_error

    # -- set-up
    def _env(self, environ: Mapping[str, str], var: str) -> str:
        value = environ.get(var)
        if not value:
            raise _Permanent(f"environment variable {var} is not set")
        self._secret(value)
        return value

    def _secret(self, value: str) -> None:
        """Remember a value to scrub from any text that gets logged (not tiny ones: those
        would garble messages, and a 1–3 character secret protects nothing anyway)."""
        if len(value) >= 4:
            self._secrets.append(value)

    def _resolve(self, environ: Mapping[str, str]) -> None:
        c = self.config
        if c.kind == "email":
            self.where = f"{c.host}:{c.port}"
            if not c.host or not c.sender or not c.to:
                raise _Permanent("email needs host, from and to")
            if c.tls_mode not in TLS_MODES:
                raise _Permanent(f"tls must be one of {', '.join(TLS_MODES)}")
            if c.username is not None:
                if c.password_env is None:
                    raise _Permanent("username is set but password_env is not")
                self._password = self._env(environ, c.password_env)
            return
        if c.url is not None:
            url = c.url
        elif c.url_env is not None:
            url = self._env(environ, c.url_env)
        else:
            raise _Permanent("no url")
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port
        except ValueError:
            raise _Permanent("the URL is not valid") from None
        if parts.scheme not in ("http", "https") or not host:
            raise _Permanent("the URL is not an http:// or https:// URL")
        self.where = host if port is None else f"{host}:{port}"
        self._url = url
        self._secret(url)
        for part in (parts.path, parts.query, parts.password or ""):
            if len(part) > 1:
                self._secret(part)
        for seg in parts.path.split("/"):
            if len(seg) >= 8:
                self._secret(seg)
        for value in url_secrets(url):  # each query value, the password, the Basic token
            self._secret(value)
        headers: dict[str, str] = {"User-Agent": _USER_AGENT}
        for k, v in c.headers:
            headers[k] = v
            self._secret(v)
        for k, var in c.headers_env:
            headers[k] = self._env(environ, var)
        if c.token_env is not None:
            headers["Authorization"] = f"Bearer {self._env(environ, c.token_env)}"
        self._headers = headers

    # -- queue
    def enqueue(self, events: Sequence[AlertEvent]) -> None:
        """Add events (already filtered) to the queue; the sender task wakes up."""
        if not events:
            return
        for e in events:
            self._seq += 1
            self._buf.append((self._seq, e))
        over = len(self._buf) - self._queue_size
        if over > 0:
            lost = 0
            for _ in range(over):
                seq, _e = self._buf.popleft()
                if seq <= self._inflight:
                    self._dropped_inflight += 1
                else:
                    lost += 1
            self._note_dropped(lost)
        self._wake.set()

    def _note_dropped(self, n: int) -> None:
        if n <= 0:
            return
        self.dropped += n
        self._dropped_unreported += n
        if not self._overflow_logged:
            self._overflow_logged = True
            self._log.warning(
                "notify %s (%s): queue full (%d events), dropping the oldest events",
                self.name,
                self.where,
                self._queue_size,
            )

    @property
    def pending(self) -> int:
        return len(self._buf)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "ok": self.ok,
            "last_error": self.last_error,
            "last_sent": self.last_sent,
            "pending": self.pending,
            "failures": self.failures,
            "dropped": self.dropped,
        }

    # -- the sender task
    def close(self) -> None:
        """Ask :meth:`run` to make one last attempt (no more backoff) and return."""
        self._closing.set()
        self._wake.set()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), 1.0)

    async def run(self) -> None:
        """Send queued events until :meth:`close` (then once more, without waiting)."""
        try:
            while True:
                if not self._buf:
                    if self._closing.is_set():
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if not await self._attempt():
                    if self._closing.is_set():
                        return  # stopping: the hub logs what is left undelivered
                    await self._backoff()
        finally:
            self._inflight = 0

    async def _attempt(self) -> bool:
        """Send everything queued as one message.  False: retry later."""
        batch = list(self._buf)
        top = batch[-1][0]
        dropped = self._dropped_unreported
        self._inflight = top
        try:
            await self._deliver([e for _, e in batch], dropped)
        except _Permanent as e:
            self._settle(top, dropped)
            self.ok = False
            self.failures += 1
            self._attempts = 0
            self.last_error = str(e)
            self._log.error(
                "notify %s (%s): %s; not retried (check this destination's config): "
                "%d events dropped",
                self.name,
                self.where,
                e,
                len(batch),
            )
            return True
        except _Transient as e:
            self._failed(str(e), e.retry_after)
            return False
        except Exception as e:  # noqa: BLE001 - a bug must not kill the sender; scrubbed
            self._failed(f"{type(e).__name__}: {self._scrub(str(e))}", None)
            return False
        self._settle(top, dropped)
        self.last_sent = self._clock()
        self.ok = True
        self.last_error = None
        if self._attempts:
            self._log.info(
                "notify %s (%s): delivered %d events after %d failed attempts",
                self.name,
                self.where,
                len(batch),
                self._attempts,
            )
        else:
            self._log.debug("notify %s (%s): sent %d events", self.name, self.where, len(batch))
        self._attempts = 0
        return True

    def _failed(self, reason: str, retry_after: float | None) -> None:
        self._inflight = 0
        self._note_dropped(self._dropped_inflight)  # they were in the message that failed
        self._dropped_inflight = 0
        self.ok = False
        self.failures += 1
        self._attempts += 1
        self.last_error = reason
        self._retry_after = retry_after

    def _settle(self, top: int, dropped: int) -> None:
        """The message up to ``top`` is done (sent or given up): forget it."""
        while self._buf and self._buf[0][0] <= top:
            self._buf.popleft()
        self._inflight = 0
        self._dropped_inflight = 0
        self._dropped_unreported -= dropped
        if not self._dropped_unreported:
            self._overflow_logged = False

    def next_delay(self) -> float:
        """The wait before the next attempt (after ``self._attempts`` failures in a row)."""
        n = max(1, self._attempts)
        if self._retry_after is not None:
            return min(self._max, max(self._base, self._retry_after))
        delay = min(self._max, self._base * 2.0 ** min(n - 1, 60))
        return delay * (0.5 + 0.5 * self._rng.random())

    async def _backoff(self) -> None:
        delay = self.next_delay()
        self._log.warning(
            "notify %s (%s): attempt %d failed: %s; retrying in %.3gs (%d events pending)",
            self.name,
            self.where,
            self._attempts,
            self.last_error,
            delay,
            self.pending,
        )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)

    # -- sending
    def _scrub(self, text: str) -> str:
        for s in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(s, "***")
        text = _URL_RE.sub("<url>", text)
        return safe(text, 200)

    async def _deliver(self, events: list[AlertEvent], dropped: int) -> None:
        if self._setup_error is not None:
            raise _Permanent(self._setup_error)
        digest = build_digest(events, site=self._site, dropped=dropped, max_lines=self._max_lines)
        if self.kind == "email":
            await self._send_email(digest)
        else:
            await self._send_http(digest)

    def _http_request(self, d: Digest) -> tuple[bytes, httpx.Headers]:
        c = self.config
        headers = httpx.Headers(self._headers)
        if self.kind == "ntfy":
            prio = c.priority if c.priority is not None else (5 if d.critical else 3)
            if c.tags:
                tags = list(c.tags)
            elif d.critical:
                tags = ["rotating_light"]
            elif any(e.kind == "fired" for e in d.events):
                tags = ["warning"]
            else:
                tags = ["white_check_mark"]
            headers["Title"] = ascii_header(c.title or d.summary)
            headers["Priority"] = str(prio)
            headers["Tags"] = ascii_header(",".join(tags), 500)
            headers["Content-Type"] = "text/plain; charset=utf-8"
            return _fit_bytes(d.text_lines(), NTFY_MAX_BODY_BYTES).encode(), headers
        if self.kind == "slack":
            body: dict[str, Any] = {"text": slack_escape(d.text)}
        else:
            body = d.payload(self._clock())
        if "content-type" not in headers:
            headers["Content-Type"] = "application/json"
        return json.dumps(body, ensure_ascii=False).encode(), headers

    async def _send_http(self, d: Digest) -> None:
        assert self._url is not None
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                verify=self._ssl if self._ssl is not None else True,
                follow_redirects=False,
            )
        content, headers = self._http_request(d)
        try:
            resp = await asyncio.wait_for(
                self._client.post(self._url, content=content, headers=headers), self._timeout
            )
        except asyncio.TimeoutError:
            raise _Transient(f"timed out after {self._timeout:g}s") from None
        except httpx.TimeoutException as e:
            raise _Transient(f"timed out ({type(e).__name__})") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
            raise _Permanent(f"{type(e).__name__}: {self._scrub(str(e))}") from None
        except httpx.TransportError as e:
            cause = e.__cause__ or e.__context__
            if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY" in str(e):
                raise _Permanent(f"TLS certificate not trusted: {self._scrub(str(e))}") from None
            raise _Transient(f"{type(e).__name__}: {self._scrub(str(e)) or 'failed'}") from None
        code = resp.status_code
        if 200 <= code < 300:
            return
        what = f"HTTP {code} {resp.reason_phrase}".rstrip()
        snippet = self._scrub(resp.text[:200]) if resp.content else ""
        if snippet:
            what += f": {snippet}"
        if code in (408, 425, 429) or code >= 500:
            ra = _retry_after(resp.headers.get("Retry-After"), self._clock())
            raise _Transient(what, ra)
        raise _Permanent(what)

    def _email(self, d: Digest) -> EmailMessage:
        c = self.config
        assert c.sender is not None
        msg = EmailMessage()
        prefix = c.subject_prefix
        subject = d.summary if not prefix else f"{prefix} {d.summary}"
        msg["Subject"] = safe(subject, 250)
        msg["From"] = c.sender
        msg["To"] = ", ".join(c.to)
        msg["Date"] = email.utils.formatdate(self._clock(), usegmt=True)
        domain = email.utils.parseaddr(c.sender)[1].rpartition("@")[2] or "minertop.invalid"
        msg["Message-ID"] = email.utils.make_msgid("minertop", domain=domain)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(d.text + "\n")
        return msg

    def _smtp_session(
        self, msg: EmailMessage, holder: list[smtplib.SMTP], socks: list[socket.socket]
    ) -> dict[str, Any]:
        """Runs in a worker thread.  ``holder`` gets the session once the server has greeted,
        ``socks`` the socket as soon as it is connected (for :func:`_abort`)."""
        c = self.config
        assert c.host is not None
        mode = c.tls_mode
        ctx = self._ssl
        if ctx is None and mode != "none":
            ctx = ssl.create_default_context()
        s: smtplib.SMTP
        if mode == "ssl":
            s = _SMTPSSL(c.host, c.port, timeout=self._timeout, context=ctx, socks=socks)
        else:
            s = _SMTP(c.host, c.port, timeout=self._timeout, socks=socks)
        with s:
            holder.append(s)
            s.ehlo()
            if mode == "starttls":
                s.starttls(context=ctx)
                s.ehlo()
            if c.username is not None:
                s.login(c.username, self._password or "")
            refused = s.send_message(msg)
        return dict(refused)

    async def _send_email(self, d: Digest) -> None:
        msg = self._email(d)
        holder: list[smtplib.SMTP] = []
        socks: list[socket.socket] = []
        try:
            refused = await asyncio.wait_for(
                asyncio.to_thread(self._smtp_session, msg, holder, socks), self._timeout
            )
        except asyncio.TimeoutError:
            _abort(holder, socks)
            reason = f"timed out after {self._timeout:g}s"
            if socks and not holder and self.config.tls_mode != "ssl":
                # connected, but no greeting: what a server expecting implicit TLS does
                reason += (
                    ": connected, but the server sent no SMTP greeting (a port that expects "
                    'implicit TLS, like 465, stays silent: use tls = "ssl" there)'
                )
            raise _Transient(reason) from None
        except asyncio.CancelledError:
            _abort(holder, socks)
            raise
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _m in e.recipients.values()]
            reason = f"all recipients refused ({', '.join(str(x) for x in codes)})"
            if any(code >= 500 for code in codes):
                raise _Permanent(reason) from None
            raise _Transient(reason) from None
        except smtplib.SMTPResponseException as e:
            text = (
                e.smtp_error.decode("utf-8", "replace")
                if isinstance(e.smtp_error, bytes)
                else str(e.smtp_error)
            )
            reason = f"{type(e).__name__}: {e.smtp_code} {self._scrub(text)}"
            if 500 <= e.smtp_code < 600:
                raise _Permanent(reason) from None
            raise _Transient(reason) from None
        except smtplib.SMTPNotSupportedError as e:
            raise _Permanent(f"SMTPNotSupportedError: {self._scrub(str(e))}") from None
        except ssl.SSLCertVerificationError as e:
            raise _Permanent(f"TLS certificate not trusted: {self._scrub(str(e))}") from None
        except (smtplib.SMTPException, OSError) as e:
            raise _Transient(f"{type(e).__name__}: {self._scrub(str(e)) or 'failed'}") from None
        if refused:
            self._log.warning(
                "notify %s (%s): %d of %d recipients refused",
                self.name,
                self.where,
                len(refused),
                len(self.config.to),
            )


def _abort(holder: list[smtplib.SMTP], socks: Sequence[socket.socket] = ()) -> None:
    """Unblock a worker thread stuck in an SMTP session (its socket is shut down), also one
    still waiting for the server's greeting."""
    for sock in [*socks, *(getattr(s, "sock", None) for s in holder)]:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _SMTP(smtplib.SMTP):
    """:class:`smtplib.SMTP` that hands its socket over as soon as it is connected (the
    constructor then waits for the greeting, which a server may never send)."""

    def __init__(
        self, host: str, port: int, *, timeout: float, socks: list[socket.socket]
    ) -> None:
        self._socks = socks
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's own hook (SMTP_SSL and LMTP override it too); not in typeshed
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self._socks.append(sock)
        return sock


class _SMTPSSL(smtplib.SMTP_SSL):
    """:class:`smtplib.SMTP_SSL` (implicit TLS) that hands its socket over like :class:`_SMTP`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        context: ssl.SSLContext | None,
        socks: list[socket.socket],
    ) -> None:
        self._socks = socks
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's own hook (SMTP_SSL and LMTP override it too); not in typeshed
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self._socks.append(sock)
        return sock


# --------------------------------------------------------------------------- the hub


class NotifyHub:
    """All destinations of a site.  Use from the event loop's thread.

    ``timeout_s`` bounds one delivery attempt (a whole HTTP request or SMTP session);
    ``ssl_context`` replaces the system CAs for https, STARTTLS and implicit TLS (tests,
    private CAs).
    """

    def __init__(
        self,
        configs: Sequence[NotifyConfig],
        *,
        environ: Mapping[str, str] = os.environ,
        site_name: str = "site",
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
        retry_base_s: float = 5.0,
        retry_max_s: float = 600.0,
        timeout_s: float = 10.0,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_lines: int = DEFAULT_MAX_LINES,
        rng: random.Random | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._log = logger if logger is not None else log
        rng = rng if rng is not None else random.Random()
        self.notifiers: list[Notifier] = [
            Notifier(
                c,
                i,
                environ=environ,
                site_name=site_name,
                clock=clock,
                logger=self._log,
                retry_base_s=retry_base_s,
                retry_max_s=retry_max_s,
                timeout_s=timeout_s,
                queue_size=queue_size,
                max_lines=max_lines,
                rng=rng,
                ssl_context=ssl_context,
            )
            for i, c in enumerate(configs)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        for n in self.notifiers:
            if n.last_error is not None:
                self._log.error("notify %s (%s): %s", n.name, n.where, n.last_error)

    async def start(self) -> None:
        """Start one sender task per destination (events submitted before are kept)."""
        if self._tasks or self._stopped:
            return
        self._tasks = [
            asyncio.create_task(n.run(), name=f"minertop-notify:{n.name}") for n in self.notifiers
        ]

    async def stop(self, timeout: float = 3.0, *, handing_over: bool = False) -> None:
        """Give queued messages one immediate attempt for up to ``timeout`` seconds, then
        cancel what is left.  Never hangs; safe to call twice.  ``handing_over``: what is
        left goes to a new hub (:meth:`adopt`), so it is not reported as lost here."""
        self._stopped = True
        for n in self.notifiers:
            n.close()
        tasks, self._tasks = self._tasks, []
        if tasks:
            try:
                _done, pending = await asyncio.wait(tasks, timeout=max(0.0, timeout))
            finally:  # also when stop() itself is cancelled (e.g. a caller's wait_for)
                for t in tasks:
                    t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
            for t in tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    exc = t.exception()
                    self._log.error("notify task failed: %s", type(exc).__name__)
        for n in self.notifiers:
            await n.aclose()
            if n.pending and not handing_over:
                self._log.warning(
                    "notify %s (%s): %d events not delivered at shutdown",
                    n.name,
                    n.where,
                    n.pending,
                )

    def adopt(self, old: NotifyHub) -> None:
        """Take over the events a stopped hub could not deliver (a config reload): each goes
        to the destination configured the same way here, in order, and is sent with the next
        message; a destination that is gone or changed loses its events (logged)."""
        free = list(self.notifiers)
        for o in old.notifiers:
            events = [e for _seq, e in o._buf]
            o._buf.clear()
            if not events:
                continue
            heir = next((n for n in free if n.config == o.config), None)
            if heir is None:
                self._log.warning("notify %s (%s): %d events not delivered: the destination "
                                  "was removed or changed by the reload", o.name, o.where,
                                  len(events))
                continue
            free.remove(heir)
            heir.enqueue(events)
            self._log.info("notify %s (%s): %d events carried over the reload", heir.name,
                           heir.where, len(events))

    def submit(self, events: Sequence[AlertEvent]) -> None:
        """Queue one poll cycle's events (each destination gets at most one message for
        them).  Synchronous and non-blocking: filtering and appending only.  Ignored after
        :meth:`stop`; kept until :meth:`start` before it."""
        if not events or self._stopped:
            return
        for n in self.notifiers:
            mine = [e for e in events if accepts(n.config, e)]
            if mine:
                n.enqueue(mine)

    def status(self) -> list[dict[str, Any]]:
        """Per destination: name, kind, ok, last_error, last_sent, pending, failures (failed
        attempts since start), dropped (events lost to a full queue since start)."""
        return [n.status() for n in self.notifiers]

    @property
    def healthy(self) -> bool:
        """Every destination's last attempt succeeded (or none was needed yet)."""
        return all(n.ok for n in self.notifiers)

    def problem(self) -> str | None:
        """One line naming the destinations that fail now (None: all fine), for a header."""
        bad = [f"{n.name}: {n.last_error or 'failing'}" for n in self.notifiers if not n.ok]
        return "; ".join(bad) if bad else None
