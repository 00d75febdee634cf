"""Keep a driver's long-running task alive, and tell a plugin's failure from the hub's own stop.

A driver that crashes (a serial adapter unplugged mid-read, a bug on an odd frame) is restarted with
an exponential back-off, as systemd or Erlang supervisors would, so a flapping device does not spin
the CPU and a one-off fault heals by itself.

Plugin code can raise anything, not only ``Exception``: ``sys.exit()`` (``SystemExit``), a stray
``KeyboardInterrupt``, ``GeneratorExit`` or ``CancelledError`` raised by hand. asyncio lets
``SystemExit`` and ``KeyboardInterrupt`` out of the event loop, so one of them reaching a task's top
ends the whole hub. Every place that calls plugin code therefore catches ``BaseException`` and asks
:func:`is_hub_cancellation` whether to let it through: the only thing that passes is a
``CancelledError`` while the current task really is being cancelled (by the hub's stop, a timeout),
which ``Task.cancelling()`` tells apart from one a plugin raised itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

BACKOFF_START = 1.0
STABLE_AFTER = 60.0  # seconds of good running that reset the back-off


def is_hub_cancellation(exc: BaseException) -> bool:
    """True when ``exc`` must propagate: the current task is being cancelled by its owner."""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop: a worker thread
        return False
    return task is not None and task.cancelling() > 0


async def supervise(
    run: Callable[[], Awaitable[None]],
    *,
    on_crash: Callable[[BaseException, float | None], None],
    on_start: Callable[[int], None],
    backoff_max: float = 60.0,
    backoff_start: float = BACKOFF_START,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run ``run`` until it returns normally or the task is cancelled.

    ``on_start(attempt)`` is called before each start (0 for the first); ``on_crash(exc, delay)``
    after each crash, with the delay before the next start. Any exception but the task's own
    cancellation is a crash, ``SystemExit`` included: a plugin must not be able to end the hub. One
    raised while the task is being cancelled (a ``finally`` that fails at shutdown) is reported with
    a delay of ``None`` and ends the task as cancelled: restarting then would keep the hub from
    stopping.
    """
    delay = backoff_start
    attempt = 0
    while True:
        on_start(attempt)
        started = time.monotonic()
        try:
            await run()
            return
        except BaseException as exc:  # noqa: BLE001 - the point is to contain it
            if is_hub_cancellation(exc):
                raise
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                on_crash(exc, None)
                raise asyncio.CancelledError from exc
            if time.monotonic() - started >= STABLE_AFTER:
                delay = backoff_start
            on_crash(exc, delay)
        await sleep(delay)
        delay = min(delay * 2, backoff_max)
        attempt += 1


def exits_contained_task_factory(loop: asyncio.AbstractEventLoop, coro, **kwargs) -> asyncio.Task:
    """A task factory for the hub's loop. Hooks are guarded where they are called, but a plugin can
    start tasks of its own (``asyncio.create_task(poll())``), and a ``sys.exit()`` at the top of one
    of those leaves the event loop and ends the hub. Every task's coroutine is wrapped so that such an
    exit becomes an ordinary exception of that task, logged with the task's function and file."""
    return asyncio.Task(_exits_contained(coro), loop=loop, **kwargs)


async def _exits_contained(coro):
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        code = getattr(coro, "cr_code", None)
        where = f"{code.co_qualname} ({code.co_filename})" if code is not None else repr(coro)
        logging.getLogger("hub").error(
            "a task started by %s raised %s: %s; contained (only the hub's own stop ends the hub)",
            where, type(exc).__name__, exc,
        )
        raise RuntimeError(f"{type(exc).__name__} in task {where}: {exc}") from exc
