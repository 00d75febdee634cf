"""Routes of ownership (token-protected, like the rest of the owner's API): a device's key, bind,
transfer, sale offer, reset, share, revoke. ``hub device ...`` calls these; the flows are
:mod:`hub.identity.binding`.

A label's seed may arrive in a request body (``label``, for a client that cannot sign); it is used
to sign and dropped with the request: no answer, log line or table holds it. ``hub device bind``
signs on the user's machine instead and sends only the signed binding.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import require_token
from hub.crypto.statements import Signed, StatementError
from hub.identity.errors import Refused

#: Included by ``hub.identity.api.router`` (prefix ``/api``).
router = APIRouter(dependencies=[Depends(require_token)], tags=["identity"])

HEX64 = r"^[0-9a-fA-F]{64}$"
MAX_LABEL = 200  # the longest label text is ~110 characters


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyBody(_Body):
    public_key: str = Field(pattern=HEX64, description="The device's Ed25519 public key, 64 hex digits.")
    replace: bool = Field(False, description="Give a bound device a new key, forgetting its binding and grants.")


class BindBody(_Body):
    signed: dict[str, Any] | None = Field(None, description="A Bind signed with the label's key (whitepaper mode).")
    label: str | None = Field(None, max_length=MAX_LABEL, description="The label text (either mode).")


class TransferBody(_Body):
    to: str = Field(pattern=HEX64, description="The new controller's public key.")


class SaleBody(_Body):
    price: int = Field(gt=0, lt=2**64, description="Base units (1 RUFF = 1,000,000).")
    expires_in: int = Field(3600, gt=0, description="Seconds the offer stays open.")
    buyer: str | None = Field(None, pattern=HEX64, description="Only this key may buy (default: anyone).")


class ResetBody(_Body):
    signed: dict[str, Any] | None = Field(None, description="A Reset signed by the device key.")
    label: str | None = Field(None, max_length=MAX_LABEL, description="A keyless device's label (its reset button).")


class ShareBody(_Body):
    to: str = Field(pattern=HEX64, description="The second admin's (or guest's) public key.")
    commands: list[str] | None = Field(None, max_length=32, description="ENTITY.COMMAND names; default every command.")
    until: int = Field(0, ge=0, lt=2**64, description="Unix ms the grant ends; 0: no end.")


class RevokeBody(_Body):
    grantee: str | None = Field(None, pattern=HEX64, description="Revoke this key's grants only (default: all).")


#: The error code of a flow's own refusals (a device's carry the device's reason instead).
_CODES = {404: "not_found", 409: "conflict", 422: "invalid_request", 502: "device_unreachable"}


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def _binder(request: Request):
    """The flows over the running hub's identity and chain services, or an answer saying what is missing."""
    from hub.identity.binding import Binder

    hub = request.app.state.hub
    identity = hub.services.get("identity")
    if identity is None:
        return None
    return Binder(identity, lambda: hub.services.get("chain"), lambda: int(hub.now() * 1000),
                  request_proof=_proof_requester(hub, identity))


def _proof_requester(hub: Any, identity: Any):
    asked = getattr(identity, "request_bind_proof", None)
    if asked is not None:
        return asked

    async def ask(device_id: str, controller: bytes, nonce: bytes, mac: bytes) -> Signed:
        entry = hub.devices.get(device_id)
        if entry is None:
            raise Refused("wrong_device", f"unknown device {device_id!r}")
        ctx = hub.contexts.get(entry.platform)
        if ctx is None or hub.plugins.impl(entry.platform, "hub_request_bind_proof") is None:
            raise Refused("unbound", f"{device_id}: its driver {entry.platform!r} is not running or cannot ask for a proof")
        # Hooks name a device by the driver's own id, as hub_deliver_statement does.
        proof = await hub.plugins.call_one(entry.platform, "hub_request_bind_proof", timeout=10,
                                           hub=ctx, device_id=device_id.split(":", 1)[1],
                                           controller=controller, nonce=nonce, code_mac=mac)
        if isinstance(proof, dict):
            proof = Signed.from_body(proof)
        return proof

    return ask


