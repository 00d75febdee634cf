"""What a full node's RPC serves light clients beyond ``GET /headers``: schedule proofs.

``GET /blocks/{height}/changes`` answers ``application/cbor``: the encoded, sorted state changes
of the head chain's block at ``height`` (:func:`hub.chain.light.serve.changes_proof`), the bytes its
header's state hash commits to. A light client needs it for each round's last block, to learn the
producer set elected there (docs/light-client.md); any other height is served too (it is how a
client checks a block's changes against its header). 404 for the genesis, a height above the head,
or one the node does not hold.

Kept apart from ``hub/chain/node/rpc/__init__.py`` so that file stays about transactions, blocks and
accounts; ``create_rpc_app`` calls :func:`add_light_routes`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import Response

_MAX_HEIGHT = 2**62  # as the other routes: beyond any chain, within SQLite's integers


def add_light_routes(app: FastAPI, node: Any) -> None:
    """Add the light-client routes of ``node`` (a :class:`~hub.chain.node.node.ChainNode`) to ``app``."""
    from hub.chain.node.rpc.state_routes import add_state_routes

    add_state_routes(app, node)  # state proofs: GET /state/{ns}/proof, GET /accounts/{address}/proof

    @app.get("/blocks/{height}/changes", summary="A block's state changes: a light client's schedule proof",
             response_class=Response, responses={
                 200: {"content": {"application/cbor": {}},
                       "description": "deterministic CBOR `[[namespace, key, new value or null], ...]`, sorted; "
                                      "SHA-256(parent state hash ‖ SHA-256(these bytes)) is the header's state hash"},
                 404: {"description": "no block at that height on the node's head chain (or the genesis)"}})
    async def get_changes(height: int = PathParam(..., ge=0, le=_MAX_HEIGHT)) -> Response:
        """The encoded change list of the head chain's block at `height`. For a round's last block
        it names the producers elected there (`["meta", "elected", [...]]`; absent when the set did
        not change), which a light client needs before it accepts the next round's headers. Served
        for any height; the cost grows with the distance from the head (the node rebuilds the
        changes from its undo records)."""
        from hub.chain.light.serve import changes_proof

        # changes_proof takes node.lock itself (an RLock), in a worker thread: the event loop never
        # waits on SQLite, and the proof is read at one head.
        proof = await asyncio.to_thread(changes_proof, node, height)
        if proof is None:
            if height == 0:
                raise HTTPException(404, "the genesis has no block and no changes; schedule proofs start at height 1")
            raise HTTPException(404, f"no block at height {height} on this node's head chain "
                                     f"(head {node.head.height})")
        return Response(proof, media_type="application/cbor")


__all__ = ["add_light_routes"]
