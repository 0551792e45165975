"""A live power price: ``GET`` a URL, read the number at a dotted path of its JSON reply.

Configured by ``[site.power_feed]`` (:class:`~tui.tariff.PowerFeedConfig`)::

    [site.power_feed]
    url = "https://prices.example.com/ercot/hb_north"
    path = "data.0.price"      # object keys and list indexes (0 = first, -1 = last)
    unit = "usd_mwh"           # or "usd_kwh"
    interval_s = 300

``fetch()`` returns a :class:`~tui.tariff.PowerPriceSnapshot` in US$/kWh (a $/MWh figure is
divided by 1000) or raises a one-line :class:`~tui.sources.base.SourceError` naming the feed
and what is wrong, e.g. ``power feed https://prices.example.com/x: data.0.price is "n/a",
expected a number``.  A number given as a JSON string (``"42.10"``) is accepted.  A negative
price is used as it is: real-time markets (ERCOT, for one) go below zero, and then running
costs nothing (the site is paid to draw power), which the margins and the curtailment advice
must show.  A price beyond ±10 $/kWh is refused (the tariff stays in force).  The engine
polls it like every source (backoff, Retry-After on HTTP 429); while its last price is fresh
it wins over the tariff (:func:`tui.tariff.tariff_now`).

Safety: every request has a timeout and the whole fetch a deadline; redirects are followed
only within the same scheme, host and port (at most 3); the reply body is capped
(:data:`MAX_BODY_BYTES`, counted after decompression, which stops there).  Messages never
show the URL's query string or credentials (an API key often lives there), not even echoed
back in an error body: the password, the query string, every query value and the
``token_env`` token (those of 4 characters or more) are replaced by ``***``, and an error
body cut at 4 KiB never ends in the first characters of one.  No Textual here.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from tui.sources.base import (
    DEFAULT_TIMEOUT,
    TRANSPORT_ERRORS,
    HttpSource,
    SourceError,
    decode_json,
    describe_transport_error,
    host_label,
    only_source_errors,
    plain_response,
    status_error,
)
from tui.tariff import MAX_USD_KWH, PowerFeedConfig, PowerPriceSnapshot

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_REDIRECTS",
    "PathError",
    "PowerFeedSource",
    "display_url",
    "read_path",
    "to_usd_kwh",
]

#: Largest reply read (a price, or a day of them, is a few kB).
MAX_BODY_BYTES = 1 << 20
#: Bytes of an error reply kept (for the message; after decompression).
_ERROR_BODY_BYTES = 4096
MAX_REDIRECTS = 3
#: The whole fetch (connect, redirects, body) must finish within this.
DEADLINE_S = 30.0
_UNIT_LABEL = {"usd_kwh": "$/kWh", "usd_mwh": "$/MWh"}
_PER_KWH = {"usd_kwh": 1.0, "usd_mwh": 1000.0}


class PathError(ValueError):
    """The path doesn't lead to a usable number (the message names the path)."""


def display_url(url: str) -> str:
    """``scheme://host[:port]/path`` — no credentials, no query (``?…`` if there was one)."""
    parts = urlsplit(url)
    tail = "?…" if parts.query else ""
    return f"{parts.scheme}://{host_label(url)}{parts.path.rstrip('/')}{tail}"


