"""The ``minertop`` command line.

Kept light: ``--once`` and ``sim`` never import Textual (checked by a test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

from tui import __version__
from tui.config import (
    ConfigError,
    SiteConfig,
    default_config_path,
    load_config,
    write_example_config,
)
from tui.glyphs import locale_is_utf8
from tui.model import ChainSource, PriceSource

if TYPE_CHECKING:
    from tui.dashboard import Dashboard
    from tui.site import SiteView

DEFAULT_MEMPOOL = "https://mempool.space"
DEFAULT_PASSWORD_ENV = "MINERTOP_RPC_PASSWORD"


class UsageError(Exception):
    """A bad command line: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see 'minertop --help')")


@dataclass(frozen=True)
class SourceSpec:
    """Which sources to poll, resolved from the command line (no secrets on argv)."""

    kind: str  #: "mempool" or "bitcoind"
    url: str
    rpc_cookie: Path | None = None
    rpc_user: str | None = None
    rpc_password: str | None = None
    price_url: str | None = None  #: mempool instance for /api/v1/prices (None: fixed price)
    fixed_price: float | None = None
    demo: bool = False
    demo_seed: int = 2026
    demo_scenario: str = "jan2026"
    chain_interval: float = 30.0
    price_interval: float = 60.0
    site: SiteConfig | None = None  #: the rigs to poll (None: no site configured)
    ascii: bool = False  #: draw with ASCII only (--ascii, or a locale that isn't UTF-8)
    mouse: bool = True

    @property
    def label(self) -> str:
        return f"{self.kind} {urlsplit(self.url).netloc}"


def _check_url(opt: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{opt}: expected an http:// or https:// URL, got {url!r}")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise UsageError(f"{opt}: bad port in {url!r}") from None
    return url.rstrip("/")


def _positive(kind: str) -> object:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{kind} must be a positive number, got {text!r}")
        return value

    return parse


MIN_INTERVAL_S = 5.0


def _interval(text: str) -> float:
    """A poll interval: public instances rate-limit, so nothing faster than 5 s."""
    value = _positive("interval")(text)  # type: ignore[operator]
    if value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"at least {MIN_INTERVAL_S:.0f} s, got {text!r}")
    return float(value)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="minertop",
        allow_abbrev=False,  # "--rpc-password x" must not be taken for --rpc-password-env
        description="htop for a Bitcoin mining site: network hashrate, block-time drift and "
        "retarget ETA, live in the terminal.",
        epilog="Subcommand: 'minertop sim --help' serves a simulated network on loopback.",
    )
    src = p.add_argument_group("data source (default: https://mempool.space)")
    g = src.add_mutually_exclusive_group()
    g.add_argument("--demo", action="store_true",
                   help="run on a simulated network started in-process (no internet needed)")
    g.add_argument("--mempool", metavar="URL",
                   help="mempool.space or a self-hosted mempool instance (base URL)")
    g.add_argument("--bitcoind", metavar="URL",
                   help="Bitcoin Core JSON-RPC, e.g. http://127.0.0.1:8332")
    src.add_argument("--rpc-cookie", metavar="PATH", type=Path,
                     help="bitcoind cookie file (<datadir>/.cookie)")
    src.add_argument("--rpc-user", metavar="USER",
                     help=f"bitcoind RPC user; the password is read from ${DEFAULT_PASSWORD_ENV} "
                     "(or --rpc-password-env), never from the command line")
    src.add_argument("--rpc-password-env", metavar="VAR", default=DEFAULT_PASSWORD_ENV,
                     help="environment variable holding the RPC password")
    src.add_argument("--price", metavar="USD", type=_positive("price"),
                     help="use a fixed BTC price instead of mempool's /api/v1/prices")
    src.add_argument("--price-from", metavar="URL",
                     help="mempool instance for prices when the chain comes from bitcoind "
                     f"(default {DEFAULT_MEMPOOL})")
    p.add_argument("--demo-via", choices=("mempool", "bitcoind"), default="mempool",
                   help="protocol the demo's client uses to read the simulator")
    p.add_argument("--seed", type=int, default=2026, help="simulator seed for --demo")
    p.add_argument("--scenario", default="jan2026", help="simulator scenario for --demo")
    p.add_argument("--chain-interval", type=_interval, default=30.0, metavar="S",
                   help="seconds between chain polls (default 30, at least 5)")
    p.add_argument("--price-interval", type=_interval, default=60.0, metavar="S",
                   help="seconds between price polls (default 60, at least 5)")
    p.add_argument("--config", metavar="PATH", type=Path,
                   help="site config (default $XDG_CONFIG_HOME/minertop/config.toml; "
                   "'minertop init-config' writes an example)")
    look = p.add_argument_group("terminal")
    chars = look.add_mutually_exclusive_group()
    chars.add_argument("--ascii", dest="ascii", action="store_true", default=None,
                       help="draw with ASCII only (default when the locale isn't UTF-8)")
    chars.add_argument("--unicode", dest="ascii", action="store_false",
                       help="draw with Unicode even if the locale doesn't say UTF-8")
    look.add_argument("--no-mouse", dest="mouse", action="store_false",
                      help="don't capture the mouse (leaves the terminal's selection alone)")
    p.add_argument("--once", action="store_true", help="fetch once, print the numbers, exit")
    p.add_argument("--json", action="store_true", help="with --once: print JSON")
    p.add_argument("--version", action="version", version=f"minertop {__version__}")
    return p


