"""Command line: argument errors, source resolution, ``--once`` (in a subprocess)."""

from __future__ import annotations

import json
import os
import re
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_rigs_client import ANT, by_command, closed_port
from tui.cli import (
    COMMANDS,
    ENVIRONMENT,
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    EXIT_STATUSES,
    EXIT_USAGE,
    UsageError,
    build_parser,
    main,
    resolve,
)

ROOT = Path(__file__).resolve().parent.parent


def _resolve(*argv: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return resolve(build_parser().parse_args(list(argv)), env or {})


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--price", "abc"], "--price"),
        (["--price", "-5"], "positive"),
        (["--mempool", "ftp://x"], "http"),
        (["--mempool", "http://127.0.0.1:99999"], "port"),
        (["--json"], "--json needs --once"),
        (["--bitcoind", "http://127.0.0.1:8332"], "--rpc-cookie"),
        (["--bitcoind", "http://127.0.0.1:8332", "--rpc-user", "alice"], "MINERTOP_RPC_PASSWORD"),
        (["--demo", "--mempool", "http://127.0.0.1:1"], "not allowed"),
        (["--rpc-cookie", "/x"], "--bitcoind"),
        (["--bogus"], "unrecognized"),
        (["--chain-interval", "0"], "positive"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MINERTOP_RPC_PASSWORD", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("minertop: error: ")
    assert needle in err


@pytest.mark.parametrize("url", [
    "http://user:s3cretpw@127.0.0.1:99999",
    "http://s3cretpw@127.0.0.1:99999/x?apikey=s3cretpw",
    "ftp://user:s3cretpw@127.0.0.1/",
    "http://[::1:s3cretpw@host/?k=s3cretpw",
    "http://user:p@s3cretpw@host:99999/",
    "http://user:pa/s3cretpw@host/",
    "http://u:pass#s3cretpw@h:99999/",
    "http://u:pass?s3cretpw@h:99999/",
])
def test_a_bad_url_is_told_without_its_secrets(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Credentials and the query string (an API key lives there) never reach the terminal
    or a log that captures stderr, even in a usage error."""
    assert main(["--once", "--mempool", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minertop: error: --mempool") and "s3cretpw" not in err
    assert "***" in err


def test_password_comes_from_environment_only() -> None:
    spec = _resolve("--bitcoind", "http://127.0.0.1:8332", "--rpc-user", "alice",
                    env={"MINERTOP_RPC_PASSWORD": "s3cret"})
    assert spec.kind == "bitcoind" and spec.rpc_user == "alice" and spec.rpc_password == "s3cret"
    assert spec.price_url == "https://mempool.space"
    # No option takes a password, not even by abbreviation of --rpc-password-env.
    with pytest.raises(UsageError):
        build_parser().parse_args(["--rpc-password", "x"])


def test_defaults_and_self_hosted_mempool() -> None:
    spec = _resolve()
    assert spec.kind == "mempool" and spec.url == "https://mempool.space"
    assert spec.price_url == "https://mempool.space"
    spec = _resolve("--mempool", "http://127.0.0.1:8999/", "--price", "71000")
    assert spec.url == "http://127.0.0.1:8999" and spec.price_url is None
    assert spec.fixed_price == 71000.0


#: ``minertop ARGS`` in a subprocess, failing if it imported Textual (or, for anything but
#: ``completion``, shtab).
CODE = (
    "import sys\n"
    "from tui.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "assert 'textual' not in sys.modules, 'textual was imported'\n"
    "assert sys.argv[1:2] == ['completion'] or 'shtab' not in sys.modules, 'shtab imported'\n"
    "sys.exit(rc)\n"
)


def _run(*argv: str, timeout: float = 60,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "TZ": "UTC", **(env or {})}
    return subprocess.run([sys.executable, "-c", CODE, *argv], capture_output=True, text=True,
                          timeout=timeout, env=full, cwd=ROOT, stdin=subprocess.DEVNULL)


def test_once_unreachable_source_is_one_line_nonzero() -> None:
    r = _run("--once", "--mempool", "http://127.0.0.1:9", "--price", "1")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "127.0.0.1:9" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("via", ["mempool", "bitcoind"])
def test_once_json_on_demo_without_textual(via: str) -> None:
    r = _run("--once", "--json", "--demo", "--demo-via", via)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["price_usd"] == pytest.approx(71_000, rel=0.02)
    assert 900 < doc["hashrate_ehs"]["1d"] < 1050
    assert doc["retarget"]["change_pct_low"] <= doc["retarget"]["change_pct"]
    assert doc["retarget"]["change_pct"] <= doc["retarget"]["change_pct_high"]
    assert doc["source"].startswith(via)


def test_once_text_on_demo() -> None:
    r = _run("--once", "--demo")
    assert r.returncode == 0, r.stderr
    assert "hashrate" in r.stdout and "retarget" in r.stdout and "EH/s" in r.stdout


@pytest.mark.parametrize(("given", "want"), [(None, 0.025), ("60", 0.06)])
def test_lone_esc_waits_25ms_unless_escdelay_says_otherwise(given: str | None,
                                                             want: float) -> None:
    """The TUI's entry point sets ESCDELAY before Textual reads it; a user's value wins."""
    code = (
        "import sys\n"
        "from tui.cli import set_terminal_defaults\n"
        "set_terminal_defaults()\n"
        "from textual import constants\n"
        "print(constants.ESCAPE_DELAY)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ESCDELAY"}
    if given is not None:
        env["ESCDELAY"] = given
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) == pytest.approx(want)


def test_once_into_a_closed_pipe_ends_quietly() -> None:
    """`minertop --once | true`: no BrokenPipeError traceback; exit 141 (as SIGPIPE)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "import sys\nfrom tui.cli import main\n"
                          "sys.exit(main(sys.argv[1:]))\n", "--demo", "--once"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader is gone before anything is written
    err = p.stderr.read()
    assert p.wait(60) == 141
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err


# ----------------------------------------------------------------------------- partial

class FakeCgminer:
    """An Antminer's cgminer API on 127.0.0.1, served from a thread of the test process
    (the CLI under test runs in a subprocess): every command gets the reply JSON + NUL."""

    def __init__(self) -> None:
        reply = by_command(ANT)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(5)
                data = b""
                while not data.rstrip().endswith(b"}"):
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                self.request.sendall(reply(json.loads(data)["command"], 1))

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


#: A site name the ASCII fallbacks must carry through (JSON escapes it, text translates it).
SITE_NAME = "Zürich · Nord"


@pytest.fixture
def rig_site(tmp_path: Path) -> Iterator[Path]:
    """A config with two cgminer rigs: a-01 answers (a fake Antminer), a-02 is offline."""
    rig = FakeCgminer()
    path = tmp_path / "site.toml"
    path.write_text(
        f'[site]\nname = "{SITE_NAME}"\nelectricity_usd_kwh = 0.06\n\n'
        f'[[rigs]]\nname = "a-01"\nhost = "127.0.0.1"\nport = {rig.port}\nkind = "cgminer"\n\n'
        f'[[rigs]]\nname = "a-02"\nhost = "127.0.0.1"\nport = {closed_port()}\n'
        'kind = "cgminer"\n', encoding="utf-8")
    try:
        yield path
    finally:
        rig.close()


def chain_down(config: Path, *more: str) -> list[str]:
    """``--once`` with the chain (and the price) on a closed loopback port."""
    return ["--once", "--config", str(config), "--mempool",
            f"http://127.0.0.1:{closed_port()}", *more]


def test_chain_down_rigs_read_json_is_partial_exit_3(rig_site: Path) -> None:
    r = _run(*chain_down(rig_site, "--json"))
    assert r.returncode == EXIT_PARTIAL == 3, r.stderr
    doc = json.loads(r.stdout)
    sources = {e["source"]: e["error"] for e in doc["errors"]}
    assert set(sources) == {"chain", "price"} and "connection refused" in sources["chain"]
    assert doc["tip_height"] is None and doc["hashprice_usd_per_ph_day"] is None
    assert doc["drift"] is None and doc["retarget"] is None
    rigs = {r["name"]: r for r in doc["rigs"]}
    a01, a02 = rigs["a-01"], rigs["a-02"]
    assert a01["status"] == "ok" and a01["hashrate_ths"] == pytest.approx(104.2, abs=0.1)
    assert a01["model"] == "S19j Pro" and len(a01["boards"]) == 3
    assert a01["margin_usd_day"] is None and a01["revenue_usd_day"] is None  # need the chain
    assert a02["status"] == "offline"
    site = doc["site"]
    assert site["name"] == SITE_NAME and site["rigs_by_status"] == {"ok": 1, "offline": 1}
    assert site["hashrate_ths"] == pytest.approx(104.2, abs=0.1) and site["power_w"] > 0
    assert site["margin_usd_day"] is None and site["btc_per_day"] is None
    assert r.stderr.count("\n") == 1 and "partial" in r.stderr
    assert "Traceback" not in r.stderr


def test_chain_down_rigs_read_text_is_partial_exit_3(rig_site: Path) -> None:
    r = _run(*chain_down(rig_site, "--price", "71000"))
    assert r.returncode == EXIT_PARTIAL, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("chain       unavailable:") and "connection refused" in lines[1]
    assert "price       $71,000" in r.stdout
    assert f"Rigs · {SITE_NAME} · 2 rigs" in r.stdout
    a01 = next(line for line in lines if line.strip().startswith("a-01"))
    assert "104.2 TH/s" in a01 and "margin      —" in a01
    assert r.stderr.count("\n") == 1 and "partial" in r.stderr


def test_nothing_readable_is_still_exit_1(tmp_path: Path) -> None:
    """Chain down and every rig offline: nothing was read, the failure status as before."""
    path = tmp_path / "site.toml"
    path.write_text(f'[site]\nname = "s"\nelectricity_usd_kwh = 0.06\n\n[[rigs]]\nname = "a"\n'
                    f'host = "127.0.0.1"\nport = {closed_port()}\nkind = "cgminer"\n')
    r = _run(*chain_down(path, "--json"))
    assert r.returncode == EXIT_FAILURE == 1
    assert r.stdout == "" and r.stderr.count("\n") == 1 and "connection refused" in r.stderr


# ----------------------------------------------------------------------------- commands

def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    return capsys.readouterr().out


def test_help_ends_with_every_exit_status_and_environment_variable(
        capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["--help"], capsys)
    status = out[out.index("\nexit status:\n"):out.index("\nenvironment:\n")]
    env = out[out.index("\nenvironment:\n"):]
    documented = {int(m) for m in re.findall(r"(?m)^  (\d+) ", status)}
    assert documented == {code for code, _ in EXIT_STATUSES} == {0, 1, 2, 3, 129, 130, 141}
    assert (EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE) == (2, 3, 130, 141)
    for name, _ in ENVIRONMENT:
        assert re.search(rf"(?m)^  {re.escape(name)} ", env), name
    assert out.rstrip().endswith(env.rstrip())  # the help ends with them


#: Read by the code but not worth a line: the home directory (behind the XDG defaults).
_UNDOCUMENTED_ENV = {"HOME"}


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    """Whatever variable ``tui/`` reads by name is in --help's environment list."""
    pattern = re.compile(
        r"""environ(?:\.get|\.setdefault)?[(\[]\s*["']([A-Z][A-Z0-9_]+)["']"""
        r"""|["']([A-Z][A-Z0-9_]+)["'] (?:not )?in (?:os\.)?environ"""
        r"""|^[A-Z_]*ENV\s*=\s*["']([A-Z][A-Z0-9_]+)["']""", re.MULTILINE)
    read: set[str] = set()
    for path in (ROOT / "tui").rglob("*.py"):
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            read.add(next(g for g in m.groups() if g))
    documented = {v.strip() for name, _ in ENVIRONMENT for v in name.split(",")}
    assert {"MINERTOP_TOKEN", "MINERTOP_DAEMON", "NO_COLOR", "LANG"} <= read  # the scan works
    assert read - _UNDOCUMENTED_ENV <= documented, read - _UNDOCUMENTED_ENV - documented


def test_commands_are_subcommands_of_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["--help"], capsys)
    listed = out[out.index("\ncommands:\n"):out.index("\nexit status:\n")]
    for name in ("daemon", "sim", "init-config", "completion"):
        assert re.search(rf"(?m)^    {name} +\S", listed), name
    sub = next(a for a in build_parser()._actions
               if isinstance(a, __import__("argparse")._SubParsersAction))
    assert set(sub.choices) == set(COMMANDS)  # each one is dispatched


def test_a_command_after_options_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--demo", "daemon"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "minertop daemon [options]" in err


@pytest.mark.parametrize(("command", "shows"), [
    ("daemon", ["--listen HOST:PORT", "{mempool,bitcoind}", "exit status:", "MINERTOP_TOKEN"]),
    ("sim", ["--rigs demo|N", "--no-chain"]),
    ("init-config", ["--force", "exit status:"]),
    ("completion", ["{bash,zsh,fish}", "completions/minertop.fish"]),
])
def test_each_command_has_its_own_help(command: str, shows: list[str]) -> None:
    from tui.sim.world import SCENARIOS

    r = _run(command, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: minertop {command} ")
    for text in shows:
        assert text in r.stdout, text
    if command in ("daemon", "sim"):  # choices are shown
        assert "{" + ",".join(sorted(SCENARIOS)) + "}" in r.stdout
