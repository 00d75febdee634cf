"""``GET /api/plugins/lightnode/status``: each configured address, whether its link is up, which
device answers there and why it last failed; ``GET .../resets/{device_id}``: the last factory reset
a device signed (public evidence, no secret in it), for ``hub device reset`` to publish."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from hub.context import PluginContext

from hub_lightnode.devices import device_id_for


def snapshot(hub: PluginContext) -> dict:
    devices = hub.data["devices"]
    return {
        "links": [
            {
                "address": link.address,
                "connected": link.connected,
                "device_id": device_id_for(link.hello["device"]) if link.hello else None,
                "model": link.hello["model"] if link.hello else None,
                "failures": link.failures,
                "last_error": link.last_error,
            }
            for link in devices.links
        ],
        "resets": sorted(devices.resets),
    }


def router(hub: PluginContext) -> APIRouter:
    api = APIRouter()

    @api.get("/status")
    def status() -> dict:
        return snapshot(hub)

    @api.get("/resets/{device_id}")
    def last_reset(device_id: str) -> dict:
        signed = hub.data["devices"].resets.get(device_id)
        if signed is None:
            raise HTTPException(404, f"{device_id}: no reset seen since the hub started")
        return signed.to_json()

    return api
