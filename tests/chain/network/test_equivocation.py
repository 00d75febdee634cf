"""A producer that signs two blocks for one slot is caught, and the proof lands on chain.

The halves of an equivocation reach a node from different peers and on different branches, so
the node watches headers (accepted or not) and, holding a producer key, turns a proven pair into
an ``evidence`` transaction that disqualifies the offender once a block includes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from hub.chain.node.equivocation import EquivocationWatch
from hub.chain.node.node import ChainNode
from hub.chain.p2p import messages
from hub.chain.p2p.frames import encode_frame, read_frame
from hub.chain.p2p.network import Network
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.transition import build_block
from hub.chain.protocol.tx import Transaction
from tests.chain.chainkit import GENESIS_TIME, Sim, Wallet, addr, key, make_genesis
from tests.chain.network._raw import connect

PRODUCERS = [key(f"eq-producer-{i}") for i in range(4)]
OFFENDER, HONEST = PRODUCERS[0], PRODUCERS[1]


@pytest.fixture
def chain():
    genesis = make_genesis(PRODUCERS, {k: 1000 * RUFF for k in PRODUCERS})
    sim = Sim(genesis, PRODUCERS)
    for _ in range(6):
        sim.next_block()
    return sim


def _two_blocks_for_one_slot(sim: Sim) -> tuple[Block, Block]:
    """Two different blocks the offender signs for its next slot on top of the sim's head."""
    slot = sim.state.head.slot + 1
    while sim.owner(slot) != OFFENDER.public_key:
        slot += 1
    out = []
    for txs in ([], [Wallet(OFFENDER, sim).send(HONEST, RUFF)]):
        built = build_block(sim.state, OFFENDER, slot, txs)
        assert not built.rejected
        sim.state.revert(built.applied.undo, built.applied.parent)
        out.append(built.applied.block)
    return out[0], out[1]


def _slot_now(block: Block, c) -> int:
    return dpos.slot_time(block.header.slot, GENESIS_TIME, c) + 100


def _honest_node(tmp_path, sim: Sim, producer=HONEST) -> ChainNode:
    node = ChainNode(tmp_path / "honest", sim.genesis, producer)
    for block in sim.blocks:
        assert node.receive_block(block).status == "applied"
    return node


def test_the_watch_reports_a_pair_only_when_both_signatures_hold(chain):
    a, b = _two_blocks_for_one_slot(chain)
    slot = a.header.slot
    watch = EquivocationWatch(window_slots=8, genesis_hash=chain.genesis.hash)
    forged = dataclasses.replace(b.header, sig=bytes(64))
    assert watch.observe(a.header, slot) is None
    assert watch.observe(a.header, slot) is None  # the same block again proves nothing
    assert watch.observe(forged, slot) is None  # a forgery cannot frame the producer
    pair = watch.observe(b.header, slot)
    assert pair is not None and {h.hash for h in pair} == {a.hash, b.hash}
    assert pair[0].hash < pair[1].hash  # every node builds the same evidence
    # Outside the window (a sync of old blocks) nothing is kept or reported.
    late = EquivocationWatch(window_slots=8, genesis_hash=chain.genesis.hash)
    assert late.observe(a.header, slot + 9) is None and late.observe(b.header, slot + 9) is None


def test_a_producer_node_turns_an_equivocation_into_evidence_that_disqualifies(chain, tmp_path, caplog):
    a, b = _two_blocks_for_one_slot(chain)
    node = _honest_node(tmp_path, chain)
    now = _slot_now(a, node.constants)
    assert node.receive_block(a).status == "applied"
    assert node.observe(a.header, now) is None
    assert node.receive_block(b).status in ("side", "reorganised")
    evidence = node.observe(b.header, now)
    assert evidence is not None and evidence.type == "evidence" and evidence.hash in node.mempool
    assert "signed two blocks for slot" in caplog.text
    assert node.observe(b.header, now) is None  # reported once
    # The honest producer's next block includes it and the offender is disqualified.
    block = None
    t = now
    while block is None:
        t += node.constants.BLOCK_INTERVAL
        block = node.produce(t)
    assert evidence.raw in block.txs
    assert node.state.get("dq", addr(OFFENDER)) == block.header.height
    node.close()


def test_a_node_without_a_producer_key_logs_the_proof(chain, tmp_path, caplog):
    a, b = _two_blocks_for_one_slot(chain)
    node = _honest_node(tmp_path, chain, producer=None)
    now = _slot_now(a, node.constants)
    node.receive_block(a)
    node.receive_block(b)
    assert node.observe(a.header, now) is None
    with caplog.at_level(logging.WARNING, logger="hub.chain"):
        assert node.observe(b.header, now) is None
    assert "no producer key" in caplog.text and node.equivocations
    node.close()


async def test_halves_announced_by_two_peers_become_gossiped_evidence(chain, tmp_path):
    a, b = _two_blocks_for_one_slot(chain)
    node = _honest_node(tmp_path, chain)
    clock = lambda: _slot_now(a, node.constants)  # noqa: E731
    net = Network(node, key("honest-node"), listen=("127.0.0.1", 0), clock=clock)
    await net.start()
    try:
        r1, w1 = await connect("127.0.0.1", net.port, chain.genesis, key("relay-1"))
        r2, w2 = await connect("127.0.0.1", net.port, chain.genesis, key("relay-2"))
        w1.write(encode_frame(messages.announce_block(a.encode())))
        await w1.drain()
        w2.write(encode_frame(messages.announce_block(b.encode())))
        await w2.drain()

        async def gossiped_evidence(reader) -> Transaction:
            while True:
                msg = await read_frame(reader, 1 << 24)
                if msg is not None and msg["type"] == "announce_txs":
                    for raw in msg["txs"]:
                        tx = Transaction.from_bytes(raw)
                        if tx.type == "evidence":
                            return tx

        tx = await asyncio.wait_for(gossiped_evidence(r1), 5)
        assert tx.hash in node.mempool and tx.sender == HONEST.public_key
        # Relaying a block is not misbehaviour: neither relay lost score.
        assert all(p.score == 100 for p in net.peers.values())
        w1.close()
        w2.close()
    finally:
        await net.stop()
        node.close()


async def test_a_block_for_a_slot_that_has_not_started_is_refused(chain, tmp_path):
    node = _honest_node(tmp_path, chain)
    built = build_block(chain.state, chain.keys[chain.owner(chain.state.head.slot + 5)], chain.state.head.slot + 5, [])
    early = built.applied.block
    head = node.head
    # Our clock says the slot before the head's next: the block's slot is four slots away.
    clock = lambda: dpos.slot_time(head.slot + 1, GENESIS_TIME, node.constants)  # noqa: E731
    net = Network(node, key("honest-node"), listen=("127.0.0.1", 0), clock=clock)
    await net.start()
    try:
        reader, writer = await connect("127.0.0.1", net.port, chain.genesis, key("hasty"))
        writer.write(encode_frame(messages.announce_block(early.encode())))
        await writer.drain()
        deadline = asyncio.get_running_loop().time() + 5
        while not net.peers or next(iter(net.peers.values())).score == 100:
            assert asyncio.get_running_loop().time() < deadline, "the early block was not refused"
            await asyncio.sleep(0.02)
        assert node.head == head and not node.store.has_block(early.hash)
        writer.close()
    finally:
        await net.stop()
        node.close()
