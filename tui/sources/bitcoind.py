"""Chain facts from a Bitcoin Core node over JSON-RPC (HTTP Basic, cookie or user/password).

A poll costs one HTTP request when nothing changed (``getblockchaininfo``); otherwise it adds
batches (one JSON array per HTTP request, replies matched by ``id``):

- ``getblockhash`` for every required height not cached, plus - when the best block hash
  changed - the 6 newest cached heights; a height whose hash differs from the cache is
  re-read, and if even the 6th of them changed, the reorg is deeper: the cache is dropped;
- ``getblockheader`` for the new hashes (``time``, ``bits`` hex → int, ``difficulty``);
- ``getblockstats [h, ["totalfee"]]`` for blocks among the last 144 whose fees are unknown,
  in chunks of :data:`STATS_CHUNK` so that no single request approaches the read timeout on a
  slow disk.  Error code -1 ("Block not available (pruned data)") gives ``fees_sat=None`` and
  is not asked again for that block;
- the hashrate history: ``getnetworkhashps 144 h`` for ``h = tip, tip-144, ...`` (90 daily
  points, ``h >= 144``) with those blocks' timestamps (their hashes and headers ride along in
  the batches above), refreshed at most hourly or when 144 new blocks arrived.

Core answers a single request with HTTP 500 (404 for an unknown method) and a JSON error body,
and a batch with HTTP 200 and per-item errors; both are turned into one-line SourceErrors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from tui.model import FEE_WINDOW, Block, ChainSnapshot, HashratePoint, required_heights
from tui.sources.base import (
    DEFAULT_TIMEOUT,
    TRANSPORT_ERRORS,
    HttpSource,
    ShapeError,
    SourceError,
    as_list,
    as_object,
    decode_json,
    describe_transport_error,
    get_int,
    get_positive,
    get_str,
    get_time,
    one_line,
    only_source_errors,
    reply_shape,
    status_error,
    to_int,
    to_num,
)

#: getblockstats requests per HTTP request (each reads a block and its undo data from disk).
STATS_CHUNK = 24
#: Heights re-checked when the best block hash changed.
REORG_DEPTH = 6
#: Blocks per history point and number of points.
HISTORY_STEP = 144
HISTORY_POINTS = 90
HISTORY_REFRESH_S = 3600.0

RPC_MISC_ERROR = -1  #: e.g. "Block not available (pruned data)"
RPC_IN_WARMUP = -28
RPC_METHOD_NOT_FOUND = -32601

AUTH_HINT = "authentication failed (check --rpc-cookie or the RPC user/password)"


@dataclass(frozen=True, slots=True)
class _Cached:
    block: Block
    hash: str
    fees_final: bool = False  #: fees known, or known to be unavailable (pruned): don't ask


@dataclass(frozen=True, slots=True)
class _Header:
    hash: str
    height: int
    time: int
    bits: int
    difficulty: float


@dataclass(frozen=True, slots=True)
class RpcError:
    code: int | None
    message: str


def parse_header(doc: Any) -> _Header:
    d = as_object(doc, "a block header")
    bits_hex = get_str(d, "bits")
    try:
        bits = int(bits_hex, 16)
    except ValueError:
        raise ShapeError(f"'bits' is not hex ({bits_hex[:20]!r})") from None
    return _Header(
        hash=get_str(d, "hash"),
        height=get_int(d, "height"),
        time=get_time(d, "time"),
        bits=bits,
        difficulty=get_positive(d, "difficulty"),
    )


def parse_rpc_error(value: Any) -> RpcError:
    if isinstance(value, Mapping):
        code = value.get("code")
        message = value.get("message")
        return RpcError(
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            one_line(str(message)) if message is not None else "no message",
        )
    return RpcError(None, one_line(str(value)))


class BitcoindSource(HttpSource):
    """A :class:`~tui.model.ChainSource` reading Bitcoin Core's JSON-RPC."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8332",
        *,
        cookie_path: str | Path | None = None,
        user: str | None = None,
        password: str | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(url, kind="bitcoind", client=client, timeout=timeout, clock=clock,
                         follow_redirects=False)
        self.prefix = self.label  # "bitcoind 127.0.0.1:8332"
        self.cookie_path = Path(cookie_path).expanduser() if cookie_path is not None else None
        self._user = user
        self._password = password
        self._cookie: tuple[str, str] | None = None
        self._next_id = 0
        self._cache: dict[int, _Cached] = {}
        self._best: str | None = None
        self._stats_unsupported = False
        self._history: tuple[HashratePoint, ...] = ()
        self._history_at: float | None = None
        self._history_tip: int | None = None

    # ------------------------------------------------------------------ auth
    def _read_cookie(self) -> tuple[str, str]:
        path = self.cookie_path
        assert path is not None
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self.error(
                f"cookie file {path} not found (is the node running, and is this its "
                "<datadir>/.cookie?)"
            ) from None
        except PermissionError:
            raise self.error(f"cannot read cookie file {path}: permission denied") from None
        except IsADirectoryError:
            raise self.error(f"cookie file {path} is a directory") from None
        except (OSError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise self.error(f"cannot read cookie file {path}: {reason}") from None
        user, sep, secret = text.strip().partition(":")
        if not sep or not user or not secret:
            raise self.error(f"cookie file {path} is malformed (expected user:password)")
        return user, secret

    def _credentials(self) -> tuple[str, str] | None:
        if self._user is not None:
            return self._user, self._password or ""
        if self.cookie_path is not None:
            if self._cookie is None:
                self._cookie = self._read_cookie()
            return self._cookie
        return None

    # ------------------------------------------------------------------ transport
    async def _post(self, payload: Any, what: str) -> Any:
        """POST one JSON-RPC request or batch; returns the decoded JSON reply.

        HTTP errors that carry a JSON-RPC body (Core's 500/404/400) are returned as parsed;
        anything else that is not HTTP 200 raises SourceError.
        """
        body = json.dumps(payload).encode()
        reread = False
        while True:
            creds = self._credentials()
            try:
                resp = await self._client.post(
                    self.base_url,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    auth=httpx.BasicAuth(*creds) if creds else httpx.USE_CLIENT_DEFAULT,
                    timeout=self._timeout,
                    follow_redirects=False,
                )
            except TRANSPORT_ERRORS as e:
                raise self.error(describe_transport_error(e, self._timeout)) from None
            if resp.status_code == 401 and self._user is None and self.cookie_path is not None:
                if not reread:
                    # The node rewrites its cookie on every restart: read it again, once.
                    reread = True
                    self._cookie = None
                    if self._credentials() != creds:
                        continue
            break
        if resp.status_code == 401:
            raise self.error(AUTH_HINT)
        if resp.status_code == 403:
            raise self.error("access denied (HTTP 403): is this host allowed by rpcallowip?")
        if resp.status_code == 200:
            return decode_json(self.prefix, resp, what)
        if resp.status_code in (400, 404, 500):
            try:
                doc = json.loads(resp.content)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and doc.get("error") is not None:
                return doc
        raise status_error(self.prefix, resp, what, self._now())

    def _rpc_failure(self, method: str, err: RpcError) -> SourceError:
        if err.code == RPC_IN_WARMUP:
            return self.error(f"node is starting: {err.message}")
        code = f" (code {err.code})" if err.code is not None else ""
        return self.error(f"{method} failed: {err.message}{code}")

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _call(self, method: str, params: Sequence[Any] = ()) -> Any:
        doc = await self._post(
            {"jsonrpc": "1.0", "id": self._new_id(), "method": method, "params": list(params)},
            method,
        )
        with reply_shape(self.prefix, method):
            reply = as_object(doc)
            if reply.get("error") is not None:
                raise self._rpc_failure(method, parse_rpc_error(reply["error"]))
            return reply["result"]

    async def _batch(
        self, method: str, params_list: Sequence[Sequence[Any]]
    ) -> list[tuple[Any, RpcError | None]]:
        """One HTTP request carrying ``method`` once per params; replies in request order."""
        if not params_list:
            return []
        ids = [self._new_id() for _ in params_list]
        payload = [
            {"jsonrpc": "1.0", "id": i, "method": method, "params": list(p)}
            for i, p in zip(ids, params_list, strict=True)
        ]
        what = f"{method} batch"
        doc = await self._post(payload, what)
        with reply_shape(self.prefix, what):
            if isinstance(doc, dict) and doc.get("error") is not None:
                raise self._rpc_failure(method, parse_rpc_error(doc["error"]))
            by_id: dict[Any, Mapping[str, Any]] = {}
            for item in as_list(doc):
                item = as_object(item, "a batch item")
                by_id[item.get("id")] = item
            out: list[tuple[Any, RpcError | None]] = []
            for i in ids:
                if i not in by_id:
                    raise ShapeError(f"no reply for request id {i}")
                item = by_id[i]
                if item.get("error") is not None:
                    out.append((None, parse_rpc_error(item["error"])))
                else:
                    out.append((item["result"], None))
            return out

    async def _batch_ok(self, method: str, params_list: Sequence[Sequence[Any]]) -> list[Any]:
        """Like :meth:`_batch`, but any per-item error fails the poll."""
        results = []
        for result, err in await self._batch(method, params_list):
            if err is not None:
                raise self._rpc_failure(method, err)
            results.append(result)
        return results

    # ------------------------------------------------------------------ steps
    async def _hashes(self, heights: Iterable[int]) -> dict[int, str]:
        hs = sorted(set(heights))
        results = await self._batch_ok("getblockhash", [[h] for h in hs])
        with reply_shape(self.prefix, "getblockhash batch"):
            return {h: to_str_hash(r) for h, r in zip(hs, results, strict=True)}

    async def _headers(self, hashes: Mapping[int, str]) -> dict[int, _Header]:
        hs = sorted(hashes)
        results = await self._batch_ok("getblockheader", [[hashes[h]] for h in hs])
        out: dict[int, _Header] = {}
        with reply_shape(self.prefix, "getblockheader batch"):
            for h, r in zip(hs, results, strict=True):
                hdr = parse_header(r)
                if hdr.height != h or hdr.hash != hashes[h]:
                    raise ShapeError(f"asked for block {h} {hashes[h][:16]}…, got {hdr.height}")
                out[h] = hdr
        return out

    async def _fees(self, tip: int) -> None:
        if self._stats_unsupported:
            return
        todo = [
            h
            for h in range(max(0, tip - FEE_WINDOW + 1), tip + 1)
            if h in self._cache and not self._cache[h].fees_final
        ]
        for start in range(0, len(todo), STATS_CHUNK):
            chunk = todo[start : start + STATS_CHUNK]
            replies = await self._batch("getblockstats", [[h, ["totalfee"]] for h in chunk])
            for h, (result, err) in zip(chunk, replies, strict=True):
                c = self._cache[h]
                if err is not None:
                    if err.code == RPC_MISC_ERROR:  # pruned (or no undo data): fees unknown
                        self._cache[h] = replace(c, fees_final=True)
                        continue
                    if err.code == RPC_METHOD_NOT_FOUND:
                        self._stats_unsupported = True
                        return
                    raise self._rpc_failure("getblockstats", err)
                with reply_shape(self.prefix, "getblockstats batch"):
                    fee = to_int(as_object(result)["totalfee"], "totalfee")
                self._cache[h] = replace(c, block=replace(c.block, fees_sat=fee), fees_final=True)

    def _history_due(self, tip: int) -> bool:
        if self._history_at is None or self._history_tip is None:
            return True
        if self._now() - self._history_at >= HISTORY_REFRESH_S:
            return True
        return abs(tip - self._history_tip) >= HISTORY_STEP

    # ------------------------------------------------------------------ poll
    async def fetch(self) -> ChainSnapshot:
        with only_source_errors(self.prefix):
            return await self._fetch()

    async def _fetch(self) -> ChainSnapshot:
        info = await self._call("getblockchaininfo")
        with reply_shape(self.prefix, "getblockchaininfo"):
            info = as_object(info)
            tip = get_int(info, "blocks")
            best = get_str(info, "bestblockhash")
            if tip < 0:
                raise ShapeError(f"negative block count {tip}")
        required = required_heights(tip)
        for h in [h for h in self._cache if h > tip]:
            del self._cache[h]

        recheck: set[int] = set()
        if best != self._best and self._cache:
            # Re-check the newest cached heights (the old tip and the 5 below it).
            top = max(self._cache)
            recheck = {h for h in range(top - REORG_DEPTH + 1, top + 1) if h in self._cache}
        history_due = self._history_due(tip)
        hist_heights = []
        if history_due:
            hist_heights = [tip - HISTORY_STEP * i for i in range(HISTORY_POINTS)]
            hist_heights = [h for h in hist_heights if h >= HISTORY_STEP]

        want = {h for h in required if h not in self._cache} | recheck
        want |= {h for h in hist_heights if h not in self._cache}
        hashes = await self._hashes(want) if want else {}
        if recheck:
            lowest = min(recheck)
            if self._cache[lowest].hash != hashes[lowest]:
                # Even the block REORG_DEPTH back changed: the reorg may be deeper. Start over.
                self._cache.clear()
                more = (set(required) | set(hist_heights)) - set(hashes)
                if more:
                    hashes.update(await self._hashes(more))

        need = {
            h: hx for h, hx in hashes.items() if h not in self._cache or self._cache[h].hash != hx
        }
        headers = await self._headers(need) if need else {}
        req_set = set(required)
        for h, hdr in headers.items():
            if h in req_set:
                block = Block(height=h, time=hdr.time, bits=hdr.bits, difficulty=hdr.difficulty)
                self._cache[h] = _Cached(block, hdr.hash)

        if history_due:
            await self._fetch_history(tip, hist_heights, headers)

        await self._fees(tip)
        for h in [h for h in self._cache if h not in req_set]:
            del self._cache[h]
        self._best = best
        return ChainSnapshot(
            source=self.label,
            fetched_at=self._now(),
            tip_height=tip,
            blocks=tuple(self._cache[h].block for h in required),
            history=self._history,
        )

    async def _fetch_history(
        self, tip: int, heights: list[int], headers: Mapping[int, _Header]
    ) -> None:
        times: dict[int, int] = {}
        for h in heights:
            if h in headers:
                times[h] = headers[h].time
            else:
                times[h] = self._cache[h].block.time
        results = await self._batch_ok(
            "getnetworkhashps", [[HISTORY_STEP, h] for h in heights]
        )
        with reply_shape(self.prefix, "getnetworkhashps batch"):
            points = [
                HashratePoint(time=times[h], hashrate=to_num(r, "hashrate"))
                for h, r in zip(heights, results, strict=True)
            ]
        # Oldest first by height (block timestamps are not monotonic).
        order = sorted(range(len(heights)), key=lambda i: heights[i])
        self._history = tuple(points[i] for i in order)
        self._history_at = self._now()
        self._history_tip = tip

    # ------------------------------------------------------------------ introspection
    @property
    def cached_heights(self) -> list[int]:
        return sorted(self._cache)


def to_str_hash(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ShapeError(f"not a block hash: {str(value)[:20]!r}")
    return value
