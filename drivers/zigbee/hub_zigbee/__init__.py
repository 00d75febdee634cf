"""Ruff Hub's Zigbee driver: zigpy with a TI (zigpy-znp) or Silicon Labs (bellows) coordinator.

Layers, as in zigpy itself: the radio library speaks to the USB stick, zigpy keeps the network and
its devices (database, interview, quirks), :mod:`hub_zigbee.clusters` maps a device's ZCL clusters
to the hub's capabilities, and this module wires them to the hub's hooks. zigpy is imported lazily
so that ``hub --help`` (which loads every plugin to collect its subcommands) does not pay for it.

The radio's connection is ``hub_run``'s loop, not the supervisor's restart: when the stick goes
away every Zigbee entity is unavailable at once, the plugin stays ``running`` (it is doing its job:
waiting for the stick), and the loop reopens it with a back-off of its own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hub import hookimpl
from hub.context import EntityHandle, PluginContext

from hub_zigbee.config import ZigbeeConfig

__version__ = "0.1.0"

log = logging.getLogger("hub.plugins.zigbee")


@hookimpl
def hub_config_schema() -> type[ZigbeeConfig]:
    return ZigbeeConfig


@hookimpl
def hub_setup(hub: PluginContext) -> None:
    from hub_zigbee.gateway import Gateway
    from hub_zigbee.radio import Radio

    for name in ("zigpy", "zigpy_znp", "bellows", "zhaquirks", "aiosqlite"):
        # Their INFO lines are ours to say (with context), and their DEBUG ones carry network keys.
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    # Except what a user wants to read: a network formed, a backup restored, a device joined.
    if logging.getLogger("zigpy.application").level == logging.NOTSET:
        logging.getLogger("zigpy.application").setLevel(logging.INFO)
    hub.data["radio"] = Radio(hub.config, hub.data_dir)
    hub.data["gateway"] = Gateway(hub, hub.data.get("entities_for"))


@hookimpl
async def hub_run(hub: PluginContext) -> None:
    from hub_zigbee import availability

    config: ZigbeeConfig = hub.config
    radio, gateway = hub.data["radio"], hub.data["gateway"]
    delay = 1.0
    while True:
        lost = gateway.expect()
        try:
            app = await radio.start(gateway)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the stick absent or busy: wait for it, the hub stays up
            gateway.unbind()
            log.warning("zigbee: cannot start the radio on %s (%s: %s); retrying in %g s",
                        config.port, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, config.reconnect_max)
            continue
        delay = 1.0
        log.info("zigbee: %s radio on %s, channel %s, %d devices known", config.radio_type, config.port,
                 app.state.network_info.channel, max(len(app.devices) - 1, 0))
        watcher = asyncio.get_running_loop().create_task(availability.run(gateway, config))
        try:
            gateway.bind(app)
            await lost
        finally:
            watcher.cancel()
            gateway.unbind()
            await radio.stop()


@hookimpl
async def hub_handle_command(hub: PluginContext, entity: EntityHandle, command: str, args: Any) -> Any:
    return await hub.data["gateway"].command(entity, command, args)


@hookimpl
def hub_api_routes(hub: PluginContext):
    from hub_zigbee.api import router

    return router(hub)


@hookimpl
def hub_rule_actions(hub: PluginContext, register) -> None:
    from hub_zigbee.actions import register_actions

    register_actions(hub, register)


@hookimpl
def hub_register_commands(cli) -> None:
    from hub_zigbee.cli import zigbee

    cli.add_command(zigbee)


@hookimpl
async def hub_shutdown(hub: PluginContext) -> None:
    radio = hub.data.get("radio")
    if radio is not None:
        await radio.stop()
