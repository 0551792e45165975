"""The simulated mining world on loopback (``minertop sim`` and ``--demo``).

``await start_sim()`` builds a :class:`~tui.sim.world.SimChain` and serves it through the
same protocols as the real world: mempool.space's REST API and a bitcoind-style JSON-RPC
endpoint with cookie authentication.  Both servers run in the caller's asyncio loop and
answer from memory, so the app can poll them in-process.  No Textual import anywhere here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tui.sim.http import FAULT_MODES, Faults, HttpServer, check_loopback
from tui.sim.mempool_api import MempoolApi
from tui.sim.rpc_api import RpcApi
from tui.sim.world import SCENARIOS, Scenario, SimBlock, SimChain, get_scenario

__all__ = [
    "FAULT_MODES",
    "SCENARIOS",
    "Faults",
    "HttpServer",
    "Scenario",
    "Sim",
    "SimBlock",
    "SimChain",
    "get_scenario",
    "run_sim_cli",
    "start_sim",
]


class Sim:
    """A running simulator: the chain and its two servers (see :func:`start_sim`)."""

    def __init__(
        self,
        chain: SimChain,
        mempool_server: HttpServer,
        rpc_server: HttpServer,
        rpc_api: RpcApi,
        datadir: Path,
        temp_datadir: bool,
    ) -> None:
        self.chain = chain
        self.mempool_server = mempool_server
        self.rpc_server = rpc_server
        self.rpc_api = rpc_api
        self.datadir = datadir
        self._temp_datadir = temp_datadir
        self.stopped = False

    @property
    def mempool_url(self) -> str:
        return self.mempool_server.url

    @property
    def rpc_url(self) -> str:
        return self.rpc_server.url

    @property
    def cookie_path(self) -> Path:
        return self.rpc_api.cookie_path

    async def stop(self) -> None:
        """Stop both servers; remove the cookie (and the datadir if it was temporary)."""
        if self.stopped:
            return
        self.stopped = True
        await self.mempool_server.stop()
        await self.rpc_server.stop()
        self.rpc_api.delete_cookie()
        if self._temp_datadir:
            shutil.rmtree(self.datadir, ignore_errors=True)

    async def __aenter__(self) -> Sim:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_sim(
    *,
    seed: int = 2026,
    scenario: str | Scenario = "jan2026",
    host: str = "127.0.0.1",
    mempool_port: int = 0,
    rpc_port: int = 0,
    datadir: str | Path | None = None,
    clock: Callable[[], float] = time.time,
    rpc_user: str | None = None,
    rpc_password: str | None = None,
    prune_below: int | None = None,
    chain: SimChain | None = None,
) -> Sim:
    """Build the world and start serving it on ``host`` (loopback only; ``ValueError``).

    Ports 0 are ephemeral (read the bound ones from ``sim.mempool_url``/``sim.rpc_url``).
    The RPC cookie is written to ``<datadir>/.cookie``; without ``datadir`` a temporary one
    is created and removed by :meth:`Sim.stop`.  ``chain``: serve an already built chain
    (then ``seed``, ``scenario`` and ``clock`` are the chain's own).
    """
    host = check_loopback(host)
    if chain is None:
        # ~0.2 s of CPU: off the event loop, so an app's UI stays responsive meanwhile
        chain = await asyncio.to_thread(SimChain, scenario, seed=seed, clock=clock)
    temp = datadir is None
    path = Path(tempfile.mkdtemp(prefix="minertop-sim-")) if temp else Path(datadir)
    rpc_api = RpcApi(
        chain,
        cookie_path=path / ".cookie",
        user=rpc_user,
        password=rpc_password,
        prune_below=prune_below,
    )
    mempool_server = HttpServer(MempoolApi(chain), host=host, port=mempool_port, name="mempool")
    rpc_server = HttpServer(rpc_api, host=host, port=rpc_port, name="rpc")
    try:
        path.mkdir(parents=True, exist_ok=True)
        rpc_api.write_cookie()
        await mempool_server.start()
        await rpc_server.start()
    except BaseException:
        await mempool_server.stop()
        await rpc_server.stop()
        rpc_api.delete_cookie()
        if temp:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return Sim(chain, mempool_server, rpc_server, rpc_api, path, temp)


# ------------------------------------------------------------------------------ CLI


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Usage(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="minertop sim",
        description="Serve a simulated Bitcoin network on loopback: mempool.space-style REST "
        "and bitcoind-style JSON-RPC (cookie auth), with Poisson block arrivals.",
    )
    p.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    p.add_argument(
        "--scenario",
        default="jan2026",
        choices=sorted(SCENARIOS),
        help="world to simulate (default jan2026)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address to bind (127.0.0.0/8 only; default 127.0.0.1)",
    )
    p.add_argument(
        "--mempool-port",
        type=int,
        default=8999,
        help="port for the mempool REST API (default 8999; 0 = ephemeral)",
    )
    p.add_argument(
        "--rpc-port",
        type=int,
        default=18443,
        help="port for the JSON-RPC endpoint (default 18443; 0 = ephemeral)",
    )
    p.add_argument(
        "--datadir",
        default=None,
        help="where to write the RPC .cookie (default: a temporary directory)",
    )
    return p


def run_sim_cli(argv: list[str]) -> int:
    """``minertop sim [options]``: serve until Ctrl-C / SIGTERM; 0 on a clean stop."""
    try:
        args = _parser().parse_args(argv)
        check_loopback(args.host)
        for opt, port in (("--mempool-port", args.mempool_port), ("--rpc-port", args.rpc_port)):
            if not 0 <= port <= 65535:
                raise _Usage(f"{opt}: port must be 0..65535, got {port}")
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except _Usage as e:
        print(f"minertop sim: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"minertop sim: error: --host: {e}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0


async def _serve(args: argparse.Namespace) -> int:
    try:
        sim = await start_sim(
            seed=args.seed,
            scenario=args.scenario,
            host=args.host,
            mempool_port=args.mempool_port,
            rpc_port=args.rpc_port,
            datadir=args.datadir,
        )
    except OSError as e:
        print(
            f"minertop sim: error: cannot listen on {args.host}: {e.strerror or e}", file=sys.stderr
        )
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        f = sim.chain.figures()
        print(
            f"minertop sim - scenario {sim.chain.scenario.name}, seed {args.seed}, "
            f"tip {sim.chain.tip_height:,}\n"
            f"  hashrate {f['hashrate_1d_eh']:,.0f} EH/s (1d), {f['vs_peak_percent']:+.1f}% vs "
            f"peak, epoch {f['epoch_avg_minutes']:.1f} min/block, retarget "
            f"{f['projected_change_percent']:+.1f}%, BTC ${f['price_usd']:,.0f}\n"
            f"  mempool REST  {sim.mempool_url}\n"
            f"  bitcoind RPC  {sim.rpc_url}\n"
            f"  RPC cookie    {sim.cookie_path}\n"
            f"Try:\n"
            f"  minertop --mempool {sim.mempool_url}\n"
            f"  minertop --bitcoind {sim.rpc_url} --rpc-cookie {sim.cookie_path}\n"
            f"Serving; Ctrl-C to stop.",
            flush=True,
        )
        await stop.wait()
    finally:
        await sim.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    print("minertop sim: stopped", file=sys.stderr, flush=True)
    return 0
