"""``POST /api/webhook/<id>``: Home Assistant's webhook trigger. The id is the secret (as in HA), so
there is no token; an unknown id is a bare 404, the same as any unknown path, so ids cannot be
probed. The body is read up to a small bound: a webhook carries a few fields, not a file."""

from __future__ import annotations

import ipaddress
import json
import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

MAX_WEBHOOK_BYTES = 64 * 1024

router = APIRouter(prefix="/api")
log = logging.getLogger("hub.rules")


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            raise HTTPException(413, f"a webhook body is at most {MAX_WEBHOOK_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def is_local(host: str | None) -> bool:
    """HA's ``local_only``: loopback, private and link-local addresses (a hub behind a reverse
    proxy sees the proxy's address, so such a proxy must do its own filtering)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_private or address.is_link_local


@router.api_route("/webhook/{webhook_id}", methods=["POST", "PUT", "GET", "HEAD"], summary="Fire a rule's webhook trigger")
async def webhook(webhook_id: str, request: Request) -> Response:
    engine = getattr(request.app.state.hub, "rules", None)  # None: the hub runs without rules
    watches = list(getattr(engine, "webhooks", {}).get(webhook_id, ())) if engine is not None else []
    if not watches:
        raise HTTPException(404, "Not Found")
    method = request.method.upper()
    watches = [w for w in watches if method in w.allowed_methods]
    if not watches:
        raise HTTPException(405, f"this webhook does not take {method} (its trigger's allowed_methods)")
    local = is_local(request.client.host if request.client else None)
    remote_refused = [w for w in watches if w.local_only and not local]
    if remote_refused:
        # as in HA: logged and answered 200, so a remote caller learns nothing about local webhooks
        log.warning("webhook: a request from %s for a local_only webhook was ignored", request.client.host if request.client else "?")
        watches = [w for w in watches if w not in remote_refused]
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
