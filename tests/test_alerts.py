"""Alert rules, edge-triggered with a fake clock: fire once, clear once, no flapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from tui.alerts import (
    Alert,
    AlertEngine,
    AlertEvent,
    NetworkCondition,
    RigCondition,
    format_log_line,
)
from tui.alerts import AlertRules as _Rules
from tui.fmt import fmt_duration


def AlertRules(**kw: Any) -> _Rules:  # noqa: N802 - stands in for the class in these tests
    """The rules with no hold time: these tests check the edges themselves; the hold time
    has its own tests below."""
    kw.setdefault("hold_s", 0.0)
    return _Rules(**kw)


OFF = AlertRules(
    rig_offline_s=None,
    rig_margin_below_usd_day=None,
    rig_temp_above_c=None,
    rig_hashrate_below_nominal_pct=None,
    drift_beyond_pct=None,
    retarget_within_h=None,
)


def ok(rig_id: str = "a-01", **kw: object) -> RigCondition:
    return RigCondition(rig_id, "ok", None, **kw)  # type: ignore[arg-type]


def down(rig_id: str = "a-01", reason: str | None = "connection refused") -> RigCondition:
    return RigCondition(rig_id, "offline", reason)


def summary(events: list[AlertEvent]) -> list[tuple[str, str]]:
    return [(e.kind, e.alert.key) for e in events]


class Driver:
    """An engine plus a fake clock: ``step(seconds, ...)`` advances, then evaluates."""

    def __init__(self, clock: FakeClock, rules: AlertRules | None = None, **kw: object) -> None:
        self.clock = clock
        self.engine = AlertEngine(rules or AlertRules(), **kw)  # type: ignore[arg-type]

    def step(
        self,
        seconds: float = 10.0,
        rigs: tuple[RigCondition, ...] = (),
        network: NetworkCondition | None = None,
    ) -> list[AlertEvent]:
        self.clock.advance(seconds)
        return self.engine.evaluate(self.clock.now, rigs=rigs, network=network)


# --------------------------------------------------------------------------- offline


def test_offline_fires_only_after_the_threshold_exactly_once_and_clears_once(
    clock: FakeClock,
) -> None:
    d = Driver(clock)
    start = clock.now
    assert d.engine.evaluate(start, rigs=(down(),)) == []
    for _ in range(29):  # 290 s down: not yet
        assert d.step(10, (down(),)) == []
    ev = d.step(10, (down(),))  # 300 s
    assert summary(ev) == [("fired", "rig:a-01:offline")]
    a = ev[0].alert
    assert a == Alert(
        "rig:a-01:offline",
        "a-01",
        "offline",
        "critical",
        "a-01 offline for 5m00s: connection refused",
        start,
    )
    assert ev[0].time == start + 300
    for _ in range(50):
        assert d.step(10, (down(),)) == []
    # the active alert's message keeps up; the event's does not change
    assert (
        d.engine.active["rig:a-01:offline"].message == "a-01 offline for 13m20s: connection refused"
    )
    ev = d.step(10, (ok(),))
    assert summary(ev) == [("cleared", "rig:a-01:offline")]
    assert ev[0].alert.message == "a-01 back online after 13m30s"
    assert ev[0].alert.since == start
    assert d.step(10, (ok(),)) == [] and d.engine.active == {}
    assert summary(list(d.engine.history)) == [
        ("fired", "rig:a-01:offline"),
        ("cleared", "rig:a-01:offline"),
    ]


def test_short_outages_fire_nothing_and_error_counts_as_down(clock: FakeClock) -> None:
    d = Driver(clock, AlertRules(rig_offline_s=60))
    assert d.step(0, (down(),)) == []
    assert d.step(50, (down(),)) == []
    assert d.step(5, (ok(),)) == []  # back after 55 s: nothing fired, nothing to clear
    assert d.step(5, (down(),)) == []  # the timer restarts
    assert d.step(55, (down(),)) == []
    # offline -> error keeps the same timer; stale is not down
    err = RigCondition("a-01", "error", "bad reply")
    ev = d.step(5, (err,))
    assert summary(ev) == [("fired", "rig:a-01:offline")]
    assert ev[0].alert.message == "a-01 in error for 1m00s: bad reply"
    ev = d.step(5, (RigCondition("a-01", "stale", "timeout (last good 5s ago)"),))
    assert summary(ev) == [("cleared", "rig:a-01:offline")]


def test_offline_rule_at_zero_fires_at_once_without_a_reason(clock: FakeClock) -> None:
    d = Driver(clock, AlertRules(rig_offline_s=0))
    ev = d.step(0, (down(reason=None),))
    assert [e.alert.message for e in ev] == ["a-01 offline for 0s"]


def test_going_offline_clears_the_rigs_other_alerts(clock: FakeClock) -> None:
    d = Driver(clock)
    hot = ok("a-07", margin_usd_day=-1.84, temp_max_c=91.0, hashrate_ths=50.0, nominal_ths=104.0)
    ev = d.step(0, (hot,))
    assert summary(ev) == [
        ("fired", "rig:a-07:margin"),
        ("fired", "rig:a-07:temp"),
        ("fired", "rig:a-07:hashrate"),
    ]
    ev = d.step(10, (down("a-07"),))
    assert summary(ev) == [
        ("cleared", "rig:a-07:margin"),
        ("cleared", "rig:a-07:temp"),
        ("cleared", "rig:a-07:hashrate"),
    ]
    assert {e.alert.message for e in ev} == {"a-07 offline"}
    assert list(d.engine.active) == []
    ev = d.step(300, (down("a-07"),))
    assert summary(ev) == [("fired", "rig:a-07:offline")]
    # back, and still hot: the offline alert clears, the others fire again
    ev = d.step(10, (hot,))
    assert summary(ev) == [
        ("cleared", "rig:a-07:offline"),
        ("fired", "rig:a-07:margin"),
        ("fired", "rig:a-07:temp"),
        ("fired", "rig:a-07:hashrate"),
    ]


# --------------------------------------------------------------------------- rig thresholds


def test_margin_fires_once_clears_once_with_hysteresis(clock: FakeClock) -> None:
    d = Driver(clock)
    assert d.step(0, (ok("a-07", margin_usd_day=0.0),)) == []  # not below zero
    ev = d.step(10, (ok("a-07", margin_usd_day=-1.84),))
    assert summary(ev) == [("fired", "rig:a-07:margin")]
    assert ev[0].alert.message == "a-07 margin −$1.84/day"
    assert ev[0].alert.severity == "warning" and ev[0].alert.since == clock.now
    # hovering around zero: no flapping until it's $0.05/day clear of the threshold
    for m in (-0.01, 0.01, -0.02, 0.04, 0.0, 0.049):
        assert d.step(10, (ok("a-07", margin_usd_day=m),)) == [], m
    ev = d.step(10, (ok("a-07", margin_usd_day=0.05),))
    assert summary(ev) == [("cleared", "rig:a-07:margin")]
    assert ev[0].alert.message == "a-07 margin +$0.05/day"
    assert d.step(10, (ok("a-07", margin_usd_day=0.01),)) == []  # not below zero again yet


def test_margin_threshold_other_than_zero_is_shown(clock: FakeClock) -> None:
    d = Driver(clock, AlertRules(rig_margin_below_usd_day=-2.0))
    assert d.step(0, (ok("a-07", margin_usd_day=-1.5),)) == []
    ev = d.step(10, (ok("a-07", margin_usd_day=-2.5),))
    assert [e.alert.message for e in ev] == ["a-07 margin −$2.50/day (limit −$2.00)"]


def test_temperature_fires_once_clears_two_degrees_below(clock: FakeClock) -> None:
    d = Driver(clock)
    assert d.step(0, (ok("a-03", temp_max_c=85.0),)) == []  # at the limit is not above it
    ev = d.step(10, (ok("a-03", temp_max_c=91.0),))
    assert summary(ev) == [("fired", "rig:a-03:temp")]
    assert ev[0].alert.message == "a-03 at 91 °C (limit 85)"
    assert ev[0].alert.severity == "critical"
    for t in (84.0, 86.0, 83.5, 85.5, 83.1):
        assert d.step(10, (ok("a-03", temp_max_c=t),)) == [], t
    assert d.engine.active["rig:a-03:temp"].message == "a-03 at 83.1 °C (limit 85)"
    ev = d.step(10, (ok("a-03", temp_max_c=83.0),))
    assert summary(ev) == [("cleared", "rig:a-03:temp")]
    assert ev[0].alert.message == "a-03 at 83 °C (limit 85)"
    assert d.step(10, (ok("a-03", temp_max_c=84.9),)) == []
    assert summary(d.step(10, (ok("a-03", temp_max_c=85.2),))) == [("fired", "rig:a-03:temp")]


def test_hashrate_under_nominal_fires_once_clears_five_points_better(clock: FakeClock) -> None:
    d = Driver(clock)

    def rig(ths: float) -> RigCondition:
        return ok("a-12", hashrate_ths=ths, nominal_ths=104.0)

    assert d.step(0, (rig(84.0),)) == []  # 19.2% under: within 20%
    ev = d.step(10, (rig(71.3),))
    assert summary(ev) == [("fired", "rig:a-12:hashrate")]
    assert ev[0].alert.message == "a-12 at 71.3 TH/s, 31% under nominal 104"
    for ths in (84.0, 82.0, 88.0):  # 19%, 21%, 15.4% under: still active
        assert d.step(10, (rig(ths),)) == [], ths
    ev = d.step(10, (rig(89.0),))  # 14.4% under
    assert summary(ev) == [("cleared", "rig:a-12:hashrate")]
    assert ev[0].alert.message == "a-12 at 89.0 TH/s, 14% under nominal 104"
    assert d.step(10, (rig(84.0),)) == []


def test_hashrate_hysteresis_is_capped_at_half_a_small_threshold(clock: FakeClock) -> None:
    d = Driver(clock, AlertRules(rig_hashrate_below_nominal_pct=4))
    assert summary(d.step(0, (ok(hashrate_ths=95.0, nominal_ths=100.0),))) == [
        ("fired", "rig:a-01:hashrate")
    ]
    assert d.step(10, (ok(hashrate_ths=97.9, nominal_ths=100.0),)) == []  # 2.1% > 4 − 2
    ev = d.step(10, (ok(hashrate_ths=98.1, nominal_ths=100.0),))  # 1.9% under: clears
    assert summary(ev) == [("cleared", "rig:a-01:hashrate")]


def test_hashrate_without_a_nominal_is_unknown(clock: FakeClock) -> None:
    d = Driver(clock)
    assert d.step(0, (ok(hashrate_ths=1.0, nominal_ths=None),)) == []
    assert d.step(0, (ok(hashrate_ths=1.0, nominal_ths=0.0),)) == []
    ev = d.step(0, (ok(hashrate_ths=1.0, nominal_ths=100.0),))
    assert summary(ev) == [("fired", "rig:a-01:hashrate")]
    assert d.step(10, (ok(hashrate_ths=100.0, nominal_ths=None),)) == []  # unknown: stays
    assert "rig:a-01:hashrate" in d.engine.active
    ev = d.step(10, (ok(hashrate_ths=0.95, nominal_ths=0.9),))
    assert [e.alert.message for e in ev] == ["a-01 at 0.95 TH/s, 6% over nominal 0.9"]


# --------------------------------------------------------------------------- network


def test_drift_fires_once_either_way_and_clears_one_point_inside(clock: FakeClock) -> None:
    d = Driver(clock)
    assert d.step(0, network=NetworkCondition(epoch_drift_pct=10.0)) == []
    ev = d.step(10, network=NetworkCondition(epoch_drift_pct=16.2))
    assert summary(ev) == [("fired", "network:drift")]
    assert ev[0].alert.message == "blocks 16.2% slower than 600 s this epoch"
    assert ev[0].alert.subject == "network" and ev[0].alert.kind == "drift"
    for p in (9.5, 10.5, 9.01, 12.0):
        assert d.step(10, network=NetworkCondition(epoch_drift_pct=p)) == [], p
    ev = d.step(10, network=NetworkCondition(epoch_drift_pct=9.0))
    assert summary(ev) == [("cleared", "network:drift")]
    ev = d.step(10, network=NetworkCondition(epoch_drift_pct=-12.04))
    assert [e.alert.message for e in ev] == ["blocks 12.0% faster than 600 s this epoch"]
    assert d.step(10, network=NetworkCondition(epoch_drift_pct=-9.9)) == []
    assert summary(d.step(10, network=NetworkCondition(epoch_drift_pct=-8.0))) == [
        ("cleared", "network:drift")
    ]


def test_retarget_fires_once_within_the_window_and_clears_after_it(clock: FakeClock) -> None:
    d = Driver(clock)
    eta = clock.now + 24 * 3600 + 60

    def net(change: float | None = -13.9) -> NetworkCondition:
        return NetworkCondition(retarget_eta_unix=eta, retarget_change_pct=change)

    assert d.step(0, network=net()) == []  # 24h01m away
    ev = d.step(60, network=net())
    assert summary(ev) == [("fired", "network:retarget")]
    assert ev[0].alert.message == "retarget in 1d00h (−13.9% projected)"
    since = ev[0].alert.since
    for _ in range(10):
        assert d.step(600, network=net()) == []
    # the ETA slips back a little (slow blocks): within the hour of slack, still active
    eta += 2 * 3600
    assert d.step(60, network=net()) == []
    assert d.engine.active["network:retarget"].message == "retarget in 1d00h (−13.9% projected)"
    # it gets closer and is due; message without a projection when none is known
    eta = clock.now + 5 * 3600 + 12 * 60
    assert d.step(0, network=net()) == []
    assert d.engine.active["network:retarget"].message == "retarget in 5h12m (−13.9% projected)"
    eta = clock.now - 30
    assert d.step(0, network=net(None)) == []
    assert d.engine.active["network:retarget"].message == "retarget due now"
    # the retarget happened: the next one is two weeks away
    eta = clock.now + 14 * 86400
    ev = d.step(600, network=net(+1.2))
    assert summary(ev) == [("cleared", "network:retarget")]
    assert ev[0].alert.message == "retarget in 13d23h (+1.2% projected)"
    assert ev[0].alert.since == since


def test_retarget_clears_beyond_the_window_plus_slack(clock: FakeClock) -> None:
    d = Driver(clock, AlertRules(retarget_within_h=1))
    eta = clock.now + 3600
    assert summary(d.step(0, network=NetworkCondition(retarget_eta_unix=eta))) == [
        ("fired", "network:retarget")
    ]
    eta = clock.now + 5400  # 1.5 h: inside the slack (half of a 1 h window)
    assert d.step(0, network=NetworkCondition(retarget_eta_unix=eta)) == []
    eta = clock.now + 5401
    assert summary(d.step(0, network=NetworkCondition(retarget_eta_unix=eta))) == [
        ("cleared", "network:retarget")
    ]


# --------------------------------------------------------------------------- rules and state


def test_disabled_rules_never_fire(clock: FakeClock) -> None:
    terrible = ok(
        "a-01", margin_usd_day=-99.0, temp_max_c=140.0, hashrate_ths=1.0, nominal_ths=200.0
    )
    net = NetworkCondition(
        epoch_drift_pct=80.0, retarget_eta_unix=clock.now, retarget_change_pct=-40.0
    )
    for rules in (OFF, AlertRules(enabled=False)):
        d = Driver(clock, rules)
        for _ in range(100):
            assert d.step(60, (terrible, down("a-02")), net) == []
        assert d.engine.active == {} and list(d.engine.history) == []
    # each rule off alone: every other one still fires
    d = Driver(clock, AlertRules(rig_temp_above_c=None, drift_beyond_pct=None))
    ev = d.step(0, (terrible,), net)
    assert summary(ev) == [
        ("fired", "rig:a-01:margin"),
        ("fired", "rig:a-01:hashrate"),
        ("fired", "network:retarget"),
    ]


def test_same_conditions_never_repeat(clock: FakeClock) -> None:
    d = Driver(clock)
    rigs = (
        ok("a-01", margin_usd_day=-1.0, temp_max_c=90.0),
        ok("a-02", hashrate_ths=10.0, nominal_ths=100.0),
    )
    net = NetworkCondition(epoch_drift_pct=16.0, retarget_eta_unix=clock.now + 3600)
    assert len(d.step(0, rigs, net)) == 5
    for _ in range(500):
        assert d.step(5, rigs, net) == []
    assert len(d.engine.active) == 5 and len(d.engine.history) == 5


def test_a_rig_that_disappears_gets_its_alerts_cleared(clock: FakeClock) -> None:
    d = Driver(clock)
    keep = ok("a-02", temp_max_c=90.0)
    assert len(d.step(0, (ok("a-01", margin_usd_day=-1.0, temp_max_c=90.0), keep))) == 3
    ev = d.step(10, (keep,))
    assert summary(ev) == [("cleared", "rig:a-01:margin"), ("cleared", "rig:a-01:temp")]
    assert {e.alert.message for e in ev} == {"a-01 no longer on the site"}
    assert list(d.engine.active) == ["rig:a-02:temp"]
    # a rig that vanishes while down forgets its offline timer
    assert d.step(10, (keep, down("a-03"))) == []
    assert d.step(290, (keep, down("a-03"))) == []
    assert d.step(5, (keep,)) == []
    assert d.step(5, (keep, down("a-03"))) == []  # would be 310 s if the timer survived
    assert summary(d.step(300, (keep, down("a-03")))) == [("fired", "rig:a-03:offline")]
    assert summary(d.step(10, ())) == [
        ("cleared", "rig:a-02:temp"),
        ("cleared", "rig:a-03:offline"),
    ]


def test_unknown_values_neither_fire_nor_clear(clock: FakeClock) -> None:
    d = Driver(clock)
    bad = ok("a-01", margin_usd_day=-1.0, temp_max_c=90.0, hashrate_ths=10.0, nominal_ths=100.0)
    net = NetworkCondition(16.0, clock.now + 3600, -10.0)
    assert len(d.step(0, (bad,), net)) == 5
    unknown = ok(
        "a-01", margin_usd_day=None, temp_max_c=float("nan"), hashrate_ths=None, nominal_ths=100.0
    )
    for _ in range(10):
        assert d.step(10, (unknown,), None) == []
        assert d.step(10, (unknown,), NetworkCondition()) == []
    assert len(d.engine.active) == 5
    # and an unknown value never fires
    d = Driver(clock)
    assert d.step(0, (ok("a-09"),), NetworkCondition()) == []
    assert d.engine.active == {}


def test_a_rig_called_network_does_not_touch_network_alerts(clock: FakeClock) -> None:
    d = Driver(clock)
    ev = d.step(0, (ok("network", temp_max_c=90.0),), NetworkCondition(epoch_drift_pct=20.0))
    assert summary(ev) == [("fired", "rig:network:temp"), ("fired", "network:drift")]
    ev = d.step(10, (), None)
    assert summary(ev) == [("cleared", "rig:network:temp")]
    assert list(d.engine.active) == ["network:drift"]


def test_history_is_bounded(clock: FakeClock) -> None:
    d = Driver(clock, history_size=4)
    for i in range(10):
        d.step(10, (ok("a-01", temp_max_c=90.0 if i % 2 == 0 else 70.0),))
    hist = list(d.engine.history)
    assert len(hist) == 4
    assert [e.kind for e in hist] == ["fired", "cleared", "fired", "cleared"]
    assert hist[-1].time == clock.now
    assert AlertEngine().history.maxlen == 500
    with pytest.raises(ValueError):
        AlertEngine(history_size=0)


def test_active_is_read_only(clock: FakeClock) -> None:
    d = Driver(clock)
    d.step(0, (ok(temp_max_c=90.0),))
    with pytest.raises(TypeError):
        d.engine.active["x"] = d.engine.active["rig:a-01:temp"]  # type: ignore[index]


# --------------------------------------------------------------------------- formatting


def test_log_line_format() -> None:
    a = Alert(
        "rig:a-01:offline",
        "a-01",
        "offline",
        "critical",
        "a-01 offline for 5m12s: connection refused",
        1_768_999_688.0,
    )
    line = format_log_line(AlertEvent("fired", a, 1_769_000_000.0))
    assert line == (
        "2026-01-21T12:53:20Z\tFIRED\tcritical\trig:a-01:offline\t"
        "a-01 offline for 5m12s: connection refused"
    )
    cleared = AlertEvent(
        "cleared",
        Alert(
            "network:drift",
            "network",
            "drift",
            "warning",
            "blocks 9.0% slower than 600 s this epoch",
            0.0,
        ),
        1_769_000_000.9,
    )
    assert format_log_line(cleared).split("\t")[:4] == [
        "2026-01-21T12:53:20Z",
        "CLEARED",
        "warning",
        "network:drift",
    ]


def test_log_line_stays_one_line_with_hostile_rig_text(clock: FakeClock) -> None:
    d = Driver(clock, AlertRules(rig_offline_s=0))
    ev = d.step(0, (RigCondition("a\t01\n", "error", "bad\nreply\x1b[2J\tx"),))
    line = format_log_line(ev[0])
    assert "\n" not in line and "\x1b" not in line
    assert len(line.split("\t")) == 5
    assert ev[0].alert.key == "rig:a\t01\n:offline"  # the key is the rig's id, as given
    assert "\x1b" not in ev[0].alert.message and "\n" not in ev[0].alert.message


def test_durations() -> None:
    """One formatter for every duration on screen and in alerts (tui.fmt)."""
    assert fmt_duration(86_400 * 3 + 8 * 3600 + 35 * 60, short=True) == "3d08h"
    assert [fmt_duration(s) for s in (-5, 0, 42, 312, 3600, 18_720, 86_400 * 3 + 8 * 3600)] == [
        "0s",
        "0s",
        "42s",
        "5m12s",
        "1h00m",
        "5h12m",
        "3d 8h00m",
    ]


def test_rules_defaults() -> None:
    r = AlertRules()
    assert (r.enabled, r.rig_offline_s, r.rig_margin_below_usd_day, r.rig_temp_above_c) == (
        True,
        300,
        0.0,
        85,
    )
    assert (r.rig_hashrate_below_nominal_pct, r.drift_beyond_pct, r.retarget_within_h) == (
        20,
        10,
        24,
    )
    assert r.bell is False and r.log_file is None
    assert AlertRules(log_file=Path("/x")).log_file == Path("/x")


def test_hold_time_stops_a_noisy_margin_from_flapping(clock: Any) -> None:
    rules = _Rules(hold_s=60.0)
    engine = AlertEngine(rules)

    def rig(margin: float) -> RigCondition:
        return RigCondition("a-16", "ok", margin_usd_day=margin)

    t = 1_000.0
    events = []
    # Noise around zero every 10 s: never 60 s on one side, so nothing fires.
    for i in range(30):
        events += engine.evaluate(t + 10 * i, rigs=[rig(-0.1 if i % 3 else 0.2)])
    events += engine.evaluate(t + 300, rigs=[rig(0.2)])
    assert events == [] and not engine.active
    # Below zero for good: fires once, 60 s after it started, with that start as `since`.
    start = t + 400
    fired = []
    for i in range(12):
        fired += engine.evaluate(start + 10 * i, rigs=[rig(-0.5)])
    assert [e.kind for e in fired] == ["fired"]
    assert fired[0].time == start + 60 and fired[0].alert.since == start
    # Back above the threshold: clears once after 60 s, not on the first good reading.
    back = start + 200
    cleared = []
    for i in range(12):
        cleared += engine.evaluate(back + 10 * i, rigs=[rig(0.5)])
    assert [e.kind for e in cleared] == ["cleared"] and cleared[0].time == back + 60


def test_hold_time_from_config() -> None:
    from pathlib import Path

    from tui.config import ConfigError, parse_config

    base = '[site]\nelectricity_usd_kwh = 0.05\n[alerts]\n'
    assert parse_config(base + "hold_s = 0\n", path=Path("c.toml")).alerts.hold_s == 0.0
    assert parse_config(base, path=Path("c.toml")).alerts.hold_s == 60.0
    import pytest

    with pytest.raises(ConfigError, match="alerts.hold_s: expected a number 0–3600"):
        parse_config(base + 'hold_s = "1m"\n', path=Path("c.toml"))


def test_evaluation_in_steps_yields_between_chunks_and_gives_the_same_events() -> None:
    rules = AlertRules(hold_s=0.0)
    rigs = [down(f"r-{i}") if i % 3 == 0 else ok(f"r-{i}", margin_usd_day=-1.0)
            for i in range(10)]
    whole = AlertEngine(rules)
    stepped = AlertEngine(rules)
    for t in (0.0, 1000.0):
        want = whole.evaluate(t, rigs=rigs)
        steps = stepped.evaluate_steps(t, rigs=rigs, chunk=3)
        yields = 0
        while True:
            try:
                next(steps)
                yields += 1
            except StopIteration as done:
                got = done.value
                break
        assert yields == 3  # 10 rigs in chunks of 3: a hand-back after rigs 3, 6 and 9
        assert summary(got) == summary(want)
    assert summary(got) and stepped.active.keys() == whole.active.keys()


def test_a_rule_turned_off_clears_its_alerts_and_timers(clock: FakeClock) -> None:
    """The daemon's reload swaps the rules under a running engine: an alert whose rule is
    now off is cleared (once; it would never be checked again), the others keep firing, a
    condition that had started towards a rule now off is forgotten, and turning the rule
    back on starts from scratch."""
    from dataclasses import replace

    d = Driver(clock, _Rules(hold_s=60.0))
    hot = ok("a-01", margin_usd_day=-1.0, temp_max_c=90.0)
    net = NetworkCondition(epoch_drift_pct=16.0)
    d.step(0, (hot, ok("a-02", temp_max_c=95.0)), net)
    assert summary(d.step(60, (hot, ok("a-02", temp_max_c=95.0)), net)) == [
        ("fired", "rig:a-01:margin"), ("fired", "rig:a-01:temp"), ("fired", "rig:a-02:temp"),
        ("fired", "network:drift")]
    d.step(10, (hot, ok("a-03", temp_max_c=99.0)), net)  # a-03 starts arming; a-02 left
    assert "rig:a-03:temp" in d.engine._arming
    d.engine.rules = replace(d.engine.rules, rig_temp_above_c=None, drift_beyond_pct=None)
    ev = d.step(10, (hot, ok("a-03", temp_max_c=99.0)), net)
    assert summary(ev) == [("cleared", "rig:a-01:temp"), ("cleared", "network:drift")]
    assert [e.alert.message for e in ev] == ["a-01: temp alert turned off",
                                             "network: drift alert turned off"]
    assert list(d.engine.active) == ["rig:a-01:margin"] and d.engine._arming == {}
    for _ in range(10):
        assert d.step(60, (hot, ok("a-03", temp_max_c=99.0)), net) == []
    # back on: a condition must hold the whole hold time again
    d.engine.rules = replace(d.engine.rules, rig_temp_above_c=85.0)
    assert d.step(10, (hot, ok("a-03", temp_max_c=99.0)), net) == []
    assert d.step(30, (hot, ok("a-03", temp_max_c=99.0)), net) == []
    assert summary(d.step(30, (hot, ok("a-03", temp_max_c=99.0)), net)) == [
        ("fired", "rig:a-01:temp"), ("fired", "rig:a-03:temp")]
    # every alert off: all clear at the next evaluation, nothing more after
    d.engine.rules = replace(d.engine.rules, enabled=False)
    assert sorted(summary(d.step(10, (), net))) == [
        ("cleared", "rig:a-01:margin"), ("cleared", "rig:a-01:temp"),
        ("cleared", "rig:a-03:temp")]
    assert d.engine.active == {} and d.step(10, (), net) == []


def test_a_rig_that_leaves_mid_hold_starts_again_when_it_comes_back(clock: FakeClock) -> None:
    d = Driver(clock, _Rules(hold_s=60.0))
    hot = ok("b", temp_max_c=90.0)
    assert d.step(0, (hot,)) == []
    assert d.step(10, ()) == []  # gone before the hold time was up
    assert d.step(86_400, (hot,)) == []  # a day later: the hold time starts now
    ev = d.step(60, (hot,))
    assert summary(ev) == [("fired", "rig:b:temp")] and ev[0].alert.since == clock.now - 60


def test_an_offline_or_stuck_rule_turned_back_on_counts_from_then(clock: FakeClock) -> None:
    from dataclasses import replace

    d = Driver(clock, AlertRules(rig_offline_s=300.0, rig_stuck_s=300.0))
    stuck = RigCondition("b", "stuck", "hashing 0")
    assert d.step(0, (down("a"), stuck)) == []
    d.engine.rules = replace(d.engine.rules, rig_offline_s=None, rig_stuck_s=None)
    assert d.step(100, (down("a"), stuck)) == []
    d.engine.rules = replace(d.engine.rules, rig_offline_s=300.0, rig_stuck_s=300.0)
    assert d.step(900, (down("a"), stuck)) == []  # down for 1,000 s, but watched from now
    ev = d.step(300, (down("a"), stuck))
    assert sorted(summary(ev)) == [("fired", "rig:a:offline"), ("fired", "rig:b:stuck")]
    assert {e.alert.since for e in ev} == {clock.now - 300}
