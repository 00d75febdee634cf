"""Fixtures of the calendar plugin's tests; helpers are in calendar_testing.py."""

from __future__ import annotations

import pytest

from calendar_testing import START, CalendarHub
from hub.testing import FakeScheduler


@pytest.fixture
def clock():
    return FakeScheduler(START)


@pytest.fixture
async def ch(tmp_path, clock):
    helper = CalendarHub(tmp_path, clock)
    yield helper
    await helper.stop()
