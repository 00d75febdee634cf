"""Timers in wall-clock time, behind one seam so tests can drive time.

Rules think in wall-clock time ("at 07:00", "for 10 minutes", a delay that must survive a restart),
so timers are set for an absolute unix time. The loop's own timers run on a monotonic clock, which
does not follow the wall clock when NTP corrects it; long waits are therefore cut into steps of at
most a minute and re-aimed at each step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

MAX_STEP = 60.0


class Timer:
    __slots__ = ("when", "callback", "args", "cancelled", "_handle")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple) -> None:
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False
        self._handle: Any = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class Scheduler:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = Timer(when, callback, args)
        self._aim(timer)
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(self.now() + delay, callback, *args)

    def _aim(self, timer: Timer) -> None:
        delay = timer.when - self.now()
        loop = asyncio.get_running_loop()
        if delay <= 0:
            timer._handle = loop.call_soon(self._fire, timer)
        else:
            timer._handle = loop.call_later(min(delay, MAX_STEP), self._check, timer)

    def _check(self, timer: Timer) -> None:
        if not timer.cancelled:
            self._aim(timer)

    @staticmethod
    def _fire(timer: Timer) -> None:
        if not timer.cancelled:
            timer._handle = None
            timer.cancelled = True  # fired: a late cancel() is a no-op
            timer.callback(*timer.args)

    async def sleep_until(self, when: float) -> None:
        future = asyncio.get_running_loop().create_future()
        timer = self.call_at(when, lambda: future.done() or future.set_result(None))
        try:
            await future
        finally:
            timer.cancel()

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + seconds)
