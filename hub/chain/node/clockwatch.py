"""Is this node's clock right? Judged from when peers' fresh blocks arrive.

Why: a producer whose clock is off signs its blocks in what it thinks is its slot; its peers refuse
them as early (from the future) or see its slot empty, and it is banned for missed slots, while its
own log said nothing. Every block's timestamp is the start of its slot, and an honest producer sends
it ``PRODUCE_DELAY`` of a slot later, so a block that arrives here at local time ``t`` says this
clock is off by about ``t - timestamp - delay``, plus network and processing delay, which is never
negative. The smallest such value over the last few blocks is therefore the best estimate: delays
only make it larger, so a clock that is behind shows at once, and one that is ahead shows once the
blocks are consistently late by more than the threshold.
"""

from __future__ import annotations

import logging
from collections import deque

log = logging.getLogger("hub.chain.node")
WINDOW = 8  # fresh blocks from peers
MIN_SAMPLES = 4
SKEW_FRACTION = 0.5  # of a slot: beyond it, warn


class ClockWatch:
    def __init__(self, block_interval_ms: int, produce_delay: float = 0.2) -> None:
        self.interval = block_interval_ms
        self.expected = int(block_interval_ms * produce_delay)
        self.samples: deque[int] = deque(maxlen=WINDOW)
        self.skew_ms: int | None = None  # + ahead of peers, - behind; None until MIN_SAMPLES blocks
        self.warned: str | None = None  # "ahead" / "behind" while a warning stands

    def observe(self, timestamp: int, arrived: int) -> None:
        """A fresh block from a peer, with this node's clock (unix ms) when it arrived."""
        self.samples.append(arrived - timestamp - self.expected)
        if len(self.samples) < MIN_SAMPLES:
            return
        self.skew_ms = min(self.samples)
        limit = self.interval * SKEW_FRACTION
        verdict = "ahead" if self.skew_ms > limit else "behind" if self.skew_ms < -limit else None
        if verdict == self.warned:
            return
        if verdict is None:
            log.warning("node: the clock agrees with the peers' blocks again (within %d ms)", abs(self.skew_ms))
        else:
            log.warning("node: your clock is %.1f s %s of peers (judged from the last %d blocks they produced); "
                        "producers with skewed clocks miss slots and are banned: fix the system clock (NTP)",
                        abs(self.skew_ms) / 1000, verdict, len(self.samples))
        self.warned = verdict

    def status(self) -> dict:
        """For the node's status (RPC /head): the estimate and whether it is beyond the threshold."""
        return {"skew_ms": self.skew_ms, "samples": len(self.samples),
                "state": self.warned and f"{self.warned} of peers" or ("ok" if self.skew_ms is not None else "unknown")}


__all__ = ["ClockWatch"]
