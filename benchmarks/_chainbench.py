"""Shared set-up of the chain benchmarks: a one-producer genesis and many pre-signed transfers."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.chain.protocol import payloads as p  # noqa: E402
from hub.chain.protocol.genesis import Genesis  # noqa: E402
from hub.chain.protocol.tx import Transaction  # noqa: E402
from hub.crypto.address import address_of, encode_address  # noqa: E402
from hub.crypto.keys import PrivateKey  # noqa: E402

CHAIN = "bench"
GENESIS_TIME = 1_700_000_000_000


def key(name: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(name.encode()).digest())


PRODUCER = key("producer")


def setup(senders: int, **constants) -> tuple[Genesis, list[PrivateKey]]:
    keys = [key(f"sender{i}") for i in range(senders)]
    genesis = Genesis(chain_id=CHAIN, genesis_time=GENESIS_TIME, producers=[PRODUCER.public_key.hex()],
                      balances={encode_address(address_of(k.public_key)): 10**15 for k in keys},
                      constants={"BLOCK_INTERVAL": 1000, **constants})
    return genesis, keys


def transfers(genesis: Genesis, keys: list[PrivateKey], count: int, first_nonce: int = 1) -> list[Transaction]:
    """``count`` transfers signed for ``genesis``, round-robin over ``keys`` so each sender's nonces rise by one."""
    out = []
    to = address_of(key("recipient").public_key)
    for i in range(count):
        k = keys[i % len(keys)]
        out.append(Transaction.create(k, genesis.network, "transfer", p.Transfer(to=to, amount=1 + i % 7),
                                      nonce=first_nonce + i // len(keys), fee=10_000,
                                      valid_until=GENESIS_TIME + 3_600_000))
    return out
