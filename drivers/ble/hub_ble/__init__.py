"""Ruff Hub's BLE driver: passive sensors from their advertisements (BTHome v2, Xiaomi MiBeacon)
and connected GATT devices, through bleak. bleak is imported lazily so that ``hub --help`` (which
loads every plugin to collect its subcommands) does not pay for it.

Layers: bleak's scanner hands every advertisement to :class:`hub_ble.driver.Ble`, which gives it to
the configured device's parser (:mod:`hub_ble.passive`, :mod:`hub_ble.parsing`) or records it in the
discovered table; each GATT device (:mod:`hub_ble.gatt`) keeps its own connection. The adapter's
absence is the scanner loop's business, not the supervisor's: the plugin stays ``running`` with a
note saying why nothing arrives, and its entities are unavailable.
"""

from __future__ import annotations

import logging
from typing import Any

from hub import hookimpl
from hub.context import EntityHandle, PluginContext

from hub_ble.config import BleConfig

__version__ = "0.1.0"

log = logging.getLogger("hub.plugins.ble")


@hookimpl
def hub_config_schema() -> type[BleConfig]:
    return BleConfig


#: What the driver imports, heavy enough (cryptography, dbus-fast, the parsers' tables) to stall the
#: event loop for a second on a Pi: imported in a thread at set-up, not on the first advertisement.
LIBRARIES = ("bleak", "bleak.backends.bluezdbus.manager", "bleak.backends.bluezdbus.advertisement_monitor",
             "bleak_retry_connector", "bthome_ble", "xiaomi_ble", "home_assistant_bluetooth")


def _import_libraries() -> None:
    import importlib

    for name in LIBRARIES:
        importlib.import_module(name)


@hookimpl
async def hub_setup(hub: PluginContext) -> None:
    import asyncio

    await asyncio.to_thread(_import_libraries)
    from hub_ble.driver import Ble

    for name in ("bleak", "bleak_retry_connector", "bthome_ble", "xiaomi_ble", "habluetooth", "dbus_fast"):
        # Their DEBUG lines carry raw payloads (and, decrypted, what a bind key protects).
        if logging.getLogger(name).level == logging.NOTSET:
            logging.getLogger(name).setLevel(logging.WARNING)
    ble = hub.data["ble"] = Ble(hub, hub.config)
    ble.setup()


@hookimpl
async def hub_run(hub: PluginContext) -> None:
    await hub.data["ble"].run()


@hookimpl
async def hub_handle_command(hub: PluginContext, entity: EntityHandle, command: str, args: Any) -> Any:
    from hub.core.commands import CommandRefused, EntityUnavailable

    from hub_ble.gatt import NotConnected

    found = hub.data["ble"].gatt_for(entity.entity_id)
    if found is None:
        raise CommandRefused(f"{entity.entity_id} is a sensor: it takes no commands")
    device, key = found
    try:
        await device.command(key, command)
    except NotConnected as exc:
        raise EntityUnavailable(str(exc)) from None


@hookimpl
def hub_api_routes(hub: PluginContext):
    from hub_ble.api import router

    return router(hub)


@hookimpl
def hub_register_commands(cli) -> None:
    from hub_ble.cli import ble

    cli.add_command(ble)
