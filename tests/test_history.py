"""Per-rig history: bounded, covers the whole session, unknown values skipped."""

from __future__ import annotations

import gc

import pytest

from tui.history import RigHistory, Sample


def sample(t: float, ths: float | None = 100.0, margin: float | None = 1.5) -> Sample:
    return Sample(time=t, hashrate_ths=ths, power_w=3000.0, temp_c=None, fan_rpm=4000.0,
                  margin_usd_day=margin)


def test_series_skip_unknown_values_and_same_time_replaces() -> None:
    h = RigHistory()
    h.add(sample(0.0, ths=100.0))
    h.add(sample(10.0, ths=None))
    h.add(sample(20.0, ths=102.5))
    h.add(sample(20.0, ths=103.0))  # the same reading again, corrected
    assert h.series("hashrate_ths") == [100.0, 103.0]
    assert h.series("temp_c") == []
    assert h.series("margin_usd_day") == pytest.approx([1.5, 1.5, 1.5])
    assert len(h) == 3 and h.count == 3 and h.span_s == 20.0


def test_bounded_and_the_whole_session_stays_covered() -> None:
    h = RigHistory(capacity=100)
    for i in range(10_000):  # a day at 10 s
        h.add(sample(i * 10.0, ths=float(i)))
    assert len(h) <= 100 and h.count == 10_000
    values = h.series("hashrate_ths")
    assert values[0] == 0.0 and values[-1] == 9999.0  # first and latest kept
    assert h.span_s == 99_990.0
    assert values == sorted(values)  # still in time order
    # The most recent readings are at full resolution.
    assert values[-10:] == [float(i) for i in range(9990, 10_000)]


def test_history_is_a_handful_of_objects_whatever_its_length() -> None:
    """Nothing per sample for the garbage collector to walk (thousands of rigs x hours)."""
    h = RigHistory()
    h.add(sample(0.0))
    gc.collect()
    before = len(gc.get_objects())
    for i in range(1, 2000):
        h.add(sample(float(i)))
    gc.collect()
    assert len(gc.get_objects()) - before < 20
