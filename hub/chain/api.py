"""The hub's read-only view of its chain under ``/api/plugins/chain/``, in both modes.

- Embedded (``chain:``): the hub's own full node. ``router(node)``.
- Remote (``chain: {rpc:, genesis:}``): a light client following a full node's RPC.
  ``remote_router(remote)``, a :class:`hub.chain.remote.RemoteChain`.

Same routes, same shapes where they mean the same thing: ``GET /head`` (with ``mode``),
``GET /tx/{hash}`` (the transaction with ``verified`` and ``final``), ``GET /accounts/{address}``
(in remote mode only with a state proof checked against a verified header; a 502 otherwise), and in
embedded mode ``GET /devices/{public key}`` (a binding) and ``GET /anchors/{address}`` (command-log
batches), as the node's RPC answers them. Submitting
transactions is the node's RPC (``POST /tx``) or the ``hub chain`` CLI.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Query

_HASH = re.compile(r"[0-9a-fA-F]{64}")


def _tx_hash(text: str) -> bytes:
    if not _HASH.fullmatch(text):
        raise HTTPException(422, "a transaction hash is 64 hex digits")
    return bytes.fromhex(text)


def _address(text: str) -> bytes:
    from hub.crypto.address import AddressError, decode_address

    try:
        return decode_address(text)
    except AddressError as exc:
        raise HTTPException(422, f"address: {exc}") from None


def router(node: Any) -> APIRouter:
    """Embedded mode: the hub's own node (reads hold ``node.lock``; the routes run in worker threads)."""
    from hub.crypto.address import encode_address

    api = APIRouter()

    @api.get("/head")
    def head() -> dict:
        with node.lock:
            h, lib = node.head, node.lib
            lib_hash = node.store.canonical_hash(lib) if lib > 0 else node.genesis.hash
        return {"mode": "embedded", "chain_id": node.genesis.chain_id, "height": h.height, "hash": h.hash.hex(),
                "slot": h.slot, "timestamp": h.timestamp, "state_hash": h.state_hash.hex(), "lib": lib,
                "final": {"height": lib, "hash": lib_hash.hex() if lib_hash is not None else None},
                "mempool": len(node.mempool)}

    @api.get("/tx/{tx_hash}")
    def transaction(tx_hash: str) -> dict:
        from hub.chain.node.rpc.views import transaction as find

        wanted = _tx_hash(tx_hash)
        with node.lock:
            found = find(node, wanted)
            lib = node.lib
        if found is None:
            raise HTTPException(404, f"no transaction {tx_hash} in the chain or the mempool")
        included = isinstance(found.get("height"), int)
        return {**found, "verified": included, "final": included and found["height"] <= lib,
                "verification": "in a block of the hub's own full node" if included else "not in a block yet"}

    @api.get("/accounts/{address}")
    def account(address: str) -> dict:
        raw = _address(address)
        with node.lock:
            return {"address": encode_address(raw), "balance": node.state.balance(raw), "nonce": node.state.nonce(raw),
                    "verified": True}

    @api.get("/devices/{public_key}")
    def device(public_key: str) -> dict:
        """The device's binding on the hub's chain (404 when it was never bound there)."""
        from hub.chain.node.rpc import device_routes as views

        try:
            raw = views.parse_public_key(public_key)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        try:
            with node.lock:
                return {**views.device(node.state, raw), "verified": True}
        except views.NotFound as exc:
            raise HTTPException(404, exc.message) from None

    @api.get("/anchors/{address}")
    def anchors(address: str, start: int = Query(0, alias="from", ge=0, lt=2**64),
                limit: int = Query(100, ge=1, le=100)) -> dict:
        """A page of the command-log batches ``address`` anchored (``GET /anchors`` of the node RPC)."""
        from hub.chain.node.rpc import device_routes as views

        raw = _address(address)
        try:
            with node.lock:
                return {**views.anchors(node.state, raw, start, limit), "verified": True}
        except views.NotFound as exc:
            raise HTTPException(404, exc.message) from None

    return api


def remote_router(remote: Any) -> APIRouter:
    """Remote mode: the light client's view (async routes: the light client lives on the event loop)."""
    from hub.chain.remote import NodeAnswered, NodeUnreachable

    api = APIRouter()

    def _node_error(exc: Exception) -> HTTPException:
        if isinstance(exc, NodeAnswered):
            return HTTPException(exc.status if exc.status in (404, 422) else 502, f"the node at {remote.url}: {exc.message}")
        return HTTPException(503, f"the node at {remote.url} cannot be reached: {exc}")

    @api.get("/head")
    async def head() -> dict:
        return remote.head()

    @api.get("/tx/{tx_hash}")
    async def transaction(tx_hash: str) -> dict:
        wanted = _tx_hash(tx_hash)
        try:
            found = await remote.transaction(wanted)
        except (NodeAnswered, NodeUnreachable) as exc:
            raise _node_error(exc) from None
        if found is None:
            raise HTTPException(404, f"the node at {remote.url} knows no transaction {tx_hash}")
        return found

    @api.get("/accounts/{address}")
    async def account(address: str) -> dict:
        from hub.crypto.address import encode_address

        raw = _address(address)
        try:
            return await remote.account(encode_address(raw))
        except (NodeAnswered, NodeUnreachable) as exc:
            raise _node_error(exc) from None

    return api
