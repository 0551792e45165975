"""The ``minertop`` command line.

Kept light: ``--once`` and ``sim`` never import Textual (checked by a test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

from tui import __version__
from tui.config import (
    ConfigError,
    default_config_path,
    load_config,
    write_example_config,
)
from tui.glyphs import locale_is_utf8
from tui.spec import DEFAULT_MEMPOOL, SourceSpec

if TYPE_CHECKING:
    from tui.engine import EngineView

DEFAULT_PASSWORD_ENV = "MINERTOP_RPC_PASSWORD"


class UsageError(Exception):
    """A bad command line: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see 'minertop --help')")


def _check_url(opt: str, url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as e:  # e.g. "Invalid IPv6 URL"
        raise UsageError(f"{opt}: {e}: {url!r}") from None
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
        epilog="Subcommands: 'minertop daemon --help' runs headless with history, an API and "
        "notifications; 'minertop sim --help' serves a simulated network on loopback.",
    )
    _add_source_args(p)
    fleet = p.add_argument_group("many sites")
    fleet.add_argument("--prometheus", metavar="URL",
                       help="the fleet view: one row per site, from the Prometheus that scrapes "
                       "every site's daemon (token, if any: $MINERTOP_PROMETHEUS_TOKEN)")
    att = p.add_argument_group("a running daemon")
    how = att.add_mutually_exclusive_group()
    how.add_argument("--attach", metavar="URL",
                     help="show a running 'minertop daemon' (e.g. http://127.0.0.1:9184)")
    how.add_argument("--standalone", action="store_true",
                     help="poll by itself even when a daemon answers on 127.0.0.1:9184")
    att.add_argument("--token-file", metavar="PATH", type=Path,
                     help="the daemon's API token (else $MINERTOP_TOKEN)")
    look = p.add_argument_group("terminal")
    chars = look.add_mutually_exclusive_group()
    chars.add_argument("--ascii", dest="ascii", action="store_true", default=None,
                       help="draw with ASCII only (default when the locale isn't UTF-8)")
    chars.add_argument("--unicode", dest="ascii", action="store_false",
                       help="draw with Unicode even if the locale doesn't say UTF-8")
    look.add_argument("--no-mouse", dest="mouse", action="store_false",
                      help="don't capture the mouse (leaves the terminal's selection alone)")
    p.add_argument("--log", metavar="FILE", type=Path,
                   help="append the log (errors with their tracebacks) to FILE")
    p.add_argument("--notify", action="store_true",
                   help="send the config's [[notify]] alerts from this dashboard (the daemon "
                   "does by default)")
    p.add_argument("--once", action="store_true", help="fetch once, print the numbers, exit")
    p.add_argument("--json", action="store_true", help="with --once: print JSON")
    p.add_argument("--version", action="version", version=f"minertop {__version__}")
    return p


def build_daemon_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="minertop daemon", allow_abbrev=False,
        description="Run minertop headless: poll every source, keep the history in SQLite, "
        "serve the HTTP API and send alerts. SIGTERM/SIGINT stop it, SIGHUP re-reads the "
        "config.")
    _add_source_args(p)
    d = p.add_argument_group("daemon")
    d.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:9184",
                   help="where the API listens (default 127.0.0.1:9184; any address off "
                   "loopback needs a token)")
    d.add_argument("--token-file", metavar="PATH", type=Path,
                   help="file holding the API token (else $MINERTOP_TOKEN)")
    d.add_argument("--db", metavar="PATH", type=Path,
                   help="history database (default $XDG_STATE_HOME/minertop/history.db)")
    d.add_argument("--log", metavar="FILE", type=Path,
                   help="also append the log, with tracebacks, to FILE")
    d.add_argument("-v", "--verbose", action="store_true", help="log each request and poll")
    p.set_defaults(once=False, json=False, ascii=False, mouse=False, attach=None,
                   standalone=True)
    return p


def _add_source_args(p: argparse.ArgumentParser) -> None:
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


