"""The rules a block header must meet against its parent, written once.

Three places judge headers: ``apply_block`` (a block on the head), the node keeping a block of
another branch, and the light client following headers alone. Each had its own copy, and the
copies drifted: the node kept side blocks without checking their round. Each now calls
:func:`check_header` with what it knows (the parent, and the round's producer order where it
knows it) and keeps only its own rules around it (the head's hash, disqualification, finality).

Pure: no clock, no I/O; the same header and inputs give the same verdict everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.chain.protocol import dpos
from hub.chain.protocol.block import Header
from hub.chain.protocol.constants import Constants
from hub.chain.protocol.errors import BlockRejected
from hub.crypto.signing import Network


class HeaderFault(StrEnum):
    """Which rule failed; the light client reports these codes as they are."""

    WRONG_CHAIN = "wrong_chain"
    BAD_HEIGHT = "bad_height"
    BAD_ROUND = "bad_round"
    BAD_SLOT = "bad_slot"
    BAD_TIMESTAMP = "bad_timestamp"
    WRONG_PRODUCER = "wrong_producer"
    BAD_SIGNATURE = "bad_signature"


class HeaderRejected(BlockRejected):
    """A header that breaks a rule against its parent; ``fault`` says which."""

    def __init__(self, fault: HeaderFault, message: str) -> None:
        self.fault = fault
        super().__init__(message)


@dataclass(frozen=True)
class Parent:
    """What the rules read of the parent (a stored header, the head, or the genesis)."""

    height: int
    slot: int


def check_header(h: Header, parent: Parent, network: Network, genesis_time: int, constants: Constants,
                 order: tuple[bytes, ...] | None, *, signed: bool = True) -> None:
    """Raise :class:`HeaderRejected` unless ``h`` may follow ``parent`` on ``network``.

    ``order``: the producer order of the header's round, or None where the caller cannot know it
    (a side branch in another round), which skips only the slot-owner rule. ``signed=False`` is
    for a producer's own draft, which it signs afterwards."""
    if h.chain_id != network.chain_id:
        raise HeaderRejected(HeaderFault.WRONG_CHAIN, f"block is for chain {h.chain_id!r}, this is {network.chain_id!r}")
    if h.height != parent.height + 1:
        raise HeaderRejected(HeaderFault.BAD_HEIGHT, f"height {h.height} does not follow its parent's {parent.height}")
    if h.round != dpos.round_of(h.height, constants):
        raise HeaderRejected(HeaderFault.BAD_ROUND, f"round {h.round} is wrong for height {h.height}")
    if h.slot <= parent.slot:
        raise HeaderRejected(HeaderFault.BAD_SLOT, f"slot {h.slot} is not after its parent's slot {parent.slot}")
    if h.timestamp != dpos.slot_time(h.slot, genesis_time, constants):
        raise HeaderRejected(HeaderFault.BAD_TIMESTAMP, f"timestamp is not the start of slot {h.slot}")
    if order is not None:
        owner = dpos.slot_owner(order, h.slot)
        if h.producer != owner:
            raise HeaderRejected(HeaderFault.WRONG_PRODUCER, f"slot {h.slot} belongs to {owner.hex()[:16]}, "
                                 f"not to the block's producer {h.producer.hex()[:16]}")
    if signed and not h.signature_ok(network.genesis_hash):
        raise HeaderRejected(HeaderFault.BAD_SIGNATURE, "the producer's signature does not verify for this network")
