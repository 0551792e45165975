"""The ``minertop`` command line.

Kept light: ``--once`` and ``sim`` never import Textual (checked by a test), and
``completion`` is the only path that imports shtab.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import select
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO
from urllib.parse import urlsplit

from tui import __version__
from tui.config import (
    ConfigError,
    default_config_path,
    load_config,
    write_example_config,
)
from tui.glyphs import locale_is_utf8, to_ascii
from tui.spec import DEFAULT_MEMPOOL, SourceSpec

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

    from tui.engine import EngineView

DEFAULT_PASSWORD_ENV = "MINERTOP_RPC_PASSWORD"

# ------------------------------------------------------------------ exit statuses

EXIT_OK = 0
#: ``--once`` could read nothing; the daemon, the simulator or the dashboard could not start;
#: ``init-config`` could not write.
EXIT_FAILURE = 1
#: Bad arguments or config, and the dashboard asked for without a terminal.
EXIT_USAGE = 2
#: ``--once``: the chain source could not be read but the rigs were (they are printed, the
#: figures that need the chain are null, ``errors`` says what failed).
EXIT_PARTIAL = 3
#: The dashboard's terminal hung up (SIGHUP, an SSH session dropped): 128 + 1.
EXIT_HANGUP = 129
#: Interrupted (Ctrl-C) during ``--once``: 128 + SIGINT.
EXIT_INTERRUPTED = 130
#: Exit status when the reader of stdout went away (``| head``): what a process killed by
#: SIGPIPE reports in a shell (128 + 13), as other Unix tools do.  A closed stdout too.
EXIT_BROKEN_PIPE = 141

#: What ``--help`` and the README say about each exit status.
EXIT_STATUSES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success (the daemon and the simulator: stopped by SIGTERM or Ctrl-C)"),
    (EXIT_FAILURE, "--once could read nothing; the daemon, the simulator or the dashboard "
     "could not start; init-config could not write"),
    (EXIT_USAGE, "bad arguments or config; the dashboard without a terminal"),
    (EXIT_PARTIAL, "--once, partial: the chain source could not be read but the rigs were "
     "(printed, chain figures null, \"errors\" says what failed)"),
    (EXIT_HANGUP, "the dashboard's terminal hung up"),
    (EXIT_INTERRUPTED, "--once interrupted (Ctrl-C)"),
    (EXIT_BROKEN_PIPE, "stdout's reader went away (| head, | true) or stdout is closed"),
)

#: The environment variables minertop reads, for ``--help`` and the README.
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    (DEFAULT_PASSWORD_ENV, "bitcoind RPC password with --rpc-user (--rpc-password-env names "
     "another variable)"),
    ("MINERTOP_TOKEN", "the daemon's API token, to serve or to attach (unless --token-file)"),
    ("MINERTOP_DAEMON", "where 'minertop' looks for a local daemon (default "
     "http://127.0.0.1:9184)"),
    ("MINERTOP_PROMETHEUS_TOKEN", "bearer token for --prometheus"),
    ("XDG_CONFIG_HOME", "the config: $XDG_CONFIG_HOME/minertop/config.toml (default "
     "~/.config/...)"),
    ("XDG_STATE_HOME", "the daemon's history: $XDG_STATE_HOME/minertop/history.db (default "
     "~/.local/state/...)"),
    ("LC_ALL, LC_CTYPE, LANG", "not UTF-8: ASCII only, on screen and in --once text"),
    ("NO_COLOR", "set: no colours (every state is also in words)"),
    ("TEXTUAL_THEME", "the dashboard's theme for this run (over the config's [ui] theme and "
     "the one last picked)"),
    ("ESCDELAY", "ms a lone Esc waits for the rest of a key's sequence (default 25)"),
    ("JOURNAL_STREAM", "set by systemd: the daemon's log lines leave the time to journald"),
    ("*_env in the config", "[[notify]] secrets: the config names the variables that hold "
     "them"),
)


def _table(title: str, rows: Sequence[tuple[object, str]], width: int = 79) -> str:
    key_w = max(len(str(k)) for k, _ in rows) + 2
    lines = [f"{title}:"]
    for key, text in rows:
        lines += textwrap.wrap(text, width, initial_indent=f"  {str(key):<{key_w}}",
                               subsequent_indent=" " * (key_w + 2), break_on_hyphens=False)
    return "\n".join(lines)


def _epilog(statuses: Sequence[tuple[int, str]] = EXIT_STATUSES,
            env: Sequence[str] | None = None, before: str = "") -> str:
    """The end of a ``--help``: the exit statuses and the environment variables read
    (``env``: their names, None: all of them)."""
    envs = [(v, t) for v, t in ENVIRONMENT if env is None or v in env]
    parts = [textwrap.fill(before, 79)] if before else []
    parts.append(_table("exit status", statuses))
    if envs:
        parts.append(_table("environment", envs))
    return "\n\n".join(parts)


def _fill(text: str) -> str:
    """A description pre-wrapped (the raw formatter keeps the epilog's tables as written)."""
    return textwrap.fill(" ".join(text.split()), 79)


class UsageError(Exception):
    """A bad command line: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """``--help`` and ``--version`` on stdout: through :func:`_emit`, so that a reader
        gone (``| head``) ends as for ``--once`` (argparse would swallow the error)."""
        if message and sys.stdout is not None and file in (None, sys.stdout):
            _emit(message)
        else:
            super()._print_message(message, file)


_USERINFO = re.compile(r"(//).*@")  # to the last @: a password may hold @ / ? #


def _shown_url(url: str) -> str:
    """A URL for an error message: credentials and the query (an API key often lives
    there) replaced by ``***``; works on URLs too broken to parse."""
    shown = _USERINFO.sub(r"\1***@", url, count=1)
    head, sep, _query = shown.partition("?")
    head, hash_, _fragment = head.partition("#")
    return repr(head + ("?***" if sep else "") + ("#***" if hash_ and not sep else ""))


def _check_url(opt: str, url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError as e:  # e.g. "Invalid IPv6 URL"
        raise UsageError(f"{opt}: {e}: {_shown_url(url)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{opt}: expected an http:// or https:// URL, got {_shown_url(url)}")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise UsageError(f"{opt}: bad port in {_shown_url(url)}") from None
    return url.rstrip("/")


def _positive(kind: str) -> Callable[[str], float]:
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
    value = _positive("interval")(text)
    if value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"at least {MIN_INTERVAL_S:.0f} s, got {text!r}")
    return float(value)


# ------------------------------------------------------------------ parsers

DESCRIPTION = ("htop for a Bitcoin mining site: network hashrate, block-time drift and "
               "retarget ETA, live in the terminal.  Without a command: the dashboard (or, "
               "with --once, the numbers printed once).")
DAEMON_DESCRIPTION = ("Run minertop headless: poll every source, keep the history in SQLite, "
                      "serve the HTTP API and send alerts.  SIGTERM/SIGINT stop it, SIGHUP "
                      "re-reads the config.")
INIT_CONFIG_DESCRIPTION = "Write a commented example site config."
INIT_CONFIG_EPILOG = _epilog(((EXIT_OK, "written"),
                              (EXIT_FAILURE, "the file exists (--force overwrites it) or "
                               "can't be written"),
                              (EXIT_USAGE, "bad arguments")), ("XDG_CONFIG_HOME",))
COMPLETION_DESCRIPTION = ("Print a shell completion script for minertop, generated from its "
                          "options.")
COMPLETION_EPILOG = """\
install:
  bash  minertop completion bash > ~/.local/share/bash-completion/completions/minertop
  zsh   minertop completion zsh > ~/.zfunc/_minertop  (a directory on $fpath)
  fish  minertop completion fish > ~/.config/fish/completions/minertop.fish"""
SHELLS = ("bash", "zsh", "fish")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the dashboard's options, and the commands (each with its own
    parser, the one its ``main`` parses with)."""
    p = _Parser(
        prog="minertop",
        usage="%(prog)s [options]            the dashboard (--once: print once)\n"
        "       %(prog)s COMMAND [options]    " + ", ".join(COMMANDS),
        allow_abbrev=False,  # "--rpc-password x" must not be taken for --rpc-password-env
        description=_fill(DESCRIPTION),
        epilog=_epilog(before="'minertop COMMAND --help' shows each command's options."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
                       help="ASCII only, on screen and in --once text (default when the "
                       "locale isn't UTF-8)")
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
    _add_commands(p)
    return p


def _add_commands(p: argparse.ArgumentParser) -> None:
    from tui.sim import _parser as sim_parser

    sub = p.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter
    daemon = sub.add_parser("daemon", help="run headless: history, HTTP API, alerts",
                            allow_abbrev=False, description=_fill(DAEMON_DESCRIPTION),
                            epilog=_daemon_epilog(), formatter_class=raw)
    _daemon_args(daemon)
    sim = sim_parser()
    sub.add_parser("sim", parents=[sim], add_help=False, allow_abbrev=False,
                   help="serve a simulated network (and rigs) on loopback",
                   description=_fill(sim.description or ""), formatter_class=raw)
    init = sub.add_parser("init-config", help="write a commented example config",
                          allow_abbrev=False, description=INIT_CONFIG_DESCRIPTION,
                          epilog=INIT_CONFIG_EPILOG,
                          formatter_class=raw)
    _init_config_args(init)
    comp = sub.add_parser("completion", help="print a shell completion script",
                          allow_abbrev=False, description=COMPLETION_DESCRIPTION,
                          epilog=COMPLETION_EPILOG, formatter_class=raw)
    _completion_args(comp)


def _daemon_epilog() -> str:
    return _epilog(((EXIT_OK, "stopped by SIGTERM or Ctrl-C"),
                    (EXIT_FAILURE, "could not start (the API's address in use, the history "
                     "database unusable)"),
                    (EXIT_USAGE, "bad arguments or config")),
                   (DEFAULT_PASSWORD_ENV, "MINERTOP_TOKEN", "XDG_CONFIG_HOME", "XDG_STATE_HOME",
                    "JOURNAL_STREAM", "*_env in the config"))


def build_daemon_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="minertop daemon", allow_abbrev=False,
                description=_fill(DAEMON_DESCRIPTION), epilog=_daemon_epilog(),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    _daemon_args(p)
    return p


def _daemon_args(p: argparse.ArgumentParser) -> None:
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


def _add_source_args(p: argparse.ArgumentParser) -> None:
    from tui.sim.world import SCENARIOS

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
    p.add_argument("--scenario", default="jan2026", choices=sorted(SCENARIOS),
                   help="simulator scenario for --demo (default jan2026)")
    p.add_argument("--chain-interval", type=_interval, default=30.0, metavar="S",
                   help="seconds between chain polls (default 30, at least 5)")
    p.add_argument("--price-interval", type=_interval, default=60.0, metavar="S",
                   help="seconds between price polls (default 60, at least 5)")
    p.add_argument("--config", metavar="PATH", type=Path,
                   help="site config (default $XDG_CONFIG_HOME/minertop/config.toml; "
                   "'minertop init-config' writes an example)")


def _init_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", nargs="?", type=Path, help="where to write it (default: the XDG "
                   "location, $XDG_CONFIG_HOME/minertop/config.toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")


def _completion_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")


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


# ------------------------------------------------------------------ output of --once

#: Rig statuses that mean the rig answered with figures (``offline``/``error``: it didn't).
_READ = frozenset({"ok", "stale", "stuck"})


def _encodes(text: str, stream: TextIO) -> bool:
    """Whether ``stream`` can write ``text`` as it is (its encoding has every character)."""
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def write_text(text: str, ascii_only: bool = False) -> None:
    """Text on stdout: ASCII (the screen's own translation, :func:`tui.glyphs.to_ascii`) when
    asked to, or when stdout's encoding can't carry it (``LC_ALL=C``,
    ``PYTHONIOENCODING=ascii``): never a UnicodeEncodeError."""
    if ascii_only or not _encodes(text, sys.stdout):
        text = to_ascii(text)
    _emit(text + "\n")


def write_json(doc: object) -> None:
    """JSON on stdout, non-ASCII characters escaped: the same bytes through any encoding."""
    _emit(json.dumps(doc, indent=2, ensure_ascii=True) + "\n")


def _emit(text: str) -> None:
    """All of ``text`` on stdout, or an error.  An unbuffered stdout (``python -u``,
    ``PYTHONUNBUFFERED=1``, usual in containers) hands a pipe the text in one write(2),
    which a reader leaving midway (``| head -c 10``) cuts short without an error: the rest
    would be lost silently.  Written here piece by piece, the next piece fails with
    BrokenPipeError as with a buffered stdout."""
    out = sys.stdout
    buf = getattr(out, "buffer", None)
    if buf is None:  # a stand-in without a byte layer
        out.write(text)
        return
    out.flush()
    data = memoryview(text.encode(out.encoding or "utf-8", out.errors or "strict"))
    while data:
        n = buf.write(data)
        if not n:  # a non-blocking stdout that is full: wait until it takes more
            select.select([], [buf], [], 1.0)
            continue
        data = data[n:]
    buf.flush()


async def _once(spec: SourceSpec, as_json: bool) -> int:
    """``--once``: the engine polls every source once; print what it computed."""
    from tui.engine import run_once

    try:
        view = await run_once(spec)
    except Exception as e:  # the demo's simulator could not start, a port problem...
        print(f"minertop: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILURE
    return print_view(view, as_json, ascii_only=spec.ascii)


def print_view(view: EngineView, as_json: bool, *, ascii_only: bool = False) -> int:
    """Print a view for ``--once``: 0; :data:`EXIT_PARTIAL` when the chain could not be read
    but rigs were (printed without the chain's figures); 1 when nothing could be read."""
    from tui.engine import view_document

    chain_error = None
    if view.dashboard is None:
        chain = view.sources.get("chain")
        chain_error = (chain.error if chain and chain.error else
                       view.errors.get("startup") or view.errors.get("network")
                       or "no chain data")
        if view.site is None or not any(r.status in _READ for r in view.site.rows):
            print(f"minertop: {chain_error}", file=sys.stderr)
            return EXIT_FAILURE
    if as_json:
        write_json(view_document(view))
    else:
        write_text(view_text(view, chain_error), ascii_only)
    if chain_error is not None:
        sys.stdout.flush()  # the figures first, then why some are missing
        print(f"minertop: partial: {chain_error} (printed the rigs without the chain's "
              "figures)", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def view_text(view: EngineView, chain_error: str | None = None) -> str:
    """The plain lines of ``--once``: the network's numbers (or why there are none), the
    price's problem if any, then the site's rigs."""
    from tui.dashboard import to_text

    if view.dashboard is not None:
        lines = [to_text(view.dashboard)]
    else:
        lines = [f"source      {view.source_label}",
                 f"chain       unavailable: {chain_error or 'no chain data'}"]
        if view.price is not None:
            lines.append(f"price       ${view.price.usd:,.0f}")
    price = view.sources.get("price")
    if price is not None and price.error:
        lines.append(f"price       unavailable: {price.error}")
    if view.site is not None:
        from tui.site import site_text

        lines.append(site_text(view.site))
    return "\n".join(lines)


# ------------------------------------------------------------------ commands

def build_init_config_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="minertop init-config", allow_abbrev=False,
                description=INIT_CONFIG_DESCRIPTION,
                epilog=INIT_CONFIG_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    _init_config_args(p)
    return p


def init_config(argv: list[str]) -> int:
    """``minertop init-config [PATH] [--force]``: write a commented example config."""
    try:
        args = build_init_config_parser().parse_args(argv)
    except UsageError as e:
        print(f"minertop: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    path = args.path or default_config_path()
    try:
        written = write_example_config(path, force=args.force)
    except FileExistsError as e:
        print(f"minertop: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as e:
        print(f"minertop: cannot write {path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"wrote {written}; edit it, then run: minertop --config {written}")
    return EXIT_OK


def build_completion_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="minertop completion", allow_abbrev=False,
                description=COMPLETION_DESCRIPTION, epilog=COMPLETION_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    _completion_args(p)
    return p


def completion_main(argv: list[str]) -> int:
    """``minertop completion bash|zsh|fish``: the completion script on stdout."""
    try:
        args = build_completion_parser().parse_args(argv)
    except UsageError as e:
        print(f"minertop completion: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if sys.stdout is None:
        return _reader_gone()
    write_text(completion_script(args.shell).rstrip("\n"))
    return EXIT_OK


def completion_script(shell: str) -> str:
    """The completion script for ``shell`` (bash, zsh: by shtab; fish: :func:`fish_script`),
    generated from :func:`build_parser`, commands and their options included."""
    parser = build_parser()
    if shell == "fish":
        return fish_script(parser)
    import shtab

    for p in _all_parsers(parser):
        for a in p._actions:
            if _is_path(a):
                how = shtab.DIRECTORY if a.dest == "datadir" else shtab.FILE
                a.complete = how  # type: ignore[attr-defined]
    script = shtab.complete(parser, shell=shell)
    return script if script.endswith("\n") else script + "\n"


def _is_path(action: argparse.Action) -> bool:
    """An option whose value is a file or a directory (completed with paths)."""
    return action.type is Path or action.metavar in ("PATH", "FILE") or \
        action.dest == "datadir"


def _commands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [parser, *_commands_of(parser).values()]


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: Where a help text's first clause ends (for a one-line description in a completion menu).
_CLAUSE_END = re.compile(r"; | \(e\.g\.|,? e\.g\. |\. (?=[A-Z])")


def _short_help(action: argparse.Action | None, text: str | None = None) -> str:
    """One line of help for a completion menu: the first clause, at most 72 characters."""
    raw = text if text is not None else (action.help if action is not None else None) or ""
    if action is not None and "%" in raw:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            raw = raw % {**vars(action), "prog": "minertop"}
    line = _CLAUSE_END.split(" ".join(raw.split()), maxsplit=1)[0]
    if line.count("(") > line.count(")"):  # cut inside parentheses
        line += ")"
    return line if len(line) <= 72 else line[:69].rstrip() + "..."


def fish_script(parser: argparse.ArgumentParser) -> str:
    """A fish completion script from ``parser``: the dashboard's options before any command,
    the commands, then each command's options once it is on the line."""
    out = ["# fish completion for minertop (generated by 'minertop completion fish')",
           "complete -c minertop -f"]
    commands = _commands_of(parser)
    helps: dict[str, str] = {}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in a._choices_actions}
    for name in commands:
        out.append(f"complete -c minertop -n __fish_use_subcommand -a {name} "
                   f"-d {_fish_quote(_short_help(None, helps.get(name)))}")
    out += _fish_options(parser, "__fish_use_subcommand")
    for name, sub in commands.items():
        out.append("")
        out += _fish_options(sub, _fish_quote(f"__fish_seen_subcommand_from {name}"))
    return "\n".join(out) + "\n"


def _fish_options(parser: argparse.ArgumentParser, condition: str) -> list[str]:
    out = []
    for a in parser._actions:
        if a.help == argparse.SUPPRESS or isinstance(a, argparse._SubParsersAction):
            continue
        line = ["complete -c minertop -n", condition]
        if a.option_strings:
            for s in a.option_strings:
                line.append(f"-l {s[2:]}" if s.startswith("--") else f"-s {s[1:]}")
        if a.nargs != 0:  # it takes a value
            if a.choices:
                line.append(f"-xa {_fish_quote(' '.join(map(str, a.choices)))}")
            elif not a.option_strings:
                line.append("-F")  # a positional: a path
            elif _is_path(a):
                line.append("-rF")
            else:
                line.append("-x")
        if a.help:
            line.append(f"-d {_fish_quote(_short_help(a))}")
        out.append(" ".join(line))
    return out


def _sim_main(argv: list[str]) -> int:
    from tui.sim import run_sim_cli

    return run_sim_cli(argv)


#: How long a lone ESC byte waits before it counts as the Esc key, in ms, unless the
#: user's ``ESCDELAY`` says otherwise.  A terminal sends an escape sequence (an arrow key)
#: in one write, so 25 ms tells the two apart even over SSH; htop uses the same.  Textual's
#: default is 100 ms, which every Esc press would wait out.
ESCDELAY_MS = 25


def set_terminal_defaults(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Before Textual is imported (it reads ``ESCDELAY`` once)."""
    environ.setdefault("ESCDELAY", str(ESCDELAY_MS))


def no_terminal() -> str | None:
    """Why the dashboard can't run here, in words (None: it can).  It reads keys from stdin
    and draws on the terminal (Textual draws through stderr): without a terminal it would
    write escape codes into a pipe or a file for nothing."""
    def tty(stream: TextIO | None) -> bool:
        try:
            return stream is not None and stream.isatty()
        except (ValueError, OSError):  # closed
            return False

    missing = [name for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout),
                                         ("stderr", sys.stderr)) if not tty(stream)]
    if not missing:
        return None
    which = (", ".join(missing[:-1]) + " and " + missing[-1]) if len(missing) > 1 else \
        missing[0]
    verb = "is not a terminal" if len(missing) == 1 else "are not terminals"
    return (f"the dashboard needs a terminal ({which} {verb}): for scripts use "
            "'minertop --once' (--json for JSON), to run headless 'minertop daemon'")


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
        return EXIT_USAGE
    try:
        setup_logging("daemon", args.log, verbose=args.verbose)
    except LogSetupError as e:
        print(f"minertop daemon: error: {e}", file=sys.stderr)
        return EXIT_USAGE
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
        return EXIT_OK


#: The commands, each with its own parser (see :func:`build_parser`), by the first argument.
COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "daemon": daemon_main,
    "sim": _sim_main,
    "init-config": init_config,
    "completion": completion_main,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    set_terminal_defaults()
    try:
        try:
            return _main(argv)
        finally:  # --help and --version too: what is left in the buffer goes out now
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()


def _main(argv: list[str]) -> int:
    if argv[:1] and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if args.command is not None:  # "minertop --demo daemon": the command goes first
            raise UsageError(f"the command goes first: minertop {args.command} [options] "
                             f"(see 'minertop {args.command} --help')")
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
        if not args.once and (why := no_terminal()) is not None:
            raise UsageError(why)
        if attach is None:
            local = os.environ.get("MINERTOP_DAEMON") or DEFAULT_DAEMON
            local = _check_url("$MINERTOP_DAEMON", local)
            if not _source_given(args) and daemon_answers(local, token):
                attach = local
    except UsageError as e:
        print(f"minertop: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    from tui.logs import LogSetupError, setup_logging

    try:
        setup_logging("once" if args.once else "dashboard", args.log)
    except LogSetupError as e:
        print(f"minertop: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.once:
        return _run_once_output(lambda: _once_attached(attach, token, args.json, spec.ascii)
                                if attach is not None else _once(spec, args.json))
    from tui.app import run_app

    return run_app(spec, attach=attach, token=token, notify=args.notify)


def _run_once_output(make: Callable[[], Any]) -> int:
    """Run a ``--once`` coroutine that prints: a closed stdout or a reader gone (``| head``)
    is :data:`EXIT_BROKEN_PIPE`, quietly; any other write error one line and 1."""
    if sys.stdout is None:  # started with stdout closed (>&-): nowhere to print
        return _reader_gone()
    try:
        rc: int = asyncio.run(make())
        sys.stdout.flush()
        return rc
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _reader_gone()
    except OSError as e:  # a full disk, /dev/full...
        print(f"minertop: cannot write the output: {e.strerror or e}", file=sys.stderr)
        return EXIT_FAILURE


def _reader_gone() -> int:
    """stdout's reader closed the pipe: stop quietly (no traceback, and no second error
    when Python flushes stdout at exit)."""
    if sys.stdout is None:
        return EXIT_BROKEN_PIPE
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
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
    if not args.once and (why := no_terminal()) is not None:
        raise UsageError(why)
    token = os.environ.get("MINERTOP_PROMETHEUS_TOKEN") or None
    ascii_only = (not locale_is_utf8(os.environ)) if args.ascii is None else args.ascii
    from tui.logs import LogSetupError, setup_logging

    try:
        setup_logging("once" if args.once else "dashboard", args.log)
    except LogSetupError as e:
        raise UsageError(str(e)) from None
    if args.once:
        return _run_once_output(lambda: _once_fleet(url, token, args.json, ascii_only))
    from tui.fleet_app import run_fleet_app

    return run_fleet_app(url, token, ascii=ascii_only, mouse=args.mouse)


async def _once_fleet(url: str, token: str | None, as_json: bool,
                      ascii_only: bool = False) -> int:
    """Every site's figures from Prometheus, once: 0, or 1 when Prometheus can't be read."""
    from tui.fleet import fleet_json, fleet_text
    from tui.sources.base import SourceError
    from tui.sources.prometheus import PrometheusSource

    source = PrometheusSource(url, token=token)
    try:
        snap = await source.fetch()
    except SourceError as e:
        print(f"minertop: {e}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        await source.aclose()
    if as_json:
        write_json(fleet_json(snap))
    else:
        write_text(fleet_text(snap), ascii_only)
    return EXIT_OK


def resolve_display(args: argparse.Namespace) -> SourceSpec:
    """The spec of an attached dashboard: no sources of its own, only how to draw."""
    ascii_only = (not locale_is_utf8(os.environ)) if args.ascii is None else args.ascii
    return SourceSpec(kind="daemon", url=args.attach or DEFAULT_DAEMON, ascii=ascii_only,
                      mouse=args.mouse)


async def _once_attached(url: str, token: str | None, as_json: bool,
                         ascii_only: bool = False) -> int:
    """``--attach URL --once``: the daemon's last completed cycle."""
    from tui.remote import RemoteError, fetch_snapshot, fetch_view

    try:
        if as_json:
            doc = await fetch_snapshot(url, token)
            write_json(doc)
            return EXIT_OK
        view = await fetch_view(url, token)
    except RemoteError as e:
        print(f"minertop: {e}", file=sys.stderr)
        return EXIT_FAILURE
    return print_view(view, as_json=False, ascii_only=ascii_only)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
