"""HTTP routes of the identity gate.

``POST /api/devices/{id}/signed-commands`` takes no bearer token: the signature is the credential
(a renter has no token of this hub), and the gate refuses anything its signer may not do. So the
route is as strict as the rest of the API on size (one command, or a list of up to
:data:`MAX_BATCH`, at most :data:`MAX_BODY` bytes) and answers each command with
``{ok, result}`` or ``{ok: false, reason, message}``; a single command's refusal also sets the
HTTP status (errors.STATUS: a 4xx). ``GET /api/identity`` tells a signer which network to sign for.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from hub.core.commands import CommandError
from hub.crypto.statements import Signed, StatementError
from hub.identity.errors import STATUS, Reason, Refused

MAX_BATCH = 100
MAX_BODY = 256 * 1024

router = APIRouter(prefix="/api")


def _identity(request: Request) -> Any:
    identity = request.app.state.hub.services.get("identity")
    if identity is None:
        raise HTTPException(409, "the identity gate is not running")
    return identity


@router.get("/identity", summary="The network signed statements are bound to (no token needed)",
            description="With `device=ID`, also that device's public key (public: a signer needs it).")
async def network(request: Request, device: str | None = None) -> dict[str, Any]:
    identity = _identity(request)
    net = identity.network
    found = None
    if device is not None:
        record = identity.record(device)
        if record is None:
            raise HTTPException(404, f"device: {device!r} has no identity on this hub")
        found = {"id": record.device_id, "public_key": record.public_key, "holds_key": record.holds_key}
    return {
        "device": found,
        "signed_control": net is not None,
        "chain_id": net.chain_id if net else None,
        "genesis_hash": net.genesis_hash.hex() if net else None,
        "window": identity.window_ms / 1000,
        "controller": identity.controller_key.public_key.hex() if net else None,
    }


async def _one(identity: Any, device_id: str, data: Any) -> tuple[int, dict[str, Any]]:
    try:
        signed = Signed.from_json(data)
    except StatementError as exc:
        return STATUS[Reason.MALFORMED], {"ok": False, "reason": Reason.MALFORMED.value, "message": str(exc)}
    try:
        result = await identity.signed_call(signed, device_id=device_id)
    except Refused as exc:
        return exc.status, {"ok": False, "reason": exc.reason.value, "message": getattr(exc, "detail", exc.message)}
    except CommandError as exc:
        return exc.status, {"ok": False, "reason": exc.code, "message": exc.message}
    if not isinstance(result, (type(None), bool, int, float, str)):
        result = jsonable_encoder(result)  # a driver's answer, as the token route gives it back
    return 200, {"ok": True, "result": result}


@router.post(
    "/devices/{device_id:path}/signed-commands",
    summary="Run signed commands (no token: the signature is the credential)",
    description=f"The body is one signed command (`{{kind: \"command\", body, sig}}`, bytes as hex) or a list "
    f"of up to {MAX_BATCH}, run in order. Each answer is `{{ok, result}}` or `{{ok: false, reason, message}}`; "
    "reasons: malformed, wrong_chain, wrong_device, forged, replayed, stale, unbound, not_authorised, not_granted.",
)
async def signed_commands(device_id: str, request: Request, body: Any = Body(...)) -> Any:
    if len(await request.body()) > MAX_BODY:
        raise HTTPException(413, f"body: larger than the limit of {MAX_BODY} bytes for signed commands")
    identity = _identity(request)
    if isinstance(body, list):
        if not 1 <= len(body) <= MAX_BATCH:
            raise HTTPException(422, f"body: a list of 1 to {MAX_BATCH} signed commands expected, got {len(body)}")
        # A JSONResponse of plain dicts: FastAPI's encoder would walk 100 answers again for nothing.
        return JSONResponse([(await _one(identity, device_id, item))[1] for item in body])
    status, answer = await _one(identity, device_id, body)
    return JSONResponse(answer, status_code=status)


def identity_of(hub: Any, device_id: str) -> dict[str, Any] | None:
    """What GET /api/devices shows of a device's identity (no secrets), or None."""
    identity = hub.services.get("identity")
    record = identity.record(device_id) if identity is not None else None
    return record.as_dict() if record is not None else None


# The ownership routes (hub/identity/api_binding.py), token-protected, under the same /api prefix.
from hub.identity.api_binding import router as _ownership  # noqa: E402

router.include_router(_ownership)