def resolve(args: argparse.Namespace, environ: dict[str, str] | None = None) -> SourceSpec:
    env = os.environ if environ is None else environ
    if args.json and not args.once:
        raise UsageError("--json needs --once")
    site = None
    if not args.demo:
        try:
            site = load_config(args.config, environ=env)
        except ConfigError as e:
            raise UsageError(str(e)) from None
    ascii_only = (not locale_is_utf8(env)) if args.ascii is None else args.ascii
    common = dict(
        site=site,
        ascii=ascii_only,
        mouse=args.mouse,
        fixed_price=args.price,
        chain_interval=args.chain_interval,
        price_interval=args.price_interval,
    )
    if args.demo:
        if args.rpc_cookie or args.rpc_user:
            raise UsageError("--demo reads its own simulator; drop --rpc-cookie/--rpc-user")
        if args.config:
            raise UsageError("--demo runs its own simulated site; drop --config")
        from tui.sim.world import SCENARIOS

        if args.scenario not in SCENARIOS:
            raise UsageError(f"--scenario: unknown scenario {args.scenario!r} "
                             f"(known: {', '.join(sorted(SCENARIOS))})")
        return SourceSpec(kind=args.demo_via, url="http://127.0.0.1:0", demo=True,
                          demo_seed=args.seed, demo_scenario=args.scenario, **common)
    if args.bitcoind:
        url = _check_url("--bitcoind", args.bitcoind)
        password = None
        if args.rpc_user:
            password = env.get(args.rpc_password_env)
            if password is None:
                raise UsageError(f"--rpc-user needs the password in ${args.rpc_password_env}")
        elif not args.rpc_cookie:
            raise UsageError("--bitcoind needs --rpc-cookie PATH or --rpc-user USER")
        if args.rpc_cookie and args.rpc_user:
            raise UsageError("use either --rpc-cookie or --rpc-user, not both")
        price_url = None
        if args.price is None:
            price_url = _check_url("--price-from", args.price_from or DEFAULT_MEMPOOL)
        return SourceSpec(kind="bitcoind", url=url, rpc_cookie=args.rpc_cookie,
                          rpc_user=args.rpc_user, rpc_password=password,
                          price_url=price_url, **common)
    if args.rpc_cookie or args.rpc_user:
        raise UsageError("--rpc-cookie/--rpc-user only apply with --bitcoind")
    url = _check_url("--mempool", args.mempool or DEFAULT_MEMPOOL)
    price_url = None if args.price is not None else _check_url(
        "--price-from", args.price_from or url)
    return SourceSpec(kind="mempool", url=url, price_url=price_url, **common)


def demo_spec(spec: SourceSpec, mempool_url: str, rpc_url: str, cookie: Path) -> SourceSpec:
    """Point a demo spec at a running simulator."""
    if spec.kind == "bitcoind":
        return replace(spec, url=rpc_url, rpc_cookie=cookie,
                       price_url=None if spec.fixed_price else mempool_url)
    return replace(spec, url=mempool_url, price_url=None if spec.fixed_price else mempool_url)


def make_sources(
    spec: SourceSpec, clock: Callable[[], float] = time.time
) -> tuple[ChainSource, PriceSource]:
    """The chain and price source objects for a resolved spec."""
    from tui.sources.bitcoind import BitcoindSource
    from tui.sources.mempool import MempoolSource
    from tui.sources.price import FixedPrice, MempoolPrice

    chain_src: ChainSource
    if spec.kind == "bitcoind":
        chain_src = BitcoindSource(spec.url, cookie_path=spec.rpc_cookie, user=spec.rpc_user,
                                   password=spec.rpc_password, clock=clock)
    else:
        chain_src = MempoolSource(spec.url, clock=clock)
    price_src: PriceSource
    if spec.price_url is None:
        price_src = FixedPrice(spec.fixed_price or 0.0)
    else:
        price_src = MempoolPrice(spec.price_url, clock=clock)
    return chain_src, price_src


