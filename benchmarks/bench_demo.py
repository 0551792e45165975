"""Measure ``minertop --demo`` in a real pseudo-terminal and print the figures.

- time until the first frame that shows data (a hashrate figure on screen),
- CPU use of the idle dashboard over a window (default 60 s), as % of one core,
- bytes written to the terminal per second over that window,
- peak resident memory (VmHWM).

Targets (issue 2): first data frame < 1.0 s, idle CPU < 1 %, < 2 KB/s at 120x40, < 80 MB.

    python benchmarks/bench_demo.py [--cols 120] [--rows 40] [--idle 60] [--cmd minertop]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import sys
import termios
import time

ANSI = re.compile(
    rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[PX^_].*?\x1b\\|\x1b\][^\x07]*(\x07|\x1b\\)|\x1b."
)
DATA = re.compile(rb"\d EH/s")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cols", type=int, default=120)
    ap.add_argument("--rows", type=int, default=40)
    ap.add_argument("--idle", type=float, default=60.0, help="idle window in seconds")
    ap.add_argument("--cmd", default=shutil.which("minertop") or "minertop")
    ap.add_argument("--network-only", action="store_true",
                    help="measure the dashboard without rigs, reading a `minertop sim` started "
                    "in its own process (so the simulator's CPU isn't counted)")
    ap.add_argument("--timeout", type=float, default=20.0, help="give up waiting for data")
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds after the first data frame before the idle window starts "
                    "(start-up: history fetch, first rig cycles, start-up notifications)")
    args = ap.parse_args()

    env = {**os.environ, "TERM": os.environ.get("TERM", "xterm-256color")}
    env.setdefault("COLORTERM", "truecolor")
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        # A user's install has its bytecode cached; without it every start compiles the
        # modules again (about 0.2 s of the first frame here).
        print("note: PYTHONDONTWRITEBYTECODE is set here; the dashboard runs without it, "
              "and once beforehand so that its bytecode is cached", file=sys.stderr)
        import subprocess

        subprocess.run([args.cmd, "--demo", "--once"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120, check=False)
    argv = [args.cmd, "--demo"]
    sim = None
    if args.network_only:
        import socket
        import subprocess

        with socket.socket() as s_:
            s_.bind(("127.0.0.1", 0))
            port = s_.getsockname()[1]
        sim = subprocess.Popen([args.cmd, "sim", "--mempool-port", str(port), "--rpc-port", "0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.time() > deadline:
                    print("the simulator did not start", file=sys.stderr)
                    sim.kill()
                    return 1
                time.sleep(0.1)
        import tempfile

        argv = [args.cmd, "--mempool", f"http://127.0.0.1:{port}"]
        env["XDG_CONFIG_HOME"] = tempfile.mkdtemp()  # no site config: the network panes only
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # child: the dashboard on the slave side
        os.execvpe(args.cmd, argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", args.rows, args.cols, 0, 0))
    os.kill(pid, signal.SIGWINCH)

    buf = b""
    first_data: float | None = None
    total = 0
    idle_bytes = 0
    idle_start: float | None = None
    cpu_start = 0.0
    deadline = t0 + args.timeout
    try:
        while True:
            now = time.perf_counter()
            if first_data is None and now > deadline:
                print(f"no data frame within {args.timeout:.0f} s", file=sys.stderr)
                return 1
            if idle_start is not None and now - idle_start >= args.idle:
                break
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                print("minertop exited early", file=sys.stderr)
                return 1
            if not chunk:
                return 1
            total += len(chunk)
            if idle_start is not None:
                idle_bytes += len(chunk)
            if first_data is None:
                buf += chunk
                if DATA.search(ANSI.sub(b"", buf)):
                    first_data = time.perf_counter() - t0
                    # Let the start-up settle (history fetch, first rig cycles, the start-up
                    # notifications timing out) before measuring idle.
                    settle_until = time.perf_counter() + args.settle
                    while time.perf_counter() < settle_until:
                        if select.select([fd], [], [], 0.1)[0]:
                            os.read(fd, 65536)
                    idle_start = time.perf_counter()
                    cpu_start = cpu_seconds(pid)
        window = time.perf_counter() - idle_start  # type: ignore[operator]
        cpu = (cpu_seconds(pid) - cpu_start) / window * 100
        mem = vm_hwm_mb(pid)
    finally:
        try:
            os.write(fd, b"q")
            time.sleep(0.5)
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        if sim is not None:
            sim.terminate()
            sim.wait(10)

    rate = idle_bytes / window
    rows = [
        ("first data frame", f"{first_data:.2f} s", "< 1.0 s", first_data < 1.0),
        (f"idle CPU ({window:.0f} s)", f"{cpu:.2f} % of a core", "< 1 %", cpu < 1.0),
        (f"terminal output {args.cols}x{args.rows}", f"{rate / 1024:.2f} KB/s", "< 2 KB/s",
         rate < 2048),
        ("peak memory (VmHWM)", f"{mem:.1f} MB", "< 80 MB", mem < 80),
    ]
    for name, value, target, ok in rows:
        print(f"{name:32s} {value:>18s}   target {target:9s} {'ok' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
