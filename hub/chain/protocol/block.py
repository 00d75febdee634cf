"""Block headers and bodies.

A header is the deterministic-CBOR map of chain id, height, round, slot, timestamp, previous hash,
transactions root (RFC 6962 over the transactions' wire bytes), state hash, state root (the bucket
tree over the whole state after the block, ``statetree``), producer public key and signature
(``sig``). The producer signs the header without ``sig`` in the ``block`` domain, bound to the chain
id and the genesis hash (which the header does not carry: the signer and the checker each know their
own network's); the block's hash, which the next block names and the next round's producer order is
seeded with, is
SHA-256 of the whole signed header. The body is the list of transactions' wire bytes, so a
transaction's hash and Merkle leaf are the same bytes everywhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hub.crypto import keys, merkle
from hub.crypto.encoding import DecodeError, decode, encode
from hub.crypto.signing import Network, signing_bytes

DOMAIN = "block"
_HEADER_FIELDS = ("chain_id", "height", "prev_hash", "producer", "round", "sig", "slot", "state_hash",
                  "state_root", "timestamp", "tx_root")
_U64 = 2**64


class BlockFormatError(ValueError):
    """Bytes or a map that is not a well-formed block or header."""


@dataclass(frozen=True)
class Header:
    chain_id: str
    height: int
    round: int
    slot: int
    timestamp: int
    prev_hash: bytes
    tx_root: bytes
    state_hash: bytes
    producer: bytes
    sig: bytes = b""
    state_root: bytes = b"\x00" * 32  # last, with a default, so positional construction is unchanged

    def body(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "height": self.height, "round": self.round, "slot": self.slot,
                "timestamp": self.timestamp, "prev_hash": self.prev_hash, "tx_root": self.tx_root,
                "state_hash": self.state_hash, "state_root": self.state_root, "producer": self.producer}

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "sig": self.sig}

    def encode(self) -> bytes:
        return encode(self.as_dict())

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.encode()).digest()

    def signing_bytes(self, genesis_hash: bytes) -> bytes:
        return signing_bytes(DOMAIN, Network(self.chain_id, genesis_hash), self.body())

    def signed(self, key: keys.PrivateKey, genesis_hash: bytes) -> "Header":
        unsigned = Header(**{**self.body(), "producer": key.public_key})
        return Header(**{**unsigned.body(), "sig": key.sign(unsigned.signing_bytes(genesis_hash))})

    def signature_ok(self, genesis_hash: bytes) -> bool:
        """Signed by its producer for this network (``genesis_hash``: the checker's genesis)."""
        return keys.verify(self.producer, self.signing_bytes(genesis_hash), self.sig)

    @classmethod
    def from_dict(cls, d: Any) -> "Header":
        if not isinstance(d, dict) or tuple(sorted(d)) != _HEADER_FIELDS:
            raise BlockFormatError(f"a header is a map of {', '.join(_HEADER_FIELDS)}")
        if not isinstance(d["chain_id"], str):
            raise BlockFormatError("chain_id must be text")
        for name in ("height", "round", "slot", "timestamp"):
            v = d[name]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < _U64:
                raise BlockFormatError(f"{name} must be an unsigned 64-bit integer")
        for name, size in (("prev_hash", 32), ("tx_root", 32), ("state_hash", 32), ("state_root", 32),
                           ("producer", 32), ("sig", 64)):
            if not isinstance(d[name], bytes) or len(d[name]) != size:
                raise BlockFormatError(f"{name} must be {size} bytes")
        return cls(**d)


@dataclass(frozen=True)
class Block:
    header: Header
    txs: tuple[bytes, ...] = field(default=())
    # The encoding, once made or as decoded (the strict decoder accepts only the one encoding):
    # a block of 2,000 transfers is ~400 KB that its producer stores and sends, and every other
    # node receives and stores; encoding it again each time cost ~0.7 ms.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def hash(self) -> bytes:
        return self.header.hash

    def encode(self) -> bytes:
        if self._encoded is None:
            object.__setattr__(self, "_encoded", encode({"header": self.header.as_dict(), "txs": list(self.txs)}))
        return self._encoded

    @classmethod
    def decode(cls, data: bytes) -> "Block":
        try:
            d = decode(data)
        except DecodeError as exc:
            raise BlockFormatError(str(exc)) from None
        if not isinstance(d, dict) or sorted(d) != ["header", "txs"] or not isinstance(d["txs"], list):
            raise BlockFormatError("a block is a map of header and txs")
        if d["txs"] and set(map(type, d["txs"])) != {bytes}:  # exact types, as decoded, at C speed
            raise BlockFormatError("txs must be a list of encoded transactions")
        block = cls(Header.from_dict(d["header"]), tuple(d["txs"]))
        object.__setattr__(block, "_encoded", bytes(data))
        return block


def tx_root(txs: list[bytes] | tuple[bytes, ...]) -> bytes:
    return merkle.root(list(txs))
