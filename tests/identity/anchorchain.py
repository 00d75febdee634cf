"""A ChainAccess double for anchoring tests in one process (spec16.md's Protocol): one producer
whose blocks the test makes (``produce``), the ``command_log`` rule of the protocol (``first`` is the
keeper's next index, checked at admission against the head state and again in the block), state
entries shaped as on the real chain. It can be taken offline. Real-process tests use the real chain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from hub.crypto.address import address_of
from hub.crypto.encoding import encode
from hub.chain.access import ChainUnavailable, TxRefused


@dataclass
class Tx:
    hash: bytes
    type: str
    sender: bytes
    payload: dict


@dataclass
class Block:
    height: int
    hash: bytes
    timestamp: int
    final: bool
    txs: list = field(default_factory=list)


class AnchorChain:
    def __init__(self) -> None:
        self.up = False
        self.height = 0
        self.final = 0
        self.mempool: list[tuple[Tx, bytes]] = []
        self.clog: dict[bytes, tuple[int, int]] = {}
        self.anchor: dict[bytes, tuple] = {}
        self.fates: dict[bytes, dict] = {}
        self.blocks: dict[int, Block] = {}
        self.submitted = 0

    def available(self) -> bool:
        return self.up

    def head(self) -> tuple[int, int]:
        return self.height, self.final

    async def submit(self, key: Any, tx_type: str, payload: dict) -> bytes:
        if not self.up:
            raise ChainUnavailable("the test took the chain offline")
        sender = address_of(key.public_key)
        if any(addr == sender for _, addr in self.mempool):
            raise TxRefused("replacement_fee_too_low", "a pending transaction has this nonce")
        self._check(sender, payload)
        self.submitted += 1
        tx = Tx(hashlib.sha256(encode([sender, payload, self.submitted])).digest(), tx_type, key.public_key, payload)
        self.mempool.append((tx, sender))
        self.fates[tx.hash] = {"status": "pending", "height": None, "reason": None}
        return tx.hash

    def _check(self, sender: bytes, payload: dict) -> None:
        expected = self.clog.get(sender, (0, 0))[0]
        if payload["first"] != expected or payload["count"] <= 0:
            raise TxRefused("log_gap", f"first {payload['first']}, the keeper's next index is {expected}")

    def produce(self, timestamp: int = 0) -> Block:
        """One block with every pending transaction that still passes; it is final at once (one producer)."""
        self.height += 1
        block = Block(self.height, hashlib.sha256(b"block%d" % self.height).digest(), timestamp, True)
        for tx, sender in self.mempool:
            try:
                self._check(sender, tx.payload)
            except TxRefused as exc:
                self.fates[tx.hash] = {"status": "refused", "height": None, "reason": exc.reason}
                continue
            p = tx.payload
            nxt, batches = self.clog.get(sender, (0, 0))
            self.clog[sender] = (p["first"] + p["count"], batches + 1)
            self.anchor[sender + p["first"].to_bytes(8, "big")] = (p["root"], p["count"], p["first_time"],
                                                                   p["last_time"], self.height)
            self.fates[tx.hash] = {"status": "final", "height": self.height, "reason": None}
            block.txs.append(tx)
        self.mempool = []
        self.blocks[self.height] = block
        self.final = self.height
        return block

    async def status(self, tx_hash: bytes) -> dict:
        if not self.up:
            raise ChainUnavailable("offline")
        return self.fates.get(tx_hash, {"status": "unknown", "height": None, "reason": None})

    async def state(self, ns: str, key: Any) -> Any:
        if not self.up:
            raise ChainUnavailable("offline")
        return {"clog": self.clog, "anchor": self.anchor}[ns].get(key)

    async def blocks_since(self, height: int, limit: int = 100) -> list[Block]:
        return [self.blocks[h] for h in range(height + 1, min(self.height, height + limit) + 1)]

    def anchored(self) -> int:
        """Commands anchored on chain, over every batch of every keeper."""
        return sum(entry[1] for entry in self.anchor.values())
