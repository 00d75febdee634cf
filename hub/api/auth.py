"""Bearer-token authentication.

Every route but ``GET /api/health`` needs ``Authorization: Bearer <token>``. Tokens are long-lived and
made with ``hub token create NAME``; the store keeps only their hashes.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status


def token_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_token(request: Request) -> str:
    """Returns the token's name, which becomes the ``source`` of the commands it sends."""
    token = token_from_header(request.headers.get("authorization"))
    if token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing 'Authorization: Bearer <token>' header; create a token with `hub token create NAME`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    name = request.app.state.hub.store.check_token(token)
    if name is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )
    return name