async def _once(spec: SourceSpec, as_json: bool) -> int:
    """``--once``: the engine polls every source once; print what it computed."""
    from tui.engine import run_once

    try:
        view = await run_once(spec)
    except Exception as e:  # the demo's simulator could not start, a port problem...
        print(f"minertop: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return print_view(view, as_json)


def print_view(view: EngineView, as_json: bool) -> int:
    from tui.dashboard import to_text
    from tui.engine import view_document

    chain = view.sources.get("chain")
    if view.dashboard is None:
        reason = (chain.error if chain and chain.error else
                  view.errors.get("startup") or view.errors.get("network") or "no chain data")
        print(f"minertop: {reason}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(view_document(view), indent=2, ensure_ascii=False))
        return 0
    print(to_text(view.dashboard))
    price = view.sources.get("price")
    if price is not None and price.error:
        print(f"price       unavailable: {price.error}")
    if view.site is not None:
        from tui.site import site_text

        print(site_text(view.site))
    return 0


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


#: Where a local daemon answers by default (``minertop`` attaches to it when it does;
#: ``$MINERTOP_DAEMON`` names another address).
DEFAULT_DAEMON = "http://127.0.0.1:9184"
TOKEN_ENV = "MINERTOP_TOKEN"


def _token(path: Path | None, environ: Mapping[str, str]) -> str | None:
    """The API token from ``--token-file`` or ``$MINERTOP_TOKEN`` (never from argv),
    checked like the daemon checks it (stripped, at least 16 characters, no spaces)."""
    from tui.tokens import ListenError, load_token

    try:
        return load_token(path, environ)
    except ListenError as e:
        raise UsageError(str(e)) from None


def _source_given(args: argparse.Namespace) -> bool:
    return bool(args.demo or args.mempool or args.bitcoind or args.config or args.attach
                or args.standalone)


def daemon_answers(url: str, token: str | None, timeout: float = 0.5) -> bool:
    """True when a minertop daemon answers at ``url`` (its /healthz says so)."""
    import httpx

    try:
        r = httpx.get(url.rstrip("/") + "/healthz", timeout=timeout)
        return r.status_code == 200 and r.json().get("service") == "minertop"
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, AttributeError, OSError):
        return False


def daemon_main(argv: list[str]) -> int:
    """``minertop daemon ...``"""
    from tui.logs import LogSetupError, setup_logging

    try:
        args = build_daemon_parser().parse_args(argv)
        spec = resolve(args)
        token = _token(args.token_file, os.environ)
        from tui.api import ListenError, check_listen, parse_listen

        try:
            host, port = parse_listen(args.listen)
            check_listen(host, token)
        except ListenError as e:
            raise UsageError(str(e)) from None
    except UsageError as e:
        print(f"minertop daemon: error: {e}", file=sys.stderr)
        return 2
    try:
        setup_logging("daemon", args.log, verbose=args.verbose)
    except LogSetupError as e:
        print(f"minertop daemon: error: {e}", file=sys.stderr)
        return 2
    if args.token_file is not None:
        from tui.api import token_file_too_open

        if token_file_too_open(args.token_file):
            import logging

            logging.getLogger("minertop").warning(
                "%s is readable by other users: chmod 600 it", args.token_file)
    from tui.daemon import DaemonOptions, run_daemon

    options = DaemonOptions(host=host, port=port, token=token, db_path=args.db)

    try:  # SIGHUP re-resolves the same arguments: the config file is read again
        return asyncio.run(run_daemon(spec, options, reload=lambda: resolve(args)))
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    set_terminal_defaults()
    if argv[:1] == ["sim"]:
        from tui.sim import run_sim_cli

        return run_sim_cli(argv[1:])
    if argv[:1] == ["init-config"]:
        return init_config(argv[1:])
    if argv[:1] == ["daemon"]:
        return daemon_main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if args.prometheus is not None:
            return _fleet_main(args)
        attach = args.attach
        token = _token(args.token_file, os.environ)
        if attach is not None:
            attach = _check_url("--attach", attach)
            if args.config or args.demo or args.mempool or args.bitcoind:
                raise UsageError("--attach shows the daemon's sources: drop the source flags")
            if args.json and not args.once:
                raise UsageError("--json needs --once")
            spec = resolve_display(args)
        else:
            spec = resolve(args)
            local = os.environ.get("MINERTOP_DAEMON") or DEFAULT_DAEMON
            local = _check_url("$MINERTOP_DAEMON", local)
            if not _source_given(args) and daemon_answers(local, token):
                attach = local
    except UsageError as e:
        print(f"minertop: error: {e}", file=sys.stderr)
        return 2
    from tui.logs import LogSetupError, setup_logging

    try:
        setup_logging("once" if args.once else "dashboard", args.log)
    except LogSetupError as e:
        print(f"minertop: error: {e}", file=sys.stderr)
        return 2
    if args.once:
        try:
            if attach is not None:
                rc = asyncio.run(_once_attached(attach, token, args.json))
            else:
                rc = asyncio.run(_once(spec, args.json))
            sys.stdout.flush()
            return rc
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            return _reader_gone()
    from tui.app import run_app

    return run_app(spec, attach=attach, token=token, notify=args.notify)


#: Exit status when the reader of stdout went away (``| head``): what a process killed by
#: SIGPIPE reports in a shell (128 + 13), as other Unix tools do.
EXIT_BROKEN_PIPE = 141


def _reader_gone() -> int:
    """stdout's reader closed the pipe: stop quietly (no traceback, and no second error
    when Python flushes stdout at exit)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def _fleet_main(args: argparse.Namespace) -> int:
    """``minertop --prometheus URL [--once [--json]]``: the fleet view."""
    url = _check_url("--prometheus", args.prometheus)
    others = [f for f, v in (("--demo", args.demo), ("--mempool", args.mempool),
                             ("--bitcoind", args.bitcoind), ("--attach", args.attach),
                             ("--config", args.config)) if v]
    if others:
        raise UsageError(f"--prometheus shows what Prometheus scrapes: drop {', '.join(others)}")
    if args.json and not args.once:
        raise UsageError("--json needs --once")
    token = os.environ.get("MINERTOP_PROMETHEUS_TOKEN") or None
    from tui.logs import LogSetupError, setup_logging

    try:
        setup_logging("once" if args.once else "dashboard", args.log)
    except LogSetupError as e:
        raise UsageError(str(e)) from None
    if args.once:
        try:
            rc = asyncio.run(_once_fleet(url, token, args.json))
            sys.stdout.flush()
            return rc
        except BrokenPipeError:
            return _reader_gone()
    from tui.fleet_app import run_fleet_app

    ascii_only = (not locale_is_utf8(os.environ)) if args.ascii is None else args.ascii
    return run_fleet_app(url, token, ascii=ascii_only, mouse=args.mouse)


async def _once_fleet(url: str, token: str | None, as_json: bool) -> int:
    """Every site's figures from Prometheus, once: 0, or 1 when Prometheus can't be read."""
    from tui.fleet import fleet_json, fleet_text
    from tui.sources.base import SourceError
    from tui.sources.prometheus import PrometheusSource

    source = PrometheusSource(url, token=token)
    try:
        snap = await source.fetch()
    except SourceError as e:
        print(f"minertop: {e}", file=sys.stderr)
        return 1
    finally:
        await source.aclose()
    if as_json:
        print(json.dumps(fleet_json(snap), indent=2, ensure_ascii=False))
    else:
        print(fleet_text(snap))
    return 0


def resolve_display(args: argparse.Namespace) -> SourceSpec:
    """The spec of an attached dashboard: no sources of its own, only how to draw."""
    ascii_only = (not locale_is_utf8(os.environ)) if args.ascii is None else args.ascii
    return SourceSpec(kind="daemon", url=args.attach or DEFAULT_DAEMON, ascii=ascii_only,
                      mouse=args.mouse)


async def _once_attached(url: str, token: str | None, as_json: bool) -> int:
    """``--attach URL --once``: the daemon's last completed cycle."""
    from tui.remote import RemoteError, fetch_snapshot, fetch_view

    try:
        if as_json:
            doc = await fetch_snapshot(url, token)
            print(json.dumps(doc, indent=2, ensure_ascii=False))
            return 0
        view = await fetch_view(url, token)
    except RemoteError as e:
        print(f"minertop: {e}", file=sys.stderr)
        return 1
    return print_view(view, as_json=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
