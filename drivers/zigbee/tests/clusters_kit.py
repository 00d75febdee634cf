"""A real hub with the cluster mapping wired as the gateway wires it (entities_for after the
interview, prepare, configure, refresh, commands through the hub's command gate), over FakeApp."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from zigpy_fake import FakeApp, VirtualDevice, load_quirks, settle

from hub import hookimpl
from hub.devices import Device
from hub.runtime import Hub
from hub_zigbee.clusters import entities_for, prepare


class Driver:
    """The gateway's side of the contract in clusters/base.py, and nothing else."""

    def __init__(self) -> None:
        self.by_entity: dict[str, Any] = {}

    @hookimpl
    async def hub_handle_command(self, hub: Any, entity: Any, command: str, args: Any) -> Any:
        return await self.by_entity[entity.entity_id].command(command, args)


class Paired:
    def __init__(self, hub: Hub, app: FakeApp) -> None:
        self.hub, self.app = hub, app
        self.entities: dict[str, dict[str, Any]] = {}  # device name -> key -> ZigbeeEntity
        self.zdev: dict[str, Any] = {}

    async def pair(self, virtual: VirtualDevice, *, read: bool = True) -> dict[str, Any]:
        """``read=False``: a gateway that neither prepares nor has refreshed yet (reports first)."""
        zdev = await self.app.join(virtual)
        if read:
            await prepare(zdev)
        entities = entities_for(zdev, virtual.name)
        handles = self.hub.contexts["zigbee"].add_device(
            Device(id=str(zdev.ieee), name=virtual.name, manufacturer=zdev.manufacturer, model=zdev.model),
            [e.spec for e in entities])
        for entity in entities:
            entity.attach(handles[entity.spec.key])
            DRIVER.by_entity[handles[entity.spec.key].entity_id] = entity
        for entity in entities:
            await entity.configure()
        for entity in entities if read else ():
            await entity.refresh()
        await settle()
        self.zdev[virtual.name] = zdev
        self.entities[virtual.name] = {e.spec.key: e for e in entities}
        return self.entities[virtual.name]

    def state(self, device: str, key: str) -> Any:
        return self.entities[device][key].handle.state

    async def call(self, device: str, key: str, command: str, args: dict | None = None) -> Any:
        result = await self.hub.commands.call(self.entities[device][key].handle.entity_id, command, args)
        await settle()
        return result


DRIVER = Driver()


@asynccontextmanager
async def paired_hub(tmp_path: Any):
    load_quirks()
    (tmp_path / "configuration.yaml").write_text("hub: {}\n")
    hub = Hub(tmp_path, entrypoints=False)
    DRIVER.by_entity.clear()
    hub.plugins.register("zigbee", DRIVER)
    await hub.start()
    try:
        yield Paired(hub, FakeApp())
    finally:
        await hub.stop()
