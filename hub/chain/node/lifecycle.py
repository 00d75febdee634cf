"""A node's stop with a deadline: what does not stop in time is named, cancelled, and the process
exits anyway.

Why: a node that hangs on SIGTERM is worse than one that exits without closing its store. The store
is SQLite in WAL mode and recovers from an exit at any point like it does from ``kill -9``
(tests/chain/test_crash.py), while a hung node holds its ports and data directory until someone
kills it by hand, with nothing in the log to say why. So the graceful stop gets ``seconds``; then
every task still running is named in the log and cancelled; if that does not end them within
``grace`` seconds, or a worker thread is still busy with the node, the process exits at once with
status 1 (a thread cannot be cancelled, and the interpreter would wait for it at exit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("hub.chain.node")
STOP_DEADLINE = 10.0  # seconds the graceful stop may take (hub chain devnet waits a little longer)
CANCEL_GRACE = 2.0  # seconds cancelled tasks get to end


def _where(frame) -> str:
    """The innermost frame of a thread that is not the standard library's: what it is busy with."""
    stdlib = str(Path(os.__file__).parent)
    found = frame
    while frame is not None:
        if not frame.f_code.co_filename.startswith(stdlib):
            found = frame
            break
        frame = frame.f_back
    return f"{found.f_code.co_name} ({Path(found.f_code.co_filename).name}:{found.f_lineno})"


def busy_threads() -> list[str]:
    """Threads other than this one that are running code of ours (idle pool workers wait inside
    the standard library and are left out)."""
    frames = sys._current_frames()
    stdlib = str(Path(os.__file__).parent)
    out = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident)
        if thread is threading.current_thread() or frame is None or not thread.is_alive():
            continue
        walk, ours = frame, False
        while walk is not None:
            if not walk.f_code.co_filename.startswith(stdlib):
                ours = True
                break
            walk = walk.f_back
        if ours:
            out.append(f"thread {thread.name} in {_where(frame)}")
    return out


async def stop_within(stopping: Awaitable[None], seconds: float = STOP_DEADLINE, *, grace: float = CANCEL_GRACE,
                      exit: Callable[[int], None] = os._exit) -> bool:
    """Run the graceful stop ``stopping`` for at most ``seconds``. True if it finished; otherwise
    log what did not stop, cancel it, and call ``exit(1)`` if something is still running after
    ``grace`` (returns False when ``exit`` returns, as it does in tests)."""
    task = asyncio.ensure_future(stopping)
    done, _ = await asyncio.wait([task], timeout=seconds)
    if done:
        task.result()
        return True
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    names = sorted({t.get_name() for t in left if t is not task})
    log.error("node: the stop did not finish within %g s; still running: %s; cancelling them",
              seconds, ", ".join(names + busy_threads()) or "nothing else")
    for t in left:
        t.cancel()
    _, pending = await asyncio.wait(left, timeout=grace) if left else (set(), set())
    threads = busy_threads()
    if pending or threads:
        log.error("node: exiting without a clean stop; did not stop: %s (the store recovers on the next start, "
                  "as after a crash)", ", ".join(sorted({t.get_name() for t in pending}) + threads))
        logging.shutdown()  # flush the log: os._exit skips every handler
        exit(1)
        return False
    log.warning("node: stopped after cancelling %s", ", ".join(names) or "the stop itself")
    return False


__all__ = ["stop_within", "busy_threads", "STOP_DEADLINE"]
