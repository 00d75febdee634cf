"""``GET /genesis``: the node's genesis document, so a client with only the node's URL can sign.

A transaction's signature covers the chain's identity and its fee depends on the genesis constants;
``hub chain send --rpc URL`` (and the other chain commands) reads both from here, and checks the
document's hash against ``/head``'s ``genesis_hash``. A client that must not trust the node keeps
its own copy of the genesis instead (the light client's trust anchor).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse


def add_genesis_route(app: FastAPI, node: Any) -> None:
    document = json.loads(node.genesis.to_json())  # immutable: encoded once

    @app.get("/genesis", summary="The chain's genesis document (chain id, time, producers, balances, constants)")
    async def get_genesis() -> JSONResponse:
        return JSONResponse(document)
