"""The dashboard: static files served by the hub itself, at ``/``, on the API's port.

No Node toolchain at run time and no build step: plain ES modules and one stylesheet in
``hub/api/static/``, shipped in the package. The pages call the same token-protected REST API and
WebSocket as the CLI, so the dashboard can do nothing a token could not; serving them needs no token
(they hold no data), and the headers keep the pages from being framed or from loading anything that
is not the hub's own.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")

#: Only the hub's own scripts, styles and API; no inline script; never inside another site's frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> Response:
    return FileResponse(STATIC / "index.html", headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


class _Static(StaticFiles):
    async def get_response(self, path, scope):  # type: ignore[override]
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-cache")  # revalidated (ETag), never stale after an upgrade
        return response


def mount(app) -> None:
    app.include_router(router)
    app.mount("/static", _Static(directory=STATIC), name="static")
