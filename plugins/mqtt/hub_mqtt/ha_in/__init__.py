"""MQTT devices in the hub: entities declared under ``mqtt:`` in Home Assistant's shape, and devices
that announce themselves with Home Assistant discovery (Zigbee2MQTT, Tasmota, ESPHome, Shelly).

The work is in :mod:`.adopt` (devices and their entities in the hub, and the broker's topics routed
to them), :mod:`.entities`, :mod:`.controls` and :mod:`.lights` (one class per component),
:mod:`.discovery` and :mod:`.abbrev` (reading configs) and :mod:`.templates` (the bounded Jinja subset). Imports stay inside the functions: ``config.py`` reads
:mod:`hub_mqtt.ha_schema`, which reads the templates module of this package.
"""

from __future__ import annotations

from typing import Any


def setup(hub: Any, link: Any) -> None:
    from hub_mqtt.ha_in.adopt import Adopter

    hub.data["ha_in"] = Adopter(hub, link).start()


async def handle_command(hub: Any, entity: Any, command: str, args: Any) -> Any:
    return hub.data["ha_in"].command(entity, command, args)
