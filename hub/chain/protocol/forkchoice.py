"""Fork choice and finality rules (pure; the node applies them to what it has stored).

* The best chain is the one with the most blocks; between two of equal height, the one whose tip
  has the lower hash (a rule every node applies identically, so ties cannot split the network).
* A block is irreversible once producers holding more than 2/3 of the schedule have built on top of
  it: among the blocks after it on the chain, more than 2/3 of the round's distinct producers
  appear (BitShares' last irreversible block). A node never reverts an irreversible block, so a
  reorganisation that would cross it is refused whatever its length.
"""

from __future__ import annotations

from collections.abc import Iterable


def better(height_a: int, hash_a: bytes, height_b: int, hash_b: bytes) -> bool:
    """Is tip A preferred to tip B?"""
    return height_a > height_b or (height_a == height_b and hash_a < hash_b)


def last_irreversible(newest_first: Iterable[tuple[int, bytes]], schedule_size: int) -> int | None:
    """The height of the newest irreversible block, walking ``(height, producer)`` from the head
    backwards; None when no block is yet irreversible within what was walked."""
    seen: set[bytes] = set()
    for height, producer in newest_first:
        if len(seen) * 3 > 2 * schedule_size:
            return height
        seen.add(producer)
    return None
