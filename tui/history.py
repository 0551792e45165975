"""Per-rig history over the session (pure, bounded memory).

A site can have thousands of rigs polled every few seconds for days, so a rig's history is
kept as flat arrays of numbers (one object per series, not one per sample: nothing for the
garbage collector to walk) and never grows past ``capacity`` points.  When it is full, the
older half is thinned to every other point: recent readings stay at full resolution, older
ones get coarser, and the whole session stays covered.

Once a rig's arrays have grown to ``capacity`` they keep that size for the rest of the
session: thinning compacts them in place and later readings overwrite the freed tail, so a
long run does not reallocate (and fragment the C heap with) thousands of arrays every few
minutes.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass

#: Points kept per rig (about 20 KB): more than a sparkline ever shows.
MAX_SAMPLES = 720
MAX_ERRORS = 50
SERIES = ("hashrate_ths", "power_w", "temp_c", "fan_rpm", "margin_usd_day")


@dataclass(frozen=True, slots=True)
class Sample:
    time: float
    hashrate_ths: float | None
    power_w: float | None
    temp_c: float | None
    fan_rpm: float | None
    margin_usd_day: float | None


class RigHistory:
    """One rig's readings (:class:`Sample`) and recent errors over the session."""

    __slots__ = ("_n", "_times", "_values", "capacity", "count", "errors")

    def __init__(self, capacity: int = MAX_SAMPLES) -> None:
        if capacity < 4:
            raise ValueError("capacity must be at least 4")
        self.capacity = capacity
        self.count = 0  #: readings added over the session (thinning keeps fewer)
        self._n = 0  #: points kept: the first ``_n`` items of each array
        self._times = array("d")
        #: float32 is plenty for the values shown (7 significant digits); NaN = unknown
        self._values = {name: array("f") for name in SERIES}
        self.errors: deque[tuple[float, str]] = deque(maxlen=MAX_ERRORS)

    def add(self, sample: Sample) -> None:
        """Append a reading (one with the same time as the last replaces it)."""
        values = [math.nan if v is None else v for v in
                  (getattr(sample, name) for name in SERIES)]
        n = self._n
        if n and self._times[n - 1] == sample.time:
            for name, v in zip(SERIES, values, strict=True):
                self._values[name][n - 1] = v
            return
        if n >= self.capacity:
            self._thin()
            n = self._n
        self.count += 1
        if n < len(self._times):  # after a thinning: reuse the array's tail
            self._times[n] = sample.time
            for name, v in zip(SERIES, values, strict=True):
                self._values[name][n] = v
        else:
            self._times.append(sample.time)
            for name, v in zip(SERIES, values, strict=True):
                self._values[name].append(v)
        self._n = n + 1

    def _thin(self) -> None:
        """Every other point of the older half, then the newer half, moved to the front."""
        n = self._n
        half = n // 2
        kept = (half + 1) // 2 + (n - half)
        for series in (self._times, *self._values.values()):
            # the same length on both sides: the array is not resized
            series[:kept] = series[:half:2] + series[half:n]
        self._n = kept

    def __len__(self) -> int:
        return self._n

    @property
    def span_s(self) -> float:
        """Seconds from the first point kept to the last."""
        return self._times[self._n - 1] - self._times[0] if self._n > 1 else 0.0

    def series(self, attr: str) -> list[float]:
        """The known values of one series (``SERIES``), oldest first."""
        values = self._values[attr]
        return [v for v in values[: self._n] if not math.isnan(v)]

    def error(self, when: float, message: str) -> None:
        if self.errors and self.errors[-1][1] == message:
            return  # the same error again: keep the first time it happened
        self.errors.append((when, message))
