"""A node's log says a repeated warning a few times, then how often it repeated.

Why: a node's warnings repeat for as long as their cause does (a peer that keeps failing its
handshake every redial, a queued transaction refused, a production failure every wake-up), and a
log that fills the disk hides the one line that matters. Records of WARNING and above are grouped
by logger and message template (not the arguments: "peer X: ..." is one flood whatever X is); each
group may log ``burst`` records per ``window`` seconds, and the first one logged after a quiet
spell says how many were left out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

BURST = 5
WINDOW = 60.0


class FloodFilter(logging.Filter):
    def __init__(self, burst: int = BURST, window: float = WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst, self.window, self.clock = burst, window, clock
        self.groups: dict[tuple[str, int, str], list] = {}  # key -> [window start, logged, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        group = self.groups.get(key)
        if group is None or now - group[0] >= self.window:
            left_out = group[2] if group is not None else 0
            self.groups[key] = [now, 1, 0]
            if len(self.groups) > 1000:  # templates are few; arguments never make new keys
                self.groups = {k: g for k, g in self.groups.items() if now - g[0] < self.window}
            if left_out:
                record.msg = f"{record.getMessage()} (and {left_out} more like it in the previous {self.window:g} s, not logged)"
                record.args = None
            return True
        if group[1] < self.burst:
            group[1] += 1
            return True
        group[2] += 1
        return False


def install(logger: logging.Logger | None = None) -> FloodFilter:
    """Put one FloodFilter on every handler of ``logger`` (the root logger by default)."""
    flood = FloodFilter()
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(flood)
    return flood


__all__ = ["FloodFilter", "install"]
