"""A small read-only view of the embedded chain under ``/api/plugins/chain/`` (the node's full RPC,
with transaction submission, is issue #6)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException


def router(node: Any) -> APIRouter:
    from hub.crypto.address import AddressError, decode_address, encode_address

    api = APIRouter()

    @api.get("/head")
    def head() -> dict:
        h = node.head
        return {"chain_id": node.genesis.chain_id, "height": h.height, "hash": h.hash.hex(), "slot": h.slot,
                "timestamp": h.timestamp, "state_hash": h.state_hash.hex(), "lib": node.lib,
                "mempool": len(node.mempool)}

    @api.get("/accounts/{address}")
    def account(address: str) -> dict:
        try:
            raw = decode_address(address)
        except AddressError as exc:
            raise HTTPException(422, f"address: {exc}") from None
        with node.lock:
            return {"address": encode_address(raw), "balance": node.state.balance(raw), "nonce": node.state.nonce(raw)}

    return api
