"""``/api/plugins/ble/``: what the running hub has heard, its BLE devices, and adding one.

The CLI (``hub ble ...``) goes through these routes: only the running hub holds the adapter.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from hub.context import PluginContext

from hub_ble.config import BleDevice


def router(hub: PluginContext) -> APIRouter:
    api = APIRouter()

    def ble():
        return hub.data["ble"]

    def adapter() -> dict:
        b = ble()
        return {"adapter": b.config.adapter, "scanning": b.scanning, "error": b.adapter_error,
                "advertisements": b.advertisements}

    @api.get("/discovered")
    async def discovered() -> dict:
        """Every address heard since the hub started, newest first: what ``hub ble scan`` shows."""
        rows = sorted(ble().discovered.values(), key=lambda r: r.get("last_seen") or 0, reverse=True)
        return {**adapter(), "devices": [dict(r) for r in rows]}

    @api.get("/devices")
    async def devices() -> dict:
        return {**adapter(), "devices": [d.describe() for d in ble().devices.values()]}

    @api.post("/devices", status_code=201)
    async def add(body: BleDevice) -> dict:
        """Add a device as the configuration would (same fields); kept across restarts."""
        try:
            device = ble().add(body)
        except KeyError:
            raise HTTPException(409, f"address: {body.address} is already a BLE device of this hub") from None
        return device.describe()

    return api
