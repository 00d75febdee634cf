"""Ruff Hub's Modbus driver: TCP, RTU and RTU over TCP, with coalesced reads and device profiles.

Layers, as in zigpy: :mod:`hub_modbus.bus` is the link (one transaction at a time, gaps, retries,
reconnects), :mod:`hub_modbus.device` a device's health and commands, :mod:`hub_modbus.entities` the
register-to-state mapping, :mod:`hub_modbus.plan` the coalescing. This module only wires them to the
hub's hooks. pymodbus is imported lazily so that ``hub --help`` (which loads every plugin to collect
its subcommands) does not pay for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hub import hookimpl
from hub.context import EntityHandle, PluginContext
from hub.devices.model import Device

from hub_modbus.config import ModbusConfig

__version__ = "0.1.0"


@hookimpl
def hub_config_schema() -> type[ModbusConfig]:
    return ModbusConfig


@hookimpl
def hub_setup(hub: PluginContext) -> None:
    from hub_modbus.bus import ModbusBus
    from hub_modbus.device import ModbusDevice

    # pymodbus logs every timeout at ERROR; the driver reports them once per device, with context.
    if logging.getLogger("pymodbus").level == logging.NOTSET:
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    config: ModbusConfig = hub.config
    buses = {name: ModbusBus(name, link) for name, link in config.connections.items()}
    hub.data["buses"] = buses
    hub.data["devices"] = [ModbusDevice(device, buses[device.connection]) for device in config.devices]


@hookimpl
def hub_discover(hub: PluginContext) -> None:
    from hub_modbus import entities as mapping

    by_entity = hub.data["by_entity"] = {}
    for device in hub.data["devices"]:
        cfg = device.config
        profile = cfg.profile_data
        handles = hub.add_device(
            Device(
                id=f"modbus:{device.id}", name=cfg.name,
                manufacturer=cfg.manufacturer or profile.get("manufacturer"),
                model=cfg.model or profile.get("model"),
                connection=f"{device.bus.describe()} id {cfg.device_id}",
            ),
            [mapping.spec(entity, cfg.name) for entity in device.entities.values()],
        )
        device.handles = handles
        for handle in handles.values():
            by_entity[handle.entity_id] = device


@hookimpl
async def hub_run(hub: PluginContext) -> None:
    from hub_modbus.scheduler import run_connection

    by_bus: dict[str, list] = {}
    for device in hub.data["devices"]:
        by_bus.setdefault(device.bus.name, []).append(device)
    await asyncio.gather(*(run_connection(devices) for devices in by_bus.values()))


@hookimpl
async def hub_handle_command(hub: PluginContext, entity: EntityHandle, command: str, args: Any) -> Any:
    return await hub.data["by_entity"][entity.entity_id].command(entity, command, args)


@hookimpl
def hub_api_routes(hub: PluginContext):
    from hub_modbus.status import router

    return router(hub)


@hookimpl
def hub_register_commands(cli) -> None:
    from hub_modbus.cli import modbus

    cli.add_command(modbus)


@hookimpl
def hub_shutdown(hub: PluginContext) -> None:
    for bus in hub.data.get("buses", {}).values():
        bus.close()
