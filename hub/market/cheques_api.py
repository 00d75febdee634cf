"""``POST /api/market/cheques``: a renter hands the owner's hub its cheques (no token).

The renter has no token of this hub: the renter's signature is the credential, and the cheque book
(:mod:`hub.market.cheques`) refuses anything that would not pay this hub. So the route is strict on
size (one cheque, or a list of up to :data:`MAX_BATCH`, at most :data:`MAX_BODY` bytes) and answers
each cheque with ``{ok: true, amount, call_amount, duplicate}`` or ``{ok: false, reason, message}``;
a single cheque's refusal also sets the HTTP status (a 4xx, ``cheques.STATUS``). A list is checked
in order and kept in one commit, in a worker thread, so a batch of 100 (or the market noting a
block under the book's lock) does not hold up the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import require_token

from hub.market.cheques import STATUS

MAX_BATCH = 100
MAX_BODY = 128 * 1024  # a cheque is ~700 bytes of JSON: a full batch fits with room to spare

router = APIRouter(prefix="/api/market")


def cheque_book(services: dict[str, Any]) -> Any:
    """The market's cheque book, or None while the market is not running."""
    return getattr(services.get("market"), "cheques", None)


@router.post(
    "/cheques",
    summary="Hand over cheques for metered use (no token: the renter's signature is the credential)",
    description=f"The body is one signed cheque (`{{kind: \"cheque\", body, sig}}`, bytes as hex) or a list of up "
    f"to {MAX_BATCH}, checked in order. Each answer is `{{ok: true, amount, call_amount, duplicate}}` or "
    "`{ok: false, reason, message}`; reasons: " + ", ".join(sorted(STATUS)) + ".",
)
async def cheques(request: Request, body: Any = Body(...)) -> Any:
    if len(await request.body()) > MAX_BODY:
        raise HTTPException(413, f"body: larger than the limit of {MAX_BODY} bytes for cheques")
    book = cheque_book(request.app.state.hub.services)
    if book is None:
        raise HTTPException(409, "the market is not running on this hub (no chain, or no controller key)")
    if isinstance(body, list):
        if not 1 <= len(body) <= MAX_BATCH:
            raise HTTPException(422, f"body: a list of 1 to {MAX_BATCH} cheques expected, got {len(body)}")
        return JSONResponse(await asyncio.to_thread(book.accept_many, body))
    answer = (await asyncio.to_thread(book.accept_many, [body]))[0]
    return JSONResponse(answer, status_code=200 if answer["ok"] else STATUS[answer["reason"]])


class WatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rpc: list[str] = Field(min_length=1, max_length=16, description="Full nodes' RPC URLs (http://host:port).")


@router.post("/watch", dependencies=[Depends(require_token)],
             summary="Hand this hub's latest cheque per channel to full nodes that answer closes for it",
             description="Each node keeps the cheque (`POST /watch` on its RPC) and, should the renter close the "
             "channel alone with less while this hub is away, answers with it. Cheques already handed to a node "
             "are not sent again. One answer per (node, channel).")
async def watch(request: Request, body: WatchRequest) -> Any:
    follower = request.app.state.hub.services.get("cheques")
    if follower is None:
        raise HTTPException(409, "the market is not running on this hub (no chain, or no controller key)")
    for url in body.rpc:
        if not url.startswith(("http://", "https://")):
            raise HTTPException(422, f"rpc: {url!r} is not an http:// or https:// URL")
    return {"handed": await asyncio.to_thread(follower.hand_over, body.rpc)}
