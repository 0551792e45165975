"""The dashboard attached to a running daemon: an engine that reads the daemon's views.

:class:`RemoteEngine` offers what the dashboard asks of an engine (subscribe, refresh, pause,
history), fed by the daemon's HTTP API instead of its own sources: ``GET /api/v1/view``
(with ``If-None-Match``, so an unchanged view costs a 304) every couple of seconds,
``/api/v1/alerts`` for the events, and ``/api/v1/rigs/<name>/history`` for a rig's detail
screen over the last hour, day, week or month.  When the daemon goes away, the last view
stays on screen with an error that says so and how old the data is, and the engine keeps
retrying until the daemon is back.  No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import httpx

from tui.alerts import Alert, AlertEvent
from tui.engine import EngineView, view_from_wire
from tui.history import RigHistory, Sample
from tui.sources.base import USER_AGENT, describe_transport_error, host_label
from tui.wire import WireError

log = logging.getLogger("minertop")

POLL_S = 2.0  #: how often the daemon's view is asked for (a 304 when nothing changed)
RECOMPUTE_S = 30.0  #: the projection moves with the clock: recompute between views
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
SPANS = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0, "month": 30 * 86400.0}
HISTORY_FRESH_S = 30.0


class RemoteError(Exception):
    """The daemon could not be read: one line."""


def _headers(token: str | None) -> dict[str, str]:
    h = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


async def _get_json(client: httpx.AsyncClient, url: str, path: str) -> Any:
    try:
        r = await client.get(url + path)
    except httpx.HTTPError as e:
        raise RemoteError(f"daemon {host_label(url)}: {describe_transport_error(e, TIMEOUT)}"
                          ) from None
    if r.status_code == 401:
        raise RemoteError(f"daemon {host_label(url)}: unauthorized (give the token with "
                          "--token-file PATH or $MINERTOP_TOKEN)")
    if r.status_code != 200:
        try:
            detail = r.json().get("error", "")
        except (ValueError, AttributeError):
            detail = ""
        raise RemoteError(f"daemon {host_label(url)}: HTTP {r.status_code} on {path}"
                          + (f": {detail}" if detail else ""))
    try:
        return r.json()
    except ValueError:
        raise RemoteError(f"daemon {host_label(url)}: malformed JSON on {path}") from None


async def fetch_snapshot(url: str, token: str | None) -> Any:
    """``GET /api/v1/snapshot``: the ``--once --json`` document of the last cycle."""
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=_headers(token)) as c:
        return await _get_json(c, url.rstrip("/"), "/api/v1/snapshot")


async def fetch_view(url: str, token: str | None, clock: Callable[[], float] = time.time
                     ) -> EngineView:
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=_headers(token)) as c:
        doc = await _get_json(c, url.rstrip("/"), "/api/v1/view")
    try:
        return view_from_wire(doc, clock())
    except WireError as e:
        raise RemoteError(f"daemon {host_label(url)}: {e}") from None


def history_from_points(points: Sequence[dict[str, Any]],
                        events: Sequence[AlertEvent] = ()) -> RigHistory:
    """A rig's daemon history as the detail screen's :class:`RigHistory`: status changes
    (down at 03:02, back at 03:40) and the rig's alerts (which say how: "a-07 offline for
    5m: connection refused") become its dated event lines, in time order."""
    hist = RigHistory(capacity=max(4, min(len(points), 2000)))
    lines: list[tuple[float, str]] = []
    last_status = None
    for p in points:
        t = float(p["t"])
        status = p.get("status")
        if status != last_status and (last_status is not None or status != "ok"):
            lines.append((t, f"{last_status} → {status}" if last_status else f"{status}"))
        last_status = status
        if status == "ok":
            hist.add(Sample(time=t, hashrate_ths=p.get("hashrate_ths"), power_w=p.get("power_w"),
                            temp_c=p.get("temp_max_c"), fan_rpm=None,
                            margin_usd_day=p.get("margin_usd_day")))
    for e in events:
        lines.append((e.time, f"alert {e.kind}: {e.alert.message}"))
    for t, line in sorted(lines, key=lambda x: x[0]):
        hist.error(t, line)
    return hist


