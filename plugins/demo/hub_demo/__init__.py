"""Ruff Hub's demo plugin: a small simulated home that behaves like real devices.

It is what a fresh ``hub run`` shows with no configuration, and the reference to copy when writing a
driver: the hooks below are all a plugin needs, the devices live in :mod:`hub_demo.devices` and the
simulation, free of any I/O, in :mod:`hub_demo.physics`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hub import hookimpl
from hub.context import EntityHandle, PluginContext
from hub.devices.capabilities import Args

from hub_demo.config import DemoConfig
from hub_demo.home import Home

__version__ = "0.1.0"

@hookimpl
def hub_config_schema() -> type[DemoConfig]:
    return DemoConfig


@hookimpl
def hub_discover(hub: PluginContext) -> None:
    # Kept on the context, not in a module global: several hubs in one process get their own house.
    hub.data["home"] = Home(hub, hub.config)


@hookimpl
async def hub_run(hub: PluginContext) -> None:
    home: Home = hub.data["home"]
    last = hub.now()
    while True:
        await asyncio.sleep(hub.config.update_interval)
        # Elapsed time is measured, not assumed: a busy loop or a suspended laptop sleeps longer
        # than asked, and the room should have cooled down accordingly.
        now = hub.now()
        home.step(max(now - last, 0.0) * hub.config.time_scale)
        last = now


@hookimpl
async def hub_handle_command(hub: PluginContext, entity: EntityHandle, command: str, args: Args) -> Any:
    return await hub.data["home"].command(entity, command, args)
