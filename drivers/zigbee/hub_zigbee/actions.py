"""``- zigbee_permit_join: 60`` in a rule: open the network for pairing (a button on the wall that
lets the next device in, as ZHA's automation action does)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.context import PluginContext


class PermitJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zigbee_permit_join: int = Field(ge=0, le=254, description="Seconds the network accepts new devices; 0 closes it.")


def register_actions(hub: PluginContext, register: Any) -> None:
    async def run(config: PermitJoin, variables: dict) -> dict[str, Any]:
        until = await hub.data["gateway"].permit(config.zigbee_permit_join)
        return {"until": until}

    register("zigbee_permit_join", PermitJoin, run)
