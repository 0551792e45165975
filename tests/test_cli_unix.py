"""The command line in Unix plumbing: pipes that close, a closed stdout, encodings that
can't carry the output, no terminal, and the shell completion scripts (run by the shells)."""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli import CODE, ROOT, SITE_NAME, _run, chain_down, rig_site  # noqa: F401
from tui.cli import EXIT_BROKEN_PIPE, EXIT_PARTIAL, EXIT_USAGE, build_parser

ARGV = [sys.executable, "-c", CODE]


def _env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LC_ALL", "LC_CTYPE", "LANG", "PYTHONIOENCODING", "PYTHONUTF8")}
    return {**env, "TZ": "UTC", "PYTHONPATH": str(ROOT), **more}


# ----------------------------------------------------------------------------- no terminal

@pytest.mark.parametrize("argv", [
    ["--demo"],
    ["--attach", "http://127.0.0.1:9"],
    ["--prometheus", "http://127.0.0.1:9"],
])
def test_dashboard_without_a_terminal_is_one_line_and_exit_2(argv: list[str]) -> None:
    """`minertop --demo </dev/null >file`: no escape codes into the pipe, a line saying why."""
    started = time.monotonic()
    r = subprocess.run([*ARGV, *argv], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30, env=_env(), cwd=ROOT)
    assert time.monotonic() - started < 10
    assert r.returncode == EXIT_USAGE == 2, r.stderr  # and Textual was never imported
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("minertop: error: ")
    assert "needs a terminal" in r.stderr
    assert "'minertop --once'" in r.stderr and "'minertop daemon'" in r.stderr


def test_dashboard_into_a_file_with_stderr_writes_one_line(tmp_path: Path) -> None:
    """`minertop --demo </dev/null >file 2>&1`: the file holds one line."""
    out = tmp_path / "out"
    with out.open("wb") as f:
        rc = subprocess.run([*ARGV, "--demo"], stdin=subprocess.DEVNULL, stdout=f,
                            stderr=subprocess.STDOUT, timeout=30, env=_env(), cwd=ROOT).returncode
    text = out.read_text()
    assert rc == 2 and text.count("\n") == 1 and "\x1b" not in text, text


def test_dashboard_with_stderr_not_a_terminal_is_refused_too() -> None:
    """Textual draws through stderr: a terminal on stdin and stdout is not enough."""
    master, slave = pty.openpty()
    try:
        r = subprocess.run([*ARGV, "--demo"], stdin=slave, stdout=slave,
                           stderr=subprocess.PIPE, timeout=30, env=_env(), cwd=ROOT)
    finally:
        os.close(slave)
        os.close(master)
    err = r.stderr.decode()
    assert r.returncode == 2 and "(stderr is not a terminal)" in err, err


def test_once_needs_no_terminal() -> None:
    r = _run("--demo", "--once")
    assert r.returncode == 0 and "hashrate" in r.stdout


# ----------------------------------------------------------------------------- pipes

#: stdout buffered (the default) and not (``python -u``, usual in containers): an
#: unbuffered stdout writes the pipe in one go, cut short without an error when the
#: reader leaves.
BUFFERING = [pytest.param({"PYTHONUNBUFFERED": ""}, id="buffered"),
             pytest.param({"PYTHONUNBUFFERED": "1"}, id="unbuffered")]


def _small_pipe() -> tuple[int, int]:
    """A pipe that holds less than the JSON document (Linux: 4 KiB), so the writer meets
    a closed reader; elsewhere the default size."""
    r, w = os.pipe()
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
    return r, w


@pytest.mark.parametrize("env", BUFFERING)
@pytest.mark.parametrize("json_out", [False, True])
def test_reader_gone_before_anything_is_written(json_out: bool, env: dict[str, str]) -> None:
    """`minertop --once [--json] | true`: exit 141, no traceback."""
    p = subprocess.Popen([*ARGV, "--demo", "--once", *(["--json"] if json_out else [])],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=_env(**env), cwd=ROOT)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(60) == EXIT_BROKEN_PIPE == 141
    assert err == b"", err


@pytest.mark.parametrize("env", BUFFERING)
@pytest.mark.parametrize("json_out", [False, True])
def test_into_head_c_10_ends_quietly(json_out: bool, env: dict[str, str]) -> None:
    """`minertop --once [--json] | head -c 10`: the reader goes after 10 bytes (the text,
    ~5 KB, and the JSON, ~64 KB, are both more than the pipe holds)."""
    r, w = _small_pipe()
    p = subprocess.Popen([*ARGV, "--demo", "--once", *(["--json"] if json_out else [])],
                         stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.PIPE,
                         env=_env(**env), cwd=ROOT)
    os.close(w)
    first = b""
    try:
        while len(first) < 10 and (chunk := os.read(r, 10 - len(first))):
            first += chunk
    finally:
        os.close(r)
    assert p.stderr is not None
    err = p.stderr.read()
    rc = p.wait(60)
    assert first == (b'{\n  "schem' if json_out else b"source    ")
    assert err == b"", err
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        assert rc == EXIT_BROKEN_PIPE
    else:  # the whole document may have fitted in the pipe before the reader left
        assert rc in (0, EXIT_BROKEN_PIPE)


@pytest.mark.parametrize("json_out", [False, True])
def test_closed_stdout_ends_quietly(json_out: bool) -> None:
    """`minertop --once >&-`: nowhere to write; 141 as for a closed pipe, no traceback."""
    r = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", *ARGV, "--demo", "--once",
                        *(["--json"] if json_out else [])], stdin=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60, env=_env(), cwd=ROOT)
    assert r.returncode == EXIT_BROKEN_PIPE, r.stderr
    assert r.stderr == b"", r.stderr


