"""``GET /api/plugins/modbus/status``: what the driver knows that states cannot say.

A state says only ``unavailable``; debugging a map needs the why (which address the meter refused, how
many requests a cycle costs, how many timeouts the line has seen), so it is served here.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from hub.context import PluginContext


def snapshot(hub: PluginContext) -> dict:
    return {
        "connections": {
            name: {"link": bus.describe(), "connected": bus.connected, **asdict(bus.stats)}
            for name, bus in hub.data.get("buses", {}).items()
        },
        "devices": [
            {
                "id": device.id,
                "name": device.config.name,
                "connection": device.bus.name,
                "device_id": device.config.device_id,
                "entities": len(device.entities),
                "requests_per_cycle": device.requests_per_cycle,
                "blocks": [
                    {"interval": g.interval, "register": b.register, "address": b.address, "count": b.count,
                     "entities": [i.key for i in b.items]}
                    for g in device.groups for b in g.blocks
                ],
                **{k: v for k, v in asdict(device.health).items()},
            }
            for device in hub.data.get("devices", [])
        ],
    }


def router(hub: PluginContext) -> APIRouter:
    api = APIRouter()

    @api.get("/status")
    def status() -> dict:
        return snapshot(hub)

    return api
