"""Keep a driver's long-running task alive.

A driver that crashes (a serial adapter unplugged mid-read, a bug on an odd frame) is restarted with
an exponential back-off, as systemd or Erlang supervisors would, so a flapping device does not spin
the CPU and a one-off fault heals by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

BACKOFF_START = 1.0
STABLE_AFTER = 60.0  # seconds of good running that reset the back-off


async def supervise(
    run: Callable[[], Awaitable[None]],
    *,
    on_crash: Callable[[BaseException, float], None],
    on_start: Callable[[int], None],
    backoff_max: float = 60.0,
    backoff_start: float = BACKOFF_START,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run ``run`` until it returns normally or the task is cancelled.

    ``on_start(attempt)`` is called before each start (0 for the first); ``on_crash(exc, delay)``
    after each crash, with the delay before the next start.
    """
    delay = backoff_start
    attempt = 0
    while True:
        on_start(attempt)
        started = time.monotonic()
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the point is to contain it
            if time.monotonic() - started >= STABLE_AFTER:
                delay = backoff_start
            on_crash(exc, delay)
        await sleep(delay)
        delay = min(delay * 2, backoff_max)
        attempt += 1
