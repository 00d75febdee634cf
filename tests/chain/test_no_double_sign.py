"""A producer whose block loses a same-height fork must not sign a second block for that slot."""

from __future__ import annotations

from hub.chain.node.node import ChainNode
from hub.chain.protocol import dpos
from hub.chain.protocol.constants import RUFF

from tests.chain.chainkit import GENESIS_TIME, Wallet, key, make_genesis

A, B, ALICE = key("producer-a"), key("producer-b"), key("alice")


def test_after_losing_a_fork_the_producer_does_not_sign_its_slot_again(tmp_path):
    g = make_genesis([A, B], {ALICE: 100 * RUFF})
    probe = ChainNode(tmp_path / "probe", g)
    # a slot of B followed by a slot of A
    s1 = next(s for s in range(1, 50) if probe.slot_owner(s) == B.public_key and probe.slot_owner(s + 1) == A.public_key)
    probe.close()
    at = lambda s: dpos.slot_time(s, g.genesis_time, g.rules())  # noqa: E731
    node = ChainNode(tmp_path / "a", g, A)
    mine = node.produce(at(s1 + 1))  # A missed B's block of slot s1 and builds on genesis
    assert mine is not None and mine.header.slot == s1 + 1
    # B's block of slot s1 at the same height; vary its content until it wins the tie (lower hash)
    for amount in range(1, 200):
        other = ChainNode(tmp_path / f"b{amount}", g, B)
        other.submit(Wallet(ALICE, g).send(B, amount).raw, at(s1))
        theirs = other.produce(at(s1))
        other.close()
        if theirs.hash < mine.hash:
            break
    assert node.receive_block(theirs).status == "reorganised"
    assert node.head.slot == s1
    # still inside slot s1 + 1: producing again would be a second signature for that slot
    assert node.produce(at(s1 + 1) + 100) is None
    # the next slot of A is fine
    later = next(s for s in range(s1 + 2, s1 + 20) if node.slot_owner(s) == A.public_key)
    assert node.produce(at(later)) is not None
    node.close()


def test_a_restarted_producer_remembers_the_slots_it_signed(tmp_path):
    g = make_genesis([A, B], {ALICE: 100 * RUFF})
    node = ChainNode(tmp_path / "a", g, A)
    slot = next(s for s in range(1, 50) if node.slot_owner(s) == A.public_key)
    at = dpos.slot_time(slot, g.genesis_time, g.rules())
    assert node.produce(at) is not None
    node.close()
    again = ChainNode(tmp_path / "a", g, A)
    assert again.signed_slot == slot
    again.close()
