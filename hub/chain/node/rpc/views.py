"""What the RPC routes return, read from a :class:`ChainNode`.

Every function here is synchronous and expects the caller to hold ``node.lock`` (the routes run
them through ``asyncio.to_thread`` under the lock), so the in-memory state and the store are read at
one head, never halfway through a commit. They return plain JSON-ready dicts, or ``None`` for
"unknown" (the route turns that into a 404). Bytes are hex; addresses are ``ruff1...``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from hub.chain.format import header_json as _header_json
from hub.chain.format import ruff as _ruff
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block, Header
from hub.chain.protocol.tx import Transaction
from hub.crypto import merkle
from hub.crypto.address import address_of, encode_address

MAX_HEADERS = 200  # per /headers request


def jsonable(value: Any) -> Any:
    """Payload values for JSON: bytes as hex, recursively; everything else as it is."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class HeaderCache:
    """Headers by block hash (immutable, so caching by hash is always right): a light client asking
    for the same batch again does not make the node decode whole blocks again."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.items: OrderedDict[bytes, Header] = OrderedDict()

    def get(self, node, block_hash: bytes) -> Header | None:
        header = self.items.get(block_hash)
        if header is not None:
            self.items.move_to_end(block_hash)
            return header
        block = node.store.block(block_hash)
        if block is None:
            return None
        self.put(block)
        return block.header

    def put(self, block: Block) -> None:
        self.items[block.hash] = block.header
        if len(self.items) > self.size:
            self.items.popitem(last=False)


def head(node) -> dict:
    h, lib = node.head, node.lib
    c = node.constants
    return {"chain_id": node.genesis.chain_id, "genesis_hash": node.state.genesis_hash.hex(),
            "height": h.height, "hash": h.hash.hex(), "slot": h.slot, "round": dpos.round_of(h.height, c),
            "timestamp": h.timestamp, "state_hash": h.state_hash.hex(),
            "lib": {"height": lib, "hash": _hex(node.store.canonical_hash(lib))},
            "mempool": len(node.mempool), "block_interval": c.BLOCK_INTERVAL, "producers": c.PRODUCERS,
            "clock": node.clock_watch.status()}


def _hex(value: bytes | None) -> str | None:
    return value.hex() if value is not None else None


def find_block(node, ident: int | bytes) -> Block | None:
    if isinstance(ident, int):
        return node.store.canonical_block(ident) if ident > 0 else None
    return node.store.block(ident)


def header_json(node, header: Header) -> dict:
    """The CLI's header fields (``hub chain block --json``) plus what a verifier needs."""
    block_hash = header.hash
    canonical = node.store.canonical_hash(header.height) == block_hash
    data = _header_json(Block(header))
    del data["transactions"]
    data.update({"producer_key": header.producer.hex(), "sig": header.sig.hex(), "chain_id": header.chain_id,
                 "canonical": canonical, "irreversible": canonical and header.height <= node.lib,
                 "raw": header.encode().hex()})
    return data


def block(node, ident: int | bytes) -> dict | None:
    blk = find_block(node, ident)
    if blk is None:
        return None
    data = header_json(node, blk.header)
    data["transactions"] = len(blk.txs)
    data["tx_hashes"] = [hashlib.sha256(raw).hexdigest() for raw in blk.txs]  # a tx hash is of its wire bytes
    return data


def headers(node, cache: HeaderCache, start: int, count: int) -> dict:
    out = []
    for height in range(start, min(start + count, node.head.height + 1)):
        block_hash = node.store.canonical_hash(height)
        header = cache.get(node, block_hash) if block_hash is not None else None
        if header is None:
            break
        out.append(header_json(node, header))
    return {"head": node.head.height, "lib": node.lib, "headers": out}


def tx_fields(tx: Transaction) -> dict:
    return {"hash": tx.hash.hex(), "type": tx.type, "sender": encode_address(tx.sender_address),
            "sender_key": tx.sender.hex(), "nonce": tx.nonce, "fee": tx.fee, "valid_until": tx.valid_until,
            "payload": jsonable(tx.payload), "sig": tx.signature.hex(), "raw": tx.raw.hex()}


