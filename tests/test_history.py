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


def _thinned_reference(times: list[float], capacity: int) -> list[float]:
    """The points a history of ``capacity`` keeps, computed the plain way (new lists)."""
    kept: list[float] = []
    for t in times:
        if len(kept) >= capacity:
            half = len(kept) // 2
            kept = kept[:half:2] + kept[half:]
        kept.append(t)
    return kept


@pytest.mark.parametrize("capacity", [4, 5, 7, 100, 720])
def test_full_arrays_keep_their_buffers_and_the_same_points(capacity: int) -> None:
    """Once full, thinning compacts in place: no array is reallocated for the rest of the
    session (a long run would otherwise fragment the C heap), and the points kept are the
    same as thinning into new arrays would keep."""
    h = RigHistory(capacity=capacity)
    times = [i * 5.0 for i in range(capacity * 7 + 3)]
    buffers: tuple[tuple[int, int], ...] | None = None
    for i, t in enumerate(times):
        h.add(sample(t, ths=float(i), margin=None if i % 3 else -float(i)))
        if i + 1 == capacity:
            buffers = (h._times.buffer_info(),
                       *(a.buffer_info() for a in h._values.values()))
    assert buffers is not None
    assert (h._times.buffer_info(), *(a.buffer_info() for a in h._values.values())) == buffers
    want = _thinned_reference(times, capacity)
    assert len(h) == len(want) and h.count == len(times)
    assert h.span_s == want[-1] - want[0]
    assert h.series("hashrate_ths") == [t / 5.0 for t in want]
    assert h.series("margin_usd_day") == [-t / 5.0 for t in want if (t / 5.0) % 3 == 0]
