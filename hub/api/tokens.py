"""Owner-only token management over the API, so the dashboard can make a token for a browser.

Who is the owner: the token named ``owner``. The hub makes it at first start
(``Runtime.ensure_owner_token``) and writes it to ``<data>/owner-token``, readable only by the
account that runs the hub, so holding it proves access to the hub's data directory; a token made
here or with ``hub token create`` is a user's and can read and command, but not mint or revoke
tokens (otherwise one leaked browser token could make itself permanent). Only someone with the data
directory can name a token ``owner`` (``hub token create owner`` after revoking it); the API refuses
that name. Tokens are shown once, at creation; the list gives names and dates, never a token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from hub.api.auth import require_token
from hub.core.state import iso
from hub.store.tokens import TokenError

OWNER = "owner"


async def require_owner(name: str = Depends(require_token)) -> str:
    if name != OWNER:
        raise HTTPException(403, f"only the owner token manages tokens; this request used token {name!r} "
                                 "(sign in with the token in the hub's data directory, file owner-token)")
    return name


router = APIRouter(prefix="/api/tokens", tags=["tokens"], dependencies=[Depends(require_owner)])


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "created_at": iso(row["created_at"]), "last_used": iso(row.get("last_used")),
            "owner": row["name"] == OWNER}


@router.get("", summary="Token names and dates (never a token): owner only")
async def list_tokens(request: Request) -> list[dict[str, Any]]:
    return [_row(r) for r in request.app.state.hub.store.list_tokens()]


@router.post("", status_code=201, summary="Create a token and return it once: owner only")
async def create_token(request: Request, body: NewToken) -> dict[str, Any]:
    if body.name == OWNER:
        raise HTTPException(422, f"name: {OWNER!r} is the owner token's name; choose another")
    try:
        token = request.app.state.hub.store.create_token(body.name)
    except TokenError as exc:
        status = 409 if "already exists" in str(exc) else 422
        raise HTTPException(status, f"name: {exc}") from None
    return {"name": body.name, "token": token}


@router.delete("/{name}", summary="Revoke a token: owner only (not the owner token itself)")
async def revoke_token(request: Request, name: str) -> dict[str, Any]:
    if name == OWNER:
        raise HTTPException(422, "the owner token cannot be revoked from the API (it would lock the owner out); "
                                 "use `hub token revoke owner` on the hub")
    if not request.app.state.hub.store.revoke_token(name):
        raise HTTPException(404, f"no token named {name!r}")
    return {"name": name, "revoked": True}