def _shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + '..."'


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def read_path(doc: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` (object keys; list indexes, ``-1`` the last); ``PathError``."""
    full = ".".join(path)
    cur = doc
    for k, seg in enumerate(path):
        here = ".".join(path[:k]) or "the top of the reply"
        if isinstance(cur, dict):
            if seg not in cur:
                keys = list(cur)
                some = ", ".join(json.dumps(x, ensure_ascii=False) for x in keys[:6])
                more = ", …" if len(keys) > 6 else ""
                has = f" (it has {some}{more})" if keys else " (it is empty)"
                raise PathError(f'{full} not found: the object at {here} has no key '
                                f'{json.dumps(seg, ensure_ascii=False)}{has}')
            cur = cur[seg]
        elif isinstance(cur, list):
            try:
                i = int(seg)
            except ValueError:
                raise PathError(f"{full} not found: {here} is a list, so {seg!r} must be an "
                                "index like 0 (or -1 for the last item)") from None
            if not -len(cur) <= i < len(cur):
                raise PathError(f"{full} not found: the list at {here} has {len(cur)} "
                                f"item{'s' if len(cur) != 1 else ''}")
            cur = cur[i]
        else:
            raise PathError(f"{full} not found: {here} is {_kind(cur)} ({_shown(cur)}), "
                            "not an object or a list")
    return cur


def to_usd_kwh(value: Any, path_text: str, unit: str) -> float:
    """The feed's number in US$/kWh; ``PathError`` if it isn't a plausible price."""
    num: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        num = float(value)
    elif isinstance(value, str):
        try:
            num = float(value.strip())
        except ValueError:
            num = None
    if num is None or not math.isfinite(num):
        raise PathError(f"{path_text} is {_shown(value)}, expected a number")
    label = _UNIT_LABEL[unit]
    usd_kwh = num / _PER_KWH[unit]
    if usd_kwh < -MAX_USD_KWH:
        shown = f" ({usd_kwh:g} $/kWh)" if unit != "usd_kwh" else ""
        raise PathError(f"{path_text} is {num:g} {label}{shown}, under the "
                        f"−{MAX_USD_KWH:g} $/kWh limit")
    if usd_kwh > MAX_USD_KWH:
        hint = ""
        if unit == "usd_kwh" and num / 1000 <= MAX_USD_KWH:
            hint = '; is the feed in $/MWh? (then set unit = "usd_mwh")'
        shown = f" ({usd_kwh:g} $/kWh)" if unit != "usd_kwh" else ""
        raise PathError(f"{path_text} is {num:g} {label}{shown}, over the "
                        f"{MAX_USD_KWH:g} $/kWh limit{hint}")
    return usd_kwh


class PowerFeedSource(HttpSource):
    """Polls ``cfg.url`` and reads ``cfg.path`` of the JSON reply (see the module doc)."""

    def __init__(
        self,
        cfg: PowerFeedConfig,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        environ: Mapping[str, str] = os.environ,
        max_bytes: int = MAX_BODY_BYTES,
        deadline_s: float = DEADLINE_S,
    ) -> None:
        super().__init__(cfg.url, kind="power feed", client=client, timeout=timeout,
                         clock=clock, prefix=f"power feed {display_url(cfg.url)}",
                         follow_redirects=False)
        self.cfg = cfg
        self.url = cfg.url
        self.interval = cfg.interval_s
        self.max_bytes = int(max_bytes)
        self.deadline_s = float(deadline_s)
        self._environ = environ
        #: the URL's path, for "HTTP 500 on /path" (never the query: it may hold a key)
        self._what = urlsplit(cfg.url).path or "/"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        var = self.cfg.token_env
        if var is not None:
            token = self._environ.get(var)
            if not token:
                raise self.error(f"environment variable {var} (token_env) is not set")
            self.add_secret(token)
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def fetch(self) -> PowerPriceSnapshot:
        with only_source_errors(self.prefix, self.scrub):
            try:
                resp = await asyncio.wait_for(self._get_final(), self.deadline_s)
            except asyncio.TimeoutError:
                raise self.error(f"no complete reply within {self.deadline_s:g} s") from None
            if not resp.is_success:
                raise status_error(self.prefix, resp, self._what, self._now(), self.scrub)
            doc = decode_json(self.prefix, resp, self._what)
            try:
                value = read_path(doc, self.cfg.path)
                usd_kwh = to_usd_kwh(value, self.cfg.path_text, self.cfg.unit)
            except PathError as e:
                raise self.error(str(e)) from None
            return PowerPriceSnapshot(
                usd_kwh=usd_kwh,
                fetched_at=self._now(),
                source=self.label,
                value=usd_kwh * _PER_KWH[self.cfg.unit],
                unit=self.cfg.unit,
            )

    async def _get_final(self) -> httpx.Response:
        """GET the URL, following same-origin redirects only; the body read and capped."""
        url = self.url
        headers = self._headers()
        for _hop in range(MAX_REDIRECTS + 1):
            resp = await self._get_once(url, headers)
            if not resp.is_redirect:
                return resp
            location = resp.headers.get("Location", "")
            try:
                target = httpx.URL(url).join(location)
            except (httpx.InvalidURL, ValueError):
                raise self.error(f"HTTP {resp.status_code} redirect to a bad URL") from None
            here = httpx.URL(url)
            if (target.scheme, target.host, target.port) != (here.scheme, here.host, here.port):
                raise self.error(
                    f"HTTP {resp.status_code} redirect to another host or scheme "
                    f"({target.scheme}://{host_label(str(target))}): not followed; put the "
                    "final URL in the config"
                )
            url = str(target)
        raise self.error(f"more than {MAX_REDIRECTS} redirects")

    async def _get_once(self, url: str, headers: dict[str, str]) -> httpx.Response:
        try:
            async with self._stream(
                "GET", url, headers=headers, timeout=self._timeout, follow_redirects=False
            ) as resp:
                ok = resp.is_success
                limit = self.max_bytes if ok else _ERROR_BODY_BYTES
                declared = resp.headers.get("Content-Length", "").strip()
                if ok and declared.isascii() and declared.isdigit() and len(declared) < 30 \
                        and int(declared) > limit:
                    raise self.error(self._too_large(int(declared)))
                # decoded in bounded steps; an error body cut short ends before any secret
                # the cut split (the message is scrubbed later, and only of whole secrets)
                body = await self._read_body(resp, limit, cut=not ok)
                if body is None:
                    raise self.error(self._too_large(None))
                return plain_response(resp, body)
        except SourceError:
            raise
        except TRANSPORT_ERRORS as e:
            raise self.error(describe_transport_error(e, self._timeout)) from None

    def _too_large(self, declared: int | None) -> str:
        size = f" ({declared:,} bytes)" if declared is not None else ""
        return f"reply too large{size}: more than {self.max_bytes:,} bytes on {self._what}"