class RemoteEngine:
    """An engine whose views come from a daemon (see the module notes)."""

    def __init__(self, url: str, token: str | None = None, *,
                 clock: Callable[[], float] = time.time, poll_s: float = POLL_S) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.clock = clock
        self.poll_s = poll_s
        self.paused = False
        self.has_site = False
        self.latest: EngineView | None = None
        self.history_span = SPANS["hour"]
        self._subs: list[Callable[[EngineView], None]] = []
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._etag: str | None = None
        self._wire_view: EngineView | None = None  #: the daemon's view as last received
        self._error: str | None = None
        self._last_ok: float | None = None
        self._events_since: float | None = None
        self._computed_at = 0.0
        self._dashboard_of: EngineView | None = None
        self._dashboard: Any = None
        self._histories: dict[str, tuple[float, float, RigHistory]] = {}
        self._fetching: set[str] = set()
        self._bg: set[asyncio.Task[None]] = set()
        self.label = f"daemon {host_label(self.url)}"
        self._started_at = clock()

    def link_status(self) -> tuple[str, float | None]:
        """For the header: the daemon's address, and how long it has not answered (None:
        it answers)."""
        if self._error is None:
            return self.label, None
        since = self._last_ok if self._last_ok is not None else self._started_at
        return self.label, max(0.0, self.clock() - since)

    # ------------------------------------------------------------------ EngineLike
    def subscribe(self, callback: Callable[[EngineView], None]) -> Callable[[], None]:
        self._subs.append(callback)
        return lambda: self._subs.remove(callback) if callback in self._subs else None

    async def start(self) -> None:
        self._started_at = self.clock()
        self._client = httpx.AsyncClient(timeout=TIMEOUT, headers=_headers(self.token))
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="minertop-attach")

    async def stop(self) -> None:
        for t in list(self._bg):
            t.cancel()
        await asyncio.gather(*self._bg, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused  # the daemon goes on; the dashboard holds its view

    def refresh(self) -> None:
        self._wake.set()

    def scale_intervals(self, factor: float) -> str:
        return "the daemon's own schedule (attached: change it in the daemon's config)"

    def set_history_span(self, name: str) -> str:
        self.history_span = SPANS[name]
        self._histories.clear()
        self.refresh()
        return name

    def history_for(self, rig_id: str) -> RigHistory:
        """The rig's history over :attr:`history_span` (fetched in the background: the next
        view redraws the detail screen with it)."""
        got = self._histories.get(rig_id)
        now = self.clock()
        if (got is None or now - got[0] > HISTORY_FRESH_S) and rig_id not in self._fetching:
            self._fetching.add(rig_id)
            task = asyncio.get_running_loop().create_task(self._fetch_history(rig_id))
            self._bg.add(task)  # kept (not garbage-collected mid-run), cancelled at stop
            task.add_done_callback(self._bg.discard)
        return got[2] if got is not None else RigHistory()

    # ------------------------------------------------------------------ polling
    async def _loop(self) -> None:
        await self._fetch_alerts(initial=True)
        while True:
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: log it, keep attached
                log.exception("reading the daemon failed unexpectedly")
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def _poll(self) -> None:
        assert self._client is not None
        headers = {"If-None-Match": self._etag} if self._etag else {}
        try:
            r = await self._client.get(self.url + "/api/v1/view", headers=headers)
            if r.status_code == 304:
                self._ok()
                if self.clock() - self._computed_at >= RECOMPUTE_S:
                    self._republish()
                return
            if r.status_code != 200:
                raise RemoteError(f"{self.label}: HTTP {r.status_code}"
                                  + (" (unauthorized: check the token)"
                                     if r.status_code == 401 else ""))
            # 5,000 rigs: ~0.15 s to parse and rebuild: off the dashboard's loop
            body, now = r.content, self.clock()
            view = await asyncio.to_thread(lambda: view_from_wire(json.loads(body), now))
            self._etag = r.headers.get("ETag")
        except httpx.HTTPError as e:
            self._down(describe_transport_error(e, TIMEOUT))
            return
        except (RemoteError, WireError, ValueError) as e:
            self._down(str(e).removeprefix(f"{self.label}: "))
            return
        self._wire_view = view
        self.has_site = view.has_site
        self._ok()
        await self._fetch_alerts()
        self._republish()

    def _ok(self) -> None:
        if self._error is not None:
            log.info("%s: back", self.label)
        self._error = None
        self._last_ok = self.clock()

    def _down(self, reason: str) -> None:
        if self._error != reason:
            log.warning("%s: %s", self.label, reason)
        self._error = reason
        self._republish()

    def _republish(self, events: tuple[AlertEvent, ...] = ()) -> None:
        now = self.clock()
        base = self._wire_view
        errors: dict[str, str] = dict(base.errors) if base else {}
        label = base.source_label if base else self.label
        if self._error is not None:
            errors["daemon"] = f"{self.label} unreachable: {self._error}"
        if base is None:
            view = EngineView(seq=0, time=now, source_label=label, paused=False, chain=None,
                              price=None, dashboard=None, site=None, cycle=False,
                              sources=MappingProxyType({}), alerts_active=(),
                              alert_events=events, errors=MappingProxyType(errors),
                              has_site=False)
        else:
            if base is not self._dashboard_of:
                self._dashboard_of, self._dashboard = base, base.dashboard
                self._computed_at = now
            elif base.chain is not None and now - self._computed_at >= RECOMPUTE_S:
                from tui.dashboard import compute

                self._dashboard = compute(base.chain, base.price, now, base.hashprice_recorded)
                self._computed_at = now
            dashboard = self._dashboard
            view = replace(base, seq=base.seq, source_label=label, dashboard=dashboard,
                           alert_events=events, errors=MappingProxyType(errors),
                           cycle=base.cycle)
        self.latest = view
        for cb in list(self._subs):
            try:
                cb(view)
            except Exception:
                log.exception("a view subscriber failed")

    async def _fetch_alerts(self, initial: bool = False) -> None:
        """New alert events since the last look (the first look: the last day)."""
        assert self._client is not None
        now = self.clock()
        since = self._events_since if self._events_since is not None else now - 86400
        try:
            doc = await _get_json(self._client, self.url, f"/api/v1/alerts?since={since:.3f}")
        except RemoteError:
            return
        events = [e for e in _events(doc.get("events", []) if isinstance(doc, dict) else [])
                  if self._events_since is None or e.time > self._events_since]
        if events:
            self._events_since = max(ev.time for ev in events)
        elif self._events_since is None:
            self._events_since = now
        if events and (initial or self._wire_view is not None):
            self._republish(tuple(events))

    async def alert_events(self) -> list[AlertEvent]:
        """The daemon's alert events over :attr:`history_span`, oldest first."""
        assert self._client is not None
        now = self.clock()
        doc = await _get_json(self._client, self.url,
                              f"/api/v1/alerts?since={now - self.history_span:.0f}")
        return _events(doc.get("events", []) if isinstance(doc, dict) else [])

    async def _fetch_history(self, rig_id: str) -> None:
        try:
            assert self._client is not None
            now = self.clock()
            since = now - self.history_span
            doc = await _get_json(self._client, self.url,
                                  f"/api/v1/rigs/{quote(rig_id, safe='')}/history"
                                  f"?since={since:.0f}&until={now:.0f}")
            alerts = await _get_json(self._client, self.url,
                                     f"/api/v1/alerts?since={since:.0f}&until={now:.0f}")
            mine = [e for e in _events(alerts.get("events", []) if isinstance(alerts, dict)
                                       else []) if e.alert.subject == rig_id]
            hist = history_from_points(list(doc.get("points", [])), mine)
            self._histories[rig_id] = (now, self.history_span, hist)
            self._republish()
        except RemoteError as e:
            log.warning("rig %s history: %s", rig_id, e)
        except Exception:
            log.exception("reading rig %s history failed", rig_id)
        finally:
            self._fetching.discard(rig_id)


def _events(items: list[Any]) -> list[AlertEvent]:
    """Alert events from the daemon's ``/api/v1/alerts`` (malformed entries are skipped)."""
    out = []
    for e in items:
        try:
            t = float(e["t"])
            out.append(AlertEvent(e["kind"], Alert(
                key=str(e["key"]), subject=str(e["subject"]), kind=e["alert_kind"],
                severity=e["severity"], message=str(e["message"]), since=t), t))
        except (KeyError, TypeError, ValueError):
            continue
    return out
