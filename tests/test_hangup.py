"""The dashboard exits cleanly when its terminal goes away (an SSH drop), instead of spinning.

These run the real ``python -m tui.cli --demo`` on a pseudo-terminal (80x24, xterm-256color),
wait for the dashboard to draw data, then take the terminal away:

* closing the master side (what sshd does when the connection drops): the kernel hangs up the
  slave, sends SIGHUP to the session, and stdin reads return EOF for ever — the case where
  Textual 8.2.8 alone busy-loops in its input thread;
* SIGHUP with the terminal still open (``kill -HUP``): the terminal must be restored;
* SIGHUP blocked (a supervisor that masks it) and a pty that is not the controlling terminal
  (no SIGHUP at all on hang-up): only the app's tty guard can notice, and it must.

CPU time spent after the hang-up is read from /proc and from ``wait4``'s rusage, so a spin
(100% CPU until some timeout kills it) fails even if the process does exit in time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

if not sys.platform.startswith("linux"):  # pty + /proc semantics below are Linux's
    pytest.skip("pseudo-terminal hang-up tests need Linux", allow_module_level=True)

fcntl = pytest.importorskip("fcntl")
termios = pytest.importorskip("termios")

ROOT = Path(__file__).resolve().parents[1]
DRAW_TIMEOUT_S = 15.0
EXIT_TIMEOUT_S = 5.0
#: CPU seconds the process may burn between the hang-up and its exit.  A clean shutdown takes
#: ~0.1 s; Textual's input thread spinning on the dead stdin burns ~1 s per second.
MAX_SHUTDOWN_CPU_S = 0.5
#: _on_hangup's os._exit(129) fallback fires after 3 s: exiting well before that is the clean
#: path (app.exit -> terminal restored -> run_app returns 129).
CLEAN_EXIT_S = 2.5
HZ = os.sysconf("SC_CLK_TCK")

# CSI (incl. private/intermediate bytes), OSC (BEL or ST terminated), DCS/APC/PM strings,
# charset selection, and the remaining two-byte escapes.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[P_^][^\x1b]*\x1b\\"
    r"|\x1b[()*+][0-9A-Za-z]"
    r"|\x1b[@-Z\\-_=>78]"
)
_DREW_DATA = re.compile(r"\d\s*EH/s")

# Runs in the child before exec: optionally make the pty the controlling terminal (so a
# hang-up sends SIGHUP, as under sshd) and optionally block SIGHUP (the mask survives exec,
# and asyncio's add_signal_handler does not unblock it).
_SHIM = """
import fcntl, os, signal, sys, termios
ctty, block = sys.argv[1] == "1", sys.argv[2] == "1"
if ctty:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
if block:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
os.execv(sys.executable, [sys.executable, "-m", "tui.cli", "--demo"])
"""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def test_strip_ansi_finds_hashrate() -> None:
    raw = "\x1b[?1049h\x1b[3;2H\x1b[1;38;2;1;2;3m812.4\x1b[0m\x1b[1m EH/s\x1b[0m\x1b]0;t\x07"
    assert _DREW_DATA.search(strip_ansi(raw))
    assert not _DREW_DATA.search(strip_ansi("\x1b[3;2H— EH/s"))


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    master: int | None
    output: bytearray = field(default_factory=bytearray)
    status: int | None = None  #: raw wait status once reaped
    cpu_at_exit: float | None = None  #: user+system CPU seconds (from wait4)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exit_code(self) -> int | str:
        """The exit status, or e.g. ``"SIGHUP"`` if a signal killed it."""
        assert self.status is not None
        if os.WIFSIGNALED(self.status):
            return signal.Signals(os.WTERMSIG(self.status)).name
        return os.WEXITSTATUS(self.status)

    def text(self) -> str:
        return strip_ansi(self.output.decode("utf-8", "replace"))

    def pump(self, timeout: float) -> bool:
        """Read what the app wrote for up to ``timeout`` s; False once the pty is gone."""
        if self.master is None:
            time.sleep(timeout)
            return False
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError as e:  # EIO: every slave fd is closed (the child exited)
            if e.errno != errno.EIO:
                raise
            return False
        self.output += data
        return bool(data)

    def wait_for_data(self) -> None:
        deadline = time.monotonic() + DRAW_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.pump(0.2):
                break
            if _DREW_DATA.search(self.text()):
                return
            if self.reap():
                break
        tail = self.text()[-2000:]
        pytest.fail(f"dashboard drew no hashrate within {DRAW_TIMEOUT_S}s "
                    f"(status {self.status}); screen text tail:\n{tail}")

    def close_master(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None

    def reap(self) -> bool:
        if self.status is not None:
            return True
        pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.status = status
        self.cpu_at_exit = rusage.ru_utime + rusage.ru_stime
        # Popen must not try to reap it again.
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return True

    def wait_exit(self, timeout: float) -> float | None:
        """Seconds until the process exited (keeps draining the pty), or None if it didn't."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.reap():
                return time.monotonic() - start
            self.pump(0.05)
        return None

    def cpu_now(self) -> float:
        """User+system CPU seconds used so far (all threads), from /proc."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / HZ  # utime, stime

    def kill(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # its own session: takes helpers along
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(ChildProcessError):
                _, status, _ = os.wait4(self.pid, 0)
                self.status = status
                self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.close_master()


@contextlib.contextmanager
def dashboard(*, ctty: bool = True, block_sighup: bool = False):
    """``python -m tui.cli --demo`` on a fresh 80x24 pty in its own session."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEXTUAL", "PYTEST", "COLUMNS", "LINES"))}
    env["TERM"] = "xterm-256color"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SHIM, "1" if ctty else "0", "1" if block_sighup else "0"],
            stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env,
            start_new_session=True, close_fds=True,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    child = Child(proc, master)
    try:
        yield child
    finally:
        child.kill()


