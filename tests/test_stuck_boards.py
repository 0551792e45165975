"""Rigs that answer but do not mine (status ``stuck``) and hashboards that are down: the
fleet's rules, the site's numbers, the alerts and ``--once`` output (no I/O, no Textual)."""

from __future__ import annotations

import pytest

from tests.conftest import FakeClock
from tui.alerts import AlertEngine, AlertRules, RigCondition
from tui.catalog import Catalog
from tui.config import RigConfig, SiteConfig
from tui.economics import hashprice
from tui.model import Hashboard, RigReading
from tui.site import RigInput, compute_site, site_json, site_text
from tui.sources.rigs import RigFleet

T0 = 1_769_000_000.0


def reading(t: float, *, live: float | None = 100.0, avg: float | None = 100.0,
            accepted: int | None = None, temps: tuple[float, ...] = (65.0,),
            uptime: int | None = None, boards: tuple[Hashboard, ...] = (),
            power: float | None = None, rig: str = "a") -> RigReading:
    return RigReading(rig, "10.0.0.1", 4028, t, True, model="Antminer S19j Pro",
                      hashrate_ths=live, hashrate_avg_ths=avg, accepted=accepted,
                      temps_c=temps, uptime_s=uptime, boards=boards, power_w=power,
                      protocol="cgminer")


# --------------------------------------------------------------------------- the fleet's rules


def test_live_hashrate_zero_with_an_average_is_stuck_at_once() -> None:
    fleet = RigFleet(interval=10)
    fleet.record(reading(T0, live=0.0, avg=87.25))
    assert fleet.status("a", T0 + 1) == ("stuck", "5 s hashrate 0, average still 87.2 TH/s")
    # it answers: its last reading is still the one to show
    assert fleet.current("a", T0 + 1) is not None
    fleet.record(reading(T0 + 10, live=0.0, avg=0.0))
    assert fleet.status("a", T0 + 11) == ("stuck", "not hashing (0 TH/s)")
    fleet.record(reading(T0 + 20, live=95.0, avg=80.0))
    assert fleet.status("a", T0 + 21) == ("ok", None)


def test_accepted_counter_frozen_for_stuck_after_makes_it_stuck() -> None:
    fleet = RigFleet(interval=10, stuck_after=600)
    t = T0
    for i in range(61):  # the counter moves every poll for 10 minutes
        fleet.record(reading(t, accepted=1000 + i, uptime=i * 10))
        t += 10
    assert fleet.status("a", t)[0] == "ok"
    frozen_at = t - 10
    # then it stops moving; hashrate figures still look healthy (a stale average)
    for i in range(59):
        fleet.record(reading(t, accepted=1060, live=100.0 + (i % 3), uptime=610 + i * 10))
        assert fleet.status("a", t)[0] == "ok", i  # 10 .. 590 s without a share
        t += 10
    fleet.record(reading(t, accepted=1060, uptime=1300))
    assert t - frozen_at == 600
    assert fleet.status("a", t) == ("stuck", "no accepted share for 10 min")
    # one share and it is mining again
    fleet.record(reading(t + 10, accepted=1061, uptime=1310))
    assert fleet.status("a", t + 10) == ("ok", None)


def test_a_counter_that_goes_back_after_a_reboot_counts_as_moving() -> None:
    fleet = RigFleet(interval=10, stuck_after=60)
    fleet.record(reading(T0, accepted=5000))
    fleet.record(reading(T0 + 50, accepted=3))  # rebooted: the counter restarted
    fleet.record(reading(T0 + 100, accepted=40))
    assert fleet.status("a", T0 + 100)[0] == "ok"


def test_identical_readings_for_stuck_after_make_it_stuck() -> None:
    fleet = RigFleet(interval=10, stuck_after=300)
    for i in range(31):  # the API repeats one frozen reply; no counter reported
        fleet.record(reading(T0 + 10 * i, live=101.5, avg=100.2, uptime=86400))
    fleet2 = RigFleet(interval=10, stuck_after=300)
    for i in range(30):
        fleet2.record(reading(T0 + 10 * i, live=101.5, avg=100.2, uptime=86400))
    assert fleet2.status("a", T0 + 290)[0] == "ok"  # 290 s: not yet
    assert fleet.status("a", T0 + 300) == ("stuck", "readings unchanged for 5 min")
    # any figure moving (here the uptime) is a live API
    fleet3 = RigFleet(interval=10, stuck_after=300)
    for i in range(40):
        fleet3.record(reading(T0 + 10 * i, live=101.5, avg=100.2, uptime=86400 + 10 * i))
    assert fleet3.status("a", T0 + 390)[0] == "ok"


