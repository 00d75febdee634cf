"""Helpers for testing the hub, rules and plugins: a clock that tests move by hand.

A rule with ``for: "00:10:00"`` must be testable in milliseconds. :class:`FakeScheduler` keeps its
own time; ``await clock.advance(600)`` fires every timer that falls due on the way, in order, with
the clock set to each timer's time, and lets the tasks they wake run before moving on.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from hub.core.scheduler import Scheduler, Timer


class FakeScheduler(Scheduler):
    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01 00:00 UTC
        self.t = start
        super().__init__(self._now)
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def _now(self) -> float:
        return self.t

    def _aim(self, timer: Timer) -> None:
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))

    async def settle(self, rounds: int = 20) -> None:
        """Let woken tasks run until they wait again (on a timer, or on each other)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        target = self.t + seconds
        await self.settle()
        while self._heap and self._heap[0][0] <= target:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            self.t = max(self.t, when)
            self._fire(timer)
            await self.settle()
        self.t = target
        await self.settle()

    def pending(self) -> list[float]:
        return sorted(when for when, _, timer in self._heap if not timer.cancelled)
