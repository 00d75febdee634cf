"""Domain-separated signing bytes.

A signature covers ``encode(["ruff", domain, chain_id, genesis_hash, body])``: the domain names the
kind of object (``tx``, ``block``, ``auth``, ...), and the chain id with the genesis hash names the
network. The chain id alone is not enough: every devnet is called ``ruff-devnet``, so a transfer
signed for one devnet was valid on every other. The genesis hash commits to the whole genesis file
(time, balances, producers, constants), so nothing signed for one network verifies on another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.crypto.encoding import encode

MAGIC = "ruff"


@dataclass(frozen=True)
class Network:
    """The network a signature is made for: the chain id people read and the genesis hash that
    tells apart two networks of the same id."""

    chain_id: str
    genesis_hash: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.chain_id, str):
            raise TypeError("chain_id must be text")
        if not isinstance(self.genesis_hash, bytes) or len(self.genesis_hash) != 32:
            raise TypeError("genesis_hash must be 32 bytes")


def signing_bytes(domain: str, network: Network, body: Any) -> bytes:
    # A bare chain id here would sign without the genesis: refuse it instead of signing the wrong bytes.
    if not isinstance(network, Network):
        raise TypeError(f"signing needs a Network (chain id and genesis hash), not {type(network).__name__}")
    return encode([MAGIC, domain, network.chain_id, network.genesis_hash, body])
