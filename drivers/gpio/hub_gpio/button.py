"""A push button's edges into single, double and long presses.

Durations come from the edges' kernel timestamps (nanoseconds), so a busy event loop that reads two
edges late does not turn a short tap into a long press. Only the decisions that wait for something
not to happen (no second press came, the button is still held) need a timer on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class PressDetector:
    """Feed it the button's logical level at each edge; it calls ``emit("single"|"double"|"long")``.

    A long press is reported while the button is still held (a user holding it waits for the light
    to react), and its release is then ignored. A double press is reported at the second release; a
    single one once the double-press window has passed without a second press."""

    def __init__(self, emit: Callable[[str], None], double: float, long: float,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.emit = emit
        self.double = double
        self.long = long
        self.loop = loop or asyncio.get_running_loop()
        self.down_ns: int | None = None
        self.clicks = 0
        self.held_long = False
        self._long_timer: asyncio.TimerHandle | None = None
        self._window: asyncio.TimerHandle | None = None

    def edge(self, pressed: bool, timestamp_ns: int) -> None:
        if pressed:
            if self.down_ns is not None:
                return  # a repeated press edge (an event lost in between): keep the first one
            self.down_ns = timestamp_ns
            self.held_long = False
            if self._window is not None:
                self._window.cancel()
                self._window = None
            self._long_timer = self.loop.call_later(self.long, self._held)
            return
        if self.down_ns is None:
            return  # a release without its press (the hub started while it was held)
        held = (timestamp_ns - self.down_ns) / 1e9
        self.down_ns = None
        if self._long_timer is not None:
            self._long_timer.cancel()
            self._long_timer = None
        if self.held_long:
            self.held_long = False
            self.clicks = 0
            return
        if held >= self.long:  # the timer had not run yet (a stalled loop): the timestamps decide
            self.clicks = 0
            self.emit("long")
            return
        self.clicks += 1
        if self.clicks >= 2:
            self.clicks = 0
            self.emit("double")
        else:
            self._window = self.loop.call_later(self.double, self._window_passed)

    def _held(self) -> None:
        self._long_timer = None
        if self.down_ns is not None:
            self.held_long = True
            self.clicks = 0
            self.emit("long")

    def _window_passed(self) -> None:
        self._window = None
        if self.clicks == 1:
            self.clicks = 0
            self.emit("single")

    def cancel(self) -> None:
        for timer in (self._long_timer, self._window):
            if timer is not None:
                timer.cancel()
        self._long_timer = self._window = None
        self.down_ns, self.clicks, self.held_long = None, 0, False
