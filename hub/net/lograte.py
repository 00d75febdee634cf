"""A cap on how often one kind of log line is written, so a flood of clients cannot fill the disk.

A server under attack logs per event: a refused or failed connection, a malformed request, a
request that failed. One such line per event let 1,100 idle sockets write 142 MB of a chain node's
log in 20 s. :class:`RateLimitFilter`, on the process's handlers, lets through the first ``burst``
records of one kind (same logger, same message template) per ``interval`` seconds, and the first
record of the next window says how many were dropped meanwhile. Tracebacks are kept on the records
that pass: the first of a kind is the one worth reading.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

#: Records of one kind written per window, then dropped until the window ends.
BURST = 5
#: Seconds of one window.
INTERVAL = 10.0
#: Kinds remembered; the least recently seen is forgotten beyond it (message templates are code,
#: so few, but a logger name can carry a peer's address).
MAX_KINDS = 1024


class RateLimitFilter(logging.Filter):
    def __init__(self, burst: int = BURST, interval: float = INTERVAL, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.interval, self.clock = burst, interval, clock
        self._kinds: dict[tuple[str, str], list] = {}  # kind -> [window start, passed, dropped]
        self._lock = threading.Lock()  # records come from worker threads too

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        with self._lock:
            # Per message template, and per logger at ten times that: some messages carry their
            # details in the text itself (asyncio's "socket.accept() out of system resource" names
            # the socket), so every one would be a kind of its own.
            passed, dropped = self._count((record.name, str(record.msg)), self.burst, now)
            if not passed:
                return False
            passed, logger_dropped = self._count((record.name, None), 10 * self.burst, now)
        if passed and (dropped or logger_dropped):
            record.msg = f"{record.msg} [{max(dropped, logger_dropped)} more like this dropped in the last {self.interval:g} s]"
        return passed

    def _count(self, kind: tuple, burst: int, now: float) -> tuple[bool, int]:
        """(whether this record may pass, how many of its kind were dropped in the window before)."""
        entry = self._kinds.pop(kind, None)
        dropped = 0
        if entry is None or now - entry[0] >= self.interval:
            dropped = entry[2] if entry is not None else 0
            entry = [now, 0, 0]
        self._kinds[kind] = entry  # re-inserted: the dict's order is recency
        if len(self._kinds) > MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]
        if entry[1] >= burst:
            entry[2] += 1
            return False, 0
        entry[1] += 1
        return True, dropped


#: Loggers with handlers of their own: uvicorn's logging configuration gives "uvicorn" a handler
#: and stops its records (``uvicorn.error``'s among them) from reaching the root logger.
LOGGERS = ("", "uvicorn", "uvicorn.access")

_shared: RateLimitFilter | None = None


def install(names: tuple[str, ...] = LOGGERS) -> RateLimitFilter:
    """Put one filter on every handler of these loggers, where the records of all their
    descendants pass. Call it after ``uvicorn.Config`` (which sets uvicorn's handlers); idempotent."""
    global _shared
    _shared = _shared or RateLimitFilter()
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if _shared not in handler.filters:
                handler.addFilter(_shared)
    return _shared


__all__ = ["RateLimitFilter", "install", "BURST", "INTERVAL"]
