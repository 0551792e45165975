"""The attached dashboard's engine: a rig's daemon history and a hostile reply."""

from __future__ import annotations

import pytest

from tui.alerts import Alert, AlertEvent
from tui.engine import view_from_wire
from tui.remote import history_from_points
from tui.wire import WireError

T0 = 1_769_000_000.0


def test_a_rig_that_died_at_3am_shows_when_and_how() -> None:
    pts = [{"t": T0 + i * 10, "status": s, "hashrate_ths": 100.0 if s == "ok" else None,
            "power_w": 3000.0, "temp_max_c": 70.0, "margin_usd_day": 1.0}
           for i, s in enumerate(["ok", "ok", "offline", "offline", "ok"])]
    alert = Alert("rig:a-07:offline", "a-07", "offline", "critical",
                  "a-07 offline for 5m: connection refused", T0 + 20)
    hist = history_from_points(pts, [AlertEvent("fired", alert, T0 + 25)])
    assert len(hist) == 3 and hist.series("hashrate_ths") == [100.0, 100.0, 100.0]
    assert list(hist.errors) == [
        (T0 + 20, "ok → offline"),
        (T0 + 25, "alert fired: a-07 offline for 5m: connection refused"),
        (T0 + 40, "offline → ok"),
    ]


@pytest.mark.parametrize("doc", [
    [], {"wire": 99}, {"wire": 1, "chain": {"__t": "os.system"}},
    {"wire": 1, "seq": 1, "chain": None, "price": None, "site": {"__t": "RigRow", "x": 1}},
])
def test_a_reply_that_is_not_a_view_is_a_clear_error(doc: object) -> None:
    with pytest.raises(WireError):
        view_from_wire(doc, T0)


def _view_doc() -> dict:
    from types import MappingProxyType

    from tui.engine import EngineView
    from tui.squeeze import HashpricePoint

    day = int(T0 // 86400) * 86400
    return EngineView(seq=1, time=T0, source_label="x", paused=False, chain=None, price=None,
                      dashboard=None, site=None, cycle=False, sources=MappingProxyType({}),
                      alerts_active=(), alert_events=(), errors=MappingProxyType({}),
                      has_site=False, hashprice_recorded=(
                          HashpricePoint(day - 86400, 5e-4, 36.0),
                          HashpricePoint(day, 4e-4, None))).to_wire()


def test_the_recorded_hashprice_crosses_the_wire_and_an_older_daemon_sends_none() -> None:
    doc = _view_doc()
    day = int(T0 // 86400) * 86400
    got = view_from_wire(doc, T0).hashprice_recorded
    assert [(p.time, p.btc_per_ph_day, p.usd_per_ph_day) for p in got] == [
        (day - 86400, 5e-4, 36.0), (day, 4e-4, None)]
    del doc["hashprice_recorded"]  # a daemon from before the field
    assert view_from_wire(doc, T0).hashprice_recorded == ()


@pytest.mark.parametrize("bad", [
    [1.5, 5e-4, 36.0], [int(T0), 5e-4, 36.0], [86400, None, 36.0], [86400, "x", 36.0],
    [86400, 5e-4, float("nan")], [86400, float("inf"), None], [86400, 5e-4], 7, [True, 1, 1],
])
def test_a_malformed_recorded_day_is_left_out_and_the_view_kept(bad: object, caplog) -> None:
    """One bad day (a non-finite figure, not a day start, a wrong shape) is dropped with a
    warning; the other days and the view stay.  Not a list at all: a malformed view."""
    doc = _view_doc()
    good = doc["hashprice_recorded"]
    doc["hashprice_recorded"] = [good[0], bad, good[1]]
    view = view_from_wire(doc, T0)
    assert [p.time for p in view.hashprice_recorded] == [good[0][0], good[1][0]]
    assert "1 malformed day(s) left out" in caplog.text
    doc["hashprice_recorded"] = {"a": 1}
    with pytest.raises(WireError, match="hashprice_recorded: not a list"):
        view_from_wire(doc, T0)
