"""The simulated mining world on loopback (``minertop sim`` and ``--demo``).

``await start_sim()`` builds a :class:`~tui.sim.world.SimChain` and serves it through the
same protocols as the real world: mempool.space's REST API and a bitcoind-style JSON-RPC
endpoint with cookie authentication, plus a wholesale power price feed
(:mod:`tui.sim.power`, ``sim.power_url``).  The servers run in the caller's asyncio loop and
answer from memory, so the app can poll them in-process.  ``minertop sim --rigs demo|N``
also (or, with ``--no-chain``, only) serves a site of simulated rigs, each on its own
loopback address (:mod:`tui.sim.rigs`).  No Textual import anywhere here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tui.sim.http import FAULT_MODES, Faults, HttpServer, check_loopback
from tui.sim.mempool_api import MempoolApi
from tui.sim.power import POWER_PATH, PowerApi
from tui.sim.rpc_api import RpcApi
from tui.sim.world import SCENARIOS, Scenario, SimBlock, SimChain, get_scenario

if TYPE_CHECKING:
    from tui.sim.rigs import RigSite

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
    """A running simulator: the chain and its servers (see :func:`start_sim`)."""

    def __init__(
        self,
        chain: SimChain,
        mempool_server: HttpServer,
        rpc_server: HttpServer,
        rpc_api: RpcApi,
        datadir: Path,
        temp_datadir: bool,
        power_server: HttpServer | None = None,
    ) -> None:
        self.chain = chain
        self.power_server = power_server
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
    def power_url(self) -> str | None:
        """The power price feed's URL (``[site.power_feed] url``; read ``data.0.price`` in
        ``usd_mwh``), or None when it isn't served."""
        return None if self.power_server is None else self.power_server.url + POWER_PATH

    @property
    def cookie_path(self) -> Path:
        return self.rpc_api.cookie_path

    async def stop(self) -> None:
        """Stop the servers; remove the cookie (and the datadir if it was temporary)."""
        if self.stopped:
            return
        self.stopped = True
        await self.mempool_server.stop()
        await self.rpc_server.stop()
        if self.power_server is not None:
            await self.power_server.stop()
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
    power_port: int = 0,
) -> Sim:
    """Build the world and start serving it on ``host`` (loopback only; ``ValueError``).

    Ports 0 are ephemeral (read the bound ones from ``sim.mempool_url``/``sim.rpc_url``/
    ``sim.power_url``: the power price feed, priced by the chain's clock and seed).
    The RPC cookie is written to ``<datadir>/.cookie``; without ``datadir`` a temporary one
    is created and removed by :meth:`Sim.stop`.  ``chain``: serve an already built chain
    (then ``seed``, ``scenario`` and ``clock`` are the chain's own).
    """
    host = check_loopback(host)
    if chain is None:
        # ~0.2 s of CPU: off the event loop, so an app's UI stays responsive meanwhile
        chain = await asyncio.to_thread(SimChain, scenario, seed=seed, clock=clock)
    temp = datadir is None
    path = Path(datadir) if datadir is not None else Path(tempfile.mkdtemp(prefix="minertop-sim-"))
    rpc_api = RpcApi(
        chain,
        cookie_path=path / ".cookie",
        user=rpc_user,
        password=rpc_password,
        prune_below=prune_below,
    )
    mempool_server = HttpServer(MempoolApi(chain), host=host, port=mempool_port, name="mempool")
    rpc_server = HttpServer(rpc_api, host=host, port=rpc_port, name="rpc")
    power_server = HttpServer(
        PowerApi(chain.clock, seed=chain.seed), host=host, port=power_port, name="power"
    )
    try:
        path.mkdir(parents=True, exist_ok=True)
        rpc_api.write_cookie()
        await mempool_server.start()
        await rpc_server.start()
        await power_server.start()
    except BaseException:
        await mempool_server.stop()
        await rpc_server.stop()
        await power_server.stop()
        rpc_api.delete_cookie()
        if temp:
            shutil.rmtree(path, ignore_errors=True)
        raise
    return Sim(chain, mempool_server, rpc_server, rpc_api, path, temp, power_server)


# ------------------------------------------------------------------------------ CLI


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Usage(message)


#: Most rigs ``--rigs N`` serves (each needs a socket; 127.0.0.0/8 has room for far more).
MAX_SIM_RIGS = 50_000


