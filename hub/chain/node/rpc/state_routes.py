"""State proofs for light clients: any key of the ledger, present or absent, against the head's root.

``GET /state/{ns}/proof?key=HEX`` (``key``: the hex of the key's deterministic CBOR, e.g. ``54`` + 20
address bytes for an ``acct`` key; for the device namespaces also the key's plain bytes, e.g. a
device's public key for ``dev``) and ``GET /accounts/{address}/proof`` (the same for an account,
named by its ``ruff1...`` address) answer the head block (height, hash, ``state_root``) and the proof
(``hub.chain.protocol.statetree``: bucket, entries, path; byte strings as hex), read under the node's
lock so proof and head belong together. A light client checks the proof against the ``state_root``
of the header it verified itself, never against the one in this answer; ``present``, ``value`` and
the account's ``balance`` and ``nonce`` are here for reading only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi import Path as PathParam

from hub.chain.protocol import statetree
from hub.chain.protocol.state import NAMESPACES
from hub.crypto.address import AddressError, decode_address, encode_address
from hub.crypto.encoding import DecodeError, decode, encode

MAX_KEY_BYTES = 256  # every key of the ledger is far shorter (an address is 20 bytes)
#: Namespaces whose keys are byte strings of one size (state.py): their key may also be given as
#: its plain bytes in hex (a device's public key as it is written everywhere else). The CBOR form
#: is two bytes longer, so the two cannot be confused.
RAW_KEYS = {"dev": 32, "ctl": 32, "done": 32, "clog": 20, "anchor": 28, "contract": 32, "call": 32, "chan": 32,
            "chanof": 40, "rev": 32, "reviewed": 32}


def _plain(value: Any) -> Any:
    """A state value as JSON: byte strings as hex, tuples as lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def state_proof(node: Any, ns: str, key: Any) -> dict[str, Any]:
    """The proof of ``(ns, key)`` at the node's head (blocking: takes ``node.lock``)."""
    with node.lock:
        head = node.head
        proof = node.state.tree.prove(ns, key)
        root = node.state.state_root()
        value = node.state.get(ns, key)
    return {"height": head.height, "hash": head.hash.hex(), "state_root": root.hex(), "ns": ns,
            "key": encode(key).hex(),
            "present": value is not None, "value": _plain(value), "proof": statetree.encode_proof(proof)}


def add_state_routes(app: FastAPI, node: Any) -> None:
    """Add the state-proof routes of ``node`` (a :class:`~hub.chain.node.node.ChainNode`) to ``app``."""

    @app.get("/state/{ns}/proof", summary="A proof of one state key, present or absent, at the head")
    async def get_state_proof(ns: str = PathParam(..., max_length=16),
                              key: str = Query(..., max_length=2 * MAX_KEY_BYTES,
                                               description="hex of the key's deterministic CBOR")) -> dict:
        """The head's state root and a proof of `(ns, key)` against it: the key's bucket, every entry
        in that bucket (`[ns, key, value]` CBOR, sorted) and the sibling hashes up to the root. The
        key is absent when no entry has it. Check it against the `state_root` of a header you
        verified."""
        if ns not in NAMESPACES:
            raise HTTPException(404, f"no state namespace {ns!r}; there are {', '.join(NAMESPACES)}")
        try:
            raw = bytes.fromhex(key)
            value = raw if len(raw) == RAW_KEYS.get(ns) else decode(raw)
        except ValueError as exc:  # bad hex and DecodeError alike
            why = exc if isinstance(exc, DecodeError) else "not hex"
            raw_too = f" or the key's {RAW_KEYS[ns]} bytes" if ns in RAW_KEYS else ""
            raise HTTPException(422, f"key: the hex of a deterministic-CBOR key{raw_too} is expected ({why})") from None
        return await asyncio.to_thread(state_proof, node, ns, value)

    @app.get("/accounts/{address}/proof", summary="An account's balance and nonce with their state proof")
    async def get_account_proof(address: str = PathParam(..., max_length=128)) -> dict:
        """`GET /state/acct/proof` for the account at `address`, with `balance` and `nonce` (0 and 0
        when the proof shows the account absent)."""
        try:
            raw = decode_address(address)
        except AddressError as exc:
            raise HTTPException(422, f"address: {exc}") from None
        answer = await asyncio.to_thread(state_proof, node, "acct", raw)
        balance, nonce = answer["value"] if answer["present"] else (0, 0)
        return {"address": encode_address(raw), "balance": balance, "nonce": nonce, **answer}


__all__ = ["add_state_routes", "state_proof"]
