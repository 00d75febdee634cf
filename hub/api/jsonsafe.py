"""JSON from clients of the hub API, held to strict JSON and a bounded depth (:mod:`hub.net.jsonstrict`,
shared with the chain node's RPC).

The same check serves every entry point: request bodies (:class:`JsonBodyCheck`, an ASGI middleware,
so plugin routes and rule bodies are covered too) and WebSocket messages (:func:`loads`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from hub.net.jsonstrict import MAX_DEPTH, JsonError, check_depth, loads  # noqa: F401 - the API's names for them


def is_json(content_type: str | None) -> bool:
    """What FastAPI parses as JSON (with its default strict content type)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def error_response(status: int, error: str, field: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "message": f"{field}: {message}", "errors": [{"field": field, "message": message}]},
        status_code=status,
        headers=headers or None,
    )


def too_large(limit: int | None) -> JSONResponse:
    shown = f" of {limit} bytes" if limit is not None else ""
    # Connection: close, so the server stops reading the rest of the body.
    return error_response(413, "payload_too_large", "body", f"larger than the limit{shown}", connection="close")


class DeclaredSizeCheck:
    """Answers a request whose Content-Length exceeds the limit with the API's error shape.

    FastAPI's own limit (``max_body_size``) counts what arrives and refuses it in time, but replaces
    any answer to a request that declared too long a body with a plain-text one; this middleware goes
    outside it and answers first, without reading any of the body."""

    def __init__(self, app, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            declared = Headers(scope=scope).get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_size:
                await too_large(self.max_body_size)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class JsonBodyCheck:
    """Reads a JSON request body (through FastAPI's size limit, which sits outside this middleware),
    refuses it with a 413 or 422 naming the problem, or hands it on to the route unchanged."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not is_json(Headers(scope=scope).get("content-type")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except HTTPException as exc:
            if exc.status_code != 413:
                raise
            await too_large(scope.get("starlette.max_body_size"))(scope, receive, send)
            return
        body = b"".join(chunks)
        if body:
            try:
                loads(body)
            except JsonError as exc:
                await error_response(422, "invalid_request", "body", str(exc))(scope, receive, send)
                return
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def dumps(value: Any) -> str:
    """Strict JSON for clients; a non-finite number that reached a state some other way than
    through the API (a driver's NaN) goes out as null rather than as invalid JSON."""
    try:
        return json.dumps(value, allow_nan=False)
    except ValueError:
        return json.dumps(_finite_or_none(value), allow_nan=False)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value
