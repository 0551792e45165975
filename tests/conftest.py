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


@pytest.fixture(autouse=True)
def _restore_logging():  # type: ignore[no-untyped-def]
    """``setup_logging`` (called by the CLI in-process) must not leak into other tests."""
    import logging

    yield
    for name in ("minertop", "asyncio", "aiohttp"):
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if not type(h).__name__.startswith("LogCapture"):
                lg.removeHandler(h)
        lg.propagate = True
        lg.setLevel(logging.NOTSET)
