"""``/api/plugins/mqtt/``: the bridge's connection and counters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter


def router(hub: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/status")
    async def status() -> dict[str, Any]:
        link = hub.data["link"]
        return {"connected": link.connected, "broker": f"{hub.config.host}:{hub.config.broker_port}",
                "node_id": hub.config.node_id, **link.stats.as_dict()}

    return api
