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

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import JSONResponse

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
