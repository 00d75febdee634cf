"""Ruff Hub's driver for devices that hold their own key (an ESP32 plug; the ``keyplug`` simulator).

Such a device verifies every statement itself, as the whitepaper's light node: the hub never stands
in for its check, it only forwards. So an owner's or a rule's command is signed with the hub's
controller key (``identity.sign_command``) and delivered like anyone else's, and a refusal is the
device's, with its reason. The wire protocol is :mod:`hub_lightnode.protocol`; one
:class:`hub_lightnode.link.Link` per configured address keeps the connection.

A device's id is ``lightnode:<its public key, hex>``: it is learnt from the device's ``hello``, so
the same plug keeps its id (and its history) whatever address it has, and another plug at the same
address is another device.
"""

from __future__ import annotations

import logging
from typing import Any

from hub import hookimpl
from hub.context import EntityHandle, PluginContext

from hub_lightnode.config import LightnodeConfig

__version__ = "0.1.0"
log = logging.getLogger("hub.plugins.lightnode")


@hookimpl
def hub_config_schema() -> type[LightnodeConfig]:
    return LightnodeConfig


@hookimpl
def hub_setup(hub: PluginContext) -> None:
    from hub_lightnode.devices import Devices

    hub.data["devices"] = Devices(hub)


@hookimpl
async def hub_run(hub: PluginContext) -> None:
    await hub.data["devices"].run()


# The hub calls these for this plugin's devices only. A device it knows from an earlier run that
# has not connected since is an error, never a quiet None: a None would read as "delivered".
@hookimpl
async def hub_deliver_statement(hub: PluginContext, device_id: str, signed: Any) -> Any:
    return await hub.data["devices"].deliver(device_id, signed)


@hookimpl
async def hub_request_bind_proof(hub: PluginContext, device_id: str, controller: bytes, nonce: bytes,
                                 code_mac: bytes) -> Any:
    return await hub.data["devices"].prove(device_id, controller, nonce, code_mac)


@hookimpl
async def hub_request_receipt(hub: PluginContext, device_id: str, call: bytes, entity: str, since: int) -> Any:
    return await hub.data["devices"].receipt(device_id, call, entity, since)


@hookimpl
async def hub_handle_command(hub: PluginContext, entity: EntityHandle, command: str, args: Any) -> Any:
    return await hub.data["devices"].command(entity, command, args)


@hookimpl
def hub_api_routes(hub: PluginContext):
    from hub_lightnode.status import router

    return router(hub)
