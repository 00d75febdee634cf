"""A plugin file the Home Assistant discovery tests give a real ``hub run`` (``--plugins-dir``).

* A garage device the demo lacks: a ``cover`` (with a position) and a ``button`` whose press removes
  the garage device, so a test removes a device from a real hub through a real command.
"""

from __future__ import annotations

import asyncio

from hub import hookimpl
from hub.devices.model import Device, EntitySpec

GARAGE = Device(id="garage", name="Garage", manufacturer="Kit", model="G1")
SPECS = [
    EntitySpec(key="door", capability="cover", device_class="garage", name="Garage door", object_id="garage_door"),
    EntitySpec(key="remove", capability="button", name="Garage remove", object_id="garage_remove"),
]



@hookimpl
def hub_discover(hub):
    handles = hub.data["handles"] = hub.add_device(GARAGE, SPECS)
    handles["door"].set("closed", position=0)
    handles["remove"].set(None)


@hookimpl
async def hub_handle_command(hub, entity, command, args):
    handles = hub.data["handles"]
    if entity.key == "remove":
        # After the command's answer: the device goes the way a driver removes a device it lost.
        asyncio.get_running_loop().call_soon(hub.remove_device, GARAGE.id)
        return None
    position = {"open": 100, "close": 0, "set_position": getattr(args, "position", None)}.get(command)
    if position is None:
        handles["door"].set("stopped")
        return None
    handles["door"].set("open" if position > 0 else "closed", position=position)
    return None

