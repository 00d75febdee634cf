"""Catching a producer that signs two blocks for one slot, and the ``evidence`` that proves it.

Blocks reach a node from several peers, in any order, on any branch, sometimes with a parent it
never gets; the two halves of an equivocation usually arrive from different peers. So the watch
keeps the headers of recent slots in memory, keyed by (slot, producer), whether or not their block
was accepted, and checks signatures only when a second, different header turns up for a key: the
normal path costs one dict lookup per block, and a forged header cannot frame a producer because
a pair is reported only when both signatures verify.
"""

from __future__ import annotations

from hub.chain.protocol.block import Header

#: Different headers remembered per (slot, producer): enough for an honest one plus forgeries.
PER_KEY = 4


class EquivocationWatch:
    def __init__(self, window_slots: int, genesis_hash: bytes) -> None:
        self.window = window_slots
        self.genesis_hash = genesis_hash  # signatures are checked for this network only
        self._by_slot: dict[int, dict[bytes, dict[bytes, Header]]] = {}
        self._oldest = 0

    def observe(self, header: Header, current_slot: int) -> tuple[Header, Header] | None:
        """Remember ``header``; return two validly signed, different headers of its producer for
        its slot if this header completes such a pair (ordered by hash, so every node builds the
        same evidence)."""
        floor = current_slot - self.window
        if header.slot < floor:
            return None
        if floor > self._oldest:
            for slot in [s for s in self._by_slot if s < floor]:
                del self._by_slot[slot]
            self._oldest = floor
        known = self._by_slot.setdefault(header.slot, {}).setdefault(header.producer, {})
        block_hash = header.hash
        if block_hash in known or len(known) >= PER_KEY:
            return None
        others = list(known.values())
        known[block_hash] = header
        if not others or not header.signature_ok(self.genesis_hash):
            return None
        for other in others:
            if other.signature_ok(self.genesis_hash):
                return (other, header) if other.hash < block_hash else (header, other)
        return None
