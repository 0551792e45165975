"""A bitcoind-style JSON-RPC endpoint served from a :class:`~tui.sim.world.SimChain`.

Follows Bitcoin Core's ``httprpc.cpp``: POST only, HTTP Basic auth against the cookie file
``<datadir>/.cookie`` (``__cookie__:<hex>``) or an optional fixed user/password, 401 with an
empty body and ``WWW-Authenticate: Basic realm="jsonrpc"`` otherwise; legacy (``"1.0"``)
replies ``{"result", "error", "id"}`` with HTTP 500 for an error on a single request, 404 for
an unknown method, 400 for an invalid request object, and 200 for batches (JSON arrays).
Requests that say ``"jsonrpc": "2.0"`` get Core 28's JSON-RPC 2.0 replies (HTTP 200).
Error codes and messages are Core's (``src/rpc/blockchain.cpp``, ``src/rpc/mining.cpp``).

Below the simulated blocks only the deep history's headers exist (retarget heights ``e`` and
``e - 1``, :meth:`SimChain.deep_header`): ``getblockhash`` and ``getblockheader`` answer for
them, ``getblockstats`` says "Block not available (pruned data)" (there is no body).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from tui.chain import bits_to_target, block_work, difficulty_from_bits, next_work_required
from tui.sim.http import Request, Response
from tui.sim.world import DeepHeader, SimBlock, SimChain, block_stats

__all__ = ["COOKIE_USER", "RpcApi", "RpcError"]

COOKIE_USER = "__cookie__"
# Core's RPC error codes (src/rpc/protocol.h)
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_PARSE_ERROR = -32700
RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8

_HEX = re.compile(r"^[0-9a-fA-F]*$")
_STATS_KEYS = frozenset(
    "avgfee avgfeerate avgtxsize blockhash feerate_percentiles height ins maxfee maxfeerate "
    "maxtxsize medianfee mediantime mediantxsize minfee minfeerate mintxsize outs subsidy "
    "swtotal_size swtotal_weight swtxs time total_out total_size total_weight totalfee txs "
    "utxo_increase utxo_size_inc utxo_increase_actual utxo_size_inc_actual".split()
)


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


_TYPE_NAMES = {
    bool: "bool",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _type_error(value: object, expected: str) -> RpcError:
    got = _TYPE_NAMES.get(type(value), "unknown")
    return RpcError(RPC_TYPE_ERROR, f"JSON value of type {got} is not of expected type {expected}")


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(value, "number")
    if isinstance(value, float) and not value.is_integer():
        raise RpcError(RPC_TYPE_ERROR, "JSON integer out of range")
    return int(value)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _type_error(value, "bool")
    return value


def _hash(value: object, name: str) -> str:
    """Core's ``ParseHashV``."""
    if not isinstance(value, str):
        raise _type_error(value, "string")
    if len(value) != 64:
        raise RpcError(
            RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(value)}, for '{value}')"
        )
    if not _HEX.match(value):
        raise RpcError(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{value}')")
    return value.lower()


class RpcApi:
    """The request handler: ``RpcApi(chain, cookie_path=…)(request) -> Response``.

    ``prune_below``: simulate a pruned node; ``getblockstats`` of a height below it fails
    like Core (-1 "Block not available (pruned data)") and ``getblockchaininfo`` reports
    ``pruned``/``pruneheight``.  Settable at runtime, like ``user``/``password``.
    """

    def __init__(
        self,
        chain: SimChain,
        *,
        cookie_path: Path,
        user: str | None = None,
        password: str | None = None,
        prune_below: int | None = None,
    ) -> None:
        self.chain = chain
        self.cookie_path = Path(cookie_path)
        self.user = user
        self.password = password
        self.prune_below = prune_below
        self.cookie_secret = ""
        self.started_at = chain.clock()
        self._methods: dict[str, Callable[..., object]] = {
            "getblockchaininfo": self.getblockchaininfo,
            "getblockcount": self.getblockcount,
            "getbestblockhash": self.getbestblockhash,
            "getblockhash": self.getblockhash,
            "getblockheader": self.getblockheader,
            "getblockstats": self.getblockstats,
            "getnetworkhashps": self.getnetworkhashps,
            "getdifficulty": self.getdifficulty,
            "getmininginfo": self.getmininginfo,
            "uptime": self.uptime,
            "ping": self.ping,
        }
        self._param_names: dict[str, tuple[str, ...]] = {
            "getblockhash": ("height",),
            "getblockheader": ("blockhash", "verbose"),
            "getblockstats": ("hash_or_height", "stats"),
            "getnetworkhashps": ("nblocks", "height"),
        }

    # ---------------------------------------------------------------- cookie / auth

    def write_cookie(self) -> Path:
        """Write a fresh ``__cookie__:<64 hex>`` to the cookie file (mode 0600), like Core."""
        self.cookie_secret = os.urandom(32).hex()
        self.cookie_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cookie_path.with_name(self.cookie_path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{COOKIE_USER}:{self.cookie_secret}")
        os.replace(tmp, self.cookie_path)
        return self.cookie_path

    def delete_cookie(self) -> None:
        try:
            self.cookie_path.unlink()
        except FileNotFoundError:
            pass

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            userpass = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        ok = False
        if self.cookie_secret:
            ok |= hmac.compare_digest(userpass, f"{COOKIE_USER}:{self.cookie_secret}")
        if self.user is not None and self.password is not None:
            ok |= hmac.compare_digest(userpass, f"{self.user}:{self.password}")
        return ok

    # ---------------------------------------------------------------- HTTP

    def __call__(self, request: Request) -> Response:
        self.chain.advance()
        if request.method != "POST":
            return Response.text("JSONRPC server handles only POST requests", 405)
        if not self._authorized(request.headers.get("authorization")):
            return Response(
                status=401,
                body=b"",
                content_type=None,
                headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'},
            )
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return _reply_error(RpcError(RPC_PARSE_ERROR, "Parse error"), None, legacy=True)
        if isinstance(payload, dict):
            legacy = payload.get("jsonrpc") != "2.0"
            try:
                reply = self._execute(payload)
            except RpcError as e:
                return _reply_error(e, payload.get("id"), legacy=legacy)
            if reply is None:  # a JSON-RPC 2.0 notification
                return Response(status=204, body=b"", content_type=None)
            return Response.json(reply)
        if isinstance(payload, list):
            replies = []
            for item in payload:
                if not isinstance(item, dict):
                    replies.append(
                        _error_obj(
                            RpcError(RPC_INVALID_REQUEST, "Invalid Request object"), None, True
                        )
                    )
                    continue
                try:
                    reply = self._execute(item)
                except RpcError as e:
                    reply = _error_obj(e, item.get("id"), item.get("jsonrpc") != "2.0")
                if reply is not None:
                    replies.append(reply)
            return Response.json(replies)
        return _reply_error(
            RpcError(RPC_PARSE_ERROR, "Top-level object parse error"), None, legacy=True
        )

    def _execute(self, req: dict) -> dict | None:
        """Run one request object; returns the reply object (or None for a notification)."""
        legacy = req.get("jsonrpc") != "2.0"
        method = req.get("method")
        if not isinstance(method, str):
            raise RpcError(RPC_INVALID_REQUEST, "Method must be a string")
        params = req.get("params")
        if params is None:
            args: list = []
        elif isinstance(params, list):
            args = params
        elif isinstance(params, dict):
            names = self._param_names.get(method, ())
            unknown = [k for k in params if k not in names]
            if unknown:
                raise RpcError(RPC_INVALID_PARAMETER, f"Unknown named parameter {unknown[0]}")
            args = [params.get(n) for n in names]
            while args and args[-1] is None:
                args.pop()
        else:
            raise RpcError(RPC_INVALID_REQUEST, "Params must be an array or object")
        fn = self._methods.get(method)
        if fn is None:
            raise RpcError(RPC_METHOD_NOT_FOUND, "Method not found")
        result = fn(*args) if _arity_ok(fn, len(args)) else _raise_usage(method)
        if not legacy and "id" not in req:
            return None
        if legacy:
            return {"result": result, "error": None, "id": req.get("id")}
        return {"jsonrpc": "2.0", "result": result, "id": req.get("id")}

    # ---------------------------------------------------------------- helpers

    def _block_at(self, height: object) -> SimBlock:
        h = _int(height)
        blk = self.chain.block(h)
        if blk is None:
            raise RpcError(RPC_INVALID_PARAMETER, "Block height out of range")
        return blk

    def _block_by_hash(self, value: object, name: str = "blockhash") -> SimBlock:
        blk = self.chain.block_by_hash(_hash(value, name))
        if blk is None:
            raise RpcError(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        return blk

    def _pruned(self) -> bool:
        return self.prune_below is not None

    # ---------------------------------------------------------------- methods

    def getblockchaininfo(self) -> dict[str, object]:
        tip = self.chain.tip
        info: dict[str, object] = {
            "chain": "main",
            "blocks": tip.height,
            "headers": tip.height,
            "bestblockhash": tip.hash,
            "bits": f"{tip.bits:08x}",
            "target": f"{bits_to_target(tip.bits):064x}",
            "difficulty": tip.difficulty,
            "time": tip.time,
            "mediantime": tip.mediantime,
            "verificationprogress": 0.9999987,
            "initialblockdownload": False,
            "chainwork": f"{tip.chainwork:064x}",
            "size_on_disk": 5_500_000_000 if self._pruned() else 742_118_203_392,
            "pruned": self._pruned(),
        }
        if self._pruned():
            info["pruneheight"] = max(self.prune_below or 0, self.chain.start_height)
            info["automatic_pruning"] = True
            info["prune_target_size"] = 5_242_880_000
        info["warnings"] = []
        return info

    def getblockcount(self) -> int:
        return self.chain.tip_height

    def getbestblockhash(self) -> str:
        return self.chain.tip.hash

    def getdifficulty(self) -> float:
        return self.chain.tip.difficulty

    def getblockhash(self, height: object) -> str:
        h = _int(height)
        deep = self.chain.deep_header(h) if h < self.chain.start_height else None
        if deep is not None:
            return deep.hash
        return self._block_at(h).hash

    def _deep_header(self, hdr: DeepHeader, verbose: object) -> object:
        if verbose is not None and not _bool(verbose):
            raise RpcError(RPC_MISC_ERROR, "simulator: no raw header below the simulated blocks")
        chain = self.chain
        first = chain.block(chain.start_height)
        base = first.chainwork if first is not None else 1
        depth = chain.start_height - hdr.height
        out: dict[str, object] = {
            "hash": hdr.hash,
            "confirmations": chain.tip_height - hdr.height + 1,
            "height": hdr.height,
            "version": 0x20000000,
            "versionHex": "20000000",
            "merkleroot": hashlib.sha256(b"merkle:" + hdr.hash.encode()).hexdigest(),
            "time": hdr.time,
            "mediantime": hdr.time - 3000,
            "nonce": int(hdr.hash[-8:], 16),
            "bits": f"{hdr.bits:08x}",
            "target": f"{bits_to_target(hdr.bits):064x}",
            "difficulty": hdr.difficulty,
            "chainwork": f"{max(1, base - depth * block_work(hdr.bits)):064x}",
            "nTx": 3000 + hdr.height % 997,
        }
        nxt = chain.deep_header(hdr.height + 1) or chain.block(hdr.height + 1)
        if nxt is not None:
            out["nextblockhash"] = nxt.hash
        return out

    def getblockheader(self, blockhash: object, verbose: object = True) -> object:
        deep = self.chain.deep_header_by_hash(_hash(blockhash, "blockhash"))
        if deep is not None:
            return self._deep_header(deep, verbose)
        blk = self._block_by_hash(blockhash)
        if verbose is not None and not _bool(verbose):
            return blk.header_hex()
        chain = self.chain
        out: dict[str, object] = {
            "hash": blk.hash,
            "confirmations": chain.tip_height - blk.height + 1,
            "height": blk.height,
            "version": blk.version,
            "versionHex": f"{blk.version:08x}",
            "merkleroot": blk.merkle_root,
            "time": blk.time,
            "mediantime": blk.mediantime,
            "nonce": blk.nonce,
            "bits": f"{blk.bits:08x}",
            "target": f"{bits_to_target(blk.bits):064x}",
            "difficulty": blk.difficulty,
            "chainwork": f"{blk.chainwork:064x}",
            "nTx": blk.tx_count,
            "previousblockhash": blk.prev_hash,
        }
        nxt = chain.block(blk.height + 1)
        if nxt is not None:
            out["nextblockhash"] = nxt.hash
        return out

    def getblockstats(self, hash_or_height: object, stats: object = None) -> dict[str, object]:
        chain = self.chain
        if isinstance(hash_or_height, int | float) and not isinstance(hash_or_height, bool):
            h = _int(hash_or_height)
            if h < 0:
                raise RpcError(RPC_INVALID_PARAMETER, f"Target block height {h} is negative")
            if h > chain.tip_height:
                raise RpcError(
                    RPC_INVALID_PARAMETER,
                    f"Target block height {h} after current tip {chain.tip_height}",
                )
            blk = chain.block(h)
        else:
            blk = self._block_by_hash(hash_or_height, "hash_or_height")
        if blk is None or (self.prune_below is not None and blk.height < self.prune_below):
            raise RpcError(RPC_MISC_ERROR, "Block not available (pruned data)")
        selected: list[str] | None = None
        if stats is not None:
            if not isinstance(stats, list):
                raise _type_error(stats, "array")
            selected = []
            for s in stats:
                if not isinstance(s, str):
                    raise _type_error(s, "string")
                if s not in _STATS_KEYS:
                    raise RpcError(RPC_INVALID_PARAMETER, f"Invalid selected statistic '{s}'")
                selected.append(s)
        full = block_stats(blk)
        if not selected:
            return full
        return {k: v for k, v in full.items() if k in selected}

    def getnetworkhashps(self, nblocks: object = 120, height: object = -1) -> float:
        nblocks = 120 if nblocks is None else nblocks
        height = -1 if height is None else height
        try:
            return self.chain.network_hashps(_int(nblocks), _int(height))
        except ValueError as e:
            raise RpcError(RPC_INVALID_PARAMETER, str(e)) from None

    def getmininginfo(self) -> dict[str, object]:
        chain = self.chain
        tip = chain.tip
        nxt_height = tip.height + 1
        if nxt_height % 2016:
            nxt_bits = tip.bits
        else:
            first = chain.block(nxt_height - 2016)
            nxt_bits = next_work_required(tip.bits, first.time, tip.time) if first else tip.bits
        return {
            "blocks": tip.height,
            "bits": f"{tip.bits:08x}",
            "difficulty": tip.difficulty,
            "target": f"{bits_to_target(tip.bits):064x}",
            "networkhashps": chain.network_hashps(120),
            "pooledtx": 4200 + tip.height % 997,
            "blockmintxfee": 0.00001,
            "chain": "main",
            "next": {
                "height": nxt_height,
                "bits": f"{nxt_bits:08x}",
                "difficulty": difficulty_from_bits(nxt_bits),
                "target": f"{bits_to_target(nxt_bits):064x}",
            },
            "warnings": [],
        }

    def uptime(self) -> int:
        return int(self.chain.clock() - self.started_at)

    def ping(self) -> None:
        return None


def _arity_ok(fn: Callable[..., object], n: int) -> bool:
    code = fn.__code__  # type: ignore[attr-defined]
    total = code.co_argcount - 1  # minus self
    required = total - len(fn.__defaults__ or ())  # type: ignore[attr-defined]
    return required <= n <= total


def _raise_usage(method: str) -> object:
    # Core answers a wrong argument count with the method's help text (RPC_MISC_ERROR).
    raise RpcError(RPC_MISC_ERROR, f"{method}: wrong number of arguments (see 'help {method}')")


def _error_obj(err: RpcError, req_id: object, legacy: bool) -> dict[str, object]:
    if legacy:
        return {"result": None, "error": err.to_json(), "id": req_id}
    return {"jsonrpc": "2.0", "error": err.to_json(), "id": req_id}


def _reply_error(err: RpcError, req_id: object, *, legacy: bool) -> Response:
    if not legacy:
        return Response.json(_error_obj(err, req_id, False))
    status = 500
    if err.code == RPC_INVALID_REQUEST:
        status = 400
    elif err.code == RPC_METHOD_NOT_FOUND:
        status = 404
    return Response.json(_error_obj(err, req_id, True), status=status)
