"""The header rules are one function (``protocol/headers.py``) used by all three judges: a full
node applying a block on its head, a full node keeping a block of another branch, and the light
client. Each bad header below breaks one rule, and each judge refuses it for that rule. (The node's
side-branch copy of the rules had no round check: a side block of a wrong round was stored.)"""

from __future__ import annotations

import copy

import pytest

from hub.chain.light.client import LightClient, LightClientError
from hub.chain.node.node import ChainNode
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block, Header
from hub.chain.protocol.headers import HeaderFault, HeaderRejected
from hub.chain.protocol.transition import apply_block

from tests.chain.chainkit import GENESIS_TIME, Sim, key, make_genesis

PRODUCERS = [key(f"hr-producer{i}") for i in range(4)]


@pytest.fixture(scope="module")
def scene():
    """Main chain 1-2-3 (what the node and the light client follow) and a sibling 2' of block 2,
    in a later slot, the good header every bad one is made from; ``base`` is the state after block 1."""
    main = Sim(make_genesis(PRODUCERS), PRODUCERS)
    main.next_block()
    fork = copy.deepcopy(main)
    base = copy.deepcopy(main.state)
    main.next_block(), main.next_block()
    sibling = fork.next_block(skip=1).block
    return main, base, sibling


def _bad_headers(main: Sim, good: Header) -> dict[str, tuple[HeaderFault, Header]]:
    keys = main.keys
    owner = keys[good.producer]
    intruder = next(k for k in keys.values() if k.public_key != good.producer)
    genesis_hash = main.genesis.hash

    def resign(k=owner, gh=genesis_hash, **fields) -> Header:
        return Header(**{**good.body(), **fields}).signed(k, gh)

    parent_slot = main.blocks[0].header.slot
    return {
        "another chain": (HeaderFault.WRONG_CHAIN, resign(chain_id="othernet")),
        "height": (HeaderFault.BAD_HEIGHT, resign(height=3)),
        "round": (HeaderFault.BAD_ROUND, resign(round=2)),
        "slot not after the parent's": (HeaderFault.BAD_SLOT, resign(
            slot=parent_slot, timestamp=dpos.slot_time(parent_slot, GENESIS_TIME, main.c))),
        "timestamp": (HeaderFault.BAD_TIMESTAMP, resign(timestamp=good.timestamp + 1)),
        "not the slot's owner": (HeaderFault.WRONG_PRODUCER, resign(k=intruder)),
        "forged signature": (HeaderFault.BAD_SIGNATURE, Header(**{**good.as_dict(), "sig": bytes([good.sig[0] ^ 1]) + good.sig[1:]})),
        "signed for another genesis": (HeaderFault.BAD_SIGNATURE, resign(gh=bytes(32))),
    }


CASES = ["another chain", "height", "round", "slot not after the parent's", "timestamp", "not the slot's owner",
         "forged signature", "signed for another genesis"]


@pytest.mark.parametrize("case", CASES)
def test_each_judge_refuses_the_same_bad_header_for_the_same_rule(scene, tmp_path, case):
    main, base, sibling = scene
    fault, bad = _bad_headers(main, sibling.header)[case]
    block = Block(bad, sibling.txs)

    # 1. apply_block, the block on the head (the state after block 1)
    state = copy.deepcopy(base)
    with pytest.raises(HeaderRejected) as on_head:
        apply_block(state, block)
    assert on_head.value.fault is fault, str(on_head.value)
    assert state.digest() == base.digest() and state.head == base.head

    # 2. a full node whose head is block 3: the block would be kept on a side branch
    node = ChainNode(tmp_path / "node", main.genesis, None)
    for b in main.blocks:
        node.receive_block(b)
    with pytest.raises(HeaderRejected) as on_side:
        node.receive_block(block)
    assert on_side.value.fault is fault, str(on_side.value)
    assert not node.store.has_block(block.hash) and node.head == main.state.head
    assert node.receive_block(sibling).status == "side"  # the good header is kept
    node.close()

    # 3. the light client following blocks 1-3
    lc = LightClient(main.genesis)
    lc.add_headers([b.header for b in main.blocks])
    with pytest.raises(LightClientError) as light:
        lc.add_header(bad)
    assert light.value.reason.value == fault.value, str(light.value)
    assert lc.add_header(sibling.header)