def _rigs_arg(value: str) -> str | int:
    if value == "demo":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'demo' or a number of rigs, got {value!r}"
        ) from None
    if not 1 <= n <= MAX_SIM_RIGS:
        raise argparse.ArgumentTypeError(f"number of rigs must be 1..{MAX_SIM_RIGS}, got {n}")
    return n


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="minertop sim",
        description="Serve a simulated Bitcoin network on loopback: mempool.space-style REST "
        "and bitcoind-style JSON-RPC (cookie auth), with Poisson block arrivals.  With --rigs, "
        "also (or with --no-chain, only) a site of simulated mining rigs, each on its own "
        "loopback address and speaking its firmware's protocol: the cgminer-style API on "
        "--rig-port (Antminer, Whatsminer API v2, Braiins, Avalon; Bitaxes answer HTTP there), "
        "Whatsminer API v3 on --v3-port only.  Each rig is listed as NAME<TAB>KIND<TAB>"
        "HOST:PORT; --rigs-config writes them as minertop [[rigs]] tables.",
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
        "--power-port",
        type=int,
        default=0,
        help="port for the power price feed (default 0 = ephemeral; its URL is printed)",
    )
    p.add_argument(
        "--datadir",
        default=None,
        help="where to write the RPC .cookie (default: a temporary directory)",
    )
    rigs = p.add_argument_group("simulated rigs")
    rigs.add_argument(
        "--rigs",
        metavar="demo|N",
        type=_rigs_arg,
        default=None,
        help="serve a rig site: 'demo' (the --demo site: 48 rigs a-01..a-48, some hung, "
        "offline, stuck, with a dead hashboard; three on Whatsminer API v3) or N rigs of a "
        "realistic fleet mix (r-001.., a fifth on Whatsminer API v3)",
    )
    rigs.add_argument(
        "--rig-host-base",
        metavar="ADDR",
        default="127.0.1.0",
        help="rigs take consecutive loopback addresses after this one (127.0.0.0/8 only; "
        "default 127.0.1.0: the first rig is 127.0.1.1)",
    )
    rigs.add_argument(
        "--rig-port",
        type=int,
        default=4028,
        help="port of the cgminer-style API (and the Bitaxes' HTTP) on every rig address "
        "(default 4028; 0 = one ephemeral port)",
    )
    rigs.add_argument(
        "--v3-port",
        type=int,
        default=4433,
        help="port of the Whatsminer API v3 rigs (default 4433; 0 = one ephemeral port)",
    )
    rigs.add_argument(
        "--rigs-config",
        metavar="PATH",
        type=Path,
        default=None,
        help="write a minertop config listing the rigs ([site] and one [[rigs]] table per "
        "rig) to PATH: minertop --config PATH polls them",
    )
    rigs.add_argument(
        "--no-chain",
        action="store_true",
        help="serve the rigs only: no mempool REST, no JSON-RPC (needs --rigs)",
    )
    return p


