"""What an operator asks a node: its version, peers and bans, sync state, mempool, and metrics; and
the admin routes that change its peers (``POST /peers``, ``DELETE /bans/{key}``).

The admin routes need the node's admin token (``Authorization: Bearer <token>``, the token in
``DATA/rpc-admin.token``, written by ``hub chain node`` at start with mode 0600): whoever can reach
the RPC cannot choose a node's peers, which is how an eclipse starts. A token rather than "loopback
clients only": behind a reverse proxy on the same machine every client is loopback.

Peer control itself belongs to the p2p layer: the routes call ``network.add_peer(host, port)`` and
``network.unban(key)``, and answer 501 on a node whose network has neither.
"""

from __future__ import annotations

import hmac
import inspect
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.chain.node.rpc import metrics, netviews

MAX_MEMPOOL_PAGE = 500  # transactions per GET /mempool


class AddPeer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(min_length=3, max_length=300, description="host:port of the peer's p2p listener")


def add_ops_routes(app: FastAPI, node, *, read: Callable[..., Awaitable[Any]], clock: Callable[[], int],
                   network: Any, admin_token: str | None, max_streams: int) -> None:
    from hub.chain.node.rpc import RpcError, _body, _json

    def admin(request: Request) -> None:
        if not admin_token:
            raise RpcError(403, "forbidden", "admin routes are off on this node (it was started without an admin token)")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), admin_token.encode()):
            raise RpcError(401, "unauthorized", "admin routes need 'Authorization: Bearer <token>', "
                           "the token in the node's DATA/rpc-admin.token")

    def network_method(name: str) -> Callable[..., Any]:
        method = getattr(network, name, None)
        if method is None:
            raise RpcError(501, "not_implemented", f"this node's network cannot {name.replace('_', ' ')}")
        return method

    @app.get("/version", summary="Software and chain of this node")
    async def version() -> dict:
        return netviews.version(node)

    @app.get("/peers", summary="Connected peers and banned keys or addresses")
    async def peers() -> dict:
        return netviews.peers(network)

    @app.get("/sync", summary="Whether the node is catching up, and with whom")
    async def sync() -> dict:
        heights = await read(lambda n: (n.head.height, n.lib))
        return netviews.sync(network, *heights)

    @app.get("/mempool", summary="Pending transactions, in arrival order, a page at a time")
    async def mempool(offset: int = Query(0, ge=0, le=10**9),
                      limit: int = Query(100, ge=1, le=MAX_MEMPOOL_PAGE)) -> dict:
        """`transactions` holds at most `limit` (≤ 500) from position `offset`; `next` is the
        offset of the next page, or null. The mempool changes between pages: a transaction
        included meanwhile shifts later ones forward."""
        return await read(_mempool_page, offset, limit)

    @app.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def get_metrics() -> Response:
        chain = await read(metrics.chain_figures, clock())
        text = metrics.render(chain, netviews.peers(network), netviews.sync(network, chain["head"], chain["lib"]),
                              rpc={"streams": app.state.streams, "max_streams": max_streams,
                                   "submissions": dict(app.state.admissions)})
        return Response(text, media_type=metrics.CONTENT_TYPE)

    @app.post("/peers", summary="Admin: connect to a peer", status_code=202,
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": AddPeer.model_json_schema()}}}})
    async def add_peer(request: Request) -> dict:
        """`{"address": "host:port"}`; the node dials it (and redials it, as a configured peer)."""
        admin(request)
        try:
            wanted = AddPeer.model_validate(_json(await _body(request, 4096)))
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            raise RpcError(422, "invalid_request", detail) from None
        host, port = _host_port(wanted.address, RpcError)
        try:
            result = network_method("add_peer")(host, port)
            if inspect.isawaitable(result):
                result = await result
        except ValueError as exc:  # PeerLimitError (a ValueError) first: the limit is the conflict
            if type(exc).__name__ == "PeerLimitError":
                raise RpcError(409, "conflict", str(exc)) from None
            raise RpcError(422, "invalid_request", f"address: {exc}") from None
        return {"address": f"{host}:{port}", "status": "dialling" if result is not False else "already dialled"}

    @app.delete("/bans/{key}", summary="Admin: lift a ban on a node key or address")
    async def lift_ban(key: str, request: Request) -> dict:
        admin(request)
        if not 1 <= len(key) <= 300:
            raise RpcError(422, "invalid_request", "a ban is named by a node key (hex) or a host:port, up to 300 characters")
        try:
            result = network_method("unban")(key)
            if inspect.isawaitable(result):
                result = await result
        except ValueError as exc:
            raise RpcError(422, "invalid_request", str(exc)) from None
        if result is False:
            raise RpcError(404, "not_found", f"no ban on {key}")
        return {"lifted": key}


def _host_port(text: str, error: type) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise error(422, "invalid_request", f"address: {text!r} is not host:port with a port 1-65535")
    return host, int(port)


def _mempool_page(node, offset: int, limit: int) -> dict:
    from hub.chain.node.rpc.views import encode_address

    pool = node.mempool
    size = len(pool)
    page = itertools.islice(pool.by_hash.values(), offset, offset + limit)
    txs = [{"hash": tx.hash.hex(), "type": tx.type, "sender": encode_address(tx.sender_address), "nonce": tx.nonce,
            "fee": tx.fee, "size": len(tx.raw), "valid_until": tx.valid_until} for tx in page]
    return {"size": size, "capacity": pool.max_txs, "offset": offset, "limit": limit, "transactions": txs,
            "next": offset + len(txs) if offset + len(txs) < size else None}
