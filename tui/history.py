"""Per-rig history over the session (pure, bounded memory)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: Samples kept per rig: 12 h at a 10-s interval.
MAX_SAMPLES = 4320
MAX_ERRORS = 50


@dataclass(frozen=True, slots=True)
class Sample:
    time: float
    hashrate_ths: float | None
    power_w: float | None
    temp_c: float | None
    fan_rpm: float | None
    margin_usd_day: float | None


@dataclass
class RigHistory:
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    errors: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=MAX_ERRORS))

    def add(self, sample: Sample) -> None:
        if self.samples and self.samples[-1].time == sample.time:
            self.samples[-1] = sample
        else:
            self.samples.append(sample)

    def error(self, when: float, message: str) -> None:
        if self.errors and self.errors[-1][1] == message:
            return  # the same error again: keep the first time it happened
        self.errors.append((when, message))

    def series(self, attr: str) -> list[float]:
        return [v for s in self.samples if (v := getattr(s, attr)) is not None]