def test_stuck_after_none_keeps_only_the_zero_hashrate_rule() -> None:
    fleet = RigFleet(interval=10, stuck_after=None)
    for i in range(200):
        fleet.record(reading(T0 + 10 * i, accepted=7, uptime=5))
    assert fleet.status("a", T0 + 1990)[0] == "ok"
    with pytest.raises(ValueError):
        RigFleet(interval=10, stuck_after=0)


def test_stale_wins_over_stuck_and_failures_keep_their_kind() -> None:
    fleet = RigFleet(interval=10)
    fleet.record(reading(T0, live=0.0, avg=50.0))
    assert fleet.status("a", T0 + 31)[0] == "stale"  # no fresh reading: we don't know
    fleet.record(RigReading("a", "10.0.0.1", 4028, T0 + 40, False, error="connection refused",
                            failure="refused"))
    assert fleet.status("a", T0 + 80) == ("offline", "connection refused")
    assert fleet.counts(T0 + 80)["offline"] == 1


# --------------------------------------------------------------------------- boards


def test_board_down_rules() -> None:
    assert not Hashboard(0, 34.0, 126, 126).down
    assert Hashboard(1, 0.0, 126, 126).down and Hashboard(1, 0.0).problem == "no hashrate"
    assert Hashboard(2, 20.0, 61, 126).problem == "chips 61/126"
    assert Hashboard(3, None, 0, None).problem == "no chips found"
    assert not Hashboard(4, 30.0, 126, None).down  # no expected count: can't say
    assert not Hashboard(5).down  # nothing reported


# --------------------------------------------------------------------------- the site


HP = hashprice(1.4e14, 312_500_000, 0, 71_000.0)


def site_of(*inputs: RigInput) -> tuple[SiteConfig, list[RigInput]]:
    cfgs = tuple(i.config for i in inputs if i.config is not None)
    return SiteConfig(name="t", electricity_usd_kwh=0.06, rigs=cfgs), list(inputs)


def test_a_stuck_rig_earns_nothing_and_still_costs_its_power() -> None:
    cfg_ok = RigConfig(name="ok", host="10.0.0.1", model="S19j Pro")
    cfg_st = RigConfig(name="st", host="10.0.0.2", model="S19j Pro")
    good = reading(T0, live=104.0, avg=104.0, rig="ok")
    stuck = reading(T0, live=0.0, avg=90.0, power=2900.0, rig="st")
    site, inputs = site_of(
        RigInput("ok", "10.0.0.1", 4028, cfg_ok, good, "ok", None, 1.0),
        RigInput("st", "10.0.0.2", 4028, cfg_st, stuck, "stuck", "5 s hashrate 0", 1.0))
    view = compute_site(inputs, site=site, catalog=Catalog.load(), hashprice=HP,
                        price_usd=71_000.0, retarget_change_pct=-10.0)
    ok_row, st_row = view.rows
    assert st_row.status == "stuck" and st_row.hashrate_ths == 0.0
    assert st_row.revenue == 0.0
    assert st_row.power_w == 2900.0 and not st_row.power_estimated
    cost = 2.9 * 24 * 0.06
    assert st_row.cost == pytest.approx(cost) and st_row.margin == pytest.approx(-cost)
    assert st_row.margin_after == pytest.approx(-cost)
    # the totals carry its cost and none of its revenue
    assert view.totals.revenue_usd_day == pytest.approx(ok_row.revenue)
    assert view.totals.cost_usd_day == pytest.approx(ok_row.cost + cost)
    assert view.totals.hashrate_ths == pytest.approx(104.0)
    assert view.counts == {"ok": 1, "stuck": 1}
    assert "1 stuck" in view.title()
    # --once --json and text
    _, rigs = site_json(view)
    assert rigs[1]["status"] == "stuck" and rigs[1]["revenue_usd_day"] == 0.0
    assert rigs[1]["host"] == "10.0.0.2" and rigs[1]["port"] == 4028
    assert rigs[1]["protocol"] == "cgminer"
    assert "stuck (5 s hashrate 0)" in site_text(view)


def test_stuck_without_a_power_reading_estimates_from_its_average() -> None:
    cfg = RigConfig(name="st", host="10.0.0.2", model="S19j Pro")
    stuck = reading(T0, live=0.0, avg=52.0)
    site, inputs = site_of(RigInput("st", "10.0.0.2", 4028, cfg, stuck, "stuck", "x", 1.0))
    row = compute_site(inputs, site=site, catalog=Catalog.load(), hashprice=HP,
                       price_usd=71_000.0, retarget_change_pct=None).rows[0]
    spec = Catalog.load().lookup("S19j Pro")
    assert spec is not None
    assert row.power_estimated and row.power_w == pytest.approx(spec.j_per_th * 52.0)


