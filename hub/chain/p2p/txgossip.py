"""Transaction gossip of a node's network: queue what peers send for admission, judge the
senders by the verdicts, and relay what was admitted in batches to the peers that lack it.

A mixin of :class:`~hub.chain.p2p.network.Network` (its state is set up there); split out so
each part of the network reads on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hub.chain.p2p import limits, messages
from hub.chain.p2p.peer import Peer
from hub.chain.protocol.errors import Reason, TxRejected

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from hub.chain.node.node import ChainNode
    from hub.chain.p2p.seen import SeenSet

log = logging.getLogger("hub.chain.p2p")

#: Transaction refusals that prove the sender relayed junk (not just a race on nonces or fees).
_MALFORMED_TX = {Reason.BAD_ENCODING, Reason.TOO_LARGE, Reason.UNKNOWN_TYPE, Reason.BAD_PAYLOAD, Reason.BAD_SIGNATURE}
#: Refusals for a passing reason (its predecessor or funds not here yet, a full mempool): such a
#: transaction is not remembered as seen, so a later copy of it is judged again.
_PASSING_TX = {Reason.NONCE_TOO_HIGH, Reason.INSUFFICIENT_BALANCE, Reason.MEMPOOL_FULL}


def _chunks(raws: list[bytes]) -> list[list[bytes]]:
    """``announce_txs`` frames: at most TX_BATCH transactions and TX_BATCH_BYTES each (512 of the
    largest transactions would not fit a frame)."""
    if len(raws) <= limits.TX_BATCH and sum(map(len, raws)) <= limits.TX_BATCH_BYTES:
        return [raws] if raws else []  # the usual case: one frame, no Python loop per transaction
    out: list[list[bytes]] = []
    size = limits.TX_BATCH_BYTES
    for raw in raws:
        if size + len(raw) > limits.TX_BATCH_BYTES or len(out[-1]) >= limits.TX_BATCH:
            out.append([])
            size = 0
        out[-1].append(raw)
        size += len(raw)
    return out


def _unincluded(raws: list[bytes], hashes: list[bytes], included: Callable[[bytes], bool]) -> tuple[list, list]:
    keep = [i for i, tx_hash in enumerate(hashes) if not included(tx_hash)]
    if len(keep) == len(raws):
        return raws, hashes
    return [raws[i] for i in keep], [hashes[i] for i in keep]


class TxGossip:
    node: ChainNode
    peers: dict[bytes, Peer]
    seen_txs: SeenSet
    clock: Callable[[], int]
    _tx_thread: ThreadPoolExecutor
    _tx_queue: deque[tuple[Peer, list[bytes], list[bytes]]]
    _tx_queued: int
    _tx_queued_bytes: int
    _tx_wake: asyncio.Event
    _tx_outbox: list[tuple[bytes, bytes, Peer | None]]
    _tx_flush: asyncio.TimerHandle | None

    if TYPE_CHECKING:  # provided by Network
        def _penalise(self, peer: Peer, cost: int, why: str) -> bool: ...
        def _frame(self, message: dict[str, Any]) -> bytes: ...

    async def _receive_txs(self, peer: Peer, raws: list[bytes], also: Sequence[bytes] = ()) -> None:
        """Queue the new ones for admission; when the queue is full, forget them instead (they
        are gossip: another copy, or the block that includes them, will come). ``also``: peers
        the sender says it sent the same frame to, which are therefore not sent them by us."""
        sha256 = hashlib.sha256
        all_hashes = [sha256(raw).digest() for raw in raws]
        included = self.node.recently_included
        peer.known_txs.update(all_hashes)
        for node_key in also:
            other = self.peers.get(node_key)
            if other is not None and other is not peer:
                other.known_txs.update(all_hashes)
        fresh, hashes = [], []
        for raw, tx_hash, new in zip(raws, all_hashes, self.seen_txs.add_many(all_hashes)):
            if new and not included(tx_hash):
                fresh.append(raw)
                hashes.append(tx_hash)
        if not fresh:
            return
        size = sum(map(len, fresh))
        if self._tx_queued + len(fresh) > limits.TX_QUEUE or self._tx_queued_bytes + size > limits.TX_QUEUE_BYTES:
            for tx_hash in hashes:
                self.seen_txs.discard(tx_hash)
            log.debug("p2p: %d transaction(s) from %s not queued: %d already wait for admission",
                      len(fresh), peer.name, self._tx_queued)
            return
        self._tx_queue.append((peer, fresh, hashes))
        self._tx_queued += len(fresh)
        self._tx_queued_bytes += size
        self._tx_wake.set()

    async def _admit_txs(self) -> None:
        """Admit queued gossip in arrival order (a sender's nonces arrive in order), several
        frames per thread hop."""
        while True:
            await self._tx_wake.wait()
            self._tx_wake.clear()
            while self._tx_queue:
                try:
                    await self._admit_queued()
                except Exception:  # noqa: BLE001 - this loop must outlive any one batch
                    log.exception("p2p: admitting gossiped transactions failed")

    async def _admit_queued(self) -> None:
        """One thread hop: up to TX_ADMIT_BATCH queued transactions, then their verdicts."""
        batches = []
        count = 0
        while self._tx_queue and count < limits.TX_ADMIT_BATCH:
            batch = self._tx_queue.popleft()
            batches.append(batch)
            count += len(batch[1])
        raws = [raw for _, fresh, _ in batches for raw in fresh]
        self._tx_queued -= count
        self._tx_queued_bytes -= sum(map(len, raws))
        # What a block included while it waited is dropped here, unread.
        included = self.node.recently_included
        batches = [(peer, *_unincluded(fresh, hashes, included)) for peer, fresh, hashes in batches]
        raws = [raw for _, fresh, _ in batches for raw in fresh]
        if not raws:
            return
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._tx_thread, self.node.submit_many, raws, self.clock())
        except Exception:  # e.g. a store error: these are lost (welcome again), the node goes on
            for _, _, hashes in batches:
                for tx_hash in hashes:
                    self.seen_txs.discard(tx_hash)
            raise
        position = 0
        for peer, fresh, hashes in batches:
            self._judge_txs(peer, fresh, hashes, results[position:position + len(fresh)])
            position += len(fresh)

    def _judge_txs(self, peer: Peer, fresh: list[bytes], hashes: list[bytes], results: list) -> None:
        malformed = 0
        admitted = []
        for raw, tx_hash, result in zip(fresh, hashes, results):
            if isinstance(result, TxRejected):
                if result.reason in _MALFORMED_TX:
                    malformed += 1
                    why = str(result)
                else:
                    if result.reason in _PASSING_TX:
                        self.seen_txs.discard(tx_hash)
                    log.debug("p2p: transaction from %s not admitted: %s", peer.name, result)
            else:
                admitted.append((raw, tx_hash, peer))
        self._queue_txs(admitted)
        if malformed:  # also when the peer has gone meanwhile: the ban keeps it from coming back
            # One bad batch costs what its transactions would have cost one by one, up to a drop.
            self._penalise(peer, min(limits.SCORE_START, malformed * limits.COST_INVALID_TX),
                           f"{malformed} invalid transaction(s), e.g. {why}")

    def _queue_txs(self, items: list[tuple[bytes, bytes, Peer | None]]) -> None:
        """Gossip (raw, hash, source) in batches: flush when a batch is full or TX_FLUSH_SECONDS
        after the first."""
        if not items:
            return
        self._tx_outbox.extend(items)
        if len(self._tx_outbox) >= limits.TX_BATCH:
            self._flush_txs()
        elif self._tx_flush is None:
            self._tx_flush = asyncio.get_running_loop().call_later(limits.TX_FLUSH_SECONDS, self._flush_txs)

    def _flush_txs(self) -> None:
        if self._tx_flush is not None:
            self._tx_flush.cancel()
            self._tx_flush = None
        batch, self._tx_outbox = self._tx_outbox, []
        if not batch:
            return
        # Per peer, what it lacks: not what came from it, nor what it sent us or another peer
        # told us it was sent meanwhile (without this, every node relayed every transaction to
        # every other, n - 2 redundant copies each in a full mesh).
        everything: list[Peer] = []
        hashes = [tx_hash for _, tx_hash, _ in batch]
        for peer in list(self.peers.values()):
            known = peer.known_txs
            lacking = known.lacking(hashes)  # in a full mesh, after a relay: usually none
            new = [(raw, tx_hash) for raw, tx_hash, source in batch if source is not peer and tx_hash in lacking] \
                if lacking else []
            known.update([tx_hash for _, tx_hash in new])
            if len(new) == len(batch):
                everything.append(peer)
            else:
                for chunk in _chunks([raw for raw, _ in new]):
                    peer.send(messages.announce_txs(chunk))
        if everything:
            # One encoding for all the peers that lack the whole batch, naming them all.
            # Naming a subset is still true: the protocol bounds the list at MAX_PEERS keys.
            also = [peer.node_key for peer in everything if peer.node_key is not None][:limits.MAX_PEERS]
            for chunk in _chunks([raw for raw, _, _ in batch]):
                frame = self._frame(messages.announce_txs(chunk, also if len(also) > 1 else ()))
                if frame:
                    for peer in everything:
                        peer.send_frame(frame)

    def announce_tx(self, raw: bytes, tx_hash: bytes | None = None) -> None:
        """Gossip a transaction this node admitted (from its RPC, its CLI inbox, or evidence);
        ``tx_hash``, when the caller has it, saves hashing the bytes again."""
        tx_hash = tx_hash or hashlib.sha256(raw).digest()
        self.seen_txs.add(tx_hash)
        self._queue_txs([(raw, tx_hash, None)])
