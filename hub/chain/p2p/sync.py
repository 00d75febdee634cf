"""Block sync of a node's network: ask the peer with the best head for batches of blocks, step
back when a batch does not connect, and give up on (and score down) a peer that does not answer.

A mixin of :class:`~hub.chain.p2p.network.Network` (its state is set up there).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from hub.chain.p2p import limits, messages
from hub.chain.p2p.peer import Peer

if TYPE_CHECKING:
    from hub.chain.node.node import ChainNode

log = logging.getLogger("hub.chain.p2p")


class Sync:
    node: ChainNode
    peers: dict[bytes, Peer]
    sync_batch: int
    sync_timeout: float
    _sync_peer: Peer | None
    _sync_logged: float

    if TYPE_CHECKING:  # provided by Network
        def _penalise(self, peer: Peer, cost: int, why: str) -> bool: ...
        async def _receive_blocks(self, peer: Peer, raw_blocks: list[bytes], *, announced: bool) -> str: ...

    def _gap_start(self, height: int) -> int:
        """Where to ask from when a block at ``height`` has an unknown parent: just above our head
        if it is ahead of us, else far enough back to find the fork point."""
        ours = self.node.head.height
        if height > ours + 1:
            return ours + 1
        return max(self.node.lib + 1, height - 8)

    def _request_blocks(self, peer: Peer, start: int, *, target: int) -> None:
        if peer.syncing or peer.closed.is_set():
            return
        peer.syncing = True
        peer.sync_late = False
        peer.sync_start = start
        peer.sync_sent = time.monotonic()
        peer.height = max(peer.height, target)
        peer.send(messages.get_blocks(start, self.sync_batch))

    async def _receive_batch(self, peer: Peer, raw_blocks: list[bytes], height: int) -> None:
        if not peer.syncing:
            if not peer.sync_late:
                self._penalise(peer, limits.COST_UNKNOWN_TYPE, "blocks nobody asked for")
                return
            # The answer to a request that timed out (and was paid for): its blocks are still
            # welcome, but another peer may be syncing us meanwhile, so nothing more is asked of it.
            peer.sync_late = False
            if raw_blocks:
                await self._receive_blocks(peer, raw_blocks, announced=False)
            self._maybe_sync()
            return
        peer.syncing = False
        start = peer.sync_start
        if not raw_blocks and height >= start:
            # It claimed to have blocks from ``start`` and sent none: believe the reply, not the claim.
            self._penalise(peer, limits.COST_UNKNOWN_TYPE, f"no blocks from {start} although its head is {height}")
            peer.height = min(height, start - 1)
            self._end_sync(peer)
            return
        peer.height = height
        outcome = await self._receive_blocks(peer, raw_blocks, announced=False)
        if outcome == "bad":
            self._end_sync(peer)
            return
        if outcome == "gap":
            # The batch does not connect: step back (doubling) towards the last irreversible block.
            back = max(8, 2 * (self.node.head.height + 1 - start))
            earlier = max(self.node.lib + 1, start - back)
            if earlier >= start:
                self._penalise(peer, limits.COST_INVALID_BLOCK, "its chain does not connect above our last irreversible block")
                self._end_sync(peer)
                return
            self._request_blocks(peer, earlier, target=height)
            return
        ours = self.node.head.height
        if raw_blocks and self._sync_peer is peer and (len(raw_blocks) >= 10 or ours >= height):
            if ours >= height or time.monotonic() - self._sync_logged > 1:
                log.info("p2p: synced %s/%s blocks from %s", f"{ours:,}", f"{height:,}", peer.name)
                self._sync_logged = time.monotonic()
        if raw_blocks and start + len(raw_blocks) <= height:
            self._request_blocks(peer, start + len(raw_blocks), target=height)
        else:
            self._end_sync(peer)

    def _end_sync(self, peer: Peer) -> None:
        if self._sync_peer is peer:
            self._sync_peer = None
        self._maybe_sync()

    def _maybe_sync(self) -> None:
        """Sync in batches from the peer with the highest head, when it is ahead of us."""
        current = self._sync_peer
        ours = self.node.head.height
        if current is not None and not current.closed.is_set():
            if not (current.syncing and time.monotonic() - current.sync_sent > self.sync_timeout):
                return
            # It costs score, and its claimed height is not believed any more (only blocks it
            # sends raise it again), so the next pick is another peer, not this one again.
            current.syncing = False
            current.sync_late = True
            claimed, current.height = current.height, min(current.height, ours)
            self._sync_peer = None
            self._penalise(current, limits.COST_SYNC_TIMEOUT,
                           f"did not answer get_blocks within {self.sync_timeout:g} s (it claimed height {claimed:,})")
        self._sync_peer = None
        candidates = [p for p in self.peers.values() if not p.closed.is_set() and p.height > ours]
        if not candidates:
            return
        best = max(candidates, key=lambda p: p.height)
        self._sync_peer = best
        if best.height - ours >= 10:
            log.info("p2p: syncing from %s: %s blocks behind", best.name, f"{best.height - ours:,}")
        self._request_blocks(best, ours + 1, target=best.height)
