"""Shared test set-up: a fixed time zone (local times are on screen) and a fake clock."""

from __future__ import annotations

import os
import time

import pytest

os.environ["TZ"] = "UTC"
time.tzset()


class FakeClock:
    """A clock tests move by hand: ``clock()`` returns the current fake unix time."""

    def __init__(self, start: float = 1_769_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
