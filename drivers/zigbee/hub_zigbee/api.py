"""``/api/plugins/zigbee/``: pairing, the device table, removal and backups of the running hub.

The CLI (``hub zigbee ...``) goes through these routes, as ``hub call`` does: only the running hub
holds the serial port, so only it can speak to the network.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from hub.context import PluginContext

from hub_zigbee.gateway import NoAnswer, RadioDown, UnknownDevice



class PermitJoinBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration: int = Field(60, ge=0, le=254, description="Seconds the network accepts new devices; 0 closes it.")


def _normal_ieee(text: str) -> str:
    """``00:12:4b:...``, ``00124B...`` or ``0x00124b...`` alike, as users copy them from labels."""
    raw = text.strip().lower().removeprefix("0x").replace(":", "").replace("-", "")
    if not re.fullmatch(r"[0-9a-f]{16}", raw):
        raise HTTPException(422, f"ieee: {text!r} is not an IEEE address (16 hex digits, e.g. 00:12:4b:00:01:02:03:04)")
    return ":".join(raw[i:i + 2] for i in range(0, 16, 2))


def router(hub: PluginContext) -> APIRouter:
    api = APIRouter()

    def gateway():
        return hub.data["gateway"]

    @api.post("/permit_join")
    async def permit_join(body: PermitJoinBody | None = None) -> dict:
        try:
            until = await gateway().permit((body or PermitJoinBody()).duration)
        except RadioDown as exc:
            raise HTTPException(503, str(exc)) from None
        return {"until": until}

    @api.get("/devices")
    async def devices() -> dict:
        g = gateway()
        open_until = g.permit_until if g.permit_until > hub.now() else None
        return {"connected": g.app is not None, "permit_until": open_until, "devices": g.describe()}

    @api.delete("/devices/{ieee}")
    async def remove(ieee: str = Path(description="The device's IEEE address."),
                     force: bool = Query(False, description="Forget it even if it does not confirm.")) -> dict:
        address = _normal_ieee(ieee)
        try:
            await gateway().remove(address, force=force)
        except RadioDown as exc:
            raise HTTPException(503, str(exc)) from None
        except UnknownDevice:
            raise HTTPException(404, f"ieee: no device {address} in the Zigbee network") from None
        except NoAnswer as exc:
            raise HTTPException(504, str(exc) + " (?force=true)") from None
        return {"removed": address, "device_id": gateway().registry_id(address)}

    @api.post("/backup")
    async def backup() -> dict:
        try:
            path = await hub.data["radio"].backup_now()
        except RuntimeError as exc:
            raise HTTPException(503, str(exc)) from None
        return {"path": str(path)}

    return api
