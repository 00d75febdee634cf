"""``within``: ``asyncio.wait_for`` without its lost cancellations.

Why: on Python 3.11, ``asyncio.wait_for`` returns the awaited result (or raises its exception) when
the task is cancelled in the same loop iteration as the awaited operation finishes, and the
cancellation is lost. A node's dial loop met exactly that at SIGTERM: the connection attempt to a
peer that was down failed with ``OSError`` as the stop cancelled the loop, the loop caught the
``OSError``, dialled again, and the node never exited (about one stop in a hundred with a few
down peers). ``asyncio.timeout`` counts cancellations (``Task.uncancel``) and never loses one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """Await ``awaitable`` for at most ``seconds`` (``TimeoutError`` after); a cancellation of the
    caller always propagates, whatever the awaited operation did meanwhile."""
    async with asyncio.timeout(seconds):
        return await awaitable


__all__ = ["within"]