def transaction(node, tx_hash: bytes) -> dict | None:
    where = node.store.tx_location(tx_hash)
    if where is None:
        pending = node.mempool.by_hash.get(tx_hash)
        if pending is not None:
            return {**tx_fields(pending), "status": "pending"}
        fate = node.mempool.fate(tx_hash)  # refused or dropped: say why rather than "not found"
        if fate is None:
            return None
        return {"hash": tx_hash.hex(), "status": fate.status, "reason": fate.reason.value, "message": str(fate)}
    height, index = where
    blk = node.store.canonical_block(height)
    tx = Transaction.from_bytes(blk.txs[index])
    path = merkle.inclusion_proof(list(blk.txs), index)
    return {**tx_fields(tx), "status": "irreversible" if height <= node.lib else "included",
            "height": height, "index": index, "block": blk.hash.hex(),
            "proof": {"tx_root": blk.header.tx_root.hex(), "tree_size": len(blk.txs), "index": index,
                      "path": [p.hex() for p in path]}}


def _candidate(state, address: bytes, now: int) -> dict | None:
    cand = state.get("cand", address)
    if cand is None:
        return None
    name, public_key, registered = cand
    ban = state.get("ban", address, 0)
    return {"name": name, "public_key": bytes(public_key).hex(), "registered_at": registered,
            "disqualified_at": state.get("dq", address), "banned_until": ban if ban > now else None,
            "produced": state.get("prod", address, 0), "missed": state.get("miss", address, 0)}


def account(node, address: bytes, now: int) -> dict:
    state = node.state
    balance = state.balance(address)
    return {"address": encode_address(address), "balance": balance, "balance_ruff": _ruff(balance),
            "nonce": state.nonce(address), "candidate": _candidate(state, address, now),
            # What the sender's next transaction uses: its pending ones in the mempool come first.
            "next_nonce": state.nonce(address) + len(node.mempool.by_sender.get(address, {})) + 1,
            # Genesis producers need not be registered candidates, and evidence disqualifies them too.
            "disqualified_at": state.get("dq", address),
            "vote": [encode_address(a) for a in state.get("vote", address) or ()]}


def candidates(node, now: int) -> dict:
    state, c = node.state, node.constants
    weights, stake = dpos.vote_tally(state)
    order = {address_of(pk) for pk in dpos.schedule_after(state)}
    elected = {address_of(pk) for pk in state.meta("elected") or ()}
    # Won the last round end's election, not yet a producer: it takes effect a round later, once
    # more than 2/3 of the producers have built on it (docs/chain.md, the pending schedule).
    pending = {address_of(pk) for pk in state.meta("pending") or ()} - elected
    rows = []
    for address, _ in state.items("cand"):
        info = _candidate(state, address, now)
        weight = weights.get(address, 0)
        rows.append({"address": encode_address(address), **info, "weight": weight, "weight_ruff": _ruff(weight),
                     "disqualified": info["disqualified_at"] is not None, "banned": info["banned_until"] is not None,
                     "producing": address in order, "elected": address in elected, "pending": address in pending})
    rows.sort(key=lambda r: (-r["weight"], r["address"]))
    supply = state.meta("supply") or 0
    return {"candidates": rows, "voted_stake": stake, "supply": supply,
            "quorum": stake * 10_000 >= c.QUORUM * supply if supply else False}


def schedule(node, now: int) -> dict:
    """``hub chain producers --json`` from the node's state, plus the slot clock."""
    state, c, h = node.state, node.constants, node.head
    order = dpos.schedule_after(state)
    elected = {bytes(pk) for pk in state.meta("elected") or ()}
    rows = []
    for i, pk in enumerate(order):
        a = address_of(pk)
        cand = state.get("cand", a)
        ban = state.get("ban", a, 0)
        rows.append({"position": i, "address": encode_address(a), "public_key": pk.hex(),
                     "name": cand[0] if cand else None, "produced": state.get("prod", a, 0),
                     "missed": state.get("miss", a, 0), "banned_until": ban if ban > now else None,
                     "disqualified": state.get("dq", a) is not None, "next_round": pk in elected})
    slot = max(h.slot + 1, dpos.slot_at(now, state.genesis_time, c))
    return {"round": dpos.round_of(h.height + 1, c), "head": h.height, "lib": node.lib, "now": now,
            "next_slot": slot, "next_slot_time": dpos.slot_time(slot, state.genesis_time, c),
            "next_producer": encode_address(address_of(dpos.slot_owner(order, slot))), "producers": rows}
