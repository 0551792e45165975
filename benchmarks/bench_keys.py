"""Benchmark: how quickly the dashboard answers a key press while 5,000 rig rows refresh.

    python benchmarks/bench_keys.py [--rigs 5000] [--interval 5] [--rounds 15]
                                    [--profile OUT.txt] [--json OUT.json] [--verbose]

End to end, as a user sees it (issue 3, section 8; target: under 100 ms):

- a chain simulator (``minertop sim``, ephemeral ports) and a simulated site of ``--rigs``
  rigs on distinct loopback addresses (127.0.40.1 ...:4028) run in their own processes; the
  site is ``bench_rigs.fleet_specs``: mostly healthy rigs, about 5 % with firmware quirks,
  2 % slow, 1 % offline, 1 % hanging, a few garbage / truncated / error-status;
- ``minertop --config CFG --mempool URL --chain-interval 30`` runs in a real pseudo-terminal
  (120x40 by default) on a temporary config that lists every rig, polled every 5 s, alerts
  off (``--alerts``: on; their notifications cover the sort label now and then);
- once the rigs pane shows the fleet's hashrate, keys are written to the terminal while the
  rows keep refreshing, and the time is taken from writing the key to the first output in
  which the change shows on screen (a small terminal model follows the output):
  ``s`` / ``<`` (the pane's "sort <column>" names another column), ``i`` (its ▲/▼ flips),
  ``down`` / ``up`` (the table's cursor row moves), ``?`` (a box opens over the dashboard),
  ``escape`` (it closes).  Presses are spread over the poll cycles; about a third are sent
  right after a refresh lands on screen (the rig pane's title or visible rows change while
  no key is in flight).
- ``escape`` is sent two ways: as a legacy terminal sends it (a lone ESC byte: Textual waits
  ``ESCDELAY`` to tell it from the start of an escape sequence, as curses does; minertop sets
  25 ms, like htop, unless ``ESCDELAY`` is in the environment; Textual's own default is 100)
  and as a terminal with the kitty keyboard protocol sends it (``CSI 27 u``, which
  Textual asks for and which needs no wait): the latter is the app's own latency.

Also printed: CPU use of the minertop process (/proc/<pid>/stat) over the key phase, also in
1-s windows; the CPU of the simulated site, of this script and of the rest of the machine
(a busy machine slows everything down); the poll cycles as the site saw them (first to last
connection) and as the screen showed them (first to last change of the rig pane).

``--profile OUT.txt`` records the minertop process with py-spy (``pip install py-spy``)
during the key phase (collapsed stacks in OUT.txt) and prints where the time goes.
``--cmd`` runs another minertop command, e.g. ``--cmd "python -c 'import sys; from tui.cli
import main; sys.exit(main())'"`` (the same entry point under a name that a ``pkill
minertop`` elsewhere on the machine does not match).

Loopback only; every subprocess runs in its own process group and is killed on the way out.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import fcntl
import json
import math
import os
import pty
import random
import re
import select
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench_rigs import fleet_specs  # noqa: E402
from rich.cells import get_character_cell_size  # noqa: E402

from tui.sim.rigs import raise_nofile_limit, start_rig_site  # noqa: E402

HOST_BASE = "127.0.40.0"  #: bench_rigs.py uses 127.0.20.0: both can run at once
PORT = 4028
TARGET_MS = 100.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: quiet time that separates two poll cycles, seen from the site (s)
CYCLE_GAP_S = 2.0
#: give up on a press after this long (s)
PRESS_TIMEOUT_S = 5.0
PY_SPY_RATE = 100


def _mono() -> float:
    return time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (nan once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # all but idle and iowait (guest is in user)


def vm_hwm_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


# ----------------------------------------------------------------------------- site process


async def _serve(count: int, seed: int) -> None:
    """The simulated site; reports each poll cycle (first and last connection) on stdout."""
    import asyncio

    import tui.sim.rigs as simrigs

    cyc: dict[str, float | int | None] = {"first": None, "last": 0.0, "n": 0}
    made = simrigs._ApiProtocol.connection_made

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        now = _mono()
        if cyc["first"] is None:
            cyc["first"] = now
        cyc["last"] = now
        cyc["n"] = int(cyc["n"] or 0) + 1
        made(self, transport)

    simrigs._ApiProtocol.connection_made = connection_made  # type: ignore[method-assign]
    t0 = _mono()
    site = await start_rig_site(fleet_specs(count, seed), host_base=HOST_BASE, port=PORT,
                                seed=seed)
    targets = [[t.rig_id, t.host, t.port, t.kind] for t in site.targets()]
    print(json.dumps({"ready": True, "start_s": _mono() - t0, "targets": targets}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), stop.set)  # parent gone or done: stdin closes

    async def report() -> None:
        while True:
            await asyncio.sleep(0.25)
            first = cyc["first"]
            if first is not None and _mono() - float(cyc["last"] or 0) > CYCLE_GAP_S:
                print(json.dumps({"cycle": [first, cyc["last"], cyc["n"]]}), flush=True)
                cyc.update(first=None, n=0)

    task = asyncio.ensure_future(report())
    await stop.wait()
    task.cancel()
    await site.stop()


# ----------------------------------------------------------------------------- terminal model

_TOKEN = re.compile(
    r"(?P<csi>\x1b\[(?P<params>[0-9;:?<>=]*)[ -/]*(?P<final>[@-~]))"
    r"|(?P<osc>\x1b\][^\x07\x1b]*(?:\x07|\x1b\\))"
    r"|(?P<str>\x1b[PX^_][\s\S]*?\x1b\\)"
    r"|(?P<esc>\x1b[^\[\]PX^_])"
    r"|(?P<ctl>[\x00-\x1a\x1c-\x1f])"
    r"|(?P<text>[^\x00-\x1f\x1b]+)"
)


class Screen:
    """Just enough of a terminal to see what Textual draws: cursor moves, text (with cell
    widths as Rich counts them), the background of each cell, erase."""

    def __init__(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        self.chars = [[" "] * cols for _ in range(rows)]
        self.bgs: list[list[tuple[str | None, bool]]] = [[(None, False)] * cols
                                                          for _ in range(rows)]
        self.x = self.y = 0
        self.style: tuple[str | None, bool] = (None, False)
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        self._tail = ""

    def clear(self) -> None:
        for y in range(self.rows):
            self.chars[y] = [" "] * self.cols
            self.bgs[y] = [(None, False)] * self.cols

    def feed(self, data: bytes) -> None:
        text = self._tail + self._decode(data)
        pos, n = 0, len(text)
        match = _TOKEN.match
        while pos < n:
            m = match(text, pos)
            if m is None:  # an escape sequence cut off at the end of this read
                if n - pos > 512:
                    pos += 1
                    continue
                break
            pos = m.end()
            kind = m.lastgroup
            if kind == "text":
                self._put(m.group("text"))
            elif kind == "csi":
                self._csi(m.group("params"), m.group("final"))
            elif kind == "ctl":
                c = m.group("ctl")
                if c == "\r":
                    self.x = 0
                elif c == "\n":
                    self.y = min(self.y + 1, self.rows - 1)
                elif c == "\b":
                    self.x = max(self.x - 1, 0)
        self._tail = text[pos:]

    def _put(self, run: str) -> None:
        y = self.y
        if not 0 <= y < self.rows:
            return
        chars, bgs, cols, style = self.chars[y], self.bgs[y], self.cols, self.style
        x = self.x
        for ch in run:
            w = get_character_cell_size(ch)
            if w == 0:
                continue
            if x < cols:
                chars[x] = ch
                bgs[x] = style
            if w == 2 and x + 1 < cols:
                chars[x + 1] = ""
                bgs[x + 1] = style
            x += w
        self.x = x

    def _csi(self, params: str, final: str) -> None:
        private = params[:1] in ("?", "<", ">", "=")
        if final == "m" and not private:
            self._sgr(params)
        elif final in "Hf" and not private:
            parts = params.split(";") if params else []
            row = int(parts[0] or 1) if parts else 1
            col = int(parts[1] or 1) if len(parts) > 1 else 1
            self.y, self.x = min(max(row, 1), self.rows) - 1, max(col, 1) - 1
        elif final == "J" and params in ("2", "3"):
            self.clear()
        elif final == "K" and not private and 0 <= self.y < self.rows:
            lo, hi = {"": (self.x, self.cols), "0": (self.x, self.cols), "1": (0, self.x + 1),
                      "2": (0, self.cols)}.get(params, (0, 0))
            for x in range(lo, min(hi, self.cols)):
                self.chars[self.y][x] = " "
                self.bgs[self.y][x] = self.style
        elif final == "C":
            self.x += int(params or 1)
        elif final == "D":
            self.x = max(self.x - int(params or 1), 0)
        elif final == "G":
            self.x = max(int(params or 1), 1) - 1
        elif final in "hl" and params == "?1049":
            self.clear()

    def _sgr(self, params: str) -> None:
        ps = params.replace(":", ";").split(";") if params else ["0"]
        bg, rev = self.style
        i = 0
        while i < len(ps):
            c = int(ps[i] or 0)
            if c == 0:
                bg, rev = None, False
            elif c == 7:
                rev = True
            elif c == 27:
                rev = False
            elif 40 <= c <= 47 or 100 <= c <= 107:
                bg = str(c)
            elif c == 49:
                bg = None
            elif c in (38, 48):  # 38;5;n / 38;2;r;g;b (48: the background)
                mode = ps[i + 1] if i + 1 < len(ps) else ""
                size = 3 if mode == "5" else 5 if mode == "2" else 1
                if c == 48:
                    bg = ";".join(ps[i + 1 : i + size])
                i += size
                continue
            i += 1
        self.style = (bg, rev)

    def line(self, y: int) -> str:
        return "".join(self.chars[y])

    def lines(self) -> list[str]:
        return ["".join(r) for r in self.chars]


# ----------------------------------------------------------------------------- what is on screen

_TITLE = re.compile(r"(Rigs · .*?)\s*─")
_TITLE_N = re.compile(r" (\d+) rigs · ")
_TITLE_PH = re.compile(r" ([\d,]+\.\d+) PH/s")
_SUBTITLE = re.compile(r"sort (.+?) ([▲▼])")
HELP_MARK = "Show the keys and what they do"


@dataclass
class View:
    """What the dashboard shows, read off the terminal model."""

    title: str | None = None
    rigs: int | None = None
    phs: float | None = None
    sort: tuple[str, str] | None = None
    help: bool = False  #: the help screen's text is on screen
    corners: frozenset[tuple[int, int]] = frozenset()  #: where boxes begin (╭)
    body: str | None = None  #: the text of the table's visible rows
    cursor: int | None = None  #: screen row of the table's cursor
    first_body: int | None = None  #: screen row of the table's first row


def read_view(screen: Screen) -> View:
    v = View()
    lines = screen.lines()
    header = bottom = None
    corners = []
    for y, ln in enumerate(lines):
        if HELP_MARK in ln:
            v.help = True
        if "╭" in ln:
            corners += [(y, x) for x, ch in enumerate(screen.chars[y]) if ch == "╭"]
        if "╭" in ln and "Rigs · " in ln and v.title is None:
            m = _TITLE.search(ln)
            if m:
                v.title = m.group(1)
                n = _TITLE_N.search(v.title)
                ph = _TITLE_PH.search(v.title)
                v.rigs = int(n.group(1)) if n else None
                v.phs = float(ph.group(1).replace(",", "")) if ph else None
        elif header is None and " TH/s " in ln and " status " in ln and "│" in ln:
            header = y
        elif header is not None and bottom is None and ln.startswith("╰"):
            bottom = y  # the rig pane's bottom border
            m = _SUBTITLE.search(ln)  # (a notification may cover it)
            if m:
                v.sort = (m.group(1), m.group(2))
    v.corners = frozenset(corners)
    if header is not None and bottom is not None and bottom - header > 3:
        body = range(header + 1, bottom)
        v.body = "\n".join(lines[y] for y in body)
        keys = [screen.bgs[y][1] for y in body]
        counts = Counter(keys)
        common = counts.most_common(1)[0][1]
        unique = [y for y, k in zip(body, keys, strict=True) if counts[k] == 1]
        if common >= 3 and len(unique) == 1:
            v.cursor = unique[0]
        v.first_body = header + 1
    return v


# ----------------------------------------------------------------------------- presses

KEYS: dict[str, bytes] = {
    "s": b"s",
    "<": b"<",
    "i": b"i",
    "down": b"\x1b[B",
    "up": b"\x1b[A",
    "?": b"?",
    "esc": b"\x1b",
    "esc CSI-u": b"\x1b[27u",
}
WHAT = {
    "s": "sort column: next",
    "<": "sort column: previous",
    "i": "sort order flips",
    "down": "cursor row moves down",
    "up": "cursor row moves up",
    "?": "help screen opens",
    "esc": "help closes (lone ESC)",
    "esc CSI-u": "help closes (kitty ESC)",
}
#: one round; ``?`` is always followed by an escape
ROUND = ("s", "down", "?", "esc", "<", "up", "i", "?", "esc CSI-u")


@dataclass
class Press:
    key: str
    sent: float
    done: Callable[[View], bool]
    aligned: bool  #: sent right after a refresh landed on screen
    obscured: bool = False  #: what shows the change was covered (by a notification) meanwhile
    first_output: float | None = None
    seen: float | None = None
    phase: str = ""

    @property
    def ms(self) -> float | None:
        return None if self.seen is None else (self.seen - self.sent) * 1000

    @property
    def first_ms(self) -> float | None:
        return None if self.first_output is None else (self.first_output - self.sent) * 1000


def modal(v: View, base: frozenset[tuple[int, int]]) -> bool:
    """A box is open over the dashboard: the help text shows, or a box begins where the
    dashboard (``base``: its corners with nothing on top) has none."""
    return v.help or bool(v.corners - base)


def expectation(key: str, v: View, base: frozenset[tuple[int, int]]
                ) -> Callable[[View], bool] | None:
    """What the screen must show once ``key`` took effect (None: can't press it now)."""
    if key in ("s", "<", "i"):
        if v.sort is None or modal(v, base):
            return None
        label, arrow = v.sort
        if key == "i":
            return lambda w: w.sort is not None and w.sort[0] == label and w.sort[1] != arrow
        return lambda w: w.sort is not None and w.sort[0] != label
    if key in ("down", "up"):
        if v.cursor is None or modal(v, base):
            return None
        if key == "up" and v.cursor == v.first_body:
            return None
        want_row = v.cursor + (1 if key == "down" else -1)
        return lambda w: w.cursor == want_row
    if key == "?":
        return None if modal(v, base) else (lambda w: modal(w, base))
    # escape
    return (lambda w: not modal(w, base)) if modal(v, base) else None


# ----------------------------------------------------------------------------- helpers


def _read_line(fd: int, buf: bytearray, deadline: float) -> bytes | None:
    """One line from a raw fd, waiting until ``deadline`` (None: EOF or time is up)."""
    while b"\n" not in buf:
        left = deadline - _mono()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        buf += chunk
    i = buf.index(b"\n")
    line = bytes(buf[:i])
    del buf[: i + 1]
    return line


def _kill_group(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), linear between closest ranks."""
    s = sorted(values)
    if not s:
        return math.nan
    k = (len(s) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def write_config(path: Path, targets: list[list], interval: float, alerts: bool) -> None:
    out = [
        "# written by benchmarks/bench_keys.py",
        "[site]",
        'name = "Bench-5k"',
        "electricity_usd_kwh = 0.06",
        "pool_fee_pct = 2.0",
        "overhead_usd_day = 0.30",
        "",
        "[poll]",
        f"interval_s = {interval:g}",
        "timeout_s = 3",
        "concurrency = 256",
        "retries = 1",
        "",
    ]
    if not alerts:  # their notifications would cover the sort label this script reads
        out += ["[alerts]", "enabled = false", ""]
    for rig_id, host, port, kind in targets:
        out += ["[[rigs]]", f"name = {json.dumps(rig_id)}", f"host = {json.dumps(host)}",
                f"port = {int(port)}", f"kind = {json.dumps(kind)}", ""]
    path.write_text("\n".join(out), encoding="utf-8")


def _cmd(arg: str | None) -> list[str]:
    if arg:
        return shlex.split(arg)
    exe = Path(sys.executable).parent / "minertop"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("minertop")
    return [found] if found else [sys.executable, "-c", "import sys;from tui.cli import main;"
                                                       "sys.exit(main())"]


# ----------------------------------------------------------------------------- the run


@dataclass
class Run:
    presses: list[Press] = field(default_factory=list)
    pane_changes: list[float] = field(default_factory=list)
    cycles: list[tuple[float, float, int]] = field(default_factory=list)
    cpu_windows: list[float] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    keys_started: float = math.nan
    startup_s: float = math.nan
    site_start_s: float = math.nan
    key_phase_s: float = math.nan
    app_cpu_s: float = math.nan
    site_cpu_s: float = math.nan
    chain_cpu_s: float = math.nan
    bench_cpu_s: float = math.nan
    machine_cpu_s: float = math.nan
    out_bytes: int = 0
    peak_mb: float = math.nan
    help_text_seen: bool = False
    rigs_on_screen: int | None = None
    phs_on_screen: float | None = None


def run(args: argparse.Namespace) -> Run:
    res = Run()
    rng = random.Random(f"keys:{args.seed}")
    specs = fleet_specs(args.rigs, args.seed)
    answering_phs = sum(s.hashrate_ths for s in specs if s.behaviour in ("ok", "slow")) / 1000
    tmp = Path(tempfile.mkdtemp(prefix="bench_keys-"))
    site = chain = spy = None
    pid: int | None = None
    fd: int | None = None
    cmd = _cmd(args.cmd)
    dump = open(args.dump, "wb") if args.dump else None  # noqa: SIM115
    try:
        # -- the simulated site (its own process: its CPU is not the dashboard's)
        print(f"starting {args.rigs} simulated rigs on {HOST_BASE[:-1]}x:{PORT} ...", flush=True)
        site = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--rigs", str(args.rigs),
             "--seed", str(args.seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, start_new_session=True)
        assert site.stdout is not None
        site_fd = site.stdout.fileno()
        site_buf = bytearray()
        line = _read_line(site_fd, site_buf, _mono() + 300)
        if not line:
            raise SystemExit(f"simulated site failed to start (exit {site.poll()})")
        info = json.loads(line)
        res.site_start_s = info["start_s"]
        targets = info["targets"]
        print(f"  site up in {res.site_start_s:.1f} s", flush=True)

        # -- the chain simulator
        chain = subprocess.Popen(
            [*cmd, "sim", "--mempool-port", "0", "--rpc-port", "0", "--datadir", str(tmp)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True)
        assert chain.stdout is not None
        chain_buf = bytearray()
        mempool = None
        deadline = _mono() + 60
        while mempool is None:
            line = _read_line(chain.stdout.fileno(), chain_buf, deadline)
            if line is None:
                raise SystemExit(f"minertop sim failed to start (exit {chain.poll()})")
            m = re.search(rb"mempool REST\s+(http://\S+)", line)
            if m:
                mempool = m.group(1).decode()
        print(f"  chain simulator at {mempool}", flush=True)

        cfg = tmp / "config.toml"
        write_config(cfg, targets, args.interval, args.alerts)

        # -- the dashboard in a real pseudo-terminal
        argv = [*cmd, "--config", str(cfg), "--mempool", mempool, "--chain-interval", "30"]
        env = {**os.environ, "TERM": os.environ.get("TERM", "xterm-256color"),
               "XDG_CONFIG_HOME": str(tmp)}
        env.setdefault("COLORTERM", "truecolor")
        env.pop("NO_COLOR", None)
        winsz = struct.pack("HHHH", args.rows, args.cols, 0, 0)
        t_launch = _mono()
        pid, fd = pty.fork()
        if pid == 0:  # the child: the dashboard on the slave side, in its own session
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, winsz)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, winsz)
        print(f"  minertop pid {pid} at {args.cols}x{args.rows}; waiting for the rigs' data",
              flush=True)

        screen = Screen(args.cols, args.rows)
        view = View()
        last_sig: tuple[str, str] | None = None
        last_resolved = 0.0
        phase = "start"
        focus_at = math.nan
        pending: Press | None = None
        next_at = math.inf
        wait_refresh_until: float | None = None
        base: frozenset[tuple[int, int]] = frozenset()
        plan = [k for _ in range(args.rounds) for k in ROUND]
        cpu0 = site_cpu0 = chain_cpu0 = bench_cpu0 = machine0 = math.nan
        t_keys0 = math.nan
        win_t, win_cpu = _mono(), proc_cpu(pid)
        start_deadline = _mono() + args.start_timeout

        def schedule(now: float) -> None:
            nonlocal next_at, wait_refresh_until
            if rng.random() < args.aligned:
                next_at, wait_refresh_until = math.inf, now + 6.0
            else:
                next_at, wait_refresh_until = now + rng.uniform(0.25, 1.25), None

        def send(now: float, aligned: bool) -> None:
            nonlocal pending
            assert fd is not None
            while plan:
                key = plan.pop(0)
                done = expectation(key, view, base)
                if done is None:
                    res.skipped[key] += 1
                    continue
                pending = Press(key, _mono(), done, aligned)
                os.write(fd, KEYS[key])
                if dump is not None:
                    dump.write(b"\n@@%.4f@@@@SENT %s@@" % (pending.sent, key.encode()))
                return

        while True:
            now = _mono()
            if phase == "start" and now > start_deadline:
                raise SystemExit(f"the rigs pane showed no data within {args.start_timeout:.0f} s"
                                 f" (last title: {view.title!r})")
            if phase == "keys" and (now - t_keys0 > args.max_keys_s or (not plan and not pending)):
                break
            # 1-s CPU windows of the dashboard
            if now - win_t >= 1.0:
                c = proc_cpu(pid)
                if phase == "keys":
                    res.cpu_windows.append((c - win_cpu) / (now - win_t) * 100)
                win_t, win_cpu = now, c
            if phase == "focus" and now >= focus_at:
                phase = "keys"
                t_keys0 = res.keys_started = _mono()
                base = view.corners
                cpu0, site_cpu0, chain_cpu0 = proc_cpu(pid), proc_cpu(site.pid), proc_cpu(chain.pid)
                bench_cpu0 = time.process_time()
                machine0 = machine_busy()
                res.out_bytes = 0
                if args.profile:
                    spy = subprocess.Popen(
                        [_py_spy(), "record", "--pid", str(pid), "--rate", str(PY_SPY_RATE),
                         "--format", "raw", "--output", args.profile, "--nonblocking",
                         "--duration", str(int(args.max_keys_s) + 5)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        start_new_session=True)
                schedule(now)
            if phase == "keys" and pending is None and now >= next_at:
                send(now, aligned=False)
            if phase == "keys" and pending is not None and now - pending.sent > PRESS_TIMEOUT_S:
                res.presses.append(pending)
                pending = None
                schedule(now)

            wait = 0.05
            if phase == "keys" and pending is None and next_at < math.inf:
                wait = max(0.0, min(wait, next_at - now))
            ready = select.select([fd, site_fd], [], [], wait)[0]
            if site_fd in ready:
                data = os.read(site_fd, 1 << 16)
                if not data:
                    raise SystemExit(f"the simulated site exited (status {site.wait()})")
                site_buf += data
                while b"\n" in site_buf:
                    i = site_buf.index(b"\n")
                    msg = json.loads(bytes(site_buf[:i]))
                    del site_buf[: i + 1]
                    if "cycle" in msg:
                        res.cycles.append(tuple(msg["cycle"]))  # type: ignore[arg-type]
            if fd not in ready:
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                chunk = b""
            t = _mono()
            if not chunk:
                _, status = os.waitpid(pid, 0)
                pid = None
                last = "\n".join(ln.rstrip() for ln in screen.lines() if ln.strip())
                raise SystemExit(f"minertop exited early (wait status {status}); last screen:\n"
                                 f"{last}")
            res.out_bytes += len(chunk)
            if dump is not None:
                dump.write(b"\n@@%.4f@@" % t + chunk)
            if pending is not None and pending.first_output is None:
                pending.first_output = t
            screen.feed(chunk)
            view = read_view(screen)
            res.help_text_seen = res.help_text_seen or view.help
            # A refresh landed: the rig pane (its title or its visible rows) changed while no
            # key was in flight (a modal on top hides it: the first look after is no event).
            sig = (None if phase != "keys" or view.title is None or view.body is None
                   or modal(view, base) else (view.title, view.body))
            if (sig is not None and last_sig is not None and sig != last_sig
                    and pending is None and t - last_resolved >= 0.5):
                res.pane_changes.append(t)
                if wait_refresh_until is not None:
                    wait_refresh_until = None
                    send(t, aligned=True)
            last_sig = sig
            if pending is not None and pending.key in ("s", "<", "i") and view.sort is None:
                pending.obscured = True
            if pending is not None and pending.done(view):
                pending.seen = last_resolved = t
                res.presses.append(pending)
                if args.verbose:
                    print(f"    {pending.key:18s} {pending.ms:7.1f} ms "
                          f"{'(after refresh)' if pending.aligned else ''}", flush=True)
                pending = None
                schedule(t)
            if wait_refresh_until is not None and t > wait_refresh_until and pending is None:
                wait_refresh_until = None
                send(t, aligned=False)
            if (phase == "start" and view.rigs == args.rigs and view.phs is not None
                    and view.phs >= 0.8 * answering_phs):
                res.startup_s = t - t_launch
                res.rigs_on_screen, res.phs_on_screen = view.rigs, view.phs
                print(f"  rigs pane shows {view.rigs} rigs, {view.phs:,.2f} PH/s after "
                      f"{res.startup_s:.1f} s; pressing keys", flush=True)
                os.write(fd, b"4")  # focus the rig table (its cursor then moves with up/down)
                phase, focus_at = "focus", t + 1.0

        if phase != "keys":
            raise SystemExit("never reached the key phase")
        res.key_phase_s = _mono() - t_keys0
        res.app_cpu_s = proc_cpu(pid) - cpu0
        res.site_cpu_s = proc_cpu(site.pid) - site_cpu0
        res.chain_cpu_s = proc_cpu(chain.pid) - chain_cpu0
        res.bench_cpu_s = time.process_time() - bench_cpu0
        res.machine_cpu_s = machine_busy() - machine0
        res.peak_mb = vm_hwm_mb(pid)
        if pending is not None:
            res.presses.append(pending)
        # classify each press by where it fell in the poll cycles
        for p in res.presses:
            in_cycle = any(a <= p.sent <= b + 0.5 for a, b, _ in res.cycles)
            p.phase = ("right after a refresh" if p.aligned
                       else "during a poll cycle" if in_cycle else "between poll cycles")
        return res
    finally:
        if spy is not None and spy.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(spy.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                spy.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _kill_group(spy)
        if pid is not None and fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, b"q")
            end = _mono() + 5
            while _mono() < end:
                with contextlib.suppress(OSError):
                    if select.select([fd], [], [], 0.1)[0]:
                        os.read(fd, 1 << 16)
                if os.waitpid(pid, os.WNOHANG)[0]:
                    pid = None
                    break
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            os.close(fd)
        if site is not None and site.stdin is not None:
            with contextlib.suppress(OSError):
                site.stdin.close()
        _kill_group(chain)
        _kill_group(site, grace=15)
        shutil.rmtree(tmp, ignore_errors=True)
        if dump is not None:
            dump.close()


def _py_spy() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    return str(exe) if exe.exists() else (shutil.which("py-spy") or "py-spy")


# ----------------------------------------------------------------------------- report


def _fmt(v: float) -> str:
    return "—" if math.isnan(v) else f"{v:6.1f}"


def _stats_line(label: str, presses: list[Press]) -> str:
    ms = [p.ms for p in presses if p.ms is not None]
    lost = sum(p.ms is None for p in presses)
    if not ms:
        return f"  {label:38s} {len(presses):3d}        —        —        —  {lost:4d}   MISSED"
    if lost:
        verdict = "MISSED (lost presses)"
    elif max(ms) < TARGET_MS:
        verdict = "ok"
    elif pct(ms, 0.95) < TARGET_MS:
        verdict = "p95 ok, max over"
    else:
        verdict = "MISSED"
    mx = "   lost" if lost else f"{max(ms):7.1f}"
    return (f"  {label:38s} {len(presses):3d}  {_fmt(statistics.median(ms))}  "
            f"{_fmt(pct(ms, 0.95))}  {mx}  {lost:4d}   {verdict}")


def _bursts(times: list[float], gap: float) -> list[tuple[float, float, int]]:
    out: list[tuple[float, float, int]] = []
    for t in sorted(times):
        if out and t - out[-1][1] <= gap:
            a, _, n = out[-1]
            out[-1] = (a, t, n + 1)
        else:
            out.append((t, t, 1))
    return out


def report(res: Run, args: argparse.Namespace) -> None:
    hdr = (f"  {'key (what must show)':34s} {'n':>3s}  {'median':>6s}  {'p95':>6s}  "
           f"{'max':>7s}  lost   target < {TARGET_MS:.0f} ms")
    print(f"\n== key press -> first output that shows it (ms), {len(res.presses)} presses over "
          f"{res.key_phase_s:.0f} s, {args.rigs} rigs polled every {args.interval:g} s ==")
    print(hdr)
    obscured = [p for p in res.presses if p.obscured]
    presses = [p for p in res.presses if not p.obscured]
    for key in KEYS:
        ps = [p for p in presses if p.key == key]
        if ps:
            print(_stats_line(f"{key:9s} {WHAT[key]}", ps))
    print(_stats_line("all keys", presses))
    app_keys = [p for p in presses if p.key != "esc"]
    print(_stats_line("all but the lone ESC (ESCDELAY)", app_keys))
    print("  by moment of the press (all but the lone ESC):")
    for phase in ("between poll cycles", "during a poll cycle", "right after a refresh"):
        ps = [p for p in app_keys if p.phase == phase]
        if ps:
            print(_stats_line(f"  {phase}", ps))
    firsts = [p.first_ms for p in presses if p.first_ms is not None]
    if firsts:
        print(f"  (first byte of any output after a press: median {statistics.median(firsts):.1f}"
              f" ms, p95 {pct(firsts, 0.95):.1f} ms, max {max(firsts):.1f} ms)")
    if any(p.key == "?" and p.seen for p in res.presses) and not res.help_text_seen:
        print(f"  NOTE: '?' opened a box, but the help text ({HELP_MARK!r}) never showed: the "
              "help screen is drawn empty")
    if obscured:
        shown_ms = ", ".join(f"{p.key} {'lost' if p.ms is None else f'{p.ms:.0f} ms'}"
                             for p in obscured)
        print(f"  left out: {len(obscured)} presses whose sort label a notification covered "
              f"before it changed ({shown_ms})")
    if res.skipped:
        print(f"  not pressed (the screen did not show what the key would change, e.g. a "
              f"notification over the sort label): {dict(res.skipped)}")

    print("\n== resources during the key phase ==")
    w = res.key_phase_s
    print(f"  minertop CPU      {res.app_cpu_s / w * 100:6.1f} % of a core on average; 1-s "
          f"windows: median {pct(res.cpu_windows, 0.5):.0f} %, max {max(res.cpu_windows):.0f} %")
    print(f"  simulated site    {res.site_cpu_s / w * 100:6.1f} % of a core  (separate process)")
    print(f"  chain simulator   {res.chain_cpu_s / w * 100:6.1f} % of a core")
    print(f"  this benchmark    {res.bench_cpu_s / w * 100:6.1f} % of a core  "
          f"(machine: {os.cpu_count()} CPUs)")
    others = res.machine_cpu_s - res.app_cpu_s - res.site_cpu_s - res.chain_cpu_s \
        - res.bench_cpu_s
    print(f"  other processes   {others / w * 100:6.1f} % of a core  (the whole machine: "
          f"{res.machine_cpu_s / w * 100:.0f} % of {(os.cpu_count() or 1) * 100} %)")
    print(f"  terminal output   {res.out_bytes / w / 1024:6.1f} KB/s at {args.cols}x{args.rows};"
          f" minertop peak memory {res.peak_mb:.0f} MB")

    print("\n== poll cycles during the key phase ==")
    cyc = [c for c in res.cycles if c[0] >= res.keys_started - 1.0]
    conns = sum(n for *_, n in cyc)
    print(f"  at the site: {conns} connections in {res.key_phase_s:.0f} s "
          f"({conns / res.key_phase_s:.0f}/s, {conns / args.rigs:.1f} per rig)")
    # a burst of connections with a quiet gap on each side is one poll cycle, if it reached
    # (nearly) every rig; a dashboard that can't keep up polls in dribs and drabs instead
    full = [c for c in cyc if c[2] >= 0.9 * args.rigs]
    if cyc and not full:
        print(f"  no complete poll cycle: {len(cyc)} bursts of median "
              f"{statistics.median([n for *_, n in cyc]):.0f} connections, none reaching 90 % "
              f"of the {args.rigs} rigs (the dashboard does not keep up)")
    if full:
        spans = [b - a for a, b, _ in full]
        periods = [b[0] - a[0] for a, b in zip(full, full[1:], strict=False)]
        every = f", one every {statistics.median(periods):.1f} s" if periods else ""
        print(f"  {len(full)} complete cycles: first to last connection median "
              f"{statistics.median(spans):.2f} s (max {max(spans):.2f} s), "
              f"{statistics.median([n for *_, n in full]):.0f} connections each{every}")
    bursts = _bursts(res.pane_changes, 1.5)
    shown = []
    for a, b, _ in full:
        inside = [x for x in bursts if a - 0.2 <= x[0] <= b + 4.0]
        if inside:
            shown.append((inside[0][0] - a, max(x[1] for x in inside) - a,
                          sum(x[2] for x in inside)))
    if shown:
        first = statistics.median([x[0] for x in shown])
        last = statistics.median([x[1] for x in shown])
        worst = max(x[1] for x in shown)
        changes = statistics.median([x[2] for x in shown])
        print(f"  on screen: the rig pane (title or visible rows) changes {changes:.0f} times a "
              f"cycle, the first {first:.2f} s and the last {last:.2f} s (max {worst:.2f} s) "
              "after the cycle's first connection")
        print(f"  one full refresh of the {args.rigs} rows, as the UI shows it: about "
              f"{last:.1f} s from the start of a poll cycle to its last change on screen")
    print(f"\nstart-up: site {res.site_start_s:.1f} s; the dashboard showed "
          f"{res.rigs_on_screen} rigs / {res.phs_on_screen} PH/s {res.startup_s:.1f} s after "
          "launch")
    print(f"note: a lone ESC byte waits ESCDELAY ({os.environ.get('ESCDELAY', '25')} ms) before "
          "it counts as the escape key;\n      'esc CSI-u' is the same key from a terminal "
          "with the kitty keyboard protocol (no wait).")


_FRAME = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")


def _frame(f: str) -> str:
    """py-spy's "func (path/to/file.py:123)" as "func (pkg/file.py)"."""
    m = _FRAME.match(f)
    if not m:
        return f
    func, path = m.groups()
    parts = path.replace("\\", "/").split("/")
    for anchor in ("site-packages", "main", "head", "lib"):
        if anchor in parts[:-1]:
            parts = parts[len(parts) - parts[::-1].index(anchor):]
            break
    return f"{func} ({'/'.join(parts[-3:])})"


def report_profile(path: str, rate: int, top: int = 30) -> None:
    """Inclusive and self shares of the samples in py-spy's collapsed stacks."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        print(f"\nprofile: no output from py-spy ({e})")
        return
    total = 0
    incl: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = [_frame(f) for f in stack.split(";")
                  if not f.startswith(("process ", "thread "))]
        total += count
        for f in set(frames):
            incl[f] += count
        if frames:
            self_[frames[-1]] += count
    if not total:
        print("\nprofile: empty")
        return
    print(f"\n== py-spy profile of minertop: {total} samples at {rate} Hz = {total / rate:.0f} s "
          f"on CPU ({path}) ==")
    print("  inclusive (time spent in the function and below it):")
    for f, n in incl.most_common(top):
        print(f"  {n / total * 100:5.1f} %  {n / rate:6.1f} s  {f}")
    print("  self (time spent in the function itself):")
    for f, n in self_.most_common(20):
        print(f"  {n / total * 100:5.1f} %  {n / rate:6.1f} s  {f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rigs", type=int, default=5000)
    p.add_argument("--interval", type=float, default=5.0, help="rig poll interval (s)")
    p.add_argument("--rounds", type=int, default=15,
                   help=f"rounds of {len(ROUND)} presses ({', '.join(ROUND)})")
    p.add_argument("--aligned", type=float, default=0.35,
                   help="share of presses sent right after a refresh lands")
    p.add_argument("--max-keys-s", type=float, default=150.0, help="cap on the key phase (s)")
    p.add_argument("--start-timeout", type=float, default=120.0)
    p.add_argument("--alerts", action="store_true",
                   help="keep the default alerts (their notifications then hide the sort "
                   "label now and then: those presses are left out)")
    p.add_argument("--cols", type=int, default=120)
    p.add_argument("--rows", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cmd", help="the minertop command, split like a shell would (default: "
                   "the one beside this Python)")
    p.add_argument("--profile", metavar="OUT", help="record minertop with py-spy into OUT")
    p.add_argument("--json", metavar="OUT", help="also write every press and cycle to OUT")
    p.add_argument("--verbose", action="store_true", help="print every press")
    p.add_argument("--dump", metavar="FILE", help="write the raw terminal output to FILE")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    raise_nofile_limit(4 * args.rigs + 1024)
    if args.serve:
        import asyncio

        asyncio.run(_serve(args.rigs, args.seed))
        return 0
    print(f"minertop key-latency benchmark · {os.cpu_count()} CPUs · Python "
          f"{sys.version.split()[0]}")
    res = run(args)
    report(res, args)
    if args.json:
        doc = {
            "rigs": args.rigs, "interval_s": args.interval, "cols": args.cols, "rows": args.rows,
            "key_phase_s": res.key_phase_s,
            "minertop_cpu_pct": res.app_cpu_s / res.key_phase_s * 100,
            "site_cpu_pct": res.site_cpu_s / res.key_phase_s * 100,
            "machine_cpu_pct": res.machine_cpu_s / res.key_phase_s * 100,
            "presses": [{"key": p.key, "ms": p.ms, "first_output_ms": p.first_ms,
                         "phase": p.phase, "obscured": p.obscured,
                         "t": p.sent - res.keys_started}
                        for p in res.presses],
            "cycles": [[a - res.keys_started, b - res.keys_started, n]
                       for a, b, n in res.cycles],
            "pane_changes": [t - res.keys_started for t in res.pane_changes],
        }
        Path(args.json).write_text(json.dumps(doc, indent=1))
    if args.profile:
        report_profile(args.profile, PY_SPY_RATE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
