"""The producer loop: wake at each slot, take queued transactions, produce when the slot is ours.

The clock and the sleep are parameters, so tests drive it with a simulated clock and the node never
reads the time inside the protocol. Blocking work (signing, SQLite) runs in a worker thread so the
hub's event loop keeps serving while a block is committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from hub.chain.node.node import ChainNode
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block

log = logging.getLogger("hub.chain")
INBOX_POLL = 1.0  # seconds between looks at the CLI's inbox


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class StandingLog:
    """Logs the producer key's standing (disqualified, banned, not elected) when it changes, once:
    a producer that cannot produce says why in words, not with a traceback every wake-up."""

    def __init__(self, node: ChainNode) -> None:
        self.node = node
        self.last: str | None = None

    def check(self, now: int) -> None:
        try:
            standing = self.node.producer_standing(now)
        except Exception:  # noqa: BLE001 - read without the lock; the next wake looks again
            return
        if standing == self.last:
            return
        if standing is not None:
            log.warning("chain: %s", standing)
        elif self.last is not None:
            log.warning("chain: this node's producer key is in good standing again and produces in its slots")
        self.last = standing


async def run_producer(node: ChainNode, clock: Callable[[], int] = wall_clock_ms,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                       on_block: Callable[[Block], None] | None = None) -> None:
    c = node.constants
    standing = StandingLog(node)
    while True:
        now = clock()
        await asyncio.to_thread(node.drain_inbox, now)
        standing.check(now)
        try:
            block = await asyncio.to_thread(node.produce, now)
        except Exception:  # noqa: BLE001 - a failed slot is logged; the next slot tries again
            log.exception("chain: producing the block of this slot failed")
            block = None
        if block is not None:
            log.debug("chain: produced block %d (%d txs)", block.header.height, len(block.txs))
            if on_block is not None:
                on_block(block)
        next_slot = dpos.slot_at(now, node.state.genesis_time, c) + 1
        wait_ms = dpos.slot_time(next_slot, node.state.genesis_time, c) - clock()
        await sleep(max(0.0, min(INBOX_POLL, wait_ms / 1000)) + 0.001)