async def _run(request: Request, device_id: str, flow) -> Any:
    from hub.identity.binding import BindingError
    from hub.identity.labels import LabelError

    hub = request.app.state.hub
    if hub.devices.get(device_id) is None:
        return _error(404, "not_found", f"unknown device {device_id!r}")
    binder = _binder(request)
    if binder is None:
        return _error(409, "no_identity", "the identity service is not running on this hub")
    try:
        result = await flow(binder)
    except Refused as exc:
        return _error(exc.status, exc.reason.value, exc.message)
    except BindingError as exc:
        return _error(exc.status, _CODES.get(exc.status, "refused"), exc.message)
    except (StatementError, LabelError) as exc:
        return _error(422, "invalid_request", str(exc))
    return result.as_dict() if hasattr(result, "as_dict") else result


@router.post("/devices/{device_id:path}/identity", summary="Set a keyless device's public key (hub device keygen)")
async def set_identity(request: Request, device_id: str, body: KeyBody) -> Any:
    """Only for a device the hub represents: a key-holding device's driver declares its key. A key is
    one device's (the identity store would move it silently), and a new key on a bound device is a
    new device, its binding forgotten: both are refused unless meant."""
    from hub.identity.binding import BindingError

    public_key = bytes.fromhex(body.public_key)

    async def flow(binder):
        entry = request.app.state.hub.devices.get(device_id)
        if getattr(entry, "holds_key", False):
            raise BindingError(409, f"{device_id!r} holds its own key; its driver declares it")
        identity = binder.identity
        other = identity.device_for_key(public_key)
        if other is not None and other != device_id:
            raise BindingError(409, f"that key is already {other!r}'s; a device key belongs to one device")
        rec = identity.record(device_id)
        if rec is not None and rec.controller and rec.public_key != public_key.hex() and not body.replace:
            raise BindingError(409, f"{device_id!r} is bound (controller {rec.controller[:16]}...): a new key forgets "
                                    "that binding; reset it first (hub device reset --label) or pass replace")
        identity.set_key(device_id, public_key, False)
        return {"device": device_id, "public_key": public_key.hex(), "holds_key": False}

    return await _run(request, device_id, flow)


@router.post("/devices/{device_id:path}/bind", summary="Bind a device to this hub's controller key")
async def bind(request: Request, device_id: str, body: BindBody) -> Any:
    from hub.identity import labels

    if (body.signed is None) == (body.label is None):
        return _error(422, "invalid_request", "give either `signed` (a Bind) or `label` (the label text)")

    async def flow(binder):
        if body.signed is not None:
            return await binder.bind(device_id, signed=Signed.from_json(body.signed))
        return await binder.bind(device_id, label=labels.parse(body.label))

    return await _run(request, device_id, flow)


@router.post("/devices/{device_id:path}/transfer", summary="Hand control over to another key")
async def transfer(request: Request, device_id: str, body: TransferBody) -> Any:
    return await _run(request, device_id, lambda b: b.transfer(device_id, bytes.fromhex(body.to)))


@router.post("/devices/{device_id:path}/sale", summary="A signed offer to sell the device on chain")
async def sale(request: Request, device_id: str, body: SaleBody) -> Any:
    async def flow(binder):
        offer = await binder.offer(device_id, body.price, body.expires_in * 1000,
                                   bytes.fromhex(body.buyer) if body.buyer else None)
        return {"device": device_id, "offer": offer.to_json()}

    return await _run(request, device_id, flow)


@router.post("/devices/{device_id:path}/reset", summary="Factory reset: the device's signed reset")
async def reset(request: Request, device_id: str, body: ResetBody) -> Any:
    from hub.identity import binding, labels

    if (body.signed is None) == (body.label is None):
        return _error(422, "invalid_request", "give either `signed` (a Reset) or `label` (a keyless device's label)")

    async def flow(binder):
        if body.signed is not None:
            signed = Signed.from_json(body.signed)
        else:
            signed = binding.sign_reset(labels.parse(body.label), binder.now_ms(), binder.network)
        return await binder.reset(device_id, signed)

    return await _run(request, device_id, flow)


@router.post("/devices/{device_id:path}/shares", summary="Grant a second key some or all commands")
async def share(request: Request, device_id: str, body: ShareBody) -> Any:
    from hub.identity.binding import parse_commands

    async def flow(binder):
        return await binder.share(device_id, bytes.fromhex(body.to), parse_commands(body.commands), body.until)

    return await _run(request, device_id, flow)


@router.post("/devices/{device_id:path}/revoke", summary="Void grants (one key's, or all) from the next epoch on")
async def revoke(request: Request, device_id: str, body: RevokeBody) -> Any:
    return await _run(request, device_id,
                      lambda b: b.revoke(device_id, bytes.fromhex(body.grantee) if body.grantee else None))
