"""The FastAPI application: routes, plugin routers, and one error shape for every failure.

Every error body is ``{"error": code, "message": text}`` (plus ``errors`` naming each field for
validation failures), so a client needs one parser; bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import inspect
import logging

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub import __version__
from hub.api import metrics, routes, rules, scenes, scripts, tokens, web, webhook, ws
from hub.api.auth import require_token
from hub.api.jsonsafe import DeclaredSizeCheck, JsonBodyCheck
from hub.api.limits import MAX_BODY_BYTES
from hub.api.sessions import Sessions
from hub.core.commands import CommandError
from hub.identity import anchor_api
from hub.identity import api as identity_api
from hub.market import cheques_api
from hub.market import api as market_api

log = logging.getLogger("hub.api")

# Newer FastAPI traces and logs requests through OpenTelemetry, exporting them when an environment
# variable says so. A hub keeps its requests (tokens, device commands) to itself: off, always.
_NO_TELEMETRY = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False, "auto_configure": False}}
    if "telemetry" in inspect.signature(FastAPI).parameters
    else {}
)

_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 422: "invalid_request",
}


class _App(FastAPI):
    def build_middleware_stack(self):
        # Outermost, where FastAPI's own body limit cannot replace its answer (see DeclaredSizeCheck).
        return DeclaredSizeCheck(super().build_middleware_stack(), MAX_BODY_BYTES)


#: What Starlette's body limit says; a route's own 413 (a rule over its size) keeps its message.
_DEFAULT_413 = frozenset({"Content Too Large", "Request Entity Too Large"})


def create_app(hub) -> FastAPI:
    app = _App(
        title="Ruff Hub API",
        version=__version__,
        description="Devices, entities, states, commands and history of a Ruff Hub. "
        "Authenticate with `Authorization: Bearer <token>` (`hub token create NAME`).",
        docs_url="/docs",
        redoc_url=None,
        max_body_size=MAX_BODY_BYTES,  # for every route, plugin routes too; 413 before reading
        **_NO_TELEMETRY,
    )
    app.add_middleware(JsonBodyCheck)
    app.state.hub = hub
    app.state.sessions = Sessions(hub.store)
    app.include_router(routes.public)
    app.include_router(identity_api.router)  # its own auth: a signed command's signature is the credential
    app.include_router(routes.router)
    app.include_router(rules.router)
    app.include_router(scenes.router)
    app.include_router(scripts.router)
    app.include_router(webhook.router)  # no token: the webhook id is the secret, as in Home Assistant
    app.include_router(ws.router)
    app.include_router(metrics.router)
    app.include_router(tokens.router)  # owner-only: the dashboard makes a token per browser
    web.mount(app)  # the dashboard's page and static files, at /
    app.include_router(anchor_api.router)
    app.include_router(cheques_api.router)  # its own auth: the renter's signature is the credential
    app.include_router(market_api.router)  # the owner's routes need the token, a renter's a signature
    for plugin, router in hub.routers:
        app.include_router(router, prefix=f"/api/plugins/{plugin}", dependencies=[Depends(require_token)])

    @app.exception_handler(CommandError)
    async def command_error(request: Request, exc: CommandError) -> JSONResponse:
        return JSONResponse(exc.as_dict(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"error": "invalid_request", "message": detail, "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        headers = dict(getattr(exc, "headers", None) or {})
        message = str(exc.detail)
        if exc.status_code == 413:
            if message in _DEFAULT_413:  # FastAPI's own limit (a body without Content-Length), not a route's
                message = f"body: larger than the limit of {MAX_BODY_BYTES} bytes"
            headers["connection"] = "close"  # so the server does not go on reading the rest of it
        return JSONResponse({"error": code, "message": message}, status_code=exc.status_code, headers=headers or None)

    return app


__all__ = ["create_app"]
