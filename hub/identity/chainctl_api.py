"""``/api/plugins/chainctl/``: what chain-state control did (behind the hub's token).

``GET /commands`` lists the latest ``control_command`` transactions the hub took for its devices,
newest first, with their outcome and the ``state_change`` that reports it; ``GET /commands/{tx}``
one of them (404 when the hub never took it: not for its devices, or not final yet).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException, Query

_HASH = re.compile(r"[0-9a-fA-F]{64}")


def router(store: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/commands")
    def commands(limit: int = Query(100, ge=1, le=1000)) -> dict:
        return {"commands": [t.as_dict() for t in store.recent(limit)]}

    @api.get("/commands/{tx_hash}")
    def command(tx_hash: str) -> dict:
        if not _HASH.fullmatch(tx_hash):
            raise HTTPException(422, "tx_hash: a transaction hash is 64 hex digits")
        found = store.get(bytes.fromhex(tx_hash))
        if found is None:
            raise HTTPException(404, f"no control_command {tx_hash} was taken by this hub (not for its devices, "
                                "or not in a final block yet)")
        return found.as_dict()

    return api
