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

The squeeze figures (:mod:`tui.squeeze`) add two optional steps; a failure of either is kept
in :attr:`BitcoindSource.optional_errors` and leaves that part empty (or at its last value)
while the rest of the poll goes on:

- the difficulty adjustments, from the headers at the retarget heights: for the last
  :data:`ADJUSTMENT_EPOCHS` retargets (~5 years) one ``getblockhash`` batch and one
  ``getblockheader`` batch for heights ``e`` and ``e - 1`` (new and previous difficulty).
  Those headers never change, so this costs two requests on the first poll and two per new
  epoch; the current epoch's pair rides in the required heights;
- the 30-days-ago window, time-based: the 144 blocks ending at the last block (highest
  height) whose timestamp is <= now - 30 days, from ``getblockstats h ["totalfee",
  "subsidy", "time"]`` (batched by :data:`STATS_CHUNK`).  The first poll estimates the height
  by interpolating between the retarget headers around the cutoff (else from the 7-day block
  rate), reads a grid of 17 blocks 24 apart around it, then the blocks it needs; they are
  cached by height and reading goes 24 blocks ahead, so later polls cost a request every few
  hours.  On a pruned node whose ``pruneheight`` is above the window
  the step asks nothing; if ``getblockstats`` answers "Block not available (pruned data)"
  the window is None (no error) and is tried again after an hour.

Core answers a single request with HTTP 500 (404 for an unknown method) and a JSON error body,
and a batch with HTTP 200 and per-item errors; both are turned into one-line SourceErrors.

