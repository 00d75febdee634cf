"""The slot loop of a networked node: take the CLI's queued transactions, produce in our slots,
and hand both to the network.

``hub.chain.node.producer.run_producer`` drains the inbox inside ``ChainNode.drain_inbox``, which
does not say which transactions it admitted, so they could not be gossiped; this loop does the same
steps with that one difference. A producer wakes ``PRODUCE_DELAY`` into its slot rather than at its
start: the previous slot's block then has that long to arrive, so a block late by network delay
does not fork the chain. Block timestamps are the slot's start either way, so the delay is not
visible on chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from hub.chain.node.node import ChainNode
from hub.chain.node.producer import StandingLog
from hub.chain.p2p.network import Network, wall_clock_ms
from hub.chain.protocol import dpos
from hub.chain.protocol.errors import TxRejected

log = logging.getLogger("hub.chain.node")
INBOX_POLL = 0.25  # seconds between looks at the CLI's inbox
PRODUCE_DELAY = 0.2  # fraction of a slot a producer waits for the previous block


def pump_inbox(node: ChainNode, now: int) -> list[bytes]:
    """Admit what the CLI queued, mark each row, and return the admitted transactions' bytes."""
    admitted: list[bytes] = []
    results: list[tuple[bytes, str]] = []
    for tx_hash, raw in node.store.take_inbox():
        try:
            node.submit(raw, now)
        except TxRejected as exc:
            log.warning("chain: queued transaction %s refused: %s", tx_hash.hex()[:16], exc)
            results.append((tx_hash, f"rejected: {exc}"))
            continue
        results.append((tx_hash, "pending"))
        admitted.append(raw)
    node.store.mark_inbox(results)
    return admitted


def _pump_locked(node: ChainNode, now: int) -> list[bytes]:
    # Nearly always empty: do not queue for the node lock (held while a block is applied, which
    # would hold up this loop's production for as long) just to find that out.
    if not node.store.inbox_waiting():
        return []
    with node.lock:
        return pump_inbox(node, now)


async def run_slots(node: ChainNode, network: Network, clock: Callable[[], int] = wall_clock_ms) -> None:
    c = node.constants
    genesis_time = node.state.genesis_time
    delay = int(c.BLOCK_INTERVAL * PRODUCE_DELAY)
    standing = StandingLog(node)
    while True:
        now = clock()
        standing.check(now)
        try:
            for raw in await asyncio.to_thread(_pump_locked, node, now):
                network.announce_tx(raw)
        except Exception:  # noqa: BLE001 - a damaged inbox row must not stop production
            log.exception("chain: reading the inbox failed")
        slot = dpos.slot_at(now, genesis_time, c)
        if node.key is not None and now - dpos.slot_time(slot, genesis_time, c) >= delay:
            try:  # read without the lock (a block may be half applied): it only decides priority
                ours = node.slot_owner(slot) == node.key.public_key
            except Exception:  # noqa: BLE001
                ours = False
            try:
                with node.block_work() if ours else contextlib.nullcontext():
                    block = await network.in_block_thread(node.produce, now)
            except Exception:  # noqa: BLE001 - a failed slot is logged; the next slot tries again
                log.exception("chain: producing the block of slot %d failed", slot)
                block = None
            if block is not None:
                h = block.header
                log.info("chain: produced block %d in slot %d (round %d, %d txs)", h.height, h.slot, h.round, len(block.txs))
                network.announce_block(block)
        now = clock()
        slot = dpos.slot_at(now, genesis_time, c)
        next_wake = dpos.slot_time(slot, genesis_time, c) + delay
        if next_wake <= now:
            next_wake = dpos.slot_time(slot + 1, genesis_time, c) + delay
        await asyncio.sleep(max(0.0, min(INBOX_POLL, (next_wake - clock()) / 1000)) + 0.001)
