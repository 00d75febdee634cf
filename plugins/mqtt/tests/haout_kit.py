"""A plugin file the Home Assistant discovery tests give a real ``hub run`` (``--plugins-dir``).

* A garage device the demo lacks: a ``cover`` (with a position) and a ``button`` whose press removes
  the garage device, so a test removes a device from a real hub through a real command.
* Until the bridge's own state publisher and command intake exist (``hub_mqtt.states`` and
  ``hub_mqtt.commands`` are still the skeleton's "(Being built" stubs), a minimal stand-in for both:
  states as ``State.as_dict()`` JSON on ``<prefix>/state/<entity_id>``, and commands on
  ``<prefix>/set/<entity_id>[/<field>]`` through ``ha_out.translate`` and the command gate. Once they
  exist, it stands aside, and the tests drive the real ones.

The broker's port and the hub's topic prefix come from the environment (HAOUT_PORT, HAOUT_PREFIX).
"""

from __future__ import annotations

import asyncio
import json
import os

from hub import hookimpl
from hub.devices.model import Device, EntitySpec

GARAGE = Device(id="garage", name="Garage", manufacturer="Kit", model="G1")
SPECS = [
    EntitySpec(key="door", capability="cover", device_class="garage", name="Garage door", object_id="garage_door"),
    EntitySpec(key="remove", capability="button", name="Garage remove", object_id="garage_remove"),
]


def _stand_in_needed() -> bool:
    from hub_mqtt import commands, states

    return all((m.__doc__ or "").startswith("(Being built") for m in (commands, states))


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


@hookimpl
async def hub_run(hub):
    if not _stand_in_needed():
        return
    import aiomqtt

    from hub.core.events import StateChanged
    from hub_mqtt.ha_out import translate

    prefix, port = os.environ["HAOUT_PREFIX"], int(os.environ["HAOUT_PORT"])
    queue: asyncio.Queue = asyncio.Queue()
    hub.bus.subscribe(StateChanged, lambda event: queue.put_nowait(event.new_state))
    for state in hub.all_states():
        queue.put_nowait(state)

    async with aiomqtt.Client("127.0.0.1", port, identifier="haout-stand-in") as client:
        async def publish_states() -> None:
            while True:
                state = await queue.get()
                if hub.get_entity(state.entity_id) is None:
                    await client.publish(f"{prefix}/state/{state.entity_id}", b"", retain=True)
                else:
                    await client.publish(f"{prefix}/state/{state.entity_id}", json.dumps(state.as_dict()), retain=True)

        sender = asyncio.get_running_loop().create_task(publish_states())
        await client.subscribe(f"{prefix}/set/#")
        try:
            async for message in client.messages:
                if message.retain:
                    continue
                entity_id, _, field = message.topic.value[len(prefix) + 5:].partition("/")
                entry = hub.get_entity(entity_id)
                command = entry and translate(entry, hub.get_state(entity_id), field or None, message.payload)
                if not command:
                    hub.log.warning("stand-in: %s: not a command: %r", message.topic.value, message.payload)
                    continue
                try:
                    await hub.call(entity_id, command[0], command[1], via="set")
                except Exception as exc:  # noqa: BLE001 - a refused command is the test's to see
                    await client.publish(f"{prefix}/result/{entity_id}", json.dumps({"ok": False, "message": str(exc)}))
        finally:
            sender.cancel()