async def _once(spec: SourceSpec, as_json: bool) -> int:
    from tui.dashboard import compute, to_json, to_text
    from tui.sources.base import SourceError

    sim = None
    if spec.demo:
        from tui.sim import start_sim

        sim = await start_sim(seed=spec.demo_seed, scenario=spec.demo_scenario)
        spec = demo_spec(spec, sim.mempool_url, sim.rpc_url, sim.cookie_path)
    chain_src, price_src = make_sources(spec)
    try:
        try:
            snap = await chain_src.fetch()
        except SourceError as e:
            print(f"minertop: {e}", file=sys.stderr)
            return 1
        price = None
        price_error = None
        try:
            price = await price_src.fetch()
        except SourceError as e:
            price_error = str(e)
        d = compute(snap, price, time.time())
        view = await _once_site(spec, d) if (spec.site or spec.demo) else None
        if as_json:
            doc = to_json(d)
            if price_error:
                doc["price_error"] = price_error
            if view is not None:
                from tui.site import site_json

                doc["site"], doc["rigs"] = site_json(view)
            print(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            print(to_text(d))
            if price_error:
                print(f"price       unavailable: {price_error}")
            if view is not None:
                from tui.site import site_text

                print(site_text(view))
        return 0
    finally:
        await chain_src.aclose()
        await price_src.aclose()
        if sim is not None:
            await sim.stop()


async def _once_site(spec: SourceSpec, d: Dashboard) -> SiteView | None:
    """Poll every rig once and price it against the network's numbers."""
    from tui.site import compute_site, inputs_from_fleet
    from tui.sources.fleet import RigSource, start_demo_site
    from tui.sources.rigs import RigFleet

    site = spec.site
    rig_sim = None
    if spec.demo:
        rig_sim, site = await start_demo_site(spec.demo_seed)
    assert site is not None
    source = RigSource(site)
    try:
        if site.scans:  # once: find the rigs of the ranges first, then poll everything
            await source.fetch()
            await source.wait_for_scan()
        snap = await source.fetch()
    finally:
        await source.aclose()
        if rig_sim is not None:
            await rig_sim.stop()  # type: ignore[attr-defined]
    fleet = RigFleet(site.poll.interval_s)
    fleet.update(snap.readings)
    inputs = inputs_from_fleet(source.poller.targets, fleet, site, time.time())
    rt = d.retarget
    return compute_site(inputs, site=site, catalog=site.catalog(), hashprice=d.hashprice,
                        price_usd=d.price.usd if d.price else None,
                        retarget_change_pct=rt.projection.difficulty_change if rt else None)


def init_config(argv: list[str]) -> int:
    """``minertop init-config [PATH] [--force]``: write a commented example config."""
    p = _Parser(prog="minertop init-config", allow_abbrev=False,
                description="Write a commented example site config.")
    p.add_argument("path", nargs="?", type=Path, help="where to write it (default: the XDG "
                   "location, $XDG_CONFIG_HOME/minertop/config.toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    try:
        args = p.parse_args(argv)
    except UsageError as e:
        print(f"minertop: error: {e}", file=sys.stderr)
        return 2
    path = args.path or default_config_path()
    try:
        written = write_example_config(path, force=args.force)
    except FileExistsError as e:
        print(f"minertop: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"minertop: cannot write {path}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"wrote {written}; edit it, then run: minertop --config {written}")
    return 0


#: How long a lone ESC byte waits before it counts as the Esc key, in ms, unless the
#: user's ``ESCDELAY`` says otherwise.  A terminal sends an escape sequence (an arrow key)
#: in one write, so 25 ms tells the two apart even over SSH; htop uses the same.  Textual's
#: default is 100 ms, which every Esc press would wait out.
ESCDELAY_MS = 25


def set_terminal_defaults(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Before Textual is imported (it reads ``ESCDELAY`` once)."""
    environ.setdefault("ESCDELAY", str(ESCDELAY_MS))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    set_terminal_defaults()
    if argv[:1] == ["sim"]:
        from tui.sim import run_sim_cli

        return run_sim_cli(argv[1:])
    if argv[:1] == ["init-config"]:
        return init_config(argv[1:])
    try:
        args = build_parser().parse_args(argv)
        spec = resolve(args)
    except UsageError as e:
        print(f"minertop: error: {e}", file=sys.stderr)
        return 2
    if args.once:
        try:
            return asyncio.run(_once(spec, args.json))
        except KeyboardInterrupt:
            return 130
    from tui.app import run_app

    return run_app(spec)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
