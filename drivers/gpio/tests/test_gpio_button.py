"""Single, double and long presses from a button's edges (timestamps in ns as the kernel gives them)."""

from __future__ import annotations

import asyncio

from hub_gpio.button import PressDetector

MS = 1_000_000


async def presses(edges: list[tuple[bool, int, float]], double: float = 0.05, long: float = 0.1) -> list[str]:
    """Feed (pressed, timestamp_ns, then wait seconds) edges; the presses seen once everything settled."""
    seen: list[str] = []
    detector = PressDetector(seen.append, double, long)
    for pressed, ts, wait in edges:
        detector.edge(pressed, ts)
        await asyncio.sleep(wait)
    await asyncio.sleep(double + long)
    return seen


async def test_a_tap_is_a_single_press_once_the_double_window_passed():
    assert await presses([(True, 0, 0.01), (False, 20 * MS, 0)]) == ["single"]


async def test_two_taps_are_one_double_press():
    assert await presses([(True, 0, 0), (False, 20 * MS, 0.01), (True, 40 * MS, 0), (False, 60 * MS, 0)]) == ["double"]


async def test_held_is_a_long_press_while_held_and_its_release_is_nothing():
    assert await presses([(True, 0, 0.15), (False, 150 * MS, 0)]) == ["long"]


async def test_a_long_hold_read_late_is_still_long_by_the_timestamps():
    # The loop was busy: both edges arrive at once, the hold lasted 300 ms by the kernel's clock.
    assert await presses([(True, 0, 0), (False, 300 * MS, 0)]) == ["long"]


async def test_a_release_without_its_press_is_ignored():
    assert await presses([(False, 10 * MS, 0)]) == []
