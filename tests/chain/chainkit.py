"""Building blocks for chain tests: deterministic keys, small genesis files, a simulated chain."""

from __future__ import annotations

import hashlib

from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.genesis import Genesis
from hub.chain.protocol.state import State
from hub.chain.protocol.transition import Applied, build_block
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network

CHAIN = "testnet"
GENESIS_TIME = 1_000_000
FAST = {"PRODUCERS": 4, "BLOCK_INTERVAL": 500}


def key(name: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(name.encode()).digest())


def addr(k: PrivateKey) -> bytes:
    return address_of(k.public_key)


def make_genesis(producers: list[PrivateKey], balances: dict[PrivateKey, int] | None = None, **constants) -> Genesis:
    return Genesis(
        chain_id=CHAIN,
        genesis_time=GENESIS_TIME,
        producers=[k.public_key.hex() for k in producers],
        balances={encode_address(addr(k)): v for k, v in (balances or {}).items()},
        constants={**FAST, **constants},
    )


def network_of(where) -> Network:
    """The network of a Network, Genesis, State or Sim (signatures are bound to the genesis)."""
    return where if isinstance(where, Network) else where.network


class Wallet:
    """Signs transactions for one key, for one network (``where``: its genesis, state, or sim),
    with the right next nonce."""

    def __init__(self, k: PrivateKey, where) -> None:
        self.key, self.network, self.nonce = k, network_of(where), 0
        self.valid_until = GENESIS_TIME + 20 * 3_600_000  # within MAX_TX_LIFETIME of the early blocks

    def tx(self, tx_type: str, payload, *, fee: int = RUFF // 100, valid_until: int | None = None, nonce: int | None = None) -> Transaction:
        if nonce is None:
            self.nonce += 1
            nonce = self.nonce
        valid_until = self.valid_until if valid_until is None else valid_until
        # A dict goes on the wire as it is (so tests can sign invalid payloads too).
        return Transaction.create(self.key, self.network, tx_type, payload, nonce=nonce, fee=fee, valid_until=valid_until)

    def send(self, to: PrivateKey | bytes, amount: int, **kw) -> Transaction:
        to_addr = to if isinstance(to, bytes) else addr(to)
        return self.tx("transfer", {"to": to_addr, "amount": amount}, **kw)


class Sim:
    """A chain on a simulated clock: each call produces the next block with whoever owns the slot."""

    def __init__(self, genesis: Genesis, producers: list[PrivateKey]) -> None:
        self.genesis = genesis
        self.state: State = genesis.state()
        self.keys = {k.public_key: k for k in producers}
        self.blocks: list[Block] = []

    @property
    def c(self):
        return self.state.constants

    @property
    def network(self) -> Network:
        return self.genesis.network

    def owner(self, slot: int) -> bytes:
        return dpos.slot_owner(dpos.schedule_after(self.state), slot)

    def next_block(self, txs=(), *, skip: int = 0, strict: bool = True) -> Applied:
        """Produce in the slot after the head plus ``skip`` empty slots (their owners miss them)."""
        slot = self.state.head.slot + 1 + skip
        k = self.keys[self.owner(slot)]
        built = build_block(self.state, k, slot, list(txs))
        if strict and built.rejected:
            raise AssertionError(f"rejected: {[(t, str(e)) for t, e in built.rejected]}")
        self.blocks.append(built.applied.block)
        return built.applied

    def run_to_round_end(self) -> None:
        while not dpos.is_round_end(self.state.head.height, self.c):
            self.next_block()
