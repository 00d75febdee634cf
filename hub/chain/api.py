"""The hub's read-only view of its chain under ``/api/plugins/chain/``, in both modes.

- Embedded (``chain:``): the hub's own full node. ``router(node)``.
- Remote (``chain: {rpc:, genesis:}``): a light client following a full node's RPC.
  ``remote_router(remote)``, a :class:`hub.chain.remote.RemoteChain`.

Same routes, same shapes where they mean the same thing: ``GET /head`` (with ``mode``),
``GET /tx/{hash}`` (the transaction with ``verified`` and ``final``), ``GET /accounts/{address}``
(in remote mode only with a state proof checked against a verified header; a 502 otherwise), in
embedded mode ``GET /devices/{public key}`` (a binding), ``GET /anchors/{address}`` (command-log
batches) and ``GET /schedule`` (the round's producers, as the node RPC's), in both ``GET /account`` (the
hub's own: its controller key's), as the node's RPC answers them, and in both modes the market's reads (``GET /contracts``,
``/contracts/{id}``, ``/calls/{id}``, ``/channels/{id}``, ``/channels``, ``/reviews/{key}``;
remote: each record proven, the lists marked unverified). Submitting
transactions is the node's RPC (``POST /tx``) or the ``hub chain`` CLI.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request

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


def _own_address(request: Request) -> str:
    """The hub's own account on its chain: the address of its controller key (hub/identity), the key
    that signs the owner's transactions and that the market pays."""
    from hub.crypto.address import address_of, encode_address

    identity = request.app.state.hub.services.get("identity")
    if identity is None:
        raise HTTPException(409, "the identity gate is not running, so this hub has no key on the chain")
    return encode_address(address_of(identity.controller_key.public_key))


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

    @api.get("/account", summary="This hub's own account: its controller key's address, balance, nonce")
    def own_account(request: Request) -> dict:
        return account(_own_address(request))

    @api.get("/schedule", summary="This round's producers in order, with produced/missed counts and bans")
    def schedule() -> dict:
        import time

        from hub.chain.node.rpc import views

        with node.lock:
            return views.schedule(node, time.time_ns() // 1_000_000)

    _add_market(api, node)
    return api


def _add_market(api: APIRouter, node: Any) -> None:
    """The node RPC's market reads (``market_routes``), answered from the hub's own node."""
    import asyncio

    from hub.chain.node.rpc.market_routes import add_market_routes

    async def read(fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with node.lock:
                return {**fn(node, *args), "verified": True}
        return await asyncio.to_thread(locked)

    add_market_routes(api, read, lambda status, _code, message: HTTPException(status, message))


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

    @api.get("/account", summary="This hub's own account, proven against a verified header")
    async def own_account(request: Request) -> dict:
        return await account(_own_address(request))

    _add_remote_market(api, remote, _node_error)
    return api


def _add_remote_market(api: APIRouter, remote: Any, node_error: Any) -> None:
    """The market reads in remote mode. One contract, call, channel or review count is shown only
    as proven against a header the light client verified (``GET /state/{ns}/proof``, one proof per
    record); the lists (``GET /contracts``, ``GET /channels``) are the node's answer, marked
    ``verified: false`` (a list cannot be proven complete key by key)."""
    import urllib.parse

    from hub.chain.access import ChainUnavailable, RemoteAccess
    from hub.chain.node.rpc import market_routes as views
    from hub.chain.remote import NodeAnswered, NodeUnreachable

    access = RemoteAccess(remote)

    def parsed(text: str, what: str) -> bytes:
        try:
            return views.parse_id(text, what)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    async def proven(ns: str, key: bytes) -> Any:
        try:
            return await access.state(ns, key)
        except ChainUnavailable as exc:
            raise HTTPException(502, f"not shown: {exc}") from None

    def verified(answer: dict) -> dict:
        light = remote.light
        return {**answer, "verified": True, "at": light.head.height, "source": remote.url,
                "verification": "state proofs checked against the light client's verified headers"}

    async def unverified(path: str, query: dict) -> dict:
        clean = {k: v for k, v in query.items() if v is not None}
        try:
            found = await remote.get_json(f"{path}?{urllib.parse.urlencode(clean)}" if clean else path)
        except (NodeAnswered, NodeUnreachable) as exc:
            raise node_error(exc) from None
        return {**found, "verified": False, "source": remote.url,
                "verification": "the node's answer: a list is not proven; read each entry by its id for a proof"}

    @api.get("/contracts")
    async def contracts(device: str | None = None, live: bool | None = None,
                        start: str | None = Query(None, alias="from"), limit: int = Query(100, ge=1, le=100)) -> dict:
        query = {"device": device, "live": None if live is None else str(live).lower(), "from": start, "limit": limit}
        return await unverified("/contracts", query)

    @api.get("/channels")
    async def channels(renter: str | None = None, payee: str | None = None) -> dict:
        return await unverified("/channels", {"renter": renter, "payee": payee})

    @api.get("/contracts/{contract_id}")
    async def contract(contract_id: str) -> dict:
        cid = parsed(contract_id, "contract")
        record = await proven("contract", cid)
        if record is None:
            raise HTTPException(404, f"no contract {contract_id} on chain")
        dev = await proven("dev", record[0])
        live = dev is not None and dev[0] == record[1]  # market.is_live, from the proven records
        return verified({**views.contract_view(cid, record, live, await proven("rev", cid)),
                         "device_reviews": views.reviews_view(record[0], await proven("rev", record[0]))})

    @api.get("/calls/{call_id}")
    async def call(call_id: str) -> dict:
        key = parsed(call_id, "call")
        record = await proven("call", key)
        if record is None:
            raise HTTPException(404, f"no call {call_id} on chain")
        terms = (await proven("contract", record[0]) or (None,) * 4)[3]
        return verified(views.call_view(key, record, terms, await proven("reviewed", key),
                                        remote.light.constants.REFUND_TIMEOUT))

    @api.get("/channels/{chan_id}")
    async def channel(chan_id: str) -> dict:
        key = parsed(chan_id, "channel")
        record = await proven("chan", key)
        if record is None:
            raise HTTPException(404, f"no channel {chan_id} on chain")
        return verified(views.channel_view(key, record))

    @api.get("/reviews/{key}")
    async def reviews(key: str) -> dict:
        raw = parsed(key, "contract or device")
        return verified(views.reviews_view(raw, await proven("rev", raw)))