def assert_clean_exit(child: Child, cpu_before: float, code: int = 129) -> None:
    """Gone within EXIT_TIMEOUT_S, without spinning meanwhile, through the clean path."""
    took = child.wait_exit(EXIT_TIMEOUT_S)
    if took is None:
        burnt = child.cpu_now() - cpu_before
        pytest.fail(f"still running {EXIT_TIMEOUT_S}s after the hang-up, "
                    f"having burnt {burnt:.2f}s of CPU meanwhile")
    assert child.cpu_at_exit is not None
    burnt = child.cpu_at_exit - cpu_before
    assert burnt < MAX_SHUTDOWN_CPU_S, (
        f"burnt {burnt:.2f}s of CPU in the {took:.2f}s between hang-up and exit (a spin)")
    assert child.exit_code() == code
    assert took < CLEAN_EXIT_S, f"took {took:.2f}s: the os._exit fallback, not a clean exit"
    assert b"Traceback" not in child.output


def assert_terminal_restored(child: Child, mark: int) -> None:
    while child.pump(0.1):  # drain what is still buffered in the pty after the exit
        pass
    after = bytes(child.output[mark:])
    assert b"\x1b[?1049l" in after, "alternate screen not left"
    assert b"\x1b[?25h" in after, "cursor not shown again"


def test_quit_key_still_exits_normally() -> None:
    """The guards must not turn an ordinary ``q`` into a hang-up (or keep the app alive)."""
    with dashboard() as child:
        child.wait_for_data()
        mark = len(child.output)
        cpu_before = child.cpu_now()
        assert child.master is not None
        os.write(child.master, b"q")
        assert_clean_exit(child, cpu_before, code=0)
        assert_terminal_restored(child, mark)


def test_closed_terminal_exits_without_spinning() -> None:
    """The SSH connection drops: sshd closes the pty master."""
    with dashboard() as child:
        child.wait_for_data()
        cpu_before = child.cpu_now()
        child.close_master()
        assert_clean_exit(child, cpu_before)


def test_sighup_with_open_terminal_restores_it() -> None:
    """``kill -HUP``: clean exit through the handler, terminal left as it was found."""
    with dashboard() as child:
        child.wait_for_data()
        mark = len(child.output)
        cpu_before = child.cpu_now()
        os.kill(child.pid, signal.SIGHUP)
        assert_clean_exit(child, cpu_before)
        assert_terminal_restored(child, mark)


def test_blocked_sighup_then_lost_terminal_is_caught_by_tty_guard() -> None:
    """SIGHUP never arrives (masked before exec): the tty guard alone must end the app."""
    with dashboard(block_sighup=True) as child:
        child.wait_for_data()
        cpu_before = child.cpu_now()
        child.close_master()
        assert_clean_exit(child, cpu_before)


def test_pty_that_is_not_the_controlling_terminal_is_caught_by_tty_guard() -> None:
    """No controlling tty, so no SIGHUP on hang-up at all; stdin just goes dead."""
    with dashboard(ctty=False) as child:
        child.wait_for_data()
        cpu_before = child.cpu_now()
        child.close_master()
        assert_clean_exit(child, cpu_before)


def test_tty_alive_sees_the_hangup() -> None:
    from tui.app import _tty_alive

    master, slave = os.openpty()
    try:
        assert _tty_alive(slave) is True
        os.close(master)
        master = -1
        assert _tty_alive(slave) is False
    finally:
        os.close(slave)
        if master >= 0:
            os.close(master)


def test_tty_alive_on_closed_or_non_tty_fd() -> None:
    from tui.app import _tty_alive

    r, w = os.pipe()
    try:
        assert _tty_alive(r) is False
    finally:
        os.close(r)
        os.close(w)
    assert _tty_alive(r) is False  # closed fd: EBADF, not an exception


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_restore_the_terminal_and_exit_0(sig: signal.Signals) -> None:
    """``kill`` (or a service manager) ends the dashboard: the operator's shell must not be
    left in the alternate screen with mouse reporting on."""
    with dashboard() as child:
        child.wait_for_data()
        mark = len(child.output)
        cpu_before = child.cpu_now()
        os.kill(child.pid, sig)
        assert_clean_exit(child, cpu_before, code=0)
        assert_terminal_restored(child, mark)
        after = bytes(child.output[mark:])
        assert b"\x1b[?1000l" in after, "mouse reporting not turned off"
