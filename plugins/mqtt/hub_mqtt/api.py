"""``/api/plugins/mqtt/``: the bridge's connection and counters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub_mqtt.expose import commandable, published


def router(hub: Any) -> APIRouter:
    api = APIRouter()

    @api.get("/status")
    async def status() -> dict[str, Any]:
        link = hub.data["link"]
        config = hub.config
        entries = hub.all_entities()
        return {
            "connected": link.connected,
            "broker": f"{config.host}:{config.broker_port}",
            "tls": config.tls is not None,
            "protocol": link.protocol,
            "client_id": config.client_identifier,
            "node_id": config.node_id,
            "topics": config.prefix,
            "published": sum(1 for e in entries if published(config, e)),
            "commandable": sum(1 for e in entries if commandable(config, e)),
            **link.stats.as_dict(),
        }

    return api
