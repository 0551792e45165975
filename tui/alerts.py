"""Alerts from the config's ``[alerts]`` thresholds, edge-triggered (pure: no I/O, no Textual).

The app builds a :class:`RigCondition` per rig and one :class:`NetworkCondition` from its
view-models on every refresh and hands them to :meth:`AlertEngine.evaluate` with the current
time.  The engine returns only *changes*: an alert is ``"fired"`` once when its condition
starts and ``"cleared"`` once when it ends; in between, refreshes return nothing for it.

Rules (each threshold may be ``None``: that alert is off):

==========  ========  ===========================================  ==========================
kind        severity  fires when                                   clears when (hysteresis)
==========  ========  ===========================================  ==========================
offline     critical  status offline/error for ≥ ``rig_offline_s``  status ok or stale again
stuck       critical  status stuck for ≥ ``rig_stuck_s``           status not stuck
board       warning   a hashboard down (``rig_board_down``)         every board up again
margin      warning   margin < ``rig_margin_below_usd_day``         margin ≥ limit + $0.05/day
temp        critical  hottest sensor > ``rig_temp_above_c``         temp ≤ limit − 2 °C
hashrate    warning   more than ``pct`` % under the model's nominal  under by ≤ pct − 5 points
drift       warning   epoch mean interval > ``pct`` % off 600 s      within pct − 1 point
retarget    warning   ETA within ``retarget_within_h`` hours        ETA beyond H + 1 h
==========  ========  ===========================================  ==========================

The hysteresis bands never exceed half the threshold (a 4 % hashrate rule clears at 2 %, a
1 h retarget rule at 1.5 h), so a small threshold still clears before the value is perfect.

Decisions:

* **Offline** is measured from the first evaluation that saw the rig offline or in error
  (the engine cannot know better); flipping between offline and error keeps the same timer.
  A rig that comes back before ``rig_offline_s`` fires nothing.  ``since`` is when it went
  down.  ``stale`` (a recent good reading, the last poll failed) is *not* offline.
* **Stuck** (the rig answers but does not mine) is timed like offline, from the first
  evaluation that saw it stuck, with its own threshold; it earns nothing, so its margin
  alert may fire too (it still draws power).
* **Board**: a rig whose reading shows a hashboard down (no hashrate, chips missing) while
  the rig still answers; it holds like the other value alerts (``hold_s``).
* A rig that is **offline or in error** has no live figures: its margin / temperature /
  hashrate alerts clear at once (message "a-07 offline"); the offline alert says it all.
  When it comes back, they may fire again.
* A rig **no longer in** ``rigs`` gets all its alerts cleared ("a-07 no longer on the site")
  and its offline timer forgotten.
* An **unknown** value (``None``, NaN, no nominal for the model) neither fires nor clears that
  alert; ``network=None`` leaves the network alerts as they are.
* While an alert stays active its message is refreshed in :attr:`AlertEngine.active` (e.g.
  "offline for 9m…") without an event.  A ``"cleared"`` event carries the alert with a message
  saying why it cleared ("a-03 at 82 °C (limit 85)", "a-01 back online after 7m03s");
  ``since`` is still when it started.
* ``rules.enabled = False``: :meth:`AlertEngine.evaluate` always returns ``[]``.
* Events come out in a stable order: alerts of vanished rigs, then each rig in the order given
  (offline, margin, temp, hashrate), then drift and retarget.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from tui.chain import TARGET_SPACING
from tui.fmt import fmt_duration, fmt_pct, fmt_usd
from tui.safe import safe

Severity = Literal["warning", "critical"]
AlertKind = Literal["offline", "stuck", "board", "margin", "temp", "hashrate", "drift",
                    "retarget"]
EventKind = Literal["fired", "cleared"]

#: Severity of each kind of alert (fixed: an alert never changes severity while active).
SEVERITY: dict[str, Severity] = {
    "offline": "critical",
    "stuck": "critical",
    "board": "warning",
    "margin": "warning",
    "temp": "critical",
    "hashrate": "warning",
    "drift": "warning",
    "retarget": "warning",
}
#: Hysteresis: how far back past the threshold a value must go before its alert clears
#: (each capped at half the threshold itself where that is a size, see the module notes).
MARGIN_HYSTERESIS_USD_DAY = 0.05
TEMP_HYSTERESIS_C = 2.0
HASHRATE_HYSTERESIS_PCT = 5.0
DRIFT_HYSTERESIS_PCT = 1.0
RETARGET_HYSTERESIS_S = 3600.0
HISTORY_SIZE = 500

_DOWN = ("offline", "error")
_RIG_KINDS: tuple[AlertKind, ...] = ("stuck", "board", "margin", "temp", "hashrate")


@dataclass(frozen=True)
class AlertRules:
    """The ``[alerts]`` table of the config.  A threshold of ``None`` turns that alert off."""

    enabled: bool = True
    rig_offline_s: float | None = 300.0  #: offline or in error for longer than this
    rig_stuck_s: float | None = 300.0  #: stuck (answers, does not mine) for longer than this
    rig_board_down: bool = True  #: a hashboard down (no hashrate, chips missing)
    rig_margin_below_usd_day: float | None = 0.0  #: margin below this, $/day
    rig_temp_above_c: float | None = 85.0  #: hottest sensor above this, °C
    rig_hashrate_below_nominal_pct: float | None = 20.0  #: live hashrate this % under nominal
    drift_beyond_pct: float | None = 10.0  #: epoch mean interval this % off 600 s, either way
    retarget_within_h: float | None = 24.0  #: next retarget ETA within this many hours
    #: a condition must hold this long to fire, and be gone this long to clear (not offline,
    #: which has its own duration): rig readings are noisy and an alert must not flap
    hold_s: float = 60.0
    bell: bool = False  #: ring the terminal bell when an alert fires
    log_file: Path | None = None  #: append one line per event (see :func:`format_log_line`)


@dataclass(frozen=True)
class RigCondition:
    """One rig as the alerts see it (``None``: not known right now)."""

    rig_id: str
    status: str  #: "ok" | "stale" | "offline" | "error"
    reason: str | None = None
    margin_usd_day: float | None = None
    temp_max_c: float | None = None
    hashrate_ths: float | None = None
    nominal_ths: float | None = None  #: the model's (or the config's) nominal hashrate
    boards: int = 0  #: hashboards the rig reports (0: it reports none)
    boards_down: int = 0
    board_problem: str | None = None  #: e.g. "board 2: no hashrate"


@dataclass(frozen=True)
class NetworkCondition:
    epoch_drift_pct: float | None = None  #: this epoch's mean interval vs 600 s, % (+ = slower)
    retarget_eta_unix: float | None = None
    retarget_change_pct: float | None = None  #: projected difficulty change, %


@dataclass(frozen=True)
class Alert:
    key: str  #: stable id: "rig:<rig id>:<kind>" or "network:<kind>"
    subject: str  #: the rig id, or "network"
    kind: AlertKind
    severity: Severity
    message: str  #: one line with the numbers
    since: float  #: unix s when the condition started


@dataclass(frozen=True)
class AlertEvent:
    kind: EventKind
    alert: Alert
    time: float


# --------------------------------------------------------------------------- formatting


def _num(x: float) -> str:
    """At most one decimal, none when it is whole: 85, 85.5, 104."""
    r = round(x, 1)
    return f"{r:.0f}" if r == int(r) else f"{r:.1f}"


def _ths(x: float) -> str:
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def _usd(x: float) -> str:
    return fmt_usd(x, 2, signed=True)


def _known(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def format_log_line(event: AlertEvent) -> str:
    """One line for the alerts log, five tab-separated fields::

        2026-01-21T12:53:20Z<TAB>FIRED<TAB>critical<TAB>rig:a-01:offline<TAB>a-01 offline for 5m…

    time (ISO-8601, UTC, whole seconds), ``FIRED``/``CLEARED``, severity, key, message.  Control
    characters (tabs, newlines, ESC) in the key or message are escaped, so a line is a line.
    """
    a = event.alert
    when = datetime.fromtimestamp(event.time, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "\t".join((when, event.kind.upper(), a.severity, safe(a.key, 300), safe(a.message, 500)))


# --------------------------------------------------------------------------- engine


class AlertEngine:
    """Edge-triggered alerts: feed it the current conditions, get back what changed."""

    def __init__(self, rules: AlertRules | None = None, *, history_size: int = HISTORY_SIZE):
        if history_size < 1:
            raise ValueError(f"history_size must be at least 1, got {history_size}")
        self.rules = rules if rules is not None else AlertRules()
        self._active: dict[str, Alert] = {}
        self._down_since: dict[str, float] = {}
        self._stuck_since: dict[str, float] = {}
        self._arming: dict[str, float] = {}  #: key -> since when its condition holds
        self._clearing: dict[str, float] = {}  #: key -> since when an active one stopped
        #: The most recent events, oldest first (bounded).
        self.history: deque[AlertEvent] = deque(maxlen=history_size)

    @property
    def active(self) -> Mapping[str, Alert]:
        """The alerts firing now, by key (read-only view), with their latest messages."""
        return MappingProxyType(self._active)

    def evaluate(
        self,
        now: float,
        *,
        rigs: Sequence[RigCondition] = (),
        network: NetworkCondition | None = None,
    ) -> list[AlertEvent]:
        """Events for what started or ended since the last call (usually nothing)."""
        steps = self.evaluate_steps(now, rigs=rigs, network=network)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def evaluate_steps(
        self,
        now: float,
        *,
        rigs: Sequence[RigCondition] = (),
        network: NetworkCondition | None = None,
        chunk: int = 500,
    ) -> Generator[None, None, list[AlertEvent]]:
        """:meth:`evaluate` in steps of ``chunk`` rigs: the generator yields between them
        (a caller with thousands of rigs can do other work there) and returns the events.
        Run one evaluation at a time: the steps share the engine's state."""
        events: list[AlertEvent] = []
        self._retire_turned_off(events, now)
        if not self.rules.enabled:
            self.history.extend(events)
            return events
        present = {r.rig_id: r for r in rigs}
        for rid in [rid for rid in self._down_since if rid not in present]:
            del self._down_since[rid]
        for rid in [rid for rid in self._stuck_since if rid not in present]:
            del self._stuck_since[rid]
        for key, alert in list(self._active.items()):
            if key.startswith("rig:") and alert.subject not in present:
                self._clear(events, now, key, f"{safe(alert.subject, 64)} no longer on the site")
        # a condition that had started on a rig that left starts again if it comes back
        for timers in (self._arming, self._clearing):
            for key in [k for k in timers
                        if k.startswith("rig:") and k[4:].rpartition(":")[0] not in present]:
                del timers[key]
        for i, r in enumerate(present.values()):
            if i and i % chunk == 0:
                yield
            self._rig(events, now, r)
        if network is not None:
            self._network(events, now, network)
        self.history.extend(events)
        return events

    def kinds_on(self) -> frozenset[str]:
        """The kinds of alert the rules watch for now."""
        r = self.rules
        if not r.enabled:
            return frozenset()
        limits: dict[str, object] = {
            "offline": r.rig_offline_s, "stuck": r.rig_stuck_s,
            "board": True if r.rig_board_down else None,
            "margin": r.rig_margin_below_usd_day, "temp": r.rig_temp_above_c,
            "hashrate": r.rig_hashrate_below_nominal_pct, "drift": r.drift_beyond_pct,
            "retarget": r.retarget_within_h,
        }
        return frozenset(kind for kind, limit in limits.items() if limit is not None)

    def kind_on(self, kind: str) -> bool:
        """Whether the rules watch for this kind of alert now."""
        return kind in self.kinds_on()

    def _retire_turned_off(self, events: list[AlertEvent], now: float) -> None:
        """Rules can change under a running engine (the daemon's reload): an alert whose rule
        is now off clears (it would never be checked again), and a condition that had
        started towards one is forgotten."""
        on = self.kinds_on()
        for key, alert in list(self._active.items()):
            if alert.kind not in on:
                who = "network" if alert.subject == "network" else safe(alert.subject, 64)
                self._clear(events, now, key, f"{who}: {alert.kind} alert turned off")
        for timers in (self._arming, self._clearing):
            for key in [k for k in timers if k.rpartition(":")[2] not in on]:
                del timers[key]
        if "offline" not in on:
            self._down_since.clear()
        if "stuck" not in on:
            self._stuck_since.clear()

    # -- bookkeeping
    def _fire(self, events: list[AlertEvent], alert: Alert, now: float) -> None:
        self._active[alert.key] = alert
        events.append(AlertEvent("fired", alert, now))

    def _clear(self, events: list[AlertEvent], now: float, key: str, message: str) -> None:
        self._arming.pop(key, None)
        self._clearing.pop(key, None)
        alert = self._active.pop(key, None)
        if alert is not None:
            events.append(AlertEvent("cleared", replace(alert, message=message), now))

    def _track(
        self,
        events: list[AlertEvent],
        now: float,
        key: str,
        subject: str,
        kind: AlertKind,
        holds: bool | None,
        message: str,
    ) -> None:
        """``holds``: the condition (hysteresis already applied) is true / false / unknown.

        With ``rules.hold_s`` > 0 a condition must hold that long before it fires, and be
        gone that long before it clears: a noisy value near a limit doesn't flap.
        """
        if holds is None:
            return
        hold = self.rules.hold_s
        cur = self._active.get(key)
        if holds:
            self._clearing.pop(key, None)
            if cur is None:
                start = self._arming.setdefault(key, now)
                if now - start >= hold:
                    del self._arming[key]
                    alert = Alert(key, subject, kind, SEVERITY[kind], message, start)
                    self._fire(events, alert, now)
            elif cur.message != message:
                self._active[key] = replace(cur, message=message)
        else:
            self._arming.pop(key, None)
            if cur is not None:
                start = self._clearing.setdefault(key, now)
                if now - start >= hold:
                    del self._clearing[key]
                    self._clear(events, now, key, message)

    # -- rigs
    def _rig(self, events: list[AlertEvent], now: float, r: RigCondition) -> None:
        rules = self.rules
        rid = r.rig_id
        name = safe(rid, 64)
        key = f"rig:{rid}:offline"
        if r.status in _DOWN:
            self._stuck_since.pop(rid, None)
            state = "offline" if r.status == "offline" else "in error"
            for kind in _RIG_KINDS:
                self._clear(events, now, f"rig:{rid}:{kind}", f"{name} {state}")
            if rules.rig_offline_s is None:
                return  # not watched: a rule turned on later counts from then
            start = self._down_since.setdefault(rid, now)
            msg = f"{name} {state} for {fmt_duration(now - start, short=True)}"
            if r.reason:
                msg += f": {safe(r.reason, 120)}"
            cur = self._active.get(key)
            if cur is not None:
                if cur.message != msg:
                    self._active[key] = replace(cur, message=msg)
            elif now - start >= rules.rig_offline_s:
                self._fire(events, Alert(key, rid, "offline", "critical", msg, start), now)
            return
        self._down_since.pop(rid, None)
        cur = self._active.get(key)
        if cur is not None:
            back = f"{name} back online after {fmt_duration(now - cur.since, short=True)}"
            self._clear(events, now, key, back)

        # stuck: answers, does not mine
        key = f"rig:{rid}:stuck"
        if r.status == "stuck" and rules.rig_stuck_s is not None:
            start = self._stuck_since.setdefault(rid, now)
            msg = f"{name} stuck for {fmt_duration(now - start, short=True)}"
            if r.reason:
                msg += f": {safe(r.reason, 120)}"
            cur = self._active.get(key)
            if cur is not None:
                if cur.message != msg:
                    self._active[key] = replace(cur, message=msg)
            elif rules.rig_stuck_s is not None and now - start >= rules.rig_stuck_s:
                self._fire(events, Alert(key, rid, "stuck", "critical", msg, start), now)
        else:
            self._stuck_since.pop(rid, None)
            cur = self._active.get(key)
            if cur is not None:
                self._clear(events, now, key,
                            f"{name} mining again after "
                            f"{fmt_duration(now - cur.since, short=True)}")

        # a hashboard down
        if rules.rig_board_down and r.boards:
            key = f"rig:{rid}:board"
            up = r.boards - r.boards_down
            msg = f"{name} {up}/{r.boards} boards"
            if r.board_problem:
                msg += f": {safe(r.board_problem, 120)}"
            self._track(events, now, key, rid, "board", r.boards_down > 0, msg)

        # margin
        limit = rules.rig_margin_below_usd_day
        m = r.margin_usd_day
        if limit is not None:
            key = f"rig:{rid}:margin"
            holds = None
            msg = ""
            if _known(m):
                assert m is not None
                active = key in self._active
                holds = m < limit + MARGIN_HYSTERESIS_USD_DAY if active else m < limit
                msg = f"{name} margin {_usd(m)}/day"
                if limit != 0:
                    msg += f" (limit {_usd(limit)})"
            self._track(events, now, key, rid, "margin", holds, msg)

        # temperature
        tlim = rules.rig_temp_above_c
        t = r.temp_max_c
        if tlim is not None:
            key = f"rig:{rid}:temp"
            holds = None
            msg = ""
            if _known(t):
                assert t is not None
                active = key in self._active
                holds = t > tlim - TEMP_HYSTERESIS_C if active else t > tlim
                msg = f"{name} at {_num(t)} °C (limit {_num(tlim)})"
            self._track(events, now, key, rid, "temp", holds, msg)

        # hashrate against nominal
        pct = rules.rig_hashrate_below_nominal_pct
        h, nom = r.hashrate_ths, r.nominal_ths
        if pct is not None:
            key = f"rig:{rid}:hashrate"
            holds = None
            msg = ""
            if _known(h, nom) and nom is not None and nom > 0 and h is not None:
                under = (1.0 - h / nom) * 100.0
                active = key in self._active
                band = min(HASHRATE_HYSTERESIS_PCT, pct / 2)
                holds = under > pct - band if active else under > pct
                side = f"{under:.0f}% under" if under >= 0 else f"{-under:.0f}% over"
                msg = f"{name} at {_ths(h)} TH/s, {side} nominal {_num(nom)}"
            self._track(events, now, key, rid, "hashrate", holds, msg)

    # -- network
    def _network(self, events: list[AlertEvent], now: float, n: NetworkCondition) -> None:
        rules = self.rules
        z = rules.drift_beyond_pct
        d = n.epoch_drift_pct
        if z is not None:
            key = "network:drift"
            holds = None
            msg = ""
            if _known(d):
                assert d is not None
                active = key in self._active
                band = min(DRIFT_HYSTERESIS_PCT, z / 2)
                holds = abs(d) > z - band if active else abs(d) > z
                way = "slower" if d > 0 else "faster"
                msg = f"blocks {abs(d):.1f}% {way} than {TARGET_SPACING} s this epoch"
            self._track(events, now, key, "network", "drift", holds, msg)

        hours = rules.retarget_within_h
        eta = n.retarget_eta_unix
        if hours is not None:
            key = "network:retarget"
            holds = None
            msg = ""
            if _known(eta):
                assert eta is not None
                left = eta - now
                window = hours * 3600.0
                active = key in self._active
                band = min(RETARGET_HYSTERESIS_S, window / 2)
                holds = left <= window + band if active else left <= window
                msg = ("retarget due now" if left <= 0
                       else f"retarget in {fmt_duration(left, short=True)}")
                if _known(n.retarget_change_pct):
                    assert n.retarget_change_pct is not None
                    msg += f" ({fmt_pct(n.retarget_change_pct)} projected)"
            self._track(events, now, key, "network", "retarget", holds, msg)