Safety: every request has a timeout and a whole-request deadline (``deadline_s``,
:data:`~tui.sources.base.REQUEST_DEADLINE_S`), and its reply body is capped (``max_bytes``,
:data:`~tui.sources.base.MAX_REPLY_BYTES`, counted after decompression; the largest batch,
~260 headers, is ~200 kB); ``bits`` must be at most 8 hex digits.  Messages never show the
RPC password, the cookie's secret or the URL's credentials and query.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from tui.chain import RETARGET_INTERVAL
from tui.model import (
    FEE_WINDOW,
    Block,
    BlockWindow,
    ChainSnapshot,
    DifficultyAdjustment,
    HashratePoint,
    required_heights,
)
from tui.sources.base import (
    DEFAULT_TIMEOUT,
    MAX_REPLY_BYTES,
    REQUEST_DEADLINE_S,
    HttpSource,
    ShapeError,
    SourceError,
    as_list,
    as_object,
    basic_token,
    decode_json,
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
from tui.squeeze import WINDOW_AGO_S, search_window_end

#: getblockstats requests per HTTP request (each reads a block and its undo data from disk).
STATS_CHUNK = 24
#: Heights re-checked when the best block hash changed.
REORG_DEPTH = 6
#: Blocks per history point and number of points.
HISTORY_STEP = 144
HISTORY_POINTS = 90
HISTORY_REFRESH_S = 3600.0

#: Retargets whose headers give the adjustment history (130 x ~2 weeks: ~5 years).
ADJUSTMENT_EPOCHS = 130
#: The 30-days-ago window: blocks read per step, the first poll's grid, and a cap per poll.
WINDOW_CHUNK = STATS_CHUNK
WINDOW_GRID = 8  #: grid heights estimate +- 24 x k for k in -8..8
WINDOW_MAX_BATCHES = 16
#: When the cutoff is this far past the cached window, estimate its height again.
WINDOW_REANCHOR_S = 6 * 3600.0
WINDOW_RETRY_S = 300.0
WINDOW_PRUNED_RETRY_S = 3600.0
#: Margin (blocks) below the estimated window when comparing with a pruned node's pruneheight.
PRUNE_MARGIN = 1000

RPC_MISC_ERROR = -1  #: e.g. "Block not available (pruned data)"
RPC_IN_WARMUP = -28
RPC_METHOD_NOT_FOUND = -32601

AUTH_HINT = "authentication failed (check --rpc-cookie or the RPC user/password)"
#: ``bits`` as Core prints it: a uint32 in hex, at most 8 digits, no sign, no prefix.
_BITS_HEX = re.compile(r"[0-9a-fA-F]{1,8}")


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
class _Stats:
    time: int
    fee: int
    subsidy: int


class _Pruned(Exception):
    """getblockstats said "Block not available (pruned data)" (or is not supported)."""


@dataclass(frozen=True, slots=True)
class RpcError:
    code: int | None
    message: str


def parse_header(doc: Any) -> _Header:
    d = as_object(doc, "a block header")
    bits_hex = get_str(d, "bits")
    if _BITS_HEX.fullmatch(bits_hex) is None:
        if bits_hex and all(c in "0123456789abcdefABCDEF" for c in bits_hex):
            raise ShapeError(f"'bits' is not an unsigned 32-bit value ({bits_hex[:20]!r}: "
                             f"{len(bits_hex)} hex digits)")
        raise ShapeError(f"'bits' is not hex ({bits_hex[:20]!r})")
    bits = int(bits_hex, 16)
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
        max_bytes: int = MAX_REPLY_BYTES,
        deadline_s: float = REQUEST_DEADLINE_S,
    ) -> None:
        super().__init__(url, kind="bitcoind", client=client, timeout=timeout, clock=clock,
                         follow_redirects=False, max_bytes=max_bytes, deadline_s=deadline_s)
        self.prefix = self.label  # "bitcoind 127.0.0.1:8332"
        self.cookie_path = Path(cookie_path).expanduser() if cookie_path is not None else None
        self._user = user
        self._password = password
        if user is not None and password:
            self.add_secret(password)
            self.add_secret(basic_token(user, password))
        self._cookie: tuple[str, str] | None = None
        self._next_id = 0
        self._cache: dict[int, _Cached] = {}
        self._best: str | None = None
        self._stats_unsupported = False
        self._history: tuple[HashratePoint, ...] = ()
        self._history_at: float | None = None
        self._history_tip: int | None = None
        #: the last failure of each optional part ("adjustments", "window")
        self.optional_errors: dict[str, str] = {}
        self._rheaders: dict[int, _Header] = {}  #: headers at old retarget heights e, e-1
        self._rmissing: set[int] = set()  #: heights the node could not give: not asked again
        self._adjustments: tuple[DifficultyAdjustment, ...] = ()
        self._wstats: dict[int, _Stats] = {}  #: getblockstats around the 30-days-ago window
        self._wend: int | None = None
        self._window: BlockWindow | None = None
        self._window_retry_at = 0.0
        self._prune_height: int | None = None  #: from getblockchaininfo when pruned

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
        self.add_secret(secret)
        self.add_secret(basic_token(user, secret))
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
            resp = await self._request(
                "POST",
                self.base_url,
                what=what,
                content=body,
                headers={"Content-Type": "application/json"},
                auth=httpx.BasicAuth(*creds) if creds else httpx.USE_CLIENT_DEFAULT,
                follow_redirects=False,
            )
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
        raise status_error(self.prefix, resp, what, self._now(), self.scrub)

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
        with only_source_errors(self.prefix, self.scrub):
            return await self._fetch()

    async def _fetch(self) -> ChainSnapshot:
        info = await self._call("getblockchaininfo")
        with reply_shape(self.prefix, "getblockchaininfo"):
            info = as_object(info)
            tip = get_int(info, "blocks")
            best = get_str(info, "bestblockhash")
            if tip < 0:
                raise ShapeError(f"negative block count {tip}")
            prune = info.get("pruneheight") if info.get("pruned") is True else None
            self._prune_height = prune if isinstance(prune, int) else None
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
        await self._optional("adjustments", self._update_adjustments(tip), None)
        await self._optional("window", self._update_window(tip), WINDOW_RETRY_S)
        return ChainSnapshot(
            source=self.label,
            fetched_at=self._now(),
            tip_height=tip,
            blocks=tuple(self._cache[h].block for h in required),
            history=self._history,
            adjustments=self._adjustments,
            window_30d_ago=self._window,
        )

    async def _optional(self, part: str, step: Awaitable[None], retry_s: float | None) -> None:
        """Run an optional step: a SourceError is recorded (and retried after ``retry_s``)."""
        try:
            await step
        except SourceError as e:
            self.optional_errors[part] = self.scrub(str(e))
            if retry_s is not None:
                self._window_retry_at = self._now() + retry_s
        else:
            self.optional_errors.pop(part, None)

    # ------------------------------------------------------------------ adjustments
    async def _update_adjustments(self, tip: int) -> None:
        """Adjustments from the headers at the last :data:`ADJUSTMENT_EPOCHS` retargets."""
        epoch_start = tip - tip % RETARGET_INTERVAL
        starts = [epoch_start - RETARGET_INTERVAL * k for k in range(ADJUSTMENT_EPOCHS)]
        starts = [e for e in starts if e >= RETARGET_INTERVAL]
        wanted = {h for e in starts[1:] for h in (e, e - 1)}
        for h in [h for h in self._rheaders if h not in wanted]:
            del self._rheaders[h]
        todo = sorted(h for h in wanted if h not in self._rheaders and h not in self._rmissing)
        if todo:
            hashes: dict[int, str] = {}
            for h, (result, err) in zip(
                todo, await self._batch("getblockhash", [[h] for h in todo]), strict=True
            ):
                if err is not None:  # e.g. a node still syncing headers: skip that height
                    self._rmissing.add(h)
                    continue
                with reply_shape(self.prefix, "getblockhash batch"):
                    hashes[h] = to_str_hash(result)
            self._rheaders.update(await self._headers(hashes) if hashes else {})

        def pair(e: int) -> tuple[tuple[int, int, float], tuple[int, int, float]] | None:
            if e == epoch_start:
                new, old = self._cache.get(e), self._cache.get(e - 1)
                if new is None or old is None:
                    return None
                return ((new.block.time, new.block.bits, new.block.difficulty),
                        (old.block.time, old.block.bits, old.block.difficulty))
            hn, ho = self._rheaders.get(e), self._rheaders.get(e - 1)
            if hn is None or ho is None:
                return None
            return (hn.time, hn.bits, hn.difficulty), (ho.time, ho.bits, ho.difficulty)

        out = []
        for e in starts:  # newest first
            p = pair(e)
            if p is None or p[0][1] == p[1][1]:  # unknown, or the bits did not change
                continue
            (t, _, d_new), (_, _, d_old) = p
            out.append(DifficultyAdjustment(e, t, d_new, (d_new / d_old - 1.0) * 100.0))
        self._adjustments = tuple(out)

    # ------------------------------------------------------------------ 30 days ago
    async def _stats(self, heights: Iterable[int]) -> None:
        """getblockstats (time, fees, subsidy) of ``heights`` into the window cache.

        Raises :class:`_Pruned` when the node has not got the blocks (or the RPC)."""
        todo = sorted(h for h in set(heights) if h not in self._wstats)
        for start in range(0, len(todo), STATS_CHUNK):
            chunk = todo[start : start + STATS_CHUNK]
            replies = await self._batch(
                "getblockstats", [[h, ["totalfee", "subsidy", "time"]] for h in chunk])
            for h, (result, err) in zip(chunk, replies, strict=True):
                if err is not None:
                    if err.code in (RPC_MISC_ERROR, RPC_METHOD_NOT_FOUND):
                        raise _Pruned(err.message)
                    raise self._rpc_failure("getblockstats", err)
                with reply_shape(self.prefix, "getblockstats batch"):
                    d = as_object(result)
                    self._wstats[h] = _Stats(
                        time=get_time(d, "time"),
                        fee=to_int(d["totalfee"], "totalfee"),
                        subsidy=to_int(d["subsidy"], "subsidy"),
                    )

    def _estimate_height(self, tip: int, cutoff: int) -> int | None:
        """The height stamped around ``cutoff``: interpolated between the retarget headers
        around it (read for the adjustments), else from the 7-day block rate."""
        marks = [(h, hdr.time) for h, hdr in self._rheaders.items()
                 if h % RETARGET_INTERVAL == 0]
        start = self._cache.get(tip - tip % RETARGET_INTERVAL)
        if start is not None:
            marks.append((start.block.height, start.block.time))
        top = self._cache.get(tip)
        if top is not None:
            marks.append((tip, top.block.time))
        marks.sort()
        for (h0, t0), (h1, t1) in zip(marks, marks[1:], strict=False):
            if t0 <= cutoff < t1 and h1 > h0:
                return h0 + round((cutoff - t0) / (t1 - t0) * (h1 - h0))
        top, low = self._cache.get(tip), self._cache.get(tip - 1008)
        if top is None or low is None or top.block.time <= low.block.time:
            return None
        rate = (top.block.time - low.block.time) / 1008
        return tip - round((top.block.time - cutoff) / rate)

    async def _update_window(self, tip: int) -> None:
        now = self._now()
        if now < self._window_retry_at or self._stats_unsupported:
            return
        cutoff = int(now) - WINDOW_AGO_S
        try:
            await self._find_window(tip, cutoff)
        except _Pruned:
            # Pruned (or too old a node): no window, no error; ask again in an hour.
            self._window = None
            self._wstats.clear()
            self._wend = None
            self._window_retry_at = now + WINDOW_PRUNED_RETRY_S

    async def _find_window(self, tip: int, cutoff: int) -> None:
        anchor = self._wend
        last = self._wstats.get(anchor) if anchor is not None else None
        if anchor is None or last is None or cutoff - last.time > WINDOW_REANCHOR_S:
            est = self._estimate_height(tip, cutoff)
            if est is None or est - FEE_WINDOW < 0:
                self._window = None
                return
            if self._prune_height is not None and self._prune_height > (
                est - FEE_WINDOW - PRUNE_MARGIN
            ):
                self._window = None  # the node has pruned those blocks: don't ask
                self._window_retry_at = self._now() + WINDOW_PRUNED_RETRY_S
                return
            self._wstats.clear()
            grid = [est + WINDOW_CHUNK * k for k in range(-WINDOW_GRID, WINDOW_GRID + 1)]
            await self._stats(h for h in grid if 0 <= h <= tip)
            below = [h for h in grid if h in self._wstats and self._wstats[h].time <= cutoff]
            anchor = max(below) if below else min(h for h in grid if h >= 0)
        batches = 0
        while True:
            times = {h: st.time for h, st in self._wstats.items()}
            end, need = search_window_end(times, anchor, cutoff, tip)
            if need is None:
                break
            if batches >= WINDOW_MAX_BATCHES:
                return  # keep what we have; the next poll goes on from the cache
            if need <= anchor:
                await self._stats(range(max(0, need - WINDOW_CHUNK + 1), need + 1))
            else:
                await self._stats(range(need, min(tip, need + WINDOW_CHUNK - 1) + 1))
            batches += 1
        if end is None or end - FEE_WINDOW < 0:
            self._window = None
            return
        await self._stats(range(end - FEE_WINDOW, end + 1))
        self._wend = end
        st = self._wstats
        span = st[end].time - st[end - FEE_WINDOW].time
        heights = range(end - FEE_WINDOW + 1, end + 1)
        self._window = BlockWindow(
            end_height=end,
            end_time=st[end].time,
            blocks=FEE_WINDOW,
            mean_interval_s=span / FEE_WINDOW if span > 0 else None,
            mean_fees_sat=sum(st[h].fee for h in heights) / FEE_WINDOW,
            subsidy_sat=sum(st[h].subsidy for h in heights) / FEE_WINDOW,
        )
        for h in [h for h in st if h < end - FEE_WINDOW or h > tip]:
            del st[h]

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
