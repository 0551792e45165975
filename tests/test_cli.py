"""Command line: argument errors, source resolution, ``--once`` (in a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import UsageError, build_parser, main, resolve

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


def _run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        "from tui.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "assert 'textual' not in sys.modules, 'textual was imported'\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "TZ": "UTC"}
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


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