def test_a_board_down_shows_in_words_in_the_row_json_and_text() -> None:
    boards = (Hashboard(0, 34.9, 126, 126, 60, 71), Hashboard(1, 0.0, 0, 126, 40, None),
              Hashboard(2, 34.6, 126, 126, 61, 72))
    cfg = RigConfig(name="b", host="10.0.0.3", model="S19j Pro")
    rd = reading(T0, live=69.5, avg=69.8, boards=boards)
    site, inputs = site_of(RigInput("b", "10.0.0.3", 4028, cfg, rd, "ok", None, 1.0))
    view = compute_site(inputs, site=site, catalog=Catalog.load(), hashprice=HP,
                        price_usd=71_000.0, retarget_change_pct=None)
    row = view.rows[0]
    assert row.status == "ok" and row.boards_down == 1
    assert row.boards_text == "2/3 boards"
    assert row.board_problem == "board 1: no chips found"
    _, rigs = site_json(view)
    assert rigs[0]["boards_down"] == 1
    assert [b["down"] for b in rigs[0]["boards"]] == [False, True, False]  # type: ignore[index]
    assert "2/3 boards (board 1: no chips found)" in site_text(view)


def test_an_offline_rig_shows_no_boards() -> None:
    cfg = RigConfig(name="o", host="10.0.0.4")
    rd = reading(T0, boards=(Hashboard(0, 0.0),))
    site, inputs = site_of(RigInput("o", "10.0.0.4", 4028, cfg, rd, "offline", "refused", 99.0))
    row = compute_site(inputs, site=site, catalog=Catalog.load(), hashprice=HP,
                       price_usd=71_000.0, retarget_change_pct=None).rows[0]
    assert row.boards == () and row.boards_text is None


# --------------------------------------------------------------------------- alerts


def test_stuck_alert_fires_after_rig_stuck_s_once_and_clears_when_mining(
        clock: FakeClock) -> None:
    eng = AlertEngine(AlertRules(rig_stuck_s=120, hold_s=0.0, rig_margin_below_usd_day=None))
    stuck = RigCondition("a", "stuck", "5 s hashrate 0, average still 80 TH/s")
    assert eng.evaluate(clock.now, rigs=[stuck]) == []
    clock.advance(119)
    assert eng.evaluate(clock.now, rigs=[stuck]) == []
    clock.advance(1)
    ev = eng.evaluate(clock.now, rigs=[stuck])
    assert [(e.kind, e.alert.key, e.alert.severity) for e in ev] == [
        ("fired", "rig:a:stuck", "critical")]
    assert ev[0].alert.message == "a stuck for 2m00s: 5 s hashrate 0, average still 80 TH/s"
    clock.advance(60)
    assert eng.evaluate(clock.now, rigs=[stuck]) == []  # never twice
    clock.advance(10)
    ev = eng.evaluate(clock.now, rigs=[RigCondition("a", "ok")])
    assert [(e.kind, e.alert.message) for e in ev] == [("cleared", "a mining again after 3m10s")]


def test_stuck_then_offline_clears_stuck_and_times_offline(clock: FakeClock) -> None:
    eng = AlertEngine(AlertRules(rig_stuck_s=0, rig_offline_s=60, hold_s=0.0))
    eng.evaluate(clock.now, rigs=[RigCondition("a", "stuck", "x")])
    clock.advance(5)
    ev = eng.evaluate(clock.now, rigs=[RigCondition("a", "offline", "connection refused")])
    assert [(e.kind, e.alert.key) for e in ev] == [("cleared", "rig:a:stuck")]
    assert ev[0].alert.message == "a offline"


def test_board_alert_holds_then_fires_and_clears(clock: FakeClock) -> None:
    eng = AlertEngine(AlertRules(hold_s=60.0))
    bad = RigCondition("a", "ok", boards=3, boards_down=1,
                       board_problem="board 1: no hashrate")
    assert eng.evaluate(clock.now, rigs=[bad]) == []
    clock.advance(60)
    ev = eng.evaluate(clock.now, rigs=[bad])
    assert [(e.kind, e.alert.key, e.alert.severity) for e in ev] == [
        ("fired", "rig:a:board", "warning")]
    assert ev[0].alert.message == "a 2/3 boards: board 1: no hashrate"
    good = RigCondition("a", "ok", boards=3, boards_down=0)
    clock.advance(10)
    assert eng.evaluate(clock.now, rigs=[good]) == []  # must be gone hold_s to clear
    clock.advance(60)
    ev = eng.evaluate(clock.now, rigs=[good])
    assert [(e.kind, e.alert.message) for e in ev] == [("cleared", "a 3/3 boards")]
    # turned off: nothing
    off = AlertEngine(AlertRules(hold_s=0.0, rig_board_down=False))
    assert off.evaluate(clock.now, rigs=[bad]) == []
