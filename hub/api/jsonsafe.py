"""JSON from clients, held to what JSON itself allows and to a depth the hub can handle.

Python's ``json`` accepts ``NaN``, ``Infinity`` and ``-Infinity`` (and reads ``1e999`` as infinity),
which are not JSON: passed on, they reach WebSocket subscribers as text no other parser reads, and
drivers as numbers no device takes. Deep nesting is refused too: 100,000 ``[`` make ``json.loads``
raise RecursionError, and a few hundred still make every later walk over the value (validation,
storage, encoding) recursive work for nothing; no message of this API nests beyond a dozen levels.

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

MAX_DEPTH = 64


class JsonError(ValueError):
    """Not acceptable JSON; the message says what and where."""


def _no_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"{text} is out of the range of a number")
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH, where: str = "") -> None:
    """Iterative, so the check itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise JsonError(f"{where}nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    try:
        value = json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except JsonError:
        raise
    except RecursionError:
        raise JsonError(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # syntax, bad UTF-8, an integer of more than 4,300 digits
        raise JsonError(str(exc)) from None
    check_depth(value, max_depth)
    return value


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
