"""Ruff Hub's serial driver: devices that speak a line (or length-prefixed) protocol on a port.

Layers: :mod:`hub_serial.framing` cuts bytes into frames, :mod:`hub_serial.patterns` maps frames to
states and commands to text (pure), :mod:`hub_serial.port` owns the port and its reconnects. This
module wires them to the hub's hooks; pyserial is imported only when a port is opened.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hub import hookimpl
from hub.context import EntityHandle, PluginContext
from hub.devices.model import Device, EntitySpec

from hub_serial.config import SerialConfig

__version__ = "0.1.0"


@hookimpl
def hub_config_schema() -> type[SerialConfig]:
    return SerialConfig


@hookimpl
def hub_setup(hub: PluginContext) -> None:
    from hub_serial.port import SerialDevice

    hub.data["devices"] = [SerialDevice(port, clock=hub.now) for port in hub.config.ports]


@hookimpl
def hub_discover(hub: PluginContext) -> None:
    by_entity = hub.data["by_entity"] = {}
    for device in hub.data["devices"]:
        c = device.config
        specs = []
        for e in c.entities:
            specs.append(EntitySpec(key=e.key, capability=e.capability, name=f"{c.name} {e.name or e.key.replace('_', ' ')}",
                                    device_class=e.device_class, unit=e.unit, options=e.hub_options))
        handles = hub.add_device(
            Device(id=f"serial:{device.id}", name=c.name, manufacturer=c.manufacturer, model=c.model,
                   connection=f"{c.port} {c.baudrate} {c.bytesize}{c.parity}{c.stopbits}"),
            specs,
        )
        device.handles = handles
        for handle in handles.values():
            by_entity[handle.entity_id] = device


@hookimpl
async def hub_run(hub: PluginContext) -> None:
    await asyncio.gather(*(device.run() for device in hub.data["devices"]))


@hookimpl
async def hub_handle_command(hub: PluginContext, entity: EntityHandle, command: str, args: Any) -> Any:
    return await hub.data["by_entity"][entity.entity_id].command(entity, command, args)


@hookimpl
def hub_api_routes(hub: PluginContext):
    from dataclasses import asdict

    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/status")
    def status() -> dict:
        return {"ports": [{"id": d.id, "name": d.config.name, "port": d.config.port, **asdict(d.stats)}
                          for d in hub.data.get("devices", [])]}

    return router