@pytest.mark.parametrize("env", BUFFERING)
@pytest.mark.parametrize("argv", [["--help"], ["daemon", "--help"], ["completion", "bash"]])
def test_help_into_a_closed_pipe_ends_quietly(argv: list[str], env: dict[str, str]) -> None:
    r, w = _small_pipe()
    os.close(r)
    p = subprocess.run([*ARGV, *argv], stdin=subprocess.DEVNULL, stdout=w,
                       stderr=subprocess.PIPE, timeout=30, env=_env(**env), cwd=ROOT)
    os.close(w)
    assert p.returncode == EXIT_BROKEN_PIPE and p.stderr == b"", p.stderr


# ----------------------------------------------------------------------------- encodings

def _rigs_title(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("Rigs "))


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C"},
                                 {"LANG": "C"}])
def test_text_falls_back_to_ascii_when_it_cant_be_written(env: dict[str, str]) -> None:
    r = _run("--demo", "--once", env=_env(**env))
    assert r.returncode == 0, r.stderr
    assert r.stdout.isascii() and "Traceback" not in r.stderr
    assert _rigs_title(r.stdout).startswith("Rigs . Texas-A . 48 rigs . 2 x ")


def test_ascii_forces_it_and_unicode_keeps_it() -> None:
    utf8 = _env(LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    plain = _run("--demo", "--once", env=utf8)
    assert _rigs_title(plain.stdout).startswith("Rigs · Texas-A · 48 rigs · 2 ✗ ")
    forced = _run("--demo", "--once", "--ascii", env=utf8)
    assert forced.returncode == 0 and forced.stdout.isascii()
    assert _rigs_title(forced.stdout).startswith("Rigs . Texas-A . 48 rigs")
    kept = _run("--demo", "--once", "--unicode", env=_env(LC_ALL="C", PYTHONIOENCODING="utf-8"))
    assert _rigs_title(kept.stdout).startswith("Rigs · Texas-A")


def test_json_is_ascii_safe_and_text_translated(rig_site: Path) -> None:  # noqa: F811
    """A non-ASCII site name through an ASCII stdout: JSON escapes it, text translates it."""
    env = _env(PYTHONIOENCODING="ascii")
    r = _run(*chain_down(rig_site, "--json"), env=env)
    assert r.returncode == EXIT_PARTIAL, r.stderr
    assert r.stdout.isascii() and "\\u00fc" in r.stdout
    import json

    assert json.loads(r.stdout)["site"]["name"] == SITE_NAME
    t = _run(*chain_down(rig_site), env=env)
    assert t.returncode == EXIT_PARTIAL and t.stdout.isascii(), t.stderr
    assert "Rigs . Z?rich . Nord . 2 rigs" in t.stdout


# ----------------------------------------------------------------------------- completion

def _parsers() -> dict[str, argparse.ArgumentParser]:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return {"": p, **sub.choices}


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if s.startswith("--")]


def _completion(shell: str) -> str:
    r = _run("completion", shell)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


def test_bash_completion_is_valid_and_completes(tmp_path: Path) -> None:
    script = tmp_path / "minertop.bash"
    script.write_text(_completion("bash"))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    probe = (
        f"source {script}\n"
        "c() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); "
        "_shtab_minertop; echo \"${COMPREPLY[*]}\"; }\n"
        "c minertop --de\nc minertop da\nc minertop daemon --li\nc minertop completion ''\n"
        "c minertop --demo-via ''\nc minertop sim --scen\n"
    )
    r = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["--demo --demo-via", "daemon", "--listen",
                                     "bash zsh fish", "mempool bitcoind", "--scenario"]


def test_zsh_completion_is_valid(tmp_path: Path) -> None:
    text = _completion("zsh")
    assert text.startswith("#compdef minertop\n")
    for name, parser in _parsers().items():
        if name:
            assert re.search(rf"(?m)^\s+{re.escape(name)}:'", text), name
        for opt in _long_options(parser):
            assert opt in text, (name, opt)
    zsh = shutil.which("zsh")
    if zsh is not None:  # else the structure above is what is checked
        script = tmp_path / "_minertop"
        script.write_text(text)
        r = subprocess.run([zsh, "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_fish_completion_has_every_option_and_command(tmp_path: Path) -> None:
    text = _completion("fish")
    lines = text.splitlines()
    assert all(line.startswith(("complete -c minertop ", "#")) for line in lines if line)
    for line in lines:  # quoting balanced: every ' opens or closes, \' is inside
        assert len(re.findall(r"(?<!\\)'", line.replace("\\\\", ""))) % 2 == 0, line
    for name, parser in _parsers().items():
        cond = "-n __fish_use_subcommand" if not name else \
            f"-n '__fish_seen_subcommand_from {name}'"
        if name:
            assert f"complete -c minertop -n __fish_use_subcommand -a {name} -d '" in text
        for opt in _long_options(parser):
            assert re.search(rf"(?m)^complete -c minertop {re.escape(cond)} (-s \w )?"
                             rf"-l {re.escape(opt[2:])}( |$)", text), (name, opt)
    assert "-l demo-via -xa 'mempool bitcoind'" in text
    assert "-n '__fish_seen_subcommand_from completion' -xa 'bash zsh fish'" in text
    assert "-l config -rF" in text
    fish = shutil.which("fish")
    if fish is not None:
        script = tmp_path / "minertop.fish"
        script.write_text(text)
        r = subprocess.run([fish, "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    r = _run("completion", "tcsh-nope")
    assert r.returncode == 2 and r.stdout == "" and "invalid choice" in r.stderr
