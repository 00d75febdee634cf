"""A one-producer devnet node with a few blocks of transactions, and its RPC app in-process."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hub.chain.node.node import ChainNode
from hub.chain.node.rpc import create_rpc_app
from hub.chain.protocol.constants import RUFF

from tests.chain.chainkit import GENESIS_TIME, Wallet, key, make_genesis

PRODUCER = key("producer0")
ALICE, BOB, CAROL = key("alice"), key("bob"), key("carol")
NOW = GENESIS_TIME + 10_000


class Chain:
    def __init__(self, node: ChainNode) -> None:
        self.node = node
        self.slot = 0
        self.wallets = {k: Wallet(k, node.state) for k in (ALICE, BOB, CAROL)}
        self.txs = []

    def produce(self):
        self.slot += 1
        return self.node.produce(GENESIS_TIME + 500 * self.slot)


@pytest.fixture
def chain(tmp_path):
    # QUORUM 100 %: carol's vote counts, yet no election replaces the one producer at round ends.
    g = make_genesis([PRODUCER], {ALICE: 100 * RUFF, BOB: 100 * RUFF, CAROL: 100 * RUFF}, QUORUM=10_000)
    node = ChainNode(tmp_path / "chain", g, PRODUCER)
    c = Chain(node)
    a = c.wallets[ALICE]
    for _ in range(3):  # block 1: three transfers
        tx = a.send(BOB, RUFF)
        node.submit(tx.raw, NOW)
        c.txs.append(tx)
    c.produce()
    reg = c.wallets[BOB].tx("register_candidate", {"name": "bob"}, fee=11 * RUFF)
    node.submit(reg.raw, NOW)
    c.txs.append(reg)
    c.produce()  # block 2: bob stands
    vote = c.wallets[CAROL].tx("vote", {"candidates": [reg.sender_address]})
    node.submit(vote.raw, NOW)
    c.txs.append(vote)
    c.produce()  # block 3: carol votes for bob
    c.produce()  # block 4: empty
    yield c
    node.close()


@pytest.fixture
def client(chain):
    with TestClient(create_rpc_app(chain.node, now=lambda: NOW)) as tc:
        yield tc