def run_sim_cli(argv: list[str]) -> int:
    """``minertop sim [options]``: serve until Ctrl-C / SIGTERM; 0 on a clean stop."""
    try:
        args = _parser().parse_args(argv)
        for opt, port in (
            ("--mempool-port", args.mempool_port),
            ("--rpc-port", args.rpc_port),
            ("--power-port", args.power_port),
            ("--rig-port", args.rig_port),
            ("--v3-port", args.v3_port),
        ):
            if not 0 <= port <= 65535:
                raise _Usage(f"{opt}: port must be 0..65535, got {port}")
        if args.no_chain and args.rigs is None:
            raise _Usage("--no-chain needs --rigs (there would be nothing to serve)")
        if args.rigs is not None and args.rig_port and args.rig_port == args.v3_port:
            raise _Usage("--rig-port and --v3-port must differ")
        for opt, host in (("--host", args.host), ("--rig-host-base", args.rig_host_base)):
            try:
                check_loopback(host)
            except ValueError as e:
                raise _Usage(f"{opt}: {e}") from None
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except _Usage as e:
        print(f"minertop sim: error: {e}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0


def rigs_config_text(lines: Sequence[tuple[str, str, str, int]], *, comment: str = "") -> str:
    """A minertop config (TOML) for rigs given as ``(name, kind, host, port)``."""
    out = [f"# {line}".rstrip() for line in comment.splitlines()] if comment else []
    out += ["[site]", 'name = "sim"', "electricity_usd_kwh = 0.06", ""]
    for name, kind, host, port in lines:
        out += [
            "[[rigs]]",
            f"name = {json.dumps(name)}",
            f"host = {json.dumps(host)}",
            f"port = {port}",
            f"kind = {json.dumps(kind)}",
            "",
        ]
    return "\n".join(out)


async def _start_rigs(args: argparse.Namespace) -> RigSite:
    from tui.sim.rigs import (
        demo_site_specs,
        mixed_site_specs,
        raise_nofile_limit,
        start_rig_site,
    )

    specs = (
        demo_site_specs(args.seed)
        if args.rigs == "demo"
        else mixed_site_specs(int(args.rigs), args.seed)
    )
    wanted = len(specs) * 2 + 1024
    if raise_nofile_limit(wanted) < len(specs) + 256:
        print(
            f"minertop sim: warning: the open-files limit is too low for {len(specs)} rigs "
            "(raise it with ulimit -n)",
            file=sys.stderr,
            flush=True,
        )
    return await start_rig_site(
        specs,
        host_base=args.rig_host_base,
        port=args.rig_port,
        v3_port=args.v3_port,
        seed=args.seed,
    )


def _rigs_report(site: RigSite, args: argparse.Namespace, sim: Sim | None) -> str:
    """The rig lines (``name<TAB>kind<TAB>host:port``) and how to point minertop at them."""
    rigs = site.rigs
    rows = [(r.spec.name, r.spec.kind, r.host, r.port) for r in rigs]
    out = [
        f"minertop sim - {len(rigs)} rigs ({'the demo site' if args.rigs == 'demo' else 'mixed'}"
        f", seed {args.seed}) on {rigs[0].host} .. {rigs[-1].host}"
    ]
    out += [r.listing for r in rigs]
    source = f" --mempool {sim.mempool_url}" if sim is not None else " --mempool URL"
    if args.rigs_config is not None:
        args.rigs_config.write_text(
            rigs_config_text(
                rows,
                comment=f"minertop sim --rigs {args.rigs} --seed {args.seed}: "
                f"{len(rows)} simulated rigs on loopback",
            ),
            encoding="utf-8",
        )
        out += [
            f"Rigs config     {args.rigs_config}",
            f"Try:\n  minertop --config {args.rigs_config}{source}",
        ]
    else:
        name, kind, host, port = rows[0]
        out += [
            "To poll them, list them in minertop's config (--rigs-config PATH writes them all):",
            "  [[rigs]]",
            f"  name = {json.dumps(name)}",
            f"  host = {json.dumps(host)}",
            f"  port = {port}",
            f"  kind = {json.dumps(kind)}",
        ]
    return "\n".join(out)


async def _serve(args: argparse.Namespace) -> int:
    sim: Sim | None = None
    site: RigSite | None = None
    if not args.no_chain:
        try:
            sim = await start_sim(
                seed=args.seed,
                scenario=args.scenario,
                host=args.host,
                mempool_port=args.mempool_port,
                rpc_port=args.rpc_port,
                datadir=args.datadir,
                power_port=args.power_port,
            )
        except OSError as e:
            print(
                f"minertop sim: error: cannot listen on {args.host}: {e.strerror or e}",
                file=sys.stderr,
            )
            return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if sim is not None:
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
                f"  power price   {sim.power_url}  (US$/MWh: [site.power_feed] "
                f'path = "data.0.price", unit = "usd_mwh")\n'
                f"Try:\n"
                f"  minertop --mempool {sim.mempool_url}\n"
                f"  minertop --bitcoind {sim.rpc_url} --rpc-cookie {sim.cookie_path}",
                flush=True,
            )
        if args.rigs is not None:
            try:
                site = await _start_rigs(args)
            except OSError as e:
                print(
                    f"minertop sim: error: cannot serve the rigs on {args.rig_host_base}+: "
                    f"{e.strerror or e}",
                    file=sys.stderr,
                )
                return 1
            try:
                report = _rigs_report(site, args, sim)
            except OSError as e:
                print(f"minertop sim: error: --rigs-config: {e.strerror or e}", file=sys.stderr)
                return 1
            print(report, flush=True)
        print("Serving; Ctrl-C to stop.", flush=True)
        await stop.wait()
    finally:
        if site is not None:
            await site.stop()
        if sim is not None:
            await sim.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    print("minertop sim: stopped", file=sys.stderr, flush=True)
    return 0
