"""A one-entity stand-in for ``hub_zigbee.clusters.entities_for`` (an On/Off server cluster ->
``switch``), for these tests only while the cluster mapping is built on its own branch."""

from __future__ import annotations

from hub.core.commands import CommandRefused
from hub.devices.model import EntitySpec
from hub_zigbee.clusters.base import Reporting, ZigbeeEntity

ON_OFF = 0x0006


class OnOffSwitch(ZigbeeEntity):
    def __init__(self, endpoint) -> None:
        super().__init__(endpoint)
        self.cluster = endpoint.in_clusters[ON_OFF]
        self.spec = EntitySpec(key=f"{endpoint.endpoint_id}_on_off", capability="switch")
        self.reporting = {self.cluster: [Reporting("on_off", 0, 300)]}

    def attach(self, handle) -> None:
        self.handle = handle
        self.cluster.add_listener(self)

    def detach(self) -> None:
        self.cluster._listeners.pop(id(self), None)  # noqa: SLF001 - zigpy has no remove_listener

    def attribute_updated(self, attrid, value, timestamp) -> None:
        if attrid == 0x0000:
            self.write("on" if value else "off")

    async def configure(self) -> None:
        await self.cluster.bind()
        await self.cluster.configure_reporting("on_off", 0, 300, 1)

    async def refresh(self) -> None:
        values, failed = await self.cluster.read_attributes(["on_off"], allow_cache=False)
        if "on_off" not in values:
            raise RuntimeError(f"on_off not read: {failed}")

    async def command(self, command, args):
        call = {"turn_on": self.cluster.on, "turn_off": self.cluster.off, "toggle": self.cluster.toggle}[command]
        rsp = await call()
        status = getattr(rsp, "status", None)
        if status is not None and int(status) != 0:
            raise CommandRefused(f"the device answered {status!r}")
        await self.refresh()


def entities_for(device) -> list[ZigbeeEntity]:
    return [OnOffSwitch(ep) for epid, ep in device.endpoints.items()
            if epid != 0 and ON_OFF in getattr(ep, "in_clusters", {})]
