"""``POST /api/webhook/<id>``: Home Assistant's webhook trigger. The id is the secret (as in HA), so
there is no token; an unknown id is a bare 404, the same as any unknown path, so ids cannot be
probed. The body is read up to a small bound: a webhook carries a few fields, not a file."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

MAX_WEBHOOK_BYTES = 64 * 1024

router = APIRouter(prefix="/api")


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise HTTPException(413, f"a webhook body is at most {MAX_WEBHOOK_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/webhook/{webhook_id}", summary="Fire a rule's webhook trigger")
async def webhook(webhook_id: str, request: Request) -> Response:
    engine = getattr(request.app.state.hub, "rules", None)  # None: the hub runs without rules
    watches = list(getattr(engine, "webhooks", {}).get(webhook_id, ())) if engine is not None else []
    if not watches:
        raise HTTPException(404, "Not Found")
    body = await _body(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    payload, data = None, {}
    try:
        if kind == "application/json" or (not kind and body[:1] in (b"{", b"[")):
            payload = json.loads(body) if body else None
        elif kind == "application/x-www-form-urlencoded":
            data = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"the webhook body is not valid {kind or 'JSON'}: {exc}") from None
    for watch in watches:
        watch.received(payload, data, dict(request.query_params))
    return Response(status_code=200)
